//! What to run and under which limits: the [`ExecSpec`] handed from the parent to the helper.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::SandboxError;

/// Host paths visible (read-only) inside every sandbox when they exist: the programs, their
/// libraries, and the few files under `/etc` that programs need to start and resolve users and
/// certificates. Nothing else of the host is mounted — no `/home`, no `/root`, no `/etc/shadow`,
/// no Pincer home. Symlinks (`/bin` → `usr/bin`) are recreated as symlinks.
pub const SYSTEM_PATHS: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/localtime",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/mime.types",
];

/// Network inside the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkAccess {
    /// An empty network namespace and no `socket(2)` at all.
    Off,
    /// An empty network namespace whose only listener is Pincer's egress proxy on
    /// [`PROXY_ADDR`]: the helper binds it inside the namespace before confinement and hands the
    /// listening socket to the parent ([`crate::Running::serve_proxy`]), which serves it. The
    /// command may create `AF_INET`/`AF_INET6` sockets only (no `AF_UNIX`, no netlink), and
    /// where Landlock has TCP rules (ABI 4+) may connect to the proxy port only and bind none.
    /// The proxy environment variables are set ([`PROXY_ENV`]).
    Proxy,
}

/// Where the egress proxy listens inside a [`NetworkAccess::Proxy`] sandbox.
pub const PROXY_ADDR: std::net::SocketAddrV4 =
    std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, PROXY_PORT);
/// The proxy's port inside the sandbox (the sandbox has its own network namespace, so any port
/// is free; this is the one HTTP proxies customarily use).
pub const PROXY_PORT: u16 = 3128;
/// Variables set to `http://127.0.0.1:3128` in a [`NetworkAccess::Proxy`] sandbox: curl, git,
/// cargo, pip, npm and most HTTP clients honour one of them. `no_proxy`/`NO_PROXY` are removed
/// (nothing is reachable without the proxy anyway).
pub const PROXY_ENV: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "all_proxy",
];

/// Kernel-enforced resource limits (rlimits) for the confined command and its children.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// CPU seconds (`RLIMIT_CPU`).
    pub cpu_secs: u64,
    /// Address space in bytes (`RLIMIT_AS`).
    pub memory_bytes: u64,
    /// Processes (`RLIMIT_NPROC`, counted inside the sandbox's user namespace).
    pub processes: u64,
    /// Open files per process (`RLIMIT_NOFILE`).
    pub open_files: u64,
    /// Largest file a process may write (`RLIMIT_FSIZE`).
    pub file_size_bytes: u64,
    /// Size of the private `/tmp`.
    pub tmp_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu_secs: 600,
            memory_bytes: 8 << 30,
            processes: 512,
            open_files: 1024,
            file_size_bytes: 1 << 30,
            tmp_bytes: 256 << 20,
        }
    }
}

/// One command to run confined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec {
    /// Program and arguments; a program without `/` is looked up in the sandbox's `PATH`.
    pub argv: Vec<String>,
    /// Working directory: the workspace or a directory inside it.
    pub cwd: PathBuf,
    /// The complete environment of the command (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// The only writable host directory.
    pub workspace: PathBuf,
    /// Extra host directories visible read-only.
    pub read_only: Vec<PathBuf>,
    /// Extra host directories visible read-write besides the workspace (an MCP server's
    /// `write_paths`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writable: Vec<PathBuf>,
    /// Resource limits.
    pub limits: Limits,
    /// Network access.
    pub network: NetworkAccess,
    /// Keep the command's stdin a pipe from the parent (a protocol peer: an MCP stdio server);
    /// otherwise it reads `/dev/null`. (With the proxy or a control pipe it is a Unix socket
    /// pair rather than a pipe.)
    #[serde(default)]
    pub stdin_pipe: bool,
    /// Allow `socket(AF_UNIX)` (seccomp otherwise refuses it). Only for a spec whose writable
    /// paths are a private scratch directory (the browser: Chromium's process singleton binds a
    /// Unix socket in its profile); a host socket bound into a shared workspace would otherwise
    /// be reachable.
    #[serde(default)]
    pub unix_sockets: bool,
    /// Give the command a control channel to the parent on descriptors 3 (it reads) and 4 (it
    /// writes) — Chromium's `--remote-debugging-pipe` convention; the parent's ends come from
    /// [`crate::Running::take_channel`].
    #[serde(default)]
    pub control_pipe: bool,
}

