//! The run loop end to end: real provider client, real fake server, real SQLite, real files.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pincer_agent::{Gate, NoApprover, RunOutcome, RunRequest, RunSettings, Runner, scaffold_agent};
use pincer_audit::{AuditLog, Redactor};
use pincer_config::{ApprovalMode, ExecMode, NetworkMode, PromptLimits};
use pincer_policy::Policy;
use pincer_providers::{HttpSettings, OpenAiProvider};
use pincer_store::{SqliteStore, Store};
use pincer_testkit::{FakeLlm, Reply};
use pincer_tools::fs::FsScope;
use pincer_tools::{ToolContext, ToolRegistry};
use pincer_types::{RunEvent, RunStatus, SystemClock};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

struct Env {
    _dir: tempfile::TempDir,
    agent_dir: std::path::PathBuf,
    audit_dir: std::path::PathBuf,
    tools: ToolContext,
    store: Arc<SqliteStore>,
    runner: Runner,
    server: FakeLlm,
}

async fn env(script: Vec<Reply>) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let agent_dir = dir.path().join("agents/main");
    scaffold_agent(&agent_dir).unwrap();
    let server = FakeLlm::start(script).await.unwrap();
    let settings = HttpSettings {
        retry_base: Duration::from_millis(5),
        ..HttpSettings::default()
    };
    let provider = Arc::new(OpenAiProvider::new(&server.base_url(), None, settings).unwrap());
    let store = Arc::new(SqliteStore::open(&dir.path().join("state.db")).unwrap());
    let tools = Arc::new(ToolRegistry::builtin(Arc::new(SystemClock)).unwrap());
    let audit_dir = dir.path().join("audit");
    let audit =
        Arc::new(AuditLog::open(&audit_dir, Redactor::new(Vec::new(), &[]).unwrap()).unwrap());
    let gate = Arc::new(Gate::new(tools, audit, Arc::new(NoApprover)));
    let runner = Runner::new(provider, gate, store.clone());
    let ws = dir.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let tools = ToolContext {
        agent: "main".parse().unwrap(),
        fs: Arc::new(FsScope::open(&ws, &Default::default(), &[]).unwrap()),
        exec: None,
        run: None,
    };
    Env {
        _dir: dir,
        agent_dir,
        audit_dir,
        tools,
        store,
        runner,
        server,
    }
}

async fn session(env: &Env, key: &str) -> pincer_store::SessionInfo {
    env.store
        .current_session(&key.parse().unwrap(), &"main".parse().unwrap())
        .await
        .unwrap()
}

fn request(
    env: &Env,
    session: pincer_store::SessionInfo,
    input: &str,
    max_steps: u32,
) -> RunRequest {
    RunRequest {
        agent: "main".parse().unwrap(),
        agent_dir: env.agent_dir.clone(),
        settings: RunSettings {
            provider_name: "default".into(),
            model: "m".into(),
            strict_model: false,
            max_steps,
            run_timeout: Duration::from_secs(30),
            max_tokens: 100,
            prompt: PromptLimits::default(),
            light_context: false,
            context: pincer_agent::ContextLimits::default(),
        },
        policy: Policy {
            approval_mode: ApprovalMode::Balanced,
            exec: ExecMode::Off,
            network: NetworkMode::Off,
            granted: ["time.now".parse().unwrap()].into(),
        },
        tools: env.tools.clone(),
        session,
        input: input.into(),
    }
}

async fn run(env: &Env, input: &str, max_steps: u32) -> (RunOutcome, Vec<RunEvent>) {
    let session = session(env, "main:test:x").await;
    let mut events = Vec::new();
    let out = env
        .runner
        .run(
            request(env, session, input, max_steps),
            CancellationToken::new(),
            &mut |e| events.push(e.clone()),
        )
        .await
        .unwrap();
    (out, events)
}

