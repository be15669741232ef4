//! `pincer pairing list|approve <channel>`: the operator's side of pairing.

use chrono::Utc;
use pincer_store::ChannelError;
use serde_json::json;

use crate::cli::PairingCommand;
use crate::{Env, Failure, runtime};

pub(crate) fn run(cmd: PairingCommand, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    let rt = runtime::tokio_runtime()?;
    let store = rt.block_on(runtime::open_store(&home, &loaded.config, env))?;
    let failure = |e: ChannelError| -> anyhow::Error {
        match e {
            ChannelError::Store(e) => e.into(),
            other => Failure::usage(other.to_string()).into(),
        }
    };
    match cmd {
        PairingCommand::List { channel, json } => {
            let list = rt
                .block_on(store.pairings(&channel, Utc::now()))
                .map_err(failure)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("no pending pairing requests on {channel}");
            } else {
                for p in &list {
                    println!(
                        "{}  sender {} ({})  expires {}",
                        p.code,
                        p.sender,
                        p.name,
                        p.expires_at.to_rfc3339()
                    );
                }
            }
        }
        PairingCommand::Approve { channel, code } => {
            let p = rt
                .block_on(store.approve_pairing(&channel, &code, Utc::now()))
                .map_err(failure)?;
            runtime::audit_config(
                &home,
                &loaded.config,
                env,
                "pairing.approved",
                json!({"channel": p.channel, "sender": p.sender, "name": p.name, "by": "operator:cli"}),
            );
            println!("approved {} ({}) on {}", p.sender, p.name, p.channel);
        }
    }
    Ok(0)
}

/// `pincer invites create --user NAME [--days N]`.
pub(crate) fn invites(cmd: crate::cli::InvitesCommand, env: &Env) -> anyhow::Result<u8> {
    let crate::cli::InvitesCommand::Create { user, days } = cmd;
    if user.trim().is_empty() || user.len() > 64 {
        return Err(Failure::usage("--user must be 1 to 64 characters").into());
    }
    if !(1..=365).contains(&days) {
        return Err(Failure::usage("--days must be 1..=365").into());
    }
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    let rt = runtime::tokio_runtime()?;
    let store = rt.block_on(runtime::open_store(&home, &loaded.config, env))?;
    if rt
        .block_on(store.user(&user))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .is_none()
    {
        return Err(Failure::usage(format!(
            "no user `{user}` (add one first: `pincer users add {user} --role member`)"
        ))
        .into());
    }
    let code = rt
        .block_on(store.create_invite(&user, chrono::Duration::days(i64::from(days)), Utc::now()))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    runtime::audit_config(
        &home,
        &loaded.config,
        env,
        "invite.created",
        json!({"user": user, "days": days}),
    );
    println!("{code}");
    eprintln!("Single-use invite for `{user}`, valid {days} days: send the bot `/start {code}`.");
    Ok(0)
}
