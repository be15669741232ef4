//! The MCP servers of one Pincer process.
//!
//! Lifecycle of a server (docs/MCP.md): **discover** ([`Server::discover`]: start, initialize,
//! list the tools, stop — no tool is ever called) → **approve** (the operator pins the manifest's
//! sha256 in the store; not this module) → **enable** (config) → **run**: started on first use,
//! its manifest checked against the approved one before any call; restarted with back-off when
//! it dies; stderr kept in a bounded ring and log file; a `tools/list_changed` re-lists, and a
//! manifest that no longer matches withdraws the server's tools until an operator re-approves.
//!
//! A stdio server runs only inside the configured sandbox (network only through the egress proxy,
//! and only with `network` hosts; only its `read_paths` /
//! `write_paths`, a private scratch directory, a scrubbed environment plus its declared `env`);
//! when no sandbox can be enforced it is not started (fail closed). An HTTP server is reached
//! only on an address the egress policy checked, pinned for the connection.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pincer_config::{McpServerConfig, NetworkMode, env_reference};
use pincer_sandbox::{ExecSpec, Limits, NetworkAccess, Sandbox};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;

use crate::client::{Client, Event, Observer, ServerInfo};
use crate::content::{self, Rendered};
use crate::error::{McpError, clip};
use crate::manifest::Manifest;

/// Bytes of a server's stderr kept in memory.
const RING_BYTES: usize = 16 * 1024;
/// Size at which the stderr log file is rotated (one old file is kept).
const LOG_ROTATE_BYTES: u64 = 256 * 1024;
/// A server that ran this long before dying starts its back-off afresh.
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// Longest back-off between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Why tools are withdrawn after a manifest change.
const CHANGED: &str = "its manifest changed since it was approved (`pincer mcp tools` shows the difference; `pincer mcp approve` accepts it)";
/// Timeout of a `tools/list` after `list_changed`.
const RELIST_TIMEOUT: Duration = Duration::from_secs(30);

/// The future a [`Recorder`] returns.
pub type RecordFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Where the hub records what happens: the audit log, and the store (a manifest seen that is
/// not the approved one, for `pincer mcp tools` / `approve`).
pub trait Recorder: Send + Sync + std::fmt::Debug {
    /// Appends an audit event (`mcp.*`).
    fn audit(&self, kind: &'static str, fields: Value) -> RecordFuture<'_>;
    /// Keeps the manifest a server showed (discovered, or changed since approval).
    fn manifest_seen<'a>(&'a self, server: &'a str, manifest: &'a Manifest) -> RecordFuture<'a>;
}

/// Looks up a variable of Pincer's environment.
pub type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// How the hub reaches the outside world.
#[derive(Clone)]
pub struct HubSettings {
    /// The sandbox for stdio servers; `Err(why)` when none can be enforced here.
    pub sandbox: Result<Arc<dyn Sandbox>, String>,
    /// Resource limits for stdio servers.
    pub limits: Limits,
    /// `<home>/mcp`: per-server scratch directories and stderr logs.
    pub state_dir: PathBuf,
    /// Paths no server may see (Pincer's config, secrets, database, audit log, agents).
    pub protected: Vec<PathBuf>,
    /// `security.network`.
    pub network: NetworkMode,
    /// Looks up `env:NAME` references in Pincer's environment.
    pub lookup: Lookup,
    /// Builds the egress proxy for a stdio server with `network` (its own allowlist); without
    /// one such a server does not start.
    pub proxy: Option<ProxyFactory>,
}

/// Builds the egress proxy a stdio server's sandbox reaches the network through, from the
/// server's name and config (its `network` hosts and `allow_private` addresses).
pub type ProxyFactory =
    Arc<dyn Fn(&str, &McpServerConfig) -> Arc<dyn pincer_sandbox::NetworkProxy> + Send + Sync>;

impl std::fmt::Debug for HubSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubSettings")
            .field("sandbox", &self.sandbox.as_ref().map(|s| s.kind()))
            .field("state_dir", &self.state_dir)
            .field("network", &self.network)
            .finish_non_exhaustive()
    }
}

