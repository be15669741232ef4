//! Route handlers. Each validates its input into typed values and answers JSON.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Utc;
use pincer_store::{ApprovalError, ApprovalStatus, NewTask, TaskError};
use pincer_types::{AgentId, SessionKey, TaskId, TaskStatus};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::{ApiError, AppState, Caller};

/// Longest task message.
const MAX_MESSAGE: usize = 64 * 1024;
/// Longest idempotency key.
const MAX_IDEMPOTENCY_KEY: usize = 200;

/// A JSON body whose rejections are typed API errors.
pub(crate) struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(r) => Err(json_error(&r)),
        }
    }
}

/// A query string whose rejections are typed API errors (axum's own are `text/plain`).
pub(crate) struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Self(v)),
            Err(r) => Err(ApiError::bad_request("invalid_query", r.body_text())),
        }
    }
}

fn json_error(r: &JsonRejection) -> ApiError {
    let code = match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_request",
        _ => "invalid_json",
    };
    let status = match r.status() {
        StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
        s => s,
    };
    ApiError::new(status, code, r.body_text())
}

pub(crate) fn task_error(e: TaskError) -> ApiError {
    match e {
        TaskError::NotFound(id) => ApiError::not_found(format!("no task {id}")),
        e @ TaskError::Transition { .. } => {
            ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
        }
        e @ TaskError::LeaseLost(_) => {
            ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
        }
        TaskError::Store(e) => ApiError::store(&e),
    }
}

pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub(crate) async fn readyz(State(st): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    st.store
        .ping()
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", e.to_string()))?;
    Ok(Json(json!({"status": "ready"})))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTask {
    /// The agent that runs it.
    agent: String,
    /// The message (1 to 65536 bytes).
    message: String,
    /// Session name (default `default`); one task runs at a time per session.
    #[serde(default)]
    session: Option<String>,
    /// Same key, same task: a retried submission does not create a second one.
    #[serde(default)]
    idempotency_key: Option<String>,
    /// Seconds until the task is `TIMED_OUT` (1..=86400); default: the agent's run timeout.
    #[serde(default)]
    timeout_secs: Option<u64>,
}

pub(crate) async fn create_task(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Caller>,
    ApiJson(body): ApiJson<CreateTask>,
) -> Result<Response, ApiError> {
    let agent: AgentId = body
        .agent
        .parse()
        .map_err(|e| ApiError::bad_request("invalid_request", format!("agent: {e}")))?;
    if !st.agents.contains(&agent) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_agent",
            format!("no agent `{agent}`"),
        ));
    }
    if body.message.trim().is_empty() || body.message.len() > MAX_MESSAGE {
        return Err(ApiError::bad_request(
            "invalid_request",
            "message must be 1 to 65536 bytes",
        ));
    }
    if body
        .idempotency_key
        .as_ref()
        .is_some_and(|k| k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY)
    {
        return Err(ApiError::bad_request(
            "invalid_request",
            "idempotency_key must be 1 to 200 bytes",
        ));
    }
    if body
        .timeout_secs
        .is_some_and(|t| !(1..=86_400).contains(&t))
    {
        return Err(ApiError::bad_request(
            "invalid_request",
            "timeout_secs must be 1..=86400",
        ));
    }
    let now = Utc::now();
    let deadline = body
        .timeout_secs
        .and_then(|t| i64::try_from(t).ok())
        .map(|t| now + chrono::Duration::seconds(t));
    // Sessions belong to their principal: two users naming the same session get two.
    let session = body.session.as_deref().unwrap_or("default");
    let session_key =
        SessionKey::for_peer(&agent, "api", &format!("{}:{session}", who.principal()))
            .map_err(|e| ApiError::bad_request("invalid_request", format!("session: {e}")))?;
    quota(&st, &who).await?;
    let (task, created) = st
        .store
        .submit(
            NewTask {
                kind: pincer_store::TaskKind::Message,
                agent,
                session_key,
                input: body.message,
                idempotency_key: body.idempotency_key,
                deadline,
                owner: Some(who.principal().to_owned()),
            },
            now,
        )
        .await
        .map_err(task_error)?;
    if created {
        st.wake.notify_one();
        st.events.publish(
            "task.queued",
            json!({"task": task.id, "agent": task.agent, "session_key": task.session_key}),
        );
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({"task": task, "created": created}))).into_response())
}

