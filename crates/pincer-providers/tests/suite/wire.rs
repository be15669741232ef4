//! Both clients, streamed and not, against `FakeLlm`.

use std::time::Duration;

use pincer_providers::{
    AnthropicProvider, ApiKey, ChatRequest, ErrorKind, FinishReason, GeminiProvider, HttpSettings,
    Message, ModelProvider, OpenAiProvider, ToolDef, collect,
};
use pincer_testkit::{FakeLlm, Reply, ScriptedCall};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const KEY: &str = "sk-test-0123456789abcdef";

#[derive(Clone, Copy, Debug)]
enum Wire {
    OpenAi,
    Anthropic,
    Gemini,
}

fn settings(stream: bool) -> HttpSettings {
    HttpSettings {
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
        max_retries: 2,
        retry_base: Duration::from_millis(10),
        stream,
    }
}

fn client(wire: Wire, server: &FakeLlm, s: HttpSettings) -> Box<dyn ModelProvider> {
    let key = Some(ApiKey::new(KEY));
    match wire {
        Wire::OpenAi => Box::new(OpenAiProvider::new(&server.base_url(), key, s).unwrap()),
        Wire::Anthropic => Box::new(AnthropicProvider::new(&server.base_url(), key, s).unwrap()),
        Wire::Gemini => Box::new(GeminiProvider::new(&server.gemini_base_url(), key, s).unwrap()),
    }
}

fn request(text: &str) -> ChatRequest {
    ChatRequest {
        model: "m".into(),
        strict_model: false,
        context: pincer_providers::CallContext::default(),
        system: "be brief".into(),
        messages: vec![Message::User {
            content: text.into(),
        }],
        tools: vec![ToolDef {
            name: "time_now".into(),
            description: "current time".into(),
            parameters: std::sync::Arc::new(json!({"type": "object", "properties": {}})),
        }],
        max_tokens: 100,
    }
}

async fn ask(
    wire: Wire,
    server: &FakeLlm,
    s: HttpSettings,
    text: &str,
) -> Result<pincer_providers::Completion, pincer_providers::ProviderError> {
    let p = client(wire, server, s);
    collect(p.stream(&request(text), CancellationToken::new()), |_| {}).await
}

const WIRES: [Wire; 3] = [Wire::OpenAi, Wire::Anthropic, Wire::Gemini];

#[tokio::test]
async fn text_answers_stream_and_whole() {
    for wire in WIRES {
        for stream in [true, false] {
            let server = FakeLlm::start(vec![Reply::text("Hello there, friend")])
                .await
                .unwrap();
            let mut deltas = 0;
            let p = client(wire, &server, settings(stream));
            let c = collect(p.stream(&request("hi"), CancellationToken::new()), |_| {
                deltas += 1
            })
            .await
            .unwrap();
            assert_eq!(c.text, "Hello there, friend", "{wire:?} stream={stream}");
            assert_eq!(c.finish, FinishReason::Stop);
            assert!(
                c.usage.input_tokens > 0 && c.usage.output_tokens == 3,
                "{:?}",
                c.usage
            );
            if stream {
                assert!(deltas > 1, "streamed in pieces");
            }
            let reqs = server.requests();
            assert_eq!(reqs.len(), 1);
            assert_eq!(reqs[0].body["stream"], json!(stream));
            match wire {
                Wire::OpenAi => {
                    assert_eq!(reqs[0].headers["authorization"], format!("Bearer {KEY}"));
                    assert_eq!(reqs[0].body["messages"][0]["role"], "system");
                    assert_eq!(reqs[0].body["tools"][0]["function"]["name"], "time_now");
                }
                Wire::Anthropic => {
                    assert_eq!(reqs[0].headers["x-api-key"], KEY);
                    assert_eq!(reqs[0].headers["anthropic-version"], "2023-06-01");
                    assert_eq!(reqs[0].body["system"], "be brief");
                    assert_eq!(reqs[0].body["tools"][0]["input_schema"]["type"], "object");
                }
                Wire::Gemini => {
                    assert_eq!(reqs[0].headers["x-goog-api-key"], KEY);
                    assert!(!reqs[0].headers.contains_key("authorization"));
                    assert_eq!(reqs[0].body["model"], "m", "the model is in the URL");
                    assert_eq!(
                        reqs[0].body["systemInstruction"]["parts"][0]["text"],
                        "be brief"
                    );
                    assert_eq!(reqs[0].body["contents"][0]["role"], "user");
                    assert_eq!(reqs[0].body["contents"][0]["parts"][0]["text"], "hi");
                    assert_eq!(
                        reqs[0].body["tools"][0]["functionDeclarations"][0]["name"],
                        "time_now"
                    );
                    assert_eq!(reqs[0].body["generationConfig"]["maxOutputTokens"], 100);
                }
            }
        }
    }
}

