//! Which web tools an agent's registry gets (issue 18): `http.fetch` when the network is on
//! (`security.network = "allowlist"`), `web.search` when a backend is configured too. Off, they
//! are not offered at all (and policy would deny the `network` capability anyway). With the
//! network on, the agent's sandboxed commands also reach it, through the egress proxy.

use std::sync::Arc;
use std::time::Duration;

use pincer_audit::AuditLog;
use pincer_config::{Config, NetworkMode};
use pincer_tools::Tool;
use pincer_web::egress::{Egress, EgressSettings};
use pincer_web::fetch::HttpFetch;
use pincer_web::proxy::EgressProxy;
use pincer_web::search::{Backend, WebSearch};

use crate::Env;

/// The web tools, by name.
pub const WEB_TOOLS: [&str; 2] = ["http.fetch", "web.search"];

/// The egress client for `config`, recording to `audit`.
pub fn egress(config: &Config, audit: &Arc<AuditLog>) -> Arc<Egress> {
    Arc::new(Egress::new(settings(config), Some(audit.clone())))
}

fn settings(config: &Config) -> EgressSettings {
    EgressSettings {
        network: config.security.network,
        allow: config.security.egress_allow.clone(),
        allow_private: config.security.egress_allow_private.clone(),
        max_bytes: config.web.fetch_max_bytes,
        timeout: Duration::from_secs(config.web.fetch_timeout_secs),
        max_redirects: config.web.max_redirects,
    }
}

/// One agent's egress client (its audit records name the agent), shared by its web tools and
/// the proxy its sandboxed commands reach the network through; `None` while the network is off.
pub fn agent_egress(config: &Config, audit: &Arc<AuditLog>, agent: &str) -> Option<Arc<Egress>> {
    (config.security.network != NetworkMode::Off)
        .then(|| Arc::new(Egress::new(settings(config), Some(audit.clone())).for_agent(agent)))
}

/// The egress proxy for an agent's sandboxed commands (D4), when the network is on.
pub fn exec_proxy(egress: Option<&Arc<Egress>>) -> Option<Arc<dyn pincer_sandbox::NetworkProxy>> {
    egress.map(|e| Arc::new(EgressProxy::new(e.clone())) as Arc<dyn pincer_sandbox::NetworkProxy>)
}

/// The web tools for an agent with `egress` (none while the network is off).
///
/// # Errors
/// When a tool cannot be built (a misdefined name: caught by the tests).
pub fn tools(
    config: &Config,
    env: &Env,
    egress: Option<&Arc<Egress>>,
) -> anyhow::Result<Vec<Arc<dyn Tool>>> {
    let Some(egress) = egress.cloned() else {
        return Ok(Vec::new());
    };
    let mut out: Vec<Arc<dyn Tool>> = vec![Arc::new(HttpFetch::new(egress.clone())?)];
    if let Some(s) = &config.web.search {
        match s.api_key_env.as_ref().map(|var| (var, env.var(var))) {
            // Missing key: no web.search (agents that do not use it keep working), said loudly.
            Some((var, None)) => eprintln!(
                "WARNING: web.search is unavailable: environment variable {var} is not set (web.search.api_key_env)"
            ),
            Some((_, key)) => out.push(Arc::new(WebSearch::new(egress, Backend::new(s, key))?)),
            None => out.push(Arc::new(WebSearch::new(egress, Backend::new(s, None))?)),
        }
    }
    Ok(out)
}

/// Why an agent has no browser tools, or them.
#[derive(Debug)]
pub enum BrowserState {
    /// Not enabled, not granted, or the network is off.
    NotWanted,
    /// Wanted but unavailable here (no sandbox, no Chromium): said, never run unconfined.
    Unavailable(String),
    /// The tools.
    On(Vec<Arc<dyn Tool>>),
}

/// The browser tools for an agent (C7): `web.browser.enabled`, the network on, a browser tool
/// granted, an enforced sandbox (the browser runs inside it, like `shell.exec`) and Chromium
/// installed.
pub async fn browser_tools(
    config: &Config,
    egress: Option<&Arc<Egress>>,
    proxy: Option<Arc<dyn pincer_sandbox::NetworkProxy>>,
    probed: Option<Arc<dyn pincer_sandbox::Sandbox>>,
    granted: &std::collections::BTreeSet<pincer_types::ToolName>,
    agent_dir: &std::path::Path,
) -> BrowserState {
    use pincer_browser::tools::{BROWSER_TOOLS, BrowserScope, browser_limits, find_chromium};
    let b = &config.web.browser;
    let wanted = BROWSER_TOOLS
        .iter()
        .any(|t| granted.iter().any(|g| g.as_str() == *t));
    let (Some(egress), Some(proxy)) = (egress.filter(|_| b.enabled && wanted), proxy) else {
        return BrowserState::NotWanted;
    };
    let Some(kind) = crate::sandbox::configured(config) else {
        return BrowserState::Unavailable(
            "the browser runs only inside the sandbox, and security.sandbox is \"none\"".into(),
        );
    };
    let Some(exe) = find_chromium(b.executable.as_deref()) else {
        return BrowserState::Unavailable(match &b.executable {
            Some(p) => format!("web.browser.executable {} is not a file", p.display()),
            None => "Chromium is not installed (Debian/Ubuntu: apt-get install chromium)".into(),
        });
    };
    // The sandbox the agent's exec tools already probed, else probed here.
    let sb = match probed {
        Some(sb) => sb,
        None => {
            let sb = match crate::sandbox::provider(kind) {
                Ok(sb) => sb,
                Err(e) => return BrowserState::Unavailable(e.to_string()),
            };
            let p = pincer_sandbox::probe(&*sb, &std::env::temp_dir()).await;
            if !p.is_enforced() {
                return BrowserState::Unavailable(p.error.unwrap_or_default());
            }
            sb
        }
    };
    let limits = pincer_sandbox::Limits {
        memory_bytes: browser_limits().memory_bytes,
        ..crate::sandbox::limits(config)
    };
    let scope = BrowserScope::new(
        sb,
        proxy,
        egress.clone(),
        pincer_browser::BrowserSettings {
            executable: exe,
            timeout: Duration::from_secs(b.timeout_secs),
            max_text: b.max_text_chars,
            limits,
        },
        Duration::from_secs(b.idle_secs),
        agent_dir.to_path_buf(),
    );
    match pincer_browser::tools::tools(&scope) {
        Ok(t) => BrowserState::On(t),
        Err(e) => BrowserState::Unavailable(e.to_string()),
    }
}
