//! The Postgres backend (H3): the same store traits over a database several `pincer serve`
//! processes share. `tokio-postgres` with a `deadpool` pool: the field's standard async client,
//! no proc macros or offline query cache to build (unlike `sqlx`), and plain SQL we can read.
//!
//! Invariants, beyond the SQLite backend's:
//! - the schema comes only from numbered migrations (`pg/migrations.rs`), applied under an
//!   advisory lock so two processes starting together do not race; a database with a newer
//!   schema than this binary is refused, never downgraded;
//! - cross-process exclusivity is the database's job, not ours: one active task per session is
//!   a partial unique index, claims use `FOR UPDATE SKIP LOCKED`, idempotency keys are unique.
//!
//! Every store trait is implemented: [`crate::Store`], [`crate::TaskQueue`],
//! [`crate::TokenStore`], [`crate::ApprovalStore`], [`crate::HeartbeatStore`],
//! [`crate::JobStore`], [`crate::ChannelStore`].

mod approvals;
mod audit;
mod channels;
mod copy;
mod health;
mod heartbeats;
mod jobs;
mod leaders;
mod mcp;
mod migrations;
mod relay;
mod retention;
mod sessions;
mod skills;
mod tasks;
mod tls;
mod tokens;
mod ui;
mod users;

pub use audit::{ChainWriter, PgAuditChain};
pub use copy::CopiedTable;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
pub use tls::PgTls;
use tokio_postgres::NoTls;

use crate::StoreError;
use crate::values::redact_url;

/// The store on a Postgres database.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// For the dedicated `LISTEN` connection ([`crate::EventRelay`]).
    config: tokio_postgres::Config,
    /// How every connection is made.
    tls: PgTls,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

/// Most connections one process holds.
const POOL_SIZE: usize = 16;

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db`; a password belongs in `PGPASSWORD` or
    /// the URL from an environment variable, never in a config file) and brings the schema up to
    /// date.
    ///
    /// # Errors
    /// [`StoreError::Server`] naming the URL without its password when the server cannot be
    /// reached or refuses; [`StoreError::TooNew`] for a schema newer than this binary.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Server(format!("{}: {e}", redact_url(url))))?;
        Self::with_config(config, url).await
    }

    /// As [`Self::connect`], with a parsed configuration (tests set `options` for a schema).
    ///
    /// # Errors
    /// As [`Self::connect`].
    pub async fn with_config(
        config: tokio_postgres::Config,
        url: &str,
    ) -> Result<Self, StoreError> {
        let tls = PgTls::for_config(&config, None)?;
        Self::with_tls(config, url, tls).await
    }

    /// As [`Self::with_config`], with TLS decided by the caller (a CA file).
    ///
    /// # Errors
    /// As [`Self::connect`].
    pub async fn with_tls(
        config: tokio_postgres::Config,
        url: &str,
        tls: PgTls,
    ) -> Result<Self, StoreError> {
        let mc = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &tls {
            PgTls::Off => Manager::from_config(config.clone(), NoTls, mc),
            PgTls::On(m) => Manager::from_config(config.clone(), m.clone(), mc),
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StoreError::Server(e.to_string()))?;
        let store = Self { pool, config, tls };
        let mut client = store
            .client()
            .await
            .map_err(|e| StoreError::Server(format!("{}: {e}", redact_url(url))))?;
        migrations::migrate(&mut client).await?;
        Ok(store)
    }

    /// The deployment's audit chain on this database ([`PgAuditChain`]), on its own
    /// connection; `location` names it in messages (a URL without its password).
    ///
    /// # Errors
    /// As [`PgAuditChain::open`].
    pub fn audit_chain(
        &self,
        location: String,
        writer: Option<ChainWriter>,
    ) -> Result<std::sync::Arc<PgAuditChain>, StoreError> {
        PgAuditChain::open(self.config.clone(), self.tls.clone(), location, writer)
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Server(with_causes(&e)))
    }
}

/// An error with its causes (a TLS failure says which certificate problem it was).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        cause = c.source();
    }
    text
}

/// A Postgres error as a store error: a unique violation names its constraint (callers that
/// race on purpose, like claims, recognise it by name, whatever the server's language).
pub(crate) fn db(e: &tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(d) if *d.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION => {
            StoreError::Conflict(d.constraint().unwrap_or("unique").to_owned())
        }
        _ => StoreError::Server(e.to_string()),
    }
}
