//! Governance state (D6–D8, D13): users and their roles, chat identities linked to them, the
//! per-user bypass toggle, the org-wide emergency controls, and the task-ownership queries the
//! API and chat filter by.
//!
//! Invariants: at least one enabled owner always exists (the migration creates `owner`, the
//! local CLI's principal; demoting or disabling the last one is refused); a bypass toggle can
//! be switched on only while bypass is not locked org-wide, and locking it clears every toggle
//! in the same transaction (Postgres: under one advisory lock, so racing processes agree);
//! disabling a user denies their pending approvals and cancels their unfinished tasks at once.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pincer_types::{RiskTier, Role, TaskId, TaskStatus};
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;

use crate::sqlite::{stamp, ts};
use crate::{ApprovalRecord, ApprovalStatus, SqliteStore, StoreError, TaskRecord};

/// A user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRecord {
    /// Unique name (also the id in the API: `/v1/users/{name}`).
    pub name: String,
    /// Role.
    pub role: Role,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Disabled, if it is.
    pub disabled_at: Option<DateTime<Utc>>,
    /// The user's bypass toggle (effective only while org policy allows bypass).
    pub bypass: bool,
}

impl UserRecord {
    /// Not disabled.
    pub fn enabled(&self) -> bool {
        self.disabled_at.is_none()
    }
}

/// A chat account linked to a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// The channel (`telegram`).
    pub channel: String,
    /// The platform's sender id.
    pub sender: String,
}

/// When and by whom an org-wide control was switched on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControlSet {
    /// When.
    pub at: DateTime<Utc>,
    /// Who (`user:<name>`).
    pub by: String,
}

/// The org-wide emergency state (D8), the same for every process on the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OrgControls {
    /// Mutating actions paused: every L1+ action is denied.
    pub paused: Option<ControlSet>,
    /// Bypass locked off org-wide (whatever the config allows).
    pub bypass_locked: Option<ControlSet>,
    /// sha256 fingerprints of webhook secrets revoked by a credential rotation: a hook whose
    /// configured secret still has one of these is refused until a new secret is set.
    pub revoked_hook_secrets: Vec<String>,
}

/// What disabling a user stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Disabled {
    /// The user, now disabled.
    pub user: UserRecord,
    /// Their pending approvals, now denied.
    pub approvals_denied: Vec<String>,
    /// Their unfinished tasks, now canceled.
    pub tasks_canceled: Vec<TaskId>,
}

/// What a credential rotation revoked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Rotated {
    /// API tokens revoked.
    pub tokens_revoked: u64,
    /// Pending pairing codes dropped.
    pub pairings_dropped: u64,
    /// Unused invites expired.
    pub invites_expired: u64,
}

/// A governance operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum GovernanceError {
    /// No such user.
    #[error("no user `{0}`")]
    NotFound(String),
    /// The name is taken.
    #[error("a user named `{0}` already exists")]
    Exists(String),
    /// It would leave no enabled owner.
    #[error("`{0}` is the last enabled owner; make another user owner first")]
    LastOwner(String),
    /// Bypass is locked org-wide.
    #[error("bypass is disabled org-wide (`pincer emergency resume` lifts the lock)")]
    BypassLocked,
    /// The user is disabled.
    #[error("user `{0}` is disabled")]
    Disabled(String),
    /// Invalid input.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The governance seam.
