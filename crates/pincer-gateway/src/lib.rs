//! The HTTP API of `pincer serve` (E2, D11).
//!
//! Every route is declared once in [`routes`] together with its [`Access`]: `Public` (only
//! `/healthz`) or the [`Scope`] a bearer token must hold. The router is built from that list
//! alone, so a route cannot exist without a declared access, and the test suite calls every
//! declared route without a token and expects 401. Errors are typed JSON
//! (`{"error": {"code", "message"}}`); bodies are bounded.

mod auth;
mod error;
mod events;
pub mod governance;
mod handlers;
mod hooks;
mod jobs;
mod mcp;
pub mod metrics;
mod openai;
mod openapi;
mod origin;
mod skills;
mod usage;
mod users;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use pincer_store::{Backend, TokenInfo};
use pincer_types::{AgentId, Scope};

pub use auth::{AuthLimiter, MAX_FAILURES};
pub use error::ApiError;
pub use events::{BusEvent, EventBus, TaskWatch};
pub use handlers::event_stream;
pub use hooks::{Hook, HookSecret};
pub use jobs::{
    DeliveryPolicy, JobSpec, enable_job, from_ts, job_from_spec, run_job_now, schedule_of, to_ts,
};
pub use mcp::{McpAdmin, McpAdminError, McpResult};
pub use openapi::openapi;
pub use origin::HostPolicy;
/// Writes this process's counters into a `/metrics` exposition.
pub trait ProcessMetrics: Send + Sync + std::fmt::Debug {
    /// Appends the families.
    fn write(&self, out: &mut metrics::Exposition);
}

pub use skills::{SkillAdmin, SkillAdminError, SkillResult, SkillSource, UploadedFile};
pub use users::{Actor, UserChange, change_user};

/// Largest request body accepted.
pub const MAX_BODY: usize = 256 * 1024;
/// Longest a request may take to produce its response (reading its body included); a task
/// wait is at most 60 s. `/v1/chat/completions` waits for its task and has its own limit;
/// `/v1/events` answers at once and then streams.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(90);

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health only).
    Public,
    /// A token holding this scope (or `admin`).
    Scoped(Scope),
    /// A chat platform delivering updates: the channel's webhook secret in its header (checked
    /// by the handler against the registered [`WebhookSink`]).
    ChannelSecret,
    /// A webhook sender: the hook's HMAC signature or bearer secret (checked by the handler).
    HookSecret,
}

/// Where a channel's webhook deliveries go.
pub trait WebhookSink: Send + Sync + std::fmt::Debug {
    /// The secret the platform sends in `X-Telegram-Bot-Api-Secret-Token` (or its equivalent).
    fn secret(&self) -> &str;
    /// Handles one delivered update.
    fn deliver(&self, update: serde_json::Value) -> futures_util::future::BoxFuture<'_, ()>;
}

/// A declared route.
#[derive(Debug, Clone, Copy)]
pub struct RouteDef {
    /// Method.
    pub method: &'static str,
    /// Path, axum syntax (`/v1/tasks/{id}`).
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// What it does (for `/openapi.json`).
    pub summary: &'static str,
    /// JSON Schema of its request body, if it takes one.
    pub body: Option<fn() -> serde_json::Value>,
}

