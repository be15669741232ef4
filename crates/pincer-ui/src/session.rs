//! Login, logout and the session every page runs under.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Form;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::html;
use pincer_gateway::AppState;
use pincer_store::UiSession;
use pincer_types::Scope;
use serde::Deserialize;
use serde_json::json;

use crate::pages::{Refused, layout_bare, page_error};

/// The session cookie.
pub(crate) const COOKIE: &str = "pincer_session";
/// How long a session lasts.
pub(crate) const SESSION_HOURS: i64 = 12;

/// `n` random bytes, hex.
fn random_hex(n: usize) -> Result<String, Refused> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|_| {
        Refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no randomness available".into(),
        )
    })?;
    Ok(hex::encode(bytes))
}

/// The session id the browser sent, if any.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A signed-in request: the live session.
#[derive(Debug, Clone)]
pub(crate) struct Ui {
    pub(crate) session: UiSession,
    pub(crate) id_hash: String,
}

impl Ui {
    /// Who acts, for the audit log and decisions.
    pub(crate) fn by(&self) -> String {
        format!("user:{}", self.session.user)
    }

    /// `None` for operators and above (everyone's work), else the user (their own).
    pub(crate) fn owner_filter(&self) -> Option<&str> {
        (!self.session.role.sees_others()).then_some(self.session.user.as_str())
    }

    /// Refuses a page the session's scopes do not cover.
    pub(crate) fn require(&self, scope: Scope) -> Result<(), Refused> {
        if scope.granted_by(&self.session.scopes) {
            Ok(())
        } else {
            Err(Refused(
                StatusCode::FORBIDDEN,
                format!(
                    "this page needs the `{}` scope, which your token or role does not give",
                    scope.as_str()
                ),
            ))
        }
    }

    /// Refuses a form without this session's CSRF token.
    pub(crate) fn check_csrf(&self, given: &str) -> Result<(), Refused> {
        if pincer_store::ct_eq(given.as_bytes(), self.session.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(Refused(
                StatusCode::FORBIDDEN,
                "the form's security token is missing or stale; reload the page and try again"
                    .into(),
            ))
        }
    }
}

impl FromRequestParts<Arc<AppState>> for Ui {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<AppState>) -> Result<Self, Response> {
        let to_login = || Redirect::to("/ui/login").into_response();
        let Some(id) = cookie(&parts.headers) else {
            return Err(to_login());
        };
        let id_hash = pincer_store::token_hash(&id);
        match st.store.ui_session(&id_hash, Utc::now()).await {
            Ok(Some(session)) => Ok(Self { session, id_hash }),
            Ok(None) => Err(to_login()),
            Err(e) => Err(page_error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("the store cannot be read: {e}"),
            )),
        }
    }
}

fn login_form(message: Option<&str>) -> axum::response::Html<String> {
    layout_bare(
        "Sign in",
        html! {
            h1 { "Pincer" }
            @if let Some(m) = message { p.error { (m) } }
            form method="post" action="/ui/login" {
                label for="token" { "API token" }
                input #token type="password" name="token" autocomplete="off" required;
                button type="submit" { "Sign in" }
            }
            p.hint { "Create a token with " code { "pincer tokens create --name me --scopes admin" } "." }
        },
    )
}

pub(crate) async fn login_page() -> axum::response::Html<String> {
    login_form(None)
}

#[derive(Debug, Deserialize)]
pub(crate) struct Login {
    #[serde(default)]
    token: String,
}

