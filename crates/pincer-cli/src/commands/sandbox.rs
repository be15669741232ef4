//! `pincer sandbox check`: probe every provider with a real confined command.

use pincer_config::Config;
use pincer_sandbox::{Probe, SandboxKind};
use serde_json::json;

use crate::cli::SandboxCommand;
use crate::{Env, runtime, sandbox};

pub(crate) fn run(cmd: SandboxCommand, env: &Env) -> anyhow::Result<u8> {
    let SandboxCommand::Check { json } = cmd;
    // Works before `pincer init`: without a config the default provider (native) is checked.
    let config = runtime::home(env)
        .ok()
        .and_then(|home| pincer_config::load(&home).ok())
        .map_or_else(Config::new, |l| l.config);
    let configured = sandbox::configured(&config);
    let probes = probe_all()?;
    let ok = configured.is_none_or(|k| probes.iter().any(|p| p.kind == k && p.is_enforced()));
    if json {
        let v = json!({
            "configured": config.security.sandbox.as_str(),
            "exec": config.security.exec,
            "enforced": ok,
            "providers": probes,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "configured: security.sandbox = \"{}\", security.exec = \"{}\"",
            config.security.sandbox.as_str(),
            serde_json::to_value(config.security.exec)?
                .as_str()
                .unwrap_or_default()
        );
        for p in &probes {
            let mark = if Some(p.kind) == configured { "*" } else { " " };
            match &p.ready {
                Some(r) if p.is_enforced() => println!(
                    "{mark} {:<7} enforced: namespaces, {}, Landlock ABI {}, seccomp {}, no capabilities",
                    p.kind.as_str(),
                    if r.own_root { "own root" } else { "bwrap root" },
                    r.landlock_abi,
                    if r.seccomp { "on" } else { "off" }
                ),
                _ => {
                    println!(
                        "{mark} {:<7} NOT enforceable: {}",
                        p.kind.as_str(),
                        p.error.as_deref().unwrap_or("unknown")
                    );
                    if let Some(fix) = &p.fix {
                        println!("          fix: {fix}");
                    }
                }
            }
        }
        if configured.is_none() {
            println!("security.sandbox = \"none\": shell.exec and process are not available.");
        } else if !ok {
            println!(
                "The configured sandbox cannot be enforced: shell.exec and process stay unavailable."
            );
        }
    }
    Ok(u8::from(!ok))
}

/// Probes both providers in a scratch directory.
pub(crate) fn probe_all() -> anyhow::Result<Vec<Probe>> {
    let dir = std::env::temp_dir().join(format!("pincer-sandbox-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let rt = runtime::tokio_runtime()?;
    let probes = rt.block_on(async {
        let mut v = Vec::new();
        for kind in [SandboxKind::Native, SandboxKind::Bwrap] {
            v.push(sandbox::probe(kind, &dir).await);
        }
        v
    });
    let _ = std::fs::remove_dir_all(&dir);
    Ok(probes)
}
