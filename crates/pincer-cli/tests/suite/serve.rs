//! `pincer serve` as a real process: loopback by default, refuses to expose itself without an
//! explicit opt-in and a token, answers over HTTP, stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};

use pincer_testkit::FakeLlm;

use super::common::*;

fn spawn_serve(home: &HomeAt, bind: &str) -> (Child, String) {
    assert_eq!(bind, "127.0.0.1:0");
    serve_at(&home.path(), &[])
}

fn get(addr: &str, path: &str, token: Option<&str>) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// A home served by a model that plays `script`, and a token with `scopes`.
async fn served(script: Vec<pincer_testkit::Reply>, scopes: &str) -> (FakeLlm, Home, String) {
    let server = FakeLlm::start(script).await.unwrap();
    let home = Home::new();
    home.init(&server.base_url()).await;
    let out = home
        .run(&["tokens", "create", "--name", "t", "--scopes", scopes], "")
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let token = stdout(&out).trim().to_owned();
    (server, home, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_on_loopback_and_stops_on_sigterm() {
    let server = FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&server.base_url()).await;
    let out = home
        .run(
            &["tokens", "create", "--name", "t", "--scopes", "tasks:read"],
            "",
        )
        .await;
    let token = stdout(&out).trim().to_owned();
    let (mut child, addr) = tokio::task::spawn_blocking({
        let home_path = home.path();
        move || {
            let h = Home::at(home_path);
            spawn_serve(&h, "127.0.0.1:0")
        }
    })
    .await
    .unwrap();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let health = get(&addr, "/healthz", None);
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let anon = get(&addr, "/v1/tasks", None);
    assert!(anon.starts_with("HTTP/1.1 401"), "{anon}");
    let authed = get(&addr, "/v1/tasks", Some(&token));
    assert!(authed.starts_with("HTTP/1.1 200"), "{authed}");
    assert_eq!(term(&mut child), Some(0));
    let out = home
        .run(&["audit", "search", "--type", "serve.stop", "--json"], "")
        .await;
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_to_expose_itself_without_opt_in_and_a_token() {
    let server = FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&server.base_url()).await;
    let out = home.run(&["serve", "--bind", "0.0.0.0:0"], "").await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("allow_non_loopback"),
        "{}",
        stderr(&out)
    );
    let out = home
        .run(&["config", "set", "gateway.allow_non_loopback", "true"], "")
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = home.run(&["serve", "--bind", "0.0.0.0:0"], "").await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no API token"), "{}", stderr(&out));
}

/// Subscribes to `/v1/events` (headers read; a 30 s read timeout fails a stuck test).
pub(super) fn subscribe(addr: &str, token: &str) -> BufReader<TcpStream> {
    let mut sse = TcpStream::connect(addr).unwrap();
    write!(
        sse,
        "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    sse.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut sse = BufReader::new(sse);
    let mut head = String::new();
    while head != "\r\n" {
        head.clear();
        sse.read_line(&mut head).unwrap();
    }
    sse
}

/// The event stream's text up to and including the line containing `needle`.
pub(super) fn read_until(sse: &mut BufReader<TcpStream>, needle: &str) -> String {
    let mut events = String::new();
    // Keep-alive comments keep the socket busy: bound the whole wait, not just each read.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !events.contains(needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "no `{needle}` within 30 s: {events}"
        );
        let mut line = String::new();
        sse.read_line(&mut line)
            .expect("an event before the read timeout");
        events.push_str(&line);
    }
    events
}

pub(super) fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> (u16, serde_json::Value) {
    try_request(addr, method, path, token, body).unwrap()
}

/// As [`request`], with an error instead of a panic when the server is gone (a killed node).
pub(super) fn try_request(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, serde_json::Value)> {
    request_with(addr, method, path, token, body, "")
}

