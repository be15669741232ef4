//! `process`: background commands in the sandbox — start, list, poll new output, tail the log,
//! kill. Each agent has a cap on running processes; they are killed at run end or when the
//! agent's scope goes away (session end, Pincer exit), per `[exec] process_cleanup`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use pincer_policy::Approved;
use pincer_sandbox::{Finished, RunLimits, SandboxError, Termination, launch};
use pincer_types::{Action, Capability, IdError, RiskTier};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use super::log::OutputLog;
use super::{CommandArgs, PlannedCommand, sandbox_error, scope};
use crate::tool::parse_args;
use crate::{Tool, ToolContext, ToolError, ToolFuture, ToolOutput, ToolSpec};

/// Bytes of output held per process.
const LOG_CAP: usize = 256 * 1024;
/// Finished processes kept for `list`/`poll`/`log`.
const KEEP_FINISHED: usize = 16;
/// Longest `poll` wait.
const MAX_WAIT_SECS: u64 = 30;
/// How long `kill` waits for the tree to be gone.
const KILL_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Proc {
    id: String,
    /// The run that started it.
    run: Option<pincer_types::RunId>,
    argv: Vec<String>,
    cwd: String,
    started_at: DateTime<Utc>,
    state: Mutex<ProcState>,
    kill: Notify,
    done: watch::Sender<bool>,
    /// Bytes of output so far, for `poll` with `wait_secs`.
    progress: watch::Sender<u64>,
}

#[derive(Debug)]
struct ProcState {
    log: OutputLog,
    cursor: u64,
    finished: Option<Result<Finished, String>>,
}

impl Proc {
    fn state(&self) -> MutexGuard<'_, ProcState> {
        // A poisoned lock only means a panic elsewhere; the log itself is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn summary(&self) -> Value {
        let st = self.state();
        let (status, exit_code) = match &st.finished {
            None => ("running", None),
            Some(Ok(f)) => (
                match f.termination {
                    Termination::Exited => "exited",
                    Termination::Canceled => "killed",
                    Termination::Timeout => "timeout",
                    Termination::OutputLimit => "output_limit",
                },
                f.exit_code,
            ),
            Some(Err(_)) => ("failed", None),
        };
        json!({"id": self.id, "argv": self.argv, "cwd": self.cwd, "status": status,
               "exit_code": exit_code, "started_at": self.started_at.to_rfc3339(),
               "output_bytes": st.log.end()})
    }
}

/// One agent's background processes.
#[derive(Debug)]
pub struct ProcessTable {
    max: usize,
    next: AtomicU64,
    procs: Mutex<BTreeMap<u64, Arc<Proc>>>,
}

