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
    /// Where this node's events go to reach other nodes ([`EventBus::relay_to`]).
    relay: Mutex<Option<tokio::sync::mpsc::Sender<(String, Value)>>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            ring: Mutex::new(VecDeque::with_capacity(RING)),
            latest: watch::channel(0).0,
            closed: std::sync::atomic::AtomicBool::new(false),
            relay: Mutex::new(None),
        }
    }
}

impl EventBus {
    fn ring(&self) -> std::sync::MutexGuard<'_, VecDeque<BusEvent>> {
        self.ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// From now on, every event published here is also handed to `tx` (bounded: when the relay
    /// lags, events are dropped for other nodes — their waiters recheck state anyway).
    pub fn relay_to(&self, tx: tokio::sync::mpsc::Sender<(String, Value)>) {
        *self
            .relay
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(tx);
    }

    /// Records an event that another node published (it is not relayed again).
    pub fn publish_relayed(&self, kind: impl Into<String>, data: Value) {
        self.record(kind.into(), data);
    }

    /// Records an event, wakes every waiter, and relays it to other nodes when relaying.
    pub fn publish(&self, kind: impl Into<String>, data: Value) {
        let kind = kind.into();
        if let Some(tx) = self
            .relay
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            let _ = tx.try_send((kind.clone(), data.clone()));
        }
        self.record(kind, data);
    }

    fn record(&self, kind: String, data: Value) {
        let id = {
            let mut ring = self.ring();
            let id = ring.back().map_or(1, |e| e.id + 1);
            if ring.len() == RING {
                ring.pop_front();
            }
            ring.push_back(BusEvent { id, kind, data });
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

    /// A waiter for changes to one task, created before its first read of the task so that no
    /// change between the read and the wait is missed.
    pub fn watch_task(&self, task: impl ToString) -> TaskWatch {
        self.watch_task_since(task, self.latest())
    }

    /// A waiter for changes to one task published after event `seen` — for a task created
    /// after the caller noted [`Self::latest`], so that events from its very start count.
    pub fn watch_task_since(&self, task: impl ToString, seen: u64) -> TaskWatch {
        TaskWatch {
            rx: self.latest.subscribe(),
            seen,
            task: task.to_string(),
        }
    }

    /// Whether an event after `after` may end a wait on `task`: one about it other than
    /// queued/running or run progress (it ended, or an approval was requested or decided), or a
    /// gap.
    fn touches(&self, after: u64, task: &str) -> bool {
        let ring = self.ring();
        if ring.front().is_some_and(|e| e.id > after + 1) {
            return true;
        }
        ring.iter()
            .rev()
            .take_while(|e| e.id > after)
            .filter(|e| {
                e.kind != "task.queued" && e.kind != "task.running" && !e.kind.starts_with("run.")
            })
            .any(|e| e.data.get("task").and_then(Value::as_str) == Some(task))
    }
}

/// Waits for events about one task (see [`EventBus::watch_task`]). Other tasks' events — and
/// its own `task.queued` / `task.running`, which end no wait — do not wake the caller, so N
/// waiters cost one check per event each, not N store reads.
#[derive(Debug)]
pub struct TaskWatch {
    rx: watch::Receiver<u64>,
    seen: u64,
    task: String,
}

impl TaskWatch {
    /// Returns when an event about the task was published since the last call (or since the
    /// watch was made), when some events fell out of the ring, when the bus closes, or at
    /// `until` — whichever is first. The caller re-reads the task afterwards in every case.
    pub async fn changed(&mut self, bus: &EventBus, until: tokio::time::Instant) {
        loop {
            let latest = *self.rx.borrow_and_update();
            if latest != self.seen {
                let touched = bus.touches(self.seen, &self.task);
                self.seen = latest;
                if touched {
                    return;
                }
            }
            if bus.is_closed() {
                return;
            }
            match tokio::time::timeout_at(until, self.rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return,
            }
        }
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

    #[tokio::test]
    async fn a_task_watch_wakes_only_for_its_task() {
        let bus = std::sync::Arc::new(EventBus::default());
        let mut w = bus.watch_task("t1");
        bus.publish("task.running", serde_json::json!({"task": "t2"}));
        bus.publish("task.queued", serde_json::json!({"task": "t3"}));
        bus.publish("task.running", serde_json::json!({"task": "t1"}));
        // Other tasks' events do not end the wait: it runs to its deadline.
        let far = tokio::time::Instant::now() + std::time::Duration::from_millis(50);
        w.changed(&bus, far).await;
        assert!(
            tokio::time::Instant::now() >= far,
            "woken by another task's event"
        );
        // Its own event does, even when published before the wait began.
        bus.publish("task.succeeded", serde_json::json!({"task": "t1"}));
        let later = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        w.changed(&bus, later).await;
        assert!(tokio::time::Instant::now() < later);
        // And one published while waiting.
        let b = bus.clone();
        let waiter = tokio::spawn(async move {
            w.changed(
                &b,
                tokio::time::Instant::now() + std::time::Duration::from_secs(30),
            )
            .await;
        });
        bus.publish("task.running", serde_json::json!({"task": "t9"}));
        bus.publish("approval.requested", serde_json::json!({"task": "t1"}));
        tokio::time::timeout(std::time::Duration::from_secs(10), waiter)
            .await
            .expect("woken by its task's event")
            .unwrap();
    }
}
