//! The SQLite implementation of [`Store`] (rusqlite, bundled SQLite, WAL).
//!
//! rusqlite rather than sqlx: no proc-macro or offline query cache to build, a smaller binary, and
//! the Postgres implementation will use tokio-postgres directly behind the same trait.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pincer_types::{AgentId, RunId, SessionId, SessionKey, TokenUsage};
use rusqlite::{Connection, OptionalExtension, params};

use crate::migrations::MIGRATIONS;
pub(crate) use crate::values::{parse, status_parse, status_str};
use crate::{
    ModelPin, RunRecord, RunStart, SessionInfo, SessionSummary, SessionView, Store, StoreError,
};

/// A call run on the store's thread.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Calls that may wait for the store's thread before callers are held back.
const QUEUE: usize = 256;

/// A store in one SQLite file.
///
/// One thread runs every call that writes, in order; async callers queue a closure (bounded)
/// and await its result. A single connection serialises calls anyway, so a thread of its own
/// replaces a blocking-pool hand-off plus a contended mutex per call, and keeps its
/// prepared-statement cache warm. The thread exists because a write may wait (up to the busy
/// limit) for another process's lock, and that wait must not hold a runtime worker.
///
/// Reads that are asked often (a task, a token, a key's current session, whether anything is
/// queued) are tried on the caller's thread first ([`Self::read`]): only when the connection is
/// free this instant, with SQLite's busy wait off, so the caller never waits — a busy
/// connection or any error sends the same read to the store's thread, which answers as before.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    jobs: tokio::sync::mpsc::Sender<Job>,
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating, mode 0600) and migrates the database at `path`.
    ///
    /// # Errors
    /// When the file cannot be created or opened, or a migration fails.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::init(connect(path)?)
    }

    /// An in-memory store (tests and one-off tools).
    ///
    /// # Errors
    /// When migrations fail.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self, StoreError> {
        settings(&mut conn)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&mut conn)?;
        conn.set_prepared_statement_cache_capacity(128);
        let conn = Arc::new(Mutex::new(conn));
        let (jobs, mut queue) = tokio::sync::mpsc::channel::<Job>(QUEUE);
        let shared = Arc::clone(&conn);
        std::thread::Builder::new()
            .name("pincer-store".into())
            .spawn(move || {
                while let Some(job) = queue.blocking_recv() {
                    let mut c = shared.lock().unwrap_or_else(PoisonError::into_inner);
                    // A panicking call drops its reply (its caller gets an error); the thread
                    // and the connection carry on.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut c)));
                }
            })
            .map_err(|e| StoreError::Task(format!("starting the store thread: {e}")))?;
        Ok(Self { jobs, conn })
    }

    /// Runs the read `f` on the caller's thread if the connection is free this instant and
    /// SQLite answers without waiting; otherwise — connection in use, or any error — on the
    /// store's thread, as [`Self::with`] does. `f` must only read: it may run twice.
    pub(crate) async fn read<T, E>(
        &self,
        f: impl Fn(&Connection) -> Result<T, E> + Send + Sync + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        if let Some(Ok(answer)) = self.read_here(&f) {
            return Ok(answer);
        }
        self.call(move |c| f(c)).await?
    }

    /// [`Self::read`]'s attempt on this thread: `None` when the connection is in use.
    fn read_here<T, E>(&self, f: &impl Fn(&Connection) -> Result<T, E>) -> Option<Result<T, E>> {
        let c = match self.conn.try_lock() {
            Ok(c) => c,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        // No busy wait here: a locked database is an error, and the store's thread retries.
        let _no_wait = NoWait::on();
        Some(f(&c))
    }

    /// Answers with `look` (a read, as [`Self::read`]) when it has an answer; otherwise runs
    /// `f` on the store's thread as [`Self::with`] does (which must look again).
    pub(crate) async fn look_or_call<T, E>(
        &self,
        look: impl Fn(&Connection) -> Result<Option<T>, E> + Send + Sync + 'static,
        f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        if let Some(Ok(Some(answer))) = self.read_here(&look) {
            return Ok(answer);
        }
        self.call(f).await?
    }

    /// Runs `f` on the store's thread and returns its result.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |c| {
            let _ = reply.send(f(c));
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::Task("the store thread has stopped".into()))?;
        result
            .await
            .map_err(|_| StoreError::Task("a store call failed without an answer".into()))
    }

    /// The schema version in the file.
    ///
    /// # Errors
    /// On a database error.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        self.with(|c| {
            Ok(
                c.prepare_cached("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
                    .and_then(|mut st| st.query_row([], |r| r.get(0)))?,
            )
        })
        .await
    }

    /// Runs `f` in one transaction on the store's thread; commits when it returns `Ok`.
    pub(crate) async fn with_tx<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.transact(f).await
    }

    /// Runs `f` in one transaction on the store's thread, committing when it returns `Ok`; the
    /// error type is the caller's.
    pub(crate) async fn transact<T: Send + 'static, E: From<StoreError> + Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E> {
        self.call(move |conn| immediate(conn, f)).await?
    }

    /// Runs `look` without the write lock — on the caller's thread when it can ([`Self::read`]),
    /// else on the store's thread — and returns its answer when it has one; otherwise runs `f`
    /// in one transaction as [`Self::transact`] does (when `look` ran on the store's thread, in
    /// the same call). `f` must look again: another connection may have written in between.
    pub(crate) async fn look_or_transact<T, E>(
        &self,
        look: impl Fn(&Connection) -> Result<Option<T>, E> + Send + Sync + 'static,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        match self.read_here(&look) {
            Some(Ok(Some(answer))) => Ok(answer),
            Some(Ok(None)) => self.transact(f).await,
            // Not looked here (connection in use, or an error): look again on the thread.
            _ => {
                self.call(move |conn| match look(conn)? {
                    Some(answer) => Ok(answer),
                    None => immediate(conn, f),
                })
                .await?
            }
        }
    }

    pub(crate) async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.call(f).await?
    }
}

