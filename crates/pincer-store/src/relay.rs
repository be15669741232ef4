//! Relaying live events between nodes that share a database: task and approval events one
//! `pincer serve` publishes reach the others' event streams, task waiters and chat prompts.
//!
//! The embedded SQLite backend has one process per home and relays nothing (the defaults);
//! Postgres uses `NOTIFY` / `LISTEN` on the channel `pincer_events`. Delivery is best effort
//! (a node that is down misses events): everything that waits on events also re-reads state.

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::{SqliteStore, StoreError};

/// The relay seam.
#[async_trait]
pub trait EventRelay: Send + Sync + std::fmt::Debug {
    /// Sends one payload (JSON text, under 8000 bytes) to every listening node.
    async fn relay_send(&self, _payload: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// Payloads other nodes send, until the connection behind it ends (then subscribe again);
    /// `None` when this backend does not relay.
    async fn relay_subscribe(&self) -> Result<Option<mpsc::Receiver<String>>, StoreError> {
        Ok(None)
    }
}

impl EventRelay for SqliteStore {}