fn transcript(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("transcript.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn audit_kinds(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    for f in files {
        for line in std::fs::read_to_string(f).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            out.push(v["event"]["type"].as_str().unwrap().to_owned());
        }
    }
    out
}

#[tokio::test]
async fn tool_call_round_trips_into_transcript_and_session() {
    let env = env(vec![
        Reply::tool_call("time_now", json!({})),
        Reply::text("It is now."),
    ])
    .await;
    let (out, events) = run(&env, "what time is it?", 8).await;
    assert_eq!(
        out.meta.status,
        RunStatus::Succeeded,
        "{:?}",
        out.meta.error
    );
    assert_eq!(out.output, "It is now.");
    assert_eq!(out.meta.tool_calls, 1);
    assert_eq!(out.meta.steps, 2);
    assert!(out.meta.usage.input_tokens > 0);
    let lines = transcript(&out.bundle_dir);
    let result = lines.iter().find(|l| l["type"] == "tool_result").unwrap();
    assert_eq!(result["is_error"], false);
    // D9: the result is wrapped and labelled untrusted, and the label is recorded.
    let wrapped = result["content"].as_str().unwrap();
    let inner = wrapped
        .strip_prefix("<tool_output tool=\"time.now\" call_id=\"call_0\" trust=\"untrusted\">\n")
        .and_then(|s| s.strip_suffix("\n</tool_output>"))
        .unwrap_or_else(|| panic!("not labelled: {wrapped}"));
    let content: Value = serde_json::from_str(inner).unwrap();
    assert!(content["unix"].as_i64().unwrap() > 0);
    assert_eq!(result["provenance"]["trust"], "untrusted");
    assert_eq!(result["provenance"]["source"], "tool:time.now");
    let system = env.server.requests()[0].body["messages"][0]["content"].clone();
    assert!(
        system.as_str().unwrap().contains(pincer_agent::DATA_NOTICE),
        "{system}"
    );
    // The audit log holds the whole story, and its chain verifies.
    let kinds = audit_kinds(&env.audit_dir);
    assert_eq!(
        kinds,
        [
            "run.start",
            "tool.call",
            "policy.decision",
            "tool.result",
            "run.end"
        ]
    );
    pincer_audit::verify(&env.audit_dir).unwrap();
    let call = lines.iter().find(|l| l["type"] == "tool_call").unwrap();
    assert_eq!(call["tool"], "time.now");
    assert_eq!(call["decision"]["decision"], "allow");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, RunEvent::ToolCall { .. }))
    );
    // The second model request carried the tool result back.
    let second = &env.server.requests()[1].body["messages"];
    assert!(
        second
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["role"] == "tool")
    );
    // Session history holds the whole turn; a follow-up sees it.
    let (out2, _) = run(&env, "and again?", 8).await;
    assert_eq!(out2.meta.status, RunStatus::Succeeded);
    let third = &env.server.requests()[2].body["messages"];
    assert!(
        third.as_array().unwrap().len() >= 5,
        "history was sent: {third}"
    );
    for f in ["input.md", "output.md", "meta.json", "transcript.jsonl"] {
        assert!(out.bundle_dir.join(f).is_file(), "{f}");
    }
}

#[tokio::test]
async fn model_errors_end_the_run_failed_with_a_bundle() {
    let env = env(vec![Reply::Malformed]).await;
    let (out, _) = run(&env, "hi", 8).await;
    assert_eq!(out.meta.status, RunStatus::Failed);
    assert_eq!(out.meta.error_kind.as_deref(), Some("malformed"));
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(out.bundle_dir.join("meta.json")).unwrap())
            .unwrap();
    assert_eq!(meta["status"], "failed");
    assert!(meta["error"].as_str().unwrap().contains("malformed"));
}

