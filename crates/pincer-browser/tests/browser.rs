#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real browser (Debian's Chromium) in the real sandbox (both providers), its network
//! through the real egress proxy to a real loopback web server (testkit's `FakeWeb`, named in
//! the private allowance): a form, a link and a JavaScript-rendered list. Under CI a missing
//! Chromium or bwrap fails the tests (`.ci/run` installs both).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pincer_browser::{Browser, BrowserError, BrowserSettings};
use pincer_config::NetworkMode;
use pincer_sandbox::{Bwrap, Native, Sandbox};
use pincer_testkit::FakeWeb;
use pincer_web::egress::{Egress, EgressSettings};
use pincer_web::proxy::EgressProxy;

const HELPER: &str = env!("CARGO_BIN_EXE_pincer-browser-helper");

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The Chromium binary, or `None` (a failure under CI).
pub fn chromium() -> Option<PathBuf> {
    let p = pincer_browser::tools::find_chromium(None);
    assert!(
        p.is_some() || !in_ci(),
        "chromium is required under CI (see .ci/run)"
    );
    if p.is_none() {
        eprintln!("SKIP (not CI): chromium is not installed");
    }
    p
}

fn sandboxes() -> Vec<(&'static str, Arc<dyn Sandbox>)> {
    let mut v: Vec<(&'static str, Arc<dyn Sandbox>)> =
        vec![("native", Arc::new(Native::new(HELPER)))];
    match std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("bwrap"))
        .find(|p| p.is_file())
    {
        Some(b) => v.push(("bwrap", Arc::new(Bwrap::new(b, HELPER)))),
        None => assert!(!in_ci(), "bwrap is required under CI"),
    }
    v
}

fn settings(exe: PathBuf) -> Arc<BrowserSettings> {
    Arc::new(BrowserSettings {
        executable: exe,
        timeout: Duration::from_secs(30),
        max_text: 32 * 1024,
        limits: pincer_browser::tools::browser_limits(),
    })
}

fn proxy(web: &FakeWeb) -> (Arc<Egress>, EgressProxy) {
    let egress = Arc::new(Egress::new(
        EgressSettings {
            network: NetworkMode::Allowlist,
            allow: vec![],
            allow_private: vec![format!("127.0.0.1:{}", web.port())],
            max_bytes: 1 << 20,
            timeout: Duration::from_secs(10),
            max_redirects: 5,
        },
        None,
    ));
    (egress.clone(), EgressProxy::new(egress))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_a_link_and_a_rendered_list_in_a_confined_browser() {
    let Some(exe) = chromium() else { return };
    let web = FakeWeb::start("k").await.unwrap();
    let other = FakeWeb::start("k").await.unwrap();
    let (_egress, proxy) = proxy(&web);
    let base = web.base_url();
    for (name, sb) in sandboxes() {
        let mut b = Browser::launch(&*sb, &proxy, settings(exe.clone()))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));

        // A JavaScript-rendered list: the snapshot shows what the script made.
        let v = b.navigate(&format!("{base}/app/js")).await.unwrap();
        assert_eq!(v["title"], "Rendered by script", "{name}: {v}");
        let s = b.snapshot().await.unwrap();
        let text = s["text"].as_str().unwrap();
        assert!(text.contains("fruit: papaya"), "{name}: {text}");

        // A link, clicked by ref.
        b.navigate(&format!("{base}/app/links")).await.unwrap();
        let s = b.snapshot().await.unwrap();
        let elements = s["elements"].as_str().unwrap().to_owned();
        assert!(
            elements.contains("[e1] link \"backups guide\""),
            "{name}: {elements}"
        );
        // The same page snapshotted again keeps its refs.
        assert_eq!(b.snapshot().await.unwrap()["elements"], elements.as_str());
        let v = b.click("e1").await.unwrap();
        assert_eq!(v["navigated"], true, "{name}: {v}");
        assert!(
            v["url"].as_str().unwrap().ends_with("/article"),
            "{name}: {v}"
        );
        assert!(matches!(
            b.click("e1").await,
            Err(BrowserError::UnknownRef(_))
        ));

        // A form: type into the field by ref, submit with Enter.
        b.navigate(&format!("{base}/app/form")).await.unwrap();
        let s = b.snapshot().await.unwrap();
        let elements = s["elements"].as_str().unwrap();
        assert!(
            elements.contains("[e1] textbox \"Your name\""),
            "{name}: {elements}"
        );
        assert!(
            elements.contains("[e2] button \"Send\""),
            "{name}: {elements}"
        );
        let v = b.type_text("e1", "Ada <Lovelace>", true).await.unwrap();
        assert_eq!(v["navigated"], true, "{name}: {v}");
        let s = b.snapshot().await.unwrap();
        // (Markdown escapes the `<`.)
        let text = s["text"].as_str().unwrap();
        assert!(
            text.contains("Thanks, Ada ") && text.contains("Lovelace>!"),
            "{name}: {s}"
        );
        // And by clicking the button.
        b.navigate(&format!("{base}/app/form")).await.unwrap();
        b.snapshot().await.unwrap();
        b.type_text("e1", "Grace", false).await.unwrap();
        let v = b.click("e2").await.unwrap();
        assert_eq!(v["title"], "Thanks", "{name}: {v}");

        // A screenshot is a PNG file.
        let dir = tempfile::tempdir().unwrap();
        let v = b.screenshot(dir.path()).await.unwrap();
        let png = std::fs::read(v["path"].as_str().unwrap()).unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000,
            "{name}"
        );
        assert!(Path::new(v["path"].as_str().unwrap()).starts_with(dir.path()));

        // Another loopback server, not named: the proxy refuses it, the page does not load.
        let e = b
            .navigate(&format!("{}/app/form", other.base_url()))
            .await
            .unwrap_err();
        assert!(matches!(e, BrowserError::Navigation(_)), "{name}: {e}");
        assert!(
            e.to_string().contains("egress policy refused"),
            "{name}: {e}"
        );

        // A page that crashes its renderer: a typed error, fatal (the tools start a new
        // browser at the next navigation), and every later call fails at once, not by timeout.
        b.crash_page().await.unwrap();
        let t = std::time::Instant::now();
        let e = b.snapshot().await.unwrap_err();
        assert!(
            matches!(e, BrowserError::PageCrashed) && e.is_fatal(),
            "{name}: {e}"
        );
        let e = b.navigate(&format!("{base}/app/links")).await.unwrap_err();
        assert!(matches!(e, BrowserError::PageCrashed), "{name}: {e}");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{name}: waited for a timeout"
        );
        b.close().await;
    }
}
