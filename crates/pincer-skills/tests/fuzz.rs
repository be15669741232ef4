#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Seeded mutation fuzzing (issue 23, part 7) of the parser that reads the most hostile input a
//! skill brings — `SKILL.md` front matter — and of the scan: thousands of mutations of the
//! corpus (bytes flipped, YAML punctuation and Unicode controls inserted, lines cut and
//! duplicated) must each parse or be refused, and scan, without a panic. The seed is fixed so a
//! failure reproduces; `PINCER_FUZZ_ITERS` runs longer.

use std::path::Path;

use pincer_skills::{manifest, ops::validate_tree, tree};

const INSERTS: &[&str] = &[
    "---",
    ":",
    "- ",
    "&a ",
    "*a",
    "!!binary ",
    "[",
    "]",
    "{",
    "}",
    "'",
    "\"",
    "|",
    ">",
    "#",
    "\n",
    "\t",
    "\u{202e}",
    "\u{200b}",
    "\u{feff}",
    "\0",
    "~",
    "? ",
    "  ",
    "%YAML 1.2\n",
];

fn mutate(rng: &mut fastrand::Rng, text: &str) -> String {
    let mut s: Vec<char> = text.chars().collect();
    for _ in 0..rng.usize(1..6) {
        let at = if s.is_empty() {
            0
        } else {
            rng.usize(..s.len())
        };
        match rng.u8(..5) {
            0 if !s.is_empty() => {
                s.remove(at);
            }
            1 => {
                let ins = INSERTS[rng.usize(..INSERTS.len())];
                for (i, c) in ins.chars().enumerate() {
                    s.insert(at + i, c);
                }
            }
            2 if !s.is_empty() => s[at] = char::from(rng.u8(32..127)),
            3 => s.truncate(at),
            _ => {
                let line: String = s[..at].iter().rev().take_while(|c| **c != '\n').collect();
                for (i, c) in line.chars().rev().enumerate() {
                    s.insert(at + i, c);
                }
            }
        }
    }
    s.into_iter().collect()
}

#[test]
fn mutated_skill_files_never_panic_the_parser_or_the_scan() {
    let iters: usize = std::env::var("PINCER_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut seeds = Vec::new();
    for kind in ["benign", "malicious"] {
        for e in std::fs::read_dir(corpus.join(kind)).unwrap() {
            seeds.push(std::fs::read_to_string(e.unwrap().path().join("SKILL.md")).unwrap());
        }
    }
    let mut rng = fastrand::Rng::with_seed(0x5111_5eed);
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..iters {
        let pick = rng.usize(..seeds.len());
        let text = mutate(&mut rng, &seeds[pick]);
        match manifest::parse(&text) {
            Ok(_) => ok += 1,
            Err(_) => refused += 1,
        }
        let t = tree::Tree::from_files(vec![tree::file("SKILL.md", text.into_bytes(), false)]);
        let _ = validate_tree(t, &["pdf".to_owned()]);
    }
    // The mutations exercise both paths.
    assert!(ok > 0 && refused > 0, "ok {ok}, refused {refused}");
}
