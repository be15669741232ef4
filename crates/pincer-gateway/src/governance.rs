//! Governance shared by every entry point (D6–D8, D13): the one function that decides an
//! approval under the approver rules ([`decide`]), quotas ([`check_quota`]), the emergency
//! controls ([`emergency`]) and the secret fingerprints a credential rotation revokes. The API
//! handlers, the chat router and the CLI all call these; none re-implements them.

use std::sync::Arc;

use chrono::Utc;
use pincer_audit::AuditLog;
use pincer_config::GovernanceConfig;
use pincer_policy::{Decider, may_decide};
use pincer_store::{ApprovalError, ApprovalRecord, Backend, GovernanceError};
use pincer_types::{RiskTier, Role};
use serde_json::{Value, json};

/// Why a decision was not taken.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    /// The approver rules refuse it (audited as `approval.refused`).
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// As the store says (unknown, already decided, expired).
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    /// The store failed.
    #[error(transparent)]
    Governance(#[from] GovernanceError),
    /// The audit log cannot be written (nothing was decided).
    #[error("the audit log cannot be written")]
    Audit,
}

/// Appends an audit record off the async executor; `Err` when it could not be written.
pub async fn record(
    audit: Option<&Arc<AuditLog>>,
    kind: &'static str,
    fields: Value,
) -> Result<(), ()> {
    let Some(log) = audit.cloned() else {
        return Ok(());
    };
    match tokio::task::spawn_blocking(move || log.append(kind, fields)).await {
        Ok(Ok(_)) => Ok(()),
        _ => Err(()),
    }
}

/// Decides approval `id` for `decider` under the approver rules — the one place every path
/// (API, CLI, chat commands and buttons) goes through. The requester is the parked task's
/// owner. A refusal is audited (`approval.refused`) and nothing is decided; a decision is
/// recorded as `by` (`user:<name>`, `telegram:<id>`).
///
/// # Errors
/// [`DecideError`].
pub async fn decide(
    store: &dyn Backend,
    audit: Option<&Arc<AuditLog>>,
    id: &str,
    approve: bool,
    decider: Decider<'_>,
    self_approval: bool,
    by: &str,
) -> Result<ApprovalRecord, DecideError> {
    let a = store
        .approval(id)
        .await?
        .ok_or_else(|| ApprovalError::NotFound(id.to_owned()))?;
    let requester = match a.task {
        Some(t) => store
            .task(t)
            .await
            .map_err(|e| match e {
                pincer_store::TaskError::Store(s) => DecideError::Governance(s.into()),
                other => DecideError::Forbidden(other.to_string()),
            })?
            .and_then(|t| t.owner),
        None => None,
    };
    if let Err(why) = may_decide(decider, requester.as_deref(), a.tier, self_approval) {
        record(
            audit,
            "approval.refused",
            json!({"approval": a.id, "task": a.task, "tool": a.tool, "tier": a.tier,
                   "requester": requester, "by": by, "role": decider.role, "reason": why}),
        )
        .await
        .map_err(|()| DecideError::Audit)?;
        return Err(DecideError::Forbidden(why));
    }
    let decided = store.decide(id, approve, by, Utc::now()).await?;
    record(
        audit,
        "approval.decided",
        json!({"approval": decided.id, "task": decided.task, "status": decided.status.as_str(),
               "by": by, "role": decider.role, "requester": requester,
               "tool": decided.tool, "digest": decided.digest}),
    )
    .await
    .map_err(|()| DecideError::Audit)?;
    Ok(decided)
}

/// Whether `principal` (with `role`) may submit another task now, under `[governance.quotas]`.
///
/// # Errors
/// The one clear message the user is shown when over quota (`Ok(Err(..))`), or a store error.
pub async fn check_quota(
    store: &dyn Backend,
    config: &GovernanceConfig,
    principal: &str,
    role: Role,
) -> Result<Result<(), String>, GovernanceError> {
    let q = config.quota(role);
    if q.messages_per_minute.is_none() && q.concurrent_tasks.is_none() {
        return Ok(Ok(()));
    }
    let (recent, active) = store
        .owner_load(principal, Utc::now() - chrono::Duration::seconds(60))
        .await?;
    if let Some(n) = q.messages_per_minute
        && recent >= u64::from(n)
    {
        return Ok(Err(format!(
            "quota reached: at most {n} messages a minute for a {role}; try again in a minute"
        )));
    }
    if let Some(n) = q.concurrent_tasks
        && active >= u64::from(n)
    {
        return Ok(Err(format!(
            "quota reached: at most {n} unfinished tasks at once for a {role}; wait for one to end or cancel one"
        )));
    }
    Ok(Ok(()))
}

