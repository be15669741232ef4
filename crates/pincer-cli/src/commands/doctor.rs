//! `pincer doctor`: checks with stable ids and suggested fixes. Exit 1 when any check fails.

use std::os::unix::fs::PermissionsExt;

use pincer_agent::AGENT_FILES;
use pincer_config::{Config, ExecMode, NetworkMode, PincerHome};
use serde::Serialize;

use crate::Env;
use crate::cli::DoctorArgs;
use crate::runtime;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
    Skip,
}

#[derive(Debug, Serialize)]
struct Check {
    id: String,
    status: Status,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

#[derive(Default)]
struct Report(Vec<Check>);

impl Report {
    fn add(
        &mut self,
        id: impl Into<String>,
        status: Status,
        message: impl Into<String>,
        fix: Option<&str>,
    ) {
        self.0.push(Check {
            id: id.into(),
            status,
            message: message.into(),
            fix: fix.map(str::to_owned),
        });
    }
}

pub(crate) fn run(args: DoctorArgs, env: &Env) -> anyhow::Result<u8> {
    let mut r = Report::default();
    let home = runtime::home(env)?;
    check_home(&home, &mut r);
    let config = check_config(&home, &mut r);
    if let Some(config) = &config {
        check_agents(&home, config, &mut r);
        check_security(config, &mut r);
        check_sandbox(config, &mut r)?;
        check_channels(config, env, &mut r);
        check_automation(&home, config, env, &mut r);
        check_audit(&home, config, env, &mut r);
        check_secrets(env, &mut r);
        check_mcp(&home, config, env, &mut r)?;
        check_governance(&home, config, env, &mut r)?;
        check_web(config, env, &mut r);
        check_providers(config, env, args.offline, &mut r)?;
    }
    let failed = r.0.iter().any(|c| c.status == Status::Fail);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r.0).unwrap_or_default());
    } else {
        for c in &r.0 {
            let tag = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "WARN",
                Status::Fail => "FAIL",
                Status::Skip => "skip",
            };
            println!("[{tag}] {:<28} {}", c.id, c.message);
            if let Some(fix) = &c.fix {
                println!("       fix: {fix}");
            }
        }
    }
    Ok(u8::from(failed))
}

fn check_home(home: &PincerHome, r: &mut Report) {
    let root = home.root();
    match std::fs::metadata(root) {
        Err(_) => r.add(
            "home.exists",
            Status::Fail,
            format!("{} does not exist", root.display()),
            Some("run `pincer init`"),
        ),
        Ok(m) => {
            r.add("home.exists", Status::Ok, root.display().to_string(), None);
            let mode = m.permissions().mode() & 0o777;
            if mode & 0o077 == 0 {
                r.add(
                    "home.permissions",
                    Status::Ok,
                    format!("mode {mode:o}"),
                    None,
                );
            } else {
                r.add(
                    "home.permissions",
                    Status::Fail,
                    format!("mode {mode:o} lets other users read Pincer's state"),
                    Some(&format!("chmod 700 {}", root.display())),
                );
            }
        }
    }
}

fn check_config(home: &PincerHome, r: &mut Report) -> Option<Config> {
    let path = home.config_path();
    let current = std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|t| pincer_config::parse_and_validate(&path, &t).map_err(|e| e.to_string()));
    match current {
        Ok(c) => {
            r.add("config.valid", Status::Ok, path.display().to_string(), None);
            if home.last_good_path().is_file() {
                r.add(
                    "config.last_good",
                    Status::Ok,
                    "last-known-good copy present",
                    None,
                );
            } else {
                r.add(
                    "config.last_good",
                    Status::Warn,
                    "no last-known-good copy yet",
                    Some("run any pincer command that loads the config"),
                );
            }
            Some(c)
        }
        Err(e) => {
            r.add(
                "config.valid",
                Status::Fail,
                e,
                Some("fix the named line, then `pincer config validate`"),
            );
            let lkg = pincer_config::load(home)
                .ok()
                .filter(|l| l.fallback.is_some())
                .map(|l| l.config);
            if lkg.is_some() {
                r.add(
                    "config.last_good",
                    Status::Warn,
                    "running on the last-known-good copy",
                    None,
                );
            }
            lkg
        }
    }
}

