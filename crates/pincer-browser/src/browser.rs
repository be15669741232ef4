//! One headless Chromium, confined: started inside Pincer's sandbox (the same providers as
//! `shell.exec`) with network only through the egress proxy, a throwaway profile in the
//! sandbox's private `/tmp`, downloads denied, CDP over a pipe; killed with its process group
//! when dropped.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use pincer_sandbox::launch::{self, Running};
use pincer_sandbox::{ExecSpec, Limits, NetworkAccess, NetworkProxy, PROXY_ADDR, Sandbox};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;
use tokio::sync::broadcast;

use crate::cdp::{Cdp, CdpError, Event};

/// How long to look for a navigation after a click or Enter before calling it done.
const SETTLE: Duration = Duration::from_millis(400);
/// Most interactive elements listed in a snapshot.
const MAX_ELEMENTS: usize = 400;
/// Bytes of the browser's own output kept for error messages.
const LOG_TAIL: usize = 8 * 1024;
/// Accessibility roles listed as interactive.
const INTERACTIVE: &[&str] = &[
    "button",
    "link",
    "textbox",
    "searchbox",
    "checkbox",
    "radio",
    "combobox",
    "listbox",
    "option",
    "menuitem",
    "menuitemcheckbox",
    "menuitemradio",
    "tab",
    "switch",
    "slider",
    "spinbutton",
];

/// How to run the browser.
#[derive(Debug, Clone)]
pub struct BrowserSettings {
    /// The Chromium binary (Debian: `/usr/lib/chromium/chromium`).
    pub executable: PathBuf,
    /// Time for one operation (a navigation until its load event).
    pub timeout: Duration,
    /// Most characters of page text in a snapshot.
    pub max_text: usize,
    /// The sandbox's limits for the browser's processes.
    pub limits: Limits,
}

/// A browser failure, as the model is told it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrowserError {
    /// It could not be started.
    #[error("the browser could not start: {0}")]
    Launch(String),
    /// A protocol call failed.
    #[error("{0}")]
    Cdp(#[from] CdpError),
    /// The page did not load.
    #[error("navigation failed: {0}")]
    Navigation(String),
    /// The page's renderer crashed (the browser is restarted at the next navigation).
    #[error("the page crashed; the next browser.navigate starts a new browser")]
    PageCrashed,
    /// A ref not in the current page's last snapshot.
    #[error("no element {0} on this page: take a browser.snapshot and use its refs")]
    UnknownRef(String),
    /// Saving a screenshot failed.
    #[error("{0}")]
    Io(String),
}

impl BrowserError {
    /// Whether the browser itself is gone (then it is restarted on the next use).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::Cdp(CdpError::Closed) | Self::Launch(_) | Self::PageCrashed
        )
    }
}

/// Refs for the interactive elements of the current page: `e1`, `e2`, … in the order they were
/// first listed, kept for as long as the document lives (a second snapshot of the same page
/// gives the same element the same ref).
#[derive(Debug, Default)]
struct Refs {
    by_node: HashMap<i64, u32>,
    by_ref: HashMap<u32, i64>,
    next: u32,
}

impl Refs {
    fn of(&mut self, node: i64) -> u32 {
        if let Some(r) = self.by_node.get(&node) {
            return *r;
        }
        self.next += 1;
        self.by_node.insert(node, self.next);
        self.by_ref.insert(self.next, node);
        self.next
    }

