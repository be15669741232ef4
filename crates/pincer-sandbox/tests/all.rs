#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Attack tests on the real kernel, for both providers. Each test tries the attack from inside
//! the sandbox and asserts the kernel stopped it.
//!
//! The helper is this crate's `pincer-sandbox-helper` binary, re-executed exactly as production
//! re-executes `pincer`. The bwrap tests need `bwrap` installed: under CI (`CI=true`) a missing
//! `bwrap` fails them; locally they say why and pass.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pincer_sandbox::launch::{self, RunLimits};
use pincer_sandbox::{
    Bwrap, ExecOutcome, ExecSpec, Limits, Native, NetworkAccess, Sandbox, SandboxError,
    SandboxKind, Termination,
};

const HELPER: &str = env!("CARGO_BIN_EXE_pincer-sandbox-helper");

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn sandbox(kind: SandboxKind) -> Option<Arc<dyn Sandbox>> {
    match kind {
        SandboxKind::Native => Some(Arc::new(Native::new(HELPER))),
        SandboxKind::Bwrap => match Bwrap::locate(std::env::var_os("PATH").as_deref()) {
            Ok(_) => {
                let bwrap = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                    .map(|d| d.join("bwrap"))
                    .find(|p| p.is_file())
                    .unwrap();
                Some(Arc::new(Bwrap::new(bwrap, HELPER)))
            }
            Err(e) => {
                assert!(!in_ci(), "bwrap is required under CI: {e}");
                eprintln!("SKIP (not CI): {e}");
                None
            }
        },
    }
}

/// A workspace, a sibling directory standing in for `$PINCER_HOME`, and the sandbox.
struct Env {
    _dir: tempfile::TempDir,
    ws: PathBuf,
    home: PathBuf,
    sb: Arc<dyn Sandbox>,
    limits: Limits,
    run: RunLimits,
}

