//! The run loop (A3) as an explicit state machine:
//!
//! ```text
//! Prompt ──► CallModel ──(tool calls)──► RunTools ──► CallModel … ──(text only)──► Finalize
//!               │ error / cancel / step limit / timeout / breaker                  ▲
//!               └───────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Every run writes a bundle and ends with a status in `meta.json`. Session history is only
//! extended by runs that succeed, so a failed run never leaves a half turn behind.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use pincer_config::PromptLimits;
use pincer_policy::Policy;
use pincer_providers::{
    ChatRequest, ErrorKind, Message, ModelProvider, ToolCall, ToolDef, collect,
};
use pincer_store::{RunRecord, SessionInfo, Store};
use pincer_tools::{ToolContext, ToolRegistry};
use pincer_types::{AgentId, RunEvent, RunId, RunStatus, TokenUsage, ToolName};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::breaker::{REPEAT_LIMIT, RepeatBreaker};
use crate::gate::{CallScope, CallStatus, Gate};
use crate::{AgentError, RunBundle, RunMeta, assemble_prompt};

/// Most bytes of one tool result passed back to the model.
const MAX_TOOL_RESULT: usize = 64 * 1024;

/// Per-agent limits and model choice for a run.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Provider name (for the record).
    pub provider_name: String,
    /// Model name (with a failover chain: the alias to start with).
    pub model: String,
    /// Only `model`, never another model of the chain (a strict pin).
    pub strict_model: bool,
    /// Most model calls.
    pub max_steps: u32,
    /// Wall-clock limit.
    pub run_timeout: Duration,
    /// `max_tokens` per model call.
    pub max_tokens: u32,
    /// Prompt caps.
    pub prompt: PromptLimits,
    /// Only the persona and rules in the prompt ([`crate::LIGHT_FILES`]); heartbeats use it.
    pub light_context: bool,
    /// The model's context window and when to compact ([`crate::compact`]).
    pub context: crate::ContextLimits,
}

/// One run to do.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The agent.
    pub agent: AgentId,
    /// Its directory (`agents/<id>`).
    pub agent_dir: PathBuf,
    /// Limits and model.
    pub settings: RunSettings,
    /// Policy for its tool calls.
    pub policy: Policy,
    /// What its tools can reach (workspace, read-only roots).
    pub tools: ToolContext,
    /// The session it continues.
    pub session: SessionInfo,
    /// The user's message.
    pub input: String,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The final `meta.json`.
    pub meta: RunMeta,
    /// The final answer (empty unless it succeeded).
    pub output: String,
    /// Where the bundle is.
    pub bundle_dir: PathBuf,
}

/// Runs agents against one provider, tool registry and store.
#[derive(Debug, Clone)]
pub struct Runner {
    provider: Arc<dyn ModelProvider>,
    gate: Arc<Gate>,
    store: Arc<dyn Store>,
}

/// Why the loop stopped.
struct Ended {
    status: RunStatus,
    kind: Option<String>,
    error: Option<String>,
}

impl Ended {
    fn ok() -> Self {
        Self {
            status: RunStatus::Succeeded,
            kind: None,
            error: None,
        }
    }
    fn failed(kind: &str, error: impl Into<String>) -> Self {
        Self {
            status: RunStatus::Failed,
            kind: Some(kind.into()),
            error: Some(error.into()),
        }
    }
}

enum State {
    CallModel,
    RunTools(Vec<ToolCall>),
    Finalize(Ended),
}

/// Mutable state of one run. `request` is the conversation as the model sees it;
/// `request.messages[history_len..]` is what this run added.
struct Turn<'a> {
    req: &'a RunRequest,
    run_id: RunId,
    bundle: RunBundle,
    request: ChatRequest,
    history_len: usize,
    output: String,
    usage: TokenUsage,
    steps: u32,
    tool_calls: u32,
    breaker: RepeatBreaker,
    /// After a compaction: what is sent in place of `request.messages[..covers]`.
    view: Option<View>,
    /// Untrusted content in the model's context so far, and the trusted content (D9).
    taint: pincer_policy::Taint,
    /// The skills this run may use (G1).
    skills: Vec<crate::RunSkill>,
    /// The skills the turn has read and now follows.
    following: Vec<Arc<pincer_policy::SkillScope>>,
}