/// The fingerprints of the webhook secrets a server accepts.
pub fn hook_fingerprints(hooks: &std::collections::BTreeMap<String, crate::Hook>) -> Vec<String> {
    hooks
        .values()
        .map(|h| match &h.secret {
            crate::HookSecret::Hmac(s) | crate::HookSecret::Bearer(s) => secret_fingerprint(s),
        })
        .collect()
}

/// The fingerprint a credential rotation records for a webhook secret (sha256, hex).
pub fn secret_fingerprint(secret: &str) -> String {
    pincer_store::token_hash(secret)
}

/// An emergency control (D8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emergency {
    /// Every L1+ action is denied; L0 work continues.
    PauseMutating,
    /// Lifts the pause and the bypass lock.
    Resume,
    /// Cancels unfinished tasks that ran or wait on L2+ actions (their processes are killed as
    /// their runs stop).
    CancelRisky,
    /// Revokes every API token, pending pairing code and unused invite, and the webhook
    /// secrets in use (refused until new ones are set).
    RotateCredentials,
    /// Revokes every user's bypass and locks bypass off org-wide.
    DisableBypass,
}

impl Emergency {
    /// Every control, as written.
    pub const ALL: [(&'static str, Self); 5] = [
        ("pause-mutating", Self::PauseMutating),
        ("resume", Self::Resume),
        ("cancel-risky", Self::CancelRisky),
        ("rotate-credentials", Self::RotateCredentials),
        ("disable-bypass", Self::DisableBypass),
    ];

    /// The written form.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, e)| *e == self)
            .map_or("?", |(s, _)| s)
    }
}

impl std::str::FromStr for Emergency {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, e)| *e)
            .ok_or_else(|| {
                let all: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown emergency control `{s}` (controls: {})",
                    all.join(", ")
                )
            })
    }
}

/// What to rotate outside Pincer after `rotate-credentials`.
pub const ROTATE_OUTSIDE: &str = "Pincer cannot rotate these for you: provider API keys (the variables named by providers.*.api_key_env), the Telegram bot token (BotFather /revoke), webhook secrets (set new values in the variables hooks.*.secret_env names), and the Postgres password if one is used.";

/// Applies an emergency control for `by`, audits it (`emergency.<control>`), and returns the
/// report. `hook_secrets` are the fingerprints of the webhook secrets in use (for
/// `rotate-credentials`).
///
/// # Errors
/// A store error. When the audit log cannot record it the control has still been applied
/// (stopping things must not wait for the log) and the failure is reported on stderr.
pub async fn emergency(
    store: &dyn Backend,
    audit: Option<&Arc<AuditLog>>,
    control: Emergency,
    by: &str,
    hook_secrets: &[String],
) -> Result<Value, GovernanceError> {
    let now = Utc::now();
    let report = match control {
        Emergency::PauseMutating => {
            let c = store.set_paused(true, by, now).await?;
            json!({"paused": c.paused.is_some()})
        }
        Emergency::Resume => {
            store.set_paused(false, by, now).await?;
            store.set_bypass_lock(false, by, now).await?;
            json!({"paused": false, "bypass_locked": false})
        }
        Emergency::CancelRisky => {
            let tasks = store
                .cancel_risky(
                    RiskTier::L2Destructive,
                    "canceled by an emergency cancel-risky",
                    now,
                )
                .await?;
            json!({"canceled": tasks.iter().map(|t| t.id).collect::<Vec<_>>()})
        }
        Emergency::RotateCredentials => {
            let r = store.rotate_credentials(hook_secrets, by, now).await?;
            json!({"tokens_revoked": r.tokens_revoked, "pairings_dropped": r.pairings_dropped,
                   "invites_expired": r.invites_expired, "hook_secrets_revoked": hook_secrets.len(),
                   "rotate_outside": ROTATE_OUTSIDE})
        }
        Emergency::DisableBypass => {
            let revoked = store.set_bypass_lock(true, by, now).await?;
            json!({"bypass_locked": true, "revoked": revoked})
        }
    };
    let kind = match control {
        Emergency::PauseMutating => "emergency.pause_mutating",
        Emergency::Resume => "emergency.resume",
        Emergency::CancelRisky => "emergency.cancel_risky",
        Emergency::RotateCredentials => "emergency.rotate_credentials",
        Emergency::DisableBypass => "emergency.disable_bypass",
    };
    let mut fields = report.clone();
    if let Some(m) = fields.as_object_mut() {
        m.insert("by".into(), json!(by));
        m.remove("rotate_outside");
    }
    if record(audit, kind, fields).await.is_err() {
        eprintln!("pincer: the audit log cannot record {kind} (it was applied)");
    }
    Ok(report)
}
