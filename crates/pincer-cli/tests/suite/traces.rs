//! Issue 23, part 1: OpenTelemetry traces. A `pincer serve` built with `otel` and pointed at a
//! loopback OTLP/HTTP collector (this test's, decoding the real protobuf with the project's own
//! `opentelemetry-proto` types) exports one trace per task: the task span, a child span per
//! model call and per tool call, with names, counts and statuses — and no message content until
//! `telemetry.export_content` is set.
#![cfg(feature = "otel")]

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use pincer_testkit::{FakeLlm, Reply};
use prost::Message as _;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

use super::common::*;

/// A loopback OTLP/HTTP collector: every span it was sent.
async fn collector() -> (String, Arc<Mutex<Vec<(String, Span)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let spans: Arc<Mutex<Vec<(String, Span)>>> = Arc::default();
    let got = spans.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let got = got.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut r = BufReader::new(r);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
                    let mut len = 0;
                    loop {
                        let mut h = String::new();
                        r.read_line(&mut h).await.unwrap();
                        if h == "\r\n" {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).await.unwrap();
                    assert_eq!(path, "/v1/traces");
                    let req = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
                    for rs in req.resource_spans {
                        let service = rs
                            .resource
                            .iter()
                            .flat_map(|r| &r.attributes)
                            .find(|a| a.key == "service.name")
                            .and_then(|a| a.value.as_ref())
                            .and_then(|v| match &v.value {
                                Some(Any::StringValue(s)) => Some(s.clone()),
                                _ => None,
                            })
                            .unwrap_or_default();
                        for ss in rs.scope_spans {
                            for s in ss.spans {
                                got.lock().unwrap().push((service.clone(), s));
                            }
                        }
                    }
                    w.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n",
                    )
                    .await
                    .unwrap();
                }
            });
        }
    });
    (url, spans)
}

fn attr(s: &Span, key: &str) -> Option<String> {
    s.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v| match &v.value {
            Some(Any::StringValue(x)) => Some(x.clone()),
            Some(Any::IntValue(i)) => Some(i.to_string()),
            _ => None,
        })
}

/// Runs one task through `pincer serve` and returns the spans exported (after the server
/// stopped, which flushes them).
async fn one_task(home: &Home, token: &str, message: &str, url: &str) {
    set(home, "telemetry.otlp_endpoint", url).await;
    let path = home.path();
    let token = token.to_owned();
    let message = message.to_owned();
    tokio::task::spawn_blocking(move || {
        let (mut child, addr) = serve_at(&path, &[]);
        let body = serde_json::json!({"agent": "main", "message": message}).to_string();
        let created = super::serve::request(&addr, "POST", "/v1/tasks", &token, Some(&body));
        let id = created.1["task"]["id"].as_str().unwrap().to_owned();
        let done = super::serve::request(
            &addr,
            "GET",
            &format!("/v1/tasks/{id}?wait_secs=30"),
            &token,
            None,
        );
        assert_eq!(done.1["task"]["status"], "SUCCEEDED", "{:?}", done.1);
        assert_eq!(term(&mut child), Some(0));
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_task_is_one_trace_of_its_model_and_tool_calls_without_content() {
    let llm = FakeLlm::start(vec![
        Reply::tool_call("time_now", serde_json::json!({})),
        Reply::text("the answer is forty-two"),
        Reply::text("again"),
    ])
    .await
    .unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    let out = home
        .run(
            &[
                "tokens",
                "create",
                "--name",
                "t",
                "--scopes",
                "tasks:write,tasks:read",
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let token = stdout(&out).trim().to_owned();
    let (url, spans) = collector().await;
    set(&home, "telemetry.service_name", "pincer-test").await;
    one_task(&home, &token, "what is the secret-marker-7731?", &url).await;

    let got = spans.lock().unwrap().clone();
    let named =
        |n: &str| -> Vec<&Span> { got.iter().map(|(_, s)| s).filter(|s| s.name == n).collect() };
    let task = named("pincer.task");
    assert_eq!(task.len(), 1, "{got:#?}");
    let task = task[0];
    assert!(got.iter().all(|(svc, _)| svc == "pincer-test"));
    assert_eq!(attr(task, "status").as_deref(), Some("SUCCEEDED"));
    assert_eq!(attr(task, "agent").as_deref(), Some("main"));
    let models = named("pincer.model_call");
    let tools = named("pincer.tool_call");
    assert_eq!((models.len(), tools.len()), (2, 1), "{got:#?}");
    for child in models.iter().chain(&tools) {
        assert_eq!(child.trace_id, task.trace_id, "one trace per task");
        assert_eq!(
            child.parent_span_id, task.span_id,
            "children of the task span"
        );
    }
    assert_eq!(attr(tools[0], "tool").as_deref(), Some("time_now"));
    assert_eq!(attr(tools[0], "decision").as_deref(), Some("allow"));
    assert_eq!(attr(tools[0], "status").as_deref(), Some("ok"));
    assert!(
        models
            .iter()
            .all(|m| attr(m, "outcome").as_deref() == Some("ok"))
    );
    // No content: neither the question nor the answer is in any span.
    let all = format!("{got:?}");
    assert!(
        !all.contains("secret-marker-7731"),
        "the input was exported"
    );
    assert!(!all.contains("forty-two"), "the output was exported");

    // With export_content the task span carries them.
    spans.lock().unwrap().clear();
    set(&home, "telemetry.export_content", "true").await;
    one_task(&home, &token, "second secret-marker-9", &url).await;
    let got = spans.lock().unwrap().clone();
    let task = got
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.name == "pincer.task")
        .unwrap();
    assert_eq!(
        attr(task, "input").as_deref(),
        Some("second secret-marker-9")
    );
    assert_eq!(attr(task, "output").as_deref(), Some("again"));
}

#[tokio::test]
async fn a_bad_endpoint_is_a_config_error() {
    let llm = FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    let out = home
        .run(
            &[
                "config",
                "set",
                "telemetry.otlp_endpoint",
                "ftp://collector",
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("telemetry.otlp_endpoint"),
        "{}",
        stderr(&out)
    );
}
