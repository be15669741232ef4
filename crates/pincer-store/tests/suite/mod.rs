//! Backends under test and the macro that runs one test against each.

mod approvals;
mod audit;
mod channels;
mod health;
mod heartbeats;
mod jobs;
mod leaders;
mod mcp;
mod notes;
#[cfg(feature = "postgres")]
mod postgres;
mod retention;
mod sessions;
mod skills;
mod tasks;
mod tokens;
mod ui;
mod usage;
mod users;

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use pincer_store::{Backend, SqliteStore};

/// A database every test gets fresh, that can be opened again (a restart).
pub enum Db {
    Sqlite(tempfile::TempDir),
    #[cfg(feature = "postgres")]
    Postgres {
        url: String,
        schema: String,
    },
}

impl Db {
    pub fn sqlite() -> Self {
        Self::Sqlite(tempfile::tempdir().unwrap())
    }

    /// A fresh schema on the test server, or `None` (with a message) outside CI.
    #[cfg(feature = "postgres")]
    pub async fn postgres() -> Option<Self> {
        let pg = pincer_testkit::PgSchema::create("t").await?;
        Some(Self::Postgres {
            url: pg.url,
            schema: pg.schema,
        })
    }

    fn path(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("state.db")
    }

    /// Opens (or reopens) the store.
    pub async fn open(&self) -> Arc<dyn Backend> {
        match self {
            Self::Sqlite(dir) => Arc::new(SqliteStore::open(&Self::path(dir)).unwrap()),
            #[cfg(feature = "postgres")]
            Self::Postgres { url, schema } => {
                let mut cfg: tokio_postgres::Config = url.parse().unwrap();
                cfg.options(format!("-c search_path={schema}"));
                Arc::new(pincer_store::PgStore::with_config(cfg, url).await.unwrap())
            }
        }
    }
}

/// 2026-01-01T00:00:00Z plus `secs`.
pub fn at(secs: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
        + chrono::Duration::seconds(secs)
}

/// Defines `mod $name` with the test body run once per backend.
macro_rules! conformance {
    ($name:ident, |$db:ident| $body:block) => {
        mod $name {
            use super::*;

            async fn case($db: Db) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                case(Db::sqlite()).await
            }

            #[cfg(feature = "postgres")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = Db::postgres().await {
                    case(db).await
                }
            }
        }
    };
}
pub(crate) use conformance;
