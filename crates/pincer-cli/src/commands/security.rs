//! `pincer security audit [--json]` (issue 23, D12): what in this installation is weaker than
//! it should be. Every check has a stable id, a severity and a fix; passing checks are listed too
//! (`--json` shows them with `"status": "pass"`). Exit code by the worst failing check: 0 none
//! (or only `low`), 1 `medium`, 2 `high`, 3 `critical`.
//!
//! The checks cover each class of the 2026 OpenClaw advisories Pincer defends against: a public
//! bind, stale or everlasting admin tokens, open DMs, exec without an enforced sandbox or with an
//! open-ended allowlist, wildcard egress, unapproved or changed MCP servers and skills, readable
//! home files, a broken or unanchored audit chain, bypass allowed org-wide.

use std::os::unix::fs::PermissionsExt as _;

use chrono::{Duration, Utc};
use pincer_config::{
    ApprovalMode, BypassPolicy, Config, DmPolicy, ExecMode, NetworkMode, PincerHome,
    SandboxProvider,
};
use pincer_store::{Backend, SkillState};
use pincer_types::Scope;
use serde::Serialize;

use crate::{Env, runtime};

/// How bad a weakness is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Debug, Serialize)]
struct Check {
    id: &'static str,
    severity: Severity,
    status: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

#[derive(Default)]
struct Audit(Vec<Check>);

impl Audit {
    fn pass(&mut self, id: &'static str, severity: Severity, message: impl Into<String>) {
        self.0.push(Check {
            id,
            severity,
            status: "pass",
            message: message.into(),
            fix: None,
        });
    }

