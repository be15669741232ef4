//! The managed browser end to end (issue 18 part 4): a scripted model drives the real Chromium
//! through `pincer ask` — a form filled and submitted, the answer read back, a screenshot saved
//! in the run bundle — with the browser inside Pincer's sandbox and its network through the
//! egress proxy to the one loopback server the operator named. Off unless enabled and granted;
//! unavailable (and said) without a sandbox. Under CI a missing Chromium fails the test.

use pincer_testkit::{FakeLlm, FakeWeb, Reply, ScriptedCall};
use serde_json::{Value, json};

use super::common::*;

fn chromium_installed() -> bool {
    let found = ["/usr/lib/chromium/chromium", "/usr/bin/chromium"]
        .iter()
        .any(|p| std::path::Path::new(p).is_file());
    assert!(
        found || !in_ci(),
        "chromium is required under CI (see .ci/run)"
    );
    if !found {
        eprintln!("SKIP (not CI): chromium is not installed");
    }
    found
}

fn call(name: &str, arguments: Value) -> Reply {
    Reply::ToolCalls {
        calls: vec![ScriptedCall {
            name: name.into(),
            arguments,
        }],
        text: String::new(),
    }
}

async fn browser_home(web: &FakeWeb, llm: &FakeLlm) -> Home {
    let home = Home::new();
    home.init(&llm.base_url()).await;
    allow_loopback(&home, web.port()).await;
    set(&home, "agents.main.allow", "[\"group:browser\"]").await;
    set(&home, "agents.main.approval_mode", "trusted").await;
    home
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_fills_in_a_form_in_the_confined_browser() {
    if !chromium_installed() {
        return;
    }
    let web = FakeWeb::start("k").await.unwrap();
    let other = FakeWeb::start("k").await.unwrap();
    let base = web.base_url();
    let llm = FakeLlm::start(vec![
        call(
            "browser_navigate",
            json!({"url": format!("{base}/app/form")}),
        ),
        call("browser_snapshot", json!({})),
        call(
            "browser_type",
            json!({"ref": "e1", "text": "Ada", "submit": true}),
        ),
        call("browser_snapshot", json!({})),
        call("browser_screenshot", json!({})),
        call(
            "browser_navigate",
            json!({"url": format!("{}/app/form", other.base_url())}),
        ),
        call("browser_close", json!({})),
        Reply::text("done"),
    ])
    .await
    .unwrap();
    let home = browser_home(&web, &llm).await;
    set(&home, "web.browser.enabled", "true").await;
    let out = home.run(&["ask", "sign me up as Ada"], "").await;
    assert_eq!(stdout(&out), "done\n", "{}", stderr(&out));
    let offered = offered(&llm.requests()[0].body);
    for t in [
        "browser_navigate",
        "browser_snapshot",
        "browser_click",
        "browser_type",
    ] {
        assert!(offered.contains(&t.to_owned()), "{offered:?}");
    }
    let r = tool_results(&llm, None);
    assert_eq!(r.len(), 7, "{r:#?}");
    assert!(r[0].contains("Sign up"), "{}", r[0]);
    assert!(r[1].contains(r#"[e1] textbox \"Your name\""#), "{}", r[1]);
    assert!(r[1].contains("trust=\"untrusted\""), "{}", r[1]);
    assert!(r[2].contains("\"navigated\":true"), "{}", r[2]);
    assert!(r[3].contains("Thanks, Ada!"), "{}", r[3]);
    // The screenshot is a PNG in this run's bundle.
    let path = r[4]
        .split("\"path\":\"")
        .nth(1)
        .and_then(|s| s.split("\"").next())
        .unwrap_or_else(|| panic!("no path in {}", r[4]));
    assert!(
        path.contains("/runs/") && path.ends_with("screenshot-1.png"),
        "{path}"
    );
    assert!(std::fs::read(path).unwrap().starts_with(b"\x89PNG"));
    // A loopback server nobody named: refused before the browser is asked.
    assert!(r[5].contains("not allowed"), "{}", r[5]);
    assert!(r[6].contains("\"closed\":true"), "{}", r[6]);
    // Every page load went through the egress proxy, audited with the agent's name.
    let tunnels = audit_of_type(&home, "egress.tunnel").await;
    assert!(
        tunnels
            .iter()
            .any(|t| t["agent"] == "main" && t["port"] == web.port()),
        "{tunnels:?}"
    );
    assert!(
        tunnels.iter().all(|t| t["port"] == web.port()),
        "{tunnels:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_is_off_unless_enabled_and_never_unconfined() {
    let web = FakeWeb::start("k").await.unwrap();
    let llm = FakeLlm::start(vec![Reply::text("ok"), Reply::text("ok")])
        .await
        .unwrap();
    let home = browser_home(&web, &llm).await;
    // Granted but not enabled: not offered.
    let out = home.run(&["ask", "hi"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let offered = llm.requests()[0].body["tools"].to_string();
    assert!(!offered.contains("browser_"), "{offered}");
    // Enabled with no sandbox: unavailable, said and audited.
    set(&home, "web.browser.enabled", "true").await;
    set(&home, "security.sandbox", "none").await;
    let out = home.run(&["ask", "hi"], "").await;
    assert!(
        stderr(&out).contains("the browser tools are unavailable"),
        "{}",
        stderr(&out)
    );
    let offered = llm.requests()[1].body["tools"].to_string();
    assert!(!offered.contains("browser_"), "{offered}");
    let events = audit_of_type(&home, "browser.unavailable").await;
    assert!(
        events[0]["reason"].as_str().unwrap().contains("sandbox"),
        "{events:?}"
    );
}