/// An approval: the manifest an operator accepted and its sha256.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovedManifest {
    /// sha256 of the manifest.
    pub sha256: String,
    /// The manifest.
    pub manifest: Manifest,
    /// A newer manifest was seen that is not this one: the tools stay withdrawn until an
    /// operator approves again.
    pub changed: bool,
}

/// The servers of this process, by name.
#[derive(Debug, Default)]
pub struct McpHub {
    servers: BTreeMap<String, Arc<Server>>,
}

impl McpHub {
    /// A hub over `servers` (name, config, approval).
    pub fn new(
        servers: impl IntoIterator<Item = (String, McpServerConfig, Option<ApprovedManifest>)>,
        settings: HubSettings,
        recorder: Arc<dyn Recorder>,
    ) -> Self {
        let settings = Arc::new(settings);
        Self {
            servers: servers
                .into_iter()
                .map(|(name, config, approved)| {
                    let s = Server::new(
                        name.clone(),
                        config,
                        approved,
                        settings.clone(),
                        recorder.clone(),
                    );
                    (name, s)
                })
                .collect(),
        }
    }

    /// A server by name.
    pub fn get(&self, name: &str) -> Option<&Arc<Server>> {
        self.servers.get(name)
    }

    /// Every server.
    pub fn servers(&self) -> impl Iterator<Item = &Arc<Server>> {
        self.servers.values()
    }

    /// Stops every running server.
    pub async fn shutdown(&self) {
        for s in self.servers.values() {
            s.stop().await;
        }
    }
}

/// A running server: its client and the sandboxed process (stdio) behind it.
#[derive(Debug)]
struct Live {
    client: Client,
    generation: u64,
    began: Instant,
    kill: Option<tokio::sync::oneshot::Sender<()>>,
}

#[derive(Debug, Default)]
struct State {
    live: Option<Live>,
    generation: u64,
    withdrawn: Option<String>,
    failures: u32,
    next_start: Option<Instant>,
}

/// One configured server.
#[derive(Debug)]
pub struct Server {
    name: String,
    config: McpServerConfig,
    approved: Option<ApprovedManifest>,
    settings: Arc<HubSettings>,
    recorder: Arc<dyn Recorder>,
    state: Mutex<State>,
    /// Serialises starts (held across the start's awaits; calls never take it).
    starting: tokio::sync::Mutex<()>,
    ring: Arc<Mutex<VecDeque<u8>>>,
    /// True from a `tools/list_changed` until the new list was checked: calls wait for the
    /// verdict, so no call slips through between a change and its withdrawal.
    relisting: tokio::sync::watch::Sender<bool>,
}

