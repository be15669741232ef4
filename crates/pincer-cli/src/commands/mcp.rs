//! `pincer mcp list|add|discover|approve|enable|disable|tools|logs|remove` (issue 17, G3): the
//! operator's side of an MCP server's lifecycle. Config changes go through `pincer-config`
//! (validated, atomic, audited); approvals are pinned in the store by sha256.

use std::sync::Arc;

use chrono::Utc;
use pincer_config::{McpServerConfig, PincerHome, parse_and_validate, save};
use pincer_mcp::hub::{McpHub, diff};
use pincer_mcp::manifest::{Manifest, tier_for};
use serde_json::{Value, json};

use crate::cli::McpCommand;
use crate::{Env, Failure, runtime};

pub(crate) fn run(cmd: McpCommand, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    match cmd {
        McpCommand::Add(add) => {
            let crate::cli::McpAddArgs {
                name,
                command,
                args,
                url,
                env: vars,
                headers,
                read_paths,
                write_paths,
                network,
                allow_private,
                rest,
            } = *add;
            let pairs = |v: Vec<String>, what: &str| -> anyhow::Result<_> {
                v.into_iter()
                    .map(|kv| {
                        kv.split_once('=')
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                            .ok_or_else(|| {
                                Failure::usage(format!("--{what} {kv:?}: expected NAME=env:VAR"))
                                    .into()
                            })
                    })
                    .collect::<anyhow::Result<_>>()
            };
            let server = McpServerConfig {
                command,
                args: args.into_iter().chain(rest).collect(),
                url,
                env: pairs(vars, "env")?,
                headers: pairs(headers, "header")?,
                read_paths,
                write_paths,
                network,
                allow_private,
                ..McpServerConfig::default()
            };
            let inline = toml::Value::try_from(&server)?.to_string();
            let key = format!("mcp.servers.{name}");
            edit(&home, env, &key, |path, text| {
                pincer_config::set_table(path, text, &key, &inline).map(Some)
            })?;
            println!(
                "added MCP server `{name}` (disabled). Next: `pincer mcp discover {name}`, then `approve` and `enable`."
            );
            Ok(0)
        }
        McpCommand::Enable { name } => set_enabled(&home, env, &name, true),
        McpCommand::Disable { name } => set_enabled(&home, env, &name, false),
        McpCommand::Remove { name } => {
            let loaded = runtime::load_config(&home, env)?;
            let key = format!("mcp.servers.{name}");
            let in_config = loaded.config.mcp.servers.contains_key(&name);
            if in_config {
                edit(&home, env, &key, |path, text| {
                    pincer_config::remove_value(path, text, &key)
                })?;
            }
            let rt = runtime::tokio_runtime()?;
            let had = rt.block_on(async {
                let store = runtime::open_store(&home, &loaded.config, env).await?;
                let had = store.mcp_get(&name).await?.is_some();
                store.mcp_forget(&name).await?;
                anyhow::Ok(had)
            })?;
            if !in_config && !had {
                return Err(Failure::usage(format!("no MCP server `{name}`")).into());
            }
            runtime::audit_config(
                &home,
                &loaded.config,
                env,
                "mcp.removed",
                json!({"server": name, "by": "operator:cli"}),
            );
            println!("removed MCP server `{name}`");
            Ok(0)
        }
        McpCommand::Logs { name, lines } => {
            let dir = home.mcp_dir().join(&name);
            let mut text = String::new();
            for f in ["stderr.log.1", "stderr.log"] {
                if let Ok(t) = std::fs::read(dir.join(f)) {
                    text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            if text.is_empty() {
                println!("(no stderr captured for `{name}`)");
            }
            let all: Vec<&str> = text.lines().collect();
            for l in &all[all.len().saturating_sub(lines)..] {
                println!("{l}");
            }
            Ok(0)
        }
        McpCommand::List { json: as_json } => list(&home, env, as_json),
        McpCommand::Discover {
            name,
            json: as_json,
        } => discover(&home, env, &name, as_json),
        McpCommand::Approve { name, sha256 } => approve(&home, env, &name, sha256.as_deref()),
        McpCommand::Tools {
            name,
            json: as_json,
        } => tools(&home, env, &name, as_json),
    }
}

/// Applies `change` to config.toml (which must be valid first), saves it and audits the change.
fn edit(
    home: &PincerHome,
    env: &Env,
    key: &str,
    change: impl FnOnce(&std::path::Path, &str) -> Result<Option<String>, pincer_config::ConfigError>,
) -> anyhow::Result<()> {
    let path = home.config_path();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
    parse_and_validate(&path, &text).map_err(|e| {
        Failure::usage(format!(
            "{e}\nconfig.toml must be valid before it can be changed"
        ))
    })?;
    let Some(updated) = change(&path, &text)? else {
        return Err(Failure::usage(format!("`{key}` is not in {}", path.display())).into());
    };
    let saved = save(home, &updated)?;
    runtime::audit_config(
        home,
        &saved,
        env,
        "config.set",
        json!({"key": key, "file": path, "by": "operator:cli"}),
    );
    Ok(())
}

fn set_enabled(home: &PincerHome, env: &Env, name: &str, on: bool) -> anyhow::Result<u8> {
    let loaded = runtime::load_config(home, env)?;
    if !loaded.config.mcp.servers.contains_key(name) {
        return Err(
            Failure::usage(format!("no MCP server `{name}` in config (pincer mcp add)")).into(),
        );
    }
    let key = format!("mcp.servers.{name}.enabled");
    edit(home, env, &key, |path, text| {
        pincer_config::set_value(path, text, &key, if on { "true" } else { "false" }).map(Some)
    })?;
    if on {
        let rt = runtime::tokio_runtime()?;
        let approved = rt.block_on(async {
            let store = runtime::open_store(home, &loaded.config, env).await?;
            anyhow::Ok(store.mcp_get(name).await?.and_then(|r| r.approved))
        })?;
        if approved.is_none() {
            println!(
                "enabled `{name}`; its tools stay withdrawn until its manifest is approved (`pincer mcp discover {name}`, then `approve`)"
            );
            return Ok(0);
        }
    }
    println!("{} `{name}`", if on { "enabled" } else { "disabled" });
    Ok(0)
}

fn server_config<'c>(
    config: &'c pincer_config::Config,
    name: &str,
) -> anyhow::Result<&'c McpServerConfig> {
    config.mcp.servers.get(name).ok_or_else(|| {
        Failure::usage(format!("no MCP server `{name}` in config (pincer mcp add)")).into()
    })
}