impl Env {
    fn new(kind: SandboxKind) -> Option<Self> {
        let sb = sandbox(kind)?;
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join("config.toml"), "api_key = \"sk-secret\"\n").unwrap();
        Some(Self {
            _dir: dir,
            ws,
            home,
            sb,
            limits: Limits::default(),
            run: RunLimits {
                timeout: Some(Duration::from_secs(60)),
                output_cap: 64 * 1024,
                output_kill: 16 << 20,
            },
        })
    }

    fn spec(&self, argv: &[&str]) -> ExecSpec {
        ExecSpec {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            cwd: self.ws.clone(),
            env: vec![("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into())],
            workspace: self.ws.clone(),
            read_only: vec![],
            limits: self.limits,
            network: NetworkAccess::Off,
            writable: vec![],
            stdin_pipe: false,
            unix_sockets: false,
            control_pipe: false,
        }
    }

    async fn try_sh(&self, script: &str) -> Result<ExecOutcome, SandboxError> {
        launch::run(
            &*self.sb,
            self.spec(&["/bin/sh", "-c", script]),
            self.run,
            std::future::pending(),
            None,
        )
        .await
    }

    async fn sh(&self, script: &str) -> ExecOutcome {
        self.try_sh(script).await.unwrap()
    }
}

fn ok(o: &ExecOutcome) -> bool {
    o.finished.termination == Termination::Exited && o.finished.exit_code == Some(0)
}

macro_rules! both {
    ($name:ident, |$env:pat_param| $body:block) => {
        mod $name {
            use super::*;
            async fn case($env: Env) $body
            #[tokio::test]
            async fn native() {
                if let Some(e) = Env::new(SandboxKind::Native) {
                    case(e).await
                }
            }
            #[tokio::test]
            async fn bwrap() {
                if let Some(e) = Env::new(SandboxKind::Bwrap) {
                    case(e).await
                }
            }
        }
    };
}

both!(runs_a_command_and_captures_both_streams, |env| {
    let o = env.sh("echo hello; echo oops >&2; exit 3").await;
    assert_eq!(o.stdout.text, "hello\n");
    assert_eq!(o.stderr.text, "oops\n");
    assert_eq!(o.finished.exit_code, Some(3));
    assert_eq!(o.finished.termination, Termination::Exited);
});

both!(reports_the_enforced_confinement, |env| {
    let r = launch::spawn(&*env.sb, env.spec(&["true"])).await.unwrap();
    assert!(r.ready().landlock_abi >= 3, "{:?}", r.ready());
    assert!(r.ready().seccomp);
    let f = r
        .drive(env.run, std::future::pending(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(f.exit_code, Some(0));
});

both!(workspace_is_writable_and_cwd_is_inside, |env| {
    std::fs::create_dir(env.ws.join("sub")).unwrap();
    let mut spec = env.spec(&["/bin/sh", "-c", "pwd; echo made > out.txt"]);
    spec.cwd = env.ws.join("sub");
    let o = launch::run(&*env.sb, spec, env.run, std::future::pending(), None)
        .await
        .unwrap();
    assert!(ok(&o), "{o:?}");
    let pwd = std::fs::canonicalize(env.ws.join("sub")).unwrap();
    assert_eq!(o.stdout.text.trim(), pwd.to_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(env.ws.join("sub/out.txt")).unwrap(),
        "made\n"
    );
});

both!(cannot_read_etc_shadow_or_the_pincer_home, |env| {
    let config = env.home.join("config.toml");
    let o = env
        .sh(&format!(
            "cat /etc/shadow; cat {}; ls {}; cat /proc/1/root/etc/shadow",
            config.display(),
            env.home.display()
        ))
        .await;
    assert!(!o.stdout.text.contains("sk-secret"), "{o:?}");
    assert!(!o.stdout.text.contains("root:"), "{o:?}");
    assert!(o.stdout.text.is_empty(), "{o:?}");
    assert_ne!(o.finished.exit_code, Some(0));
});

both!(a_symlink_planted_in_the_workspace_leads_nowhere, |env| {
    std::os::unix::fs::symlink(&env.home, env.ws.join("h")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", env.ws.join("s")).unwrap();
    let o = env.sh("cat h/config.toml; cat s; echo x > h/planted").await;
    assert!(!o.stdout.text.contains("sk-secret"), "{o:?}");
    assert!(!env.home.join("planted").exists());
});

both!(cannot_write_outside_the_workspace, |env| {
    let target = env.home.join("pwned");
    let o = env
        .sh(&format!(
            "echo x > {t}; touch /usr/pwned; touch /etc/pwned; mkdir /pwned; echo x > /tmp/ok && echo tmp-ok",
            t = target.display()
        ))
        .await;
    assert!(!target.exists());
    assert!(!Path::new("/usr/pwned").exists());
    assert!(!Path::new("/etc/pwned").exists());
    assert!(!Path::new("/pwned").exists());
    // The private /tmp works, and is not the host's.
    assert!(o.stdout.text.contains("tmp-ok"), "{o:?}");
    assert!(!Path::new("/tmp/ok").exists());
});

both!(read_only_roots_are_readable_not_writable, |mut env| {
    let docs = env.home.join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(docs.join("a.txt"), "doc text").unwrap();
    let mut spec = env.spec(&[
        "/bin/sh",
        "-c",
        &format!("cat {d}/a.txt; echo x > {d}/b.txt", d = docs.display()),
    ]);
    spec.read_only = vec![docs.clone()];
    env.limits = Limits::default();
    let o = launch::run(&*env.sb, spec, env.run, std::future::pending(), None)
        .await
        .unwrap();
    assert_eq!(o.stdout.text, "doc text");
    assert!(!docs.join("b.txt").exists());
});

both!(cannot_connect_to_a_loopback_server, |env| {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let o = env
        .sh(&format!(
            "if command -v bash >/dev/null; then bash -c 'echo hi > /dev/tcp/127.0.0.1/{port}' && echo connected; fi; \
             if command -v python3 >/dev/null; then python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), 2)' && echo connected; fi; \
             exit 0"
        ))
        .await;
    assert!(!o.stdout.text.contains("connected"), "{o:?}");
    // Nothing reached the listener.
    assert_eq!(
        listener.accept().map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
});

// Issue 25.6: a host process's Unix socket inside the workspace (an SSH agent, a Docker socket)
// is a bind-mounted path; the command must not be able to connect to it.
both!(
    cannot_connect_to_a_host_unix_socket_in_the_workspace,
    |env| {
        let path = env.ws.join("agent.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let script = format!(
            "perl -MSocket -e 'socket(S, PF_UNIX, SOCK_STREAM, 0) or die \"socket: $!\\n\"; \
         connect(S, pack_sockaddr_un($ARGV[0])) or die \"connect: $!\\n\"; print \"connected\\n\"' {}",
            path.display()
        );
        let o = env.sh(&script).await;
        assert!(!o.stdout.text.contains("connected"), "{o:?}");
        assert!(!ok(&o), "{o:?}");
        // Nothing reached the host listener.
        assert!(listener.accept().is_err());
        // Unnamed socket pairs (used for a child's stdio by some runtimes) still work.
        let o = env
        .sh("perl -MSocket -e 'socketpair(A, B, AF_UNIX, SOCK_STREAM, 0) or die \"$!\"; print \"pair\\n\"'")
        .await;
        assert_eq!(o.stdout.text, "pair\n", "{o:?}");
    }
);

both!(no_new_privileges_and_no_capabilities, |env| {
    // Inside, even a setuid-root binary runs with no capabilities: no_new_privs, nosuid mounts
    // and an empty bounding set.
    let o = env
        .sh(
            "grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs)' /proc/self/status; \
             mount -t tmpfs none /tmp 2>/dev/null && echo mounted; \
             unshare -r true 2>/dev/null && echo unshared; \
             su -c id 2>/dev/null && echo su-ok; exit 0",
        )
        .await;
    let t = &o.stdout.text;
    assert!(t.contains("CapEff:\t0000000000000000"), "{t}");
    assert!(t.contains("CapPrm:\t0000000000000000"), "{t}");
    assert!(t.contains("CapBnd:\t0000000000000000"), "{t}");
    assert!(t.contains("NoNewPrivs:\t1"), "{t}");
    assert!(
        !t.contains("mounted") && !t.contains("unshared") && !t.contains("su-ok"),
        "{t}"
    );
});

both!(a_copied_setuid_binary_does_not_escalate, |env| {
    let copy = env.ws.join("suid-cat");
    std::fs::copy("/bin/cat", &copy).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let o = env
        .sh("./suid-cat /proc/self/status | grep -E '^(CapEff|Uid)'")
        .await;
    assert!(o.stdout.text.contains("CapEff:\t0000000000000000"), "{o:?}");
});

both!(a_fork_bomb_is_contained, |mut env| {
    env.limits.processes = 32;
    // Try to start 200 processes, then count (with builtins only: no fork left) what lives.
    let o = env
        .sh(
            "( i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done ) 2>/dev/null; \
             n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo \"alive $n\"",
        )
        .await;
    let live: usize = o
        .stdout
        .text
        .trim()
        .strip_prefix("alive ")
        .unwrap_or_else(|| panic!("{o:?}"))
        .parse()
        .unwrap();
    assert!((1..=33).contains(&live), "{live} processes alive: {o:?}");
});

both!(endless_output_is_capped_and_killed, |mut env| {
    env.run.output_cap = 1000;
    env.run.output_kill = 1 << 20;
    let o = env.sh("yes pincer").await;
    assert_eq!(o.finished.termination, Termination::OutputLimit);
    assert!(o.stdout.truncated);
    assert!(o.stdout.bytes > 1 << 20);
    assert!(o.stdout.text.len() < 1100, "{}", o.stdout.text.len());
    assert!(o.stdout.text.starts_with("pincer\n"));
    assert!(o.stdout.text.contains("bytes omitted"));
});

both!(a_sleeping_grandchild_is_killed_at_the_timeout, |mut env| {
    env.run.timeout = Some(Duration::from_millis(500));
    let marker = format!(
        "{}.{}",
        7000 + std::process::id() % 1000,
        if env.sb.kind() == SandboxKind::Native {
            424242
        } else {
            434343
        }
    );
    let o = env
        .sh(&format!("sh -c 'sleep {marker}' & sleep {marker}"))
        .await;
    assert_eq!(o.finished.termination, Termination::Timeout);
    // `drive` returned after the pipes closed: no process of the tree is left on the host.
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline);
        assert!(!text.contains(&marker), "survivor: {text}");
    }
});

both!(the_environment_is_exactly_the_spec, |env| {
    let o = env.sh("env").await;
    let keys: Vec<&str> = o
        .stdout
        .text
        .lines()
        .filter_map(|l| l.split('=').next())
        .collect();
    for k in &keys {
        assert!(
            ["PATH", "PWD", "SHLVL", "_", "OLDPWD"].contains(k),
            "{k} leaked: {o:?}"
        );
    }
});

both!(a_missing_command_is_a_typed_error, |env| {
    let e = launch::run(
        &*env.sb,
        env.spec(&["definitely-not-a-command-xyz"]),
        env.run,
        std::future::pending(),
        None,
    )
    .await
    .unwrap_err();
    assert!(e.is_command_not_found(), "{e:?}");
});

both!(non_utf8_output_is_replaced, |env| {
    let o = env.sh("printf 'a\\377b'").await;
    assert_eq!(o.stdout.text, "a\u{fffd}b");
});

/// Runs `spec` (which must print `started`), calls `at_start` when that arrives, then cancels.
async fn cancel_after_start(
    env: &Env,
    spec: ExecSpec,
    at_start: impl FnOnce() + Send,
) -> pincer_sandbox::Finished {
    let running = launch::spawn(&*env.sb, spec).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let mut pending = Some((tx, at_start));
    running
        .drive(
            env.run,
            async {
                let _ = rx.await;
            },
            move |_, b| {
                if b.starts_with(b"started")
                    && let Some((tx, at_start)) = pending.take()
                {
                    at_start();
                    let _ = tx.send(());
                }
            },
        )
        .await
        .unwrap()
}

both!(cancel_kills_the_tree, |env| {
    let spec = env.spec(&["/bin/sh", "-c", "echo started; exec sleep 1000"]);
    let f = cancel_after_start(&env, spec, || {}).await;
    assert_eq!(f.termination, Termination::Canceled);
});

#[tokio::test]
async fn a_broken_launcher_fails_closed() {
    // A "bwrap" that is not bwrap: the helper never speaks, so nothing counts as confined.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("bwrap");
    let mut f = std::fs::File::create(&fake).unwrap();
    writeln!(
        f,
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1"
    )
    .unwrap();
    drop(f);
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sb = Bwrap::new(&fake, HELPER);
    let ws = dir.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    let spec = ExecSpec {
        argv: vec!["true".into()],
        cwd: ws.clone(),
        env: vec![],
        workspace: ws,
        read_only: vec![],
        limits: Limits::default(),
        network: NetworkAccess::Off,
        writable: vec![],
        stdin_pipe: false,
        unix_sockets: false,
        control_pipe: false,
    };
    let e = launch::spawn(&sb, spec).await.unwrap_err();
    assert!(
        matches!(&e, SandboxError::Setup { step, message } if step == "launcher" && message.contains("No permissions")),
        "{e:?}"
    );
    let p = pincer_sandbox::probe(&sb, dir.path()).await;
    assert!(!p.is_enforced());
    assert!(p.fix.is_some());
}

#[tokio::test]
async fn the_native_probe_passes_here() {
    let dir = tempfile::tempdir().unwrap();
    let p = pincer_sandbox::probe(&Native::new(HELPER), dir.path()).await;
    assert!(p.is_enforced(), "{p:?}");
}

both!(the_spec_never_appears_in_a_command_line, |env| {
    // Environment values travel on the helper's stdin: no process's argv (world-readable in
    // /proc) may carry them while the command runs.
    let mut spec = env.spec(&["/bin/sh", "-c", "echo started; exec sleep 1000"]);
    spec.env
        .push(("SECRET_TOKEN".into(), "tok-5e3f9a17".into()));
    let mut leaks = None;
    let f = cancel_after_start(&env, spec, || {
        leaks = Some(
            std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
                .map(|c| String::from_utf8_lossy(&c).into_owned())
                .filter(|c| c.contains("tok-5e3f9a17"))
                .collect::<Vec<_>>(),
        );
    })
    .await;
    assert_eq!(f.termination, Termination::Canceled);
    let leaks = leaks.expect("the command started");
    assert!(leaks.is_empty(), "{leaks:?}");
});

both!(
    a_piped_stdin_reaches_the_command_and_nothing_else_leaks_in,
    |env| {
        use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
        let mut spec = env.spec(&[
            "/bin/sh",
            "-c",
            "read a; echo \"got:$a\"; read b; echo \"got:$b\"",
        ]);
        spec.stdin_pipe = true;
        let mut running = launch::spawn(&*env.sb, spec).await.unwrap();
        let mut stdin = running.take_stdin().expect("stdin kept");
        let mut out = tokio::io::BufReader::new(running.take_stdout().unwrap()).lines();
        // The spec frames the helper read are gone: the first line the command sees is ours.
        stdin.write_all(b"one\n").await.unwrap();
        assert_eq!(out.next_line().await.unwrap().as_deref(), Some("got:one"));
        stdin.write_all(b"two\n").await.unwrap();
        assert_eq!(out.next_line().await.unwrap().as_deref(), Some("got:two"));
        let f = running.wait().await.unwrap();
        assert_eq!(f.exit_code, Some(0));
    }
);

both!(without_stdin_pipe_the_command_reads_dev_null, |env| {
    let o = env
        .sh("if read x; then echo \"read:$x\"; else echo eof; fi")
        .await;
    assert_eq!(o.stdout.text, "eof\n");
});

both!(
    extra_writable_paths_are_writable_and_nothing_next_to_them,
    |env| {
        let extra = env.home.parent().unwrap().join("extra");
        std::fs::create_dir_all(&extra).unwrap();
        let mut spec = env.spec(&[
            "/bin/sh",
            "-c",
            &format!(
                "echo hi > {x}/made && echo ok; cat {h}/config.toml || echo no-home",
                x = extra.display(),
                h = env.home.display()
            ),
        ]);
        spec.writable = vec![extra.clone()];
        let o = launch::run(&*env.sb, spec, env.run, std::future::pending(), None)
            .await
            .unwrap();
        assert!(o.stdout.text.starts_with("ok\n"), "{o:?}");
        assert!(o.stdout.text.contains("no-home"), "{o:?}");
        assert!(!o.stdout.text.contains("sk-secret"), "{o:?}");
        assert_eq!(std::fs::read_to_string(extra.join("made")).unwrap(), "hi\n");
    }
);

/// The far end of the proxy port for these tests: a real TCP server (what Pincer's egress proxy
/// is in production) that answers every request with what it was asked, so the test sees that
/// the command's connection arrived outside the sandbox.
#[derive(Debug, Default)]
struct EchoProxy {
    seen: Arc<std::sync::Mutex<Vec<String>>>,
}

impl pincer_sandbox::NetworkProxy for EchoProxy {
    fn serve(&self, listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
        use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
        let seen = self.seen.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut r = tokio::io::BufReader::new(s);
                    let mut line = String::new();
                    if r.read_line(&mut line).await.is_err() {
                        return;
                    }
                    let line = line.trim_end().to_owned();
                    seen.lock().unwrap().push(line.clone());
                    let body = format!("via-proxy {line}");
                    let _ = r
                        .get_mut()
                        .write_all(
                            format!(
                                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .await;
                });
            }
        })
    }
}

