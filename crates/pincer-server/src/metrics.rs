//! This process's counters for `/metrics` (the store's part is the gateway's): runs by status
//! with their duration histogram, model calls by model and outcome, tool calls by tool and
//! policy decision (from `pincer_agent::stats`), and the process's uptime.

use std::time::Instant;

use pincer_agent::stats::{self, BUCKETS};
use pincer_gateway::ProcessMetrics;
use pincer_gateway::metrics::Exposition;

/// The process's counters.
#[derive(Debug)]
pub struct Process {
    started: Instant,
}

impl Process {
    /// Counting from now.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
        }
    }
}

impl Default for Process {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessMetrics for Process {
    fn write(&self, out: &mut Exposition) {
        let s = stats::snapshot();
        out.family(
            "pincer_turns_total",
            "counter",
            "Agent runs finished by this process, by status.",
        );
        for (status, n) in &s.runs {
            out.sample("pincer_turns_total", &[("status", status)], *n as f64);
        }
        out.family(
            "pincer_turn_duration_seconds",
            "histogram",
            "Agent run durations in this process.",
        );
        let mut cumulative = 0u64;
        for (i, le) in BUCKETS.iter().enumerate() {
            cumulative += s.run_buckets[i];
            out.sample(
                "pincer_turn_duration_seconds_bucket",
                &[("le", &le.to_string())],
                cumulative as f64,
            );
        }
        cumulative += s.run_buckets[BUCKETS.len()];
        out.sample(
            "pincer_turn_duration_seconds_bucket",
            &[("le", "+Inf")],
            cumulative as f64,
        );
        out.sample("pincer_turn_duration_seconds_sum", &[], s.run_seconds);
        out.sample("pincer_turn_duration_seconds_count", &[], cumulative as f64);
        out.family(
            "pincer_model_calls_total",
            "counter",
            "Model calls made by this process, by model and outcome.",
        );
        for ((model, outcome), n) in &s.model_calls {
            out.sample(
                "pincer_model_calls_total",
                &[("model", model), ("outcome", outcome)],
                *n as f64,
            );
        }
        out.family(
            "pincer_tool_calls_total",
            "counter",
            "Tool calls decided in this process, by tool and policy decision.",
        );
        for ((tool, decision), n) in &s.tool_calls {
            out.sample(
                "pincer_tool_calls_total",
                &[("tool", tool), ("decision", decision)],
                *n as f64,
            );
        }
        for (kind, name, help, label) in [
            (
                "failover",
                "pincer_failovers_total",
                "Model calls that failed over to the next model, by the model failed from.",
                "model",
            ),
            (
                "channel_send_failure",
                "pincer_channel_send_failures_total",
                "Messages a chat channel failed to send (refused, limited or unavailable), by channel.",
                "channel",
            ),
        ] {
            out.family(name, "counter", help);
            for ((_, l), n) in s.events.iter().filter(|((k, _), _)| *k == kind) {
                out.sample(name, &[(label, l)], *n as f64);
            }
        }
        let spawns: u64 = s
            .tool_calls
            .iter()
            .filter(|((tool, decision), _)| {
                decision == "allow" && matches!(tool.as_str(), "shell.exec" | "process")
            })
            .map(|(_, n)| n)
            .sum();
        out.family(
            "pincer_sandbox_spawns_total",
            "counter",
            "Commands allowed to start in the sandbox (shell.exec, process).",
        );
        out.sample("pincer_sandbox_spawns_total", &[], spawns as f64);
        out.family(
            "pincer_uptime_seconds",
            "gauge",
            "Seconds since this process started serving.",
        );
        out.sample(
            "pincer_uptime_seconds",
            &[],
            self.started.elapsed().as_secs_f64(),
        );
    }
}
