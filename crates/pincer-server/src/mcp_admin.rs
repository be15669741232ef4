//! The MCP operations behind `pincer mcp` and `/v1/mcp/servers…` (one implementation of
//! [`McpAdmin`]): config edits through `pincer-config` (validated, atomic, audited), approvals
//! compare-and-set in the store, discover through a one-server hub. The config is read from disk
//! at each call, so the API sees what the CLI wrote; a running `pincer serve` applies approvals
//! and enable/disable to its agents at its next start (a withdrawal acts at once).

use std::sync::Arc;

use chrono::Utc;
use pincer_audit::AuditLog;
use pincer_config::{Config, McpServerConfig, PincerHome, parse_and_validate, save};
use pincer_gateway::{McpAdmin, McpAdminError, McpResult};
use pincer_mcp::hub::{McpHub, diff};
use pincer_mcp::manifest::{Manifest, tier_for};
use pincer_store::Backend;
use serde_json::{Value, json};

use crate::{Env, runtime};

type Res<T> = Result<T, McpAdminError>;

fn internal(e: impl std::fmt::Display) -> McpAdminError {
    McpAdminError::Internal(e.to_string())
}

/// The MCP operations for one home.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The home.
    pub home: PincerHome,
    /// The process environment.
    pub env: Env,
    /// The store (approvals).
    pub store: Arc<dyn Backend>,
    /// The audit log.
    pub audit: Arc<AuditLog>,
}

/// A server's state in words, from the sha256 approved, the one last seen, and `enabled`.
pub fn status(approved: Option<&str>, seen: Option<&str>, enabled: bool) -> &'static str {
    match (approved, seen, enabled) {
        (None, _, _) => "not approved",
        (Some(a), Some(s), _) if a != s => "manifest changed: tools withdrawn",
        (Some(_), _, false) => "approved, disabled",
        (Some(_), _, true) => "approved, enabled",
    }
}

/// Every tool with the name, tier and schemas an operator approves.
pub fn manifest_rows(name: &str, m: &Manifest, c: &McpServerConfig) -> Vec<Value> {
    let locals = m.local_names(name);
    m.tools
        .iter()
        .map(|t| {
            let local = locals
                .iter()
                .find(|(_, d)| d.name == t.name)
                .map(|(n, _)| n.to_string());
            json!({"tool": t.name, "as": local, "tier": tier_for(&t.name, &c.tiers),
                   "description": t.description, "input_schema": t.input_schema,
                   "output_schema": t.output_schema, "annotations": t.annotations})
        })
        .collect()
}

impl Admin {
    fn config(&self) -> Res<Config> {
        pincer_config::load(&self.home)
            .map(|l| l.config)
            .map_err(|e| McpAdminError::Invalid(e.to_string()))
    }

    fn server(&self, config: &Config, name: &str) -> Res<McpServerConfig> {
        config.mcp.servers.get(name).cloned().ok_or_else(|| {
            McpAdminError::NotFound(format!("no MCP server `{name}` in config (pincer mcp add)"))
        })
    }

