//! Tools: the [`Tool`] trait, the [`ToolRegistry`], and the built-in tools.
//!
//! A tool works in three steps so nothing unapproved can run: `spec()` says what it is,
//! `plan(args)` validates the arguments and resolves them into a concrete [`Action`] without side
//! effects, and `run(Approved<Action>)` does the work — it accepts only an action the policy
//! module approved.

mod builtin;
mod registry;
mod tool;

pub use builtin::TimeNow;
pub use registry::{RegistryError, ToolRegistry};
pub use tool::{Tool, ToolError, ToolFuture, ToolOutput, ToolSpec};
