//! The one place the CLI decides whether an agent gets command execution (D3): exec must be
//! switched on (`security.exec = "sandboxed"`), a provider chosen (`security.sandbox`), the
//! agent granted `shell.exec` or `process`, and a real confined probe must pass. Otherwise the
//! exec tools are not registered and nothing runs — never unconfined.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pincer_config::{AgentConfig, Config, ExecMode, ProcessCleanup, SandboxProvider, argv_prefix};
use pincer_sandbox::{Bwrap, Limits, Native, Probe, Sandbox, SandboxError, SandboxKind};
use pincer_tools::fs::{ProtectedPath, Protection};
use pincer_tools::{ExecScope, ExecSettings};
use pincer_types::ToolName;

use crate::Env;

/// Tools that need a sandbox.
pub const EXEC_TOOLS: [&str; 2] = ["shell.exec", "process"];

/// Builds the provider for `kind`.
pub fn provider(kind: SandboxKind) -> Result<Arc<dyn Sandbox>, SandboxError> {
    Ok(match kind {
        SandboxKind::Native => Arc::new(Native::this_binary()),
        SandboxKind::Bwrap => Arc::new(Bwrap::locate(std::env::var_os("PATH").as_deref())?),
    })
}

/// The configured provider kind, `None` for `security.sandbox = "none"`.
pub fn configured(config: &Config) -> Option<SandboxKind> {
    match config.security.sandbox {
        SandboxProvider::Native => Some(SandboxKind::Native),
        SandboxProvider::Bwrap => Some(SandboxKind::Bwrap),
        SandboxProvider::None => None,
    }
}

/// Probes `kind` by running a confined `true` in `workdir`.
pub async fn probe(kind: SandboxKind, workdir: &Path) -> Probe {
    match provider(kind) {
        Ok(sb) => pincer_sandbox::probe(&*sb, workdir).await,
        Err(e) => Probe::failed(kind, &e),
    }
}

/// `p` made canonical as far as it exists (a missing tail is kept as written).
fn canonical(p: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut cur = p.to_path_buf();
    loop {
        if let Ok(c) = std::fs::canonicalize(&cur) {
            return missing.iter().rev().fold(c, |acc, part| acc.join(part));
        }
        match (cur.file_name().map(ToOwned::to_owned), cur.parent()) {
            (Some(name), Some(parent)) => {
                missing.push(name);
                cur = parent.to_path_buf();
            }
            _ => return p.to_path_buf(),
        }
    }
}

/// A protected path the sandbox's mounts would expose, described.
fn overlap(
    workspace: &Path,
    read_roots: &std::collections::BTreeMap<String, PathBuf>,
    protected: &[ProtectedPath],
) -> Option<String> {
    let ws = canonical(workspace);
    for p in protected {
        let pp = canonical(&p.path);
        if pp.starts_with(&ws) || ws.starts_with(&pp) {
            return Some(format!(
                "the workspace {} overlaps {} ({}); give the agent a workspace that holds no Pincer files",
                ws.display(),
                pp.display(),
                p.label
            ));
        }
        if p.protection == Protection::NoAccess {
            for (name, root) in read_roots {
                let r = canonical(root);
                if pp.starts_with(&r) || r.starts_with(&pp) {
                    return Some(format!(
                        "read root `{name}` ({}) overlaps {} ({})",
                        r.display(),
                        pp.display(),
                        p.label
                    ));
                }
            }
        }
    }
    None
}

/// The kernel limits of `[exec]`, for agents' commands and MCP servers alike.
pub fn limits(config: &Config) -> Limits {
    let x = &config.exec;
    Limits {
        cpu_secs: x.cpu_secs,
        memory_bytes: x.memory_mb.saturating_mul(1 << 20),
        processes: x.max_processes,
        open_files: x.max_open_files,
        file_size_bytes: x.max_file_size_mb.saturating_mul(1 << 20),
        tmp_bytes: x.tmp_size_mb.saturating_mul(1 << 20),
    }
}

/// Why an agent has no exec tools, or its scope.
#[derive(Debug)]
pub enum ExecState {
    /// Exec is available.
    On(Arc<ExecScope>),
    /// Not wanted: exec off, sandbox `none`, or the agent is not granted exec tools.
    NotWanted,
    /// Wanted but the sandbox cannot be enforced here.
    Unavailable(String),
}

/// Decides and, when everything holds, builds the agent's exec scope.
///
/// The sandbox mounts the workspace read-write and the read roots read-only as whole trees, so
/// a workspace that contains (or lies inside) a protected path, or a read root that contains a
/// no-access path, would expose it: exec is then unavailable rather than weaker (D1).
pub async fn exec_state(
    config: &Config,
    a: &AgentConfig,
    granted: &std::collections::BTreeSet<ToolName>,
    workspace: &Path,
    protected: &[ProtectedPath],
    env: &Env,
    proxy: Option<Arc<dyn pincer_sandbox::NetworkProxy>>,
) -> ExecState {
    let wanted = EXEC_TOOLS
        .iter()
        .any(|t| granted.iter().any(|g| g.as_str() == *t));
    let kind = match (config.security.exec, configured(config)) {
        (ExecMode::Sandboxed, Some(kind)) if wanted => kind,
        _ => return ExecState::NotWanted,
    };
    if let Some(why) = overlap(workspace, &a.read_roots, protected) {
        return ExecState::Unavailable(why);
    }
    let sb = match provider(kind) {
        Ok(sb) => sb,
        Err(e) => return ExecState::Unavailable(e.to_string()),
    };
    let p = pincer_sandbox::probe(&*sb, workspace).await;
    if !p.is_enforced() {
        return ExecState::Unavailable(p.error.unwrap_or_default());
    }
    let x = &config.exec;
    let limits = limits(config);
    let settings = ExecSettings {
        default_timeout: Duration::from_secs(x.timeout_secs),
        max_timeout: Duration::from_secs(x.max_timeout_secs),
        output_cap: x.output_cap_bytes,
        output_kill: x.output_kill_bytes,
        max_background: x.max_background,
        kill_background_at_run_end: x.process_cleanup == ProcessCleanup::Run,
    };
    let pass = x
        .env_allow
        .iter()
        .filter_map(|k| env.var(k).map(|v| (k.clone(), v)));
    let allow = a
        .exec_allow
        .iter()
        .map(|e| argv_prefix(e).into_iter().map(str::to_owned).collect())
        .collect();
    let scope = ExecScope::new(
        sb,
        workspace.to_path_buf(),
        a.read_roots.values().cloned().collect(),
        ExecScope::base_env(pass),
        limits,
        settings,
        allow,
    );
    // With the network on, commands reach it through the egress proxy (D4); otherwise their
    // sandbox has no network at all.
    ExecState::On(Arc::new(match proxy {
        Some(p) => scope.with_network(p),
        None => scope,
    }))
}
