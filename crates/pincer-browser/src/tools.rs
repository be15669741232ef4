//! The browser tools: `browser.navigate` (L1), `browser.snapshot` (L0), `browser.click` (L1),
//! `browser.type` (L2: typed text leaves the machine), `browser.screenshot` (L0, a PNG in the run
//! bundle) and `browser.close` (L0). All need the `network` capability.
//!
//! One browser per agent, owned by a task ([`BrowserScope`]) that takes one operation at a time
//! from a bounded queue (so no lock is held while the browser works). It starts at the first
//! `browser.navigate`, and is closed when the run that started it ends, when a call comes from
//! another run (a fresh profile for every run), after `idle` without use, on `browser.close`,
//! or when it crashed (the next navigation starts a new one).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pincer_policy::Approved;
use pincer_sandbox::{Limits, NetworkProxy, Sandbox};
use pincer_tools::{Tool, ToolContext, ToolError, ToolFuture, ToolOutput, ToolSpec, parse_args};
use pincer_types::{Action, ArgRole, Capability, RiskTier, RunId, SinkArg, SinkKind};
use pincer_web::egress::Egress;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::browser::{Browser, BrowserError, BrowserSettings};

/// Where Chromium is looked for when `web.browser.executable` is not set.
const CANDIDATES: &[&str] = &[
    "/usr/lib/chromium/chromium",
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
];
/// Operations queued for one agent's browser.
const QUEUE: usize = 16;
/// Longest text `browser.type` sends.
const MAX_TYPED: usize = 16 * 1024;

/// The Chromium binary: `configured` if given (and a file), else the first of the Debian paths.
pub fn find_chromium(configured: Option<&Path>) -> Option<PathBuf> {
    match configured {
        Some(p) => p.is_file().then(|| p.to_path_buf()),
        None => CANDIDATES.iter().map(PathBuf::from).find(|p| p.is_file()),
    }
}

/// The sandbox limits for a browser: no address-space cap (Chromium reserves tens of GiB of
/// address space it never touches; `RLIMIT_AS` would kill it at start), the rest as for
/// commands.
pub fn browser_limits() -> Limits {
    Limits {
        memory_bytes: u64::MAX,
        ..Limits::default()
    }
}

/// The tools' names, in the order [`tools`] returns them.
pub const BROWSER_TOOLS: [&str; 6] = [
    "browser.navigate",
    "browser.snapshot",
    "browser.click",
    "browser.type",
    "browser.screenshot",
    "browser.close",
];

enum Op {
    Navigate(String),
    Snapshot,
    Click(String),
    Type {
        target: String,
        text: String,
        submit: bool,
    },
    Screenshot(PathBuf),
    Close,
}

struct Job {
    op: Op,
    run: Option<RunId>,
    reply: oneshot::Sender<Result<Value, BrowserError>>,
}

enum Msg {
    Job(Job),
    EndRun(RunId),
}

/// One agent's browser: the task that owns it and the egress policy its URLs are checked by.
#[derive(Debug)]
pub struct BrowserScope {
    tx: mpsc::Sender<Msg>,
    egress: Arc<Egress>,
    agent_dir: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BrowserScope {
    fn drop(&mut self) {
        // The task owns the browser; aborting it drops the browser, which kills its processes.
        self.task.abort();
    }
}

impl BrowserScope {
    /// A scope whose browser runs in `sandbox` with its network served by `proxy`; URLs are
    /// checked against `egress`'s policy before a navigation; screenshots go under
    /// `agent_dir`'s run bundles.
    pub fn new(
        sandbox: Arc<dyn Sandbox>,
        proxy: Arc<dyn NetworkProxy>,
        egress: Arc<Egress>,
        settings: BrowserSettings,
        idle: Duration,
        agent_dir: PathBuf,
    ) -> Arc<Self> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(actor(rx, sandbox, proxy, Arc::new(settings), idle));
        Arc::new(Self {
            tx,
            egress,
            agent_dir,
            task,
        })
    }

    async fn ask(&self, op: Op, run: Option<RunId>) -> Result<Value, ToolError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Job(Job { op, run, reply }))
            .await
            .map_err(|_| ToolError::Failed("the browser is not available".into()))?;
        rx.await
            .map_err(|_| ToolError::Failed("the browser stopped".into()))?
            .map_err(|e| ToolError::Failed(e.to_string()))
    }

    fn screenshot_dir(&self, run: Option<RunId>) -> PathBuf {
        match run {
            Some(r) => self
                .agent_dir
                .join("runs")
                .join(r.to_string())
                .join("screenshots"),
            None => self.agent_dir.join("screenshots"),
        }
    }
}

