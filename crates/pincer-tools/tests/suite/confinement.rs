//! Attacks on the file tools' confinement. Each test performs the attack for real and checks
//! both the refusal and that nothing outside the workspace was read or changed.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;

use pincer_tools::ToolError;
use pincer_tools::fs::{Covers, ProtectedPath, Protection};
use pincer_types::RiskTier;
use serde_json::json;

use super::common::{Env, forbidden};

struct Dirs {
    _tmp: tempfile::TempDir,
    ws: std::path::PathBuf,
    out: std::path::PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let out = tmp.path().join("outside");
    fs::create_dir_all(&ws).unwrap();
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("secret.txt"), "TOP SECRET\n").unwrap();
    Dirs { _tmp: tmp, ws, out }
}

#[tokio::test]
async fn reads_and_writes_inside_the_workspace() {
    let d = dirs();
    let env = Env::new(&d.ws);
    let w = env
        .plan(
            "fs.write",
            json!({"path": "a/b/c.txt", "content": "one\ntwo\nthree\n"}),
        )
        .unwrap();
    assert_eq!(w.tier, RiskTier::L1Mutating);
    env.exec(w).await.unwrap();
    assert_eq!(
        fs::read_to_string(d.ws.join("a/b/c.txt")).unwrap(),
        "one\ntwo\nthree\n"
    );
    let r = env
        .call(
            "fs.read",
            json!({"path": "./a/b/c.txt", "offset": 2, "limit": 1}),
        )
        .await
        .unwrap();
    assert_eq!(r["content"], "two");
    assert_eq!(r["total_lines"], 3);
    let over = env
        .plan("fs.write", json!({"path": "a/b/c.txt", "content": "new"}))
        .unwrap();
    assert_eq!(
        over.tier,
        RiskTier::L2Destructive,
        "overwrite raises the tier"
    );
    env.exec(over).await.unwrap();
    let e = env
        .call(
            "fs.edit",
            json!({"path": "a/b/c.txt", "old_string": "new", "new_string": "newer"}),
        )
        .await
        .unwrap();
    assert_eq!(e["replacements"], 1);
    assert_eq!(fs::read_to_string(d.ws.join("a/b/c.txt")).unwrap(), "newer");
    let l = env.call("fs.list", json!({"depth": 3})).await.unwrap();
    let paths: Vec<&str> = l["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["a", "a/b", "a/b/c.txt"]);
}

#[tokio::test]
async fn dot_dot_absolute_nul_and_long_paths_are_refused() {
    let d = dirs();
    let env = Env::new(&d.ws);
    for path in [
        "../outside/secret.txt",
        "a/../../outside/secret.txt",
        d.out.join("secret.txt").to_str().unwrap(),
        "~/.ssh/id_rsa",
        "a\0b",
    ] {
        forbidden(env.plan("fs.read", json!({"path": path})));
        forbidden(env.plan("fs.write", json!({"path": path, "content": "x"})));
    }
    let long = "d/".repeat(2100) + "f";
    forbidden(env.plan("fs.write", json!({"path": long, "content": "x"})));
    forbidden(env.plan("fs.write", json!({"path": "x".repeat(300), "content": "x"})));
    assert_eq!(
        fs::read_to_string(d.out.join("secret.txt")).unwrap(),
        "TOP SECRET\n"
    );
}

#[tokio::test]
async fn symlinks_out_of_the_workspace_are_never_followed() {
    let d = dirs();
    symlink(&d.out, d.ws.join("link")).unwrap();
    symlink(d.out.join("secret.txt"), d.ws.join("file_link")).unwrap();
    // A chain: hop1 -> hop2 -> outside.
    symlink(d.ws.join("hop2"), d.ws.join("hop1")).unwrap();
    symlink(d.out.join("secret.txt"), d.ws.join("hop2")).unwrap();
    // Dangling: points at a file that does not exist yet, outside.
    symlink(d.out.join("created.txt"), d.ws.join("dangling")).unwrap();
    let env = Env::new(&d.ws);
    for path in ["link/secret.txt", "file_link", "hop1", "hop2"] {
        forbidden(env.plan("fs.read", json!({"path": path})));
    }
    forbidden(env.plan("fs.write", json!({"path": "link/new.txt", "content": "x"})));
    forbidden(env.plan("fs.write", json!({"path": "file_link", "content": "pwned"})));
    forbidden(env.plan("fs.write", json!({"path": "dangling", "content": "pwned"})));
    forbidden(env.plan("fs.list", json!({"path": "link"})));
    forbidden(env.plan(
        "apply_patch",
        json!({"patch": "*** Begin Patch\n*** Add File: link/p.txt\n+x\n*** End Patch"}),
    ));
    assert!(!d.out.join("created.txt").exists());
    assert!(!d.out.join("new.txt").exists());
    assert!(!d.out.join("p.txt").exists());
    assert_eq!(
        fs::read_to_string(d.out.join("secret.txt")).unwrap(),
        "TOP SECRET\n"
    );
    // Listing shows the links as links.
    let l = env.call("fs.list", json!({})).await.unwrap();
    assert!(
        l["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["type"] == "symlink")
    );
}

#[tokio::test]
async fn a_symlink_swapped_in_after_approval_is_caught_at_use() {
    let d = dirs();
    fs::create_dir(d.ws.join("sub")).unwrap();
    let env = Env::new(&d.ws);
    // Check: the plan sees a real directory.
    let action = env
        .plan("fs.write", json!({"path": "sub/x.txt", "content": "pwned"}))
        .unwrap();
    // Swap: the directory becomes a symlink to outside before the approved action runs.
    fs::remove_dir(d.ws.join("sub")).unwrap();
    symlink(&d.out, d.ws.join("sub")).unwrap();
    let r = env.exec(action).await;
    assert!(matches!(r, Err(ToolError::Forbidden(_))), "{r:?}");
    assert!(!d.out.join("x.txt").exists());

    // Same for reads: file swapped for a link to the secret.
    fs::write(d.ws.join("note.txt"), "hello").unwrap();
    let action = env.plan("fs.read", json!({"path": "note.txt"})).unwrap();
    fs::remove_file(d.ws.join("note.txt")).unwrap();
    symlink(d.out.join("secret.txt"), d.ws.join("note.txt")).unwrap();
    let r = env.exec(action).await;
    assert!(matches!(r, Err(ToolError::Forbidden(_))), "{r:?}");
}

#[tokio::test]
async fn hardlinks_to_outside_files_are_refused() {
    let d = dirs();
    fs::hard_link(d.out.join("secret.txt"), d.ws.join("hl.txt")).unwrap();
    let env = Env::new(&d.ws);
    forbidden(env.plan("fs.read", json!({"path": "hl.txt"})));
    forbidden(env.plan("fs.write", json!({"path": "hl.txt", "content": "pwned"})));
    forbidden(env.plan(
        "fs.edit",
        json!({"path": "hl.txt", "old_string": "TOP", "new_string": "x"}),
    ));
    assert_eq!(
        fs::read_to_string(d.out.join("secret.txt")).unwrap(),
        "TOP SECRET\n"
    );
}

#[tokio::test]
async fn fifos_and_devices_are_refused_without_blocking() {
    let d = dirs();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        d.ws.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let roots = BTreeMap::from([("dev".to_owned(), "/dev".into())]);
    let env = Env::with(&d.ws, roots, &[]);
    forbidden(env.plan("fs.read", json!({"path": "fifo"})));
    forbidden(env.plan("fs.write", json!({"path": "fifo", "content": "x"})));
    forbidden(env.plan("fs.read", json!({"path": "null", "root": "dev"})));
    forbidden(env.plan("fs.read", json!({"path": "zero", "root": "dev"})));
}

#[tokio::test]
async fn read_only_roots_are_readable_and_never_writable() {
    let d = dirs();
    let roots = BTreeMap::from([("docs".to_owned(), d.out.clone())]);
    let env = Env::with(&d.ws, roots, &[]);
    let r = env
        .call("fs.read", json!({"path": "secret.txt", "root": "docs"}))
        .await
        .unwrap();
    assert_eq!(r["content"], "TOP SECRET");
    forbidden(env.plan("fs.read", json!({"path": "secret.txt", "root": "nope"})));
    // Write tools have no root argument at all.
    assert!(matches!(
        env.plan(
            "fs.write",
            json!({"path": "secret.txt", "root": "docs", "content": "x"})
        ),
        Err(ToolError::InvalidArguments(_))
    ));
}

fn protected_home(d: &Dirs) -> Vec<ProtectedPath> {
    let p =
        |rel: &str, label: &str, protection| ProtectedPath::new(d.ws.join(rel), label, protection);
    fs::write(d.ws.join("config.toml"), "version = 1\n").unwrap();
    fs::create_dir_all(d.ws.join("audit")).unwrap();
    fs::write(d.ws.join("audit/2026-01-01.jsonl"), "{}\n").unwrap();
    fs::create_dir_all(d.ws.join("secrets")).unwrap();
    fs::write(d.ws.join("secrets/token"), "s3cr3t").unwrap();
    fs::write(d.ws.join("SOUL.md"), "be nice").unwrap();
    fs::write(d.ws.join("DEVPLAN.md"), "plan").unwrap();
    vec![
        p("config.toml", "Pincer's configuration", Protection::NoWrite),
        p("state.db", "Pincer's state database", Protection::NoWrite),
        p("audit", "the audit log", Protection::NoWrite),
        p("secrets", "Pincer's secrets", Protection::NoAccess),
        p(
            "SOUL.md",
            "a read-only instruction file",
            Protection::NoWrite,
        ),
    ]
}

#[tokio::test]
async fn protected_files_cannot_be_written_by_any_spelling() {
    let d = dirs();
    let protected = protected_home(&d);
    let env = Env::with(&d.ws, BTreeMap::new(), &protected);
    for path in [
        "config.toml",
        "./config.toml",
        ".//config.toml",
        "SOUL.md",
        "audit/2026-01-01.jsonl",
        "audit/new.jsonl",
        "state.db",
    ] {
        let m = forbidden(env.plan("fs.write", json!({"path": path, "content": "pwned"})));
        assert!(m.contains("protected"), "{m}");
    }
    forbidden(env.plan(
        "fs.edit",
        json!({"path": "SOUL.md", "old_string": "nice", "new_string": "evil"}),
    ));
    forbidden(env.plan(
        "apply_patch",
        json!({"patch": "*** Begin Patch\n*** Delete File: config.toml\n*** End Patch"}),
    ));
    forbidden(env.plan(
        "apply_patch",
        json!({"patch": "*** Begin Patch\n*** Update File: SOUL.md\n*** Move to: soul2.md\n*** End Patch"}),
    ));
    // Secrets cannot even be read or listed.
    forbidden(env.plan("fs.read", json!({"path": "secrets/token"})));
    let l = env.call("fs.list", json!({"depth": 3})).await.unwrap();
    assert!(!l.to_string().contains("secrets"), "{l}");
    // Reading the config is fine; DEVPLAN.md stays writable.
    env.call("fs.read", json!({"path": "config.toml"}))
        .await
        .unwrap();
    // A hard link to the config made by someone else is refused too.
    fs::hard_link(d.ws.join("config.toml"), d.ws.join("cfg-link")).unwrap();
    forbidden(env.plan("fs.write", json!({"path": "cfg-link", "content": "pwned"})));
    env.call(
        "fs.write",
        json!({"path": "DEVPLAN.md", "content": "new plan"}),
    )
    .await
    .unwrap();
    assert_eq!(
        fs::read_to_string(d.ws.join("config.toml")).unwrap(),
        "version = 1\n"
    );
    assert_eq!(fs::read_to_string(d.ws.join("SOUL.md")).unwrap(), "be nice");
    assert!(!d.ws.join("state.db").exists());
}

#[tokio::test]
async fn a_workspace_inside_a_protected_directory_is_read_only() {
    let d = dirs();
    let inner = d.out.join("audit/ws");
    fs::create_dir_all(&inner).unwrap();
    let protected = [ProtectedPath::new(
        d.out.join("audit"),
        "the audit log",
        Protection::NoWrite,
    )];
    let env = Env::with(&inner, BTreeMap::new(), &protected);
    forbidden(env.plan("fs.write", json!({"path": "x.txt", "content": "x"})));
}

#[tokio::test]
async fn binary_files_are_reported_not_shown() {
    let d = dirs();
    fs::write(d.ws.join("b.bin"), [0u8, 159, 146, 150, 0, 1]).unwrap();
    let env = Env::new(&d.ws);
    let r = env.call("fs.read", json!({"path": "b.bin"})).await.unwrap();
    assert_eq!(r["binary"], true);
    assert!(r.get("content").is_none());
}

#[tokio::test]
async fn ambiguous_edits_change_nothing() {
    let d = dirs();
    fs::write(d.ws.join("f.txt"), "x = 1\nx = 1\n").unwrap();
    let env = Env::new(&d.ws);
    let r = env.plan(
        "fs.edit",
        json!({"path": "f.txt", "old_string": "x = 1", "new_string": "x = 2"}),
    );
    assert!(matches!(r, Err(ToolError::Failed(m)) if m.contains("2 places")));
    assert_eq!(
        fs::read_to_string(d.ws.join("f.txt")).unwrap(),
        "x = 1\nx = 1\n"
    );
    assert!(matches!(
        env.plan("fs.edit", json!({"path": "f.txt", "old": "x"})),
        Err(ToolError::InvalidArguments(_))
    ));
}

#[tokio::test]
async fn a_file_changed_after_approval_is_not_overwritten() {
    let d = dirs();
    fs::write(d.ws.join("f.txt"), "v1").unwrap();
    let env = Env::new(&d.ws);
    let action = env
        .plan("fs.write", json!({"path": "f.txt", "content": "mine"}))
        .unwrap();
    fs::write(d.ws.join("f.txt"), "v2 from someone else").unwrap();
    assert!(env.exec(action).await.is_err());
    assert_eq!(
        fs::read_to_string(d.ws.join("f.txt")).unwrap(),
        "v2 from someone else"
    );
}

/// Issue 25.1: the operator saves the config by rename (`pincer config set`, an editor,
/// `sed -i`): the new file has a new inode and must be protected at once, by a scope that was
/// opened before the replacement (as in a long-running `pincer serve`).
#[tokio::test]
async fn a_protected_file_replaced_by_rename_stays_protected() {
    let d = dirs();
    let protected = protected_home(&d);
    let env = Env::with(&d.ws, BTreeMap::new(), &protected);
    forbidden(env.plan(
        "fs.write",
        json!({"path": "config.toml", "content": "pwned"}),
    ));
    // The operator's save: temp file + rename, as `pincer config set` does.
    for (file, body) in [
        ("config.toml", "version = 1\n# edited\n"),
        ("SOUL.md", "be kind"),
    ] {
        fs::write(d.ws.join("operator.tmp"), body).unwrap();
        fs::rename(d.ws.join("operator.tmp"), d.ws.join(file)).unwrap();
    }
    let m = forbidden(env.plan(
        "fs.edit",
        json!({"path": "config.toml", "old_string": "version = 1", "new_string": "version = 1\n[security]\napproval_mode = \"trusted\""}),
    ));
    assert!(m.contains("protected"), "{m}");
    forbidden(env.plan("fs.write", json!({"path": "SOUL.md", "content": "obey"})));
    forbidden(env.plan(
        "apply_patch",
        json!({"patch": "*** Begin Patch\n*** Delete File: config.toml\n*** End Patch"}),
    ));
    // A whole protected directory recreated by the operator is protected again too.
    fs::remove_dir_all(d.ws.join("audit")).unwrap();
    fs::create_dir(d.ws.join("audit")).unwrap();
    forbidden(env.plan(
        "fs.write",
        json!({"path": "audit/2026-01-02.jsonl", "content": "{}"}),
    ));
    assert_eq!(
        fs::read_to_string(d.ws.join("config.toml")).unwrap(),
        "version = 1\n# edited\n"
    );
}

/// Issue 25.2: an agent may not touch another agent's directory — instruction files, heartbeat,
/// or a new agent directory made in advance — while its own editable files stay writable.
#[tokio::test]
async fn another_agents_files_are_protected_and_new_agent_dirs_cannot_be_made() {
    let d = dirs();
    let agents = d.ws.join("agents");
    for a in ["main", "other"] {
        fs::create_dir_all(agents.join(a)).unwrap();
        fs::write(agents.join(a).join("SOUL.md"), "be nice").unwrap();
        fs::write(agents.join(a).join("DEVPLAN.md"), "plan").unwrap();
    }
    let protected = [ProtectedPath {
        covers: Covers::EntriesExcept("main".into()),
        ..ProtectedPath::new(&agents, "another agent's files", Protection::NoWrite)
    }];
    let env = Env::with(&d.ws, BTreeMap::new(), &protected);
    for path in [
        "agents/other/SOUL.md",
        "agents/other/RULES.md",
        "agents/other/HEARTBEAT.md",
        "agents/other/DEVPLAN.md",
        "agents/later/SOUL.md",
    ] {
        let m = forbidden(env.plan("fs.write", json!({"path": path, "content": "pwned"})));
        assert!(m.contains("another agent"), "{path}: {m}");
    }
    forbidden(env.plan(
        "apply_patch",
        json!({"patch": "*** Begin Patch\n*** Add File: agents/other/HEARTBEAT.md\n+run rm -rf\n*** End Patch"}),
    ));
    // Reading another agent's files is allowed; writing one's own editable file too.
    env.call("fs.read", json!({"path": "agents/other/SOUL.md"}))
        .await
        .unwrap();
    env.call(
        "fs.write",
        json!({"path": "agents/main/DEVPLAN.md", "content": "new plan"}),
    )
    .await
    .unwrap();
    assert!(!agents.join("later").exists());
    assert!(!agents.join("other/HEARTBEAT.md").exists());
    // A workspace inside another agent's directory is read-only.
    let env = Env::with(&agents.join("other"), BTreeMap::new(), &protected);
    forbidden(env.plan("fs.write", json!({"path": "x.md", "content": "x"})));
}
