//! Automation inside `pincer serve`: scheduled jobs become queue tasks, ended runs are settled
//! (results delivered, failures retried, alerted and auto-disabled), and heartbeats run (see
//! [`crate::heartbeat`]).
//!
//! Each due run becomes a task with the idempotency key `job:<name>:<scheduled time>`, recorded
//! together with the next run in one transaction — so a crash between the two submits the same
//! task again rather than a second one, and a restart applies the missed-run policy once.
//!
//! Failures (F4), per `[jobs]`: a run that fails, times out or is canceled counts as one
//! consecutive failure (a retry that fails counts again). Up to `retries` retries follow, the
//! n-th after `retry_backoff_secs × 2^(n-1)`. At exactly `alert_after` consecutive failures an
//! alert goes to the job's delivery target; at `disable_after` the job is disabled and alerted.
//! A success resets the count; every step is audited (`job.failed`, `job.retry`, `job.alert`,
//! `job.auto_disabled`, `job.delivered`, `job.delivery_failed`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use pincer_config::{Config, PincerHome};
use pincer_gateway::{DeliveryPolicy, EventBus, from_ts, schedule_of, to_ts};
use pincer_scheduler::jiff::{SignedDuration, Timestamp};
use pincer_scheduler::{MissedRuns, due, jitter};
use pincer_store::{Backend, EndedRun, Job, NewTask, Retry, Settlement, TaskKind};
use pincer_types::{SessionKey, TaskStatus};
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{Env, Failure, runtime};

/// How late a run may start and still count as on time.
const GRACE: Duration = Duration::from_secs(60);
/// How often due work is looked for.
const TICK: Duration = Duration::from_millis(500);
/// Longest text delivered (results are cut with a marker).
const MAX_DELIVERY: usize = 16 * 1024;

/// What the automation loop shares.
#[derive(Debug)]
pub struct Automation {
    pub store: Arc<dyn Backend>,
    pub events: Arc<EventBus>,
    pub wake: Arc<Notify>,
    pub home: PincerHome,
    pub config: Config,
    /// Running channels' outbox wake-ups, by channel name.
    pub outboxes: BTreeMap<String, Arc<Notify>>,
    /// The server's audit log, opened once.
    pub audit: Arc<pincer_audit::AuditLog>,
    /// When the server started (first heartbeats are one interval after it).
    pub started: Timestamp,
    /// The egress client deliveries to URLs go through (one for the server: its HTTP client and
    /// connection pool are shared).
    pub egress: Arc<pincer_web::Egress>,
}

/// Where job results may go in this configuration.
pub fn delivery_policy(config: &Config) -> DeliveryPolicy {
    DeliveryPolicy {
        channels: config
            .channels
            .telegram
            .iter()
            .filter(|t| t.enabled)
            .map(|_| "telegram".to_owned())
            .collect(),
        network: config.security.network,
        egress_allow: config.security.egress_allow.clone(),
        egress_allow_private: config.security.egress_allow_private.clone(),
    }
}

/// The configured hooks with their secrets from the environment; a hook whose secret is not
/// set is a startup error (it could never authenticate anyone).
pub fn hooks(config: &Config, env: &Env) -> anyhow::Result<BTreeMap<String, pincer_gateway::Hook>> {
    let mut out = BTreeMap::new();
    for (name, h) in &config.hooks {
        let secret = env.var(&h.secret_env).ok_or_else(|| {
            Failure::usage(format!(
                "hooks.{name}: {} is not set (export the hook's shared secret, 16+ characters)",
                h.secret_env
            ))
        })?;
        if secret.len() < 16 {
            return Err(Failure::usage(format!(
                "hooks.{name}: {} must be at least 16 characters",
                h.secret_env
            ))
            .into());
        }
        let agent = h
            .agent
            .parse()
            .map_err(|e| Failure::usage(format!("hooks.{name}.agent: {e}")))?;
        out.insert(
            name.clone(),
            pincer_gateway::Hook {
                agent,
                main_session: h.mode == pincer_config::SessionMode::Main,
                secret: match h.auth {
                    pincer_config::HookAuth::Hmac => pincer_gateway::HookSecret::Hmac(secret),
                    pincer_config::HookAuth::Bearer => pincer_gateway::HookSecret::Bearer(secret),
                },
                signature_header: h.signature_header.clone(),
                event_id_header: h.event_id_header.clone(),
                message: h.message.clone(),
            },
        );
    }
    Ok(out)
}

fn clip(text: &str) -> String {
    if text.len() <= MAX_DELIVERY {
        return text.to_owned();
    }
    format!(
        "{}\n[… cut: {} bytes in all …]",
        &text[..text.floor_char_boundary(MAX_DELIVERY)],
        text.len()
    )
}

impl Automation {
    pub async fn audit(&self, kind: &'static str, fields: serde_json::Value) {
        runtime::record(&self.audit, kind, fields).await;
    }

