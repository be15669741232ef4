//! [`GovernanceStore`] on Postgres. Every write takes one transaction-scoped advisory lock, so
//! governance changes from several processes (a bypass toggle racing an org-wide lock, two
//! admins demoting the last two owners) are serialised and the invariants of `users.rs` hold.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use pincer_types::{RiskTier, Role, TaskId, TaskStatus};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{PgStore, db};
use crate::users::{
    BYPASS_LOCKED, Disabled, GovernanceError, GovernanceStore, Identity, OrgControls, PAUSED,
    REVOKED_HOOKS, Rotated, UNFINISHED, UserRecord, check_user_name, controls_from, tier_rank,
    tiers_from,
};
use crate::{ApprovalRecord, ApprovalStatus, StoreError, TaskRecord};

/// The advisory lock every governance write holds.
const LOCK: i64 = 0x7069_6e63_6776; // "pincgv"

const USER_COLUMNS: &str = "name, role, created_at, disabled_at, bypass";

fn user_row(r: &Row) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        name: r.get(0),
        role: r.get::<_, &str>(1).parse().map_err(StoreError::Corrupt)?,
        created_at: r.get(2),
        disabled_at: r.get(3),
        bypass: r.get(4),
    })
}

async fn get(c: &impl GenericClient, name: &str) -> Result<Option<UserRecord>, StoreError> {
    c.query_opt(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1"),
        &[&name],
    )
    .await
    .map_err(|e| db(&e))?
    .as_ref()
    .map(user_row)
    .transpose()
}

async fn must(c: &impl GenericClient, name: &str) -> Result<UserRecord, GovernanceError> {
    get(c, name)
        .await?
        .ok_or_else(|| GovernanceError::NotFound(name.to_owned()))
}

async fn enabled_owners(c: &impl GenericClient) -> Result<i64, StoreError> {
    Ok(c.query_one(
        "SELECT COUNT(*) FROM users WHERE role = 'owner' AND disabled_at IS NULL",
        &[],
    )
    .await
    .map_err(|e| db(&e))?
    .get(0))
}

async fn controls_in(c: &impl GenericClient) -> Result<OrgControls, StoreError> {
    let rows = c
        .query(
            "SELECT key, value, updated_at, updated_by FROM org_controls",
            &[],
        )
        .await
        .map_err(|e| db(&e))?;
    Ok(controls_from(
        rows.iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))),
    ))
}

async fn set_control(
    c: &impl GenericClient,
    key: &str,
    value: Option<&str>,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    match value {
        Some(v) => c
            .execute(
                "INSERT INTO org_controls (key, value, updated_at, updated_by) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                     updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                &[&key, &v, &now, &by],
            )
            .await
            .map_err(|e| db(&e))?,
        None => c
            .execute("DELETE FROM org_controls WHERE key = $1", &[&key])
            .await
            .map_err(|e| db(&e))?,
    };
    Ok(())
}

async fn tasks_where(
    c: &impl GenericClient,
    clause: &str,
    p: &[&(dyn ToSql + Sync)],
) -> Result<Vec<TaskRecord>, StoreError> {
    let rows = c
        .query(
            &format!("SELECT {} FROM tasks WHERE {clause}", super::tasks::COLUMNS),
            p,
        )
        .await
        .map_err(|e| db(&e))?;
    rows.iter().map(super::tasks::row).collect()
}

async fn cancel_in(
    c: &impl GenericClient,
    tasks: &[TaskRecord],
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for t in tasks {
        let id = t.id.to_string();
        c.execute(
            &format!(
                "UPDATE tasks SET status = 'CANCELED', error = $2, lease_owner = NULL,
                     lease_until = NULL, updated_at = $3, ended_at = $3
                 WHERE id = $1 AND status IN {UNFINISHED}"
            ),
            &[&id, &reason, &now],
        )
        .await
        .map_err(|e| db(&e))?;
        c.execute(
            "UPDATE approvals SET status = 'DENIED', decided_by = 'governance', decided_at = $2
             WHERE task_id = $1 AND status = 'PENDING'",
            &[&id, &now],
        )
        .await
        .map_err(|e| db(&e))?;
    }
    Ok(())
}

