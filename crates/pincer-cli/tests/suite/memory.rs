//! Memory files and tools (issue 16, part 3): notes go to today's file or a section of
//! MEMORY.md, search finds them, forgetting needs approval, and nothing outside `memory/` —
//! not by name, not through a symlink — can be read or written.

use serde_json::{Value, json};

use super::common::*;

async fn call(home: &Home, tool: &str, args: Value, approve: bool) -> std::process::Output {
    let args = args.to_string();
    let mut argv = vec!["tools", "call", tool, "--args", &args];
    if approve {
        argv.push("--approve");
    }
    home.run(&argv, "").await
}

fn result(out: &std::process::Output) -> Value {
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(out), stderr(out));
    let text = stdout(out);
    serde_json::from_str(text.trim()).unwrap_or_else(|_| json!({"raw": text}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_are_written_searched_and_forgotten_inside_memory_only() {
    let llm = pincer_testkit::FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    let mem = home.path().join("agents/main/memory");
    let out = call(
        &home,
        "memory.append",
        json!({"text": "The user's code word is marlin", "section": "Facts"}),
        false,
    )
    .await;
    result(&out);
    let out = call(
        &home,
        "memory.append",
        json!({"text": "Discussed the garden plan"}),
        false,
    )
    .await;
    result(&out);
    let long = std::fs::read_to_string(mem.join("MEMORY.md")).unwrap();
    assert!(
        long.contains("## Facts\n- The user's code word is marlin"),
        "{long}"
    );
    let today = chrono::Utc::now().format("%Y-%m-%d.md").to_string();
    assert!(
        std::fs::read_to_string(mem.join(&today))
            .unwrap()
            .contains("garden plan")
    );
    // Search ranks the right note first, with its file and line.
    let v = result(&call(&home, "memory.search", json!({"query": "code word"}), false).await);
    let text = v.to_string();
    assert!(
        text.contains("marlin") && text.contains("MEMORY.md"),
        "{text}"
    );
    // The operator's view: the same search and files.
    let out = home.run(&["memory", "search", "code", "word"], "").await;
    assert!(stdout(&out).starts_with("MEMORY.md:"), "{}", stdout(&out));
    let out = home.run(&["memory", "show", "--list"], "").await;
    assert!(
        stdout(&out).contains("MEMORY.md") && stdout(&out).contains(&today),
        "{}",
        stdout(&out)
    );
    let out = home.run(&["memory", "show", "today"], "").await;
    assert!(stdout(&out).contains("garden plan"), "{}", stdout(&out));
    let out = home.run(&["memory", "show", "../config.toml"], "").await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    // Forgetting is L2: refused without approval, done with it.
    let out = call(&home, "memory.forget", json!({"text": "marlin"}), false).await;
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        std::fs::read_to_string(mem.join("MEMORY.md"))
            .unwrap()
            .contains("marlin")
    );
    result(&call(&home, "memory.forget", json!({"text": "marlin"}), true).await);
    assert!(
        !std::fs::read_to_string(mem.join("MEMORY.md"))
            .unwrap()
            .contains("marlin")
    );
    // Attacks: another file by name, by traversal, and a memory file replaced by a symlink to
    // the config.
    for file in [
        "../../../config.toml",
        "notes.txt",
        "/etc/passwd",
        "2026-13-45.md",
    ] {
        let out = call(&home, "memory.get", json!({"file": file}), false).await;
        assert_ne!(out.status.code(), Some(0), "{file}: {}", stdout(&out));
    }
    std::os::unix::fs::symlink(home.path().join("config.toml"), mem.join("2020-01-01.md")).unwrap();
    let out = call(&home, "memory.get", json!({"file": "2020-01-01.md"}), false).await;
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        !stdout(&out).contains("[providers"),
        "the link was followed: {}",
        stdout(&out)
    );
    let out = call(
        &home,
        "memory.forget",
        json!({"file": "2020-01-01.md", "text": "providers"}),
        true,
    )
    .await;
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        std::fs::read_to_string(home.path().join("config.toml"))
            .unwrap()
            .contains("[providers")
    );
    // Search skips the link (and says so) instead of following it.
    let v = result(&call(&home, "memory.search", json!({"query": "providers"}), false).await);
    assert!(!v.to_string().contains("base_url"), "{v}");
}