    fn node(&self, r: &str) -> Result<i64, BrowserError> {
        r.strip_prefix('e')
            .and_then(|n| n.parse::<u32>().ok())
            .and_then(|n| self.by_ref.get(&n).copied())
            .ok_or_else(|| BrowserError::UnknownRef(r.to_owned()))
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

/// A running, confined browser with one page.
#[derive(Debug)]
pub struct Browser {
    cdp: Cdp,
    session: String,
    refs: Refs,
    settings: Arc<BrowserSettings>,
    log: Arc<Mutex<Vec<u8>>>,
    drains: Vec<tokio::task::JoinHandle<()>>,
    /// Sessions whose page crashed (then the browser is replaced: see `is_fatal`).
    crashed: Arc<Mutex<HashSet<String>>>,
    shots: u32,
    // Last: the process tree is killed when this drops (then the scratch directory goes).
    running: Running,
    _scratch: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        for d in &self.drains {
            d.abort();
        }
    }
}

/// Chromium's switches: headless, CDP on the pipe, every request through Pincer's proxy
/// (loopback included: `<-loopback>` removes Chromium's implicit bypass), a profile in the
/// sandbox's private `/tmp`, and nothing that phones home.
fn argv(settings: &BrowserSettings) -> Vec<String> {
    let mut v = vec![settings.executable.to_string_lossy().into_owned()];
    v.extend(
        [
            "--headless=new",
            // Chromium's own sandbox needs namespaces that Pincer's seccomp filter refuses;
            // Pincer's sandbox confines the whole browser instead.
            "--no-sandbox",
            "--remote-debugging-pipe",
            "--user-data-dir=/tmp/profile",
            "--proxy-bypass-list=<-loopback>",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-breakpad",
            "--disable-crash-reporter",
            "--disable-extensions",
            "--disable-default-apps",
            "--disable-features=Translate,MediaRouter,OptimizationHints,DialMediaRouteProvider",
            "--password-store=basic",
            "--use-mock-keychain",
            "--mute-audio",
            "--hide-scrollbars",
            "--window-size=1280,800",
        ]
        .map(str::to_owned),
    );
    v.push(format!("--proxy-server=http://{PROXY_ADDR}"));
    v.push("about:blank".into());
    v
}

impl Browser {
    /// Starts a browser in `sandbox`, its network served by `proxy`.
    ///
    /// # Errors
    /// [`BrowserError::Launch`] when the sandbox or the browser fails to start.
    pub async fn launch(
        sandbox: &dyn Sandbox,
        proxy: &dyn NetworkProxy,
        settings: Arc<BrowserSettings>,
    ) -> Result<Self, BrowserError> {
        let fail = |e: String| BrowserError::Launch(e);
        let scratch = tempfile::Builder::new()
            .prefix("pincer-browser-")
            .tempdir()
            .map_err(|e| fail(e.to_string()))?;
        let fonts = Path::new("/etc/fonts");
        let spec = ExecSpec {
            argv: argv(&settings),
            cwd: scratch.path().to_path_buf(),
            env: [
                ("PATH", "/usr/local/bin:/usr/bin:/bin"),
                ("HOME", "/tmp"),
                ("TMPDIR", "/tmp"),
                ("LANG", "C.UTF-8"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .to_vec(),
            workspace: scratch.path().to_path_buf(),
            read_only: if fonts.is_dir() {
                vec![fonts.to_path_buf()]
            } else {
                vec![]
            },
            writable: vec![],
            limits: settings.limits,
            network: NetworkAccess::Proxy,
            stdin_pipe: false,
            unix_sockets: true,
            control_pipe: true,
        };
        let mut running = launch::spawn(sandbox, spec)
            .await
            .map_err(|e| fail(e.to_string()))?;
        running
            .serve_proxy(proxy)
            .map_err(|e| fail(e.to_string()))?;
        let (tx, rx) = running
            .take_channel()
            .map_err(|e| fail(e.to_string()))?
            .ok_or_else(|| fail("no control pipe".into()))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut drains = Vec::new();
        if let Some(out) = running.take_stdout() {
            drains.push(tokio::spawn(drain(out, log.clone())));
        }
        let (err, early) = running.take_stderr();
        push_tail(&log, &early);
        if let Some(err) = err {
            drains.push(tokio::spawn(drain(err, log.clone())));
        }
        let cdp = Cdp::new(tx, rx);
        let crashed = Arc::new(Mutex::new(HashSet::new()));
        drains.push(tokio::spawn(watch_crash(cdp.subscribe(), crashed.clone())));
        let mut b = Self {
            crashed,
            cdp,
            session: String::new(),
            refs: Refs::default(),
            settings,
            log,
            drains,
            shots: 0,
            running,
            _scratch: scratch,
        };
        if let Err(e) = b.attach().await {
            let tail = b.log_tail();
            return Err(fail(if tail.is_empty() {
                e.to_string()
            } else {
                format!("{e}; it said: {tail}")
            }));
        }
        Ok(b)
    }

    async fn attach(&mut self) -> Result<(), BrowserError> {
        self.cdp
            .call("Browser.getVersion", json!({}), None, self.settings.timeout)
            .await?;
        self.browser_call("Browser.setDownloadBehavior", json!({"behavior": "deny"}))
            .await?;
        self.open_page().await
    }

    /// Opens a page and attaches to it.
    async fn open_page(&mut self) -> Result<(), BrowserError> {
        self.refs.clear();
        let t = self
            .browser_call("Target.createTarget", json!({"url": "about:blank"}))
            .await?;
        let target = t["targetId"].as_str().unwrap_or_default().to_owned();
        let s = self
            .browser_call(
                "Target.attachToTarget",
                json!({"targetId": target, "flatten": true}),
            )
            .await?;
        self.session = s["sessionId"].as_str().unwrap_or_default().to_owned();
        for m in [
            "Page.enable",
            "DOM.enable",
            "Accessibility.enable",
            "Network.enable",
            "Inspector.enable",
        ] {
            self.call(m, json!({})).await?;
        }
        Ok(())
    }

    async fn browser_call(&self, method: &str, params: Value) -> Result<Value, BrowserError> {
        Ok(self
            .cdp
            .call(method, params, None, self.settings.timeout)
            .await?)
    }

    async fn call(&self, method: &str, params: Value) -> Result<Value, BrowserError> {
        if self.is_crashed() {
            return Err(BrowserError::PageCrashed);
        }
        Ok(self
            .cdp
            .call(method, params, Some(&self.session), self.settings.timeout)
            .await?)
    }

    fn is_crashed(&self) -> bool {
        self.crashed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&self.session)
    }

    /// The tail of what the browser printed (for error reports).
    pub fn log_tail(&self) -> String {
        let l = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&l).trim().to_owned()
    }

