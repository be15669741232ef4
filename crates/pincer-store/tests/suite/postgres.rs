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

/// Issue 14, part 6: an existing SQLite home's state copied into Postgres — every kind of row,
/// readable through the same traits, idempotent, and the queue carries on after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_home_is_copied_into_postgres_once_and_verified() {
    use pincer_store::{
        ChannelStore, HeartbeatStore, JobStore, NewOutgoing, NewTask, SqliteStore, Store, TaskKind,
        TaskQueue, TokenStore, UsageFilter, UsageRecord, UsageStore,
    };
    use pincer_types::{AgentId, Scope, SessionKey};
    let Some(db) = Db::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let agent: AgentId = "main".parse().unwrap();
    let key = SessionKey::for_peer(&agent, "api", "s").unwrap();
    let (secret, task_id, session) = {
        let lite = SqliteStore::open(&path).unwrap();
        let (secret, _) = lite
            .create_token("ops", "owner", &[Scope::Admin], None, super::at(0))
            .await
            .unwrap();
        let (t, _) = lite
            .submit(
                NewTask {
                    kind: TaskKind::Message,
                    agent: agent.clone(),
                    session_key: key.clone(),
                    input: "hello".into(),
                    idempotency_key: Some("k1".into()),
                    deadline: None,
                    owner: None,
                },
                super::at(1),
            )
            .await
            .unwrap();
        let s = lite.current_session(&key, &agent).await.unwrap();
        lite.append_messages(s.id, vec![serde_json::json!("q"), serde_json::json!("a")])
            .await
            .unwrap();
        lite.record_heartbeat(&agent, super::at(2), "skipped", None, None)
            .await
            .unwrap();
        lite.enqueue(NewOutgoing::text("telegram", "42", "hi"), super::at(3))
            .await
            .unwrap();
        lite.set_offset("telegram", 77).await.unwrap();
        lite.record_usage(&UsageRecord {
            at: super::at(4),
            agent: "main".into(),
            session: "main:api:s".into(),
            user: "owner".into(),
            model: "m".into(),
            input_tokens: 30,
            output_tokens: 12,
            cost_usd: None,
        })
        .await
        .unwrap();
        (secret, t.id, s.id)
    };
    let Db::Postgres { url, schema } = &db else {
        unreachable!("a postgres database")
    };
    let mut cfg: tokio_postgres::Config = url.parse().unwrap();
    cfg.options(format!("-c search_path={schema}"));
    let pg = pincer_store::PgStore::with_config(cfg, url).await.unwrap();
    let first = pg.copy_from_sqlite(&path).await.unwrap();
    assert!(first.iter().all(|t| t.source == t.target), "{first:?}");
    assert!(first.iter().any(|t| t.table == "tasks" && t.source == 1));
    // Idempotent: a second run copies nothing twice.
    let second = pg.copy_from_sqlite(&path).await.unwrap();
    assert_eq!(first, second);
    // Everything reads back through the same traits.
    assert!(
        pg.authenticate(&secret, super::at(5))
            .await
            .unwrap()
            .is_some()
    );
    let t = pg.task(task_id).await.unwrap().unwrap();
    assert_eq!((t.input.as_str(), t.created_at), ("hello", super::at(1)));
    assert_eq!(pg.current_session(&key, &agent).await.unwrap().id, session);
    assert_eq!(pg.messages(session).await.unwrap().len(), 2);
    assert_eq!(pg.heartbeats(None, 10).await.unwrap().len(), 1);
    assert_eq!(pg.pending_out("telegram", 10).await.unwrap()[0].text, "hi");
    assert_eq!(pg.offset("telegram").await.unwrap(), Some(77));
    assert!(pg.jobs().await.unwrap().is_empty());
    // The per-day sums are rebuilt from the copied calls (once, though copied twice).
    let days = pg.usage_daily(&UsageFilter::default()).await.unwrap();
    assert_eq!(days.len(), 1, "{days:?}");
    assert_eq!((days[0].model.as_str(), days[0].tokens), ("m", 42));
    // The queue carries on: new rows get new ids, the idempotency key still holds.
    let (again, created) = pg
        .submit(
            NewTask {
                kind: TaskKind::Message,
                agent: agent.clone(),
                session_key: key.clone(),
                input: "hello again".into(),
                idempotency_key: Some("k1".into()),
                deadline: None,
                owner: None,
            },
            super::at(6),
        )
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again.id, task_id);
    pg.enqueue(NewOutgoing::text("telegram", "42", "next"), super::at(7))
        .await
        .unwrap();
    assert_eq!(pg.pending_out("telegram", 10).await.unwrap().len(), 2);
}

