//! `pincer secrets`: the encrypted secret store (D10). Values come from stdin or a prompt
//! without echo — never argv, where `ps` and shell history would see them — and are never
//! printed; every change is audited by name only.

use std::io::{Read as _, Write as _};

use pincer_secrets::{KeySource, MAX_VALUE_BYTES, NEW_KEY_VAR, Vault};
use serde_json::json;
use zeroize::Zeroizing;

use crate::cli::SecretsCommand;
use crate::{Env, Failure, runtime};

pub(crate) fn run(cmd: SecretsCommand, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    let vault = env.vault()?;
    let audit = |kind: &'static str, fields: serde_json::Value| {
        runtime::audit_config(&home, &loaded.config, env, kind, fields);
    };
    let fail = |e: pincer_secrets::SecretsError| -> anyhow::Error {
        match e {
            pincer_secrets::SecretsError::Io { .. } => e.into(),
            other => Failure::usage(other.to_string()).into(),
        }
    };
    match cmd {
        SecretsCommand::Set { name } => {
            if !pincer_secrets::name_ok(&name) {
                return Err(fail(pincer_secrets::SecretsError::BadName(name)));
            }
            let value = read_value(&name, env)?;
            let replaced = vault.set(&name, &value).map_err(fail)?;
            audit(
                "secret.set",
                json!({"name": name, "replaced": replaced, "key": key_label(&vault)}),
            );
            eprintln!(
                "{} `{name}`; refer to it in config as \"secret:{name}\".",
                if replaced { "Replaced" } else { "Stored" }
            );
        }
        SecretsCommand::List { json } => {
            let names = vault.names().map_err(fail)?;
            let uses = pincer_config::credential_fields(&loaded.config);
            let used_by = |n: &str| -> Vec<String> {
                uses.iter()
                    .filter(|(_, r)| pincer_secrets::reference(r) == Some(n))
                    .map(|(k, _)| k.clone())
                    .collect()
            };
            let missing: Vec<(String, String)> = uses
                .iter()
                .filter_map(|(k, r)| {
                    pincer_secrets::reference(r)
                        .filter(|n| !names.iter().any(|m| m == n))
                        .map(|n| (k.clone(), n.to_owned()))
                })
                .collect();
            if json {
                let out = json!({
                    "store": vault.store_path(),
                    "key": key_label(&vault),
                    "secrets": names.iter().map(|n| json!({"name": n, "used_by": used_by(n)})).collect::<Vec<_>>(),
                    "missing": missing.iter().map(|(k, n)| json!({"key": k, "name": n})).collect::<Vec<_>>(),
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                if names.is_empty() {
                    println!("no secrets (store one with `pincer secrets set NAME`)");
                }
                for n in &names {
                    let by = used_by(n);
                    if by.is_empty() {
                        println!("{n:<32} unused");
                    } else {
                        println!("{n:<32} {}", by.join(", "));
                    }
                }
                for (k, n) in &missing {
                    println!("MISSING {n:<24} referenced by {k}");
                }
            }
            return Ok(u8::from(!missing.is_empty()));
        }
        SecretsCommand::Rm { name } => {
            if !vault.remove(&name).map_err(fail)? {
                return Err(Failure::usage(format!("no secret `{name}`")).into());
            }
            audit("secret.remove", json!({"name": name}));
            println!("removed `{name}`");
        }
        SecretsCommand::RotateKey => {
            let new = env.var(NEW_KEY_VAR).map(Zeroizing::new);
            let r = vault
                .rotate_key(new.as_deref().map(String::as_str))
                .map_err(fail)?;
            audit(
                "secret.rotate_key",
                json!({"secrets": r.secrets, "old_key": r.old_key, "new_key": r.new_key}),
            );
            println!(
                "re-encrypted {} secret(s): key {} → {}",
                r.secrets, r.old_key, r.new_key
            );
            if vault.key_source() == KeySource::Environment {
                eprintln!(
                    "Now put the value of {NEW_KEY_VAR} in PINCER_SECRETS_KEY wherever Pincer runs; the old key no longer opens the store."
                );
            }
        }
    }
    Ok(0)
}

fn key_label(vault: &Vault) -> &'static str {
    match vault.key_source() {
        KeySource::Environment => "environment",
        KeySource::File => "file",
    }
}

/// The value, from a prompt without echo on a terminal, else all of stdin less one trailing
/// newline.
fn read_value(name: &str, env: &Env) -> anyhow::Result<Zeroizing<String>> {
    let mut raw = Zeroizing::new(String::new());
    if env.stdin_tty {
        eprint!("Value for `{name}` (not echoed): ");
        std::io::stderr().flush()?;
        let stdin = std::io::stdin();
        let _echo = EchoOff::new(&stdin);
        stdin.read_line(&mut raw)?;
        eprintln!();
    } else {
        std::io::stdin()
            .take(MAX_VALUE_BYTES as u64 + 3)
            .read_to_string(&mut raw)
            .map_err(|e| Failure::usage(format!("stdin: {e} (the value must be UTF-8)")))?;
    }
    let value = raw
        .strip_suffix("\r\n")
        .or_else(|| raw.strip_suffix('\n'))
        .unwrap_or(&raw);
    if value.is_empty() {
        return Err(Failure::usage(format!(
            "no value for `{name}`: pipe it in (`pincer secrets set {name} < file`) or type it at the prompt"
        ))
        .into());
    }
    Ok(Zeroizing::new(value.to_owned()))
}

/// Turns the terminal's echo off until dropped.
struct EchoOff {
    saved: Option<rustix::termios::Termios>,
}

impl EchoOff {
    fn new(stdin: &std::io::Stdin) -> Self {
        let saved = rustix::termios::tcgetattr(stdin).ok();
        if let Some(t) = &saved {
            let mut quiet = t.clone();
            quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
            let _ =
                rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, &quiet);
        }
        Self { saved }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                t,
            );
        }
    }
}

impl std::fmt::Debug for EchoOff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EchoOff")
    }
}
