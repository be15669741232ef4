//! Model failover (issue 15, part 2): chains, the cooldown ladder kept in the store across
//! restarts, API key rotation, and the operator's view and reset.

use super::common::*;

/// Appends `text` to the home's config (what an operator's editor does).
fn append_config(home: &Home, text: &str) {
    let path = home.path().join("config.toml");
    let mut config = std::fs::read_to_string(&path).unwrap();
    config.push_str(text);
    std::fs::write(&path, config).unwrap();
}

/// A home whose agent runs the chain `primary` (at `primary`, model `big-model`, no retries)
/// then `second` (at `backup`, model `small-model`).
async fn two_model_home(
    primary: &pincer_testkit::FakeLlm,
    backup: &pincer_testkit::FakeLlm,
) -> Home {
    let home = Home::new();
    home.init(&primary.base_url()).await;
    append_config(
        &home,
        &format!(
            r#"
[providers.backup]
kind = "openai"
base_url = "{}"

[models.primary]
provider = "default"
model = "big-model"

[models.second]
provider = "backup"
model = "small-model"
"#,
            backup.base_url()
        ),
    );
    set(&home, "providers.default.max_retries", "0").await;
    set(&home, "agents.main.models", r#"["primary", "second"]"#).await;
    home
}

fn status(out: &std::process::Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    serde_json::from_str(&stdout(out)).unwrap()
}

fn audit_kinds(home_out: &std::process::Output) -> Vec<String> {
    stdout(home_out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["event"]["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A chain whose first model answers 429, then (after the operator clears it) 500: each time
/// the second model answers, the first climbs the cooldown ladder, and a new process — a
/// restart — skips it while it cools down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_model_falls_over_to_the_next_and_cools_down_across_restarts() {
    use pincer_testkit::{FakeLlm, Reply};
    let primary = FakeLlm::start(vec![Reply::status(429, None), Reply::status(500, None)])
        .await
        .unwrap();
    let backup = FakeLlm::bind(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        vec![],
        Reply::text("from the backup"),
    )
    .await
    .unwrap();
    let home = two_model_home(&primary, &backup).await;
    let ask = || home.run(&["ask", "hello"], "");
    let out = ask().await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("from the backup"), "{}", stdout(&out));
    assert_eq!(primary.requests().len(), 1);
    assert_eq!(primary.requests()[0].body["model"], "big-model");
    assert_eq!(
        backup.requests().last().unwrap().body["model"],
        "small-model"
    );
    // A new process respects the cooldown: the primary is not asked again.
    let out = ask().await;
    assert!(stdout(&out).contains("from the backup"), "{}", stdout(&out));
    assert_eq!(primary.requests().len(), 1, "asked during its cooldown");
    let v = status(&home.run(&["models", "status", "--json"], "").await);
    let first = &v["agents"][0]["models"][0];
    assert_eq!(first["alias"], "primary", "{v}");
    assert_eq!(first["state"], "cooling_down", "{v}");
    assert_eq!(first["last_error"], "rate_limit", "{v}");
    assert_eq!(first["failures"], 1, "{v}");
    assert_eq!(v["agents"][0]["models"][1]["state"], "ok", "{v}");
    // The operator clears it; it fails again (500) and climbs a rung.
    let out = home.run(&["models", "clear", "model:primary"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = ask().await;
    assert!(stdout(&out).contains("from the backup"), "{}", stdout(&out));
    assert_eq!(primary.requests().len(), 2);
    let v = status(&home.run(&["models", "status", "--json"], "").await);
    let first = &v["agents"][0]["models"][0];
    assert_eq!(
        (first["failures"].as_u64(), first["last_error"].as_str()),
        (Some(1), Some("server")),
        "{v}"
    );
    // Every switch is audited, with where it went.
    let out = home
        .run(&["audit", "search", "--type", "model", "--json"], "")
        .await;
    assert_eq!(
        audit_kinds(&out),
        ["model.failover", "model.cleared", "model.failover"],
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("\"to\":\"second\""),
        "{}",
        stdout(&out)
    );
}

/// Several keys for one provider: a refused key is disabled (until cleared) and the next key
/// answers; later calls go straight to the working key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_api_key_is_disabled_and_the_next_key_is_used() {
    use pincer_testkit::{FakeLlm, Reply};
    let llm = FakeLlm::bind(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        vec![Reply::status(401, None)],
        Reply::text("answered"),
    )
    .await
    .unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    set(&home, "providers.default.api_key_env", "PINCER_TEST_K1").await;
    set(
        &home,
        "providers.default.api_key_envs",
        r#"["PINCER_TEST_K2"]"#,
    )
    .await;
    let keys = [
        ("PINCER_TEST_K1", "k1-secret-value"),
        ("PINCER_TEST_K2", "k2-secret-value"),
    ];
    let auth = |i: usize| {
        llm.requests()[i]
            .headers
            .iter()
            .find(|(k, _)| *k == "authorization")
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let out = home.run_with_env(&["ask", "hello"], &keys).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("answered"), "{}", stdout(&out));
    assert_eq!(
        (auth(0).as_str(), auth(1).as_str()),
        ("Bearer k1-secret-value", "Bearer k2-secret-value")
    );
    let out = home.run_with_env(&["ask", "again"], &keys).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(llm.requests().len(), 3);
    assert_eq!(auth(2), "Bearer k2-secret-value", "a disabled key was used");
    let v = status(
        &home
            .run_with_env(&["models", "status", "--json"], &keys)
            .await,
    );
    let k1 = &v["agents"][0]["models"][0]["keys"][0];
    assert_eq!(
        (
            k1["key"].as_str(),
            k1["state"].as_str(),
            k1["last_error"].as_str()
        ),
        (Some("PINCER_TEST_K1"), Some("disabled"), Some("auth")),
        "{v}"
    );
    let out = home
        .run(&["audit", "search", "--type", "model", "--json"], "")
        .await;
    assert_eq!(
        audit_kinds(&out),
        ["model.key_disabled"],
        "{}",
        stdout(&out)
    );
    assert!(
        !stdout(&out).contains("k1-secret-value"),
        "the key leaked into the audit log"
    );
    // Cleared by the operator, the first key is used again.
    home.run(&["models", "clear", "key:PINCER_TEST_K1"], "")
        .await;
    home.run_with_env(&["ask", "third"], &keys).await;
    assert_eq!(auth(3), "Bearer k1-secret-value");
}

/// A chain that names an unknown model, or one twice, is refused with the key named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misconfigured_chain_is_refused_with_the_key_named() {
    let home = Home::new();
    home.init("http://127.0.0.1:9/v1").await;
    let out = home
        .run(&["config", "set", "agents.main.models", r#"["ghost"]"#], "")
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("agents.main.models[0]"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("ghost"), "{}", stderr(&out));
}

/// Pinning (issue 15, part 3): a strict choice fails rather than switch; a preferred one falls
/// back; `/model` in `pincer chat` shows and sets the conversation's model within the chain;
/// `--model` outside the chain is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_pinning_fails_instead_of_switching_and_chat_can_choose() {
    use pincer_testkit::{FakeLlm, Reply};
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let primary = FakeLlm::bind(any, vec![], Reply::status(500, None))
        .await
        .unwrap();
    let backup = FakeLlm::bind(any, vec![], Reply::text("from the backup"))
        .await
        .unwrap();
    let home = two_model_home(&primary, &backup).await;
    let out = home
        .run(&["ask", "--model", "primary", "--strict", "hello"], "")
        .await;
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(primary.requests().len(), 1);
    assert!(backup.requests().is_empty(), "a strict pin switched models");
    home.run(&["models", "clear", "model:primary"], "").await;
    let out = home.run(&["ask", "--model", "primary", "hello"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("from the backup"), "{}", stdout(&out));
    assert_eq!(
        primary.requests().len(),
        2,
        "the preferred model was not tried first"
    );
    let out = home.run(&["ask", "--model", "ghost", "hello"], "").await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("primary, second"), "{}", stderr(&out));
    // In a chat: choose the second model strictly, talk, look.
    home.run(&["models", "clear", "model:primary"], "").await;
    let out = home
        .run(
            &["chat", "--session", "s"],
            "/model second strict\nhi there\n/model\n/model ghost\n/model default\n/model\n",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("now uses `second` only"), "{text}");
    assert!(text.contains("from the backup"), "{text}");
    assert!(text.contains("`second` (chosen here, strict"), "{text}");
    assert!(
        text.contains("`ghost` is not one of this agent's models"),
        "{text}"
    );
    assert!(text.contains("`primary` (the agent's default)"), "{text}");
    assert_eq!(
        primary.requests().len(),
        2,
        "a strict pin on `second` asked `primary`"
    );
    assert_eq!(
        backup.requests().last().unwrap().body["model"],
        "small-model"
    );
}

/// Gemini (issue 15, part 1) end to end: `pincer init --provider gemini`, then a turn with a
/// function call and its result, against a Gemini-shaped fake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gemini_agent_answers_and_calls_tools() {
    use pincer_testkit::{FakeLlm, Reply};
    let llm = FakeLlm::start(vec![
        Reply::tool_call("time_now", serde_json::json!({})),
        Reply::text("It is noon."),
    ])
    .await
    .unwrap();
    let home = Home::new();
    let out = home
        .run(
            &[
                "init",
                "--provider",
                "gemini",
                "--base-url",
                &llm.gemini_base_url(),
                "--model",
                "gemini-test",
                "--api-key-env",
                "PINCER_TEST_GEMINI_KEY",
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = home
        .run_with_env(
            &["ask", "what time is it?"],
            &[("PINCER_TEST_GEMINI_KEY", "g-secret-key-value")],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("It is noon."), "{}", stdout(&out));
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].body["model"], "gemini-test");
    assert!(
        reqs[0]
            .headers
            .iter()
            .any(|(k, v)| k == "x-goog-api-key" && v == "g-secret-key-value")
    );
    let second = &reqs[1].body["contents"];
    let last = second.as_array().unwrap().last().unwrap();
    assert_eq!(
        last["parts"][0]["functionResponse"]["name"], "time_now",
        "{second}"
    );
}
