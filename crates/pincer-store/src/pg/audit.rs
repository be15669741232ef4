//! The audit chain in Postgres ([`pincer_audit::ChainStore`]): one chain per deployment,
//! appended by every process under a transaction-scoped advisory lock, so machines need not
//! share a filesystem for the audit log.
//!
//! One writer thread per process owns a dedicated connection (on its own single-threaded
//! runtime, so the blocking [`ChainStore`] calls work from any thread without touching the
//! caller's executor). It takes every event queued since its last commit and stores them in one
//! transaction — the database's group commit — together with the checkpoint signed by this
//! node's anchor key. Tables: `audit_lines (seq, hash, line)`, append-only by trigger, and
//! `audit_checkpoint` (one row).
//!
//! The writer never launders tampering: when the stored end is behind what this writer or the
//! checkpoint knows (a removed tail), it continues from the further point, so the gap stays
//! visible, and it stops moving the checkpoint; a checkpoint that does not verify at open is
//! left frozen the same way. A checkpoint signed by another key is refused at open: every node
//! of a deployment must hold the same `secrets/audit.key`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, sync_channel};
use std::time::Duration;

use pincer_audit::{
    AnchorKey, AuditError, ChainStore, GENESIS, Pending, SignedCheckpoint, anchored_event, chain,
};
use tokio_postgres::{Client, NoTls};

use crate::StoreError;

/// Advisory lock key for appends ("audit" in ASCII).
const LOCK: i64 = 0x61_7564_6974;
/// Events queued before `append` blocks (back-pressure, never unbounded memory).
const QUEUE: usize = 4096;
/// Most events one transaction stores.
const BATCH: usize = 512;
/// Lazy events kept for a retry while the database is unreachable; older ones are dropped
/// with an error past this.
const RETRY: usize = 10_000;
/// Wait between retries while the database is unreachable.
const BACKOFF: Duration = Duration::from_secs(1);

type Reply<T> = SyncSender<Result<T, AuditError>>;

enum Req {
    Line(Pending, Option<Reply<u64>>),
    Sync(Reply<()>),
    Read(u64, usize, Reply<Vec<String>>),
    Checkpoint(Reply<Option<SignedCheckpoint>>),
}

/// What the writer signs with: the node's key, whether it was just created.
#[derive(Debug, Clone)]
pub struct ChainWriter {
    /// The anchor key (`secrets/audit.key`).
    pub key: AnchorKey,
    /// Whether the key was just created (then the chain's current end is trusted and
    /// anchored when it has no checkpoint yet).
    pub fresh: bool,
}

/// The audit chain on a Postgres database.
#[derive(Debug)]
pub struct PgAuditChain {
    tx: SyncSender<Req>,
    queued: Arc<AtomicUsize>,
    anchored: Arc<AtomicBool>,
    location: String,
}

impl PgAuditChain {
    /// Connects (a dedicated connection on a writer thread), brings the schema up to date and
    /// checks the stored checkpoint against `writer`'s key. Without a writer the chain is only
    /// read (`pincer audit verify`).
    ///
    /// # Errors
    /// [`StoreError::Server`] when the database cannot be reached; [`StoreError::Refused`] when
    /// the checkpoint is signed by another key than this node's.
    pub fn open(
        config: tokio_postgres::Config,
        tls: super::PgTls,
        location: String,
        writer: Option<ChainWriter>,
    ) -> Result<Arc<Self>, StoreError> {
        let (tx, rx) = sync_channel(QUEUE);
        let (ready_tx, ready_rx) = sync_channel(1);
        let queued = Arc::new(AtomicUsize::new(0));
        let anchored = Arc::new(AtomicBool::new(false));
        let thread = Thread {
            config,
            tls,
            location: location.clone(),
            key: writer.as_ref().map(|w| w.key.clone()),
            anchored: anchored.clone(),
            queued: queued.clone(),
            client: None,
            known: None,
        };
        let fresh = writer.is_some_and(|w| w.fresh);
        std::thread::Builder::new()
            .name("pincer-audit-pg".into())
            .spawn(move || thread.run(rx, fresh, &ready_tx))
            .map_err(|e| StoreError::Server(format!("audit writer thread: {e}")))?;
        ready_rx
            .recv()
            .map_err(|_| StoreError::Server("the audit writer thread stopped".into()))??;
        Ok(Arc::new(Self {
            tx,
            queued,
            anchored,
            location,
        }))
    }