    /// Applies `change` to config.toml (which must be valid first), saves and audits it.
    fn edit(
        &self,
        key: &str,
        by: &str,
        change: impl FnOnce(
            &std::path::Path,
            &str,
        ) -> Result<Option<String>, pincer_config::ConfigError>,
    ) -> Res<Config> {
        let path = self.home.config_path();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| McpAdminError::Invalid(format!("{}: {e}", path.display())))?;
        parse_and_validate(&path, &text).map_err(|e| {
            McpAdminError::Invalid(format!(
                "{e}\nconfig.toml must be valid before it can be changed"
            ))
        })?;
        let updated = change(&path, &text)
            .map_err(|e| McpAdminError::Invalid(e.to_string()))?
            .ok_or_else(|| {
                McpAdminError::NotFound(format!("`{key}` is not in {}", path.display()))
            })?;
        let saved =
            save(&self.home, &updated).map_err(|e| McpAdminError::Invalid(e.to_string()))?;
        runtime::audit_config(
            &self.home,
            &saved,
            &self.env,
            "config.set",
            json!({"key": key, "file": path, "by": by}),
        );
        Ok(saved)
    }

    async fn list_(&self) -> Res<Value> {
        let config = self.config()?;
        let records = self.store.mcp_list().await.map_err(internal)?;
        let rows: Vec<Value> = config
            .mcp
            .servers
            .iter()
            .map(|(name, c)| {
                let r = records.iter().find(|r| &r.server == name);
                let approved = r
                    .and_then(|r| r.approved.as_ref())
                    .map(|a| a.sha256.clone());
                let seen = r.and_then(|r| r.seen.as_ref()).map(|a| a.sha256.clone());
                let status = status(approved.as_deref(), seen.as_deref(), c.enabled);
                json!({"server": name, "transport": if c.url.is_some() { "http" } else { "stdio" },
                       "enabled": c.enabled, "approved_sha256": approved, "seen_sha256": seen,
                       "status": status})
            })
            .collect();
        Ok(Value::Array(rows))
    }

    fn add_(&self, name: &str, config: Value, by: &str) -> Res<Value> {
        if let Some(m) = pincer_config::server_name_error(name) {
            return Err(McpAdminError::Invalid(format!("`{name}`: {m}")));
        }
        if self.config()?.mcp.servers.contains_key(name) {
            return Err(McpAdminError::Conflict(format!(
                "an MCP server `{name}` already exists"
            )));
        }
        let server: McpServerConfig = serde_json::from_value(config)
            .map_err(|e| McpAdminError::Invalid(format!("mcp.servers.{name}: {e}")))?;
        let inline = toml::Value::try_from(&server)
            .map_err(internal)?
            .to_string();
        let key = format!("mcp.servers.{name}");
        self.edit(&key, by, |path, text| {
            pincer_config::set_table(path, text, &key, &inline).map(Some)
        })?;
        Ok(json!({"server": name, "enabled": false,
                  "next": format!("discover, then approve and enable `{name}`")}))
    }

    async fn discover_(&self, name: &str) -> Res<Value> {
        let config = self.config()?;
        let c = self.server(&config, name)?;
        let mut settings =
            crate::mcp::settings(&self.home, &config, &self.env, c.command.is_some()).await;
        settings.proxy = Some(crate::mcp::proxy_factory(&config, &self.audit));
        let hub = McpHub::new(
            [(name.to_owned(), c.clone(), None)],
            settings,
            Arc::new(crate::mcp::StoreRecorder {
                audit: self.audit.clone(),
                store: self.store.clone(),
            }),
        );
        let server = hub
            .get(name)
            .ok_or_else(|| McpAdminError::NotFound(format!("no server `{name}`")))?;
        let (info, manifest) = server
            .discover()
            .await
            .map_err(|e| McpAdminError::Server(e.to_string()))?;
        Ok(json!({
            "server": name, "sha256": manifest.sha256(), "server_name": info.name,
            "server_version": info.version, "protocol": info.protocol_version,
            "tools": manifest_rows(name, &manifest, &c)}))
    }

    async fn approve_(&self, name: &str, sha256: Option<&str>, by: &str) -> Res<Value> {
        let config = self.config()?;
        let c = self.server(&config, name)?;
        let seen = self
            .store
            .mcp_get(name)
            .await
            .map_err(internal)?
            .and_then(|r| r.seen)
            .ok_or_else(|| {
                McpAdminError::Invalid(format!("nothing to approve: discover `{name}` first"))
            })?;
        if let Some(want) = sha256
            && want != seen.sha256
        {
            return Err(McpAdminError::Conflict(format!(
                "the manifest of `{name}` is now {}, not {want}: look at it again (tools)",
                seen.sha256
            )));
        }
        if !self
            .store
            .mcp_approve(name, &seen.sha256, by, Utc::now())
            .await
            .map_err(internal)?
        {
            return Err(McpAdminError::Conflict(format!(
                "the manifest of `{name}` changed while approving; look at it again (tools)"
            )));
        }
        let tools = serde_json::from_str::<Manifest>(&seen.manifest)
            .map(|m| m.tools.len())
            .unwrap_or(0);
        runtime::record(
            &self.audit,
            "mcp.approved",
            json!({"server": name, "sha256": seen.sha256, "tools": tools, "by": by}),
        )
        .await;
        Ok(json!({"server": name, "sha256": seen.sha256, "tools": tools, "enabled": c.enabled}))
    }

    async fn set_enabled_(&self, name: &str, on: bool, by: &str) -> Res<Value> {
        self.server(&self.config()?, name)?;
        let key = format!("mcp.servers.{name}.enabled");
        self.edit(&key, by, |path, text| {
            pincer_config::set_value(path, text, &key, if on { "true" } else { "false" }).map(Some)
        })?;
        let approved = self
            .store
            .mcp_get(name)
            .await
            .map_err(internal)?
            .and_then(|r| r.approved)
            .is_some();
        Ok(json!({"server": name, "enabled": on, "approved": approved}))
    }

    async fn tools_(&self, name: &str) -> Res<Value> {
        let config = self.config()?;
        let c = self.server(&config, name)?;
        let record = self.store.mcp_get(name).await.map_err(internal)?;
        let parse = |row: Option<&pincer_store::McpManifestRow>| {
            row.and_then(|r| serde_json::from_str::<Manifest>(&r.manifest).ok())
        };
        let approved_row = record.as_ref().and_then(|r| r.approved.as_ref());
        let seen_row = record.as_ref().and_then(|r| r.seen.as_ref());
        let approved = parse(approved_row);
        let seen = parse(seen_row);
        let changes = match (&approved, &seen) {
            (Some(a), Some(s)) => diff(a, s),
            _ => Value::Null,
        };
        Ok(json!({
            "server": name, "enabled": c.enabled,
            "approved_sha256": approved_row.map(|r| &r.sha256),
            "seen_sha256": seen_row.map(|r| &r.sha256), "changes": changes,
            "approved": approved.as_ref().map(|m| manifest_rows(name, m, &c)),
            "seen": seen.as_ref().map(|m| manifest_rows(name, m, &c))}))
    }

    fn logs_(&self, name: &str, lines: usize) -> Res<Value> {
        if pincer_config::server_name_error(name).is_some() {
            return Err(McpAdminError::NotFound(format!("no MCP server `{name}`")));
        }
        let dir = self.home.mcp_dir().join(name);
        let mut text = String::new();
        for f in ["stderr.log.1", "stderr.log"] {
            if let Ok(t) = std::fs::read(dir.join(f)) {
                text.push_str(&String::from_utf8_lossy(&t));
            }
        }
        let all: Vec<&str> = text.lines().collect();
        let tail = &all[all.len().saturating_sub(lines)..];
        Ok(json!({"server": name, "lines": tail}))
    }

    async fn remove_(&self, name: &str, by: &str) -> Res<Value> {
        let config = self.config()?;
        let key = format!("mcp.servers.{name}");
        let in_config = config.mcp.servers.contains_key(name);
        if in_config {
            self.edit(&key, by, |path, text| {
                pincer_config::remove_value(path, text, &key)
            })?;
        }
        let had = self.store.mcp_get(name).await.map_err(internal)?.is_some();
        self.store.mcp_forget(name).await.map_err(internal)?;
        if !in_config && !had {
            return Err(McpAdminError::NotFound(format!("no MCP server `{name}`")));
        }
        runtime::record(
            &self.audit,
            "mcp.removed",
            json!({"server": name, "by": by}),
        )
        .await;
        Ok(json!({"server": name, "removed": true}))
    }
}

impl McpAdmin for Admin {
    fn list(&self) -> McpResult<'_> {
        Box::pin(self.list_())
    }

    fn add<'a>(&'a self, name: &'a str, config: Value, by: &'a str) -> McpResult<'a> {
        Box::pin(async move { self.add_(name, config, by) })
    }

    fn discover<'a>(&'a self, name: &'a str) -> McpResult<'a> {
        Box::pin(self.discover_(name))
    }

    fn approve<'a>(&'a self, name: &'a str, sha256: Option<&'a str>, by: &'a str) -> McpResult<'a> {
        Box::pin(self.approve_(name, sha256, by))
    }

    fn set_enabled<'a>(&'a self, name: &'a str, on: bool, by: &'a str) -> McpResult<'a> {
        Box::pin(self.set_enabled_(name, on, by))
    }

    fn tools<'a>(&'a self, name: &'a str) -> McpResult<'a> {
        Box::pin(self.tools_(name))
    }

    fn logs<'a>(&'a self, name: &'a str, lines: usize) -> McpResult<'a> {
        Box::pin(async move { self.logs_(name, lines) })
    }

    fn remove<'a>(&'a self, name: &'a str, by: &'a str) -> McpResult<'a> {
        Box::pin(self.remove_(name, by))
    }
}
