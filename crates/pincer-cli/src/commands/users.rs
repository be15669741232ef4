//! `pincer users …` and `pincer emergency …` (D7, D8, D13) on this home's store. The local CLI
//! acts as the installation's owner (`user:owner` in the audit log); every change is audited.

use chrono::Utc;
use pincer_gateway::governance::Emergency;
use pincer_store::{GovernanceError, UserRecord};
use pincer_types::Role;
use serde_json::json;

use crate::cli::{EmergencyCommand, UsersCommand};
use crate::{Env, Failure, runtime};

/// How the local CLI's changes are recorded.
const BY: &str = "user:owner";

fn failure(e: GovernanceError) -> anyhow::Error {
    match e {
        GovernanceError::Store(e) => e.into(),
        other => Failure::usage(other.to_string()).into(),
    }
}

fn account(s: &str) -> Result<(&str, &str), Failure> {
    s.split_once(':')
        .filter(|(c, id)| !c.is_empty() && !id.is_empty())
        .ok_or_else(|| {
            Failure::usage(format!(
                "`{s}`: give the account as channel:sender (telegram:123456)"
            ))
        })
}

fn show(u: &UserRecord, ids: &[pincer_store::Identity]) -> String {
    let state = if u.enabled() { "enabled" } else { "disabled" };
    let linked: Vec<String> = ids
        .iter()
        .map(|i| format!("{}:{}", i.channel, i.sender))
        .collect();
    format!(
        "{:<20} {:<9} {:<9} bypass {:<3} {}",
        u.name,
        u.role.as_str(),
        state,
        if u.bypass { "on" } else { "off" },
        linked.join(",")
    )
}

pub(crate) fn run(cmd: UsersCommand, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    let config = &loaded.config;
    let rt = runtime::tokio_runtime()?;
    let store = rt.block_on(runtime::open_store(&home, config, env))?;
    let audit = |kind: &'static str, fields: serde_json::Value| {
        runtime::audit_config(&home, config, env, kind, fields);
    };
    let role = |s: &str| -> Result<Role, Failure> { s.parse().map_err(Failure::usage) };
    let now = Utc::now();
    match cmd {
        UsersCommand::Add { name, role: r } => {
            let u = rt
                .block_on(store.add_user(&name, role(&r)?, now))
                .map_err(failure)?;
            audit(
                "user.added",
                json!({"user": u.name, "role": u.role, "by": BY}),
            );
            println!("added `{}` ({})", u.name, u.role);
        }
        UsersCommand::List { json } => {
            let users = rt.block_on(store.users()).map_err(failure)?;
            let mut rows = Vec::new();
            for u in users {
                let ids = rt.block_on(store.identities(&u.name)).map_err(failure)?;
                rows.push((u, ids));
            }
            if json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(u, ids)| json!({"user": u, "identities": ids}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for (u, ids) in &rows {
                    println!("{}", show(u, ids));
                }
            }
        }
        UsersCommand::Role { name, role: r } => {
            let before = rt
                .block_on(store.user(&name))
                .map_err(failure)?
                .ok_or_else(|| Failure::usage(format!("no user `{name}`")))?;
            let u = rt
                .block_on(store.set_role(&name, role(&r)?))
                .map_err(failure)?;
            audit(
                "user.role",
                json!({"user": u.name, "from": before.role, "to": u.role, "by": BY}),
            );
            println!("`{}` is now {}", u.name, u.role);
        }
        UsersCommand::Disable { name } => {
            let d = rt
                .block_on(store.disable_user(&name, now))
                .map_err(failure)?;
            audit(
                "user.disabled",
                json!({"user": name, "approvals_denied": d.approvals_denied,
                       "tasks_canceled": d.tasks_canceled, "by": BY}),
            );
            println!(
                "disabled `{name}`: {} approval(s) denied, {} task(s) canceled; their tokens and chat access stopped",
                d.approvals_denied.len(),
                d.tasks_canceled.len()
            );
        }
        UsersCommand::Enable { name } => {
            let u = rt.block_on(store.enable_user(&name)).map_err(failure)?;
            audit("user.enabled", json!({"user": u.name, "by": BY}));
            println!("enabled `{}`", u.name);
        }
        UsersCommand::Link { name, account: a } => {
            let (channel, sender) = account(&a)?;
            rt.block_on(store.link(&name, channel, sender, now))
                .map_err(failure)?;
            audit(
                "user.linked",
                json!({"user": name, "channel": channel, "sender": sender, "by": BY}),
            );
            println!("linked {channel}:{sender} to `{name}`");
        }
        UsersCommand::Unlink { account: a } => {
            let (channel, sender) = account(&a)?;
            if !rt
                .block_on(store.unlink(channel, sender))
                .map_err(failure)?
            {
                return Err(Failure::usage(format!("{a} is not linked")).into());
            }
            audit(
                "user.unlinked",
                json!({"channel": channel, "sender": sender, "by": BY}),
            );
            println!("unlinked {a}");
        }
        UsersCommand::Bypass { name, state } => {
            let on = match state.as_str() {
                "on" => true,
                "off" => false,
                other => return Err(Failure::usage(format!("`{other}`: use on or off")).into()),
            };
            if on && config.governance.bypass != pincer_config::BypassPolicy::Allowed {
                return Err(Failure::usage(
                    "bypass is off by org policy (set governance.bypass = \"allowed\" first)",
                )
                .into());
            }
            let u = rt.block_on(store.set_bypass(&name, on)).map_err(failure)?;
            audit(
                "user.bypass",
                json!({"user": u.name, "enabled": u.bypass, "by": BY}),
            );
            println!(
                "bypass for `{}` is {}",
                u.name,
                if u.bypass { "on" } else { "off" }
            );
        }
    }
    Ok(0)
}

