//! Streamable HTTP (MCP 2025-03-26 and later): every message is a POST to the server's one
//! endpoint; the answer is `202` (notifications), one JSON body, or an event stream carrying the
//! response and anything the server sends before it. The `Mcp-Session-Id` the server gives at
//! initialize is sent on every later request, with `MCP-Protocol-Version`. A GET stream, when the
//! server offers one, carries notifications such as `tools/list_changed`. Bodies and events are
//! bounded; redirects are never followed; the client is built by the caller on an address the
//! egress policy checked (`hub.rs`).

use std::sync::{Arc, Mutex};

use pincer_providers::sse::SseDecoder;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::{Connection, INBOUND_QUEUE, Inbound, SendFuture, Transport};
use crate::jsonrpc::{Incoming, parse_all};

/// Requests in flight at once.
const MAX_IN_FLIGHT: usize = 16;

#[derive(Debug)]
struct Shared {
    client: reqwest::Client,
    url: String,
    headers: HeaderMap,
    session: Mutex<Option<HeaderValue>>,
    version: Mutex<Option<HeaderValue>>,
    inbound: mpsc::Sender<Inbound>,
    max_message: usize,
    slots: Semaphore,
    stop: CancellationToken,
}

#[derive(Debug)]
struct Http {
    shared: Arc<Shared>,
}

/// Connects to `url` with `client` (built on a checked address), sending `headers` (auth) on
/// every request. Messages over `max_message` bytes end the connection.
pub fn connect(
    client: reqwest::Client,
    url: &str,
    headers: HeaderMap,
    max_message: usize,
) -> Connection {
    let (tx, rx) = mpsc::channel(INBOUND_QUEUE);
    let shared = Arc::new(Shared {
        client,
        url: url.to_owned(),
        headers,
        session: Mutex::new(None),
        version: Mutex::new(None),
        inbound: tx,
        max_message,
        slots: Semaphore::new(MAX_IN_FLIGHT),
        stop: CancellationToken::new(),
    });
    Connection {
        transport: Arc::new(Http { shared }),
        inbound: rx,
    }
}

impl Transport for Http {
    fn send(&self, msg: Vec<u8>) -> SendFuture<'_> {
        Box::pin(async move {
            if self.shared.stop.is_cancelled() {
                return Err("the connection is closed".into());
            }
            self.shared
                .slots
                .acquire()
                .await
                .map_err(|_| "the connection is closed".to_owned())?
                .forget();
            let shared = Arc::clone(&self.shared);
            tokio::spawn(async move {
                post(&shared, msg).await;
                shared.slots.add_permits(1);
            });
            Ok(())
        })
    }

    fn send_now(&self, msg: Vec<u8>) {
        let shared = Arc::clone(&self.shared);
        if let Ok(h) = tokio::runtime::Handle::try_current() {
            h.spawn(async move { post(&shared, msg).await });
        }
    }

    fn negotiated(&self, version: &str) {
        self.set_version(version);
    }

    fn close(&self) {
        if self.shared.stop.is_cancelled() {
            return;
        }
        self.shared.stop.cancel();
        let session = lock(&self.shared.session).clone();
        if let (Some(session), Ok(h)) = (session, tokio::runtime::Handle::try_current()) {
            let shared = Arc::clone(&self.shared);
            h.spawn(async move {
                let _ = shared
                    .client
                    .delete(&shared.url)
                    .headers(shared.headers.clone())
                    .header("mcp-session-id", session)
                    .send()
                    .await;
            });
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The id and method of our own message (to fail the right request when HTTP fails).
fn id_of(msg: &[u8]) -> (Option<u64>, bool) {
    match serde_json::from_slice::<Value>(msg) {
        Ok(v) => (v["id"].as_u64(), v["method"].as_str() == Some("initialize")),
        Err(_) => (None, false),
    }
}

fn request(shared: &Shared, method: reqwest::Method) -> reqwest::RequestBuilder {
    let mut b = shared
        .client
        .request(method, &shared.url)
        .headers(shared.headers.clone())
        .header(ACCEPT, "application/json, text/event-stream");
    if let Some(s) = lock(&shared.session).clone() {
        b = b.header("mcp-session-id", s);
    }
    if let Some(v) = lock(&shared.version).clone() {
        b = b.header("mcp-protocol-version", v);
    }
    b
}

async fn post(shared: &Arc<Shared>, msg: Vec<u8>) {
    let (id, is_init) = id_of(&msg);
    let fail = |m: String| async move {
        match id {
            Some(id) => {
                let _ = shared
                    .inbound
                    .send(Inbound::Message(Incoming::Error {
                        id: Some(id),
                        code: -32000,
                        message: m,
                    }))
                    .await;
            }
            None => {
                let _ = shared
                    .inbound
                    .send(Inbound::Message(Incoming::Malformed(m)))
                    .await;
            }
        }
    };
    let sent = request(shared, reqwest::Method::POST)
        .header(CONTENT_TYPE, "application/json")
        .body(msg)
        .send();
    let resp = tokio::select! {
        r = sent => r,
        () = shared.stop.cancelled() => return,
    };
    let resp = match resp {
        Ok(r) => r,
        Err(e) => return fail(format!("HTTP request failed: {}", without_url(&e))).await,
    };
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_FOUND && lock(&shared.session).is_some() {
        let _ = shared
            .inbound
            .send(Inbound::Closed("the server ended the session (404)".into()))
            .await;
        return;
    }
    if status == reqwest::StatusCode::ACCEPTED {
        return;
    }
    if !status.is_success() {
        return fail(format!("the server answered HTTP {status}")).await;
    }
    if is_init && let Some(s) = resp.headers().get("mcp-session-id") {
        *lock(&shared.session) = Some(s.clone());
    }
    let content_type = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("text/event-stream") {
        read_events(shared, resp).await;
    } else if content_type.starts_with("application/json") {
        match body(resp, shared.max_message).await {
            Ok(b) => deliver(shared, &b).await,
            Err(m) => fail(m).await,
        }
    } else {
        fail(format!(
            "the server answered with content type {content_type:?}"
        ))
        .await;
    }
    if is_init {
        start_listening(shared);
    }
}

async fn body(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if out.len() + c.len() > max {
                    return Err(format!("the server sent a message over {max} bytes"));
                }
                out.extend_from_slice(&c);
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(format!("reading the answer: {}", without_url(&e))),
        }
    }
}