    fn fail(
        &mut self,
        id: &'static str,
        severity: Severity,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.0.push(Check {
            id,
            severity,
            status: "fail",
            message: message.into(),
            fix: Some(fix.into()),
        });
    }
}

/// Domains under which anyone can host content.
const MULTI_TENANT: &[&str] = &[
    "github.io",
    "githubusercontent.com",
    "gitlab.io",
    "amazonaws.com",
    "cloudfront.net",
    "herokuapp.com",
    "vercel.app",
    "netlify.app",
    "pages.dev",
    "workers.dev",
    "r2.dev",
    "azurewebsites.net",
    "windows.net",
    "appspot.com",
    "web.app",
    "firebaseapp.com",
    "ngrok.io",
    "ngrok-free.app",
    "ngrok.app",
    "trycloudflare.com",
    "glitch.me",
    "replit.app",
    "onrender.com",
    "fly.dev",
    "co.uk",
    "com.au",
    "co.jp",
    "com.br",
];

pub(crate) fn run(json: bool, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    let config = &loaded.config;
    let mut a = Audit::default();
    check_config(config, &mut a);
    check_home_files(&home, &mut a);
    check_secrets(config, env, &mut a);
    check_audit(&home, config, env, &mut a);
    let rt = runtime::tokio_runtime()?;
    rt.block_on(async {
        let store = runtime::open_store(&home, config, env).await?;
        check_tokens(&*store, &mut a).await?;
        check_mcp(&*store, config, &mut a).await?;
        check_skills(&*store, &mut a).await?;
        anyhow::Ok(())
    })?;
    let worst =
        a.0.iter()
            .filter(|c| c.status == "fail")
            .map(|c| c.severity)
            .max();
    if json {
        println!("{}", serde_json::to_string_pretty(&a.0)?);
    } else {
        for c in a.0.iter().filter(|c| c.status == "fail") {
            println!(
                "{:<9} {:<28} {}",
                format!("{:?}", c.severity).to_uppercase(),
                c.id,
                c.message
            );
            if let Some(f) = &c.fix {
                println!("{:<9} {:<28} fix: {f}", "", "");
            }
        }
        let passed = a.0.iter().filter(|c| c.status == "pass").count();
        match worst {
            None => println!("no weaknesses found ({passed} checks passed)"),
            Some(_) => println!("({passed} checks passed; `--json` lists every check)"),
        }
    }
    Ok(match worst {
        None | Some(Severity::Low) => 0,
        Some(Severity::Medium) => 1,
        Some(Severity::High) => 2,
        Some(Severity::Critical) => 3,
    })
}

fn check_config(c: &Config, a: &mut Audit) {
    let bind = c.gateway.bind;
    if bind.ip().is_loopback() {
        a.pass(
            "gateway.public_bind",
            Severity::Critical,
            format!("the API listens on {bind} (loopback)"),
        );
    } else {
        a.fail(
            "gateway.public_bind",
            if bind.ip().is_unspecified() { Severity::Critical } else { Severity::High },
            format!("the API listens on {bind}, reachable from other machines"),
            "bind to 127.0.0.1 and put a TLS proxy in front (gateway.bind, gateway.allow_non_loopback = false)",
        );
    }
    match c.channels.telegram.as_ref().map(|t| t.dm_policy) {
        Some(DmPolicy::Open) => a.fail(
            "channels.dm_open",
            Severity::High,
            "channels.telegram.dm_policy = \"open\": anyone who finds the bot can talk to your agent",
            "pincer config set channels.telegram.dm_policy pairing",
        ),
        _ => a.pass("channels.dm_open", Severity::High, "direct messages need pairing, an allowlist or are off"),
    }
    // Groups are always mention-gated in Pincer (answered only when mentioned or replied to).
    a.pass(
        "channels.group_mention",
        Severity::Medium,
        "group chats are answered only when the bot is mentioned or replied to (not configurable)",
    );
    if c.security.exec == ExecMode::Sandboxed && c.security.sandbox == SandboxProvider::None {
        a.fail(
            "exec.no_sandbox",
            Severity::High,
            "security.exec = \"sandboxed\" with security.sandbox = \"none\": commands cannot run (never unconfined)",
            "set security.sandbox = \"native\" (see `pincer sandbox check`)",
        );
    } else {
        a.pass(
            "exec.no_sandbox",
            Severity::High,
            "commands run only in an enforced sandbox",
        );
    }
    let mut broad = Vec::new();
    for (id, agent) in &c.agents {
        for entry in &agent.exec_allow {
            let words: Vec<&str> = entry.split_whitespace().collect();
            if words.len() == 1 && pincer_skills::scan::OPEN_ENDED.contains(&words[0]) {
                broad.push(format!("agents.{id}.exec_allow \"{entry}\""));
            }
        }
    }
    if broad.is_empty() {
        a.pass(
            "exec.broad_allowlist",
            Severity::Medium,
            "no exec allowlist entry allows an open-ended program",
        );
    } else {
        a.fail(
            "exec.broad_allowlist",
            Severity::Medium,
            format!("allowlisted without arguments, these run anything: {}", broad.join(", ")),
            "allowlist specific commands (\"git status\", \"cargo test\"), not interpreters or shells",
        );
    }
    // The config refuses `*` and `*.tld`; a wildcard over a domain where anyone can host
    // content (a cloud's or a code host's tenant domains) is as good as any host for
    // exfiltration.
    let wild: Vec<&String> = c
        .security
        .egress_allow
        .iter()
        .filter(|h| {
            h.strip_prefix("*.").is_some_and(|d| {
                MULTI_TENANT.iter().any(|m| {
                    d.eq_ignore_ascii_case(m) || d.to_ascii_lowercase().ends_with(&format!(".{m}"))
                })
            })
        })
        .collect();
    if c.security.network != NetworkMode::Off && !wild.is_empty() {
        a.fail(
            "network.wildcard",
            Severity::High,
            format!(
                "security.egress_allow lets agents reach any tenant of a shared hosting domain: {}",
                wild.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "name the exact hosts (my-bucket.s3.amazonaws.com), not the provider's domain",
        );
    } else {
        a.pass(
            "network.wildcard",
            Severity::High,
            "egress is off or limited to named hosts and own domains",
        );
    }
    if c.governance.bypass == BypassPolicy::Allowed {
        a.fail(
            "governance.bypass_allowed",
            Severity::Medium,
            "governance.bypass = \"allowed\": users can switch off approvals for their own L1/L2 actions",
            "pincer config set governance.bypass off (or `pincer emergency disable-bypass`)",
        );
    } else {
        a.pass(
            "governance.bypass_allowed",
            Severity::Medium,
            "bypass is off org-wide",
        );
    }
    let trusted: Vec<String> = c
        .agents
        .keys()
        .filter(|id| {
            c.approval_mode(id) == ApprovalMode::Trusted
                && (c.security.exec != ExecMode::Off || c.security.network != NetworkMode::Off)
        })
        .map(ToString::to_string)
        .collect();
    if trusted.is_empty() {
        a.pass(
            "agents.trusted_mode",
            Severity::Low,
            "no agent runs L2 actions without approval while exec or network is on",
        );
    } else {
        a.fail(
            "agents.trusted_mode",
            Severity::Low,
            format!(
                "approval_mode = \"trusted\" with exec or network on: {}",
                trusted.join(", ")
            ),
            "use \"balanced\" unless every L2 action of these agents may run unasked",
        );
    }
}

/// The secret store (D10): credentials in plain environment variables, references to secrets
/// that are not stored, a store that does not open.
fn check_secrets(config: &Config, env: &Env, a: &mut Audit) {
    let fields = pincer_config::credential_fields(config);
    let plain: Vec<&str> = fields
        .iter()
        .filter(|(_, r)| pincer_secrets::reference(r).is_none())
        .map(|(k, _)| k.as_str())
        .collect();
    if plain.is_empty() {
        a.pass(
            "secrets.plain_env",
            Severity::Low,
            "every credential comes from the encrypted secret store",
        );
    } else {
        a.fail(
            "secrets.plain_env",
            Severity::Low,
            format!(
                "credentials read from plain environment variables (visible in /proc/PID/environ, unit files and shell history): {}",
                plain.join(", ")
            ),
            "`pincer secrets set NAME` (value on stdin), then set the key to \"secret:NAME\"",
        );
    }
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .filter_map(|(k, r)| pincer_secrets::reference(r).map(|n| (k.as_str(), n)))
        .collect();
    let names = env.vault().and_then(|v| Ok(v.names()?));
    match names {
        Err(e) => a.fail(
            "secrets.store",
            Severity::High,
            format!("the secret store does not open: {e:#}"),
            "set PINCER_SECRETS_KEY to the store's key or restore secrets/secrets.key",
        ),
        Ok(names) => {
            let missing: Vec<String> = refs
                .iter()
                .filter(|(_, n)| !names.iter().any(|m| m == n))
                .map(|(k, n)| format!("{k} → secret:{n}"))
                .collect();
            if missing.is_empty() {
                a.pass(
                    "secrets.store",
                    Severity::High,
                    format!("{} secret(s) stored, every reference resolves", names.len()),
                );
            } else {
                a.fail(
                    "secrets.store",
                    Severity::High,
                    format!(
                        "references to secrets that are not stored: {}",
                        missing.join(", ")
                    ),
                    "`pincer secrets set NAME` for each",
                );
            }
        }
    }
}

fn check_home_files(home: &PincerHome, a: &mut Audit) {
    let mut loose = Vec::new();
    let paths = [
        (home.config_path(), 0o077),
        (home.state_db_path(), 0o077),
        (home.secrets_dir(), 0o077),
        (home.audit_dir(), 0o022),
        (home.skills_dir(), 0o022),
        (home.root().to_path_buf(), 0o022),
    ];
    for (p, forbidden) in paths {
        if let Ok(m) = std::fs::symlink_metadata(&p)
            && m.permissions().mode() & forbidden != 0
        {
            loose.push(format!(
                "{} ({:o})",
                p.display(),
                m.permissions().mode() & 0o777
            ));
        }
    }
    if loose.is_empty() {
        a.pass(
            "home.permissions",
            Severity::High,
            "the home's files are not readable or writable by others",
        );
    } else {
        a.fail(
            "home.permissions",
            Severity::High,
            format!("readable or writable by other users: {}", loose.join(", ")),
            "chmod 600 the files and 700 the directories (Pincer creates them so)",
        );
    }
}

fn check_audit(home: &PincerHome, config: &Config, env: &Env, a: &mut Audit) {
    let source = match pincer_server::audit::source(home, config, env) {
        Ok(s) => s,
        Err(e) => {
            a.fail(
                "audit.chain",
                Severity::Critical,
                format!("the audit log cannot be opened: {e}"),
                "check [storage] url",
            );
            return;
        }
    };
    if !source.exists() {
        a.pass("audit.chain", Severity::Critical, "no audit log yet");
        return;
    }
    match source.verify() {
        Ok(rep) => {
            a.pass(
                "audit.chain",
                Severity::Critical,
                format!("{} lines, chain intact", rep.lines),
            );
            match rep.anchored {
                Some(n) => a.pass("audit.anchor", Severity::High, format!("anchored at line {n}")),
                None => a.fail(
                    "audit.anchor",
                    Severity::High,
                    "the audit chain has no anchor: deleting it whole would go unnoticed",
                    "run any command that writes the audit log (the anchor follows every durable append)",
                ),
            }
        }
        Err(e) => a.fail(
            "audit.chain",
            Severity::Critical,
            format!("the audit log is not intact: {e}"),
            "keep the damaged log for investigation; see `pincer audit verify`",
        ),
    }
}

async fn check_tokens(store: &dyn Backend, a: &mut Audit) -> anyhow::Result<()> {
    let now = Utc::now();
    let tokens: Vec<_> = store
        .tokens()
        .await?
        .into_iter()
        .filter(|t| t.is_active(now))
        .collect();
    let stale: Vec<&str> = tokens
        .iter()
        .filter(|t| t.scopes.contains(&Scope::Admin))
        .filter(|t| t.last_used_at.unwrap_or(t.created_at) < now - Duration::days(90))
        .map(|t| t.name.as_str())
        .collect();
    if stale.is_empty() {
        a.pass(
            "tokens.admin_unused",
            Severity::Medium,
            "no admin token has been idle for 90 days",
        );
    } else {
        a.fail(
            "tokens.admin_unused",
            Severity::Medium,
            format!("admin tokens unused for 90 days: {}", stale.join(", ")),
            "pincer tokens revoke NAME",
        );
    }
    let forever: Vec<&str> = tokens
        .iter()
        .filter(|t| t.expires_at.is_none())
        .map(|t| t.name.as_str())
        .collect();
    if forever.is_empty() {
        a.pass("tokens.no_expiry", Severity::Low, "every token expires");
    } else {
        a.fail(
            "tokens.no_expiry",
            Severity::Low,
            format!("tokens that never expire: {}", forever.join(", ")),
            "pincer tokens create --expires 90d (then revoke the old one)",
        );
    }
    Ok(())
}

async fn check_mcp(store: &dyn Backend, c: &Config, a: &mut Audit) -> anyhow::Result<()> {
    let mut bad = Vec::new();
    for (name, s) in c.mcp.servers.iter().filter(|(_, s)| s.enabled) {
        match store.mcp_get(name).await? {
            Some(r) => match (&r.approved, &r.seen) {
                (None, _) => bad.push(format!("{name} (not approved)")),
                (Some(ap), Some(seen)) if ap.sha256 != seen.sha256 => {
                    bad.push(format!("{name} (manifest changed)"))
                }
                _ => {}
            },
            None => bad.push(format!("{name} (never discovered)")),
        }
        let _ = s;
    }
    if bad.is_empty() {
        a.pass(
            "mcp.unapproved",
            Severity::Medium,
            "every enabled MCP server runs its approved manifest",
        );
    } else {
        a.fail(
            "mcp.unapproved",
            Severity::Medium,
            format!(
                "enabled MCP servers whose tools are withdrawn: {}",
                bad.join(", ")
            ),
            "pincer mcp discover NAME, review, pincer mcp approve NAME --sha256 …",
        );
    }
    Ok(())
}

async fn check_skills(store: &dyn Backend, a: &mut Audit) -> anyhow::Result<()> {
    let skills = store.skills().await?;
    let changed: Vec<String> = skills
        .iter()
        .filter(|s| matches!(s.state, SkillState::Quarantined | SkillState::Blocked))
        .map(|s| format!("{} ({})", s.name, s.state.as_str()))
        .collect();
    if changed.is_empty() {
        a.pass(
            "skills.changed",
            Severity::High,
            "no installed skill is quarantined or blocked",
        );
    } else {
        a.fail(
            "skills.changed",
            Severity::High,
            format!(
                "skills whose files changed after approval or that the scan blocks: {}",
                changed.join(", ")
            ),
            "pincer skills show NAME; rescan and approve again, or remove it",
        );
    }
    let pending: Vec<&str> = skills
        .iter()
        .filter(|s| s.state == SkillState::Pending)
        .map(|s| s.name.as_str())
        .collect();
    if pending.is_empty() {
        a.pass(
            "skills.unapproved",
            Severity::Low,
            "no installed skill waits for approval",
        );
    } else {
        a.fail(
            "skills.unapproved",
            Severity::Low,
            format!("installed skills never approved: {}", pending.join(", ")),
            "review and approve them, or remove them",
        );
    }
    Ok(())
}
