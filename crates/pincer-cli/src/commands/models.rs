//! `pincer models status|clear`: each agent's failover chain (B2) with the health the store
//! keeps for every model and API key, and the operator's reset.

use chrono::Utc;
use pincer_config::Config;
use pincer_server::failover::{key_subject, model_subject};
use pincer_store::ModelHealth;
use serde_json::{Value, json};

use crate::cli::ModelsCommand;
use crate::{Env, Failure, runtime};

/// `(alias, provider, model, key variables)` of an agent's chain, first is the default.
fn chain(
    config: &Config,
    a: &pincer_config::AgentConfig,
) -> Vec<(String, String, String, Vec<String>)> {
    let keys = |provider: &str| -> Vec<String> {
        config
            .providers
            .get(provider)
            .map(|p| {
                p.api_key_env
                    .iter()
                    .chain(&p.api_key_envs)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    };
    if a.models.is_empty() {
        return vec![(
            a.model.clone(),
            a.provider.clone(),
            a.model.clone(),
            keys(&a.provider),
        )];
    }
    a.models
        .iter()
        .filter_map(|alias| {
            config.models.get(alias).map(|m| {
                (
                    alias.clone(),
                    m.provider.clone(),
                    m.model.clone(),
                    keys(&m.provider),
                )
            })
        })
        .collect()
}

fn state(h: Option<&ModelHealth>) -> Value {
    let now = Utc::now();
    match h {
        None => json!({"state": "ok"}),
        Some(h) => json!({
            "state": if h.disabled { "disabled" } else if h.usable(now) { "ok" } else { "cooling_down" },
            "failures": h.failures,
            "cooldown_until": h.cooldown_until.filter(|u| *u > now),
            "last_error": h.last_error,
            "last_error_at": h.last_error_at,
        }),
    }
}

pub(crate) fn run(cmd: ModelsCommand, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    let config = &loaded.config;
    let rt = runtime::tokio_runtime()?;
    let store = rt.block_on(runtime::open_store(&home, config, env))?;
    match cmd {
        ModelsCommand::Status { json } => {
            let health = rt.block_on(store.model_health())?;
            let find = |s: &str| health.iter().find(|h| h.subject == s);
            let agents: Vec<Value> = config
                .agents
                .iter()
                .map(|(id, a)| {
                    let models: Vec<Value> = chain(config, a)
                        .into_iter()
                        .map(|(alias, provider, model, keys)| {
                            let keys: Vec<Value> = keys
                                .iter()
                                .map(|k| {
                                    let mut v = state(find(&key_subject(k)));
                                    v["key"] = json!(k);
                                    v
                                })
                                .collect();
                            let mut v = state(find(&model_subject(&alias)));
                            v["alias"] = json!(alias);
                            v["provider"] = json!(provider);
                            v["model"] = json!(model);
                            v["keys"] = json!(keys);
                            v
                        })
                        .collect();
                    json!({"agent": id, "models": models})
                })
                .collect();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"agents": agents}))?
                );
                return Ok(0);
            }
            for a in &agents {
                println!("agent {}", a["agent"].as_str().unwrap_or_default());
                for (i, m) in a["models"].as_array().into_iter().flatten().enumerate() {
                    let detail = |v: &Value| {
                        let mut s = v["state"].as_str().unwrap_or_default().to_owned();
                        if let Some(u) = v["cooldown_until"].as_str() {
                            s.push_str(&format!(" until {u}"));
                        }
                        if let Some(e) = v["last_error"].as_str() {
                            s.push_str(&format!(" (last error: {e})"));
                        }
                        s
                    };
                    println!(
                        "  {}. {:<16} {}/{:<28} {}",
                        i + 1,
                        m["alias"].as_str().unwrap_or_default(),
                        m["provider"].as_str().unwrap_or_default(),
                        m["model"].as_str().unwrap_or_default(),
                        detail(m)
                    );
                    for k in m["keys"].as_array().into_iter().flatten() {
                        println!(
                            "       key {:<20} {}",
                            k["key"].as_str().unwrap_or_default(),
                            detail(k)
                        );
                    }
                }
            }
            Ok(0)
        }
        ModelsCommand::Clear { subject } => {
            if !(subject.starts_with("model:") || subject.starts_with("key:")) {
                return Err(Failure::usage(format!(
                    "`{subject}`: name a `model:<alias>` or a `key:<VAR>` (see `pincer models status`)"
                ))
                .into());
            }
            let existed = rt.block_on(store.clear_model_health(&subject))?;
            if existed {
                runtime::audit_config(
                    &home,
                    config,
                    env,
                    "model.cleared",
                    json!({"subject": subject, "by": "operator:cli"}),
                );
                println!("{subject}: cleared");
            } else {
                println!("{subject}: nothing to clear");
            }
            Ok(0)
        }
    }
}