fn check_agents(home: &PincerHome, config: &Config, r: &mut Report) {
    if config.agents.is_empty() {
        r.add(
            "agents.defined",
            Status::Fail,
            "no agents in config",
            Some("run `pincer init` or add [agents.main]"),
        );
    }
    for id in config.agents.keys() {
        check_agent_tools(home, id, config, r);
        let dir = home.agent_dir(id);
        let missing: Vec<&str> = AGENT_FILES
            .iter()
            .filter(|f| !dir.join(f.name).is_file())
            .map(|f| f.name)
            .collect();
        if missing.is_empty() {
            r.add(
                format!("agent.{id}.files"),
                Status::Ok,
                dir.display().to_string(),
                None,
            );
        } else {
            r.add(
                format!("agent.{id}.files"),
                Status::Fail,
                format!("missing {}", missing.join(", ")),
                Some("run `pincer init` (it never overwrites existing files)"),
            );
        }
        let ws = config
            .agents
            .get(id)
            .and_then(|a| a.workspace.clone())
            .unwrap_or_else(|| home.default_workspace(id));
        if ws.is_dir() {
            r.add(
                format!("agent.{id}.workspace"),
                Status::Ok,
                ws.display().to_string(),
                None,
            );
        } else {
            r.add(
                format!("agent.{id}.workspace"),
                Status::Fail,
                format!("{} does not exist", ws.display()),
                Some("run `pincer init` or create the directory"),
            );
        }
    }
}

/// The encrypted secret store (D10): whether it opens, with which key, and how much it holds.
fn check_secrets(env: &Env, r: &mut Report) {
    let vault = match env.vault() {
        Ok(v) => v,
        Err(e) => {
            r.add(
                "secrets.store",
                Status::Fail,
                format!("{e:#}"),
                Some("fix PINCER_SECRETS_KEY"),
            );
            return;
        }
    };
    if !vault.exists() {
        r.add(
            "secrets.store",
            Status::Skip,
            "no secrets stored (`pincer secrets set NAME`)",
            None,
        );
        return;
    }
    let key = match vault.key_source() {
        pincer_secrets::KeySource::Environment => "key from PINCER_SECRETS_KEY",
        pincer_secrets::KeySource::File => "key in secrets/secrets.key",
    };
    match vault.names() {
        Ok(n) => r.add(
            "secrets.store",
            Status::Ok,
            format!("{} secret(s), {key}", n.len()),
            None,
        ),
        Err(e) => r.add(
            "secrets.store",
            Status::Fail,
            e.to_string(),
            Some("set PINCER_SECRETS_KEY to the store's key or restore secrets/secrets.key"),
        ),
    }
}

fn check_audit(home: &PincerHome, config: &Config, env: &Env, r: &mut Report) {
    let source = match pincer_server::audit::source(home, config, env) {
        Ok(s) => s,
        Err(e) => {
            r.add(
                "audit.chain",
                Status::Fail,
                format!("the audit log cannot be opened: {e}"),
                Some("check `[storage] url` and that the database is reachable"),
            );
            return;
        }
    };
    if !source.exists() {
        r.add("audit.chain", Status::Skip, "no audit log yet", None);
        return;
    }
    match source.verify() {
        Ok(rep) => r.add(
            "audit.chain",
            Status::Ok,
            format!(
                "{} lines in {}, chain intact, {}",
                rep.lines,
                match &source {
                    pincer_audit::AuditSource::Files { .. } => format!("{} files", rep.files),
                    pincer_audit::AuditSource::Chain { .. } => source.location(),
                },
                rep.anchored
                    .map_or("not anchored yet".to_owned(), |s| format!(
                        "anchored at line {s}"
                    ))
            ),
            None,
        ),
        Err(e) => r.add(
            "audit.chain",
            Status::Fail,
            format!("audit log is not intact: {e}"),
            Some("keep the damaged log for investigation; see `pincer audit verify`"),
        ),
    }
}

