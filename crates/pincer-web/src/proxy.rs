//! The egress proxy for sandboxed commands (D4), Pincer's side: an HTTP proxy on a Unix socket
//! that checks every destination with the same [`Egress`] policy as `http.fetch` — `CONNECT
//! host:port` tunnels (HTTPS, git, cargo) and plain `http://` requests in absolute form, one per
//! connection — connects only to the checked addresses, and audits each connection
//! (`egress.tunnel`: host, port, address, bytes each way) or refusal (`egress.refused`, answered
//! `403`). Request heads are bounded; connections are capped in number, bytes and idle time.
//!
//! The sandbox side: a sandbox started with `NetworkAccess::Proxy` binds its proxy port inside
//! its own empty network namespace and hands the listening socket to Pincer, which serves it
//! here ([`NetworkProxy`]); the command finds it through `HTTPS_PROXY`/`HTTP_PROXY`
//! (`pincer-sandbox`, `helper/net.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pincer_sandbox::NetworkProxy;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, Interest};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::egress::{Egress, WebError};

/// Marks the proxy's own answers (`refused` for a policy refusal, else `error`), so a client —
/// the browser — can tell them from the destination's.
pub const EGRESS_HEADER: &str = "X-Pincer-Egress";

/// Largest request head read.
const MAX_HEAD: usize = 16 * 1024;
/// Connections served at once.
const MAX_CONNECTIONS: usize = 64;
/// Bytes one tunnel may carry (each way).
const MAX_TUNNEL_BYTES: u64 = 4 << 30;
/// A tunnel with no traffic this long is closed.
const IDLE: Duration = Duration::from_secs(120);
/// Time to connect to the destination.
const CONNECT: Duration = Duration::from_secs(15);

/// The proxy (cheap to clone: one per agent, shared by its commands, which share its cap on
/// connections).
#[derive(Debug, Clone)]
pub struct EgressProxy {
    egress: Arc<Egress>,
    slots: Arc<Semaphore>,
}

impl EgressProxy {
    /// A proxy deciding with `egress`.
    pub fn new(egress: Arc<Egress>) -> Self {
        Self {
            egress,
            slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        }
    }

    /// Serves connections from `listener` until it fails or the task is dropped.
    pub async fn serve_tcp(self, listener: TcpListener) {
        loop {
            // A slot first, then the next connection: at the cap, connections wait in the
            // kernel's backlog rather than as tasks here.
            let Ok(permit) = self.slots.clone().acquire_owned().await else {
                return;
            };
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let me = self.clone();
            tokio::spawn(async move {
                let _permit = permit;
                me.handle(stream).await;
            });
        }
    }

    /// One client connection: a CONNECT tunnel or one plain HTTP request.
    pub async fn handle(&self, mut client: TcpStream) {
        let head = match read_head(&mut client).await {
            Ok(h) => h,
            Err(msg) => {
                let _ = reply(&mut client, 400, msg).await;
                // Let the client finish sending (bounded) so it can read the answer rather
                // than have its connection reset under it.
                let mut sink = vec![0u8; 16 * 1024];
                let mut left = 1usize << 20;
                while left > 0 {
                    match tokio::time::timeout(Duration::from_secs(1), client.read(&mut sink)).await
                    {
                        Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
                        _ => break,
                    }
                }
                return;
            }
        };
        let Some((method, target, rest)) = request_line(&head) else {
            let _ = reply(&mut client, 400, "malformed request line").await;
            return;
        };
        let (url, connect) = if method.eq_ignore_ascii_case("CONNECT") {
            (format!("https://{target}/"), true)
        } else if target.starts_with("http://") {
            (target.to_owned(), false)
        } else {
            let _ = reply(
                &mut client,
                400,
                "this proxy takes CONNECT or absolute http:// URLs",
            )
            .await;
            return;
        };
        let (checked, addrs) = match self.egress.check(&url).await {
            Ok(v) => v,
            Err(WebError::Refused(m)) => {
                let _ = reply(&mut client, 403, &m).await;
                return;
            }
            Err(e) => {
                let _ = reply(&mut client, 502, &e.to_string()).await;
                return;
            }
        };
        let Some(upstream) = dial(&addrs).await else {
            let _ = reply(&mut client, 502, "cannot connect to the destination").await;
            return;
        };
        let (mut upstream, addr) = upstream;
        if connect {
            if client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
                .is_err()
            {
                return;
            }
        } else {
            // Origin-form request line, proxy headers dropped, one request per connection.
            let path = checked.url[url::Position::BeforePath..].to_owned();
            let mut out = format!("{method} {path} HTTP/1.1\r\n");
            for line in rest.split("\r\n").filter(|l| !l.is_empty()) {
                let name = line
                    .split(':')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                if name.starts_with("proxy-") || name == "connection" || name == "keep-alive" {
                    continue;
                }
                out.push_str(line);
                out.push_str("\r\n");
            }
            out.push_str("Connection: close\r\n\r\n");
            if upstream.write_all(out.as_bytes()).await.is_err() {
                return;
            }
        }
        let (up, down) = tunnel(&mut client, &mut upstream).await;
        self.egress.audit(
            "egress.tunnel",
            json!({"host": checked.host, "port": checked.port, "address": addr.ip().to_string(),
                   "method": if connect { "CONNECT" } else { method }, "bytes_up": up, "bytes_down": down,
                   "private_named": checked.private_named}),
        );
    }
}

