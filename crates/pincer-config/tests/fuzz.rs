#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Seeded mutation fuzzing (issue 23, part 7) of the config loader: mutations of a full
//! `config.toml` each load or are refused with an error naming the file — never a panic.

use std::path::Path;

#[test]
fn mutated_configs_load_or_are_refused_without_panicking() {
    let iters: usize = std::env::var("PINCER_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    let seed = r#"
version = 1

[gateway]
bind = "127.0.0.1:7878"
allowed_hosts = ["pincer.example"]

[security]
exec = "sandboxed"
sandbox = "native"
network = "allowlist"
egress_allow = ["api.example.org", "*.example.net"]
approval_mode = "balanced"

[providers.default]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key_env = "KEY"

[agents.main]
provider = "default"
model = "m"
profile = "coding"
allow = ["group:web"]
exec_allow = ["git status"]

[governance]
bypass = "off"

[skills]
trusted_sources = ["github.com/acme"]
"#;
    // The seed itself loads.
    pincer_config::parse_and_validate(Path::new("/home/x/config.toml"), seed).unwrap();
    let inserts = [
        "[",
        "]",
        "=",
        "\"",
        "'",
        ".",
        "\n",
        "#",
        "{",
        "}",
        ",",
        "[[",
        "]]",
        "\\u0000",
        "\u{0}",
        "1e999",
        "-9223372036854775809",
    ];
    let mut rng = fastrand::Rng::with_seed(0xc0f1_9000);
    let path = Path::new("/home/x/config.toml");
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..iters {
        let mut s: Vec<char> = seed.chars().collect();
        for _ in 0..rng.usize(1..4) {
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
        match pincer_config::parse_and_validate(path, &text) {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(
                    e.to_string().contains("config.toml"),
                    "error without the file: {e}"
                );
                refused += 1;
            }
        }
    }
    assert!(ok > 0 && refused > 0, "ok {ok}, refused {refused}");
}
