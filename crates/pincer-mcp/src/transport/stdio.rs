//! stdio: one JSON-RPC message per line on the server's stdin and stdout. Lines are bounded: a
//! line longer than the limit closes the connection (the call waiting for it gets a clear error
//! instead of the process buffering without end). A line that is not JSON is reported and
//! skipped — a server printing to stdout outside the protocol does not break its session.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;

use super::{Connection, INBOUND_QUEUE, Inbound, SendFuture, Transport};
use crate::jsonrpc::{Incoming, parse_all};

/// Messages we may queue for the server before a sender waits.
const OUTBOUND_QUEUE: usize = 64;

#[derive(Debug)]
struct Stdio {
    out: mpsc::Sender<Vec<u8>>,
}

impl Transport for Stdio {
    fn send(&self, msg: Vec<u8>) -> SendFuture<'_> {
        Box::pin(async move {
            self.out
                .send(msg)
                .await
                .map_err(|_| "the server's input is closed".to_owned())
        })
    }

    fn send_now(&self, msg: Vec<u8>) {
        let _ = self.out.try_send(msg);
    }

    fn close(&self) {
        // The writer ends when every sender is gone; the owner kills the process.
    }
}

/// Connects over `stdin`/`stdout` of a server. Lines longer than `max_line` close it.
pub fn connect<W, R>(stdin: W, stdout: R, max_line: usize) -> Connection
where
    W: AsyncWrite + Unpin + Send + 'static,
    R: AsyncRead + Unpin + Send + 'static,
{
    let (out_tx, out_rx) = mpsc::channel(OUTBOUND_QUEUE);
    let (in_tx, in_rx) = mpsc::channel(INBOUND_QUEUE);
    tokio::spawn(write_loop(stdin, out_rx));
    tokio::spawn(read_loop(stdout, in_tx, max_line));
    Connection {
        transport: Arc::new(Stdio { out: out_tx }),
        inbound: in_rx,
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(mut w: W, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(mut msg) = rx.recv().await {
        msg.push(b'\n');
        if w.write_all(&msg).await.is_err() || w.flush().await.is_err() {
            break;
        }
    }
}

async fn read_loop<R: AsyncRead + Unpin>(mut r: R, tx: mpsc::Sender<Inbound>, max_line: usize) {
    let mut buf: Vec<u8> = Vec::with_capacity(8 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    let why = loop {
        // Every complete line in the buffer first.
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let line = trim(&line);
            if line.is_empty() {
                continue;
            }
            for m in parse_all(line) {
                if tx.send(Inbound::Message(m)).await.is_err() {
                    return;
                }
            }
        }
        if buf.len() > max_line {
            break format!("the server sent a message over {max_line} bytes");
        }
        match r.read(&mut chunk).await {
            Ok(0) => break "the server closed its output".to_owned(),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => break format!("reading the server's output: {e}"),
        }
    };
    if !trim(&buf).is_empty() && !why.contains("over") {
        let _ = tx
            .send(Inbound::Message(Incoming::Malformed(
                "output ended inside an unterminated line".into(),
            )))
            .await;
    }
    let _ = tx.send(Inbound::Closed(why)).await;
}

fn trim(line: &[u8]) -> &[u8] {
    let mut l = line;
    while let Some((last, rest)) = l.split_last() {
        if matches!(last, b'\n' | b'\r' | b' ' | b'\t') {
            l = rest;
        } else {
            break;
        }
    }
    l
}
