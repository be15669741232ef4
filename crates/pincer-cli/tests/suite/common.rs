//! Helpers: a temporary home, and running the binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use pincer_testkit::{FakeLlm, FakeTelegram};

pub const KEY_VAR: &str = "PINCER_TEST_KEY";
pub const KEY: &str = "sk-e2e-secret-4f3c2b1a0987";

pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A handle on an existing home directory (for blocking helpers).
    pub fn at(path: PathBuf) -> HomeAt {
        HomeAt(path)
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Runs `pincer` with this home, the test key in the environment, and `stdin`.
    pub async fn run(&self, args: &[&str], stdin: &str) -> Output {
        self.run_full(args, stdin, &[]).await
    }

    /// Like `run`, with extra environment variables.
    pub async fn run_with_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        self.run_full(args, "", vars).await
    }

    async fn run_full(&self, args: &[&str], stdin: &str, vars: &[(&str, &str)]) -> Output {
        let home = self.path();
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let stdin = stdin.to_owned();
        tokio::task::spawn_blocking(move || run_blocking(&home, &args, &stdin, &vars))
            .await
            .unwrap()
    }

    pub async fn init(&self, base_url: &str) {
        let out = self
            .run(
                &[
                    "init",
                    "--provider",
                    "openai",
                    "--base-url",
                    base_url,
                    "--model",
                    "m",
                    "--api-key-env",
                    KEY_VAR,
                ],
                "",
            )
            .await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }

    pub fn runs(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.path().join("agents/main/runs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }
}

/// A home addressed by path only.
pub struct HomeAt(pub PathBuf);

impl HomeAt {
    pub fn path(&self) -> PathBuf {
        self.0.clone()
    }
}

pub fn run_blocking(
    home: &Path,
    args: &[String],
    stdin: &str,
    vars: &[(String, String)],
) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pincer"))
        .args(args)
        .env("PINCER_HOME", home)
        .env(KEY_VAR, KEY)
        // The developer's log level does not leak into the tests; a test may set its own.
        .env_remove("PINCER_LOG")
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn json_file(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Every byte under `dir`, for secret scans.
pub fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.extend(std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Starts `pincer serve --bind 127.0.0.1:0` for the home at `path` with `vars`; returns the
/// child and the address it listens on.
pub fn serve_at(path: &Path, vars: &[(&str, &str)]) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_pincer"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("PINCER_HOME", path)
        .env(KEY_VAR, KEY)
        .envs(vars.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("pincer serve: listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    (child, addr)
}

/// SIGTERM, then the exit code.
pub fn term(child: &mut std::process::Child) -> Option<i32> {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    child.wait().unwrap().code()
}

/// The token the fake Bot API accepts.
pub const BOT_TOKEN: &str = "123456:TEST-bot-token-secret";

/// `pincer config set key value`, which must succeed.
pub async fn set(home: &Home, key: &str, value: &str) {
    let out = home.run(&["config", "set", key, value], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// A home whose agent answers through `llm`, with Telegram pointed at `tg`.
pub async fn telegram_home(llm: &FakeLlm, tg: &FakeTelegram, extra: &[(&str, &str)]) -> Home {
    let home = Home::new();
    home.init(&llm.base_url()).await;
    set(&home, "channels.telegram.enabled", "true").await;
    set(&home, "channels.telegram.api_base", &tg.base_url()).await;
    set(&home, "channels.telegram.token_env", "PINCER_TEST_BOT").await;
    set(&home, "channels.telegram.poll_timeout_secs", "1").await;
    for (k, v) in extra {
        set(&home, k, v).await;
    }
    home
}

/// The texts sent to `chat`.
pub fn texts_to(tg: &FakeTelegram, chat: i64) -> Vec<String> {
    tg.calls_of("sendMessage")
        .into_iter()
        .filter(|c| c.params["chat_id"] == chat)
        .filter_map(|c| c.params["text"].as_str().map(str::to_owned))
        .collect()
}

/// The texts delivered to `chat` (calls answered with an injected fault left out).
pub fn delivered_to(tg: &FakeTelegram, chat: i64) -> Vec<String> {
    tg.calls_of("sendMessage")
        .into_iter()
        .filter(|c| !c.faulted && c.params["chat_id"] == chat)
        .filter_map(|c| c.params["text"].as_str().map(str::to_owned))
        .collect()
}

/// The events of one audit type (`pincer audit search --type KIND --json`), oldest first.
pub async fn audit_of_type(home: &Home, kind: &str) -> Vec<serde_json::Value> {
    let out = home
        .run(&["audit", "search", "--type", kind, "--json"], "")
        .await;
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].clone())
        .collect()
}

/// Edits the first `from` in a day file of `home`'s audit log into `to` (tampering, as an
/// attacker with write access to `audit/` would); panics when nothing was changed.
pub fn tamper_day_file(home: &Home, from: &str, to: &str) {
    let days: Vec<PathBuf> = std::fs::read_dir(home.path().join("audit"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    for day in days {
        let text = std::fs::read_to_string(&day).unwrap();
        if text.contains(from) {
            std::fs::write(&day, text.replacen(from, to, 1)).unwrap();
            return;
        }
    }
    panic!("no audit day file holds {from:?}");
}

/// Under CI (`CI=true`) a missing real part fails the test instead of skipping it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The tool results the model was sent in request `i` (the last request when `None`).
pub fn tool_results(llm: &pincer_testkit::FakeLlm, i: Option<usize>) -> Vec<String> {
    let reqs = llm.requests();
    let req = match i {
        Some(i) => &reqs[i],
        None => reqs.last().unwrap(),
    };
    req.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Network on, and the loopback server on `port` named as the one private address allowed —
/// how the tests reach their loopback servers (no test-only bypass in the binary).
pub async fn allow_loopback(home: &Home, port: u16) {
    set(home, "security.network", "allowlist").await;
    set(
        home,
        "security.egress_allow_private",
        &format!("[\"127.0.0.1:{port}\"]"),
    )
    .await;
}

/// The tool names offered to the model in a request body.
pub fn offered(req: &serde_json::Value) -> Vec<String> {
    req["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
        .collect()
}

/// The actions held because their turn was tainted (`audit search --decision held-tainted`).
pub async fn held_tainted(home: &Home) -> Vec<serde_json::Value> {
    let out = home
        .run(
            &["audit", "search", "--decision", "held-tainted", "--json"],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].clone())
        .collect()
}
