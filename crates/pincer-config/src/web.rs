//! `[web]` (C6): limits of `http.fetch` and the `web.search` backend. Every request goes through
//! the one egress policy (`security.network`, `security.egress_allow`,
//! `security.egress_allow_private`), the search backend's included.
//!
//! ```toml
//! [web]
//! fetch_max_bytes = 5242880      # body bytes read; a longer body is cut (and the result says so)
//! fetch_timeout_secs = 20        # the whole request, redirects included
//! max_redirects = 5              # each one checked like the first URL
//!
//! [web.search]
//! backend = "searxng"            # or "brave"
//! url = "http://searx.lan:8080"  # SearXNG's base URL (default for brave: its public API)
//! # api_key_env = "BRAVE_API_KEY"  # brave: the variable holding the subscription token
//! max_results = 8
//! ```

use serde::{Deserialize, Serialize};

fn default_max_bytes() -> u64 {
    5 << 20
}
fn default_timeout() -> u64 {
    20
}
fn default_redirects() -> u32 {
    5
}

/// `[web]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Most body bytes `http.fetch` reads.
    #[serde(default = "default_max_bytes")]
    pub fetch_max_bytes: u64,
    /// Seconds one fetch may take, redirects included.
    #[serde(default = "default_timeout")]
    pub fetch_timeout_secs: u64,
    /// Redirects followed (each re-checked).
    #[serde(default = "default_redirects")]
    pub max_redirects: u32,
    /// The search backend (`web.search` exists only with one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchConfig>,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            fetch_max_bytes: default_max_bytes(),
            fetch_timeout_secs: default_timeout(),
            max_redirects: default_redirects(),
            search: None,
        }
    }
}

impl WebConfig {
    /// True when nothing differs from the defaults.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    pub(crate) fn errors(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        if !(1024..=(1 << 30)).contains(&self.fetch_max_bytes) {
            errs.push((
                "web.fetch_max_bytes".into(),
                "must be 1024..=1073741824".into(),
            ));
        }
        if !(1..=600).contains(&self.fetch_timeout_secs) {
            errs.push(("web.fetch_timeout_secs".into(), "must be 1..=600".into()));
        }
        if self.max_redirects > 20 {
            errs.push(("web.max_redirects".into(), "must be 0..=20".into()));
        }
        if let Some(s) = &self.search {
            if let Some(u) = &s.url
                && !(u.starts_with("https://") || u.starts_with("http://"))
            {
                errs.push((
                    "web.search.url".into(),
                    "must be an http:// or https:// URL".into(),
                ));
            }
            match s.backend {
                SearchBackend::Searxng if s.url.is_none() => errs.push((
                    "web.search.url".into(),
                    "SearXNG needs the base URL of your instance".into(),
                )),
                SearchBackend::Brave if s.api_key_env.is_none() => errs.push((
                    "web.search.api_key_env".into(),
                    "Brave Search needs the variable holding its subscription token".into(),
                )),
                _ => {}
            }
            if !(1..=50).contains(&s.max_results) {
                errs.push(("web.search.max_results".into(), "must be 1..=50".into()));
            }
        }
        errs
    }
}

fn default_results() -> u32 {
    8
}

/// Which search API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchBackend {
    /// A SearXNG instance's JSON API (`/search?format=json`; JSON output must be enabled in its
    /// `settings.yml`).
    Searxng,
    /// Brave Search's web search API.
    Brave,
}

/// `[web.search]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    /// The backend.
    pub backend: SearchBackend,
    /// Base URL (SearXNG: required; Brave: default `https://api.search.brave.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The variable holding the API key (Brave).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Results returned.
    #[serde(default = "default_results")]
    pub max_results: u32,
}
