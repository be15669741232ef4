//! `/ui/schedules`: scheduled jobs and their runs; add, enable, disable, run now (the same
//! validation and store calls as `/v1/jobs`, `jobs:read` / `jobs:write`).

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use pincer_gateway::AppState;
use pincer_types::Scope;
use serde::Deserialize;
use serde_json::json;

use crate::pages::{layout, page_error};
use crate::session::Ui;

/// `GET /ui/schedules`.
pub(crate) async fn list(State(st): State<Arc<AppState>>, ui: Ui) -> Response {
    if let Err(e) = ui.require(Scope::JobsRead) {
        return e.into_response();
    }
    let jobs = match st.store.jobs().await {
        Ok(j) => j,
        Err(e) => return page_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let mut runs = Vec::with_capacity(jobs.len());
    for j in &jobs {
        runs.push(st.store.job_runs(&j.name, 3).await.unwrap_or_default());
    }
    let can_write = Scope::JobsWrite.granted_by(&ui.session.scopes);
    let csrf = ui.session.csrf.clone();
    layout(
        &ui,
        "Schedules",
        None,
        html! {
            @if jobs.is_empty() { p { "No scheduled jobs." } }
            table {
                thead { tr { th { "job" } th { "schedule" } th { "agent" } th { "next run" } th { "recent runs" } th {} } }
                tbody {
                    @for (j, rs) in jobs.iter().zip(&runs) {
                        tr {
                            td { (j.name) @if !j.enabled { " (disabled)" } }
                            td { code { (j.kind) " " (j.spec) } @if j.kind == "cron" { " " (j.tz) } }
                            td { (j.agent) }
                            td { (j.next_run.map(|t| t.to_rfc3339()).unwrap_or_else(|| "—".into())) }
                            td { @for r in rs { span class={ "status " (r.status.as_str()) } { (r.status.as_str()) } " " } }
                            td {
                                @if can_write {
                                    @for action in ["run", if j.enabled { "disable" } else { "enable" }] {
                                        form.inline method="post" action="/ui/schedules/act" {
                                            input type="hidden" name="csrf" value=(csrf);
                                            input type="hidden" name="job" value=(j.name);
                                            button type="submit" name="action" value=(action) { (action) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if can_write {
                h2 { "Add a job" }
                form method="post" action="/ui/schedules/add" {
                    input type="hidden" name="csrf" value=(csrf);
                    label { "name" input type="text" name="name" required; }
                    label { "when" select name="kind" { option value="every" { "every (15m, 1h)" } option value="cron" { "cron (0 9 * * 1-5)" } option value="at" { "at (RFC 3339 or 20m)" } } }
                    label { "schedule" input type="text" name="spec" required; }
                    label { "agent" input type="text" name="agent" value="main"; }
                    label { "message" input type="text" name="message" required; }
                    button type="submit" { "Add" }
                }
            }
        },
    )
    .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct Act {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    job: String,
    #[serde(default)]
    action: String,
}

/// `POST /ui/schedules/act`: run, enable or disable one job.
pub(crate) async fn act(State(st): State<Arc<AppState>>, ui: Ui, Form(f): Form<Act>) -> Response {
    if let Err(e) = ui
        .check_csrf(&f.csrf)
        .and_then(|()| ui.require(Scope::JobsWrite))
    {
        return e.into_response();
    }
    let done = match f.action.as_str() {
        "run" => pincer_gateway::run_job_now(&*st.store, &f.job).await,
        "enable" => pincer_gateway::enable_job(&*st.store, &f.job).await,
        "disable" => st.store.set_job_enabled(&f.job, false).await,
        _ => return page_error(StatusCode::BAD_REQUEST, "run, enable or disable"),
    };
    if let Err(e) = done {
        return page_error(StatusCode::CONFLICT, &e.to_string());
    }
    let _ = pincer_gateway::governance::record(
        st.audit.as_ref(),
        match f.action.as_str() {
            "run" => "job.run",
            "enable" => "job.enabled",
            _ => "job.disabled",
        },
        json!({"job": f.job, "by": ui.by()}),
    )
    .await;
    Redirect::to("/ui/schedules").into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct Add {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    spec: String,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    message: String,
}

/// `POST /ui/schedules/add`: validated like `POST /v1/jobs`.
pub(crate) async fn add(State(st): State<Arc<AppState>>, ui: Ui, Form(f): Form<Add>) -> Response {
    if let Err(e) = ui
        .check_csrf(&f.csrf)
        .and_then(|()| ui.require(Scope::JobsWrite))
    {
        return e.into_response();
    }
    if !matches!(f.kind.as_str(), "every" | "cron" | "at") {
        return page_error(StatusCode::BAD_REQUEST, "when: every, cron or at");
    }
    let agent = if f.agent.trim().is_empty() {
        "main"
    } else {
        f.agent.trim()
    };
    let spec = json!({"name": f.name.trim(), f.kind.as_str(): f.spec.trim(), "agent": agent,
                      "message": f.message});
    let job = serde_json::from_value(spec)
        .map_err(|e| e.to_string())
        .and_then(|spec| pincer_gateway::job_from_spec(&st, spec));
    let job = match job {
        Ok(j) => j,
        Err(e) => return page_error(StatusCode::BAD_REQUEST, &e),
    };
    if let Err(e) = st.store.add_job(&job).await {
        return page_error(StatusCode::CONFLICT, &e.to_string());
    }
    let _ = pincer_gateway::governance::record(
        st.audit.as_ref(),
        "job.added",
        json!({"job": job.name, "kind": job.kind, "spec": job.spec, "agent": job.agent, "by": ui.by()}),
    )
    .await;
    Redirect::to("/ui/schedules").into_response()
}
