//! `pincer tools list|call` and `pincer audit verify|tail|search` through the real binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use pincer_testkit::FakeLlm;
use serde_json::{Value, json};

use super::common::*;

async fn ready() -> (FakeLlm, Home) {
    let server = FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&server.base_url()).await;
    (server, home)
}

pub(super) async fn call(
    home: &Home,
    tool: &str,
    args: Value,
    approve: bool,
) -> std::process::Output {
    let args = args.to_string();
    let mut argv = vec!["tools", "call", tool, "--args", &args];
    if approve {
        argv.push("--approve");
    }
    home.run(&argv, "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_list_shows_grants() {
    let (_s, home) = ready().await;
    let out = home.run(&["tools", "list", "--json"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let granted = |name: &str| rows.iter().find(|r| r["name"] == name).unwrap()["granted"].clone();
    // `pincer init` gives `main` the coding profile.
    for t in [
        "time.now",
        "fs.read",
        "fs.list",
        "fs.write",
        "fs.edit",
        "apply_patch",
        "code.search",
    ] {
        assert_eq!(granted(t), true, "{t}");
    }
    // Deny wins over the profile.
    let out = home
        .run(
            &[
                "config",
                "set",
                "agents.main.deny",
                "[\"fs.write\", \"group:fs\"]",
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = home.run(&["tools", "list", "--json"], "").await;
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        rows.iter().find(|r| r["name"] == "fs.read").unwrap()["granted"],
        false
    );
    let out = call(&home, "fs.read", json!({"path": "x"}), true).await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "an ungranted tool is denied: {}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tool_calls_exit_codes_and_approvals() {
    let (_s, home) = ready().await;
    let ws = home.path().join("workspaces/main");
    // Create: L1, allowed in balanced mode.
    let out = call(
        &home,
        "fs.write",
        json!({"path": "notes/a.txt", "content": "one\n"}),
        false,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["created"], true);
    assert_eq!(
        std::fs::read_to_string(ws.join("notes/a.txt")).unwrap(),
        "one\n"
    );
    // Overwrite: L2, needs approval; nobody can answer (stdin is not a terminal) → exit 4.
    let out = call(
        &home,
        "fs.write",
        json!({"path": "notes/a.txt", "content": "two\n"}),
        false,
    )
    .await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(ws.join("notes/a.txt")).unwrap(),
        "one\n"
    );
    // The operator approves on the spot.
    let out = call(
        &home,
        "fs.write",
        json!({"path": "notes/a.txt", "content": "two\n"}),
        true,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(ws.join("notes/a.txt")).unwrap(),
        "two\n"
    );
    // Tool errors exit 1: bad JSON, schema violations, a missing file.
    for (tool, args) in [
        ("fs.read", "{bad json"),
        ("fs.read", "{\"nope\": 1}"),
        ("fs.read", "{\"path\": \"missing.txt\"}"),
    ] {
        let out = home.run(&["tools", "call", tool, "--args", args], "").await;
        assert_eq!(out.status.code(), Some(1), "{args}: {}", stderr(&out));
    }
    // Unknown tools are denied.
    let out = call(&home, "rm.rf", json!({}), true).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // Reading works and prints the JSON result.
    let out = call(&home, "fs.read", json!({"path": "notes/a.txt"}), false).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&out)).unwrap()["content"],
        "two"
    );

    // The audit log tells the approval story.
    let out = home
        .run(&["audit", "search", "--type", "approval", "--json"], "")
        .await;
    let kinds: Vec<String> = stdout(&out)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["event"]["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "approval.requested",
            "approval.unavailable",
            "approval.requested",
            "approval.granted"
        ]
    );
    let out = home
        .run(
            &["audit", "search", "--type", "approval.granted", "--json"],
            "",
        )
        .await;
    assert!(stdout(&out).contains("operator:cli"), "{}", stdout(&out));
}

