//! `pincer heartbeat runs`: the heartbeat record — skipped (no model call), ok (HEARTBEAT_OK,
//! nothing delivered), delivered, undelivered or failed — with the tokens each used.

use crate::cli::HeartbeatCommand;
use crate::{Env, Failure, runtime};

pub(crate) fn run(cmd: HeartbeatCommand, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    let rt = runtime::tokio_runtime()?;
    let store = rt.block_on(runtime::open_store(&home, &loaded.config, env))?;
    match cmd {
        HeartbeatCommand::Runs { agent, limit, json } => {
            let agent = match agent {
                Some(a) => Some(runtime::agent_config(&home, &loaded.config, &a)?.0),
                None => None,
            };
            if limit == 0 {
                return Err(Failure::usage("--limit must be at least 1").into());
            }
            let list = rt.block_on(store.heartbeats(agent.as_ref(), limit))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(0);
            }
            if list.is_empty() {
                println!(
                    "no heartbeats yet (configure agents.<id>.heartbeat and run `pincer serve`)"
                );
            }
            let (mut input, mut output) = (0u64, 0u64);
            for h in &list {
                let tokens = h.usage.map_or_else(
                    || "—".to_owned(),
                    |u| {
                        input += u.input_tokens;
                        output += u.output_tokens;
                        format!("{}+{} tokens", u.input_tokens, u.output_tokens)
                    },
                );
                println!(
                    "{}  {:<10} {:<11} {:<18} {}",
                    h.at.to_rfc3339(),
                    h.agent,
                    h.status,
                    tokens,
                    h.detail.as_deref().unwrap_or("")
                );
            }
            if !list.is_empty() {
                println!(
                    "total: {input} input + {output} output tokens over {} heartbeats",
                    list.len()
                );
            }
        }
    }
    Ok(0)
}
