//! The MCP client: request/response correlation, the initialize handshake and version check,
//! paginated `tools/list`, `tools/call` with progress, a per-call timeout and cancellation
//! (`notifications/cancelled` whenever a call is abandoned — timed out, or its run cancelled and
//! the future dropped), `ping`, and `notifications/tools/list_changed`.
//!
//! Nothing here waits without a bound: every request has a timeout, every queue a capacity, and
//! a closed connection fails every waiting request at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};

use crate::error::{McpError, clip};
use crate::jsonrpc::{self, Incoming, PROTOCOL_VERSIONS};
use crate::transport::{Connection, Inbound, Transport};

/// Most pages of `tools/list` followed.
const MAX_PAGES: usize = 64;
/// Most tools one server may offer.
pub const MAX_TOOLS: usize = 512;

/// What a client reports as it happens (implemented by the hub: audit events, logs).
pub trait Observer: Send + Sync + std::fmt::Debug {
    /// Something worth recording happened on `server`'s connection.
    fn event(&self, server: &str, event: Event);
}

/// A connection event.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The server sent something that is not a usable JSON-RPC message.
    Malformed(String),
    /// The server says its tool list changed.
    ToolsChanged,
    /// Progress on one of our calls.
    Progress {
        /// The call's request id.
        request: u64,
        /// Progress so far.
        progress: f64,
        /// Total, when known.
        total: Option<f64>,
    },
    /// The connection ended.
    Closed(String),
}

/// An observer that records nothing.
#[derive(Debug)]
pub struct Quiet;

impl Observer for Quiet {
    fn event(&self, _: &str, _: Event) {}
}

/// What the server said about itself at initialize.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerInfo {
    /// `serverInfo.name`.
    pub name: String,
    /// `serverInfo.version`.
    pub version: String,
    /// The protocol version agreed.
    pub protocol_version: String,
    /// Whether it announces `tools.listChanged`.
    pub list_changed: bool,
}

#[derive(Debug)]
struct Pending {
    tx: oneshot::Sender<Result<Value, McpError>>,
    method: &'static str,
}

#[derive(Debug)]
struct Inner {
    server: String,
    transport: Arc<dyn Transport>,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    closed: watch::Sender<Option<String>>,
    tools_changed: watch::Sender<u64>,
    observer: Arc<dyn Observer>,
}

impl Inner {
    fn pending(&self) -> MutexGuard<'_, HashMap<u64, Pending>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn closed_error(&self) -> Option<McpError> {
        self.closed.borrow().as_ref().map(|m| McpError::Closed {
            server: self.server.clone(),
            message: m.clone(),
        })
    }
}

