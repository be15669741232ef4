//! `pincer tools list|call`.

use std::sync::Arc;

use pincer_agent::{Approver, CallScope, CallStatus, NoApprover};
use serde_json::{Value, json};

use crate::Env;
use crate::cli::ToolsCommand;
use crate::exit::{DENIED, FAILED, NOT_APPROVED};
use crate::runtime;
use pincer_server::approver::{OperatorApprover, TerminalApprover};

pub(crate) fn run(cmd: ToolsCommand, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    let config = &loaded.config;
    match cmd {
        ToolsCommand::List { agent, json } => {
            let (id, a) = runtime::agent_config(&home, config, &agent)?;
            // Built exactly as for a run, so the exec tools appear only when the sandbox holds.
            let rt = runtime::tokio_runtime()?;
            let built = rt.block_on(async {
                let audit = runtime::open_audit(&home, config, env)?;
                // MCP tools are listed from the approved manifests (no server is started).
                let mcp = if config.mcp.servers.is_empty() {
                    None
                } else {
                    let store = runtime::open_store(&home, config, env).await?;
                    pincer_server::mcp::hub(&home, config, env, &store, &audit).await?
                };
                runtime::AgentTools::build(
                    &home,
                    config,
                    &id,
                    a,
                    env,
                    Arc::new(NoApprover),
                    runtime::ToolBacking {
                        audit,
                        store: None,
                        mcp,
                    },
                )
                .await
            })?;
            let tools = built.gate.tools();
            let policy = built.policy;
            let rows: Vec<Value> = tools
                .all()
                .map(|s| {
                    json!({"name": s.name, "capability": s.capability, "base_tier": s.base_tier,
                           "granted": policy.granted.contains(&s.name), "description": s.description})
                })
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "agent `{id}`: profile {:?}, approval mode {:?}",
                    a.profile, policy.approval_mode
                );
                let w = tools
                    .all()
                    .map(|s| s.name.as_str().len())
                    .max()
                    .unwrap_or(0)
                    .max(14);
                println!(
                    "{:<w$} {:<10} {:<15} GRANTED",
                    "TOOL", "CAPABILITY", "BASE TIER"
                );
                for s in tools.all() {
                    let granted = if policy.granted.contains(&s.name) {
                        "yes"
                    } else {
                        "no"
                    };
                    let cap = serde_json::to_value(s.capability)?;
                    println!(
                        "{:<w$} {:<10} {:<15} {granted}",
                        s.name.as_str(),
                        cap.as_str().unwrap_or(""),
                        s.base_tier.as_str()
                    );
                }
            }
            Ok(0)
        }
        ToolsCommand::Call {
            tool,
            agent,
            args,
            approve,
        } => {
            let (id, a) = runtime::agent_config(&home, config, &agent)?;
            let approver: Arc<dyn Approver> = if approve {
                Arc::new(OperatorApprover)
            } else if env.stdin_tty {
                Arc::new(TerminalApprover)
            } else {
                Arc::new(NoApprover)
            };
            let rt = runtime::tokio_runtime()?;
            let call_id = format!("cli-{}", pincer_types::RunId::new());
            let out = rt.block_on(async {
                let backing = runtime::Backing::open(&home, config, env).await?;
                let governor = pincer_server::governance::StoreGovernor::new(
                    backing.store.clone(),
                    config.governance.clone(),
                    None,
                );
                let runtime::AgentTools { gate, ctx, policy } = runtime::AgentTools::build(
                    &home,
                    config,
                    &id,
                    a,
                    env,
                    approver,
                    runtime::ToolBacking {
                        audit: backing.audit,
                        store: Some(backing.store),
                        mcp: backing.mcp,
                    },
                )
                .await?;
                // The operator's own call is still held to the emergency pause.
                let gate = (*gate).clone().with_governor(Arc::new(governor));
                let scope = CallScope {
                    ctx: &ctx,
                    policy: &policy,
                    run_id: None,
                    session: None,
                    origin: "cli",
                    taint: None,
                    skills: &[],
                };
                anyhow::Ok(gate.call(scope, &call_id, &tool, &args).await)
            })?;
            match out.result {
                Ok(text) => {
                    let pretty = serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|v| serde_json::to_string_pretty(&v).ok())
                        .unwrap_or(text);
                    println!("{pretty}");
                }
                Err(e) => eprintln!("error: {e}"),
            }
            Ok(match out.status {
                CallStatus::Ok => 0,
                CallStatus::ToolError => FAILED,
                CallStatus::Denied => DENIED,
                CallStatus::NotApproved => NOT_APPROVED,
            })
        }
    }
}
