//! The MCP hub of one Pincer process (issue 17): built from `[mcp.servers]` and the approvals in
//! the store, recording to the audit log and the store. The protocol, sandboxing and lifecycle
//! are `pincer-mcp`'s; this module decides what the hub may use — the configured sandbox after
//! a real probe (no probe, no stdio server), the `[exec]` limits, and the paths no server may
//! see.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::Utc;
use pincer_audit::AuditLog;
use pincer_config::{Config, PincerHome};
use pincer_mcp::hub::{ApprovedManifest, HubSettings, McpHub, RecordFuture, Recorder};
use pincer_mcp::manifest::Manifest;
use pincer_store::{Backend, McpRecord};
use serde_json::Value;

use crate::{Env, runtime, sandbox};

/// Audit log and store, as the hub's recorder.
#[derive(Debug)]
pub struct StoreRecorder {
    /// The audit log.
    pub audit: Arc<AuditLog>,
    /// The store (seen manifests).
    pub store: Arc<dyn Backend>,
}

impl Recorder for StoreRecorder {
    fn audit(&self, kind: &'static str, fields: Value) -> RecordFuture<'_> {
        Box::pin(runtime::record(&self.audit, kind, fields))
    }

    fn manifest_seen<'a>(&'a self, server: &'a str, manifest: &'a Manifest) -> RecordFuture<'a> {
        Box::pin(async move {
            let text = serde_json::to_string(manifest).unwrap_or_default();
            if let Err(e) = self
                .store
                .mcp_seen(server, &manifest.sha256(), &text, Utc::now())
                .await
            {
                eprintln!("WARNING: could not record the manifest of MCP server `{server}`: {e}");
            }
        })
    }
}

/// Paths no MCP server may be given: Pincer's own files.
pub fn protected(home: &PincerHome) -> Vec<PathBuf> {
    let db = home.state_db_path();
    vec![
        home.config_path(),
        home.last_good_path(),
        db.clone(),
        db.with_extension("db-wal"),
        db.with_extension("db-shm"),
        home.audit_dir(),
        home.secrets_dir(),
        home.skills_dir(),
        home.agents_dir(),
        home.mcp_dir(),
    ]
}

/// The approved manifest in `r`, when it is intact (its sha256 recomputes).
pub fn approved(r: &McpRecord) -> Option<ApprovedManifest> {
    let row = r.approved.as_ref()?;
    let manifest: Manifest = serde_json::from_str(&row.manifest).ok()?;
    if manifest.sha256() != row.sha256 {
        eprintln!(
            "WARNING: the approved manifest of MCP server `{}` does not match its recorded sha256; treating it as unapproved",
            r.server
        );
        return None;
    }
    Some(ApprovedManifest {
        sha256: row.sha256.clone(),
        manifest,
        changed: r.seen.as_ref().is_some_and(|s| s.sha256 != row.sha256),
    })
}

/// What the hub may use. The sandbox is probed for real when `probe` (a stdio server may run);
/// otherwise stdio servers cannot start.
pub async fn settings(home: &PincerHome, config: &Config, env: &Env, probe: bool) -> HubSettings {
    let dir = home.mcp_dir();
    let sandbox = if probe {
        sandbox_for(config, &dir).await
    } else {
        Err("no stdio MCP server is in use".to_owned())
    };
    let env = env.clone();
    HubSettings {
        sandbox,
        limits: sandbox::limits(config),
        state_dir: dir,
        protected: protected(home),
        network: config.security.network,
        lookup: Arc::new(move |name: &str| env.var(name)),
        proxy: None,
    }
}

/// The egress proxy factory for stdio servers with `network`: each gets an [`Egress`] with its
/// own allowlist (`network`, `allow_private`) and the `[web]` limits, auditing as
/// `mcp:<server>`.
///
/// [`Egress`]: pincer_web::egress::Egress
pub fn proxy_factory(config: &Config, audit: &Arc<AuditLog>) -> pincer_mcp::hub::ProxyFactory {
    let (network, web, audit) = (config.security.network, config.web.clone(), audit.clone());
    Arc::new(move |name: &str, c: &pincer_config::McpServerConfig| {
        let egress = pincer_web::egress::Egress::new(
            pincer_web::egress::EgressSettings {
                network,
                allow: c.network.clone(),
                allow_private: c.allow_private.clone(),
                max_bytes: web.fetch_max_bytes,
                timeout: std::time::Duration::from_secs(web.fetch_timeout_secs),
                max_redirects: web.max_redirects,
            },
            Some(audit.clone()),
        )
        .for_agent(&format!("mcp:{name}"));
        Arc::new(pincer_web::proxy::EgressProxy::new(Arc::new(egress)))
            as Arc<dyn pincer_sandbox::NetworkProxy>
    })
}

/// The configured sandbox, once a confined probe passed in `dir`.
async fn sandbox_for(
    config: &Config,
    dir: &std::path::Path,
) -> Result<Arc<dyn pincer_sandbox::Sandbox>, String> {
    let kind = sandbox::configured(config).ok_or_else(|| {
        "security.sandbox = \"none\": no sandbox to run MCP servers in".to_owned()
    })?;
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let sb = sandbox::provider(kind).map_err(|e| e.to_string())?;
    let p = pincer_sandbox::probe(&*sb, dir).await;
    if p.is_enforced() {
        Ok(sb)
    } else {
        Err(p.error.unwrap_or_else(|| "the sandbox probe failed".into()))
    }
}

/// The hub for `config`'s servers with the store's approvals; `None` without servers.
///
/// # Errors
/// When the store cannot be read.
pub async fn hub(
    home: &PincerHome,
    config: &Config,
    env: &Env,
    store: &Arc<dyn Backend>,
    audit: &Arc<AuditLog>,
) -> anyhow::Result<Option<Arc<McpHub>>> {
    if config.mcp.servers.is_empty() {
        return Ok(None);
    }
    let records = store.mcp_list().await?;
    let servers: Vec<_> = config
        .mcp
        .servers
        .iter()
        .map(|(name, c)| {
            let approved = records
                .iter()
                .find(|r| &r.server == name)
                .and_then(approved);
            (name.clone(), c.clone(), approved)
        })
        .collect();
    let needs_sandbox = servers
        .iter()
        .any(|(_, c, a)| c.enabled && c.command.is_some() && a.is_some());
    let mut settings = settings(home, config, env, needs_sandbox).await;
    settings.proxy = Some(proxy_factory(config, audit));
    if let (true, Err(why)) = (needs_sandbox, &settings.sandbox) {
        runtime::record(
            audit,
            "mcp.sandbox_unavailable",
            serde_json::json!({"reason": why, "effect": "stdio MCP servers are not started"}),
        )
        .await;
        eprintln!(
            "WARNING: stdio MCP servers cannot start: no sandbox can be enforced ({why}). Run `pincer sandbox check`."
        );
    }
    Ok(Some(Arc::new(McpHub::new(
        servers,
        settings,
        Arc::new(StoreRecorder {
            audit: audit.clone(),
            store: store.clone(),
        }),
    ))))
}
