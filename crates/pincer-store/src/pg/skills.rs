//! [`SkillStore`] on Postgres: the same rows and the same guarded writes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{PgStore, db};
use crate::StoreError;
use crate::skills::{COLUMNS, Raw, SkillRecord, SkillState, SkillStore, state_list};

fn record(r: &tokio_postgres::Row) -> Result<SkillRecord, StoreError> {
    Raw {
        name: r.get(0),
        source: r.get(1),
        version: r.get(2),
        description: r.get(3),
        manifest: r.get(4),
        verdict: r.get(5),
        findings: r.get(6),
        seen_sha256: r.get(7),
        approved_sha256: r.get(8),
        approved_by: r.get(9),
        approved_at: r.get(10),
        state: r.get(11),
        state_reason: r.get(12),
        installed_at: r.get(13),
        updated_at: r.get(14),
    }
    .record()
}

#[async_trait]
impl SkillStore for PgStore {
    async fn skill_record(&self, s: &SkillRecord) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                &format!(
                    "INSERT INTO skills ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                     ON CONFLICT (name) DO UPDATE SET source = excluded.source, version = excluded.version,
                         description = excluded.description, manifest = excluded.manifest,
                         verdict = excluded.verdict, findings = excluded.findings,
                         seen_sha256 = excluded.seen_sha256, approved_sha256 = excluded.approved_sha256,
                         approved_by = excluded.approved_by, approved_at = excluded.approved_at,
                         state = excluded.state, state_reason = excluded.state_reason,
                         updated_at = excluded.updated_at"
                ),
                &[
                    &s.name,
                    &s.source,
                    &s.version,
                    &s.description,
                    &s.manifest.to_string(),
                    &s.verdict,
                    &s.findings.to_string(),
                    &s.seen_sha256,
                    &s.approved_sha256,
                    &s.approved_by,
                    &s.approved_at,
                    &s.state.as_str(),
                    &s.state_reason,
                    &s.installed_at,
                    &s.updated_at,
                ],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(())
    }

    async fn skill(&self, name: &str) -> Result<Option<SkillRecord>, StoreError> {
        let client = self.client().await?;
        client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM skills WHERE name = $1"),
                &[&name],
            )
            .await
            .map_err(|e| db(&e))?
            .as_ref()
            .map(record)
            .transpose()
    }

    async fn skills(&self) -> Result<Vec<SkillRecord>, StoreError> {
        let client = self.client().await?;
        client
            .query(&format!("SELECT {COLUMNS} FROM skills ORDER BY name"), &[])
            .await
            .map_err(|e| db(&e))?
            .iter()
            .map(record)
            .collect()
    }

    async fn skill_approve(
        &self,
        name: &str,
        sha256: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE skills SET approved_sha256 = seen_sha256, approved_by = $3,
                     approved_at = $4, state = 'enabled', state_reason = NULL, updated_at = $4
                 WHERE name = $1 AND seen_sha256 = $2 AND state <> 'blocked'",
                &[&name, &sha256, &by, &at],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(n == 1)
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
        let client = self.client().await?;
        let n = client
            .execute(
                &format!(
                    "UPDATE skills SET state = $2, state_reason = $3, updated_at = $4
                     WHERE name = $1 AND state IN ({})",
                    state_list(from)
                ),
                &[&name, &to.as_str(), &reason, &at],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(n == 1)
    }

    async fn skill_remove(&self, name: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute("DELETE FROM skills WHERE name = $1", &[&name])
            .await
            .map_err(|e| db(&e))?;
        Ok(n == 1)
    }
}