/// Runs `f` in an IMMEDIATE transaction on `conn`, committing when it returns `Ok`.
fn immediate<T, E: From<StoreError>>(
    conn: &mut Connection,
    f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, E>,
) -> Result<T, E> {
    // IMMEDIATE: take the write lock at BEGIN, where the busy timeout applies. A deferred
    // transaction that reads and then writes fails at once with "database is locked" when
    // another connection (another handle in this process, or another process) wrote in
    // between — the busy handler is never consulted for that.
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(StoreError::from)?;
    let out = f(&tx)?;
    tx.commit().map_err(StoreError::from)?;
    Ok(out)
}

/// Opens the database file at `path` (created 0600 when missing) with [`settings`]; every
/// connection to a state database is made here.
///
/// # Errors
/// When the file cannot be created or opened.
pub(crate) fn connect(path: &Path) -> Result<Connection, StoreError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| StoreError::Io {
            path: path.to_owned(),
            source,
        })?;
    let mut conn = Connection::open(path)?;
    settings(&mut conn)?;
    Ok(conn)
}

/// WAL, `synchronous=NORMAL`, [`busy_wait`] and plans that do not depend on bound values.
///
/// The last is SQLite's query planner stability guarantee (QPSG). Without it, a statement whose
/// plan consulted a bound value (the bundled SQLite does this for the token lookup, a key's
/// current session and a session's messages, among others) is marked to be compiled again
/// whenever its bindings change or are cleared — and the statement cache clears them each time a
/// statement goes back into it, so those statements were parsed and planned anew on every call
/// (8 % of a served turn's CPU, docs/PERFORMANCE.md round 2). Our queries look rows up by key;
/// no plan here gains from the bound value.
fn settings(conn: &mut Connection) -> Result<(), StoreError> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    conn.busy_handler(Some(busy_wait))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

/// How long a connection waits for another one's write lock before "database is locked".
const BUSY_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The wait before retry `n` of a locked database: 50 µs doubling to 1.6 ms. SQLite's own busy
/// timeout sleeps a whole millisecond at the first conflict; the other writer (the audit head,
/// a CLI command, another process) usually holds the lock for far less, and the store's thread
/// serves every task, so a millisecond there is a millisecond added to every waiting turn.
fn busy_delay(n: u32) -> std::time::Duration {
    std::time::Duration::from_micros(50 << n.min(5))
}

/// The time waited before retry `n`: the sum of the delays before it.
fn waited_before(n: u32) -> std::time::Duration {
    (0..n).map(busy_delay).sum()
}

