#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The client against a peer that speaks the wire format by hand over a real byte pipe (the stdio
//! transport over `tokio::io::duplex`): what the reference servers in the end-to-end tests do not
//! exercise — pagination, progress, server requests, version refusal, cancellation on drop,
//! ping, and a closed connection failing every waiting call.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pincer_mcp::McpError;
use pincer_mcp::client::{Client, Event, Observer};
use pincer_mcp::transport::stdio;
use serde_json::{Value, json};
use tokio::io::{
    AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, DuplexStream, ReadHalf, WriteHalf,
};

#[derive(Debug, Default)]
struct Seen(Mutex<Vec<Event>>);

impl Observer for Seen {
    fn event(&self, _: &str, e: Event) {
        self.0.lock().unwrap().push(e);
    }
}

/// The peer's side: read our messages line by line, write replies.
struct Peer {
    lines: tokio::io::Lines<BufReader<ReadHalf<DuplexStream>>>,
    out: WriteHalf<DuplexStream>,
}

impl Peer {
    async fn recv(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(10), self.lines.next_line())
            .await
            .expect("the client sent nothing")
            .unwrap()
            .expect("the client closed its side");
        serde_json::from_str(&line).unwrap()
    }

    async fn send(&mut self, v: Value) {
        self.out
            .write_all(format!("{v}\n").as_bytes())
            .await
            .unwrap();
    }

    /// Answers initialize with `version`.
    async fn handshake(&mut self, version: &str) {
        let init = self.recv().await;
        assert_eq!(init["method"], "initialize");
        assert_eq!(init["params"]["protocolVersion"], "2025-11-25");
        self.send(json!({"jsonrpc": "2.0", "id": init["id"], "result": {
            "protocolVersion": version, "capabilities": {"tools": {"listChanged": true}},
            "serverInfo": {"name": "peer", "version": "1"}}}))
            .await;
    }
}

/// A client on one end of an in-memory byte pipe, the peer on the other.
fn connect(max_line: usize) -> (Client, Peer, Arc<Seen>) {
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let (our_read, our_write) = tokio::io::split(ours);
    let (their_read, their_write) = tokio::io::split(theirs);
    let seen = Arc::new(Seen::default());
    let client = Client::new(
        "peer",
        stdio::connect(our_write, our_read, max_line),
        seen.clone(),
    );
    let peer = Peer {
        lines: BufReader::new(their_read).lines(),
        out: their_write,
    };
    (client, peer, seen)
}

const T: Duration = Duration::from_secs(10);

#[tokio::test]
async fn initialize_refuses_a_version_it_does_not_speak() {
    let (client, mut peer, _) = connect(1 << 20);
    let init = tokio::spawn(async move { client.initialize(T).await });
    peer.handshake("1999-01-01").await;
    let e = init.await.unwrap().unwrap_err();
    assert!(
        matches!(&e, McpError::Protocol { message, .. } if message.contains("1999-01-01") && message.contains("2025-06-18")),
        "{e}"
    );
}

#[tokio::test]
async fn tools_list_follows_cursors_and_list_changed_is_reported() {
    let (client, mut peer, seen) = connect(1 << 20);
    let c = client.clone();
    let task = tokio::spawn(async move {
        let info = c.initialize(T).await.unwrap();
        assert!(info.list_changed);
        c.list_tools(T).await
    });
    peer.handshake("2025-06-18").await;
    assert_eq!(peer.recv().await["method"], "notifications/initialized");
    let mut changed = client.tools_changed();
    for page in 0..3 {
        let req = peer.recv().await;
        assert_eq!(req["method"], "tools/list");
        if page == 0 {
            assert!(
                req["params"].is_null() || req["params"]["cursor"].is_null(),
                "{req}"
            );
        } else {
            assert_eq!(req["params"]["cursor"], format!("c{page}"));
        }
        let next = if page < 2 {
            json!(format!("c{}", page + 1))
        } else {
            Value::Null
        };
        peer.send(json!({"jsonrpc": "2.0", "id": req["id"], "result": {
            "tools": [{"name": format!("t{page}"), "inputSchema": {"type": "object"}}],
            "nextCursor": next}}))
            .await;
    }
    let tools = task.await.unwrap().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["t0", "t1", "t2"]);
    peer.send(json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}))
        .await;
    tokio::time::timeout(T, changed.changed())
        .await
        .unwrap()
        .unwrap();
    assert!(seen.0.lock().unwrap().contains(&Event::ToolsChanged));
}

