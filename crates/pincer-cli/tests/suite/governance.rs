//! Governance end to end (issue 20): the real binary, the fake model, the fake Bot API, on
//! SQLite and on Postgres — users and roles, ownership, the approver rules on every path,
//! bypass under org policy, the emergency controls, quotas, and the AgenticAI acceptance
//! scenarios.

use std::io::Read;
use std::process::{Child, Command};
use std::time::Duration;

use pincer_testkit::{FakeLlm, FakeTelegram, Reply, ScriptedCall};
use serde_json::{Value, json};

use super::common::*;

const WAIT: Duration = Duration::from_secs(30);
const HOOK_SECRET: &str = "hook-bearer-secret-0123456789";

/// Runs a scenario on SQLite and on Postgres (a fresh schema on the test server; outside CI
/// without one the Postgres case is skipped, under CI it fails).
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Db::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(pg) = pincer_testkit::PgSchema::create("gov").await {
                    super::$name(super::Db::Postgres(Box::new(pg))).await
                }
            }
        }
    };
}

enum Db {
    Sqlite,
    Postgres(Box<pincer_testkit::PgSchema>),
}

/// A home on `db` answering through `llm` (Telegram pointed at `tg` when given).
async fn home_on(db: &Db, llm: &FakeLlm, tg: Option<&FakeTelegram>) -> Home {
    let home = match tg {
        Some(tg) => telegram_home(llm, tg, &[]).await,
        None => {
            let h = Home::new();
            h.init(&llm.base_url()).await;
            h
        }
    };
    if let Db::Postgres(pg) = db {
        set(&home, "storage.url", &pg.url_with_schema()).await;
    }
    home
}

async fn ok(home: &Home, args: &[&str]) -> String {
    let out = home.run(args, "").await;
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

async fn refused(home: &Home, args: &[&str]) -> String {
    let out = home.run(args, "").await;
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stdout(&out));
    stderr(&out)
}

async fn user(home: &Home, name: &str, role: &str) {
    ok(home, &["users", "add", name, "--role", role]).await;
}

async fn token(home: &Home, name: &str, user: &str, scopes: &str) -> String {
    ok(
        home,
        &[
            "tokens", "create", "--name", name, "--user", user, "--scopes", scopes,
        ],
    )
    .await
    .trim()
    .to_owned()
}

fn serve(home: &Home, hook_secret: &str) -> (Child, String) {
    serve_at(
        &home.path(),
        &[
            ("PINCER_TEST_BOT", BOT_TOKEN),
            ("PINCER_TEST_HOOK", hook_secret),
        ],
    )
}

async fn api(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let (addr, method, path, token) = (
        addr.to_owned(),
        method.to_owned(),
        path.to_owned(),
        token.to_owned(),
    );
    let body = body.map(|b| b.to_string());
    tokio::task::spawn_blocking(move || {
        super::serve::request(&addr, &method, &path, &token, body.as_deref())
    })
    .await
    .unwrap()
}

