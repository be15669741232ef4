//! The gate: the one path every tool call takes, from the agent loop and from
//! `pincer tools call` alike.
//!
//! ```text
//! resolve tool ─► parse args ─► plan (confinement) ─► policy::evaluate ─► [approval] ─► run
//!      │ audit: tool.call       policy.decision      approval.*            tool.result │
//! ```
//!
//! Fail closed: if the audit log cannot record the call or the decision, the tool does not run.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use pincer_audit::{AuditError, AuditLog};
use pincer_policy::{
    Context, Controls, Decision, Hold, HumanApproval, Policy, Refusal, authorize,
    authorize_with_approval, bypassed, check_granted, evaluate,
};
use pincer_tools::{ToolContext, ToolError, ToolRegistry};
use pincer_types::{Action, ActionDigest, AgentId, RiskTier, RunId, SessionId, ToolName};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Strings longer than this are replaced by their length and hash in audit events.
const AUDIT_STRING_CAP: usize = 2048;

/// What an approver is shown.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRequest {
    /// The agent asking.
    pub agent: AgentId,
    /// The resolved action (tool, capability, tier, detail).
    pub action: Action,
    /// The digest an approval binds to.
    pub digest: ActionDigest,
    /// Why approval is needed.
    pub reason: String,
    /// The session the call belongs to, when called from a run (lets an approver find the
    /// task to park).
    pub session: Option<SessionId>,
    /// Where the turn's untrusted content came from, when the action was held because of it
    /// (D9); empty otherwise. Shown to the person deciding.
    pub taint_sources: Vec<String>,
}

/// An approver's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalAnswer {
    /// Approved by `approver`.
    Approved {
        /// Who approved (e.g. `operator:cli`, `user:tty`).
        approver: String,
    },
    /// Refused by `by`.
    Denied {
        /// Who refused.
        by: String,
    },
    /// Nobody can answer (no terminal, no channel): treated as a denial.
    Unavailable,
}

/// The future an [`Approver`] returns.
pub type ApprovalFuture<'a> = Pin<Box<dyn Future<Output = ApprovalAnswer> + Send + 'a>>;

/// Someone who can approve actions: a terminal user, an operator, a chat owner.
pub trait Approver: Send + Sync + std::fmt::Debug {
    /// Asks about one action.
    fn ask<'a>(&'a self, request: &'a ApprovalRequest) -> ApprovalFuture<'a>;
}

/// Nobody: every request is unavailable, so every `NeedsApproval` becomes a denial.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoApprover;

impl Approver for NoApprover {
    fn ask<'a>(&'a self, _request: &'a ApprovalRequest) -> ApprovalFuture<'a> {
        Box::pin(async { ApprovalAnswer::Unavailable })
    }
}

/// The future a [`Governor`] returns.
pub type ControlsFuture<'a> = Pin<Box<dyn Future<Output = Controls> + Send + 'a>>;

/// Governance in force for a call (D7, D8): the org-wide emergency pause and the requester's
/// bypass. Asked at every call, after planning and before the decision, so a change made by an
/// admin (from any process) applies to the next action. An implementation that cannot find out
/// must answer `paused` (fail closed).
pub trait Governor: Send + Sync + std::fmt::Debug {
    /// The controls for a call of `tier` in `session`; also records that the session's task
    /// reached `tier` (what `emergency cancel-risky` looks for).
    fn controls(&self, session: Option<SessionId>, tier: RiskTier) -> ControlsFuture<'_>;
}

/// No governance: nothing paused, no bypass (tests and embedders without a store).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ungoverned;

impl Governor for Ungoverned {
    fn controls(&self, _session: Option<SessionId>, _tier: RiskTier) -> ControlsFuture<'_> {
        Box::pin(async { Controls::default() })
    }
}

/// How a call ended, for exit codes and the transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    /// The tool ran and succeeded.
    Ok,
    /// The tool ran (or planned) and failed, or its arguments were invalid.
    ToolError,
    /// Policy (or confinement) denied it.
    Denied,
    /// It needed approval and none was given.
    NotApproved,
}