/// Every tool with the name, tier and schema the operator approves.
fn manifest_rows(name: &str, m: &Manifest, c: &McpServerConfig) -> Vec<Value> {
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

fn print_manifest(name: &str, m: &Manifest, c: &McpServerConfig) {
    for row in manifest_rows(name, m, c) {
        println!(
            "- {}  (as {}, tier {})",
            row["tool"].as_str().unwrap_or(""),
            row["as"].as_str().unwrap_or("(no valid name)"),
            row["tier"].as_str().unwrap_or("")
        );
        let desc = row["description"].as_str().unwrap_or("");
        if !desc.is_empty() {
            println!("    {}", desc.replace('\n', "\n    "));
        }
        println!("    input: {}", row["input_schema"]);
        if !row["output_schema"].is_null() {
            println!("    output: {}", row["output_schema"]);
        }
        if !row["annotations"].is_null() {
            println!("    server's hints (not trusted): {}", row["annotations"]);
        }
    }
}

fn discover(home: &PincerHome, env: &Env, name: &str, as_json: bool) -> anyhow::Result<u8> {
    let loaded = runtime::load_config(home, env)?;
    let config = &loaded.config;
    let c = server_config(config, name)?.clone();
    let rt = runtime::tokio_runtime()?;
    let (info, manifest) = rt.block_on(async {
        let store = runtime::open_store(home, config, env).await?;
        let audit = runtime::open_audit(home, config, env)?;
        let settings = pincer_server::mcp::settings(home, config, env, c.command.is_some()).await;
        let hub = McpHub::new(
            [(name.to_owned(), c.clone(), None)],
            settings,
            Arc::new(pincer_server::mcp::StoreRecorder { audit, store }),
        );
        let server = hub
            .get(name)
            .ok_or_else(|| anyhow::anyhow!("no server `{name}`"))?;
        server
            .discover()
            .await
            .map_err(|e| anyhow::Error::from(Failure::usage(e.to_string())))
    })?;
    let sha = manifest.sha256();
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "server": name, "sha256": sha, "server_name": info.name,
                "server_version": info.version, "protocol": info.protocol_version,
                "tools": manifest_rows(name, &manifest, &c)}))?
        );
    } else {
        println!(
            "`{name}`: {} {} (protocol {}), {} tools, manifest sha256 {sha}",
            info.name,
            info.version,
            info.protocol_version,
            manifest.tools.len()
        );
        print_manifest(name, &manifest, &c);
        println!("\napprove exactly this manifest with: pincer mcp approve {name} --sha256 {sha}");
    }
    Ok(0)
}

