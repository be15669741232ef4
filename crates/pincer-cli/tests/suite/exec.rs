//! Sandboxed exec through the real binary: a scripted model attacks from inside `shell.exec`;
//! exec tools are absent whenever the sandbox is off or cannot be enforced.

use pincer_testkit::{FakeLlm, Reply, ScriptedCall};
use serde_json::{Value, json};

use super::common::*;

fn call(name: &str, arguments: Value) -> ScriptedCall {
    ScriptedCall {
        name: name.into(),
        arguments,
    }
}

async fn set(home: &Home, key: &str, value: &str) {
    let out = home.run(&["config", "set", key, value], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Exec on, and approval mode trusted: L2 commands run without asking, so the sandbox alone
/// must stop an attack.
async fn exec_on_trusted(home: &Home, server: &FakeLlm) {
    home.init(&server.base_url()).await;
    set(home, "security.exec", "sandboxed").await;
    set(home, "agents.main.approval_mode", "trusted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_model_cannot_escape_through_shell_exec() {
    let home = Home::new();
    let config = home.path().join("config.toml");
    let attempts = vec![
        call("shell_exec", json!({"argv": ["env"]})),
        call(
            "shell_exec",
            json!({"command": format!("cat {c}; echo pwned >> {c}; cat /etc/shadow", c = config.display())}),
        ),
        call(
            "shell_exec",
            json!({"command": "echo made > made.txt && echo ok"}),
        ),
    ];
    let server = FakeLlm::start(vec![
        Reply::ToolCalls {
            calls: attempts,
            text: String::new(),
        },
        Reply::text("done"),
    ])
    .await
    .unwrap();
    exec_on_trusted(&home, &server).await;
    let before = std::fs::read(&config).unwrap();

    // The user names the commands: after the first one's output the turn is tainted, and the
    // rest run unasked only because they come from the user (D9).
    let ask = format!(
        "run env, then: cat {c}; echo pwned >> {c}; cat /etc/shadow, then: echo made > made.txt && echo ok",
        c = config.display()
    );
    let out = home.run(&["ask", &ask], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "done\n");

    let reqs = server.requests();
    assert!(offered(&reqs[0].body).contains(&"shell_exec".to_owned()));
    let results: Vec<Value> = reqs[1].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].clone())
        .collect();
    assert_eq!(results.len(), 3, "{results:?}");
    let text = |i: usize| results[i].as_str().unwrap().to_owned();
    // The environment holds no secret and not even the name of the key variable.
    assert!(
        !text(0).contains(KEY) && !text(0).contains(KEY_VAR),
        "{}",
        text(0)
    );
    assert!(text(0).contains("PINCER_SANDBOX=1"), "{}", text(0));
    // The config is neither readable nor writable from inside.
    assert!(!text(1).contains("[providers"), "{}", text(1));
    assert_eq!(std::fs::read(&config).unwrap(), before);
    // The workspace is.
    assert!(text(2).contains("ok"), "{}", text(2));
    assert_eq!(
        std::fs::read_to_string(home.path().join("workspaces/main/made.txt")).unwrap(),
        "made\n"
    );
    // Every call was audited.
    let out = home
        .run(
            &[
                "audit",
                "search",
                "--tool",
                "shell.exec",
                "--type",
                "tool.result",
                "--json",
            ],
            "",
        )
        .await;
    assert_eq!(stdout(&out).lines().count(), 3, "{}", stdout(&out));
    assert!(
        !all_bytes(&home.path().join("audit"))
            .windows(KEY.len())
            .any(|w| w == KEY.as_bytes())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_sandbox_the_model_is_never_offered_exec() {
    let home = Home::new();
    let server = FakeLlm::start(vec![Reply::text("a"), Reply::text("b"), Reply::text("c")])
        .await
        .unwrap();
    home.init(&server.base_url()).await;
    // Exec off (the default).
    let out = home.run(&["ask", "hi"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Exec on, sandbox none.
    set(&home, "security.exec", "sandboxed").await;
    set(&home, "security.sandbox", "none").await;
    let out = home.run(&["ask", "hi"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Exec on, sandbox on: offered.
    set(&home, "security.sandbox", "native").await;
    let out = home.run(&["ask", "hi"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reqs = server.requests();
    for (i, expect) in [(0, false), (1, false), (2, true)] {
        let tools = offered(&reqs[i].body);
        assert!(tools.contains(&"fs_read".to_owned()), "{tools:?}");
        assert_eq!(
            tools.contains(&"shell_exec".to_owned()),
            expect,
            "{i}: {tools:?}"
        );
        assert_eq!(
            tools.contains(&"process".to_owned()),
            expect,
            "{i}: {tools:?}"
        );
    }
    // And a direct call to an exec tool with sandbox none is refused without running.
    set(&home, "security.sandbox", "none").await;
    let out = home
        .run(
            &[
                "tools",
                "call",
                "shell.exec",
                "--args",
                r#"{"command":"touch ran"}"#,
                "--approve",
            ],
            "",
        )
        .await;
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(!home.path().join("workspaces/main/ran").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_holding_pincer_files_gets_no_exec() {
    let home = Home::new();
    let server = FakeLlm::start(vec![]).await.unwrap();
    home.init(&server.base_url()).await;
    set(&home, "security.exec", "sandboxed").await;
    let home_str = home.path().to_string_lossy().into_owned();
    set(&home, "agents.main.workspace", &home_str).await;
    let out = home.run(&["tools", "list", "--json"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(!rows.iter().any(|r| r["name"] == "shell.exec"), "{rows:?}");
    assert!(stderr(&out).contains("overlaps"), "{}", stderr(&out));
    // The decision is in the audit log.
    let out = home
        .run(
            &["audit", "search", "--type", "sandbox.unavailable", "--json"],
            "",
        )
        .await;
    assert!(stdout(&out).contains("overlaps"), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_check_and_doctor_report_the_sandbox() {
    let home = Home::new();
    let server = FakeLlm::start(vec![]).await.unwrap();
    home.init(&server.base_url()).await;
    let out = home.run(&["sandbox", "check", "--json"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["configured"], "native");
    assert_eq!(v["enforced"], true);
    let native = v["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "native")
        .unwrap();
    assert!(native["ready"]["landlock_abi"].as_u64().unwrap() >= 3);
    let out = home.run(&["doctor", "--offline", "--json"], "").await;
    let checks: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let sandbox = checks.iter().find(|c| c["id"] == "sandbox").unwrap();
    assert_eq!(sandbox["status"], "ok", "{sandbox}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unenforceable_sandbox_fails_closed() {
    let home = Home::new();
    let server = FakeLlm::start(vec![]).await.unwrap();
    home.init(&server.base_url()).await;
    set(&home, "security.exec", "sandboxed").await;
    set(&home, "security.sandbox", "bwrap").await;
    // No bwrap on this PATH: the configured sandbox cannot run.
    let empty = home.dir.path().join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let path = empty.to_string_lossy().into_owned();
    let out = home
        .run_with_env(&["tools", "list", "--json"], &[("PATH", &path)])
        .await;
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(!rows.iter().any(|r| r["name"] == "shell.exec"), "{rows:?}");
    assert!(stderr(&out).contains("bwrap"), "{}", stderr(&out));
    let out = home
        .run_with_env(
            &[
                "tools",
                "call",
                "shell.exec",
                "--args",
                r#"{"command":"touch ran"}"#,
                "--approve",
            ],
            &[("PATH", &path)],
        )
        .await;
    assert_ne!(out.status.code(), Some(0));
    assert!(!home.path().join("workspaces/main/ran").exists());
    let out = home
        .run_with_env(&["sandbox", "check"], &[("PATH", &path)])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("apt-get install bubblewrap"),
        "{}",
        stdout(&out)
    );
    let out = home
        .run_with_env(&["doctor", "--offline", "--json"], &[("PATH", &path)])
        .await;
    let checks: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let sandbox = checks.iter().find(|c| c["id"] == "sandbox").unwrap();
    assert_eq!(sandbox["status"], "fail", "{sandbox}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_processes_start_poll_cap_and_kill() {
    let home = Home::new();
    let step = |name: &str, args: Value| Reply::ToolCalls {
        calls: vec![call(name, args)],
        text: String::new(),
    };
    let server = FakeLlm::start(vec![
        step(
            "process",
            json!({"action": "start", "command": "echo begin; exec sleep 1000"}),
        ),
        step(
            "process",
            json!({"action": "poll", "id": "p1", "wait_secs": 20}),
        ),
        step(
            "process",
            json!({"action": "start", "argv": ["sleep", "1000"]}),
        ),
        step("process", json!({"action": "kill", "id": "p1"})),
        step("process", json!({"action": "list"})),
        step(
            "process",
            json!({"action": "start", "argv": ["definitely-not-a-command"]}),
        ),
        Reply::text("done"),
    ])
    .await
    .unwrap();
    exec_on_trusted(&home, &server).await;
    set(&home, "exec.max_background", "1").await;
    let out = home
        .run(
            &[
                "ask",
                "start `echo begin; exec sleep 1000`, then `sleep 1000`, then `definitely-not-a-command`",
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let reqs = server.requests();
    let last = |i: usize| -> Value {
        let msgs = reqs[i].body["messages"].as_array().unwrap();
        let m = msgs.iter().rev().find(|m| m["role"] == "tool").unwrap();
        let text = m["content"].as_str().unwrap();
        // Tool output is wrapped in a provenance tag; the JSON is inside.
        let start = text.find('{').unwrap();
        let end = text.rfind('}').unwrap();
        serde_json::from_str(&text[start..=end]).unwrap_or(Value::String(text.to_owned()))
    };
    let started = last(1);
    assert_eq!(started["id"], "p1", "{started}");
    assert_eq!(started["status"], "running", "{started}");
    let polled = last(2);
    assert_eq!(polled["output"], "begin\n", "{polled}");
    // The per-agent cap holds.
    let capped = reqs[3].body["messages"].to_string();
    assert!(capped.contains("background processes running"), "{capped}");
    let killed = last(4);
    assert_eq!(killed["status"], "killed", "{killed}");
    let listed = last(5);
    assert_eq!(listed["processes"][0]["status"], "killed", "{listed}");
    let missing = last(6);
    assert_eq!(missing["status"], "not_found", "{missing}");
}

/// Issue 25.3: `pincer` started from a shell holding `exec 7<secret 8<>config.toml` must not
/// pass those descriptors into a sandboxed command, with either provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inherited_descriptors_never_reach_a_sandboxed_command() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    for provider in ["native", "bwrap"] {
        if provider == "bwrap" && which("bwrap").is_none() {
            assert!(!ci, "bwrap is required under CI");
            eprintln!("SKIP bwrap (not installed, not CI)");
            continue;
        }
        let server = FakeLlm::start(vec![]).await.unwrap();
        let home = Home::new();
        exec_on_trusted(&home, &server).await;
        set(&home, "security.sandbox", provider).await;
        let secret = home.dir.path().join("secret.txt");
        std::fs::write(&secret, "TOP-SECRET-7").unwrap();
        let config = home.path().join("config.toml");
        let before = std::fs::read(&config).unwrap();
        let args = json!({
            "command": "ls /proc/self/fd; cat <&7; echo pwned >&8; cat /proc/self/fd/7; echo end"
        })
        .to_string();
        let out = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(r#"exec 7<"$1" 8<>"$2"; shift 2; exec "$@""#)
            .arg("bash")
            .arg(&secret)
            .arg(&config)
            .arg(env!("CARGO_BIN_EXE_pincer"))
            .args(["tools", "call", "shell.exec", "--args", &args, "--approve"])
            .env("PINCER_HOME", home.path())
            .output()
            .await
            .unwrap();
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(0), "{provider}: {text}");
        assert!(text.contains("end"), "{provider}: the command ran: {text}");
        assert!(
            !text.contains("TOP-SECRET-7"),
            "{provider}: inherited fd 7 was readable: {text}"
        );
        assert_eq!(
            std::fs::read(&config).unwrap(),
            before,
            "{provider}: inherited fd 8 wrote to config.toml"
        );
    }
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(program))
            .find(|c| c.is_file())
    })
}

/// Issue 25.6: with `exec_allow = ["git status"]` (runs without approval), a model must not get
/// git to run a program it wrote: writes under `.git` need a human, and an implicit bare
/// repository planted with plain file writes (its `config` naming an fsmonitor) is not used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlisted_git_never_runs_a_program_the_model_planted() {
    let server = FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&server.base_url()).await;
    set(&home, "security.exec", "sandboxed").await;
    set(&home, "agents.main.approval_mode", "balanced").await;
    set(&home, "agents.main.exec_allow", r#"["git status"]"#).await;
    let ws = home.path().join("workspaces/main");
    std::fs::create_dir_all(&ws).unwrap();
    let git = std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(&ws)
        .status()
        .unwrap();
    assert!(git.success());
    let tool = |name: &'static str, args: Value| {
        let home = &home;
        async move {
            home.run(&["tools", "call", name, "--args", &args.to_string()], "")
                .await
        }
    };
    let pwned = ws.join("pwned");
    let monitor = format!("touch {}; false", pwned.display());
    // Layer 1: the repository's own config needs approval; nobody approves, so nothing is written.
    let config = format!("[core]\n\tfsmonitor = \"{monitor}\"\n");
    for (name, args) in [
        (
            "fs.write",
            json!({"path": ".git/config", "content": config}),
        ),
        (
            "fs.write",
            json!({"path": ".git/hooks/pre-commit", "content": "#!/bin/sh\ntouch pwned\n"}),
        ),
        (
            "apply_patch",
            json!({"patch": format!("*** Begin Patch\n*** Add File: sub/.git/config\n+[core]\n+\tfsmonitor = \"{monitor}\"\n*** End Patch")}),
        ),
    ] {
        let out = tool(name, args).await;
        assert_eq!(out.status.code(), Some(4), "{name}: {}", stderr(&out));
    }
    assert!(
        !std::fs::read_to_string(ws.join(".git/config"))
            .unwrap()
            .contains("fsmonitor")
    );
    // Layer 2: an implicit bare repository made of ordinary (L1, unapproved) file writes.
    for (path, content) in [
        ("evil/HEAD", "ref: refs/heads/main\n".to_owned()),
        ("evil/objects/.keep", String::new()),
        ("evil/refs/.keep", String::new()),
        (
            "evil/config",
            format!(
                "[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tworktree = ..\n\tfsmonitor = \"{monitor}\"\n"
            ),
        ),
    ] {
        let out = tool("fs.write", json!({"path": path, "content": content})).await;
        assert_eq!(out.status.code(), Some(0), "{path}: {}", stderr(&out));
    }
    let out = tool(
        "shell.exec",
        json!({"argv": ["git", "status"], "cwd": "evil"}),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("safe.bareRepository"),
        "git must refuse the planted repository: {}",
        stdout(&out)
    );
    assert!(!pwned.exists(), "allowlisted git ran the planted fsmonitor");
    // The real repository still works for the allowlisted command.
    let out = tool("shell.exec", json!({"argv": ["git", "status"]})).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!pwned.exists());
}
