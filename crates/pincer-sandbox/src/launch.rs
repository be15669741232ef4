//! The parent side: start a launcher, wait for the helper's handshake, drain output into
//! bounded buffers, enforce the timeout, kill the whole tree.
//!
//! Killing is by process group: the launcher is started as the leader of a new group, and the
//! sandbox's pid 1 dies with it (parent-death signal), which makes the kernel kill every
//! process left in the sandbox's pid namespace — grandchildren and daemons included.

use std::future::Future;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};

use crate::capture::{Captured, HeadTail};
use crate::cgroup::PidsCgroup;
use crate::protocol::{self, Handshake, Ready};
use crate::{ExecSpec, NetworkAccess, Sandbox, SandboxError};

/// How long a launcher may take to reach the ready line.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for a killed sandbox's pipes to close.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// Most launcher error text kept when the helper never spoke.
const MAX_LAUNCHER_ERROR: usize = 4096;

/// Limits the parent enforces while a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// Wall-clock limit; `None` for background processes killed explicitly.
    pub timeout: Option<Duration>,
    /// Bytes of each stream returned (head and tail halves).
    pub output_cap: usize,
    /// Total output after which the command is killed.
    pub output_kill: u64,
}

/// Why a command stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Termination {
    /// It exited (or was killed by a signal from inside).
    Exited,
    /// The wall-clock timeout fired; the whole tree was killed.
    Timeout,
    /// The caller canceled; the whole tree was killed.
    Canceled,
    /// It wrote more than the output limit; the whole tree was killed.
    OutputLimit,
}

/// Which stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    /// Exit code, when it exited normally (`128 + n` when the sandbox reports signal `n`).
    pub exit_code: Option<i32>,
    /// Signal that killed the launcher, if any.
    pub signal: Option<i32>,
    /// Why it stopped.
    pub termination: Termination,
    /// Wall-clock time from spawn.
    pub duration: Duration,
}

/// A finished command with its captured output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    /// How it ended.
    pub finished: Finished,
    /// Captured standard output.
    pub stdout: Captured,
    /// Captured standard error.
    pub stderr: Captured,
}

/// The parent's end of a command's stdin (`ExecSpec::stdin_pipe`): a pipe, or — when the
/// sandbox handed descriptors over it — the Unix socket pair.
#[derive(Debug)]
pub enum CommandStdin {
    /// A pipe.
    Pipe(ChildStdin),
    /// A Unix socket (the command reads its stdin from the other end).
    Socket(tokio::net::UnixStream),
}

