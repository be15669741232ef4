#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Seeded mutation fuzzing (issue 23, part 7) of the audit verifier: a real log's day file with
//! bytes changed, removed or inserted must never verify — and never panic the verifier. (It
//! found that whitespace between JSON tokens, or a `\r` before a newline, verified: lines must
//! now be byte-for-byte in the form Pincer writes.)

use pincer_audit::{AuditLog, Redactor, verify};

#[test]
fn a_mutated_audit_log_never_verifies_and_never_panics_the_verifier() {
    let iters: usize = std::env::var("PINCER_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path(), Redactor::new(vec![], &[]).unwrap()).unwrap();
    for i in 0..20 {
        log.append(
            "tool.call",
            serde_json::json!({"tool": "fs.read", "n": i, "path": format!("notes/{i}.md")}),
        )
        .unwrap();
    }
    drop(log);
    verify(dir.path()).unwrap();
    let day = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .unwrap();
    let original = std::fs::read(&day).unwrap();
    let mut rng = fastrand::Rng::with_seed(0x000a_0d17);
    for _ in 0..iters {
        let mut bytes = original.clone();
        for _ in 0..rng.usize(1..4) {
            let at = rng.usize(..bytes.len());
            match rng.u8(..3) {
                0 => {
                    bytes.remove(at);
                }
                1 => bytes.insert(at, rng.u8(..)),
                _ => bytes[at] = bytes[at].wrapping_add(rng.u8(1..)),
            }
        }
        if bytes == original {
            continue;
        }
        std::fs::write(&day, &bytes).unwrap();
        if verify(dir.path()).is_ok() {
            let at = original
                .iter()
                .zip(&bytes)
                .position(|(a, b)| a != b)
                .unwrap_or(original.len().min(bytes.len()));
            let lo = at.saturating_sub(40);
            panic!(
                "a changed log verified; first difference at byte {at}:\n was: {:?}\n now: {:?}",
                String::from_utf8_lossy(&original[lo..(at + 40).min(original.len())]),
                String::from_utf8_lossy(&bytes[lo..(at + 40).min(bytes.len())])
            );
        }
    }
    std::fs::write(&day, &original).unwrap();
    verify(dir.path()).unwrap();
}