/// The browser's owner: one operation at a time.
async fn actor(
    mut rx: mpsc::Receiver<Msg>,
    sandbox: Arc<dyn Sandbox>,
    proxy: Arc<dyn NetworkProxy>,
    settings: Arc<BrowserSettings>,
    idle: Duration,
) {
    let mut current: Option<(Browser, Option<RunId>)> = None;
    loop {
        let msg = match tokio::time::timeout(idle, rx.recv()).await {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(_) => {
                // Idle: close it; wait for the next call.
                if let Some((b, _)) = current.take() {
                    b.close().await;
                }
                match rx.recv().await {
                    Some(m) => m,
                    None => break,
                }
            }
        };
        let job = match msg {
            Msg::EndRun(run) => {
                if current.as_ref().is_some_and(|(_, r)| *r == Some(run))
                    && let Some((b, _)) = current.take()
                {
                    b.close().await;
                }
                continue;
            }
            Msg::Job(j) => j,
        };
        // A call from another run gets a fresh browser (and profile).
        if current
            .as_ref()
            .is_some_and(|(b, r)| b.is_closed() || (job.run.is_some() && *r != job.run))
            && let Some((b, _)) = current.take()
        {
            b.close().await;
        }
        if matches!(job.op, Op::Close) {
            let closed = current.is_some();
            if let Some((b, _)) = current.take() {
                b.close().await;
            }
            let _ = job.reply.send(Ok(json!({"closed": closed})));
            continue;
        }
        if current.is_none() {
            if !matches!(job.op, Op::Navigate(_)) {
                let _ = job.reply.send(Err(BrowserError::Navigation(
                    "no page is open: call browser.navigate first".into(),
                )));
                continue;
            }
            match Browser::launch(&*sandbox, &*proxy, settings.clone()).await {
                Ok(b) => current = Some((b, job.run)),
                Err(e) => {
                    let _ = job.reply.send(Err(e));
                    continue;
                }
            }
        }
        let Some((b, _)) = current.as_mut() else {
            continue;
        };
        let r = match job.op {
            Op::Navigate(url) => b.navigate(&url).await,
            Op::Snapshot => b.snapshot().await,
            Op::Click(r) => b.click(&r).await,
            Op::Type {
                target,
                text,
                submit,
            } => b.type_text(&target, &text, submit).await,
            Op::Screenshot(dir) => b.screenshot(&dir).await,
            Op::Close => Ok(Value::Null),
        };
        if let Err(e) = &r
            && (e.is_fatal() || b.is_closed())
            && let Some((b, _)) = current.take()
        {
            b.close().await;
        }
        let _ = job.reply.send(r);
    }
    if let Some((b, _)) = current.take() {
        b.close().await;
    }
}

/// `browser.navigate` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NavigateArgs {
    /// An http:// or https:// URL on an allowed host.
    url: String,
}

/// No arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// An element of the last snapshot.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefArgs {
    /// The element's ref from `browser.snapshot` (`e1`, `e2`, …).
    #[serde(rename = "ref")]
    target: String,
}

/// `browser.type` arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TypeArgs {
    /// The field's ref from `browser.snapshot`.
    #[serde(rename = "ref")]
    target: String,
    /// The text to type.
    text: String,
    /// Press Enter afterwards (submits most forms).
    #[serde(default)]
    submit: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Navigate,
    Snapshot,
    Click,
    Type,
    Screenshot,
    Close,
}

/// One of the browser tools.
#[derive(Debug)]
pub struct BrowserTool {
    spec: ToolSpec,
    verb: Verb,
    scope: Arc<BrowserScope>,
}

/// The six tools over one agent's `scope`.
///
/// # Errors
/// Never in practice (the names are literals).
pub fn tools(scope: &Arc<BrowserScope>) -> Result<Vec<Arc<dyn Tool>>, pincer_types::IdError> {
    let net = Capability::Network;
    let specs = [
        (
            Verb::Navigate,
            ToolSpec::for_args::<NavigateArgs>(
                BROWSER_TOOLS[0],
                "Opens a URL (allowed hosts only) in a headless browser that runs JavaScript, and waits for it to load. Then use browser.snapshot to read it.",
                net,
                RiskTier::L1Mutating,
            )?,
        ),
        (
            Verb::Snapshot,
            ToolSpec::for_args::<NoArgs>(
                BROWSER_TOOLS[1],
                "The open page as readable text, plus its interactive elements (links, buttons, fields) with refs like e1 for browser.click and browser.type.",
                net,
                RiskTier::L0ReadOnly,
            )?,
        ),
        (
            Verb::Click,
            ToolSpec::for_args::<RefArgs>(
                BROWSER_TOOLS[2],
                "Clicks an element of the open page by its ref from browser.snapshot; follows a navigation it starts.",
                net,
                RiskTier::L1Mutating,
            )?,
        ),
        (
            Verb::Type,
            ToolSpec::for_args::<TypeArgs>(
                BROWSER_TOOLS[3],
                "Types text into a field of the open page by its ref from browser.snapshot; `submit` presses Enter. Needs approval: the text is sent to the site.",
                net,
                RiskTier::L2Destructive,
            )?,
        ),
        (
            Verb::Screenshot,
            ToolSpec::for_args::<NoArgs>(
                BROWSER_TOOLS[4],
                "Saves a PNG screenshot of the open page in the run's folder and returns its path.",
                net,
                RiskTier::L0ReadOnly,
            )?,
        ),
        (
            Verb::Close,
            ToolSpec::for_args::<NoArgs>(
                BROWSER_TOOLS[5],
                "Closes the browser (its profile, cookies and pages are discarded).",
                net,
                RiskTier::L0ReadOnly,
            )?,
        ),
    ];
    Ok(specs
        .into_iter()
        .map(|(verb, spec)| {
            Arc::new(BrowserTool {
                spec,
                verb,
                scope: scope.clone(),
            }) as Arc<dyn Tool>
        })
        .collect())
}

