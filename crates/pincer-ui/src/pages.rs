//! The pages. Each reads through the same store queries and owner filters as the API and acts
//! through the same functions; maud escapes every value.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::{DOCTYPE, Markup, html};
use pincer_gateway::AppState;
use pincer_gateway::governance::{DecideError, Emergency};
use pincer_store::{ApprovalStatus, TaskRecord};
use pincer_types::{Role, Scope, TaskId, TaskStatus};
use serde::Deserialize;

use crate::session::{CsrfOnly, Ui};

/// A page without navigation (sign-in, errors).
pub(crate) fn layout_bare(title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · Pincer" }
                    link rel="stylesheet" href="/ui/static/app.css";
                }
                body { main { (body) } }
            }
        }
        .into_string(),
    )
}

/// A page for a signed-in user: navigation by role, sign-out, and `refresh` seconds of
/// automatic reloading for live views (no script needed).
pub(crate) fn layout(ui: &Ui, title: &str, refresh: Option<u32>, body: Markup) -> Html<String> {
    layout_live(ui, title, refresh, refresh.map(|_| "main"), body)
}

/// A page whose `live` element (a CSS selector) is re-fetched on every relevant event by
/// `live.js`; without script it reloads every `refresh` seconds.
pub(crate) fn layout_live(
    ui: &Ui,
    title: &str,
    refresh: Option<u32>,
    live: Option<&str>,
    body: Markup,
) -> Html<String> {
    let s = &ui.session;
    Html(html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(r) = refresh { noscript { meta http-equiv="refresh" content=(r); } }
                title { (title) " · Pincer" }
                link rel="stylesheet" href="/ui/static/app.css";
                script src="/ui/static/live.js" defer {}
            }
            body data-live=[live] {
                nav {
                    a href="/ui" { "Dashboard" }
                    a href="/ui/tasks" { "Tasks" }
                    a href="/ui/approvals" { "Approvals" }
                    @if Scope::TasksWrite.granted_by(&s.scopes) { a href="/ui/chat" { "Chat" } }
                    @if s.role >= Role::Operator { a href="/ui/agents" { "Agents" } }
                    @if Scope::AuditRead.granted_by(&s.scopes) { a href="/ui/audit" { "Audit" } }
                    @if Scope::JobsRead.granted_by(&s.scopes) { a href="/ui/schedules" { "Schedules" } }
                    @if s.role >= Role::Admin && Scope::Admin.granted_by(&s.scopes) {
                        a href="/ui/users" { "Users" }
                        a href="/ui/channels" { "Channels" }
                        a href="/ui/skills" { "Skills" }
                        a href="/ui/emergency" { "Emergency" }
                    }
                    span.who { (s.user) " (" (s.role.as_str()) ")" }
                    form.inline method="post" action="/ui/logout" {
                        input type="hidden" name="csrf" value=(s.csrf);
                        button type="submit" { "Sign out" }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }.into_string())
}

/// A refusal, shown as an error page.
#[derive(Debug)]
pub(crate) struct Refused(pub(crate) StatusCode, pub(crate) String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        page_error(self.0, &self.1)
    }
}

/// An error page with `status`.
pub(crate) fn page_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        layout_bare(
            "Error",
            html! { h1 { (status.as_u16()) } p.error { (message) } p { a href="/ui" { "Back" } } },
        ),
    )
        .into_response()
}

fn store_error(e: impl std::fmt::Display) -> Response {
    store_refusal(e).into_response()
}

fn store_refusal(e: impl std::fmt::Display) -> Refused {
    Refused(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the store cannot be read: {e}"),
    )
}

fn short(id: &TaskId) -> String {
    let s = id.to_string();
    s[s.len().saturating_sub(8)..].to_owned()
}

fn task_rows(tasks: &[TaskRecord]) -> Markup {
    html! {
        table {
            thead { tr { th { "task" } th { "status" } th { "owner" } th { "agent" } th { "message" } th { "created" } } }
            tbody {
                @for t in tasks {
                    tr {
                        td { a href={ "/ui/tasks/" (t.id) } { code { (short(&t.id)) } } }
                        td { span class={ "status " (t.status.as_str()) } { (t.status.as_str()) } }
                        td { (t.owner.as_deref().unwrap_or("system")) }
                        td { (t.agent) }
                        td { (t.input.chars().take(80).collect::<String>()) }
                        td { (t.created_at.format("%Y-%m-%d %H:%M:%S")) }
                    }
                }
            }
        }
    }
}

