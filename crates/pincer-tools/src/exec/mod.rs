//! Command execution (C5): `shell.exec` and `process`, only ever through a [`Sandbox`].
//!
//! These tools exist in a registry only when the configured sandbox passed its probe (see
//! `ToolRegistry::with_exec`); an agent's [`ExecScope`] carries the sandbox, the workspace, the
//! limits and the environment. The policy engine still decides every call (`Capability::Exec`,
//! risk tier), and every call is audited by the gate like any other tool.

mod log;
mod process;
mod shell;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pincer_sandbox::{ExecSpec, Limits, NetworkAccess, NetworkProxy, Sandbox};
use pincer_types::RiskTier;
use serde::{Deserialize, Serialize};

pub use process::{ProcessTable, ProcessTool};
pub use shell::ShellExec;

use crate::fs::WORKSPACE;
use crate::{ToolContext, ToolError};

/// Longest `command` string accepted.
const MAX_COMMAND: usize = 64 * 1024;
/// Most argv entries accepted.
const MAX_ARGS: usize = 4096;

/// Per-call limits enforced by the parent.
#[derive(Debug, Clone)]
pub struct ExecSettings {
    /// Timeout when the call names none.
    pub default_timeout: Duration,
    /// Largest timeout a call may ask for.
    pub max_timeout: Duration,
    /// Bytes of each stream returned.
    pub output_cap: usize,
    /// Output after which a command is killed.
    pub output_kill: u64,
    /// Background processes one agent may run at once.
    pub max_background: usize,
    /// Kill background processes when the run that started them ends (else when the scope is
    /// dropped: session end or Pincer exit).
    pub kill_background_at_run_end: bool,
}

/// What an agent's commands run in.
#[derive(Debug)]
pub struct ExecScope {
    sandbox: Arc<dyn Sandbox>,
    workspace: PathBuf,
    read_only: Vec<PathBuf>,
    env: Vec<(String, String)>,
    limits: Limits,
    settings: ExecSettings,
    allow: Vec<Vec<String>>,
    processes: ProcessTable,
    /// With the network on: the egress proxy commands reach the network through.
    proxy: Option<Arc<dyn NetworkProxy>>,
}

impl ExecScope {
    /// A scope running commands in `sandbox` with `workspace` writable and `read_only` visible.
    /// `allow` are argv prefixes that lower `shell.exec`'s tier to `L1_MUTATING`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        sandbox: Arc<dyn Sandbox>,
        workspace: PathBuf,
        read_only: Vec<PathBuf>,
        env: Vec<(String, String)>,
        limits: Limits,
        settings: ExecSettings,
        allow: Vec<Vec<String>>,
    ) -> Self {
        Self {
            sandbox,
            workspace,
            read_only,
            env,
            limits,
            processes: ProcessTable::new(settings.max_background),
            settings,
            allow,
            proxy: None,
        }
    }

    /// Commands get network through `proxy` (D4): the only route out of their sandbox is its
    /// proxy port, served by `proxy` under the egress policy.
    #[must_use]
    pub fn with_network(mut self, proxy: Arc<dyn NetworkProxy>) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// The proxy commands reach the network through, if any.
    pub fn proxy(&self) -> Option<&dyn NetworkProxy> {
        self.proxy.as_deref()
    }

    /// How commands reach the network, as shown in approvals: `"proxy"` or `"off"`.
    pub fn network(&self) -> &'static str {
        if self.proxy.is_some() { "proxy" } else { "off" }
    }

    /// The environment a command gets: a fixed base plus `pass` (already-filtered
    /// `NAME=value` pairs from Pincer's environment).
    pub fn base_env(pass: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("PATH", "/usr/local/bin:/usr/bin:/bin"),
            ("HOME", "/tmp"),
            ("TMPDIR", "/tmp"),
            ("LANG", "C.UTF-8"),
            ("TERM", "dumb"),
            ("PINCER_SANDBOX", "1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in pass {
            env.retain(|(e, _)| *e != k);
            env.push((k, v));
        }
        env
    }

    /// The sandbox in use.
    pub fn sandbox(&self) -> &Arc<dyn Sandbox> {
        &self.sandbox
    }

    /// Background processes of this agent.
    pub fn processes(&self) -> &ProcessTable {
        &self.processes
    }

    /// Called when a run ends: kills the background processes that run started, when so
    /// configured (other runs of the same agent keep theirs).
    pub fn end_run(&self, run: pincer_types::RunId) {
        if self.settings.kill_background_at_run_end {
            self.processes.kill_run(run);
        }
    }

    fn spec(&self, argv: Vec<String>, cwd: &str, shell: bool) -> ExecSpec {
        let mut env = self.env.clone();
        if self.tier(&argv, shell) == RiskTier::L1Mutating {
            env.extend(GIT_NEUTRALISERS.iter().enumerate().flat_map(|(i, (k, v))| {
                [
                    (format!("GIT_CONFIG_KEY_{i}"), (*k).to_owned()),
                    (format!("GIT_CONFIG_VALUE_{i}"), (*v).to_owned()),
                ]
            }));
            env.push((
                "GIT_CONFIG_COUNT".into(),
                GIT_NEUTRALISERS.len().to_string(),
            ));
        }
        ExecSpec {
            argv,
            cwd: self.workspace.join(cwd),
            env,
            workspace: self.workspace.clone(),
            read_only: self.read_only.clone(),
            limits: self.limits,
            network: if self.proxy.is_some() {
                NetworkAccess::Proxy
            } else {
                NetworkAccess::Off
            },
            writable: vec![],
            stdin_pipe: false,
            unix_sockets: false,
            control_pipe: false,
        }
    }

    /// `L1` when `argv` starts with an allowed prefix, else `L2`. Shell strings never match:
    /// what `sh -c` runs cannot be read off its argv.
    fn tier(&self, argv: &[String], shell: bool) -> RiskTier {
        let allowed = !shell
            && self.allow.iter().any(|prefix| {
                !prefix.is_empty()
                    && prefix.len() <= argv.len()
                    && prefix.iter().zip(argv).all(|(p, a)| p == a)
            });
        if allowed {
            RiskTier::L1Mutating
        } else {
            RiskTier::L2Destructive
        }
    }
}