pub(crate) fn emergency(cmd: EmergencyCommand, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    let config = &loaded.config;
    let rt = runtime::tokio_runtime()?;
    let store = rt.block_on(runtime::open_store(&home, config, env))?;
    let control = match cmd {
        EmergencyCommand::Status { json } => {
            let c = rt.block_on(store.controls()).map_err(failure)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
            } else {
                let on = |s: &Option<pincer_store::ControlSet>| {
                    s.as_ref().map_or_else(
                        || "no".to_owned(),
                        |c| format!("yes (since {} by {})", c.at.to_rfc3339(), c.by),
                    )
                };
                println!("mutating actions paused: {}", on(&c.paused));
                println!("bypass locked off:       {}", on(&c.bypass_locked));
                println!("revoked hook secrets:    {}", c.revoked_hook_secrets.len());
            }
            return Ok(0);
        }
        EmergencyCommand::PauseMutating => Emergency::PauseMutating,
        EmergencyCommand::Resume => Emergency::Resume,
        EmergencyCommand::CancelRisky => Emergency::CancelRisky,
        EmergencyCommand::RotateCredentials => Emergency::RotateCredentials,
        EmergencyCommand::DisableBypass => Emergency::DisableBypass,
    };
    let hooks = pincer_server::jobs::hooks(config, env)
        .map(|h| pincer_gateway::governance::hook_fingerprints(&h))
        .unwrap_or_default();
    let report = rt.block_on(async {
        let audit = runtime::open_audit(&home, config, env).ok();
        pincer_gateway::governance::emergency(&*store, audit.as_ref(), control, BY, &hooks).await
    });
    let report = report.map_err(failure)?;
    println!(
        "{}: {}",
        control.as_str(),
        serde_json::to_string_pretty(&report)?
    );
    if control == Emergency::RotateCredentials {
        eprintln!(
            "Every API token is revoked: create new ones with `pincer tokens create`. {}",
            pincer_gateway::governance::ROTATE_OUTSIDE
        );
    }
    Ok(0)
}

/// `pincer ui login [--user NAME]`: a one-time sign-in link for the web page.
pub(crate) fn ui(cmd: crate::cli::UiCommand, env: &Env) -> anyhow::Result<u8> {
    let crate::cli::UiCommand::Login { user } = cmd;
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    let config = &loaded.config;
    let rt = runtime::tokio_runtime()?;
    let store = rt.block_on(runtime::open_store(&home, config, env))?;
    let now = Utc::now();
    let u = rt
        .block_on(store.user(&user))
        .map_err(failure)?
        .filter(UserRecord::enabled)
        .ok_or_else(|| Failure::usage(format!("no enabled user `{user}`")))?;
    let token_name = format!("ui-{}-{}", u.name, now.timestamp());
    let expires = now + chrono::Duration::hours(12);
    rt.block_on(store.create_token(&token_name, &u.name, u.role.scopes(), Some(expires), now))
        .map_err(|e| Failure::usage(e.to_string()))?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let link = hex::encode(bytes);
    rt.block_on(store.create_ui_session(
        &pincer_store::token_hash(&link),
        &token_name,
        "",
        now,
        now + chrono::Duration::minutes(10),
    ))?;
    runtime::audit_config(
        &home,
        config,
        env,
        "ui.link_created",
        json!({"user": u.name, "token": token_name, "by": BY}),
    );
    println!("http://{}/ui/login/{link}", config.gateway.bind);
    eprintln!(
        "One-time sign-in link for `{}`, valid 10 minutes (the session lasts 12 hours).",
        u.name
    );
    Ok(0)
}
