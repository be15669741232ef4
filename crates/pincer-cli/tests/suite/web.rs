//! The web tools end to end (issue 18): `http.fetch` and `web.search` through the real binary
//! against a loopback web server, reached only because the operator named its address in
//! `security.egress_allow_private` — no test-only bypass in the binary. The SSRF suite tries each
//! trick for real and checks it was refused or capped, and audited.

use pincer_testkit::{FakeLlm, FakeWeb, Reply, ScriptedCall};
use serde_json::{Value, json};

use super::common::*;

const BRAVE_KEY: &str = "BSA-test-key-7f3a9c1e5d";

/// A home with the network on, the fake web server's address named, and the web tools granted.
async fn web_home(web: &FakeWeb, llm: &FakeLlm) -> Home {
    let home = Home::new();
    home.init(&llm.base_url()).await;
    allow_loopback(&home, web.port()).await;
    set(&home, "security.egress_allow", "[\"localhost\"]").await;
    set(&home, "web.fetch_timeout_secs", "2").await;
    set(&home, "web.fetch_max_bytes", "1048576").await;
    set(&home, "agents.main.allow", "[\"group:web\"]").await;
    home
}

/// `pincer tools call TOOL --args ARGS [--approve]`: (exit code, JSON result or error text).
async fn call(home: &Home, tool: &str, args: Value, approve: bool) -> (i32, Value, String) {
    let args = args.to_string();
    let mut argv = vec!["tools", "call", tool, "--args", &args];
    if approve {
        argv.push("--approve");
    }
    let out = home.run(&argv, "").await;
    let v = serde_json::from_str(&stdout(&out)).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), v, stderr(&out))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_fetch_reads_pages_as_markdown_and_describes_binaries() {
    let web = FakeWeb::start(BRAVE_KEY).await.unwrap();
    let llm = FakeLlm::start(vec![]).await.unwrap();
    let home = web_home(&web, &llm).await;
    let base = web.base_url();
    let (code, v, err) = call(
        &home,
        "http.fetch",
        json!({"url": format!("{base}/article")}),
        false,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["status"], 200);
    assert_eq!(v["as"], "markdown");
    assert_eq!(v["title"], "Backups guide");
    let text = v["content"].as_str().unwrap();
    assert!(text.contains("**three**"), "{text}");
    assert!(
        text.contains(&format!("[off site]({base}/offsite)")),
        "{text}"
    );
    assert!(text.contains("- Daily: snapshots"), "{text}");
    for gone in ["tracking", "About us", "Copyright", "color: red"] {
        assert!(!text.contains(gone), "{gone}: {text}");
    }
    let (_, v, _) = call(
        &home,
        "http.fetch",
        json!({"url": format!("{base}/list")}),
        false,
    )
    .await;
    assert!(v["content"].as_str().unwrap().contains("beta"), "{v}");
    let (_, v, _) = call(
        &home,
        "http.fetch",
        json!({"url": format!("{base}/json")}),
        false,
    )
    .await;
    assert_eq!(
        (v["as"].as_str(), v["content"].as_str()),
        (Some("text"), Some(r#"{"ok":true,"n":3}"#))
    );
    let (_, v, _) = call(
        &home,
        "http.fetch",
        json!({"url": format!("{base}/doc.pdf")}),
        false,
    )
    .await;
    assert_eq!(v["as"], "binary");
    assert!(
        v["content"]
            .as_str()
            .unwrap()
            .starts_with("[application/pdf content"),
        "{v}"
    );
    let (_, v, _) = call(
        &home,
        "http.fetch",
        json!({"url": format!("{base}/latin1")}),
        false,
    )
    .await;
    // Latin-1, as its Content-Type says.
    assert_eq!(v["content"], "caf\u{e9} cr\u{e8}me");
    // Each request is audited with host, status and bytes — never the path or query.
    let reqs = audit_of_type(&home, "egress.request").await;
    assert_eq!(reqs.len(), 5, "{reqs:?}");
    assert_eq!(reqs[0]["host"], "127.0.0.1");
    assert_eq!(reqs[0]["status"], 200);
    assert!(reqs[0]["bytes"].as_u64().unwrap() > 500);
    assert!(!reqs.iter().any(|r| r.to_string().contains("/article")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ssrf_suite_is_refused_capped_and_audited() {
    let web = FakeWeb::start(BRAVE_KEY).await.unwrap();
    let other = FakeWeb::start(BRAVE_KEY).await.unwrap();
    let llm = FakeLlm::start(vec![]).await.unwrap();
    let home = web_home(&web, &llm).await;
    let base = web.base_url();
    let (port, other_port) = (web.port(), other.port());
    let refused = [
        // A redirect to the cloud metadata address, and to a loopback port nobody named.
        format!("{base}/redirect?to=http://169.254.169.254/latest/meta-data/"),
        format!("{base}/redirect?to=http://127.0.0.1:{other_port}/article"),
        // A listed name that resolves to loopback.
        format!("http://localhost:{port}/article"),
        // IPv6-mapped IPv4, decimal, octal and hex spellings of private addresses.
        format!("http://[::ffff:127.0.0.1]:{port}/article"),
        "http://[::ffff:10.0.0.1]/".to_owned(),
        format!("http://2130706433:{other_port}/"),
        format!("http://0177.0.0.1:{other_port}/"),
        format!("http://0x7f.1:{other_port}/"),
        // User-info tricks.
        format!("http://127.0.0.1:{port}@evil.example/"),
        format!("http://evil.example@127.0.0.1:{other_port}/"),
        // Not http(s).
        "file:///etc/passwd".to_owned(),
    ];
    for url in &refused {
        let (code, v, err) = call(&home, "http.fetch", json!({"url": url}), true).await;
        assert_eq!(code, 3, "{url} was not refused: {v} {err}");
        assert!(err.contains("denied by policy"), "{url}: {err}");
    }
    // The redirect targets were refused when the redirect was followed, and audited.
    let refusals = audit_of_type(&home, "egress.refused").await;
    assert!(
        refusals.iter().any(|r| r["host"] == "169.254.169.254"),
        "{refusals:?}"
    );
    assert!(
        refusals.iter().any(|r| r["reason"]
            .as_str()
            .unwrap()
            .contains("resolves to 127.0.0.1")),
        "{refusals:?}"
    );
    // A body that drips forever stops at the time cap.
    let (code, _, err) = call(
        &home,
        "http.fetch",
        json!({"url": format!("{base}/drip")}),
        false,
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("timed out after 2s"), "{err}");
    assert_eq!(audit_of_type(&home, "egress.timeout").await.len(), 1);
    // 5 GB stop at the byte cap.
    let (code, v, err) = call(
        &home,
        "http.fetch",
        json!({"url": format!("{base}/huge")}),
        false,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["truncated"], true);
    assert_eq!(v["bytes"], 1_048_576);
    let last = audit_of_type(&home, "egress.request")
        .await
        .into_iter()
        .last()
        .unwrap();
    assert_eq!(
        (last["bytes"].as_u64(), last["truncated"].as_bool()),
        (Some(1_048_576), Some(true))
    );
    // Credentials and hop-by-hop headers cannot be set; POST needs approval.
    let (code, _, err) = call(&home, "http.fetch", json!({"url": format!("{base}/echo"), "method": "POST", "body": "x", "headers": {"Authorization": "Bearer t"}}), true).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot be set"), "{err}");
    let post = json!({"url": format!("{base}/echo"), "method": "POST", "body": "hello", "headers": {"X-Trace": "1"}});
    let (code, _, err) = call(&home, "http.fetch", post.clone(), false).await;
    assert_eq!(code, 4, "a POST without approval: {err}");
    let (code, v, err) = call(&home, "http.fetch", post, true).await;
    assert_eq!(code, 0, "{err}");
    let echoed: Value = serde_json::from_str(v["content"].as_str().unwrap()).unwrap();
    assert_eq!(echoed["body"], "hello");
    assert!(
        echoed["headers"]
            .as_array()
            .unwrap()
            .contains(&json!("x-trace"))
    );
    // With the network off the tools are not there at all.
    set(&home, "security.network", "off").await;
    let (code, _, err) = call(
        &home,
        "http.fetch",
        json!({"url": format!("{base}/article")}),
        true,
    )
    .await;
    assert_ne!(code, 0, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_search_through_searxng_and_brave() {
    let web = FakeWeb::start(BRAVE_KEY).await.unwrap();
    let llm = FakeLlm::start(vec![]).await.unwrap();
    let home = web_home(&web, &llm).await;
    let base = web.base_url();
    set(
        &home,
        "web.search",
        &format!("{{ backend = \"searxng\", url = \"{base}\", max_results = 5 }}"),
    )
    .await;
    let (code, v, err) = call(&home, "web.search", json!({"query": "rust book"}), false).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["results"][1]["title"], "The Rust Book");
    assert_eq!(v["results"][1]["url"], "https://doc.rust-lang.org/book/");
    assert_eq!(
        v["results"][0]["snippet"],
        "A language empowering everyone."
    );
    set(
        &home,
        "web.search",
        &format!(
            "{{ backend = \"brave\", url = \"{base}\", api_key_env = \"PINCER_TEST_BRAVE\" }}"
        ),
    )
    .await;
    // Without the key's variable: a clear error naming it.
    let (code, _, err) = call(&home, "web.search", json!({"query": "x"}), false).await;
    assert_ne!(code, 0);
    assert!(err.contains("PINCER_TEST_BRAVE"), "{err}");
    let out = home.run(&["doctor", "--offline", "--json"], "").await;
    let checks: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let find = |id: &str| {
        checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
    };
    assert_eq!(find("web.search").unwrap()["status"], "fail", "{checks}");
    assert_eq!(find("web").unwrap()["status"], "ok", "{checks}");
    let out = home
        .run_with_env(
            &[
                "tools",
                "call",
                "web.search",
                "--args",
                r#"{"query": "pincer", "count": 1}"#,
            ],
            &[("PINCER_TEST_BRAVE", BRAVE_KEY)],
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
    assert_eq!(v["results"][0]["url"], "https://one.example/");
    assert_eq!(web.hits(), ["searxng:rust book", "brave:pincer"]);
    // The key went to the server and nowhere else.
    assert!(
        !all_bytes(&home.path())
            .windows(BRAVE_KEY.len())
            .any(|w| w == BRAVE_KEY.as_bytes())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_reads_a_page_as_untrusted_content() {
    let web = FakeWeb::start(BRAVE_KEY).await.unwrap();
    let llm = FakeLlm::start(vec![
        Reply::ToolCalls {
            calls: vec![ScriptedCall {
                name: "http_fetch".into(),
                arguments: json!({"url": format!("{}/article", web.base_url())}),
            }],
            text: String::new(),
        },
        Reply::text("read it"),
    ])
    .await
    .unwrap();
    let home = web_home(&web, &llm).await;
    let out = home.run(&["ask", "read the backups guide"], "").await;
    assert_eq!(stdout(&out), "read it\n", "{}", stderr(&out));
    let offered = offered(&llm.requests()[0].body);
    assert!(offered.contains(&"http_fetch".to_owned()), "{offered:?}");
    let tool_msg = llm.requests()[1].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "tool")
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(tool_msg.contains("trust=\"untrusted\""), "{tool_msg}");
    assert!(tool_msg.contains("three"), "{tool_msg}");
}
