//! Leadership leases: which node runs a singleton (the scheduler tick, a chat channel's polling
//! and outbox) when several `pincer serve` processes share one database.
//!
//! A role is led by one node until its lease runs out; the leader renews it well before. A node
//! that dies stops renewing, so after at most one lease another node takes over. Leases, not
//! session locks, so the rule is the same on every backend and testable with a fake clock.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

use crate::sqlite::stamp;
use crate::values::until;
use crate::{SqliteStore, StoreError};

/// The leadership seam.
#[async_trait]
pub trait LeaderStore: Send + Sync + std::fmt::Debug {
    /// Takes or renews the lease on `role` for `node` until `now + ttl`; `true` when `node`
    /// leads. Refused (`false`) while another node's lease is live.
    async fn lead(
        &self,
        role: &str,
        node: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<bool, StoreError>;
    /// Gives up `role` if `node` holds it (a clean stop hands over at once).
    async fn resign(&self, role: &str, node: &str) -> Result<(), StoreError>;
}

#[async_trait]
impl LeaderStore for SqliteStore {
    async fn lead(
        &self,
        role: &str,
        node: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let (role, node) = (role.to_owned(), node.to_owned());
        self.transact(move |c| {
            let n = c
                .prepare_cached(
                    "INSERT INTO leaders (role, node, until) VALUES (?1, ?2, ?3)
                     ON CONFLICT(role) DO UPDATE SET node = excluded.node, until = excluded.until
                     WHERE leaders.node = excluded.node OR leaders.until <= ?4",
                )
                .and_then(|mut st| {
                    st.execute(params![role, node, stamp(until(now, ttl)), stamp(now)])
                })?;
            Ok(n == 1)
        })
        .await
    }

    async fn resign(&self, role: &str, node: &str) -> Result<(), StoreError> {
        let (role, node) = (role.to_owned(), node.to_owned());
        self.with(move |c| {
            c.prepare_cached("DELETE FROM leaders WHERE role = ?1 AND node = ?2")
                .and_then(|mut st| st.execute(params![role, node]))?;
            Ok(())
        })
        .await
    }
}