/// A live connection to one server.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl Client {
    /// Starts the dispatcher over `conn`; call [`Client::initialize`] next.
    pub fn new(server: &str, conn: Connection, observer: Arc<dyn Observer>) -> Self {
        let inner = Arc::new(Inner {
            server: server.to_owned(),
            transport: conn.transport,
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            closed: watch::channel(None).0,
            tools_changed: watch::channel(0).0,
            observer,
        });
        tokio::spawn(dispatch(Arc::downgrade(&inner), conn.inbound));
        Self { inner }
    }

    /// The server's name in the config.
    pub fn server(&self) -> &str {
        &self.inner.server
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.borrow().is_some()
    }

    /// Resolves when the connection ends, with the reason.
    pub async fn closed(&self) -> String {
        let mut rx = self.inner.closed.subscribe();
        loop {
            if let Some(m) = rx.borrow_and_update().clone() {
                return m;
            }
            if rx.changed().await.is_err() {
                return "the client was dropped".into();
            }
        }
    }

    /// Requests waiting for an answer.
    pub fn in_flight(&self) -> usize {
        self.inner.pending().len()
    }

    /// Counts `notifications/tools/list_changed`; changes each time one arrives.
    pub fn tools_changed(&self) -> watch::Receiver<u64> {
        self.inner.tools_changed.subscribe()
    }

    /// The handshake: `initialize` (our newest version; the server's answer must be one we
    /// speak), then `notifications/initialized`.
    ///
    /// # Errors
    /// [`McpError::Timeout`] when the server does not answer in `timeout`,
    /// [`McpError::Protocol`] for an unusable answer or version.
    pub async fn initialize(&self, timeout: Duration) -> Result<ServerInfo, McpError> {
        let params = json!({
            "protocolVersion": PROTOCOL_VERSIONS[0],
            "capabilities": {},
            "clientInfo": {"name": "pincer", "version": env!("CARGO_PKG_VERSION")},
        });
        let r = self.request("initialize", Some(params), timeout).await?;
        let bad = |m: String| McpError::Protocol {
            server: self.inner.server.clone(),
            message: m,
        };
        let version = r["protocolVersion"]
            .as_str()
            .ok_or_else(|| bad("initialize result without protocolVersion".into()))?;
        if !PROTOCOL_VERSIONS.contains(&version) {
            return Err(bad(format!(
                "the server speaks protocol {}; this client speaks {}",
                clip(version, 40),
                PROTOCOL_VERSIONS.join(", ")
            )));
        }
        let info = ServerInfo {
            name: clip(r["serverInfo"]["name"].as_str().unwrap_or(""), 128),
            version: clip(r["serverInfo"]["version"].as_str().unwrap_or(""), 64),
            protocol_version: version.to_owned(),
            list_changed: r["capabilities"]["tools"]["listChanged"].as_bool() == Some(true),
        };
        self.inner.transport.negotiated(version);
        self.notify("notifications/initialized", None).await?;
        Ok(info)
    }

    /// Every tool, following `nextCursor` (bounded pages and tools). Each entry is checked to
    /// have a string `name` and an object `inputSchema`.
    ///
    /// # Errors
    /// As [`Client::request`], or [`McpError::Protocol`] for a malformed list.
    pub async fn list_tools(&self, timeout: Duration) -> Result<Vec<Value>, McpError> {
        let bad = |m: String| McpError::Protocol {
            server: self.inner.server.clone(),
            message: m,
        };
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let params = cursor.as_ref().map(|c| json!({"cursor": c}));
            let mut r = self.request("tools/list", params, timeout).await?;
            let Some(Value::Array(page)) = r.get_mut("tools").map(Value::take) else {
                return Err(bad("tools/list result without a `tools` array".into()));
            };
            for t in page {
                if !t["name"].is_string() || !t["inputSchema"].is_object() {
                    return Err(bad(format!(
                        "a tool without a string name or object inputSchema: {}",
                        clip(&t.to_string(), 200)
                    )));
                }
                tools.push(t);
                if tools.len() > MAX_TOOLS {
                    return Err(bad(format!("more than {MAX_TOOLS} tools")));
                }
            }
            match r.get("nextCursor").and_then(Value::as_str) {
                Some(c) if !c.is_empty() => cursor = Some(c.to_owned()),
                _ => return Ok(tools),
            }
        }
        Err(bad(format!(
            "tools/list did not end within {MAX_PAGES} pages"
        )))
    }

    /// Calls a tool; `timeout` bounds the wait, after which the call is cancelled.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: Value,
        timeout: Duration,
    ) -> Result<Value, McpError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let params = json!({"name": name, "arguments": arguments, "_meta": {"progressToken": id}});
        self.request_with_id(id, "tools/call", Some(params), timeout)
            .await
    }

    /// `ping`.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn ping(&self, timeout: Duration) -> Result<(), McpError> {
        self.request("ping", None, timeout).await.map(|_| ())
    }

    /// Sends a notification.
    ///
    /// # Errors
    /// [`McpError::Closed`] when the connection is gone.
    pub async fn notify(&self, method: &str, params: Option<Value>) -> Result<(), McpError> {
        self.inner
            .transport
            .send(jsonrpc::notification(method, params))
            .await
            .map_err(|m| McpError::Closed {
                server: self.inner.server.clone(),
                message: m,
            })
    }

    /// One request with a timeout.
    ///
    /// # Errors
    /// [`McpError::Timeout`] (the request is cancelled), [`McpError::Rpc`] for an error answer,
    /// [`McpError::Closed`] when the connection ends first.
    pub async fn request(
        &self,
        method: &'static str,
        params: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, McpError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.request_with_id(id, method, params, timeout).await
    }

    async fn request_with_id(
        &self,
        id: u64,
        method: &'static str,
        params: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, McpError> {
        if let Some(e) = self.inner.closed_error() {
            return Err(e);
        }
        let (tx, rx) = oneshot::channel();
        self.inner.pending().insert(id, Pending { tx, method });
        let mut guard = Abandon {
            inner: &self.inner,
            id,
            method,
            reason: "the caller stopped waiting (run cancelled)",
            armed: true,
        };
        let sent = self
            .inner
            .transport
            .send(jsonrpc::request(id, method, params))
            .await;
        if let Err(m) = sent {
            guard.armed = false;
            self.inner.pending().remove(&id);
            return Err(McpError::Closed {
                server: self.inner.server.clone(),
                message: m,
            });
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => {
                guard.armed = false;
                r
            }
            Ok(Err(_)) => {
                guard.armed = false;
                Err(self.inner.closed_error().unwrap_or(McpError::Closed {
                    server: self.inner.server.clone(),
                    message: "the connection ended".into(),
                }))
            }
            Err(_) => {
                guard.reason = "timeout";
                Err(McpError::Timeout {
                    server: self.inner.server.clone(),
                    method: method.to_owned(),
                    secs: timeout.as_secs().max(1),
                })
            }
        }
    }

    /// Ends the connection.
    pub fn close(&self) {
        self.inner.transport.close();
    }
}