fn check_agent_tools(
    home: &PincerHome,
    id: &pincer_types::AgentId,
    config: &Config,
    r: &mut Report,
) {
    let Some(a) = config.agents.get(id) else {
        return;
    };
    // Exec tools are reported by the `sandbox` check.
    match runtime::registry(id, a, &home.agent_dir(id), false, None, &[]) {
        Ok(tools) => {
            let policy = runtime::policy(config, id, a);
            let usable: Vec<&str> = policy
                .granted
                .iter()
                .filter(|t| tools.get(t).is_some())
                .map(pincer_types::ToolName::as_str)
                .collect();
            r.add(
                format!("agent.{id}.tools"),
                Status::Ok,
                format!(
                    "{:?} profile, {:?} approvals: {}",
                    a.profile,
                    policy.approval_mode,
                    usable.join(", ")
                ),
                None,
            );
        }
        Err(e) => r.add(
            format!("agent.{id}.tools"),
            Status::Fail,
            e.to_string(),
            Some("remove the unknown names from `allow` (see `pincer tools list`)"),
        ),
    }
}

fn check_security(config: &Config, r: &mut Report) {
    match config.security.exec {
        ExecMode::Off => r.add("security.exec", Status::Ok, "command execution off", None),
        ExecMode::Sandboxed => r.add(
            "security.exec",
            Status::Warn,
            "command execution on (sandboxed only)",
            None,
        ),
    }
    match config.security.network {
        NetworkMode::Off => r.add(
            "security.network",
            Status::Ok,
            "tool network access off",
            None,
        ),
        NetworkMode::Allowlist => r.add(
            "security.network",
            Status::Warn,
            "tool network access on (allowlist)",
            None,
        ),
    }
}

/// `channel.telegram`: enabled with a token, and whether strangers can reach the agent.
fn check_channels(config: &Config, env: &Env, r: &mut Report) {
    let Some(t) = config.channels.telegram.as_ref().filter(|t| t.enabled) else {
        return;
    };
    if env.var(&t.token_env).is_none() {
        r.add(
            "channel.telegram.token",
            Status::Fail,
            format!("{} is not set", t.token_env),
            Some("export the bot token from @BotFather in that variable"),
        );
    }
    match t.dm_policy {
        pincer_config::DmPolicy::Open => r.add(
            "channel.telegram.dm_policy",
            Status::Warn,
            "dm_policy = \"open\": anyone on Telegram can talk to the agent",
            Some(
                "use \"pairing\" (default) or \"allowlist\" unless this bot is meant to be public",
            ),
        ),
        pincer_config::DmPolicy::Pairing
        | pincer_config::DmPolicy::Allowlist
        | pincer_config::DmPolicy::Disabled => r.add(
            "channel.telegram.dm_policy",
            Status::Ok,
            format!("direct messages: {:?}", t.dm_policy).to_lowercase(),
            None,
        ),
    }
}

/// `hook.<name>.secret` (set, 16+ characters) and `heartbeat.<agent>` (whether its
/// `HEARTBEAT.md` has anything to check — otherwise every heartbeat is a free skip).
fn check_automation(home: &PincerHome, config: &Config, env: &Env, r: &mut Report) {
    for (name, h) in &config.hooks {
        let id = format!("hook.{name}.secret");
        match env.var(&h.secret_env) {
            Some(s) if s.len() >= 16 => r.add(id.clone(), Status::Ok, "secret set", None),
            Some(_) => r.add(
                &id,
                Status::Fail,
                format!("{} is shorter than 16 characters", h.secret_env),
                Some("use a long random secret shared with the sender"),
            ),
            None => r.add(
                &id,
                Status::Fail,
                format!("{} is not set; pincer serve will not start", h.secret_env),
                Some("export the secret shared with the webhook sender"),
            ),
        }
    }
    for (agent, a) in &config.agents {
        if a.heartbeat.is_none() {
            continue;
        }
        let path = home
            .agent_dir(agent)
            .join(pincer_server::heartbeat::HEARTBEAT_FILE);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let (status, msg) = if pincer_server::heartbeat::actionable(&text).is_empty() {
            (
                Status::Warn,
                format!(
                    "{} has nothing to check: heartbeats are skipped (no model calls)",
                    path.display()
                ),
            )
        } else {
            (Status::Ok, format!("{} has a checklist", path.display()))
        };
        r.add(format!("heartbeat.{agent}"), status, msg, None);
    }
}

