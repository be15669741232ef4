//! Memory files and tools (issue 16, part 3): notes go to today's file or a section of
//! MEMORY.md, search finds them, forgetting needs approval, and nothing outside `memory/` —
//! not by name, not through a symlink — can be read or written.

use serde_json::{Value, json};

use super::common::*;
use super::tools_audit::call;

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

/// Search through the index (issue 16, part 4): keyword and — with an embeddings server —
/// semantic matches fused; edits made in an editor are indexed at the next search; a bad file is
/// skipped with a note; with the embeddings server down, keyword results come back alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_search_finds_notes_by_keyword_and_meaning() {
    let llm = pincer_testkit::FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    let config = home.path().join("config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!(
            "{text}\n[memory]\nembeddings_base_url = \"{}\"\nembeddings_model = \"fake-embed\"\n",
            llm.base_url()
        ),
    )
    .unwrap();
    let mem = home.path().join("agents/main/memory");
    std::fs::write(
        mem.join("MEMORY.md"),
        "# Memory\n\n## Facts\n- The user's code word is marlin\n- Their automobile is a blue Volvo\n",
    )
    .unwrap();
    std::fs::write(
        mem.join("2026-11-30.md"),
        "# 2026-11-30\n\n- Booked the physician for Tuesday\n- Walked the puppy twice\n",
    )
    .unwrap();
    let search = |q: &'static str| {
        let home = &home;
        async move {
            let out = home.run(&["memory", "search", "--json", q], "").await;
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            serde_json::from_str::<Value>(&stdout(&out)).unwrap()
        }
    };
    // Keyword.
    let v = search("code word").await;
    assert_eq!(
        v["results"][0]["snippet"], "- The user's code word is marlin",
        "{v}"
    );
    assert_eq!(v["results"][0]["file"], "MEMORY.md");
    // Meaning: no word in common with the note.
    let v = search("which car do they drive").await;
    assert_eq!(
        v["results"][0]["snippet"], "- Their automobile is a blue Volvo",
        "{v}"
    );
    let v = search("dentist appointment").await;
    assert_eq!(
        v["results"][0]["snippet"], "- Booked the physician for Tuesday",
        "{v}"
    );
    assert_eq!(v["results"][0]["date"], "2026-11-30", "{v}");
    // Indexed once: a search with nothing changed embeds only the query.
    let before = llm.embedded().len();
    search("marlin").await;
    assert_eq!(
        llm.embedded().len(),
        before + 1,
        "files were embedded again"
    );
    // A human edits a note in an editor; the next search sees it. A file that is not UTF-8 is
    // skipped, with a note.
    std::fs::write(
        mem.join("2026-11-30.md"),
        "- Walked the canine to the park\n",
    )
    .unwrap();
    std::fs::write(mem.join("2026-12-01.md"), b"- broken \xff\xfe bytes\n").unwrap();
    let v = search("dog").await;
    assert_eq!(
        v["results"][0]["snippet"], "- Walked the canine to the park",
        "{v}"
    );
    assert!(
        !v.to_string().contains("physician"),
        "a removed note is still indexed: {v}"
    );
    assert!(v["notes"].to_string().contains("2026-12-01.md"), "{v}");
    // The embeddings server goes down: keyword results alone, and a note saying so.
    llm.set_embeddings_down(true);
    let v = search("marlin").await;
    assert_eq!(
        v["results"][0]["snippet"], "- The user's code word is marlin",
        "{v}"
    );
    assert!(
        v["notes"].to_string().contains("keyword results only"),
        "{v}"
    );
    llm.set_embeddings_down(false);
    // A rebuild from scratch gives the same answers.
    let out = home.run(&["memory", "reindex"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = search("which car do they drive").await;
    assert_eq!(
        v["results"][0]["snippet"], "- Their automobile is a blue Volvo",
        "{v}"
    );
}

/// Daily notes follow the agent's time zone; an unknown zone is a config error naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_notes_follow_the_agents_time_zone() {
    let llm = pincer_testkit::FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    let out = home
        .run(
            &["config", "set", "agents.main.timezone", "Mars/Olympus"],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("agents.main.timezone"),
        "{}",
        stderr(&out)
    );
    for tz in ["Pacific/Kiritimati", "Pacific/Pago_Pago"] {
        set(&home, "agents.main.timezone", tz).await;
        let out = call(
            &home,
            "memory.append",
            json!({"text": format!("noted in {tz}")}),
            false,
        )
        .await;
        result(&out);
        let day = pincer_scheduler::today_in(tz).unwrap();
        let file = home.path().join(format!("agents/main/memory/{day}.md"));
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            text.contains(&format!("noted in {tz}")),
            "{}: {text}",
            file.display()
        );
    }
}

/// Notes appended at the same moment by separate processes are all kept (the memory directory
/// is locked for each read-modify-write).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_from_separate_processes_all_survive() {
    let llm = pincer_testkit::FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    let path = home.path();
    let runs: Vec<_> = (0..12)
        .map(|i| {
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                let args =
                    json!({"text": format!("fact number {i}"), "section": "Facts"}).to_string();
                let argv: Vec<String> = ["tools", "call", "memory.append", "--args", &args]
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect();
                run_blocking(&path, &argv, "", &[])
            })
        })
        .collect();
    for r in runs {
        result(&r.await.unwrap());
    }
    let long = std::fs::read_to_string(home.path().join("agents/main/memory/MEMORY.md")).unwrap();
    for i in 0..12 {
        assert!(
            long.contains(&format!("- fact number {i}\n")),
            "note {i} lost:\n{long}"
        );
    }
}
