//! Telegram as a [`Channel`]: updates become [`Inbound`] items (group mentions and replies to
//! the bot detected here, where the platform's rules live), buttons become an inline keyboard.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use super::api::{MAX_MESSAGE, Message, SendOptions, TelegramApi, TgError, Update};
use crate::channel::{
    Capabilities, Channel, ChannelFailure, Delivery, Inbound, OutMessage, SendFailure,
};

/// Telegram through the Bot API.
#[derive(Debug)]
pub struct TelegramChannel {
    api: TelegramApi,
    /// The bot's `@username` and id, fetched once.
    me: Mutex<Option<(String, i64)>>,
}

fn failure(e: TgError) -> ChannelFailure {
    if e.is_conflict() {
        return ChannelFailure::Conflict(e.to_string());
    }
    match e {
        TgError::Refused { .. } => ChannelFailure::Refused(e.to_string()),
        TgError::Unavailable { .. } => ChannelFailure::Unavailable(e.to_string()),
        TgError::Limited { retry_after, .. } => ChannelFailure::Limited(retry_after),
    }
}

impl TelegramChannel {
    /// A channel over `api`.
    pub fn new(api: TelegramApi) -> Self {
        Self {
            api,
            me: Mutex::new(None),
        }
    }

    async fn me(&self) -> Result<(String, i64), ChannelFailure> {
        if let Some(me) = self
            .me
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Ok(me);
        }
        let v = self
            .api
            .call("getMe", json!({}), Duration::from_secs(30))
            .await
            .map_err(failure)?;
        let me = (
            v["username"].as_str().unwrap_or_default().to_owned(),
            v["id"].as_i64().unwrap_or_default(),
        );
        *self.me.lock().unwrap_or_else(PoisonError::into_inner) = Some(me.clone());
        Ok(me)
    }

    fn convert(u: Update, me: &(String, i64)) -> Delivery {
        let inbound = if let Some(q) = u.callback_query {
            q.message.as_ref().map(|m| Inbound::Button {
                id: q.id.clone(),
                chat: m.chat.id.to_string(),
                sender: q.from.id.to_string(),
                data: q.data.clone().unwrap_or_default(),
            })
        } else {
            u.message.and_then(|m| message(&m, me))
        };
        Delivery {
            cursor: u.update_id,
            inbound,
        }
    }
}

/// A text message from a person, with group addressing worked out.
fn message(m: &Message, me: &(String, i64)) -> Option<Inbound> {
    let (text, from) = (m.text.as_deref()?, m.from.as_ref()?);
    if from.is_bot {
        return None;
    }
    let private = m.chat.kind == "private";
    let (text, mentioned) = super::mention::strip_mentions(text, &m.entities, me);
    let replied = m
        .reply_to_message
        .as_ref()
        .and_then(|r| r.from.as_ref())
        .is_some_and(|f| f.id == me.1);
    Some(Inbound::Message {
        chat: m.chat.id.to_string(),
        sender: from.id.to_string(),
        sender_name: from.first_name.clone(),
        text: text.trim().to_owned(),
        private,
        addressed: private || mentioned || replied,
        message_id: Some(m.message_id.to_string()),
    })
}

impl Channel for TelegramChannel {
    fn name(&self) -> &'static str {
        "telegram"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_message_chars: MAX_MESSAGE,
            buttons: true,
            typing: true,
        }
    }

    fn receive(
        &self,
        after: Option<i64>,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<Delivery>, ChannelFailure>> {
        Box::pin(async move {
            let me = self.me().await?;
            let updates = self.api.get_updates(after, wait).await.map_err(failure)?;
            Ok(updates.into_iter().map(|u| Self::convert(u, &me)).collect())
        })
    }

    fn parse(&self, raw: Value) -> BoxFuture<'_, Option<Delivery>> {
        Box::pin(async move {
            let u: Update = serde_json::from_value(raw).ok()?;
            let me = self.me().await.ok()?;
            Some(Self::convert(u, &me))
        })
    }

    fn start_webhook<'a>(
        &'a self,
        url: &'a str,
        secret: &'a str,
    ) -> BoxFuture<'a, Result<(), ChannelFailure>> {
        Box::pin(async move {
            self.api
                .call(
                    "setWebhook",
                    json!({"url": url, "secret_token": secret,
                           "allowed_updates": ["message", "callback_query"]}),
                    Duration::from_secs(30),
                )
                .await
                .map_err(failure)?;
            self.me().await.map(|_| ())
        })
    }

    fn send<'a>(&'a self, msg: OutMessage<'a>) -> BoxFuture<'a, Result<(), SendFailure>> {
        Box::pin(async move {
            let refused = |m: String| SendFailure {
                parts_sent: msg.parts_sent,
                failure: ChannelFailure::Refused(m),
            };
            let chat: i64 = msg
                .chat
                .parse()
                .map_err(|_| refused(format!("bad chat id `{}`", msg.chat)))?;
            let markup = (!msg.buttons.is_empty()).then(|| {
                let row: Vec<Value> = msg
                    .buttons
                    .iter()
                    .map(|b| json!({"text": b.label, "callback_data": b.data}))
                    .collect();
                json!({"inline_keyboard": [row]})
            });
            let opts = SendOptions {
                reply_markup: markup,
                reply_to: msg.reply_to.and_then(|r| r.parse().ok()),
                skip: usize::try_from(msg.parts_sent).unwrap_or(usize::MAX),
            };
            self.api
                .send_text(chat, msg.text, &opts)
                .await
                .map(|_| ())
                .map_err(|p| SendFailure {
                    parts_sent: u32::try_from(p.sent).unwrap_or(u32::MAX),
                    failure: failure(p.error),
                })
        })
    }

    fn answer_button<'a>(&'a self, id: &'a str, text: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let _ = self
                .api
                .call(
                    "answerCallbackQuery",
                    json!({"callback_query_id": id, "text": text}),
                    Duration::from_secs(10),
                )
                .await;
        })
    }

    fn set_commands<'a>(
        &'a self,
        commands: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<(), ChannelFailure>> {
        Box::pin(async move {
            let list: Vec<Value> = commands
                .iter()
                .map(|(c, d)| json!({"command": c, "description": d}))
                .collect();
            self.api
                .call(
                    "setMyCommands",
                    json!({"commands": list}),
                    Duration::from_secs(30),
                )
                .await
                .map(|_| ())
                .map_err(failure)
        })
    }

    fn typing<'a>(&'a self, chat: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let _ = self
                .api
                .call(
                    "sendChatAction",
                    json!({"chat_id": chat, "action": "typing"}),
                    Duration::from_secs(10),
                )
                .await;
        })
    }
}
