//! MCP server approvals (G3): the manifest an operator approved for each server (its sha256 is
//! what the runtime compares against), and the manifest last seen (at `discover`, or a changed
//! one at start or after `tools/list_changed`) — the one `pincer mcp approve` would accept.
//!
//! Approval is compare-and-set on the seen manifest's sha256, so an operator can only approve
//! exactly what they were shown: a manifest that changed in between is refused.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension as _, params};

use crate::sqlite::{stamp, ts};
use crate::{SqliteStore, StoreError};

/// One manifest as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpManifestRow {
    /// Hex sha256 of the canonical manifest.
    pub sha256: String,
    /// The manifest (JSON).
    pub manifest: String,
    /// When it was seen or approved.
    pub at: DateTime<Utc>,
    /// Who approved it (approvals only).
    pub by: Option<String>,
}

/// A server's approval state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpRecord {
    /// Server name.
    pub server: String,
    /// The approved manifest.
    pub approved: Option<McpManifestRow>,
    /// The manifest last seen.
    pub seen: Option<McpManifestRow>,
}

/// The MCP approval seam.
#[async_trait]
pub trait McpStore: Send + Sync + std::fmt::Debug {
    /// Records the manifest `server` showed.
    async fn mcp_seen(
        &self,
        server: &str,
        sha256: &str,
        manifest: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Approves the manifest last seen when its sha256 is `sha256`; `false` (nothing changed)
    /// when none was seen or it is another one.
    async fn mcp_approve(
        &self,
        server: &str,
        sha256: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Withdraws the approval (the seen manifest stays).
    async fn mcp_revoke(&self, server: &str) -> Result<(), StoreError>;
    /// Forgets the server entirely.
    async fn mcp_forget(&self, server: &str) -> Result<(), StoreError>;
    /// One server's state.
    async fn mcp_get(&self, server: &str) -> Result<Option<McpRecord>, StoreError>;
    /// Every server's state, by name.
    async fn mcp_list(&self) -> Result<Vec<McpRecord>, StoreError>;
}

const COLUMNS: &str = "server, approved_sha256, approved_manifest, approved_by, approved_at, \
                       seen_sha256, seen_manifest, seen_at";

type Row = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn manifest_row(
    sha256: Option<String>,
    manifest: Option<String>,
    at: Option<String>,
    by: Option<String>,
) -> Result<Option<McpManifestRow>, StoreError> {
    Ok(match (sha256, manifest, at) {
        (Some(sha256), Some(manifest), Some(at)) => Some(McpManifestRow {
            sha256,
            manifest,
            at: ts(&at)?,
            by,
        }),
        _ => None,
    })
}

fn record(r: Row) -> Result<McpRecord, StoreError> {
    let (server, a_sha, a_man, a_by, a_at, s_sha, s_man, s_at) = r;
    Ok(McpRecord {
        server,
        approved: manifest_row(a_sha, a_man, a_at, a_by)?,
        seen: manifest_row(s_sha, s_man, s_at, None)?,
    })
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

#[async_trait]
impl McpStore for SqliteStore {
    async fn mcp_seen(
        &self,
        server: &str,
        sha256: &str,
        manifest: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (server, sha, man) = (server.to_owned(), sha256.to_owned(), manifest.to_owned());
        self.with(move |c| {
            c.prepare_cached(
                "INSERT INTO mcp_servers (server, seen_sha256, seen_manifest, seen_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(server) DO UPDATE SET seen_sha256 = excluded.seen_sha256,
                     seen_manifest = excluded.seen_manifest, seen_at = excluded.seen_at",
            )
            .and_then(|mut st| st.execute(params![server, sha, man, stamp(at)]))?;
            Ok(())
        })
        .await
    }

    async fn mcp_approve(
        &self,
        server: &str,
        sha256: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (server, sha, by) = (server.to_owned(), sha256.to_owned(), by.to_owned());
        self.with(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE mcp_servers SET approved_sha256 = seen_sha256,
                         approved_manifest = seen_manifest, approved_by = ?3, approved_at = ?4
                     WHERE server = ?1 AND seen_sha256 = ?2",
                )
                .and_then(|mut st| st.execute(params![server, sha, by, stamp(at)]))?;
            Ok(n == 1)
        })
        .await
    }

    async fn mcp_revoke(&self, server: &str) -> Result<(), StoreError> {
        let server = server.to_owned();
        self.with(move |c| {
            c.prepare_cached(
                "UPDATE mcp_servers SET approved_sha256 = NULL, approved_manifest = NULL,
                     approved_by = NULL, approved_at = NULL WHERE server = ?1",
            )
            .and_then(|mut st| st.execute(params![server]))?;
            Ok(())
        })
        .await
    }

    async fn mcp_forget(&self, server: &str) -> Result<(), StoreError> {
        let server = server.to_owned();
        self.with(move |c| {
            c.prepare_cached("DELETE FROM mcp_servers WHERE server = ?1")
                .and_then(|mut st| st.execute(params![server]))?;
            Ok(())
        })
        .await
    }

    async fn mcp_get(&self, server: &str) -> Result<Option<McpRecord>, StoreError> {
        let server = server.to_owned();
        let r = self
            .with(move |c| {
                Ok(c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM mcp_servers WHERE server = ?1"
                ))
                .and_then(|mut st| st.query_row(params![server], row).optional())?)
            })
            .await?;
        r.map(record).transpose()
    }

    async fn mcp_list(&self) -> Result<Vec<McpRecord>, StoreError> {
        let rows = self
            .with(move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM mcp_servers ORDER BY server"
                ))?;
                let rows = st.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?;
        rows.into_iter().map(record).collect()
    }
}
