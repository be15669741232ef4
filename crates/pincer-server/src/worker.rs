//! The worker pool of `pincer serve`: `gateway.workers` loops that claim queued tasks (one
//! active task per session, enforced by the queue), run them through the same runner as
//! `pincer ask`, keep their lease alive, stop them within half a second when they are canceled
//! through the API, and record the outcome.
//!
//! An action that needs approval parks its task: the [`TaskApprover`] records an approval (bound
//! to the action's digest, expiring after `gateway.approval_ttl_secs`), moves the task to
//! `WAITING_APPROVAL`, and waits for a decision through the API. Approved → the task is
//! `RUNNING` again and exactly that action runs; denied or expired → the model is told no and
//! the run carries on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use pincer_agent::{ApprovalAnswer, ApprovalFuture, ApprovalRequest, Approver};
use pincer_config::{Config, PincerHome};
use pincer_gateway::EventBus;
use pincer_store::{ApprovalStatus, Backend, NewApproval, TaskRecord};
use pincer_types::{AgentId, RunStatus, SessionId, TaskId, TaskStatus};
use serde_json::json;
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::Env;
use crate::runtime::{self, AgentRuntime};

/// How often a running task's state is checked for cancellation.
const CANCEL_CHECK: Duration = Duration::from_millis(500);
/// Longest idle wait before looking for work again (tasks from other processes, expiries).
const IDLE: Duration = Duration::from_secs(1);
/// Longest wait between claims while the store is unreachable (the wait doubles from
/// [`IDLE`]; a submitted task wakes the worker at once).
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// What the workers share.
#[derive(Debug)]
pub struct Pool {
    pub home: PincerHome,
    pub config: Config,
    pub env: Env,
    pub store: Arc<dyn Backend>,
    /// Woken when a task is submitted.
    pub wake: Arc<Notify>,
    /// Task and approval events (also wakes waiters).
    pub events: Arc<EventBus>,
    /// The server's audit log, opened once.
    pub audit: Arc<pincer_audit::AuditLog>,
    /// The process's MCP servers, shared by every agent.
    pub mcp: Option<Arc<pincer_mcp::hub::McpHub>>,
    runtimes: Mutex<HashMap<AgentId, Arc<AgentRuntime>>>,
    /// The running task of each session (one at most), for the approver.
    active: Active,
    /// The config agents are built from, reloaded when `config.toml` changes (an admin's policy
    /// change applies from the next task, without a restart).
    live: std::sync::Mutex<Live>,
}

/// The config agent runtimes are built from, and the file identity it was read at.
#[derive(Debug)]
struct Live {
    stamp: Option<(std::time::SystemTime, u64, u64)>,
    config: Arc<Config>,
}