#[async_trait]
pub trait GovernanceStore: Send + Sync + std::fmt::Debug {
    /// Adds a user.
    async fn add_user(
        &self,
        name: &str,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<UserRecord, GovernanceError>;
    /// Every user, by name.
    async fn users(&self) -> Result<Vec<UserRecord>, GovernanceError>;
    /// One user.
    async fn user(&self, name: &str) -> Result<Option<UserRecord>, GovernanceError>;
    /// Changes a user's role (refused for the last enabled owner).
    async fn set_role(&self, name: &str, role: Role) -> Result<UserRecord, GovernanceError>;
    /// Disables a user: their tokens and chat access stop, their bypass is cleared, their
    /// pending approvals are denied and their unfinished tasks canceled, in one transaction.
    async fn disable_user(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Disabled, GovernanceError>;
    /// Enables a disabled user again.
    async fn enable_user(&self, name: &str) -> Result<UserRecord, GovernanceError>;
    /// Sets a user's bypass toggle; switching it on is refused while bypass is locked.
    async fn set_bypass(&self, name: &str, on: bool) -> Result<UserRecord, GovernanceError>;
    /// Links a chat account to a user (and lets it talk).
    async fn link(
        &self,
        name: &str,
        channel: &str,
        sender: &str,
        now: DateTime<Utc>,
    ) -> Result<(), GovernanceError>;
    /// Unlinks a chat account (it is no longer allowed to talk); `false` if it was not linked.
    async fn unlink(&self, channel: &str, sender: &str) -> Result<bool, GovernanceError>;
    /// The chat accounts linked to a user.
    async fn identities(&self, name: &str) -> Result<Vec<Identity>, GovernanceError>;
    /// The user a chat account is linked to.
    async fn user_of_sender(
        &self,
        channel: &str,
        sender: &str,
    ) -> Result<Option<UserRecord>, GovernanceError>;
    /// The org-wide controls.
    async fn controls(&self) -> Result<OrgControls, GovernanceError>;
    /// Pauses (or resumes) mutating actions org-wide.
    async fn set_paused(
        &self,
        on: bool,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<OrgControls, GovernanceError>;
    /// Locks (or unlocks) bypass org-wide; locking clears every user's toggle in the same
    /// transaction and returns the users whose bypass was on.
    async fn set_bypass_lock(
        &self,
        on: bool,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, GovernanceError>;
    /// Revokes every API token, drops pending pairing codes and unused invites, and records
    /// `hook_secrets` (sha256 fingerprints) as revoked, in one transaction.
    async fn rotate_credentials(
        &self,
        hook_secrets: &[String],
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Rotated, GovernanceError>;
    /// Tasks, newest first: only `owner`'s when given, optionally in one state.
    async fn tasks_of(
        &self,
        owner: Option<&str>,
        status: Option<TaskStatus>,
        limit: usize,
    ) -> Result<Vec<TaskRecord>, GovernanceError>;
    /// Approvals, newest first: only those of `owner`'s tasks when given.
    async fn approvals_of(
        &self,
        owner: Option<&str>,
        status: Option<ApprovalStatus>,
        limit: usize,
    ) -> Result<Vec<ApprovalRecord>, GovernanceError>;
    /// `owner`'s load: tasks submitted since `since`, and unfinished tasks.
    async fn owner_load(
        &self,
        owner: &str,
        since: DateTime<Utc>,
    ) -> Result<(u64, u64), GovernanceError>;
    /// Records that a task's run reached `tier` (kept as the highest).
    async fn raise_risk(&self, task: TaskId, tier: RiskTier) -> Result<(), GovernanceError>;
    /// Cancels every unfinished task whose run reached `min` or waits on an approval of at
    /// least `min`; returns them.
    async fn cancel_risky(
        &self,
        min: RiskTier,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<TaskRecord>, GovernanceError>;
}

/// The same name rule as tokens ([`crate::tokens::plain_name`]).
pub(crate) fn check_user_name(name: &str) -> Result<(), GovernanceError> {
    if crate::tokens::plain_name(name) {
        Ok(())
    } else {
        Err(GovernanceError::Invalid(format!(
            "user name `{name}`: use 1-64 of a-z, A-Z, 0-9, `-`, `_`, `.`"
        )))
    }
}

/// A tier as stored in `tasks.risk`.
pub(crate) fn tier_rank(t: RiskTier) -> i64 {
    match t {
        RiskTier::L0ReadOnly => 0,
        RiskTier::L1Mutating => 1,
        RiskTier::L2Destructive => 2,
        RiskTier::L3Privileged => 3,
    }
}

/// Approval tiers at or above `min`, as stored.
pub(crate) fn tiers_from(min: RiskTier) -> Vec<&'static str> {
    [
        RiskTier::L0ReadOnly,
        RiskTier::L1Mutating,
        RiskTier::L2Destructive,
        RiskTier::L3Privileged,
    ]
    .into_iter()
    .filter(|t| *t >= min)
    .map(RiskTier::as_str)
    .collect()
}

pub(crate) const PAUSED: &str = "paused";
pub(crate) const BYPASS_LOCKED: &str = "bypass_locked";
pub(crate) const REVOKED_HOOKS: &str = "revoked_hook_secrets";
pub(crate) const UNFINISHED: &str = "('QUEUED', 'RUNNING', 'WAITING_APPROVAL')";

/// Builds [`OrgControls`] from `(key, value, at, by)` rows.
pub(crate) fn controls_from(
    rows: impl IntoIterator<Item = (String, String, DateTime<Utc>, String)>,
) -> OrgControls {
    let mut c = OrgControls::default();
    for (key, value, at, by) in rows {
        match key.as_str() {
            PAUSED => c.paused = Some(ControlSet { at, by }),
            BYPASS_LOCKED => c.bypass_locked = Some(ControlSet { at, by }),
            REVOKED_HOOKS => {
                c.revoked_hook_secrets = serde_json::from_str(&value).unwrap_or_default();
            }
            _ => {}
        }
    }
    c
}

const USER_COLUMNS: &str = "name, role, created_at, disabled_at, bypass";

fn user_row(r: &Row<'_>) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        name: r.get(0)?,
        role: r
            .get::<_, String>(1)?
            .parse()
            .map_err(StoreError::Corrupt)?,
        created_at: ts(&r.get::<_, String>(2)?)?,
        disabled_at: r.get::<_, Option<String>>(3)?.map(|s| ts(&s)).transpose()?,
        bypass: r.get(4)?,
    })
}

pub(crate) fn get(c: &rusqlite::Connection, name: &str) -> Result<Option<UserRecord>, StoreError> {
    let mut st = c.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1"))?;
    let mut rows = st.query(params![name])?;
    rows.next()?.map(user_row).transpose()
}

fn must(c: &rusqlite::Connection, name: &str) -> Result<UserRecord, GovernanceError> {
    get(c, name)?.ok_or_else(|| GovernanceError::NotFound(name.to_owned()))
}

fn enabled_owners(c: &rusqlite::Connection) -> Result<i64, StoreError> {
    Ok(
        c.prepare_cached(
            "SELECT COUNT(*) FROM users WHERE role = 'owner' AND disabled_at IS NULL",
        )?
        .query_row([], |r| r.get(0))?,
    )
}

fn set_control(
    c: &rusqlite::Connection,
    key: &str,
    value: Option<&str>,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    match value {
        Some(v) => c
            .prepare_cached(
                "INSERT INTO org_controls (key, value, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value,
                     updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            )?
            .execute(params![key, v, stamp(now), by])?,
        None => c
            .prepare_cached("DELETE FROM org_controls WHERE key = ?1")?
            .execute(params![key])?,
    };
    Ok(())
}

fn controls_in(c: &rusqlite::Connection) -> Result<OrgControls, StoreError> {
    let mut st = c.prepare_cached("SELECT key, value, updated_at, updated_by FROM org_controls")?;
    let mut rows = st.query([])?;
    let mut v = Vec::new();
    while let Some(r) = rows.next()? {
        v.push((
            r.get(0)?,
            r.get(1)?,
            ts(&r.get::<_, String>(2)?)?,
            r.get(3)?,
        ));
    }
    Ok(controls_from(v))
}

fn tasks_where(
    c: &rusqlite::Connection,
    clause: &str,
    p: &[&dyn rusqlite::ToSql],
) -> Result<Vec<TaskRecord>, StoreError> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {} FROM tasks WHERE {clause}",
        crate::tasks::COLUMNS
    ))?;
    let mut rows = st.query(p)?;
    let mut v = Vec::new();
    while let Some(r) = rows.next()? {
        v.push(crate::tasks::row(r)?);
    }
    Ok(v)
}

