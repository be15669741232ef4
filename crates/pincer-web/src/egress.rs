//! The egress client: one request (and its redirects) under the policy.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use pincer_audit::AuditLog;
use pincer_config::NetworkMode;
use pincer_policy::egress::{CheckedUrl, EgressError, EgressPolicy};
use serde_json::json;
use tokio::time::Instant;

/// Why a request did not produce a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebError {
    /// The egress policy refused the URL or an address it resolved to.
    #[error("refused by the egress policy: {0}")]
    Refused(String),
    /// The time cap passed (connect, headers or body).
    #[error("timed out after {0}s")]
    Timeout(u64),
    /// More redirects than allowed.
    #[error("more than {0} redirects")]
    TooManyRedirects(u32),
    /// The request failed (connection, TLS, protocol).
    #[error("request failed: {0}")]
    Failed(String),
}

/// Limits and lists, from `[security]` and `[web]`.
#[derive(Debug, Clone)]
pub struct EgressSettings {
    /// `security.network`.
    pub network: NetworkMode,
    /// `security.egress_allow`.
    pub allow: Vec<String>,
    /// `security.egress_allow_private`.
    pub allow_private: Vec<String>,
    /// Most body bytes read.
    pub max_bytes: u64,
    /// The whole request, redirects included.
    pub timeout: Duration,
    /// Redirects followed.
    pub max_redirects: u32,
}

/// A request.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET` or `POST`.
    pub method: reqwest::Method,
    /// The URL.
    pub url: String,
    /// Headers (already filtered by the caller).
    pub headers: Vec<(String, String)>,
    /// Body (POST).
    pub body: Option<Vec<u8>>,
    /// Header values not to show anywhere (API keys): marked sensitive.
    pub secret_headers: Vec<(String, String)>,
}

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The URL that answered (after redirects).
    pub url: String,
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// Body, at most the byte cap.
    pub body: Vec<u8>,
    /// The body was longer than the cap.
    pub truncated: bool,
}

/// Most host names pinned at once (the table is cleared past it; a request racing the clear
/// fails to resolve and reports it, it never resolves anew).
const MAX_PINS: usize = 4096;

/// The client's only name resolution: the addresses [`Egress::send`] checked for a host just
/// before the request. It never asks DNS itself, so the connection goes exactly where the check
/// looked (no rebinding between check and connect).
#[derive(Debug, Default)]
struct Pins(std::sync::Mutex<std::collections::HashMap<String, Vec<SocketAddr>>>);

impl Pins {
    fn table(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Vec<SocketAddr>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn pin(&self, host: &str, addrs: Vec<SocketAddr>) {
        let mut t = self.table();
        if t.len() >= MAX_PINS {
            t.clear();
        }
        t.insert(host.to_owned(), addrs);
    }
}

impl reqwest::dns::Resolve for Pins {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let addrs = self.table().get(name.as_str()).cloned();
        Box::pin(async move {
            match addrs {
                Some(a) => Ok(Box::new(a.into_iter()) as reqwest::dns::Addrs),
                None => Err("the host was not checked by the egress policy".into()),
            }
        })
    }
}

/// Makes requests under the egress policy.
#[derive(Debug)]
pub struct Egress {
    settings: EgressSettings,
    audit: Option<Arc<AuditLog>>,
    /// The agent whose traffic this is, named in every audit record.
    agent: Option<String>,
    pins: Arc<Pins>,
    /// One client (TLS set-up and connection pool shared), resolving only through `pins`;
    /// built at the first request (building one loads the TLS roots: milliseconds).
    client: std::sync::OnceLock<Result<reqwest::Client, String>>,
}