/// `web`: with the network on, whether anything is reachable and the search backend's key is set.
fn check_web(config: &Config, env: &Env, r: &mut Report) {
    if config.security.network == NetworkMode::Off {
        if config.web.browser.enabled {
            r.add(
                "web.browser",
                Status::Warn,
                "web.browser.enabled is set but security.network is off: no browser tools",
                Some("set security.network to \"allowlist\" and list the hosts"),
            );
        }
        return;
    }
    if config.security.egress_allow.is_empty() && config.security.egress_allow_private.is_empty() {
        r.add(
            "web",
            Status::Warn,
            "security.network is on but no host is allowed: http.fetch can reach nothing",
            Some("list hosts in security.egress_allow (or host:port in security.egress_allow_private)"),
        );
    } else {
        r.add(
            "web",
            Status::Ok,
            format!(
                "http.fetch may reach {} host pattern(s) and {} named private address(es)",
                config.security.egress_allow.len(),
                config.security.egress_allow_private.len()
            ),
            None,
        );
    }
    if let Some(var) = config
        .web
        .search
        .as_ref()
        .and_then(|s| s.api_key_env.as_ref())
        && env.var(var).is_none()
    {
        r.add(
            "web.search",
            Status::Fail,
            format!("{var} is not set: web.search is unavailable"),
            Some("export the search API key in that variable"),
        );
    }
    check_browser(config, r);
}

/// `web.browser`: when enabled, whether Chromium is there and a sandbox to run it in.
fn check_browser(config: &Config, r: &mut Report) {
    let b = &config.web.browser;
    if !b.enabled {
        return;
    }
    let exe = pincer_browser::tools::find_chromium(b.executable.as_deref());
    let (status, msg, fix) = match (exe, config.security.sandbox) {
        (_, pincer_config::SandboxProvider::None) => (
            Status::Fail,
            "the browser runs only inside the sandbox, and security.sandbox is \"none\"".to_owned(),
            Some("set security.sandbox to \"native\" or \"bwrap\""),
        ),
        (None, _) => (
            Status::Fail,
            "Chromium is not installed: the browser tools are unavailable".to_owned(),
            Some("apt-get install chromium (or set web.browser.executable)"),
        ),
        (Some(p), _) => (
            Status::Ok,
            format!(
                "{} in the sandbox, network through the egress proxy",
                p.display()
            ),
            None,
        ),
    };
    r.add("web.browser", status, msg, fix);
}