#[tokio::test]
async fn progress_is_observed_and_server_requests_are_answered() {
    let (client, mut peer, seen) = connect(1 << 20);
    let c = client.clone();
    let init = tokio::spawn(async move { c.initialize(T).await });
    peer.handshake("2025-11-25").await;
    init.await.unwrap().unwrap();
    peer.recv().await; // initialized
    let c = client.clone();
    let call = tokio::spawn(async move { c.call_tool("slow", json!({"x": 1}), T).await });
    let req = peer.recv().await;
    assert_eq!(req["method"], "tools/call");
    assert_eq!(req["params"]["arguments"], json!({"x": 1}));
    let token = req["params"]["_meta"]["progressToken"].clone();
    peer.send(json!({"jsonrpc": "2.0", "method": "notifications/progress",
                     "params": {"progressToken": token, "progress": 1, "total": 2}}))
        .await;
    // The server asks things of the client: ping is answered, sampling refused.
    peer.send(json!({"jsonrpc": "2.0", "id": "s1", "method": "ping"}))
        .await;
    let pong = peer.recv().await;
    assert_eq!(
        (pong["id"].clone(), pong["result"].clone()),
        (json!("s1"), json!({}))
    );
    peer.send(
        json!({"jsonrpc": "2.0", "id": "s2", "method": "sampling/createMessage", "params": {}}),
    )
    .await;
    let refused = peer.recv().await;
    assert_eq!(refused["error"]["code"], -32601);
    peer.send(json!({"jsonrpc": "2.0", "id": req["id"], "result": {"content": [{"type": "text", "text": "done"}]}})).await;
    let r = call.await.unwrap().unwrap();
    assert_eq!(r["content"][0]["text"], "done");
    let progress: Vec<Event> = seen
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::Progress { .. }))
        .cloned()
        .collect();
    assert_eq!(progress.len(), 1);
    assert!(
        matches!(progress[0], Event::Progress { progress, total: Some(total), .. } if progress == 1.0 && total == 2.0)
    );
    // And ping from our side.
    let c = client.clone();
    let ping = tokio::spawn(async move { c.ping(T).await });
    let req = peer.recv().await;
    assert_eq!(req["method"], "ping");
    peer.send(json!({"jsonrpc": "2.0", "id": req["id"], "result": {}}))
        .await;
    ping.await.unwrap().unwrap();
}

#[tokio::test]
async fn an_abandoned_call_is_cancelled_and_a_late_answer_is_reported() {
    let (client, mut peer, seen) = connect(1 << 20);
    let c = client.clone();
    let init = tokio::spawn(async move { c.initialize(T).await });
    peer.handshake("2025-11-25").await;
    init.await.unwrap().unwrap();
    peer.recv().await; // initialized
    // A run cancelled mid-call drops the call's future.
    let c = client.clone();
    let call = tokio::spawn(async move { c.call_tool("hang", json!({}), T).await });
    let req = peer.recv().await;
    call.abort();
    let cancel = peer.recv().await;
    assert_eq!(cancel["method"], "notifications/cancelled");
    assert_eq!(cancel["params"]["requestId"], req["id"]);
    // A timeout cancels too, with that reason.
    let c = client.clone();
    let timed = tokio::spawn(async move {
        c.call_tool("hang", json!({}), Duration::from_millis(50))
            .await
    });
    let req2 = peer.recv().await;
    let cancel = peer.recv().await;
    assert_eq!(cancel["params"]["requestId"], req2["id"]);
    assert_eq!(cancel["params"]["reason"], "timeout");
    assert!(matches!(
        timed.await.unwrap(),
        Err(McpError::Timeout { .. })
    ));
    // The server answering anyway is reported, not delivered anywhere.
    peer.send(json!({"jsonrpc": "2.0", "id": req2["id"], "result": {}}))
        .await;
    let c = client.clone();
    let ping = tokio::spawn(async move { c.ping(T).await });
    let p = peer.recv().await;
    peer.send(json!({"jsonrpc": "2.0", "id": p["id"], "result": {}}))
        .await;
    ping.await.unwrap().unwrap();
    assert!(
        seen.0
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, Event::Malformed(m) if m.contains("not waiting"))),
        "{:?}",
        seen.0.lock().unwrap()
    );
}

#[tokio::test]
async fn an_oversized_message_or_a_closed_pipe_fails_every_waiting_call() {
    let (client, mut peer, _) = connect(64 * 1024);
    let c = client.clone();
    let init = tokio::spawn(async move { c.initialize(T).await });
    peer.handshake("2025-11-25").await;
    init.await.unwrap().unwrap();
    peer.recv().await; // initialized
    let c = client.clone();
    let a = tokio::spawn(async move { c.call_tool("a", json!({}), T).await });
    let c = client.clone();
    let b = tokio::spawn(async move { c.call_tool("b", json!({}), T).await });
    peer.recv().await;
    peer.recv().await;
    // A 100 KB line without an end: over the limit, the connection is closed.
    peer.out.write_all(&vec![b'x'; 100 * 1024]).await.unwrap();
    for r in [a.await.unwrap(), b.await.unwrap()] {
        assert!(
            matches!(&r, Err(McpError::Closed { message, .. }) if message.contains("over 65536 bytes")),
            "{r:?}"
        );
    }
    assert!(client.is_closed());
    // Later calls fail at once.
    assert!(matches!(client.ping(T).await, Err(McpError::Closed { .. })));
}
