//! Installed skills (G1, G2): what was installed from where, its content hash and scan, the
//! hash an operator approved, and its state. The runtime compares the tree on disk with the
//! approved hash before every run; what may happen to a skill (which state moves are allowed)
//! is decided by `pincer-skills`, this seam only records it — with two guarded writes: approval
//! is compare-and-set on the content last scanned (an operator approves exactly what was
//! shown), and a state move names the states it may start from.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension as _, params};
use serde::Serialize;

use crate::sqlite::{stamp, ts};
use crate::{SqliteStore, StoreError};

/// Where a skill stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkillState {
    /// Installed, waiting for an operator to approve its content.
    Pending,
    /// Approved and in use.
    Enabled,
    /// Approved, switched off by an operator.
    Disabled,
    /// Its files no longer match the approved hash: out of use until approved again.
    Quarantined,
    /// The scan blocked it: it cannot be approved.
    Blocked,
    /// Withdrawn everywhere: out of use until approved again.
    Revoked,
}

impl SkillState {
    /// Every state.
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::Enabled,
        Self::Disabled,
        Self::Quarantined,
        Self::Blocked,
        Self::Revoked,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
            Self::Quarantined => "quarantined",
            Self::Blocked => "blocked",
            Self::Revoked => "revoked",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// One installed skill.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkillRecord {
    /// Its name (the directory under `skills/`).
    pub name: String,
    /// Where it was installed from (a path, or a git URL and revision).
    pub source: String,
    /// The version its front matter declares.
    pub version: String,
    /// Its description (what the prompt lists).
    pub description: String,
    /// Its permissions manifest (JSON).
    pub manifest: serde_json::Value,
    /// The last scan's verdict: `approve`, `warn` or `block`.
    pub verdict: String,
    /// The last scan's findings (JSON).
    pub findings: serde_json::Value,
    /// sha256 of the tree as last installed or scanned.
    pub seen_sha256: String,
    /// sha256 of the tree an operator approved.
    pub approved_sha256: Option<String>,
    /// Who approved it.
    pub approved_by: Option<String>,
    /// When.
    pub approved_at: Option<DateTime<Utc>>,
    /// Its state.
    pub state: SkillState,
    /// Why it is in that state (quarantine, revocation, block).
    pub state_reason: Option<String>,
    /// First installed.
    pub installed_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// The skills seam.
#[async_trait]
pub trait SkillStore: Send + Sync + std::fmt::Debug {
    /// Records an installed, re-installed or rescanned skill (the whole row; `installed_at` of
    /// an existing row is kept).
    async fn skill_record(&self, skill: &SkillRecord) -> Result<(), StoreError>;
    /// One skill.
    async fn skill(&self, name: &str) -> Result<Option<SkillRecord>, StoreError>;
    /// Every skill, by name.
    async fn skills(&self) -> Result<Vec<SkillRecord>, StoreError>;
    /// Approves the content last seen when its sha256 is `sha256` and the skill is not
    /// blocked: it becomes `enabled`. `false` when nothing changed.
    async fn skill_approve(
        &self,
        name: &str,
        sha256: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Moves the skill to `to` when it is in one of `from`; `false` when it was not.
    async fn skill_transition(
        &self,
        name: &str,
        from: &[SkillState],
        to: SkillState,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Forgets the skill; `false` when there was none.
    async fn skill_remove(&self, name: &str) -> Result<bool, StoreError>;
}

pub(crate) const COLUMNS: &str = "name, source, version, description, manifest, verdict, findings, \
    seen_sha256, approved_sha256, approved_by, approved_at, state, state_reason, installed_at, updated_at";

/// A row's text fields, as either backend returns them.
pub(crate) struct Raw {
    pub name: String,
    pub source: String,
    pub version: String,
    pub description: String,
    pub manifest: String,
    pub verdict: String,
    pub findings: String,
    pub seen_sha256: String,
    pub approved_sha256: Option<String>,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub state: String,
    pub state_reason: Option<String>,
    pub installed_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Raw {
    pub(crate) fn record(self) -> Result<SkillRecord, StoreError> {
        let json = |s: &str, what: &str| {
            serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("skill {what}: {e}")))
        };
        Ok(SkillRecord {
            manifest: json(&self.manifest, "manifest")?,
            findings: json(&self.findings, "findings")?,
            state: SkillState::parse(&self.state)
                .ok_or_else(|| StoreError::Corrupt(format!("skill state `{}`", self.state)))?,
            name: self.name,
            source: self.source,
            version: self.version,
            description: self.description,
            verdict: self.verdict,
            seen_sha256: self.seen_sha256,
            approved_sha256: self.approved_sha256,
            approved_by: self.approved_by,
            approved_at: self.approved_at,
            state_reason: self.state_reason,
            installed_at: self.installed_at,
            updated_at: self.updated_at,
        })
    }
}

/// `'a', 'b'` for a SQL `IN` list of states (fixed names: no quoting needed).
pub(crate) fn state_list(states: &[SkillState]) -> String {
    states
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn raw(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Raw, Option<String>, String, String)> {
    Ok((
        Raw {
            name: r.get(0)?,
            source: r.get(1)?,
            version: r.get(2)?,
            description: r.get(3)?,
            manifest: r.get(4)?,
            verdict: r.get(5)?,
            findings: r.get(6)?,
            seen_sha256: r.get(7)?,
            approved_sha256: r.get(8)?,
            approved_by: r.get(9)?,
            approved_at: None,
            state: r.get(11)?,
            state_reason: r.get(12)?,
            installed_at: DateTime::<Utc>::MIN_UTC,
            updated_at: DateTime::<Utc>::MIN_UTC,
        },
        r.get(10)?,
        r.get(13)?,
        r.get(14)?,
    ))
}

fn finish(
    (mut raw, approved_at, installed_at, updated_at): (Raw, Option<String>, String, String),
) -> Result<SkillRecord, StoreError> {
    raw.approved_at = approved_at.map(|s| ts(&s)).transpose()?;
    raw.installed_at = ts(&installed_at)?;
    raw.updated_at = ts(&updated_at)?;
    raw.record()
}

#[async_trait]
impl SkillStore for SqliteStore {
    async fn skill_record(&self, s: &SkillRecord) -> Result<(), StoreError> {
        let s = s.clone();
        self.with(move |c| {
            c.prepare_cached(&format!(
                "INSERT INTO skills ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
                 ON CONFLICT(name) DO UPDATE SET source = excluded.source, version = excluded.version,
                     description = excluded.description, manifest = excluded.manifest,
                     verdict = excluded.verdict, findings = excluded.findings,
                     seen_sha256 = excluded.seen_sha256, approved_sha256 = excluded.approved_sha256,
                     approved_by = excluded.approved_by, approved_at = excluded.approved_at,
                     state = excluded.state, state_reason = excluded.state_reason,
                     updated_at = excluded.updated_at"
            ))?
            .execute(params![
                s.name,
                s.source,
                s.version,
                s.description,
                s.manifest.to_string(),
                s.verdict,
                s.findings.to_string(),
                s.seen_sha256,
                s.approved_sha256,
                s.approved_by,
                s.approved_at.map(stamp),
                s.state.as_str(),
                s.state_reason,
                stamp(s.installed_at),
                stamp(s.updated_at),
            ])?;
            Ok(())
        })
        .await
    }

    async fn skill(&self, name: &str) -> Result<Option<SkillRecord>, StoreError> {
        let name = name.to_owned();
        let r = self
            .with(move |c| {
                Ok(
                    c.prepare_cached(&format!("SELECT {COLUMNS} FROM skills WHERE name = ?1"))?
                        .query_row(params![name], raw)
                        .optional()?,
                )
            })
            .await?;
        r.map(finish).transpose()
    }

    async fn skills(&self) -> Result<Vec<SkillRecord>, StoreError> {
        let rows = self
            .read(move |c| {
                let mut st =
                    c.prepare_cached(&format!("SELECT {COLUMNS} FROM skills ORDER BY name"))?;
                let rows = st.query_map([], raw)?.collect::<Result<Vec<_>, _>>()?;
                Ok::<_, StoreError>(rows)
            })
            .await?;
        rows.into_iter().map(finish).collect()
    }

    async fn skill_approve(
        &self,
        name: &str,
        sha256: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (name, sha, by) = (name.to_owned(), sha256.to_owned(), by.to_owned());
        self.with(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE skills SET approved_sha256 = seen_sha256, approved_by = ?3,
                         approved_at = ?4, state = 'enabled', state_reason = NULL, updated_at = ?4
                     WHERE name = ?1 AND seen_sha256 = ?2 AND state <> 'blocked'",
                )?
                .execute(params![name, sha, by, stamp(at)])?;
            Ok(n == 1)
        })
        .await
    }

    async fn skill_transition(
        &self,
        name: &str,
        from: &[SkillState],
        to: SkillState,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if from.is_empty() {
            return Ok(false);
        }
        let (name, reason) = (name.to_owned(), reason.map(str::to_owned));
        let sql = format!(
            "UPDATE skills SET state = ?2, state_reason = ?3, updated_at = ?4
             WHERE name = ?1 AND state IN ({})",
            state_list(from)
        );
        self.with(move |c| {
            let n =
                c.prepare_cached(&sql)?
                    .execute(params![name, to.as_str(), reason, stamp(at)])?;
            Ok(n == 1)
        })
        .await
    }

    async fn skill_remove(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.with(move |c| {
            Ok(c.prepare_cached("DELETE FROM skills WHERE name = ?1")?
                .execute(params![name])?
                == 1)
        })
        .await
    }
}
