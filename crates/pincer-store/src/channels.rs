//! Channel state (E3, D11): polling offsets that survive restarts, pairing codes for unknown
//! senders, and the senders an operator has approved.
//!
//! Pairing: an unknown sender gets an 8-character code from an alphabet without look-alikes
//! (no `0/O`, `1/I/L`), drawn from the OS CSPRNG; a code expires after an hour; at most three
//! are pending per channel; asking again returns the sender's pending code. The operator
//! approves a code, which allows that sender on that channel.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::sqlite::stamp;
use crate::{SqliteStore, StoreError};
use pincer_types::TaskId;

/// Code alphabet: no characters that read alike.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
/// Code length.
pub const CODE_LEN: usize = 8;
/// Pending codes per channel at most.
pub const MAX_PENDING: usize = 3;
/// What an approved sender is told.
pub const APPROVED_TEXT: &str = "You are approved — send me a message and I will work on it.";
/// How long a code is valid.
pub const CODE_TTL: chrono::Duration = chrono::Duration::hours(1);

/// A pending pairing request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pairing {
    /// Channel (`telegram`).
    pub channel: String,
    /// The code to approve.
    pub code: String,
    /// The sender asking (channel-specific id).
    pub sender: String,
    /// A display name, when known.
    pub name: String,
    /// Requested.
    pub created_at: DateTime<Utc>,
    /// Expires.
    pub expires_at: DateTime<Utc>,
}

/// The answer to an unknown sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairingRequest {
    /// Their code: a new one (tell them), or the one they already have (`new: false`: they were
    /// told; do not repeat it on every message).
    Code {
        /// The code.
        code: String,
        /// Created by this request.
        new: bool,
    },
    /// Too many pending requests on this channel; try later.
    TooMany,
}

/// A channel-state failure.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// No pending, unexpired request with this code.
    #[error("no pending pairing request `{0}` (codes expire after an hour)")]
    NoSuchCode(String),
    /// The OS random source failed.
    #[error("no randomness available: {0}")]
    Random(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A message waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Queue id (sending order).
    pub id: i64,
    /// Chat (channel-specific id).
    pub chat: String,
    /// Markdown text.
    pub text: String,
    /// Channel-specific markup (buttons) as JSON text.
    pub markup: Option<String>,
    /// The message it answers (channel-specific id), sent as a reply.
    pub reply_to: Option<String>,
    /// Parts of a long message already delivered (a resend starts after them).
    pub parts_sent: u32,
}

/// Where a task's answer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskLink {
    /// Chat.
    pub chat: String,
    /// The user who asked.
    pub user: String,
    /// The question's message id, when the answer is sent as a reply (groups).
    pub reply_to: Option<String>,
}

/// A message to queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewOutgoing<'a> {
    /// Channel (`telegram`).
    pub channel: &'a str,
    /// Chat.
    pub chat: &'a str,
    /// Markdown text.
    pub text: &'a str,
    /// Channel-specific markup (buttons) as JSON text.
    pub markup: Option<&'a str>,
    /// The message it answers, to send it as a reply.
    pub reply_to: Option<&'a str>,
    /// The task it answers: its link is forgotten in the same transaction.
    pub answers: Option<TaskId>,
}

impl<'a> NewOutgoing<'a> {
    /// Plain text to `chat` of `channel`.
    pub fn text(channel: &'a str, chat: &'a str, text: &'a str) -> Self {
        Self {
            channel,
            chat,
            text,
            markup: None,
            reply_to: None,
            answers: None,
        }
    }
}