#[tokio::test]
async fn several_tool_calls_in_one_turn_are_assembled() {
    for wire in WIRES {
        for stream in [true, false] {
            let calls = vec![
                ScriptedCall {
                    name: "time_now".into(),
                    arguments: json!({}),
                },
                ScriptedCall {
                    name: "fs_read".into(),
                    arguments: json!({"path": "notes/ü.md", "limit": 10}),
                },
            ];
            let server = FakeLlm::start(vec![Reply::ToolCalls {
                calls,
                text: "checking".into(),
            }])
            .await
            .unwrap();
            let c = ask(wire, &server, settings(stream), "q").await.unwrap();
            assert_eq!(c.finish, FinishReason::ToolCalls, "{wire:?} {stream}");
            assert_eq!(c.text, "checking");
            assert_eq!(c.tool_calls.len(), 2);
            assert_eq!(c.tool_calls[0].name, "time_now");
            let args: serde_json::Value = serde_json::from_str(&c.tool_calls[1].arguments).unwrap();
            assert_eq!(args, json!({"path": "notes/ü.md", "limit": 10}));
            assert_ne!(c.tool_calls[0].id, c.tool_calls[1].id);
        }
    }
}

#[tokio::test]
async fn retries_429_honouring_retry_after_then_succeeds() {
    for wire in WIRES {
        let server = FakeLlm::start(vec![
            Reply::status(429, Some(0)),
            Reply::status(503, None),
            Reply::text("ok"),
        ])
        .await
        .unwrap();
        let c = ask(wire, &server, settings(true), "q").await.unwrap();
        assert_eq!(c.text, "ok");
        assert_eq!(server.requests().len(), 3);
    }
}

#[tokio::test]
async fn gives_up_after_max_retries_with_classified_error() {
    let server = FakeLlm::start(vec![Reply::status(500, None); 5])
        .await
        .unwrap();
    let e = ask(Wire::OpenAi, &server, settings(true), "q")
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Server);
    assert_eq!(server.requests().len(), 3, "1 try + 2 retries");
}

#[tokio::test]
async fn auth_errors_are_not_retried_and_never_show_the_key() {
    for wire in WIRES {
        let body = format!(r#"{{"error":{{"message":"Incorrect API key provided: {KEY}"}}}}"#);
        let server = FakeLlm::start(vec![Reply::Status {
            code: 401,
            retry_after: None,
            body: Some(body),
        }])
        .await
        .unwrap();
        let e = ask(wire, &server, settings(true), "q").await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Auth);
        assert_eq!(server.requests().len(), 1);
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(KEY), "key leaked: {shown}");
        assert!(shown.contains("[REDACTED]"));
    }
}

#[tokio::test]
async fn malformed_answers_are_clear_errors() {
    for wire in WIRES {
        for stream in [true, false] {
            let server = FakeLlm::start(vec![Reply::Malformed]).await.unwrap();
            let e = ask(wire, &server, settings(stream), "q").await.unwrap_err();
            assert_eq!(e.kind, ErrorKind::Malformed, "{wire:?} {stream}: {e}");
        }
    }
}

#[tokio::test]
async fn a_stream_cut_midway_is_an_error() {
    for wire in WIRES {
        let server = FakeLlm::start(vec![Reply::CutStream {
            text: "one two three four".into(),
        }])
        .await
        .unwrap();
        let e = ask(wire, &server, settings(true), "q").await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Malformed, "{wire:?}: {e}");
        assert_eq!(
            server.requests().len(),
            1,
            "a stream that began is not retried"
        );
    }
}

#[tokio::test]
async fn slow_replies_time_out() {
    let server = FakeLlm::start(vec![Reply::Slow {
        delay_ms: 3_000,
        reply: Box::new(Reply::text("late")),
    }])
    .await
    .unwrap();
    let mut s = settings(true);
    s.timeout = Duration::from_millis(200);
    s.max_retries = 0;
    let e = ask(Wire::OpenAi, &server, s, "q").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
}

#[tokio::test]
async fn cancellation_stops_a_pending_call() {
    let server = FakeLlm::start(vec![Reply::Slow {
        delay_ms: 5_000,
        reply: Box::new(Reply::text("late")),
    }])
    .await
    .unwrap();
    let p = client(Wire::Anthropic, &server, settings(true));
    let cancel = CancellationToken::new();
    let stream = p.stream(&request("q"), cancel.clone());
    let task = tokio::spawn(collect(stream, |_| {}));
    // Cancel once the server has the request in hand.
    assert!(
        server.wait_for_requests(1, Duration::from_secs(5)).await,
        "request never arrived"
    );
    cancel.cancel();
    let e = task.await.unwrap().unwrap_err();
    assert_eq!(e.kind, ErrorKind::Canceled);
}