    /// Whether the browser has gone away.
    pub fn is_closed(&self) -> bool {
        self.cdp.is_closed()
    }

    /// Loads `url` (already checked by the egress policy; the proxy checks every request
    /// again) and waits for its load event.
    ///
    /// # Errors
    /// [`BrowserError::Navigation`] with Chromium's reason (a refused host shows as a tunnel
    /// or proxy error), or a protocol failure.
    pub async fn navigate(&mut self, url: &str) -> Result<Value, BrowserError> {
        if self.is_crashed() {
            return Err(BrowserError::PageCrashed);
        }
        let mut ev = self.cdp.subscribe();
        let r = self.call("Page.navigate", json!({"url": url})).await?;
        if let Some(e) = r["errorText"].as_str().filter(|e| !e.is_empty()) {
            return Err(BrowserError::Navigation(explain(e)));
        }
        self.refs.clear();
        let mut status = None;
        if let Some(loader) = r["loaderId"].as_str() {
            let doc = self.wait_load(&mut ev, Some(loader)).await?;
            if let Some(d) = &doc
                && let Some(why) = &d.egress
            {
                return Err(BrowserError::Navigation(format!(
                    "the egress policy refused it ({why}): {}",
                    d.status
                )));
            }
            status = doc.map(|d| d.status);
        }
        let mut v = self.info().await?;
        v["status"] = status.into();
        Ok(v)
    }

    /// Waits for the load event; returns the document's response when `loader`'s was seen.
    async fn wait_load(
        &self,
        ev: &mut broadcast::Receiver<Event>,
        loader: Option<&str>,
    ) -> Result<Option<DocResponse>, BrowserError> {
        let session = self.session.clone();
        let mut doc = None;
        let wait = async {
            loop {
                match ev.recv().await {
                    Ok(e) if e.session.as_deref() != Some(&session) => {}
                    Ok(e) if e.method == "Page.loadEventFired" => return Ok(doc),
                    Ok(e) if e.method == "Inspector.targetCrashed" => {
                        self.crashed
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .insert(session.clone());
                        return Err(BrowserError::PageCrashed);
                    }
                    Ok(e)
                        if e.method == "Network.responseReceived"
                            && e.params["type"] == "Document"
                            && loader.is_none_or(|l| e.params["loaderId"] == l) =>
                    {
                        doc = Some(DocResponse::of(&e.params["response"]));
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(BrowserError::Cdp(CdpError::Closed));
                    }
                }
            }
        };
        tokio::time::timeout(self.settings.timeout, wait)
            .await
            .map_err(|_| {
                BrowserError::Navigation(format!(
                    "the page did not finish loading within {}s",
                    self.settings.timeout.as_secs()
                ))
            })?
    }