/// The result of one call through the gate.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    /// The canonical tool name, when the tool exists.
    pub tool: Option<ToolName>,
    /// The action's tier, when it was planned.
    pub tier: Option<RiskTier>,
    /// How it ended.
    pub status: CallStatus,
    /// The decision as recorded (JSON).
    pub decision: Value,
    /// Result text (`Ok`) or a message for the model (`Err`).
    pub result: Result<String, String>,
}

/// Who is calling and under what rules.
#[derive(Debug, Clone, Copy)]
pub struct CallScope<'a> {
    /// Tool context (agent, file scope).
    pub ctx: &'a ToolContext,
    /// The agent's policy.
    pub policy: &'a Policy,
    /// The run, when called from the agent loop.
    pub run_id: Option<RunId>,
    /// The run's session, when called from the agent loop.
    pub session: Option<SessionId>,
    /// `agent` or `cli`.
    pub origin: &'a str,
    /// The turn's taint (D9); `None` outside a run (the operator's own call).
    pub taint: Option<&'a pincer_policy::Taint>,
    /// The skills the turn follows (G1); empty outside a run.
    pub skills: &'a [Arc<pincer_policy::SkillScope>],
}

/// The gate.
#[derive(Debug, Clone)]
pub struct Gate {
    tools: Arc<ToolRegistry>,
    audit: Arc<AuditLog>,
    approver: Arc<dyn Approver>,
    governor: Arc<dyn Governor>,
    skills: Option<Arc<dyn crate::SkillSource>>,
}

impl Gate {
    /// A gate over `tools`, recording to `audit`, asking `approver`.
    pub fn new(
        tools: Arc<ToolRegistry>,
        audit: Arc<AuditLog>,
        approver: Arc<dyn Approver>,
    ) -> Self {
        Self {
            tools,
            audit,
            approver,
            governor: Arc::new(Ungoverned),
            skills: None,
        }
    }

    /// The same gate with installed skills offered to runs.
    #[must_use]
    pub fn with_skills(mut self, skills: Arc<dyn crate::SkillSource>) -> Self {
        self.skills = Some(skills);
        self
    }

    /// Where runs load their skills from, when any are installed.
    pub fn skills(&self) -> Option<&Arc<dyn crate::SkillSource>> {
        self.skills.as_ref()
    }

    /// The same gate under `governor`'s controls.
    #[must_use]
    pub fn with_governor(mut self, governor: Arc<dyn Governor>) -> Self {
        self.governor = governor;
        self
    }

    /// The redactor secrets are scrubbed with before anything is persisted.
    pub fn redactor(&self) -> &pincer_audit::Redactor {
        self.audit.redactor()
    }

    /// The registry.
    pub fn tools(&self) -> &ToolRegistry {
        &self.tools
    }

    /// Appends an audit event off the async executor (the append `fdatasync`s).
    ///
    /// # Errors
    /// [`AuditError`] when the line could not be written.
    pub async fn audit(&self, kind: &'static str, fields: Value) -> Result<u64, AuditError> {
        let log = self.audit.clone();
        tokio::task::spawn_blocking(move || log.append(kind, fields))
            .await
            .map_err(|e| AuditError::Io {
                path: self.audit.location(),
                source: std::io::Error::other(e.to_string()),
            })?
    }

    /// Records an event that nothing irreversible waits on (see
    /// [`AuditLog::append_lazy`]): written and chained now, durable with the next durable
    /// record. Runs inline — a page-cache write.
    ///
    /// # Errors
    /// When the line cannot be written.
    pub fn audit_lazy(&self, kind: &'static str, fields: Value) -> Result<(), AuditError> {
        self.audit.append_lazy(kind, fields)
    }