/// `GET /ui`: health, what runs, what waits, recent failures, today's tokens and cost.
pub(crate) async fn dashboard(State(st): State<Arc<AppState>>, ui: Ui) -> Response {
    let owner = ui.owner_filter();
    // Each list by its own status (indexed), so a store with many finished tasks still shows
    // every live one.
    let mut live: Vec<TaskRecord> = Vec::new();
    for s in [
        TaskStatus::Running,
        TaskStatus::WaitingApproval,
        TaskStatus::Queued,
    ] {
        match st.store.tasks_of(owner, Some(s), 50).await {
            Ok(t) => live.extend(t),
            Err(e) => return store_error(e),
        }
    }
    let mut failed = st
        .store
        .tasks_of(owner, Some(TaskStatus::Failed), 5)
        .await
        .unwrap_or_default();
    failed.extend(
        st.store
            .tasks_of(owner, Some(TaskStatus::TimedOut), 5)
            .await
            .unwrap_or_default(),
    );
    failed.sort_by_key(|t| std::cmp::Reverse(t.created_at));
    failed.truncate(5);
    let pending = st
        .store
        .approvals_of(owner, Some(ApprovalStatus::Pending), 200)
        .await
        .unwrap_or_default();
    let controls = st.store.controls().await.unwrap_or_default();
    let today = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc());
    let usage = st
        .store
        .usage_total(&pincer_store::UsageFilter {
            since: today,
            user: owner.map(str::to_owned),
            ..pincer_store::UsageFilter::default()
        })
        .await
        .unwrap_or_default();
    let healthy = st.store.ping().await.is_ok();
    // The week's chart: operators and above see every agent and model; a member their own use.
    let everyone = ui.session.role >= Role::Operator;
    let week = crate::usage::week(
        &st,
        pincer_store::UsageFilter {
            user: owner.filter(|_| !everyone).map(str::to_owned),
            ..pincer_store::UsageFilter::default()
        },
    )
    .await;
    let (by_agent, by_model, own) = if everyone {
        (
            crate::usage::by(&week, |r| &r.agent),
            crate::usage::by(&week, |r| &r.model),
            Vec::new(),
        )
    } else {
        (Vec::new(), Vec::new(), crate::usage::daily(&week))
    };
    layout(
        &ui,
        "Dashboard",
        Some(5),
        html! {
            @if let Some(p) = &controls.paused {
                p.banner { "Mutating actions are paused (since " (p.at.format("%H:%M")) " by " (p.by) ")." }
            }
            section.cards {
                div.card { h2 { "Health" } p { @if healthy { "store reachable" } @else { "store unreachable" } } }
                div.card { h2 { "Running" } p.big { (live.len()) } }
                div.card { h2 { "Waiting for approval" } p.big { a href="/ui/approvals" { (pending.len()) } } }
                div.card { h2 { "Today" } p { (usage.input_tokens + usage.output_tokens) " tokens" }
                    @if usage.cost_usd > 0.0 { p { "$" (format!("{:.4}", usage.cost_usd)) } } }
            }
            h2 { "Live tasks" }
            @if live.is_empty() { p { "Nothing is running." } } @else { (task_rows(&live)) }
            h2 { "Recent failures" }
            @if failed.is_empty() { p { "None." } } @else { (task_rows(&failed)) }
            h2 { "Tokens, last 7 days" }
            @if !own.is_empty() { (crate::usage::bars(&own)) }
            @else if by_agent.is_empty() { p { "No model calls this week." } }
            @else {
                section.charts {
                    (crate::usage::grid("agent", &by_agent))
                    (crate::usage::grid("model", &by_model))
                }
            }
        },
    )
    .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct TaskQuery {
    #[serde(default)]
    status: Option<String>,
}