/// Refuses a submission over the caller's quota (429, `quota_exceeded`).
pub(crate) async fn quota(st: &AppState, who: &Caller) -> Result<(), ApiError> {
    match crate::governance::check_quota(&*st.store, &st.governance, who.principal(), who.role())
        .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(message)) => {
            let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "quota_exceeded", message);
            e.retry_after = Some(60);
            Err(e)
        }
        Err(e) => Err(crate::users::governance_error(e)),
    }
}

/// A task the caller may see: everyone's for operators and above, else only their own (others'
/// answer 404, so ids cannot be probed).
pub(crate) async fn visible_task(
    st: &AppState,
    who: &Caller,
    id: TaskId,
) -> Result<pincer_store::TaskRecord, ApiError> {
    let t = st
        .store
        .task(id)
        .await
        .map_err(task_error)?
        .ok_or_else(|| ApiError::not_found(format!("no task {id}")))?;
    match who.owner_filter() {
        Some(me) if t.owner.as_deref() != Some(me) => {
            Err(ApiError::not_found(format!("no task {id}")))
        }
        _ => Ok(t),
    }
}

fn task_id(s: &str) -> Result<TaskId, ApiError> {
    s.parse()
        .map_err(|_| ApiError::bad_request("invalid_request", format!("`{s}` is not a task id")))
}

#[derive(Debug, Deserialize)]
pub(crate) struct GetQuery {
    /// Wait up to this many seconds (at most 60) until the task ends or starts waiting for an
    /// approval.
    #[serde(default)]
    wait_secs: Option<u64>,
}

pub(crate) async fn get_task(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<GetQuery>,
) -> Result<Json<Value>, ApiError> {
    let id = task_id(&id)?;
    let wait = std::time::Duration::from_secs(q.wait_secs.unwrap_or(0).min(60));
    let deadline = tokio::time::Instant::now() + wait;
    // Watching from before the first read: a change made after it wakes us.
    let mut changes = st.events.watch_task(id);
    // The visibility check's read is the first look (one store read fewer per wait).
    let mut t = visible_task(&st, &who, id).await?;
    // Return when it ends, or when it starts waiting for an approval (a task already waiting
    // when the call came in is waited on until that changes).
    let first = t.status;
    loop {
        let needs_attention = t.status.is_terminal()
            || (t.status == TaskStatus::WaitingApproval && first != TaskStatus::WaitingApproval);
        if needs_attention || tokio::time::Instant::now() >= deadline || st.events.is_closed() {
            return Ok(Json(json!({"task": t})));
        }
        // Only this task's events wake us (and a re-read at least once a second, for changes
        // made by another process).
        let recheck = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        changes.changed(&st.events, deadline.min(recheck)).await;
        t = st
            .store
            .task(id)
            .await
            .map_err(task_error)?
            .ok_or_else(|| ApiError::not_found(format!("no task {id}")))?;
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

fn limit(q: &ListQuery) -> usize {
    q.limit.unwrap_or(50).clamp(1, 500)
}

pub(crate) async fn list_tasks(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Caller>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = q
        .status
        .as_deref()
        .map(|s| {
            TaskStatus::parse(s).ok_or_else(|| {
                ApiError::bad_request("invalid_request", format!("unknown status `{s}`"))
            })
        })
        .transpose()?;
    let tasks = st
        .store
        .tasks_of(who.owner_filter(), status, limit(&q))
        .await
        .map_err(crate::users::governance_error)?;
    Ok(Json(json!({"tasks": tasks})))
}

pub(crate) async fn cancel_task(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = task_id(&id)?;
    visible_task(&st, &who, id).await?;
    let t = st
        .store
        .transition(
            id,
            None,
            TaskStatus::Canceled,
            Some(format!("canceled through the API by {}", who.by())),
            Utc::now(),
        )
        .await
        .map_err(task_error)?;
    st.events
        .publish("task.canceled", json!({"task": t.id, "agent": t.agent}));
    Ok(Json(json!({"task": t})))
}

fn approval_error(e: ApprovalError) -> ApiError {
    match e {
        ApprovalError::NotFound(id) => ApiError::not_found(format!("no approval `{id}`")),
        e @ ApprovalError::Decided { .. } => {
            ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
        }
        ApprovalError::Random(e) => ApiError::internal(e),
        ApprovalError::Store(e) => ApiError::store(&e),
    }
}

pub(crate) async fn list_approvals(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Caller>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = match q.status.as_deref() {
        None => None,
        Some("PENDING") => Some(ApprovalStatus::Pending),
        Some("APPROVED") => Some(ApprovalStatus::Approved),
        Some("DENIED") => Some(ApprovalStatus::Denied),
        Some("EXPIRED") => Some(ApprovalStatus::Expired),
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("unknown status `{other}`"),
            ));
        }
    };
    let list = st
        .store
        .approvals_of(who.owner_filter(), status, limit(&q))
        .await
        .map_err(crate::users::governance_error)?;
    Ok(Json(json!({"approvals": list})))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Decision {
    /// `APPROVE` or `DENY`.
    decision: DecisionKind,
}

