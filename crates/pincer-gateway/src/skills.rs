//! Skills over HTTP (`/v1/skills…`, scope `admin`): validate (a path on the server or uploaded
//! files → verdict and findings, nothing installed), install, list, show, approve, enable,
//! disable, rescan, revoke, remove — through the [`SkillAdmin`] seam `pincer serve` implements
//! (`pincer-server/src/skills_admin.rs`), which the CLI uses too.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use futures_util::future::BoxFuture;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::handlers::ApiJson;
use crate::{ApiError, AppState, Caller};

/// Why a skill operation failed: an HTTP status, a stable code, a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillAdminError {
    /// 400, 404, 409, 422, 502 or 500.
    pub status: u16,
    /// Stable code (`skill_blocked`, `skill_source_refused`, …).
    pub code: &'static str,
    /// What happened.
    pub message: String,
}

impl From<SkillAdminError> for ApiError {
    fn from(e: SkillAdminError) -> Self {
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError::new(status, e.code, e.message)
    }
}

/// The result of a skill operation.
pub type SkillResult<'a> = BoxFuture<'a, Result<Value, SkillAdminError>>;

/// Where a skill to validate or install comes from.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SkillSource {
    /// A folder or git repository on the server, or a git URL (`https://host/org/repo[@rev]`,
    /// host in `skills.trusted_sources`).
    #[serde(default)]
    pub source: Option<String>,
    /// Or the skill's files, uploaded.
    #[serde(default)]
    pub files: Vec<UploadedFile>,
}

/// One uploaded file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadedFile {
    /// Path inside the skill (`SKILL.md`, `reference/api.md`).
    pub path: String,
    /// Its content (text, or base64 with `base64: true`).
    pub content: String,
    /// Whether `content` is base64.
    #[serde(default)]
    pub base64: bool,
}

/// The skill operations (`by` is who asks: `operator:cli`, `token:<name>`).
pub trait SkillAdmin: Send + Sync + std::fmt::Debug {
    /// Every installed skill and its state.
    fn list(&self) -> SkillResult<'_>;
    /// One skill, with its findings and manifest.
    fn show<'a>(&'a self, name: &'a str) -> SkillResult<'a>;
    /// Scans without installing.
    fn validate<'a>(&'a self, source: SkillSource) -> SkillResult<'a>;
    /// Scans and installs (pending approval).
    fn install<'a>(&'a self, source: SkillSource, by: &'a str) -> SkillResult<'a>;
    /// Approves the content last scanned (exactly `sha256` when given).
    fn approve<'a>(
        &'a self,
        name: &'a str,
        sha256: Option<&'a str>,
        accept_warnings: bool,
        by: &'a str,
    ) -> SkillResult<'a>;
    /// `enable`, `disable`, `rescan` or `revoke`.
    fn act<'a>(&'a self, name: &'a str, action: &'a str, by: &'a str) -> SkillResult<'a>;
    /// Removes the skill.
    fn remove<'a>(&'a self, name: &'a str, by: &'a str) -> SkillResult<'a>;
}

fn admin(st: &AppState) -> Result<Arc<dyn SkillAdmin>, ApiError> {
    st.skills
        .clone()
        .ok_or_else(|| ApiError::not_found("this server has no skill administration"))
}

use crate::mcp::by;

pub(crate) fn source_schema() -> Value {
    crate::handlers::schema::<SkillSource>()
}

/// Body of `POST /v1/skills/{name}/approve`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Approve {
    /// The sha256 that was shown; refused (409) when the skill's content is another one now.
    #[serde(default)]
    sha256: Option<String>,
    /// Approve although the scan warned.
    #[serde(default)]
    accept_warnings: bool,
}

pub(crate) fn approve_schema() -> Value {
    crate::handlers::schema::<Approve>()
}

pub(crate) async fn list(State(st): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    Ok(Json(admin(&st)?.list().await?))
}

pub(crate) async fn show(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(admin(&st)?.show(&name).await?))
}

pub(crate) async fn validate(
    State(st): State<Arc<AppState>>,
    ApiJson(body): ApiJson<SkillSource>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(admin(&st)?.validate(body).await?))
}

pub(crate) async fn install(
    State(st): State<Arc<AppState>>,
    Extension(Caller(who)): Extension<Caller>,
    ApiJson(body): ApiJson<SkillSource>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let v = admin(&st)?.install(body, &by(&who)).await?;
    Ok((StatusCode::CREATED, Json(v)))
}

pub(crate) async fn approve(
    State(st): State<Arc<AppState>>,
    Extension(Caller(who)): Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<Approve>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        admin(&st)?
            .approve(
                &name,
                body.sha256.as_deref(),
                body.accept_warnings,
                &by(&who),
            )
            .await?,
    ))
}

pub(crate) async fn act(
    State(st): State<Arc<AppState>>,
    Extension(Caller(who)): Extension<Caller>,
    Path((name, action)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(admin(&st)?.act(&name, &action, &by(&who)).await?))
}

pub(crate) async fn remove(
    State(st): State<Arc<AppState>>,
    Extension(Caller(who)): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(admin(&st)?.remove(&name, &by(&who)).await?))
}