    /// Runs one call. `name` is a canonical name (`fs.read`) or wire name (`fs_read`);
    /// `arguments` is the JSON text the model (or operator) sent.
    pub async fn call(
        &self,
        scope: CallScope<'_>,
        call_id: &str,
        name: &str,
        arguments: &str,
    ) -> CallOutcome {
        match self.decide_and_run(scope, call_id, name, arguments).await {
            Ok(ending) => self.finish(scope, call_id, ending).await,
            Err(AuditDown { tool, error }) => audit_down(tool, &error),
        }
    }

    /// Everything up to the tool's result; the caller records `tool.result`.
    async fn decide_and_run(
        &self,
        scope: CallScope<'_>,
        call_id: &str,
        name: &str,
        arguments: &str,
    ) -> Result<Ending, AuditDown> {
        let agent = &scope.ctx.agent;
        let tool = self.tools.by_wire(name).cloned().or_else(|| {
            name.parse::<ToolName>()
                .ok()
                .filter(|n| self.tools.get(n).is_some())
        });
        self.audit(
            "tool.call",
            json!({"run_id": scope.run_id, "agent": agent, "origin": scope.origin,
                   "call_id": call_id, "tool": tool.as_ref().map_or(name, ToolName::as_str),
                   "arguments": summarize(&parse_lenient(arguments))}),
        )
        .await
        .map_err(|error| AuditDown {
            tool: tool.clone(),
            error,
        })?;
        let Some((tool_name, t)) = tool.and_then(|n| self.tools.get(&n).cloned().map(|t| (n, t)))
        else {
            return self
                .refuse(scope, call_id, None, format!("unknown tool `{name}`"))
                .await;
        };
        let mut pctx = Context {
            agent: agent.clone(),
            taint: scope.taint.cloned().unwrap_or_default(),
            controls: Controls::default(),
            skills: scope.skills.to_vec(),
        };
        // An ungranted tool is refused before it is planned: planning may inspect files.
        if let Err(reason) = check_granted(scope.policy, &tool_name, &pctx) {
            return self.refuse(scope, call_id, Some(tool_name), reason).await;
        }
        let raw = if arguments.trim().is_empty() {
            "{}"
        } else {
            arguments
        };
        let planned = match serde_json::from_str::<Value>(raw) {
            Err(e) => Err(ToolError::InvalidArguments(format!(
                "arguments are not valid JSON: {e}"
            ))),
            Ok(args) => t.plan(scope.ctx, &args),
        };
        let action = match planned {
            Ok(a) => a,
            // Confinement refusals (escapes, protected files) are policy denials.
            Err(ToolError::Forbidden(reason)) => {
                return self.refuse(scope, call_id, Some(tool_name), reason).await;
            }
            Err(e) => {
                return Ok(Ending {
                    tool: Some(tool_name),
                    tier: None,
                    status: CallStatus::ToolError,
                    decision: json!({"decision": "invalid"}),
                    result: Err(e.to_string()),
                });
            }
        };
        let tier = action.tier;
        let digest = action.digest();
        pctx.controls = self.governor.controls(scope.session, tier).await;
        let decision = evaluate(scope.policy, &action, &pctx);
        let (word, reason, held) = match &decision {
            Decision::Allow => ("allow", String::new(), None),
            Decision::NeedsApproval {
                reason,
                held: Some(h),
                ..
            } => ("held-tainted", reason.clone(), Some(h.clone())),
            Decision::NeedsApproval { reason, .. } => ("needs_approval", reason.clone(), None),
            Decision::Deny { reason } => ("deny", reason.clone(), None),
        };
        let mut fields = json!({"run_id": scope.run_id, "agent": agent, "call_id": call_id,
                   "tool": tool_name, "capability": action.capability, "tier": tier,
                   "decision": word, "reason": reason, "digest": digest,
                   "detail": summarize(&action.detail)});
        if bypassed(scope.policy, &action, &pctx)
            && let Some(map) = fields.as_object_mut()
        {
            map.insert("bypass".into(), json!(true));
        }
        if let (Some(h), Some(map)) = (&held, fields.as_object_mut()) {
            map.insert("taint_sources".into(), json!(h.sources));
            map.insert("ungrounded".into(), json!(h.ungrounded));
            map.insert("sink".into(), json!(h.sink));
        }
        crate::stats::tool_call(tool_name.as_str(), word);
        tracing::info!(tool = %tool_name, decision = word, tier = tier.as_str(), "tool call");
        self.audit("policy.decision", fields)
            .await
            .map_err(|error| AuditDown {
                tool: Some(tool_name.clone()),
                error,
            })?;
        let approved = match decision {
            Decision::Deny { reason } => return Ok(Ending::denied(tool_name, Some(tier), reason)),
            Decision::Allow => authorize(scope.policy, action, &pctx),
            Decision::NeedsApproval { reason, .. } => {
                let approval = self
                    .approve(
                        scope,
                        call_id,
                        &tool_name,
                        action.clone(),
                        &reason,
                        held.as_ref(),
                    )
                    .await
                    .map_err(|error| AuditDown {
                        tool: Some(tool_name.clone()),
                        error,
                    })?;
                let Some(approval) = approval else {
                    return Ok(Ending {
                        tool: Some(tool_name),
                        tier: Some(tier),
                        status: CallStatus::NotApproved,
                        decision: json!({"decision": "needs_approval", "approved": false, "reason": reason}),
                        result: Err(format!(
                            "not approved: {reason}; the action was not run (ask the user to approve it, or do something else)"
                        )),
                    });
                };
                authorize_with_approval(scope.policy, action, &pctx, &approval)
            }
        };
        let approved = match approved {
            Ok(a) => a,
            Err(Refusal::Deny { reason } | Refusal::NeedsApproval { reason, .. }) => {
                return Ok(Ending::denied(tool_name, Some(tier), reason));
            }
        };
        let allowed = json!({"decision": "allow", "digest": digest});
        let (status, decision, result) = match t.run(scope.ctx, approved).await {
            Ok(out) => (CallStatus::Ok, allowed, Ok(out.content)),
            // A confinement check at use time (e.g. a symlink swapped in) is a denial too.
            Err(ToolError::Forbidden(reason)) => {
                return Ok(Ending::denied(tool_name, Some(tier), reason));
            }
            Err(e) => (CallStatus::ToolError, allowed, Err(e.to_string())),
        };
        Ok(Ending {
            tool: Some(tool_name),
            tier: Some(tier),
            status,
            decision,
            result,
        })
    }

