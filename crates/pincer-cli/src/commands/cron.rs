//! `pincer cron`: scheduled jobs, stored in this home's database; a running `pincer serve`
//! picks changes up within a second.

use chrono::Utc;
use pincer_scheduler::Schedule;
use pincer_scheduler::jiff::Timestamp;
use pincer_store::{Job, JobError, JobStore, SqliteStore};
use serde_json::json;

use crate::cli::CronCommand;
use crate::jobs::{from_ts, schedule, to_ts};
use crate::{Env, Failure, runtime};

pub(crate) fn run(cmd: CronCommand, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    let config = &loaded.config;
    let store = SqliteStore::open(&home.state_db_path())?;
    let rt = runtime::tokio_runtime()?;
    let audit = |kind: &'static str, fields: serde_json::Value| {
        runtime::audit_config(&home, config, env, kind, fields);
    };
    let failure = |e: JobError| -> anyhow::Error {
        match e {
            JobError::Store(e) => e.into(),
            other => Failure::usage(other.to_string()).into(),
        }
    };
    match cmd {
        CronCommand::Add {
            name,
            at,
            every,
            cron,
            tz,
            agent,
            mode,
            missed,
            timeout,
            message,
        } => {
            let valid_name = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid_name {
                return Err(Failure::usage("--name: use 1-64 of a-z, A-Z, 0-9, -, _").into());
            }
            let (agent_id, _) = runtime::agent_config(&home, config, &agent)?;
            if !matches!(mode.as_str(), "isolated" | "main") {
                return Err(Failure::usage("--mode is `isolated` or `main`").into());
            }
            if !matches!(missed.as_str(), "skip" | "run_once") {
                return Err(Failure::usage("--missed is `skip` or `run_once`").into());
            }
            if timeout == 0 {
                return Err(Failure::usage("--timeout must be at least 1").into());
            }
            let now = Timestamp::now();
            let (kind, spec, sched) = match (at, every, cron) {
                (Some(a), None, None) => {
                    let s = Schedule::at(&a, now).map_err(|e| Failure::usage(e.to_string()))?;
                    let Schedule::At(t) = &s else {
                        return Err(Failure::usage("--at").into());
                    };
                    ("at", t.to_string(), s)
                }
                (None, Some(e), None) => {
                    let s = Schedule::every(&e, now).map_err(|e| Failure::usage(e.to_string()))?;
                    ("every", e, s)
                }
                (None, None, Some(c)) => {
                    let s = Schedule::cron(&c, &tz).map_err(|e| Failure::usage(e.to_string()))?;
                    ("cron", c, s)
                }
                _ => {
                    return Err(Failure::usage("give exactly one of --at, --every, --cron").into());
                }
            };
            // `every` runs first one interval from now; the others at their next time.
            let next = sched.next_after(now).and_then(from_ts);
            if next.is_none() {
                return Err(
                    Failure::usage("that schedule never runs (a time in the past?)").into(),
                );
            }
            let job = Job {
                name: name.clone(),
                agent: agent_id,
                kind: kind.into(),
                spec,
                tz,
                anchor: from_ts(now).unwrap_or_else(Utc::now),
                message: message.join(" "),
                mode,
                missed,
                timeout_secs: timeout,
                enabled: true,
                next_run: next,
                created_at: Utc::now(),
            };
            rt.block_on(store.add_job(&job)).map_err(failure)?;
            audit(
                "job.added",
                json!({"job": name, "kind": job.kind, "spec": job.spec, "agent": job.agent}),
            );
            println!(
                "added `{name}`; next run {}",
                next.map_or_else(|| "never".into(), |t| t.to_rfc3339())
            );
        }
        CronCommand::List { json } => {
            let jobs = rt.block_on(store.jobs()).map_err(failure)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&jobs)?);
            } else if jobs.is_empty() {
                println!("no jobs (add one with `pincer cron add`)");
            } else {
                for j in &jobs {
                    println!(
                        "{:<20} {:<8} {:<22} {:<9} next {}",
                        j.name,
                        j.kind,
                        j.spec,
                        if j.enabled { "enabled" } else { "disabled" },
                        j.next_run.map_or_else(|| "—".into(), |t| t.to_rfc3339())
                    );
                }
            }
        }
        CronCommand::Show { name } => {
            let j = rt
                .block_on(store.job(&name))
                .map_err(failure)?
                .ok_or_else(|| Failure::usage(format!("no job named `{name}`")))?;
            println!("{}", serde_json::to_string_pretty(&j)?);
        }
        CronCommand::Rm { name } => {
            rt.block_on(store.remove_job(&name)).map_err(failure)?;
            audit("job.removed", json!({"job": name}));
            println!("removed `{name}`");
        }
        CronCommand::Enable { name } => {
            // Re-enabling moves the next run past now (no burst of missed runs).
            let j = rt
                .block_on(store.job(&name))
                .map_err(failure)?
                .ok_or_else(|| Failure::usage(format!("no job named `{name}`")))?;
            let next = schedule(&j)
                .ok()
                .and_then(|s| s.next_after(Timestamp::now()))
                .and_then(from_ts);
            rt.block_on(async {
                store.set_job_enabled(&name, true).await?;
                store.set_next_run(&name, next).await
            })
            .map_err(failure)?;
            audit("job.enabled", json!({"job": name}));
            println!("enabled `{name}`");
        }
        CronCommand::Disable { name } => {
            rt.block_on(store.set_job_enabled(&name, false))
                .map_err(failure)?;
            audit("job.disabled", json!({"job": name}));
            println!("disabled `{name}`");
        }
        CronCommand::Run { name } => {
            let now = to_ts(Utc::now()).and_then(from_ts);
            rt.block_on(store.set_next_run(&name, now))
                .map_err(failure)?;
            audit("job.run", json!({"job": name}));
            println!("`{name}` will run now (within a second, when `pincer serve` runs)");
        }
        CronCommand::Runs { name, json } => {
            let runs = rt.block_on(store.job_runs(&name, 100)).map_err(failure)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else {
                for r in &runs {
                    println!(
                        "{}  {:<9} {}{}",
                        r.scheduled_for.to_rfc3339(),
                        r.status.as_str(),
                        r.task,
                        if r.missed { "  (for missed runs)" } else { "" }
                    );
                }
            }
        }
    }
    Ok(0)
}
