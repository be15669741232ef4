//! `/ui/skills` (admins): installed skills with their status, scan verdict and findings,
//! permissions and hashes; approve (the content as scanned, warnings accepted knowingly),
//! enable, disable, rescan, revoke — through the same `SkillAdmin` as the CLI and the API.

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use pincer_gateway::AppState;
use serde::Deserialize;

use crate::pages::{admin, layout, page_error};
use crate::session::Ui;

/// `GET /ui/skills`.
pub(crate) async fn list(State(st): State<Arc<AppState>>, ui: Ui) -> Response {
    if let Err(e) = admin(&ui) {
        return e.into_response();
    }
    let Some(skills) = st.skills.clone() else {
        return page_error(
            StatusCode::NOT_FOUND,
            "this server has no skill administration",
        );
    };
    let v = match skills.list().await {
        Ok(v) => v,
        Err(e) => return page_error(StatusCode::SERVICE_UNAVAILABLE, &e.message),
    };
    let list = v["skills"].as_array().cloned().unwrap_or_default();
    let csrf = ui.session.csrf.clone();
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
    layout(
        &ui,
        "Skills",
        None,
        html! {
            @if list.is_empty() { p.empty { "No skills are installed. Install one with " code { "pincer skills install PATH|GIT_URL" } "." } }
            @for k in &list {
                article.approval {
                    h2 { code { (s(&k["name"])) } " " (s(&k["version"])) " · " span class={ "status " (s(&k["status"])) } { (s(&k["status"])) } }
                    p { (s(&k["description"])) }
                    @if let Some(r) = k["reason"].as_str() { p.banner { (r) } }
                    dl {
                        dt { "source" } dd { code { (s(&k["source"])) } }
                        dt { "scan" } dd { (s(&k["verdict"])) }
                        dt { "sha256" } dd { code { (s(&k["sha256"])) } }
                        @if let Some(a) = k["approved_sha256"].as_str() { dt { "approved" } dd { code { (a) } " by " (s(&k["approved_by"])) } }
                        dt { "permissions" } dd { code { (k["permissions"].to_string()) } }
                    }
                    @if let Some(f) = k["findings"].as_array().filter(|f| !f.is_empty()) {
                        table.findings {
                            thead { tr { th { "level" } th { "rule" } th { "where" } th { "what" } } }
                            tbody { @for x in f { tr {
                                td { (s(&x["level"])) } td { code { (s(&x["rule"])) } }
                                td { (s(&x["file"])) ":" (x["line"]) } td { (s(&x["message"])) }
                            } } }
                        }
                    }
                    form.inline method="post" action="/ui/skills" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="name" value=(s(&k["name"]));
                        input type="hidden" name="sha256" value=(s(&k["sha256"]));
                        @match k["status"].as_str().unwrap_or("") {
                            "pending" | "quarantined" | "revoked" => {
                                @if k["verdict"] == "warn" {
                                    label { input type="checkbox" name="accept_warnings" value="yes"; " I read the warnings" }
                                }
                                button type="submit" name="action" value="approve" { "Approve this content" }
                            }
                            "enabled" => { button type="submit" name="action" value="disable" { "Disable" } }
                            "disabled" => { button type="submit" name="action" value="enable" { "Enable" } }
                            _ => {}
                        }
                        button type="submit" name="action" value="rescan" { "Rescan" }
                        @if k["status"] != "revoked" { button.danger type="submit" name="action" value="revoke" { "Revoke everywhere" } }
                    }
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
    name: String,
    #[serde(default)]
    sha256: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    accept_warnings: Option<String>,
}

/// `POST /ui/skills`: approve (exactly the content shown), enable, disable, rescan or revoke.
pub(crate) async fn act(State(st): State<Arc<AppState>>, ui: Ui, Form(f): Form<Act>) -> Response {
    if let Err(e) = ui.check_csrf(&f.csrf).and_then(|()| admin(&ui)) {
        return e.into_response();
    }
    let Some(skills) = st.skills.clone() else {
        return page_error(
            StatusCode::NOT_FOUND,
            "this server has no skill administration",
        );
    };
    let by = ui.by();
    let done = match f.action.as_str() {
        "approve" => {
            skills
                .approve(&f.name, Some(&f.sha256), f.accept_warnings.is_some(), &by)
                .await
        }
        "enable" | "disable" | "rescan" | "revoke" => skills.act(&f.name, &f.action, &by).await,
        _ => {
            return page_error(
                StatusCode::BAD_REQUEST,
                "approve, enable, disable, rescan or revoke",
            );
        }
    };
    match done {
        Ok(_) => Redirect::to("/ui/skills").into_response(),
        Err(e) => page_error(
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::CONFLICT),
            &e.message,
        ),
    }
}
