//! [`LeaderStore`] on Postgres: the same lease rule in one statement, so two nodes asking at
//! once cannot both lead.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{PgStore, db};
use crate::StoreError;
use crate::leaders::LeaderStore;
use crate::values::until;

#[async_trait]
impl LeaderStore for PgStore {
    async fn lead(
        &self,
        role: &str,
        node: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "INSERT INTO leaders (role, node, until) VALUES ($1, $2, $3)
                 ON CONFLICT (role) DO UPDATE SET node = excluded.node, until = excluded.until
                 WHERE leaders.node = excluded.node OR leaders.until <= $4",
                &[&role, &node, &until(now, ttl), &now],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(n == 1)
    }

    async fn resign(&self, role: &str, node: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM leaders WHERE role = $1 AND node = $2",
                &[&role, &node],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(())
    }
}
