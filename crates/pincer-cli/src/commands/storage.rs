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
    let rt = runtime::tokio_runtime()?;
    let report = rt.block_on(async {
        let pg = runtime::connect_postgres(to, password_env, env).await?;
        anyhow::Ok(pg.copy_from_sqlite(&db).await?)
    })?;
    let loaded = runtime::load_config(&home, env)?;
    let tables: serde_json::Map<String, serde_json::Value> = report
        .iter()
        .map(|t| (t.table.to_owned(), serde_json::json!(t.source)))
        .collect();
    runtime::audit_config(
        &home,
        &loaded.config,
        env,
        "storage.migrated",
        serde_json::json!({"to": pincer_store::redact_url(to), "rows": tables, "by": "operator:cli"}),
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