/// A compacted view of the conversation: `sent` stands for the first `covers` messages.
struct View {
    sent: Vec<Message>,
    covers: usize,
    /// Already in the store (loaded, or saved): nothing to save at the end.
    saved: bool,
}

impl Runner {
    /// A runner.
    pub fn new(provider: Arc<dyn ModelProvider>, gate: Arc<Gate>, store: Arc<dyn Store>) -> Self {
        Self {
            provider,
            gate,
            store,
        }
    }

    /// Does one run. `on_event` sees text deltas and tool activity as they happen.
    ///
    /// # Errors
    /// Only when the bundle itself cannot be created or the store fails before the run starts;
    /// every other failure is a finished run with a non-success status.
    pub async fn run(
        &self,
        mut req: RunRequest,
        cancel: CancellationToken,
        on_event: &mut (dyn FnMut(&RunEvent) + Send),
    ) -> Result<RunOutcome, AgentError> {
        let run_id = RunId::new();
        // Tools see which run calls them (background processes belong to it).
        req.tools.run = Some(run_id);
        let started_at = Utc::now();
        let clock = Instant::now();
        // The skills usable now (verified against their approved content), if any.
        let skills = match self.gate.skills() {
            Some(source) => source.load().await,
            None => Vec::new(),
        };
        // The model is offered exactly the granted tools that exist, in name order (deterministic);
        // `skill.read` only when there is a skill to read.
        let granted: Vec<ToolName> = req.policy.granted.iter().cloned().collect();
        let tool_defs: Vec<ToolDef> = self
            .gate
            .tools()
            .specs_for(&granted)
            .filter(|s| !skills.is_empty() || s.name.as_str() != pincer_policy::skills::SKILL_READ)
            .map(|s| ToolDef {
                name: ToolRegistry::wire_name(&s.name),
                description: s.description.clone(),
                parameters: s.parameters.clone(),
            })
            .collect();
        let tools_json = serde_json::to_string(&tool_defs).unwrap_or_default();
        let mut bundle = RunBundle::create(
            &req.agent_dir.join("runs"),
            run_id,
            &req.input,
            self.gate.redactor().clone(),
        )?;
        let mut meta = RunMeta {
            run_id,
            agent: req.agent.clone(),
            session_id: req.session.id.to_string(),
            session_key: req.session.key.to_string(),
            provider: req.settings.provider_name.clone(),
            model: req.settings.model.clone(),
            status: RunStatus::Running,
            error: None,
            error_kind: None,
            started_at,
            ended_at: None,
            duration_ms: None,
            steps: 0,
            tool_calls: 0,
            prompt_sha256: String::new(),
            prompt_bytes: 0,
            truncated_files: Vec::new(),
            usage: TokenUsage::default(),
            pincer_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        on_event(&RunEvent::Started { run_id });
        let offered: Vec<&str> = tool_defs.iter().map(|t| t.name.as_str()).collect();
        // Lazy: made durable by the first tool call's record or by run.end, whichever is first.
        if let Err(e) = self.gate.audit_lazy(
            "run.start",
            json!({"run_id": run_id, "agent": req.agent, "session_id": meta.session_id,
                   "provider": meta.provider, "model": meta.model, "tools": offered}),
        ) {
            bundle.record("error", json!({"error": format!("audit log: {e}")}))?;
            let mut turn = Turn::new(&req, bundle, String::new(), 0, tool_defs, Vec::new());
            let ended = Ended::failed("audit", format!("the audit log cannot be written: {e}"));
            return self.finish(&mut turn, meta, ended, clock, on_event).await;
        }
        bundle.record(
            "run_start",
            json!({"run_id": run_id, "agent": req.agent, "session_id": meta.session_id}),
        )?;

        let prepared = self.prepare(&req, &tools_json);
        match prepared {
            Err(e) => {
                bundle.record("error", json!({"error": e.to_string()}))?;
                let mut turn = Turn::new(&req, bundle, String::new(), 0, tool_defs, Vec::new());
                let ended = Ended::failed("prepare", e.to_string());
                self.finish(&mut turn, meta, ended, clock, on_event).await
            }
            Ok(mut prompt) => {
                // What the operator's instructions ground (D9) is the files, not the listing.
                let trusted_len = prompt.text.len();
                prompt.append(&crate::skills::listing(&skills), &tools_json);
                meta.prompt_sha256 = prompt.sha256.clone();
                meta.prompt_bytes = prompt.text.len();
                meta.truncated_files = prompt
                    .files
                    .iter()
                    .filter(|f| f.truncated)
                    .map(|f| f.name.clone())
                    .collect();
                let start = self.store.begin_run(&record(&meta, req.session.id)).await?;
                let history = start
                    .history
                    .into_iter()
                    .map(serde_json::from_value::<Message>)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        pincer_store::StoreError::Corrupt(format!("session message: {e}"))
                    })?;
                // A continuing conversation resumes from its last compaction, if any (a view
                // that no longer fits the stored history is ignored).
                let view = start
                    .view
                    .filter(|v| usize::try_from(v.covers).is_ok_and(|c| c <= history.len()))
                    .and_then(|v| {
                        let sent = v
                            .sent
                            .into_iter()
                            .map(serde_json::from_value::<Message>)
                            .collect::<Result<Vec<_>, _>>()
                            .ok()?;
                        Some(View {
                            sent,
                            covers: usize::try_from(v.covers).ok()?,
                            saved: true,
                        })
                    });
                bundle.record(
                    "system_prompt",
                    json!({"sha256": prompt.sha256, "files": prompt.files, "text": prompt.text}),
                )?;
                bundle.record("user", json!({"text": req.input}))?;
                let mut turn =
                    Turn::new(&req, bundle, prompt.text, trusted_len, tool_defs, history);
                turn.skills = skills;
                turn.view = view;
                if turn.view.is_some() {
                    // The summary was written from the conversation, untrusted parts included.
                    turn.taint.add("conversation summary");
                }
                let limit = req.settings.run_timeout;
                let child = cancel.child_token();
                let looped =
                    tokio::time::timeout(limit, self.drive(&mut turn, &child, on_event)).await;
                let ended = match looped {
                    Ok(Ok(ended)) => ended,
                    Ok(Err(e)) => Ended::failed("io", e.to_string()),
                    Err(_) => {
                        child.cancel();
                        Ended {
                            status: RunStatus::TimedOut,
                            kind: Some("timeout".into()),
                            error: Some(format!("run exceeded its {}s limit", limit.as_secs())),
                        }
                    }
                };
                self.finish(&mut turn, meta, ended, clock, on_event).await
            }
        }
    }

    fn prepare(
        &self,
        req: &RunRequest,
        tools_json: &str,
    ) -> Result<crate::AssembledPrompt, AgentError> {
        if req.settings.light_context {
            crate::assemble_light_prompt(&req.agent_dir, req.settings.prompt, tools_json)
        } else {
            assemble_prompt(&req.agent_dir, req.settings.prompt, tools_json)
        }
    }

    async fn drive(
        &self,
        turn: &mut Turn<'_>,
        cancel: &CancellationToken,
        on_event: &mut (dyn FnMut(&RunEvent) + Send),
    ) -> Result<Ended, AgentError> {
        turn.request.messages.push(Message::User {
            content: turn.req.input.clone(),
        });
        let mut state = State::CallModel;
        loop {
            state = match state {
                State::Finalize(ended) => return Ok(ended),
                _ if cancel.is_cancelled() => State::Finalize(canceled()),
                State::CallModel => self.call_model(turn, cancel, on_event).await?,
                State::RunTools(calls) => self.run_tools(turn, calls, cancel, on_event).await?,
            };
        }
    }

    async fn call_model(
        &self,
        turn: &mut Turn<'_>,
        cancel: &CancellationToken,
        on_event: &mut (dyn FnMut(&RunEvent) + Send),
    ) -> Result<State, AgentError> {
        let max = turn.req.settings.max_steps;
        if turn.steps >= max {
            return Ok(State::Finalize(Ended::failed(
                "step_limit",
                format!("stopped after {max} model calls (max_steps) without a final answer"),
            )));
        }
        turn.steps += 1;
        let limits = turn.req.settings.context;
        let compacted;
        let sent = if turn.view.is_none() && !crate::needs_compaction(&turn.request, limits) {
            &turn.request
        } else {
            let mut r = turn.request.clone();
            if let Some(v) = &turn.view {
                r.messages = v
                    .sent
                    .iter()
                    .chain(&turn.request.messages[v.covers..])
                    .cloned()
                    .collect();
            }
            if crate::needs_compaction(&r, limits) {
                self.flush_memory(turn, &r, cancel).await?;
            }
            if let Some(c) = crate::compact(&*self.provider, &mut r, limits, cancel).await {
                turn.bundle.record("compaction", c.record())?;
                turn.view = Some(View {
                    sent: r.messages.clone(),
                    covers: turn.request.messages.len(),
                    saved: false,
                });
            }
            compacted = r;
            &compacted
        };
        // One span per model call (exported as a trace by the `otel` build): names, counts and
        // the outcome — never the messages.
        let span = tracing::info_span!(
            "pincer.model_call",
            provider = %turn.req.settings.provider_name,
            model = %turn.req.settings.model,
            step = turn.steps,
            outcome = tracing::field::Empty,
            input_tokens = tracing::field::Empty,
            output_tokens = tracing::field::Empty,
        );
        let stream = self.provider.stream(sent, cancel.clone());
        let result = collect(stream, |t| {
            on_event(&RunEvent::TextDelta { text: t.to_owned() })
        })
        .instrument(span.clone())
        .await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.kind.as_str(),
        };
        span.record("outcome", outcome);
        if let Ok(c) = &result {
            span.record("input_tokens", c.usage.input_tokens);
            span.record("output_tokens", c.usage.output_tokens);
        }
        crate::stats::model_call(&turn.req.settings.model, outcome);
        tracing::info!(run = %turn.run_id, model = %turn.req.settings.model, step = turn.steps, outcome, "model call");
        let completion = match result {
            Ok(c) => c,
            Err(e) if e.kind == ErrorKind::Canceled => return Ok(State::Finalize(canceled())),
            Err(e) => {
                turn.bundle.record(
                    "error",
                    json!({"kind": e.kind.as_str(), "error": e.to_string()}),
                )?;
                return Ok(State::Finalize(Ended::failed(
                    e.kind.as_str(),
                    format!("model call failed: {e}"),
                )));
            }
        };
        turn.usage.add(completion.usage);
        turn.bundle.record(
            "assistant",
            json!({
                "step": turn.steps,
                "text": completion.text,
                "tool_calls": completion.tool_calls,
                "finish": completion.finish,
                "usage": completion.usage,
            }),
        )?;
        turn.request.messages.push(Message::Assistant {
            content: completion.text.clone(),
            tool_calls: completion.tool_calls.clone(),
        });
        if completion.tool_calls.is_empty() {
            turn.output = completion.text;
            return Ok(State::Finalize(Ended::ok()));
        }
        Ok(State::RunTools(completion.tool_calls))
    }

    /// The memory flush before a compaction (A6/A7): one bounded, silent turn — up to
    /// [`FLUSH_STEPS`] model calls offered only the memory tools — in which the agent writes down
    /// what it must not lose before older turns are folded into a summary. Its calls go through
    /// the gate like any other (policy, approval, audit); nothing it says reaches the user or the
    /// session's history; it is recorded in the run bundle (`memory_flush`). Skipped when the agent
    /// has no memory tools; a failure is recorded and the compaction goes ahead.
    async fn flush_memory(
        &self,
        turn: &mut Turn<'_>,
        conversation: &ChatRequest,
        cancel: &CancellationToken,
    ) -> Result<(), AgentError> {
        let tools: Vec<ToolDef> = conversation
            .tools
            .iter()
            .filter(|t| t.name == "memory_append" || t.name == "memory_get")
            .cloned()
            .collect();
        if !tools.iter().any(|t| t.name == "memory_append") {
            return Ok(());
        }
        let mut req = conversation.clone();
        req.tools = tools;
        req.messages.push(Message::User {
            content: FLUSH_PROMPT.into(),
        });
        let mut written = 0u32;
        for _ in 0..FLUSH_STEPS {
            let completion = match collect(self.provider.stream(&req, cancel.clone()), |_| {}).await
            {
                Ok(c) => c,
                Err(e) => {
                    turn.bundle.record(
                        "memory_flush",
                        json!({"error": e.to_string(), "notes_written": written}),
                    )?;
                    return Ok(());
                }
            };
            turn.usage.add(completion.usage);
            req.messages.push(Message::Assistant {
                content: completion.text.clone(),
                tool_calls: completion.tool_calls.clone(),
            });
            if completion.tool_calls.is_empty() {
                break;
            }
            for call in completion.tool_calls {
                let scope = CallScope {
                    ctx: &turn.req.tools,
                    policy: &turn.req.policy,
                    run_id: Some(turn.run_id),
                    session: Some(turn.req.session.id),
                    origin: "agent",
                    taint: Some(&turn.taint),
                    // Saving notes is Pincer's own housekeeping, not the skill's.
                    skills: &[],
                };
                // Only the memory tools were offered; anything else is refused here too.
                if !call.name.starts_with("memory_") {
                    // Refused here, not by the gate: still every decision is audited.
                    let fields = json!({"run_id": turn.run_id, "call_id": call.id,
                                        "wire_name": call.name, "phase": "memory_flush",
                                        "reason": "only memory tools while saving notes"});
                    if let Err(e) = self.gate.audit("tool.refused", fields).await {
                        tracing::error!("audit log: could not record tool.refused: {e}");
                        return Ok(());
                    }
                    turn.bundle.record(
                        "tool_call",
                        json!({"id": call.id, "wire_name": call.name, "phase": "memory_flush",
                               "status": "refused"}),
                    )?;
                    req.messages.push(Message::Tool {
                        content: label(
                            &call.name,
                            &call.id,
                            "pincer",
                            "refused: only memory tools can be used while saving notes",
                        ),
                        call_id: call.id,
                        is_error: true,
                    });
                    continue;
                }
                let out = self
                    .gate
                    .call(scope, &call.id, &call.name, &call.arguments)
                    .await;
                written += u32::from(out.result.is_ok() && call.name == "memory_append");
                let (trust, body) = match out.result {
                    Ok(c) => ("untrusted", c),
                    Err(e) => ("pincer", e),
                };
                if trust == "untrusted" {
                    turn.taint
                        .add_content(&format!("tool:{}", call.name), &body);
                }
                turn.bundle.record(
                    "tool_call",
                    json!({"id": call.id, "wire_name": call.name, "tool": out.tool,
                           "arguments": call.arguments, "tier": out.tier,
                           "decision": out.decision, "status": out.status, "phase": "memory_flush"}),
                )?;
                req.messages.push(Message::Tool {
                    content: label(&call.name, &call.id, trust, &clip(body)),
                    call_id: call.id,
                    is_error: false,
                });
            }
        }
        turn.bundle
            .record("memory_flush", json!({"notes_written": written}))?;
        Ok(())
    }

    async fn run_tools(
        &self,
        turn: &mut Turn<'_>,
        calls: Vec<ToolCall>,
        cancel: &CancellationToken,
        on_event: &mut (dyn FnMut(&RunEvent) + Send),
    ) -> Result<State, AgentError> {
        let mut tripped = None;
        for call in calls {
            turn.tool_calls += 1;
            let scope = CallScope {
                ctx: &turn.req.tools,
                policy: &turn.req.policy,
                run_id: Some(turn.run_id),
                session: Some(turn.req.session.id),
                origin: "agent",
                taint: Some(&turn.taint),
                skills: &turn.following,
            };
            // Cancel stops a running tool at once: dropping the call drops the tool's future,
            // which kills a sandboxed command's whole process tree.
            // One span per tool call: the tool, its tier, the decision and how it ended — never
            // the arguments or the result.
            let span = tracing::info_span!(
                "pincer.tool_call",
                tool = %call.name,
                call_id = %call.id,
                tier = tracing::field::Empty,
                decision = tracing::field::Empty,
                status = tracing::field::Empty,
            );
            let out = tokio::select! {
                out = self.gate.call(scope, &call.id, &call.name, &call.arguments).instrument(span.clone()) => out,
                () = cancel.cancelled() => {
                    let fields = json!({"run_id": turn.run_id, "call_id": call.id, "wire_name": call.name});
                    if let Err(e) = self.gate.audit("tool.canceled", fields.clone()).await {
                        tracing::error!("audit log: could not record tool.canceled: {e}");
                    }
                    turn.bundle.record("tool_canceled", fields)?;
                    return Ok(State::Finalize(canceled()));
                }
            };
            if let Some(t) = out.tier {
                span.record("tier", t.as_str());
            }
            if let Some(d) = out.decision.get("decision").and_then(Value::as_str) {
                span.record("decision", d);
            }
            span.record(
                "status",
                match out.status {
                    CallStatus::Ok => "ok",
                    CallStatus::ToolError => "tool_error",
                    CallStatus::Denied => "denied",
                    CallStatus::NotApproved => "not_approved",
                },
            );
            let is_error = out.result.is_err();
            // D9: tool output is data, labelled untrusted; Pincer's own messages are labelled so.
            let (trust, body) = match out.result {
                Ok(c) => ("untrusted", c),
                Err(e) => match out.status {
                    CallStatus::ToolError => ("untrusted", e),
                    CallStatus::Ok | CallStatus::Denied | CallStatus::NotApproved => ("pincer", e),
                },
            };
            // A secret Pincer holds never reaches the model, whatever a tool read or was sent.
            let body = match self.gate.redactor().held_secrets(&body) {
                std::borrow::Cow::Borrowed(_) => body,
                std::borrow::Cow::Owned(clean) => clean,
            };
            let source = out
                .tool
                .as_ref()
                .map_or_else(|| call.name.clone(), ToString::to_string);
            let untrusted_output = out
                .tool
                .as_ref()
                .and_then(|t| self.gate.tools().get(t))
                .is_none_or(|t| t.output_is_untrusted());
            // A skill read successfully: its text is untrusted (`skill:<name>`), and the turn
            // follows it from now on (G1).
            let read_skill = (source == pincer_policy::skills::SKILL_READ && !is_error)
                .then(|| crate::skills::named(&call.arguments))
                .flatten()
                .and_then(|n| turn.skills.iter().find(|s| s.scope.name == n).cloned());
            if let Some(skill) = &read_skill {
                turn.taint
                    .add_content(&format!("skill:{}", skill.scope.name), &body);
                if !turn.following.iter().any(|f| f.name == skill.scope.name) {
                    turn.following.push(skill.scope.clone());
                }
            } else if trust == "untrusted" && untrusted_output {
                // From now on the model has read it (D9).
                turn.taint.add_content(&format!("tool:{source}"), &body);
            }
            let content = label(&source, &call.id, trust, &clip(body));
            if let Some(tool) = &out.tool {
                on_event(&RunEvent::ToolCall {
                    id: call.id.clone(),
                    tool: tool.clone(),
                    tier: out.tier,
                });
            }
            on_event(&RunEvent::ToolResult {
                id: call.id.clone(),
                is_error,
            });
            turn.bundle.record(
                "tool_call",
                json!({"id": call.id, "wire_name": call.name, "tool": out.tool, "arguments": call.arguments,
                       "tier": out.tier, "decision": out.decision, "status": out.status}),
            )?;
            turn.bundle.record(
                "tool_result",
                json!({"id": call.id, "is_error": is_error, "content": content,
                       "provenance": {"source": format!("tool:{source}"), "trust": trust}}),
            )?;
            if turn.breaker.trips(&call.name, &call.arguments, &content) && tripped.is_none() {
                tripped = Some(call.name.clone());
            }
            turn.request.messages.push(Message::Tool {
                call_id: call.id,
                content,
                is_error,
            });
        }
        if let Some(tool) = tripped {
            return Ok(State::Finalize(Ended::failed(
                "no_progress",
                format!(
                    "stopped: `{tool}` was called {REPEAT_LIMIT} times with the same arguments and result"
                ),
            )));
        }
        Ok(State::CallModel)
    }

    async fn finish(
        &self,
        turn: &mut Turn<'_>,
        mut meta: RunMeta,
        ended: Ended,
        clock: Instant,
        on_event: &mut (dyn FnMut(&RunEvent) + Send),
    ) -> Result<RunOutcome, AgentError> {
        // Background processes end with the run unless configured to outlive it.
        if let Some(exec) = &turn.req.tools.exec {
            exec.end_run(turn.run_id);
        }
        // And tools holding per-run resources (the browser) release them.
        self.gate.tools().end_run(turn.run_id);
        meta.status = ended.status;
        meta.error = ended.error;
        meta.error_kind = ended.kind;
        meta.ended_at = Some(Utc::now());
        meta.duration_ms = Some(u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX));
        crate::stats::run_finished(
            match meta.status {
                RunStatus::Running => "running",
                RunStatus::Succeeded => "succeeded",
                RunStatus::Failed => "failed",
                RunStatus::Canceled => "canceled",
                RunStatus::TimedOut => "timed_out",
            },
            clock.elapsed(),
        );
        meta.steps = turn.steps;
        meta.tool_calls = turn.tool_calls;
        meta.usage = turn.usage;
        if meta.status != RunStatus::Succeeded {
            turn.output.clear();
        }
        turn.bundle.record(
            "run_end",
            json!({"status": meta.status, "error": meta.error, "usage": meta.usage}),
        )?;
        let output = if meta.status == RunStatus::Succeeded {
            turn.output.clone()
        } else {
            format!(
                "Run {:?}: {}\n",
                meta.status,
                meta.error.as_deref().unwrap_or("no answer")
            )
        };
        turn.bundle.finish(&output)?;
        turn.bundle.write_meta(&meta)?;
        if let Err(e) = self
            .gate
            .audit(
                "run.end",
                json!({"run_id": meta.run_id, "agent": meta.agent, "status": meta.status,
                       "error_kind": meta.error_kind, "steps": meta.steps,
                       "tool_calls": meta.tool_calls, "usage": meta.usage}),
            )
            .await
        {
            tracing::error!("audit log: could not record run.end: {e}");
        }
        // Session history is persisted (only for runs that succeeded), so it is redacted like
        // every other artifact; the run's record and its messages are written together.
        let msgs: Vec<Value> = if meta.status == RunStatus::Succeeded {
            let redactor = self.gate.redactor();
            turn.request.messages[turn.history_len..]
                .iter()
                .filter_map(|m| serde_json::to_value(m).ok())
                .map(|v| redactor.redact(v))
                .collect()
        } else {
            Vec::new()
        };
        self.store
            .end_run(&record(&meta, turn.req.session.id), msgs)
            .await?;
        // A compaction made in a successful run is kept for the next one (its messages are now
        // stored, so the view's `covers` matches them).
        if meta.status == RunStatus::Succeeded
            && let Some(v) = turn.view.as_ref().filter(|v| !v.saved)
        {
            let redactor = self.gate.redactor();
            let view = pincer_store::SessionView {
                covers: u64::try_from(v.covers).unwrap_or(u64::MAX),
                sent: v
                    .sent
                    .iter()
                    .filter_map(|m| serde_json::to_value(m).ok())
                    .map(|m| redactor.redact(m))
                    .collect(),
            };
            self.store
                .set_session_view(turn.req.session.id, &view)
                .await?;
        }
        on_event(&RunEvent::Finished {
            status: meta.status,
        });
        Ok(RunOutcome {
            output: turn.output.clone(),
            bundle_dir: turn.bundle.dir().to_owned(),
            meta,
        })
    }
}

