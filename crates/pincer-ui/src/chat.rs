//! `/ui/chat`: talk to an agent from the page. Each user has one web conversation per agent
//! (session key `<agent>:web:<user>`); a message is a task like any other — queued, run by a
//! worker under the user's ownership, quotas and approvals — and the page reloads itself while
//! an answer is pending.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::html;
use pincer_gateway::AppState;
use pincer_store::{NewTask, TaskKind};
use pincer_types::{AgentId, Scope, SessionKey};
use serde::Deserialize;
use serde_json::json;

use crate::pages::{layout_live, page_error};
use crate::session::Ui;

/// Longest message.
const MAX_MESSAGE: usize = 16 * 1024;

#[derive(Debug, Deserialize)]
pub(crate) struct ChatQuery {
    #[serde(default)]
    agent: Option<String>,
}

fn agent_of(st: &AppState, name: Option<&str>) -> Option<AgentId> {
    match name {
        Some(n) => n.parse().ok().filter(|a| st.agents.contains(a)),
        None => st.agents.iter().next().cloned(),
    }
}

fn key(agent: &AgentId, user: &str) -> Option<SessionKey> {
    SessionKey::for_peer(agent, "web", user).ok()
}

/// `GET /ui/chat[?agent=]`.
pub(crate) async fn page(
    State(st): State<Arc<AppState>>,
    ui: Ui,
    Query(q): Query<ChatQuery>,
) -> Response {
    if let Err(e) = ui.require(Scope::TasksWrite) {
        return e.into_response();
    }
    let Some(agent) = agent_of(&st, q.agent.as_deref()) else {
        return page_error(StatusCode::NOT_FOUND, "no such agent");
    };
    let Some(key) = key(&agent, &ui.session.user) else {
        return page_error(StatusCode::BAD_REQUEST, "no conversation for this user");
    };
    let mut turns: Vec<_> = st
        .store
        .tasks_of(Some(&ui.session.user), None, 200)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.session_key == key)
        .collect();
    turns.reverse();
    let pending = turns.iter().any(|t| !t.status.is_terminal());
    let agents: Vec<&AgentId> = st.agents.iter().collect();
    layout_live(
        &ui,
        "Chat",
        pending.then_some(2),
        Some("ol.chat"),
        html! {
            form.filters method="get" action="/ui/chat" {
                select name="agent" {
                    @for a in &agents { option value=(a) selected[**a == agent] { (a) } }
                }
                button type="submit" { "Switch agent" }
            }
            ol.chat {
                @for t in &turns {
                    li.me { pre.text { (t.input) } }
                    @match (&t.output, t.status.is_terminal()) {
                        (Some(o), _) => { li.agent { pre.text { (o) } } }
                        (None, false) => { li.agent.pending { pre.text data-stream=(t.id) {} "… " (t.status.as_str()) }
                            @if t.status == pincer_types::TaskStatus::WaitingApproval { " — " a href="/ui/approvals" { "approve" } } }
                        (None, true) => { li.agent.error { (t.status.as_str()) ": " (t.error.as_deref().unwrap_or("")) } }
                    }
                }
            }
            form method="post" action="/ui/chat" {
                input type="hidden" name="csrf" value=(ui.session.csrf);
                input type="hidden" name="agent" value=(agent);
                label for="message" { "Message to " (agent) }
                textarea #message name="message" rows="3" required {}
                button type="submit" { "Send" }
            }
        },
    )
    .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct Say {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    message: String,
}

/// `POST /ui/chat`: queues the message as the user's task (quotas apply).
pub(crate) async fn say(State(st): State<Arc<AppState>>, ui: Ui, Form(f): Form<Say>) -> Response {
    if let Err(e) = ui
        .check_csrf(&f.csrf)
        .and_then(|()| ui.require(Scope::TasksWrite))
    {
        return e.into_response();
    }
    let Some(agent) = agent_of(&st, Some(&f.agent)) else {
        return page_error(StatusCode::NOT_FOUND, "no such agent");
    };
    if f.message.trim().is_empty() || f.message.len() > MAX_MESSAGE {
        return page_error(StatusCode::BAD_REQUEST, "a message is 1 to 16384 bytes");
    }
    match pincer_gateway::governance::check_quota(
        &*st.store,
        &st.governance,
        &ui.session.user,
        ui.session.role,
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(m)) => return page_error(StatusCode::TOO_MANY_REQUESTS, &m),
        Err(e) => return page_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
    let Some(session_key) = key(&agent, &ui.session.user) else {
        return page_error(StatusCode::BAD_REQUEST, "no conversation for this user");
    };
    let submitted = st
        .store
        .submit(
            NewTask {
                kind: TaskKind::Message,
                agent: agent.clone(),
                session_key,
                input: f.message,
                idempotency_key: None,
                deadline: None,
                owner: Some(ui.session.user.clone()),
            },
            Utc::now(),
        )
        .await;
    match submitted {
        Ok((task, _)) => {
            st.wake.notify_one();
            st.events.publish(
                "task.queued",
                json!({"task": task.id, "agent": task.agent, "session_key": task.session_key}),
            );
            Redirect::to(&format!("/ui/chat?agent={agent}")).into_response()
        }
        Err(e) => page_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}
