//! [`ChannelStore`] on Postgres: positions, pairing, invites, task links and the outbox, shared
//! by every node. A pairing code is unique per sender (`pairings_sender`), an invite is redeemed
//! once (the row is locked), and the pending-code limit is checked under a per-channel advisory
//! lock so two nodes cannot both hand out the fourth code.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use pincer_types::TaskId;
use tokio_postgres::Row;

use super::{PgStore, db};
use crate::StoreError;
use crate::channels::{
    APPROVED_TEXT, CODE_TTL, ChannelError, ChannelStore, MAX_PENDING, NewOutgoing, Outgoing,
    Pairing, PairingRequest, TaskLink, new_code,
};
use crate::values::parse;

fn pairing(r: &Row) -> Pairing {
    let created: DateTime<Utc> = r.get(4);
    Pairing {
        channel: r.get(0),
        code: r.get(1),
        sender: r.get(2),
        name: r.get(3),
        expires_at: created + CODE_TTL,
        created_at: created,
    }
}

/// A stable advisory-lock key for a name (FNV-1a).
fn lock_key(name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

async fn exec(
    c: &impl GenericClient,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<u64, StoreError> {
    c.execute(sql, params).await.map_err(|e| db(&e))
}

#[async_trait]
impl ChannelStore for PgStore {
    async fn link_task(
        &self,
        task: TaskId,
        channel: &str,
        link: &TaskLink,
    ) -> Result<(), ChannelError> {
        let client = self.client().await?;
        exec(
            &client,
            "INSERT INTO channel_tasks (task_id, channel, chat, user_id, reply_to)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (task_id) DO UPDATE SET channel = excluded.channel, chat = excluded.chat,
                user_id = excluded.user_id, reply_to = excluded.reply_to",
            &[
                &task.to_string(),
                &channel,
                &link.chat,
                &link.user,
                &link.reply_to,
            ],
        )
        .await?;
        Ok(())
    }

    async fn task_link(&self, task: TaskId) -> Result<Option<TaskLink>, ChannelError> {
        let client = self.client().await?;
        let r = client
            .query_opt(
                "SELECT chat, user_id, reply_to FROM channel_tasks WHERE task_id = $1",
                &[&task.to_string()],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(r.map(|r| TaskLink {
            chat: r.get(0),
            user: r.get(1),
            reply_to: r.get(2),
        }))
    }

    async fn linked_tasks(&self, channel: &str) -> Result<Vec<TaskId>, ChannelError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT task_id FROM channel_tasks WHERE channel = $1",
                &[&channel],
            )
            .await
            .map_err(|e| db(&e))?;
        rows.iter()
            .map(|r| Ok(parse(r.get::<_, &str>(0), "task id")?))
            .collect()
    }

    async fn enqueue(&self, msg: NewOutgoing<'_>, now: DateTime<Utc>) -> Result<i64, ChannelError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        let id: i64 = tx
            .query_one(
                "INSERT INTO outbox (channel, chat, text, markup, reply_to, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[
                    &msg.channel,
                    &msg.chat,
                    &msg.text,
                    &msg.markup,
                    &msg.reply_to,
                    &now,
                ],
            )
            .await
            .map_err(|e| db(&e))?
            .get(0);
        if let Some(t) = msg.answers {
            exec(
                &tx,
                "DELETE FROM channel_tasks WHERE task_id = $1",
                &[&t.to_string()],
            )
            .await?;
        }
        tx.commit().await.map_err(|e| db(&e))?;
        Ok(id)
    }

    async fn progress_out(&self, id: i64, parts: u32) -> Result<(), ChannelError> {
        let client = self.client().await?;
        exec(
            &client,
            "UPDATE outbox SET parts_sent = $2 WHERE id = $1",
            &[&id, &i64::from(parts)],
        )
        .await?;
        Ok(())
    }

    async fn pending_out(
        &self,
        channel: &str,
        limit: usize,
    ) -> Result<Vec<Outgoing>, ChannelError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, chat, text, markup, reply_to, parts_sent FROM outbox
                 WHERE channel = $1 AND done_at IS NULL ORDER BY id LIMIT $2",
                &[&channel, &i64::try_from(limit).unwrap_or(i64::MAX)],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(rows
            .iter()
            .map(|r| Outgoing {
                id: r.get(0),
                chat: r.get(1),
                text: r.get(2),
                markup: r.get(3),
                reply_to: r.get(4),
                parts_sent: u32::try_from(r.get::<_, i64>(5)).unwrap_or(u32::MAX),
            })
            .collect())
    }

    async fn create_invite(
        &self,
        user: &str,
        ttl: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<String, ChannelError> {
        let code = format!("{}{}", new_code()?, new_code()?);
        let client = self.client().await?;
        exec(
            &client,
            "INSERT INTO invites (code, user_name, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            &[&code, &user, &now, &(now + ttl)],
        )
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
        let code = code.trim().to_ascii_uppercase();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        let user: Option<String> = tx
            .query_opt(
                "SELECT user_name FROM invites
                 WHERE code = $1 AND used_at IS NULL AND expires_at > $2 FOR UPDATE",
                &[&code, &now],
            )
            .await
            .map_err(|e| db(&e))?
            .map(|r| r.get(0));
        let Some(user) = user else {
            return Err(ChannelError::NoSuchCode(code));
        };
        exec(
            &tx,
            "UPDATE invites SET used_by = $2, used_at = $3 WHERE code = $1",
            &[&code, &format!("{channel}:{sender}"), &now],
        )
        .await?;
        exec(
            &tx,
            "INSERT INTO channel_senders (channel, sender, name, approved_at, user_name)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (channel, sender) DO UPDATE SET user_name = excluded.user_name",
            &[&channel, &sender, &name, &now, &user],
        )
        .await?;
        tx.commit().await.map_err(|e| db(&e))?;
        Ok(user)
    }

    async fn done_out(
        &self,
        id: i64,
        failure: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), ChannelError> {
        let client = self.client().await?;
        exec(
            &client,
            "UPDATE outbox SET done_at = $2, failure = $3 WHERE id = $1",
            &[&id, &now, &failure],
        )
        .await?;
        Ok(())
    }

    async fn offset(&self, channel: &str) -> Result<Option<i64>, ChannelError> {
        let client = self.client().await?;
        Ok(client
            .query_opt(
                "SELECT value FROM channel_state WHERE key = $1",
                &[&format!("{channel}.offset")],
            )
            .await
            .map_err(|e| db(&e))?
            .map(|r| r.get(0)))
    }

    async fn set_offset(&self, channel: &str, offset: i64) -> Result<(), ChannelError> {
        let client = self.client().await?;
        exec(
            &client,
            "INSERT INTO channel_state (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&format!("{channel}.offset"), &offset],
        )
        .await?;
        Ok(())
    }

    async fn is_paired(&self, channel: &str, sender: &str) -> Result<bool, ChannelError> {
        let client = self.client().await?;
        Ok(client
            .query_opt(
                "SELECT 1 FROM channel_senders WHERE channel = $1 AND sender = $2",
                &[&channel, &sender],
            )
            .await
            .map_err(|e| db(&e))?
            .is_some())
    }

    async fn request_pairing(
        &self,
        channel: &str,
        sender: &str,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<PairingRequest, ChannelError> {
        let code = new_code()?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        exec(
            &tx,
            "SELECT pg_advisory_xact_lock($1)",
            &[&lock_key(&format!("pairing:{channel}"))],
        )
        .await?;
        exec(
            &tx,
            "DELETE FROM pairings WHERE channel = $1 AND created_at <= $2",
            &[&channel, &(now - CODE_TTL)],
        )
        .await?;
        let existing: Option<String> = tx
            .query_opt(
                "SELECT code FROM pairings WHERE channel = $1 AND sender = $2",
                &[&channel, &sender],
            )
            .await
            .map_err(|e| db(&e))?
            .map(|r| r.get(0));
        if let Some(code) = existing {
            tx.commit().await.map_err(|e| db(&e))?;
            return Ok(PairingRequest::Code { code, new: false });
        }
        let pending: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM pairings WHERE channel = $1",
                &[&channel],
            )
            .await
            .map_err(|e| db(&e))?
            .get(0);
        if usize::try_from(pending).unwrap_or(usize::MAX) >= MAX_PENDING {
            tx.commit().await.map_err(|e| db(&e))?;
            return Ok(PairingRequest::TooMany);
        }
        exec(
            &tx,
            "INSERT INTO pairings (channel, code, sender, name, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[&channel, &code, &sender, &name, &now],
        )
        .await?;
        tx.commit().await.map_err(|e| db(&e))?;
        Ok(PairingRequest::Code { code, new: true })
    }

    async fn pairings(
        &self,
        channel: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Pairing>, ChannelError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT channel, code, sender, name, created_at FROM pairings
                 WHERE channel = $1 AND created_at > $2 ORDER BY created_at",
                &[&channel, &(now - CODE_TTL)],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(rows.iter().map(pairing).collect())
    }

    async fn approve_pairing(
        &self,
        channel: &str,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Pairing, ChannelError> {
        let code = code.trim().to_ascii_uppercase();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        let p = tx
            .query_opt(
                "DELETE FROM pairings WHERE channel = $1 AND code = $2 AND created_at > $3
                 RETURNING channel, code, sender, name, created_at",
                &[&channel, &code, &(now - CODE_TTL)],
            )
            .await
            .map_err(|e| db(&e))?
            .as_ref()
            .map(pairing)
            .ok_or_else(|| ChannelError::NoSuchCode(code.clone()))?;
        exec(
            &tx,
            "INSERT INTO channel_senders (channel, sender, name, approved_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&p.channel, &p.sender, &p.name, &now],
        )
        .await?;
        // Tell them, in the same transaction (the direct chat's id is the sender's id).
        exec(
            &tx,
            "INSERT INTO outbox (channel, chat, text, created_at) VALUES ($1, $2, $3, $4)",
            &[&p.channel, &p.sender, &APPROVED_TEXT, &now],
        )
        .await?;
        tx.commit().await.map_err(|e| db(&e))?;
        Ok(p)
    }
}