/// Git settings forced (at command-line precedence, via `GIT_CONFIG_COUNT`) on allowlisted
/// commands, which run without approval: the workspace is model-writable, so its repository must
/// not name programs for git to run — no fsmonitor hook, no hooks directory, and no implicit
/// bare repository (a directory the model filled with `HEAD`, `config`, `objects/`, `refs/`).
/// File tools additionally need a human for any write under `.git` (`fs::path::write_tier`).
const GIT_NEUTRALISERS: [(&str, &str); 3] = [
    ("core.fsmonitor", "false"),
    ("core.hooksPath", "/dev/null"),
    ("safe.bareRepository", "explicit"),
];

/// What to run, as the model asks for it (shared by `shell.exec` and `process start`).
#[derive(Debug, Clone, Default)]
pub(crate) struct CommandArgs {
    pub(crate) argv: Option<Vec<String>>,
    pub(crate) command: Option<String>,
    pub(crate) cwd: Option<String>,
}

/// A resolved command: what the policy sees and what runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlannedCommand {
    argv: Vec<String>,
    cwd: String,
    shell: bool,
}

impl PlannedCommand {
    /// The command as a sink argument (D9): the shell string, or the argv joined.
    pub(crate) fn sink_args(&self) -> Vec<pincer_types::SinkArg> {
        let text = if self.shell {
            self.argv.last().cloned().unwrap_or_default()
        } else {
            self.argv.join(" ")
        };
        vec![pincer_types::SinkArg::new(
            "command",
            pincer_types::ArgRole::Text,
            text,
        )]
    }

    /// Validates and resolves `args` against the agent's scope.
    fn plan<'c>(
        tool: &str,
        ctx: &'c ToolContext,
        args: CommandArgs,
    ) -> Result<(Self, &'c ExecScope), ToolError> {
        let exec = scope(ctx)?;
        let bad = |m: &str| Err(ToolError::InvalidArguments(format!("{tool}: {m}")));
        let (argv, shell) = match (args.argv, args.command) {
            (Some(_), Some(_)) => return bad("give `argv` or `command`, not both"),
            (None, None) => return bad("give `argv` (a list) or `command` (a string)"),
            (Some(argv), None) => {
                if argv.first().is_none_or(String::is_empty) {
                    return bad("`argv` must start with a program name");
                }
                (argv, false)
            }
            (None, Some(c)) => {
                if c.trim().is_empty() {
                    return bad("`command` is empty");
                }
                if c.len() > MAX_COMMAND {
                    return bad("`command` is longer than 64 KiB");
                }
                (vec!["/bin/sh".into(), "-c".into(), c], true)
            }
        };
        if argv.len() > MAX_ARGS {
            return bad("too many arguments");
        }
        if argv.iter().any(|a| a.contains('\0')) {
            return bad("arguments cannot contain NUL bytes");
        }
        let cwd = ctx
            .fs
            .check_dir(WORKSPACE, args.cwd.as_deref().unwrap_or("."))?;
        Ok((Self { argv, cwd, shell }, exec))
    }

    fn from_detail(detail: &serde_json::Value) -> Result<Self, ToolError> {
        serde_json::from_value(detail["command"].clone())
            .map_err(|e| ToolError::Internal(format!("approved action is malformed: {e}")))
    }
}

fn scope(ctx: &ToolContext) -> Result<&ExecScope, ToolError> {
    ctx.exec.as_deref().ok_or_else(|| {
        ToolError::Forbidden(
            "command execution is not available to this agent (no enforced sandbox)".into(),
        )
    })
}