impl<'a> Turn<'a> {
    fn new(
        req: &'a RunRequest,
        bundle: RunBundle,
        system: String,
        trusted_len: usize,
        tool_defs: Vec<ToolDef>,
        history: Vec<Message>,
    ) -> Self {
        let history_len = history.len();
        // Only the operator's instruction files ground sink arguments (D9), not what Pincer
        // appended after them (the skills listing).
        let trusted = system.get(..trusted_len).unwrap_or(&system);
        let taint = crate::provenance::initial(trusted, &history, false, &req.input);
        let request = ChatRequest {
            model: req.settings.model.clone(),
            strict_model: req.settings.strict_model,
            system,
            messages: history,
            tools: tool_defs,
            max_tokens: req.settings.max_tokens,
            context: pincer_providers::CallContext {
                agent: req.agent.to_string(),
                session: req.session.key.to_string(),
            },
        };
        Self {
            req,
            run_id: bundle.run_id(),
            bundle,
            request,
            history_len,
            output: String::new(),
            usage: TokenUsage::default(),
            steps: 0,
            tool_calls: 0,
            breaker: RepeatBreaker::default(),
            view: None,
            taint,
            skills: Vec::new(),
            following: Vec::new(),
        }
    }
}

/// Most model calls of a memory flush.
const FLUSH_STEPS: usize = 3;