    fn ask<T>(&self, req: impl FnOnce(Reply<T>) -> Req) -> Result<T, AuditError> {
        let (reply, answer) = sync_channel(1);
        self.tx.send(req(reply)).map_err(|_| self.stopped())?;
        answer.recv().map_err(|_| self.stopped())?
    }

    fn stopped(&self) -> AuditError {
        AuditError::Chain {
            location: self.location.clone(),
            message: "the audit writer thread stopped".into(),
        }
    }
}

impl ChainStore for PgAuditChain {
    fn append(&self, pending: Pending, wait: bool) -> Result<Option<u64>, AuditError> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        if wait {
            return self.ask(|r| Req::Line(pending, Some(r))).map(Some);
        }
        self.tx.send(Req::Line(pending, None)).map_err(|_| {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            self.stopped()
        })?;
        Ok(None)
    }

    fn sync(&self) -> Result<(), AuditError> {
        self.ask(Req::Sync)
    }

    fn is_synced(&self) -> bool {
        self.queued.load(Ordering::SeqCst) == 0
    }

    fn read(&self, after: u64, limit: usize) -> Result<Vec<String>, AuditError> {
        self.ask(|r| Req::Read(after, limit, r))
    }

    fn checkpoint(&self) -> Result<Option<SignedCheckpoint>, AuditError> {
        self.ask(Req::Checkpoint)
    }

    fn is_anchored(&self) -> bool {
        self.anchored.load(Ordering::SeqCst)
    }

    fn location(&self) -> String {
        self.location.clone()
    }
}

impl Drop for PgAuditChain {
    /// Lazy lines are committed when the log closes.
    fn drop(&mut self) {
        if !self.is_synced()
            && let Err(e) = self.sync()
        {
            eprintln!("WARNING: audit chain: final commit failed: {e}");
        }
    }
}

/// The writer thread's state.
struct Thread {
    config: tokio_postgres::Config,
    tls: super::PgTls,
    location: String,
    key: Option<AnchorKey>,
    anchored: Arc<AtomicBool>,
    queued: Arc<AtomicUsize>,
    client: Option<Client>,
    /// The last line this writer committed or saw.
    known: Option<(u64, String)>,
}

