//! Approval records (D6): a parked action waiting for a human, bound to the exact action's
//! digest, with an unguessable id and an expiry. A decision is taken once; an expired request
//! can no longer be approved and counts as denied.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pincer_types::{RiskTier, TaskId};
use rusqlite::{Row, params};
use serde::{Deserialize, Serialize};

use crate::{SqliteStore, StoreError};

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ApprovalStatus {
    /// Waiting for a decision.
    Pending,
    /// Approved: the action with this digest — and only it — may run.
    Approved,
    /// Denied.
    Denied,
    /// Nobody decided in time; treated as denied.
    Expired,
}

impl ApprovalStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Approved => "APPROVED",
            Self::Denied => "DENIED",
            Self::Expired => "EXPIRED",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Approved, Self::Denied, Self::Expired]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// A request for approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApproval {
    /// The parked task, if the action came from one.
    pub task: Option<TaskId>,
    /// Tool name.
    pub tool: String,
    /// The action digest the decision binds to.
    pub digest: String,
    /// Risk tier.
    pub tier: RiskTier,
    /// Why approval is needed.
    pub reason: String,
    /// The action's resolved arguments (already redacted), for the person deciding.
    pub detail: serde_json::Value,
    /// Who asked (agent, session).
    pub requester: String,
    /// Until when it can be decided.
    pub expires_at: DateTime<Utc>,
    /// Where the turn's untrusted content came from, when a tainted turn's sink was held
    /// (D9): what the person deciding must weigh. Empty otherwise.
    pub taint_sources: Vec<String>,
}

/// A stored approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalRecord {
    /// Unguessable id (`apr_` + 128 random bits).
    pub id: String,
    /// The parked task.
    pub task: Option<TaskId>,
    /// Tool.
    pub tool: String,
    /// Action digest.
    pub digest: String,
    /// Tier.
    pub tier: RiskTier,
    /// Reason.
    pub reason: String,
    /// Resolved arguments.
    pub detail: serde_json::Value,
    /// Requester.
    pub requester: String,
    /// Where the turn's untrusted content came from, when the action was held because of it.
    pub taint_sources: Vec<String>,
    /// State.
    pub status: ApprovalStatus,
    /// Who decided.
    pub decided_by: Option<String>,
    /// Requested.
    pub created_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// Decided (or expired).
    pub decided_at: Option<DateTime<Utc>>,
}

/// Why a decision was refused.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// No such approval.
    #[error("no approval `{0}`")]
    NotFound(String),
    /// Already decided (or expired).
    #[error("approval `{id}` is already {status}")]
    Decided {
        /// Id.
        id: String,
        /// Its state.
        status: &'static str,
    },
    /// The OS random source failed.
    #[error("no randomness available: {0}")]
    Random(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The approvals seam.
#[async_trait]
pub trait ApprovalStore: Send + Sync + std::fmt::Debug {
    /// Records a pending approval.
    async fn request_approval(
        &self,
        a: NewApproval,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRecord, ApprovalError>;
    /// One approval.
    async fn approval(&self, id: &str) -> Result<Option<ApprovalRecord>, ApprovalError>;
    /// Approvals, newest first, optionally in one state.
    async fn approvals(
        &self,
        status: Option<ApprovalStatus>,
        limit: usize,
    ) -> Result<Vec<ApprovalRecord>, ApprovalError>;
    /// How many approvals are in `status` (a count, not the rows: `/metrics` asks at every
    /// scrape).
    async fn count_approvals(&self, status: ApprovalStatus) -> Result<u64, ApprovalError>;
    /// Every approval a task asked for, oldest first.
    async fn task_approvals(&self, task: TaskId) -> Result<Vec<ApprovalRecord>, ApprovalError>;
    /// Decides a pending approval once. Past its expiry it becomes `EXPIRED` and the decision
    /// is refused.
    async fn decide(
        &self,
        id: &str,
        approve: bool,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRecord, ApprovalError>;
    /// Marks every pending approval past its expiry `EXPIRED`; returns their ids.
    async fn expire_approvals(&self, now: DateTime<Utc>) -> Result<Vec<String>, ApprovalError>;
}

pub(crate) const COLUMNS: &str = "id, task_id, tool, digest, tier, reason, detail, requester, status, \
                       decided_by, created_at, expires_at, decided_at, taint_sources";

use crate::sqlite::stamp;

pub(crate) fn tier_parse(s: &str) -> Result<RiskTier, StoreError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| StoreError::Corrupt(format!("risk tier `{s}`")))
}

pub(crate) fn row(r: &Row<'_>) -> Result<ApprovalRecord, StoreError> {
    let status: String = r.get(8)?;
    let detail: String = r.get(6)?;
    Ok(ApprovalRecord {
        id: r.get(0)?,
        task: r
            .get::<_, Option<String>>(1)?
            .map(|t| crate::sqlite::parse(&t, "task id"))
            .transpose()?,
        tool: r.get(2)?,
        digest: r.get(3)?,
        tier: tier_parse(&r.get::<_, String>(4)?)?,
        reason: r.get(5)?,
        detail: serde_json::from_str(&detail)
            .map_err(|e| StoreError::Corrupt(format!("approval detail: {e}")))?,
        requester: r.get(7)?,
        status: ApprovalStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("approval status `{status}`")))?,
        decided_by: r.get(9)?,
        created_at: crate::sqlite::ts(&r.get::<_, String>(10)?)?,
        expires_at: crate::sqlite::ts(&r.get::<_, String>(11)?)?,
        decided_at: r
            .get::<_, Option<String>>(12)?
            .map(|s| crate::sqlite::ts(&s))
            .transpose()?,
        taint_sources: sources_parse(&r.get::<_, String>(13)?)?,
    })
}