/// As [`try_request`], with `extra` header lines (each ending in `\r\n`).
pub(super) fn request_with(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&str>,
    extra: &str,
) -> std::io::Result<(u16, serde_json::Value)> {
    let mut s = TcpStream::connect(addr)?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status: u16 = out
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP status in {out:?}")))?;
    let json = out
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(serde_json::Value::Null);
    Ok((status, json))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitted_task_runs_through_the_model_and_ends_succeeded() {
    let (_server, home, token) = served(
        vec![pincer_testkit::Reply::text("hello from the model")],
        "tasks:read,tasks:write",
    )
    .await;
    let home_path = home.path();
    let (mut child, created, done, events, sse) = tokio::task::spawn_blocking(move || {
        let (child, addr) = spawn_serve(&Home::at(home_path), "127.0.0.1:0");
        // Subscribe to live events before submitting.
        let mut sse = subscribe(&addr, &token);
        let created = request(
            &addr,
            "POST",
            "/v1/tasks",
            &token,
            Some(r#"{"agent": "main", "message": "hi", "idempotency_key": "k"}"#),
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
        // The end reaches subscribers as an event (a read timeout fails the test).
        let events = read_until(&mut sse, "event: task.succeeded");
        (child, created, done, events, sse)
    })
    .await
    .unwrap();
    assert_eq!(created.0, 201, "{:?}", created.1);
    assert_eq!(done.0, 200, "{:?}", done.1);
    assert_eq!(done.1["task"]["status"], "SUCCEEDED", "{:?}", done.1);
    assert_eq!(done.1["task"]["output"], "hello from the model");
    for kind in ["task.queued", "task.running", "task.succeeded"] {
        assert!(events.contains(&format!("event: {kind}")), "{events}");
    }
    // An open event stream does not hold up a SIGTERM stop.
    assert_eq!(term(&mut child), Some(0));
    drop(sse);
    // The run left its bundle and audit trail like any other.
    assert_eq!(home.runs().len(), 1);
    let out = home
        .run(&["audit", "search", "--type", "task.end", "--json"], "")
        .await;
    assert!(stdout(&out).contains("SUCCEEDED"), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_no_task_is_stuck_none_runs_twice_and_the_audit_verifies() {
    use pincer_testkit::Reply;
    let script = vec![
        // The first task hangs in its model call until the server is killed.
        Reply::Slow {
            delay_ms: 120_000,
            reply: Box::new(Reply::text("too late")),
        },
        Reply::text("second answer"),
    ];
    let (server, home, token) = served(script, "tasks:read,tasks:write").await;
    let out = home
        .run(&["config", "set", "gateway.lease_secs", "1"], "")
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let config_before = std::fs::read(home.path().join("config.toml")).unwrap();

    let (path, tok) = (home.path(), token.clone());
    let (mut first, id) = tokio::task::spawn_blocking(move || {
        let (child, addr) = spawn_serve(&Home::at(path), "127.0.0.1:0");
        let (st, body) = request(
            &addr,
            "POST",
            "/v1/tasks",
            &tok,
            Some(r#"{"agent": "main", "message": "slow one", "session": "a"}"#),
        );
        assert_eq!(st, 201, "{body}");
        (child, body["task"]["id"].as_str().unwrap().to_owned())
    })
    .await
    .unwrap();
    // The task is running once its model call arrives; then the server dies without warning.
    assert!(
        server
            .wait_for_requests(1, std::time::Duration::from_secs(30))
            .await
    );
    first.kill().unwrap();
    first.wait().unwrap();

    let (path, tok, task) = (home.path(), token.clone(), id.clone());
    let (mut second, interrupted, next) = tokio::task::spawn_blocking(move || {
        let (child, addr) = spawn_serve(&Home::at(path), "127.0.0.1:0");
        let interrupted = request(
            &addr,
            "GET",
            &format!("/v1/tasks/{task}?wait_secs=30"),
            &tok,
            None,
        );
        let (_, created) = request(
            &addr,
            "POST",
            "/v1/tasks",
            &tok,
            Some(r#"{"agent": "main", "message": "next", "session": "a"}"#),
        );
        let next_id = created["task"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let next = request(
            &addr,
            "GET",
            &format!("/v1/tasks/{next_id}?wait_secs=30"),
            &tok,
            None,
        );
        (child, interrupted, next)
    })
    .await
    .unwrap();
    // Not stuck: ended, as interrupted, and not run again.
    assert_eq!(
        interrupted.1["task"]["status"], "FAILED",
        "{:?}",
        interrupted.1
    );
    assert!(
        interrupted.1["task"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("interrupted"),
        "{:?}",
        interrupted.1
    );
    // The session is free again and the next task runs.
    assert_eq!(next.1["task"]["status"], "SUCCEEDED", "{:?}", next.1);
    assert_eq!(next.1["task"]["output"], "second answer");
    assert_eq!(
        server.requests().len(),
        2,
        "the interrupted task must not be re-run"
    );
    assert_eq!(term(&mut second), Some(0));
    // Nothing lost or corrupted.
    assert_eq!(
        std::fs::read(home.path().join("config.toml")).unwrap(),
        config_before
    );
    let out = home.run(&["audit", "verify"], "").await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = home.run(&["tokens", "list", "--json"], "").await;
    assert!(stdout(&out).contains("\"t\""));
}

/// A served home whose model first replaces `notes.txt` (L2: needs approval) with `content`,
/// then answers `after`. Returns the model, the home, the notes path and a token with
/// `tasks:read,tasks:write,approvals:write`.
async fn approval_scenario(
    content: &str,
    after: &str,
    original: &str,
) -> (FakeLlm, Home, std::path::PathBuf, String) {
    use pincer_testkit::{Reply, ScriptedCall};
    let script = vec![
        Reply::ToolCalls {
            calls: vec![ScriptedCall {
                name: "fs_write".into(),
                arguments: serde_json::json!({"path": "notes.txt", "content": content}),
            }],
            text: String::new(),
        },
        Reply::text(after),
    ];
    let (server, home, token) = served(script, "tasks:read,tasks:write,approvals:write").await;
    let notes = home.path().join("workspaces/main/notes.txt");
    std::fs::write(&notes, original).unwrap();
    (server, home, notes, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_needing_approval_parks_the_task_until_it_is_approved_through_the_api() {
    let (_server, home, notes, token) =
        approval_scenario("approved text", "written", "old text").await;
    let (path, notes_in) = (home.path(), notes.clone());
    let (mut child, parked, while_parked, pending, decided, done) =
        tokio::task::spawn_blocking(move || {
            let (child, addr) = spawn_serve(&Home::at(path), "127.0.0.1:0");
            let (_, created) = request(
                &addr,
                "POST",
                "/v1/tasks",
                &token,
                Some(r#"{"agent": "main", "message": "update the notes"}"#),
            );
            let id = created["task"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let wait = format!("/v1/tasks/{id}?wait_secs=30");
            let parked = request(&addr, "GET", &wait, &token, None);
            let while_parked = std::fs::read_to_string(&notes_in).unwrap();
            let pending = request(&addr, "GET", "/v1/approvals?status=PENDING", &token, None);
            let approval = pending.1["approvals"][0]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let decided = request(
                &addr,
                "POST",
                &format!("/v1/approvals/{approval}/decision"),
                &token,
                Some(r#"{"decision": "APPROVE"}"#),
            );
            let done = request(&addr, "GET", &wait, &token, None);
            (child, parked, while_parked, pending, decided, done)
        })
        .await
        .unwrap();
    assert_eq!(
        parked.1["task"]["status"], "WAITING_APPROVAL",
        "{:?}",
        parked.1
    );
    let a = &pending.1["approvals"][0];
    assert_eq!(a["tool"], "fs.write", "{a}");
    assert_eq!(a["tier"], "L2_DESTRUCTIVE");
    assert_eq!(a["digest"].as_str().unwrap().len(), 64);
    // Nothing was written while the task waited.
    assert_eq!(while_parked, "old text");
    assert_eq!(decided.0, 200, "{:?}", decided.1);
    assert_eq!(decided.1["approval"]["decided_by"], "user:owner");
    assert_eq!(done.1["task"]["status"], "SUCCEEDED", "{:?}", done.1);
    assert_eq!(done.1["task"]["output"], "written");
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "approved text");
    assert_eq!(term(&mut child), Some(0));
    let out = home
        .run(
            &["audit", "search", "--type", "approval.granted", "--json"],
            "",
        )
        .await;
    assert!(stdout(&out).contains("user:owner"), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_can_deny_from_the_cli_and_the_run_carries_on_without_the_action() {
    let (_server, home, notes, token) = approval_scenario(
        &format!("unwanted {KEY}"),
        "understood, left it alone",
        "keep me",
    )
    .await;
    let path = home.path();
    let (child, addr, wait) = tokio::task::spawn_blocking(move || {
        let (child, addr) = spawn_serve(&Home::at(path), "127.0.0.1:0");
        let (_, created) = request(
            &addr,
            "POST",
            "/v1/tasks",
            &token,
            Some(r#"{"agent": "main", "message": "overwrite the notes"}"#),
        );
        let id = created["task"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let wait = format!("/v1/tasks/{id}?wait_secs=30");
        let parked = request(&addr, "GET", &wait, &token, None);
        assert_eq!(
            parked.1["task"]["status"], "WAITING_APPROVAL",
            "{:?}",
            parked.1
        );
        (child, addr, (wait, token))
    })
    .await
    .unwrap();
    let out = home.run(&["approvals", "list", "--json"], "").await;
    let list: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    // The recorded action is redacted like the audit log: the secret it carried is not stored.
    assert!(!stdout(&out).contains(KEY), "{}", stdout(&out));
    assert!(stdout(&out).contains("REDACTED"), "{}", stdout(&out));
    let id = list[0]["id"].as_str().unwrap().to_owned();
    let out = home.run(&["approvals", "deny", &id], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("DENIED"));
    // Deciding twice is refused.
    let out = home.run(&["approvals", "approve", &id], "").await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let mut child = child;
    let done = tokio::task::spawn_blocking(move || request(&addr, "GET", &wait.0, &wait.1, None))
        .await
        .unwrap();
    assert_eq!(done.1["task"]["status"], "SUCCEEDED", "{:?}", done.1);
    assert_eq!(done.1["task"]["output"], "understood, left it alone");
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "keep me");
    assert_eq!(term(&mut child), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_past_its_timeout_is_timed_out_and_its_run_stopped() {
    use pincer_testkit::Reply;
    let script = vec![Reply::Slow {
        delay_ms: 120_000,
        reply: Box::new(Reply::text("never")),
    }];
    let (_server, home, token) = served(script, "tasks:read,tasks:write").await;
    let path = home.path();
    let (mut child, done) = tokio::task::spawn_blocking(move || {
        let (child, addr) = spawn_serve(&Home::at(path), "127.0.0.1:0");
        let (_, created) = request(
            &addr,
            "POST",
            "/v1/tasks",
            &token,
            Some(r#"{"agent": "main", "message": "slow", "timeout_secs": 1}"#),
        );
        let id = created["task"]["id"]
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
        (child, done)
    })
    .await
    .unwrap();
    assert_eq!(done.1["task"]["status"], "TIMED_OUT", "{:?}", done.1);
    // The server still stops promptly: the timed-out run was canceled, not left hanging.
    assert_eq!(term(&mut child), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_client_submits_waits_lists_and_needs_a_token() {
    let (_server, home, token) = served(
        vec![
            pincer_testkit::Reply::text("answer via the server"),
            pincer_testkit::Reply::text("run through the server"),
            pincer_testkit::Reply::text("run in-process"),
        ],
        "tasks:read,tasks:write",
    )
    .await;
    let path = home.path();
    let (mut child, addr) =
        tokio::task::spawn_blocking(move || spawn_serve(&Home::at(path), "127.0.0.1:0"))
            .await
            .unwrap();
    let url = format!("http://{addr}");
    let env = [
        ("PINCER_URL", url.as_str()),
        ("PINCER_TOKEN", token.as_str()),
    ];
    let out = home
        .run_with_env(
            &[
                "tasks", "submit", "--wait", "--key", "once", "hello", "there",
            ],
            &env,
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "answer via the server\n");
    // Same key: the same task, not a second run.
    let out = home
        .run_with_env(
            &["tasks", "submit", "--key", "once", "hello", "there"],
            &env,
        )
        .await;
    let id = stdout(&out).trim().to_owned();
    let out = home.run_with_env(&["tasks", "list"], &env).await;
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
    assert!(stdout(&out).contains(&id) && stdout(&out).contains("SUCCEEDED"));
    let out = home.run_with_env(&["tasks", "show", &id], &env).await;
    let shown: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(shown["output"], "answer via the server");
    assert!(
        std::path::Path::new(shown["run_dir"].as_str().unwrap())
            .join("meta.json")
            .is_file()
    );
    // `pincer run` goes through the server when PINCER_URL is set, in-process otherwise; both
    // print the answer and where the artifacts are.
    for (vars, answer) in [
        (&env[..], "run through the server"),
        (&[][..], "run in-process"),
    ] {
        let out = home.run_with_env(&["run", "do", "it"], vars).await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(stdout(&out), format!("{answer}\n"));
        let dir = stderr(&out)
            .lines()
            .find_map(|l| l.strip_prefix("artifacts: "))
            .unwrap_or_else(|| panic!("{}", stderr(&out)))
            .to_owned();
        assert!(
            std::path::Path::new(&dir).join("meta.json").is_file(),
            "{dir}"
        );
    }
    // Without a token: a clear usage error, nothing sent.
    let out = home
        .run_with_env(&["tasks", "list"], &[("PINCER_URL", url.as_str())])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("PINCER_TOKEN"), "{}", stderr(&out));
    let out = home
        .run_with_env(
            &["tasks", "list"],
            &[("PINCER_URL", url.as_str()), ("PINCER_TOKEN", "pnc_wrong")],
        )
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("unauthorized"), "{}", stderr(&out));
    assert_eq!(term(&mut child), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_compatible_endpoint_is_off_by_default_and_answers_when_enabled() {
    let (_server, home, token) = served(
        vec![
            pincer_testkit::Reply::text("plain answer"),
            pincer_testkit::Reply::text("streamed answer"),
        ],
        "tasks:read,tasks:write",
    )
    .await;
    let body = r#"{"model": "main", "messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "hi"}]}"#;
    let path = home.path();
    let tok = token.clone();
    let off = tokio::task::spawn_blocking(move || {
        let (mut child, addr) = spawn_serve(&Home::at(path), "127.0.0.1:0");
        let r = request(&addr, "POST", "/v1/chat/completions", &tok, Some(body));
        assert_eq!(term(&mut child), Some(0));
        r
    })
    .await
    .unwrap();
    assert_eq!(
        (off.0, off.1["error"]["code"].as_str()),
        (404, Some("not_enabled"))
    );
    let out = home
        .run(&["config", "set", "gateway.openai_compat", "true"], "")
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let path = home.path();
    let (plain, streamed, unknown) = tokio::task::spawn_blocking(move || {
        let (mut child, addr) = spawn_serve(&Home::at(path), "127.0.0.1:0");
        let plain = request(&addr, "POST", "/v1/chat/completions", &token, Some(body));
        let stream_body = body.replacen('{', r#"{"stream": true, "#, 1);
        // The streamed reply is text/event-stream; read it raw.
        let mut s = TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{stream_body}",
            stream_body.len()
        )
        .unwrap();
        let mut streamed = String::new();
        s.read_to_string(&mut streamed).unwrap();
        let unknown = request(
            &addr,
            "POST",
            "/v1/chat/completions",
            &token,
            Some(r#"{"model": "ghost", "messages": [{"role": "user", "content": "hi"}]}"#),
        );
        assert_eq!(term(&mut child), Some(0));
        (plain, streamed, unknown)
    })
    .await
    .unwrap();
    assert_eq!(plain.0, 200, "{:?}", plain.1);
    assert_eq!(plain.1["object"], "chat.completion");
    assert_eq!(plain.1["choices"][0]["message"]["content"], "plain answer");
    assert!(streamed.contains("streamed answer"), "{streamed}");
    assert!(streamed.contains("data: [DONE]"), "{streamed}");
    assert_eq!(
        (unknown.0, unknown.1["error"]["code"].as_str()),
        (404, Some("unknown_agent"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_can_be_decided_with_the_cli_through_the_server() {
    let (_server, home, notes, token) =
        approval_scenario("via the server", "done remotely", "before").await;
    let path = home.path();
    let tok = token.clone();
    let (child, addr, wait) = tokio::task::spawn_blocking(move || {
        let (child, addr) = spawn_serve(&Home::at(path), "127.0.0.1:0");
        let (_, created) = request(
            &addr,
            "POST",
            "/v1/tasks",
            &tok,
            Some(r#"{"agent": "main", "message": "edit"}"#),
        );
        let id = created["task"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let wait = format!("/v1/tasks/{id}?wait_secs=30");
        let parked = request(&addr, "GET", &wait, &tok, None);
        assert_eq!(
            parked.1["task"]["status"], "WAITING_APPROVAL",
            "{:?}",
            parked.1
        );
        (child, addr, wait)
    })
    .await
    .unwrap();
    let url = format!("http://{addr}");
    let env = [
        ("PINCER_URL", url.as_str()),
        ("PINCER_TOKEN", token.as_str()),
    ];
    let out = home
        .run_with_env(&["approvals", "list", "--json"], &env)
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let id = list[0]["id"].as_str().unwrap().to_owned();
    let out = home
        .run_with_env(&["approvals", "approve", &id], &env)
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("APPROVED"), "{}", stdout(&out));
    let mut child = child;
    let done = tokio::task::spawn_blocking(move || request(&addr, "GET", &wait, &token, None))
        .await
        .unwrap();
    assert_eq!(done.1["task"]["status"], "SUCCEEDED", "{:?}", done.1);
    assert_eq!(done.1["task"]["output"], "done remotely");
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "via the server");
    assert_eq!(term(&mut child), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_running_sandboxed_command() {
    use pincer_testkit::{Reply, ScriptedCall};
    let marker = format!("1000.{}", 700 + std::process::id() % 100);
    let script = vec![Reply::ToolCalls {
        calls: vec![ScriptedCall {
            name: "shell_exec".into(),
            arguments: serde_json::json!({
                "command": format!("echo started > ready.fifo; exec sleep {marker}")
            }),
        }],
        text: String::new(),
    }];
    let (_server, home, token) = served(script, "tasks:read,tasks:write").await;
    for (k, v) in [
        ("security.exec", "sandboxed"),
        ("agents.main.approval_mode", "trusted"),
    ] {
        let out = home.run(&["config", "set", k, v], "").await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let fifo = home.path().join("workspaces/main/ready.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let path = home.path();
    let (canceled, exit) = tokio::task::spawn_blocking(move || {
        let (mut child, addr) = spawn_serve(&Home::at(path), "127.0.0.1:0");
        let (_, created) = request(
            &addr,
            "POST",
            "/v1/tasks",
            &token,
            Some(r#"{"agent": "main", "message": "run it"}"#),
        );
        let id = created["task"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        // Opening the FIFO blocks until the sandboxed command opens it: it is running now.
        let mut started = String::new();
        std::fs::File::open(&fifo)
            .unwrap()
            .read_to_string(&mut started)
            .unwrap();
        assert_eq!(started, "started\n");
        let canceled = request(
            &addr,
            "POST",
            &format!("/v1/tasks/{id}/cancel"),
            &token,
            None,
        );
        // The drain on SIGTERM waits for running tasks: it only finishes if the command died.
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait().map(|s| s.code()));
        });
        let exit = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("serve stopped: the canceled command did not keep the task alive");
        (canceled, exit.unwrap())
    })
    .await
    .unwrap();
    assert_eq!(canceled.1["task"]["status"], "CANCELED", "{:?}", canceled.1);
    assert_eq!(exit, Some(0));
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&cmdline).contains(&marker),
            "survivor"
        );
    }
    let out = home
        .run(
            &["audit", "search", "--type", "tool.canceled", "--json"],
            "",
        )
        .await;
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
}

/// Issue 26.5: run progress (start, each tool call and result, the text, the end) reaches
/// `/v1/events` subscribers — tool names only, never arguments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_progress_streams_as_events_without_arguments() {
    use pincer_testkit::{Reply, ScriptedCall};
    let (_server, home, token) = served(
        vec![
            Reply::ToolCalls {
                calls: vec![ScriptedCall {
                    name: "fs_read".into(),
                    arguments: serde_json::json!({"path": "notes-SECRETPATH.md"}),
                }],
                text: String::new(),
            },
            Reply::text("done"),
        ],
        "tasks:read,tasks:write",
    )
    .await;
    let home_path = home.path();
    let (mut child, events) = tokio::task::spawn_blocking(move || {
        let (child, addr) = spawn_serve(&Home::at(home_path), "127.0.0.1:0");
        let mut sse = subscribe(&addr, &token);
        let (st, _) = request(
            &addr,
            "POST",
            "/v1/tasks",
            &token,
            Some(r#"{"agent": "main", "message": "read my notes"}"#),
        );
        assert_eq!(st, 201);
        let events = read_until(&mut sse, "event: task.succeeded");
        (child, events)
    })
    .await
    .unwrap();
    assert_eq!(term(&mut child), Some(0));
    let order: Vec<&str> = events
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .filter(|k| k.starts_with("run."))
        .collect();
    assert_eq!(
        order,
        [
            "run.started",
            "run.tool_call",
            "run.tool_result",
            "run.text",
            "run.finished"
        ],
        "{events}"
    );
    assert!(events.contains("\"tool\":\"fs.read\""), "{events}");
    // The answer's text, numbered from 0 (streamed OpenAI completions follow it).
    assert!(
        events.contains("\"n\":0") && events.contains("\"text\":\"done\""),
        "{events}"
    );
    assert!(!events.contains("SECRETPATH"), "arguments leaked: {events}");
}
