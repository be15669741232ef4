//! `GET /metrics` (scope `metrics:read`, which `admin` implies): Prometheus text exposition
//! (format 0.0.4), every name prefixed `pincer_`. Two sources: the store, read at each scrape
//! (tasks by state, queue depth, approvals waiting, model calls, tokens and cost by model —
//! totals across every process sharing the store — and skills by state), and this process's own
//! counters (runs with their duration histogram, model calls by outcome, tool calls by policy
//! decision), rendered by whoever built the state ([`AppState::process_metrics`]).
//! Message content is never a label.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use pincer_store::{ApprovalStatus, UsageBy};

use crate::{ApiError, AppState};

/// A Prometheus text exposition being written.
#[derive(Debug, Default)]
pub struct Exposition(String);

/// `\`, `"` and newlines escaped, as label values need.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Exposition {
    /// Starts a metric family.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    /// One sample.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }

    /// The text.
    pub fn finish(self) -> String {
        self.0
    }
}

/// The store's part of the exposition.
async fn from_store(st: &AppState, out: &mut Exposition) -> Result<(), ApiError> {
    let counts = st.store.task_counts().await.map_err(ApiError::internal)?;
    out.family("pincer_tasks", "gauge", "Tasks in the store, by state.");
    for (status, n) in &counts {
        out.sample("pincer_tasks", &[("state", status.as_str())], *n as f64);
    }
    out.family(
        "pincer_queue_depth",
        "gauge",
        "Tasks queued and not yet claimed.",
    );
    let queued = counts
        .iter()
        .find(|(s, _)| *s == pincer_types::TaskStatus::Queued)
        .map_or(0, |(_, n)| *n);
    out.sample("pincer_queue_depth", &[], queued as f64);
    let waiting = st
        .store
        .count_approvals(ApprovalStatus::Pending)
        .await
        .map_err(ApiError::internal)?;
    out.family(
        "pincer_approvals_waiting",
        "gauge",
        "Approvals waiting for a decision.",
    );
    out.sample("pincer_approvals_waiting", &[], waiting as f64);
    let usage = st
        .store
        .usage_report(UsageBy::Model, None)
        .await
        .map_err(ApiError::internal)?;
    out.family(
        "pincer_model_usage_calls_total",
        "counter",
        "Recorded model calls, by model (all processes).",
    );
    for u in &usage {
        out.sample(
            "pincer_model_usage_calls_total",
            &[("model", &u.key)],
            u.calls as f64,
        );
    }
    out.family(
        "pincer_tokens_total",
        "counter",
        "Tokens used, by model and direction (all processes).",
    );
    for u in &usage {
        out.sample(
            "pincer_tokens_total",
            &[("model", &u.key), ("direction", "input")],
            u.input_tokens as f64,
        );
        out.sample(
            "pincer_tokens_total",
            &[("model", &u.key), ("direction", "output")],
            u.output_tokens as f64,
        );
    }
    out.family(
        "pincer_cost_usd_total",
        "counter",
        "Cost of priced model calls in USD, by model (all processes).",
    );
    for u in &usage {
        out.sample("pincer_cost_usd_total", &[("model", &u.key)], u.cost_usd);
    }
    let skills = st.store.skills().await.map_err(ApiError::internal)?;
    out.family("pincer_skills", "gauge", "Installed skills, by state.");
    for state in pincer_store::SkillState::ALL {
        let n = skills.iter().filter(|s| s.state == state).count();
        out.sample("pincer_skills", &[("state", state.as_str())], n as f64);
    }
    Ok(())
}

pub(crate) async fn metrics(State(st): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let mut out = Exposition::default();
    from_store(&st, &mut out).await?;
    if let Some(process) = &st.process_metrics {
        process.write(&mut out);
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out.finish(),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut e = Exposition::default();
        e.family("pincer_x", "gauge", "X.");
        e.sample("pincer_x", &[("a", "q\"b\\c\nd")], 1.5);
        assert_eq!(
            e.finish(),
            "# HELP pincer_x X.\n# TYPE pincer_x gauge\npincer_x{a=\"q\\\"b\\\\c\\nd\"} 1.5\n"
        );
    }
}
