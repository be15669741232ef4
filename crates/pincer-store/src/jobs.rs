//! Scheduled jobs (F1) and their runs. The schedule itself is stored as written (`kind` and
//! `spec`, plus zone and anchor) and interpreted by `pincer-scheduler`; the store keeps the next
//! run time so a restart continues exactly where the server stopped.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pincer_types::{AgentId, TaskId, TaskStatus};
use rusqlite::{Row, params};
use serde::Serialize;

use crate::sqlite::{stamp, ts};
use crate::{SqliteStore, StoreError};

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Job {
    /// Unique name.
    pub name: String,
    /// The agent that runs it.
    pub agent: AgentId,
    /// `at`, `every` or `cron`.
    pub kind: String,
    /// The time, interval or expression.
    pub spec: String,
    /// Time zone for `cron`.
    pub tz: String,
    /// First run for `every`.
    pub anchor: DateTime<Utc>,
    /// The message each run sends.
    pub message: String,
    /// `isolated` (a fresh session per run) or `main` (the job's one session).
    pub mode: String,
    /// Missed-run policy (`skip` or `run_once`).
    pub missed: String,
    /// Per-run timeout in seconds.
    pub timeout_secs: u64,
    /// Whether it runs.
    pub enabled: bool,
    /// The next run, if any (`at` jobs have none after running).
    pub next_run: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Where results and alerts go (`telegram:<chat>` or an https URL).
    pub deliver: Option<String>,
    /// Up to this many seconds of fixed, per-job delay after each scheduled time.
    pub jitter_secs: u64,
    /// Consecutive failed attempts (reset by a success).
    pub failures: u32,
    /// A pending retry: when, for which scheduled time, which attempt.
    pub retry: Option<Retry>,
}

/// A retry waiting to be submitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Retry {
    /// When it is due.
    pub at: DateTime<Utc>,
    /// The scheduled time it retries.
    pub scheduled_for: DateTime<Utc>,
    /// Its attempt number (1 for the first retry).
    pub attempt: u32,
}

/// A run whose task ended and whose outcome has not been acted on yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedRun {
    /// The job.
    pub job: String,
    /// Its scheduled time.
    pub scheduled_for: DateTime<Utc>,
    /// Attempt number (0: the scheduled run itself).
    pub attempt: u32,
    /// The task.
    pub task: TaskId,
}

/// What settling an ended run changes on its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    /// The new consecutive-failure count.
    pub failures: u32,
    /// A retry to schedule (replacing any pending one), or none.
    pub retry: Option<Retry>,
    /// Disable the job.
    pub disable: bool,
}

/// One run of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRun {
    /// The task that carried it.
    pub task: TaskId,
    /// When it was due.
    pub scheduled_for: DateTime<Utc>,
    /// Whether it stood in for missed runs.
    pub missed: bool,
    /// Attempt number (0: the scheduled run; 1…: retries).
    pub attempt: u32,
    /// The task's state.
    pub status: TaskStatus,
    /// Start and end of the task.
    pub started_at: Option<DateTime<Utc>>,
    /// End of the task.
    pub ended_at: Option<DateTime<Utc>>,
    /// Where its run artifacts are.
    pub run_dir: Option<String>,
}

/// A job operation failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A job with this name exists.
    #[error("a job named `{0}` already exists")]
    Exists(String),
    /// No such job.
    #[error("no job named `{0}`")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The jobs seam.
