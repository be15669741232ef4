//! The fake model server.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::Reply;
use crate::render::{self, Answer, Format};

/// One request the server received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// Request path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// The body parsed as JSON (`Value::Null` when it was not JSON).
    pub body: Value,
    /// The body's size on the wire, in bytes.
    pub bytes: usize,
}

#[derive(Debug)]
struct Inner {
    script: VecDeque<Reply>,
    default: Reply,
    requests: Vec<RecordedRequest>,
    /// Texts embedded so far (`POST /v1/embeddings`), kept apart from model requests.
    embedded: Vec<String>,
    /// Whether `/v1/embeddings` answers 503.
    embeddings_down: bool,
}

/// Server state plus a notification fired on every recorded request.
#[derive(Debug)]
struct SharedState {
    inner: Mutex<Inner>,
    arrived: tokio::sync::Notify,
}

type Shared = Arc<SharedState>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    s.inner.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A scripted model server on loopback. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeLlm {
    addr: SocketAddr,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl FakeLlm {
    /// Starts on `127.0.0.1:0` with `script`, then echoing.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start(script: Vec<Reply>) -> std::io::Result<Self> {
        Self::bind(SocketAddr::from(([127, 0, 0, 1], 0)), script, Reply::Echo).await
    }

    /// Starts on `addr` with `script`, answering `default` once the script is used up.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn bind(
        addr: SocketAddr,
        script: Vec<Reply>,
        default: Reply,
    ) -> std::io::Result<Self> {
        let state: Shared = Arc::new(SharedState {
            arrived: tokio::sync::Notify::new(),
            inner: Mutex::new(Inner {
                script: script.into(),
                default,
                requests: Vec::new(),
                embedded: Vec::new(),
                embeddings_down: false,
            }),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(openai))
            .route("/v1/messages", post(anthropic))
            .route("/v1/models", get(models))
            .route("/v1/embeddings", post(embeddings))
            .route("/v1beta/models", get(models))
            .route("/v1beta/models/{call}", post(gemini))
            .route("/_stats", get(stats))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, state, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL for either wire format: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every text embedded so far, in order.
    pub fn embedded(&self) -> Vec<String> {
        lock(&self.state).embedded.clone()
    }

    /// Makes `/v1/embeddings` answer 503 (an embeddings server that is down), or answer again.
    pub fn set_embeddings_down(&self, down: bool) {
        lock(&self.state).embeddings_down = down;
    }

    /// The base URL for Gemini clients (`http://127.0.0.1:port/v1beta`).
    pub fn gemini_base_url(&self) -> String {
        format!("http://{}/v1beta", self.addr)
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// Waits until at least `n` requests have arrived, for at most `timeout`. Returns whether
    /// they did. Event-driven: wakes on each request, no polling.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let wait = async {
            loop {
                // Register interest before checking, so a request between the check and the
                // await is not missed.
                let notified = self.state.arrived.notified();
                if lock(&self.state).requests.len() >= n {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// Appends a reply to the script.
    pub fn push(&self, reply: Reply) {
        lock(&self.state).script.push_back(reply);
    }

    /// Runs until the server task ends (used by the `pincer-fake-llm` binary).
    ///
    /// # Errors
    /// When the server task panicked.
    pub async fn run_forever(mut self) -> Result<(), tokio::task::JoinError> {
        (&mut self.task).await
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Words that mean the same thing share a dimension, so similar meaning gives similar vectors
/// without sharing words.
const CONCEPTS: &[&[&str]] = &[
    &["car", "automobile", "vehicle", "sedan", "drive", "driving"],
    &["dog", "puppy", "canine", "hound"],
    &["happy", "glad", "joyful", "cheerful"],
    &["doctor", "physician", "dentist", "appointment"],
];
const DIMS: usize = 32;

/// A deterministic "embedding": one dimension per concept, hashed dimensions for other words.
fn embed_text(text: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; DIMS];
    for w in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let w = w.to_lowercase();
        let dim = CONCEPTS
            .iter()
            .position(|c| c.contains(&w.as_str()))
            .unwrap_or_else(|| {
                let h = w
                    .bytes()
                    .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
                CONCEPTS.len() + usize::try_from(h % (DIMS - CONCEPTS.len()) as u64).unwrap_or(0)
            });
        v[dim] += if dim < CONCEPTS.len() { 3.0 } else { 1.0 };
    }
    v
}

/// `POST /v1/embeddings` (OpenAI shape).
async fn embeddings(State(s): State<Shared>, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            render::error_body(Format::OpenAi, 400),
        )
            .into_response();
    };
    let inputs: Vec<String> = match &req["input"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    {
        let mut inner = lock(&s);
        if inner.embeddings_down {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                render::error_body(Format::OpenAi, 503),
            )
                .into_response();
        }
        inner.embedded.extend(inputs.iter().cloned());
    }
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| serde_json::json!({"object": "embedding", "index": i, "embedding": embed_text(t)}))
        .collect();
    axum::Json(serde_json::json!({"object": "list", "data": data, "model": req["model"]}))
        .into_response()
}

async fn models() -> impl IntoResponse {
    axum::Json(json!({"object": "list", "data": [{"id": "fake-model", "object": "model"}]}))
}

async fn openai(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    handle(Format::OpenAi, "/v1/chat/completions", &s, &headers, &body).await
}

async fn anthropic(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    handle(Format::Anthropic, "/v1/messages", &s, &headers, &body).await
}

/// `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`.
async fn gemini(
    State(s): State<Shared>,
    axum::extract::Path(call): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((model, method)) = call.rsplit_once(':') else {
        return (
            StatusCode::NOT_FOUND,
            render::error_body(Format::Gemini, 404),
        )
            .into_response();
    };
    let stream = match method {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => {
            return (
                StatusCode::NOT_FOUND,
                render::error_body(Format::Gemini, 404),
            )
                .into_response();
        }
    };
    // The format carries `stream` and the model in the URL; the rest of `handle` reads them from
    // the body, so add them (the recorded request keeps them too).
    let mut v: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => Value::Null,
    };
    if let Some(m) = v.as_object_mut() {
        m.insert("stream".into(), Value::from(stream));
        m.insert("model".into(), Value::from(model));
    }
    let body = Bytes::from(if v.is_null() {
        body.to_vec()
    } else {
        v.to_string().into_bytes()
    });
    handle(Format::Gemini, "/v1beta/models", &s, &headers, &body).await
}