/// `config.toml`'s modification time, length and inode (a save replaces it by rename).
fn stamp_of(path: &std::path::Path) -> Option<(std::time::SystemTime, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

/// Session → (task, worker) of the task running in it.
pub type Active = Arc<std::sync::Mutex<HashMap<SessionId, (TaskId, String)>>>;

fn active_map(a: &Active) -> std::sync::MutexGuard<'_, HashMap<SessionId, (TaskId, String)>> {
    a.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Pool {
    pub fn new(
        home: PincerHome,
        config: Config,
        env: Env,
        store: Arc<dyn Backend>,
        wake: Arc<Notify>,
        events: Arc<EventBus>,
        audit: Arc<pincer_audit::AuditLog>,
    ) -> Self {
        let live = std::sync::Mutex::new(Live {
            stamp: stamp_of(&home.config_path()),
            config: Arc::new(config.clone()),
        });
        Self {
            home,
            config,
            env,
            store,
            wake,
            events,
            audit,
            mcp: None,
            runtimes: Mutex::new(HashMap::new()),
            active: Arc::new(std::sync::Mutex::new(HashMap::new())),
            live,
        }
    }

    /// Gives the workers' agents the process's MCP servers.
    #[must_use]
    pub fn with_mcp(mut self, hub: Option<Arc<pincer_mcp::hub::McpHub>>) -> Self {
        self.mcp = hub;
        self
    }

    fn lease(&self) -> Duration {
        Duration::from_secs(self.config.gateway.lease_secs)
    }

    fn publish(&self, kind: &str, task: &TaskRecord) {
        self.events.publish(
            kind,
            json!({"task": task.id, "agent": task.agent, "status": task.status}),
        );
    }

    /// The config to build agents from: re-read when `config.toml` changed since the last
    /// look. An invalid file is not applied (the running config stays, as `pincer serve` would
    /// refuse to start on it); a changed valid one is, audited as `config.reloaded`.
    fn live_config(&self) -> (Arc<Config>, bool) {
        let path = self.home.config_path();
        let now = stamp_of(&path);
        let mut live = self
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now == live.stamp {
            return (live.config.clone(), false);
        }
        live.stamp = now;
        let text = std::fs::read_to_string(&path);
        match text
            .map_err(|e| e.to_string())
            .and_then(|t| pincer_config::parse_and_validate(&path, &t).map_err(|e| e.to_string()))
        {
            Ok(c) if c != *live.config => {
                live.config = Arc::new(c);
                (live.config.clone(), true)
            }
            Ok(_) => (live.config.clone(), false),
            Err(e) => {
                eprintln!(
                    "pincer serve: config.toml changed but is invalid; agents keep running on the previous config: {e}"
                );
                (live.config.clone(), false)
            }
        }
    }

    /// The agent's runtime, built once per config (rebuilt for the next task after the config
    /// changed; running tasks finish on the runtime they started with).
    async fn runtime(&self, agent: &AgentId) -> anyhow::Result<Arc<AgentRuntime>> {
        let (config, changed) = self.live_config();
        let mut map = self.runtimes.lock().await;
        if changed {
            map.clear();
            runtime::record(
                &self.audit,
                "config.reloaded",
                json!({"by": "pincer serve", "agents": config.agents.keys().collect::<Vec<_>>()}),
            )
            .await;
        }
        if let Some(rt) = map.get(agent) {
            return Ok(rt.clone());
        }
        let rt = Arc::new(
            AgentRuntime::build(
                &self.home,
                &config,
                agent.as_str(),
                &self.env,
                Arc::new(TaskApprover {
                    redactor: self.audit.redactor().clone(),
                    store: self.store.clone(),
                    active: self.active.clone(),
                    events: self.events.clone(),
                    ttl: Duration::from_secs(config.gateway.approval_ttl_secs),
                }),
                runtime::Backing {
                    store: self.store.clone(),
                    audit: self.audit.clone(),
                    mcp: self.mcp.clone(),
                    tasks: Some(self.active.clone()),
                },
            )
            .await?,
        );
        map.insert(agent.clone(), rt.clone());
        Ok(rt)
    }
}

/// Runs `n` workers until `stop`; each finishes its current task first. Alongside, ends tasks
/// whose worker died (expired lease) or whose deadline passed, once a second.
pub async fn run(pool: Arc<Pool>, n: usize, stop: CancellationToken) {
    let mut handles = Vec::new();
    {
        let pool = pool.clone();
        let stop = stop.clone();
        handles.push(tokio::spawn(async move {
            while !stop.is_cancelled() {
                recover(&pool).await;
                sync_audit(&pool).await;
                tokio::select! {
                    () = tokio::time::sleep(IDLE) => {}
                    () = stop.cancelled() => {}
                }
            }
        }));
    }
    for i in 0..n {
        let pool = pool.clone();
        let stop = stop.clone();
        let name = format!("worker-{}-{i}", std::process::id());
        handles.push(tokio::spawn(async move { work(pool, name, stop).await }));
    }
    for h in handles {
        let _ = h.await;
    }
}

/// Makes lazily recorded audit lines durable, so none stays unsynced for more than about a
/// second.
async fn sync_audit(pool: &Pool) {
    // Idle servers have nothing to sync: no blocking-pool hand-off then.
    if pool.audit.is_synced() {
        return;
    }
    let log = pool.audit.clone();
    match tokio::task::spawn_blocking(move || log.sync()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("pincer serve: syncing the audit log failed: {e}"),
        Err(e) => eprintln!("pincer serve: syncing the audit log failed: {e}"),
    }
}

/// Ends interrupted and overdue tasks (see the queue's recovery contract) and audits each.
pub async fn recover(pool: &Pool) {
    match pool.store.recover_expired(Utc::now()).await {
        Ok(ids) if !ids.is_empty() => {
            for id in &ids {
                runtime::record(
                    &pool.audit,
                    "task.recovered",
                    json!({"task": id.to_string()}),
                )
                .await;
                pool.events.publish("task.recovered", json!({"task": id}));
            }
        }
        Ok(_) => {}
        Err(e) => eprintln!("pincer serve: recovering tasks failed: {e}"),
    }
}

async fn work(pool: Arc<Pool>, name: String, stop: CancellationToken) {
    // While the store is unreachable: back off (said once, and once when it is back).
    let mut outage: Option<(std::time::Instant, Duration)> = None;
    while !stop.is_cancelled() {
        let claimed = pool.store.claim(&name, Utc::now(), pool.lease()).await;
        if claimed.is_ok()
            && let Some((since, _)) = outage.take()
        {
            eprintln!(
                "pincer serve: {name}: the store is reachable again (after {} s)",
                since.elapsed().as_secs()
            );
        }
        let wait = match claimed {
            Ok(Some(task)) => {
                pool.publish("task.running", &task);
                // The task's span: every model and tool call of its run is a child (one trace
                // per task in the `otel` build). Content only with telemetry.export_content.
                let span = tracing::info_span!(
                    "pincer.task",
                    task_id = %task.id,
                    agent = %task.agent,
                    worker = %name,
                    status = tracing::field::Empty,
                    input = tracing::field::Empty,
                    output = tracing::field::Empty,
                );
                if pool.config.telemetry.export_content {
                    span.record("input", task.input.as_str());
                }
                run_task(&pool, &name, task).instrument(span).await;
                continue;
            }
            Ok(None) => IDLE,
            Err(e) => {
                let (since, delay) = outage.unwrap_or_else(|| {
                    eprintln!(
                        "pincer serve: {name}: claiming a task failed: {e}; retrying with back-off"
                    );
                    (std::time::Instant::now(), IDLE / 2)
                });
                let delay = (delay * 2).min(MAX_BACKOFF);
                outage = Some((since, delay));
                delay
            }
        };
        tokio::select! {
            () = pool.wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
            () = stop.cancelled() => {}
        }
    }
}

/// Records the end of a task, retrying with back-off while the store is unreachable — the
/// run's outcome is not thrown away over a short outage — for as long as the lease would have
/// lasted twice (after that, recovery has ended the task).
async fn end_task(
    pool: &Pool,
    worker: &str,
    task: TaskId,
    to: TaskStatus,
    detail: Option<String>,
    info: Option<(String, pincer_types::TokenUsage)>,
) -> Result<TaskRecord, pincer_store::TaskError> {
    let give_up = std::time::Instant::now() + pool.lease() * 2;
    let mut delay = Duration::from_millis(100);
    loop {
        let r = pool
            .store
            .end_with_run(task, worker, to, detail.clone(), Utc::now(), info.clone())
            .await;
        match r {
            Err(pincer_store::TaskError::Store(pincer_store::StoreError::Server(_)))
                if std::time::Instant::now() + delay < give_up =>
            {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_BACKOFF);
            }
            other => return other,
        }
    }
}

