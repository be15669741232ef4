//! MCP servers over HTTP (`/v1/mcp/servers…`, scope `admin`): the same operations as `pincer mcp`
//! — list, add, discover, approve, enable, disable, tools, logs, remove — through the
//! [`McpAdmin`] seam `pincer serve` implements (`pincer-server/src/mcp_admin.rs`), so the CLI and
//! the API share one implementation.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::handlers::{ApiJson, ApiQuery};
use crate::{ApiError, AppState, Caller};

/// Why an MCP operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpAdminError {
    /// No such server.
    NotFound(String),
    /// The request cannot be done as asked (bad config, nothing to approve, …).
    Invalid(String),
    /// The state moved on (the manifest changed since it was shown).
    Conflict(String),
    /// The server could not be started or reached, or broke the protocol.
    Server(String),
    /// Pincer failed (store, audit log, config file).
    Internal(String),
}

impl std::fmt::Display for McpAdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound(m)
            | Self::Invalid(m)
            | Self::Conflict(m)
            | Self::Server(m)
            | Self::Internal(m) => f.write_str(m),
        }
    }
}

impl From<McpAdminError> for ApiError {
    fn from(e: McpAdminError) -> Self {
        match e {
            McpAdminError::NotFound(m) => ApiError::not_found(m),
            McpAdminError::Invalid(m) => ApiError::bad_request("invalid", m),
            McpAdminError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            McpAdminError::Server(m) => ApiError::new(StatusCode::BAD_GATEWAY, "mcp_server", m),
            McpAdminError::Internal(m) => ApiError::internal(m),
        }
    }
}

/// The result of an MCP operation.
pub type McpResult<'a> = BoxFuture<'a, Result<Value, McpAdminError>>;

/// The MCP operations (`by` is who asks: `operator:cli`, `token:<name>`).
pub trait McpAdmin: Send + Sync + std::fmt::Debug {
    /// Every configured server and its state.
    fn list(&self) -> McpResult<'_>;
    /// Adds a server (`config`: its `[mcp.servers.<name>]` table as JSON), disabled.
    fn add<'a>(&'a self, name: &'a str, config: Value, by: &'a str) -> McpResult<'a>;
    /// Starts the server, lists its tools, stops it (never calls one).
    fn discover<'a>(&'a self, name: &'a str) -> McpResult<'a>;
    /// Approves the manifest last seen (exactly `sha256` when given).
    fn approve<'a>(&'a self, name: &'a str, sha256: Option<&'a str>, by: &'a str) -> McpResult<'a>;
    /// Enables or disables the server.
    fn set_enabled<'a>(&'a self, name: &'a str, on: bool, by: &'a str) -> McpResult<'a>;
    /// The approved and the last seen manifest, and what changed.
    fn tools<'a>(&'a self, name: &'a str) -> McpResult<'a>;
    /// The newest `lines` of its captured stderr.
    fn logs<'a>(&'a self, name: &'a str, lines: usize) -> McpResult<'a>;
    /// Removes the server and forgets its approval.
    fn remove<'a>(&'a self, name: &'a str, by: &'a str) -> McpResult<'a>;
}

fn admin(st: &AppState) -> Result<Arc<dyn McpAdmin>, ApiError> {
    st.mcp
        .clone()
        .ok_or_else(|| ApiError::not_found("this server has no MCP administration"))
}

/// Who an admin route's caller is, for the audit log.
pub(crate) fn by(who: &pincer_store::TokenInfo) -> String {
    format!("token:{}", who.name)
}

/// Body of `POST /v1/mcp/servers`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddServer {
    /// Server name (a-z, 0-9, inner '-').
    name: String,
    /// Its `[mcp.servers.<name>]` table: `command` + `args` + `env`, or `url` + `headers`, and
    /// `read_paths`, `write_paths`, `network`, `allow_private`, `tiers`, limits.
    #[schemars(with = "serde_json::Map<String, Value>")]
    config: Value,
}

pub(crate) fn add_schema() -> Value {
    crate::handlers::schema::<AddServer>()
}

/// Body of `POST /v1/mcp/servers/{name}/approve` (`{}` approves the manifest last seen).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Approve {
    /// The sha256 that was shown; refused (409) when the manifest is another one now.
    #[serde(default)]
    sha256: Option<String>,
}

pub(crate) fn approve_schema() -> Value {
    crate::handlers::schema::<Approve>()
}

/// `?lines=`.
#[derive(Debug, Deserialize)]
pub(crate) struct LogsQuery {
    lines: Option<usize>,
}

pub(crate) async fn list(State(st): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    Ok(Json(admin(&st)?.list().await?))
}

pub(crate) async fn add(
    State(st): State<Arc<AppState>>,
    Extension(Caller(who)): Extension<Caller>,
    ApiJson(body): ApiJson<AddServer>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let v = admin(&st)?.add(&body.name, body.config, &by(&who)).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

pub(crate) async fn tools(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(admin(&st)?.tools(&name).await?))
}

pub(crate) async fn logs(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> Result<Json<Value>, ApiError> {
    let lines = q.lines.unwrap_or(100).clamp(1, 10_000);
    Ok(Json(admin(&st)?.logs(&name, lines).await?))
}

pub(crate) async fn remove(
    State(st): State<Arc<AppState>>,
    Extension(Caller(who)): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(admin(&st)?.remove(&name, &by(&who)).await?))
}

pub(crate) async fn approve(
    State(st): State<Arc<AppState>>,
    Extension(Caller(who)): Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<Approve>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        admin(&st)?
            .approve(&name, body.sha256.as_deref(), &by(&who))
            .await?,
    ))
}

/// `discover`, `enable` or `disable`.
pub(crate) async fn act(
    State(st): State<Arc<AppState>>,
    Extension(Caller(who)): Extension<Caller>,
    Path((name, action)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let a = admin(&st)?;
    let v = match action.as_str() {
        "discover" => a.discover(&name).await?,
        "enable" => a.set_enabled(&name, true, &by(&who)).await?,
        "disable" => a.set_enabled(&name, false, &by(&who)).await?,
        other => {
            return Err(ApiError::not_found(format!(
                "no action `{other}` (discover, approve, enable, disable)"
            )));
        }
    };
    Ok(Json(v))
}
