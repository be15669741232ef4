//! The worker pool of `pincer serve`: `gateway.workers` loops that claim queued tasks (one
//! active task per session, enforced by the queue), run them through the same runner as
//! `pincer ask`, keep their lease alive, stop them within half a second when they are canceled
//! through the API, and record the outcome.
//!
//! Approvals through the API are not wired into runs yet: an action that needs approval is
//! denied (as with no terminal in `pincer ask`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use pincer_config::{Config, PincerHome};
use pincer_store::{SqliteStore, Store, TaskQueue, TaskRecord};
use pincer_types::{AgentId, RunStatus, TaskStatus};
use serde_json::json;
use tokio::sync::{Mutex, Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::Env;
use crate::runtime::{self, AgentRuntime};

/// How often a running task's state is checked for cancellation.
const CANCEL_CHECK: Duration = Duration::from_millis(500);
/// Longest idle wait before looking for work again (tasks from other processes, expiries).
const IDLE: Duration = Duration::from_secs(1);

/// What the workers share.
#[derive(Debug)]
pub(crate) struct Pool {
    pub home: PincerHome,
    pub config: Config,
    pub env: Env,
    pub store: Arc<SqliteStore>,
    /// Woken when a task is submitted.
    pub wake: Arc<Notify>,
    /// Bumped whenever a task changes.
    pub changes: watch::Sender<u64>,
    runtimes: Mutex<HashMap<AgentId, Arc<AgentRuntime>>>,
}

impl Pool {
    pub(crate) fn new(
        home: PincerHome,
        config: Config,
        env: Env,
        store: Arc<SqliteStore>,
        wake: Arc<Notify>,
        changes: watch::Sender<u64>,
    ) -> Self {
        Self {
            home,
            config,
            env,
            store,
            wake,
            changes,
            runtimes: Mutex::new(HashMap::new()),
        }
    }

    fn lease(&self) -> Duration {
        Duration::from_secs(self.config.gateway.lease_secs)
    }

    pub(crate) fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The agent's runtime, built once.
    async fn runtime(&self, agent: &AgentId) -> anyhow::Result<Arc<AgentRuntime>> {
        let mut map = self.runtimes.lock().await;
        if let Some(rt) = map.get(agent) {
            return Ok(rt.clone());
        }
        let rt = Arc::new(
            AgentRuntime::build(
                &self.home,
                &self.config,
                agent.as_str(),
                &self.env,
                Arc::new(pincer_agent::NoApprover),
            )
            .await?,
        );
        map.insert(agent.clone(), rt.clone());
        Ok(rt)
    }
}

/// Runs `n` workers until `stop`; each finishes its current task first. Alongside, ends tasks
/// whose worker died (expired lease) or whose deadline passed, once a second.
pub(crate) async fn run(pool: Arc<Pool>, n: usize, stop: CancellationToken) {
    let mut handles = Vec::new();
    {
        let pool = pool.clone();
        let stop = stop.clone();
        handles.push(tokio::spawn(async move {
            while !stop.is_cancelled() {
                recover(&pool).await;
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

/// Ends interrupted and overdue tasks (see the queue's recovery contract) and audits each.
pub(crate) async fn recover(pool: &Pool) {
    match pool.store.recover_expired(Utc::now()).await {
        Ok(ids) if !ids.is_empty() => {
            for id in &ids {
                runtime::audit_config(
                    &pool.home,
                    &pool.config,
                    &pool.env,
                    "task.recovered",
                    json!({"task": id.to_string()}),
                );
            }
            pool.changed();
        }
        Ok(_) => {}
        Err(e) => eprintln!("pincer serve: recovering tasks failed: {e}"),
    }
}

async fn work(pool: Arc<Pool>, name: String, stop: CancellationToken) {
    while !stop.is_cancelled() {
        match pool.store.claim(&name, Utc::now(), pool.lease()).await {
            Ok(Some(task)) => {
                pool.changed();
                run_task(&pool, &name, task).await;
                pool.changed();
            }
            Ok(None) => {
                tokio::select! {
                    () = pool.wake.notified() => {}
                    () = tokio::time::sleep(IDLE) => {}
                    () = stop.cancelled() => {}
                }
            }
            Err(e) => {
                eprintln!("pincer serve: {name}: claiming a task failed: {e}");
                tokio::select! {
                    () = tokio::time::sleep(IDLE) => {}
                    () = stop.cancelled() => {}
                }
            }
        }
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
        let req = rt.request(session, task.input.clone());
        let outcome = rt.runner.run(req, cancel.clone(), &mut |_| {}).await?;
        anyhow::Ok(outcome)
    };
    tokio::pin!(run);
    let result = tokio::select! {
        r = &mut run => r,
        () = watcher => {
            // Ended elsewhere (canceled through the API) or the lease was lost: the token is
            // canceled; let the run wind down (bundle written, processes killed), record nothing.
            let _ = run.await;
            return;
        }
    };
    let (to, detail) = match result {
        Ok(o) => match o.meta.status {
            RunStatus::Succeeded => (TaskStatus::Succeeded, Some(o.output)),
            RunStatus::TimedOut => (TaskStatus::TimedOut, o.meta.error),
            RunStatus::Canceled => (TaskStatus::Canceled, o.meta.error),
            RunStatus::Failed | RunStatus::Running => (TaskStatus::Failed, o.meta.error),
        },
        Err(e) => (TaskStatus::Failed, Some(format!("{e:#}"))),
    };
    if let Err(e) = pool
        .store
        .transition(task.id, Some(worker), to, detail, Utc::now())
        .await
    {
        eprintln!(
            "pincer serve: {worker}: recording the end of task {}: {e}",
            task.id
        );
    }
    runtime::audit_config(
        &pool.home,
        &pool.config,
        &pool.env,
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