    /// Sends `text` to `target`: a running channel's chat (through its durable outbox) or an
    /// https URL egress policy allows (JSON `{"source", "text"}`, no redirects, connecting only
    /// to the checked addresses). Targets were checked when the job was added; the config may
    /// have changed since, so each delivery is checked again — by `post` for URLs, by the
    /// running channels for chats.
    pub async fn deliver(&self, target: &str, source: &str, text: &str) -> Result<(), String> {
        if let Some(e) = pincer_config::delivery_target_error(target) {
            return Err(e);
        }
        let text = clip(text);
        if target.starts_with("https://") {
            return post(
                &self.egress,
                target,
                &json!({"source": source, "text": text}),
            )
            .await;
        }
        let (channel, chat) = target
            .split_once(':')
            .ok_or_else(|| format!("`{target}` is not a delivery target"))?;
        let notify = self
            .outboxes
            .get(channel)
            .ok_or_else(|| format!("the {channel} channel is not running"))?;
        self.store
            .enqueue(
                pincer_store::NewOutgoing::text(channel, chat, &text),
                Utc::now(),
            )
            .await
            .map_err(|e| e.to_string())?;
        notify.notify_one();
        Ok(())
    }
}

/// POSTs JSON to a URL through the one egress client (`pincer-web`): the same checks, pinning,
/// redirect re-checks, caps and `egress.*` audit events as `http.fetch`.
async fn post(
    egress: &pincer_web::Egress,
    url: &str,
    body: &serde_json::Value,
) -> Result<(), String> {
    let resp = egress
        .send(pincer_web::egress::Request {
            method: reqwest::Method::POST,
            url: url.to_owned(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Some(serde_json::to_vec(body).map_err(|e| e.to_string())?),
            secret_headers: Vec::new(),
        })
        .await
        .map_err(|e| e.to_string())?;
    if (200..300).contains(&resp.status) {
        Ok(())
    } else {
        Err(format!("{url} answered {}", resp.status))
    }
}

fn policy(job: &Job) -> MissedRuns {
    if job.missed == "run_once" {
        MissedRuns::RunOnce
    } else {
        MissedRuns::Skip
    }
}

/// Runs automation until `stop`.
pub async fn run(a: Arc<Automation>, stop: CancellationToken) {
    while !stop.is_cancelled() {
        if let Err(e) = tick(&a).await {
            eprintln!("pincer serve: jobs: {e:#}");
        }
        if let Err(e) = settle(&a).await {
            eprintln!("pincer serve: jobs: {e:#}");
        }
        if let Err(e) = crate::heartbeat::tick(&a).await {
            eprintln!("pincer serve: heartbeat: {e:#}");
        }
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            () = stop.cancelled() => return,
        }
    }
}

fn jitter_of(job: &Job) -> SignedDuration {
    SignedDuration::try_from(jitter(&job.name, Duration::from_secs(job.jitter_secs)))
        .unwrap_or(SignedDuration::ZERO)
}

async fn submit(
    a: &Automation,
    job: &Job,
    peer: &str,
    key: String,
) -> anyhow::Result<pincer_store::TaskRecord> {
    let session_key = SessionKey::for_peer(&job.agent, "cron", peer)?;
    let deadline = Utc::now()
        + chrono::Duration::seconds(i64::try_from(job.timeout_secs).unwrap_or(i64::MAX / 2));
    let (task, created) = a
        .store
        .submit(
            NewTask {
                kind: TaskKind::Message,
                agent: job.agent.clone(),
                session_key,
                input: job.message.clone(),
                idempotency_key: Some(key),
                deadline: Some(deadline),
                owner: None,
            },
            Utc::now(),
        )
        .await?;
    if created {
        a.wake.notify_one();
        a.events.publish(
            "task.queued",
            json!({"task": task.id, "agent": task.agent, "job": job.name}),
        );
    }
    Ok(task)
}

/// Submits due runs and due retries.
async fn tick(a: &Automation) -> anyhow::Result<()> {
    let now = Timestamp::now();
    for job in a.store.jobs().await? {
        if !job.enabled {
            continue;
        }
        if let Some(r) = job.retry
            && r.at <= Utc::now()
        {
            retry(a, &job, r).await?;
        }
        let Some(next) = job.next_run.and_then(to_ts) else {
            continue;
        };
        // Jitter delays the firing; the run still counts for its scheduled time.
        let now_for_job = now.checked_sub(jitter_of(&job)).unwrap_or(now);
        if next > now_for_job {
            continue;
        }
        let sched = match schedule_of(&job) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("pincer serve: job `{}`: {e}; disabled", job.name);
                a.store.set_job_enabled(&job.name, false).await?;
                a.audit("job.auto_disabled", json!({"job": job.name, "reason": e}))
                    .await;
                continue;
            }
        };
        let d = due(&sched, next, now_for_job, policy(&job), GRACE);
        let next_run = d.next.and_then(from_ts);
        if !d.run {
            a.store.set_next_run(&job.name, next_run).await?;
            a.events.publish(
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
        let task = submit(a, &job, &peer, format!("job:{}:{}", job.name, next)).await?;
        let scheduled = from_ts(next).unwrap_or_else(Utc::now);
        a.store
            .record_run(&job.name, task.id, scheduled, d.missed, next_run)
            .await?;
    }
    Ok(())
}