impl ExecSpec {
    /// Checks the spec and makes its paths canonical (so no symlink in a configured path can
    /// redirect a mount).
    ///
    /// # Errors
    /// [`SandboxError::InvalidSpec`] naming what is wrong.
    pub fn validated(mut self) -> Result<Self, SandboxError> {
        let bad = |m: String| Err(SandboxError::InvalidSpec(m));
        if self.argv.is_empty() || self.argv[0].is_empty() {
            return bad("argv is empty".into());
        }
        if let Some(a) = self.argv.iter().find(|a| a.contains('\0')) {
            return bad(format!("argument contains a NUL byte: {a:?}"));
        }
        for (k, v) in &self.env {
            if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
                return bad(format!("invalid environment variable {k:?}"));
            }
        }
        self.workspace = canonical(&self.workspace, "workspace")?;
        if self.workspace == Path::new("/") {
            return bad("the workspace cannot be `/`".into());
        }
        self.cwd = canonical(&self.cwd, "working directory")?;
        if !self.cwd.starts_with(&self.workspace) {
            return bad(format!(
                "working directory {} is outside the workspace {}",
                self.cwd.display(),
                self.workspace.display()
            ));
        }
        self.read_only = self
            .read_only
            .iter()
            .map(|p| canonical(p, "read-only path"))
            .collect::<Result<_, _>>()?;
        self.writable = self
            .writable
            .iter()
            .map(|p| canonical(p, "writable path"))
            .collect::<Result<_, _>>()?;
        if let Some(p) = self.writable.iter().find(|p| p.as_path() == Path::new("/")) {
            return bad(format!("writable path {} cannot be `/`", p.display()));
        }
        if self.network == NetworkAccess::Proxy {
            self.env.retain(|(k, _)| {
                !PROXY_ENV.contains(&k.as_str()) && k != "no_proxy" && k != "NO_PROXY"
            });
            let url = format!("http://{PROXY_ADDR}");
            self.env
                .extend(PROXY_ENV.iter().map(|k| ((*k).to_owned(), url.clone())));
        }
        Ok(self)
    }
}

impl ExecSpec {
    /// Whether the helper hands descriptors to the parent (then stdin is a socket pair).
    pub(crate) fn hands_over(&self) -> bool {
        self.network == NetworkAccess::Proxy || self.control_pipe
    }
}

fn canonical(p: &Path, what: &str) -> Result<PathBuf, SandboxError> {
    if !p.is_absolute() {
        return Err(SandboxError::InvalidSpec(format!(
            "{what} {} is not absolute",
            p.display()
        )));
    }
    let c = std::fs::canonicalize(p)
        .map_err(|e| SandboxError::InvalidSpec(format!("{what} {}: {e}", p.display())))?;
    if !c.is_dir() {
        return Err(SandboxError::InvalidSpec(format!(
            "{what} {} is not a directory",
            c.display()
        )));
    }
    if c.to_str().is_none() {
        return Err(SandboxError::InvalidSpec(format!(
            "{what} {} is not valid UTF-8",
            c.display()
        )));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ws: &Path) -> ExecSpec {
        ExecSpec {
            argv: vec!["true".into()],
            cwd: ws.to_path_buf(),
            env: vec![],
            workspace: ws.to_path_buf(),
            read_only: vec![],
            writable: vec![],
            limits: Limits::default(),
            network: NetworkAccess::Off,
            stdin_pipe: false,
            unix_sockets: false,
            control_pipe: false,
        }
    }

    #[test]
    fn cwd_must_stay_in_the_workspace() {
        let d = tempfile::tempdir().unwrap();
        let ws = d.path().join("ws");
        std::fs::create_dir(&ws).unwrap();
        let mut s = spec(&ws);
        s.cwd = d.path().to_path_buf();
        assert!(matches!(s.validated(), Err(SandboxError::InvalidSpec(_))));
        // A symlink inside the workspace pointing out is resolved, then refused.
        std::os::unix::fs::symlink(d.path(), ws.join("out")).unwrap();
        let mut s = spec(&ws);
        s.cwd = ws.join("out");
        assert!(matches!(s.validated(), Err(SandboxError::InvalidSpec(_))));
    }

    #[test]
    fn nul_bytes_and_empty_argv_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let mut s = spec(d.path());
        s.argv = vec![];
        assert!(s.validated().is_err());
        let mut s = spec(d.path());
        s.argv = vec!["a\0b".into()];
        assert!(s.validated().is_err());
        let mut s = spec(d.path());
        s.env = vec![("A=B".into(), "x".into())];
        assert!(s.validated().is_err());
        assert!(spec(d.path()).validated().is_ok());
    }

    #[test]
    fn proxy_mode_sets_the_proxy_environment_and_drops_no_proxy() {
        let d = tempfile::tempdir().unwrap();
        let mut s = spec(d.path());
        s.network = NetworkAccess::Proxy;
        s.env = vec![
            ("NO_PROXY".into(), "*".into()),
            ("HTTPS_PROXY".into(), "http://evil:1".into()),
            ("KEEP".into(), "1".into()),
        ];
        let v = s.clone().validated().unwrap();
        assert!(v.env.iter().all(|(k, _)| k != "NO_PROXY"));
        assert!(v.env.contains(&("KEEP".into(), "1".into())));
        for k in PROXY_ENV {
            let vals: Vec<_> = v.env.iter().filter(|(e, _)| e == k).collect();
            assert_eq!(vals.len(), 1, "{k}");
            assert_eq!(vals[0].1, "http://127.0.0.1:3128");
        }
        // A protocol peer on stdin with network (an MCP server): allowed, stdin is then the
        // socket pair that also carried the handover.
        s.stdin_pipe = true;
        assert!(s.validated().is_ok());
    }
}
