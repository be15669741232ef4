//! `pincer gc`: one retention pass now (the same as `pincer serve`'s daily one).

use crate::exit::FAILED;
use crate::{Env, runtime};

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

pub(crate) fn run(dry_run: bool, json: bool, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    let config = &loaded.config;
    let rt = runtime::tokio_runtime()?;
    let rep = rt.block_on(async {
        let store = runtime::open_store(&home, config, env).await?;
        pincer_server::retention::gc(&home, config, &*store, dry_run).await
    })?;
    if !dry_run {
        runtime::audit_config(
            &home,
            config,
            env,
            "retention.gc",
            pincer_server::retention::audit_fields(&rep),
        );
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
    } else {
        let verb = if dry_run { "would remove" } else { "removed" };
        println!(
            "run bundles: {verb} {} ({}), kept {} ({})",
            rep.runs.removed,
            mib(rep.runs.bytes),
            rep.runs.kept,
            mib(rep.runs.kept_bytes)
        );
        let s = &rep.store;
        println!(
            "database: {verb} {} task(s) with {} approval(s), {} conversation(s) with {} message(s), {} delivered message(s)",
            s.tasks, s.approvals, s.sessions, s.messages, s.outbox
        );
        match (&rep.audit, &rep.audit_error) {
            (_, Some(e)) => eprintln!("error: {e}"),
            (Some(a), None) if a.days.is_empty() => println!("audit log: nothing to archive"),
            (Some(a), None) => println!(
                "audit log: {} {} day(s), {} lines ({} → {}): {}",
                if dry_run { "would archive" } else { "archived" },
                a.days.len(),
                a.lines,
                mib(a.bytes),
                mib(a.compressed),
                a.days.join(", ")
            ),
            (None, None) => {
                println!("audit log: not archived (in the database, off, or no log yet)")
            }
        }
    }
    Ok(if rep.audit_error.is_some() { FAILED } else { 0 })
}
