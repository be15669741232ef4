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

/// Seeded mutation fuzzing of the update parser (issue 23, part 7): realistic updates — private
/// and group messages with mention entities over emoji and other UTF-16 surrogate pairs, replies,
/// button presses — mutated structurally (values swapped for other types, extreme numbers, keys
/// dropped, deep nesting) and byte-wise, `PINCER_FUZZ_ITERS` cases (default 3,000). Nothing may
/// panic; what parses keeps the addressing rules.
#[cfg(test)]
mod fuzz {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ME: (&str, i64) = ("Pincer_Bot", 4242);

    fn corpus() -> Vec<Value> {
        vec![
            json!({"update_id": 1, "message": {"message_id": 10, "from": {"id": 7, "is_bot": false, "first_name": "Ann"},
                   "chat": {"id": 7, "type": "private"}, "text": "hello 👋 there"}}),
            json!({"update_id": 2, "message": {"message_id": 11, "from": {"id": 8, "is_bot": false, "first_name": "Bo"},
                   "chat": {"id": -100, "type": "supergroup"}, "text": "👋🏽 @pincer_bot summarise",
                   "entities": [{"type": "mention", "offset": 5, "length": 11}]}}),
            json!({"update_id": 3, "message": {"message_id": 12, "from": {"id": 9, "is_bot": false, "first_name": "Cy"},
                   "chat": {"id": -100, "type": "group"}, "text": "thanks!",
                   "reply_to_message": {"message_id": 11, "from": {"id": 4242, "is_bot": true, "first_name": "P"},
                                        "chat": {"id": -100, "type": "group"}, "text": "done"}}}),
            json!({"update_id": 4, "callback_query": {"id": "cb1", "from": {"id": 7, "is_bot": false, "first_name": "Ann"},
                   "message": {"message_id": 13, "chat": {"id": 7, "type": "private"}, "text": "Approve?"},
                   "data": "approve:apr_1"}}),
            json!({"update_id": 5, "message": {"message_id": 14, "from": {"id": 10, "is_bot": false, "first_name": "D"},
                   "chat": {"id": -5, "type": "group"}, "text": "@someone_else hi",
                   "entities": [{"type": "text_mention", "offset": 0, "length": 13, "user": {"id": 4242, "is_bot": true, "first_name": "P"}}]}}),
        ]
    }

    fn random_value(rng: &mut fastrand::Rng, depth: u32) -> Value {
        match rng.u8(..9) {
            0 => Value::Null,
            1 => json!(rng.bool()),
            2 => json!([i64::MIN, i64::MAX, -1, 0, u32::MAX as i64, 1 << 53][rng.usize(..6)]),
            3 => json!(u64::MAX),
            4 => json!(f64::MAX),
            5 => json!(
                [
                    "",
                    "👋🏽",
                    "@PINCER_BOT",
                    "\u{200d}",
                    "a\u{0}b",
                    "x".repeat(5000).as_str()
                ][rng.usize(..6)]
            ),
            6 if depth < 40 => json!([random_value(rng, depth + 1)]),
            7 if depth < 40 => json!({"k": random_value(rng, depth + 1)}),
            _ => json!(rng.i64(-100..100)),
        }
    }

    /// Replaces, drops or wraps one node somewhere in `v`.
    fn mutate(rng: &mut fastrand::Rng, v: &mut Value, depth: u32) {
        match v {
            Value::Object(map) if !map.is_empty() && rng.u8(..4) != 0 => {
                let keys: Vec<String> = map.keys().cloned().collect();
                let k = &keys[rng.usize(..keys.len())];
                match rng.u8(..6) {
                    0 => {
                        map.remove(k);
                    }
                    1 => {
                        map.insert(k.clone(), random_value(rng, depth));
                    }
                    _ => mutate(rng, map.get_mut(k).unwrap(), depth + 1),
                }
            }
            Value::Array(items) if !items.is_empty() && rng.bool() => {
                let i = rng.usize(..items.len());
                if rng.u8(..5) == 0 {
                    let copy = items[i].clone();
                    items.extend(std::iter::repeat_n(copy, 50));
                } else {
                    mutate(rng, &mut items[i], depth + 1);
                }
            }
            _ => *v = random_value(rng, depth),
        }
    }

    fn check(u: Update, me: &(String, i64)) {
        let text_in = u
            .message
            .as_ref()
            .and_then(|m| m.text.clone())
            .unwrap_or_default();
        let d = TelegramChannel::convert(u, me);
        if let Some(Inbound::Message {
            text,
            private,
            addressed,
            ..
        }) = d.inbound
        {
            assert!(text.encode_utf16().count() <= text_in.encode_utf16().count());
            assert!(!private || addressed, "a private chat is always addressed");
        }
    }

    #[test]
    fn mutated_updates_never_panic_and_keep_the_addressing_rules() {
        let iters: usize = std::env::var("PINCER_FUZZ_ITERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3_000);
        let me = (ME.0.to_owned(), ME.1);
        let corpus = corpus();
        // The corpus itself parses as intended.
        let group: Update = serde_json::from_value(corpus[1].clone()).unwrap();
        match TelegramChannel::convert(group, &me).inbound {
            Some(Inbound::Message {
                text, addressed, ..
            }) => {
                assert!(addressed);
                assert_eq!(text.trim(), "👋🏽  summarise".trim());
            }
            other => panic!("{other:?}"),
        }
        let mut rng = fastrand::Rng::with_seed(0x7e1e_6a11);
        for _ in 0..iters {
            let mut v = corpus[rng.usize(..corpus.len())].clone();
            for _ in 0..rng.usize(1..4) {
                mutate(&mut rng, &mut v, 0);
            }
            if let Ok(u) = serde_json::from_value::<Update>(v.clone()) {
                check(u, &me);
            }
            // Byte-level: the serialized update with bytes changed.
            let mut bytes = serde_json::to_vec(&v).unwrap();
            for _ in 0..rng.usize(1..4) {
                if bytes.is_empty() {
                    break;
                }
                let at = rng.usize(..bytes.len());
                bytes[at] = rng.u8(..);
            }
            if let Ok(u) = serde_json::from_slice::<Update>(&bytes) {
                check(u, &me);
            }
        }
        // Nesting far deeper than serde's limit is an error, not a stack overflow.
        let deep = format!(
            "{{\"update_id\":1,\"message\":{}{}}}",
            "{\"message_id\":1,\"chat\":{\"id\":1,\"type\":\"private\"},\"reply_to_message\":"
                .repeat(5000),
            "null".to_owned() + &"}".repeat(5000)
        );
        assert!(serde_json::from_str::<Update>(&deep).is_err());
    }
}