#[tokio::test]
async fn connection_refused_is_a_network_error() {
    let server = FakeLlm::start(vec![]).await.unwrap();
    let url = server.base_url();
    drop(server);
    let mut s = settings(true);
    s.max_retries = 1;
    let p = OpenAiProvider::new(&url, None, s).unwrap();
    let e = collect(p.stream(&request("q"), CancellationToken::new()), |_| {})
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Network, "{e}");
}

#[tokio::test]
async fn echo_default_reads_last_user_message() {
    let server = FakeLlm::start(vec![]).await.unwrap();
    for wire in WIRES {
        let c = ask(wire, &server, settings(true), "ping pong")
            .await
            .unwrap();
        assert_eq!(c.text, "echo: ping pong");
    }
}

/// An answer the provider's safety filter blocked ends as `ContentFilter` with no text, in every
/// format, streamed or not.
#[tokio::test]
async fn a_safety_blocked_answer_is_a_content_filter_finish() {
    for wire in WIRES {
        for stream in [true, false] {
            let server = FakeLlm::start(vec![Reply::Blocked]).await.unwrap();
            let c = ask(wire, &server, settings(stream), "something risky")
                .await
                .unwrap();
            assert_eq!(c.finish, FinishReason::ContentFilter, "{wire:?} {stream}");
            assert_eq!(c.text, "");
            assert!(c.tool_calls.is_empty());
        }
    }
}

/// Gemini tool results go back as `functionResponse` parts naming the function they answer, in
/// a user turn after the model's `functionCall` turn.
#[tokio::test]
async fn gemini_tool_results_name_their_function() {
    use pincer_providers::ToolCall;
    let server = FakeLlm::start(vec![Reply::text("ok")]).await.unwrap();
    let p = client(Wire::Gemini, &server, settings(false));
    let mut req = request("what time is it?");
    req.messages.push(Message::Assistant {
        content: String::new(),
        tool_calls: vec![ToolCall {
            id: "call_0".into(),
            name: "time_now".into(),
            arguments: "{}".into(),
        }],
    });
    req.messages.push(Message::Tool {
        call_id: "call_0".into(),
        content: "12:00".into(),
        is_error: false,
    });
    collect(p.stream(&req, CancellationToken::new()), |_| {})
        .await
        .unwrap();
    let body = &server.requests()[0].body;
    assert_eq!(body["contents"][1]["role"], "model");
    assert_eq!(
        body["contents"][1]["parts"][0]["functionCall"]["name"],
        "time_now"
    );
    assert_eq!(body["contents"][2]["role"], "user");
    assert_eq!(
        body["contents"][2]["parts"][0]["functionResponse"],
        json!({"name": "time_now", "response": {"result": "12:00"}})
    );
}

/// Gemini refuses a bad key with 400 `API_KEY_INVALID`: an auth error, not a bad request.
#[tokio::test]
async fn gemini_invalid_key_is_an_auth_error() {
    let body = r#"{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT", "details": [{"reason": "API_KEY_INVALID"}]}}"#;
    let server = FakeLlm::start(vec![Reply::Status {
        code: 400,
        retry_after: None,
        body: Some(body.into()),
    }])
    .await
    .unwrap();
    let e = ask(Wire::Gemini, &server, settings(true), "q")
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth, "{e}");
    assert_eq!(server.requests().len(), 1, "not retried");
}

/// A model server's redirect is reported, never followed (every provider client does so; a
/// plain-`http://` one also carries no TLS roots, issue 24): the error it is, rather than the
/// conversation re-sent to wherever it points.
#[tokio::test]
async fn a_plain_http_redirect_is_an_error_and_is_not_followed() {
    let target = FakeLlm::start(vec![Reply::text("should not be reached")])
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let location = format!("{}/chat/completions", target.base_url());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = vec![0u8; 65536];
            let _ = sock.read(&mut buf).await;
            let reply = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = sock.write_all(reply.as_bytes()).await;
        }
    });
    let p = OpenAiProvider::new(
        &format!("http://127.0.0.1:{port}/v1"),
        Some(ApiKey::new(KEY)),
        settings(false),
    )
    .unwrap();
    let err = collect(p.stream(&request("hi"), CancellationToken::new()), |_| {})
        .await
        .unwrap_err();
    assert!(err.message.contains("307"), "{err:?}");
    assert!(
        target.requests().is_empty(),
        "the redirect was not followed"
    );
}