fn audit_day_file(home: &Home) -> std::path::PathBuf {
    std::fs::read_dir(home.path().join("audit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_passes_fresh_and_fails_on_each_kind_of_tampering() {
    let (_s, home) = ready().await;
    for i in 0..3 {
        let out = call(&home, "time.now", json!({}), false).await;
        assert_eq!(out.status.code(), Some(0), "{i}: {}", stderr(&out));
    }
    let out = home.run(&["audit", "verify"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("ok: "), "{}", stdout(&out));
    let file = audit_day_file(&home);
    let clean = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = clean.lines().collect();
    assert!(lines.len() >= 8);
    let edited = clean.replacen("\"time.now\"", "\"time.new\"", 1);
    let deleted: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let mut swapped = lines.clone();
    swapped.swap(3, 4);
    let reordered: String = swapped.iter().map(|l| format!("{l}\n")).collect();
    let truncated: String = lines[..lines.len() - 1]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    for (what, text) in [
        ("edit", edited),
        ("delete", deleted),
        ("reorder", reordered),
        ("truncate", truncated),
    ] {
        std::fs::write(&file, &text).unwrap();
        let out = home.run(&["audit", "verify"], "").await;
        assert_eq!(out.status.code(), Some(1), "{what} not detected");
        let err = stderr(&out);
        assert!(err.contains("audit log is not intact"), "{what}: {err}");
        if what == "truncate" {
            assert!(err.contains("HEAD"), "{what}: {err}");
        } else {
            assert!(err.contains(".jsonl:"), "{what} must name the line: {err}");
        }
    }
    std::fs::write(&file, &clean).unwrap();
    let out = home.run(&["audit", "verify", "--json"], "").await;
    assert_eq!(out.status.code(), Some(0));
}

/// Issue 25.4: the attacks the chain alone missed — wipe, truncate with a rewritten HEAD, edit
/// with a recomputed chain — fail `pincer audit verify` through the keyed anchor outside
/// `audit/`, and the next Pincer run does not launder them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_detects_a_wiped_or_rebuilt_log() {
    let (_s, home) = ready().await;
    for _ in 0..2 {
        let out = call(&home, "time.now", json!({}), false).await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let out = home.run(&["audit", "verify", "--json"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["anchored"], v["lines"], "{v}");
    let audit = home.path().join("audit");
    let file = audit_day_file(&home);
    let clean = std::fs::read_to_string(&file).unwrap();
    let head = std::fs::read_to_string(audit.join("HEAD")).unwrap();
    let restore = || {
        std::fs::write(&file, &clean).unwrap();
        std::fs::write(audit.join("HEAD"), &head).unwrap();
    };
    // 1. Wipe: delete the day file and HEAD.
    std::fs::remove_file(&file).unwrap();
    std::fs::remove_file(audit.join("HEAD")).unwrap();
    let out = home.run(&["audit", "verify"], "").await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "wipe not detected: {}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("audit.anchor"), "{}", stderr(&out));
    restore();
    // 2. Truncate the last line and point HEAD at the new last line.
    let lines: Vec<&str> = clean.lines().collect();
    let kept = &lines[..lines.len() - 1];
    let last: Value = serde_json::from_str(kept[kept.len() - 1]).unwrap();
    std::fs::write(
        &file,
        kept.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    std::fs::write(
        audit.join("HEAD"),
        json!({"seq": last["seq"], "hash": last["hash"]}).to_string(),
    )
    .unwrap();
    let out = home.run(&["audit", "verify"], "").await;
    assert_eq!(out.status.code(), Some(1), "truncation not detected");
    restore();
    // 3. Edit a line and recompute every hash after it, and HEAD.
    let mut prev = "0".repeat(64);
    let mut text = String::new();
    let mut seq = 0;
    for l in clean.lines() {
        let mut v: Value = serde_json::from_str(l).unwrap();
        if v["event"]["tool"] == "time.now" {
            v["event"]["tool"] = json!("time.new");
        }
        seq = v["seq"].as_u64().unwrap();
        let canonical = json!({"seq": seq, "ts": v["ts"], "prev_hash": prev, "event": v["event"]});
        let h = hex_sha256(canonical.to_string().as_bytes());
        v["prev_hash"] = json!(prev);
        v["hash"] = json!(h);
        prev = h;
        text.push_str(&format!("{v}\n"));
    }
    std::fs::write(&file, text).unwrap();
    std::fs::write(
        audit.join("HEAD"),
        json!({"seq": seq, "hash": prev}).to_string(),
    )
    .unwrap();
    let out = home.run(&["audit", "verify"], "").await;
    assert_eq!(out.status.code(), Some(1), "recomputed chain not detected");
    assert!(stderr(&out).contains("recomputed"), "{}", stderr(&out));
    // Pincer keeps running on it, but never re-signs the rebuilt log.
    let out = call(&home, "time.now", json!({}), false).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = home.run(&["audit", "verify"], "").await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "tampering laundered by the next run"
    );
    let out = home.run(&["doctor"], "").await;
    assert!(stdout(&out).contains("audit.chain"), "{}", stdout(&out));
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_search_filters_and_tail_follows() {
    let (_s, home) = ready().await;
    call(&home, "time.now", json!({}), false).await;
    call(&home, "fs.read", json!({"path": "../x"}), false).await;
    let search = |args: Vec<&'static str>| {
        let home = &home;
        async move {
            let mut argv = vec!["audit", "search", "--json"];
            argv.extend(args);
            let out = home.run(&argv, "").await;
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            stdout(&out).lines().count()
        }
    };
    assert_eq!(
        search(vec!["--tool", "fs.read", "--decision", "deny"]).await,
        1
    );
    assert_eq!(
        search(vec!["--tool", "time.now", "--type", "policy.decision"]).await,
        1
    );
    assert_eq!(search(vec!["--agent", "nobody"]).await, 0);
    assert_eq!(search(vec!["--until", "2000-01-01"]).await, 0);
    assert!(search(vec!["--since", "2000-01-01"]).await >= 6);
    let out = home
        .run(&["audit", "search", "--since", "yesterday"], "")
        .await;
    assert_eq!(out.status.code(), Some(2), "bad time is a usage error");
    let out = home.run(&["audit", "tail", "-n", "2"], "").await;
    assert_eq!(stdout(&out).lines().count(), 2, "{}", stdout(&out));

    // tail -f prints lines appended after it started.
    let mut child = Command::new(env!("CARGO_BIN_EXE_pincer"))
        .args(["audit", "tail", "-f", "--json", "-n", "0"])
        .env("PINCER_HOME", home.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout_pipe = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout_pipe).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let out = call(&home, "time.now", json!({}), false).await;
    assert_eq!(out.status.code(), Some(0));
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.contains("\"tool.result\"")) {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => seen.push(l),
            Err(e) => panic!("tail -f printed nothing new ({e}); saw {seen:?}"),
        }
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert!(seen[0].contains("\"tool.call\""), "{seen:?}");
}
