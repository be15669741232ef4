//! Jobs: turning stored schedules into queue tasks inside `pincer serve`, and the helpers the
//! `pincer cron` commands share with it.
//!
//! Each due run becomes a task with the idempotency key `job:<name>:<scheduled time>`, recorded
//! together with the next run in one transaction — so a crash between the two submits the same
//! task again rather than a second one, and a restart applies the missed-run policy once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use pincer_gateway::EventBus;
use pincer_scheduler::jiff::Timestamp;
use pincer_scheduler::{MissedRuns, Schedule, due};
use pincer_store::{Job, JobStore, NewTask, SqliteStore, TaskQueue};
use pincer_types::SessionKey;
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How late a run may start and still count as on time.
const GRACE: Duration = Duration::from_secs(60);
/// How often due jobs are looked for.
const TICK: Duration = Duration::from_millis(500);

/// chrono → jiff.
pub(crate) fn to_ts(t: DateTime<Utc>) -> Option<Timestamp> {
    Timestamp::from_nanosecond(i128::from(t.timestamp_nanos_opt()?)).ok()
}

/// jiff → chrono.
pub(crate) fn from_ts(t: Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.as_second(), u32::try_from(t.subsec_nanosecond()).ok()?)
}

/// The job's schedule.
pub(crate) fn schedule(job: &Job) -> Result<Schedule, String> {
    match job.kind.as_str() {
        "at" => job
            .spec
            .parse::<Timestamp>()
            .map(Schedule::At)
            .map_err(|e| e.to_string()),
        "every" => {
            let every = pincer_scheduler::parse_duration(&job.spec).map_err(|e| e.to_string())?;
            let anchor = to_ts(job.anchor).ok_or("bad anchor")?;
            Ok(Schedule::Every { every, anchor })
        }
        "cron" => Schedule::cron(&job.spec, &job.tz).map_err(|e| e.to_string()),
        other => Err(format!("unknown schedule kind `{other}`")),
    }
}

fn policy(job: &Job) -> MissedRuns {
    if job.missed == "run_once" {
        MissedRuns::RunOnce
    } else {
        MissedRuns::Skip
    }
}

/// Runs due jobs until `stop`.
pub(crate) async fn run(
    store: Arc<SqliteStore>,
    events: Arc<EventBus>,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        if let Err(e) = tick(&store, &events, &wake).await {
            eprintln!("pincer serve: jobs: {e}");
        }
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            () = stop.cancelled() => return,
        }
    }
}

async fn tick(store: &SqliteStore, events: &EventBus, wake: &Notify) -> anyhow::Result<()> {
    let now = Timestamp::now();
    for job in store.jobs().await? {
        let Some(next) = job.next_run.and_then(to_ts) else {
            continue;
        };
        if !job.enabled || next > now {
            continue;
        }
        let sched = match schedule(&job) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("pincer serve: job `{}`: {e}; disabled", job.name);
                store.set_job_enabled(&job.name, false).await?;
                continue;
            }
        };
        let d = due(&sched, next, now, policy(&job), GRACE);
        let next_run = d.next.and_then(from_ts);
        if !d.run {
            store.set_next_run(&job.name, next_run).await?;
            events.publish(
                "job.missed",
                json!({"job": job.name, "scheduled_for": next.to_string()}),
            );
            continue;
        }
        let peer = if job.mode == "main" {
            job.name.clone()
        } else {
            // Isolated: a fresh session per run.
            format!("{}-{}", job.name, next.as_second())
        };
        let key = SessionKey::for_peer(&job.agent, "cron", &peer)?;
        let scheduled = from_ts(next).unwrap_or_else(Utc::now);
        let deadline = Utc::now()
            + chrono::Duration::seconds(i64::try_from(job.timeout_secs).unwrap_or(i64::MAX / 2));
        let (task, _) = store
            .submit(
                NewTask {
                    agent: job.agent.clone(),
                    session_key: key,
                    input: job.message.clone(),
                    idempotency_key: Some(format!("job:{}:{}", job.name, next)),
                    deadline: Some(deadline),
                },
                Utc::now(),
            )
            .await?;
        store
            .record_run(&job.name, task.id, scheduled, d.missed, next_run)
            .await?;
        wake.notify_one();
        events.publish(
            "task.queued",
            json!({"task": task.id, "agent": task.agent, "job": job.name}),
        );
    }
    Ok(())
}
