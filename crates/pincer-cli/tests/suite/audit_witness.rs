//! Issue 23, part 4: the audit chain is anchored outside `audit/` — its end recorded in the
//! state database on every sync, and ed25519-signed checkpoints in an external witness file —
//! and `pincer audit verify` says which agree. The attacks: wiping the log with its anchor and
//! key; replacing everything in the home with a fresh, self-consistent log.

use pincer_testkit::{FakeLlm, Reply};

use super::common::*;

fn rm(home: &Home, rel: &str) {
    let p = home.path().join(rel);
    if p.is_dir() {
        std::fs::remove_dir_all(&p).unwrap();
    } else if p.exists() {
        std::fs::remove_file(&p).unwrap();
    }
}

#[tokio::test]
async fn wiping_the_log_with_its_anchor_and_key_is_caught_by_the_state_database() {
    let llm = FakeLlm::start(vec![Reply::text("one"), Reply::text("two")])
        .await
        .unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    let out = home.run(&["ask", "hello"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = home.run(&["audit", "verify"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("witness: state database") && stdout(&out).contains("agrees at line"),
        "{}",
        stdout(&out)
    );

    // Everything the log and its keyed anchor consist of, gone.
    for p in ["audit", "secrets/audit.key", "secrets/audit.anchor"] {
        rm(&home, p);
    }
    let out = home.run(&["audit", "verify"], "").await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("state database") && stderr(&out).contains("the log holds 0"),
        "{}",
        stderr(&out)
    );

    // Pincer carrying on afterwards does not launder it: the head is left as it was.
    let out = home.run(&["ask", "again"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = home.run(&["audit", "verify", "--json"], "").await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["ok"], false);
    assert!(
        v["path"].as_str().unwrap().contains("state database"),
        "{v}"
    );
    let out = home.run(&["security", "audit", "--json"], "").await;
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
}

#[tokio::test]
async fn a_replaced_home_is_caught_by_the_signed_external_witness() {
    let llm = FakeLlm::start(vec![
        Reply::text("one"),
        Reply::text("two"),
        Reply::text("three"),
    ])
    .await
    .unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    let elsewhere = tempfile::tempdir().unwrap();
    let witness = elsewhere.path().join("witness.jsonl");
    set(&home, "audit.witness_file", witness.to_str().unwrap()).await;
    set(&home, "audit.witness_every_lines", "1").await;
    let out = home.run(&["audit", "witness-key"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let public = stdout(&out).trim().to_owned();
    assert_eq!(public.len(), 64, "{public}");
    set(&home, "audit.witness_public_key", &public).await;
    for msg in ["hello", "more"] {
        let out = home.run(&["ask", msg], "").await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let out = home.run(&["audit", "verify", "--json"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let names: Vec<&str> = v["witnesses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert!(names.iter().any(|n| n.starts_with("witness file")), "{v}");
    assert!(
        v["witnesses"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["agrees_at"].as_u64().is_some_and(|n| n > 1)),
        "{v}"
    );
    let checkpoints = std::fs::read_to_string(&witness).unwrap();
    assert!(checkpoints.contains(&public), "{checkpoints}");

    // An attacker who holds the whole home replaces the log, its anchor and key and the state
    // database with a fresh, self-consistent set — only the witness elsewhere remembers.
    for p in [
        "audit",
        "secrets/audit.key",
        "secrets/audit.anchor",
        "state.db",
    ] {
        rm(&home, p);
    }
    let out = home.run(&["ask", "innocent"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = home.run(&["audit", "verify"], "").await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("witness file"), "{}", stderr(&out));
    // The witness was not appended to over the replaced log.
    assert_eq!(std::fs::read_to_string(&witness).unwrap(), checkpoints);

    // A forged checkpoint (the attacker appends one signed with their own key) is refused.
    let forged = checkpoints
        .lines()
        .last()
        .unwrap()
        .replace(&public, &"ab".repeat(32));
    std::fs::write(&witness, format!("{checkpoints}{forged}\n")).unwrap();
    let out = home.run(&["audit", "verify"], "").await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("another key"), "{}", stderr(&out));
}

#[tokio::test]
async fn a_witness_inside_the_home_is_refused() {
    let llm = FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    let inside = home.path().join("witness.jsonl");
    set(&home, "audit.witness_file", inside.to_str().unwrap()).await;
    let out = home.run(&["ask", "hi"], "").await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("audit.witness_file")
            && stderr(&out).contains("inside the Pincer home"),
        "{}",
        stderr(&out)
    );
    let out = home
        .run(
            &["config", "set", "audit.witness_file", "relative.jsonl"],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