/// `GET /_stats`: how many requests arrived, the size of the last one and its body — what the
/// benchmark runner reads to measure what Pincer sends upstream per turn.
async fn stats(State(s): State<Shared>) -> Response {
    let inner = lock(&s);
    let last = inner.requests.last();
    axum::Json(serde_json::json!({
        "requests": inner.requests.len(),
        "last_bytes": last.map(|r| r.bytes),
        "last_estimated_tokens": last.map(|r| r.bytes / 4),
        "last_body": last.map(|r| r.body.clone()),
    }))
    .into_response()
}

async fn handle(
    format: Format,
    path: &str,
    s: &Shared,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let reply = {
        let mut inner = lock(s);
        inner.requests.push(RecordedRequest {
            path: path.to_owned(),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: parsed.clone().unwrap_or(Value::Null),
            bytes: body.len(),
        });
        let default = inner.default.clone();
        inner.script.pop_front().unwrap_or(default)
    };
    s.arrived.notify_waiters();
    let Some(req) = parsed else {
        return (StatusCode::BAD_REQUEST, render::error_body(format, 400)).into_response();
    };
    let mut reply = reply;
    let mut drip = None;
    loop {
        match reply {
            Reply::Drip {
                delay_ms,
                reply: inner,
            } => {
                drip = Some(Duration::from_millis(delay_ms));
                reply = *inner;
            }
            // A slow server is the fault being simulated here, not test synchronisation.
            Reply::Slow {
                delay_ms,
                reply: inner,
            } => {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                reply = *inner;
            }
            Reply::WhenAsked {
                marker,
                reply: asked,
                otherwise,
            } => {
                reply = if last_is_user_asking(&req, &marker) {
                    *asked
                } else {
                    *otherwise
                };
            }
            other => {
                reply = other;
                break;
            }
        }
    }
    let stream = req.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("fake-model")
        .to_owned();
    let input_tokens = (body.len() / 4) as u64;
    let echo;
    let blocked = matches!(reply, Reply::Blocked);
    let (text, calls, cut): (&str, &[crate::ScriptedCall], bool) = match &reply {
        Reply::Text { text } => (text, &[], false),
        Reply::Blocked => ("", &[], false),
        Reply::Echo => {
            echo = format!("echo: {}", last_user_text(&req));
            (&echo, &[], false)
        }
        Reply::ToolCalls { calls, text } => (text, calls, false),
        Reply::CutStream { text } => (text, &[], true),
        Reply::Status {
            code,
            retry_after,
            body,
        } => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = (
                status,
                body.clone()
                    .unwrap_or_else(|| render::error_body(format, *code)),
            )
                .into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            if let Some(secs) = retry_after
                && let Ok(v) = header::HeaderValue::from_str(&secs.to_string())
            {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return resp;
        }
        Reply::Malformed => {
            return if stream {
                sse_response(
                    vec![Bytes::from_static(
                        b"data: {\"choices\": [{\"delta\": {\"content\": \"oops\"\n\n",
                    )],
                    false,
                    None,
                )
            } else {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    "{\"choices\": [{\"message\": ",
                )
                    .into_response()
            };
        }
        Reply::Slow { .. } | Reply::WhenAsked { .. } | Reply::Drip { .. } => {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let answer = Answer {
        blocked,
        text,
        calls,
        input_tokens,
        model: &model,
    };
    if stream || cut {
        let r = render::stream(format, &answer, cut);
        sse_response(r.chunks, r.cut, drip)
    } else {
        axum::Json(render::whole(format, &answer)).into_response()
    }
}

fn sse_response(chunks: Vec<Bytes>, cut: bool, drip: Option<Duration>) -> Response {
    // A slow writer is the fault being simulated, not test synchronisation.
    let items =
        futures_util::stream::iter(chunks.into_iter().enumerate()).then(move |(i, c)| async move {
            if let Some(d) = drip.filter(|_| i > 0) {
                tokio::time::sleep(d).await;
            }
            Ok::<Bytes, std::io::Error>(c)
        });
    // An error item makes the server abort the connection mid-body: a real cut. Before it the body
    // reports "not ready" once, which makes hyper flush the bytes already produced, so the client
    // has a started answer in hand when the connection dies.
    let tail = futures_util::stream::iter(cut.then_some(())).then(|()| async {
        tokio::task::yield_now().await;
        Err::<Bytes, _>(std::io::Error::other("cut"))
    });
    let body = Body::from_stream(items.chain(tail));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn text_of(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            (!texts.is_empty()).then(|| texts.join(" "))
        }
        _ => None,
    }
}

/// Whether the last message is a user message whose text contains `marker`.
fn last_is_user_asking(req: &Value, marker: &str) -> bool {
    req.get("messages")
        .and_then(Value::as_array)
        .and_then(|msgs| msgs.last())
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|m| m.get("content").and_then(text_of))
        .is_some_and(|t| t.contains(marker))
}

fn last_user_text(req: &Value) -> String {
    // Gemini: `contents` of `{role, parts: [{text}]}`.
    if let Some(contents) = req.get("contents").and_then(Value::as_array) {
        return contents
            .iter()
            .rev()
            .filter(|c| c.get("role").and_then(Value::as_str) == Some("user"))
            .find_map(|c| {
                let t: Vec<&str> = c
                    .get("parts")?
                    .as_array()?
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect();
                (!t.is_empty()).then(|| t.join(" "))
            })
            .unwrap_or_default();
    }
    req.get("messages")
        .and_then(Value::as_array)
        .and_then(|msgs| {
            msgs.iter()
                .rev()
                .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
                .find_map(|m| m.get("content").and_then(text_of))
        })
        .unwrap_or_default()
}
