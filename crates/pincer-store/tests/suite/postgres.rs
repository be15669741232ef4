//! What only the Postgres backend has to prove.

use super::Db;

/// A database written by a newer Pincer is refused, never downgraded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let Some(db) = Db::postgres().await else {
        return;
    };
    drop(db.open().await);
    let Db::Postgres { url, schema } = &db else {
        unreachable!("a postgres database")
    };
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "INSERT INTO {schema}.pincer_schema (version) VALUES (999)"
        ))
        .await
        .unwrap();
    let mut cfg: tokio_postgres::Config = url.parse().unwrap();
    cfg.options(format!("-c search_path={schema}"));
    let e = pincer_store::PgStore::with_config(cfg, url)
        .await
        .unwrap_err();
    assert!(
        matches!(e, pincer_store::StoreError::TooNew { found: 999, .. }),
        "{e}"
    );
}

/// An unreachable server is a clear error naming the URL, without its password.
#[tokio::test]
async fn an_unreachable_server_is_named_without_the_password() {
    let e = pincer_store::PgStore::connect("postgres://pincer:hunter2@127.0.0.1:9/db")
        .await
        .unwrap_err();
    let m = e.to_string();
    assert!(m.contains("127.0.0.1:9"), "{m}");
    assert!(!m.contains("hunter2"), "{m}");
}