/// `GET /ui/tasks[?status=]`: the caller's tasks (operators: everyone's), refreshed.
pub(crate) async fn tasks(
    State(st): State<Arc<AppState>>,
    ui: Ui,
    Query(q): Query<TaskQuery>,
) -> Response {
    if let Err(e) = ui.require(Scope::TasksRead) {
        return e.into_response();
    }
    let status = q.status.as_deref().and_then(TaskStatus::parse);
    let tasks = match st.store.tasks_of(ui.owner_filter(), status, 200).await {
        Ok(t) => t,
        Err(e) => return store_error(e),
    };
    layout(
        &ui,
        "Tasks",
        Some(5),
        html! {
            form.filters method="get" action="/ui/tasks" {
                select name="status" {
                    option value="" { "any status" }
                    @for s in ["QUEUED", "RUNNING", "WAITING_APPROVAL", "SUCCEEDED", "FAILED", "CANCELED", "TIMED_OUT"] {
                        option value=(s) selected[q.status.as_deref() == Some(s)] { (s) }
                    }
                }
                button type="submit" { "Filter" }
            }
            (task_rows(&tasks))
        },
    )
    .into_response()
}

async fn visible(st: &AppState, ui: &Ui, id: &str) -> Result<TaskRecord, Refused> {
    let not_found = || Refused(StatusCode::NOT_FOUND, "no such task".into());
    let id: TaskId = id.parse().map_err(|_| not_found())?;
    let t = st
        .store
        .task(id)
        .await
        .map_err(store_refusal)?
        .ok_or_else(not_found)?;
    match ui.owner_filter() {
        Some(me) if t.owner.as_deref() != Some(me) => Err(not_found()),
        _ => Ok(t),
    }
}