#[async_trait]
pub trait JobStore: Send + Sync + std::fmt::Debug {
    /// Adds a job.
    async fn add_job(&self, job: &Job) -> Result<(), JobError>;
    /// Every job, by name.
    async fn jobs(&self) -> Result<Vec<Job>, JobError>;
    /// One job.
    async fn job(&self, name: &str) -> Result<Option<Job>, JobError>;
    /// Removes a job (its runs' tasks stay).
    async fn remove_job(&self, name: &str) -> Result<(), JobError>;
    /// Enables or disables a job (enabling forgets earlier failures).
    async fn set_job_enabled(&self, name: &str, enabled: bool) -> Result<(), JobError>;
    /// Sets a job's next run.
    async fn set_next_run(&self, name: &str, next: Option<DateTime<Utc>>) -> Result<(), JobError>;
    /// Records a run (its task) and the next run, atomically.
    async fn record_run(
        &self,
        name: &str,
        task: TaskId,
        scheduled_for: DateTime<Utc>,
        missed: bool,
        next: Option<DateTime<Utc>>,
    ) -> Result<(), JobError>;
    /// A job's runs, newest first.
    async fn job_runs(&self, name: &str, limit: usize) -> Result<Vec<JobRun>, JobError>;
    /// Records a retry's task and clears the pending retry, atomically.
    async fn record_retry(&self, name: &str, task: TaskId, retry: Retry) -> Result<(), JobError>;
    /// Runs whose task ended and which were not settled yet, oldest first.
    async fn ended_runs(&self) -> Result<Vec<EndedRun>, JobError>;
    /// Marks `run` settled and applies `s` to its job, atomically (a removed job is ignored);
    /// a run settled already is left as it is, so its alerts and retries happen once.
    async fn settle_run(&self, run: &EndedRun, s: Settlement) -> Result<(), JobError>;
}

const COLUMNS: &str = "name, agent, kind, spec, tz, anchor, message, mode, missed, timeout_secs, \
                       enabled, next_run, created_at, deliver, jitter_secs, failures, retry_at, \
                       retry_for, retry_attempt";

fn opt_ts(s: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.map(|s| ts(&s)).transpose()
}

fn row(r: &Row<'_>) -> Result<Job, StoreError> {
    Ok(Job {
        name: r.get(0)?,
        agent: crate::sqlite::parse(&r.get::<_, String>(1)?, "agent id")?,
        kind: r.get(2)?,
        spec: r.get(3)?,
        tz: r.get(4)?,
        anchor: ts(&r.get::<_, String>(5)?)?,
        message: r.get(6)?,
        mode: r.get(7)?,
        missed: r.get(8)?,
        timeout_secs: u64::try_from(r.get::<_, i64>(9)?).unwrap_or(0),
        enabled: r.get(10)?,
        next_run: r
            .get::<_, Option<String>>(11)?
            .map(|s| ts(&s))
            .transpose()?,
        created_at: ts(&r.get::<_, String>(12)?)?,
        deliver: r.get(13)?,
        jitter_secs: u64::try_from(r.get::<_, i64>(14)?).unwrap_or(0),
        failures: u32::try_from(r.get::<_, i64>(15)?).unwrap_or(0),
        retry: match (opt_ts(r.get(16)?)?, opt_ts(r.get(17)?)?) {
            (Some(at), Some(scheduled_for)) => Some(Retry {
                at,
                scheduled_for,
                attempt: u32::try_from(r.get::<_, i64>(18)?).unwrap_or(0),
            }),
            _ => None,
        },
    })
}

fn get(c: &rusqlite::Connection, name: &str) -> Result<Option<Job>, StoreError> {
    let mut st = c.prepare_cached(&format!("SELECT {COLUMNS} FROM jobs WHERE name = ?1"))?;
    let mut rows = st.query(params![name])?;
    rows.next()?.map(row).transpose()
}

fn set_next(
    c: &rusqlite::Connection,
    name: String,
    next: Option<DateTime<Utc>>,
) -> Result<(), JobError> {
    let n = c
        .prepare_cached("UPDATE jobs SET next_run = ?2 WHERE name = ?1")
        .and_then(|mut st| st.execute(params![name, next.map(stamp)]))
        .map_err(StoreError::from)?;
    changed(n, name)
}

