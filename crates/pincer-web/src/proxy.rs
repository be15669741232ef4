//! The egress proxy for sandboxed commands (D4), Pincer's side: an HTTP proxy on a Unix socket
//! that checks every destination with the same [`Egress`] policy as `http.fetch` — `CONNECT
//! host:port` tunnels (HTTPS, git, cargo) and plain `http://` requests in absolute form, one per
//! connection — connects only to the checked addresses, and audits each connection
//! (`egress.tunnel`: host, port, address, bytes each way) or refusal (`egress.refused`, answered
//! `403`). Request heads are bounded; connections are capped in number, bytes and idle time.
//!
//! The sandbox side (the socket bound into the sandbox, a loopback bridge inside it, the
//! `HTTPS_PROXY` environment) is issue 18 part 5's remaining work.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpStream, UnixListener};
use tokio::sync::Semaphore;

use crate::egress::{Egress, WebError};

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

/// The proxy.
#[derive(Debug)]
pub struct EgressProxy {
    egress: Arc<Egress>,
    slots: Semaphore,
}

impl EgressProxy {
    /// A proxy deciding with `egress`.
    pub fn new(egress: Arc<Egress>) -> Arc<Self> {
        Arc::new(Self {
            egress,
            slots: Semaphore::new(MAX_CONNECTIONS),
        })
    }

    /// Serves connections from `listener` until it fails or the task is dropped.
    pub async fn serve(self: Arc<Self>, listener: UnixListener) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let me = Arc::clone(&self);
            tokio::spawn(async move {
                let Ok(_permit) = me.slots.acquire().await else {
                    return;
                };
                me.handle(stream).await;
            });
        }
    }

    /// One client connection: a CONNECT tunnel or one plain HTTP request.
    pub async fn handle<S: AsyncRead + AsyncWrite + Unpin>(&self, mut client: S) {
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
async fn tunnel<A, B>(a: &mut A, b: &mut B) -> (u64, u64)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let (mut up, mut down) = (0u64, 0u64);
    let mut ba = vec![0u8; 32 * 1024];
    let mut bb = vec![0u8; 32 * 1024];
    loop {
        let step = tokio::time::timeout(IDLE, async {
            tokio::select! {
                n = ar.read(&mut ba) => match n {
                    Ok(n) if n > 0 => bw.write_all(&ba[..n]).await.map(|()| (n as u64, 0)).map_err(|_| ()),
                    _ => Err(()),
                },
                n = br.read(&mut bb) => match n {
                    Ok(n) if n > 0 => aw.write_all(&bb[..n]).await.map(|()| (0, n as u64)).map_err(|_| ()),
                    _ => Err(()),
                },
            }
        })
        .await;
        match step {
            Ok(Ok((u, d))) => {
                up += u;
                down += d;
                if up > MAX_TUNNEL_BYTES || down > MAX_TUNNEL_BYTES {
                    break;
                }
            }
            _ => break,
        }
    }
    let _ = aw.shutdown().await;
    let _ = bw.shutdown().await;
    (up, down)
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
            "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await?;
    s.shutdown().await
}
