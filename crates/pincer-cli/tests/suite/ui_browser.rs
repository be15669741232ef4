//! The web admin page in a real headless Chromium (issue 21), driven over W3C WebDriver by
//! Debian's `chromedriver` — plain HTTP and JSON, so no WebDriver crate. Under `CI=true` a
//! missing `chromedriver` fails the test. With `PINCER_UI_SCREENSHOTS=<dir>` the main pages are
//! saved there as PNGs (how `docs/ui-*.png` are made).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use pincer_testkit::{FakeLlm, Reply, ScriptedCall};
use serde_json::{Value, json};

use super::common::*;

struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // End the WebDriver session first: chromedriver then closes Chromium. Killing only
        // chromedriver left the browser running after the test (orphaned to init).
        if let Some(rest) = self.base.strip_prefix("http://")
            && let Some((host, path)) = rest.split_once('/')
            && path.starts_with("session/")
            && let Ok(mut s) = std::net::TcpStream::connect(host)
        {
            use std::io::{Read as _, Write as _};
            let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(10)));
            let _ = write!(
                s,
                "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            );
            let _ = s.read_to_end(&mut Vec::new());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Driver {
    /// Starts chromedriver and a headless Chromium session; `None` outside CI without them.
    async fn start() -> Option<Self> {
        let chromedriver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(chromedriver) = chromedriver else {
            assert!(
                !in_ci(),
                "chromedriver is missing (.ci/run installs chromium-driver)"
            );
            eprintln!("skipping: chromedriver is not installed");
            return None;
        };
        let mut child = Command::new(chromedriver)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Both outputs are drained for the driver's whole life (a closed pipe would kill it on
        // its next log line); the port arrives on a channel, and what it said is kept for the
        // failure message.
        let (tx, rx) = std::sync::mpsc::channel::<Result<String, String>>();
        let said = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let (tx, said) = (tx.clone(), said.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(p) = line
                        .trim_end_matches('.')
                        .rsplit_once("started successfully on port ")
                    {
                        let _ = tx.send(Ok(p.1.trim().to_owned()));
                    }
                    said.lock().unwrap().push(line);
                }
                let _ = tx.send(Err("output closed".into()));
            });
        }
        drop(tx);
        let mut port = None;
        for _ in 0..2 {
            match rx.recv_timeout(std::time::Duration::from_secs(60)) {
                Ok(Ok(p)) => {
                    port = Some(p);
                    break;
                }
                Ok(Err(_)) => continue,
                Err(_) => break,
            }
        }
        let port = port.unwrap_or_else(|| {
            panic!(
                "chromedriver did not say its port (exit: {:?}); it said: {:?}",
                child.try_wait(),
                said.lock().unwrap()
            )
        });
        let base = format!("http://127.0.0.1:{port}");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let profile = tempfile::tempdir().unwrap();
        let mut d = Self {
            child,
            base,
            http: reqwest::Client::new(),
            _profile: profile,
        };
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,900",
                     // DNS rebinding, staged: an attacker's name that resolves to loopback.
                     "--host-resolver-rules=MAP rebind.attacker.test 127.0.0.1",
                     format!("--user-data-dir={}", d._profile.path().display())]}}}});
        let v = d.raw("POST", "/session", Some(caps)).await;
        let id = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("{v}"));
        d.base = format!("{}/session/{id}", d.base);
        // Element lookups wait up to 30 s for what they look for (pages refresh themselves).
        d.cmd("POST", "/timeouts", Some(json!({"implicit": 30_000})))
            .await;
        Some(d)
    }

    async fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let r = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        let r = match body {
            Some(b) => r.json(&b),
            None => r,
        };
        r.send().await.unwrap().json().await.unwrap()
    }

    async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let v = self.raw(method, path, body).await;
        assert!(v["value"]["error"].is_null(), "{method} {path}: {v}");
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({"url": url}))).await;
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("{css}: {v}"))
            .to_owned()
    }

    async fn click(&self, css: &str) {
        let el = self.find(css).await;
        self.cmd("POST", &format!("/element/{el}/click"), Some(json!({})))
            .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.cmd(
            "POST",
            &format!("/element/{el}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn source(&self) -> String {
        self.cmd("GET", "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn screenshot(&self, name: &str) {
        let png = self.cmd("GET", "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        assert!(bytes.starts_with(b"\x89PNG"));
        if let Ok(dir) = std::env::var("PINCER_UI_SCREENSHOTS") {
            std::fs::write(
                std::path::Path::new(&dir).join(format!("ui-{name}.png")),
                bytes,
            )
            .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_signs_in_approves_a_parked_action_and_pauses_everything_in_chromium() {
    let Some(d) = Driver::start().await else {
        return;
    };
    let llm = FakeLlm::start(vec![
        Reply::ToolCalls {
            calls: vec![ScriptedCall {
                name: "fs_write".into(),
                arguments: json!({"path": "notes.txt", "content": "approved in the browser"}),
            }],
            text: String::new(),
        },
        Reply::text("notes <em>updated</em>"),
    ])
    .await
    .unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    let notes = home.path().join("workspaces/main/notes.txt");
    std::fs::write(&notes, "old").unwrap();
    let out = home
        .run(
            &["tokens", "create", "--name", "adm", "--scopes", "admin"],
            "",
        )
        .await;
    let token = stdout(&out).trim().to_owned();
    let out = home
        .run(&["users", "add", "ann", "--role", "member"], "")
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = home
        .run(
            &[
                "tokens",
                "create",
                "--name",
                "ann",
                "--user",
                "ann",
                "--scopes",
                "tasks:read",
            ],
            "",
        )
        .await;
    let member = stdout(&out).trim().to_owned();
    let (mut child, addr) = serve_at(&home.path(), &[]);
    let ui = format!("http://{addr}/ui");
    // Sign in through the form.
    d.goto(&format!("{ui}/login")).await;
    d.type_into("#token", &token).await;
    d.click("button[type=submit]").await;
    d.find("nav .who").await;
    assert!(d.source().await.contains("Dashboard"));
    // The dashboard is open when a task is submitted and parks on an approval: it appears there
    // by itself (live.js over /ui/events; without script the page would reload instead).
    d.goto(&ui).await;
    d.find("section.cards").await;
    let (a, t) = (addr.clone(), token.clone());
    let id = tokio::task::spawn_blocking(move || {
        let (_, v) = super::serve::request(
            &a,
            "POST",
            "/v1/tasks",
            &t,
            Some(r#"{"agent": "main", "message": "update the notes"}"#),
        );
        let id = v["task"]["id"].as_str().unwrap().to_owned();
        super::serve::request(&a, "GET", &format!("/v1/tasks/{id}?wait_secs=30"), &t, None);
        id
    })
    .await
    .unwrap();
    d.find(&format!("main a[href='/ui/tasks/{id}']")).await;
    d.screenshot("dashboard").await;
    d.goto(&format!("{ui}/approvals")).await;
    d.find("button[value=approve]").await;
    assert!(d.source().await.contains("fs.write"));
    d.screenshot("approvals").await;
    d.click("button[value=approve]").await;
    // The decision's redirect has landed (leaving sooner could abort the form's POST).
    d.find("main p.empty").await;
    // The task resumes and ends; its page (refreshing itself) shows it, the answer as text.
    d.goto(&format!("{ui}/tasks/{id}")).await;
    d.find("span.status.SUCCEEDED").await;
    let page = d.source().await;
    assert!(
        page.contains("notes &lt;em&gt;updated&lt;/em&gt;"),
        "{page}"
    );
    d.screenshot("task").await;
    assert_eq!(
        std::fs::read_to_string(&notes).unwrap(),
        "approved in the browser"
    );
    // The audit log shows the decision.
    d.goto(&format!("{ui}/audit?type=approval.")).await;
    d.find("table").await;
    assert!(d.source().await.contains("approval.decided"));
    d.screenshot("audit").await;
    // Chat: the answer appears without reloading by hand (live.js over /ui/events).
    // The model writes slowly, a word a second: the first words show in the pending answer
    // (streamed into it over /ui/events) before the answer is done.
    llm.push(Reply::Drip {
        delay_ms: 1000,
        reply: Box::new(Reply::text("streamed into the page word by word")),
    });
    d.goto(&format!("{ui}/chat")).await;
    d.type_into("#message", "hello from the browser").await;
    d.click("form[method=post][action='/ui/chat'] button").await;
    let partial = d
        .find("ol.chat li.agent.pending pre[data-stream]:not(:empty)")
        .await;
    let shown = d
        .cmd("GET", &format!("/element/{partial}/text"), None)
        .await;
    let shown = shown.as_str().unwrap_or_default().to_owned();
    assert!(
        !shown.trim().is_empty() && "streamed into the page word by word".contains(shown.trim()),
        "{shown:?}"
    );
    d.find("ol.chat li.agent:not(.pending) pre").await;
    let page = d.source().await;
    assert!(
        page.contains("hello from the browser")
            && page.contains("streamed into the page word by word"),
        "{page}"
    );
    d.screenshot("chat").await;
    // Pause mutating actions, confirming first.
    d.goto(&format!("{ui}/emergency")).await;
    d.click("form.emergency input[name=confirm]").await;
    d.click("form.emergency button").await;
    d.find("p.banner").await;
    assert!(d.source().await.contains("pause-mutating done"));
    d.screenshot("emergency").await;
    // Another site cannot frame the page: the frame stays empty.
    d.goto(&format!(
        "data:text/html,<iframe id=f src='{ui}/login'></iframe>"
    ))
    .await;
    let frame = d.find("#f").await;
    d.cmd("POST", "/frame", Some(json!({"id": {ELEMENT: frame}})))
        .await;
    assert!(
        !d.source().await.contains("API token"),
        "the page was framed"
    );
    d.cmd("POST", "/frame", Some(json!({"id": null}))).await;
    // DNS rebinding: a page on the attacker's name, now resolving to loopback, reaches the
    // server, but its Host is not one the server answers to; nothing of the page is served.
    let port = addr.rsplit(':').next().unwrap();
    d.goto(&format!("http://rebind.attacker.test:{port}/ui/login"))
        .await;
    d.find("pre").await;
    let page = d.source().await;
    assert!(page.contains("host_not_allowed"), "{page}");
    assert!(!page.contains("API token"), "{page}");
    // Another site's form posting to the page — even with a stolen form token — is refused: the
    // pause stays (checked at the end).
    d.goto(&format!("{ui}/emergency")).await;
    let page = d.source().await;
    let at = page.find(r#"name="csrf" value=""#).unwrap() + r#"name="csrf" value=""#.len();
    let csrf = &page[at..at + page[at..].find('"').unwrap()];
    d.goto(&format!(
        "data:text/html,<form id=x method=post action='{ui}/emergency'>\
         <input name=control value=resume><input name=confirm value=yes>\
         <input name=csrf value={csrf}></form><script>document.getElementById('x').submit()</script>"
    ))
    .await;
    d.find("pre").await;
    assert!(
        d.source().await.contains("origin_not_allowed"),
        "{}",
        d.source().await
    );
    // A member, signed in through the same form, reaches no admin page.
    d.goto(&format!("{ui}/login")).await;
    d.type_into("#token", &member).await;
    d.click("button[type=submit]").await;
    d.find("nav .who").await;
    assert!(
        !d.source().await.contains("/ui/emergency"),
        "admin links shown to a member"
    );
    for path in ["emergency", "users", "audit", "channels"] {
        d.goto(&format!("{ui}/{path}")).await;
        d.find("p.error").await;
        assert!(d.source().await.contains("403"), "{path}");
    }
    assert_eq!(term(&mut child), Some(0));
    let out = home.run(&["emergency", "status", "--json"], "").await;
    let state: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(state["paused"]["by"], "user:owner", "{state}");
}
