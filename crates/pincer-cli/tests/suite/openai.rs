//! The OpenAI-compatible API (issue 15, parts 5 and 6): conversations never cross clients,
//! unsupported fields are refused by name, and the official `openai` Python SDK works against
//! `pincer serve` as a new user would use it.

use super::common::*;
use super::serve::request;

/// A served home with the endpoint on, answering with `default`, and tokens `a` and `b`.
async fn openai_home(
    default: pincer_testkit::Reply,
) -> (pincer_testkit::FakeLlm, Home, [String; 2]) {
    let llm = pincer_testkit::FakeLlm::bind(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        vec![],
        default,
    )
    .await
    .unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    set(&home, "gateway.openai_compat", "true").await;
    // Two clients: two users (each a member with one token).
    let mut tokens = Vec::new();
    for name in ["a", "b"] {
        let out = home
            .run(&["users", "add", name, "--role", "member"], "")
            .await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let out = home
            .run(
                &[
                    "tokens",
                    "create",
                    "--name",
                    name,
                    "--user",
                    name,
                    "--scopes",
                    "tasks:read,tasks:write",
                ],
                "",
            )
            .await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        tokens.push(stdout(&out).trim().to_owned());
    }
    let [a, b] = <[String; 2]>::try_from(tokens).unwrap();
    (llm, home, [a, b])
}

/// Everything the model was shown in its last request.
fn last_prompt(llm: &pincer_testkit::FakeLlm) -> String {
    llm.requests().last().unwrap().body["messages"].to_string()
}

/// Sends a chat completion with `extra` headers and returns status and body.
fn complete(addr: &str, token: &str, body: &str, extra: &str) -> (u16, serde_json::Value) {
    super::serve::request_with(
        addr,
        "POST",
        "/v1/chat/completions",
        token,
        Some(body),
        extra,
    )
    .unwrap()
}

/// The security bug of issue 15: two API clients without `user` shared one server-side
/// session, so one read the other's conversation. Now each request is its own conversation, and
/// a named session belongs to the token that named it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_clients_never_see_each_others_conversations() {
    let (llm, home, [a, b]) = openai_home(pincer_testkit::Reply::Echo).await;
    let path = home.path();
    let (mut child, addr) = tokio::task::spawn_blocking(move || serve_at(&path, &[]))
        .await
        .unwrap();
    let ask = |token: &str, text: &str, extra: &str| {
        let body =
            serde_json::json!({"model": "main", "messages": [{"role": "user", "content": text}]})
                .to_string();
        let (addr, token, extra) = (addr.clone(), token.to_owned(), extra.to_owned());
        tokio::task::spawn_blocking(move || complete(&addr, &token, &body, &extra))
    };
    // Without a session: nothing carries over, not even for the same token.
    let (st, v) = ask(&a, "my secret is swordfish", "").await.unwrap();
    assert_eq!(st, 200, "{v}");
    let (st, v) = ask(&b, "what did the other person say?", "").await.unwrap();
    assert_eq!(st, 200, "{v}");
    assert!(
        !last_prompt(&llm).contains("swordfish"),
        "{}",
        last_prompt(&llm)
    );
    ask(&a, "and what did I say before?", "").await.unwrap();
    assert!(
        !last_prompt(&llm).contains("swordfish"),
        "{}",
        last_prompt(&llm)
    );
    // A named session keeps the conversation for its token only.
    let named = "X-Pincer-Session: shared-name\r\n";
    ask(&a, "my code word is marlin", named).await.unwrap();
    ask(&a, "what is my code word?", named).await.unwrap();
    assert!(
        last_prompt(&llm).contains("marlin"),
        "{}",
        last_prompt(&llm)
    );
    ask(&b, "what is the code word?", named).await.unwrap();
    assert!(
        !last_prompt(&llm).contains("marlin"),
        "{}",
        last_prompt(&llm)
    );
    // The client's own history is the history of a stateless request.
    let body = serde_json::json!({"model": "main", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "remember: tuna"},
        {"role": "assistant", "content": "noted"},
        {"role": "user", "content": "what did I ask you to remember?"}]})
    .to_string();
    let (addr2, b2) = (addr.clone(), b.clone());
    let (st, v) = tokio::task::spawn_blocking(move || complete(&addr2, &b2, &body, ""))
        .await
        .unwrap();
    assert_eq!(st, 200, "{v}");
    let prompt = last_prompt(&llm);
    assert!(
        prompt.contains("tuna") && prompt.contains("noted"),
        "{prompt}"
    );
    assert!(
        prompt.contains("[Instructions from the API client]\\nbe brief"),
        "{prompt}"
    );
    assert!(
        !prompt.contains("swordfish") && !prompt.contains("marlin"),
        "{prompt}"
    );
    assert_eq!(term(&mut child), Some(0));
}

