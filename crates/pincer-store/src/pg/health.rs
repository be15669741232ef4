//! [`ModelHealthStore`] on Postgres: the same rules; a failure's read-increment-write is one
//! statement, so two processes failing at once both count.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{PgStore, db};
use crate::StoreError;
use crate::health::{ModelHealth, ModelHealthStore, cooldown};
use crate::values::until;

const COLUMNS: &str =
    "subject, failures, cooldown_until, disabled, last_error, last_error_at, detail";

fn decode(r: &tokio_postgres::Row) -> ModelHealth {
    ModelHealth {
        subject: r.get(0),
        failures: u32::try_from(r.get::<_, i64>(1)).unwrap_or(u32::MAX),
        cooldown_until: r.get(2),
        disabled: r.get(3),
        last_error: r.get(4),
        last_error_at: r.get(5),
        detail: r.get(6),
    }
}

#[async_trait]
impl ModelHealthStore for PgStore {
    async fn model_health(&self) -> Result<Vec<ModelHealth>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT {COLUMNS} FROM model_health ORDER BY subject"),
                &[],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(rows.iter().map(decode).collect())
    }

    async fn record_model_failure(
        &self,
        subject: &str,
        class: &str,
        detail: &str,
        ladder: &[Duration],
        now: DateTime<Utc>,
    ) -> Result<ModelHealth, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        // The row is locked (or created) first, so concurrent failures count one after another.
        let failures: i64 = tx
            .query_one(
                "INSERT INTO model_health (subject, failures, disabled) VALUES ($1, 1, FALSE)
                 ON CONFLICT (subject) DO UPDATE SET failures = model_health.failures + 1
                 RETURNING failures",
                &[&subject],
            )
            .await
            .map_err(|e| db(&e))?
            .get(0);
        let n = u32::try_from(failures).unwrap_or(u32::MAX);
        let cool = cooldown(ladder, n).map(|d| until(now, d));
        let row = tx
            .query_one(
                &format!(
                    "UPDATE model_health SET cooldown_until = $2, last_error = $3,
                        last_error_at = $4, detail = $5
                     WHERE subject = $1 RETURNING {COLUMNS}"
                ),
                &[&subject, &cool, &class, &now, &detail],
            )
            .await
            .map_err(|e| db(&e))?;
        tx.commit().await.map_err(|e| db(&e))?;
        Ok(decode(&row))
    }

    async fn disable_model_subject(
        &self,
        subject: &str,
        class: &str,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO model_health (subject, failures, disabled, last_error, last_error_at, detail)
                 VALUES ($1, 1, TRUE, $2, $3, $4)
                 ON CONFLICT (subject) DO UPDATE SET failures = model_health.failures + 1,
                    disabled = TRUE, last_error = excluded.last_error,
                    last_error_at = excluded.last_error_at, detail = excluded.detail",
                &[&subject, &class, &now, &detail],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(())
    }

    async fn record_model_success(&self, subject: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE model_health SET failures = 0, cooldown_until = NULL WHERE subject = $1",
                &[&subject],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(())
    }

    async fn clear_model_health(&self, subject: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE model_health SET failures = 0, cooldown_until = NULL, disabled = FALSE
                 WHERE subject = $1",
                &[&subject],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(n > 0)
    }
}
