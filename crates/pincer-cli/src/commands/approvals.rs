//! `pincer approvals`: the operator's side of approvals parked by `pincer serve`, directly on
//! the state database (a running server picks the decision up within a second).

use chrono::Utc;
use pincer_store::{ApprovalError, ApprovalStatus};
use serde_json::json;

use crate::cli::ApprovalsCommand;
use crate::{Env, Failure, runtime};

/// Who a CLI decision is recorded as.
const OPERATOR: &str = "operator:cli";

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
    let a = rt
        .block_on(store.decide(id, approve, OPERATOR, Utc::now()))
        .map_err(failure)?;
    runtime::audit_config(
        home,
        config,
        env,
        "approval.decided",
        json!({"approval": a.id, "status": a.status.as_str(), "by": OPERATOR,
               "tool": a.tool, "digest": a.digest}),
    );
    println!("{} {}", a.id, a.status.as_str());
    Ok(0)
}
