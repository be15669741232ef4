//! `/ui/agents` (operators and above): each agent's instruction files (read-only), tools and
//! approval settings, model chain, and its token use over the last seven days as bars
//! (`<meter>`: a chart without script or inline style).

use std::io::Read;
use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;
use pincer_gateway::AppState;
use pincer_store::UsageFilter;
use pincer_types::{Role, Scope};

use crate::pages::layout;
use crate::session::Ui;

/// Most bytes of one instruction file shown.
const MAX_FILE: u64 = 64 * 1024;

/// An agent's top-level Markdown files (`AGENTS.md`, `SOUL.md`, …): plain files only, capped.
fn instruction_files(dir: &std::path::Path) -> Vec<(String, String)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".md"))
        .collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|n| {
            let f = crate::transcript::open_plain(dir, &n, u64::MAX)?;
            let mut text = String::new();
            f.take(MAX_FILE).read_to_string(&mut text).ok()?;
            Some((n, text))
        })
        .collect()
}

/// `GET /ui/agents`.
pub(crate) async fn page(State(st): State<Arc<AppState>>, ui: Ui) -> Response {
    if ui.session.role < Role::Operator {
        return crate::pages::page_error(
            axum::http::StatusCode::FORBIDDEN,
            "the agents page is for operators and above",
        );
    }
    if let Err(e) = ui.require(Scope::TasksRead) {
        return e.into_response();
    }
    let mut sections = Vec::new();
    for agent in &st.agents {
        let a = st
            .config
            .as_ref()
            .and_then(|c| c.agents.get(agent).cloned());
        let files = match &st.agents_dir {
            Some(dir) => {
                let dir = dir.join(agent.as_str());
                tokio::task::spawn_blocking(move || instruction_files(&dir))
                    .await
                    .unwrap_or_default()
            }
            None => Vec::new(),
        };
        let days = crate::usage::daily(
            &crate::usage::week(
                &st,
                UsageFilter {
                    agent: Some(agent.to_string()),
                    ..UsageFilter::default()
                },
            )
            .await,
        );
        sections.push((agent.clone(), a, files, days));
    }
    layout(
        &ui,
        "Agents",
        None,
        html! {
            @for (agent, a, files, days) in &sections {
                article.approval {
                    h2 { (agent) }
                    @if let Some(a) = a {
                        dl {
                            dt { "model" } dd { (a.provider) " / " (a.model)
                                @if !a.models.is_empty() { " — chain: " (a.models.join(" → ")) } }
                            dt { "tools" } dd { "profile " (format!("{:?}", a.profile).to_lowercase())
                                @if !a.allow.is_empty() { ", allow " (a.allow.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")) }
                                @if !a.deny.is_empty() { ", deny " (a.deny.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")) } }
                            dt { "approvals" } dd { (a.approval_mode.map_or_else(|| "as security.approval_mode".to_owned(), |m| format!("{m:?}").to_lowercase())) }
                            dt { "limits" } dd { (a.max_steps) " steps, " (a.run_timeout_secs) " s a run" }
                        }
                    }
                    h3 { "Tokens, last 7 days" }
                    (crate::usage::bars(days))
                    h3 { "Instruction files" }
                    @if files.is_empty() { p.hint { "None." } }
                    @for (name, text) in files {
                        details { summary { code { (name) } } pre.text { (text) } }
                    }
                }
            }
            p.hint { "Read-only: agents are configured in config.toml and their files on disk." }
        },
    )
    .into_response()
}