/// Most progress events one run publishes (its `run.finished` always goes out): a run with
/// hundreds of tool calls must not flush everyone's events out of the bus's ring.
const MAX_PROGRESS: u32 = 64;
/// Longest a piece of answer text waits before it is published.
const TEXT_FLUSH: Duration = Duration::from_millis(40);
/// Most answer text published in one event (well under Postgres' 8000-byte `NOTIFY`, escaped).
const TEXT_CHUNK: usize = 1024;

/// Publishes a run's progress on the event bus (`/v1/events`, chat `/status`, streamed OpenAI
/// completions): start, each tool call (name and tier — never arguments or results, which may
/// hold secrets), each result's success, the answer's text, and the end.
///
/// Text is coalesced: a `run.text` event (numbered from 0 by `n`, so a reader can tell a piece
/// is missing) goes out when [`TEXT_FLUSH`] has passed since the last one or [`TEXT_CHUNK`]
/// bytes are waiting, and before any other event of the run, so it is never reordered with them.
fn progress_publisher(
    events: Arc<EventBus>,
    task: pincer_types::TaskId,
) -> impl FnMut(&pincer_types::RunEvent) + Send {
    use pincer_types::RunEvent;
    let mut published = 0u32;
    let mut text = TextPieces::new(task);
    move |e: &RunEvent| {
        let (kind, data) = match e {
            RunEvent::TextDelta { text: delta } => {
                if let Some(piece) = text.push(delta) {
                    events.publish("run.text", piece);
                }
                return;
            }
            RunEvent::Started { run_id } => ("run.started", json!({"task": task, "run": run_id})),
            RunEvent::ToolCall { id, tool, tier } => (
                "run.tool_call",
                json!({"task": task, "call": id, "tool": tool, "tier": tier}),
            ),
            RunEvent::ToolResult { id, is_error } => (
                "run.tool_result",
                json!({"task": task, "call": id, "is_error": is_error}),
            ),
            RunEvent::Finished { status } => {
                ("run.finished", json!({"task": task, "status": status}))
            }
        };
        if let Some(piece) = text.take() {
            events.publish("run.text", piece);
        }
        if published >= MAX_PROGRESS && kind != "run.finished" {
            return;
        }
        published += 1;
        events.publish(kind, data);
    }
}

