//! Issue 23, part 2 (D10): the encrypted secret store — set from stdin, used through a
//! `secret:NAME` reference, never in the file, the audit log or the model's context; rotation,
//! a wrong key and a missing reference are clear.

use pincer_testkit::{FakeLlm, Reply};
use serde_json::json;

use super::common::*;

const VALUE: &str = "sk-stored-7d1e9c44b0a2f5";

fn auth(llm: &FakeLlm, i: usize) -> String {
    llm.requests()[i]
        .headers
        .get("authorization")
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_stored_secret_is_used_by_reference_and_never_shown() {
    let llm = FakeLlm::start(vec![
        Reply::text("first"),
        Reply::tool_call("fs_read", json!({"path": "leak.txt"})),
        Reply::text("read it"),
        Reply::text("after rotation"),
    ])
    .await
    .unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    let out = home
        .run(&["secrets", "set", "openai"], &format!("{VALUE}\n"))
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("secret:openai"), "{}", stderr(&out));
    set(&home, "providers.default.api_key_env", "secret:openai").await;

    // Only ciphertext on disk, 0600.
    let sealed = std::fs::read(home.path().join("secrets/secrets.enc")).unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains(VALUE));
    let out = home.run(&["secrets", "list", "--json"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(listed["secrets"][0]["name"], "openai");
    assert_eq!(
        listed["secrets"][0]["used_by"][0],
        "providers.default.api_key_env"
    );
    assert!(!stdout(&out).contains(VALUE));

    // Used: the provider gets it as its bearer token.
    let out = home.run(&["ask", "hello"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(auth(&llm, 0), format!("Bearer {VALUE}"));

    // A workspace file holding the value is read by a tool: the model never sees the value.
    std::fs::write(
        home.path().join("workspaces/main/leak.txt"),
        format!("the key is {VALUE} ok"),
    )
    .unwrap();
    let out = home.run(&["ask", "read leak.txt"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sent = llm.requests()[2].body.to_string();
    assert!(sent.contains("[REDACTED:secret]"), "{sent}");
    assert!(!sent.contains(VALUE), "the model saw the secret");

    // Rotation re-seals; the reference keeps working.
    let key_before = std::fs::read(home.path().join("secrets/secrets.key")).unwrap();
    let out = home.run(&["secrets", "rotate-key"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_ne!(
        std::fs::read(home.path().join("secrets/secrets.key")).unwrap(),
        key_before
    );
    let out = home.run(&["ask", "again"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(auth(&llm, 3), format!("Bearer {VALUE}"));

    // The audit log records each change by name, never the value, and verifies.
    let mut log = String::new();
    for f in std::fs::read_dir(home.path().join("audit")).unwrap() {
        log += &std::fs::read_to_string(f.unwrap().path()).unwrap_or_default();
    }
    assert!(!log.contains(VALUE), "the audit log holds the secret");
    for kind in ["secret.set", "secret.rotate_key"] {
        assert!(
            log.contains(&format!("\"type\":\"{kind}\"")),
            "{kind} not audited"
        );
    }
    assert!(log.contains("\"name\":\"openai\""));
    let out = home.run(&["audit", "verify"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Run bundles and stored history hold no copy either.
    for run in home.runs() {
        for f in std::fs::read_dir(&run).unwrap() {
            let text = std::fs::read_to_string(f.unwrap().path()).unwrap_or_default();
            assert!(!text.contains(VALUE), "a run bundle holds the secret");
        }
    }
}

#[tokio::test]
async fn a_wrong_key_a_missing_secret_and_bad_input_are_clear_errors() {
    let llm = FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    // No value: refused, nothing stored.
    let out = home.run(&["secrets", "set", "empty"], "").await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no value"), "{}", stderr(&out));
    let out = home.run(&["secrets", "set", "bad name"], "x").await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(!home.path().join("secrets/secrets.enc").exists());

    // A reference to a secret that is not stored: listed as missing, and `ask` names it.
    set(&home, "providers.default.api_key_env", "secret:nothere").await;
    let out = home.run(&["secrets", "list"], "").await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("MISSING nothere"), "{}", stdout(&out));
    let out = home.run(&["ask", "hi"], "").await;
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("secret:nothere"), "{}", stderr(&out));
    assert!(llm.requests().is_empty(), "nothing was sent without a key");

    // A store opened with another key: the error says so; nothing is sent.
    let out = home
        .run(&["secrets", "set", "nothere"], "value-123456")
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let other = "ab".repeat(32);
    let out = home
        .run_with_env(&["ask", "hi"], &[("PINCER_SECRETS_KEY", &other)])
        .await;
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("sealed with key"), "{}", stderr(&out));
    assert!(llm.requests().is_empty());
    let out = home
        .run_with_env(&["secrets", "list"], &[("PINCER_SECRETS_KEY", "short")])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("64 hex digits"), "{}", stderr(&out));

    // Config never takes the value itself, nor passes the key into the sandbox.
    let out = home
        .run(
            &[
                "config",
                "set",
                "providers.default.api_key_env",
                "sk-live-abcdef",
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("secret:NAME"), "{}", stderr(&out));
    let out = home
        .run(
            &[
                "config",
                "set",
                "exec.env_allow",
                r#"["PINCER_SECRETS_KEY"]"#,
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
