//! `GET /metrics` (issue 23, H4) scraped from the real server and parsed with Prometheus's own
//! text parser (`prometheus_client`, PyPI): tasks by state, queue depth, approvals waiting, turns
//! and their durations, model calls, tokens by model, tool calls by policy decision; the scope
//! it needs. Under `CI=true` a missing parser fails the test.

use pincer_testkit::{FakeLlm, Reply, ScriptedCall};
use serde_json::{Value, json};

use super::common::*;

fn python() -> Option<String> {
    let python = std::env::var("PINCER_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&python)
        .args(["-c", "import prometheus_client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    assert!(
        !in_ci(),
        "prometheus-client is required under CI (.ci/run installs it)"
    );
    eprintln!("SKIP (no prometheus_client; not CI)");
    None
}

/// Parses an exposition with prometheus_client: `[{name, labels, value}]` for every sample.
fn parse(python: &str, text: &str) -> Vec<Value> {
    let mut child = std::process::Command::new(python)
        .args([
            "-c",
            "import sys, json\nfrom prometheus_client.parser import text_string_to_metric_families\n\
             out = [{'family': f.name, 'type': f.type, 'name': s.name, 'labels': s.labels, 'value': s.value}\n\
                    for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples]\n\
             print(json.dumps(out))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn value(samples: &[Value], name: &str, labels: Value) -> f64 {
    samples
        .iter()
        .filter(|s| s["name"] == name)
        .find(|s| {
            labels
                .as_object()
                .unwrap()
                .iter()
                .all(|(k, v)| &s["labels"][k] == v)
        })
        .and_then(|s| s["value"].as_f64())
        .unwrap_or_else(|| panic!("no {name} {labels}: {samples:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_scraped_and_parsed_by_prometheus() {
    let Some(python) = python() else {
        return;
    };
    let llm = FakeLlm::start(vec![
        Reply::ToolCalls {
            calls: vec![ScriptedCall {
                name: "time_now".into(),
                arguments: json!({}),
            }],
            text: String::new(),
        },
        Reply::text("done"),
    ])
    .await
    .unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    let scrape = stdout(
        &home
            .run(
                &[
                    "tokens",
                    "create",
                    "--name",
                    "prom",
                    "--scopes",
                    "metrics:read",
                ],
                "",
            )
            .await,
    )
    .trim()
    .to_owned();
    let tasks = stdout(
        &home
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
            .await,
    )
    .trim()
    .to_owned();
    let (mut child, addr) = serve_at(&home.path(), &[]);
    let (a, s, t) = (addr.clone(), scrape.clone(), tasks.clone());
    let text = tokio::task::spawn_blocking(move || {
        let (_, v) = super::serve::request(
            &a,
            "POST",
            "/v1/tasks",
            &t,
            Some(r#"{"agent": "main", "message": "what time is it?"}"#),
        );
        let id = v["task"]["id"].as_str().unwrap().to_owned();
        let (_, done) =
            super::serve::request(&a, "GET", &format!("/v1/tasks/{id}?wait_secs=30"), &t, None);
        assert_eq!(done["task"]["status"], "SUCCEEDED", "{done}");
        // Not with a token without the scope.
        let (code, _) = super::serve::request(&a, "GET", "/metrics", &t, None);
        assert_eq!(code, 403);
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "-H",
                &format!("Authorization: Bearer {s}"),
                &format!("http://{a}/metrics"),
            ])
            .output()
            .expect("curl");
        String::from_utf8(out.stdout).unwrap()
    })
    .await
    .unwrap();
    assert_eq!(term(&mut child), Some(0));
    let samples = parse(&python, &text);
    assert_eq!(
        value(&samples, "pincer_tasks", json!({"state": "SUCCEEDED"})),
        1.0
    );
    assert_eq!(value(&samples, "pincer_queue_depth", json!({})), 0.0);
    assert_eq!(value(&samples, "pincer_approvals_waiting", json!({})), 0.0);
    assert_eq!(
        value(
            &samples,
            "pincer_turns_total",
            json!({"status": "succeeded"})
        ),
        1.0
    );
    assert_eq!(
        value(&samples, "pincer_turn_duration_seconds_count", json!({})),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "pincer_model_calls_total",
            json!({"model": "m", "outcome": "ok"})
        ),
        2.0
    );
    assert_eq!(
        value(
            &samples,
            "pincer_tool_calls_total",
            json!({"tool": "time.now", "decision": "allow"})
        ),
        1.0
    );
    assert!(
        value(
            &samples,
            "pincer_tokens_total",
            json!({"model": "m", "direction": "input"})
        ) > 0.0
    );
    assert_eq!(
        value(&samples, "pincer_skills", json!({"state": "enabled"})),
        0.0
    );
    assert_eq!(
        value(&samples, "pincer_sandbox_spawns_total", json!({})),
        0.0
    );
    for family in [
        "pincer_failovers_total",
        "pincer_channel_send_failures_total",
    ] {
        assert!(text.contains(&format!("# TYPE {family} counter")), "{text}");
    }
    // No message content anywhere in the exposition.
    assert!(!text.contains("what time is it"), "{text}");
}