/// Fields a client may send but Pincer does not honour are refused by name, before anything
/// runs; usage is filled in; the agents are the models.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_fields_are_refused_by_name_and_usage_is_reported() {
    let (llm, home, [a, _]) = openai_home(pincer_testkit::Reply::text("fine")).await;
    let path = home.path();
    let (mut child, addr) = tokio::task::spawn_blocking(move || serve_at(&path, &[]))
        .await
        .unwrap();
    let addr2 = addr.clone();
    let a2 = a.clone();
    let results = tokio::task::spawn_blocking(move || {
        let bodies = [
            r#"{"model": "main", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function", "function": {"name": "x"}}]}"#,
            r#"{"model": "main", "messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}}"#,
            r#"{"model": "main", "messages": [{"role": "user", "content": "hi"}], "n": 2}"#,
            r#"{"model": "main", "messages": [{"role": "user", "content": "hi"}], "bogus": 1}"#,
            r#"{"model": "main", "messages": [{"role": "assistant", "content": "hi"}]}"#,
            r#"{"model": "main", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}"#,
        ];
        let refused: Vec<(u16, serde_json::Value)> =
            bodies.iter().map(|b| complete(&addr2, &a2, b, "")).collect();
        let ok = complete(
            &addr2,
            &a2,
            r#"{"model": "main", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2, "max_tokens": 50}"#,
            "",
        );
        let models = request(&addr2, "GET", "/v1/models", &a2, None);
        (refused, ok, models)
    })
    .await
    .unwrap();
    let (refused, ok, models) = results;
    let expect = [
        ("unsupported_parameter", "tools"),
        ("unsupported_parameter", "response_format"),
        ("unsupported_parameter", "`n`"),
        ("invalid_request", "unknown field `bogus`"),
        ("invalid_request", "last message"),
        ("unsupported_parameter", "image_url"),
    ];
    for ((st, v), (code, names)) in refused.iter().zip(expect) {
        assert_eq!(*st, 400, "{v}");
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(names),
            "{v}"
        );
    }
    // Nothing refused reached the model; the accepted request did, once.
    assert_eq!(llm.requests().len(), 1);
    assert_eq!(ok.0, 200, "{}", ok.1);
    let usage = &ok.1["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(
            usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
        )
    );
    assert_eq!(models.0, 200, "{}", models.1);
    assert_eq!(models.1["object"], "list");
    assert_eq!(models.1["data"][0]["id"], "main");
    assert_eq!(term(&mut child), Some(0));
}

/// The Python interpreter with the `openai` package (`.ci/run` makes one); outside CI a missing
/// one skips with a message, under `CI=true` it fails.
fn python_with_openai() -> Option<String> {
    let python = std::env::var("PINCER_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&python)
        .args(["-c", "import openai"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(python);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "the `openai` Python package is required under CI (.ci/run installs it; PINCER_TEST_PYTHON names the interpreter)"
    );
    eprintln!("SKIP openai SDK test (no `openai` Python package; not CI)");
    None
}

/// The official SDK, used as its README says: list models, a whole answer with usage, and a
/// streamed one that arrives in pieces as the model writes, ending with usage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_python_sdk_works() {
    let Some(python) = python_with_openai() else {
        return;
    };
    let (_llm, home, [a, _]) = openai_home(pincer_testkit::Reply::Drip {
        delay_ms: 100,
        reply: Box::new(pincer_testkit::Reply::text("one two three four")),
    })
    .await;
    let path = home.path();
    let (mut child, addr) = tokio::task::spawn_blocking(move || serve_at(&path, &[]))
        .await
        .unwrap();
    let script = r#"
import json, os
from openai import OpenAI
client = OpenAI(base_url=os.environ["BASE"], api_key=os.environ["KEY"])
out = {}
out["models"] = [m.id for m in client.models.list()]
r = client.chat.completions.create(model="main", messages=[{"role": "user", "content": "hi"}])
out["whole"] = r.choices[0].message.content
out["whole_usage"] = r.usage.total_tokens
pieces, usage = [], None
for chunk in client.chat.completions.create(model="main", stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "hi again"}]):
    if chunk.usage:
        usage = chunk.usage.total_tokens
    for c in chunk.choices:
        if c.delta.content:
            pieces.append(c.delta.content)
out["pieces"] = pieces
out["stream_usage"] = usage
try:
    client.chat.completions.create(model="main", messages=[{"role": "user", "content": "x"}],
        tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}])
    out["tools"] = "accepted"
except Exception as e:
    out["tools"] = type(e).__name__ + ": " + str(e)
