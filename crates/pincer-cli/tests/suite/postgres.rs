//! `pincer serve` and the CLI on Postgres (`[storage] url`, issue 14): the same gateway, queue
//! and tokens, with every row in the shared database and none in `state.db`.

use super::common::*;
use super::serve::{read_until, request, subscribe};

/// A fresh schema on the test server: the URL a home points at, and a connection to inspect it.
async fn database() -> Option<(String, tokio_postgres::Client)> {
    let pg = pincer_testkit::PgSchema::create("cli").await?;
    Some((pg.url_with_schema(), pg.client))
}

/// A home on `url` answering through `llm`, and a `tasks:read,tasks:write` token (stored in
/// Postgres).
async fn pg_home(llm: &pincer_testkit::FakeLlm, url: &str) -> (Home, String) {
    let home = Home::new();
    home.init(&llm.base_url()).await;
    set(&home, "storage.url", url).await;
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
    (home, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_tasks_with_all_state_in_postgres() {
    let Some((url, db)) = database().await else {
        return;
    };
    let llm = pincer_testkit::FakeLlm::start(vec![pincer_testkit::Reply::text("from postgres")])
        .await
        .unwrap();
    let (home, token) = pg_home(&llm, &url).await;
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
    // The audit chain is in the database too: the run's records, verified there.
    assert!(n("SELECT COUNT(*) FROM audit_lines WHERE line LIKE '%\"run.end\"%'").await >= 1);
    let out = home.run(&["audit", "verify", "--json"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        report["lines"].as_i64(),
        Some(n("SELECT COUNT(*) FROM audit_lines").await),
        "{report}"
    );
    assert!(report["anchored"].as_u64().is_some(), "{report}");
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

/// Issue 14: two `pincer serve` processes on one database. The Telegram channel is a singleton:
/// one node polls and sends, so every message is answered exactly once, even though both nodes
/// run tasks from the shared queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_answer_each_chat_message_exactly_once() {
    let Some((url, db)) = database().await else {
        return;
    };
    let llm = pincer_testkit::FakeLlm::start(vec![]).await.unwrap(); // echoes
    let tg = pincer_testkit::FakeTelegram::start(BOT_TOKEN)
        .await
        .unwrap();
    let home = telegram_home(&llm, &tg, &[("channels.telegram.allow_from", "[900]")]).await;
    set(&home, "storage.url", &url).await;
    // The first answer is flood-limited for 6 s: long enough for a second sender, were one
    // running, to find the pending row (senders recheck every 5 s) and send it too.
    tg.fail_next_for(
        "sendMessage",
        900,
        pincer_testkit::TgFault::TooManyRequests { retry_after: 6 },
    );
    let vars = [("PINCER_TEST_BOT", BOT_TOKEN)];
    let (mut a, _) = serve_at(&home.path(), &vars);
    let (mut b, _) = serve_at(&home.path(), &vars);
    for i in 0..4 {
        tg.push_text(900, 900, &format!("message {i}"));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while texts_to(&tg, 900).len() < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            texts_to(&tg, 900)
        );
        let n = tg.calls_of("sendMessage").len();
        tg.wait_for("sendMessage", n + 1, std::time::Duration::from_secs(10))
            .await;
    }
    assert_eq!(term(&mut a), Some(0));
    assert_eq!(term(&mut b), Some(0));
    let mut texts = delivered_to(&tg, 900);
    texts.sort();
    assert_eq!(
        texts,
        (0..4)
            .map(|i| format!("echo: message {i}"))
            .collect::<Vec<_>>(),
        "each message answered exactly once"
    );
    assert_eq!(llm.requests().len(), 4, "each message ran once");
    // One node led the channel; the lease was handed back at the clean stop.
    let leaders: i64 = db
        .query_one("SELECT COUNT(*) FROM leaders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(leaders, 0);
}

/// Issue 14: `--role gateway` takes tasks but runs none; a separate `--role worker` process on
/// the same database runs them (so the queue is really shared across processes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_queues_and_a_separate_worker_process_runs() {
    use std::io::{BufRead, BufReader};
    let Some((url, _db)) = database().await else {
        return;
    };
    let llm = pincer_testkit::FakeLlm::start(vec![pincer_testkit::Reply::text("ran elsewhere")])
        .await
        .unwrap();
    let (home, token) = pg_home(&llm, &url).await;
    let home_path = home.path();
    let done = tokio::task::spawn_blocking(move || {
        let mut gateway = std::process::Command::new(env!("CARGO_BIN_EXE_pincer"))
            .args(["serve", "--bind", "127.0.0.1:0", "--role", "gateway"])
            .env("PINCER_HOME", &home_path)
            .env(KEY_VAR, KEY)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(gateway.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("pincer serve: listening on http://")
            .unwrap()
            .to_owned();
        // Live events on the gateway, for a task another process will run.
        let mut sse = subscribe(&addr, &token);
        let created = request(
            &addr,
            "POST",
            "/v1/tasks",
            &token,
            Some(r#"{"agent": "main", "message": "hi"}"#),
        );
        let id = created.1["task"]["id"].as_str().unwrap().to_owned();
        // The gateway runs nothing: the task stays queued.
        let queued = request(
            &addr,
            "GET",
            &format!("/v1/tasks/{id}?wait_secs=1"),
            &token,
            None,
        );
        assert_eq!(queued.1["task"]["status"], "QUEUED", "{:?}", queued.1);
        let mut worker = std::process::Command::new(env!("CARGO_BIN_EXE_pincer"))
            .args(["serve", "--role", "worker"])
            .env("PINCER_HOME", &home_path)
            .env(KEY_VAR, KEY)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(worker.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("pincer serve: worker"), "{line}");
        let done = request(
            &addr,
            "GET",
            &format!("/v1/tasks/{id}?wait_secs=30"),
            &token,
            None,
        );
        // The worker's events reached the gateway's stream (relayed through the database).
        let events = read_until(&mut sse, "event: task.succeeded");
        assert!(events.contains("event: run.started"), "{events}");
        drop(sse);
        assert_eq!(term(&mut worker), Some(0));
        assert_eq!(term(&mut gateway), Some(0));
        done
    })
    .await
    .unwrap();
    assert_eq!(done.1["task"]["status"], "SUCCEEDED", "{:?}", done.1);
    assert_eq!(done.1["task"]["output"], "ran elsewhere");
}

/// Issue 14, part 6: a home grown on SQLite moves to Postgres with `pincer storage migrate`,
/// then keeps working there (its token still authenticates, its history is there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_migrate_moves_a_sqlite_home_to_postgres() {
    let Some((url, db)) = database().await else {
        return;
    };
    let llm = pincer_testkit::FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    let out = home
        .run(
            &["tokens", "create", "--name", "t", "--scopes", "tasks:read"],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = home
        .run(&["ask", "--session", "s", "remember me"], "")
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for _ in 0..2 {
        let out = home.run(&["storage", "migrate", "--to", &url], "").await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(
            stdout(&out).contains("copied and verified"),
            "{}",
            stdout(&out)
        );
    }
    let files = home.run(&["audit", "verify", "--json"], "").await;
    let files: serde_json::Value = serde_json::from_str(&stdout(&files)).unwrap();
    set(&home, "storage.url", &url).await;
    // The audit chain moved with the state: the home's lines, then one record per copy, in
    // the database, verified there with the home's key.
    let out = home
        .run(&["audit", "search", "--type", "storage", "--json"], "")
        .await;
    assert_eq!(
        stdout(&out).lines().count(),
        2,
        "each copy is audited: {}",
        stdout(&out)
    );
    let out = home.run(&["audit", "verify", "--json"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let moved = files["lines"].as_u64().unwrap();
    assert!(moved > 3, "{files}");
    // + the two storage.migrated records (+ config.set of storage.url, when it was audited
    // after the switch).
    let lines = report["lines"].as_u64().unwrap();
    assert!(
        lines == moved + 2 || lines == moved + 3,
        "{report} after {files}"
    );
    assert_eq!(report["anchored"].as_u64(), Some(lines), "{report}");
    assert!(
        report["location"].as_str().unwrap().contains("audit_lines"),
        "{report}"
    );
    let in_db: i64 = db
        .query_one(
            "SELECT COUNT(*) FROM audit_lines WHERE line LIKE '%\"run.start\"%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(in_db, 1, "the ask's run is in the database chain");
    let out = home.run(&["tokens", "list", "--json"], "").await;
    assert!(stdout(&out).contains("\"t\""), "{}", stdout(&out));
    let messages: i64 = db
        .query_one("SELECT COUNT(*) FROM messages", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(messages, 2, "the conversation moved");
    // The conversation continues on Postgres.
    let out = home.run(&["ask", "--session", "s", "again"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let last = llm.requests().last().unwrap().body["messages"].to_string();
    assert!(last.contains("remember me"), "{last}");
}

/// Approves every approval the nodes announce (their events reach the database's relay
/// channel), through whichever node is alive, until aborted. Also wakes `changed` on every event.
async fn approver(
    url: String,
    nodes: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    token: String,
    changed: std::sync::Arc<tokio::sync::Notify>,
) {
    let (client, mut conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        while let Some(Ok(msg)) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
            if let tokio_postgres::AsyncMessage::Notification(n) = msg {
                let _ = tx.send(n.payload().to_owned());
            }
        }
    });
    let channel: String = client
        .query_one("SELECT 'pincer_events:' || md5(current_schema())", &[])
        .await
        .unwrap()
        .get(0);
    client
        .batch_execute(&format!("LISTEN \"{channel}\""))
        .await
        .unwrap();
    while let Some(payload) = rx.recv().await {
        changed.notify_waiters();
        let v: serde_json::Value = serde_json::from_str(&payload).unwrap_or_default();
        if v["kind"] != "approval.requested" {
            continue;
        }
        let id = v["data"]["approval"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let (nodes, token) = (nodes.clone(), token.clone());
        tokio::task::spawn_blocking(move || decide(&nodes, &token, &id))
            .await
            .unwrap();
    }
}

/// Approves `id` through the first node that answers (a killed node does not).
fn decide(nodes: &std::sync::Mutex<Vec<String>>, token: &str, id: &str) {
    let addrs = nodes.lock().unwrap().clone();
    for addr in addrs.iter().rev() {
        let r = super::serve::try_request(
            addr,
            "POST",
            &format!("/v1/approvals/{id}/decision"),
            token,
            Some(r#"{"decision": "APPROVE"}"#),
        );
        // 200 decided; 409 decided already or expired — either way, done.
        if let Ok((200 | 409, _)) = r {
            return;
        }
    }
}

/// Issue 14, part 5: three `pincer serve` processes on one database take a few hundred tasks
/// — some submitted twice with one idempotency key, some needing approval (approved through
/// another node than the one running them), plus one-shot scheduled jobs — while nodes are
/// killed with SIGKILL and restarted. Afterwards every task is final, none ran twice, no session
/// ever had two tasks running at once, every job ran once for its scheduled time, nothing is
/// stuck, and the audit chain (in the database) verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_kill_9_loses_and_repeats_nothing() {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    let Some((url, db)) = database().await else {
        return;
    };
    const TASKS: usize = 200;
    const SESSIONS: usize = 20;
    const JOBS: usize = 4;
    // Tasks asking "approve-…" replace a workspace file (L2: needs a human); the rest echo.
    let llm = pincer_testkit::FakeLlm::bind(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        vec![],
        pincer_testkit::Reply::Slow {
            delay_ms: 30,
            reply: Box::new(pincer_testkit::Reply::WhenAsked {
                marker: "approve-".into(),
                reply: Box::new(pincer_testkit::Reply::tool_call(
                    "fs_write",
                    serde_json::json!({"path": "chaos.txt", "content": "approved"}),
                )),
                otherwise: Box::new(pincer_testkit::Reply::Echo),
            }),
        },
    )
    .await
    .unwrap();
    let (home, token) = pg_home(&llm, &url).await;
    set(&home, "gateway.lease_secs", "3").await;
    set(&home, "gateway.workers", "3").await;
    std::fs::write(home.path().join("workspaces/main/chaos.txt"), "before").unwrap();
    let out = home
        .run(
            &[
                "tokens",
                "create",
                "--name",
                "ap",
                "--scopes",
                "approvals:write",
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let approver_token = stdout(&out).trim().to_owned();
    // One-shot jobs due while the nodes work (and get killed); a missed one runs once late.
    for k in 0..JOBS {
        let (name, at, msg) = (
            format!("once-{k}"),
            format!("{}s", 2 + k),
            format!("job-{k}"),
        );
        let out = home
            .run(
                &[
                    "cron", "add", "--name", &name, "--at", &at, "--missed", "run_once", &msg,
                ],
                "",
            )
            .await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let path = home.path();
    let count = |sql: String| {
        let db = &db;
        async move { db.query_one(&sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let mut nodes: Vec<(std::process::Child, String)> =
        (0..3).map(|_| serve_at(&path, &[])).collect();
    let live = Arc::new(Mutex::new(
        nodes.iter().map(|n| n.1.clone()).collect::<Vec<_>>(),
    ));
    let changed = Arc::new(tokio::sync::Notify::new());
    let approving = tokio::spawn(approver(
        url.clone(),
        live.clone(),
        approver_token.clone(),
        changed.clone(),
    ));
    // Submit everything, spread over the nodes; every fifth task is submitted twice, every
    // tenth needs an approval.
    let submitted = {
        let addrs: Vec<String> = nodes.iter().map(|n| n.1.clone()).collect();
        let token = token.clone();
        tokio::task::spawn_blocking(move || {
            let mut ids = Vec::new();
            for i in 0..TASKS {
                let ask = if i % 10 == 3 { "approve-" } else { "" };
                let body = format!(
                    r#"{{"agent": "main", "message": "{ask}task-{i}", "session": "s{}", "idempotency_key": "k{i}"}}"#,
                    i % SESSIONS
                );
                let (st, v) = request(&addrs[i % 3], "POST", "/v1/tasks", &token, Some(&body));
                assert!(st == 201 || st == 200, "{st} {v}");
                assert_eq!(v["created"], true, "{v}");
                ids.push(v["task"]["id"].as_str().unwrap().to_owned());
                if i % 5 == 0 {
                    let (_, again) =
                        request(&addrs[(i + 1) % 3], "POST", "/v1/tasks", &token, Some(&body));
                    assert_eq!(again["created"], false, "{again}");
                    assert_eq!(again["task"]["id"], v["task"]["id"]);
                }
            }
            ids
        })
        .await
        .unwrap()
    };
    assert_eq!(submitted.len(), TASKS);
    // Kill a node with SIGKILL each time another fifth of the work has reached the model (the
    // fake model's request log wakes the wait), and restart it.
    for round in 1..=4 {
        assert!(
            llm.wait_for_requests(round * TASKS / 5, Duration::from_secs(120))
                .await,
            "stuck before kill {round}"
        );
        let victim = round % 3;
        nodes[victim].0.kill().unwrap();
        nodes[victim].0.wait().unwrap();
        nodes[victim] = serve_at(&path, &[]);
        live.lock().unwrap()[victim] = nodes[victim].1.clone();
    }
    // Every job gets its run: the scheduler leader (re-elected after kills) starts each once.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let started = count("SELECT COUNT(DISTINCT job) FROM job_runs".into()).await;
        if started == i64::try_from(JOBS).unwrap() {
            break;
        }
        assert!(Instant::now() < deadline, "only {started} jobs ran");
        // Woken by any relayed event; the timeout is a recheck, not the synchronisation.
        let _ = tokio::time::timeout(Duration::from_secs(1), changed.notified()).await;
    }
    let job_tasks: Vec<String> = db
        .query("SELECT task_id FROM job_runs", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Everything ends: interrupted tasks fail once their lease runs out, the rest succeed. Each
    // task is awaited through the API's waiter (woken by task events, relayed across nodes); a
    // task still parked for an approval whose announcement was lost with a killed node is
    // approved from the list of pending ones.
    let addr = nodes[0].1.clone();
    let token2 = token.clone();
    let waited: Vec<String> = submitted.iter().chain(&job_tasks).cloned().collect();
    let live2 = live.clone();
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(240);
        for id in &waited {
            loop {
                let (_, v) = request(
                    &addr,
                    "GET",
                    &format!("/v1/tasks/{id}?wait_secs=5"),
                    &token2,
                    None,
                );
                let status = v["task"]["status"].as_str().unwrap_or_default().to_owned();
                if ["SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT"].contains(&status.as_str()) {
                    break;
                }
                if status == "WAITING_APPROVAL" {
                    let (_, pending) = request(
                        &addr,
                        "GET",
                        "/v1/approvals?status=PENDING",
                        &approver_token,
                        None,
                    );
                    for a in pending["approvals"].as_array().into_iter().flatten() {
                        decide(
                            &live2,
                            &approver_token,
                            a["id"].as_str().unwrap_or_default(),
                        );
                    }
                }
                assert!(Instant::now() < deadline, "{id} stuck in {status}");
            }
        }
    })
    .await
    .unwrap();
    approving.abort();
    for (mut child, _) in nodes {
        assert_eq!(term(&mut child), Some(0));
    }
    assert_eq!(
        count("SELECT COUNT(*) FROM tasks WHERE id NOT IN (SELECT task_id FROM job_runs)".into())
            .await,
        i64::try_from(TASKS).unwrap()
    );
    // No task ran twice: at most one model call per task (two for a task that needed an
    // approval: before and after the tool), exactly that many per succeeded task.
    let mut calls: BTreeMap<String, usize> = BTreeMap::new();
    for r in llm.requests() {
        let user = r.body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_owned();
        *calls.entry(user).or_default() += 1;
    }
    let rows = db
        .query(
            "SELECT input, status FROM tasks WHERE id NOT IN (SELECT task_id FROM job_runs)",
            &[],
        )
        .await
        .unwrap();
    let (mut succeeded, mut approved) = (0, 0);
    for row in &rows {
        let (input, status): (String, String) = (row.get(0), row.get(1));
        let per_run = if input.starts_with("approve-") { 2 } else { 1 };
        let n = calls.get(&input).copied().unwrap_or(0);
        assert!(n <= per_run, "{input} ran {n} model calls");
        if status == "SUCCEEDED" {
            succeeded += 1;
            approved += usize::from(per_run == 2);
            assert_eq!(n, per_run, "{input} succeeded with {n} model calls");
        }
    }
    assert!(succeeded >= TASKS / 2, "only {succeeded} succeeded");
    assert!(approved > 0, "no task that needed an approval succeeded");
    eprintln!(
        "CHAOS: {succeeded} of {TASKS} succeeded ({approved} after an approval), the rest were interrupted by kills"
    );
    // Each task that succeeded after an approval had exactly one, granted through the API by
    // the approver's token (on whichever node was alive), and the tool ran.
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM approvals a JOIN tasks t ON t.id = a.task_id
             WHERE t.status = 'SUCCEEDED' AND a.status = 'APPROVED' AND a.decided_by = 'user:owner'"
                .into()
        )
        .await,
        i64::try_from(approved).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(home.path().join("workspaces/main/chaos.txt")).unwrap(),
        "approved"
    );
    // Every job ran once for its scheduled time: one first attempt per job, one task per run,
    // no model call without a task, at most one success per job.
    assert_eq!(
        count("SELECT COUNT(*) FROM job_runs WHERE attempt = 0".into()).await,
        i64::try_from(JOBS).unwrap()
    );
    assert_eq!(
        count("SELECT COUNT(DISTINCT task_id) FROM job_runs".into()).await,
        count("SELECT COUNT(*) FROM tasks WHERE id IN (SELECT task_id FROM job_runs)".into()).await
    );
    for k in 0..JOBS {
        let tasks = count(format!(
            "SELECT COUNT(*) FROM tasks WHERE id IN (SELECT task_id FROM job_runs) AND input = 'job-{k}'"
        ))
        .await;
        let ok = count(format!(
            "SELECT COUNT(*) FROM tasks WHERE id IN (SELECT task_id FROM job_runs) AND input = 'job-{k}' AND status = 'SUCCEEDED'"
        ))
        .await;
        let n = i64::try_from(calls.get(&format!("job-{k}")).copied().unwrap_or(0)).unwrap();
        assert!(
            ok <= 1 && n <= tasks && n >= ok,
            "job-{k}: {tasks} tasks, {ok} ok, {n} calls"
        );
    }
    // No session ever had two tasks running at once.
    let spans = db
        .query(
            "SELECT session_key, started_at, ended_at FROM tasks
             WHERE started_at IS NOT NULL AND ended_at IS NOT NULL ORDER BY session_key, started_at",
            &[],
        )
        .await
        .unwrap();
    for pair in spans.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.get::<_, String>(0) == b.get::<_, String>(0) {
            let a_end: chrono::DateTime<chrono::Utc> = a.get(2);
            let b_start: chrono::DateTime<chrono::Utc> = b.get(1);
            assert!(
                a_end <= b_start,
                "overlapping runs in {}",
                a.get::<_, String>(0)
            );
        }
    }
    // Nothing is left leased, and the audit chain every node appended to verifies.
    assert_eq!(
        count("SELECT COUNT(*) FROM tasks WHERE lease_owner IS NOT NULL".into()).await,
        0
    );
    let out = home.run(&["audit", "verify"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("audit_lines"), "{}", stdout(&out));
}

/// Issue 14, bad input: Postgres lost while `pincer serve` runs. `/readyz` says not ready, the
/// API answers a typed 503 (nothing accepted, so nothing lost), the node backs off; when the
/// database is back, it is ready again at once and tasks run — and the audit chain, whose
/// connection was cut too, still verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_database_makes_the_node_not_ready_until_it_is_back() {
    let Some((url, _db)) = database().await else {
        return;
    };
    // The same database, through a line the test can cut.
    let target: tokio_postgres::Config = url.parse().unwrap();
    let (host, port) = match (&target.get_hosts()[0], target.get_ports()[0]) {
        (tokio_postgres::config::Host::Tcp(h), p) => (h.clone(), p),
        other => panic!("a TCP test server, not {other:?}"),
    };
    let target = tokio::net::lookup_host((host.as_str(), port))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = pincer_testkit::TcpProxy::start(target).await.unwrap();
    let proxied = url.replacen(&format!("{host}:{port}"), &proxy.addr().to_string(), 1);
    assert_ne!(proxied, url);
    let llm = pincer_testkit::FakeLlm::start(vec![]).await.unwrap();
    let (home, token) = pg_home(&llm, &proxied).await;
    let path = home.path();
    let (mut child, addr) = tokio::task::spawn_blocking(move || serve_at(&path, &[]))
        .await
        .unwrap();
    let call = |method: &'static str, path: String, body: Option<&'static str>| {
        let (addr, token) = (addr.clone(), token.clone());
        tokio::task::spawn_blocking(move || request(&addr, method, &path, &token, body))
    };
    let submit = r#"{"agent": "main", "message": "hello"}"#;
    let wait = |v: &serde_json::Value| {
        format!(
            "/v1/tasks/{}?wait_secs=30",
            v["task"]["id"].as_str().unwrap_or_default()
        )
    };
    assert_eq!(call("GET", "/readyz".into(), None).await.unwrap().0, 200);
    let (st, first) = call("POST", "/v1/tasks".into(), Some(submit))
        .await
        .unwrap();
    assert_eq!(st, 201, "{first}");
    let done = call("GET", wait(&first), None).await.unwrap();
    assert_eq!(done.1["task"]["status"], "SUCCEEDED", "{:?}", done.1);

    proxy.cut();
    let (st, v) = call("GET", "/readyz".into(), None).await.unwrap();
    assert_eq!(st, 503, "{v}");
    // The token cannot be checked either: refused as unavailable before the ping.
    assert!(
        ["not_ready", "store_unavailable"].contains(&v["error"]["code"].as_str().unwrap_or("")),
        "{v}"
    );
    let (st, v) = call("POST", "/v1/tasks".into(), Some(submit))
        .await
        .unwrap();
    assert_eq!(st, 503, "{v}");
    assert_eq!(v["error"]["code"], "store_unavailable", "{v}");

    proxy.restore();
    assert_eq!(call("GET", "/readyz".into(), None).await.unwrap().0, 200);
    let (st, second) = call("POST", "/v1/tasks".into(), Some(submit))
        .await
        .unwrap();
    assert_eq!(st, 201, "{second}");
    let done = call("GET", wait(&second), None).await.unwrap();
    assert_eq!(done.1["task"]["status"], "SUCCEEDED", "{:?}", done.1);
    assert_eq!(term(&mut child), Some(0));
    let out = home.run(&["audit", "verify"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