/// How a sandbox failure reaches the model.
fn sandbox_error(e: pincer_sandbox::SandboxError) -> ToolError {
    match e {
        pincer_sandbox::SandboxError::InvalidSpec(m) => ToolError::InvalidArguments(m),
        other => ToolError::Failed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tool;
    use serde_json::json;

    fn ctx(dir: &std::path::Path) -> ToolContext {
        let settings = ExecSettings {
            default_timeout: Duration::from_secs(120),
            max_timeout: Duration::from_secs(600),
            output_cap: 1024,
            output_kill: 1 << 20,
            max_background: 2,
            kill_background_at_run_end: true,
        };
        let exec = ExecScope::new(
            Arc::new(pincer_sandbox::Native::new("/nonexistent-helper")),
            dir.to_path_buf(),
            vec![],
            ExecScope::base_env([]),
            Limits::default(),
            settings,
            vec![
                vec!["cargo".into(), "test".into()],
                vec!["git".into(), "status".into()],
            ],
        );
        ToolContext {
            agent: "main".parse().unwrap(),
            fs: Arc::new(crate::fs::FsScope::open(dir, &Default::default(), &[]).unwrap()),
            exec: Some(Arc::new(exec)),
            run: None,
        }
    }

    #[test]
    fn allowlisted_argv_prefixes_lower_the_tier_and_shell_strings_never_do() {
        let d = tempfile::tempdir().unwrap();
        let c = ctx(d.path());
        let t = ShellExec::new().unwrap();
        let tier = |args| t.plan(&c, &args).unwrap().tier;
        assert_eq!(
            tier(json!({"argv": ["cargo", "test", "--all"]})),
            RiskTier::L1Mutating
        );
        assert_eq!(
            tier(json!({"argv": ["git", "status"]})),
            RiskTier::L1Mutating
        );
        assert_eq!(
            tier(json!({"argv": ["cargo", "testx"]})),
            RiskTier::L2Destructive
        );
        assert_eq!(tier(json!({"argv": ["cargo"]})), RiskTier::L2Destructive);
        assert_eq!(
            tier(json!({"argv": ["rm", "-rf", "."]})),
            RiskTier::L2Destructive
        );
        assert_eq!(
            tier(json!({"command": "cargo test"})),
            RiskTier::L2Destructive
        );
    }

    #[test]
    fn bad_arguments_are_refused_at_plan_time() {
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("link")).unwrap();
        let c = ctx(d.path());
        let t = ShellExec::new().unwrap();
        for args in [
            json!({}),
            json!({"argv": [], "command": "x"}),
            json!({"argv": ["ls"], "command": "ls"}),
            json!({"argv": [""]}),
            json!({"command": "  "}),
            json!({"argv": ["a\u{0}b"]}),
            json!({"argv": ["ls"], "timeout_secs": 0}),
            json!({"argv": ["ls"], "timeout_secs": 601}),
            json!({"argv": ["ls"], "cwd": "../.."}),
            json!({"argv": ["ls"], "cwd": "/etc"}),
            json!({"argv": ["ls"], "bogus": 1}),
        ] {
            assert!(t.plan(&c, &args).is_err(), "{args}");
        }
        // A symlinked cwd is refused too (it would lead out of the workspace).
        assert!(t.plan(&c, &json!({"argv": ["ls"], "cwd": "link"})).is_err());
        let a = t.plan(&c, &json!({"argv": ["ls"]})).unwrap();
        assert_eq!(a.detail["timeout_secs"], 120);
        assert_eq!(a.capability, pincer_types::Capability::Exec);
    }

    #[test]
    fn without_an_exec_scope_exec_is_forbidden() {
        let d = tempfile::tempdir().unwrap();
        let mut c = ctx(d.path());
        c.exec = None;
        let err = ShellExec::new()
            .unwrap()
            .plan(&c, &json!({"argv": ["ls"]}))
            .unwrap_err();
        assert!(matches!(err, ToolError::Forbidden(_)), "{err:?}");
    }

    #[test]
    fn process_actions_have_their_tiers() {
        let d = tempfile::tempdir().unwrap();
        let c = ctx(d.path());
        let t = ProcessTool::new().unwrap();
        let tier = |args| t.plan(&c, &args).unwrap().tier;
        assert_eq!(tier(json!({"action": "list"})), RiskTier::L0ReadOnly);
        assert_eq!(
            tier(json!({"action": "poll", "id": "p1"})),
            RiskTier::L0ReadOnly
        );
        assert_eq!(
            tier(json!({"action": "kill", "id": "p1"})),
            RiskTier::L1Mutating
        );
        assert_eq!(
            tier(json!({"action": "start", "command": "sleep 1"})),
            RiskTier::L2Destructive
        );
        assert!(t.plan(&c, &json!({"action": "poll"})).is_err());
    }
}
