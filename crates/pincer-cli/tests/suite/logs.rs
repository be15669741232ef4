//! Structured logs (issue 23, H4): `PINCER_LOG=info PINCER_LOG_FORMAT=json` gives one JSON object
//! a line on stderr for model and tool calls, with names, decisions and outcomes — never the
//! message content.

use pincer_testkit::{FakeLlm, Reply, ScriptedCall};
use serde_json::{Value, json};

use super::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_name_calls_and_never_carry_content() {
    let llm = FakeLlm::start(vec![
        Reply::ToolCalls {
            calls: vec![ScriptedCall {
                name: "time_now".into(),
                arguments: json!({}),
            }],
            text: String::new(),
        },
        Reply::text("the answer is marmalade"),
    ])
    .await
    .unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    let out = run_blocking(
        &home.path(),
        &["ask".to_owned(), "what is my secret pudding?".to_owned()],
        "",
        &[
            ("PINCER_LOG".to_owned(), "info".to_owned()),
            ("PINCER_LOG_FORMAT".to_owned(), "json".to_owned()),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    let events: Vec<Value> = err
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let model_calls: Vec<&Value> = events
        .iter()
        .filter(|e| e["fields"]["message"] == "model call")
        .collect();
    assert_eq!(model_calls.len(), 2, "{err}");
    assert_eq!(model_calls[0]["fields"]["outcome"], "ok");
    assert_eq!(model_calls[0]["fields"]["model"], "m");
    assert_eq!(model_calls[0]["level"], "INFO");
    let tool = events
        .iter()
        .find(|e| e["fields"]["message"] == "tool call")
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(
        (
            tool["fields"]["tool"].as_str(),
            tool["fields"]["decision"].as_str()
        ),
        (Some("time.now"), Some("allow"))
    );
    assert!(
        !err.contains("pudding") && !err.contains("marmalade"),
        "{err}"
    );
}
