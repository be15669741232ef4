//! The OpenAI-compatible API (`gateway.openai_compat`): `POST /v1/chat/completions` on top of
//! the task queue — the same policy, approvals and audit — and `GET /v1/models` listing the
//! agents (`model` names the agent).
//!
//! Conversations are the client's, as the wire format means them: by default a request's
//! `messages` are the whole history, run in a fresh session of its own, so no two requests (and
//! no two clients) ever share one. A client that wants Pincer to keep the conversation sends
//! `X-Pincer-Session: <name>`; that session belongs to the calling token — another token naming
//! the same session gets its own — and only the last message of each request is new.
//!
//! Streaming sends the agent's text as it is produced (coalesced `run.text` events from the
//! worker, wherever it runs), then `finish_reason`, then `usage` when `stream_options.
//! include_usage` asks, then `[DONE]`.

mod request;
mod stream;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Utc;
use pincer_store::{NewTask, TaskRecord};
use pincer_types::{AgentId, SessionKey, TaskStatus};
use serde_json::{Value, json};

use crate::handlers::ApiJson;
use crate::{ApiError, AppState, Caller};

pub(crate) use request::ChatRequest;

/// Longest a completion waits for its task.
const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(3600);

/// The header that asks for a server-side conversation.
pub const SESSION_HEADER: &str = "x-pincer-session";

pub(crate) fn request_schema() -> Value {
    crate::handlers::schema::<ChatRequest>()
}

fn enabled(st: &AppState) -> Result<(), ApiError> {
    if st.openai_compat {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_enabled",
            "the OpenAI-compatible endpoint is off (gateway.openai_compat = true enables it)",
        ))
    }
}

/// `GET /v1/models`: every agent, as a model.
pub(crate) async fn models(State(st): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    enabled(&st)?;
    let data: Vec<Value> = st
        .agents
        .iter()
        .map(|a| json!({"id": a, "object": "model", "created": 0, "owned_by": "pincer"}))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

/// The OpenAI `usage` object of a finished task (zeros when the model reported none).
fn usage(t: &TaskRecord) -> Value {
    let u = t.usage.unwrap_or_default();
    json!({"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens,
           "total_tokens": u.input_tokens.saturating_add(u.output_tokens)})
}

/// The error for a task that did not succeed.
fn task_failed(t: &TaskRecord) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "task_failed",
        format!(
            "task {} ended {}: {}",
            t.id,
            t.status.as_str(),
            t.error.clone().unwrap_or_default()
        ),
    )
}

/// The session a request runs in: a fresh one holding the request's history, or the caller's
/// named one.
async fn session_for(
    st: &AppState,
    agent: &AgentId,
    caller: &str,
    headers: &HeaderMap,
    history: Vec<Value>,
) -> Result<SessionKey, ApiError> {
    let named = headers
        .get(SESSION_HEADER)
        .map(|v| {
            v.to_str()
                .ok()
                .filter(|s| !s.is_empty() && s.len() <= 64)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_request",
                        "X-Pincer-Session must be 1-64 printable ASCII characters",
                    )
                })
        })
        .transpose()?;
    if let Some(name) = named {
        // The caller's own conversation: user names have no `:`, so no two callers' keys meet
        // (a name `req-…` can only ever meet the same caller's own fresh conversations).
        return SessionKey::for_peer(agent, "openai", &format!("{caller}:{name}")).map_err(|e| {
            ApiError::bad_request("invalid_request", format!("X-Pincer-Session: {e}"))
        });
    }
    // A fresh conversation, still under the caller's name (usage and budgets count per user).
    let key = SessionKey::for_peer(
        agent,
        "openai",
        &format!("{caller}:req-{}", pincer_types::TaskId::new()),
    )
    .map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))?;
    if !history.is_empty() {
        let session = st
            .store
            .current_session(&key, agent)
            .await
            .map_err(|e| ApiError::store(&e))?;
        st.store
            .append_messages(session.id, history)
            .await
            .map_err(|e| ApiError::store(&e))?;
    }
    Ok(key)
}

pub(crate) async fn chat_completions(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ChatRequest>,
) -> Result<Response, ApiError> {
    enabled(&st)?;
    let agent: AgentId = req
        .model
        .parse()
        .ok()
        .filter(|a| st.agents.contains(a))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_agent",
                format!(
                    "no agent `{}` (model names the agent; GET /v1/models lists them)",
                    req.model
                ),
            )
        })?;
    let conversation = req.conversation()?;
    crate::handlers::quota(&st, &who).await?;
    let session_key =
        session_for(&st, &agent, who.principal(), &headers, conversation.history).await?;
    let seen = st.events.latest();
    let (task, _) = st
        .store
        .submit(
            NewTask {
                kind: pincer_store::TaskKind::Message,
                agent: agent.clone(),
                session_key,
                input: conversation.input,
                idempotency_key: None,
                deadline: None,
                owner: Some(who.principal().to_owned()),
            },
            Utc::now(),
        )
        .await
        .map_err(crate::handlers::task_error)?;
    st.wake.notify_one();
    st.events
        .publish("task.queued", json!({"task": task.id, "agent": agent}));
    if req.stream {
        let usage = req.include_usage();
        return Ok(stream::respond(st, task, seen, req.model, usage).into_response());
    }
    let done = wait_done(&st, task, seen).await?;
    if done.status != TaskStatus::Succeeded {
        return Err(task_failed(&done));
    }
    Ok(Json(json!({
        "id": format!("chatcmpl-{}", done.id), "object": "chat.completion",
        "created": done.created_at.timestamp(), "model": req.model,
        "choices": [{"index": 0, "message": {"role": "assistant",
                     "content": done.output.clone().unwrap_or_default()},
                     "finish_reason": "stop"}],
        "usage": usage(&done),
    }))
    .into_response())
}

/// Waits for the task's end (approvals included) on the event bus: every event about the task
/// since before it was submitted wakes a re-read.
async fn wait_done(st: &AppState, task: TaskRecord, seen: u64) -> Result<TaskRecord, ApiError> {
    let deadline = tokio::time::Instant::now() + MAX_WAIT;
    let mut changes = st.events.watch_task_since(task.id, seen);
    let mut t = task;
    loop {
        if t.status.is_terminal() {
            return Ok(t);
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
            .map_err(crate::handlers::task_error)?
            .ok_or_else(|| ApiError::internal("task vanished"))?;
    }
}
