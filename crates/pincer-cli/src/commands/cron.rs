//! `pincer cron`: scheduled jobs, stored in this home's database; a running `pincer serve`
//! picks changes up within a second.

use pincer_gateway::{JobSpec, enable_job, run_job_now};
use pincer_scheduler::jiff::Timestamp;
use pincer_store::JobError;
use serde_json::json;

use crate::cli::CronCommand;
use crate::{Env, Failure, runtime};

pub(crate) fn run(cmd: CronCommand, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    let config = &loaded.config;
    let rt = runtime::tokio_runtime()?;
    let store = rt.block_on(runtime::open_store(&home, &loaded.config, env))?;
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
            deliver,
            jitter,
            message,
        } => {
            let jitter_secs = match jitter {
                Some(j) => pincer_scheduler::parse_duration(&j)
                    .map_err(|e| Failure::usage(format!("--jitter: {e}")))?
                    .as_secs(),
                None => 0,
            };
            let spec = JobSpec {
                name: name.clone(),
                at,
                every,
                cron,
                tz,
                agent,
                mode,
                missed,
                timeout_secs: timeout,
                message: message.join(" "),
                deliver,
                jitter_secs,
            };
            let agents = config.agents.keys().cloned().collect();
            let job = spec
                .into_job(
                    Timestamp::now(),
                    &agents,
                    &pincer_server::jobs::delivery_policy(config),
                )
                .map_err(|e| Failure::usage(format!("--{e}")))?;
            let next = job.next_run;
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
            // Re-enabling moves the next run past now (no burst of missed runs) and forgets
            // earlier failures.
            rt.block_on(enable_job(&*store, &name)).map_err(failure)?;
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
            rt.block_on(run_job_now(&*store, &name)).map_err(failure)?;
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
                        "{}  {:<9} {}{}{}",
                        r.scheduled_for.to_rfc3339(),
                        r.status.as_str(),
                        r.task,
                        if r.missed { "  (for missed runs)" } else { "" },
                        if r.attempt > 0 {
                            format!("  (retry {})", r.attempt)
                        } else {
                            String::new()
                        }
                    );
                }
            }
        }
    }
    Ok(0)
}
