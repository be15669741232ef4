//! Live events across nodes: what this `pincer serve` publishes on its event bus is relayed to
//! the other nodes on the same database, and theirs to this one ([`pincer_store::EventRelay`];
//! Postgres `NOTIFY`/`LISTEN`, nothing on SQLite). So an SSE client, a task waiter or the chat
//! router on any node sees a task another node runs — its progress, its approval prompt, its end.
//!
//! Best effort by design: a relay that lags drops events (bounded queues), and a node that was
//! down misses what happened meanwhile; everything that waits on events also re-reads state.

use std::sync::Arc;
use std::time::Duration;

use pincer_gateway::EventBus;
use pincer_store::Backend;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Events queued for sending before newer ones are dropped.
const OUT: usize = 1024;
/// Largest payload relayed (`NOTIFY` allows 8000 bytes).
const MAX_PAYLOAD: usize = 7900;

/// Starts relaying `events` both ways until `stop`, when the store relays at all. Returns once
/// this node is subscribed and its bus is hooked up, so callers start workers and the listener
/// afterwards and no event of theirs (a task's `run.started`) is published before it can be
/// relayed. The returned task ends after `stop`.
pub async fn start(
    store: Arc<dyn Backend>,
    events: Arc<EventBus>,
    node: String,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let first = match store.relay_subscribe().await {
        Ok(Some(rx)) => rx,
        Ok(None) => return tokio::spawn(async {}),
        Err(e) => {
            eprintln!("pincer serve: event relay: {e}; other nodes' events arrive by rechecks");
            return tokio::spawn(async {});
        }
    };
    let (tx, out) = tokio::sync::mpsc::channel::<(String, Value)>(OUT);
    events.relay_to(tx);
    tokio::spawn(run(store, events, node, stop, first, out))
}

/// The relay's two directions: `out` (this node's events) to the store, `first` and its
/// successors (other nodes' events) onto the bus.
async fn run(
    store: Arc<dyn Backend>,
    events: Arc<EventBus>,
    node: String,
    stop: CancellationToken,
    first: tokio::sync::mpsc::Receiver<String>,
    mut out: tokio::sync::mpsc::Receiver<(String, Value)>,
) {
    let sender = {
        let (store, node, stop) = (store.clone(), node.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    n = out.recv() => n,
                    () = stop.cancelled() => None,
                };
                let Some((kind, data)) = next else { return };
                let payload = json!({"node": node, "kind": kind, "data": data}).to_string();
                if payload.len() <= MAX_PAYLOAD
                    && let Err(e) = store.relay_send(&payload).await
                {
                    eprintln!("pincer serve: event relay: {e}");
                }
            }
        })
    };
    let mut rx = Some(first);
    while !stop.is_cancelled() {
        let mut incoming = match rx.take() {
            Some(r) => r,
            None => match store.relay_subscribe().await {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => {
                    eprintln!("pincer serve: event relay: {e}");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(2)) => continue,
                        () = stop.cancelled() => break,
                    }
                }
            },
        };
        loop {
            let payload = tokio::select! {
                p = incoming.recv() => p,
                () = stop.cancelled() => None,
            };
            let Some(payload) = payload else { break };
            let Ok(v) = serde_json::from_str::<Value>(&payload) else {
                continue;
            };
            if v["node"].as_str() == Some(node.as_str()) {
                continue;
            }
            if let Some(kind) = v["kind"].as_str() {
                events.publish_relayed(kind, v["data"].clone());
            }
        }
    }
    let _ = sender.await;
}
