//! `shell.exec`: run one command in the sandbox and return its exit status and output.

use std::time::Duration;

use pincer_policy::Approved;
use pincer_sandbox::{RunLimits, SandboxError, Termination, launch};
use pincer_types::{Action, Capability, IdError, RiskTier};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{CommandArgs, PlannedCommand, sandbox_error, scope};
use crate::tool::parse_args;
use crate::{Tool, ToolContext, ToolError, ToolFuture, ToolOutput, ToolSpec};

/// Arguments of `shell.exec`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {
    /// Program and arguments, e.g. `["cargo", "test"]`. Give this or `command`.
    #[serde(default)]
    argv: Option<Vec<String>>,
    /// A shell command line, run as `/bin/sh -c <command>` inside the sandbox. Give this or
    /// `argv`.
    #[serde(default)]
    command: Option<String>,
    /// Working directory relative to the workspace (default `.`).
    #[serde(default)]
    cwd: Option<String>,
    /// Seconds before the command and everything it started are killed (default 120).
    #[serde(default)]
    timeout_secs: Option<u64>,
}

/// Runs a command inside the agent's sandbox.
#[derive(Debug)]
pub struct ShellExec {
    spec: ToolSpec,
}

impl ShellExec {
    /// The tool.
    ///
    /// # Errors
    /// Never in practice (literal name).
    pub fn new() -> Result<Self, IdError> {
        Ok(Self {
            spec: ToolSpec::for_args::<Args>(
                "shell.exec",
                "Run a command in a sandbox: the workspace is the only writable directory, \
                 there is no network, stdin is empty. Give `argv` (preferred) or a `command` \
                 string for /bin/sh. Returns the exit code, duration and output (long output \
                 keeps its start and end). Everything the command starts is killed at the timeout.",
                Capability::Exec,
                RiskTier::L1Mutating,
            )?,
        })
    }
}

impl Tool for ShellExec {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn plan(&self, ctx: &ToolContext, args: &Value) -> Result<Action, ToolError> {
        let a: Args = parse_args("shell.exec", args)?;
        let what = CommandArgs {
            argv: a.argv,
            command: a.command,
            cwd: a.cwd,
        };
        let (cmd, exec) = PlannedCommand::plan("shell.exec", ctx, what)?;
        let max = exec.settings.max_timeout.as_secs();
        let timeout = a
            .timeout_secs
            .unwrap_or(exec.settings.default_timeout.as_secs());
        if timeout == 0 || timeout > max {
            return Err(ToolError::InvalidArguments(format!(
                "shell.exec: `timeout_secs` must be 1..={max}"
            )));
        }
        let tier = exec.tier(&cmd.argv, cmd.shell);
        Ok(self
            .spec
            .action(
            tier,
            json!({"command": cmd, "timeout_secs": timeout, "sandbox": exec.sandbox.kind().as_str(),
                   "network": exec.network()}),
        )
            .with_sink(pincer_types::SinkKind::Exec, cmd.sink_args()))
    }

    fn run<'a>(&'a self, ctx: &'a ToolContext, action: Approved<Action>) -> ToolFuture<'a> {
        Box::pin(async move {
            let exec = scope(ctx)?;
            let detail = &action.action().detail;
            let cmd = PlannedCommand::from_detail(detail)?;
            let timeout = Duration::from_secs(detail["timeout_secs"].as_u64().unwrap_or(1));
            let limits = RunLimits {
                timeout: Some(timeout),
                output_cap: exec.settings.output_cap,
                output_kill: exec.settings.output_kill,
            };
            let spec = exec.spec(cmd.argv.clone(), &cmd.cwd, cmd.shell);
            let outcome = match launch::run(
                &**exec.sandbox(),
                spec,
                limits,
                std::future::pending(),
                exec.proxy(),
            )
            .await
            {
                Ok(o) => o,
                Err(e @ SandboxError::Setup { .. }) if e.is_command_not_found() => {
                    let message = match e {
                        SandboxError::Setup { message, .. } => message,
                        other => other.to_string(),
                    };
                    return Ok(ToolOutput {
                        content: json!({
                            "status": "not_found", "exit_code": 127,
                            "stdout": "", "stderr": message,
                        })
                        .to_string(),
                    });
                }
                Err(e) => return Err(sandbox_error(e)),
            };
            let f = &outcome.finished;
            let status = match f.termination {
                Termination::Exited => "exited",
                Termination::Timeout => "timeout",
                Termination::Canceled => "canceled",
                Termination::OutputLimit => "output_limit",
            };
            Ok(ToolOutput {
                content: json!({
                    "status": status,
                    "exit_code": f.exit_code,
                    "signal": f.signal,
                    "duration_ms": u64::try_from(f.duration.as_millis()).unwrap_or(u64::MAX),
                    "stdout": outcome.stdout.text,
                    "stderr": outcome.stderr.text,
                    "stdout_bytes": outcome.stdout.bytes,
                    "stderr_bytes": outcome.stderr.bytes,
                    "truncated": outcome.stdout.truncated || outcome.stderr.truncated,
                })
                .to_string(),
            })
        })
    }
}