/// What the handlers share.
#[derive(Debug)]
pub struct AppState {
    /// The store (tasks, tokens, approvals).
    pub store: Arc<dyn Backend>,
    /// Agents that exist.
    pub agents: BTreeSet<AgentId>,
    /// Failed-authentication counter.
    pub limiter: AuthLimiter,
    /// Notified when a task is submitted (wakes a worker).
    pub wake: Arc<tokio::sync::Notify>,
    /// Task and approval events (`GET /v1/events`; also wakes `wait_secs` waiters).
    pub events: Arc<EventBus>,
    /// Whether `POST /v1/chat/completions` is enabled (`gateway.openai_compat`).
    pub openai_compat: bool,
    /// Per-request time limit (default [`REQUEST_TIMEOUT`]).
    pub request_timeout: std::time::Duration,
    /// Where operator actions taken through the API are recorded, and what
    /// `GET /v1/audit-events` reads (`None`: that route answers 404).
    pub audit: Option<Arc<pincer_audit::AuditLog>>,
    /// Channels receiving webhooks, by name (`telegram`).
    pub webhooks: std::collections::BTreeMap<String, Arc<dyn WebhookSink>>,
    /// Where job results may be delivered.
    pub delivery: DeliveryPolicy,
    /// Authenticated webhooks (`POST /v1/hooks/{name}`), by name.
    pub hooks: std::collections::BTreeMap<String, Hook>,
    /// Accepted `Host` names and browser origins (checked on every request).
    pub host_policy: HostPolicy,
    /// MCP server administration (`/v1/mcp/servers…`; `None`: those routes answer 404).
    pub mcp: Option<Arc<dyn McpAdmin>>,
    /// Skill administration (`/v1/skills…`; `None`: those routes answer 404).
    pub skills: Option<Arc<dyn SkillAdmin>>,
    /// Adds this process's own counters to `/metrics`.
    pub process_metrics: Option<Arc<dyn ProcessMetrics>>,
    /// `[governance]`: self-approval, bypass policy, quotas.
    pub governance: pincer_config::GovernanceConfig,
    /// Where run bundles live (`<home>/agents`), for the web page's transcript viewer; `None`:
    /// transcripts are not shown.
    pub agents_dir: Option<std::path::PathBuf>,
    /// The audit log as a verifiable source (the web page's chain check); `None`: not offered.
    pub audit_source: Option<pincer_audit::AuditSource>,
    /// The config the server started with (the web page's agents view); `None`: not shown.
    pub config: Option<Arc<pincer_config::Config>>,
}

impl AppState {
    /// State over `store` for `agents`, with fresh notifiers.
    pub fn new(store: Arc<dyn Backend>, agents: BTreeSet<AgentId>) -> Self {
        Self {
            store,
            agents,
            limiter: AuthLimiter::default(),
            wake: Arc::new(tokio::sync::Notify::new()),
            events: Arc::new(EventBus::default()),
            openai_compat: false,
            request_timeout: REQUEST_TIMEOUT,
            audit: None,
            webhooks: std::collections::BTreeMap::new(),
            delivery: DeliveryPolicy::default(),
            hooks: std::collections::BTreeMap::new(),
            host_policy: HostPolicy::default(),
            mcp: None,
            skills: None,
            process_metrics: None,
            governance: pincer_config::GovernanceConfig::default(),
            agents_dir: None,
            audit_source: None,
            config: None,
        }
    }
}

/// The authenticated caller, available to handlers: the token, with its scopes already capped
/// by its user's current role.
#[derive(Debug, Clone)]
pub struct Caller(pub TokenInfo);

impl Caller {
    /// The principal the caller acts as: the token's user.
    pub fn principal(&self) -> &str {
        &self.0.user
    }

    /// The user's role (authentication guarantees one).
    pub fn role(&self) -> pincer_types::Role {
        self.0.role.unwrap_or(pincer_types::Role::Member)
    }

    /// Whose tasks, sessions and approvals the caller sees: `None` for everyone's (operators
    /// and above), else only their own.
    pub fn owner_filter(&self) -> Option<&str> {
        (!self.role().sees_others()).then(|| self.principal())
    }

    /// How decisions and changes by this caller are recorded.
    pub fn by(&self) -> String {
        format!("user:{}", self.0.user)
    }
}

type Handler = MethodRouter<Arc<AppState>>;