/// Answer text waiting to be published as numbered `run.text` pieces.
struct TextPieces {
    task: pincer_types::TaskId,
    text: String,
    next: u64,
    flushed: std::time::Instant,
}

impl TextPieces {
    fn new(task: pincer_types::TaskId) -> Self {
        Self {
            task,
            text: String::new(),
            next: 0,
            flushed: std::time::Instant::now(),
        }
    }

    /// Adds a delta; returns a piece when one is due.
    fn push(&mut self, delta: &str) -> Option<serde_json::Value> {
        self.text.push_str(delta);
        (self.text.len() >= TEXT_CHUNK || self.flushed.elapsed() >= TEXT_FLUSH)
            .then(|| self.take())
            .flatten()
    }

    /// Whatever is waiting, as a piece.
    fn take(&mut self) -> Option<serde_json::Value> {
        if self.text.is_empty() {
            return None;
        }
        let piece =
            json!({"task": self.task, "n": self.next, "text": std::mem::take(&mut self.text)});
        self.next += 1;
        self.flushed = std::time::Instant::now();
        Some(piece)
    }
}

async fn run_task(pool: &Pool, worker: &str, task: TaskRecord) {
    let cancel = CancellationToken::new();
    let watcher = watch_task(pool, worker, &task, cancel.clone());
    let run = async {
        let rt = pool.runtime(&task.agent).await?;
        let session = rt
            .store
            .current_session(&task.session_key, &task.agent)
            .await?;
        active_map(&pool.active).insert(session.id, (task.id, worker.to_owned()));
        let _guard = Deactivate(pool.active.clone(), session.id);
        let mut req = rt.request(session, task.input.clone());
        // Heartbeats are light unless the agent asks for its full context.
        req.settings.light_context = task.kind == pincer_store::TaskKind::Heartbeat
            && !pool
                .config
                .agents
                .get(&task.agent)
                .and_then(|a| a.heartbeat.as_ref())
                .is_some_and(|h| h.full_context);
        let mut progress = progress_publisher(pool.events.clone(), task.id);
        let outcome = rt.runner.run(req, cancel.clone(), &mut progress).await?;
        anyhow::Ok(outcome)
    };
    let run_info = |o: &pincer_agent::RunOutcome| {
        o.bundle_dir
            .to_str()
            .map(|dir| (dir.to_owned(), o.meta.usage))
    };
    tokio::pin!(run);
    let result = tokio::select! {
        r = &mut run => r,
        () = watcher => {
            // Ended elsewhere (canceled through the API) or the lease was lost: the token is
            // canceled; let the run wind down (bundle written, processes killed), record only
            // where its artifacts are.
            if let Ok(o) = run.await
                && let Some((dir, usage)) = run_info(&o)
                && let Err(e) = pool.store.set_run_info(task.id, &dir, usage).await
            {
                eprintln!("pincer serve: recording the run of task {}: {e}", task.id);
            }
            return;
        }
    };
    let info = result.as_ref().ok().and_then(run_info);
    let (to, detail) = match result {
        Ok(o) => match o.meta.status {
            RunStatus::Succeeded => (TaskStatus::Succeeded, Some(o.output)),
            RunStatus::TimedOut => (TaskStatus::TimedOut, o.meta.error),
            RunStatus::Canceled => (TaskStatus::Canceled, o.meta.error),
            RunStatus::Failed | RunStatus::Running => (TaskStatus::Failed, o.meta.error),
        },
        Err(e) => (TaskStatus::Failed, Some(format!("{e:#}"))),
    };
    tracing::info!(
        task = %task.id,
        agent = %task.agent,
        worker,
        status = to.as_str(),
        "task ended"
    );
    let span = tracing::Span::current();
    span.record("status", to.as_str());
    if pool.config.telemetry.export_content
        && let Some(out) = &detail
    {
        span.record("output", out.as_str());
    }
    match end_task(pool, worker, task.id, to, detail, info).await {
        Ok(t) => pool.publish(&format!("task.{}", to.as_str().to_ascii_lowercase()), &t),
        Err(e) => eprintln!(
            "pincer serve: {worker}: recording the end of task {}: {e}",
            task.id
        ),
    }
    // The run's own record (run.end) is already durable; this one is synced with the next
    // durable record or by the once-a-second sync below.
    runtime::record_lazy(
        &pool.audit,
        "task.end",
        json!({"task": task.id.to_string(), "agent": task.agent, "status": to.as_str()}),
    );
}