async fn retry(a: &Automation, job: &Job, r: Retry) -> anyhow::Result<()> {
    let stamp = r.scheduled_for.timestamp();
    let peer = if job.mode == "main" {
        job.name.clone()
    } else {
        format!("{}-{stamp}-r{}", job.name, r.attempt)
    };
    let key = format!(
        "job:{}:{}:retry{}",
        job.name,
        r.scheduled_for.to_rfc3339(),
        r.attempt
    );
    let task = submit(a, job, &peer, key).await?;
    a.store.record_retry(&job.name, task.id, r).await?;
    a.audit(
        "job.retry",
        json!({"job": job.name, "attempt": r.attempt, "task": task.id.to_string(),
               "scheduled_for": r.scheduled_for.to_rfc3339()}),
    )
    .await;
    Ok(())
}

/// Acts on runs whose task ended: delivery on success; retry, alert and disable on failure.
async fn settle(a: &Automation) -> anyhow::Result<()> {
    for run in a.store.ended_runs().await? {
        let Some(job) = a.store.job(&run.job).await? else {
            continue;
        };
        let Some(task) = a.store.task(run.task).await? else {
            continue;
        };
        let s = if task.status == TaskStatus::Succeeded {
            if let Some(target) = &job.deliver {
                let text = task.output.clone().unwrap_or_default();
                deliver_audited(a, &job, target, &text).await;
            }
            a.events
                .publish("job.succeeded", json!({"job": job.name, "task": task.id}));
            Settlement {
                failures: 0,
                retry: None,
                disable: false,
            }
        } else {
            failed(a, &job, &run, &task).await
        };
        a.store.settle_run(&run, s).await?;
    }
    Ok(())
}

async fn deliver_audited(a: &Automation, job: &Job, target: &str, text: &str) {
    let source = format!("job:{}", job.name);
    match a.deliver(target, &source, text).await {
        Ok(()) => {
            a.audit("job.delivered", json!({"job": job.name, "to": target}))
                .await
        }
        Err(e) => {
            eprintln!(
                "pincer serve: job `{}`: delivering to {target}: {e}",
                job.name
            );
            a.audit(
                "job.delivery_failed",
                json!({"job": job.name, "to": target, "error": e}),
            )
            .await;
        }
    }
}

async fn failed(
    a: &Automation,
    job: &Job,
    run: &EndedRun,
    task: &pincer_store::TaskRecord,
) -> Settlement {
    let cfg = &a.config.jobs;
    let failures = job.failures.saturating_add(1);
    let error = task.error.clone().unwrap_or_default();
    a.audit(
        "job.failed",
        json!({"job": job.name, "task": task.id.to_string(), "attempt": run.attempt,
               "status": task.status.as_str(), "failures": failures, "error": error}),
    )
    .await;
    a.events.publish(
        "job.failed",
        json!({"job": job.name, "task": task.id, "failures": failures}),
    );
    let disable = failures >= cfg.disable_after;
    let retry = (!disable && job.enabled && run.attempt < cfg.retries).then(|| {
        let backoff = cfg
            .retry_backoff_secs
            .saturating_mul(1u64 << run.attempt.min(20));
        Retry {
            at: Utc::now()
                + chrono::Duration::seconds(i64::try_from(backoff).unwrap_or(i64::MAX / 2)),
            scheduled_for: run.scheduled_for,
            attempt: run.attempt + 1,
        }
    });
    if failures == cfg.alert_after || disable {
        let what = if disable {
            format!(
                "Job `{}` failed {failures} times in a row and was disabled (re-enable with `pincer cron enable {}`). Last error: {error}",
                job.name, job.name
            )
        } else {
            format!(
                "Job `{}` failed {failures} times in a row. Last error: {error}",
                job.name
            )
        };
        a.audit(
            "job.alert",
            json!({"job": job.name, "failures": failures, "to": job.deliver}),
        )
        .await;
        if let Some(target) = &job.deliver {
            deliver_audited(a, job, target, &what).await;
        } else {
            eprintln!("pincer serve: {what}");
        }
    }
    if disable {
        a.audit(
            "job.auto_disabled",
            json!({"job": job.name, "failures": failures}),
        )
        .await;
    }
    Settlement {
        failures,
        retry,
        disable,
    }
}