/// Every route with its access and handler.
pub fn routes() -> Vec<(RouteDef, Handler)> {
    use axum::routing::{get, post};
    use handlers as h;
    let r = |method, path, access, summary| RouteDef {
        method,
        path,
        access,
        summary,
        body: None,
    };
    let with_body = |def: RouteDef, body: fn() -> serde_json::Value| RouteDef {
        body: Some(body),
        ..def
    };
    let read = Access::Scoped(Scope::TasksRead);
    let write = Access::Scoped(Scope::TasksWrite);
    vec![
        (
            r("GET", "/healthz", Access::Public, "Liveness"),
            get(h::healthz),
        ),
        (
            r("GET", "/readyz", read, "Readiness (store reachable)"),
            get(h::readyz),
        ),
        (
            r("GET", "/openapi.json", read, "This document"),
            get(h::openapi),
        ),
        (
            with_body(
                r(
                    "POST",
                    "/v1/tasks",
                    write,
                    "Submit a task (idempotent with a key)",
                ),
                h::create_task_schema,
            ),
            post(h::create_task),
        ),
        (
            r("GET", "/v1/tasks", read, "List tasks (?status=&limit=)"),
            get(h::list_tasks),
        ),
        (
            r(
                "GET",
                "/v1/tasks/{id}",
                read,
                "One task (?wait_secs= waits for an end or an approval)",
            ),
            get(h::get_task),
        ),
        (
            r("POST", "/v1/tasks/{id}/cancel", write, "Cancel a task"),
            post(h::cancel_task),
        ),
        (
            r(
                "GET",
                "/v1/approvals",
                read,
                "List approvals (?status=&limit=)",
            ),
            get(h::list_approvals),
        ),
        (
            with_body(
                r(
                    "POST",
                    "/v1/approvals/{id}/decision",
                    Access::Scoped(Scope::ApprovalsWrite),
                    "Approve or deny, once",
                ),
                h::decision_schema,
            ),
            post(h::decide_approval),
        ),
        (
            r(
                "GET",
                "/v1/usage",
                Access::Scoped(Scope::UsageRead),
                "Token use and cost (?by=agent|session|user|model&since=)",
            ),
            get(usage::usage),
        ),
        (
            r(
                "GET",
                "/v1/audit-events",
                Access::Scoped(Scope::AuditRead),
                "Audit events (?type=&after=&limit=)",
            ),
            get(h::audit_events),
        ),
        (
            r(
                "GET",
                "/v1/events",
                read,
                "Server-sent task and approval events (Last-Event-ID)",
            ),
            get(h::events),
        ),
        (
            r(
                "POST",
                "/v1/channels/{channel}/webhook",
                Access::ChannelSecret,
                "Webhook deliveries from a chat platform (secret header)",
            ),
            post(h::webhook),
        ),
        (
            with_body(
                r(
                    "POST",
                    "/v1/hooks/{name}",
                    Access::HookSecret,
                    "Webhook event for a configured hook (HMAC signature or bearer secret; event-id idempotency)",
                ),
                hooks::payload_schema,
            ),
            post(hooks::receive),
        ),
        (
            r(
                "GET",
                "/v1/jobs",
                Access::Scoped(Scope::JobsRead),
                "List scheduled jobs",
            ),
            get(jobs::list),
        ),
        (
            with_body(
                r(
                    "POST",
                    "/v1/jobs",
                    Access::Scoped(Scope::JobsWrite),
                    "Add a scheduled job",
                ),
                jobs::job_spec_schema,
            ),
            post(jobs::add),
        ),
        (
            r(
                "GET",
                "/v1/jobs/{name}",
                Access::Scoped(Scope::JobsRead),
                "One job with its recent runs",
            ),
            get(jobs::get),
        ),
        (
            r(
                "DELETE",
                "/v1/jobs/{name}",
                Access::Scoped(Scope::JobsWrite),
                "Remove a job (its runs' tasks stay)",
            ),
            axum::routing::delete(jobs::remove),
        ),
        (
            r(
                "GET",
                "/v1/jobs/{name}/runs",
                Access::Scoped(Scope::JobsRead),
                "A job's runs, newest first",
            ),
            get(jobs::runs),
        ),
        (
            r(
                "POST",
                "/v1/jobs/{name}/{action}",
                Access::Scoped(Scope::JobsWrite),
                "enable, disable or run (now) a job",
            ),
            post(jobs::act),
        ),
        (
            r(
                "GET",
                "/v1/pairings/{channel}",
                Access::Scoped(Scope::Admin),
                "Pending pairing requests of a channel",
            ),
            get(h::list_pairings),
        ),
        (
            r(
                "POST",
                "/v1/pairings/{channel}/{code}/approve",
                Access::Scoped(Scope::Admin),
                "Approve a pairing code",
            ),
            post(h::approve_pairing),
        ),
        (
            r(
                "GET",
                "/metrics",
                Access::Scoped(Scope::MetricsRead),
                "Prometheus metrics (text exposition 0.0.4)",
            ),
            get(metrics::metrics),
        ),
        (
            r(
                "GET",
                "/v1/skills",
                Access::Scoped(Scope::Admin),
                "Installed skills and their state",
            ),
            get(skills::list),
        ),
        (
            with_body(
                r(
                    "POST",
                    "/v1/skills/validate",
                    Access::Scoped(Scope::Admin),
                    "Scan a skill (a path or git URL, or uploaded files): verdict and findings, nothing installed",
                ),
                skills::source_schema,
            ),
            post(skills::validate),
        ),
        (
            with_body(
                r(
                    "POST",
                    "/v1/skills/install",
                    Access::Scoped(Scope::Admin),
                    "Scan and install a skill (pending approval); a blocked one is refused (422)",
                ),
                skills::source_schema,
            ),
            post(skills::install),
        ),
        (
            r(
                "GET",
                "/v1/skills/{name}",
                Access::Scoped(Scope::Admin),
                "One skill: state, hashes, manifest, findings",
            ),
            get(skills::show),
        ),
        (
            r(
                "DELETE",
                "/v1/skills/{name}",
                Access::Scoped(Scope::Admin),
                "Remove a skill (files and record)",
            ),
            axum::routing::delete(skills::remove),
        ),
        (
            with_body(
                r(
                    "POST",
                    "/v1/skills/{name}/approve",
                    Access::Scoped(Scope::Admin),
                    "Approve the skill's content as last scanned (exactly `sha256` when given)",
                ),
                skills::approve_schema,
            ),
            post(skills::approve),
        ),
        (
            r(
                "POST",
                "/v1/skills/{name}/{action}",
                Access::Scoped(Scope::Admin),
                "enable, disable, rescan or revoke a skill",
            ),
            post(skills::act),
        ),
        (
            r(
                "GET",
                "/v1/mcp/servers",
                Access::Scoped(Scope::Admin),
                "MCP servers and their state",
            ),
            get(mcp::list),
        ),
        (
            with_body(
                r(
                    "POST",
                    "/v1/mcp/servers",
                    Access::Scoped(Scope::Admin),
                    "Add an MCP server (disabled) to config.toml",
                ),
                mcp::add_schema,
            ),
            post(mcp::add),
        ),
        (
            r(
                "DELETE",
                "/v1/mcp/servers/{name}",
                Access::Scoped(Scope::Admin),
                "Remove an MCP server and its approval",
            ),
            axum::routing::delete(mcp::remove),
        ),
        (
            r(
                "GET",
                "/v1/mcp/servers/{name}/tools",
                Access::Scoped(Scope::Admin),
                "An MCP server's approved and last seen manifest, and the changes",
            ),
            get(mcp::tools),
        ),
        (
            r(
                "GET",
                "/v1/mcp/servers/{name}/logs",
                Access::Scoped(Scope::Admin),
                "An MCP server's captured stderr (?lines=)",
            ),
            get(mcp::logs),
        ),
        (
            with_body(
                r(
                    "POST",
                    "/v1/mcp/servers/{name}/approve",
                    Access::Scoped(Scope::Admin),
                    "Approve the manifest last seen (exactly `sha256` when given)",
                ),
                mcp::approve_schema,
            ),
            post(mcp::approve),
        ),
        (
            r(
                "POST",
                "/v1/mcp/servers/{name}/{action}",
                Access::Scoped(Scope::Admin),
                "discover (start, list tools, stop), enable or disable an MCP server",
            ),
            post(mcp::act),
        ),
        (
            r(
                "GET",
                "/v1/users",
                Access::Scoped(Scope::Admin),
                "Users, their roles, bypass and linked chat accounts",
            ),
            get(users::list),
        ),
        (
            with_body(
                r(
                    "POST",
                    "/v1/users",
                    Access::Scoped(Scope::Admin),
                    "Add a user (`name`, `role`)",
                ),
                users::add_schema,
            ),
            post(users::add),
        ),
        (
            r(
                "GET",
                "/v1/users/{name}",
                read,
                "One user (admins: anyone; others: themselves)",
            ),
            get(users::get),
        ),
        (
            with_body(
                r(
                    "POST",
                    "/v1/users/{name}/bypass-mode",
                    write,
                    "Switch a user's bypass on or off (themselves, or an admin); only while governance.bypass = \"allowed\"",
                ),
                users::bypass_schema,
            ),
            post(users::bypass),
        ),
        (
            with_body(
                r(
                    "POST",
                    "/v1/users/{name}/{action}",
                    Access::Scoped(Scope::Admin),
                    "role (`role`), disable, enable, link or unlink (`channel`, `sender`) a user",
                ),
                users::action_schema,
            ),
            post(users::act),
        ),
        (
            r(
                "GET",
                "/v1/emergency",
                Access::Scoped(Scope::Admin),
                "The emergency controls in force",
            ),
            get(users::emergency_state),
        ),
        (
            r(
                "POST",
                "/v1/emergency/{control}",
                Access::Scoped(Scope::Admin),
                "pause-mutating, resume, cancel-risky, rotate-credentials (answers the caller's new token) or disable-bypass",
            ),
            post(users::emergency),
        ),
        (
            with_body(
                r(
                    "POST",
                    "/v1/chat/completions",
                    write,
                    "OpenAI-compatible chat (off unless gateway.openai_compat); model = agent",
                ),
                openai::request_schema,
            ),
            post(openai::chat_completions),
        ),
        (
            r(
                "GET",
                "/v1/models",
                read,
                "OpenAI-compatible model list: the agents (off unless gateway.openai_compat)",
            ),
            get(openai::models),
        ),
    ]
}

