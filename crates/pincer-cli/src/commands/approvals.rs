//! `pincer approvals`: the operator's side of approvals parked by `pincer serve`, directly on
//! the state database (a running server picks the decision up within a second).

use pincer_store::{ApprovalError, ApprovalStatus};

use crate::cli::ApprovalsCommand;
use crate::{Env, Failure, runtime};

/// Who a CLI decision is recorded as.
const OPERATOR: &str = "user:owner";

pub(crate) fn run(cmd: ApprovalsCommand, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    let rt = runtime::tokio_runtime()?;
    let store = rt.block_on(runtime::open_store(&home, &loaded.config, env))?;
    let failure = |e: ApprovalError| -> anyhow::Error {
        match e {
            ApprovalError::Store(e) => e.into(),
            other => Failure::usage(other.to_string()).into(),
        }
    };
    match cmd {
        ApprovalsCommand::List { all, json } => {
            let status = (!all).then_some(ApprovalStatus::Pending);
            let list = rt.block_on(store.approvals(status, 200)).map_err(failure)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("no {}approvals", if all { "" } else { "pending " });
            } else {
                for a in &list {
                    println!(
                        "{}  {:<9} {:<12} {:<15} {}  expires {}",
                        a.id,
                        a.status.as_str(),
                        a.tool,
                        a.tier.as_str(),
                        a.reason,
                        a.expires_at.to_rfc3339()
                    );
                    println!("      {}", a.detail);
                }
            }
            Ok(0)
        }
        ApprovalsCommand::Approve { id } => {
            decide(&rt, &*store, &home, &loaded.config, env, &id, true, failure)
        }
        ApprovalsCommand::Deny { id } => decide(
            &rt,
            &*store,
            &home,
            &loaded.config,
            env,
            &id,
            false,
            failure,
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn decide(
    rt: &tokio::runtime::Runtime,
    store: &dyn pincer_store::Backend,
    home: &pincer_config::PincerHome,
    config: &pincer_config::Config,
    env: &Env,
    id: &str,
    approve: bool,
    failure: impl Fn(ApprovalError) -> anyhow::Error,
) -> anyhow::Result<u8> {
    use pincer_gateway::governance::DecideError;
    // The local CLI is the owner; the decision still goes through the approver rules (and is
    // audited there), like every other path.
    let decider = pincer_policy::Decider {
        principal: pincer_server::governance::CLI_PRINCIPAL,
        role: pincer_types::Role::Owner,
    };
    let a = rt
        .block_on(async {
            let audit = runtime::open_audit(home, config, env).ok();
            pincer_gateway::governance::decide(
                store,
                audit.as_ref(),
                id,
                approve,
                decider,
                config.governance.self_approval,
                OPERATOR,
            )
            .await
        })
        .map_err(|e| match e {
            DecideError::Approval(e) => failure(e),
            other => Failure::usage(other.to_string()).into(),
        })?;
    println!("{} {}", a.id, a.status.as_str());
    Ok(0)
}
