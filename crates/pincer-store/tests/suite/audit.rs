//! The audit log on each backend: day files beside a SQLite home, the database chain on
//! Postgres (`pg/audit.rs`). The same appends, the same verification, the same attacks.

use std::sync::Arc;

use pincer_audit::{Anchor, AnchorKey, AuditError, AuditLog, AuditSource, Redactor};
use serde_json::json;

use super::{Db, conformance};

fn redactor() -> Redactor {
    Redactor::new(vec!["sk-secret-value-123".into()], &[]).unwrap()
}

/// The log a process of this deployment writes to, and where `pincer audit` reads it.
fn open(db: &Db, key: &AnchorKey, fresh: bool) -> (AuditLog, AuditSource) {
    match db {
        Db::Sqlite(dir) => {
            let audit = dir.path().join("audit");
            let anchor = dir.path().join("audit.anchor");
            let log = AuditLog::open_anchored(
                &audit,
                redactor(),
                Anchor {
                    path: anchor.clone(),
                    key: key.clone(),
                },
                fresh,
            )
            .unwrap();
            let key_path = dir.path().join("audit.key");
            let source = AuditSource::Files {
                dir: audit,
                key: key_path,
                anchor,
                witnesses: Vec::new(),
            };
            (log, source)
        }
        #[cfg(feature = "postgres")]
        Db::Postgres { .. } => {
            let chain = pg_chain(db, Some((key.clone(), fresh))).unwrap();
            let source = AuditSource::Chain {
                store: chain.clone(),
                key: Some(key.clone()),
            };
            (AuditLog::on_chain(chain, redactor()), source)
        }
    }
}

#[cfg(feature = "postgres")]
fn pg_config(db: &Db) -> tokio_postgres::Config {
    let Db::Postgres { url, schema } = db else {
        unreachable!("postgres")
    };
    let mut cfg: tokio_postgres::Config = url.parse().unwrap();
    cfg.options(format!("-c search_path={schema}"));
    cfg
}

#[cfg(feature = "postgres")]
fn pg_chain(
    db: &Db,
    writer: Option<(AnchorKey, bool)>,
) -> Result<Arc<pincer_store::PgAuditChain>, pincer_store::StoreError> {
    pincer_store::PgAuditChain::open(
        pg_config(db),
        pincer_store::PgTls::Off,
        "postgres://test (audit_lines)".into(),
        writer.map(|(key, fresh)| pincer_store::ChainWriter { key, fresh }),
    )
}

/// A key for this test, saved where the file side's `verify_anchored` looks for it.
fn key(db: &Db) -> AnchorKey {
    let t = tempfile::tempdir().unwrap();
    let path = match db {
        Db::Sqlite(dir) => dir.path().join("audit.key"),
        #[cfg(feature = "postgres")]
        Db::Postgres { .. } => t.path().join("audit.key"),
    };
    AnchorKey::load_or_create(&path).unwrap().0
}

/// Runs SQL as the attacker: someone with write access to the database, triggers disabled.
#[cfg(feature = "postgres")]
async fn as_attacker(db: &Db, sql: &str) {
    let (client, conn) = pg_config(db).connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "ALTER TABLE audit_lines DISABLE TRIGGER USER; {sql}; ALTER TABLE audit_lines ENABLE TRIGGER USER"
        ))
        .await
        .unwrap();
}