/// The stored `taint_sources` (a JSON array of strings).
pub(crate) fn sources_parse(s: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("approval taint sources: {e}")))
}

/// `taint_sources` as stored.
pub(crate) fn sources_text(sources: &[String]) -> String {
    serde_json::to_string(sources).unwrap_or_else(|_| "[]".to_owned())
}

fn get(c: &rusqlite::Connection, id: &str) -> Result<Option<ApprovalRecord>, StoreError> {
    let mut st = c.prepare_cached(&format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"))?;
    let mut rows = st.query(params![id])?;
    rows.next()?.map(row).transpose()
}

#[async_trait]
impl ApprovalStore for SqliteStore {
    async fn request_approval(
        &self,
        a: NewApproval,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRecord, ApprovalError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| ApprovalError::Random(e.to_string()))?;
        let id = format!("apr_{}", hex::encode(bytes));
        self.transact(move |c| {
            c.prepare_cached(
                "INSERT INTO approvals (id, task_id, tool, digest, tier, reason, detail, requester,
                                        status, created_at, expires_at, taint_sources)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'PENDING', ?9, ?10, ?11)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    id,
                    a.task.map(|t| t.to_string()),
                    a.tool,
                    a.digest,
                    a.tier.as_str(),
                    a.reason,
                    a.detail.to_string(),
                    a.requester,
                    stamp(now),
                    stamp(a.expires_at),
                    sources_text(&a.taint_sources),
                ])
            })
            .map_err(StoreError::from)?;
            get(c, &id)?.ok_or(ApprovalError::NotFound(id))
        })
        .await
    }

    async fn approval(&self, id: &str) -> Result<Option<ApprovalRecord>, ApprovalError> {
        let id = id.to_owned();
        Ok(self.with(move |c| get(c, &id)).await?)
    }

    async fn approvals(
        &self,
        status: Option<ApprovalStatus>,
        limit: usize,
    ) -> Result<Vec<ApprovalRecord>, ApprovalError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .with(move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM approvals WHERE (?1 IS NULL OR status = ?1)
                     ORDER BY created_at DESC, id LIMIT ?2"
                ))?;
                let mut rows = st.query(params![status.map(ApprovalStatus::as_str), limit])?;
                let mut v = Vec::new();
                while let Some(r) = rows.next()? {
                    v.push(row(r)?);
                }
                Ok(v)
            })
            .await?)
    }

    async fn count_approvals(&self, status: ApprovalStatus) -> Result<u64, ApprovalError> {
        Ok(self
            .with(move |c| {
                let n: i64 = c
                    .prepare_cached("SELECT COUNT(*) FROM approvals WHERE status = ?1")?
                    .query_row(params![status.as_str()], |r| r.get(0))?;
                Ok(u64::try_from(n).unwrap_or(0))
            })
            .await?)
    }

    async fn task_approvals(&self, task: TaskId) -> Result<Vec<ApprovalRecord>, ApprovalError> {
        Ok(self
            .with(move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM approvals WHERE task_id = ?1 ORDER BY created_at, id"
                ))?;
                let mut rows = st.query(params![task.to_string()])?;
                let mut v = Vec::new();
                while let Some(r) = rows.next()? {
                    v.push(row(r)?);
                }
                Ok(v)
            })
            .await?)
    }

    async fn decide(
        &self,
        id: &str,
        approve: bool,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRecord, ApprovalError> {
        let (id, by) = (id.to_owned(), by.to_owned());
        // The closure's outer `Ok` commits (an expiry is recorded even though the decision is
        // refused); the inner result is the answer.
        self.transact(
            move |c| -> Result<Result<ApprovalRecord, ApprovalError>, ApprovalError> {
                let a = get(c, &id)?.ok_or_else(|| ApprovalError::NotFound(id.clone()))?;
                if a.status != ApprovalStatus::Pending {
                    return Ok(Err(ApprovalError::Decided {
                        id,
                        status: a.status.as_str(),
                    }));
                }
                let (status, decided_by) = if a.expires_at <= now {
                    (ApprovalStatus::Expired, None)
                } else if approve {
                    (ApprovalStatus::Approved, Some(by))
                } else {
                    (ApprovalStatus::Denied, Some(by))
                };
                c.prepare_cached(
                    "UPDATE approvals SET status = ?2, decided_by = ?3, decided_at = ?4
                     WHERE id = ?1 AND status = 'PENDING'",
                )
                .and_then(|mut st| st.execute(params![id, status.as_str(), decided_by, stamp(now)]))
                .map_err(StoreError::from)?;
                if status == ApprovalStatus::Expired {
                    return Ok(Err(ApprovalError::Decided {
                        id,
                        status: status.as_str(),
                    }));
                }
                Ok(get(c, &id)?.ok_or_else(|| ApprovalError::NotFound(id.clone())))
            },
        )
        .await?
    }

    async fn expire_approvals(&self, now: DateTime<Utc>) -> Result<Vec<String>, ApprovalError> {
        self.transact(move |c| {
            let now_s = stamp(now);
            let mut st = c
                .prepare_cached(
                    "SELECT id FROM approvals WHERE status = 'PENDING' AND expires_at <= ?1",
                )
                .map_err(StoreError::from)?;
            let ids = st
                .query_map(params![now_s], |r| r.get::<_, String>(0))
                .map_err(StoreError::from)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::from)?;
            c.prepare_cached(
                "UPDATE approvals SET status = 'EXPIRED', decided_at = ?1
                 WHERE status = 'PENDING' AND expires_at <= ?1",
            )
            .and_then(|mut st| st.execute(params![now_s]))
            .map_err(StoreError::from)?;
            Ok(ids)
        })
        .await
    }
}
