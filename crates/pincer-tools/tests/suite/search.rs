//! `code.search` against real trees.

use std::fs;
use std::os::unix::fs::symlink;

use serde_json::{Value, json};

use super::common::Env;

fn files(v: &Value) -> Vec<String> {
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h.get("context").is_none())
        .map(|h| format!("{}:{}", h["path"].as_str().unwrap(), h["line"]))
        .collect()
}

fn tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let p = t.path();
    fs::create_dir_all(p.join("src")).unwrap();
    fs::create_dir_all(p.join("target")).unwrap();
    fs::create_dir_all(p.join(".hidden")).unwrap();
    fs::write(p.join(".gitignore"), "target/\n").unwrap();
    fs::write(
        p.join("src/a.rs"),
        "fn alpha() {}\n// NOTE: Alpha\nlet x = a.b;\n",
    )
    .unwrap();
    fs::write(p.join("src/b.txt"), "alpha beta\n").unwrap();
    fs::write(p.join("target/gen.rs"), "fn alpha() {}\n").unwrap();
    fs::write(p.join(".hidden/h.rs"), "alpha\n").unwrap();
    fs::write(p.join("bin.dat"), b"alpha\0\x01\x02").unwrap();
    t
}

#[tokio::test]
async fn regex_case_globs_and_gitignore() {
    let t = tree();
    let env = Env::new(t.path());
    let r = env
        .call("code.search", json!({"pattern": "alpha"}))
        .await
        .unwrap();
    assert_eq!(
        files(&r),
        ["src/a.rs:1", "src/a.rs:2", "src/b.txt:1"],
        "smart case, ignores target/, hidden, binary"
    );
    let r = env
        .call(
            "code.search",
            json!({"pattern": "alpha", "case": "sensitive"}),
        )
        .await
        .unwrap();
    assert_eq!(files(&r), ["src/a.rs:1", "src/b.txt:1"]);
    let r = env
        .call("code.search", json!({"pattern": "Alpha"}))
        .await
        .unwrap();
    assert_eq!(
        files(&r),
        ["src/a.rs:2"],
        "an upper-case letter makes smart case sensitive"
    );
    let r = env
        .call(
            "code.search",
            json!({"pattern": "alpha", "globs": ["*.rs"]}),
        )
        .await
        .unwrap();
    assert_eq!(files(&r), ["src/a.rs:1", "src/a.rs:2"]);
    let r = env
        .call(
            "code.search",
            json!({"pattern": "alpha", "globs": ["!*.rs"]}),
        )
        .await
        .unwrap();
    assert_eq!(files(&r), ["src/b.txt:1"]);
    let r = env
        .call(
            "code.search",
            json!({"pattern": "alpha", "hidden": true, "case": "sensitive"}),
        )
        .await
        .unwrap();
    assert_eq!(files(&r), [".hidden/h.rs:1", "src/a.rs:1", "src/b.txt:1"]);
}

#[tokio::test]
async fn literal_context_and_caps() {
    let t = tree();
    let env = Env::new(t.path());
    let r = env
        .call("code.search", json!({"pattern": "a.b", "literal": true}))
        .await
        .unwrap();
    assert_eq!(files(&r), ["src/a.rs:3"]);
    let r = env
        .call("code.search", json!({"pattern": "NOTE", "context": 1}))
        .await
        .unwrap();
    let lines: Vec<u64> = r["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [1, 2, 3]);
    let r = env
        .call("code.search", json!({"pattern": "alpha", "max_results": 1}))
        .await
        .unwrap();
    assert_eq!(r["matches"], 1);
    assert_eq!(r["truncated"], true);
    assert!(
        env.plan("code.search", json!({"pattern": "("})).is_ok(),
        "plan does not compile"
    );
    assert!(
        env.call("code.search", json!({"pattern": "("}))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn search_stays_inside_the_workspace() {
    let t = tree();
    let out = tempfile::tempdir().unwrap();
    fs::write(out.path().join("secret.rs"), "alpha SECRET\n").unwrap();
    symlink(out.path(), t.path().join("src/escape")).unwrap();
    symlink(out.path().join("secret.rs"), t.path().join("src/link.rs")).unwrap();
    let env = Env::new(t.path());
    let r = env
        .call("code.search", json!({"pattern": "SECRET"}))
        .await
        .unwrap();
    assert_eq!(r["matches"], 0, "{r}");
    assert!(matches!(
        env.plan("code.search", json!({"pattern": "x", "path": "../"})),
        Err(pincer_tools::ToolError::Forbidden(_))
    ));
    assert!(matches!(
        env.plan("code.search", json!({"pattern": "x", "path": "src/escape"})),
        Err(pincer_tools::ToolError::Forbidden(_))
    ));
}
