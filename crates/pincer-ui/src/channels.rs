//! `/ui/channels` (admin): pending pairing requests to approve, and single-use invites that link
//! a chat account to a user — the same store calls as `pincer pairing` and `pincer invites`.

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::html;
use pincer_gateway::AppState;
use serde::Deserialize;
use serde_json::json;

use crate::pages::{admin, layout, page_error};
use crate::session::Ui;

/// The chat channels Pincer has.
const CHANNELS: &[&str] = &["telegram"];

/// `GET /ui/channels`.
pub(crate) async fn list(State(st): State<Arc<AppState>>, ui: Ui) -> Response {
    if let Err(e) = admin(&ui) {
        return e.into_response();
    }
    let mut pending = Vec::new();
    for c in CHANNELS {
        match st.store.pairings(c, Utc::now()).await {
            Ok(p) => pending.extend(p),
            Err(e) => return page_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        }
    }
    let users = st.store.users().await.unwrap_or_default();
    let telegram = st.config.as_ref().and_then(|c| c.channels.telegram.clone());
    // Messages waiting to go out (past the first few hundred: "at least").
    let waiting = st
        .store
        .pending_out("telegram", 500)
        .await
        .map(|o| o.len())
        .unwrap_or(0);
    let polled = st.store.offset("telegram").await.ok().flatten().is_some();
    let csrf = ui.session.csrf.clone();
    layout(
        &ui,
        "Channels",
        Some(10),
        html! {
            h2 { "Status" }
            table {
                thead { tr { th { "channel" } th { "state" } th { "agent" } th { "direct messages" } th { "groups" } th { "updates" } th { "waiting to send" } } }
                tbody {
                    tr {
                        td { "telegram" }
                        @match &telegram {
                            None => { td { "not configured" } td {} td {} td {} td {} }
                            Some(t) => {
                                td { @if t.enabled { "enabled (" (if t.webhook_url.is_some() { "webhook" } else { "long polling" }) ")" } @else { "configured, disabled" } }
                                td { (t.agent) }
                                td { (format!("{:?}", t.dm_policy).to_lowercase())
                                    @if !t.allow_from.is_empty() { ", " (t.allow_from.len()) " allowed" } }
                                td { (t.groups.len()) }
                            }
                        }
                        td { @if polled { "received" } @else { "none yet" } }
                        td { (waiting) @if waiting >= 500 { "+" } }
                    }
                }
            }
            h2 { "Pairing requests" }
            @if pending.is_empty() { p { "None waiting." } }
            table {
                tbody {
                    @for p in &pending {
                        tr {
                            td { (p.channel) }
                            td { (p.name) " (" (p.sender) ")" }
                            td { code { (p.code) } }
                            td { "expires " (p.expires_at.format("%H:%M")) }
                            td {
                                form.inline method="post" action="/ui/channels/pair" {
                                    input type="hidden" name="csrf" value=(csrf);
                                    input type="hidden" name="channel" value=(p.channel);
                                    input type="hidden" name="code" value=(p.code);
                                    button type="submit" { "Approve" }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "Invite someone" }
            form method="post" action="/ui/channels/invite" {
                input type="hidden" name="csrf" value=(csrf);
                label { "for user " select name="user" { @for u in users.iter().filter(|u| u.enabled()) { option value=(u.name) { (u.name) " (" (u.role.as_str()) ")" } } } }
                button type="submit" { "Create a single-use invite (7 days)" }
            }
        },
    )
    .into_response()
}

#[derive(Debug, Deserialize)]
pub(crate) struct Pair {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    code: String,
}

/// `POST /ui/channels/pair`: approves a pairing code.
pub(crate) async fn pair(State(st): State<Arc<AppState>>, ui: Ui, Form(f): Form<Pair>) -> Response {
    if let Err(e) = ui.check_csrf(&f.csrf).and_then(|()| admin(&ui)) {
        return e.into_response();
    }
    match st
        .store
        .approve_pairing(&f.channel, &f.code, Utc::now())
        .await
    {
        Ok(p) => {
            let fields =
                json!({"channel": p.channel, "sender": p.sender, "name": p.name, "by": ui.by()});
            let _ = pincer_gateway::governance::record(
                st.audit.as_ref(),
                "pairing.approved",
                fields.clone(),
            )
            .await;
            st.events.publish("pairing.approved", fields);
            Redirect::to("/ui/channels").into_response()
        }
        Err(e) => page_error(StatusCode::NOT_FOUND, &e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Invite {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    user: String,
}

/// `POST /ui/channels/invite`: shows a new invite code once.
pub(crate) async fn invite(
    State(st): State<Arc<AppState>>,
    ui: Ui,
    Form(f): Form<Invite>,
) -> Response {
    if let Err(e) = ui.check_csrf(&f.csrf).and_then(|()| admin(&ui)) {
        return e.into_response();
    }
    if !matches!(st.store.user(&f.user).await, Ok(Some(u)) if u.enabled()) {
        return page_error(StatusCode::BAD_REQUEST, "no such enabled user");
    }
    match st
        .store
        .create_invite(&f.user, chrono::Duration::days(7), Utc::now())
        .await
    {
        Ok(code) => {
            let _ = pincer_gateway::governance::record(
                st.audit.as_ref(),
                "invite.created",
                json!({"user": f.user, "days": 7, "by": ui.by()}),
            )
            .await;
            layout(
                &ui,
                "Invite",
                None,
                html! {
                    p { "Single-use invite for " strong { (f.user) } ", valid 7 days. Send the bot:" }
                    pre.text { "/start " (code) }
                    p { a href="/ui/channels" { "Back" } }
                },
            )
            .into_response()
        }
        Err(e) => page_error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}
