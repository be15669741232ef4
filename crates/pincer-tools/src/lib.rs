//! Tools: the [`Tool`] trait, the [`ToolRegistry`], and the built-in tools.
//!
//! A tool works in three steps so nothing unapproved can run: `spec()` says what it is,
//! `plan(ctx, args)` validates the arguments and resolves them into a concrete [`Action`] without
//! side effects, and `run(ctx, Approved<Action>)` does the work — it accepts only an action the
//! policy module approved. File tools reach the disk only through [`fs::FsScope`].

mod builtin;
pub mod exec;
pub mod fs;
pub mod memory;
pub mod patch;
mod registry;
pub mod search;
mod tool;

pub use builtin::TimeNow;
pub use exec::{ExecScope, ExecSettings, ProcessTool, ShellExec};
pub use fs::{FsEdit, FsList, FsRead, FsWrite};
pub use patch::ApplyPatch;
pub use registry::{RegistryError, ToolRegistry};
pub use search::CodeSearch;
pub use tool::{
    Tool, ToolContext, ToolError, ToolFuture, ToolOutput, ToolSpec, parse_args, schema_of,
};