impl tokio::io::AsyncWrite for CommandStdin {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Self::Pipe(p) => std::pin::Pin::new(p).poll_write(cx, buf),
            Self::Socket(s) => std::pin::Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Pipe(p) => std::pin::Pin::new(p).poll_flush(cx),
            Self::Socket(s) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Self::Pipe(p) => std::pin::Pin::new(p).poll_shutdown(cx),
            Self::Socket(s) => std::pin::Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Serves the proxy port of a [`NetworkAccess::Proxy`] sandbox: every connection the command
/// makes to [`crate::PROXY_ADDR`] is accepted on `listener` — outside the sandbox, by Pincer —
/// and decided there (the egress policy in `pincer-web`).
pub trait NetworkProxy: Send + Sync + std::fmt::Debug {
    /// Accepts and serves connections on `listener` until the returned task is aborted.
    fn serve(&self, listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()>;
}

/// A confined command that passed the handshake and is running.
#[derive(Debug)]
pub struct Running {
    child: Child,
    pgid: Option<rustix::process::Pid>,
    stdin: Option<CommandStdin>,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    early_stderr: Vec<u8>,
    ready: Ready,
    started: Instant,
    /// Set once the launcher was waited for; its pid (and group id) may then be reused.
    reaped: bool,
    /// The sandbox's proxy port, until [`Running::serve_proxy`] takes it.
    proxy_listener: Option<std::net::TcpListener>,
    /// The parent's ends of the control pipe, until [`Running::take_channel`] takes them.
    channel: Option<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)>,
    /// The task serving it, aborted when the command ends.
    proxy_task: Option<tokio::task::JoinHandle<()>>,
    // Last: removed after the child is gone.
    _cgroup: Option<PidsCgroup>,
}

/// Validates `spec`, starts it in `sandbox` and waits for the helper's handshake.
///
/// # Errors
/// [`SandboxError::InvalidSpec`] for a bad spec, [`SandboxError::Launch`] when the launcher
/// cannot start, [`SandboxError::Setup`] when a confinement step failed (the command did not
/// run).
pub async fn spawn(sandbox: &dyn Sandbox, spec: ExecSpec) -> Result<Running, SandboxError> {
    let spec = spec.validated()?;
    let cgroup = if PidsCgroup::needed() {
        Some(PidsCgroup::create(spec.limits.processes)?)
    } else {
        None
    };
    let launcher = sandbox.launcher(&spec, cgroup.as_ref().map(PidsCgroup::procs).as_deref())?;
    let program = launcher
        .command
        .get_program()
        .to_string_lossy()
        .into_owned();
    let mut cmd = tokio::process::Command::from(launcher.command);
    // In proxy or control-pipe mode stdin is a socket pair: frames go in as on a pipe, and the
    // helper sends descriptors back on it (`helper/net.rs`).
    let mut control = None;
    if spec.hands_over() {
        let (ours, theirs) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| SandboxError::Io(format!("socket pair for the proxy port: {e}")))?;
        let ours = std::os::unix::net::UnixStream::from(ours);
        ours.set_nonblocking(true)
            .map_err(|e| SandboxError::Io(e.to_string()))?;
        control = Some(
            tokio::net::UnixStream::from_std(ours).map_err(|e| SandboxError::Io(e.to_string()))?,
        );
        cmd.stdin(Stdio::from(theirs));
    } else {
        cmd.stdin(Stdio::piped());
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| SandboxError::Launch(format!("{program}: {e}")))?;
    let pgid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw);
    let mut kept_stdin = None;
    if let Some(c) = control.as_mut() {
        // As below: a failed write shows in the handshake.
        let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, c.write_all(&launcher.stdin)).await;
    }
    if let Some(mut stdin) = child.stdin.take() {
        // The helper reads its spec first thing; a failed write means the launcher already
        // failed, which the handshake below reports.
        let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, stdin.write_all(&launcher.stdin)).await;
        // Without `stdin_pipe` it is closed here; with it, the command's input is the rest.
        if spec.stdin_pipe {
            kept_stdin = Some(CommandStdin::Pipe(stdin));
        }
    }
    let mut stderr = child
        .stderr
        .take()
        .ok_or_else(|| SandboxError::Io("no stderr pipe".into()))?;
    let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, first_line(&mut stderr)).await;
    let (line, rest) = match first {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            kill_group(pgid, &mut child);
            return Err(SandboxError::Io(format!("reading the handshake: {e}")));
        }
        Err(_) => {
            kill_group(pgid, &mut child);
            return Err(SandboxError::Setup {
                step: "handshake".into(),
                message: format!(
                    "the sandbox was not ready within {}s",
                    HANDSHAKE_TIMEOUT.as_secs()
                ),
            });
        }
    };
    match protocol::parse(&line) {
        Handshake::Ready(ready) => {
            let (proxy_listener, channel) = match &control {
                Some(c) => match receive_handover(c, &spec).await {
                    Ok(v) => v,
                    Err(e) => {
                        kill_group(pgid, &mut child);
                        let _ = child.wait().await;
                        return Err(e);
                    }
                },
                None => (None, None),
            };
            // After the handover the socket pair is the command's stdin (a protocol peer).
            if spec.stdin_pipe
                && let Some(c) = control
            {
                kept_stdin = Some(CommandStdin::Socket(c));
            }
            Ok(Running {
                stdin: kept_stdin,
                stdout: child.stdout.take(),
                child,
                pgid,
                stderr: Some(stderr),
                early_stderr: rest,
                ready,
                started,
                reaped: false,
                proxy_listener,
                channel,
                proxy_task: None,
                _cgroup: cgroup,
            })
        }
        Handshake::Failed(f) => {
            kill_group(pgid, &mut child);
            let _ = child.wait().await;
            Err(SandboxError::Setup {
                step: f.step,
                message: f.message,
            })
        }
        Handshake::Foreign(text) => {
            // The launcher failed before the helper ran: collect what it said.
            let mut msg = text.into_bytes();
            msg.extend_from_slice(&rest);
            let mut more = Vec::new();
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                (&mut stderr)
                    .take(MAX_LAUNCHER_ERROR as u64)
                    .read_to_end(&mut more),
            )
            .await;
            msg.extend_from_slice(&more);
            kill_group(pgid, &mut child);
            let status = child.wait().await.ok();
            let mut message = String::from_utf8_lossy(&msg).trim().to_owned();
            if message.is_empty() {
                message = format!(
                    "{program} exited ({}) before the sandbox was ready",
                    status.map_or_else(|| "unknown status".to_owned(), |s| s.to_string())
                );
            }
            Err(SandboxError::Setup {
                step: "launcher".into(),
                message,
            })
        }
    }
}

