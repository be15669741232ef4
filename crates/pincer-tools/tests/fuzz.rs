#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Seeded mutation fuzzing (issue 23, part 7) of `apply_patch`'s parser and its hunk
//! application — the model writes these patches, so they are hostile input: every mutation
//! parses or is refused, and applies or is refused, never a panic.

use pincer_tools::patch::{FileOp, apply_chunks, parse};

#[test]
fn mutated_patches_never_panic_the_parser_or_the_applier() {
    let iters: usize = std::env::var("PINCER_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    let seed = "*** Begin Patch\n*** Update File: src/lib.rs\n@@ fn main\n context a\n-old line\n+new line\n context b\n*** Add File: notes/new.md\n+hello\n+world\n*** Delete File: old.txt\n*** End Patch\n";
    let target = "context a\nold line\ncontext b\nfn main\ncontext a\nold line\n";
    let inserts = [
        "*** ",
        "@@",
        "\n",
        "+",
        "-",
        " ",
        "*** End Patch",
        "*** Update File: ",
        "\r\n",
        "../",
        "\u{202e}",
    ];
    let mut rng = fastrand::Rng::with_seed(0x0a99_17e5);
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..iters {
        let mut s: Vec<char> = seed.chars().collect();
        for _ in 0..rng.usize(1..5) {
            let at = rng.usize(..s.len());
            match rng.u8(..3) {
                0 => {
                    s.remove(at);
                }
                1 => {
                    for (i, c) in inserts[rng.usize(..inserts.len())].chars().enumerate() {
                        s.insert(at + i, c);
                    }
                }
                _ => s[at] = char::from(rng.u8(32..127)),
            }
        }
        let text: String = s.into_iter().collect();
        match parse(&text) {
            Ok(ops) => {
                ok += 1;
                for op in ops {
                    if let FileOp::Update { path, chunks, .. } = op {
                        let _ = apply_chunks(&path, target, &chunks);
                    }
                }
            }
            Err(_) => refused += 1,
        }
    }
    assert!(ok > 0 && refused > 0, "ok {ok}, refused {refused}");
}