fn approve(home: &PincerHome, env: &Env, name: &str, sha256: Option<&str>) -> anyhow::Result<u8> {
    let loaded = runtime::load_config(home, env)?;
    let config = &loaded.config;
    server_config(config, name)?;
    let rt = runtime::tokio_runtime()?;
    rt.block_on(async {
        let store = runtime::open_store(home, config, env).await?;
        let seen = store
            .mcp_get(name)
            .await?
            .and_then(|r| r.seen)
            .ok_or_else(|| {
                Failure::usage(format!(
                    "nothing to approve: run `pincer mcp discover {name}` first"
                ))
            })?;
        if let Some(want) = sha256
            && want != seen.sha256
        {
            return Err(Failure::usage(format!(
                "the manifest of `{name}` is now {}, not {want}: run `pincer mcp tools {name}` to see it",
                seen.sha256
            ))
            .into());
        }
        if !store
            .mcp_approve(name, &seen.sha256, "operator:cli", Utc::now())
            .await?
        {
            return Err(Failure::usage(format!(
                "the manifest of `{name}` changed while approving; run `pincer mcp tools {name}` again"
            ))
            .into());
        }
        let tools = serde_json::from_str::<Manifest>(&seen.manifest)
            .map(|m| m.tools.len())
            .unwrap_or(0);
        runtime::record(
            &runtime::open_audit(home, config, env)?,
            "mcp.approved",
            json!({"server": name, "sha256": seen.sha256, "tools": tools, "by": "operator:cli"}),
        )
        .await;
        println!("approved the manifest of `{name}` ({tools} tools, sha256 {})", seen.sha256);
        if !config.mcp.servers.get(name).is_some_and(|c| c.enabled) {
            println!("it is disabled: `pincer mcp enable {name}` offers its tools to agents that grant group:mcp:{name}");
        }
        anyhow::Ok(())
    })?;
    Ok(0)
}

fn tools(home: &PincerHome, env: &Env, name: &str, as_json: bool) -> anyhow::Result<u8> {
    let loaded = runtime::load_config(home, env)?;
    let config = &loaded.config;
    let c = server_config(config, name)?;
    let rt = runtime::tokio_runtime()?;
    let record = rt.block_on(async {
        let store = runtime::open_store(home, config, env).await?;
        anyhow::Ok(store.mcp_get(name).await?)
    })?;
    let parse = |row: &Option<pincer_store::McpManifestRow>| {
        row.as_ref()
            .and_then(|r| serde_json::from_str::<Manifest>(&r.manifest).ok())
    };
    let approved = record.as_ref().and_then(|r| parse(&r.approved));
    let seen = record.as_ref().and_then(|r| parse(&r.seen));
    let sha = |row: Option<&pincer_store::McpManifestRow>| row.map(|r| r.sha256.clone());
    let approved_sha = sha(record.as_ref().and_then(|r| r.approved.as_ref()));
    let seen_sha = sha(record.as_ref().and_then(|r| r.seen.as_ref()));
    let changes = match (&approved, &seen) {
        (Some(a), Some(s)) => diff(a, s),
        _ => Value::Null,
    };
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "server": name, "enabled": c.enabled,
                "approved_sha256": approved_sha, "seen_sha256": seen_sha, "changes": changes,
                "approved": approved.as_ref().map(|m| manifest_rows(name, m, c)),
                "seen": seen.as_ref().map(|m| manifest_rows(name, m, c))}))?
        );
        return Ok(0);
    }
    match (&approved, approved_sha) {
        (Some(m), Some(sha)) => {
            println!("approved manifest of `{name}` (sha256 {sha}):");
            print_manifest(name, m, c);
        }
        _ => println!("`{name}` has no approved manifest"),
    }
    if let (Some(s), Some(sha)) = (&seen, seen_sha)
        && record
            .as_ref()
            .and_then(|r| r.approved.as_ref())
            .is_none_or(|a| a.sha256 != sha)
    {
        println!("\nlast seen manifest (sha256 {sha}) — NOT approved; changes: {changes}");
        print_manifest(name, s, c);
        println!("\napprove it with: pincer mcp approve {name} --sha256 {sha}");
    }
    Ok(0)
}

fn list(home: &PincerHome, env: &Env, as_json: bool) -> anyhow::Result<u8> {
    let loaded = runtime::load_config(home, env)?;
    let config = &loaded.config;
    let rt = runtime::tokio_runtime()?;
    let records = rt.block_on(async {
        let store = runtime::open_store(home, config, env).await?;
        anyhow::Ok(store.mcp_list().await?)
    })?;
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
            let status = match (&approved, &seen, c.enabled) {
                (None, _, _) => "not approved",
                (Some(a), Some(s), _) if a != s => "manifest changed: tools withdrawn",
                (Some(_), _, false) => "approved, disabled",
                (Some(_), _, true) => "approved, enabled",
            };
            json!({"server": name, "transport": if c.url.is_some() { "http" } else { "stdio" },
                   "enabled": c.enabled, "approved_sha256": approved, "seen_sha256": seen,
                   "status": status})
        })
        .collect();
    if as_json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if rows.is_empty() {
        println!("no MCP servers (pincer mcp add NAME --command … | --url …)");
    } else {
        println!("SERVER                   TRANSPORT STATUS");
        for r in &rows {
            println!(
                "{:<24} {:<9} {}",
                r["server"].as_str().unwrap_or(""),
                r["transport"].as_str().unwrap_or(""),
                r["status"].as_str().unwrap_or("")
            );
        }
    }
    Ok(0)
}
