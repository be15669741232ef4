//! [`McpStore`] on Postgres: the same rows; approval is the same compare-and-set statement.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{PgStore, db};
use crate::StoreError;
use crate::mcp::{McpManifestRow, McpRecord, McpStore};

const COLUMNS: &str = "server, approved_sha256, approved_manifest, approved_by, approved_at, \
                       seen_sha256, seen_manifest, seen_at";

fn record(r: &tokio_postgres::Row) -> McpRecord {
    let manifest = |sha: Option<String>, m: Option<String>, at: Option<DateTime<Utc>>, by| match (
        sha, m, at,
    ) {
        (Some(sha256), Some(manifest), Some(at)) => Some(McpManifestRow {
            sha256,
            manifest,
            at,
            by,
        }),
        _ => None,
    };
    McpRecord {
        server: r.get(0),
        approved: manifest(r.get(1), r.get(2), r.get(4), r.get(3)),
        seen: manifest(r.get(5), r.get(6), r.get(7), None),
    }
}

#[async_trait]
impl McpStore for PgStore {
    async fn mcp_seen(
        &self,
        server: &str,
        sha256: &str,
        manifest: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO mcp_servers (server, seen_sha256, seen_manifest, seen_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (server) DO UPDATE SET seen_sha256 = excluded.seen_sha256,
                     seen_manifest = excluded.seen_manifest, seen_at = excluded.seen_at",
                &[&server, &sha256, &manifest, &at],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(())
    }

    async fn mcp_approve(
        &self,
        server: &str,
        sha256: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE mcp_servers SET approved_sha256 = seen_sha256,
                     approved_manifest = seen_manifest, approved_by = $3, approved_at = $4
                 WHERE server = $1 AND seen_sha256 = $2",
                &[&server, &sha256, &by, &at],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(n == 1)
    }

    async fn mcp_revoke(&self, server: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE mcp_servers SET approved_sha256 = NULL, approved_manifest = NULL,
                     approved_by = NULL, approved_at = NULL WHERE server = $1",
                &[&server],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(())
    }

    async fn mcp_forget(&self, server: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM mcp_servers WHERE server = $1", &[&server])
            .await
            .map_err(|e| db(&e))?;
        Ok(())
    }

    async fn mcp_get(&self, server: &str) -> Result<Option<McpRecord>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM mcp_servers WHERE server = $1"),
                &[&server],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(row.as_ref().map(record))
    }

    async fn mcp_list(&self) -> Result<Vec<McpRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT {COLUMNS} FROM mcp_servers ORDER BY server"),
                &[],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(rows.iter().map(record).collect())
    }
}