impl ProcessTable {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            next: AtomicU64::new(1),
            procs: Mutex::new(BTreeMap::new()),
        }
    }

    fn procs(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<Proc>>> {
        self.procs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Processes still running.
    pub fn running(&self) -> usize {
        self.procs()
            .values()
            .filter(|p| p.state().finished.is_none())
            .count()
    }

    /// Kills every running process (they finish in the background).
    pub fn kill_all(&self) {
        for p in self.procs().values() {
            p.kill.notify_one();
        }
    }

    /// Kills the processes `run` started.
    pub fn kill_run(&self, run: pincer_types::RunId) {
        for p in self.procs().values().filter(|p| p.run == Some(run)) {
            p.kill.notify_one();
        }
    }

    fn get(&self, id: &str) -> Result<Arc<Proc>, ToolError> {
        let n = id.strip_prefix('p').and_then(|n| n.parse::<u64>().ok());
        n.and_then(|n| self.procs().get(&n).cloned())
            .ok_or_else(|| ToolError::InvalidArguments(format!("process: no process `{id}`")))
    }

    fn insert(&self, n: u64, p: Arc<Proc>) {
        let mut procs = self.procs();
        procs.insert(n, p);
        let finished: Vec<u64> = procs
            .iter()
            .filter(|(_, p)| p.state().finished.is_some())
            .map(|(k, _)| *k)
            .collect();
        for k in finished
            .iter()
            .take(finished.len().saturating_sub(KEEP_FINISHED))
        {
            procs.remove(k);
        }
    }
}

impl Drop for ProcessTable {
    fn drop(&mut self) {
        self.kill_all();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Verb {
    Start,
    List,
    Poll,
    Log,
    Kill,
}

/// Arguments of `process`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {
    /// `start` a command, `list` processes, `poll` new output of `id`, `log` (last `lines` of
    /// `id`'s output), `kill` `id`.
    action: Verb,
    /// start: program and arguments. Give this or `command`.
    #[serde(default)]
    argv: Option<Vec<String>>,
    /// start: a shell command line for /bin/sh. Give this or `argv`.
    #[serde(default)]
    command: Option<String>,
    /// start: working directory relative to the workspace (default `.`).
    #[serde(default)]
    cwd: Option<String>,
    /// poll, log, kill: the process id returned by `start` (`p1`, …).
    #[serde(default)]
    id: Option<String>,
    /// log: how many lines (default 50, at most 1000).
    #[serde(default)]
    lines: Option<usize>,
    /// poll: wait up to this many seconds (at most 30) for new output or the end (default 0).
    #[serde(default)]
    wait_secs: Option<u64>,
}

/// Background commands in the agent's sandbox.
#[derive(Debug)]
pub struct ProcessTool {
    spec: ToolSpec,
}

impl ProcessTool {
    /// The tool.
    ///
    /// # Errors
    /// Never in practice (literal name).
    pub fn new() -> Result<Self, IdError> {
        Ok(Self {
            spec: ToolSpec::for_args::<Args>(
                "process",
                "Background commands in the same sandbox as shell.exec (no network, only the \
                 workspace writable): `start` returns an id; `list`; `poll` returns output \
                 since the last poll (waiting up to `wait_secs` for some); `log` returns the last lines; `kill` stops the process and \
                 everything it started. Processes are stopped when the run ends.",
                Capability::Exec,
                RiskTier::L0ReadOnly,
            )?,
        })
    }
}

impl Tool for ProcessTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn plan(&self, ctx: &ToolContext, args: &Value) -> Result<Action, ToolError> {
        let a: Args = parse_args("process", args)?;
        let need_id = || {
            a.id.clone().ok_or_else(|| {
                ToolError::InvalidArguments("process: this action needs `id`".into())
            })
        };
        Ok(match a.action {
            Verb::Start => {
                let what = CommandArgs {
                    argv: a.argv.clone(),
                    command: a.command.clone(),
                    cwd: a.cwd.clone(),
                };
                let (cmd, exec) = PlannedCommand::plan("process", ctx, what)?;
                let tier = exec.tier(&cmd.argv, cmd.shell);
                let sink = cmd.sink_args();
                self.spec
                    .action(
                        tier,
                        json!({"action": "start", "command": cmd,
                               "sandbox": exec.sandbox.kind().as_str(), "network": exec.network()}),
                    )
                    .with_sink(pincer_types::SinkKind::Exec, sink)
            }
            Verb::List => {
                scope(ctx)?;
                self.spec
                    .action(RiskTier::L0ReadOnly, json!({"action": "list"}))
            }
            Verb::Poll => self.spec.action(
                RiskTier::L0ReadOnly,
                json!({"action": "poll", "id": need_id()?,
                       "wait_secs": a.wait_secs.unwrap_or(0).min(MAX_WAIT_SECS)}),
            ),
            Verb::Log => {
                let lines = a.lines.unwrap_or(50).clamp(1, 1000);
                self.spec.action(
                    RiskTier::L0ReadOnly,
                    json!({"action": "log", "id": need_id()?, "lines": lines}),
                )
            }
            Verb::Kill => self.spec.action(
                RiskTier::L1Mutating,
                json!({"action": "kill", "id": need_id()?}),
            ),
        })
    }

    fn run<'a>(&'a self, ctx: &'a ToolContext, action: Approved<Action>) -> ToolFuture<'a> {
        Box::pin(async move {
            let exec = scope(ctx)?;
            let d = &action.action().detail;
            let table = exec.processes();
            let id = d["id"].as_str().unwrap_or_default();
            let content = match d["action"].as_str().unwrap_or_default() {
                "start" => start(exec, ctx.run, PlannedCommand::from_detail(d)?).await?,
                "list" => {
                    let procs: Vec<Value> = table.procs().values().map(|p| p.summary()).collect();
                    json!({"processes": procs, "limit": table.max})
                }
                "poll" => {
                    let p = table.get(id)?;
                    let wait = Duration::from_secs(d["wait_secs"].as_u64().unwrap_or(0));
                    if !wait.is_zero() {
                        let cursor = p.state().cursor;
                        let mut progress = p.progress.subscribe();
                        let mut done = p.done.subscribe();
                        let _ = tokio::time::timeout(wait, async {
                            tokio::select! {
                                _ = progress.wait_for(|end| *end > cursor) => {}
                                _ = done.wait_for(|d| *d) => {}
                            }
                        })
                        .await;
                    }
                    let mut summary = p.summary();
                    let mut st = p.state();
                    let r = st.log.read_from(st.cursor, exec.settings.output_cap);
                    st.cursor = r.next;
                    summary["output"] = json!(r.text);
                    summary["missed_bytes"] = json!(r.missed);
                    summary["more"] = json!(r.next < st.log.end());
                    summary
                }
                "log" => {
                    let p = table.get(id)?;
                    let lines = usize::try_from(d["lines"].as_u64().unwrap_or(50)).unwrap_or(50);
                    let mut summary = p.summary();
                    let tail = p.state().log.tail(lines);
                    summary["log"] = json!(truncate_start(tail, exec.settings.output_cap));
                    summary
                }
                "kill" => {
                    let p = table.get(id)?;
                    let mut done = p.done.subscribe();
                    p.kill.notify_one();
                    let _ = tokio::time::timeout(KILL_WAIT, done.wait_for(|d| *d)).await;
                    p.summary()
                }
                other => {
                    return Err(ToolError::Internal(format!(
                        "approved action is malformed: action `{other}`"
                    )));
                }
            };
            Ok(ToolOutput {
                content: content.to_string(),
            })
        })
    }
}

/// At most `max` bytes from the end of `s`, on a character boundary.
fn truncate_start(s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut cut = s.len() - max;
    while !s.is_char_boundary(cut) {
        cut += 1;
    }
    s[cut..].to_owned()
}

async fn start(
    exec: &super::ExecScope,
    run: Option<pincer_types::RunId>,
    cmd: PlannedCommand,
) -> Result<Value, ToolError> {
    let table = exec.processes();
    if table.running() >= table.max {
        return Err(ToolError::Failed(format!(
            "this agent already has {} background processes running (the limit); kill one first",
            table.max
        )));
    }
    let spec = exec.spec(cmd.argv.clone(), &cmd.cwd, cmd.shell);
    let mut running = match launch::spawn(&**exec.sandbox(), spec).await {
        Ok(r) => r,
        Err(e @ SandboxError::Setup { .. }) if e.is_command_not_found() => {
            return Ok(json!({"status": "not_found", "error": e.to_string()}));
        }
        Err(e) => return Err(sandbox_error(e)),
    };
    if let Some(p) = exec.proxy() {
        running.serve_proxy(p).map_err(sandbox_error)?;
    }
    let n = table.next.fetch_add(1, Ordering::Relaxed);
    let (done, _) = watch::channel(false);
    let (progress, _) = watch::channel(0u64);
    let proc = Arc::new(Proc {
        id: format!("p{n}"),
        run,
        argv: cmd.argv,
        cwd: cmd.cwd,
        started_at: Utc::now(),
        state: Mutex::new(ProcState {
            log: OutputLog::new(LOG_CAP),
            cursor: 0,
            finished: None,
        }),
        kill: Notify::new(),
        done,
        progress,
    });
    table.insert(n, proc.clone());
    let limits = RunLimits {
        timeout: None,
        output_cap: exec.settings.output_cap,
        output_kill: u64::MAX,
    };
    let p = proc.clone();
    tokio::spawn(async move {
        let sink = |_, bytes: &[u8]| {
            let end = {
                let mut st = p.state();
                st.log.push(bytes);
                st.log.end()
            };
            p.progress.send_replace(end);
        };
        let result = running.drive(limits, p.kill.notified(), sink).await;
        p.state().finished = Some(result.map_err(|e| e.to_string()));
        p.done.send_replace(true);
    });
    Ok(proc.summary())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt as _;

    fn proc(n: u64, run: Option<pincer_types::RunId>) -> Arc<Proc> {
        Arc::new(Proc {
            id: format!("p{n}"),
            run,
            argv: vec!["sleep".into()],
            cwd: ".".into(),
            started_at: Utc::now(),
            state: Mutex::new(ProcState {
                log: OutputLog::new(16),
                cursor: 0,
                finished: None,
            }),
            kill: Notify::new(),
            done: watch::channel(false).0,
            progress: watch::channel(0).0,
        })
    }

    #[test]
    fn a_run_ending_kills_only_its_own_processes() {
        let (a, b) = (pincer_types::RunId::new(), pincer_types::RunId::new());
        let t = ProcessTable::new(4);
        let (pa, pb, pc) = (proc(1, Some(a)), proc(2, Some(b)), proc(3, None));
        t.insert(1, pa.clone());
        t.insert(2, pb.clone());
        t.insert(3, pc.clone());
        t.kill_run(a);
        assert!(pa.kill.notified().now_or_never().is_some());
        assert!(pb.kill.notified().now_or_never().is_none());
        assert!(pc.kill.notified().now_or_never().is_none());
        // Dropping the table (session end, exit) kills the rest.
        drop(t);
        assert!(pb.kill.notified().now_or_never().is_some());
        assert!(pc.kill.notified().now_or_never().is_some());
    }
}