fn need_curl() -> bool {
    let found = Path::new("/usr/bin/curl").is_file();
    assert!(found || !in_ci(), "curl is required under CI");
    if !found {
        eprintln!("SKIP (not CI): curl is not installed");
    }
    found
}

// Issue 18.5: with network through the proxy, the proxy port is the only way out. A request
// reaches Pincer's side; the host's loopback, direct connections and Unix sockets do not.
both!(network_through_the_proxy_reaches_only_the_proxy, |env| {
    if !need_curl() {
        return;
    }
    let host = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    host.set_nonblocking(true).unwrap();
    let port = host.local_addr().unwrap().port();
    let unix = env.ws.join("agent.sock");
    let unix_listener = std::os::unix::net::UnixListener::bind(&unix).unwrap();
    unix_listener.set_nonblocking(true).unwrap();
    let proxy = EchoProxy::default();
    let mut spec = env.spec(&[
        "/bin/sh",
        "-c",
        &format!(
            "curl -sS --max-time 20 http://example.test/page; echo; \
             curl -sS --max-time 5 --noproxy '*' http://127.0.0.1:{port}/ && echo DIRECT; \
             bash -c 'echo hi > /dev/tcp/127.0.0.1/{port}' && echo DIRECT; \
             perl -MSocket -e 'socket(S, PF_UNIX, SOCK_STREAM, 0) or die \"unix socket: $!\\n\"; \
               connect(S, pack_sockaddr_un($ARGV[0])) or die \"connect: $!\\n\"; print \"DIRECT\\n\"' {unix}; \
             echo \"$http_proxy $HTTPS_PROXY\"",
            unix = unix.display()
        ),
    ]);
    spec.network = NetworkAccess::Proxy;
    let o = launch::run(
        &*env.sb,
        spec,
        env.run,
        std::future::pending(),
        Some(&proxy),
    )
    .await
    .unwrap();
    assert!(
        o.stdout
            .text
            .starts_with("via-proxy GET http://example.test/page HTTP/1.1\n"),
        "{o:?}"
    );
    assert!(!o.stdout.text.contains("DIRECT"), "{o:?}");
    assert!(
        o.stderr
            .text
            .contains("unix socket: Operation not permitted"),
        "{o:?}"
    );
    assert!(
        o.stdout
            .text
            .contains("http://127.0.0.1:3128 http://127.0.0.1:3128"),
        "{o:?}"
    );
    assert_eq!(
        *proxy.seen.lock().unwrap(),
        vec!["GET http://example.test/page HTTP/1.1".to_owned()]
    );
    assert_eq!(
        host.accept().map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock
    );
    assert!(unix_listener.accept().is_err());
});

