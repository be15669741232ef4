//! Issue 23, part 3 (H6): retention — `pincer gc [--dry-run]` and the daily pass of `pincer
//! serve` remove old run bundles, archive old audit days (compressed, the chain still
//! verifying across them) and never touch what is recent.

use std::time::{Duration, Instant, SystemTime};

use pincer_audit::{GENESIS, Pending};
use pincer_testkit::{FakeLlm, Reply};

use super::common::*;

/// Makes `dir` look last changed `days` ago.
fn age(dir: &std::path::Path, days: u64) {
    std::fs::File::open(dir)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(days * 24 * 3600))
        .unwrap();
}

fn gc_json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out)).unwrap_or_else(|e| panic!("{e}: {}", stderr(out)))
}

#[tokio::test]
async fn gc_removes_old_runs_and_archives_old_audit_days_keeping_the_chain() {
    let llm = FakeLlm::start(vec![Reply::text("old"), Reply::text("new")])
        .await
        .unwrap();
    // A home whose audit log began on two earlier days (written as Pincer writes lines).
    let home = Home::new();
    let audit = home.path().join("audit");
    std::fs::create_dir_all(&audit).unwrap();
    let mut seq = 0;
    let mut hash = GENESIS.to_owned();
    for day in ["2026-10-01", "2026-10-02"] {
        let pending: Vec<Pending> = (0..3)
            .map(|i| Pending {
                ts: format!("{day}T0{i}:00:00.000000Z"),
                event: serde_json::json!({"type": "config.set", "key": "k", "i": i}),
            })
            .collect();
        let lines = pincer_audit::chain(seq, &hash, &pending);
        let mut text = String::new();
        for l in &lines {
            text.push_str(&l.line);
            text.push('\n');
        }
        std::fs::write(audit.join(format!("{day}.jsonl")), text).unwrap();
        let last = lines.last().unwrap();
        (seq, hash) = (last.seq, last.hash.clone());
    }
    std::fs::write(
        audit.join("HEAD"),
        serde_json::json!({"seq": seq, "hash": hash}).to_string(),
    )
    .unwrap();
    home.init(&llm.base_url()).await;
    for msg in ["first", "second"] {
        let out = home.run(&["ask", msg], "").await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let runs = home.runs();
    assert_eq!(runs.len(), 2);
    age(&runs[0], 45);
    let before = home.run(&["audit", "verify", "--json"], "").await;
    assert_eq!(before.status.code(), Some(0), "{}", stderr(&before));
    let lines = gc_json(&before)["lines"].as_u64().unwrap();

    // A dry run reports and changes nothing.
    let out = home.run(&["gc", "--dry-run", "--json"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dry = gc_json(&out);
    assert_eq!(dry["runs"]["removed"], 1, "{dry}");
    assert_eq!(
        dry["audit"]["days"],
        serde_json::json!(["2026-10-01", "2026-10-02"])
    );
    assert!(runs[0].exists() && audit.join("2026-10-01.jsonl").exists());

    let out = home.run(&["gc", "--json"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let done = gc_json(&out);
    assert_eq!(done["runs"], dry["runs"]);
    assert_eq!(done["audit"]["lines"], 6);
    assert!(!runs[0].exists(), "the old bundle is gone");
    assert!(runs[1].exists(), "the recent one stays");
    assert!(!audit.join("2026-10-01.jsonl").exists());
    assert!(audit.join("archive/2026-10-01.jsonl.gz").exists());

    // The chain verifies across the archives (plus the gc's own audit record).
    let after = home.run(&["audit", "verify", "--json"], "").await;
    assert_eq!(after.status.code(), Some(0), "{}", stderr(&after));
    let v = gc_json(&after);
    assert_eq!(v["lines"].as_u64().unwrap(), lines + 1);
    assert_eq!(v["archived"], 6);
    let gc_events = audit_of_type(&home, "retention.gc").await;
    assert_eq!(gc_events.len(), 1);
    assert_eq!(gc_events[0]["runs_removed"], 1);

    // A log that does not verify is never archived: gc says so and fails.
    tamper_day_file(&home, "\"type\":\"", "\"type\":\"x");
    let out = home.run(&["gc"], "").await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("not archived"), "{}", stderr(&out));
}

#[tokio::test]
async fn serve_runs_the_retention_pass_itself() {
    let llm = FakeLlm::start(vec![Reply::text("a")]).await.unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    let out = home.run(&["ask", "hello"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let run = home.runs().pop().unwrap();
    age(&run, 60);
    let (mut child, _addr) = serve_at(&home.path(), &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while run.exists() {
        assert!(Instant::now() < deadline, "serve never pruned the old run");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(term(&mut child), Some(0));
    let events = audit_of_type(&home, "retention.gc").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["runs_removed"], 1);
}

#[tokio::test]
async fn retention_settings_are_checked() {
    let llm = FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    let out = home
        .run(&["config", "set", "retention.audit_archive_days", "1"], "")
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("retention.audit_archive_days"),
        "{}",
        stderr(&out)
    );
    set(&home, "retention.runs_days", "0").await;
    let out = home.run(&["gc", "--dry-run"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("would remove 0"), "{}", stdout(&out));
}