    /// After an input: if a navigation starts within a short window, waits for it to load.
    async fn settle(&mut self, ev: &mut broadcast::Receiver<Event>) -> Result<bool, BrowserError> {
        let session = self.session.clone();
        let started = tokio::time::timeout(SETTLE, async {
            loop {
                match ev.recv().await {
                    Ok(e)
                        if e.session.as_deref() == Some(&session)
                            && (e.method == "Page.frameStartedLoading"
                                || e.method == "Page.frameRequestedNavigation") =>
                    {
                        return true;
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return false,
                }
            }
        })
        .await
        .unwrap_or(false);
        if started {
            self.refs.clear();
            if let Some(d) = self.wait_load(ev, None).await?
                && let Some(why) = d.egress
            {
                return Err(BrowserError::Navigation(format!(
                    "the egress policy refused the page it led to ({why}): {}",
                    d.status
                )));
            }
        }
        Ok(started)
    }

    async fn eval(&self, expr: &str) -> Result<Value, BrowserError> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true}),
            )
            .await?;
        Ok(r["result"]["value"].clone())
    }

    async fn info(&self) -> Result<Value, BrowserError> {
        let v = self
            .eval("({url: location.href, title: document.title})")
            .await?;
        Ok(json!({"url": v["url"], "title": v["title"]}))
    }

    /// The page as readable Markdown plus its interactive elements with refs.
    ///
    /// # Errors
    /// A protocol failure.
    pub async fn snapshot(&mut self) -> Result<Value, BrowserError> {
        let info = self.info().await?;
        let html = self
            .eval("document.documentElement ? document.documentElement.outerHTML : ''")
            .await?;
        let html = html.as_str().unwrap_or_default().to_owned();
        let url = info["url"].as_str().unwrap_or_default().to_owned();
        let max = self.settings.max_text;
        let text = tokio::task::spawn_blocking(move || {
            let mut t =
                pincer_web::extract::extract(Some("text/html"), html.as_bytes(), &url, false).text;
            if t.len() > max {
                let mut end = max;
                while !t.is_char_boundary(end) {
                    end -= 1;
                }
                t.truncate(end);
                t.push_str("\n[…]");
            }
            t
        })
        .await
        .map_err(|e| BrowserError::Io(e.to_string()))?;
        let tree = self.call("Accessibility.getFullAXTree", json!({})).await?;
        let mut lines = Vec::new();
        for n in tree["nodes"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if lines.len() >= MAX_ELEMENTS {
                lines.push("- … (more elements not listed)".to_owned());
                break;
            }
            let role = n["role"]["value"].as_str().unwrap_or_default();
            let Some(node) = n["backendDOMNodeId"].as_i64() else {
                continue;
            };
            if n["ignored"].as_bool() == Some(true) || !INTERACTIVE.contains(&role) {
                continue;
            }
            let name = n["name"]["value"].as_str().unwrap_or_default();
            let mut line = format!("- [e{}] {role} {:?}", self.refs.of(node), clip(name, 120));
            if let Some(v) = n["value"]["value"].as_str().filter(|v| !v.is_empty()) {
                line.push_str(&format!(" value={:?}", clip(v, 120)));
            }
            lines.push(line);
        }
        Ok(
            json!({"url": info["url"], "title": info["title"], "text": text,
                  "elements": lines.join("\n")}),
        )
    }

    /// Clicks the element `r` (a real mouse click at its centre).
    ///
    /// # Errors
    /// [`BrowserError::UnknownRef`], or a protocol failure.
    pub async fn click(&mut self, r: &str) -> Result<Value, BrowserError> {
        let node = self.refs.node(r)?;
        self.call("DOM.scrollIntoViewIfNeeded", json!({"backendNodeId": node}))
            .await?;
        let b = self
            .call("DOM.getBoxModel", json!({"backendNodeId": node}))
            .await?;
        let q: Vec<f64> = b["model"]["content"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        if q.len() != 8 {
            return Err(BrowserError::UnknownRef(format!("{r} (not visible)")));
        }
        let (x, y) = (
            (q[0] + q[2] + q[4] + q[6]) / 4.0,
            (q[1] + q[3] + q[5] + q[7]) / 4.0,
        );
        let mut ev = self.cdp.subscribe();
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )
            .await?;
        }
        let navigated = self.settle(&mut ev).await?;
        let mut v = self.info().await?;
        v["navigated"] = navigated.into();
        Ok(v)
    }

    /// Types `text` into the element `r` (focused first), then presses Enter if `submit`.
    ///
    /// # Errors
    /// [`BrowserError::UnknownRef`], or a protocol failure.
    pub async fn type_text(
        &mut self,
        r: &str,
        text: &str,
        submit: bool,
    ) -> Result<Value, BrowserError> {
        let node = self.refs.node(r)?;
        self.call("DOM.focus", json!({"backendNodeId": node}))
            .await?;
        self.call("Input.insertText", json!({"text": text})).await?;
        let mut ev = self.cdp.subscribe();
        let mut navigated = false;
        if submit {
            for kind in ["keyDown", "keyUp"] {
                self.call(
                    "Input.dispatchKeyEvent",
                    json!({"type": kind, "key": "Enter", "code": "Enter", "text": "\r",
                           "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13}),
                )
                .await?;
            }
            navigated = self.settle(&mut ev).await?;
        }
        let mut v = self.info().await?;
        v["navigated"] = navigated.into();
        Ok(v)
    }

    /// Saves a PNG of the viewport under `dir` and returns its path.
    ///
    /// # Errors
    /// A protocol failure, or the file cannot be written.
    pub async fn screenshot(&mut self, dir: &Path) -> Result<Value, BrowserError> {
        let r = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap_or_default())
            .map_err(|e| BrowserError::Io(format!("screenshot: {e}")))?;
        self.shots += 1;
        let path = dir.join(format!("screenshot-{}.png", self.shots));
        let bytes = png.len();
        let p = path.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(p.parent().unwrap_or(Path::new(".")))?;
            std::fs::write(&p, png)
        })
        .await
        .map_err(|e| BrowserError::Io(e.to_string()))?
        .map_err(|e| BrowserError::Io(format!("saving {}: {e}", path.display())))?;
        let mut v = self.info().await?;
        v["path"] = path.to_string_lossy().into_owned().into();
        v["bytes"] = bytes.into();
        Ok(v)
    }

    /// Crashes the page's renderer (CDP `Page.crash`) and waits until the crash is seen: how
    /// the tests check that a dead page gives typed errors, not hangs. Not offered as a tool.
    ///
    /// # Errors
    /// When the crash is not reported within the timeout.
    pub async fn crash_page(&mut self) -> Result<(), BrowserError> {
        let mut ev = self.cdp.subscribe();
        // The call itself gets no answer: the renderer is gone.
        let _ = self
            .cdp
            .call(
                "Page.crash",
                json!({}),
                Some(&self.session),
                Duration::from_millis(1),
            )
            .await;
        match self.wait_load(&mut ev, None).await {
            Err(BrowserError::PageCrashed) => Ok(()),
            Err(e) => Err(e),
            Ok(_) => Err(BrowserError::Navigation("the page did not crash".into())),
        }
    }

    /// Kills the browser and everything it started.
    pub async fn close(mut self) {
        let _ = self.running.kill().await;
    }
}

