//! [`JobStore`] on Postgres. A run is keyed by (job, scheduled time, attempt): two nodes that
//! both see a job due record it once (`ON CONFLICT DO NOTHING`), and settling an ended run is
//! one statement that only the first caller wins (`settled` flips once).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use pincer_types::{TaskId, TaskStatus};
use tokio_postgres::Row;

use super::{PgStore, db};
use crate::StoreError;
use crate::jobs::{EndedRun, Job, JobError, JobRun, JobStore, Retry, Settlement};
use crate::values::parse;

const COLUMNS: &str = "name, agent, kind, spec, tz, anchor, message, mode, missed, timeout_secs, \
                       enabled, next_run, created_at, deliver, jitter_secs, failures, retry_at, \
                       retry_for, retry_attempt";

fn int(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn small(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn row(r: &Row) -> Result<Job, StoreError> {
    Ok(Job {
        name: r.get(0),
        agent: parse(r.get::<_, &str>(1), "agent id")?,
        kind: r.get(2),
        spec: r.get(3),
        tz: r.get(4),
        anchor: r.get(5),
        message: r.get(6),
        mode: r.get(7),
        missed: r.get(8),
        timeout_secs: int(r.get(9)),
        enabled: r.get(10),
        next_run: r.get(11),
        created_at: r.get(12),
        deliver: r.get(13),
        jitter_secs: int(r.get(14)),
        failures: small(r.get(15)),
        retry: match (
            r.get::<_, Option<DateTime<Utc>>>(16),
            r.get::<_, Option<DateTime<Utc>>>(17),
        ) {
            (Some(at), Some(scheduled_for)) => Some(Retry {
                at,
                scheduled_for,
                attempt: small(r.get(18)),
            }),
            _ => None,
        },
    })
}

fn changed(n: u64, name: &str) -> Result<(), JobError> {
    if n == 0 {
        Err(JobError::NotFound(name.to_owned()))
    } else {
        Ok(())
    }
}

async fn set_next(
    c: &impl GenericClient,
    name: &str,
    next: Option<DateTime<Utc>>,
) -> Result<(), JobError> {
    let n = c
        .execute(
            "UPDATE jobs SET next_run = $2 WHERE name = $1",
            &[&name, &next],
        )
        .await
        .map_err(|e| db(&e))?;
    changed(n, name)
}

fn wide(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[async_trait]
impl JobStore for PgStore {
    async fn add_job(&self, j: &Job) -> Result<(), JobError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "INSERT INTO jobs (name, agent, kind, spec, tz, anchor, message, mode, missed,
                                   timeout_secs, enabled, next_run, created_at, deliver, jitter_secs)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                 ON CONFLICT (name) DO NOTHING",
                &[
                    &j.name,
                    &j.agent.as_str(),
                    &j.kind,
                    &j.spec,
                    &j.tz,
                    &j.anchor,
                    &j.message,
                    &j.mode,
                    &j.missed,
                    &wide(j.timeout_secs),
                    &j.enabled,
                    &j.next_run,
                    &j.created_at,
                    &j.deliver,
                    &wide(j.jitter_secs),
                ],
            )
            .await
            .map_err(|e| db(&e))?;
        if n == 0 {
            return Err(JobError::Exists(j.name.clone()));
        }
        Ok(())
    }

    async fn jobs(&self) -> Result<Vec<Job>, JobError> {
        let client = self.client().await?;
        let rows = client
            .query(&format!("SELECT {COLUMNS} FROM jobs ORDER BY name"), &[])
            .await
            .map_err(|e| db(&e))?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    async fn job(&self, name: &str) -> Result<Option<Job>, JobError> {
        let client = self.client().await?;
        Ok(client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM jobs WHERE name = $1"),
                &[&name],
            )
            .await
            .map_err(|e| db(&e))?
            .as_ref()
            .map(row)
            .transpose()?)
    }

    async fn remove_job(&self, name: &str) -> Result<(), JobError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        tx.execute("DELETE FROM job_runs WHERE job = $1", &[&name])
            .await
            .map_err(|e| db(&e))?;
        let n = tx
            .execute("DELETE FROM jobs WHERE name = $1", &[&name])
            .await
            .map_err(|e| db(&e))?;
        changed(n, name)?;
        tx.commit().await.map_err(|e| db(&e))?;
        Ok(())
    }

    async fn set_job_enabled(&self, name: &str, enabled: bool) -> Result<(), JobError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE jobs SET enabled = $2,
                        failures = CASE WHEN $2 THEN 0 ELSE failures END
                 WHERE name = $1",
                &[&name, &enabled],
            )
            .await
            .map_err(|e| db(&e))?;
        changed(n, name)
    }

    async fn set_next_run(&self, name: &str, next: Option<DateTime<Utc>>) -> Result<(), JobError> {
        let client = self.client().await?;
        set_next(&client, name, next).await
    }

    async fn record_run(
        &self,
        name: &str,
        task: TaskId,
        scheduled_for: DateTime<Utc>,
        missed: bool,
        next: Option<DateTime<Utc>>,
    ) -> Result<(), JobError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        tx.execute(
            "INSERT INTO job_runs (job, task_id, scheduled_for, missed) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&name, &task.to_string(), &scheduled_for, &missed],
        )
        .await
        .map_err(|e| db(&e))?;
        set_next(&tx, name, next).await?;
        tx.commit().await.map_err(|e| db(&e))?;
        Ok(())
    }

    async fn job_runs(&self, name: &str, limit: usize) -> Result<Vec<JobRun>, JobError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT r.task_id, r.scheduled_for, r.missed, t.status, t.started_at,
                        t.ended_at, t.run_dir, r.attempt
                 FROM job_runs r LEFT JOIN tasks t ON t.id = r.task_id
                 WHERE r.job = $1 ORDER BY r.scheduled_for DESC, r.attempt DESC LIMIT $2",
                &[&name, &i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .await
            .map_err(|e| db(&e))?;
        let runs = rows
            .iter()
            .map(|r| {
                Ok(JobRun {
                    task: parse(r.get::<_, &str>(0), "task id")?,
                    scheduled_for: r.get(1),
                    missed: r.get(2),
                    status: r
                        .get::<_, Option<&str>>(3)
                        .and_then(TaskStatus::parse)
                        .unwrap_or(TaskStatus::Queued),
                    started_at: r.get(4),
                    ended_at: r.get(5),
                    run_dir: r.get(6),
                    attempt: small(r.get(7)),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(runs)
    }

    async fn record_retry(&self, name: &str, task: TaskId, retry: Retry) -> Result<(), JobError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        tx.execute(
            "INSERT INTO job_runs (job, task_id, scheduled_for, attempt, missed)
             VALUES ($1, $2, $3, $4, FALSE) ON CONFLICT DO NOTHING",
            &[
                &name,
                &task.to_string(),
                &retry.scheduled_for,
                &i64::from(retry.attempt),
            ],
        )
        .await
        .map_err(|e| db(&e))?;
        let n = tx
            .execute(
                "UPDATE jobs SET retry_at = NULL, retry_for = NULL, retry_attempt = 0
                 WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(|e| db(&e))?;
        changed(n, name)?;
        tx.commit().await.map_err(|e| db(&e))?;
        Ok(())
    }

    async fn ended_runs(&self) -> Result<Vec<EndedRun>, JobError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT r.job, r.scheduled_for, r.attempt, r.task_id
                 FROM job_runs r JOIN tasks t ON t.id = r.task_id
                 WHERE NOT r.settled
                   AND t.status IN ('SUCCEEDED', 'FAILED', 'TIMED_OUT', 'CANCELED')
                 ORDER BY t.ended_at",
                &[],
            )
            .await
            .map_err(|e| db(&e))?;
        let runs = rows
            .iter()
            .map(|r| {
                Ok(EndedRun {
                    job: r.get(0),
                    scheduled_for: r.get(1),
                    attempt: small(r.get(2)),
                    task: parse(r.get::<_, &str>(3), "task id")?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(runs)
    }

    async fn settle_run(&self, run: &EndedRun, s: Settlement) -> Result<(), JobError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        let won = tx
            .execute(
                "UPDATE job_runs SET settled = TRUE
                 WHERE job = $1 AND scheduled_for = $2 AND attempt = $3 AND NOT settled",
                &[&run.job, &run.scheduled_for, &i64::from(run.attempt)],
            )
            .await
            .map_err(|e| db(&e))?;
        // Another node settled it first: its settlement stands.
        if won == 1 {
            tx.execute(
                "UPDATE jobs SET failures = $2, retry_at = $3, retry_for = $4, retry_attempt = $5,
                        enabled = CASE WHEN $6 THEN FALSE ELSE enabled END
                 WHERE name = $1",
                &[
                    &run.job,
                    &i64::from(s.failures),
                    &s.retry.map(|r| r.at),
                    &s.retry.map(|r| r.scheduled_for),
                    &i64::from(s.retry.map_or(0, |r| r.attempt)),
                    &s.disable,
                ],
            )
            .await
            .map_err(|e| db(&e))?;
        }
        tx.commit().await.map_err(|e| db(&e))?;
        Ok(())
    }
}
