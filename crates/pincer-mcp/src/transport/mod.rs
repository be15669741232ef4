//! How messages travel: newline-delimited JSON over a sandboxed process's stdio, or streamable
//! HTTP. A transport sends our messages and feeds the server's, already split and classified,
//! into one bounded channel the client reads.

pub mod http;
pub mod stdio;

use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc;

use crate::jsonrpc::Incoming;

/// Messages waiting for the client before a transport stops reading.
pub(crate) const INBOUND_QUEUE: usize = 256;

/// What a transport hands the client.
#[derive(Debug)]
pub enum Inbound {
    /// A message (or a malformed one, with the reason).
    Message(Incoming),
    /// The connection is over, with the reason; nothing follows.
    Closed(String),
}

/// The future [`Transport::send`] returns.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Our side of a connection.
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// Sends one message (waits for room, never unboundedly).
    fn send(&self, msg: Vec<u8>) -> SendFuture<'_>;
    /// Sends without waiting, best effort (cancellation from a dropped call).
    fn send_now(&self, msg: Vec<u8>);
    /// Ends the connection (and for HTTP, the session).
    fn close(&self);
    /// The protocol version agreed at initialize (HTTP sends it on every later request).
    fn negotiated(&self, _version: &str) {}
}

/// A connected transport and the server's messages.
#[derive(Debug)]
pub struct Connection {
    /// Our side.
    pub transport: std::sync::Arc<dyn Transport>,
    /// The server's side.
    pub inbound: mpsc::Receiver<Inbound>,
}
