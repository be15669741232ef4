//! `pincer storage migrate --to postgres://…`: copies an existing SQLite home's state into
//! Postgres so a user can grow without losing history.
//!
//! Table by table, row by row, with `ON CONFLICT DO NOTHING`, so running it again copies nothing
//! twice (idempotent) and a partly copied database is completed. SQLite's text timestamps become
//! `TIMESTAMPTZ`, its 0/1 integers booleans. Identity sequences are moved past the copied ids.
//! Afterwards every table is counted on both sides: the copy is verified when Postgres holds at
//! least every SQLite row. Leadership leases are not copied (they belong to running processes),
//! nor is the memory search index (`memory_*`: derived from files and transcripts, it rebuilds
//! itself at the first search), nor are web page sessions (`ui_sessions`: signing in again is
//! the price of moving). The per-day usage sums (`usage_days`) are rebuilt from the copied
//! calls.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::types::Value as Lite;
use tokio_postgres::types::ToSql;

use super::{PgStore, db};
use crate::StoreError;

/// How a column is copied.
#[derive(Clone, Copy)]
enum Col {
    Text,
    Int,
    Bool,
    Time,
    Real,
}

use Col::{Bool, Int, Real, Text, Time};

/// (table, [(SQLite column, Postgres column, kind)]).
type Table = (&'static str, &'static [(&'static str, &'static str, Col)]);

