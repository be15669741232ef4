//! `pincer-load`: the load generator of `bench/run.py`. One thread, `--concurrency` keep-alive
//! HTTP/1.1 connections, each running turns back to back; prints one JSON line with the
//! throughput and latency percentiles. Hand-written HTTP on purpose: the client must cost far
//! less CPU than the server it measures (a Python client spent about as much per turn as
//! Pincer did), and it only ever talks to Pincer and the fake model on loopback.
//!
//! ```text
//! pincer-load --addr 127.0.0.1:7878 --token pnc_… --kind chat|tasks|model --turns 2000 \
//!             --concurrency 8 [--offset 0]
//! ```
//! `chat` posts `/v1/chat/completions`; `tasks` posts `/v1/tasks` and waits on
//! `GET /v1/tasks/{id}?wait_secs=30`; `model` posts a streaming chat request straight to the fake
//! model (the round trip a turn's upstream call costs). Every turn uses a fresh session.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Clone)]
struct Args {
    addr: String,
    token: String,
    kind: Kind,
    turns: usize,
    concurrency: usize,
    offset: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Chat,
    Tasks,
    Model,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        addr: String::new(),
        token: String::new(),
        kind: Kind::Chat,
        turns: 1000,
        concurrency: 1,
        offset: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => a.addr = value()?,
            "--token" => a.token = value()?,
            "--kind" => {
                a.kind = match value()?.as_str() {
                    "chat" => Kind::Chat,
                    "tasks" => Kind::Tasks,
                    "model" => Kind::Model,
                    k => return Err(format!("unknown --kind {k}")),
                }
            }
            "--turns" => a.turns = value()?.parse().map_err(|e| format!("--turns: {e}"))?,
            "--concurrency" => {
                a.concurrency = value()?
                    .parse()
                    .map_err(|e| format!("--concurrency: {e}"))?;
            }
            "--offset" => a.offset = value()?.parse().map_err(|e| format!("--offset: {e}"))?,
            f => return Err(format!("unknown flag {f}")),
        }
    }
    if a.addr.is_empty() || a.concurrency == 0 {
        return Err("--addr and a positive --concurrency are required".into());
    }
    Ok(a)
}

/// One keep-alive connection.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    host: String,
    token: String,
}

impl Conn {
    async fn open(addr: &str, token: &str) -> Result<Self, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Self {
            stream,
            buf: Vec::with_capacity(16 * 1024),
            host: addr.to_owned(),
            token: token.to_owned(),
        })
    }

    /// Sends one request and returns (status, body).
    async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Vec<u8>), String> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n",
            self.host, self.token
        );
        if !body.is_empty() {
            req.push_str("Content-Type: application/json\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        self.stream
            .write_all(req.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        self.read_response().await
    }

    async fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self
            .stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed".into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    async fn read_response(&mut self) -> Result<(u16, Vec<u8>), String> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("no status line")?;
        let length = head.lines().find_map(|l| {
            l.strip_prefix("content-length:")
                .and_then(|v| v.trim().parse::<usize>().ok())
        });
        let body = if let Some(len) = length {
            while self.buf.len() < head_end + len {
                self.fill().await?;
            }
            let body = self.buf[head_end..head_end + len].to_vec();
            self.buf.drain(..head_end + len);
            body
        } else if head.contains("transfer-encoding: chunked") {
            // The body ends with the zero-length chunk.
            let end = loop {
                if let Some(i) = find(&self.buf[head_end..], b"\r\n0\r\n\r\n") {
                    break head_end + i + 7;
                }
                if self.buf[head_end..].starts_with(b"0\r\n\r\n") {
                    break head_end + 5;
                }
                self.fill().await?;
            };
            let body = self.buf[head_end..end].to_vec();
            self.buf.drain(..end);
            body
        } else {
            return Err("response without a length".into());
        };
        Ok((status, body))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn json_of(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|e| format!("bad JSON from the server: {e}"))
}

async fn turn(c: &mut Conn, kind: Kind, n: usize) -> Result<(), String> {
    match kind {
        Kind::Chat => {
            let body = json!({"model": "main", "messages": [{"role": "user", "content": "hi"}],
                              "user": format!("load-{n}")});
            let (st, b) = c.call("POST", "/v1/chat/completions", Some(&body)).await?;
            if st != 200 {
                return Err(format!("chat: {st} {}", String::from_utf8_lossy(&b)));
            }
        }
        Kind::Model => {
            let body = json!({"model": "m", "stream": true,
                              "messages": [{"role": "user", "content": "hi"}]});
            let (st, _) = c.call("POST", "/v1/chat/completions", Some(&body)).await?;
            if st != 200 {
                return Err(format!("model: {st}"));
            }
        }
        Kind::Tasks => {
            let body = json!({"agent": "main", "message": "hi", "session": format!("load-{n}")});
            let (st, b) = c.call("POST", "/v1/tasks", Some(&body)).await?;
            if st != 200 && st != 201 {
                return Err(format!("submit: {st} {}", String::from_utf8_lossy(&b)));
            }
            let id = json_of(&b)?["task"]["id"]
                .as_str()
                .ok_or("submit: no task id")?
                .to_owned();
            loop {
                let (st, b) = c
                    .call("GET", &format!("/v1/tasks/{id}?wait_secs=30"), None)
                    .await?;
                if st != 200 {
                    return Err(format!("wait: {st}"));
                }
                let v = json_of(&b)?;
                match v["task"]["status"].as_str() {
                    Some("SUCCEEDED") => break,
                    Some("FAILED" | "TIMED_OUT" | "CANCELED") => {
                        return Err(format!("task ended {}", v["task"]["status"]));
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

async fn run(a: Args) -> Result<Value, String> {
    let per = a.turns.div_ceil(a.concurrency);
    let mut conns = Vec::new();
    for _ in 0..a.concurrency {
        conns.push(Conn::open(&a.addr, &a.token).await?);
    }
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (w, mut c) in conns.into_iter().enumerate() {
        let kind = a.kind;
        let base = a.offset + w * per;
        set.spawn_local(async move {
            let mut lat = Vec::with_capacity(per);
            for i in 0..per {
                let t0 = Instant::now();
                turn(&mut c, kind, base + i).await?;
                lat.push(t0.elapsed());
            }
            Ok::<_, String>(lat)
        });
    }
    let mut all = Vec::with_capacity(per * a.concurrency);
    while let Some(r) = set.join_next().await {
        all.extend(r.map_err(|e| e.to_string())??);
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort_unstable();
    Ok(json!({
        "turns": all.len(),
        "concurrency": a.concurrency,
        "secs": secs,
        "turns_per_sec": all.len() as f64 / secs,
        "p50_ms": percentile(&all, 50.0),
        "p95_ms": percentile(&all, 95.0),
        "p99_ms": percentile(&all, 99.0),
    }))
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("pincer-load: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pincer-load: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let local = tokio::task::LocalSet::new();
    match local.block_on(&rt, run(args)) {
        Ok(v) => {
            println!("{v}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pincer-load: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