thread_local! {
    /// Set while this thread runs a read in [`SqliteStore::read`]'s attempt on the caller's
    /// thread: the busy handler then gives up at once.
    static NO_WAIT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// [`NO_WAIT`] for as long as it lives (reset on drop, a panic included).
struct NoWait;

impl NoWait {
    fn on() -> Self {
        NO_WAIT.with(|w| w.set(true));
        Self
    }
}

impl Drop for NoWait {
    fn drop(&mut self) {
        NO_WAIT.with(|w| w.set(false));
    }
}

/// SQLite's busy handler: waits [`busy_delay`] and retries, for [`BUSY_LIMIT`] in all — but not
/// at all on a caller's thread ([`NO_WAIT`]).
fn busy_wait(n: i32) -> bool {
    if NO_WAIT.with(std::cell::Cell::get) {
        return false;
    }
    let n = u32::try_from(n).unwrap_or(0);
    if waited_before(n) >= BUSY_LIMIT {
        return false;
    }
    std::thread::sleep(busy_delay(n));
    true
}

fn append_messages_in(
    c: &Connection,
    session: SessionId,
    messages: &[serde_json::Value],
) -> Result<(), StoreError> {
    if messages.is_empty() {
        return Ok(());
    }
    let sid = session.to_string();
    let next: i64 = c
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM messages WHERE session_id = ?1")
        .and_then(|mut st| st.query_row(params![sid], |r| r.get(0)))?;
    let now = Utc::now().to_rfc3339();
    let mut stmt = c.prepare_cached(
        "INSERT INTO messages (session_id, seq, body, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (i, m) in messages.iter().enumerate() {
        stmt.execute(params![sid, next + 1 + i as i64, m.to_string(), now])?;
    }
    Ok(())
}

fn messages_in(c: &Connection, session: SessionId) -> Result<Vec<serde_json::Value>, StoreError> {
    let mut stmt =
        c.prepare_cached("SELECT body FROM messages WHERE session_id = ?1 ORDER BY seq")?;
    let rows = stmt.query_map(params![session.to_string()], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for row in rows {
        let body = row?;
        out.push(
            serde_json::from_str(&body)
                .map_err(|e| StoreError::Corrupt(format!("message: {e}")))?,
        );
    }
    Ok(out)
}

fn upsert_run_in(c: &Connection, run: &RunRecord) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO runs (id, agent, session_id, status, model, prompt_sha256, input_tokens,
                           output_tokens, started_at, ended_at, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT(id) DO UPDATE SET status = excluded.status,
            input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
            ended_at = excluded.ended_at, error = excluded.error",
    )
    .and_then(|mut st| {
        st.execute(params![
            run.id.to_string(),
            run.agent.as_str(),
            run.session.to_string(),
            status_str(run.status),
            run.model,
            run.prompt_sha256,
            i64::try_from(run.usage.input_tokens).unwrap_or(i64::MAX),
            i64::try_from(run.usage.output_tokens).unwrap_or(i64::MAX),
            run.started_at.to_rfc3339(),
            run.ended_at.map(|t| t.to_rfc3339()),
            run.error,
        ])
    })?;
    Ok(())
}

/// Brings the schema up to date in one IMMEDIATE transaction: the write lock is taken first
/// (waiting up to the busy timeout), so processes opening the same home at once apply each
/// migration exactly once instead of failing with "database is locked" or "table exists".
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // Up to date (every open but the first after an upgrade): a read, no write lock.
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    let applied: Option<i64> = conn
        .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
            r.get(0)
        })
        .ok()
        .flatten();
    if applied == Some(known) {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    )?;
    let current: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        .and_then(|mut st| st.query_row([], |r| r.get(0)))?;
    if current > known {
        return Err(StoreError::TooNew {
            found: current,
            known,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.execute_batch(sql)?;
        tx.prepare_cached("INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)")
            .and_then(|mut st| st.execute(params![version, Utc::now().to_rfc3339()]))?;
    }
    tx.commit()?;
    Ok(())
}

/// The stored form of a time (RFC 3339, microseconds, `Z`; sorts as text).
pub(crate) fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A fixed test time plus `secs` seconds.
pub(crate) fn ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp `{s}`: {e}")))
}

fn current(conn: &Connection, key: &SessionKey) -> Result<Option<SessionInfo>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT s.id, s.agent, s.created_at, p.alias, p.strict FROM sessions s
             LEFT JOIN model_pins p ON p.session_key = s.key
             WHERE s.key = ?1 AND s.archived_at IS NULL",
        )
        .and_then(|mut st| {
            st.query_row(params![key.as_str()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<bool>>(4)?,
                ))
            })
        })
        .optional()?;
    row.map(|(id, agent, created, alias, strict)| {
        Ok(SessionInfo {
            id: parse(&id, "session id")?,
            key: key.clone(),
            agent: parse(&agent, "agent id")?,
            created_at: ts(&created)?,
            pin: alias.map(|alias| ModelPin {
                alias,
                strict: strict.unwrap_or(false),
            }),
        })
    })
    .transpose()
}