/// `mcp.<server>`: whether each enabled server can start — its sandbox enforced (stdio), its
/// variables set, its paths there and none of Pincer's, the network on (HTTP) — and approved.
/// Users and the emergency controls in force (D7, D8, D13), from the store every process shares.
fn check_governance(
    home: &PincerHome,
    config: &Config,
    env: &Env,
    r: &mut Report,
) -> anyhow::Result<()> {
    let rt = runtime::tokio_runtime()?;
    let read = rt.block_on(async {
        let store = runtime::open_store(home, config, env).await?;
        let controls = store.controls().await?;
        let users = store.users().await?;
        anyhow::Ok((controls, users))
    });
    let (controls, users) = match read {
        Ok(v) => v,
        Err(e) => {
            r.add(
                "governance.emergency",
                Status::Skip,
                format!("the store cannot be read: {e:#}"),
                None,
            );
            return Ok(());
        }
    };
    let mut on = Vec::new();
    if let Some(p) = &controls.paused {
        on.push(format!(
            "mutating actions paused since {} by {}",
            p.at.to_rfc3339(),
            p.by
        ));
    }
    if let Some(b) = &controls.bypass_locked {
        on.push(format!(
            "bypass locked off since {} by {}",
            b.at.to_rfc3339(),
            b.by
        ));
    }
    if !controls.revoked_hook_secrets.is_empty() {
        on.push(format!(
            "{} webhook secret(s) revoked by a rotation",
            controls.revoked_hook_secrets.len()
        ));
    }
    if on.is_empty() {
        r.add(
            "governance.emergency",
            Status::Ok,
            "no emergency control in force",
            None,
        );
    } else {
        r.add(
            "governance.emergency",
            Status::Warn,
            on.join("; "),
            Some("`pincer emergency resume` when the incident is over; set new webhook secrets"),
        );
    }
    let enabled: Vec<_> = users.iter().filter(|u| u.enabled()).collect();
    let count = |role| enabled.iter().filter(|u| u.role == role).count();
    r.add(
        "governance.users",
        Status::Ok,
        format!(
            "{} enabled user(s): {} owner, {} admin, {} operator, {} member",
            enabled.len(),
            count(pincer_types::Role::Owner),
            count(pincer_types::Role::Admin),
            count(pincer_types::Role::Operator),
            count(pincer_types::Role::Member)
        ),
        None,
    );
    let bypassing = enabled.iter().filter(|u| u.bypass).count();
    match config.governance.bypass {
        pincer_config::BypassPolicy::Off => r.add(
            "governance.bypass",
            Status::Ok,
            "off by org policy: every approval is asked",
            None,
        ),
        pincer_config::BypassPolicy::Allowed => r.add(
            "governance.bypass",
            Status::Warn,
            format!(
                "allowed up to {} ({bypassing} user(s) have it on{})",
                config.governance.bypass_max_tier.tier().as_str(),
                if controls.bypass_locked.is_some() {
                    "; locked off now"
                } else {
                    ""
                }
            ),
            Some("set governance.bypass = \"off\" unless your team needs it"),
        ),
    }
    Ok(())
}