/// Cancels `tasks` (unfinished), recording `reason`.
fn cancel_in(
    c: &rusqlite::Connection,
    tasks: &[TaskRecord],
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for t in tasks {
        c.prepare_cached(&format!(
            "UPDATE tasks SET status = 'CANCELED', error = ?2, lease_owner = NULL,
                 lease_until = NULL, updated_at = ?3, ended_at = ?3
             WHERE id = ?1 AND status IN {UNFINISHED}"
        ))?
        .execute(params![t.id.to_string(), reason, stamp(now)])?;
        c.prepare_cached(
            "UPDATE approvals SET status = 'DENIED', decided_by = 'governance', decided_at = ?2
             WHERE task_id = ?1 AND status = 'PENDING'",
        )?
        .execute(params![t.id.to_string(), stamp(now)])?;
    }
    Ok(())
}

#[async_trait]
impl GovernanceStore for SqliteStore {
    async fn add_user(
        &self,
        name: &str,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<UserRecord, GovernanceError> {
        check_user_name(name)?;
        let name = name.to_owned();
        self.transact(move |c| {
            if get(c, &name)?.is_some() {
                return Err(GovernanceError::Exists(name));
            }
            c.prepare_cached("INSERT INTO users (name, role, created_at) VALUES (?1, ?2, ?3)")
                .and_then(|mut st| st.execute(params![name, role.as_str(), stamp(now)]))
                .map_err(StoreError::from)?;
            must(c, &name)
        })
        .await
    }

    async fn users(&self) -> Result<Vec<UserRecord>, GovernanceError> {
        Ok(self
            .with(|c| {
                let mut st =
                    c.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))?;
                let mut rows = st.query([])?;
                let mut v = Vec::new();
                while let Some(r) = rows.next()? {
                    v.push(user_row(r)?);
                }
                Ok(v)
            })
            .await?)
    }

    async fn user(&self, name: &str) -> Result<Option<UserRecord>, GovernanceError> {
        let name = name.to_owned();
        Ok(self.with(move |c| get(c, &name)).await?)
    }

    async fn set_role(&self, name: &str, role: Role) -> Result<UserRecord, GovernanceError> {
        let name = name.to_owned();
        self.transact(move |c| {
            let u = must(c, &name)?;
            if u.role == Role::Owner
                && role != Role::Owner
                && u.enabled()
                && enabled_owners(c)? <= 1
            {
                return Err(GovernanceError::LastOwner(name));
            }
            c.prepare_cached("UPDATE users SET role = ?2 WHERE name = ?1")
                .and_then(|mut st| st.execute(params![name, role.as_str()]))
                .map_err(StoreError::from)?;
            must(c, &name)
        })
        .await
    }

    async fn disable_user(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Disabled, GovernanceError> {
        let name = name.to_owned();
        self.transact(move |c| {
            let u = must(c, &name)?;
            if u.role == Role::Owner && u.enabled() && enabled_owners(c)? <= 1 {
                return Err(GovernanceError::LastOwner(name));
            }
            c.prepare_cached(
                "UPDATE users SET disabled_at = COALESCE(disabled_at, ?2), bypass = 0 WHERE name = ?1",
            )
            .and_then(|mut st| st.execute(params![name, stamp(now)]))
            .map_err(StoreError::from)?;
            let pending: Vec<String> = {
                let mut st = c
                    .prepare_cached(
                        "SELECT id FROM approvals WHERE status = 'PENDING'
                         AND task_id IN (SELECT id FROM tasks WHERE owner = ?1) ORDER BY id",
                    )
                    .map_err(StoreError::from)?;
                let ids = st
                    .query_map(params![name], |r| r.get(0))
                    .map_err(StoreError::from)?;
                ids.collect::<Result<_, _>>().map_err(StoreError::from)?
            };
            let tasks = tasks_where(
                c,
                &format!("owner = ?1 AND status IN {UNFINISHED} ORDER BY seq"),
                &[&name],
            )?;
            cancel_in(c, &tasks, &format!("user `{name}` was disabled"), now)?;
            Ok(Disabled {
                user: must(c, &name)?,
                approvals_denied: pending,
                tasks_canceled: tasks.iter().map(|t| t.id).collect(),
            })
        })
        .await
    }

    async fn enable_user(&self, name: &str) -> Result<UserRecord, GovernanceError> {
        let name = name.to_owned();
        self.transact(move |c| {
            must(c, &name)?;
            c.prepare_cached("UPDATE users SET disabled_at = NULL WHERE name = ?1")
                .and_then(|mut st| st.execute(params![name]))
                .map_err(StoreError::from)?;
            must(c, &name)
        })
        .await
    }

    async fn set_bypass(&self, name: &str, on: bool) -> Result<UserRecord, GovernanceError> {
        let name = name.to_owned();
        self.transact(move |c| {
            let u = must(c, &name)?;
            if on && !u.enabled() {
                return Err(GovernanceError::Disabled(name));
            }
            if on && controls_in(c)?.bypass_locked.is_some() {
                return Err(GovernanceError::BypassLocked);
            }
            c.prepare_cached("UPDATE users SET bypass = ?2 WHERE name = ?1")
                .and_then(|mut st| st.execute(params![name, on]))
                .map_err(StoreError::from)?;
            must(c, &name)
        })
        .await
    }

    async fn link(
        &self,
        name: &str,
        channel: &str,
        sender: &str,
        now: DateTime<Utc>,
    ) -> Result<(), GovernanceError> {
        let (name, channel, sender) = (name.to_owned(), channel.to_owned(), sender.to_owned());
        self.transact(move |c| {
            must(c, &name)?;
            c.prepare_cached(
                "INSERT INTO channel_senders (channel, sender, name, approved_at, user_name)
                 VALUES (?1, ?2, ?2, ?3, ?4)
                 ON CONFLICT(channel, sender) DO UPDATE SET user_name = excluded.user_name",
            )
            .and_then(|mut st| st.execute(params![channel, sender, stamp(now), name]))
            .map_err(StoreError::from)?;
            Ok(())
        })
        .await
    }

    async fn unlink(&self, channel: &str, sender: &str) -> Result<bool, GovernanceError> {
        let (channel, sender) = (channel.to_owned(), sender.to_owned());
        Ok(self
            .transact(move |c| {
                let n = c
                    .prepare_cached(
                        "DELETE FROM channel_senders WHERE channel = ?1 AND sender = ?2",
                    )?
                    .execute(params![channel, sender])?;
                Ok::<_, StoreError>(n > 0)
            })
            .await?)
    }

    async fn identities(&self, name: &str) -> Result<Vec<Identity>, GovernanceError> {
        let name = name.to_owned();
        Ok(self
            .with(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT channel, sender FROM channel_senders WHERE user_name = ?1
                     ORDER BY channel, sender",
                )?;
                let rows = st.query_map(params![name], |r| {
                    Ok(Identity {
                        channel: r.get(0)?,
                        sender: r.get(1)?,
                    })
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await?)
    }

    async fn user_of_sender(
        &self,
        channel: &str,
        sender: &str,
    ) -> Result<Option<UserRecord>, GovernanceError> {
        let (channel, sender) = (channel.to_owned(), sender.to_owned());
        Ok(self
            .with(move |c| {
                let user: Option<Option<String>> = c
                    .prepare_cached(
                        "SELECT user_name FROM channel_senders WHERE channel = ?1 AND sender = ?2",
                    )?
                    .query_row(params![channel, sender], |r| r.get(0))
                    .optional()?;
                match user.flatten() {
                    Some(u) => get(c, &u),
                    None => Ok(None),
                }
            })
            .await?)
    }

    async fn controls(&self) -> Result<OrgControls, GovernanceError> {
        Ok(self.with(|c| controls_in(c)).await?)
    }

    async fn set_paused(
        &self,
        on: bool,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<OrgControls, GovernanceError> {
        let by = by.to_owned();
        Ok(self
            .transact(move |c| {
                set_control(c, PAUSED, on.then_some("1"), &by, now)?;
                controls_in(c)
            })
            .await?)
    }

    async fn set_bypass_lock(
        &self,
        on: bool,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, GovernanceError> {
        let by = by.to_owned();
        Ok(self
            .transact(move |c| {
                set_control(c, BYPASS_LOCKED, on.then_some("1"), &by, now)?;
                if !on {
                    return Ok(Vec::new());
                }
                let revoked: Vec<String> = {
                    let mut st =
                        c.prepare_cached("SELECT name FROM users WHERE bypass = 1 ORDER BY name")?;
                    let rows = st.query_map([], |r| r.get(0))?;
                    rows.collect::<Result<_, _>>()?
                };
                c.prepare_cached("UPDATE users SET bypass = 0 WHERE bypass = 1")?
                    .execute([])?;
                Ok::<_, StoreError>(revoked)
            })
            .await?)
    }

    async fn rotate_credentials(
        &self,
        hook_secrets: &[String],
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Rotated, GovernanceError> {
        let (by, hooks) = (by.to_owned(), hook_secrets.to_vec());
        Ok(self
            .transact(move |c| {
                let n = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<u64, StoreError> {
                    Ok(c.prepare_cached(sql)?.execute(p)? as u64)
                };
                let now_s = stamp(now);
                let rotated = Rotated {
                    tokens_revoked: n(
                        "UPDATE tokens SET revoked_at = ?1 WHERE revoked_at IS NULL",
                        &[&now_s],
                    )?,
                    pairings_dropped: n("DELETE FROM pairings", &[])?,
                    invites_expired: n(
                        "UPDATE invites SET expires_at = ?1 WHERE used_at IS NULL AND expires_at > ?1",
                        &[&now_s],
                    )?,
                };
                let mut known = controls_in(c)?.revoked_hook_secrets;
                known.extend(hooks);
                known.sort();
                known.dedup();
                let value = serde_json::to_string(&known)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                set_control(c, REVOKED_HOOKS, Some(&value), &by, now)?;
                Ok::<_, StoreError>(rotated)
            })
            .await?)
    }

    async fn tasks_of(
        &self,
        owner: Option<&str>,
        status: Option<TaskStatus>,
        limit: usize,
    ) -> Result<Vec<TaskRecord>, GovernanceError> {
        let owner = owner.map(str::to_owned);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // One statement per combination of filters, so each can use its index (an
        // `?1 IS NULL OR …` condition cannot).
        Ok(self
            .with(move |c| match (owner, status) {
                (None, None) => tasks_where(c, "1 ORDER BY seq DESC LIMIT ?1", &[&limit]),
                (Some(o), None) => {
                    tasks_where(c, "owner = ?1 ORDER BY seq DESC LIMIT ?2", &[&o, &limit])
                }
                (None, Some(s)) => tasks_where(
                    c,
                    "status = ?1 ORDER BY seq DESC LIMIT ?2",
                    &[&s.as_str(), &limit],
                ),
                (Some(o), Some(s)) => tasks_where(
                    c,
                    "status = ?1 AND owner = ?2 ORDER BY seq DESC LIMIT ?3",
                    &[&s.as_str(), &o, &limit],
                ),
            })
            .await?)
    }

    async fn approvals_of(
        &self,
        owner: Option<&str>,
        status: Option<ApprovalStatus>,
        limit: usize,
    ) -> Result<Vec<ApprovalRecord>, GovernanceError> {
        let owner = owner.map(str::to_owned);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .with(move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {} FROM approvals
                     WHERE (?1 IS NULL OR task_id IN (SELECT id FROM tasks WHERE owner = ?1))
                       AND (?2 IS NULL OR status = ?2)
                     ORDER BY created_at DESC, id LIMIT ?3",
                    crate::approvals::COLUMNS
                ))?;
                let mut rows =
                    st.query(params![owner, status.map(ApprovalStatus::as_str), limit])?;
                let mut v = Vec::new();
                while let Some(r) = rows.next()? {
                    v.push(crate::approvals::row(r)?);
                }
                Ok(v)
            })
            .await?)
    }

    async fn owner_load(
        &self,
        owner: &str,
        since: DateTime<Utc>,
    ) -> Result<(u64, u64), GovernanceError> {
        let owner = owner.to_owned();
        Ok(self
            .with(move |c| {
                let (recent, active): (i64, i64) = c
                    .prepare_cached(&format!(
                        "SELECT COALESCE(SUM(created_at >= ?2), 0),
                                COALESCE(SUM(status IN {UNFINISHED}), 0)
                         FROM tasks WHERE owner = ?1"
                    ))?
                    .query_row(params![owner, stamp(since)], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok((
                    u64::try_from(recent).unwrap_or(0),
                    u64::try_from(active).unwrap_or(0),
                ))
            })
            .await?)
    }

    async fn raise_risk(&self, task: TaskId, tier: RiskTier) -> Result<(), GovernanceError> {
        Ok(self
            .with(move |c| {
                c.prepare_cached("UPDATE tasks SET risk = ?2 WHERE id = ?1 AND risk < ?2")?
                    .execute(params![task.to_string(), tier_rank(tier)])?;
                Ok(())
            })
            .await?)
    }

    async fn cancel_risky(
        &self,
        min: RiskTier,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<TaskRecord>, GovernanceError> {
        let reason = reason.to_owned();
        let tiers = tiers_from(min)
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        Ok(self
            .transact(move |c| {
                let tasks = tasks_where(
                    c,
                    &format!(
                        "status IN {UNFINISHED} AND (risk >= ?1 OR id IN
                           (SELECT task_id FROM approvals WHERE status = 'PENDING'
                              AND tier IN ({tiers}))) ORDER BY seq"
                    ),
                    &[&tier_rank(min)],
                )?;
                cancel_in(c, &tasks, &reason, now)?;
                Ok::<_, StoreError>(tasks)
            })
            .await?)
    }
}