/// The router: every declared route behind its access check, bounded bodies, JSON 404s.
pub fn router(state: Arc<AppState>) -> Router {
    router_with(state, Router::new())
}

/// The same router with `extra` routes (the web admin page) behind the same `Host`/`Origin`
/// check, body limit and fallback; `extra` does its own authentication.
pub fn router_with(state: Arc<AppState>, extra: Router<Arc<AppState>>) -> Router {
    let mut app = extra;
    for (def, handler) in routes() {
        let handler = if def.path == "/v1/chat/completions" {
            handler
        } else {
            handler.route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                deadline,
            ))
        };
        let handler = match def.access {
            Access::Public | Access::ChannelSecret | Access::HookSecret => handler,
            Access::Scoped(scope) => handler.route_layer(axum::middleware::from_fn_with_state(
                (state.clone(), scope),
                authorize,
            )),
        };
        app = app.route(def.path, handler);
    }
    app.fallback(|| async { ApiError::not_found("no such route") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            check_host,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Refuses foreign `Host` names and cross-origin browser requests, before anything else
/// ([`origin`]).
async fn check_host(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    match state.host_policy.check(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Bounds the time a request may take (see [`REQUEST_TIMEOUT`]).
async fn deadline(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(state.request_timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            "the request took too long",
        )
        .into_response(),
    }
}

/// Checks the bearer token and its scope; counts failures per client address.
async fn authorize(
    State((state, scope)): State<(Arc<AppState>, Scope)>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    // A valid token is never refused because of other clients' failures (all loopback clients
    // share one address): the limiter only turns further *failures* into 429.
    let ip = addr.ip();
    let failed = |e: ApiError| {
        if let Err(limited) = state.limiter.check(ip, Instant::now()) {
            return limited.into_response();
        }
        state.limiter.fail(ip, Instant::now());
        e.into_response()
    };
    let token = match auth::bearer(req.headers(), req.uri()) {
        Ok(t) => t.to_owned(),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => return failed(e),
        Err(e) => return e.into_response(),
    };
    let mut info = match state.store.authenticate(&token, chrono::Utc::now()).await {
        Ok(Some(info)) => info,
        Ok(None) => {
            return failed(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "unknown, revoked or expired token",
            ));
        }
        Err(pincer_store::TokenError::Store(e)) => return ApiError::store(&e).into_response(),
        Err(e) => return ApiError::internal(e).into_response(),
    };
    // A token may use only what its user's role allows now (D13).
    info.scopes = info.effective_scopes();
    if !scope.granted_by(&info.scopes) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "this token lacks the `{}` scope (or its user's role no longer allows it)",
                scope.as_str()
            ),
        )
        .into_response();
    }
    req.extensions_mut().insert(Caller(info));
    next.run(req).await
}
