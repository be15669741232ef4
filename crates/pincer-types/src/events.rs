//! Typed events a run emits, and the record of how it ended.

use serde::{Deserialize, Serialize};

use crate::{RiskTier, RunId, ToolName};

/// Token counts reported by the model provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
}

impl TokenUsage {
    /// Adds another usage report to this one (saturating).
    pub fn add(&mut self, other: TokenUsage) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still going (only seen in a bundle of a run that has not finished).
    Running,
    /// Produced a final answer.
    Succeeded,
    /// Stopped on an error.
    Failed,
    /// Stopped by the user.
    Canceled,
    /// Ran past its deadline.
    TimedOut,
}

/// Something that happened during a run, in order. Streamed to UIs and written to transcripts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunEvent {
    /// The run began.
    Started {
        /// Which run.
        run_id: RunId,
    },
    /// A piece of the model's answer.
    TextDelta {
        /// The text.
        text: String,
    },
    /// The model asked for a tool.
    ToolCall {
        /// Provider's call id.
        id: String,
        /// Tool name.
        tool: ToolName,
        /// Tier the call resolved to, when it resolved.
        tier: Option<RiskTier>,
    },
    /// A tool finished.
    ToolResult {
        /// Provider's call id.
        id: String,
        /// Whether the tool reported an error.
        is_error: bool,
    },
    /// The run ended.
    Finished {
        /// How.
        status: RunStatus,
    },
}