async fn deliver(shared: &Shared, bytes: &[u8]) {
    for m in parse_all(bytes) {
        if shared.inbound.send(Inbound::Message(m)).await.is_err() {
            return;
        }
    }
}

async fn read_events(shared: &Shared, mut resp: reqwest::Response) {
    let mut dec = SseDecoder::new(shared.max_message);
    loop {
        let chunk = tokio::select! {
            c = resp.chunk() => c,
            () = shared.stop.cancelled() => return,
        };
        match chunk {
            Ok(Some(c)) => match dec.push(&c) {
                Ok(events) => {
                    for e in events.iter().filter(|e| !e.data.is_empty()) {
                        deliver(shared, e.data.as_bytes()).await;
                    }
                }
                Err(e) => {
                    let _ = shared
                        .inbound
                        .send(Inbound::Message(Incoming::Malformed(format!(
                            "the event stream broke: {}",
                            e.0
                        ))))
                        .await;
                    return;
                }
            },
            Ok(None) => {
                if let Some(e) = dec.finish().filter(|e| !e.data.is_empty()) {
                    deliver(shared, e.data.as_bytes()).await;
                }
                return;
            }
            Err(_) => return,
        }
    }
}

/// Opens the GET stream for the server's own messages, when the server offers one (405 means
/// it does not). One attempt; a dropped stream is not reopened (calls still work over POST).
fn start_listening(shared: &Arc<Shared>) {
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let sent = request(&shared, reqwest::Method::GET).send();
        let resp = tokio::select! {
            r = sent => r,
            () = shared.stop.cancelled() => return,
        };
        if let Ok(resp) = resp
            && resp.status().is_success()
            && resp
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"))
        {
            read_events(&shared, resp).await;
        }
    });
}

impl Http {
    /// Records the protocol version agreed at initialize (sent as a header from now on).
    fn set_version(&self, v: &str) {
        if let Ok(h) = HeaderValue::from_str(v) {
            *lock(&self.shared.version) = Some(h);
        }
    }
}

/// A reqwest error without the URL (which may carry a token in its query).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "<server url>");
    }
    s
}