/// Cancels a request nobody waits for any more (dropped future or timeout).
struct Abandon<'a> {
    inner: &'a Inner,
    id: u64,
    method: &'static str,
    reason: &'static str,
    armed: bool,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.inner.pending().remove(&self.id);
        // The spec forbids cancelling `initialize`.
        if self.method != "initialize" && self.inner.closed.borrow().is_none() {
            self.inner.transport.send_now(jsonrpc::notification(
                "notifications/cancelled",
                Some(json!({"requestId": self.id, "reason": self.reason})),
            ));
        }
    }
}

async fn dispatch(
    inner: std::sync::Weak<Inner>,
    mut inbound: tokio::sync::mpsc::Receiver<Inbound>,
) {
    while let Some(msg) = inbound.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        match msg {
            Inbound::Message(m) => handle(&inner, m),
            Inbound::Closed(why) => {
                close(&inner, why);
                return;
            }
        }
    }
    if let Some(inner) = inner.upgrade() {
        close(&inner, "the transport stopped".into());
    }
}

fn close(inner: &Inner, why: String) {
    inner.closed.send_replace(Some(why.clone()));
    let waiting: Vec<Pending> = inner.pending().drain().map(|(_, p)| p).collect();
    for p in waiting {
        let _ = p.tx.send(Err(McpError::Closed {
            server: inner.server.clone(),
            message: format!("{why} (while waiting for {})", p.method),
        }));
    }
    inner.observer.event(&inner.server, Event::Closed(why));
}

fn handle(inner: &Arc<Inner>, m: Incoming) {
    let report = |e: Event| inner.observer.event(&inner.server, e);
    match m {
        Incoming::Result { id, result } => match inner.pending().remove(&id) {
            Some(p) => {
                let _ = p.tx.send(Ok(result));
            }
            None => report(Event::Malformed(format!(
                "a response to request {id}, which is not waiting (late or unknown)"
            ))),
        },
        Incoming::Error {
            id: Some(id),
            code,
            message,
        } => match inner.pending().remove(&id) {
            Some(p) => {
                let _ = p.tx.send(Err(McpError::Rpc {
                    server: inner.server.clone(),
                    method: p.method.to_owned(),
                    code,
                    message,
                }));
            }
            None => report(Event::Malformed(format!(
                "an error for request {id}, which is not waiting: {message}"
            ))),
        },
        Incoming::Error {
            id: None,
            message,
            code,
        } => report(Event::Malformed(format!(
            "an error without a request id ({code}): {message}"
        ))),
        Incoming::Notification { method, params } => match method.as_str() {
            "notifications/tools/list_changed" => {
                inner.tools_changed.send_modify(|n| *n += 1);
                report(Event::ToolsChanged);
            }
            "notifications/progress" => {
                if let (Some(request), Some(progress)) = (
                    params["progressToken"].as_u64(),
                    params["progress"].as_f64(),
                ) {
                    report(Event::Progress {
                        request,
                        progress,
                        total: params["total"].as_f64(),
                    });
                }
            }
            // Logging, resource updates, a server's own cancellations: nothing to do.
            _ => {}
        },
        Incoming::Request { id, method } => {
            let transport = inner.transport.clone();
            let answer = jsonrpc::answer(&id, &method);
            tokio::spawn(async move {
                let _ = transport.send(answer).await;
            });
        }
        Incoming::Malformed(why) => report(Event::Malformed(why)),
    }
}
