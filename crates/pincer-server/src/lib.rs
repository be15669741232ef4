//! The Pincer server runtime, as a library: what `pincer serve` runs and what the one-shot
//! commands (`ask`, `chat`, `tools call`, `run`) build their agents with.
//!
//! - [`failover`]: a model provider over a chain of models and keys, with cooldowns;
//! - [`memory_index`]: an agent's memory search index (full text, embeddings, fusion);
//! - [`metering`]: usage records and budgets checked before each model call;
//! - [`pins`]: `/model`, a conversation's choice among its agent's models;
//! - [`runtime`]: one agent's runtime (provider, tools, policy, gate, audit) and the per-process
//!   backing (one store, one audit log);
//! - [`worker`]: the worker pool that claims queued tasks under a lease;
//! - [`router`]: the channel router (Telegram), with the durable outbox;
//! - [`jobs`] and [`heartbeat`]: the automation tick (scheduled jobs, heartbeats, delivery);
//! - [`leader`]: singletons (the scheduler tick, chat channels) on one node at a time;
//! - [`audit`]: the audit log a process writes and reads (day files, or the database chain);
//! - [`approver`]: approvals on a terminal (`ask`/`chat`);
//! - [`sandbox`]: whether an agent gets exec tools, and its exec scope;
//! - [`serve()`]: the one entry point of `pincer serve`.
//!
//! The process environment is read once, by the caller, into an [`Env`].

pub mod approver;
pub mod audit;
mod env;
pub mod failover;
pub mod failure;
pub mod governance;
pub mod heartbeat;
pub mod jobs;
pub mod leader;
pub mod mcp;
pub mod mcp_admin;
pub mod memory_index;
pub mod metering;
pub mod metrics;
pub mod pins;
pub mod relay;
pub mod retention;
pub mod router;
pub mod runtime;
pub mod sandbox;
mod serve;
pub mod skills_admin;
pub mod web;
pub mod worker;

pub use env::Env;
pub use failure::Failure;
pub use serve::{Role, ServeOptions, serve};
