//! Pure data shared by every Pincer crate: identifiers, the message envelope, run and task
//! events, task states, risk tiers, capabilities and the concrete `Action` a tool call resolves to.
//!
//! Invariants: this crate performs no I/O (the only exception is [`SystemClock`], which reads the
//! wall clock) and every identifier is validated when it is built, so a value of one of these types
//! is always well formed.

mod action;
mod clock;
mod envelope;
mod events;
mod ids;
pub mod markers;
mod risk;
mod role;
mod scope;
mod task;

pub use action::{Action, ActionDigest, ArgRole, Sink, SinkArg, SinkKind};
pub use clock::{Clock, SystemClock};
pub use envelope::{Envelope, Provenance};
pub use events::{RunEvent, RunStatus, TokenUsage};
pub use ids::{AgentId, IdError, RunId, SessionId, SessionKey, TaskId, ToolName};
pub use risk::{Capability, RiskTier};
pub use role::Role;
pub use scope::Scope;
pub use task::TaskStatus;
