//! `pincer storage migrate --to postgres://…`: grow from the embedded SQLite database to
//! Postgres without losing history (issue 14).

use crate::cli::StorageCommand;
use crate::{Env, Failure};

pub(crate) fn run(cmd: StorageCommand, env: &Env) -> anyhow::Result<u8> {
    let StorageCommand::Migrate { to, password_env } = cmd;
    migrate(&to, password_env.as_deref(), env)
}

#[cfg(feature = "postgres")]
fn migrate(to: &str, password_env: Option<&str>, env: &Env) -> anyhow::Result<u8> {
    use crate::runtime;
    let home = runtime::home(env)?;
    let db = home.state_db_path();
    if !db.is_file() {
        return Err(
            Failure::usage(format!("{} does not exist: nothing to copy", db.display())).into(),
        );
    }
    let loaded = runtime::load_config(&home, env)?;
    // The audit log moves too, so the deployment keeps one chain: only an intact one.
    let audit = pincer_server::audit::file_source(&home, &loaded.config, env)?;
    if audit.exists() {
        audit.verify().map_err(|e| {
            Failure::usage(format!(
                "the audit log is not intact ({e}); keep it for investigation — nothing was copied"
            ))
        })?;
    }
    let lines: Vec<(u64, String, String)> = audit
        .entries_after(0)?
        .into_iter()
        .map(|e| {
            let hash = serde_json::from_str::<serde_json::Value>(&e.raw)
                .ok()
                .and_then(|v| v["hash"].as_str().map(str::to_owned))
                .unwrap_or_default();
            (e.seq, hash, e.raw)
        })
        .collect();
    let (key, _) = pincer_audit::AnchorKey::load_or_create(&home.audit_key_path())?;
    let rt = runtime::tokio_runtime()?;
    let (report, imported) = rt.block_on(async {
        let ca = loaded.config.storage.ca_file.as_deref();
        let pg = runtime::connect_postgres(to, password_env, ca, env).await?;
        let report = pg.copy_from_sqlite(&db).await?;
        let imported = pg
            .import_audit(&lines, &key)
            .await
            .map_err(|e| Failure::usage(format!("audit log: {e}")))?;
        anyhow::Ok((report, imported))
    })?;
    let tables: serde_json::Map<String, serde_json::Value> = report
        .iter()
        .map(|t| (t.table.to_owned(), serde_json::json!(t.source)))
        .collect();
    // Recorded where the chain now continues: in the database.
    let mut target = loaded.config.clone();
    target.storage.url = Some(to.to_owned());
    target.storage.password_env = password_env.map(str::to_owned);
    runtime::audit_config(
        &home,
        &target,
        env,
        "storage.migrated",
        serde_json::json!({"to": pincer_store::redact_url(to), "rows": tables,
                           "audit_lines": lines.len(), "by": "operator:cli"}),
    );
    println!(
        "{:<16} {:>8} lines in files, {:>8} added to Postgres",
        "audit",
        lines.len(),
        imported
    );
    for t in &report {
        println!(
            "{:<16} {:>8} rows in SQLite, {:>8} in Postgres",
            t.table, t.source, t.target
        );
    }
    println!(
        "copied and verified; now `pincer config set storage.url {}`{}",
        pincer_store::redact_url(to),
        password_env.map_or(String::new(), |v| format!(
            " and `pincer config set storage.password_env {v}`"
        ))
    );
    Ok(0)
}

#[cfg(not(feature = "postgres"))]
fn migrate(_to: &str, _password_env: Option<&str>, _env: &Env) -> anyhow::Result<u8> {
    Err(
        Failure::usage("this pincer was built without Postgres support (feature `postgres`)")
            .into(),
    )
}
