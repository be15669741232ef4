//! `pincer tokens` through the real binary: shown once, stored hashed, never audited in clear.

use pincer_testkit::FakeLlm;
use serde_json::Value;

use super::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_shown_once_and_never_stored_or_logged() {
    let server = FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&server.base_url()).await;
    let out = home
        .run(
            &[
                "tokens",
                "create",
                "--name",
                "ci",
                "--scopes",
                "tasks:read,tasks:write",
                "--expires",
                "30d",
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let secret = stdout(&out).trim().to_owned();
    assert!(secret.starts_with("pnc_"), "{secret}");
    // Listing shows names and scopes, never the secret.
    let out = home.run(&["tokens", "list", "--json"], "").await;
    let list: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list[0]["name"], "ci");
    assert_eq!(
        list[0]["scopes"],
        serde_json::json!(["tasks:read", "tasks:write"])
    );
    assert!(!stdout(&out).contains(&secret));
    // The secret is nowhere under the home: not in the database, not in the audit log.
    let all = all_bytes(&home.path());
    assert!(!all.windows(secret.len()).any(|w| w == secret.as_bytes()));
    let out = home
        .run(&["audit", "search", "--type", "token.create", "--json"], "")
        .await;
    assert!(stdout(&out).contains("\"ci\""), "{}", stdout(&out));
    // Bad input is a usage error naming the problem.
    let out = home
        .run(
            &[
                "tokens",
                "create",
                "--name",
                "x",
                "--scopes",
                "tasks:everything",
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("unknown scope"), "{}", stderr(&out));
    let out = home
        .run(
            &["tokens", "create", "--name", "ci", "--scopes", "admin"],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // Rotate prints a different secret; revoke ends it.
    let out = home.run(&["tokens", "rotate", "ci"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_ne!(stdout(&out).trim(), secret);
    let out = home.run(&["tokens", "revoke", "ci"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = home.run(&["tokens", "list"], "").await;
    assert!(stdout(&out).contains("revoked"), "{}", stdout(&out));
    let out = home.run(&["tokens", "revoke", "nope"], "").await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// Issue 26.6: `pincer tokens create --help` names every scope there is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_create_help_lists_every_scope() {
    let home = Home::new();
    let out = home.run(&["tokens", "create", "--help"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let help = stdout(&out);
    for scope in pincer_types::Scope::ALL {
        assert!(
            help.contains(scope.as_str()),
            "{} missing: {help}",
            scope.as_str()
        );
    }
}