fn check_mcp(home: &PincerHome, config: &Config, env: &Env, r: &mut Report) -> anyhow::Result<()> {
    if config.mcp.servers.is_empty() {
        return Ok(());
    }
    let rt = runtime::tokio_runtime()?;
    let needs_sandbox = config
        .mcp
        .servers
        .values()
        .any(|c| c.enabled && c.command.is_some());
    let (settings, records) = rt.block_on(async {
        let settings = pincer_server::mcp::settings(home, config, env, needs_sandbox).await;
        let records = match runtime::open_store(home, config, env).await {
            Ok(store) => store.mcp_list().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        (settings, records)
    });
    let protected = pincer_server::mcp::protected(home);
    for (name, c) in &config.mcp.servers {
        let id = format!("mcp.{name}");
        if !c.enabled {
            r.add(id, Status::Skip, "disabled", None);
            continue;
        }
        let mut problems: Vec<String> = Vec::new();
        for (field, map) in [("env", &c.env), ("headers", &c.headers)] {
            for (k, v) in map {
                if let Some(var) = pincer_config::env_reference(v)
                    && env.var(var).is_none()
                {
                    problems.push(format!("{var} is not set (mcp.servers.{name}.{field}.{k})"));
                }
            }
        }
        if c.command.is_some() {
            if let Err(why) = &settings.sandbox {
                problems.push(format!("no sandbox can be enforced ({why})"));
            }
            if !c.network.is_empty() && config.security.network == NetworkMode::Off {
                problems.push("it lists `network` hosts, but security.network is \"off\"".into());
            }
            for p in c.read_paths.iter().chain(&c.write_paths) {
                if !p.is_dir() {
                    problems.push(format!("{} is not a directory", p.display()));
                }
                problems.extend(pincer_mcp::hub::overlap(p, &protected));
            }
        } else if config.security.network == NetworkMode::Off {
            problems.push("security.network is \"off\": an HTTP server cannot be reached".into());
        }
        if !problems.is_empty() {
            r.add(
                id,
                Status::Fail,
                format!("will not start: {}", problems.join("; ")),
                Some("fix the server's config (docs/MCP.md), then `pincer mcp discover`"),
            );
            continue;
        }
        let rec = records.iter().find(|x| &x.server == name);
        let approved = rec
            .and_then(|x| x.approved.as_ref())
            .map(|a| a.sha256.as_str());
        let seen = rec.and_then(|x| x.seen.as_ref()).map(|a| a.sha256.as_str());
        match pincer_server::mcp_admin::status(approved, seen, true) {
            "not approved" => r.add(
                id,
                Status::Warn,
                "not approved: its tools are not offered",
                Some("pincer mcp discover, then pincer mcp approve"),
            ),
            "approved, enabled" => r.add(id, Status::Ok, "approved and enabled", None),
            changed => r.add(
                id,
                Status::Warn,
                changed,
                Some("pincer mcp tools NAME shows the change; pincer mcp approve accepts it"),
            ),
        }
    }
    Ok(())
}

/// `sandbox`: whether the configured provider is enforced, by running a confined command.
fn check_sandbox(config: &Config, r: &mut Report) -> anyhow::Result<()> {
    let Some(kind) = crate::sandbox::configured(config) else {
        let status = match config.security.exec {
            ExecMode::Off => Status::Ok,
            ExecMode::Sandboxed => Status::Warn,
        };
        r.add(
            "sandbox",
            status,
            "security.sandbox = \"none\": shell.exec and process are not available",
            None,
        );
        return Ok(());
    };
    let probes = super::sandbox::probe_all()?;
    let Some(p) = probes.into_iter().find(|p| p.kind == kind) else {
        return Ok(());
    };
    match (&p.ready, config.security.exec) {
        (Some(ready), _) if p.is_enforced() => r.add(
            "sandbox",
            Status::Ok,
            format!(
                "{} sandbox enforced (Landlock ABI {}, seccomp, namespaces){}",
                kind.as_str(),
                ready.landlock_abi,
                match config.security.exec {
                    ExecMode::Off => "; exec is off (security.exec)",
                    ExecMode::Sandboxed => "",
                }
            ),
            None,
        ),
        (_, exec) => r.add(
            "sandbox",
            match exec {
                ExecMode::Sandboxed => Status::Fail,
                ExecMode::Off => Status::Warn,
            },
            format!(
                "the {} sandbox cannot be enforced: {}; shell.exec and process are unavailable",
                kind.as_str(),
                p.error.as_deref().unwrap_or("unknown")
            ),
            p.fix.as_deref(),
        ),
    }
    Ok(())
}

fn check_providers(
    config: &Config,
    env: &Env,
    offline: bool,
    r: &mut Report,
) -> anyhow::Result<()> {
    // One runtime for all provider checks, built only if one is needed.
    let mut rt: Option<tokio::runtime::Runtime> = None;
    for (name, p) in &config.providers {
        if let Some(var) = &p.api_key_env {
            if env.var(var).is_some() {
                r.add(
                    format!("provider.{name}.api_key"),
                    Status::Ok,
                    format!("{var} is set"),
                    None,
                );
            } else {
                r.add(
                    format!("provider.{name}.api_key"),
                    Status::Fail,
                    format!("{var} is not set"),
                    Some(&format!("export {var}=<your key>")),
                );
                continue;
            }
        }
        let id = format!("provider.{name}.reachable");
        if offline {
            r.add(id, Status::Skip, "skipped (--offline)", None);
            continue;
        }
        let client = runtime::provider(name, p, env)?;
        let rt = match &rt {
            Some(rt) => rt,
            None => rt.insert(runtime::tokio_runtime()?),
        };
        match rt.block_on(client.check()) {
            Ok(()) => r.add(id, Status::Ok, format!("{} answers", p.base_url), None),
            Err(e) => r.add(
                id,
                Status::Fail,
                format!("{}: {e}", p.base_url),
                Some("check base_url, the key and that the server is running"),
            ),
        }
    }
    Ok(())
}
