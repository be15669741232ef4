//! `pincer security audit` (issue 23, D12): a fresh home reports nothing; a deliberately
//! weakened one reports each weakness with its id and severity, and the exit code follows the
//! worst.

use pincer_store::TokenStore as _;
use pincer_testkit::FakeLlm;
use serde_json::Value;

use super::common::*;

async fn audit(home: &Home) -> (Option<i32>, Vec<Value>) {
    let out = home.run(&["security", "audit", "--json"], "").await;
    let checks: Vec<Value> = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {} {}", stdout(&out), stderr(&out)));
    (out.status.code(), checks)
}

fn failing(checks: &[Value]) -> Vec<(String, String)> {
    checks
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_home_is_clean_and_a_weakened_one_reports_every_weakness() {
    let llm = FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    // The provider key moves into the encrypted store (a key in a plain variable is reported).
    let out = home.run(&["secrets", "set", "openai"], KEY).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    set(&home, "providers.default.api_key_env", "secret:openai").await;
    // Something in the audit log, so the chain and its anchor are checked.
    let out = home.run(&["ask", "hello"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (code, checks) = audit(&home).await;
    assert_eq!(failing(&checks), [] as [(String, String); 0], "{checks:#?}");
    assert_eq!(code, Some(0));
    assert!(checks.len() >= 15, "{checks:#?}");

    // Weaken it, one class at a time.
    for (k, v) in [
        ("gateway.allow_non_loopback", "true"),
        ("gateway.bind", "\"0.0.0.0:8088\""),
        ("governance.bypass", "allowed"),
        ("security.exec", "sandboxed"),
        ("security.network", "allowlist"),
        ("security.egress_allow", r#"["*.github.io"]"#),
        ("agents.main.exec_allow", r#"["bash"]"#),
        ("agents.main.approval_mode", "trusted"),
        ("channels.telegram.enabled", "false"),
        ("channels.telegram.token_env", "secret:tg"),
        ("providers.default.api_key_envs", r#"["PINCER_TEST_K2"]"#),
        ("channels.telegram.agent", "main"),
        ("channels.telegram.dm_policy", "open"),
        ("mcp.servers.files.command", "node"),
        ("mcp.servers.files.enabled", "true"),
    ] {
        set(&home, k, v).await;
    }
    {
        let store = pincer_store::SqliteStore::open(&home.path().join("state.db")).unwrap();
        let long_ago = chrono::Utc::now() - chrono::Duration::days(120);
        store
            .create_token(
                "old-admin",
                "owner",
                &[pincer_types::Scope::Admin],
                None,
                long_ago,
            )
            .await
            .unwrap();
    }
    let skill = tempfile::tempdir().unwrap();
    std::fs::write(
        skill.path().join("SKILL.md"),
        "---\nname: notes\ndescription: Notes.\npermissions:\n  tools: [fs.read]\n---\nRead notes with fs.read.\n",
    )
    .unwrap();
    for args in [vec![
        "skills",
        "install",
        skill.path().to_str().unwrap(),
        "--approve",
    ]] {
        let out = home.run(&args, "").await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    std::fs::write(home.path().join("skills/notes/extra.md"), "added later").unwrap();
    let out = home.run(&["skills", "rescan", "notes"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(
        home.path().join("config.toml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();

    let (code, checks) = audit(&home).await;
    let got = failing(&checks);
    for (id, severity) in [
        ("gateway.public_bind", "critical"),
        ("governance.bypass_allowed", "medium"),
        ("network.wildcard", "high"),
        ("exec.broad_allowlist", "medium"),
        ("agents.trusted_mode", "low"),
        ("channels.dm_open", "high"),
        ("mcp.unapproved", "medium"),
        ("tokens.admin_unused", "medium"),
        ("tokens.no_expiry", "low"),
        ("skills.changed", "high"),
        ("home.permissions", "high"),
        ("secrets.plain_env", "low"),
        ("secrets.store", "high"),
    ] {
        assert!(
            got.contains(&(id.to_owned(), severity.to_owned())),
            "{id} ({severity}) not reported: {got:?}"
        );
    }
    assert_eq!(code, Some(3), "a critical weakness: exit 3");

    // A tampered audit log is critical too.
    tamper_day_file(&home, "\"run.start\"", "\"run.START\"");
    let (_, checks) = audit(&home).await;
    assert!(failing(&checks).contains(&("audit.chain".to_owned(), "critical".to_owned())));
}
