//! Model Context Protocol servers as Pincer tools (C10, G3, G4).
//!
//! - [`client`]: a small, bounded MCP client over [`transport::stdio`] (a sandboxed process) or
//!   [`transport::http`] (streamable HTTP behind the egress policy): initialize and version
//!   negotiation, paginated `tools/list`, `tools/list_changed`, `tools/call` with progress,
//!   timeout and `notifications/cancelled`, `ping`. Every protocol fault is a typed
//!   [`McpError`] or an observed [`client::Event`], never a panic or an unbounded wait.
//! - [`manifest`]: a server's tools reduced to what an operator approves, and its sha256.
//! - [`content`]: a call's result as text for the model, bounded, checked against the tool's
//!   declared output schema.
//! - [`hub`]: the servers of one Pincer process — started sandboxed on first use, restarted with
//!   back-off, stderr kept in a bounded ring, tools withdrawn when the manifest no longer matches
//!   the approved one — and [`tool::McpTool`], the registry entry that calls through it.
//!
//! Why not the official `rmcp` SDK: see docs/MCP.md ("The client").

pub mod client;
pub mod content;
mod error;
pub mod hub;
pub mod jsonrpc;
pub mod manifest;
pub mod tool;
pub mod transport;

pub use error::McpError;
