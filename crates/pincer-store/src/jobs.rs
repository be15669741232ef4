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
    /// Enables or disables a job.
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
}

const COLUMNS: &str = "name, agent, kind, spec, tz, anchor, message, mode, missed, timeout_secs, \
                       enabled, next_run, created_at";

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
    })
}

fn get(c: &rusqlite::Connection, name: &str) -> Result<Option<Job>, StoreError> {
    let mut st = c.prepare_cached(&format!("SELECT {COLUMNS} FROM jobs WHERE name = ?1"))?;
    let mut rows = st.query(params![name])?;
    rows.next()?.map(row).transpose()
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
            c.execute(
                &format!("INSERT INTO jobs ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
                params![
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
                ],
            )
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
            c.execute("DELETE FROM job_runs WHERE job = ?1", params![name])
                .map_err(StoreError::from)?;
            let n = c
                .execute("DELETE FROM jobs WHERE name = ?1", params![name])
                .map_err(StoreError::from)?;
            changed(n, name)
        })
        .await
    }

    async fn set_job_enabled(&self, name: &str, enabled: bool) -> Result<(), JobError> {
        let name = name.to_owned();
        self.transact(move |c| {
            let n = c
                .execute(
                    "UPDATE jobs SET enabled = ?2 WHERE name = ?1",
                    params![name, enabled],
                )
                .map_err(StoreError::from)?;
            changed(n, name)
        })
        .await
    }

    async fn set_next_run(&self, name: &str, next: Option<DateTime<Utc>>) -> Result<(), JobError> {
        let name = name.to_owned();
        self.transact(move |c| {
            let n = c
                .execute(
                    "UPDATE jobs SET next_run = ?2 WHERE name = ?1",
                    params![name, next.map(stamp)],
                )
                .map_err(StoreError::from)?;
            changed(n, name)
        })
        .await
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
            c.execute(
                "INSERT OR IGNORE INTO job_runs (job, task_id, scheduled_for, missed) VALUES (?1, ?2, ?3, ?4)",
                params![name, task.to_string(), stamp(scheduled_for), missed],
            )
            .map_err(StoreError::from)?;
            let n = c
                .execute(
                    "UPDATE jobs SET next_run = ?2 WHERE name = ?1",
                    params![name, next.map(stamp)],
                )
                .map_err(StoreError::from)?;
            changed(n, name)
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
                            t.ended_at, t.run_dir
                     FROM job_runs r LEFT JOIN tasks t ON t.id = r.task_id
                     WHERE r.job = ?1 ORDER BY r.scheduled_for DESC LIMIT ?2",
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
                    });
                }
                Ok(v)
            })
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::test_at as at;

    fn job(name: &str) -> Job {
        Job {
            name: name.into(),
            agent: "main".parse().unwrap(),
            kind: "every".into(),
            spec: "2s".into(),
            tz: "UTC".into(),
            anchor: at(0),
            message: "tick".into(),
            mode: "isolated".into(),
            missed: "skip".into(),
            timeout_secs: 60,
            enabled: true,
            next_run: Some(at(0)),
            created_at: at(0),
        }
    }

    #[tokio::test]
    async fn jobs_persist_runs_are_recorded_and_removal_is_clean() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let s = SqliteStore::open(&path).unwrap();
            s.add_job(&job("tick")).await.unwrap();
            assert!(matches!(
                s.add_job(&job("tick")).await,
                Err(JobError::Exists(_))
            ));
            let t = TaskId::new();
            s.record_run("tick", t, at(0), false, Some(at(2)))
                .await
                .unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        let j = s.job("tick").await.unwrap().unwrap();
        assert_eq!(j.next_run, Some(at(2)));
        let runs = s.job_runs("tick", 10).await.unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].status, TaskStatus::Queued);
        s.set_job_enabled("tick", false).await.unwrap();
        assert!(!s.job("tick").await.unwrap().unwrap().enabled);
        s.remove_job("tick").await.unwrap();
        assert!(s.jobs().await.unwrap().is_empty());
        assert!(matches!(
            s.remove_job("tick").await,
            Err(JobError::NotFound(_))
        ));
    }
}
