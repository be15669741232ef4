//! [`UiSessionStore`] on Postgres: a session made on one node is valid on every node.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{PgStore, db};
use crate::StoreError;
use crate::ui::{UiSession, UiSessionStore, live};

#[async_trait]
impl UiSessionStore for PgStore {
    async fn create_ui_session(
        &self,
        id_hash: &str,
        token: &str,
        csrf: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO ui_sessions (id_hash, token_name, csrf, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[&id_hash, &token, &csrf, &now, &expires_at],
        )
        .await
        .map_err(|e| db(&e))?;
        Ok(())
    }

    async fn ui_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UiSession>, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT t.user_name, u.role, u.disabled_at, t.name, t.scopes, t.revoked_at,
                        t.expires_at, s.csrf, s.expires_at
                 FROM ui_sessions s JOIN tokens t ON t.name = s.token_name
                 LEFT JOIN users u ON u.name = t.user_name
                 WHERE s.id_hash = $1 AND s.expires_at > $2 AND s.csrf <> ''",
                &[&id_hash, &now],
            )
            .await
            .map_err(|e| db(&e))?;
        let Some(r) = row else {
            return Ok(None);
        };
        let token_expired = r
            .get::<_, Option<DateTime<Utc>>>(6)
            .is_some_and(|t| t <= now);
        live(
            r.get(0),
            r.get(1),
            r.get::<_, Option<DateTime<Utc>>>(2).is_some(),
            r.get(3),
            r.get::<_, &str>(4),
            r.get::<_, Option<DateTime<Utc>>>(5).is_some(),
            token_expired,
            r.get(7),
            r.get(8),
        )
    }

    async fn take_ui_link(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "DELETE FROM ui_sessions WHERE id_hash = $1 AND csrf = ''
                 RETURNING token_name, expires_at",
                &[&id_hash],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(row
            .filter(|r| r.get::<_, DateTime<Utc>>(1) > now)
            .map(|r| r.get(0)))
    }

    async fn end_ui_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let c = self.client().await?;
        c.execute(
            "DELETE FROM ui_sessions WHERE id_hash = $1 OR expires_at <= $2",
            &[&id_hash, &now],
        )
        .await
        .map_err(|e| db(&e))?;
        Ok(())
    }
}