#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum DecisionKind {
    Approve,
    Deny,
}

pub(crate) async fn decide_approval(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Decision>,
) -> Result<Json<Value>, ApiError> {
    use crate::governance::DecideError;
    let approve = matches!(body.decision, DecisionKind::Approve);
    let decider = pincer_policy::Decider {
        principal: who.principal(),
        role: who.role(),
    };
    let a = crate::governance::decide(
        &*st.store,
        st.audit.as_ref(),
        &id,
        approve,
        decider,
        st.governance.self_approval,
        &who.by(),
    )
    .await
    .map_err(|e| match e {
        DecideError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", m),
        DecideError::Approval(e) => approval_error(e),
        DecideError::Governance(e) => crate::users::governance_error(e),
        DecideError::Audit => ApiError::internal("the audit log cannot be written"),
    })?;
    st.events.publish(
        "approval.decided",
        json!({"approval": a.id, "task": a.task, "status": a.status, "decided_by": a.decided_by}),
    );
    Ok(Json(json!({"approval": a})))
}

#[derive(Debug, Deserialize)]
pub(crate) struct AuditQuery {
    /// Only events whose type starts with this (`tool.`, `approval.granted`).
    #[serde(default, rename = "type")]
    kind: Option<String>,
    /// Only events after this sequence number (paging cursor).
    #[serde(default)]
    after: Option<u64>,
    /// Most events returned (default 100, at most 1000).
    #[serde(default)]
    limit: Option<usize>,
}

/// Audit events in log order, filtered by type prefix, paged by sequence number.
pub(crate) async fn audit_events(
    State(st): State<Arc<AppState>>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let log = st
        .audit
        .clone()
        .ok_or_else(|| ApiError::not_found("this server has no audit log"))?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let after = q.after.unwrap_or(0);
    let all = tokio::task::spawn_blocking(move || log.entries_after(after))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let mut events: Vec<Value> = all
        .into_iter()
        .filter(|e| {
            q.kind
                .as_deref()
                .is_none_or(|k| e.event["type"].as_str().is_some_and(|t| t.starts_with(k)))
        })
        .take(limit + 1)
        .map(|e| json!({"seq": e.seq, "ts": e.ts, "event": e.event}))
        .collect();
    let more = events.len() > limit;
    events.truncate(limit);
    let next = events.last().and_then(|e| e["seq"].as_u64());
    Ok(Json(
        json!({"events": events, "more": more, "next_after": next}),
    ))
}

/// Whether a member may see an event: only events of their own tasks (cached per task id,
/// bounded).
async fn member_sees(
    st: &AppState,
    me: &str,
    data: &Value,
    seen: &mut std::collections::HashMap<TaskId, bool>,
) -> bool {
    let Some(id) = data["task"].as_str().and_then(|t| t.parse::<TaskId>().ok()) else {
        return false;
    };
    if let Some(v) = seen.get(&id) {
        return *v;
    }
    let mine = matches!(st.store.task(id).await, Ok(Some(t)) if t.owner.as_deref() == Some(me));
    if seen.len() >= 4096 {
        seen.clear();
    }
    seen.insert(id, mine);
    mine
}

/// Server-sent events: every task and approval event (a member: only their own tasks'),
/// resumable with `Last-Event-ID`.
pub(crate) async fn events(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Caller>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    event_stream(st, who.owner_filter().map(str::to_owned), last)
}

