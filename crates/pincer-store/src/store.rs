//! The `Store` seam.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pincer_types::{AgentId, RunId, RunStatus, SessionId, SessionKey, TokenUsage};
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// A session row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Session id.
    pub id: SessionId,
    /// The key that points at it.
    pub key: SessionKey,
    /// Its agent.
    pub agent: AgentId,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// The model pinned for its key (`/model`), if any; it outlives `/new`.
    pub pin: Option<ModelPin>,
}

/// A session's compacted history as last sent (A6): `sent` messages stand for its first `covers`
/// stored messages, so the next run continues from the summary instead of compacting anew. The
/// stored messages themselves are never changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionView {
    /// How many stored messages `sent` stands for.
    pub covers: u64,
    /// What is sent in their place (opaque JSON messages).
    pub sent: Vec<serde_json::Value>,
}

/// One session in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    /// Session id.
    pub id: SessionId,
    /// Its key.
    pub key: SessionKey,
    /// When it began.
    pub created_at: DateTime<Utc>,
    /// How many messages it holds.
    pub messages: u64,
}

/// What a run starts from: the session's history and, when it was compacted before, its view.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunStart {
    /// Every stored message, oldest first.
    pub history: Vec<serde_json::Value>,
    /// The saved compacted view ([`SessionView`]), when the history is not empty.
    pub view: Option<SessionView>,
}

/// A session key's model choice (B3): an alias of the agent's chain, preferred (the chain may
/// still fall back) or strict (fail rather than switch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelPin {
    /// The `[models]` alias.
    pub alias: String,
    /// Fail rather than use another model.
    pub strict: bool,
}

/// The summary of one run, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id.
    pub id: RunId,
    /// Agent.
    pub agent: AgentId,
    /// Session.
    pub session: SessionId,
    /// Final (or current) status.
    pub status: RunStatus,
    /// Model used.
    pub model: String,
    /// sha256 of the assembled prompt.
    pub prompt_sha256: String,
    /// Tokens used.
    pub usage: TokenUsage,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// End time, once ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Error text for failed runs.
    pub error: Option<String>,
}

/// Durable state. Implementors guarantee every method is atomic, and that at most one current
/// (unarchived) session exists per key.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// The current session for `key`, created if there is none.
    async fn current_session(
        &self,
        key: &SessionKey,
        agent: &AgentId,
    ) -> Result<SessionInfo, StoreError>;
    /// Archives the current session for `key` (its history is kept) and starts a new one.
    async fn new_session(
        &self,
        key: &SessionKey,
        agent: &AgentId,
    ) -> Result<SessionInfo, StoreError>;
    /// Pins (or, with `None`, unpins) the model for every session of `key`.
    async fn set_model_pin(
        &self,
        key: &SessionKey,
        pin: Option<&ModelPin>,
    ) -> Result<(), StoreError>;
    /// Every session of `agent` (current and archived) with its key, start and message count,
    /// oldest first — what memory search indexes as past conversations.
    async fn agent_sessions(&self, agent: &AgentId) -> Result<Vec<SessionSummary>, StoreError>;
    /// The session's saved compacted view, if any.
    async fn session_view(&self, session: SessionId) -> Result<Option<SessionView>, StoreError>;
    /// Saves (replaces) the session's compacted view.
    async fn set_session_view(
        &self,
        session: SessionId,
        view: &SessionView,
    ) -> Result<(), StoreError>;
    /// Deletes a session's messages (and its compacted view), keeping the session.
    async fn clear_messages(&self, session: SessionId) -> Result<(), StoreError>;
    /// Appends messages (opaque JSON) to a session, in order.
    async fn append_messages(
        &self,
        session: SessionId,
        messages: Vec<serde_json::Value>,
    ) -> Result<(), StoreError>;
    /// A session's messages, oldest first.
    async fn messages(&self, session: SessionId) -> Result<Vec<serde_json::Value>, StoreError>;
    /// Inserts or updates a run summary.
    async fn upsert_run(&self, run: &RunRecord) -> Result<(), StoreError>;
    /// Runs of a session, oldest first.
    async fn runs(&self, session: SessionId) -> Result<Vec<RunRecord>, StoreError>;
    /// Records a starting run and returns its session's messages (the history the run
    /// continues), in one call.
    async fn begin_run(&self, run: &RunRecord) -> Result<RunStart, StoreError>;
    /// Succeeds when the database answers (readiness: `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Records a run's end and appends the messages it added to its session, atomically.
    async fn end_run(
        &self,
        run: &RunRecord,
        messages: Vec<serde_json::Value>,
    ) -> Result<(), StoreError>;
}