impl Server {
    fn new(
        name: String,
        config: McpServerConfig,
        approved: Option<ApprovedManifest>,
        settings: Arc<HubSettings>,
        recorder: Arc<dyn Recorder>,
    ) -> Arc<Self> {
        let withdrawn = if !config.enabled {
            Some("the server is disabled (`pincer mcp enable`)".to_owned())
        } else if approved.as_ref().is_some_and(|a| a.changed) {
            Some(CHANGED.to_owned())
        } else if approved.is_none() {
            Some(
                "its manifest was never approved (`pincer mcp discover`, then `approve`)"
                    .to_owned(),
            )
        } else {
            None
        };
        Arc::new(Self {
            name,
            config,
            approved,
            settings,
            recorder,
            state: Mutex::new(State {
                withdrawn,
                ..State::default()
            }),
            starting: tokio::sync::Mutex::new(()),
            ring: Arc::new(Mutex::new(VecDeque::with_capacity(RING_BYTES))),
            relisting: tokio::sync::watch::channel(false).0,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its configuration.
    pub fn config(&self) -> &McpServerConfig {
        &self.config
    }

    /// The approved manifest, if any.
    pub fn approved(&self) -> Option<&ApprovedManifest> {
        self.approved.as_ref()
    }

    /// Why its tools are not offered, or `None` when they are.
    pub fn withdrawn(&self) -> Option<String> {
        self.state().withdrawn.clone()
    }

    /// Whether a process (or HTTP session) is up.
    pub fn is_running(&self) -> bool {
        self.state()
            .live
            .as_ref()
            .is_some_and(|l| !l.client.is_closed())
    }

    /// The newest stderr, up to the ring's size.
    pub fn stderr_tail(&self) -> String {
        let ring = self
            .ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (a, b) = ring.as_slices();
        let mut v = Vec::with_capacity(ring.len());
        v.extend_from_slice(a);
        v.extend_from_slice(b);
        String::from_utf8_lossy(&v).into_owned()
    }

    fn last_stderr_line(&self) -> String {
        let t = self.stderr_tail();
        clip(
            t.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(""),
            300,
        )
    }

    /// Connects without checking any approval, lists the tools and disconnects. Never calls a
    /// tool.
    ///
    /// # Errors
    /// As a start.
    pub async fn discover(self: &Arc<Self>) -> Result<(ServerInfo, Manifest), McpError> {
        let r = self.discover_inner().await;
        if let Err(e) = &r {
            self.recorder
                .audit(
                    e.audit_kind(),
                    json!({"server": self.name, "during": "discover", "error": e.to_string()}),
                )
                .await;
        }
        r
    }

    async fn discover_inner(self: &Arc<Self>) -> Result<(ServerInfo, Manifest), McpError> {
        let (client, info, kill) = self.connect().await?;
        let listed = client
            .list_tools(Duration::from_secs(self.config.start_timeout_secs))
            .await;
        self.relisting.send_replace(false);
        client.close();
        if let Some(k) = kill {
            let _ = k.send(());
        }
        let manifest = Manifest::from_list(listed?).map_err(|m| self.protocol(m))?;
        self.recorder.manifest_seen(&self.name, &manifest).await;
        self.recorder
            .audit(
                "mcp.discovered",
                json!({"server": self.name, "sha256": manifest.sha256(), "tools": manifest.tools.len(),
                       "server_name": info.name, "server_version": info.version,
                       "protocol": info.protocol_version}),
            )
            .await;
        Ok((info, manifest))
    }

    fn protocol(&self, message: String) -> McpError {
        McpError::Protocol {
            server: self.name.clone(),
            message,
        }
    }

    /// Calls `tool` with `arguments`, starting the server first when needed.
    ///
    /// # Errors
    /// [`McpError`] for every way the call can fail; each is audited as `mcp.*`.
    pub async fn call(
        self: &Arc<Self>,
        tool: &str,
        arguments: Value,
        output_schema: Option<&Value>,
    ) -> Result<Rendered, McpError> {
        let r = self.call_inner(tool, arguments, output_schema).await;
        if let Err(e) = &r {
            self.recorder
                .audit(
                    e.audit_kind(),
                    json!({"server": self.name, "tool": tool, "error": e.to_string()}),
                )
                .await;
        }
        r
    }

    async fn call_inner(
        self: &Arc<Self>,
        tool: &str,
        arguments: Value,
        output_schema: Option<&Value>,
    ) -> Result<Rendered, McpError> {
        // A list change announced before this call waits for its verdict.
        let mut relisting = self.relisting.subscribe();
        if tokio::time::timeout(RELIST_TIMEOUT, relisting.wait_for(|r| !*r))
            .await
            .is_err()
        {
            return Err(McpError::Timeout {
                server: self.name.clone(),
                method: "tools/list (after list_changed)".into(),
                secs: RELIST_TIMEOUT.as_secs(),
            });
        }
        let client = self.client().await?;
        let timeout = Duration::from_secs(self.config.timeout_secs);
        let result = match client.call_tool(tool, arguments, timeout).await {
            Ok(r) => r,
            Err(e @ McpError::Timeout { .. }) => {
                // Hung on this call, or on everything? A server that no longer answers ping is
                // stopped now rather than left to hang the next call too.
                let generation = self.state().live.as_ref().map_or(0, |l| l.generation);
                self.alive(&client, generation).await;
                return Err(e);
            }
            Err(McpError::Closed { message, .. }) => {
                let last = self.last_stderr_line();
                return Err(McpError::Closed {
                    server: self.name.clone(),
                    message: if last.is_empty() {
                        message
                    } else {
                        format!("{message}; its last words: {last}")
                    },
                });
            }
            Err(e) => return Err(e),
        };
        content::render(&result, output_schema, self.config.max_result_bytes)
            .map_err(|m| self.protocol(m))
    }

    /// The live client, starting the server when none is up.
    async fn client(self: &Arc<Self>) -> Result<Client, McpError> {
        if let Some(c) = self.live_client()? {
            return Ok(c);
        }
        let _gate = self.starting.lock().await;
        if let Some(c) = self.live_client()? {
            return Ok(c);
        }
        let wait = self
            .state()
            .next_start
            .map(|t| t.saturating_duration_since(Instant::now()));
        if let Some(wait) = wait.filter(|w| !w.is_zero()) {
            if wait > Duration::from_secs(self.config.timeout_secs) {
                return Err(McpError::Start {
                    server: self.name.clone(),
                    message: format!(
                        "it keeps exiting; the next restart is in {}s",
                        wait.as_secs()
                    ),
                });
            }
            tokio::time::sleep(wait).await;
        }
        self.start().await
    }

    fn live_client(&self) -> Result<Option<Client>, McpError> {
        let st = self.state();
        if let Some(why) = &st.withdrawn {
            return Err(McpError::Withdrawn {
                server: self.name.clone(),
                message: why.clone(),
            });
        }
        Ok(st
            .live
            .as_ref()
            .filter(|l| !l.client.is_closed())
            .map(|l| l.client.clone()))
    }

    /// Starts the server, checks its manifest against the approved one, and watches it.
    async fn start(self: &Arc<Self>) -> Result<Client, McpError> {
        let began = Instant::now();
        let (client, info, kill) = match self.connect().await {
            Ok(v) => v,
            Err(e) => {
                self.note_exit(began);
                return Err(e);
            }
        };
        // Changes announced before the list answers are covered by it.
        let mut changed = client.tools_changed();
        let listed = client
            .list_tools(Duration::from_secs(self.config.start_timeout_secs))
            .await
            .and_then(|l| Manifest::from_list(l).map_err(|m| self.protocol(m)));
        changed.borrow_and_update();
        let manifest = match listed {
            Ok(m) => m,
            Err(e) => {
                client.close();
                if let Some(k) = kill {
                    let _ = k.send(());
                }
                self.note_exit(began);
                return Err(e);
            }
        };
        if let Err(e) = self.check_manifest(&manifest).await {
            client.close();
            if let Some(k) = kill {
                let _ = k.send(());
            }
            self.relisting.send_replace(false);
            return Err(e);
        }
        self.relisting.send_replace(false);
        let generation = {
            let mut st = self.state();
            st.generation += 1;
            st.live = Some(Live {
                client: client.clone(),
                generation: st.generation,
                began,
                kill,
            });
            st.generation
        };
        self.recorder
            .audit(
                "mcp.started",
                json!({"server": self.name, "transport": self.transport(),
                       "sandbox": self.sandbox_kind(), "protocol": info.protocol_version,
                       "server_name": info.name, "server_version": info.version,
                       "sha256": manifest.sha256(), "ms": began.elapsed().as_millis() as u64}),
            )
            .await;
        tokio::spawn(watch(
            Arc::clone(self),
            client.clone(),
            changed,
            generation,
            began,
        ));
        Ok(client)
    }

    fn transport(&self) -> &'static str {
        if self.config.url.is_some() {
            "http"
        } else {
            "stdio"
        }
    }

    fn sandbox_kind(&self) -> Option<&'static str> {
        match (&self.settings.sandbox, self.config.url.is_some()) {
            (Ok(s), false) => Some(s.kind().as_str()),
            _ => None,
        }
    }

    /// Pings; when the server does not answer, records `mcp.unresponsive` and stops it (if it is
    /// still the live generation). Returns whether it answered.
    async fn alive(&self, client: &Client, generation: u64) -> bool {
        let timeout = Duration::from_secs(self.config.heartbeat_secs.clamp(1, 10));
        let Err(e) = client.ping(timeout).await else {
            return true;
        };
        let (current, began) = {
            let st = self.state();
            (
                st.live.as_ref().is_some_and(|l| l.generation == generation),
                st.live.as_ref().map(|l| l.began),
            )
        };
        if current {
            self.recorder
                .audit(
                    "mcp.unresponsive",
                    json!({"server": self.name, "error": e.to_string(), "action": "stopped"}),
                )
                .await;
            self.note_exit(began.unwrap_or_else(Instant::now));
            self.stop().await;
        }
        self.relisting.send_replace(false);
        false
    }

    /// Withdraws the tools (and records the manifest) when `m` is not the approved one.
    async fn check_manifest(&self, m: &Manifest) -> Result<(), McpError> {
        let sha = m.sha256();
        let approved = self.approved.as_ref().map(|a| a.sha256.as_str());
        if approved == Some(sha.as_str()) {
            return Ok(());
        }
        let why = CHANGED.to_owned();
        self.state().withdrawn = Some(why.clone());
        self.recorder.manifest_seen(&self.name, m).await;
        let diff = self
            .approved
            .as_ref()
            .map(|a| diff(&a.manifest, m))
            .unwrap_or(json!({}));
        self.recorder
            .audit(
                "mcp.manifest_changed",
                json!({"server": self.name, "approved_sha256": approved, "seen_sha256": sha,
                       "changes": diff, "tools_withdrawn": true}),
            )
            .await;
        Err(McpError::Withdrawn {
            server: self.name.clone(),
            message: why,
        })
    }

    /// Records a failed start or an exit for the back-off.
    fn note_exit(&self, started: Instant) {
        let mut st = self.state();
        if started.elapsed() >= STABLE_AFTER {
            st.failures = 0;
        }
        st.failures = st.failures.saturating_add(1);
        // The first restart is at once; then 1 s, 2 s, 4 s … up to a minute.
        let backoff = match st.failures {
            0 | 1 => Duration::ZERO,
            n => Duration::from_secs(1u64 << (n - 2).min(6)).min(MAX_BACKOFF),
        };
        st.next_start = Some(Instant::now() + backoff);
    }

    /// Stops the server if it runs.
    pub async fn stop(&self) {
        let live = self.state().live.take();
        if let Some(mut l) = live {
            l.client.close();
            if let Some(k) = l.kill.take() {
                let _ = k.send(());
            }
        }
    }

    /// Connects: a sandboxed process or an HTTP session; then `initialize`.
    async fn connect(
        self: &Arc<Self>,
    ) -> Result<(Client, ServerInfo, Option<tokio::sync::oneshot::Sender<()>>), McpError> {
        let observer: Arc<dyn Observer> = Arc::new(Watcher {
            server: Arc::downgrade(self),
        });
        let (conn, kill) = match &self.config.url {
            Some(url) => (self.connect_http(url).await?, None),
            None => {
                let (c, k) = self.spawn_stdio().await?;
                (c, Some(k))
            }
        };
        let client = Client::new(&self.name, conn, observer);
        let timeout = Duration::from_secs(self.config.start_timeout_secs);
        match client.initialize(timeout).await {
            Ok(info) => Ok((client, info, kill)),
            Err(e) => {
                client.close();
                if let Some(k) = kill {
                    let _ = k.send(());
                }
                let last = self.last_stderr_line();
                Err(match e {
                    McpError::Closed { server, message } if !last.is_empty() => McpError::Closed {
                        server,
                        message: format!("{message}; its last words: {last}"),
                    },
                    other => other,
                })
            }
        }
    }

    fn start_error(&self, message: String) -> McpError {
        McpError::Start {
            server: self.name.clone(),
            message,
        }
    }

    fn resolve(
        &self,
        field: &str,
        map: &BTreeMap<String, String>,
    ) -> Result<Vec<(String, String)>, McpError> {
        map.iter()
            .map(|(k, v)| {
                let var = env_reference(v).ok_or_else(|| {
                    self.start_error(format!(
                        "mcp.servers.{}.{field}.{k} is not an env: reference",
                        self.name
                    ))
                })?;
                let value = (self.settings.lookup)(var).ok_or_else(|| {
                    self.start_error(format!(
                        "environment variable {var} is not set (mcp.servers.{}.{field}.{k})",
                        self.name
                    ))
                })?;
                Ok((k.clone(), value))
            })
            .collect()
    }

    /// Starts the stdio server in the sandbox, its stderr drained into the ring and log file.
    async fn spawn_stdio(
        self: &Arc<Self>,
    ) -> Result<
        (
            crate::transport::Connection,
            tokio::sync::oneshot::Sender<()>,
        ),
        McpError,
    > {
        let sandbox = self.settings.sandbox.clone().map_err(|why| {
            self.start_error(format!(
                "no sandbox can be enforced here, so it is not started ({why})"
            ))
        })?;
        // With `network`, the server reaches its hosts through the egress proxy (its own
        // allowlist); otherwise its sandbox has no network at all.
        let proxy = if self.config.network.is_empty() && self.config.allow_private.is_empty() {
            None
        } else if self.settings.network == NetworkMode::Off {
            return Err(self.start_error(
                "it lists `network` hosts, but the network is off (security.network)".into(),
            ));
        } else {
            match &self.settings.proxy {
                Some(make) => Some(make(&self.name, &self.config)),
                None => {
                    return Err(self.start_error(
                        "it lists `network` hosts, and no egress proxy is available here".into(),
                    ));
                }
            }
        };
        for p in self
            .config
            .read_paths
            .iter()
            .chain(&self.config.write_paths)
        {
            if let Some(why) = overlap(p, &self.settings.protected) {
                return Err(self.start_error(why));
            }
        }
        let dir = self.settings.state_dir.join(&self.name);
        let work = dir.join("work");
        std::fs::create_dir_all(&work)
            .and_then(|()| set_private(&dir))
            .map_err(|e| self.start_error(format!("creating {}: {e}", work.display())))?;
        let mut env = pincer_tools::ExecScope::base_env([]);
        for (k, v) in self.resolve("env", &self.config.env)? {
            env.retain(|(e, _)| *e != k);
            env.push((k, v));
        }
        let command = self.config.command.clone().unwrap_or_default();
        let spec = ExecSpec {
            argv: std::iter::once(command)
                .chain(self.config.args.iter().cloned())
                .collect(),
            cwd: work.clone(),
            env,
            workspace: work,
            read_only: self.config.read_paths.clone(),
            writable: self.config.write_paths.clone(),
            limits: self.settings.limits,
            network: if proxy.is_some() {
                NetworkAccess::Proxy
            } else {
                NetworkAccess::Off
            },
            stdin_pipe: true,
            unix_sockets: false,
            control_pipe: false,
        };
        let mut running = pincer_sandbox::launch::spawn(&*sandbox, spec)
            .await
            .map_err(|e| self.start_error(format!("the sandbox refused or failed: {e}")))?;
        if let Some(p) = &proxy {
            running
                .serve_proxy(&**p)
                .map_err(|e| self.start_error(format!("the egress proxy: {e}")))?;
        }
        let (Some(stdin), Some(stdout)) = (running.take_stdin(), running.take_stdout()) else {
            return Err(self.start_error("the sandbox gave no stdio pipes".into()));
        };
        let (stderr, early) = running.take_stderr();
        let log = dir.join("stderr.log");
        self.capture(&early, &log);
        if let Some(mut err) = stderr {
            let me = Arc::downgrade(self);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                while let Ok(n) = err.read(&mut buf).await {
                    let Some(s) = me.upgrade() else { return };
                    if n == 0 {
                        return;
                    }
                    s.capture(&buf[..n], &log);
                }
            });
        }
        let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            tokio::select! {
                _ = running.wait() => {}
                _ = kill_rx => { let _ = running.kill().await; }
            }
        });
        Ok((
            crate::transport::stdio::connect(stdin, stdout, self.config.max_message_bytes),
            kill_tx,
        ))
    }

    fn capture(&self, bytes: &[u8], log: &Path) {
        if bytes.is_empty() {
            return;
        }
        {
            let mut ring = self
                .ring
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            ring.extend(bytes);
            let over = ring.len().saturating_sub(RING_BYTES);
            ring.drain(..over);
        }
        append_log(log, bytes);
    }

    /// Builds the HTTP connection on an egress-checked, pinned address.
    async fn connect_http(&self, url: &str) -> Result<crate::transport::Connection, McpError> {
        let egress = |m: String| McpError::Egress {
            server: self.name.clone(),
            message: m,
        };
        // The one egress policy, with this server's own lists: its `network` hosts, its named
        // private `host:port`s.
        let policy = pincer_policy::egress::EgressPolicy {
            network: self.settings.network,
            allow: &self.config.network,
            allow_private: &self.config.allow_private,
        };
        let checked = policy.check(url).map_err(|e| egress(e.to_string()))?;
        if !checked.private_named && checked.url.scheme() != "https" {
            return Err(egress(
                "only https:// is allowed for a server not named in allow_private".into(),
            ));
        }
        let (host, port, named_private) =
            (checked.host.clone(), checked.port, checked.private_named);
        let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| egress(format!("resolving {host}: {e}")))?
            .collect();
        let ips: Vec<std::net::IpAddr> = addrs.iter().map(std::net::SocketAddr::ip).collect();
        policy
            .check_addrs(&checked, &ips)
            .map_err(|e| egress(e.to_string()))?;
        let first = *addrs
            .first()
            .ok_or_else(|| egress(format!("{host} has no address")))?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in self.resolve("headers", &self.config.headers)? {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| self.start_error(format!("`{k}` is not a header name")))?;
            let mut value = reqwest::header::HeaderValue::from_str(&v)
                .map_err(|_| self.start_error(format!("the value of header `{k}` is not valid")))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_secs(self.config.start_timeout_secs))
            .resolve(&host, first)
            .user_agent(concat!("pincer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| self.start_error(e.to_string()))?;
        self.recorder
            .audit(
                "mcp.egress",
                json!({"server": self.name, "host": host, "port": port, "address": first.ip().to_string(),
                       "private_allowed": named_private}),
            )
            .await;
        Ok(crate::transport::http::connect(
            client,
            url,
            headers,
            self.config.max_message_bytes,
        ))
    }
}