/// Keeps the lease alive and cancels the run when the task is ended elsewhere; completes only
/// in that case (or when the lease is lost).
async fn watch_task(pool: &Pool, worker: &str, task: &TaskRecord, cancel: CancellationToken) {
    let mut since_beat = Duration::ZERO;
    loop {
        tokio::time::sleep(CANCEL_CHECK).await;
        since_beat += CANCEL_CHECK;
        let ended = matches!(
            pool.store.task(task.id).await,
            Ok(Some(t)) if t.status.is_terminal()
        );
        let lost = since_beat >= pool.lease() / 3 && {
            since_beat = Duration::ZERO;
            pool.store
                .heartbeat(task.id, worker, Utc::now(), pool.lease())
                .await
                .is_err()
        };
        if ended || lost {
            cancel.cancel();
            return;
        }
    }
}

/// Removes a session's entry from the active map when its run ends.
struct Deactivate(Active, SessionId);

impl Drop for Deactivate {
    fn drop(&mut self) {
        active_map(&self.0).remove(&self.1);
    }
}

/// Parks a served task until its approval is decided through the API (or expires).
#[derive(Debug)]
struct TaskApprover {
    /// Approval records keep the action's detail redacted like the audit log.
    redactor: pincer_audit::Redactor,
    store: Arc<dyn Backend>,
    active: Active,
    events: Arc<EventBus>,
    ttl: Duration,
}

impl TaskApprover {
    async fn decide(&self, req: &ApprovalRequest) -> anyhow::Result<ApprovalAnswer> {
        let Some(session) = req.session else {
            return Ok(ApprovalAnswer::Unavailable);
        };
        let Some((task, worker)) = active_map(&self.active).get(&session).cloned() else {
            return Ok(ApprovalAnswer::Unavailable);
        };
        let now = Utc::now();
        let record = self
            .store
            .request_approval(
                NewApproval {
                    task: Some(task),
                    tool: req.action.tool.to_string(),
                    digest: req.digest.0.clone(),
                    tier: req.action.tier,
                    reason: req.reason.clone(),
                    detail: self.redactor.value(&req.action.detail),
                    requester: format!("{}/{session}", req.agent),
                    expires_at: now + chrono::Duration::from_std(self.ttl)?,
                    taint_sources: req.taint_sources.clone(),
                },
                now,
            )
            .await?;
        self.store
            .transition(task, Some(&worker), TaskStatus::WaitingApproval, None, now)
            .await?;
        self.events.publish(
            "approval.requested",
            json!({"approval": record.id, "task": task, "tool": record.tool,
                   "tier": record.tier, "reason": record.reason, "expires_at": record.expires_at,
                   "taint_sources": record.taint_sources}),
        );
        let mut changes = self.events.subscribe();
        let answer = loop {
            let a = self
                .store
                .approval(&record.id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("approval {} vanished", record.id))?;
            match a.status {
                ApprovalStatus::Approved => {
                    break ApprovalAnswer::Approved {
                        approver: a.decided_by.unwrap_or_else(|| "api".into()),
                    };
                }
                ApprovalStatus::Denied => {
                    break ApprovalAnswer::Denied {
                        by: a.decided_by.unwrap_or_else(|| "api".into()),
                    };
                }
                ApprovalStatus::Expired => break ApprovalAnswer::Unavailable,
                ApprovalStatus::Pending => {}
            }
            let left = (a.expires_at - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO);
            if left.is_zero() {
                self.store.expire_approvals(Utc::now()).await?;
                continue;
            }
            // A change in this process wakes us at once; a decision taken by another process
            // (`pincer approvals approve`) is seen within a second.
            let _ = tokio::time::timeout(left.min(IDLE), changes.changed()).await;
            let canceled = matches!(
                self.store.task(task).await?,
                Some(t) if t.status.is_terminal()
            );
            if canceled {
                return Ok(ApprovalAnswer::Denied {
                    by: "task canceled".into(),
                });
            }
        };
        self.store
            .transition(task, Some(&worker), TaskStatus::Running, None, Utc::now())
            .await?;
        self.events.publish("task.running", json!({"task": task}));
        Ok(answer)
    }
}

impl Approver for TaskApprover {
    fn ask<'a>(&'a self, request: &'a ApprovalRequest) -> ApprovalFuture<'a> {
        Box::pin(async move {
            match self.decide(request).await {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("pincer serve: approval for {} failed: {e:#}", request.agent);
                    ApprovalAnswer::Unavailable
                }
            }
        })
    }
}
