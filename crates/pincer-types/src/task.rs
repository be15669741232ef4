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
    /// Every state.
    pub const ALL: [Self; 7] = [
        Self::Queued,
        Self::Running,
        Self::WaitingApproval,
        Self::Succeeded,
        Self::Failed,
        Self::Canceled,
        Self::TimedOut,
    ];

    /// The one table of allowed transitions (E8). Everything not listed is refused:
    /// - `QUEUED → RUNNING` (a worker claims it), `CANCELED` or `TIMED_OUT`;
    /// - `RUNNING → WAITING_APPROVAL` (an action needs a human), or an end state;
    /// - `WAITING_APPROVAL → RUNNING` (decided or expired; the run carries on), or an end state
    ///   other than `SUCCEEDED`;
    /// - end states never change.
    pub fn can_move_to(self, next: Self) -> bool {
        match (self, next) {
            (Self::Queued, Self::Running | Self::Canceled | Self::TimedOut) => true,
            (
                Self::Running,
                Self::WaitingApproval
                | Self::Succeeded
                | Self::Failed
                | Self::Canceled
                | Self::TimedOut,
            ) => true,
            (
                Self::WaitingApproval,
                Self::Running | Self::Failed | Self::Canceled | Self::TimedOut,
            ) => true,
            (
                Self::Queued | Self::Running | Self::WaitingApproval,
                Self::Queued | Self::Running | Self::WaitingApproval | Self::Succeeded,
            )
            | (Self::Queued, Self::Failed) => false,
            (
                Self::Succeeded | Self::Failed | Self::Canceled | Self::TimedOut,
                Self::Queued
                | Self::Running
                | Self::WaitingApproval
                | Self::Succeeded
                | Self::Failed
                | Self::Canceled
                | Self::TimedOut,
            ) => false,
        }
    }

    /// The stored spelling (`QUEUED`, `WAITING_APPROVAL`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Running => "RUNNING",
            Self::WaitingApproval => "WAITING_APPROVAL",
            Self::Succeeded => "SUCCEEDED",
            Self::Failed => "FAILED",
            Self::Canceled => "CANCELED",
            Self::TimedOut => "TIMED_OUT",
        }
    }

    /// Parses [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Whether no further transition is allowed.
    pub fn is_terminal(self) -> bool {
        match self {
            Self::Queued | Self::Running | Self::WaitingApproval => false,
            Self::Succeeded | Self::Failed | Self::Canceled | Self::TimedOut => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_states_never_move_and_every_state_round_trips() {
        for a in TaskStatus::ALL {
            assert_eq!(TaskStatus::parse(a.as_str()), Some(a));
            assert_eq!(
                serde_json::to_value(a).unwrap(),
                serde_json::Value::String(a.as_str().into())
            );
            for b in TaskStatus::ALL {
                if a.is_terminal() {
                    assert!(!a.can_move_to(b), "{a:?} -> {b:?}");
                }
                // No state moves to itself.
                if a == b {
                    assert!(!a.can_move_to(b), "{a:?} -> {b:?}");
                }
            }
        }
    }

    #[test]
    fn the_lifecycle_paths_are_allowed() {
        use TaskStatus::*;
        for (a, b) in [
            (Queued, Running),
            (Queued, Canceled),
            (Running, WaitingApproval),
            (WaitingApproval, Running),
            (Running, Succeeded),
            (Running, Failed),
            (Running, TimedOut),
            (WaitingApproval, Canceled),
        ] {
            assert!(a.can_move_to(b), "{a:?} -> {b:?}");
        }
        for (a, b) in [
            (Queued, Succeeded),
            (WaitingApproval, Succeeded),
            (Running, Queued),
        ] {
            assert!(!a.can_move_to(b), "{a:?} -> {b:?}");
        }
    }
}
