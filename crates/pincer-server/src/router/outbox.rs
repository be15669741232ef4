//! Sending: the durable outbox, in order per chat, and "typing…".
//!
//! - Order is kept per chat, not globally: a chat that is flood-limited (Telegram's 429 with
//!   `retry_after`) is held until its time while every other chat's messages go on, so a busy
//!   group never freezes direct messages.
//! - A long message is sent in parts; the parts delivered are recorded, so a message that
//!   failed part-way is resumed after them and the user never sees a part twice.
//! - A message the platform refuses is set aside with the reason; one that cannot be sent now
//!   (server or network trouble) is retried with back-off. The queue survives restarts.
//! - "typing…" is refreshed only while the task's worker is alive: a task whose heartbeat is
//!   overdue (its worker died; the task ends when its lease expires) shows no typing.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use pincer_channels::{Button, ChannelFailure, OutMessage, SendFailure};
use pincer_store::Outgoing;
use pincer_types::TaskStatus;
use tokio_util::sync::CancellationToken;

use super::{Router, TYPING_EVERY, pause};

/// Messages looked at per pass.
const PASS: usize = 200;
/// Rows another process queued (`pincer pairing approve` tells the sender) are picked up at
/// least this often; this process's own messages wake the sender at once.
const RECHECK: Duration = Duration::from_secs(5);

impl Router {
    /// Sends queued messages, in order per chat (see the module docs).
    pub(super) async fn send_loop(self: Arc<Self>, stop: CancellationToken) {
        let mut held: HashMap<String, Instant> = HashMap::new();
        let mut backoff = Duration::from_secs(1);
        loop {
            let notified = self.outbox.notified();
            let now = Instant::now();
            held.retain(|_, until| *until > now);
            let pending = self
                .store
                .pending_out(self.name(), PASS)
                .await
                .unwrap_or_default();
            let mut skip: HashSet<String> = held.keys().cloned().collect();
            let mut trouble = false;
            for m in &pending {
                if skip.contains(&m.chat) {
                    continue;
                }
                match self.send_one(m).await {
                    Sent::Done => {}
                    Sent::Held(d) => {
                        held.insert(m.chat.clone(), Instant::now() + d);
                        skip.insert(m.chat.clone());
                    }
                    Sent::Later => {
                        trouble = true;
                        break;
                    }
                }
            }
            if trouble {
                pause(&stop, backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                continue;
            }
            backoff = Duration::from_secs(1);
            if stop.is_cancelled() {
                return;
            }
            let more = pending.len() == PASS && skip.len() < pending.len();
            if more {
                continue;
            }
            // Sleep until something is queued, or the first held chat may be tried again.
            let next = held.values().min().copied();
            tokio::select! {
                () = notified => {}
                () = sleep_until(next) => {}
                () = tokio::time::sleep(RECHECK) => {}
                () = stop.cancelled() => return,
            }
        }
    }

    /// Sends one queued message (resuming after the parts already delivered) and records the
    /// outcome.
    async fn send_one(&self, m: &Outgoing) -> Sent {
        let buttons: Vec<Button> = m
            .markup
            .as_deref()
            .and_then(|s| serde_json::from_str::<Vec<serde_json::Value>>(s).ok())
            .unwrap_or_default()
            .iter()
            .map(|b| Button {
                label: b["label"].as_str().unwrap_or_default().to_owned(),
                data: b["data"].as_str().unwrap_or_default().to_owned(),
            })
            .collect();
        let msg = OutMessage {
            chat: &m.chat,
            text: &m.text,
            buttons: &buttons,
            reply_to: m.reply_to.as_deref(),
            parts_sent: m.parts_sent,
        };
        let (failure, outcome) = match self.channel.send(msg).await {
            Ok(()) => (None, Sent::Done),
            Err(SendFailure {
                parts_sent,
                failure,
            }) => {
                pincer_agent::stats::event("channel_send_failure", self.name());
                if parts_sent > m.parts_sent
                    && let Err(e) = self.store.progress_out(m.id, parts_sent).await
                {
                    eprintln!("pincer serve: {}: outbox: {e}", self.name());
                }
                match failure {
                    ChannelFailure::Refused(_) => (Some(failure.to_string()), Sent::Done),
                    ChannelFailure::Limited(d) => return Sent::Held(d),
                    ChannelFailure::Unavailable(_) | ChannelFailure::Conflict(_) => {
                        eprintln!(
                            "pincer serve: {}: sending: {failure}; will retry",
                            self.name()
                        );
                        return Sent::Later;
                    }
                }
            }
        };
        if let Err(e) = self
            .store
            .done_out(m.id, failure.as_deref(), Utc::now())
            .await
        {
            eprintln!("pincer serve: {}: outbox: {e}", self.name());
        }
        outcome
    }

    /// Keeps "typing…" showing in chats whose task is running on a live worker.
    pub(super) async fn typing_loop(self: Arc<Self>, stop: CancellationToken) {
        if !self.channel.capabilities().typing {
            return;
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep(TYPING_EVERY) => {}
                () = stop.cancelled() => return,
            }
            for id in self
                .store
                .linked_tasks(self.name())
                .await
                .unwrap_or_default()
            {
                let alive = matches!(
                    self.store.task(id).await,
                    Ok(Some(t)) if worker_alive(&t, Utc::now(), self.policy.heartbeat_every)
                );
                if alive && let Ok(Some(link)) = self.store.task_link(id).await {
                    self.channel.typing(&link.chat).await;
                }
            }
        }
    }
}

/// Whether `t` runs on a live worker: running, and its lease renewed within one heartbeat
/// period (plus one typing refresh of slack). A worker that died leaves the task running until
/// its lease expires; no "typing…" is shown meanwhile.
fn worker_alive(
    t: &pincer_store::TaskRecord,
    now: chrono::DateTime<Utc>,
    heartbeat_every: Duration,
) -> bool {
    let stale =
        chrono::Duration::from_std(heartbeat_every + TYPING_EVERY).unwrap_or(chrono::Duration::MAX);
    t.status == TaskStatus::Running && now - t.updated_at <= stale
}

/// What became of one message.
enum Sent {
    /// Delivered, or set aside as refused.
    Done,
    /// The chat is flood-limited for this long; its later messages wait too.
    Held(Duration),
    /// The platform is unreachable now: retry the queue later.
    Later,
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pincer_store::{NewTask, SqliteStore, TaskKind, TaskQueue};

    #[tokio::test]
    async fn typing_stops_once_the_workers_heartbeat_is_overdue() {
        let store = SqliteStore::in_memory().unwrap();
        let t0 = Utc::now();
        let (task, _) = store
            .submit(
                NewTask {
                    kind: TaskKind::Message,
                    agent: "main".parse().unwrap(),
                    session_key: "agent:main:telegram:dm-1".parse().unwrap(),
                    input: "hi".into(),
                    idempotency_key: None,
                    deadline: None,
                    owner: None,
                },
                t0,
            )
            .await
            .unwrap();
        let every = Duration::from_secs(10);
        assert!(!worker_alive(&task, t0, every), "queued: no typing");
        let running = store
            .claim("w", t0, Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        assert!(worker_alive(
            &running,
            t0 + chrono::Duration::seconds(12),
            every
        ));
        // No heartbeat for 15 s (10 s period + 4 s refresh + 1): the worker is presumed dead.
        assert!(!worker_alive(
            &running,
            t0 + chrono::Duration::seconds(15),
            every
        ));
    }
}