// Without a proxy to serve it, a proxy-mode command does not start.
both!(network_through_the_proxy_needs_a_proxy, |env| {
    let mut spec = env.spec(&["/bin/true"]);
    spec.network = NetworkAccess::Proxy;
    let e = launch::run(&*env.sb, spec, env.run, std::future::pending(), None)
        .await
        .unwrap_err();
    assert!(matches!(e, SandboxError::InvalidSpec(_)), "{e:?}");
});

// Where Landlock has TCP rules, the command can neither bind a port nor connect to another
// one inside its namespace (it could not reach anything there, but a listener would be a way to
// accept what it should not).
both!(network_through_the_proxy_binds_nothing, |env| {
    let proxy = EchoProxy::default();
    let mut spec = env.spec(&[
        "/usr/bin/python3",
        "-c",
        "import socket\ntry:\n    s = socket.socket(); s.bind(('127.0.0.1', 8080)); s.listen(); print('BOUND')\nexcept OSError as e:\n    print('refused', e.errno)",
    ]);
    spec.network = NetworkAccess::Proxy;
    let mut running = launch::spawn(&*env.sb, spec).await.unwrap();
    running.serve_proxy(&proxy).unwrap();
    let abi = running.ready().landlock_abi;
    let mut out = Vec::new();
    running
        .drive(env.run, std::future::pending(), |_, b| {
            out.extend_from_slice(b)
        })
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&out);
    if abi >= 4 {
        assert!(out.contains("refused 13"), "{out}");
    } else {
        eprintln!("Landlock ABI {abi} has no TCP rules: {out}");
    }
});