impl Tool for BrowserTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn plan(&self, _ctx: &ToolContext, args: &Value) -> Result<Action, ToolError> {
        let name = self.spec.name.as_str();
        let detail = match self.verb {
            Verb::Navigate => {
                let a: NavigateArgs = parse_args(name, args)?;
                // Refused up front as a policy denial; the proxy checks it (and every
                // subresource and redirect) again when the browser asks.
                let checked = self
                    .scope
                    .egress
                    .policy()
                    .check(&a.url)
                    .map_err(|e| ToolError::Forbidden(format!("{name}: {e}")))?;
                let host = checked.host_port();
                json!({"url": checked.url.as_str(), "host": host})
            }
            Verb::Click => {
                let a: RefArgs = parse_args(name, args)?;
                json!({"ref": a.target})
            }
            Verb::Type => {
                let a: TypeArgs = parse_args(name, args)?;
                if a.text.len() > MAX_TYPED {
                    return Err(ToolError::InvalidArguments(format!(
                        "{name}: the text is over 16 KiB"
                    )));
                }
                json!({"ref": a.target, "text": a.text, "submit": a.submit})
            }
            Verb::Snapshot | Verb::Screenshot | Verb::Close => {
                let _: NoArgs = parse_args(name, args)?;
                json!({})
            }
        };
        let action = self.spec.action(self.spec.base_tier, detail);
        // D9: where the browser goes, and what it types, are egress sinks.
        Ok(match self.verb {
            Verb::Navigate => {
                let host = action.detail["host"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                action.with_sink(
                    SinkKind::Egress,
                    vec![SinkArg::new("host", ArgRole::Host, host)],
                )
            }
            Verb::Type => {
                let text = action.detail["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                action.with_sink(
                    SinkKind::Egress,
                    vec![SinkArg::new("text", ArgRole::Text, text)],
                )
            }
            _ => action,
        })
    }

    fn run<'a>(&'a self, ctx: &'a ToolContext, action: Approved<Action>) -> ToolFuture<'a> {
        Box::pin(async move {
            let d = &action.action().detail;
            let s = |k: &str| d[k].as_str().unwrap_or_default().to_owned();
            let op = match self.verb {
                Verb::Navigate => Op::Navigate(s("url")),
                Verb::Snapshot => Op::Snapshot,
                Verb::Click => Op::Click(s("ref")),
                Verb::Type => Op::Type {
                    target: s("ref"),
                    text: s("text"),
                    submit: d["submit"].as_bool() == Some(true),
                },
                Verb::Screenshot => Op::Screenshot(self.scope.screenshot_dir(ctx.run)),
                Verb::Close => Op::Close,
            };
            let v = self.scope.ask(op, ctx.run).await.map_err(|e| match e {
                ToolError::Failed(m) => ToolError::Failed(format!("{}: {m}", self.spec.name)),
                other => other,
            })?;
            Ok(ToolOutput {
                content: v.to_string(),
            })
        })
    }

    fn end_run(&self, run: RunId) {
        if self.verb == Verb::Navigate {
            // Full queue: the idle timer closes it instead.
            let _ = self.scope.tx.try_send(Msg::EndRun(run));
        }
    }
}

#[cfg(test)]
mod tests {
    /// The tools are the ones `group:browser` grants (the policy crate names them too).
    #[test]
    fn the_group_names_exactly_these_tools() {
        assert_eq!(
            pincer_policy::group_tools(pincer_config::ToolGroup::Browser),
            super::BROWSER_TOOLS.as_slice()
        );
    }
}