/// Why `p` may not be given to a server: it contains, or lies inside, a protected path.
pub fn overlap(p: &Path, protected: &[PathBuf]) -> Option<String> {
    let c = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    protected.iter().find_map(|q| {
        let q = std::fs::canonicalize(q).unwrap_or_else(|_| q.clone());
        (c.starts_with(&q) || q.starts_with(&c)).then(|| {
            format!(
                "{} overlaps {}, which no MCP server may see",
                p.display(),
                q.display()
            )
        })
    })
}

fn set_private(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Appends to the stderr log, rotating it to `.1` past [`LOG_ROTATE_BYTES`].
fn append_log(log: &Path, bytes: &[u8]) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if std::fs::metadata(log).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
        let _ = std::fs::rename(log, log.with_extension("log.1"));
    }
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)
    {
        let _ = f.write_all(bytes);
    }
}

/// Which tools were added, removed or changed between two manifests (names only).
pub fn diff(old: &Manifest, new: &Manifest) -> Value {
    let added: Vec<&str> = new
        .tools
        .iter()
        .filter(|t| old.get(&t.name).is_none())
        .map(|t| t.name.as_str())
        .collect();
    let removed: Vec<&str> = old
        .tools
        .iter()
        .filter(|t| new.get(&t.name).is_none())
        .map(|t| t.name.as_str())
        .collect();
    let changed: Vec<&str> = new
        .tools
        .iter()
        .filter(|t| old.get(&t.name).is_some_and(|o| o != *t))
        .map(|t| t.name.as_str())
        .collect();
    json!({"added": added, "removed": removed, "changed": changed})
}

