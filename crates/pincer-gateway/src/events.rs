//! Live events (task, approval) for `GET /v1/events`: an in-memory, bounded ring with
//! increasing ids, so a client that reconnects with `Last-Event-ID` gets what it missed — or a
//! `gap` event saying some fell out of the ring and it should re-read state.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde_json::Value;
use tokio::sync::watch;

/// Events kept for reconnecting clients.
const RING: usize = 1024;

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub struct BusEvent {
    /// Increasing id (the SSE `id:`).
    pub id: u64,
    /// Kind (`task.running`, `approval.requested`, …).
    pub kind: String,
    /// Payload.
    pub data: Value,
}

/// Publishes events and wakes waiters; every task or approval change goes through it.
#[derive(Debug)]
pub struct EventBus {
    ring: Mutex<VecDeque<BusEvent>>,
    latest: watch::Sender<u64>,
    closed: std::sync::atomic::AtomicBool,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            ring: Mutex::new(VecDeque::with_capacity(RING)),
            latest: watch::channel(0).0,
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl EventBus {
    fn ring(&self) -> std::sync::MutexGuard<'_, VecDeque<BusEvent>> {
        self.ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records an event and wakes every waiter.
    pub fn publish(&self, kind: impl Into<String>, data: Value) {
        let id = {
            let mut ring = self.ring();
            let id = ring.back().map_or(1, |e| e.id + 1);
            if ring.len() == RING {
                ring.pop_front();
            }
            ring.push_back(BusEvent {
                id,
                kind: kind.into(),
                data,
            });
            id
        };
        self.latest.send_replace(id);
    }

    /// Events after `after`, and whether some were already dropped from the ring.
    pub fn since(&self, after: u64) -> (Vec<BusEvent>, bool) {
        let ring = self.ring();
        let gap = ring.front().is_some_and(|e| e.id > after + 1);
        (ring.iter().filter(|e| e.id > after).cloned().collect(), gap)
    }

    /// Ends every stream and wait (the server is shutting down).
    pub fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.latest.send_modify(|_| {});
    }

    /// Whether [`Self::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The newest id (0 before any event).
    pub fn latest(&self) -> u64 {
        *self.latest.borrow()
    }

    /// A receiver that changes on every publish.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.latest.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_returns_what_was_missed_and_reports_gaps() {
        let bus = EventBus::default();
        assert_eq!(bus.since(0), (vec![], false));
        for i in 0..3 {
            bus.publish("task.queued", serde_json::json!({"n": i}));
        }
        let (evs, gap) = bus.since(1);
        assert!(!gap);
        assert_eq!(evs.iter().map(|e| e.id).collect::<Vec<_>>(), [2, 3]);
        for _ in 0..RING {
            bus.publish("x", Value::Null);
        }
        let (evs, gap) = bus.since(1);
        assert!(gap);
        assert_eq!(evs.len(), RING);
        assert_eq!(bus.latest(), 3 + RING as u64);
    }
}