const TABLES: &[Table] = &[
    (
        "sessions",
        &[
            ("id", "id", Text),
            ("key", "key", Text),
            ("agent", "agent", Text),
            ("created_at", "created_at", Time),
            ("archived_at", "archived_at", Time),
        ],
    ),
    (
        "messages",
        &[
            ("session_id", "session_id", Text),
            ("seq", "seq", Int),
            ("body", "body", Text),
            ("created_at", "created_at", Time),
        ],
    ),
    (
        "runs",
        &[
            ("id", "id", Text),
            ("agent", "agent", Text),
            ("session_id", "session_id", Text),
            ("status", "status", Text),
            ("model", "model", Text),
            ("prompt_sha256", "prompt_sha256", Text),
            ("input_tokens", "input_tokens", Int),
            ("output_tokens", "output_tokens", Int),
            ("started_at", "started_at", Time),
            ("ended_at", "ended_at", Time),
            ("error", "error", Text),
        ],
    ),
    (
        "tasks",
        &[
            ("id", "id", Text),
            ("seq", "seq", Int),
            ("agent", "agent", Text),
            ("session_key", "session_key", Text),
            ("input", "input", Text),
            ("status", "status", Text),
            ("idempotency_key", "idempotency_key", Text),
            ("lease_owner", "lease_owner", Text),
            ("lease_until", "lease_until", Time),
            ("created_at", "created_at", Time),
            ("updated_at", "updated_at", Time),
            ("started_at", "started_at", Time),
            ("ended_at", "ended_at", Time),
            ("deadline", "deadline", Time),
            ("output", "output", Text),
            ("error", "error", Text),
            ("run_dir", "run_dir", Text),
            ("kind", "kind", Text),
            ("input_tokens", "input_tokens", Int),
            ("output_tokens", "output_tokens", Int),
            ("owner", "owner", Text),
            ("risk", "risk", Int),
        ],
    ),
    (
        "users",
        &[
            ("name", "name", Text),
            ("role", "role", Text),
            ("created_at", "created_at", Time),
            ("disabled_at", "disabled_at", Time),
            ("bypass", "bypass", Bool),
        ],
    ),
    (
        "org_controls",
        &[
            ("key", "key", Text),
            ("value", "value", Text),
            ("updated_at", "updated_at", Time),
            ("updated_by", "updated_by", Text),
        ],
    ),
    (
        "tokens",
        &[
            ("name", "name", Text),
            ("hash", "hash", Text),
            ("scopes", "scopes", Text),
            ("created_at", "created_at", Time),
            ("expires_at", "expires_at", Time),
            ("revoked_at", "revoked_at", Time),
            ("last_used_at", "last_used_at", Time),
            ("user_name", "user_name", Text),
        ],
    ),
    (
        "approvals",
        &[
            ("id", "id", Text),
            ("task_id", "task_id", Text),
            ("tool", "tool", Text),
            ("digest", "digest", Text),
            ("tier", "tier", Text),
            ("reason", "reason", Text),
            ("detail", "detail", Text),
            ("requester", "requester", Text),
            ("status", "status", Text),
            ("decided_by", "decided_by", Text),
            ("created_at", "created_at", Time),
            ("expires_at", "expires_at", Time),
            ("decided_at", "decided_at", Time),
            ("taint_sources", "taint_sources", Text),
        ],
    ),
    (
        "heartbeats",
        &[
            ("id", "id", Int),
            ("agent", "agent", Text),
            ("at", "at", Time),
            ("status", "status", Text),
            ("detail", "detail", Text),
            ("task_id", "task_id", Text),
            ("input_tokens", "input_tokens", Int),
            ("output_tokens", "output_tokens", Int),
        ],
    ),
    (
        "jobs",
        &[
            ("name", "name", Text),
            ("agent", "agent", Text),
            ("kind", "kind", Text),
            ("spec", "spec", Text),
            ("tz", "tz", Text),
            ("anchor", "anchor", Time),
            ("message", "message", Text),
            ("mode", "mode", Text),
            ("missed", "missed", Text),
            ("timeout_secs", "timeout_secs", Int),
            ("enabled", "enabled", Bool),
            ("next_run", "next_run", Time),
            ("created_at", "created_at", Time),
            ("deliver", "deliver", Text),
            ("jitter_secs", "jitter_secs", Int),
            ("failures", "failures", Int),
            ("retry_at", "retry_at", Time),
            ("retry_for", "retry_for", Time),
            ("retry_attempt", "retry_attempt", Int),
        ],
    ),
    (
        "job_runs",
        &[
            ("job", "job", Text),
            ("task_id", "task_id", Text),
            ("scheduled_for", "scheduled_for", Time),
            ("attempt", "attempt", Int),
            ("missed", "missed", Bool),
            ("settled", "settled", Bool),
        ],
    ),
    (
        "channel_state",
        &[("key", "key", Text), ("value", "value", Int)],
    ),
    (
        "pairings",
        &[
            ("channel", "channel", Text),
            ("code", "code", Text),
            ("sender", "sender", Text),
            ("name", "name", Text),
            ("created_at", "created_at", Time),
        ],
    ),
    (
        "channel_senders",
        &[
            ("channel", "channel", Text),
            ("sender", "sender", Text),
            ("name", "name", Text),
            ("approved_at", "approved_at", Time),
            ("user_name", "user_name", Text),
        ],
    ),
    (
        "channel_tasks",
        &[
            ("task_id", "task_id", Text),
            ("channel", "channel", Text),
            ("chat", "chat", Text),
            ("user", "user_id", Text),
            ("reply_to", "reply_to", Text),
        ],
    ),
    (
        "outbox",
        &[
            ("id", "id", Int),
            ("channel", "channel", Text),
            ("chat", "chat", Text),
            ("text", "text", Text),
            ("markup", "markup", Text),
            ("reply_to", "reply_to", Text),
            ("parts_sent", "parts_sent", Int),
            ("created_at", "created_at", Time),
            ("done_at", "done_at", Time),
            ("failure", "failure", Text),
        ],
    ),
    (
        "invites",
        &[
            ("code", "code", Text),
            ("user_name", "user_name", Text),
            ("created_at", "created_at", Time),
            ("expires_at", "expires_at", Time),
            ("used_by", "used_by", Text),
            ("used_at", "used_at", Time),
        ],
    ),
    (
        "model_pins",
        &[
            ("session_key", "session_key", Text),
            ("alias", "alias", Text),
            ("strict", "strict", Bool),
            ("set_at", "set_at", Time),
        ],
    ),
    (
        "model_health",
        &[
            ("subject", "subject", Text),
            ("failures", "failures", Int),
            ("cooldown_until", "cooldown_until", Time),
            ("disabled", "disabled", Bool),
            ("last_error", "last_error", Text),
            ("last_error_at", "last_error_at", Time),
            ("detail", "detail", Text),
        ],
    ),
    (
        "usage",
        &[
            ("id", "id", Int),
            ("at", "at", Time),
            ("agent", "agent", Text),
            ("session", "session", Text),
            ("user_id", "user_id", Text),
            ("model", "model", Text),
            ("input_tokens", "input_tokens", Int),
            ("output_tokens", "output_tokens", Int),
            ("cost_usd", "cost_usd", Real),
        ],
    ),
    (
        "mcp_servers",
        &[
            ("server", "server", Text),
            ("approved_sha256", "approved_sha256", Text),
            ("approved_manifest", "approved_manifest", Text),
            ("approved_by", "approved_by", Text),
            ("approved_at", "approved_at", Time),
            ("seen_sha256", "seen_sha256", Text),
            ("seen_manifest", "seen_manifest", Text),
            ("seen_at", "seen_at", Time),
        ],
    ),
    (
        "skills",
        &[
            ("name", "name", Text),
            ("source", "source", Text),
            ("version", "version", Text),
            ("description", "description", Text),
            ("manifest", "manifest", Text),
            ("verdict", "verdict", Text),
            ("findings", "findings", Text),
            ("seen_sha256", "seen_sha256", Text),
            ("approved_sha256", "approved_sha256", Text),
            ("approved_by", "approved_by", Text),
            ("approved_at", "approved_at", Time),
            ("state", "state", Text),
            ("state_reason", "state_reason", Text),
            ("installed_at", "installed_at", Time),
            ("updated_at", "updated_at", Time),
        ],
    ),
    (
        "session_views",
        &[
            ("session_id", "session_id", Text),
            ("covers", "covers", Int),
            ("sent", "sent", Text),
            ("updated_at", "updated_at", Time),
        ],
    ),
];