    /// Asks the approver; records `approval.requested` and the answer.
    async fn approve(
        &self,
        scope: CallScope<'_>,
        call_id: &str,
        tool: &ToolName,
        action: Action,
        reason: &str,
        held: Option<&Hold>,
    ) -> Result<Option<HumanApproval>, AuditError> {
        let digest = &action.digest();
        let agent = &scope.ctx.agent;
        self.audit(
            "approval.requested",
            json!({"run_id": scope.run_id, "agent": agent, "call_id": call_id, "tool": tool,
                   "tier": action.tier, "digest": digest, "reason": reason}),
        )
        .await?;
        let req = ApprovalRequest {
            agent: agent.clone(),
            action,
            digest: digest.clone(),
            reason: reason.to_owned(),
            session: scope.session,
            taint_sources: held.map(|h| h.sources.clone()).unwrap_or_default(),
        };
        let answer = self.approver.ask(&req).await;
        let base = json!({"run_id": scope.run_id, "agent": agent, "call_id": call_id, "tool": tool, "digest": digest});
        let (kind, by, approval) = match answer {
            ApprovalAnswer::Approved { approver } => (
                "approval.granted",
                Value::from(approver.clone()),
                Some(HumanApproval {
                    digest: digest.clone(),
                    approver,
                }),
            ),
            ApprovalAnswer::Denied { by } => ("approval.denied", Value::from(by), None),
            ApprovalAnswer::Unavailable => ("approval.unavailable", Value::Null, None),
        };
        let mut fields = base;
        if let Some(map) = fields.as_object_mut() {
            map.insert("by".into(), by);
        }
        self.audit(kind, fields).await?;
        Ok(approval)
    }