fn seq_of(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Thread {
    fn err(&self, message: impl std::fmt::Display) -> AuditError {
        AuditError::Chain {
            location: self.location.clone(),
            message: message.to_string(),
        }
    }

    fn run(mut self, rx: Receiver<Req>, fresh: bool, ready: &SyncSender<Result<(), StoreError>>) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready.send(Err(StoreError::Server(format!(
                    "audit writer runtime: {e}"
                ))));
                return;
            }
        };
        let opened = rt.block_on(self.start(fresh));
        let failed = opened.is_err();
        let _ = ready.send(opened);
        if failed {
            return;
        }
        let mut retry: VecDeque<Pending> = VecDeque::new();
        loop {
            let first = if retry.is_empty() {
                rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                rx.recv_timeout(BACKOFF)
            };
            let mut batch = match first {
                Ok(req) => vec![req],
                Err(RecvTimeoutError::Timeout) => Vec::new(),
                Err(RecvTimeoutError::Disconnected) => {
                    if !retry.is_empty() {
                        let lines: Vec<Pending> = retry.drain(..).collect();
                        let n = lines.len();
                        if let Err(e) = rt.block_on(self.commit(&lines)) {
                            eprintln!("ERROR: audit chain: {n} record(s) could not be stored: {e}");
                        }
                        self.queued.fetch_sub(n, Ordering::SeqCst);
                    }
                    return;
                }
            };
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(req) => batch.push(req),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            self.serve(&rt, batch, &mut retry);
        }
    }

    /// Commits the batch's lines (after any kept for a retry), then answers every request.
    fn serve(
        &mut self,
        rt: &tokio::runtime::Runtime,
        batch: Vec<Req>,
        retry: &mut VecDeque<Pending>,
    ) {
        let kept = retry.len();
        let mut lines: Vec<Pending> = retry.drain(..).collect();
        let mut waiting = Vec::new();
        let mut after = Vec::new();
        for req in batch {
            match req {
                Req::Line(p, reply) => {
                    waiting.push((lines.len(), reply, p.clone()));
                    lines.push(p);
                }
                other => after.push(other),
            }
        }
        let committed = if lines.is_empty() {
            Ok(0)
        } else {
            rt.block_on(self.commit(&lines))
        };
        match &committed {
            Ok(first) => {
                self.queued.fetch_sub(lines.len(), Ordering::SeqCst);
                for (i, reply, _) in waiting {
                    if let Some(r) = reply {
                        let _ = r.send(Ok(first + i as u64));
                    }
                }
            }
            Err(e) => {
                // Waiters learn of the failure (a tool call is then refused); lazy lines are
                // kept for the next attempt.
                retry.extend(lines.drain(..kept));
                let mut answered = 0;
                for (_, reply, p) in waiting {
                    match reply {
                        Some(r) => {
                            answered += 1;
                            let _ = r.send(Err(self.err(e)));
                        }
                        None => retry.push_back(p),
                    }
                }
                self.queued.fetch_sub(answered, Ordering::SeqCst);
                while retry.len() > RETRY {
                    retry.pop_front();
                    self.queued.fetch_sub(1, Ordering::SeqCst);
                    eprintln!(
                        "ERROR: audit chain unreachable: a queued record was dropped (more than {RETRY} waiting)"
                    );
                }
            }
        }
        for req in after {
            match req {
                Req::Sync(r) => {
                    let _ = r.send(match &committed {
                        Ok(_) if retry.is_empty() => Ok(()),
                        Ok(_) => {
                            Err(self.err("earlier records are still waiting for the database"))
                        }
                        Err(e) => Err(self.err(e)),
                    });
                }
                Req::Read(after, limit, r) => {
                    let _ = r.send(
                        rt.block_on(self.read(after, limit))
                            .map_err(|e| self.err(e)),
                    );
                }
                Req::Checkpoint(r) => {
                    let _ = r.send(rt.block_on(self.checkpoint()).map_err(|e| self.err(e)));
                }
                Req::Line(..) => {}
            }
        }
    }

    async fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            let failed =
                |e: tokio_postgres::Error| StoreError::Server(format!("{}: {e}", self.location));
            let client = match &self.tls {
                super::PgTls::Off => {
                    let (client, conn) = self.config.connect(NoTls).await.map_err(failed)?;
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                    client
                }
                super::PgTls::On(m) => {
                    let (client, conn) = self.config.connect(m.clone()).await.map_err(failed)?;
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                    client
                }
            };
            self.client = Some(client);
        }
        self.client
            .as_mut()
            .ok_or_else(|| StoreError::Server("no connection".into()))
    }

    /// Connects, migrates and decides whether this writer moves the checkpoint.
    async fn start(&mut self, fresh: bool) -> Result<(), StoreError> {
        let client = self.client().await?;
        super::migrations::migrate(client).await?;
        let Some(key) = self.key.clone() else {
            return Ok(());
        };
        let cp = self.checkpoint().await?;
        let end = self.end().await?;
        if let Some(cp) = &cp
            && cp.key_id != key.id()
        {
            return Err(StoreError::Refused(format!(
                "{}: the deployment's audit chain is anchored with key {}, but this node's secrets/audit.key is {}; copy secrets/audit.key from a node of this deployment",
                self.location,
                cp.key_id,
                key.id()
            )));
        }
        let consistent = match &cp {
            None => end.0 == 0,
            Some(cp) => cp.signed_by(&key) && self.hash_at(cp.seq).await? == Some(cp.hash.clone()),
        };
        if fresh && cp.is_none() {
            // A new key over a chain without a checkpoint: trust its current end, and say so.
            self.anchored.store(true, Ordering::SeqCst);
            self.known = Some(end.clone());
            let p = Pending {
                ts: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                event: {
                    let mut e = anchored_event(&key, end.0);
                    if let Some(m) = e.as_object_mut() {
                        m.insert("type".into(), "audit.anchored".into());
                    }
                    e
                },
            };
            self.commit(&[p])
                .await
                .map_err(|e| StoreError::Server(e.to_string()))?;
        } else if consistent {
            self.anchored.store(true, Ordering::SeqCst);
        } else {
            eprintln!(
                "ERROR: audit chain {}: the checkpoint does not match the chain; it is left as it is — run `pincer audit verify`",
                self.location
            );
        }
        Ok(())
    }

    async fn end(&mut self) -> Result<(u64, String), StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT seq, hash FROM audit_lines ORDER BY seq DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(|e| super::db(&e))?;
        Ok(row.map_or((0, GENESIS.to_owned()), |r| (seq_of(r.get(0)), r.get(1))))
    }

    async fn hash_at(&mut self, seq: u64) -> Result<Option<String>, StoreError> {
        if seq == 0 {
            return Ok(Some(GENESIS.to_owned()));
        }
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT hash FROM audit_lines WHERE seq = $1",
                &[&to_i64(seq)],
            )
            .await
            .map_err(|e| super::db(&e))?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn checkpoint(&mut self) -> Result<Option<SignedCheckpoint>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT seq, hash, key_id, mac FROM audit_checkpoint WHERE id = 1",
                &[],
            )
            .await
            .map_err(|e| super::db(&e))?;
        Ok(row.map(|r| SignedCheckpoint {
            seq: seq_of(r.get(0)),
            hash: r.get(1),
            key_id: r.get(2),
            mac: r.get(3),
        }))
    }

    async fn read(&mut self, after: u64, limit: usize) -> Result<Vec<String>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client()
            .await?
            .query(
                "SELECT line FROM audit_lines WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&to_i64(after), &limit],
            )
            .await
            .map_err(|e| super::db(&e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Chains `lines` after the stored end and stores them with the new checkpoint in one
    /// transaction; returns the first one's sequence number.
    async fn commit(&mut self, lines: &[Pending]) -> Result<u64, StoreError> {
        let key = self.key.clone();
        let known = self.known.clone();
        let anchored_flag = self.anchored.clone();
        let anchored = anchored_flag.load(Ordering::SeqCst);
        let location = self.location.clone();
        let client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| super::db(&e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
            .await
            .map_err(|e| super::db(&e))?;
        let row = tx
            .query_opt(
                "SELECT seq, hash FROM audit_lines ORDER BY seq DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(|e| super::db(&e))?;
        let stored = row.map_or((0, GENESIS.to_owned()), |r| (seq_of(r.get(0)), r.get(1)));
        let cp = tx
            .query_opt(
                "SELECT c.seq, c.hash, c.key_id, c.mac, l.hash FROM audit_checkpoint c
                 LEFT JOIN audit_lines l ON l.seq = c.seq WHERE c.id = 1",
                &[],
            )
            .await
            .map_err(|e| super::db(&e))?
            .map(|r| {
                let cp = SignedCheckpoint {
                    seq: seq_of(r.get(0)),
                    hash: r.get(1),
                    key_id: r.get(2),
                    mac: r.get(3),
                };
                let line_hash: Option<String> = r.get(4);
                let holds = line_hash.as_deref() == Some(cp.hash.as_str())
                    || (cp.seq == 0 && cp.hash == GENESIS);
                (cp, holds)
            });
        // A stored end behind what we or the checkpoint know: the tail was removed. Continue
        // from the further point (the gap stays visible). That, a checkpoint whose line no
        // longer carries its hash, or one this key did not sign: stop moving the checkpoint.
        let mut base = stored.clone();
        let cp_end = cp.as_ref().map(|(c, _)| (c.seq, c.hash.clone()));
        for further in [known, cp_end].into_iter().flatten() {
            if further.0 > base.0 {
                base = further;
            }
        }
        let cp_sound = cp
            .as_ref()
            .is_none_or(|(c, holds)| *holds && key.as_ref().is_some_and(|k| c.signed_by(k)));
        let mut anchor = anchored;
        if anchored && (base != stored || !cp_sound) {
            anchor = false;
            anchored_flag.store(false, Ordering::SeqCst);
            eprintln!(
                "ERROR: audit chain {location}: the stored chain no longer matches its checkpoint (lines removed or rewritten); the checkpoint is left as it is — run `pincer audit verify`"
            );
        }
        let chained = chain(base.0, &base.1, lines);
        let seqs: Vec<i64> = chained.iter().map(|c| to_i64(c.seq)).collect();
        let hashes: Vec<&str> = chained.iter().map(|c| c.hash.as_str()).collect();
        let texts: Vec<&str> = chained.iter().map(|c| c.line.as_str()).collect();
        tx.execute(
            "INSERT INTO audit_lines (seq, hash, line) SELECT * FROM unnest($1::int8[], $2::text[], $3::text[])",
            &[&seqs, &hashes, &texts],
        )
        .await
        .map_err(|e| super::db(&e))?;
        let last = chained
            .last()
            .map_or(base.clone(), |c| (c.seq, c.hash.clone()));
        if anchor && let Some(key) = &key {
            let s = SignedCheckpoint::sign(key, last.0, &last.1);
            tx.execute(
                "INSERT INTO audit_checkpoint (id, seq, hash, key_id, mac) VALUES (1, $1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET seq = $1, hash = $2, key_id = $3, mac = $4",
                &[&to_i64(s.seq), &s.hash, &s.key_id, &s.mac],
            )
            .await
            .map_err(|e| super::db(&e))?;
        }
        tx.commit().await.map_err(|e| super::db(&e))?;
        self.known = Some(last);
        Ok(base.0 + 1)
    }
}

impl super::PgStore {
    /// Imports a verified day-file chain (`(seq, hash, line)` from the first line, in order)
    /// into the database chain, so a home moving to Postgres keeps one chain: lines the
    /// database already holds must be the same lines, the others are added, and the checkpoint
    /// (signed with `key`) moves to the imported end unless the chain already continued past
    /// it. Idempotent. Returns how many lines were added.
    ///
    /// # Errors
    /// [`StoreError::Refused`] when the database holds a different chain; a database error
    /// otherwise.
    pub async fn import_audit(
        &self,
        lines: &[(u64, String, String)],
        key: &AnchorKey,
    ) -> Result<u64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| super::db(&e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK])
            .await
            .map_err(|e| super::db(&e))?;
        let stored = tx
            .query("SELECT seq, hash FROM audit_lines ORDER BY seq", &[])
            .await
            .map_err(|e| super::db(&e))?;
        let stored: std::collections::HashMap<u64, String> = stored
            .iter()
            .map(|r| (seq_of(r.get(0)), r.get(1)))
            .collect();
        let mut added = 0u64;
        for (seq, hash, line) in lines {
            match stored.get(seq) {
                Some(h) if h == hash => {}
                Some(_) => {
                    return Err(StoreError::Refused(format!(
                        "the database already holds a different audit chain (line {seq} differs from this home's); it was written by another home, or this home kept writing after an earlier migrate"
                    )));
                }
                None => {
                    tx.execute(
                        "INSERT INTO audit_lines (seq, hash, line) VALUES ($1, $2, $3)",
                        &[&to_i64(*seq), hash, line],
                    )
                    .await
                    .map_err(|e| super::db(&e))?;
                    added += 1;
                }
            }
        }
        if let Some((seq, hash, _)) = lines.last() {
            let cp: Option<i64> = tx
                .query_opt("SELECT seq FROM audit_checkpoint WHERE id = 1", &[])
                .await
                .map_err(|e| super::db(&e))?
                .map(|r| r.get(0));
            if cp.is_none_or(|c| seq_of(c) < *seq) {
                let s = SignedCheckpoint::sign(key, *seq, hash);
                tx.execute(
                    "INSERT INTO audit_checkpoint (id, seq, hash, key_id, mac) VALUES (1, $1, $2, $3, $4)
                     ON CONFLICT (id) DO UPDATE SET seq = $1, hash = $2, key_id = $3, mac = $4",
                    &[&to_i64(s.seq), &s.hash, &s.key_id, &s.mac],
                )
                .await
                .map_err(|e| super::db(&e))?;
            }
        }
        tx.commit().await.map_err(|e| super::db(&e))?;
        Ok(added)
    }
}