fn view_in(conn: &Connection, session: SessionId) -> Result<Option<SessionView>, StoreError> {
    let row = conn
        .prepare_cached("SELECT covers, sent FROM session_views WHERE session_id = ?1")?
        .query_row(params![session.to_string()], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .optional()?;
    row.map(|(covers, sent)| {
        Ok(SessionView {
            covers: u64::try_from(covers).unwrap_or(0),
            sent: serde_json::from_str(&sent)
                .map_err(|e| StoreError::Corrupt(format!("session view: {e}")))?,
        })
    })
    .transpose()
}

fn pin_of(conn: &Connection, key: &SessionKey) -> Result<Option<ModelPin>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT alias, strict FROM model_pins WHERE session_key = ?1")?
        .query_row(params![key.as_str()], |r| {
            Ok(ModelPin {
                alias: r.get(0)?,
                strict: r.get(1)?,
            })
        })
        .optional()?)
}

fn insert_session(
    conn: &Connection,
    key: &SessionKey,
    agent: &AgentId,
) -> Result<SessionInfo, StoreError> {
    let info = SessionInfo {
        id: SessionId::new(),
        key: key.clone(),
        agent: agent.clone(),
        created_at: Utc::now(),
        pin: pin_of(conn, key)?,
    };
    conn.prepare_cached(
        "INSERT INTO sessions (id, key, agent, created_at) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut st| {
        st.execute(params![
            info.id.to_string(),
            key.as_str(),
            agent.as_str(),
            info.created_at.to_rfc3339()
        ])
    })?;
    Ok(info)
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.schema_version().await.map(|_| ())
    }

    async fn current_session(
        &self,
        key: &SessionKey,
        agent: &AgentId,
    ) -> Result<SessionInfo, StoreError> {
        let (key, agent) = (key.clone(), agent.clone());
        // Every turn asks; the session exists for all but the first: a read, no write lock.
        let k = key.clone();
        self.look_or_transact(
            move |c| current(c, &k),
            move |tx| match current(tx, &key)? {
                Some(info) => Ok(info),
                None => insert_session(tx, &key, &agent),
            },
        )
        .await
    }

    async fn new_session(
        &self,
        key: &SessionKey,
        agent: &AgentId,
    ) -> Result<SessionInfo, StoreError> {
        let (key, agent) = (key.clone(), agent.clone());
        self.with_tx(move |tx| {
            tx.prepare_cached(
                "UPDATE sessions SET archived_at = ?2 WHERE key = ?1 AND archived_at IS NULL",
            )
            .and_then(|mut st| st.execute(params![key.as_str(), Utc::now().to_rfc3339()]))?;
            insert_session(tx, &key, &agent)
        })
        .await
    }

    async fn set_model_pin(
        &self,
        key: &SessionKey,
        pin: Option<&ModelPin>,
    ) -> Result<(), StoreError> {
        let (key, pin) = (key.clone(), pin.cloned());
        self.with(move |c| {
            match pin {
                Some(p) => c.prepare_cached(
                    "INSERT INTO model_pins (session_key, alias, strict, set_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(session_key) DO UPDATE SET alias = excluded.alias,
                        strict = excluded.strict, set_at = excluded.set_at",
                )?
                .execute(params![key.as_str(), p.alias, p.strict, stamp(Utc::now())])?,
                None => c
                    .prepare_cached("DELETE FROM model_pins WHERE session_key = ?1")?
                    .execute(params![key.as_str()])?,
            };
            Ok(())
        })
        .await
    }

    async fn session_view(&self, session: SessionId) -> Result<Option<SessionView>, StoreError> {
        self.with(move |c| view_in(c, session)).await
    }

    async fn agent_sessions(&self, agent: &AgentId) -> Result<Vec<SessionSummary>, StoreError> {
        let agent = agent.to_string();
        let rows = self
            .with(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT s.id, s.key, s.created_at, (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id)
                     FROM sessions s WHERE s.agent = ?1 ORDER BY s.created_at, s.id",
                )?;
                let rows = st
                    .query_map(params![agent], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?;
        rows.into_iter()
            .map(|(id, key, created, n)| {
                Ok(SessionSummary {
                    id: parse(&id, "session id")?,
                    key: parse(&key, "session key")?,
                    created_at: ts(&created)?,
                    messages: u64::try_from(n).unwrap_or(0),
                })
            })
            .collect()
    }

    async fn set_session_view(
        &self,
        session: SessionId,
        view: &SessionView,
    ) -> Result<(), StoreError> {
        let sent = serde_json::Value::from(view.sent.clone()).to_string();
        let covers = i64::try_from(view.covers).unwrap_or(i64::MAX);
        self.with(move |c| {
            c.prepare_cached(
                "INSERT INTO session_views (session_id, covers, sent, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(session_id) DO UPDATE SET covers = excluded.covers, sent = excluded.sent,
                    updated_at = excluded.updated_at",
            )?
            .execute(params![session.to_string(), covers, sent, stamp(Utc::now())])?;
            Ok(())
        })
        .await
    }

    async fn clear_messages(&self, session: SessionId) -> Result<(), StoreError> {
        self.with_tx(move |tx| {
            tx.prepare_cached("DELETE FROM messages WHERE session_id = ?1")
                .and_then(|mut st| st.execute(params![session.to_string()]))?;
            tx.prepare_cached("DELETE FROM session_views WHERE session_id = ?1")
                .and_then(|mut st| st.execute(params![session.to_string()]))?;
            Ok(())
        })
        .await
    }

    async fn append_messages(
        &self,
        session: SessionId,
        messages: Vec<serde_json::Value>,
    ) -> Result<(), StoreError> {
        self.with_tx(move |tx| append_messages_in(tx, session, &messages))
            .await
    }

    async fn messages(&self, session: SessionId) -> Result<Vec<serde_json::Value>, StoreError> {
        self.with(move |c| messages_in(c, session)).await
    }

    async fn upsert_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let run = run.clone();
        self.with(move |c| upsert_run_in(c, &run)).await
    }

    async fn begin_run(&self, run: &RunRecord) -> Result<RunStart, StoreError> {
        let run = run.clone();
        self.with_tx(move |tx| {
            upsert_run_in(tx, &run)?;
            let history = messages_in(tx, run.session)?;
            let view = if history.is_empty() {
                None
            } else {
                view_in(tx, run.session)?
            };
            Ok(RunStart { history, view })
        })
        .await
    }

    async fn end_run(
        &self,
        run: &RunRecord,
        messages: Vec<serde_json::Value>,
    ) -> Result<(), StoreError> {
        let run = run.clone();
        self.with_tx(move |tx| {
            upsert_run_in(tx, &run)?;
            append_messages_in(tx, run.session, &messages)
        })
        .await
    }

    async fn runs(&self, session: SessionId) -> Result<Vec<RunRecord>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, agent, status, model, prompt_sha256, input_tokens, output_tokens, started_at,
                        ended_at, error
                 FROM runs WHERE session_id = ?1 ORDER BY started_at, id",
            )?;
            let rows = stmt.query_map(params![session.to_string()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, Option<String>>(9)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, agent, status, model, hash, inp, outp, started, ended, error) = row?;
                out.push(RunRecord {
                    id: parse::<RunId>(&id, "run id")?,
                    agent: parse(&agent, "agent id")?,
                    session,
                    status: status_parse(&status)?,
                    model,
                    prompt_sha256: hash,
                    usage: TokenUsage {
                        input_tokens: u64::try_from(inp).unwrap_or(0),
                        output_tokens: u64::try_from(outp).unwrap_or(0),
                    },
                    started_at: ts(&started)?,
                    ended_at: ended.as_deref().map(ts).transpose()?,
                    error,
                });
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn file_is_private_and_migrations_are_idempotent() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("state.db");
        drop(SqliteStore::open(&p).unwrap());
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let s = SqliteStore::open(&p).unwrap();
        assert_eq!(
            rt.block_on(s.schema_version()).unwrap(),
            crate::migrations::MIGRATIONS.last().unwrap().0
        );
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn newer_schema_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("state.db");
        drop(SqliteStore::open(&p).unwrap());
        let c = Connection::open(&p).unwrap();
        c.prepare_cached("INSERT INTO schema_migrations VALUES (99, 'x')")
            .and_then(|mut st| st.execute([]))
            .unwrap();
        drop(c);
        assert!(matches!(
            SqliteStore::open(&p),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }

    /// A cached statement is compiled once: reusing it with other values does not parse and
    /// plan it again (each of these was, on every call, before QPSG was set).
    #[test]
    fn cached_statements_are_not_compiled_again_for_new_values() {
        use rusqlite::StatementStatus;
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("state.db");
        drop(SqliteStore::open(&p).unwrap());
        let c = connect(&p).unwrap();
        let mut recompiled = Vec::new();
        for sql in [
            "SELECT s.id, p.alias FROM sessions s LEFT JOIN model_pins p ON p.session_key = s.key
             WHERE s.key = ?1 AND s.archived_at IS NULL",
            "SELECT t.name FROM tokens t LEFT JOIN users u ON u.name = t.user_name
             WHERE t.name = ?1",
            "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE session_id = ?1",
            "SELECT body FROM messages WHERE session_id = ?1 ORDER BY seq",
        ] {
            for key in ["a", "b", "c", "d"] {
                let mut st = c.prepare_cached(sql).unwrap();
                st.query_map(params![key], |_| Ok(()))
                    .unwrap()
                    .for_each(drop);
                if key == "d" && st.get_status(StatementStatus::RePrepare) > 0 {
                    recompiled.push(sql);
                }
            }
        }
        assert_eq!(recompiled, Vec::<&str>::new());
    }

    /// A read on a caller's thread never waits for a lock: the busy handler gives up at once
    /// there (and only there), and waits again once the read is done.
    #[test]
    fn the_busy_wait_is_off_only_during_a_read_on_a_callers_thread() {
        assert!(busy_wait(0));
        {
            let _on = NoWait::on();
            assert!(!busy_wait(0));
        }
        assert!(busy_wait(0));
    }

    /// When the connection is in use, a read goes to the store's thread and answers from there
    /// once the connection is free (it is not an error, and it sees what was written).
    #[tokio::test]
    async fn a_read_goes_to_the_store_thread_when_the_connection_is_in_use() {
        use std::future::Future as _;
        let s = SqliteStore::in_memory().unwrap();
        let agent: AgentId = "main".parse().unwrap();
        let key = SessionKey::for_peer(&agent, "api", "p").unwrap();
        let made = s.current_session(&key, &agent).await.unwrap();
        let held = s.conn.lock().unwrap();
        let k = key.clone();
        let mut read = Box::pin(s.read(move |c| current(c, &k)));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        // The connection is held: the read is queued, not answered here.
        assert!(read.as_mut().poll(&mut cx).is_pending());
        drop(held);
        let found = read.await.unwrap().unwrap();
        assert_eq!(found.id, made.id);
        // Free: answered on this thread, the same.
        let k = key.clone();
        assert_eq!(
            s.read(move |c| current(c, &k)).await.unwrap().unwrap().id,
            made.id
        );
    }

    /// Two handles on one file (the worker pool's and an agent runtime's, or two processes)
    /// writing at once: read-then-write transactions wait for each other instead of failing
    /// with "database is locked".
    #[test]
    fn the_busy_wait_starts_short_and_gives_up_after_the_limit() {
        assert_eq!(busy_delay(0), std::time::Duration::from_micros(50));
        assert_eq!(busy_delay(3), std::time::Duration::from_micros(400));
        assert_eq!(busy_delay(40), std::time::Duration::from_micros(1600));
        // Gives up once about BUSY_LIMIT has been waited, not before.
        let retries = (0..10_000)
            .take_while(|&n| waited_before(n) < BUSY_LIMIT)
            .count();
        let waited = waited_before(u32::try_from(retries).unwrap());
        assert!(waited >= BUSY_LIMIT && waited <= BUSY_LIMIT + std::time::Duration::from_millis(2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_handles_writing_at_once_wait_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let a = Arc::new(SqliteStore::open(&path).unwrap());
        let b = Arc::new(SqliteStore::open(&path).unwrap());
        let agent: AgentId = "main".parse().unwrap();
        let mut tasks = Vec::new();
        for (n, s) in [a, b].into_iter().enumerate() {
            let agent = agent.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..200 {
                    let key = SessionKey::for_peer(&agent, "api", &format!("p{n}-{i}")).unwrap();
                    let info = s.current_session(&key, &agent).await?;
                    s.append_messages(info.id, vec![serde_json::json!({"role": "user"})])
                        .await?;
                }
                Ok::<_, StoreError>(())
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    }
}
