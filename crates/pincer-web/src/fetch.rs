//! `http.fetch` (C6): GET a URL (L1), or POST a body (L2), through the egress policy; the answer
//! as readable Markdown, text, or a description of a binary body. Hop-by-hop and credential
//! headers cannot be set by the model. The result is labelled untrusted like all tool output.

use std::collections::BTreeMap;
use std::sync::Arc;

use pincer_policy::Approved;
use pincer_tools::{Tool, ToolContext, ToolError, ToolFuture, ToolOutput, ToolSpec, parse_args};
use pincer_types::{Action, ArgRole, Capability, RiskTier, SinkArg, SinkKind};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::egress::{Egress, Request, WebError};
use crate::extract;

/// Most characters of page text returned (the run caps tool results at 64 KiB anyway).
const MAX_TEXT: usize = 48 * 1024;
/// Largest request body.
const MAX_BODY: usize = 256 * 1024;
/// Headers the model may not set: hop-by-hop, framing, and credentials.
const FORBIDDEN: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "cookie2",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "expect",
    "x-api-key",
    "x-subscription-token",
];

/// GET or POST.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// Read a page (L1).
    #[default]
    Get,
    /// Send `body` (L2: it can change things elsewhere, and carries data out).
    Post,
}

/// `http.fetch` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchArgs {
    /// An http:// or https:// URL on an allowed host.
    url: String,
    /// GET (default) or POST.
    #[serde(default)]
    method: Method,
    /// Extra request headers (no credentials or hop-by-hop headers).
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// The POST body.
    #[serde(default)]
    body: Option<String>,
    /// Return HTML as is instead of readable Markdown.
    #[serde(default)]
    raw: bool,
}

/// The `http.fetch` tool.
#[derive(Debug)]
pub struct HttpFetch {
    spec: ToolSpec,
    egress: Arc<Egress>,
}

impl HttpFetch {
    /// `http.fetch` over `egress`.
    ///
    /// # Errors
    /// Never in practice (the name is a literal).
    pub fn new(egress: Arc<Egress>) -> Result<Self, pincer_types::IdError> {
        Ok(Self {
            spec: ToolSpec::for_args::<FetchArgs>(
                "http.fetch",
                "Fetches a web page or API (allowed hosts only) and returns it as readable Markdown (HTML) or text; binary content is described, not shown. POST needs approval.",
                Capability::Network,
                RiskTier::L1Mutating,
            )?,
            egress,
        })
    }
}

impl Tool for HttpFetch {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn plan(&self, _ctx: &ToolContext, args: &Value) -> Result<Action, ToolError> {
        let a: FetchArgs = parse_args("http.fetch", args)?;
        let bad = |m: String| Err(ToolError::InvalidArguments(format!("http.fetch: {m}")));
        // Refused up front, as a policy denial, so no approval is ever asked for a URL that
        // could not be fetched anyway.
        let checked = self
            .egress
            .policy()
            .check(&a.url)
            .map_err(|e| ToolError::Forbidden(format!("http.fetch: {e}")))?;
        for k in a.headers.keys() {
            let lower = k.to_ascii_lowercase();
            if FORBIDDEN.contains(&lower.as_str())
                || lower.starts_with("proxy-")
                || lower.starts_with("sec-")
            {
                return bad(format!("the header `{k}` cannot be set"));
            }
            if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
                return bad(format!("`{k}` is not a header name"));
            }
        }
        if a.headers.values().any(|v| v.contains(['\r', '\n', '\0'])) {
            return bad("header values cannot contain line breaks".into());
        }
        let tier = match (a.method, &a.body) {
            (Method::Get, Some(_)) => return bad("a GET has no body (use method POST)".into()),
            (Method::Post, Some(b)) if b.len() > MAX_BODY => {
                return bad("the body is over 256 KiB".into());
            }
            (Method::Get, None) => RiskTier::L1Mutating,
            (Method::Post, _) => RiskTier::L2Destructive,
        };
        // D9: an egress sink — the host must come from trusted content in a tainted turn, and
        // so must a body sent to it.
        let host = checked.host_port();
        let mut sink = vec![SinkArg::new("host", ArgRole::Host, host)];
        if let Some(b) = &a.body {
            sink.push(SinkArg::new("body", ArgRole::Text, b.clone()));
        }
        // The body goes into the action (so an approval binds to exactly what is sent).
        Ok(self
            .spec
            .action(
                tier,
                json!({"url": checked.url.as_str(), "host": checked.host, "method": a.method,
                       "headers": a.headers, "body": a.body, "raw": a.raw,
                       "body_sha256": a.body.as_ref().map(|b| hex::encode(Sha256::digest(b.as_bytes())))}),
            )
            .with_sink(SinkKind::Egress, sink))
    }

    fn run<'a>(&'a self, _ctx: &'a ToolContext, action: Approved<Action>) -> ToolFuture<'a> {
        Box::pin(async move {
            let d = &action.action().detail;
            let method: Method = serde_json::from_value(d["method"].clone())
                .map_err(|e| ToolError::Internal(e.to_string()))?;
            let headers: BTreeMap<String, String> =
                serde_json::from_value(d["headers"].clone()).unwrap_or_default();
            let url = d["url"].as_str().unwrap_or_default().to_owned();
            let resp = self
                .egress
                .send(Request {
                    method: match method {
                        Method::Get => reqwest::Method::GET,
                        Method::Post => reqwest::Method::POST,
                    },
                    url,
                    headers: headers.into_iter().collect(),
                    body: d["body"].as_str().map(|b| b.as_bytes().to_vec()),
                    secret_headers: Vec::new(),
                })
                .await
                .map_err(|e| match e {
                    WebError::Refused(m) => ToolError::Forbidden(format!("http.fetch: {m}")),
                    other => ToolError::Failed(format!("http.fetch: {other}")),
                })?;
            let raw = d["raw"].as_bool() == Some(true);
            let (content_type, body, url) =
                (resp.content_type.clone(), resp.body, resp.url.clone());
            let bytes = body.len();
            // Parsing is CPU work: off the async workers.
            let e = tokio::task::spawn_blocking(move || {
                extract::extract(content_type.as_deref(), &body, &url, raw)
            })
            .await
            .map_err(|e| ToolError::Internal(format!("http.fetch: extraction failed: {e}")))?;
            let mut text = e.text;
            let mut cut = false;
            if text.len() > MAX_TEXT {
                let mut end = MAX_TEXT;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
                cut = true;
            }
            Ok(ToolOutput {
                content: json!({"url": resp.url, "status": resp.status,
                                "content_type": resp.content_type, "as": e.kind.as_str(),
                                "title": e.title, "bytes": bytes,
                                "truncated": resp.truncated || cut, "content": text})
                .to_string(),
            })
        })
    }
}