fn changed(n: usize, name: String) -> Result<(), JobError> {
    if n == 0 {
        Err(JobError::NotFound(name))
    } else {
        Ok(())
    }
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn add_job(&self, job: &Job) -> Result<(), JobError> {
        let j = job.clone();
        self.transact(move |c| {
            if get(c, &j.name)?.is_some() {
                return Err(JobError::Exists(j.name));
            }
            c.prepare_cached("INSERT INTO jobs (name, agent, kind, spec, tz, anchor, message, mode, missed,
                                   timeout_secs, enabled, next_run, created_at, deliver, jitter_secs)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)").and_then(|mut st| st.execute(params![
                    j.name,
                    j.agent.to_string(),
                    j.kind,
                    j.spec,
                    j.tz,
                    stamp(j.anchor),
                    j.message,
                    j.mode,
                    j.missed,
                    i64::try_from(j.timeout_secs).unwrap_or(i64::MAX),
                    j.enabled,
                    j.next_run.map(stamp),
                    stamp(j.created_at),
                    j.deliver,
                    i64::try_from(j.jitter_secs).unwrap_or(i64::MAX),
                ]))
            .map_err(StoreError::from)?;
            Ok(())
        })
        .await
    }

    async fn jobs(&self) -> Result<Vec<Job>, JobError> {
        Ok(self
            .with(|c| {
                let mut st =
                    c.prepare_cached(&format!("SELECT {COLUMNS} FROM jobs ORDER BY name"))?;
                let mut rows = st.query([])?;
                let mut v = Vec::new();
                while let Some(r) = rows.next()? {
                    v.push(row(r)?);
                }
                Ok(v)
            })
            .await?)
    }

    async fn job(&self, name: &str) -> Result<Option<Job>, JobError> {
        let name = name.to_owned();
        Ok(self.with(move |c| get(c, &name)).await?)
    }

    async fn remove_job(&self, name: &str) -> Result<(), JobError> {
        let name = name.to_owned();
        self.transact(move |c| {
            c.prepare_cached("DELETE FROM job_runs WHERE job = ?1")
                .and_then(|mut st| st.execute(params![name]))
                .map_err(StoreError::from)?;
            let n = c
                .prepare_cached("DELETE FROM jobs WHERE name = ?1")
                .and_then(|mut st| st.execute(params![name]))
                .map_err(StoreError::from)?;
            changed(n, name)
        })
        .await
    }

    async fn set_job_enabled(&self, name: &str, enabled: bool) -> Result<(), JobError> {
        let name = name.to_owned();
        self.transact(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE jobs SET enabled = ?2,
                            failures = CASE WHEN ?2 THEN 0 ELSE failures END
                     WHERE name = ?1",
                )
                .and_then(|mut st| st.execute(params![name, enabled]))
                .map_err(StoreError::from)?;
            changed(n, name)
        })
        .await
    }

    async fn set_next_run(&self, name: &str, next: Option<DateTime<Utc>>) -> Result<(), JobError> {
        let name = name.to_owned();
        self.transact(move |c| set_next(c, name, next)).await
    }

    async fn record_run(
        &self,
        name: &str,
        task: TaskId,
        scheduled_for: DateTime<Utc>,
        missed: bool,
        next: Option<DateTime<Utc>>,
    ) -> Result<(), JobError> {
        let name = name.to_owned();
        self.transact(move |c| {
            c.prepare_cached("INSERT OR IGNORE INTO job_runs (job, task_id, scheduled_for, missed) VALUES (?1, ?2, ?3, ?4)").and_then(|mut st| st.execute(params![name, task.to_string(), stamp(scheduled_for), missed]))
            .map_err(StoreError::from)?;
            set_next(c, name, next)
        })
        .await
    }

    async fn job_runs(&self, name: &str, limit: usize) -> Result<Vec<JobRun>, JobError> {
        let name = name.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .with(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT r.task_id, r.scheduled_for, r.missed, t.status, t.started_at,
                            t.ended_at, t.run_dir, r.attempt
                     FROM job_runs r LEFT JOIN tasks t ON t.id = r.task_id
                     WHERE r.job = ?1 ORDER BY r.scheduled_for DESC, r.attempt DESC LIMIT ?2",
                )?;
                let mut rows = st.query(params![name, limit])?;
                let mut v = Vec::new();
                while let Some(r) = rows.next()? {
                    let status: Option<String> = r.get(3)?;
                    v.push(JobRun {
                        task: crate::sqlite::parse(&r.get::<_, String>(0)?, "task id")?,
                        scheduled_for: ts(&r.get::<_, String>(1)?)?,
                        missed: r.get(2)?,
                        status: status
                            .as_deref()
                            .and_then(TaskStatus::parse)
                            .unwrap_or(TaskStatus::Queued),
                        started_at: r.get::<_, Option<String>>(4)?.map(|s| ts(&s)).transpose()?,
                        ended_at: r.get::<_, Option<String>>(5)?.map(|s| ts(&s)).transpose()?,
                        run_dir: r.get(6)?,
                        attempt: u32::try_from(r.get::<_, i64>(7)?).unwrap_or(0),
                    });
                }
                Ok(v)
            })
            .await?)
    }

    async fn record_retry(&self, name: &str, task: TaskId, retry: Retry) -> Result<(), JobError> {
        let name = name.to_owned();
        self.transact(move |c| {
            c.prepare_cached(
                "INSERT OR IGNORE INTO job_runs (job, task_id, scheduled_for, attempt, missed)
                 VALUES (?1, ?2, ?3, ?4, 0)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    name,
                    task.to_string(),
                    stamp(retry.scheduled_for),
                    retry.attempt
                ])
            })
            .map_err(StoreError::from)?;
            let n = c
                .prepare_cached(
                    "UPDATE jobs SET retry_at = NULL, retry_for = NULL, retry_attempt = 0
                     WHERE name = ?1",
                )
                .and_then(|mut st| st.execute(params![name]))
                .map_err(StoreError::from)?;
            changed(n, name)
        })
        .await
    }

    async fn ended_runs(&self) -> Result<Vec<EndedRun>, JobError> {
        Ok(self
            .with(|c| {
                let mut st = c.prepare_cached(
                    "SELECT r.job, r.scheduled_for, r.attempt, r.task_id
                     FROM job_runs r JOIN tasks t ON t.id = r.task_id
                     WHERE r.settled = 0
                       AND t.status IN ('SUCCEEDED', 'FAILED', 'TIMED_OUT', 'CANCELED')
                     ORDER BY t.ended_at",
                )?;
                let mut rows = st.query([])?;
                let mut v = Vec::new();
                while let Some(r) = rows.next()? {
                    v.push(EndedRun {
                        job: r.get(0)?,
                        scheduled_for: ts(&r.get::<_, String>(1)?)?,
                        attempt: u32::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                        task: crate::sqlite::parse(&r.get::<_, String>(3)?, "task id")?,
                    });
                }
                Ok(v)
            })
            .await?)
    }

    async fn settle_run(&self, run: &EndedRun, s: Settlement) -> Result<(), JobError> {
        let run = run.clone();
        self.transact(move |c| {
            let won = c
                .prepare_cached(
                    "UPDATE job_runs SET settled = 1
                     WHERE job = ?1 AND scheduled_for = ?2 AND attempt = ?3 AND settled = 0",
                )
                .and_then(|mut st| {
                    st.execute(params![run.job, stamp(run.scheduled_for), run.attempt])
                })
                .map_err(StoreError::from)?;
            // Settled already (by another handle or process): that settlement stands.
            if won == 0 {
                return Ok(());
            }
            c.prepare_cached(
                "UPDATE jobs SET failures = ?2, retry_at = ?3, retry_for = ?4, retry_attempt = ?5,
                        enabled = CASE WHEN ?6 THEN 0 ELSE enabled END
                 WHERE name = ?1",
            )
            .and_then(|mut st| {
                st.execute(params![
                    run.job,
                    s.failures,
                    s.retry.map(|r| stamp(r.at)),
                    s.retry.map(|r| stamp(r.scheduled_for)),
                    s.retry.map_or(0, |r| r.attempt),
                    s.disable,
                ])
            })
            .map_err(StoreError::from)?;
            Ok(())
        })
        .await
    }
}