/// Follows a live connection: re-lists on `list_changed`, notes the exit for the back-off.
async fn watch(
    server: Arc<Server>,
    client: Client,
    mut changed: tokio::sync::watch::Receiver<u64>,
    generation: u64,
    began: Instant,
) {
    let mut beat = heartbeat(server.config.heartbeat_secs);
    loop {
        tokio::select! {
            why = client.closed() => {
                server.relisting.send_replace(false);
                let current = {
                    let mut st = server.state();
                    let current = st.live.as_ref().is_some_and(|l| l.generation == generation);
                    if current {
                        st.live = None;
                    }
                    current
                };
                if current {
                    server.note_exit(began);
                    let last = server.last_stderr_line();
                    server.recorder.audit(
                        "mcp.exited",
                        json!({"server": server.name, "reason": why, "last_stderr": last,
                               "ran_ms": began.elapsed().as_millis() as u64}),
                    ).await;
                }
                return;
            }
            () = tick(beat.as_mut()) => {
                // An idle server answers ping; one that does not is stopped, and the next call
                // starts it again. While calls are in flight their own timeouts govern (a server
                // may handle requests one at a time).
                if client.in_flight() == 0 && !server.alive(&client, generation).await {
                    return;
                }
            }
            r = changed.changed() => {
                if r.is_err() {
                    return;
                }
                let listed = client
                    .list_tools(RELIST_TIMEOUT)
                    .await
                    .and_then(|l| Manifest::from_list(l).map_err(|m| server.protocol(m)));
                let keep = match listed {
                    Ok(m) => server.check_manifest(&m).await.is_ok(),
                    Err(e) => {
                        // Unverifiable: stop it; the next call restarts it and checks again.
                        server.recorder.audit(e.audit_kind(), json!({"server": server.name, "error": e.to_string()})).await;
                        false
                    }
                };
                if !keep {
                    server.stop().await;
                }
                server.relisting.send_replace(false);
                if !keep {
                    return;
                }
            }
        }
    }
}

