//! The web admin page of `pincer serve` (E6): server-rendered HTML at `/ui`, on the same listener
//! and behind the same `Host`/`Origin` checks as the API.
//!
//! Security, in one place each:
//! - [`session`]: a login exchanges an API token for a server-side session (only the id's SHA-256
//!   is stored; the cookie is `HttpOnly; SameSite=Strict; Path=/ui`), failed logins rate-limited
//!   per address and audited; every request re-reads the session with its token and user, so the
//!   page has exactly the token's scopes as capped by the user's current role.
//! - every state-changing form carries the session's CSRF token, compared in constant time
//!   ([`session::Ui::check_csrf`]); `Origin` and `Host` are checked for every request by the
//!   gateway's `HostPolicy` before anything else.
//! - [`headers`]: a CSP without inline script or style, `frame-ancestors 'none'`, no caching.
//! - every value shown goes through maud, which escapes it.
//! - every action calls the same functions as the API (`pincer_gateway::governance::decide`, the
//!   store's owner filters), under the same roles and scopes.

mod agents;
mod channels;
mod chat;
mod pages;
mod schedules;
mod session;
mod skills;
mod transcript;
mod usage;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pincer_gateway::AppState;

/// The page's only stylesheet (embedded; no inline styles, so the CSP needs none).
const CSS: &str = include_str!("../assets/app.css");
/// The page's only script: live updates over `/ui/events` (embedded; no inline script).
const JS: &str = include_str!("../assets/live.js");

/// The content security policy of every page.
pub const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
                       style-src 'self'; img-src 'self'; form-action 'self'; \
                       frame-ancestors 'none'; base-uri 'none'";

/// Every `/ui` route (merged into the gateway's router by `pincer serve`).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/ui", get(pages::dashboard))
        .route("/ui/login", get(session::login_page).post(session::login))
        .route("/ui/login/{link}", get(session::login_link))
        .route("/ui/logout", post(session::logout))
        .route("/ui/agents", get(agents::page))
        .route("/ui/chat", get(chat::page).post(chat::say))
        .route("/ui/tasks", get(pages::tasks))
        .route("/ui/tasks/{id}", get(pages::task))
        .route("/ui/tasks/{id}/cancel", post(pages::cancel))
        .route("/ui/tasks/{id}/files/{name}", get(pages::file))
        .route("/ui/approvals", get(pages::approvals))
        .route("/ui/approvals/{id}", post(pages::decide))
        .route("/ui/audit", get(pages::audit))
        .route("/ui/audit/export", get(pages::audit_export))
        .route("/ui/audit/verify", get(pages::audit_verify))
        .route("/ui/channels", get(channels::list))
        .route("/ui/channels/pair", post(channels::pair))
        .route("/ui/channels/invite", post(channels::invite))
        .route("/ui/skills", get(skills::list).post(skills::act))
        .route("/ui/schedules", get(schedules::list))
        .route("/ui/schedules/act", post(schedules::act))
        .route("/ui/schedules/add", post(schedules::add))
        .route("/ui/users", get(pages::users).post(pages::change_user))
        .route(
            "/ui/emergency",
            get(pages::emergency).post(pages::emergency_act),
        )
        .route("/ui/static/app.css", get(css))
        .route("/ui/static/live.js", get(js))
        .route("/ui/events", get(events))
        .layer(axum::middleware::from_fn(headers))
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
}

/// `GET /ui/events`: the API's live event stream for the signed-in user (members: their own
/// tasks' events only).
async fn events(
    axum::extract::State(st): axum::extract::State<std::sync::Arc<AppState>>,
    ui: session::Ui,
    headers: axum::http::HeaderMap,
) -> Response {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    pincer_gateway::event_stream(st, ui.owner_filter().map(str::to_owned), last)
}

async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS)
}

/// The security headers of every `/ui` response.
async fn headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        // `no-referrer` would make browsers send `Origin: null` on our own forms (refused).
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    resp
}
