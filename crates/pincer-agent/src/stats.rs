//! Process-wide counters for metrics (issue 23, H4): runs by status with their durations, model
//! calls by model and outcome, tool calls by tool and policy decision. Kept like a Prometheus
//! client's default registry — one per process (each node is scraped on its own) — in small maps
//! behind a mutex held only to add or copy (never across an await). Label sets are bounded: tool
//! names and models come from the configuration and registry, statuses and decisions are fixed.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex, MutexGuard};
use std::time::Duration;

/// Upper bounds of the run-duration histogram, in seconds.
pub const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// A copy of the counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Runs finished, by status.
    pub runs: BTreeMap<String, u64>,
    /// Run durations: per bucket of [`BUCKETS`] (not cumulative), the overflow, the sum (s).
    pub run_buckets: [u64; 13],
    /// Sum of run durations, seconds.
    pub run_seconds: f64,
    /// Model calls, by (model, outcome).
    pub model_calls: BTreeMap<(String, String), u64>,
    /// Tool calls, by (tool, decision).
    pub tool_calls: BTreeMap<(String, String), u64>,
    /// Other events, by (kind, label): model failovers by the model failed from, channel send
    /// failures by channel and kind.
    pub events: BTreeMap<(&'static str, String), u64>,
}

static STATS: LazyLock<Mutex<Stats>> = LazyLock::new(|| Mutex::new(Stats::default()));

fn stats() -> MutexGuard<'static, Stats> {
    // A poisoned lock only means a panic elsewhere while counting: the counts are still usable.
    STATS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A run ended.
pub fn run_finished(status: &str, took: Duration) {
    let secs = took.as_secs_f64();
    let bucket = BUCKETS
        .iter()
        .position(|b| secs <= *b)
        .unwrap_or(BUCKETS.len());
    let mut s = stats();
    *s.runs.entry(status.to_owned()).or_default() += 1;
    s.run_buckets[bucket] += 1;
    s.run_seconds += secs;
}

/// A model call ended (`ok` or the error kind).
pub fn model_call(model: &str, outcome: &str) {
    *stats()
        .model_calls
        .entry((model.to_owned(), outcome.to_owned()))
        .or_default() += 1;
}

/// A tool call was decided (`allow`, `deny`, `needs_approval`, `held-tainted`, …).
pub fn tool_call(tool: &str, decision: &str) {
    *stats()
        .tool_calls
        .entry((tool.to_owned(), decision.to_owned()))
        .or_default() += 1;
}

/// Something worth counting happened (`kind` is one of a fixed set; `label` comes from the
/// configuration: a model alias, a channel name).
pub fn event(kind: &'static str, label: &str) {
    *stats().events.entry((kind, label.to_owned())).or_default() += 1;
}

/// The counters now.
pub fn snapshot() -> Stats {
    stats().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_land_in_their_bucket() {
        let before = snapshot();
        run_finished("succeeded", Duration::from_millis(3));
        run_finished("succeeded", Duration::from_secs(100));
        tool_call("fs.read", "allow");
        let after = snapshot();
        assert_eq!(after.run_buckets[0], before.run_buckets[0] + 1);
        assert_eq!(after.run_buckets[12], before.run_buckets[12] + 1);
        assert!(after.run_seconds >= before.run_seconds + 100.0);
        assert!(after.tool_calls[&("fs.read".to_owned(), "allow".to_owned())] >= 1);
    }
}
