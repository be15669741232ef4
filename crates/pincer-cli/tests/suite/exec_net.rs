//! Network for sandboxed commands (issue 18 part 5) through the real binary, with both sandbox
//! providers: with `security.network = "allowlist"`, `shell.exec` reaches the network only
//! through Pincer's egress proxy. `git clone` (git's HTTP transport) and `cargo fetch` (a sparse
//! registry) of the one loopback address the operator named work inside the sandbox; another
//! loopback server, a direct connection and an unnamed host do not; every tunnel and refusal is
//! audited with the agent's name.

use std::path::Path;
use std::process::Command;

use pincer_testkit::{FakeLlm, FakeWeb};
use serde_json::{Value, json};

use super::common::*;

fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bare repository served over git's dumb HTTP protocol, and a sparse cargo registry holding
/// one crate, under `root` (served at `/files/`).
fn publish(root: &Path, base: &str) {
    let src = root.join("src");
    std::fs::create_dir_all(&src).unwrap();
    sh(
        &src,
        "git init -q -b main . && echo 'hello from the allowlisted host' > README && git add README \
         && git -c user.name=t -c user.email=t@t commit -q -m one \
         && git clone -q --bare . ../repo.git && cd ../repo.git && git update-server-info",
    );
    // The crate: a .crate is a gzipped tar of `NAME-VERSION/…`.
    let krate = root.join("krate/pincer-probe-0.1.0");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        "[package]\nname = \"pincer-probe\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(krate.join("src/lib.rs"), "pub fn probe() {}\n").unwrap();
    let dl = root.join("registry/dl/pincer-probe/0.1.0");
    std::fs::create_dir_all(&dl).unwrap();
    sh(
        &root.join("krate"),
        &format!("tar -czf {}/download pincer-probe-0.1.0", dl.display()),
    );
    let bytes = std::fs::read(dl.join("download")).unwrap();
    let cksum = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    std::fs::write(
        root.join("registry/config.json"),
        json!({"dl": format!("{base}/files/registry/dl/{{crate}}/{{version}}/download")})
            .to_string(),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("registry/pi/nc")).unwrap();
    std::fs::write(
        root.join("registry/pi/nc/pincer-probe"),
        format!(
            "{}\n",
            json!({"name": "pincer-probe", "vers": "0.1.0", "deps": [], "cksum": cksum,
                   "features": {}, "yanked": false})
        ),
    )
    .unwrap();
}

