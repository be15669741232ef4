//! Task lifecycle states (E8).

use serde::{Deserialize, Serialize};

/// The state of a queued task. Terminal states never change again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker holds its lease.
    Running,
    /// Paused until a human approves or denies an action.
    WaitingApproval,
    /// Finished with an answer.
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Stopped by a person.
    Canceled,
    /// Ran past its deadline.
    TimedOut,
}

impl TaskStatus {
    /// Whether no further transition is allowed.
    pub fn is_terminal(self) -> bool {
        match self {
            Self::Queued | Self::Running | Self::WaitingApproval => false,
            Self::Succeeded | Self::Failed | Self::Canceled | Self::TimedOut => true,
        }
    }
}