/// What the agent is told before a compaction.
const FLUSH_PROMPT: &str = "[Pincer] This conversation is about to be compacted: older turns \
will be replaced by a short summary. Before that happens, save anything you will need later — \
facts, names, numbers, decisions, preferences, open tasks — with memory_append (use a section for \
long-term facts). Reply with DONE when you have saved what matters. The user does not see this \
exchange.";

fn canceled() -> Ended {
    Ended {
        status: RunStatus::Canceled,
        kind: Some("canceled".into()),
        error: Some("canceled by the user".into()),
    }
}

/// Wraps tool output for the model with its provenance. Closing tags inside the content are
/// defused so data cannot end its own wrapper and pose as instructions.
fn label(source: &str, call_id: &str, trust: &str, body: &str) -> String {
    let body = crate::provenance::defuse(body);
    let source: String = source
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .collect();
    let call_id: String = call_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        .collect();
    format!(
        "<tool_output tool=\"{source}\" call_id=\"{call_id}\" trust=\"{trust}\">\n{body}\n</tool_output>"
    )
}

fn clip(mut s: String) -> String {
    if s.len() > MAX_TOOL_RESULT {
        s.truncate(s.floor_char_boundary(MAX_TOOL_RESULT));
        s.push_str("\n[… tool result truncated …]");
    }
    s
}

fn record(meta: &RunMeta, session: pincer_types::SessionId) -> RunRecord {
    RunRecord {
        id: meta.run_id,
        agent: meta.agent.clone(),
        session,
        status: meta.status,
        model: meta.model.clone(),
        prompt_sha256: meta.prompt_sha256.clone(),
        usage: meta.usage,
        started_at: meta.started_at,
        ended_at: meta.ended_at,
        error: meta.error.clone(),
    }
}