/// The main document's response.
#[derive(Debug)]
struct DocResponse {
    status: u16,
    /// The egress proxy's own answer (`refused` or `error`), not the site's.
    egress: Option<String>,
}

impl DocResponse {
    fn of(r: &Value) -> Self {
        let egress = r["headers"].as_object().and_then(|h| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(pincer_web::proxy::EGRESS_HEADER))
                .map(|(_, v)| v.as_str().unwrap_or_default().to_owned())
        });
        Self {
            status: r["status"]
                .as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(0),
            egress,
        }
    }
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut t: String = s.chars().take(max).collect();
    t.push('…');
    t
}

/// Chromium's network error, with what it means here.
fn explain(e: &str) -> String {
    match e {
        "net::ERR_TUNNEL_CONNECTION_FAILED"
        | "net::ERR_PROXY_CONNECTION_FAILED"
        | "net::ERR_HTTP_RESPONSE_CODE_FAILURE" => {
            format!("{e} (the egress policy refused this host, or it is unreachable)")
        }
        other => other.to_owned(),
    }
}

/// Records a session whose page's renderer died.
async fn watch_crash(mut ev: broadcast::Receiver<Event>, crashed: Arc<Mutex<HashSet<String>>>) {
    loop {
        match ev.recv().await {
            Ok(e) if e.method == "Inspector.targetCrashed" => {
                if let Some(s) = e.session {
                    crashed
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(s);
                }
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

fn push_tail(log: &Mutex<Vec<u8>>, bytes: &[u8]) {
    let mut l = log.lock().unwrap_or_else(PoisonError::into_inner);
    l.extend_from_slice(bytes);
    if l.len() > LOG_TAIL {
        let cut = l.len() - LOG_TAIL;
        l.drain(..cut);
    }
}

async fn drain<R: tokio::io::AsyncRead + Unpin>(mut r: R, log: Arc<Mutex<Vec<u8>>>) {
    let mut buf = vec![0u8; 8 * 1024];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            return;
        }
        push_tail(&log, &buf[..n]);
    }
}