/// `GET /ui/tasks/{id}`: one task with its input, answer or error, and its run's folder.
pub(crate) async fn task(
    State(st): State<Arc<AppState>>,
    ui: Ui,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = ui.require(Scope::TasksRead) {
        return e.into_response();
    }
    let t = match visible(&st, &ui, &id).await {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let refresh = (!t.status.is_terminal()).then_some(3);
    let approvals = st.store.task_approvals(t.id).await.unwrap_or_default();
    let can_decide = Scope::ApprovalsWrite.granted_by(&ui.session.scopes);
    // The run bundle: transcript and screenshots (read off the async threads).
    let bundle = match (&st.agents_dir, &t.run_dir) {
        (Some(agents), Some(run)) => {
            let (agents, run) = (agents.clone(), run.clone());
            tokio::task::spawn_blocking(move || {
                crate::transcript::bundle_dir(&agents, &run).map(|dir| {
                    (
                        crate::transcript::render(&dir),
                        crate::transcript::files(&dir),
                    )
                })
            })
            .await
            .ok()
            .flatten()
        }
        _ => None,
    };
    layout(
        &ui,
        &format!("Task {}", short(&t.id)),
        refresh,
        html! {
            dl {
                dt { "status" } dd { span class={ "status " (t.status.as_str()) } { (t.status.as_str()) } }
                dt { "owner" } dd { (t.owner.as_deref().unwrap_or("system")) }
                dt { "agent" } dd { (t.agent) }
                dt { "session" } dd { code { (t.session_key) } }
                dt { "created" } dd { (t.created_at.to_rfc3339()) }
                @if let Some(d) = &t.run_dir { dt { "run bundle" } dd { code { (d) } } }
                @if let Some(u) = &t.usage { dt { "tokens" } dd { (u.input_tokens) " in, " (u.output_tokens) " out" } }
            }
            h2 { "Message" }
            pre.text { (t.input) }
            @if let Some(o) = &t.output { h2 { "Answer" } pre.text { (o) } }
            @if let Some(e) = &t.error { h2 { "Error" } pre.text.error { (e) } }
            @if !approvals.is_empty() {
                h2 { "Approvals" }
                table {
                    thead { tr { th { "tool" } th { "tier" } th { "status" } th { "decided by" } th { "reason" } th {} } }
                    tbody {
                        @for a in &approvals {
                            tr {
                                td { code { (a.tool) } }
                                td { (a.tier.as_str()) }
                                td { span class={ "status " (a.status.as_str()) } { (a.status.as_str()) } }
                                td { (a.decided_by.as_deref().unwrap_or("")) }
                                td { (a.reason)
                                    @if !a.taint_sources.is_empty() { " — held: untrusted content from " (a.taint_sources.join(", ")) } }
                                td { @if can_decide && a.status == ApprovalStatus::Pending { a href="/ui/approvals" { "decide" } } }
                            }
                        }
                    }
                }
            }
            @if let Some((transcript, files)) = &bundle {
                h2 { "Transcript" }
                (transcript)
                @let images = crate::transcript::images(files);
                @if !images.is_empty() {
                    h2 { "Screenshots" }
                    @for name in &images {
                        figure {
                            img src={ "/ui/tasks/" (t.id) "/files/" (name) } alt=(name);
                            figcaption { (name) }
                        }
                    }
                }
                h2 { "Files" }
                ul.files {
                    @for (name, size) in files {
                        li {
                            @if *size <= crate::transcript::MAX_FILE {
                                a href={ "/ui/tasks/" (t.id) "/files/" (name) } { code { (name) } }
                            } @else { code { (name) } }
                            " (" (size) " bytes)"
                        }
                    }
                }
            }
            @if !t.status.is_terminal() && Scope::TasksWrite.granted_by(&ui.session.scopes) {
                form method="post" action={ "/ui/tasks/" (t.id) "/cancel" } {
                    input type="hidden" name="csrf" value=(ui.session.csrf);
                    button.danger type="submit" { "Cancel task" }
                }
            }
        },
    )
    .into_response()
}

/// `GET /ui/tasks/{id}/files/{name}`: a file from the task's run bundle — a PNG (checked by its
/// signature) shown as an image, anything else as a download (`attachment`, never rendered by
/// the page's origin).
pub(crate) async fn file(
    State(st): State<Arc<AppState>>,
    ui: Ui,
    Path((id, name)): Path<(String, String)>,
) -> Response {
    if let Err(e) = ui.require(Scope::TasksRead) {
        return e.into_response();
    }
    let t = match visible(&st, &ui, &id).await {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let not_found = || page_error(StatusCode::NOT_FOUND, "no such file");
    let (Some(agents), Some(run)) = (st.agents_dir.clone(), t.run_dir.clone()) else {
        return not_found();
    };
    let wanted = name.clone();
    let read = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let dir = crate::transcript::bundle_dir(&agents, &run)?;
        let f = crate::transcript::open_plain(&dir, &wanted, crate::transcript::MAX_FILE)?;
        let mut bytes = Vec::new();
        f.take(crate::transcript::MAX_FILE)
            .read_to_end(&mut bytes)
            .ok()?;
        Some(bytes)
    })
    .await
    .ok()
    .flatten();
    use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
    match read {
        Some(bytes) if name.ends_with(".png") && bytes.starts_with(b"\x89PNG") => {
            ([(CONTENT_TYPE, "image/png".to_owned())], bytes).into_response()
        }
        // `open_plain` admits only [A-Za-z0-9._-] names: safe inside the quotes.
        Some(bytes) => (
            [
                (CONTENT_TYPE, "application/octet-stream".to_owned()),
                (
                    CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        None => not_found(),
    }
}

/// `POST /ui/tasks/{id}/cancel`.
pub(crate) async fn cancel(
    State(st): State<Arc<AppState>>,
    ui: Ui,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Err(e) = ui
        .check_csrf(&form.csrf)
        .and_then(|()| ui.require(Scope::TasksWrite))
    {
        return e.into_response();
    }
    let t = match visible(&st, &ui, &id).await {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let reason = format!("canceled on the web page by {}", ui.by());
    if let Err(e) = st
        .store
        .transition(t.id, None, TaskStatus::Canceled, Some(reason), Utc::now())
        .await
    {
        return page_error(StatusCode::CONFLICT, &e.to_string());
    }
    st.events.publish(
        "task.canceled",
        serde_json::json!({"task": t.id, "agent": t.agent}),
    );
    Redirect::to(&format!("/ui/tasks/{}", t.id)).into_response()
}

/// `GET /ui/approvals`: pending approvals the caller may see, with the exact action.
pub(crate) async fn approvals(State(st): State<Arc<AppState>>, ui: Ui) -> Response {
    let list = match st
        .store
        .approvals_of(ui.owner_filter(), Some(ApprovalStatus::Pending), 200)
        .await
    {
        Ok(l) => l,
        Err(e) => return store_error(e),
    };
    let can_decide = Scope::ApprovalsWrite.granted_by(&ui.session.scopes);
    layout(
        &ui,
        "Approvals",
        Some(5),
        html! {
            @if list.is_empty() { p.empty { "No approvals are waiting." } }
            @for a in &list {
                article.approval {
                    h2 { code { (a.tool) } " · " (a.tier.as_str()) }
                    p { (a.reason) }
                    @if !a.taint_sources.is_empty() {
                        div.taint {
                            strong { "Held: this turn read untrusted content from" }
                            ul { @for s in &a.taint_sources { li { code { (s) } } } }
                        }
                    }
                    dl {
                        dt { "requested by" } dd { (a.requester) }
                        @if let Some(t) = &a.task { dt { "task" } dd { a href={ "/ui/tasks/" (t) } { (short(t)) } } }
                        dt { "digest" } dd { code { (a.digest) } }
                        dt { "expires" } dd { (a.expires_at.to_rfc3339()) }
                    }
                    pre.text { (serde_json::to_string_pretty(&a.detail).unwrap_or_default()) }
                    @if can_decide {
                        form.inline method="post" action={ "/ui/approvals/" (a.id) } {
                            input type="hidden" name="csrf" value=(ui.session.csrf);
                            button type="submit" name="decision" value="approve" { "Approve" }
                            button.danger type="submit" name="decision" value="deny" { "Deny" }
                        }
                    }
                }
            }
        },
    )
    .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
}

/// `POST /ui/approvals/{id}`: decided under the approver rules, like every other path.
pub(crate) async fn decide(
    State(st): State<Arc<AppState>>,
    ui: Ui,
    Path(id): Path<String>,
    Form(form): Form<DecisionForm>,
) -> Response {
    if let Err(e) = ui
        .check_csrf(&form.csrf)
        .and_then(|()| ui.require(Scope::ApprovalsWrite))
    {
        return e.into_response();
    }
    let approve = match form.decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return page_error(StatusCode::BAD_REQUEST, "decide approve or deny"),
    };
    let decider = pincer_policy::Decider {
        principal: &ui.session.user,
        role: ui.session.role,
    };
    match pincer_gateway::governance::decide(
        &*st.store,
        st.audit.as_ref(),
        &id,
        approve,
        decider,
        st.governance.self_approval,
        &ui.by(),
    )
    .await
    {
        Ok(a) => {
            st.events.publish(
                "approval.decided",
                serde_json::json!({"approval": a.id, "task": a.task, "status": a.status, "decided_by": ui.by()}),
            );
            Redirect::to("/ui/approvals").into_response()
        }
        Err(DecideError::Forbidden(why)) => page_error(StatusCode::FORBIDDEN, &why),
        Err(e) => page_error(StatusCode::CONFLICT, &e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct AuditQuery {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    tool: Option<String>,
    #[serde(default)]
    decision: Option<String>,
    /// From this time on (RFC 3339 or a date; compared as text, as the log stores times).
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    after: Option<u64>,
}

impl AuditQuery {
    fn matches(&self, e: &pincer_audit::Entry) -> bool {
        let field = |name: &str, want: &Option<String>| {
            want.as_deref()
                .filter(|w| !w.is_empty())
                .is_none_or(|w| e.event[name].as_str() == Some(w))
        };
        self.kind
            .as_deref()
            .is_none_or(|k| e.event["type"].as_str().is_some_and(|t| t.starts_with(k)))
            && field("agent", &self.agent)
            && field("tool", &self.tool)
            && field("decision", &self.decision)
            && self
                .since
                .as_deref()
                .filter(|s| !s.is_empty())
                .is_none_or(|s| e.ts.as_str() >= s)
    }

    /// The query string for another page of the same search.
    fn link(&self, after: u64) -> String {
        let enc = |s: &Option<String>| {
            s.as_deref()
                .unwrap_or("")
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect::<String>()
        };
        format!(
            "type={}&agent={}&tool={}&decision={}&since={}&after={after}",
            enc(&self.kind),
            enc(&self.agent),
            enc(&self.tool),
            enc(&self.decision),
            enc(&self.since)
        )
    }
}

/// The matching entries after `q.after`, at most `limit` + 1 (to tell whether there are more).
async fn audit_entries(
    st: &AppState,
    q: &AuditQuery,
    limit: usize,
) -> Result<Vec<pincer_audit::Entry>, Refused> {
    let Some(log) = st.audit.clone() else {
        return Err(Refused(
            StatusCode::NOT_FOUND,
            "this server has no audit log".into(),
        ));
    };
    let after = q.after.unwrap_or(0);
    let all = tokio::task::spawn_blocking(move || log.entries_after(after))
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| {
            Refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the audit log cannot be read".into(),
            )
        })?;
    Ok(all
        .into_iter()
        .filter(|e| q.matches(e))
        .take(limit.saturating_add(1))
        .collect())
}

/// `GET /ui/audit[?type=&agent=&tool=&decision=&since=&after=]`: the audit log, 100 events a
/// page (`audit:read`).
pub(crate) async fn audit(
    State(st): State<Arc<AppState>>,
    ui: Ui,
    Query(q): Query<AuditQuery>,
) -> Response {
    if let Err(e) = ui.require(Scope::AuditRead) {
        return e.into_response();
    }
    let mut page = match audit_entries(&st, &q, 100).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let more = page.len() > 100;
    page.truncate(100);
    let next = page.last().map(|e| e.seq);
    let v = |s: &Option<String>| s.clone().unwrap_or_default();
    layout(
        &ui,
        "Audit log",
        None,
        html! {
            form.filters method="get" action="/ui/audit" {
                input type="text" name="type" placeholder="type prefix (tool., approval.)" value=(v(&q.kind));
                input type="text" name="agent" placeholder="agent" value=(v(&q.agent));
                input type="text" name="tool" placeholder="tool" value=(v(&q.tool));
                input type="text" name="decision" placeholder="decision (allow, deny…)" value=(v(&q.decision));
                input type="text" name="since" placeholder="since (2026-12-04)" value=(v(&q.since));
                button type="submit" { "Search" }
            }
            p {
                a href="/ui/audit/verify" { "Verify the chain" } " · "
                a href={ "/ui/audit/export?" (q.link(q.after.unwrap_or(0))) } { "Export these events (JSON lines)" }
            }
            table {
                thead { tr { th { "#" } th { "time" } th { "type" } th { "event" } } }
                tbody {
                    @for e in &page {
                        tr {
                            td { (e.seq) }
                            td { (e.ts) }
                            td { code { (e.event["type"].as_str().unwrap_or("?")) } }
                            td { pre.text { (e.event.to_string()) } }
                        }
                    }
                }
            }
            @if more { @if let Some(n) = next {
                p { a href={ "/ui/audit?" (q.link(n)) } { "Next page" } }
            } }
        },
    )
    .into_response()
}

/// `GET /ui/audit/export?…`: the matching events (up to 100,000) as JSON lines, downloaded.
pub(crate) async fn audit_export(
    State(st): State<Arc<AppState>>,
    ui: Ui,
    Query(q): Query<AuditQuery>,
) -> Response {
    if let Err(e) = ui.require(Scope::AuditRead) {
        return e.into_response();
    }
    let entries = match audit_entries(&st, &q, 100_000).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let mut body = String::new();
    for e in entries.iter().take(100_000) {
        body.push_str(&serde_json::json!({"seq": e.seq, "ts": e.ts, "event": e.event}).to_string());
        body.push('\n');
    }
    (
        [
            (axum::http::header::CONTENT_TYPE, "application/x-ndjson"),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"pincer-audit.jsonl\"",
            ),
        ],
        body,
    )
        .into_response()
}

/// `GET /ui/audit/verify`: checks the whole chain and its anchor now.
pub(crate) async fn audit_verify(State(st): State<Arc<AppState>>, ui: Ui) -> Response {
    if let Err(e) = ui.require(Scope::AuditRead) {
        return e.into_response();
    }
    let Some(source) = st.audit_source.clone() else {
        return page_error(
            StatusCode::NOT_FOUND,
            "this server cannot verify its audit log",
        );
    };
    let report = tokio::task::spawn_blocking(move || source.verify()).await;
    let (ok, text) = match report {
        Ok(Ok(r)) => (
            true,
            format!(
                "{} lines checked, last hash {}, anchored at line {}",
                r.lines,
                r.last_hash,
                r.anchored
                    .map_or_else(|| "— (not anchored)".to_owned(), |n| n.to_string())
            ),
        ),
        Ok(Err(e)) => (false, e.to_string()),
        Err(e) => (false, e.to_string()),
    };
    layout(
        &ui,
        "Audit chain",
        None,
        html! {
            @if ok { p.banner { "The chain is intact." } }
            @else { p.error { "The audit log does not verify." } }
            pre.text { (text) }
            p { a href="/ui/audit" { "Back to the log" } }
        },
    )
    .into_response()
}

/// `GET /ui/users` (admin): users with their role, state and bypass, each changeable; the org's
/// policy (self-approval, bypass, quotas per role).
pub(crate) async fn users(State(st): State<Arc<AppState>>, ui: Ui) -> Response {
    if let Err(e) = admin(&ui) {
        return e.into_response();
    }
    let users = match st.store.users().await {
        Ok(u) => u,
        Err(e) => return store_error(e),
    };
    let g = &st.governance;
    let csrf = ui.session.csrf.clone();
    layout(
        &ui,
        "Users and policy",
        None,
        html! {
            table {
                thead { tr { th { "user" } th { "role" } th { "state" } th { "bypass" } } }
                tbody {
                    @for u in &users {
                        tr {
                            td { (u.name) }
                            td {
                                form.inline method="post" action="/ui/users" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="user" value=(u.name);
                                    input type="hidden" name="change" value="role";
                                    select name="role" {
                                        @for r in Role::ALL {
                                            option value=(r.as_str()) selected[r == u.role] { (r.as_str()) }
                                        }
                                    }
                                    button type="submit" { "Set" }
                                }
                            }
                            td {
                                (if u.enabled() { "enabled " } else { "disabled " })
                                form.inline method="post" action="/ui/users" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="user" value=(u.name);
                                    @if u.enabled() {
                                        button.danger type="submit" name="change" value="disable" { "Disable" }
                                    } @else {
                                        button type="submit" name="change" value="enable" { "Enable" }
                                    }
                                }
                            }
                            td {
                                (if u.bypass { "on " } else { "off " })
                                form.inline method="post" action="/ui/users" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="user" value=(u.name);
                                    @if u.bypass {
                                        button type="submit" name="change" value="bypass-off" { "Turn off" }
                                    } @else if g.bypass == pincer_config::BypassPolicy::Allowed {
                                        button type="submit" name="change" value="bypass-on" { "Turn on" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Policy" }
            dl {
                dt { "self-approval" } dd { (if g.self_approval { "members approve their own L1/L2 actions" } else { "off: operators decide" }) }
                dt { "bypass" } dd { (if g.bypass == pincer_config::BypassPolicy::Allowed { "allowed up to " } else { "off" })
                    @if g.bypass == pincer_config::BypassPolicy::Allowed { (g.bypass_max_tier.tier().as_str()) } }
                @for r in Role::ALL {
                    @let q = g.quota(r);
                    dt { "quota: " (r.as_str()) }
                    dd { (q.messages_per_minute.map_or_else(|| "no limit".to_owned(), |n| format!("{n} a minute")))
                         ", " (q.concurrent_tasks.map_or_else(|| "no limit".to_owned(), |n| format!("{n} at once"))) }
                }
            }
            p.hint { "Policy is set in config.toml ([governance]); users also with " code { "pincer users" } "." }
        },
    )
    .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct UserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    change: String,
    #[serde(default)]
    role: String,
}

/// `POST /ui/users`: the same change as `/v1/users…` (owner rule, last owner, audit).
pub(crate) async fn change_user(
    State(st): State<Arc<AppState>>,
    ui: Ui,
    Form(f): Form<UserForm>,
) -> Response {
    use pincer_gateway::UserChange;
    if let Err(e) = ui.check_csrf(&f.csrf).and_then(|()| admin(&ui)) {
        return e.into_response();
    }
    let change = match f.change.as_str() {
        "role" => match f.role.parse() {
            Ok(r) => UserChange::Role(r),
            Err(e) => return page_error(StatusCode::BAD_REQUEST, &e),
        },
        "disable" => UserChange::Disable,
        "enable" => UserChange::Enable,
        "bypass-on" => UserChange::Bypass(true),
        "bypass-off" => UserChange::Bypass(false),
        _ => return page_error(StatusCode::BAD_REQUEST, "unknown change"),
    };
    let by = ui.by();
    let actor = pincer_gateway::Actor {
        principal: &ui.session.user,
        role: ui.session.role,
        by: &by,
    };
    match pincer_gateway::change_user(&st, actor, &f.user, change).await {
        Ok(_) => Redirect::to("/ui/users").into_response(),
        Err(e) => page_error(e.status, &e.message),
    }
}

pub(crate) fn admin(ui: &Ui) -> Result<(), Refused> {
    ui.require(Scope::Admin)?;
    if ui.session.role < Role::Admin {
        return Err(Refused(
            StatusCode::FORBIDDEN,
            "this page is for admins".into(),
        ));
    }
    Ok(())
}

/// `GET /ui/emergency` (admin): the controls in force and the buttons, each behind a
/// confirmation.
pub(crate) async fn emergency(State(st): State<Arc<AppState>>, ui: Ui) -> Response {
    if let Err(e) = admin(&ui) {
        return e.into_response();
    }
    emergency_page(&st, &ui, None).await
}

async fn emergency_page(st: &AppState, ui: &Ui, said: Option<String>) -> Response {
    let c = match st.store.controls().await {
        Ok(c) => c,
        Err(e) => return store_error(e),
    };
    layout(
        ui,
        "Emergency controls",
        None,
        html! {
            @if let Some(s) = said { p.banner { (s) } }
            dl {
                dt { "mutating actions" } dd { @if let Some(p) = &c.paused { "paused since " (p.at.to_rfc3339()) " by " (p.by) } @else { "running" } }
                dt { "bypass" } dd { @if let Some(b) = &c.bypass_locked { "locked off since " (b.at.to_rfc3339()) " by " (b.by) } @else { "as org policy says" } }
                dt { "revoked webhook secrets" } dd { (c.revoked_hook_secrets.len()) }
            }
            @for (name, _) in Emergency::ALL {
                form.emergency method="post" action="/ui/emergency" {
                    input type="hidden" name="csrf" value=(ui.session.csrf);
                    input type="hidden" name="control" value=(name);
                    label { input type="checkbox" name="confirm" value="yes"; " I mean it" }
                    button.danger type="submit" { (name) }
                }
            }
        },
    )
    .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct EmergencyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    control: String,
    #[serde(default)]
    confirm: Option<String>,
}

/// `POST /ui/emergency`: applies a control once confirmed (the same function as the CLI and the
/// API).
pub(crate) async fn emergency_act(
    State(st): State<Arc<AppState>>,
    ui: Ui,
    Form(form): Form<EmergencyForm>,
) -> Response {
    if let Err(e) = ui.check_csrf(&form.csrf).and_then(|()| admin(&ui)) {
        return e.into_response();
    }
    let control: Emergency = match form.control.parse() {
        Ok(c) => c,
        Err(e) => return page_error(StatusCode::BAD_REQUEST, &e),
    };
    if form.confirm.as_deref() != Some("yes") {
        return emergency_page(
            &st,
            &ui,
            Some(format!(
                "Nothing done: tick \u{201c}I mean it\u{201d} to {}.",
                control.as_str()
            )),
        )
        .await;
    }
    let hooks = pincer_gateway::governance::hook_fingerprints(&st.hooks);
    let report = match pincer_gateway::governance::emergency(
        &*st.store,
        st.audit.as_ref(),
        control,
        &ui.by(),
        &hooks,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return page_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    if control != Emergency::RotateCredentials {
        return emergency_page(&st, &ui, Some(format!("{} done.", control.as_str()))).await;
    }
    // Every token is revoked, this session's too: show a new one for this user, once.
    let now = Utc::now();
    let name = format!("{}-{}", ui.session.user, now.timestamp());
    match st
        .store
        .create_token(&name, &ui.session.user, &ui.session.scopes, None, now)
        .await
    {
        Ok((secret, _)) => layout_bare(
            "Credentials rotated",
            html! {
                h1 { "Credentials rotated" }
                p { "Every API token is revoked, this page's included. Your new token (shown once):" }
                pre.text { (secret) }
                p { (report["rotate_outside"].as_str().unwrap_or_default()) }
                p { a href="/ui/login" { "Sign in again" } }
            },
        )
        .into_response(),
        Err(e) => page_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_values_are_escaped() {
        let out = html! { pre { ("<script>alert(1)</script>") } }.into_string();
        assert!(!out.contains("<script>"), "{out}");
        assert!(out.contains("&lt;script&gt;"), "{out}");
    }

    #[test]
    fn status_badge_ids_are_short() {
        let id = TaskId::new();
        assert_eq!(short(&id).len(), 8);
    }
}
