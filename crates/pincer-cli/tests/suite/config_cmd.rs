//! Broken and edited configuration through the CLI.

use pincer_testkit::FakeLlm;

use super::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_config_runs_on_last_known_good_with_a_warning() {
    let server = FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&server.base_url()).await;
    let path = home.path().join("config.toml");
    let good = std::fs::read_to_string(&path).unwrap();
    // Truncated inside the agent's table (a bare key without a value): never valid, wherever
    // the other tables put that point.
    let cut = good.find("model = ").unwrap() + "mod".len();
    for broken in [
        &good[..cut],
        "version = 1\n[agents.main\n",
        "\u{0}\u{1}binary",
        "",
    ] {
        std::fs::write(&path, broken).unwrap();
        let out = home.run(&["ask", "hi"], "").await;
        assert_eq!(out.status.code(), Some(0), "{broken:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("last-known-good"), "{}", stderr(&out));
        assert_eq!(stdout(&out), "echo: hi\n");
        let v = home.run(&["config", "validate"], "").await;
        assert_eq!(v.status.code(), Some(2));
        assert!(stderr(&v).contains("config.toml:"), "{}", stderr(&v));
    }
    // Each fallback is in the audit log, after the init that wrote the config.
    let out = home
        .run(&["audit", "search", "--type", "config", "--json"], "")
        .await;
    let kinds: Vec<String> = stdout(&out)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds[0], "config.init");
    assert!(
        kinds.iter().filter(|k| *k == "config.fallback").count() >= 4,
        "{kinds:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_last_good_a_broken_config_names_file_line_and_key() {
    let server = FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&server.base_url()).await;
    std::fs::remove_file(home.path().join("config.last-good.toml")).unwrap();
    let path = home.path().join("config.toml");
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        good.replace("max_steps = 16", "max_steps = 16\nrun_shell = true"),
    )
    .unwrap();
    let out = home.run(&["ask", "hi"], "").await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let line = good.lines().position(|l| l == "max_steps = 16").unwrap() + 2;
    assert!(err.contains(&format!("config.toml:{line}:")), "{err}");
    assert!(err.contains("agents.main.run_shell"), "{err}");
    assert!(!err.contains("panicked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_set_validates_before_writing() {
    let server = FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&server.base_url()).await;
    let path = home.path().join("config.toml");
    let before = std::fs::read_to_string(&path).unwrap();
    for (key, value) in [
        ("gateway.bind", "0.0.0.0:80"),
        ("security.exec", "yolo"),
        ("agents.main.nope", "1"),
    ] {
        let out = home.run(&["config", "set", key, value], "").await;
        assert_eq!(out.status.code(), Some(2), "{key}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            before,
            "{key} changed the file"
        );
    }
    let out = home
        .run(&["config", "set", "agents.main.max_steps", "4"], "")
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = home
        .run(&["config", "get", "agents.main.max_steps"], "")
        .await;
    assert_eq!(stdout(&out), "4\n");
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("# Pincer configuration"),
        "comments kept"
    );
    let out = home.run(&["config", "path"], "").await;
    assert_eq!(stdout(&out).trim(), path.to_str().unwrap());
}

/// Issue 25.6: an IP literal in `security.egress_allow` would be a hole past the private-range
/// blocking; every spelling is refused with the key named, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_allow_refuses_ip_literals_in_any_spelling() {
    let server = FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&server.base_url()).await;
    let before = std::fs::read(home.path().join("config.toml")).unwrap();
    for literal in [
        "169.254.169.254",
        "127.1",
        "0x7f000001",
        "2130706433",
        "[::1]",
    ] {
        let out = home
            .run(
                &[
                    "config",
                    "set",
                    "security.egress_allow",
                    &format!("[\"{literal}\"]"),
                ],
                "",
            )
            .await;
        assert_eq!(out.status.code(), Some(2), "{literal}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("security.egress_allow[0]"),
            "{literal}: {}",
            stderr(&out)
        );
    }
    assert_eq!(
        std::fs::read(home.path().join("config.toml")).unwrap(),
        before
    );
    let out = home
        .run(
            &[
                "config",
                "set",
                "security.egress_allow",
                r#"["hooks.slack.com"]"#,
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