/// Live events reach every process on the same schema, in order, and never a deployment on
/// another schema of the same database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_relayed_within_one_schema_only() {
    let (Some(a), Some(b)) = (Db::postgres().await, Db::postgres().await) else {
        return;
    };
    let (a1, a2, b1) = (a.open().await, a.open().await, b.open().await);
    let mut rx = a1.relay_subscribe().await.unwrap().unwrap();
    b1.relay_send("from another deployment").await.unwrap();
    a2.relay_send("one").await.unwrap();
    a2.relay_send("two").await.unwrap();
    assert_eq!(rx.recv().await.unwrap(), "one");
    assert_eq!(rx.recv().await.unwrap(), "two");
    // The other schema's event was sent first; had it crossed over it would have come first.
    assert!(rx.try_recv().is_err());
}

/// `sslmode=require` turns TLS on with full verification: trusted through the CA file, the
/// connection is encrypted (the server says so); without that CA the server's certificate is
/// refused. `.ci/run` starts the test cluster with TLS and a throwaway CA (`PINCER_TEST_PG_CA`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_required_and_verified_when_the_url_asks_for_it() {
    let Some(db) = Db::postgres().await else {
        return;
    };
    let Ok(ca) = std::env::var("PINCER_TEST_PG_CA") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "PINCER_TEST_PG_CA is required under CI (.ci/run makes a CA for the test cluster)"
        );
        eprintln!("SKIP postgres TLS (PINCER_TEST_PG_CA not set; not CI)");
        return;
    };
    let Db::Postgres { url, schema } = &db else {
        unreachable!("postgres")
    };
    let app = format!("pincer-tls-{schema}");
    let config = || {
        let mut cfg: tokio_postgres::Config = url.parse().unwrap();
        cfg.options(format!("-c search_path={schema}"));
        cfg.application_name(&app);
        cfg.ssl_mode(tokio_postgres::config::SslMode::Require);
        cfg
    };
    let tls = pincer_store::PgTls::for_config(&config(), Some(std::path::Path::new(&ca))).unwrap();
    assert!(matches!(tls, pincer_store::PgTls::On(_)));

    let store = pincer_store::PgStore::with_tls(config(), url, tls)
        .await
        .unwrap();
    // Used through the store, then checked from a plain connection: every connection of ours
    // is encrypted.
    pincer_store::TaskQueue::list(&store, None, 1)
        .await
        .unwrap();
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let (ours, encrypted): (i64, i64) = {
        let r = client
            .query_one(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a
                 JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = $1",
                &[&app],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(
        ours > 0 && ours == encrypted,
        "{encrypted} of {ours} connections encrypted"
    );
    // Without the test CA (system roots only) the server's certificate does not verify.
    let untrusted = pincer_store::PgTls::for_config(&config(), None).unwrap();
    let e = pincer_store::PgStore::with_tls(config(), url, untrusted)
        .await
        .unwrap_err();
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    // Without sslmode=require nothing changes: plain TCP, as before.
    let plain: tokio_postgres::Config = url.parse().unwrap();
    assert!(matches!(
        pincer_store::PgTls::for_config(&plain, None).unwrap(),
        pincer_store::PgTls::Off
    ));
}
