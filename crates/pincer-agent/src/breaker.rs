//! The no-progress breaker: stops a run when the model repeats the same tool call and gets the
//! same result again and again.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// How many identical (call, result) pairs end a run.
pub(crate) const REPEAT_LIMIT: u32 = 3;

/// Counts identical tool calls with identical results within one run.
#[derive(Debug, Default)]
pub(crate) struct RepeatBreaker {
    seen: HashMap<[u8; 32], u32>,
}

impl RepeatBreaker {
    /// Records a call and its result; returns true when the limit is reached.
    pub(crate) fn trips(&mut self, tool: &str, arguments: &str, result: &str) -> bool {
        // Canonicalise JSON arguments so key order and spacing do not hide a repeat.
        let args = serde_json::from_str::<serde_json::Value>(arguments)
            .map(|v| v.to_string())
            .unwrap_or_else(|_| arguments.to_owned());
        let mut h = Sha256::new();
        for part in [tool, "\0", &args, "\0", result] {
            h.update(part.as_bytes());
        }
        let n = self.seen.entry(h.finalize().into()).or_insert(0);
        *n += 1;
        *n >= REPEAT_LIMIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_on_third_identical_pair_only() {
        let mut b = RepeatBreaker::default();
        assert!(!b.trips("t", r#"{"a":1,"b":2}"#, "r"));
        assert!(!b.trips("t", r#"{ "b": 2, "a": 1 }"#, "r"));
        assert!(!b.trips("t", r#"{"a":1,"b":2}"#, "different"));
        assert!(b.trips("t", r#"{"a":1,"b":2}"#, "r"));
    }
}
