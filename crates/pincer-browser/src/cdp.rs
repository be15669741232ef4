//! A Chrome DevTools Protocol client over Chromium's `--remote-debugging-pipe`: JSON messages
//! separated by NUL bytes, commands on the browser's descriptor 3, answers and events on 4.
//!
//! No TCP debugging port exists: whoever holds the pipe controls the browser, and only Pincer
//! does (a `--remote-debugging-port` would hand the browser to every local process). One writer
//! task (a bounded queue, so no lock is held across a write), one reader task routing answers
//! to their callers by id and events to subscribers (a bounded broadcast: a slow subscriber
//! loses events, never blocks the reader). Messages are capped; a malformed one is skipped; the
//! reader ending (the browser died) fails every pending call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{broadcast, mpsc, oneshot};

/// Largest message read (a full-page screenshot of a large page is the biggest).
const MAX_MESSAGE: usize = 64 << 20;
/// Commands queued for the writer.
const QUEUE: usize = 64;
/// Events buffered per subscriber.
const EVENTS: usize = 1024;

/// A CDP failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CdpError {
    /// The browser answered with an error.
    #[error("{method}: {message}")]
    Protocol {
        /// The command.
        method: String,
        /// The browser's message.
        message: String,
    },
    /// No answer in time.
    #[error("{0}: no answer from the browser in time")]
    Timeout(String),
    /// The browser is gone.
    #[error("the browser exited")]
    Closed,
}

/// An event: its method, parameters and the session it belongs to.
#[derive(Debug, Clone)]
pub struct Event {
    /// `Page.loadEventFired`, …
    pub method: String,
    /// Its parameters.
    pub params: Value,
    /// The target session, when it came from one.
    pub session: Option<String>,
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>>;

/// The client; dropping it stops its tasks.
#[derive(Debug)]
pub struct Cdp {
    out: mpsc::Sender<Vec<u8>>,
    next: AtomicU64,
    pending: Pending,
    closed: Arc<AtomicBool>,
    events: broadcast::Sender<Event>,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

impl Drop for Cdp {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Cdp {
    /// A client writing commands to `to` and reading from `from`.
    pub fn new<W, R>(to: W, from: R) -> Self
    where
        W: AsyncWrite + Unpin + Send + 'static,
        R: AsyncRead + Unpin + Send + 'static,
    {
        let (out, rx) = mpsc::channel(QUEUE);
        let pending: Pending = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let (events, _) = broadcast::channel(EVENTS);
        let writer = tokio::spawn(write_loop(to, rx));
        let reader = tokio::spawn(read_loop(
            from,
            pending.clone(),
            closed.clone(),
            events.clone(),
        ));
        Self {
            out,
            next: AtomicU64::new(1),
            pending,
            closed,
            events,
            tasks: [writer, reader],
        }
    }

