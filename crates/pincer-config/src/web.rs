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
//!
//! [web.browser]                  # the managed browser (C7): off unless enabled and granted
//! enabled = true                 # needs security.network = "allowlist" and a working sandbox
//! # executable = "/usr/lib/chromium/chromium"   # default: Debian's chromium package
//! timeout_secs = 30              # one operation (a navigation until its load event)
//! max_text_chars = 32768         # page text in a snapshot
//! idle_secs = 600                # an unused browser is closed after this long
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
    /// The managed browser.
    #[serde(default, skip_serializing_if = "BrowserConfig::is_default")]
    pub browser: BrowserConfig,
}

fn default_browser_timeout() -> u64 {
    30
}
fn default_max_text() -> usize {
    32 * 1024
}
fn default_idle() -> u64 {
    600
}

/// `[web.browser]`: the managed headless Chromium (C7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrowserConfig {
    /// The `browser.*` tools exist (still only for agents granted them, and only with the
    /// network on and a sandbox enforced).
    #[serde(default)]
    pub enabled: bool,
    /// The Chromium binary (default: Debian's `/usr/lib/chromium/chromium`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable: Option<std::path::PathBuf>,
    /// Seconds for one operation (a navigation until its load event).
    #[serde(default = "default_browser_timeout")]
    pub timeout_secs: u64,
    /// Most characters of page text in a snapshot.
    #[serde(default = "default_max_text")]
    pub max_text_chars: usize,
    /// Seconds after which an unused browser is closed.
    #[serde(default = "default_idle")]
    pub idle_secs: u64,
}

impl Default for BrowserConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            executable: None,
            timeout_secs: default_browser_timeout(),
            max_text_chars: default_max_text(),
            idle_secs: default_idle(),
        }
    }
}

impl BrowserConfig {
    /// True when nothing differs from the defaults.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            fetch_max_bytes: default_max_bytes(),
            fetch_timeout_secs: default_timeout(),
            max_redirects: default_redirects(),
            search: None,
            browser: BrowserConfig::default(),
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
        let b = &self.browser;
        if !(1..=600).contains(&b.timeout_secs) {
            errs.push(("web.browser.timeout_secs".into(), "must be 1..=600".into()));
        }
        if !(1024..=(1 << 20)).contains(&b.max_text_chars) {
            errs.push((
                "web.browser.max_text_chars".into(),
                "must be 1024..=1048576".into(),
            ));
        }
        if !(10..=86_400).contains(&b.idle_secs) {
            errs.push(("web.browser.idle_secs".into(), "must be 10..=86400".into()));
        }
        if let Some(p) = &b.executable
            && !p.is_absolute()
        {
            errs.push((
                "web.browser.executable".into(),
                "must be an absolute path".into(),
            ));
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
            if let Some(v) = &s.api_key_env
                && !crate::credential_ref_ok(v)
            {
                errs.push((
                    "web.search.api_key_env".into(),
                    crate::credential::CREDENTIAL_REF.into(),
                ));
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