#[tokio::test]
async fn step_limit_stops_endless_tool_use() {
    let env = env(vec![Reply::tool_call("time_now", json!({})); 10]).await;
    let (out, _) = run(&env, "loop", 2).await;
    assert_eq!(out.meta.status, RunStatus::Failed);
    assert_eq!(out.meta.error_kind.as_deref(), Some("step_limit"));
    assert_eq!(env.server.requests().len(), 2);
}

#[tokio::test]
async fn repeated_identical_failing_call_trips_the_breaker() {
    let env = env(vec![Reply::tool_call("time_now", json!({"bogus": 1})); 10]).await;
    let (out, _) = run(&env, "loop", 10).await;
    assert_eq!(
        out.meta.error_kind.as_deref(),
        Some("no_progress"),
        "{:?}",
        out.meta.error
    );
    assert_eq!(env.server.requests().len(), 3);
}

#[tokio::test]
async fn unknown_and_malformed_tool_calls_are_model_visible_errors() {
    let env = env(vec![
        Reply::tool_call("rm_rf", json!({})),
        Reply::text("ok"),
    ])
    .await;
    let (out, _) = run(&env, "x", 8).await;
    assert_eq!(out.meta.status, RunStatus::Succeeded);
    let lines = transcript(&out.bundle_dir);
    let result = lines.iter().find(|l| l["type"] == "tool_result").unwrap();
    assert_eq!(result["is_error"], true);
    assert!(result["content"].as_str().unwrap().contains("unknown tool"));
}

#[tokio::test]
async fn timeout_ends_the_run_timed_out() {
    let env = env(vec![Reply::Slow {
        delay_ms: 10_000,
        reply: Box::new(Reply::text("late")),
    }])
    .await;
    let session = session(&env, "main:t:y").await;
    let mut req = request(&env, session, "x", 4);
    req.settings.run_timeout = Duration::from_millis(300);
    let out = env
        .runner
        .run(req, CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(out.meta.status, RunStatus::TimedOut);
}

#[tokio::test]
async fn cancellation_ends_the_run_canceled_and_keeps_history_clean() {
    let env = env(vec![Reply::Slow {
        delay_ms: 10_000,
        reply: Box::new(Reply::text("late")),
    }])
    .await;
    let session = session(&env, "main:t:z").await;
    let sid = session.id;
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    let req = request(&env, session, "x", 4);
    // Cancel as soon as the run reports it started.
    let out = env
        .runner
        .run(req, cancel, &mut |e| {
            if matches!(e, RunEvent::Started { .. }) {
                c2.cancel();
            }
        })
        .await
        .unwrap();
    assert_eq!(out.meta.status, RunStatus::Canceled);
    assert!(env.store.messages(sid).await.unwrap().is_empty());
    assert_eq!(
        env.store.runs(sid).await.unwrap()[0].status,
        RunStatus::Canceled
    );
}

#[tokio::test]
async fn a_tool_that_was_not_granted_is_neither_offered_nor_run() {
    let env = env(vec![
        Reply::tool_call("time_now", json!({})),
        Reply::text("ok"),
    ])
    .await;
    let session = session(&env, "main:t:g").await;
    let mut req = request(&env, session, "x", 4);
    req.policy.granted.clear();
    let out = env
        .runner
        .run(req, CancellationToken::new(), &mut |_| {})
        .await
        .unwrap();
    assert_eq!(out.meta.status, RunStatus::Succeeded);
    assert!(
        env.server.requests()[0].body.get("tools").is_none(),
        "ungranted tool offered"
    );
    let lines = transcript(&out.bundle_dir);
    let call = lines.iter().find(|l| l["type"] == "tool_call").unwrap();
    assert_eq!(call["decision"]["decision"], "deny");
    assert!(
        call["decision"]["reason"]
            .as_str()
            .unwrap()
            .contains("not granted")
    );
    let result = lines.iter().find(|l| l["type"] == "tool_result").unwrap();
    assert_eq!(result["is_error"], true);
    assert!(
        !result["content"].as_str().unwrap().contains("unix"),
        "the tool ran"
    );
}