impl Egress {
    /// An egress client recording to `audit`.
    pub fn new(settings: EgressSettings, audit: Option<Arc<AuditLog>>) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            settings,
            audit,
            agent: None,
            pins: Arc::new(Pins::default()),
            client: std::sync::OnceLock::new(),
        }
    }

    /// The same, naming `agent` in every audit record.
    #[must_use]
    pub fn for_agent(mut self, agent: &str) -> Self {
        self.agent = Some(agent.to_owned());
        self
    }

    fn client(&self) -> Result<&reqwest::Client, WebError> {
        self.client
            .get_or_init(|| {
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .connect_timeout(self.settings.timeout)
                    .dns_resolver(self.pins.clone())
                    .user_agent(concat!("pincer/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| WebError::Failed(e.clone()))
    }

    /// The policy in force.
    pub fn policy(&self) -> EgressPolicy<'_> {
        EgressPolicy {
            network: self.settings.network,
            allow: &self.settings.allow,
            allow_private: &self.settings.allow_private,
        }
    }

    fn record(&self, kind: &'static str, mut fields: serde_json::Value) {
        if let (Some(agent), Some(map)) = (&self.agent, fields.as_object_mut()) {
            map.insert("agent".into(), agent.clone().into());
        }
        if let Some(log) = &self.audit
            && let Err(e) = log.append_lazy(kind, fields)
        {
            eprintln!("WARNING: could not record {kind} in the audit log: {e}");
        }
    }

    fn refused(&self, url: &str, e: &EgressError) -> WebError {
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        self.record(
            "egress.refused",
            json!({"host": host, "reason": e.to_string()}),
        );
        WebError::Refused(e.to_string())
    }

    /// The whole check of one URL: the policy, the name resolved, every address checked.
    /// Refusals are audited (`egress.refused`).
    ///
    /// # Errors
    /// [`WebError::Refused`], or [`WebError::Failed`] when the name does not resolve.
    pub async fn check(&self, url: &str) -> Result<(CheckedUrl, Vec<SocketAddr>), WebError> {
        let checked = self
            .policy()
            .check(url)
            .map_err(|e| self.refused(url, &e))?;
        let addrs = resolve(&checked).await?;
        let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
        self.policy()
            .check_addrs(&checked, &ips)
            .map_err(|e| self.refused(url, &e))?;
        Ok((checked, addrs))
    }

    /// Records an audit event (lazily: durable with the next synced append).
    pub fn audit(&self, kind: &'static str, fields: serde_json::Value) {
        self.record(kind, fields);
    }

    /// Sends `req`, following redirects (each checked), within the caps.
    ///
    /// # Errors
    /// [`WebError`]; every refusal is audited as `egress.refused`.
    pub async fn send(&self, req: Request) -> Result<Response, WebError> {
        let secs = self.settings.timeout.as_secs().max(1);
        let deadline = Instant::now() + self.settings.timeout;
        let mut url = req.url.clone();
        let mut method = req.method.clone();
        let mut body = req.body.clone();
        for _ in 0..=self.settings.max_redirects {
            let (checked, addrs) = tokio::time::timeout_at(deadline, self.check(&url))
                .await
                .map_err(|_| WebError::Timeout(secs))??;
            let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
            if checked.host.parse::<IpAddr>().is_err() {
                // Keyed by the name exactly as the client will ask for it.
                let name = checked.url.host_str().unwrap_or(&checked.host);
                self.pins.pin(name, addrs.clone());
            }
            let client = self.client()?;
            let mut rb = client.request(method.clone(), checked.url.clone());
            for (k, v) in &req.headers {
                rb = rb.header(k, v);
            }
            for (k, v) in &req.secret_headers {
                let mut value = reqwest::header::HeaderValue::from_str(v)
                    .map_err(|_| WebError::Failed(format!("header `{k}` has an invalid value")))?;
                value.set_sensitive(true);
                rb = rb.header(k, value);
            }
            if let Some(b) = &body {
                rb = rb.body(b.clone());
            }
            let resp = tokio::time::timeout_at(deadline, rb.send())
                .await
                .map_err(|_| self.timed_out(&checked, secs))?
                .map_err(|e| WebError::Failed(without_url(&e)))?;
            let status = resp.status();
            let fields = |bytes: usize, truncated: bool| {
                json!({"host": checked.host, "port": checked.port, "address": ips.first().map(ToString::to_string),
                       "method": method.as_str(), "status": status.as_u16(), "bytes": bytes,
                       "truncated": truncated, "private_named": checked.private_named})
            };
            if status.is_redirection()
                && let Some(loc) = resp.headers().get(reqwest::header::LOCATION)
            {
                self.record("egress.request", fields(0, false));
                let loc = loc.to_str().map_err(|_| {
                    WebError::Failed("a redirect with an unreadable Location".into())
                })?;
                url = checked
                    .url
                    .join(loc)
                    .map_err(|_| WebError::Failed("a redirect to an invalid URL".into()))?
                    .to_string();
                // As browsers do: 303 always, and 301/302 after a POST, continue with a GET.
                if status == reqwest::StatusCode::SEE_OTHER
                    || (method == reqwest::Method::POST && status.as_u16() <= 302)
                {
                    method = reqwest::Method::GET;
                    body = None;
                }
                continue;
            }
            let content_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let final_url = checked.url.to_string();
            let (bytes, truncated) =
                tokio::time::timeout_at(deadline, read_capped(resp, self.settings.max_bytes))
                    .await
                    .map_err(|_| self.timed_out(&checked, secs))??;
            self.record("egress.request", fields(bytes.len(), truncated));
            return Ok(Response {
                url: final_url,
                status: status.as_u16(),
                content_type,
                body: bytes,
                truncated,
            });
        }
        Err(WebError::TooManyRedirects(self.settings.max_redirects))
    }

    fn timed_out(&self, checked: &CheckedUrl, secs: u64) -> WebError {
        self.record(
            "egress.timeout",
            json!({"host": checked.host, "port": checked.port, "secs": secs}),
        );
        WebError::Timeout(secs)
    }
}

async fn resolve(checked: &CheckedUrl) -> Result<Vec<SocketAddr>, WebError> {
    if let Ok(ip) = checked.host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, checked.port)]);
    }
    Ok(
        tokio::net::lookup_host((checked.host.as_str(), checked.port))
            .await
            .map_err(|e| WebError::Failed(format!("resolving {}: {e}", checked.host)))?
            .collect(),
    )
}

/// Reads at most `max` bytes of the body; says whether there was more.
async fn read_capped(mut resp: reqwest::Response, max: u64) -> Result<(Vec<u8>, bool), WebError> {
    let cap = usize::try_from(max).unwrap_or(usize::MAX);
    let mut out = Vec::with_capacity(cap.min(64 * 1024));
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                let room = cap - out.len();
                if c.len() > room {
                    out.extend_from_slice(&c[..room]);
                    return Ok((out, true));
                }
                out.extend_from_slice(&c);
            }
            Ok(None) => return Ok((out, false)),
            Err(e) => return Err(WebError::Failed(without_url(&e))),
        }
    }
}

/// A reqwest error without its URL (which may carry a token in the query).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "<url>");
    }
    s
}