print(json.dumps(out))
"#;
    let out = tokio::process::Command::new(&python)
        .args(["-c", script])
        .env("BASE", format!("http://{addr}/v1"))
        .env("KEY", &a)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["models"], serde_json::json!(["main"]), "{v}");
    assert_eq!(v["whole"], "one two three four", "{v}");
    assert!(v["whole_usage"].as_u64().unwrap() > 0, "{v}");
    let pieces: Vec<&str> = v["pieces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(pieces.concat(), "one two three four", "{v}");
    assert!(
        pieces.len() >= 2,
        "streamed as the model wrote, not in one piece: {v}"
    );
    assert!(v["stream_usage"].as_u64().unwrap() > 0, "{v}");
    let tools = v["tools"].as_str().unwrap();
    assert!(
        tools.starts_with("BadRequestError") && tools.contains("tools"),
        "{tools}"
    );
    assert_eq!(term(&mut child), Some(0));
}

/// The served OpenAPI document is valid OpenAPI 3.1 (every path parameter declared, every
/// `$ref` resolving), checked with `openapi-spec-validator` as API tools and client generators
/// would (issue 23). Under `CI=true` a missing validator fails the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_valid() {
    let python = std::env::var("PINCER_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let have = std::process::Command::new(&python)
        .args(["-c", "import openapi_spec_validator"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "openapi-spec-validator is required under CI (.ci/run installs it)"
        );
        eprintln!("SKIP (no openapi-spec-validator; not CI)");
        return;
    }
    let (_llm, home, [a, _]) = openai_home(pincer_testkit::Reply::text("x")).await;
    let path = home.path();
    let (mut child, addr) = tokio::task::spawn_blocking(move || serve_at(&path, &[]))
        .await
        .unwrap();
    let doc = tokio::task::spawn_blocking(move || {
        super::serve::request(&addr, "GET", "/openapi.json", &a, None)
    })
    .await
    .unwrap();
    assert_eq!(doc.0, 200, "{}", doc.1);
    let file = home.path().join("openapi.json");
    std::fs::write(&file, doc.1.to_string()).unwrap();
    let out = std::process::Command::new(&python)
        .args([
            "-c",
            "import json, sys; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1]))); print('valid')",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every path parameter is declared on its operation.
    for (p, ops) in doc.1["paths"].as_object().unwrap() {
        let names: Vec<&str> = p
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for (m, op) in ops.as_object().unwrap() {
            for n in &names {
                assert!(
                    op["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|x| x["name"] == *n && x["in"] == "path"),
                    "{m} {p}: path parameter {n} not declared"
                );
            }
        }
    }
    assert!(
        !doc.1.to_string().contains("#/$defs/"),
        "every $ref resolves in components"
    );
    assert_eq!(term(&mut child), Some(0));
}

/// The API keeps its contract under generated requests (issue 23, part 8): schemathesis
/// (PyPI, pinned by `.ci/run`) drives every operation of the served document with an admin
/// token — a bounded, seeded run — and checks that nothing answers 5xx, that every response
/// matches its documented schema and that every status code is documented. The emergency
/// operations are left out (rotating credentials revokes the token the run uses, and pausing
/// changes what every later request may do), and so is `GET /v1/events`, an endless
/// server-sent-event stream a request/response checker can only time out on (its events are
/// tested in `serve.rs`). Under `CI=true` a missing schemathesis fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_find_no_server_error_and_no_contract_violation() {
    let python = std::env::var("PINCER_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let st = std::path::Path::new(&python).with_file_name("schemathesis");
    if !st.exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "schemathesis is required under CI (.ci/run installs it next to {python})"
        );
        eprintln!("SKIP (no schemathesis next to {python}; not CI)");
        return;
    }
    let llm = pincer_testkit::FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    let out = home
        .run(
            &[
                "tokens", "create", "--name", "contract", "--scopes", "admin",
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let token = stdout(&out).trim().to_owned();
    let path = home.path();
    let (mut child, addr) = tokio::task::spawn_blocking(move || serve_at(&path, &[]))
        .await
        .unwrap();
    // schemathesis keeps a cache in its working directory: the home's, not the source tree.
    let cwd = home.path();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&st)
            .current_dir(cwd)
            .args(["run", &format!("http://{addr}/openapi.json")])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .args([
                "--checks",
                "not_a_server_error,response_schema_conformance,status_code_conformance",
            ])
            .args(["--max-examples", "10", "--seed", "23"])
            .args(["--exclude-path-regex", "emergency|^/v1/events$"])
            .args(["--request-timeout", "30"])
            .env("NO_COLOR", "1")
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("passed"), "{report}");
    assert_eq!(term(&mut child), Some(0));
}