/// Rewrites the stored lines with `edit` (text of each line, in order; the result replaces them).
async fn tamper(db: &Db, edit: impl Fn(&mut Vec<String>)) {
    match db {
        Db::Sqlite(dir) => {
            let audit = dir.path().join("audit");
            let file = std::fs::read_dir(&audit)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .unwrap();
            let mut lines: Vec<String> = std::fs::read_to_string(&file)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect();
            edit(&mut lines);
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            std::fs::write(&file, text).unwrap();
        }
        #[cfg(feature = "postgres")]
        Db::Postgres { .. } => {
            let (client, conn) = pg_config(db).connect(tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            let rows = client
                .query("SELECT line FROM audit_lines ORDER BY seq", &[])
                .await
                .unwrap();
            let mut lines: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            edit(&mut lines);
            let mut sql = String::from("DELETE FROM audit_lines");
            for l in &lines {
                let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
                let seq = v["seq"].as_i64().unwrap_or(0);
                let hash = v["hash"].as_str().unwrap_or("").to_owned();
                sql.push_str(&format!(
                    "; INSERT INTO audit_lines (seq, hash, line) VALUES ({seq}, '{hash}', '{}')",
                    l.replace('\'', "''")
                ));
            }
            as_attacker(db, &sql).await;
        }
    }
}

fn tampered(r: Result<pincer_audit::VerifyReport, AuditError>) -> String {
    match r {
        Err(AuditError::Tampered { reason, line, .. }) => format!("line {line}: {reason}"),
        other => panic!("expected tampering to be detected, got {other:?}"),
    }
}

/// Runs blocking audit work off the async test's executor.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

conformance!(two_writers_extend_one_anchored_chain, |db| {
    let db = Arc::new(db);
    let k = key(&db);
    let db2 = db.clone();
    let (total, source) = blocking(move || {
        let (a, source) = open(&db2, &k, true);
        let (b, _) = open(&db2, &k, false);
        let (a, b) = (Arc::new(a), Arc::new(b));
        let threads: Vec<_> = [a.clone(), b.clone()]
            .into_iter()
            .enumerate()
            .flat_map(|(w, log)| {
                (0..3).map(move |t| {
                    let log = log.clone();
                    std::thread::spawn(move || {
                        let mut seqs = Vec::new();
                        for n in 0..20 {
                            if n % 4 == 0 {
                                log.append_lazy("lazy", json!({"w": w, "t": t, "n": n}))
                                    .unwrap();
                            } else {
                                seqs.push(
                                    log.append("tool.call", json!({"w": w, "t": t, "n": n}))
                                        .unwrap(),
                                );
                            }
                        }
                        seqs
                    })
                })
            })
            .collect();
        let mut seqs: Vec<u64> = threads
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        a.sync().unwrap();
        b.sync().unwrap();
        assert!(a.is_synced() && b.is_synced() && a.is_anchored() && b.is_anchored());
        let n = seqs.len();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), n, "every durable append got its own line");
        (seqs, source)
    })
    .await;
    let report = blocking(move || source.verify()).await.unwrap();
    // 6 threads × 20 lines, and the `audit.anchored` record of the fresh key.
    assert_eq!(report.lines, 121);
    assert_eq!(report.anchored, Some(121));
    assert!(total.iter().all(|s| *s >= 1 && *s <= 121));
});

conformance!(lines_are_redacted_and_read_back_in_order, |db| {
    let k = key(&db);
    let (log, source) = open(&db, &k, true);
    let entries = blocking(move || {
        log.append("tool.call", json!({"args": "key sk-secret-value-123 here"}))
            .unwrap();
        log.append_lazy("task.end", json!({"status": "SUCCEEDED"}))
            .unwrap();
        drop(log); // commits the lazy line
        source.entries_after(1).unwrap()
    })
    .await;
    let kinds: Vec<&str> = entries.iter().map(|e| e.kind()).collect();
    assert_eq!(kinds, ["tool.call", "task.end"]);
    assert_eq!(entries[0].seq, 2);
    assert!(
        !entries[0].raw.contains("sk-secret-value-123"),
        "{}",
        entries[0].raw
    );
    assert!(entries[0].raw.contains("[REDACTED"), "{}", entries[0].raw);
});

conformance!(a_reopened_log_continues_the_chain, |db| {
    let db = Arc::new(db);
    let k = key(&db);
    let (db2, k2) = (db.clone(), k.clone());
    let source = blocking(move || {
        let (log, _) = open(&db2, &k2, true);
        log.append("a", json!({})).unwrap();
        drop(log);
        let (log, source) = open(&db2, &k2, false);
        assert!(log.is_anchored());
        assert_eq!(log.append("b", json!({})).unwrap(), 3);
        source
    })
    .await;
    let r = blocking(move || source.verify()).await.unwrap();
    assert_eq!((r.lines, r.anchored), (3, Some(3)));
});

conformance!(an_edited_line_is_detected, |db| {
    let db = Arc::new(db);
    let k = key(&db);
    let (db2, k2) = (db.clone(), k.clone());
    let source = blocking(move || {
        let (log, source) = open(&db2, &k2, true);
        for i in 0..5 {
            log.append("tool.call", json!({"i": i, "decision": "deny"}))
                .unwrap();
        }
        source
    })
    .await;
    tamper(&db, |lines| {
        lines[2] = lines[2].replace("\"deny\"", "\"allow\"");
    })
    .await;
    let why = tampered(blocking(move || source.verify()).await);
    assert!(why.contains("line 3") && why.contains("edited"), "{why}");
});

