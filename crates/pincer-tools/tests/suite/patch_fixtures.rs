//! `apply_patch` fixtures: `tests/fixtures/apply_patch/NNN_name/{input/, patch, expected/}` and,
//! for patches that must fail, an `error` file holding part of the expected message (in which
//! case `expected/` equals `input/`: a failed patch changes nothing).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::json;

use super::common::Env;

fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn copy(from: &Path, to: &Path) {
    for (rel, bytes) in tree(from) {
        let dest = to.join(rel);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::write(dest, bytes).unwrap();
    }
}

#[tokio::test]
async fn every_fixture() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/apply_patch");
    let mut cases: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 14, "fixtures missing: {cases:?}");
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = tempfile::tempdir().unwrap();
        copy(&case.join("input"), tmp.path());
        let env = Env::new(tmp.path());
        let patch = fs::read_to_string(case.join("patch")).unwrap();
        let result = env.call("apply_patch", json!({"patch": patch})).await;
        match fs::read_to_string(case.join("error")) {
            Ok(want) => {
                let err = result.expect_err(&name).to_string();
                assert!(
                    err.contains(want.trim()),
                    "{name}: error `{err}` lacks `{}`",
                    want.trim()
                );
            }
            Err(_) => {
                result.unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
        let got = tree(tmp.path());
        let want = tree(&case.join("expected"));
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{name}: file set"
        );
        for (k, v) in &want {
            assert_eq!(
                String::from_utf8_lossy(&got[k]),
                String::from_utf8_lossy(v),
                "{name}: {k}"
            );
        }
    }
}

#[tokio::test]
async fn delete_is_destructive_and_add_is_mutating() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("a.txt"), "a\n").unwrap();
    let env = Env::new(tmp.path());
    let add = env
        .plan(
            "apply_patch",
            json!({"patch": "*** Begin Patch\n*** Add File: b.txt\n+b\n*** End Patch"}),
        )
        .unwrap();
    assert_eq!(add.tier, pincer_types::RiskTier::L1Mutating);
    let del = env
        .plan(
            "apply_patch",
            json!({"patch": "*** Begin Patch\n*** Delete File: a.txt\n*** End Patch"}),
        )
        .unwrap();
    assert_eq!(del.tier, pincer_types::RiskTier::L2Destructive);
}