    /// Whether the browser has gone away.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Sends `method` (to `session`, or the browser) and waits up to `timeout` for the answer.
    ///
    /// # Errors
    /// [`CdpError`].
    pub async fn call(
        &self,
        method: &str,
        params: Value,
        session: Option<&str>,
        timeout: Duration,
    ) -> Result<Value, CdpError> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = s.into();
        }
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, tx);
        // After the insert: either the reader's final clear drops our sender, or we see this.
        if self.closed.load(Ordering::SeqCst) {
            self.pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
            return Err(CdpError::Closed);
        }
        let bytes = serde_json::to_vec(&msg).map_err(|_| CdpError::Closed)?;
        let answer = async {
            self.out.send(bytes).await.map_err(|_| CdpError::Closed)?;
            rx.await.map_err(|_| CdpError::Closed)
        };
        let r = tokio::time::timeout(timeout, answer).await;
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        match r {
            Err(_) => Err(CdpError::Timeout(method.to_owned())),
            Ok(Err(e)) => Err(e),
            Ok(Ok(Ok(v))) => Ok(v),
            Ok(Ok(Err(message))) => Err(CdpError::Protocol {
                method: method.to_owned(),
                message,
            }),
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(mut to: W, mut rx: mpsc::Receiver<Vec<u8>>) {
    while let Some(mut m) = rx.recv().await {
        m.push(0);
        if to.write_all(&m).await.is_err() || to.flush().await.is_err() {
            return;
        }
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut from: R,
    pending: Pending,
    closed: Arc<AtomicBool>,
    events: broadcast::Sender<Event>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    // Bytes of `buf` already searched for a NUL.
    let mut scanned = 0;
    'read: loop {
        let n = match from.read(&mut chunk).await {
            Ok(n) if n > 0 => n,
            _ => break,
        };
        buf.extend_from_slice(&chunk[..n]);
        loop {
            let Some(i) = buf[scanned..].iter().position(|&b| b == 0) else {
                scanned = buf.len();
                if buf.len() > MAX_MESSAGE {
                    break 'read;
                }
                continue 'read;
            };
            let end = scanned + i;
            dispatch(&buf[..end], &pending, &events);
            buf.drain(..=end);
            scanned = 0;
        }
    }
    // The browser is gone: every caller learns it now, and later ones at once.
    closed.store(true, Ordering::SeqCst);
    pending
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
}

fn dispatch(msg: &[u8], pending: &Pending, events: &broadcast::Sender<Event>) {
    let Ok(mut v) = serde_json::from_slice::<Value>(msg) else {
        return;
    };
    if let Some(id) = v["id"].as_u64() {
        let waiter = pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        if let Some(w) = waiter {
            let r = match v.get("error") {
                Some(e) => Err(e["message"].as_str().unwrap_or("error").to_owned()),
                None => Ok(v["result"].take()),
            };
            let _ = w.send(r);
        }
    } else if let Some(method) = v["method"].as_str() {
        let _ = events.send(Event {
            method: method.to_owned(),
            params: v["params"].take(),
            session: v["sessionId"].as_str().map(str::to_owned),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The framing over a real pipe pair: answers by id, events, errors, split and
    /// concatenated messages, garbage skipped, and a closed peer failing pending calls.
    #[tokio::test]
    async fn answers_events_and_a_closed_peer() {
        let (client_w, mut peer_r) = tokio::io::duplex(1 << 16);
        let (mut peer_w, client_r) = tokio::io::duplex(1 << 16);
        let cdp = Cdp::new(client_w, client_r);
        let mut ev = cdp.subscribe();
        let t = Duration::from_secs(5);
        let call = cdp.call("Browser.getVersion", json!({}), None, t);
        let peer = async {
            let mut got = Vec::new();
            let mut b = [0u8; 256];
            while !got.contains(&0) {
                let n = peer_r.read(&mut b).await.unwrap();
                got.extend_from_slice(&b[..n]);
            }
            let v: Value = serde_json::from_slice(&got[..got.len() - 1]).unwrap();
            assert_eq!(v["method"], "Browser.getVersion");
            let id = v["id"].as_u64().unwrap();
            // Garbage, an event split in two writes, then the answer.
            peer_w
                .write_all(b"not json\0{\"method\":\"Page.load")
                .await
                .unwrap();
            peer_w
                .write_all(b"EventFired\",\"params\":{},\"sessionId\":\"S\"}\0")
                .await
                .unwrap();
            peer_w
                .write_all(format!("{{\"id\":{id},\"result\":{{\"product\":\"x\"}}}}\0").as_bytes())
                .await
                .unwrap();
        };
        let (r, ()) = tokio::join!(call, peer);
        assert_eq!(r.unwrap()["product"], "x");
        let e = ev.recv().await.unwrap();
        assert_eq!(
            (e.method.as_str(), e.session.as_deref()),
            ("Page.loadEventFired", Some("S"))
        );
        drop(peer_w);
        let r = cdp.call("Page.navigate", json!({}), None, t).await;
        assert!(matches!(r, Err(CdpError::Closed)), "{r:?}");
    }
}