/// Submits a task; returns its id.
async fn submit(addr: &str, token: &str, message: &str) -> String {
    let (st, v) = api(
        addr,
        "POST",
        "/v1/tasks",
        token,
        Some(json!({"agent": "main", "message": message})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    v["task"]["id"].as_str().unwrap().to_owned()
}

/// Waits until the task ends or parks; returns it.
async fn settle(addr: &str, token: &str, id: &str) -> Value {
    let (st, v) = api(
        addr,
        "GET",
        &format!("/v1/tasks/{id}?wait_secs=30"),
        token,
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    v["task"].clone()
}

fn write_call(path: &str, content: &str) -> Reply {
    Reply::ToolCalls {
        calls: vec![ScriptedCall {
            name: "fs_write".into(),
            arguments: json!({"path": path, "content": content}),
        }],
        text: String::new(),
    }
}

/// `[hooks.ci]`, authenticated by the bearer secret in `PINCER_TEST_HOOK`.
fn add_bearer_hook(home: &Home) {
    std::fs::OpenOptions::new()
        .append(true)
        .open(home.path().join("config.toml"))
        .and_then(|mut f| {
            std::io::Write::write_all(
                &mut f,
                b"\n[hooks.ci]\nauth = \"bearer\"\nsecret_env = \"PINCER_TEST_HOOK\"\n",
            )
        })
        .unwrap();
}

/// A command that says it started (through `ready.fifo`) and then sleeps: `sleep <marker>`.
fn sleep_call(marker: &str) -> Reply {
    Reply::ToolCalls {
        calls: vec![ScriptedCall {
            name: "shell_exec".into(),
            arguments: json!({"command": format!("echo started > ready.fifo; exec sleep {marker}")}),
        }],
        text: String::new(),
    }
}

/// Delivers a hook event; returns status and body.
async fn deliver(addr: &str, event: &str, body: &'static str) -> (u16, Value) {
    let (addr, extra) = (addr.to_owned(), format!("X-Pincer-Event-Id: {event}\r\n"));
    tokio::task::spawn_blocking(move || {
        super::serve::request_with(
            &addr,
            "POST",
            "/v1/hooks/ci",
            HOOK_SECRET,
            Some(body),
            &extra,
        )
        .unwrap()
    })
    .await
    .unwrap()
}

/// Stops the server with SIGTERM; its drain finishes only when no run is left alive.
fn stop(child: &mut Child) {
    assert_eq!(term(child), Some(0));
}

/// A `sleep` argument no other test (or other backend's run of this one) uses.
fn unique_marker() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("2000.{:03}{n:02}", std::process::id() % 1000)
}

/// No process whose command line holds `marker` is left.
fn no_survivor(marker: &str) {
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&cmdline).contains(marker),
            "a process of the canceled task survived"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Ownership of conversations and tasks.

async fn members_see_and_continue_only_their_own_work(db: Db) {
    let llm = FakeLlm::start(vec![]).await.unwrap(); // echoes
    let home = home_on(&db, &llm, None).await;
    user(&home, "ann", "member").await;
    user(&home, "bob", "member").await;
    user(&home, "olga", "operator").await;
    let ann = token(&home, "ann", "ann", "tasks:read,tasks:write").await;
    let bob = token(&home, "bob", "bob", "tasks:read,tasks:write").await;
    let olga = token(&home, "olga", "olga", "tasks:read,audit:read").await;
    // A member's token cannot be given more than a member may do.
    let err = refused(
        &home,
        &[
            "tokens", "create", "--name", "x", "--user", "bob", "--scopes", "admin",
        ],
    )
    .await;
    assert!(err.contains("member"), "{err}");
    let (mut child, addr) = serve(&home, HOOK_SECRET);
    // Both without a session name: each continues their own conversation, never the other's.
    let a1 = submit(&addr, &ann, "my secret is swordfish").await;
    assert_eq!(settle(&addr, &ann, &a1).await["status"], "SUCCEEDED");
    let b1 = submit(&addr, &bob, "what did the last person say?").await;
    let b1_task = settle(&addr, &bob, &b1).await;
    assert_eq!(b1_task["owner"], "bob", "{b1_task}");
    let last = || llm.requests().last().unwrap().body["messages"].to_string();
    assert!(!last().contains("swordfish"), "{}", last());
    let a2 = submit(&addr, &ann, "and what was my secret?").await;
    settle(&addr, &ann, &a2).await;
    assert!(last().contains("swordfish"), "{}", last());
    // Bob can neither read nor cancel Ann's task, nor find it in his list.
    let (st, _) = api(&addr, "GET", &format!("/v1/tasks/{a1}"), &bob, None).await;
    assert_eq!(st, 404);
    let (st, _) = api(&addr, "POST", &format!("/v1/tasks/{a1}/cancel"), &bob, None).await;
    assert_eq!(st, 404);
    let (_, mine) = api(&addr, "GET", "/v1/tasks", &bob, None).await;
    let owners: Vec<&str> = mine["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["owner"].as_str().unwrap())
        .collect();
    assert_eq!(owners, vec!["bob"], "{mine}");
    // An operator sees everyone's.
    let (_, all) = api(&addr, "GET", "/v1/tasks", &olga, None).await;
    assert_eq!(all["tasks"].as_array().unwrap().len(), 3, "{all}");
    // The CLI client with Bob's token lists only his task.
    let url = format!("http://{addr}");
    let out = home
        .run_with_env(
            &["tasks", "list"],
            &[("PINCER_URL", url.as_str()), ("PINCER_TOKEN", bob.as_str())],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&b1) && !stdout(&out).contains(&a1),
        "{}",
        stdout(&out)
    );
    // Members do not read the audit log; the operator does.
    let (st, _) = api(&addr, "GET", "/v1/audit-events", &bob, None).await;
    assert_eq!(st, 403);
    let (st, _) = api(&addr, "GET", "/v1/audit-events", &olga, None).await;
    assert_eq!(st, 200);
    stop(&mut child);
}
both!(members_see_and_continue_only_their_own_work);

// ---------------------------------------------------------------------------------------------
// 3. Approver rules on every path; 7. a mutating action needs approval (bypass off).

async fn cross_user_approval_hijack_fails_on_every_path_and_is_audited(db: Db) {
    let llm = FakeLlm::start(vec![
        write_call("notes.txt", "from ann"),
        Reply::text("written"),
    ])
    .await
    .unwrap();
    let tg = FakeTelegram::start(BOT_TOKEN).await.unwrap();
    let home = home_on(&db, &llm, Some(&tg)).await;
    let notes = home.path().join("workspaces/main/notes.txt");
    std::fs::write(&notes, "old").unwrap();
    user(&home, "ann", "member").await;
    user(&home, "bob", "member").await;
    ok(&home, &["users", "link", "bob", "telegram:802"]).await;
    let scopes = "tasks:read,tasks:write,approvals:write";
    let ann = token(&home, "ann", "ann", scopes).await;
    let bob = token(&home, "bob", "bob", scopes).await;
    let (mut child, addr) = serve(&home, HOOK_SECRET);
    let id = submit(&addr, &ann, "update the notes").await;
    // Overwriting a file is L2: it needs a human (no bypass).
    assert_eq!(settle(&addr, &ann, &id).await["status"], "WAITING_APPROVAL");
    let (_, pending) = api(&addr, "GET", "/v1/approvals?status=PENDING", &ann, None).await;
    let approval = pending["approvals"][0]["id"].as_str().unwrap().to_owned();
    // Bob does not even see it…
    let (_, theirs) = api(&addr, "GET", "/v1/approvals?status=PENDING", &bob, None).await;
    assert!(
        theirs["approvals"].as_array().unwrap().is_empty(),
        "{theirs}"
    );
    // …and every path he tries is refused: the API,
    let path = format!("/v1/approvals/{approval}/decision");
    let (st, v) = api(
        &addr,
        "POST",
        &path,
        &bob,
        Some(json!({"decision": "APPROVE"})),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{v}"
    );
    // the CLI through the server,
    let url = format!("http://{addr}");
    let out = home
        .run_with_env(
            &["approvals", "approve", &approval],
            &[("PINCER_URL", url.as_str()), ("PINCER_TOKEN", bob.as_str())],
        )
        .await;
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    // a chat command from his linked account, and a button press.
    tg.push_text(802, 802, &format!("/approve {approval}"));
    assert!(tg.wait_for("sendMessage", 1, WAIT).await);
    assert!(
        texts_to(&tg, 802)[0].contains("not yours"),
        "{:?}",
        texts_to(&tg, 802)
    );
    tg.push_callback(802, 802, 5, &format!("apr:{approval}:y"));
    assert!(tg.wait_for("answerCallbackQuery", 1, WAIT).await);
    let pressed = tg.calls_of("answerCallbackQuery").pop().unwrap();
    assert!(
        pressed.params["text"]
            .as_str()
            .unwrap()
            .contains("not yours"),
        "{pressed:?}"
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "old");
    // Ann decides her own L2 action (self-approval is on by default).
    let (st, v) = api(
        &addr,
        "POST",
        &path,
        &ann,
        Some(json!({"decision": "APPROVE"})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["approval"]["decided_by"], "user:ann");
    assert_eq!(settle(&addr, &ann, &id).await["status"], "SUCCEEDED");
    stop(&mut child);
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "from ann");
    // Each attempt is in the audit log, naming who tried.
    let refusals = audit_of_type(&home, "approval.refused").await;
    assert_eq!(refusals.len(), 4, "{refusals:?}");
    assert!(
        refusals
            .iter()
            .all(|r| r["by"] == "user:bob" && r["requester"] == "ann"),
        "{refusals:?}"
    );
}
both!(cross_user_approval_hijack_fails_on_every_path_and_is_audited);

// ---------------------------------------------------------------------------------------------
// 5. Emergency pause; 7. an admin's change applies to the next action without a restart.

async fn pausing_mutating_actions_applies_to_the_next_action_at_once(db: Db) {
    let time = ScriptedCall {
        name: "time_now".into(),
        arguments: json!({}),
    };
    let write = |p: &str| ScriptedCall {
        name: "fs_write".into(),
        arguments: json!({"path": p, "content": "x"}),
    };
    let llm = FakeLlm::start(vec![
        Reply::ToolCalls {
            calls: vec![time, write("a.txt")],
            text: String::new(),
        },
        Reply::text("first done"),
        Reply::ToolCalls {
            calls: vec![write("b.txt")],
            text: String::new(),
        },
        Reply::text("second done"),
    ])
    .await
    .unwrap();
    let home = home_on(&db, &llm, None).await;
    set(&home, "agents.main.approval_mode", "trusted").await;
    let owner = token(&home, "own", "owner", "tasks:read,tasks:write").await;
    let (mut child, addr) = serve(&home, HOOK_SECRET);
    // The admin pauses from another process while the server runs.
    ok(&home, &["emergency", "pause-mutating"]).await;
    let out = home.run(&["doctor", "--offline", "--json"], "").await;
    let checks: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let check = checks
        .iter()
        .find(|c| c["id"] == "governance.emergency")
        .unwrap();
    assert_eq!(check["status"], "warn", "{check}");
    assert!(
        check["message"].as_str().unwrap().contains("paused"),
        "{check}"
    );
    let id = submit(&addr, &owner, "note the time").await;
    let t = settle(&addr, &owner, &id).await;
    assert_eq!(t["output"], "first done", "{t}");
    // The read ran; the write was denied by the pause.
    let results = tool_results(&llm, Some(1));
    assert!(!results[0].contains("denied"), "{results:?}");
    assert!(results[1].contains("paused"), "{results:?}");
    assert!(!home.path().join("workspaces/main/a.txt").exists());
    // Resumed: the next action runs, no restart.
    ok(&home, &["emergency", "resume"]).await;
    let id = submit(&addr, &owner, "write again").await;
    assert_eq!(settle(&addr, &owner, &id).await["output"], "second done");
    assert!(home.path().join("workspaces/main/b.txt").exists());
    stop(&mut child);
    let paused = audit_of_type(&home, "emergency.pause_mutating").await;
    assert_eq!(paused.len(), 1);
    assert_eq!(paused[0]["by"], "user:owner");
    assert_eq!(audit_of_type(&home, "emergency.resume").await.len(), 1);
}
both!(pausing_mutating_actions_applies_to_the_next_action_at_once);

// ---------------------------------------------------------------------------------------------
// 4. Bypass, constrained by org policy.

async fn bypass_users_stay_constrained_by_org_policy(db: Db) {
    let llm = FakeLlm::start(vec![
        write_call("new.txt", "made"),
        Reply::text("bypassed"),
        write_call("notes.txt", "overwritten"),
        Reply::text("after"),
    ])
    .await
    .unwrap();
    let tg = FakeTelegram::start(BOT_TOKEN).await.unwrap();
    let home = home_on(&db, &llm, Some(&tg)).await;
    set(&home, "agents.main.approval_mode", "strict").await;
    user(&home, "ann", "member").await;
    user(&home, "bob", "member").await;
    let notes = home.path().join("workspaces/main/notes.txt");
    std::fs::write(&notes, "old").unwrap();
    // Org policy off (the default): nobody can switch bypass on.
    let err = refused(&home, &["users", "bypass", "ann", "on"]).await;
    assert!(err.contains("org policy"), "{err}");
    set(&home, "governance.bypass", "allowed").await;
    ok(&home, &["users", "bypass", "ann", "on"]).await;
    let scopes = "tasks:read,tasks:write,approvals:write";
    let ann = token(&home, "ann", "ann", scopes).await;
    let bob = token(&home, "bob", "bob", scopes).await;
    ok(&home, &["users", "link", "ann", "telegram:990"]).await;
    set(&home, "channels.telegram.allow_from", "[991]").await;
    let (mut child, addr) = serve(&home, HOOK_SECRET);
    // In chat, Ann switches her own bypass; an unlinked account has none to switch.
    for (n, (from, cmd)) in [
        (990, "/bypass off"),
        (990, "/bypass on"),
        (991, "/bypass on"),
    ]
    .into_iter()
    .enumerate()
    {
        tg.push_text(from, from, cmd);
        assert!(tg.wait_for("sendMessage", n + 1, WAIT).await, "{cmd}");
    }
    let said = texts_to(&tg, 990);
    assert!(
        said[0].contains("Bypass off") && said[1].contains("Bypass on"),
        "{said:?}"
    );
    assert!(
        texts_to(&tg, 991)[0].contains("link this account"),
        "{:?}",
        texts_to(&tg, 991)
    );
    // An L1 action runs without asking…
    let id = submit(&addr, &ann, "make a file").await;
    assert_eq!(settle(&addr, &ann, &id).await["output"], "bypassed");
    assert!(home.path().join("workspaces/main/new.txt").exists());
    // …an L2 one still asks (the bypass stops at L1).
    let id = submit(&addr, &ann, "overwrite the notes").await;
    assert_eq!(settle(&addr, &ann, &id).await["status"], "WAITING_APPROVAL");
    // Bob cannot switch Ann's bypass.
    let path = "/v1/users/ann/bypass-mode";
    let (st, _) = api(&addr, "POST", path, &bob, Some(json!({"enabled": false}))).await;
    assert_eq!(st, 403);
    // The admin disables bypass org-wide: Ann's is revoked at once and cannot come back.
    let out = ok(&home, &["emergency", "disable-bypass"]).await;
    assert!(out.contains("ann"), "{out}");
    let err = refused(&home, &["users", "bypass", "ann", "on"]).await;
    assert!(err.contains("disabled org-wide"), "{err}");
    let (st, v) = api(&addr, "POST", path, &ann, Some(json!({"enabled": true}))).await;
    assert_eq!(st, 409, "{v}");
    tg.push_text(990, 990, "/bypass on");
    assert!(tg.wait_for("sendMessage", 4, WAIT).await);
    assert!(
        texts_to(&tg, 990)[2].contains("disabled org-wide"),
        "{:?}",
        texts_to(&tg, 990)
    );
    let (_, me) = api(&addr, "GET", "/v1/users/ann", &ann, None).await;
    assert_eq!(me["user"]["bypass"], false, "{me}");
    // Deny the parked action; the run carries on without it.
    let (_, pending) = api(&addr, "GET", "/v1/approvals?status=PENDING", &ann, None).await;
    let approval = pending["approvals"][0]["id"].as_str().unwrap().to_owned();
    let (st, _) = api(
        &addr,
        "POST",
        &format!("/v1/approvals/{approval}/decision"),
        &ann,
        Some(json!({"decision": "DENY"})),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(settle(&addr, &ann, &id).await["status"], "SUCCEEDED");
    stop(&mut child);
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "old");
    // The audit log says which decision the bypass made.
    let decisions = audit_of_type(&home, "policy.decision").await;
    let bypassed: Vec<&Value> = decisions.iter().filter(|d| d["bypass"] == true).collect();
    assert_eq!(bypassed.len(), 1, "{decisions:?}");
    assert_eq!(bypassed[0]["tier"], "L1_MUTATING");
    let locked = audit_of_type(&home, "emergency.disable_bypass").await;
    assert_eq!(locked[0]["revoked"], json!(["ann"]));
}
both!(bypass_users_stay_constrained_by_org_policy);

// ---------------------------------------------------------------------------------------------
// 1. A disabled user's tokens, chat access and pending approvals stop at once.

async fn disabling_a_user_stops_their_tokens_chat_and_approvals(db: Db) {
    let llm = FakeLlm::start(vec![write_call("notes.txt", "no")])
        .await
        .unwrap();
    let tg = FakeTelegram::start(BOT_TOKEN).await.unwrap();
    let home = home_on(&db, &llm, Some(&tg)).await;
    std::fs::write(home.path().join("workspaces/main/notes.txt"), "old").unwrap();
    user(&home, "ann", "member").await;
    ok(&home, &["users", "link", "ann", "telegram:901"]).await;
    let ann = token(&home, "ann", "ann", "tasks:read,tasks:write").await;
    let ops = token(&home, "ops", "owner", "tasks:read").await;
    let (mut child, addr) = serve(&home, HOOK_SECRET);
    let id = submit(&addr, &ann, "overwrite the notes").await;
    assert_eq!(settle(&addr, &ann, &id).await["status"], "WAITING_APPROVAL");
    let out = ok(&home, &["users", "disable", "ann"]).await;
    assert!(
        out.contains("1 approval(s) denied, 1 task(s) canceled"),
        "{out}"
    );
    let (st, _) = api(&addr, "GET", "/v1/tasks", &ann, None).await;
    assert_eq!(st, 401);
    let t = settle(&addr, &ops, &id).await;
    assert_eq!(t["status"], "CANCELED", "{t}");
    tg.push_text(901, 901, "hello?");
    assert!(tg.wait_for("sendMessage", 1, WAIT).await);
    assert!(
        texts_to(&tg, 901)[0].contains("disabled"),
        "{:?}",
        texts_to(&tg, 901)
    );
    stop(&mut child);
    assert!(
        !llm.requests()
            .iter()
            .any(|r| r.body.to_string().contains("hello?")),
        "a disabled user's chat message reached the model"
    );
    // Bad input: the last owner stays, unknown users are named.
    let err = refused(&home, &["users", "role", "owner", "member"]).await;
    assert!(err.contains("last enabled owner"), "{err}");
    let err = refused(&home, &["users", "disable", "nobody"]).await;
    assert!(err.contains("no user `nobody`"), "{err}");
    let err = refused(&home, &["users", "add", "eve", "--role", "root"]).await;
    assert!(err.contains("unknown role"), "{err}");
    let users = ok(&home, &["users", "list", "--json"]).await;
    let users: Value = serde_json::from_str(&users).unwrap();
    let ann = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"]["name"] == "ann")
        .unwrap();
    assert!(ann["user"]["disabled_at"].is_string(), "{ann}");
    assert_eq!(ann["identities"][0]["sender"], "901");
    assert_eq!(audit_of_type(&home, "user.disabled").await.len(), 1);
}
both!(disabling_a_user_stops_their_tokens_chat_and_approvals);

// ---------------------------------------------------------------------------------------------
// 5. cancel-risky kills risky work; rotate-credentials revokes every credential.

async fn cancel_risky_and_rotate_credentials(db: Db) {
    let marker = unique_marker();
    let llm = FakeLlm::start(vec![sleep_call(&marker)]).await.unwrap();
    let home = home_on(&db, &llm, None).await;
    set(&home, "security.exec", "sandboxed").await;
    set(&home, "agents.main.approval_mode", "trusted").await;
    add_bearer_hook(&home);
    user(&home, "ann", "member").await;
    let adm = token(&home, "adm", "owner", "admin").await;
    let ann = token(&home, "ann", "ann", "tasks:read").await;
    ok(&home, &["users", "add", "zed", "--role", "member"]).await;
    let invite = ok(&home, &["invites", "create", "--user", "zed"]).await;
    let fifo = home.path().join("workspaces/main/ready.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let (mut child, addr) = serve(&home, HOOK_SECRET);
    let id = submit(&addr, &adm, "run it").await;
    let mut started = String::new();
    let fifo_read = fifo.clone();
    tokio::task::spawn_blocking(move || {
        std::fs::File::open(&fifo_read)
            .unwrap()
            .read_to_string(&mut started)
            .unwrap();
        started
    })
    .await
    .unwrap();
    // shell.exec is L3: cancel-risky takes it.
    let (st, v) = api(&addr, "POST", "/v1/emergency/cancel-risky", &adm, None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["report"]["canceled"], json!([id]), "{v}");
    assert_eq!(settle(&addr, &adm, &id).await["status"], "CANCELED");
    // Members cannot reach the emergency controls.
    let (st, _) = api(&addr, "POST", "/v1/emergency/pause-mutating", &ann, None).await;
    assert_eq!(st, 403);
    // Rotation: every token revoked, the caller gets a new one.
    let (st, v) = api(
        &addr,
        "POST",
        "/v1/emergency/rotate-credentials",
        &adm,
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert!(
        v["report"]["rotate_outside"]
            .as_str()
            .unwrap()
            .contains("provider API keys")
    );
    let fresh = v["report"]["token"]["secret"].as_str().unwrap().to_owned();
    for old in [&adm, &ann] {
        let (st, _) = api(&addr, "GET", "/v1/tasks", old, None).await;
        assert_eq!(st, 401);
    }
    let (st, _) = api(&addr, "GET", "/v1/emergency", &fresh, None).await;
    assert_eq!(st, 200);
    // The webhook secret in use is refused until a new one is set.
    let (st, v) = api(
        &addr,
        "POST",
        "/v1/hooks/ci",
        HOOK_SECRET,
        Some(json!({"x": 1})),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (401, Some("secret_revoked")),
        "{v}"
    );
    // The drain finishes: the canceled command's processes are gone.
    stop(&mut child);
    no_survivor(&marker);
    let (mut child, addr) = serve(&home, "a-new-hook-secret-9876543210");
    let (st, v) = api(
        &addr,
        "POST",
        "/v1/hooks/ci",
        "a-new-hook-secret-9876543210",
        Some(json!({"x": 1})),
    )
    .await;
    assert_eq!(st, 202, "{v}");
    stop(&mut child);
    // The unused invite died with the rotation.
    assert!(!invite.trim().is_empty());
    let rotated = audit_of_type(&home, "emergency.rotate_credentials").await;
    assert_eq!(rotated[0]["invites_expired"], 1, "{rotated:?}");
    assert_eq!(rotated[0]["tokens_revoked"], 2, "{rotated:?}");
    assert_eq!(
        audit_of_type(&home, "emergency.cancel_risky").await.len(),
        1
    );
}
both!(cancel_risky_and_rotate_credentials);

// ---------------------------------------------------------------------------------------------
// 6. Quotas: one clear message.

async fn a_user_over_quota_gets_one_clear_message(db: Db) {
    let llm = FakeLlm::start(vec![Reply::Slow {
        delay_ms: 120_000,
        reply: Box::new(Reply::text("much later")),
    }])
    .await
    .unwrap();
    let tg = FakeTelegram::start(BOT_TOKEN).await.unwrap();
    let home = home_on(&db, &llm, Some(&tg)).await;
    set(&home, "governance.quotas.member.concurrent_tasks", "1").await;
    user(&home, "ann", "member").await;
    ok(&home, &["users", "link", "ann", "telegram:950"]).await;
    let ann = token(&home, "ann", "ann", "tasks:read,tasks:write").await;
    let (mut child, addr) = serve(&home, HOOK_SECRET);
    let first = submit(&addr, &ann, "a long job").await;
    assert!(llm.wait_for_requests(1, WAIT).await);
    let (st, v) = api(
        &addr,
        "POST",
        "/v1/tasks",
        &ann,
        Some(json!({"agent": "main", "message": "another", "session": "other"})),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (429, Some("quota_exceeded")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 unfinished"),
        "{v}"
    );
    tg.push_text(950, 950, "and this too");
    assert!(tg.wait_for("sendMessage", 1, WAIT).await);
    assert!(
        texts_to(&tg, 950)[0].contains("quota reached"),
        "{:?}",
        texts_to(&tg, 950)
    );
    let (st, _) = api(
        &addr,
        "POST",
        &format!("/v1/tasks/{first}/cancel"),
        &ann,
        None,
    )
    .await;
    assert_eq!(st, 200);
    stop(&mut child);
    assert_eq!(llm.requests().len(), 1);
}
both!(a_user_over_quota_gets_one_clear_message);

// ---------------------------------------------------------------------------------------------
// 7. The AgenticAI acceptance scenarios not covered above.

async fn invite_onboarding_maps_a_chat_user_to_the_org(db: Db) {
    let llm = FakeLlm::start(vec![]).await.unwrap();
    let tg = FakeTelegram::start(BOT_TOKEN).await.unwrap();
    let home = home_on(&db, &llm, Some(&tg)).await;
    user(&home, "ann", "member").await;
    let code = ok(&home, &["invites", "create", "--user", "ann"]).await;
    let ops = token(&home, "ops", "owner", "tasks:read").await;
    let (mut child, addr) = serve(&home, HOOK_SECRET);
    tg.push_text(960, 960, &format!("/start {}", code.trim()));
    assert!(tg.wait_for("sendMessage", 1, WAIT).await);
    tg.push_text(960, 960, "hello from chat");
    assert!(tg.wait_for("sendMessage", 2, WAIT).await);
    let (_, tasks) = api(&addr, "GET", "/v1/tasks", &ops, None).await;
    stop(&mut child);
    assert!(
        texts_to(&tg, 960)[0].contains("Welcome, ann"),
        "{:?}",
        texts_to(&tg, 960)
    );
    // The chat account is Ann's: her task, her identity.
    assert_eq!(tasks["tasks"][0]["owner"], "ann", "{tasks}");
    let users: Value =
        serde_json::from_str(&ok(&home, &["users", "list", "--json"]).await).unwrap();
    let ann = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user"]["name"] == "ann")
        .unwrap();
    assert_eq!(
        ann["identities"][0],
        json!({"channel": "telegram", "sender": "960"})
    );
}
both!(invite_onboarding_maps_a_chat_user_to_the_org);

async fn chat_stays_responsive_and_cancel_releases_processes(db: Db) {
    let marker = unique_marker();
    let llm = FakeLlm::start(vec![sleep_call(&marker)]).await.unwrap();
    let tg = FakeTelegram::start(BOT_TOKEN).await.unwrap();
    let home = home_on(&db, &llm, Some(&tg)).await;
    set(&home, "security.exec", "sandboxed").await;
    set(&home, "agents.main.approval_mode", "trusted").await;
    user(&home, "ann", "operator").await;
    ok(&home, &["users", "link", "ann", "telegram:970"]).await;
    let fifo = home.path().join("workspaces/main/ready.fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let (mut child, _addr) = serve(&home, HOOK_SECRET);
    tg.push_text(970, 970, "run the long thing");
    tokio::task::spawn_blocking(move || {
        let mut s = String::new();
        std::fs::File::open(&fifo)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
    })
    .await
    .unwrap();
    // The command runs; the chat still answers at once.
    tg.push_text(970, 970, "/status");
    assert!(tg.wait_for("sendMessage", 1, WAIT).await);
    assert!(
        texts_to(&tg, 970)[0].contains("RUNNING"),
        "{:?}",
        texts_to(&tg, 970)
    );
    tg.push_text(970, 970, "/cancel all");
    assert!(tg.wait_for("sendMessage", 2, WAIT).await);
    assert!(
        texts_to(&tg, 970)[1].contains("Canceled 1"),
        "{:?}",
        texts_to(&tg, 970)
    );
    // The drain on SIGTERM finishes only when the command is dead.
    stop(&mut child);
    no_survivor(&marker);
}
both!(chat_stays_responsive_and_cancel_releases_processes);

async fn audit_tampering_is_detected(db: Db) {
    let llm = FakeLlm::start(vec![]).await.unwrap();
    let home = home_on(&db, &llm, None).await;
    ok(&home, &["users", "add", "ann", "--role", "member"]).await;
    ok(&home, &["ask", "hello"]).await;
    ok(&home, &["audit", "verify"]).await;
    match &db {
        Db::Sqlite => {
            tamper_day_file(&home, "\"ann\"", "\"eve\"");
        }
        Db::Postgres(pg) => {
            pg.client
                .batch_execute(
                    "ALTER TABLE audit_lines DISABLE TRIGGER USER;
                     UPDATE audit_lines SET line = replace(line, '\"ann\"', '\"eve\"');
                     ALTER TABLE audit_lines ENABLE TRIGGER USER",
                )
                .await
                .unwrap();
        }
    }
    let out = home.run(&["audit", "verify"], "").await;
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
}
both!(audit_tampering_is_detected);

async fn restart_mid_task_neither_loses_nor_repeats_it(db: Db) {
    let llm = FakeLlm::start(vec![Reply::Slow {
        delay_ms: 120_000,
        reply: Box::new(Reply::text("never")),
    }])
    .await
    .unwrap();
    let home = home_on(&db, &llm, None).await;
    set(&home, "gateway.lease_secs", "3").await;
    let t = token(&home, "own", "owner", "tasks:read,tasks:write").await;
    let (mut child, addr) = serve(&home, HOOK_SECRET);
    let running = submit(&addr, &t, "slow one").await;
    assert!(llm.wait_for_requests(1, WAIT).await);
    // Queued behind it in the same session.
    let queued = submit(&addr, &t, "next one").await;
    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, addr) = serve(&home, HOOK_SECRET);
    // The interrupted task ends (it is not run again); the queued one runs exactly once.
    let r = settle(&addr, &t, &running).await;
    let r = if r["status"] == "RUNNING" {
        settle(&addr, &t, &running).await
    } else {
        r
    };
    assert_eq!(r["status"], "FAILED", "{r}");
    let q = settle(&addr, &t, &queued).await;
    assert_eq!(q["status"], "SUCCEEDED", "{q}");
    stop(&mut child);
    assert_eq!(llm.requests().len(), 2, "the interrupted task ran again");
}
both!(restart_mid_task_neither_loses_nor_repeats_it);

async fn duplicate_webhook_deliveries_run_once(db: Db) {
    let llm = FakeLlm::start(vec![]).await.unwrap();
    let home = home_on(&db, &llm, None).await;
    add_bearer_hook(&home);
    let (mut child, addr) = serve(&home, HOOK_SECRET);
    let a = deliver(&addr, "ev-7", r#"{"build": 7}"#).await;
    let b = deliver(&addr, "ev-7", r#"{"build": 7}"#).await;
    assert_eq!((a.0, b.0), (202, 202), "{a:?} {b:?}");
    assert_eq!(b.1["duplicate"], true, "{b:?}");
    // A different event proves the worker is live, so the duplicate had its chance.
    let other = deliver(&addr, "ev-8", r#"{"build": 8}"#).await;
    assert_eq!(other.0, 202);
    assert!(llm.wait_for_requests(2, WAIT).await);
    stop(&mut child);
    assert_eq!(llm.requests().len(), 2, "the duplicate delivery ran");
}
both!(duplicate_webhook_deliveries_run_once);

async fn in_a_group_members_cancel_only_their_own_tasks(db: Db) {
    let llm = FakeLlm::start(vec![Reply::Slow {
        delay_ms: 120_000,
        reply: Box::new(Reply::text("much later")),
    }])
    .await
    .unwrap();
    let tg = FakeTelegram::start(BOT_TOKEN).await.unwrap();
    let home = home_on(&db, &llm, Some(&tg)).await;
    set(&home, "channels.telegram.groups", "[-100400]").await;
    let (mut child, _addr) = serve(&home, HOOK_SECRET);
    tg.push_text(-100400, 611, "@pincer_bot a long job");
    assert!(llm.wait_for_requests(1, WAIT).await);
    // Another member of the group cannot cancel it; its owner can.
    tg.push_text(-100400, 612, "@pincer_bot /cancel all");
    assert!(tg.wait_for("sendMessage", 1, WAIT).await);
    tg.push_text(-100400, 611, "@pincer_bot /cancel all");
    assert!(tg.wait_for("sendMessage", 2, WAIT).await);
    stop(&mut child);
    let said = texts_to(&tg, -100400);
    assert!(said[0].contains("Nothing to cancel"), "{said:?}");
    assert!(said[1].contains("Canceled 1"), "{said:?}");
}
both!(in_a_group_members_cancel_only_their_own_tasks);

async fn an_admins_config_change_applies_to_the_next_task_without_a_restart(db: Db) {
    let llm = FakeLlm::start(vec![
        write_call("one.txt", "1"),
        Reply::text("first"),
        write_call("two.txt", "2"),
        Reply::text("second"),
        write_call("three.txt", "3"),
        Reply::text("third"),
    ])
    .await
    .unwrap();
    let home = home_on(&db, &llm, None).await;
    let owner = token(
        &home,
        "own",
        "owner",
        "tasks:read,tasks:write,approvals:write",
    )
    .await;
    let (mut child, addr) = serve(&home, HOOK_SECRET);
    let deny_and_finish = |id: String| {
        let (addr, owner) = (addr.clone(), owner.clone());
        async move {
            let (_, pending) =
                api(&addr, "GET", "/v1/approvals?status=PENDING", &owner, None).await;
            let approval = pending["approvals"][0]["id"].as_str().unwrap().to_owned();
            let path = format!("/v1/approvals/{approval}/decision");
            let (st, _) = api(
                &addr,
                "POST",
                &path,
                &owner,
                Some(json!({"decision": "DENY"})),
            )
            .await;
            assert_eq!(st, 200);
            assert_eq!(settle(&addr, &owner, &id).await["status"], "SUCCEEDED");
        }
    };
    // Balanced (the default): creating a file (L1) runs.
    let id = submit(&addr, &owner, "make one").await;
    assert_eq!(settle(&addr, &owner, &id).await["output"], "first");
    // The admin tightens the policy while the server runs; the next task asks first.
    set(&home, "agents.main.approval_mode", "strict").await;
    let id = submit(&addr, &owner, "make two").await;
    assert_eq!(
        settle(&addr, &owner, &id).await["status"],
        "WAITING_APPROVAL"
    );
    deny_and_finish(id).await;
    // A broken edit is not applied: the policy in force stays strict.
    let cfg = home.path().join("config.toml");
    let good = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, good.replace("strict", "trusted") + "\n[nonsense").unwrap();
    let id = submit(&addr, &owner, "make three").await;
    assert_eq!(
        settle(&addr, &owner, &id).await["status"],
        "WAITING_APPROVAL"
    );
    deny_and_finish(id).await;
    stop(&mut child);
    std::fs::write(&cfg, good).unwrap();
    assert!(home.path().join("workspaces/main/one.txt").exists());
    assert!(!home.path().join("workspaces/main/two.txt").exists());
    assert!(!home.path().join("workspaces/main/three.txt").exists());
    assert_eq!(audit_of_type(&home, "config.reloaded").await.len(), 1);
}
both!(an_admins_config_change_applies_to_the_next_task_without_a_restart);