/// The channel-state seam.
#[async_trait]
pub trait ChannelStore: Send + Sync + std::fmt::Debug {
    /// Remembers which chat (and user) a task answers to.
    async fn link_task(
        &self,
        task: TaskId,
        channel: &str,
        link: &TaskLink,
    ) -> Result<(), ChannelError>;
    /// The chat and user a task answers to.
    async fn task_link(&self, task: TaskId) -> Result<Option<TaskLink>, ChannelError>;
    /// Tasks of `channel` still waiting to be answered.
    async fn linked_tasks(&self, channel: &str) -> Result<Vec<TaskId>, ChannelError>;
    /// Queues a message and, atomically, forgets the task link it answers (if any).
    async fn enqueue(&self, msg: NewOutgoing<'_>, now: DateTime<Utc>) -> Result<i64, ChannelError>;
    /// Records that the first `parts` parts of a queued message were delivered.
    async fn progress_out(&self, id: i64, parts: u32) -> Result<(), ChannelError>;
    /// The oldest unsent messages of `channel`.
    async fn pending_out(&self, channel: &str, limit: usize)
    -> Result<Vec<Outgoing>, ChannelError>;
    /// Creates a single-use invite for the Pincer user `user`, valid for `ttl`.
    async fn create_invite(
        &self,
        user: &str,
        ttl: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<String, ChannelError>;
    /// Redeems an invite for `sender` on `channel`: the sender is allowed and linked to the
    /// invite's user. Returns the user.
    async fn redeem_invite(
        &self,
        code: &str,
        channel: &str,
        sender: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<String, ChannelError>;
    /// Marks a message sent (or given up, with `failure`).
    async fn done_out(
        &self,
        id: i64,
        failure: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), ChannelError>;
    /// The next update offset to ask for, once one was saved.
    async fn offset(&self, channel: &str) -> Result<Option<i64>, ChannelError>;
    /// Saves the next update offset.
    async fn set_offset(&self, channel: &str, offset: i64) -> Result<(), ChannelError>;
    /// Whether `sender` may talk on `channel` (approved by pairing).
    async fn is_paired(&self, channel: &str, sender: &str) -> Result<bool, ChannelError>;
    /// A code for an unknown sender (see the module docs).
    async fn request_pairing(
        &self,
        channel: &str,
        sender: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<PairingRequest, ChannelError>;
    /// Pending, unexpired requests of `channel`.
    async fn pairings(
        &self,
        channel: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Pairing>, ChannelError>;
    /// Approves a pending code: its sender may talk from now on. Returns the request.
    async fn approve_pairing(
        &self,
        channel: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Pairing, ChannelError>;
}

pub(crate) fn new_code() -> Result<String, ChannelError> {
    // Rejection sampling keeps the characters uniform.
    let mut out = String::with_capacity(CODE_LEN);
    let limit = 256 - (256 % ALPHABET.len());
    while out.len() < CODE_LEN {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b).map_err(|e| ChannelError::Random(e.to_string()))?;
        for x in b {
            if usize::from(x) < limit && out.len() < CODE_LEN {
                out.push(char::from(ALPHABET[usize::from(x) % ALPHABET.len()]));
            }
        }
    }
    Ok(out)
}

fn row(r: &rusqlite::Row<'_>) -> Result<Pairing, StoreError> {
    let created = crate::sqlite::ts(&r.get::<_, String>(4)?)?;
    Ok(Pairing {
        channel: r.get(0)?,
        code: r.get(1)?,
        sender: r.get(2)?,
        name: r.get(3)?,
        expires_at: created + CODE_TTL,
        created_at: created,
    })
}

#[async_trait]
impl ChannelStore for SqliteStore {
    async fn link_task(
        &self,
        task: TaskId,
        channel: &str,
        link: &TaskLink,
    ) -> Result<(), ChannelError> {
        let channel = channel.to_owned();
        let link = link.clone();
        Ok(self
            .with(move |c| {
                c.prepare_cached(
                    "INSERT OR REPLACE INTO channel_tasks (task_id, channel, chat, user, reply_to)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        task.to_string(),
                        channel,
                        link.chat,
                        link.user,
                        link.reply_to
                    ])
                })?;
                Ok(())
            })
            .await?)
    }

    async fn task_link(&self, task: TaskId) -> Result<Option<TaskLink>, ChannelError> {
        Ok(self
            .with(move |c| {
                Ok(c.prepare_cached(
                    "SELECT chat, user, reply_to FROM channel_tasks WHERE task_id = ?1",
                )
                .and_then(|mut st| {
                    st.query_row(params![task.to_string()], |r| {
                        Ok(TaskLink {
                            chat: r.get(0)?,
                            user: r.get(1)?,
                            reply_to: r.get(2)?,
                        })
                    })
                })
                .optional()?)
            })
            .await?)
    }

    async fn linked_tasks(&self, channel: &str) -> Result<Vec<TaskId>, ChannelError> {
        let channel = channel.to_owned();
        Ok(self
            .with(move |c| {
                let mut st =
                    c.prepare_cached("SELECT task_id FROM channel_tasks WHERE channel = ?1")?;
                let ids = st
                    .query_map(params![channel], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                ids.iter()
                    .map(|s| crate::sqlite::parse(s, "task id"))
                    .collect()
            })
            .await?)
    }

    async fn enqueue(&self, msg: NewOutgoing<'_>, now: DateTime<Utc>) -> Result<i64, ChannelError> {
        let (channel, chat, text, markup, reply_to) = (
            msg.channel.to_owned(),
            msg.chat.to_owned(),
            msg.text.to_owned(),
            msg.markup.map(str::to_owned),
            msg.reply_to.map(str::to_owned),
        );
        let answers = msg.answers;
        self.transact(move |c| {
            c.prepare_cached(
                "INSERT INTO outbox (channel, chat, text, markup, reply_to, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut st| {
                st.execute(params![channel, chat, text, markup, reply_to, stamp(now)])
            })
            .map_err(StoreError::from)?;
            let id = c.last_insert_rowid();
            if let Some(t) = answers {
                c.prepare_cached("DELETE FROM channel_tasks WHERE task_id = ?1")
                    .and_then(|mut st| st.execute(params![t.to_string()]))
                    .map_err(StoreError::from)?;
            }
            Ok(id)
        })
        .await
    }

    async fn progress_out(&self, id: i64, parts: u32) -> Result<(), ChannelError> {
        Ok(self
            .with(move |c| {
                c.prepare_cached("UPDATE outbox SET parts_sent = ?2 WHERE id = ?1")
                    .and_then(|mut st| st.execute(params![id, parts]))?;
                Ok(())
            })
            .await?)
    }

    async fn pending_out(
        &self,
        channel: &str,
        limit: usize,
    ) -> Result<Vec<Outgoing>, ChannelError> {
        let channel = channel.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .with(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT id, chat, text, markup, reply_to, parts_sent FROM outbox
                     WHERE channel = ?1 AND done_at IS NULL ORDER BY id LIMIT ?2",
                )?;
                let rows = st
                    .query_map(params![channel, limit], |r| {
                        Ok(Outgoing {
                            id: r.get(0)?,
                            chat: r.get(1)?,
                            text: r.get(2)?,
                            markup: r.get(3)?,
                            reply_to: r.get(4)?,
                            parts_sent: r.get(5)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await?)
    }

    async fn create_invite(
        &self,
        user: &str,
        ttl: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<String, ChannelError> {
        let code = format!("{}{}", new_code()?, new_code()?);
        let (user, c2) = (user.to_owned(), code.clone());
        self.with(move |c| {
            c.prepare_cached("INSERT INTO invites (code, user_name, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)").and_then(|mut st| st.execute(params![c2, user, stamp(now), stamp(now + ttl)]))?;
            Ok(())
        })
        .await?;
        Ok(code)
    }

    async fn redeem_invite(
        &self,
        code: &str,
        channel: &str,
        sender: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<String, ChannelError> {
        let (code, channel, sender, name) = (
            code.trim().to_ascii_uppercase(),
            channel.to_owned(),
            sender.to_owned(),
            name.to_owned(),
        );
        self.transact(move |c| {
            let user: Option<String> = c
                .prepare_cached(
                    "SELECT user_name FROM invites
                     WHERE code = ?1 AND used_at IS NULL AND expires_at > ?2",
                )
                .and_then(|mut st| st.query_row(params![code, stamp(now)], |r| r.get(0)))
                .optional()
                .map_err(StoreError::from)?;
            let Some(user) = user else {
                return Err(ChannelError::NoSuchCode(code));
            };
            c.prepare_cached("UPDATE invites SET used_by = ?2, used_at = ?3 WHERE code = ?1")
                .and_then(|mut st| {
                    st.execute(params![code, format!("{channel}:{sender}"), stamp(now)])
                })
                .map_err(StoreError::from)?;
            c.prepare_cached(
                "INSERT INTO channel_senders (channel, sender, name, approved_at, user_name)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(channel, sender) DO UPDATE SET user_name = excluded.user_name",
            )
            .and_then(|mut st| st.execute(params![channel, sender, name, stamp(now), user]))
            .map_err(StoreError::from)?;
            Ok(user)
        })
        .await
    }

    async fn done_out(
        &self,
        id: i64,
        failure: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), ChannelError> {
        let failure = failure.map(str::to_owned);
        Ok(self
            .with(move |c| {
                c.prepare_cached("UPDATE outbox SET done_at = ?2, failure = ?3 WHERE id = ?1")
                    .and_then(|mut st| st.execute(params![id, stamp(now), failure]))?;
                Ok(())
            })
            .await?)
    }

    async fn offset(&self, channel: &str) -> Result<Option<i64>, ChannelError> {
        let key = format!("{channel}.offset");
        Ok(self
            .with(move |c| {
                Ok(
                    c.prepare_cached("SELECT value FROM channel_state WHERE key = ?1")
                        .and_then(|mut st| st.query_row(params![key], |r| r.get::<_, i64>(0)))
                        .optional()?,
                )
            })
            .await?)
    }

    async fn set_offset(&self, channel: &str, offset: i64) -> Result<(), ChannelError> {
        let key = format!("{channel}.offset");
        Ok(self
            .with(move |c| {
                c.prepare_cached(
                    "INSERT INTO channel_state (key, value) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                )
                .and_then(|mut st| st.execute(params![key, offset]))?;
                Ok(())
            })
            .await?)
    }

    async fn is_paired(&self, channel: &str, sender: &str) -> Result<bool, ChannelError> {
        let (channel, sender) = (channel.to_owned(), sender.to_owned());
        Ok(self
            .with(move |c| {
                Ok(c.prepare_cached(
                    "SELECT 1 FROM channel_senders WHERE channel = ?1 AND sender = ?2",
                )
                .and_then(|mut st| st.query_row(params![channel, sender], |_| Ok(())))
                .optional()?
                .is_some())
            })
            .await?)
    }

    async fn request_pairing(
        &self,
        channel: &str,
        sender: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<PairingRequest, ChannelError> {
        let code = new_code()?;
        let (channel, sender, name) = (channel.to_owned(), sender.to_owned(), name.to_owned());
        self.transact(move |c| {
            let cutoff = stamp(now - CODE_TTL);
            c.prepare_cached("DELETE FROM pairings WHERE channel = ?1 AND created_at <= ?2")
                .and_then(|mut st| st.execute(params![channel, cutoff]))
                .map_err(StoreError::from)?;
            let existing: Option<String> = c
                .prepare_cached("SELECT code FROM pairings WHERE channel = ?1 AND sender = ?2")
                .and_then(|mut st| st.query_row(params![channel, sender], |r| r.get(0)))
                .optional()
                .map_err(StoreError::from)?;
            if let Some(code) = existing {
                return Ok(PairingRequest::Code { code, new: false });
            }
            let pending: i64 = c
                .prepare_cached("SELECT COUNT(*) FROM pairings WHERE channel = ?1")
                .and_then(|mut st| st.query_row(params![channel], |r| r.get(0)))
                .map_err(StoreError::from)?;
            if usize::try_from(pending).unwrap_or(usize::MAX) >= MAX_PENDING {
                return Ok(PairingRequest::TooMany);
            }
            c.prepare_cached(
                "INSERT INTO pairings (channel, code, sender, name, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut st| st.execute(params![channel, code, sender, name, stamp(now)]))
            .map_err(StoreError::from)?;
            Ok(PairingRequest::Code { code, new: true })
        })
        .await
    }

    async fn pairings(
        &self,
        channel: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Pairing>, ChannelError> {
        let channel = channel.to_owned();
        Ok(self
            .with(move |c| {
                let mut st = c.prepare_cached(
                    "SELECT channel, code, sender, name, created_at FROM pairings
                     WHERE channel = ?1 AND created_at > ?2 ORDER BY created_at",
                )?;
                let mut rows = st.query(params![channel, stamp(now - CODE_TTL)])?;
                let mut v = Vec::new();
                while let Some(r) = rows.next()? {
                    v.push(row(r)?);
                }
                Ok(v)
            })
            .await?)
    }

    async fn approve_pairing(
        &self,
        channel: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Pairing, ChannelError> {
        let (channel, code) = (channel.to_owned(), code.trim().to_ascii_uppercase());
        self.transact(move |c| {
            let p = {
                let mut st = c
                    .prepare_cached(
                        "SELECT channel, code, sender, name, created_at FROM pairings
                         WHERE channel = ?1 AND code = ?2 AND created_at > ?3",
                    )
                    .map_err(StoreError::from)?;
                let mut rows = st
                    .query(params![channel, code, stamp(now - CODE_TTL)])
                    .map_err(StoreError::from)?;
                match rows.next().map_err(StoreError::from)? {
                    Some(r) => row(r)?,
                    None => return Err(ChannelError::NoSuchCode(code)),
                }
            };
            c.prepare_cached("DELETE FROM pairings WHERE channel = ?1 AND code = ?2")
                .and_then(|mut st| st.execute(params![channel, code]))
                .map_err(StoreError::from)?;
            c.prepare_cached(
                "INSERT OR IGNORE INTO channel_senders (channel, sender, name, approved_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut st| st.execute(params![p.channel, p.sender, p.name, stamp(now)]))
            .map_err(StoreError::from)?;
            // Tell them, in the same transaction (the direct chat's id is the sender's id).
            c.prepare_cached(
                "INSERT INTO outbox (channel, chat, text, created_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut st| st.execute(params![p.channel, p.sender, APPROVED_TEXT, stamp(now)]))
            .map_err(StoreError::from)?;
            Ok(p)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_unambiguous_alphabet() {
        for _ in 0..200 {
            let c = new_code().unwrap();
            assert_eq!(c.len(), CODE_LEN);
            assert!(c.bytes().all(|b| ALPHABET.contains(&b)), "{c}");
            assert!(!c.contains(['0', 'O', '1', 'I', 'L']), "{c}");
        }
    }
}