/// What the helper handed over: the proxy port's listener and the control pipe's parent ends.
type Handover = (
    Option<std::net::TcpListener>,
    Option<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)>,
);

/// Receives the descriptors the helper sent before its ready line (`helper/net.rs`).
async fn receive_handover(
    c: &tokio::net::UnixStream,
    spec: &ExecSpec,
) -> Result<Handover, SandboxError> {
    use crate::helper::net::{MAX_FDS, TAG};
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    use std::mem::MaybeUninit;
    let fail = |m: String| SandboxError::Setup {
        step: "handover".into(),
        message: m,
    };
    let recv = || {
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut anc = RecvAncillaryBuffer::new(&mut space);
        let mut byte = [0u8; 1];
        let got = rustix::net::recvmsg(
            c,
            &mut [std::io::IoSliceMut::new(&mut byte)],
            &mut anc,
            RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC,
        )
        .map_err(std::io::Error::from)?;
        let mut fds = Vec::new();
        for m in anc.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = m {
                fds.extend(rights);
            }
        }
        Ok::<_, std::io::Error>((got.bytes, byte[0], fds))
    };
    // The helper sent them before writing the ready line, so they are already queued; the
    // wait is a bound, not a synchronisation.
    let (n, tag, fds) = tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
        loop {
            c.readable().await?;
            match c.try_io(tokio::io::Interest::READABLE, recv) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                r => return r,
            }
        }
    })
    .await
    .map_err(|_| fail("the sandbox handed nothing over".into()))?
    .map_err(|e| fail(format!("receiving from the sandbox: {e}")))?;
    let want =
        usize::from(spec.network == NetworkAccess::Proxy) + 2 * usize::from(spec.control_pipe);
    if n != 1 || tag != TAG || fds.len() != want {
        return Err(fail("malformed handover message from the sandbox".into()));
    }
    let mut fds = fds.into_iter();
    let listener = if spec.network == NetworkAccess::Proxy {
        let l = std::net::TcpListener::from(fds.next().ok_or_else(|| fail("no listener".into()))?);
        // Checked, not trusted: it must be a listening TCP socket on the proxy address.
        match l.local_addr() {
            Ok(a) if a == std::net::SocketAddr::V4(crate::PROXY_ADDR) => Some(l),
            other => {
                return Err(fail(format!(
                    "the sandbox handed over {other:?}, not the proxy port"
                )));
            }
        }
    } else {
        None
    };
    let channel = match (fds.next(), fds.next()) {
        (Some(w), Some(r)) => {
            for (fd, what) in [(&w, "write"), (&r, "read")] {
                let st = rustix::fs::fstat(fd).map_err(|e| fail(e.to_string()))?;
                if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Fifo {
                    return Err(fail(format!("the control pipe's {what} end is not a pipe")));
                }
            }
            Some((w, r))
        }
        _ => None,
    };
    Ok((listener, channel))
}