impl PgStore {
    /// A transaction holding the governance lock.
    async fn locked<T>(
        &self,
        f: impl for<'t> FnOnce(
            &'t deadpool_postgres::Transaction<'t>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, GovernanceError>> + Send + 't>,
        >,
    ) -> Result<T, GovernanceError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
            .await
            .map_err(|e| db(&e))?;
        let out = f(&tx).await?;
        tx.commit().await.map_err(|e| db(&e))?;
        Ok(out)
    }
}

#[async_trait]
impl GovernanceStore for PgStore {
    async fn add_user(
        &self,
        name: &str,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<UserRecord, GovernanceError> {
        check_user_name(name)?;
        let name = name.to_owned();
        self.locked(move |tx| {
            Box::pin(async move {
                let n = tx
                    .execute(
                        "INSERT INTO users (name, role, created_at) VALUES ($1, $2, $3)
                         ON CONFLICT (name) DO NOTHING",
                        &[&name, &role.as_str(), &now],
                    )
                    .await
                    .map_err(|e| db(&e))?;
                if n == 0 {
                    return Err(GovernanceError::Exists(name));
                }
                must(tx, &name).await
            })
        })
        .await
    }

    async fn users(&self) -> Result<Vec<UserRecord>, GovernanceError> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"),
                &[],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(rows.iter().map(user_row).collect::<Result<_, _>>()?)
    }

    async fn user(&self, name: &str) -> Result<Option<UserRecord>, GovernanceError> {
        let c = self.client().await?;
        Ok(get(&c, name).await?)
    }

    async fn set_role(&self, name: &str, role: Role) -> Result<UserRecord, GovernanceError> {
        let name = name.to_owned();
        self.locked(move |tx| {
            Box::pin(async move {
                let u = must(tx, &name).await?;
                if u.role == Role::Owner
                    && role != Role::Owner
                    && u.enabled()
                    && enabled_owners(tx).await? <= 1
                {
                    return Err(GovernanceError::LastOwner(name));
                }
                tx.execute(
                    "UPDATE users SET role = $2 WHERE name = $1",
                    &[&name, &role.as_str()],
                )
                .await
                .map_err(|e| db(&e))?;
                must(tx, &name).await
            })
        })
        .await
    }

