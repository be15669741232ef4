//! `pincer serve` and the CLI on Postgres (`[storage] url`, issue 14): the same gateway, queue
//! and tokens, with every row in the shared database and none in `state.db`.

use super::common::*;
use super::serve::request;

/// A fresh schema on the test server, reachable through `?options=-csearch_path=…`; `None`
/// outside CI without a server (under `CI=true` a missing server fails).
async fn database() -> Option<(String, tokio_postgres::Client)> {
    let Ok(url) = std::env::var("PINCER_TEST_POSTGRES") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "PINCER_TEST_POSTGRES is required under CI"
        );
        eprintln!("SKIP (PINCER_TEST_POSTGRES not set; not CI)");
        return None;
    };
    let schema = format!(
        "cli_{}",
        pincer_types::TaskId::new().to_string().replace('-', "")
    );
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; SET search_path = {schema}"
        ))
        .await
        .unwrap();
    Some((format!("{url}?options=-csearch_path%3D{schema}"), client))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_tasks_with_all_state_in_postgres() {
    let Some((url, db)) = database().await else {
        return;
    };
    let llm = pincer_testkit::FakeLlm::start(vec![pincer_testkit::Reply::text("from postgres")])
        .await
        .unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    set(&home, "storage.url", &url).await;
    let out = home
        .run(
            &[
                "tokens",
                "create",
                "--name",
                "t",
                "--scopes",
                "tasks:read,tasks:write",
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let token = stdout(&out).trim().to_owned();
    let home_path = home.path();
    let (mut child, created, done) = tokio::task::spawn_blocking(move || {
        let (child, addr) = serve_at(&home_path, &[]);
        let created = request(
            &addr,
            "POST",
            "/v1/tasks",
            &token,
            Some(r#"{"agent": "main", "message": "hi", "idempotency_key": "pg-1"}"#),
        );
        let id = created.1["task"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let done = request(
            &addr,
            "GET",
            &format!("/v1/tasks/{id}?wait_secs=30"),
            &token,
            None,
        );
        (child, created, done)
    })
    .await
    .unwrap();
    assert_eq!(term(&mut child), Some(0));
    assert_eq!(created.0, 201, "{:?}", created.1);
    assert_eq!(done.1["task"]["status"], "SUCCEEDED", "{:?}", done.1);
    assert_eq!(done.1["task"]["output"], "from postgres");
    // The rows are in Postgres: the task, the token, the session and its messages.
    let n = |sql: &'static str| {
        let db = &db;
        async move { db.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(
        n("SELECT COUNT(*) FROM tasks WHERE status = 'SUCCEEDED'").await,
        1
    );
    assert_eq!(n("SELECT COUNT(*) FROM tokens").await, 1);
    assert!(n("SELECT COUNT(*) FROM messages").await >= 2);
    assert_eq!(n("SELECT COUNT(*) FROM runs").await, 1);
    // …and none in the embedded database (it is never created).
    assert!(!home.path().join("state.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_storage_url_is_a_clear_error_without_the_password() {
    let home = Home::new();
    home.init("http://127.0.0.1:9/v1").await;
    // A password in the file is refused, with the key named.
    let out = home
        .run(
            &[
                "config",
                "set",
                "storage.url",
                "postgres://pincer:hunter2@127.0.0.1:9/p",
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("storage.url"), "{}", stderr(&out));
    // Unreachable: `pincer serve` and the CLI exit 2 naming the URL, never the password.
    set(&home, "storage.url", "postgres://pincer@127.0.0.1:9/p").await;
    set(&home, "storage.password_env", "PINCER_TEST_PG_PASSWORD").await;
    for args in [
        vec!["serve", "--bind", "127.0.0.1:0"],
        vec!["tokens", "list"],
    ] {
        let out = home
            .run_with_env(&args, &[("PINCER_TEST_PG_PASSWORD", "hunter2")])
            .await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("127.0.0.1:9"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