// The control pipe (the browser's CDP channel): descriptors 3 and 4 reach the parent and
// nothing else; without the option the command has neither.
both!(
    a_control_pipe_connects_descriptors_3_and_4_to_the_parent,
    |env| {
        use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
        let mut spec = env.spec(&[
            "/bin/sh",
            "-c",
            "read line <&3; echo \"got $line\" >&4; ls /proc/self/fd",
        ]);
        spec.control_pipe = true;
        let mut running = launch::spawn(&*env.sb, spec).await.unwrap();
        let (mut tx, rx) = running.take_channel().unwrap().expect("a channel");
        tx.write_all(b"ping\n").await.unwrap();
        let mut lines = tokio::io::BufReader::new(rx).lines();
        assert_eq!(
            lines.next_line().await.unwrap().as_deref(),
            Some("got ping")
        );
        let mut out = Vec::new();
        running
            .drive(env.run, std::future::pending(), |_, b| {
                out.extend_from_slice(b)
            })
            .await
            .unwrap();
        let fds: Vec<String> = String::from_utf8_lossy(&out)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        // stdio, the two pipe ends, and the directory `ls` is reading.
        assert!(fds.len() <= 6, "{fds:?}");
        // Unix sockets stay refused unless asked for.
        let o = env
        .sh("perl -MSocket -e 'socket(S, PF_UNIX, SOCK_STREAM, 0) or die \"unix socket: $!\\n\"'")
        .await;
        assert!(
            o.stderr
                .text
                .contains("unix socket: Operation not permitted"),
            "{o:?}"
        );
        let mut spec = env.spec(&[
        "perl",
        "-MSocket",
        "-e",
        "open(F, '<&=3') and print \"fd3\\n\"; socket(S, PF_UNIX, SOCK_STREAM, 0) or die \"unix socket: $!\\n\"; print \"unix ok\\n\"",
    ]);
        spec.unix_sockets = true;
        let o = launch::run(&*env.sb, spec, env.run, std::future::pending(), None)
            .await
            .unwrap();
        assert_eq!(o.stdout.text, "unix ok\n", "{o:?}");
    }
);

// A protocol peer on stdin with network (an MCP server): stdin is the socket pair that carried
// the handover, and the proxy port works as for a command.
both!(a_piped_stdin_and_the_proxy_together, |env| {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    if !need_curl() {
        return;
    }
    let proxy = EchoProxy::default();
    let mut spec = env.spec(&[
        "/bin/sh",
        "-c",
        "read a; echo \"got:$a\"; curl -sS --max-time 20 http://example.test/x; echo",
    ]);
    spec.stdin_pipe = true;
    spec.network = NetworkAccess::Proxy;
    let mut running = launch::spawn(&*env.sb, spec).await.unwrap();
    running.serve_proxy(&proxy).unwrap();
    let mut stdin = running.take_stdin().expect("stdin kept");
    let mut out = tokio::io::BufReader::new(running.take_stdout().unwrap()).lines();
    stdin.write_all(b"hello\n").await.unwrap();
    assert_eq!(out.next_line().await.unwrap().as_deref(), Some("got:hello"));
    assert_eq!(
        out.next_line().await.unwrap().as_deref(),
        Some("via-proxy GET http://example.test/x HTTP/1.1")
    );
    running.kill().await.unwrap();
});