    async fn disable_user(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<Disabled, GovernanceError> {
        let name = name.to_owned();
        self.locked(move |tx| {
            Box::pin(async move {
                let u = must(tx, &name).await?;
                if u.role == Role::Owner && u.enabled() && enabled_owners(tx).await? <= 1 {
                    return Err(GovernanceError::LastOwner(name));
                }
                tx.execute(
                    "UPDATE users SET disabled_at = COALESCE(disabled_at, $2), bypass = FALSE
                     WHERE name = $1",
                    &[&name, &now],
                )
                .await
                .map_err(|e| db(&e))?;
                let pending: Vec<String> = tx
                    .query(
                        "SELECT id FROM approvals WHERE status = 'PENDING'
                         AND task_id IN (SELECT id FROM tasks WHERE owner = $1) ORDER BY id",
                        &[&name],
                    )
                    .await
                    .map_err(|e| db(&e))?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let tasks = tasks_where(
                    tx,
                    &format!("owner = $1 AND status IN {UNFINISHED} ORDER BY created_at, id"),
                    &[&name],
                )
                .await?;
                cancel_in(tx, &tasks, &format!("user `{name}` was disabled"), now).await?;
                Ok(Disabled {
                    user: must(tx, &name).await?,
                    approvals_denied: pending,
                    tasks_canceled: tasks.iter().map(|t| t.id).collect(),
                })
            })
        })
        .await
    }

    async fn enable_user(&self, name: &str) -> Result<UserRecord, GovernanceError> {
        let name = name.to_owned();
        self.locked(move |tx| {
            Box::pin(async move {
                must(tx, &name).await?;
                tx.execute(
                    "UPDATE users SET disabled_at = NULL WHERE name = $1",
                    &[&name],
                )
                .await
                .map_err(|e| db(&e))?;
                must(tx, &name).await
            })
        })
        .await
    }

    async fn set_bypass(&self, name: &str, on: bool) -> Result<UserRecord, GovernanceError> {
        let name = name.to_owned();
        self.locked(move |tx| {
            Box::pin(async move {
                let u = must(tx, &name).await?;
                if on && !u.enabled() {
                    return Err(GovernanceError::Disabled(name));
                }
                if on && controls_in(tx).await?.bypass_locked.is_some() {
                    return Err(GovernanceError::BypassLocked);
                }
                tx.execute(
                    "UPDATE users SET bypass = $2 WHERE name = $1",
                    &[&name, &on],
                )
                .await
                .map_err(|e| db(&e))?;
                must(tx, &name).await
            })
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
        self.locked(move |tx| {
            Box::pin(async move {
                must(tx, &name).await?;
                tx.execute(
                    "INSERT INTO channel_senders (channel, sender, name, approved_at, user_name)
                     VALUES ($1, $2, $2, $3, $4)
                     ON CONFLICT (channel, sender) DO UPDATE SET user_name = excluded.user_name",
                    &[&channel, &sender, &now, &name],
                )
                .await
                .map_err(|e| db(&e))?;
                Ok(())
            })
        })
        .await
    }

    async fn unlink(&self, channel: &str, sender: &str) -> Result<bool, GovernanceError> {
        let c = self.client().await?;
        let n = c
            .execute(
                "DELETE FROM channel_senders WHERE channel = $1 AND sender = $2",
                &[&channel, &sender],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(n > 0)
    }

    async fn identities(&self, name: &str) -> Result<Vec<Identity>, GovernanceError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT channel, sender FROM channel_senders WHERE user_name = $1
                 ORDER BY channel, sender",
                &[&name],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(rows
            .iter()
            .map(|r| Identity {
                channel: r.get(0),
                sender: r.get(1),
            })
            .collect())
    }

    async fn user_of_sender(
        &self,
        channel: &str,
        sender: &str,
    ) -> Result<Option<UserRecord>, GovernanceError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                &format!(
                    "SELECT {} FROM users u JOIN channel_senders s ON s.user_name = u.name
                     WHERE s.channel = $1 AND s.sender = $2",
                    "u.name, u.role, u.created_at, u.disabled_at, u.bypass"
                ),
                &[&channel, &sender],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(row.as_ref().map(user_row).transpose()?)
    }

    async fn controls(&self) -> Result<OrgControls, GovernanceError> {
        let c = self.client().await?;
        Ok(controls_in(&c).await?)
    }

    async fn set_paused(
        &self,
        on: bool,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<OrgControls, GovernanceError> {
        let by = by.to_owned();
        self.locked(move |tx| {
            Box::pin(async move {
                set_control(tx, PAUSED, on.then_some("1"), &by, now).await?;
                Ok(controls_in(tx).await?)
            })
        })
        .await
    }

    async fn set_bypass_lock(
        &self,
        on: bool,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, GovernanceError> {
        let by = by.to_owned();
        self.locked(move |tx| {
            Box::pin(async move {
                set_control(tx, BYPASS_LOCKED, on.then_some("1"), &by, now).await?;
                if !on {
                    return Ok(Vec::new());
                }
                let revoked: Vec<String> = tx
                    .query(
                        "UPDATE users SET bypass = FALSE WHERE bypass RETURNING name",
                        &[],
                    )
                    .await
                    .map_err(|e| db(&e))?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let mut revoked = revoked;
                revoked.sort();
                Ok(revoked)
            })
        })
        .await
    }

    async fn rotate_credentials(
        &self,
        hook_secrets: &[String],
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Rotated, GovernanceError> {
        let (by, hooks) = (by.to_owned(), hook_secrets.to_vec());
        self.locked(move |tx| {
            Box::pin(async move {
                let exec = |sql: &'static str| async move {
                    tx.execute(sql, &[&now]).await.map_err(|e| db(&e))
                };
                let rotated = Rotated {
                    tokens_revoked: exec(
                        "UPDATE tokens SET revoked_at = $1 WHERE revoked_at IS NULL",
                    )
                    .await?,
                    pairings_dropped: tx
                        .execute("DELETE FROM pairings", &[])
                        .await
                        .map_err(|e| db(&e))?,
                    invites_expired: exec(
                        "UPDATE invites SET expires_at = $1 WHERE used_at IS NULL AND expires_at > $1",
                    )
                    .await?,
                };
                let mut known = controls_in(tx).await?.revoked_hook_secrets;
                known.extend(hooks);
                known.sort();
                known.dedup();
                let value = serde_json::to_string(&known)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                set_control(tx, REVOKED_HOOKS, Some(&value), &by, now).await?;
                Ok(rotated)
            })
        })
        .await
    }

    async fn tasks_of(
        &self,
        owner: Option<&str>,
        status: Option<TaskStatus>,
        limit: usize,
    ) -> Result<Vec<TaskRecord>, GovernanceError> {
        let c = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let status = status.map(TaskStatus::as_str);
        // One statement per combination of filters, so each can use its index.
        let order = "ORDER BY created_at DESC, id DESC";
        Ok(match (owner, status) {
            (None, None) => tasks_where(&c, &format!("TRUE {order} LIMIT $1"), &[&limit]).await?,
            (Some(o), None) => {
                tasks_where(&c, &format!("owner = $1 {order} LIMIT $2"), &[&o, &limit]).await?
            }
            (None, Some(s)) => {
                tasks_where(&c, &format!("status = $1 {order} LIMIT $2"), &[&s, &limit]).await?
            }
            (Some(o), Some(s)) => {
                tasks_where(
                    &c,
                    &format!("status = $1 AND owner = $2 {order} LIMIT $3"),
                    &[&s, &o, &limit],
                )
                .await?
            }
        })
    }

    async fn approvals_of(
        &self,
        owner: Option<&str>,
        status: Option<ApprovalStatus>,
        limit: usize,
    ) -> Result<Vec<ApprovalRecord>, GovernanceError> {
        let c = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let status = status.map(ApprovalStatus::as_str);
        let rows = c
            .query(
                &format!(
                    "SELECT {} FROM approvals
                     WHERE ($1::TEXT IS NULL OR task_id IN (SELECT id FROM tasks WHERE owner = $1))
                       AND ($2::TEXT IS NULL OR status = $2)
                     ORDER BY created_at DESC, id LIMIT $3",
                    super::approvals::COLUMNS
                ),
                &[&owner, &status, &limit],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(rows
            .iter()
            .map(super::approvals::row)
            .collect::<Result<_, _>>()?)
    }

    async fn owner_load(
        &self,
        owner: &str,
        since: DateTime<Utc>,
    ) -> Result<(u64, u64), GovernanceError> {
        let c = self.client().await?;
        let r = c
            .query_one(
                &format!(
                    "SELECT COUNT(*) FILTER (WHERE created_at >= $2),
                            COUNT(*) FILTER (WHERE status IN {UNFINISHED})
                     FROM tasks WHERE owner = $1"
                ),
                &[&owner, &since],
            )
            .await
            .map_err(|e| db(&e))?;
        let n = |i: usize| u64::try_from(r.get::<_, i64>(i)).unwrap_or(0);
        Ok((n(0), n(1)))
    }

    async fn raise_risk(&self, task: TaskId, tier: RiskTier) -> Result<(), GovernanceError> {
        let c = self.client().await?;
        c.execute(
            "UPDATE tasks SET risk = $2 WHERE id = $1 AND risk < $2",
            &[&task.to_string(), &tier_rank(tier)],
        )
        .await
        .map_err(|e| db(&e))?;
        Ok(())
    }

    async fn cancel_risky(
        &self,
        min: RiskTier,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<TaskRecord>, GovernanceError> {
        let reason = reason.to_owned();
        let tiers: Vec<String> = tiers_from(min).into_iter().map(str::to_owned).collect();
        self.locked(move |tx| {
            Box::pin(async move {
                let tasks = tasks_where(
                    tx,
                    &format!(
                        "status IN {UNFINISHED} AND (risk >= $1 OR id IN
                           (SELECT task_id FROM approvals WHERE status = 'PENDING'
                              AND tier = ANY($2))) ORDER BY created_at, id FOR UPDATE"
                    ),
                    &[&tier_rank(min), &tiers],
                )
                .await?;
                cancel_in(tx, &tasks, &reason, now).await?;
                Ok(tasks)
            })
        })
        .await
    }
}