/// Identity sequences to move past copied ids: (table, column).
const SEQUENCES: &[(&str, &str)] = &[
    ("tasks", "seq"),
    ("heartbeats", "id"),
    ("outbox", "id"),
    ("usage", "id"),
];

/// One table's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedTable {
    /// Table name.
    pub table: &'static str,
    /// Rows in the SQLite database.
    pub source: i64,
    /// Rows in Postgres afterwards.
    pub target: i64,
}

fn convert(v: Lite, col: Col, what: &str) -> Result<Box<dyn ToSql + Sync + Send>, StoreError> {
    let bad = || StoreError::Corrupt(format!("{what}: unexpected value"));
    Ok(match (col, v) {
        (_, Lite::Null) => match col {
            Text => Box::new(None::<String>),
            Int => Box::new(None::<i64>),
            Bool => Box::new(None::<bool>),
            Time => Box::new(None::<DateTime<Utc>>),
            Real => Box::new(None::<f64>),
        },
        (Text, Lite::Text(s)) => Box::new(s),
        (Int, Lite::Integer(i)) => Box::new(i),
        (Bool, Lite::Integer(i)) => Box::new(i != 0),
        (Time, Lite::Text(s)) => Box::new(crate::sqlite::ts(&s)?),
        (Real, Lite::Real(f)) => Box::new(f),
        #[allow(
            clippy::cast_precision_loss,
            reason = "SQLite stores a whole-dollar cost as an integer"
        )]
        (Real, Lite::Integer(i)) => Box::new(i as f64),
        _ => return Err(bad()),
    })
}

impl PgStore {
    /// Copies the SQLite database at `sqlite` into this database (see the module docs) and
    /// returns each table's row counts on both sides.
    ///
    /// # Errors
    /// [`StoreError`] when either database fails, a value cannot be converted, or Postgres holds
    /// fewer rows than SQLite afterwards (the copy did not verify).
    pub async fn copy_from_sqlite(&self, sqlite: &Path) -> Result<Vec<CopiedTable>, StoreError> {
        // Bring the SQLite file to the newest schema first (same binary, same columns).
        drop(crate::SqliteStore::open(sqlite)?);
        let lite = rusqlite::Connection::open_with_flags(
            sqlite,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        let mut client = self.client().await?;
        let mut report = Vec::new();
        for (table, cols) in TABLES {
            let src_cols: Vec<String> = cols.iter().map(|c| format!("\"{}\"", c.0)).collect();
            let dst_cols: Vec<&str> = cols.iter().map(|c| c.1).collect();
            let placeholders: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
            let insert = format!(
                "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT DO NOTHING",
                dst_cols.join(", "),
                placeholders.join(", ")
            );
            let mut rows = Vec::new();
            {
                let mut st =
                    lite.prepare(&format!("SELECT {} FROM {table}", src_cols.join(", ")))?;
                let mut q = st.query([])?;
                while let Some(r) = q.next()? {
                    let mut vals = Vec::with_capacity(cols.len());
                    for (i, c) in cols.iter().enumerate() {
                        vals.push(convert(
                            r.get::<_, Lite>(i)?,
                            c.2,
                            &format!("{table}.{}", c.0),
                        )?);
                    }
                    rows.push(vals);
                }
            }
            let tx = client.transaction().await.map_err(|e| db(&e))?;
            let stmt = tx.prepare(&insert).await.map_err(|e| db(&e))?;
            for vals in &rows {
                let params: Vec<&(dyn ToSql + Sync)> =
                    vals.iter().map(|b| &**b as &(dyn ToSql + Sync)).collect();
                tx.execute(&stmt, &params).await.map_err(|e| db(&e))?;
            }
            tx.commit().await.map_err(|e| db(&e))?;
            let source = i64::try_from(rows.len()).unwrap_or(i64::MAX);
            let target: i64 = client
                .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])
                .await
                .map_err(|e| db(&e))?
                .get(0);
            report.push(CopiedTable {
                table,
                source,
                target,
            });
        }
        for (table, col) in SEQUENCES {
            client
                .execute(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', '{col}'),
                                GREATEST((SELECT COALESCE(MAX({col}), 0) FROM {table}), 1))"
                    ),
                    &[],
                )
                .await
                .map_err(|e| db(&e))?;
        }
        // Derived: rebuilt from every copied call (idempotent, like the rest).
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        tx.batch_execute(
            "DELETE FROM usage_days;
             INSERT INTO usage_days (day, agent, model, user_id, tokens)
                 SELECT (at AT TIME ZONE 'UTC')::DATE, agent, model, user_id,
                        SUM(input_tokens) + SUM(output_tokens)
                 FROM usage GROUP BY 1, 2, 3, 4;",
        )
        .await
        .map_err(|e| db(&e))?;
        tx.commit().await.map_err(|e| db(&e))?;
        if let Some(short) = report.iter().find(|t| t.target < t.source) {
            return Err(StoreError::Corrupt(format!(
                "copy not verified: {} has {} rows in SQLite but {} in Postgres",
                short.table, short.source, short.target
            )));
        }
        Ok(report)
    }
}