/// A tick every `secs` seconds (late ticks are not bunched up); none when `secs` is 0.
fn heartbeat(secs: u64) -> Option<tokio::time::Interval> {
    (secs > 0).then(|| {
        let every = Duration::from_secs(secs);
        let mut i = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    })
}

/// The next heartbeat tick; never without a heartbeat.
async fn tick(beat: Option<&mut tokio::time::Interval>) {
    match beat {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The client's observer: protocol faults and progress become audit events.
#[derive(Debug)]
struct Watcher {
    server: std::sync::Weak<Server>,
}

impl Observer for Watcher {
    fn event(&self, name: &str, event: Event) {
        let Some(server) = self.server.upgrade() else {
            return;
        };
        let (kind, fields) = match event {
            Event::Malformed(why) => (
                "mcp.protocol_error",
                json!({"server": name, "error": clip(&why, 300)}),
            ),
            Event::ToolsChanged => {
                // Synchronously, in stream order: a result that follows the notification is
                // delivered after this, so the next call already waits for the re-list.
                server.relisting.send_replace(true);
                return;
            }
            // Exits are recorded by `watch`; progress is not worth a record.
            Event::Closed(_) | Event::Progress { .. } => return,
        };
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move { server.recorder.audit(kind, fields).await });
        }
    }
}