conformance!(a_removed_tail_is_detected_and_never_laundered, |db| {
    let db = Arc::new(db);
    let k = key(&db);
    let (db2, k2) = (db.clone(), k.clone());
    let (log, source) = blocking(move || {
        let (log, source) = open(&db2, &k2, true);
        for i in 0..5 {
            log.append("tool.call", json!({"i": i})).unwrap();
        }
        (log, source)
    })
    .await;
    tamper(&db, |lines| lines.truncate(3)).await;
    let s2 = source.clone();
    tampered(blocking(move || s2.verify()).await);
    // The running writer appends on: the log must not become valid again.
    blocking(move || {
        log.append("after", json!({})).unwrap();
        drop(log);
    })
    .await;
    let s2 = source.clone();
    tampered(blocking(move || s2.verify()).await);
    // Nor after a restart of the writer.
    let (db2, k2) = (db.clone(), k.clone());
    blocking(move || {
        let (log, _) = open(&db2, &k2, false);
        log.append("restart", json!({})).unwrap();
    })
    .await;
    tampered(blocking(move || source.verify()).await);
});

conformance!(a_recomputed_chain_does_not_match_the_anchor, |db| {
    let db = Arc::new(db);
    let k = key(&db);
    let (db2, k2) = (db.clone(), k.clone());
    let source = blocking(move || {
        let (log, source) = open(&db2, &k2, true);
        for i in 0..4 {
            log.append("tool.call", json!({"i": i, "decision": "deny"}))
                .unwrap();
        }
        source
    })
    .await;
    // Rewrite every line with a recomputed chain, as someone who knows the format would.
    tamper(&db, |lines| {
        let pending: Vec<pincer_audit::Pending> = lines
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let mut event = v["event"].clone();
                if event["decision"] == "deny" {
                    event["decision"] = "allow".into();
                }
                pincer_audit::Pending {
                    ts: v["ts"].as_str().unwrap().to_owned(),
                    event,
                }
            })
            .collect();
        *lines = pincer_audit::chain(0, pincer_audit::GENESIS, &pending)
            .into_iter()
            .map(|c| c.line)
            .collect();
    })
    .await;
    let why = tampered(blocking(move || source.verify()).await);
    assert!(why.contains("hash"), "{why}");
});

/// Postgres only: the table refuses updates, deletes and truncation from Pincer's own role.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_chain_is_append_only() {
    let Some(db) = Db::postgres().await else {
        return;
    };
    let k = key(&db);
    let (log, _) = open(&db, &k, true);
    blocking(move || log.append("tool.call", json!({})).unwrap()).await;
    let (client, conn) = pg_config(&db).connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    for sql in [
        "UPDATE audit_lines SET line = 'x'",
        "DELETE FROM audit_lines",
        "TRUNCATE audit_lines",
    ] {
        let e = client.batch_execute(sql).await.unwrap_err();
        assert!(format!("{e:?}").contains("append-only"), "{sql}: {e:?}");
    }
}

/// Postgres only: a node whose key differs from the deployment's is refused at open, with what
/// to do; a checkpoint edited without the key fails verification.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_key_is_refused_and_a_forged_checkpoint_is_detected() {
    let Some(db) = Db::postgres().await else {
        return;
    };
    let db = Arc::new(db);
    let k = key(&db);
    let (db2, k2) = (db.clone(), k.clone());
    let source = blocking(move || {
        let (log, source) = open(&db2, &k2, true);
        log.append("a", json!({})).unwrap();
        log.append("b", json!({})).unwrap();
        source
    })
    .await;
    let other = key(&db);
    let db2 = db.clone();
    let e = blocking(move || pg_chain(&db2, Some((other, true))).unwrap_err()).await;
    let m = e.to_string();
    assert!(
        m.contains("secrets/audit.key") && m.contains(&k.id()),
        "{m}"
    );
    // The checkpoint moved back to line 1 (with line 2 removed) by someone without the key.
    as_attacker(
        &db,
        "DELETE FROM audit_lines WHERE seq > 2; UPDATE audit_checkpoint SET seq = 2, hash = (SELECT hash FROM audit_lines WHERE seq = 2), mac = repeat('0', 64)",
    )
    .await;
    let why = tampered(blocking(move || source.verify()).await);
    assert!(why.contains("signature"), "{why}");
}
