//! [`ApprovalStore`] on Postgres: an approval requested on one node can be decided on any node,
//! once — the decision locks the row, so two concurrent decisions cannot both win.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{PgStore, db};
use crate::StoreError;
use crate::approvals::{
    ApprovalError, ApprovalRecord, ApprovalStatus, ApprovalStore, NewApproval, sources_parse,
    sources_text, tier_parse,
};
use crate::values::parse;
use pincer_types::TaskId;

pub(crate) const COLUMNS: &str = "id, task_id, tool, digest, tier, reason, detail, requester, status, \
                       decided_by, created_at, expires_at, decided_at, taint_sources";

pub(crate) fn row(r: &Row) -> Result<ApprovalRecord, StoreError> {
    let status: &str = r.get(8);
    Ok(ApprovalRecord {
        id: r.get(0),
        task: r
            .get::<_, Option<&str>>(1)
            .map(|t| parse(t, "task id"))
            .transpose()?,
        tool: r.get(2),
        digest: r.get(3),
        tier: tier_parse(r.get(4))?,
        reason: r.get(5),
        detail: serde_json::from_str(r.get(6))
            .map_err(|e| StoreError::Corrupt(format!("approval detail: {e}")))?,
        requester: r.get(7),
        status: ApprovalStatus::parse(status)
            .ok_or_else(|| StoreError::Corrupt(format!("approval status `{status}`")))?,
        decided_by: r.get(9),
        created_at: r.get(10),
        expires_at: r.get(11),
        decided_at: r.get(12),
        taint_sources: sources_parse(r.get(13))?,
    })
}

async fn get(
    c: &impl GenericClient,
    id: &str,
    lock: bool,
) -> Result<Option<ApprovalRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM approvals WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    c.query_opt(&sql, &[&id])
        .await
        .map_err(|e| db(&e))?
        .as_ref()
        .map(row)
        .transpose()
}

#[async_trait]
impl ApprovalStore for PgStore {
    async fn request_approval(
        &self,
        a: NewApproval,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRecord, ApprovalError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| ApprovalError::Random(e.to_string()))?;
        let id = format!("apr_{}", hex::encode(bytes));
        let client = self.client().await?;
        let r = client
            .query_one(
                &format!(
                    "INSERT INTO approvals (id, task_id, tool, digest, tier, reason, detail,
                                            requester, status, created_at, expires_at,
                                            taint_sources)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'PENDING', $9, $10, $11)
                     RETURNING {COLUMNS}"
                ),
                &[
                    &id,
                    &a.task.map(|t| t.to_string()),
                    &a.tool,
                    &a.digest,
                    &a.tier.as_str(),
                    &a.reason,
                    &a.detail.to_string(),
                    &a.requester,
                    &now,
                    &a.expires_at,
                    &sources_text(&a.taint_sources),
                ],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(row(&r)?)
    }

    async fn approval(&self, id: &str) -> Result<Option<ApprovalRecord>, ApprovalError> {
        let client = self.client().await?;
        Ok(get(&client, id, false).await?)
    }

    async fn approvals(
        &self,
        status: Option<ApprovalStatus>,
        limit: usize,
    ) -> Result<Vec<ApprovalRecord>, ApprovalError> {
        let client = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM approvals WHERE ($1::TEXT IS NULL OR status = $1)
                     ORDER BY created_at DESC, id LIMIT $2"
                ),
                &[&status.map(ApprovalStatus::as_str), &limit],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    async fn count_approvals(&self, status: ApprovalStatus) -> Result<u64, ApprovalError> {
        let client = self.client().await?;
        let n: i64 = client
            .query_one(
                "SELECT COUNT(*) FROM approvals WHERE status = $1",
                &[&status.as_str()],
            )
            .await
            .map_err(|e| db(&e))?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn task_approvals(&self, task: TaskId) -> Result<Vec<ApprovalRecord>, ApprovalError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM approvals WHERE task_id = $1 ORDER BY created_at, id"
                ),
                &[&task.to_string()],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    async fn decide(
        &self,
        id: &str,
        approve: bool,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<ApprovalRecord, ApprovalError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        let a = get(&tx, id, true)
            .await?
            .ok_or_else(|| ApprovalError::NotFound(id.to_owned()))?;
        if a.status != ApprovalStatus::Pending {
            return Err(ApprovalError::Decided {
                id: id.to_owned(),
                status: a.status.as_str(),
            });
        }
        let (status, decided_by) = if a.expires_at <= now {
            (ApprovalStatus::Expired, None)
        } else if approve {
            (ApprovalStatus::Approved, Some(by))
        } else {
            (ApprovalStatus::Denied, Some(by))
        };
        tx.execute(
            "UPDATE approvals SET status = $2, decided_by = $3, decided_at = $4
             WHERE id = $1 AND status = 'PENDING'",
            &[&id, &status.as_str(), &decided_by, &now],
        )
        .await
        .map_err(|e| db(&e))?;
        let decided = get(&tx, id, false).await?;
        // An expiry is recorded even though the decision is refused.
        tx.commit().await.map_err(|e| db(&e))?;
        if status == ApprovalStatus::Expired {
            return Err(ApprovalError::Decided {
                id: id.to_owned(),
                status: status.as_str(),
            });
        }
        decided.ok_or_else(|| ApprovalError::NotFound(id.to_owned()))
    }

    async fn expire_approvals(&self, now: DateTime<Utc>) -> Result<Vec<String>, ApprovalError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "UPDATE approvals SET status = 'EXPIRED', decided_at = $1
                 WHERE status = 'PENDING' AND expires_at <= $1 RETURNING id",
                &[&now],
            )
            .await
            .map_err(|e| db(&e))?;
        let mut ids: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        ids.sort();
        Ok(ids)
    }
}
