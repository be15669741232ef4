//! A streamed chat completion: the agent's text as the worker publishes it (`run.text` events,
//! numbered, from whichever node runs the task), then the end.
//!
//! The text arrives on the event bus; if any piece is missing (it fell out of the ring, or the
//! relay from another node dropped it), streaming stops adding pieces and the end sends what the
//! finished answer has beyond what was sent, so the client never receives a piece twice or out
//! of order.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use pincer_store::TaskRecord;
use pincer_types::TaskStatus;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{MAX_WAIT, task_failed, usage};
use crate::AppState;

/// Chunks buffered for a slow client before the producer waits.
const BUFFER: usize = 64;
/// How long after the task ended its last text may still be on its way from another node.
const TRAILING: Duration = Duration::from_secs(2);
/// Re-read the task at least this often (its end may be another node's doing).
const RECHECK: Duration = Duration::from_secs(1);

pub(super) fn respond(
    st: Arc<AppState>,
    task: TaskRecord,
    seen: u64,
    model: String,
    include_usage: bool,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (tx, mut rx) = mpsc::channel::<Event>(BUFFER);
    tokio::spawn(produce(
        st,
        task,
        seen,
        Chunker {
            id: String::new(),
            created: 0,
            model,
        },
        include_usage,
        tx,
    ));
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|e| e.map(Ok)));
    Sse::new(stream).keep_alive(KeepAlive::default())
}

struct Chunker {
    id: String,
    created: i64,
    model: String,
}

impl Chunker {
    fn chunk(&self, delta: Value, finish: Value) -> Event {
        Event::default().data(
            json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                   "model": self.model,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            .to_string(),
        )
    }
}

fn error_event(code: &str, message: String) -> Event {
    Event::default().data(json!({"error": {"code": code, "message": message}}).to_string())
}

/// Follows the task and sends chunks until it ends (or the client goes away).
async fn produce(
    st: Arc<AppState>,
    task: TaskRecord,
    seen: u64,
    mut c: Chunker,
    include_usage: bool,
    tx: mpsc::Sender<Event>,
) {
    c.id = format!("chatcmpl-{}", task.id);
    c.created = task.created_at.timestamp();
    let send = |e: Event| {
        let tx = tx.clone();
        async move { tx.send(e).await.is_ok() }
    };
    if !send(c.chunk(json!({"role": "assistant", "content": ""}), Value::Null)).await {
        return;
    }
    let id = task.id.to_string();
    let mut changes = st.events.subscribe();
    let (mut after, mut next, mut broken, mut finished) = (seen, 0u64, false, false);
    let mut streamed = String::new();
    let deadline = Instant::now() + MAX_WAIT;
    let mut last_read = Instant::now();
    let mut ended_at: Option<Instant> = None;
    let mut t = task;
    loop {
        let (events, gap) = st.events.since(after);
        broken |= gap;
        let mut touched = false;
        for e in events {
            after = e.id;
            if e.data.get("task").and_then(Value::as_str) != Some(id.as_str()) {
                continue;
            }
            match e.kind.as_str() {
                "run.text" => {
                    let text = e.data["text"].as_str().unwrap_or_default();
                    if !broken && e.data["n"].as_u64() == Some(next) {
                        next += 1;
                        streamed.push_str(text);
                        if !send(c.chunk(json!({"content": text}), Value::Null)).await {
                            return;
                        }
                    } else {
                        broken = true;
                    }
                }
                "run.finished" => finished = true,
                _ => touched = true,
            }
        }
        if touched || last_read.elapsed() >= RECHECK {
            last_read = Instant::now();
            match st.store.task(t.id).await {
                Ok(Some(fresh)) => t = fresh,
                Ok(None) => {
                    send(error_event("internal", "the task vanished".into())).await;
                    return;
                }
                Err(e) => {
                    send(error_event("store_unavailable", e.to_string())).await;
                    return;
                }
            }
        }
        if t.status.is_terminal() {
            let at = *ended_at.get_or_insert_with(Instant::now);
            if finished || at.elapsed() >= TRAILING {
                break;
            }
        }
        if Instant::now() >= deadline || st.events.is_closed() {
            send(error_event(
                "timeout",
                format!(
                    "task {} did not finish in time; follow it at /v1/tasks/{}",
                    t.id, t.id
                ),
            ))
            .await;
            return;
        }
        let _ = tokio::time::timeout(Duration::from_millis(250), changes.changed()).await;
    }
    if t.status != TaskStatus::Succeeded {
        let e = task_failed(&t);
        send(error_event(e.code, e.message)).await;
        return;
    }
    let output = t.output.clone().unwrap_or_default();
    let rest = if streamed.is_empty() {
        Some(output.as_str())
    } else if broken {
        output.strip_prefix(streamed.as_str())
    } else {
        None
    };
    if let Some(rest) = rest.filter(|r| !r.is_empty())
        && !send(c.chunk(json!({"content": rest}), Value::Null)).await
    {
        return;
    }
    if !send(c.chunk(json!({}), json!("stop"))).await {
        return;
    }
    if include_usage {
        let u = Event::default().data(
            json!({"id": c.id, "object": "chat.completion.chunk", "created": c.created,
                   "model": c.model, "choices": [], "usage": usage(&t)})
            .to_string(),
        );
        if !send(u).await {
            return;
        }
    }
    send(Event::default().data("[DONE]")).await;
}