async fn shell(home: &Home, command: &str) -> (String, String) {
    let args = json!({ "command": command, "timeout_secs": 120 }).to_string();
    let out = home
        .run(
            &["tools", "call", "shell.exec", "--args", &args, "--approve"],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    (
        v["stdout"].as_str().unwrap_or_default().to_owned(),
        v["stderr"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_clone_and_cargo_fetch_work_through_the_proxy_and_nothing_else_does() {
    for tool in ["git", "curl"] {
        assert!(have(tool) || !in_ci(), "{tool} is required under CI");
        if !have(tool) {
            eprintln!("SKIP (not CI): {tool} is not installed");
            return;
        }
    }
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .unwrap();
    let sysroot = String::from_utf8(sysroot.stdout).unwrap().trim().to_owned();
    assert!(
        Path::new(&sysroot).join("bin/cargo").is_file(),
        "no cargo in {sysroot}"
    );
    let web = FakeWeb::start("k").await.unwrap();
    let other = FakeWeb::start("k").await.unwrap();
    let files = tempfile::tempdir().unwrap();
    publish(files.path(), &web.base_url());
    web.serve_dir(files.path());
    other.serve_dir(files.path());
    for provider in ["native", "bwrap"] {
        if provider == "bwrap" && !have("bwrap") {
            assert!(!in_ci(), "bwrap is required under CI");
            eprintln!("SKIP bwrap (not installed, not CI)");
            continue;
        }
        let llm = FakeLlm::start(vec![]).await.unwrap();
        let home = Home::new();
        home.init(&llm.base_url()).await;
        set(&home, "security.exec", "sandboxed").await;
        set(&home, "security.sandbox", provider).await;
        set(&home, "agents.main.approval_mode", "trusted").await;
        allow_loopback(&home, web.port()).await;
        set(&home, "agents.main.read_roots.toolchain", &sysroot).await;

        // git's HTTP transport, through HTTP_PROXY.
        let (out, err) = shell(
            &home,
            &format!(
                "git clone -q {}/files/repo.git cloned && cat cloned/README",
                web.base_url()
            ),
        )
        .await;
        assert_eq!(
            out, "hello from the allowlisted host\n",
            "{provider}: {err}"
        );

        // cargo fetch from a sparse registry, through HTTPS_PROXY/http_proxy.
        let (out, err) = shell(
            &home,
            &format!(
                "mkdir -p app/src app/.cargo && cd app && \
                 printf '[package]\\nname = \"app\"\\nversion = \"0.1.0\"\\nedition = \"2021\"\\n\\n[dependencies]\\npincer-probe = {{ version = \"0.1\", registry = \"loopback\" }}\\n' > Cargo.toml && \
                 echo 'fn main() {{}}' > src/main.rs && \
                 printf '[registries.loopback]\\nindex = \"sparse+{base}/files/registry/\"\\n' > .cargo/config.toml && \
                 CARGO_HOME=$PWD/.cargo-home PATH={sysroot}/bin:$PATH cargo fetch -q && \
                 ls .cargo-home/registry/cache/*/",
                base = web.base_url()
            ),
        )
        .await;
        assert!(
            out.contains("pincer-probe-0.1.0.crate"),
            "{provider}: {out} {err}"
        );

        // The same files on a loopback port nobody named: refused by the proxy (403).
        let (out, err) = shell(
            &home,
            &format!(
                "curl -sS -o /dev/null -w '%{{http_code}}' {}/files/repo.git/HEAD; echo; \
                 git clone -q {}/files/repo.git other && echo CLONED-OTHER; \
                 curl -fsS --max-time 5 --noproxy '*' {}/files/repo.git/HEAD && echo DIRECT; \
                 curl -fsS --max-time 5 http://metadata.google.internal/ && echo METADATA; true",
                other.base_url(),
                other.base_url(),
                web.base_url()
            ),
        )
        .await;
        assert!(out.starts_with("403\n"), "{provider}: {out} {err}");
        for leak in ["CLONED-OTHER", "DIRECT", "METADATA"] {
            assert!(!out.contains(leak), "{provider}: {leak}: {out} {err}");
        }

        let tunnels = audit_of_type(&home, "egress.tunnel").await;
        assert!(
            tunnels.iter().any(|t| t["agent"] == "main"
                && t["port"] == web.port()
                && t["bytes_down"].as_u64().unwrap_or(0) > 0),
            "{provider}: {tunnels:?}"
        );
        assert!(
            tunnels.iter().all(|t| t["port"] == web.port()),
            "{provider}: {tunnels:?}"
        );
        let refused = audit_of_type(&home, "egress.refused").await;
        assert!(
            refused.iter().any(|r| r["agent"] == "main"),
            "{provider}: {refused:?}"
        );
        assert!(
            refused
                .iter()
                .any(|r| r["host"] == "metadata.google.internal"),
            "{provider}: {refused:?}"
        );
    }
}

/// With the network off (the default), the same command gets no network at all: no proxy
/// variables, nothing listening.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_network_off_commands_have_no_route_out() {
    if !have("curl") {
        assert!(!in_ci(), "curl is required under CI");
        return;
    }
    let web = FakeWeb::start("k").await.unwrap();
    let llm = FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    set(&home, "security.exec", "sandboxed").await;
    set(&home, "agents.main.approval_mode", "trusted").await;
    set(
        &home,
        "security.egress_allow_private",
        &format!("[\"127.0.0.1:{}\"]", web.port()),
    )
    .await;
    let (out, err) = shell(
        &home,
        &format!(
            "echo \"proxy=[$http_proxy]\"; curl -fsS --max-time 5 {}/article && echo REACHED; \
             curl -fsS --max-time 5 -x http://127.0.0.1:3128 {}/article && echo REACHED; true",
            web.base_url(),
            web.base_url()
        ),
    )
    .await;
    assert!(out.starts_with("proxy=[]\n"), "{out} {err}");
    assert!(!out.contains("REACHED"), "{out} {err}");
}
