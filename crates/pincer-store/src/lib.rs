//! Persistence behind one [`Store`] trait. SQLite (embedded, WAL) is the default implementation;
//! the trait is async and speaks only in `pincer-types` values and JSON so a Postgres
//! implementation can follow without touching callers.
//!
//! Invariants: schema changes happen only through numbered migrations applied in a transaction;
//! the database file is created mode 0600; no lock is held across an `.await` (SQLite work runs
//! on the blocking pool).

mod approvals;
mod audit_head;
mod channels;
mod error;
mod health;
mod heartbeats;
mod jobs;
mod leaders;
mod mcp;
mod migrations;
mod notes;
#[cfg(feature = "postgres")]
mod pg;
mod relay;
mod retention;
mod skills;
mod sqlite;
mod store;
mod tasks;
mod tokens;
mod ui;
mod usage;
mod users;
mod values;

pub use approvals::{ApprovalError, ApprovalRecord, ApprovalStatus, ApprovalStore, NewApproval};
pub use audit_head::SqliteAuditHead;
pub use channels::{
    APPROVED_TEXT, ChannelError, ChannelStore, NewOutgoing, Outgoing, Pairing, PairingRequest,
    TaskLink,
};
pub use error::StoreError;
pub use health::{ModelHealth, ModelHealthStore};
pub use heartbeats::{HeartbeatRecord, HeartbeatStore};
pub use jobs::{EndedRun, Job, JobError, JobRun, JobStore, Retry, Settlement};
pub use leaders::LeaderStore;
pub use mcp::{McpManifestRow, McpRecord, McpStore};
pub use notes::{Note, NoteHit, NoteIndex, query_terms};
#[cfg(feature = "postgres")]
pub use pg::{ChainWriter, CopiedTable, PgAuditChain, PgStore, PgTls};
pub use relay::EventRelay;
pub use retention::{PrunePlan, Pruned, RetentionStore};
pub use skills::{SkillRecord, SkillState, SkillStore};
pub use sqlite::SqliteStore;
pub use store::{ModelPin, RunRecord, RunStart, SessionInfo, SessionSummary, SessionView, Store};
pub use tasks::{NewTask, TaskError, TaskKind, TaskQueue, TaskRecord};
pub use tokens::{TOKEN_PREFIX, TokenError, TokenInfo, TokenStore, ct_eq, token_hash};
pub use ui::{UiSession, UiSessionStore};
pub use usage::{
    DailyUsage, UsageBy, UsageFilter, UsageRecord, UsageStore, UsageTotal, parse_since,
};
pub use users::{
    ControlSet, Disabled, GovernanceError, GovernanceStore, Identity, OrgControls, Rotated,
    UserRecord,
};
pub use values::redact_url;

/// Every store seam at once: what a server holds (`Arc<dyn Backend>`), implemented by
/// [`SqliteStore`] and, with the `postgres` feature, `PgStore`. The conformance suite
/// (`tests/suite`) holds both to the same behaviour.
pub trait Backend:
    Store
    + TaskQueue
    + TokenStore
    + ApprovalStore
    + HeartbeatStore
    + JobStore
    + ChannelStore
    + LeaderStore
    + EventRelay
    + ModelHealthStore
    + UsageStore
    + NoteIndex
    + McpStore
    + GovernanceStore
    + UiSessionStore
    + SkillStore
    + RetentionStore
{
}

impl<T> Backend for T where
    T: Store
        + TaskQueue
        + TokenStore
        + ApprovalStore
        + HeartbeatStore
        + JobStore
        + ChannelStore
        + LeaderStore
        + EventRelay
        + ModelHealthStore
        + UsageStore
        + NoteIndex
        + McpStore
        + GovernanceStore
        + UiSessionStore
        + SkillStore
        + RetentionStore
{
}