/// `POST /ui/login`: a valid token starts a session; failures count against the address like
/// failed API authentications (past the limit: 429) and are audited.
pub(crate) async fn login(
    State(st): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<Login>,
) -> Response {
    let now = std::time::Instant::now();
    if st.limiter.check(addr.ip(), now).is_err() {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            login_form(Some(
                "Too many failed sign-ins from this address; wait a minute.",
            )),
        )
            .into_response();
    }
    let info = match st.store.authenticate(form.token.trim(), Utc::now()).await {
        Ok(Some(info)) => info,
        Ok(None) | Err(_) => {
            st.limiter.fail(addr.ip(), now);
            let _ = pincer_gateway::governance::record(
                st.audit.as_ref(),
                "ui.login_failed",
                json!({"from": addr.ip().to_string()}),
            )
            .await;
            return (
                StatusCode::UNAUTHORIZED,
                login_form(Some("That token is unknown, revoked or expired.")),
            )
                .into_response();
        }
    };
    let from = Client {
        addr: addr.ip().to_string(),
        tls: st.host_policy.over_tls(&headers),
    };
    start_session(&st, &info.name, &info.user, &from, "token").await
}

/// Who is signing in: their address (audited) and whether their browser is on TLS (the cookie
/// is then `Secure`).
struct Client {
    addr: String,
    tls: bool,
}

/// Starts a session for the token named `token`; the response sets the cookie and goes to the
/// dashboard.
async fn start_session(
    st: &AppState,
    token: &str,
    user: &str,
    from: &Client,
    how: &str,
) -> Response {
    let (id, csrf) = match (random_hex(32), random_hex(16)) {
        (Ok(id), Ok(csrf)) => (id, csrf),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    let created = Utc::now();
    let expires = created + chrono::Duration::hours(SESSION_HOURS);
    if let Err(e) = st
        .store
        .create_ui_session(
            &pincer_store::token_hash(&id),
            token,
            &csrf,
            created,
            expires,
        )
        .await
    {
        return page_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string());
    }
    let _ = pincer_gateway::governance::record(
        st.audit.as_ref(),
        "ui.login",
        json!({"user": user, "token": token, "from": from.addr, "with": how, "tls": from.tls}),
    )
    .await;
    let cookie = format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/ui; Max-Age={}{}",
        SESSION_HOURS * 3600,
        if from.tls { "; Secure" } else { "" }
    );
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, "/ui".to_owned()),
        ],
    )
        .into_response()
}

/// `GET /ui/login/{link}`: a one-time link from `pincer ui login` — used once (the link's id is
/// replaced by a fresh session id, so the URL in a history or log is worthless after).
pub(crate) async fn login_link(
    State(st): State<Arc<AppState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::extract::Path(link): axum::extract::Path<String>,
) -> Response {
    let now = std::time::Instant::now();
    if st.limiter.check(addr.ip(), now).is_err() {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            login_form(Some(
                "Too many failed sign-ins from this address; wait a minute.",
            )),
        )
            .into_response();
    }
    let token = if link.len() == 64 && link.bytes().all(|b| b.is_ascii_hexdigit()) {
        st.store
            .take_ui_link(&pincer_store::token_hash(&link), Utc::now())
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    let Some(token) = token else {
        st.limiter.fail(addr.ip(), now);
        let _ = pincer_gateway::governance::record(
            st.audit.as_ref(),
            "ui.login_failed",
            json!({"from": addr.ip().to_string(), "with": "link"}),
        )
        .await;
        return (
            StatusCode::UNAUTHORIZED,
            login_form(Some(
                "That sign-in link is used, expired or wrong; run `pincer ui login` again.",
            )),
        )
            .into_response();
    };
    let user = st
        .store
        .tokens()
        .await
        .ok()
        .and_then(|all| all.into_iter().find(|t| t.name == token))
        .map(|t| t.user)
        .unwrap_or_default();
    let from = Client {
        addr: addr.ip().to_string(),
        tls: st.host_policy.over_tls(&headers),
    };
    start_session(&st, &token, &user, &from, "link").await
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    pub(crate) csrf: String,
}

/// `POST /ui/logout`: ends the session and clears the cookie.
pub(crate) async fn logout(
    State(st): State<Arc<AppState>>,
    ui: Ui,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Err(e) = ui.check_csrf(&form.csrf) {
        return e.into_response();
    }
    let _ = st.store.end_ui_session(&ui.id_hash, Utc::now()).await;
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/ui; Max-Age=0"),
            ),
            (header::LOCATION, "/ui/login".to_owned()),
        ],
    )
        .into_response()
}