    /// Records a denial made before there was an action to evaluate.
    async fn refuse(
        &self,
        scope: CallScope<'_>,
        call_id: &str,
        tool: Option<ToolName>,
        reason: String,
    ) -> Result<Ending, AuditDown> {
        crate::stats::tool_call(tool.as_ref().map_or("(unknown)", ToolName::as_str), "deny");
        self.audit(
            "policy.decision",
            json!({"run_id": scope.run_id, "agent": scope.ctx.agent, "call_id": call_id,
                   "tool": tool, "decision": "deny", "reason": reason}),
        )
        .await
        .map_err(|error| AuditDown {
            tool: tool.clone(),
            error,
        })?;
        Ok(Ending {
            result: Err(format!("denied by policy: {reason}")),
            decision: json!({"decision": "deny", "reason": reason}),
            status: CallStatus::Denied,
            tier: None,
            tool,
        })
    }

    /// Records `tool.result` and returns the outcome.
    async fn finish(&self, scope: CallScope<'_>, call_id: &str, e: Ending) -> CallOutcome {
        let (ok, text) = match &e.result {
            Ok(t) => (true, t.as_str()),
            Err(err) => (false, err.as_str()),
        };
        let mut fields = json!({"run_id": scope.run_id, "agent": scope.ctx.agent, "call_id": call_id,
                                "tool": e.tool, "status": e.status, "ok": ok, "bytes": text.len(),
                                "sha256": hex::encode(Sha256::digest(text.as_bytes()))});
        if !ok && let Some(map) = fields.as_object_mut() {
            map.insert("error".into(), Value::from(clip(text)));
        }
        if let Err(err) = self.audit("tool.result", fields).await {
            // The tool already ran; the model still gets its result, and the failure is loud.
            tracing::error!("audit log: could not record tool.result: {err}");
        }
        CallOutcome {
            tool: e.tool,
            tier: e.tier,
            status: e.status,
            decision: e.decision,
            result: e.result,
        }
    }
}

/// How a call ended, before `tool.result` is recorded.
struct Ending {
    tool: Option<ToolName>,
    tier: Option<RiskTier>,
    status: CallStatus,
    decision: Value,
    result: Result<String, String>,
}

impl Ending {
    fn denied(tool: ToolName, tier: Option<RiskTier>, reason: String) -> Self {
        Self {
            result: Err(format!("denied by policy: {reason}")),
            decision: json!({"decision": "deny", "reason": reason}),
            status: CallStatus::Denied,
            tier,
            tool: Some(tool),
        }
    }
}

/// The audit log could not record a step: the call is refused.
struct AuditDown {
    tool: Option<ToolName>,
    error: AuditError,
}

fn audit_down(tool: Option<ToolName>, e: &AuditError) -> CallOutcome {
    tracing::error!("audit log unavailable, refusing tool call: {e}");
    CallOutcome {
        tool,
        tier: None,
        status: CallStatus::Denied,
        decision: json!({"decision": "deny", "reason": "audit log unavailable"}),
        result: Err(format!(
            "denied: the audit log cannot be written ({e}), so no tool may run"
        )),
    }
}

fn parse_lenient(arguments: &str) -> Value {
    serde_json::from_str(arguments).unwrap_or_else(|_| Value::from(arguments))
}

fn clip(s: &str) -> String {
    if s.len() > AUDIT_STRING_CAP {
        format!("{}…", &s[..s.floor_char_boundary(AUDIT_STRING_CAP)])
    } else {
        s.to_owned()
    }
}

/// Replaces long strings (file contents, patches) by `{bytes, sha256}` so audit lines stay small
/// while still binding to the exact content.
pub fn summarize(v: &Value) -> Value {
    match v {
        Value::String(s) if s.len() > AUDIT_STRING_CAP => {
            json!({"bytes": s.len(), "sha256": hex::encode(Sha256::digest(s.as_bytes()))})
        }
        Value::Array(a) => Value::Array(a.iter().map(summarize).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), summarize(v))).collect())
        }
        other => other.clone(),
    }
}
