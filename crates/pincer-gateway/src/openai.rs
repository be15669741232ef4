//! `POST /v1/chat/completions`: the OpenAI chat-completions wire format on top of the task
//! queue, so other tools (and benchmarks) can drive Pincer. `model` names the agent; the last
//! user message becomes a task in the session named by `user` (default `openai`); the same
//! queue, policy, approvals and audit apply. Streaming sends the finished answer as one chunk
//! followed by `[DONE]` (the queue produces whole answers). Off unless `gateway.openai_compat`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use pincer_store::NewTask;
use pincer_types::{AgentId, SessionKey, TaskStatus};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::handlers::ApiJson;
use crate::{ApiError, AppState};

/// Longest a completion waits for its task.
const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(3600);

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct ChatRequest {
    /// The agent id.
    model: String,
    /// The conversation; the last `user` message is the task.
    messages: Vec<ChatMessage>,
    /// Stream the answer as server-sent events.
    #[serde(default)]
    stream: bool,
    /// Session name (default `openai`).
    #[serde(default)]
    user: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
struct ChatMessage {
    role: String,
    /// Text, or a list of content parts (`{"type": "text", "text": …}`).
    #[serde(default)]
    content: Value,
}

pub(crate) fn request_schema() -> Value {
    crate::handlers::schema::<ChatRequest>()
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

pub(crate) async fn chat_completions(
    State(st): State<Arc<AppState>>,
    ApiJson(req): ApiJson<ChatRequest>,
) -> Result<Response, ApiError> {
    if !st.openai_compat {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_enabled",
            "the OpenAI-compatible endpoint is off (gateway.openai_compat = true enables it)",
        ));
    }
    let agent: AgentId = req
        .model
        .parse()
        .ok()
        .filter(|a| st.agents.contains(a))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_agent",
                format!("no agent `{}` (model names the agent)", req.model),
            )
        })?;
    let input = req
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .map(|m| text_of(&m.content))
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("invalid_request", "no user message with text"))?;
    let session = req.user.as_deref().unwrap_or("openai");
    let session_key = SessionKey::for_peer(&agent, "openai", session)
        .map_err(|e| ApiError::bad_request("invalid_request", format!("user: {e}")))?;
    let seen = st.events.latest();
    let (task, _) = st
        .store
        .submit(
            NewTask {
                kind: pincer_store::TaskKind::Message,
                agent: agent.clone(),
                session_key,
                input,
                idempotency_key: None,
                deadline: None,
            },
            Utc::now(),
        )
        .await
        .map_err(ApiError::internal)?;
    st.wake.notify_one();
    st.events
        .publish("task.queued", json!({"task": task.id, "agent": agent}));
    // Wait for the end (approvals included) on the event bus: every event about the task
    // since before it was submitted wakes a re-read.
    let deadline = tokio::time::Instant::now() + MAX_WAIT;
    let mut changes = st.events.watch_task_since(task.id, seen);
    let mut t = task;
    let done = loop {
        if t.status.is_terminal() {
            break t;
        }
        if tokio::time::Instant::now() >= deadline || st.events.is_closed() {
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                format!(
                    "task {} did not finish in time; follow it at /v1/tasks/{}",
                    t.id, t.id
                ),
            ));
        }
        // Only this task's events wake us (and a re-read at least once a second, for changes
        // made by another process).
        let recheck = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        changes.changed(&st.events, deadline.min(recheck)).await;
        t = st
            .store
            .task(t.id)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::internal("task vanished"))?;
    };
    if done.status != TaskStatus::Succeeded {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "task_failed",
            format!(
                "task {} ended {}: {}",
                done.id,
                done.status.as_str(),
                done.error.unwrap_or_default()
            ),
        ));
    }
    let id = format!("chatcmpl-{}", done.id);
    let created = done.created_at.timestamp();
    let content = done.output.unwrap_or_default();
    if req.stream {
        let chunk = json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": req.model,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}],
        });
        let events = [
            Ok::<_, std::convert::Infallible>(Event::default().data(chunk.to_string())),
            Ok(Event::default().data("[DONE]")),
        ];
        return Ok(Sse::new(futures_util::stream::iter(events)).into_response());
    }
    Ok(Json(json!({
        "id": id, "object": "chat.completion", "created": created, "model": req.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop"}],
    }))
    .into_response())
}
