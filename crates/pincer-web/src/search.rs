//! `web.search` (C6): a query to the configured backend — a SearXNG instance's JSON API or Brave
//! Search's web API — through the same egress policy as `http.fetch`; title, URL and snippet of
//! each result. The backend's key comes from an environment variable, is sent as a sensitive
//! header and is never recorded.

use std::sync::Arc;

use pincer_config::{SearchBackend, SearchConfig};
use pincer_policy::Approved;
use pincer_tools::{Tool, ToolContext, ToolError, ToolFuture, ToolOutput, ToolSpec, parse_args};
use pincer_types::{Action, Capability, RiskTier};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::egress::{Egress, Request, WebError};

/// Longest query.
const MAX_QUERY: usize = 400;
/// Longest snippet kept per result.
const MAX_SNIPPET: usize = 500;

/// `web.search` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// What to search for.
    query: String,
    /// Results wanted (at most the configured maximum).
    #[serde(default)]
    count: Option<u32>,
}

/// A backend, ready to call.
#[derive(Debug)]
pub struct Backend {
    kind: SearchBackend,
    base: String,
    key: Option<String>,
    max_results: u32,
}

impl Backend {
    /// From `[web.search]`, with the key already read from its variable.
    pub fn new(c: &SearchConfig, key: Option<String>) -> Self {
        let base = c.url.clone().unwrap_or_else(|| match c.backend {
            SearchBackend::Brave => "https://api.search.brave.com".into(),
            SearchBackend::Searxng => String::new(),
        });
        Self {
            kind: c.backend,
            base: base.trim_end_matches('/').to_owned(),
            key,
            max_results: c.max_results,
        }
    }

    fn request(&self, query: &str, count: u32) -> Request {
        let mut url = match self.kind {
            SearchBackend::Searxng => format!("{}/search", self.base),
            SearchBackend::Brave => format!("{}/res/v1/web/search", self.base),
        };
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("q", query);
        match self.kind {
            SearchBackend::Searxng => {
                q.append_pair("format", "json");
            }
            SearchBackend::Brave => {
                q.append_pair("count", &count.to_string());
            }
        }
        url.push('?');
        url.push_str(&q.finish());
        let secret_headers = match (self.kind, &self.key) {
            (SearchBackend::Brave, Some(k)) => vec![("X-Subscription-Token".into(), k.clone())],
            _ => Vec::new(),
        };
        Request {
            method: reqwest::Method::GET,
            url,
            headers: vec![("Accept".into(), "application/json".into())],
            body: None,
            secret_headers,
        }
    }

    /// Title, URL and snippet of each result in a backend's answer.
    ///
    /// # Errors
    /// A message when the answer is not the backend's JSON.
    pub fn parse(&self, body: &[u8], count: u32) -> Result<Vec<Value>, String> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| format!("the search backend did not answer JSON ({e})"))?;
        let (items, snippet) = match self.kind {
            SearchBackend::Searxng => (v.get("results"), "content"),
            SearchBackend::Brave => (v.get("web").and_then(|w| w.get("results")), "description"),
        };
        let Some(Value::Array(items)) = items else {
            return Ok(Vec::new());
        };
        Ok(items
            .iter()
            .filter_map(|r| {
                let url = r.get("url")?.as_str()?;
                let title = r.get("title").and_then(Value::as_str).unwrap_or("");
                let s = r.get(snippet).and_then(Value::as_str).unwrap_or("");
                Some(json!({"title": title, "url": url,
                            "snippet": s.chars().take(MAX_SNIPPET).collect::<String>()}))
            })
            .take(count as usize)
            .collect())
    }
}

/// The `web.search` tool.
#[derive(Debug)]
pub struct WebSearch {
    spec: ToolSpec,
    egress: Arc<Egress>,
    backend: Backend,
}

impl WebSearch {
    /// `web.search` through `backend`.
    ///
    /// # Errors
    /// Never in practice (the name is a literal).
    pub fn new(egress: Arc<Egress>, backend: Backend) -> Result<Self, pincer_types::IdError> {
        Ok(Self {
            spec: ToolSpec::for_args::<SearchArgs>(
                "web.search",
                "Searches the web; returns title, URL and snippet of each result (read pages with http.fetch).",
                Capability::Network,
                RiskTier::L1Mutating,
            )?,
            egress,
            backend,
        })
    }
}

impl Tool for WebSearch {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn plan(&self, _ctx: &ToolContext, args: &Value) -> Result<Action, ToolError> {
        let a: SearchArgs = parse_args("web.search", args)?;
        let query = a.query.trim();
        if query.is_empty() || query.len() > MAX_QUERY {
            return Err(ToolError::InvalidArguments(
                "web.search: `query` must be 1–400 characters".into(),
            ));
        }
        let count = a
            .count
            .unwrap_or(self.backend.max_results)
            .clamp(1, self.backend.max_results);
        Ok(self.spec.action(
            RiskTier::L1Mutating,
            json!({"query": query, "count": count}),
        ))
    }

    fn run<'a>(&'a self, _ctx: &'a ToolContext, action: Approved<Action>) -> ToolFuture<'a> {
        Box::pin(async move {
            let d = &action.action().detail;
            let query = d["query"].as_str().unwrap_or_default();
            let count = d["count"]
                .as_u64()
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or(1);
            let resp = self
                .egress
                .send(self.backend.request(query, count))
                .await
                .map_err(|e| match e {
                    WebError::Refused(m) => ToolError::Forbidden(format!("web.search: {m}")),
                    other => ToolError::Failed(format!("web.search: {other}")),
                })?;
            if resp.status != 200 {
                return Err(ToolError::Failed(format!(
                    "web.search: the search backend answered HTTP {}",
                    resp.status
                )));
            }
            let results = self
                .backend
                .parse(&resp.body, count)
                .map_err(|m| ToolError::Failed(format!("web.search: {m}")))?;
            Ok(ToolOutput {
                content: json!({"query": query, "results": results}).to_string(),
            })
        })
    }
}