impl NetworkProxy for EgressProxy {
    fn serve(&self, listener: TcpListener) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.clone().serve_tcp(listener))
    }
}

/// The first checked address that accepts a connection.
async fn dial(addrs: &[SocketAddr]) -> Option<(TcpStream, SocketAddr)> {
    for a in addrs {
        if let Ok(Ok(s)) = tokio::time::timeout(CONNECT, TcpStream::connect(a)).await {
            return Some((s, *a));
        }
    }
    None
}

/// Copies both ways until either side ends, the idle time passes, or a side passes the cap.
async fn tunnel(a: &mut TcpStream, b: &mut TcpStream) -> (u64, u64) {
    let started = std::time::Instant::now();
    let last = AtomicU64::new(0);
    let (up, down) = (AtomicU64::new(0), AtomicU64::new(0));
    // Two independent pumps (each direction keeps flowing while the other writes; a half-close
    // is passed on), and one coarse idle watchdog instead of a timer per read.
    let (a, b) = (&*a, &*b);
    let pumps = async {
        tokio::join!(
            pump(a, b, &up, &last, started),
            pump(b, a, &down, &last, started)
        )
    };
    let watchdog = async {
        let mut tick = tokio::time::interval(IDLE / 8);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let idle = started.elapsed().as_secs() - last.load(Ordering::Relaxed);
            if idle >= IDLE.as_secs() {
                return;
            }
        }
    };
    tokio::select! {
        _ = pumps => {}
        () = watchdog => {}
    }
    (up.into_inner(), down.into_inner())
}

/// Most bytes moved per `splice(2)`.
const CHUNK: usize = 256 * 1024;

/// Moves `from`'s bytes to `to` until end of stream, an error or the byte cap, then shuts
/// `to`'s sending side down. The bytes go socket → pipe → socket with `splice(2)`: the kernel
/// moves pages, and the proxy never copies payload through its own memory (on a 2-core machine
/// a userspace copy cost a quarter of the throughput).
async fn pump(
    from: &TcpStream,
    to: &TcpStream,
    count: &AtomicU64,
    last: &AtomicU64,
    started: std::time::Instant,
) {
    use rustix::pipe::{PipeFlags, SpliceFlags, splice};
    let Ok((pr, pw)) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK) else {
        return;
    };
    // Best effort: a bigger pipe means fewer wake-ups; the default 64 KiB works too.
    let _ = rustix::pipe::fcntl_setpipe_size(&pw, CHUNK);
    let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
    loop {
        if from.readable().await.is_err() {
            break;
        }
        let n = match from.try_io(Interest::READABLE, || {
            splice(from, None, &pw, None, CHUNK, flags).map_err(std::io::Error::from)
        }) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => break,
        };
        let mut left = n;
        while left > 0 {
            if to.writable().await.is_err() {
                return;
            }
            match to.try_io(Interest::WRITABLE, || {
                splice(&pr, None, to, None, left, flags).map_err(std::io::Error::from)
            }) {
                Ok(m) => left -= m,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
        last.store(started.elapsed().as_secs(), Ordering::Relaxed);
        if count.fetch_add(n as u64, Ordering::Relaxed) + n as u64 > MAX_TUNNEL_BYTES {
            break;
        }
    }
    let _ = rustix::net::shutdown(to, rustix::net::Shutdown::Write);
}

/// Reads up to the end of the request head (bounded).
async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> Result<String, &'static str> {
    let mut buf = Vec::with_capacity(1024);
    let mut byte = [0u8; 1];
    // Byte by byte: nothing after the head may be consumed (it belongs to the tunnel).
    while !buf.ends_with(b"\r\n\r\n") {
        if buf.len() >= MAX_HEAD {
            return Err("request head too large");
        }
        match tokio::time::timeout(CONNECT, s.read(&mut byte)).await {
            Ok(Ok(1)) => buf.push(byte[0]),
            _ => return Err("incomplete request head"),
        }
    }
    String::from_utf8(buf).map_err(|_| "request head is not UTF-8")
}

/// `(method, target, header lines)`.
fn request_line(head: &str) -> Option<(&str, &str, &str)> {
    let (line, rest) = head.split_once("\r\n")?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    (parts.next().is_none() && version.starts_with("HTTP/1.") && !method.is_empty())
        .then_some((method, target, rest))
}

async fn reply<S: AsyncWrite + Unpin>(s: &mut S, code: u16, msg: &str) -> std::io::Result<()> {
    let reason = match code {
        400 => "Bad Request",
        403 => "Forbidden",
        _ => "Bad Gateway",
    };
    let body = format!("{msg}\n");
    s.write_all(
        format!(
            "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{EGRESS_HEADER}: {}\r\nConnection: close\r\n\r\n{body}",
            body.len(),
            if code == 403 { "refused" } else { "error" },
        )
        .as_bytes(),
    )
    .await?;
    s.shutdown().await
}