/// The live event stream (`/v1/events`, and the web page's `/ui/events`): every task and
/// approval event after `last` (default: from now), only the events of `owner`'s tasks when
/// given; a `gap` event when some were missed.
pub fn event_stream(
    st: Arc<AppState>,
    owner: Option<String>,
    last: Option<u64>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use axum::response::sse::{Event, KeepAlive, Sse};
    let last = last.unwrap_or_else(|| st.events.latest());
    let rx = st.events.subscribe();
    let seen = std::collections::HashMap::<TaskId, bool>::new();
    let stream = futures_util::stream::unfold(
        (
            st,
            rx,
            last,
            std::collections::VecDeque::<Event>::new(),
            owner,
            seen,
        ),
        |(st, mut rx, mut last, mut pending, me, mut seen)| async move {
            loop {
                if let Some(e) = pending.pop_front() {
                    return Some((
                        Ok::<_, std::convert::Infallible>(e),
                        (st, rx, last, pending, me, seen),
                    ));
                }
                let (batch, gap) = st.events.since(last);
                if gap {
                    pending.push_back(
                        Event::default()
                            .event("gap")
                            .data(r#"{"message":"events were missed; re-read state"}"#),
                    );
                }
                for e in batch {
                    last = e.id;
                    if let Some(me) = &me
                        && !member_sees(&st, me, &e.data, &mut seen).await
                    {
                        continue;
                    }
                    pending.push_back(
                        Event::default()
                            .id(e.id.to_string())
                            .event(e.kind)
                            .data(e.data.to_string()),
                    );
                }
                if st.events.is_closed() {
                    return None;
                }
                if pending.is_empty() && rx.changed().await.is_err() {
                    return None;
                }
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Records an action taken through the API; one that cannot be audited is reported as failed.
pub(crate) async fn audit(
    st: &AppState,
    kind: &'static str,
    fields: Value,
) -> Result<(), ApiError> {
    if let Some(log) = st.audit.clone() {
        let logged = tokio::task::spawn_blocking(move || log.append(kind, fields)).await;
        if !matches!(logged, Ok(Ok(_))) {
            return Err(ApiError::internal("the audit log cannot be written"));
        }
    }
    Ok(())
}

/// The JSON Schema of `T`, self-contained: sub-schemas inlined, so the OpenAPI document has no
/// `$ref` into a `$defs` it does not carry.
pub(crate) fn schema<T: schemars::JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let mut v = generator.into_root_schema_for::<T>().to_value();
    if let Some(m) = v.as_object_mut() {
        m.remove("$schema");
    }
    v
}

pub(crate) fn create_task_schema() -> Value {
    schema::<CreateTask>()
}

pub(crate) fn decision_schema() -> Value {
    schema::<Decision>()
}

pub(crate) async fn openapi() -> Json<Value> {
    Json(crate::openapi())
}

fn channel_error(e: pincer_store::ChannelError) -> ApiError {
    match e {
        e @ pincer_store::ChannelError::NoSuchCode(_) => ApiError::not_found(e.to_string()),
        pincer_store::ChannelError::Store(e) => ApiError::store(&e),
        other => ApiError::internal(other),
    }
}

pub(crate) async fn list_pairings(
    State(st): State<Arc<AppState>>,
    Path(channel): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let list = st
        .store
        .pairings(&channel, Utc::now())
        .await
        .map_err(channel_error)?;
    Ok(Json(json!({"pairings": list})))
}

pub(crate) async fn approve_pairing(
    State(st): State<Arc<AppState>>,
    Extension(Caller(who)): Extension<Caller>,
    Path((channel, code)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let p = st
        .store
        .approve_pairing(&channel, &code, Utc::now())
        .await
        .map_err(channel_error)?;
    let fields = json!({"channel": p.channel, "sender": p.sender, "name": p.name, "by": format!("token:{}", who.name)});
    audit(&st, "pairing.approved", fields.clone()).await?;
    st.events.publish("pairing.approved", fields);
    Ok(Json(json!({"pairing": p})))
}

/// A platform's webhook delivery: the channel must be registered and the secret header must
/// match (constant-time); failures count against the sender's address like bad tokens.
pub(crate) async fn webhook(
    State(st): State<Arc<AppState>>,
    axum::extract::ConnectInfo(addr): axum::extract::ConnectInfo<std::net::SocketAddr>,
    Path(channel): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let now = std::time::Instant::now();
    st.limiter.check(addr.ip(), now)?;
    let sink = st
        .webhooks
        .get(&channel)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no webhook for `{channel}`")))?;
    let given = headers
        .get("x-telegram-bot-api-secret-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let expected = sink.secret().as_bytes();
    let same = pincer_store::ct_eq(given.as_bytes(), expected);
    if !same || expected.is_empty() {
        st.limiter.fail(addr.ip(), now);
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong webhook secret",
        ));
    }
    let update: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_json", e.to_string()))?;
    sink.deliver(update).await;
    Ok(Json(json!({"ok": true})))
}
