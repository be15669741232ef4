//! The "done when" list, through the real binary.

use pincer_testkit::{FakeLlm, Reply};
use serde_json::json;

use super::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_then_ask_prints_the_reply_and_writes_a_bundle() {
    let server = FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&server.base_url()).await;
    let out = home.run(&["ask", "hello"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "echo: hello\n");
    let runs = home.runs();
    assert_eq!(runs.len(), 1);
    let meta = json_file(&runs[0].join("meta.json"));
    assert_eq!(meta["status"], "succeeded");
    assert!(meta["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert!(meta["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert_eq!(meta["prompt_sha256"].as_str().unwrap().len(), 64);
    let transcript = std::fs::read_to_string(runs[0].join("transcript.jsonl")).unwrap();
    assert!(transcript.contains("\"type\":\"assistant\""));
    assert_eq!(
        std::fs::read_to_string(runs[0].join("output.md")).unwrap(),
        "echo: hello"
    );
    assert_eq!(
        std::fs::read_to_string(runs[0].join("input.md")).unwrap(),
        "hello"
    );
    // The key went to the server, and nowhere on disk.
    assert_eq!(
        server.requests()[0].headers["authorization"],
        format!("Bearer {KEY}")
    );
    let bytes = all_bytes(&home.path());
    assert!(
        !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
        "API key written to disk"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_asks_have_the_same_prompt_hash() {
    let server = FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&server.base_url()).await;
    for _ in 0..2 {
        let out = home.run(&["ask", "same question"], "").await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let runs = home.runs();
    let a = json_file(&runs[0].join("meta.json"));
    let b = json_file(&runs[1].join("meta.json"));
    assert_ne!(a["run_id"], b["run_id"]);
    assert_eq!(a["prompt_sha256"], b["prompt_sha256"]);
    // Fresh sessions: the second request carried no history.
    assert_eq!(
        server.requests()[1].body["messages"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Editing an instruction file changes it.
    std::fs::write(home.path().join("agents/main/SOUL.md"), "You are terse.").unwrap();
    home.run(&["ask", "same question"], "").await;
    let c = json_file(&home.runs()[2].join("meta.json"));
    assert_ne!(a["prompt_sha256"], c["prompt_sha256"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_time_now_round_trips_through_the_cli() {
    let server = FakeLlm::start(vec![
        Reply::tool_call("time_now", json!({})),
        Reply::text("done"),
    ])
    .await
    .unwrap();
    let home = Home::new();
    home.init(&server.base_url()).await;
    let out = home.run(&["ask", "--json", "what time is it"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["output"], "done");
    assert_eq!(record["run"]["tool_calls"], 1);
    let bundle = std::path::PathBuf::from(record["bundle"].as_str().unwrap());
    let transcript = std::fs::read_to_string(bundle.join("transcript.jsonl")).unwrap();
    let result: serde_json::Value = transcript
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["type"] == "tool_result")
        .unwrap();
    assert_eq!(result["is_error"], false);
    assert!(result["content"].as_str().unwrap().contains("\"unix\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_then_success_still_answers() {
    let server = FakeLlm::start(vec![
        Reply::status(429, Some(0)),
        Reply::text("after retry"),
    ])
    .await
    .unwrap();
    let home = Home::new();
    home.init(&server.base_url()).await;
    let out = home.run(&["ask", "hi"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "after retry\n");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_from_the_model_is_a_clear_error_and_a_failed_bundle() {
    let server = FakeLlm::start(vec![Reply::Malformed]).await.unwrap();
    let home = Home::new();
    home.init(&server.base_url()).await;
    let out = home.run(&["ask", "hi"], "").await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("malformed"), "{err}");
    assert!(err.contains("bundle:"), "{err}");
    let meta = json_file(&home.runs()[0].join("meta.json"));
    assert_eq!(meta["status"], "failed");
    assert!(
        meta["error"].as_str().unwrap().contains("not valid JSON")
            || meta["error"].as_str().unwrap().contains("invalid JSON")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_model_server_fails_cleanly() {
    let server = FakeLlm::start(vec![]).await.unwrap();
    let url = server.base_url();
    drop(server);
    let home = Home::new();
    home.init(&url).await;
    home.run(&["config", "set", "providers.default.max_retries", "0"], "")
        .await;
    let out = home.run(&["ask", "hi"], "").await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("network"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reinit_keeps_user_edits() {
    let server = FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&server.base_url()).await;
    let soul = home.path().join("agents/main/SOUL.md");
    std::fs::write(&soul, "mine").unwrap();
    let config_before = std::fs::read_to_string(home.path().join("config.toml")).unwrap();
    std::fs::remove_file(home.path().join("agents/main/HANDOFF.md")).unwrap();
    let out = home
        .run(&["init", "--provider", "anthropic", "--model", "other"], "")
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&soul).unwrap(), "mine");
    assert_eq!(
        std::fs::read_to_string(home.path().join("config.toml")).unwrap(),
        config_before
    );
    assert!(
        home.path().join("agents/main/HANDOFF.md").is_file(),
        "missing files are restored"
    );
}

/// Issue 25.6: a failed first `pincer init` leaves no half-made home; a second one succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_init_leaves_no_half_made_home() {
    let server = FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    assert!(!home.path().exists());
    for args in [
        vec![
            "init",
            "--provider",
            "openai",
            "--base-url",
            "not a url",
            "--model",
            "m",
        ],
        // No terminal for the questions and no --model.
        vec![
            "init",
            "--provider",
            "openai",
            "--base-url",
            "http://127.0.0.1:1/v1",
        ],
    ] {
        let out = home.run(&args, "").await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!home.path().exists(), "{args:?} left a half-made home");
    }
    home.init(&server.base_url()).await;
    assert!(home.path().join("config.toml").is_file());
    // A failure on an existing home removes nothing.
    let out = home
        .run(&["init", "--provider", "openai", "--base-url", "bad"], "")
        .await;
    assert!(
        home.path().join("config.toml").is_file(),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_keeps_its_session_and_obeys_commands() {
    let server = FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&server.base_url()).await;
    let out = home
        .run(
            &["chat"],
            "first\nsecond\n/reset\nthird\n/new\nfourth\n/exit\nnever\n",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for want in [
        "echo: first",
        "echo: second",
        "history cleared",
        "echo: third",
        "new session",
        "echo: fourth",
    ] {
        assert!(text.contains(want), "{want} missing in {text}");
    }
    assert!(!text.contains("never"));
    let lens: Vec<usize> = server
        .requests()
        .iter()
        .map(|r| r.body["messages"].as_array().unwrap().len())
        .collect();
    // system+user; then history of 2 + system + user; after /reset and /new, fresh again.
    assert_eq!(lens, vec![2, 4, 2, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_problems_with_ids() {
    let server = FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&server.base_url()).await;
    let out = home.run(&["doctor"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("provider.default.reachable"));
    assert!(stdout(&out).contains("agent.main.tools"));
    // A tampered audit log fails the audit.chain check.
    let day = std::fs::read_dir(home.path().join("audit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .unwrap();
    let text = std::fs::read_to_string(&day).unwrap();
    std::fs::write(&day, text.replacen("config.init", "config.edit", 1)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::remove_file(home.path().join("agents/main/RULES.md")).unwrap();
    let out = home.run(&["doctor", "--offline", "--json"], "").await;
    assert_eq!(out.status.code(), Some(1));
    let checks: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let status = |id: &str| {
        checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status("home.permissions"), "fail");
    assert_eq!(status("agent.main.files"), "fail");
    assert_eq!(status("audit.chain"), "fail");
    assert_eq!(status("agent.main.tools"), "ok");
    assert_eq!(status("provider.default.reachable"), "skip");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_provider_streamed_and_whole() {
    let server = FakeLlm::start(vec![
        Reply::tool_call("time_now", json!({})),
        Reply::text("it is late"),
    ])
    .await
    .unwrap();
    let home = Home::new();
    let out = home
        .run(
            &[
                "init",
                "--provider",
                "anthropic",
                "--base-url",
                &server.base_url(),
                "--model",
                "claude-x",
                "--api-key-env",
                KEY_VAR,
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = home.run(&["ask", "time?"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "it is late\n");
    let reqs = server.requests();
    assert_eq!(reqs[0].path, "/v1/messages");
    assert_eq!(reqs[0].headers["x-api-key"], KEY);
    assert_eq!(
        reqs[1].body["messages"][2]["content"][0]["type"],
        "tool_result"
    );
    // Non-streaming mode speaks the same format.
    home.run(&["config", "set", "providers.default.stream", "false"], "")
        .await;
    let out = home.run(&["ask", "again"], "").await;
    assert_eq!(stdout(&out), "echo: again\n", "{}", stderr(&out));
    assert_eq!(server.requests()[2].body["stream"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_cancels_the_run_and_leaves_a_canceled_bundle() {
    let (home, _server, out) = signal_ask_mid_turn(&["ask", "wait"], "-INT").await;
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let meta = json_file(&home.runs()[0].join("meta.json"));
    assert_eq!(meta["status"], "canceled");
}

/// The crash contract of a turn (docs/ARCHITECTURE.md, "The run loop"): a run killed with
/// SIGKILL mid-turn leaves its input and its transcript up to the last step, no `meta.json` (it
/// is written once, when a run ends — its absence is what marks a run cut off), an audit log that
/// verifies, and a session the next run can use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_turn_leaves_input_and_transcript_and_no_meta() {
    let (home, _server, out) = signal_ask_mid_turn(&["ask", "wait", "for", "it"], "-KILL").await;
    assert_eq!(out.status.code(), None, "killed by the signal");
    let runs = home.runs();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(
        std::fs::read_to_string(run.join("input.md")).unwrap(),
        "wait for it"
    );
    let transcript = std::fs::read_to_string(run.join("transcript.jsonl")).unwrap();
    let kinds: Vec<String> = transcript
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["type"].to_string())
        .collect();
    assert_eq!(
        kinds,
        ["\"run_start\"", "\"system_prompt\"", "\"user\""],
        "every step up to the model call"
    );
    assert!(
        !run.join("meta.json").exists(),
        "a cut-off run has no meta.json"
    );
    assert!(!run.join("output.md").exists());
    let out = home.run(&["audit", "verify"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The session is not left busy: the next run answers.
    let out = home.run(&["ask", "hello"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "echo: hello\n");
}

/// In a new home whose model answers only after 30 s (then echoes), runs `pincer <args>`, sends
/// it `signal` once the model server holds its request, and returns the home, the server and
/// how the process ended.
async fn signal_ask_mid_turn(args: &[&str], signal: &str) -> (Home, FakeLlm, std::process::Output) {
    let server = FakeLlm::start(vec![Reply::Slow {
        delay_ms: 30_000,
        reply: Box::new(Reply::text("late")),
    }])
    .await
    .unwrap();
    let home = Home::new();
    home.init(&server.base_url()).await;
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_pincer"))
        .args(args)
        .env("PINCER_HOME", home.path())
        .env(KEY_VAR, KEY)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        server
            .wait_for_requests(1, std::time::Duration::from_secs(20))
            .await,
        "request never arrived"
    );
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    (home, server, out)
}