/// Reads stderr up to the first newline (bounded). Returns the line and any bytes after it.
async fn first_line(r: &mut ChildStderr) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let rest = buf.split_off(i + 1);
            buf.pop();
            return Ok((buf, rest));
        }
        if buf.len() >= protocol::MAX_LINE {
            return Ok((buf, Vec::new()));
        }
        let n = r.read(&mut chunk).await?;
        if n == 0 {
            return Ok((buf, Vec::new()));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn kill_group(pgid: Option<rustix::process::Pid>, child: &mut Child) {
    if let Some(pgid) = pgid {
        // ESRCH means the group is already gone.
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    }
    let _ = child.start_kill();
}

async fn read_some<R: AsyncRead + Unpin>(
    r: &mut Option<R>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match r {
        Some(r) => r.read(buf).await,
        None => std::future::pending().await,
    }
}

impl Running {
    /// What the helper reported as enforced.
    pub fn ready(&self) -> &Ready {
        &self.ready
    }

    /// Starts serving the sandbox's proxy port with `proxy` (only with
    /// [`NetworkAccess::Proxy`]); the serving task is aborted when the command ends or this is
    /// dropped.
    ///
    /// # Errors
    /// [`SandboxError::InvalidSpec`] when the sandbox has no proxy port (or it was taken),
    /// [`SandboxError::Io`] when it cannot be registered with the runtime.
    pub fn serve_proxy(&mut self, proxy: &dyn NetworkProxy) -> Result<(), SandboxError> {
        let l = self.proxy_listener.take().ok_or_else(|| {
            SandboxError::InvalidSpec("this sandbox has no proxy port to serve".into())
        })?;
        l.set_nonblocking(true)
            .map_err(|e| SandboxError::Io(e.to_string()))?;
        let l =
            tokio::net::TcpListener::from_std(l).map_err(|e| SandboxError::Io(e.to_string()))?;
        self.proxy_task = Some(proxy.serve(l));
        Ok(())
    }

    /// The parent's ends of the control pipe (only with `ExecSpec::control_pipe`): a writer to
    /// the command's descriptor 3 and a reader of its descriptor 4.
    ///
    /// # Errors
    /// [`SandboxError::Io`] when they cannot be registered with the runtime.
    pub fn take_channel(
        &mut self,
    ) -> Result<
        Option<(
            tokio::net::unix::pipe::Sender,
            tokio::net::unix::pipe::Receiver,
        )>,
        SandboxError,
    > {
        let Some((w, r)) = self.channel.take() else {
            return Ok(None);
        };
        let io = |e: std::io::Error| SandboxError::Io(format!("control pipe: {e}"));
        Ok(Some((
            tokio::net::unix::pipe::Sender::from_owned_fd(w).map_err(io)?,
            tokio::net::unix::pipe::Receiver::from_owned_fd(r).map_err(io)?,
        )))
    }

    /// The command's stdin (only with `ExecSpec::stdin_pipe`), for a caller that speaks a
    /// protocol with it instead of calling [`Running::drive`].
    pub fn take_stdin(&mut self) -> Option<CommandStdin> {
        self.stdin.take()
    }

    /// The command's stdout, for a caller that reads it itself.
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.stdout.take()
    }

    /// The command's stderr and what it already wrote after the ready line.
    pub fn take_stderr(&mut self) -> (Option<ChildStderr>, Vec<u8>) {
        (self.stderr.take(), std::mem::take(&mut self.early_stderr))
    }

    /// Waits for the command to exit (after its streams were taken).
    ///
    /// # Errors
    /// [`SandboxError::Io`] when waiting on the launcher fails.
    pub async fn wait(&mut self) -> Result<Finished, SandboxError> {
        let s = self
            .child
            .wait()
            .await
            .map_err(|e| SandboxError::Io(e.to_string()))?;
        Ok(self.finished(s, Termination::Exited))
    }

    /// Kills the whole tree and reaps it.
    ///
    /// # Errors
    /// [`SandboxError::Io`] when waiting on the launcher fails.
    pub async fn kill(&mut self) -> Result<Finished, SandboxError> {
        if !self.reaped {
            kill_group(self.pgid, &mut self.child);
        }
        let s = self
            .child
            .wait()
            .await
            .map_err(|e| SandboxError::Io(e.to_string()))?;
        Ok(self.finished(s, Termination::Canceled))
    }

    /// Drains output into `sink` until the command ends, the timeout fires, `cancel` completes
    /// or the output limit is passed; in the last three cases the whole tree is killed.
    ///
    /// # Errors
    /// [`SandboxError::Io`] when waiting on the launcher fails.
    pub async fn drive(
        mut self,
        limits: RunLimits,
        cancel: impl Future<Output = ()>,
        mut sink: impl FnMut(Stream, &[u8]),
    ) -> Result<Finished, SandboxError> {
        let mut total = self.early_stderr.len() as u64;
        if !self.early_stderr.is_empty() {
            sink(Stream::Stderr, &self.early_stderr);
        }
        let deadline = async {
            match limits.timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(deadline, cancel);
        let mut out = self.stdout.take();
        let mut err = self.stderr.take();
        let mut b_out = vec![0u8; 16 * 1024];
        let mut b_err = vec![0u8; 16 * 1024];
        let mut termination = None;
        // Output first: the streams close when every process in the sandbox is gone (or has
        // closed them); then the exit status.
        while (out.is_some() || err.is_some()) && termination.is_none() {
            tokio::select! {
                n = read_some(&mut out, &mut b_out) => match n {
                    Ok(n) if n > 0 => { total += n as u64; sink(Stream::Stdout, &b_out[..n]); }
                    _ => out = None,
                },
                n = read_some(&mut err, &mut b_err) => match n {
                    Ok(n) if n > 0 => { total += n as u64; sink(Stream::Stderr, &b_err[..n]); }
                    _ => err = None,
                },
                () = &mut deadline => termination = Some(Termination::Timeout),
                () = &mut cancel => termination = Some(Termination::Canceled),
            }
            if termination.is_none() && total > limits.output_kill {
                termination = Some(Termination::OutputLimit);
            }
        }
        if termination.is_none() {
            tokio::select! {
                s = self.child.wait() => {
                    let s = s.map_err(|e| SandboxError::Io(e.to_string()))?;
                    return Ok(self.finished(s, Termination::Exited));
                }
                () = &mut deadline => termination = Some(Termination::Timeout),
                () = &mut cancel => termination = Some(Termination::Canceled),
            }
        }
        let why = termination.unwrap_or(Termination::Canceled);
        kill_group(self.pgid, &mut self.child);
        let s = self
            .child
            .wait()
            .await
            .map_err(|e| SandboxError::Io(e.to_string()))?;
        // Every process in the sandbox holds the pipes unless it closed them; waiting for them
        // to close means that, when this returns, the tree is gone. Bounded in case one
        // survived the kill (which would be a kernel bug) or a process closed its ends.
        let _ = tokio::time::timeout(KILL_GRACE, async {
            while out.is_some() || err.is_some() {
                tokio::select! {
                    n = read_some(&mut out, &mut b_out) => if !matches!(n, Ok(n) if n > 0) { out = None },
                    n = read_some(&mut err, &mut b_err) => if !matches!(n, Ok(n) if n > 0) { err = None },
                }
            }
        })
        .await;
        Ok(self.finished(s, why))
    }

    fn finished(&mut self, s: std::process::ExitStatus, termination: Termination) -> Finished {
        self.reaped = true;
        if let Some(t) = self.proxy_task.take() {
            t.abort();
        }
        use std::os::unix::process::ExitStatusExt as _;
        Finished {
            exit_code: s.code(),
            signal: s.signal(),
            termination,
            duration: self.started.elapsed(),
        }
    }
}

impl Drop for Running {
    /// A command dropped before it finished (its run was canceled) takes its tree with it.
    fn drop(&mut self) {
        if !self.reaped {
            kill_group(self.pgid, &mut self.child);
        }
        if let Some(t) = self.proxy_task.take() {
            t.abort();
        }
    }
}

/// Runs `spec` to the end with bounded output capture; `proxy` serves the proxy port when the
/// spec asks for [`NetworkAccess::Proxy`].
///
/// # Errors
/// As [`spawn`] and [`Running::drive`]; [`SandboxError::InvalidSpec`] for a proxy-mode spec
/// without a proxy.
pub async fn run(
    sandbox: &dyn Sandbox,
    spec: ExecSpec,
    limits: RunLimits,
    cancel: impl Future<Output = ()>,
    proxy: Option<&dyn NetworkProxy>,
) -> Result<ExecOutcome, SandboxError> {
    if spec.network == NetworkAccess::Proxy && proxy.is_none() {
        return Err(SandboxError::InvalidSpec(
            "network through the proxy needs a proxy to serve it".into(),
        ));
    }
    let mut running = spawn(sandbox, spec).await?;
    if let Some(p) = proxy.filter(|_| running.proxy_listener.is_some()) {
        running.serve_proxy(p)?;
    }
    let mut out = HeadTail::new(limits.output_cap);
    let mut err = HeadTail::new(limits.output_cap);
    let finished = running
        .drive(limits, cancel, |s, b| match s {
            Stream::Stdout => out.push(b),
            Stream::Stderr => err.push(b),
        })
        .await?;
    Ok(ExecOutcome {
        finished,
        stdout: out.finish(),
        stderr: err.finish(),
    })
}
