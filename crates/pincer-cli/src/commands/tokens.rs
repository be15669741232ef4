//! `pincer tokens`: API tokens for the server. Secrets are printed once and never stored;
//! every change is audited (name and scopes only).

use chrono::{DateTime, Utc};
use pincer_store::TokenInfo;
use pincer_types::Scope;
use serde_json::json;

use crate::cli::TokensCommand;
use crate::{Env, Failure, runtime};

/// Parses `30d`, `12h`, `90m`, `45s` into a duration.
fn lifetime(s: &str) -> Result<chrono::Duration, Failure> {
    let bad = || {
        Failure::usage(format!(
            "--expires `{s}`: use a number and d, h, m or s (`30d`)"
        ))
    };
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num.parse().map_err(|_| bad())?;
    if n <= 0 {
        return Err(bad());
    }
    match unit {
        "d" => chrono::Duration::try_days(n),
        "h" => chrono::Duration::try_hours(n),
        "m" => chrono::Duration::try_minutes(n),
        "s" => chrono::Duration::try_seconds(n),
        _ => None,
    }
    .ok_or_else(bad)
}

fn show(t: &TokenInfo, now: DateTime<Utc>) -> String {
    let scopes: Vec<&str> = t.scopes.iter().map(|s| s.as_str()).collect();
    let state = if t.revoked_at.is_some() {
        "revoked".to_owned()
    } else if t.expires_at.is_some_and(|e| e <= now) {
        "expired".to_owned()
    } else if t.role.is_none() || t.user_disabled {
        "inactive (user disabled)".to_owned()
    } else {
        t.expires_at.map_or_else(
            || "active".to_owned(),
            |e| format!("active until {}", e.to_rfc3339()),
        )
    };
    format!(
        "{:<24} {:<12} {:<48} {state}",
        t.name,
        t.user,
        scopes.join(",")
    )
}

pub(crate) fn run(cmd: TokensCommand, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    let rt = runtime::tokio_runtime()?;
    let store = rt.block_on(runtime::open_store(&home, &loaded.config, env))?;
    let now = Utc::now();
    let audit = |kind: &'static str, fields: serde_json::Value| {
        runtime::audit_config(&home, &loaded.config, env, kind, fields);
    };
    let usage = |e: pincer_store::TokenError| -> anyhow::Error {
        match e {
            pincer_store::TokenError::Store(e) => e.into(),
            other => Failure::usage(other.to_string()).into(),
        }
    };
    match cmd {
        TokensCommand::Create {
            name,
            scopes,
            expires,
            user,
        } => {
            let scopes: Vec<Scope> = scopes
                .iter()
                .map(|s| s.trim().parse().map_err(Failure::usage))
                .collect::<Result<_, _>>()?;
            let expires_at = expires
                .as_deref()
                .map(lifetime)
                .transpose()?
                .map(|d| now + d);
            let (secret, info) = rt
                .block_on(store.create_token(&name, &user, &scopes, expires_at, now))
                .map_err(usage)?;
            audit(
                "token.create",
                json!({"name": info.name, "user": info.user, "scopes": info.scopes, "expires_at": info.expires_at}),
            );
            println!("{secret}");
            eprintln!(
                "Token `{}` created. This is the only time it is shown; send it as `Authorization: Bearer <token>`.",
                info.name
            );
        }
        TokensCommand::List { json } => {
            let all = rt.block_on(store.tokens()).map_err(usage)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else if all.is_empty() {
                println!("no tokens (create one with `pincer tokens create --name N --scopes …`)");
            } else {
                for t in &all {
                    println!("{}", show(t, now));
                }
            }
        }
        TokensCommand::Revoke { name } => {
            let info = rt.block_on(store.revoke_token(&name, now)).map_err(usage)?;
            audit("token.revoke", json!({"name": info.name}));
            println!("revoked `{}`", info.name);
        }
        TokensCommand::Rotate { name } => {
            let (secret, info) = rt.block_on(store.rotate_token(&name, now)).map_err(usage)?;
            audit(
                "token.rotate",
                json!({"name": info.name, "scopes": info.scopes}),
            );
            println!("{secret}");
            eprintln!(
                "Token `{}` rotated; the old secret no longer works.",
                info.name
            );
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_parse() {
        assert_eq!(lifetime("30d").unwrap(), chrono::Duration::days(30));
        assert_eq!(lifetime("12h").unwrap(), chrono::Duration::hours(12));
        for bad in ["", "d", "0d", "-1d", "5w", "1.5h", "99999999999999999d"] {
            assert!(lifetime(bad).is_err(), "{bad}");
        }
    }
}
