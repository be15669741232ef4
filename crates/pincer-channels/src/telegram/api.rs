//! The Telegram Bot API client: typed updates, sending with HTML and a plain-text fallback,
//! and the retry rules — 429 waits `retry_after`, 5xx and network errors back off exponentially
//! with jitter, other 4xx are final. The bot token is part of every URL, so no URL ever reaches
//! an error message or a log line.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::{chunk, telegram_html};

/// Telegram's message length limit.
pub const MAX_MESSAGE: usize = 4096;
/// Retries for 5xx and network errors before giving up.
const MAX_RETRIES: u32 = 5;
/// Longest back-off between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A bot token; shown as `[bot token]` in `Debug`.
#[derive(Clone)]
pub struct BotToken(String);

impl BotToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }
}

impl std::fmt::Debug for BotToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[bot token]")
    }
}

/// A failed Bot API call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TgError {
    /// Telegram refused the call (4xx other than 429), with its description.
    #[error("telegram refused {method}: {code} {description}")]
    Refused {
        /// Method.
        method: String,
        /// HTTP / error code.
        code: u16,
        /// Telegram's description.
        description: String,
    },
    /// Still failing after retries (5xx, network, or repeated 429).
    #[error("telegram {method} unavailable: {reason}")]
    Unavailable {
        /// Method.
        method: String,
        /// The last error (never containing the token).
        reason: String,
    },
    /// Flood control (429) on a call made with [`OnLimit::Return`]: try again after
    /// `retry_after`.
    #[error("telegram {method} rate limited: retry after {}s", retry_after.as_secs())]
    Limited {
        /// Method.
        method: String,
        /// How long Telegram asked to wait.
        retry_after: Duration,
    },
}

/// What [`TelegramApi::call_with`] does on a 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnLimit {
    /// Sleep for `retry_after` and retry (counts as a retry).
    Wait,
    /// Return [`TgError::Limited`] at once, so the caller can serve other chats meanwhile.
    Return,
}

/// How [`TelegramApi::send_text`] sends.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    /// Buttons, on the last part.
    pub reply_markup: Option<Value>,
    /// Send the first part as a reply to this message.
    pub reply_to: Option<i64>,
    /// Parts already delivered by an earlier attempt: they are not sent again.
    pub skip: usize,
}

/// A send that stopped part-way: `sent` parts (counting skipped ones) were delivered.
#[derive(Debug, thiserror::Error)]
#[error("{error} (after {sent} part(s))")]
pub struct PartialSend {
    /// Parts delivered, including those skipped.
    pub sent: usize,
    /// Why it stopped.
    pub error: TgError,
}

impl TgError {
    /// True for a 409 on `getUpdates` (another poller or a webhook is active).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Refused { code: 409, .. })
    }

    fn is_parse_error(&self) -> bool {
        matches!(self, Self::Refused { code: 400, description, .. }
            if description.contains("can't parse entities") || description.contains("parse"))
    }
}

/// A Telegram user.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct User {
    /// Id.
    pub id: i64,
    /// Whether it is a bot.
    #[serde(default)]
    pub is_bot: bool,
    /// First name.
    #[serde(default)]
    pub first_name: String,
    /// `@username`, if any.
    #[serde(default)]
    pub username: Option<String>,
}

/// A chat.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Chat {
    /// Id (negative for groups).
    pub id: i64,
    /// `private`, `group`, `supergroup` or `channel`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// A message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Message {
    /// Id within the chat.
    pub message_id: i64,
    /// The chat.
    pub chat: Chat,
    /// The sender.
    #[serde(default)]
    pub from: Option<User>,
    /// Text, if a text message.
    #[serde(default)]
    pub text: Option<String>,
    /// The message replied to.
    #[serde(default)]
    pub reply_to_message: Option<Box<Message>>,
    /// Special entities in `text` (mentions, commands, …).
    #[serde(default)]
    pub entities: Vec<MessageEntity>,
}

/// A special entity in a message's text. Offsets and lengths are in UTF-16 code units.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MessageEntity {
    /// `mention`, `text_mention`, `bot_command`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Start, in UTF-16 code units.
    pub offset: usize,
    /// Length, in UTF-16 code units.
    pub length: usize,
    /// For `text_mention`: the user mentioned.
    #[serde(default)]
    pub user: Option<User>,
}

/// A press on an inline button.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CallbackQuery {
    /// Id to answer.
    pub id: String,
    /// Who pressed.
    pub from: User,
    /// The message with the button.
    #[serde(default)]
    pub message: Option<Message>,
    /// The button's data.
    #[serde(default)]
    pub data: Option<String>,
}

/// An update.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Update {
    /// Increasing id; the next poll's `offset` is the last id + 1.
    pub update_id: i64,
    /// A new message.
    #[serde(default)]
    pub message: Option<Message>,
    /// A button press.
    #[serde(default)]
    pub callback_query: Option<CallbackQuery>,
}

/// A Bot API client.
#[derive(Debug, Clone)]
pub struct TelegramApi {
    http: reqwest::Client,
    base: String,
    token: BotToken,
    max_retries: u32,
}

impl TelegramApi {
    /// A client for `base` (`https://api.telegram.org`, or a test or self-hosted server).
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(base: &str, token: BotToken) -> Result<Self, TgError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("pincer/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TgError::Unavailable {
                method: "client".into(),
                reason: e.without_url().to_string(),
            })?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
            max_retries: MAX_RETRIES,
        })
    }

    /// The same client with at most `n` retries for 5xx, network errors and 429.
    #[must_use]
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// Calls `method` once (no retries).
    async fn once(
        &self,
        method: &str,
        params: &Value,
        timeout: Duration,
    ) -> Result<Value, Attempt> {
        let url = format!("{}/bot{}/{method}", self.base, self.token.0);
        let resp = self
            .http
            .post(url)
            .json(params)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| Attempt::Retry(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let body: Value = resp
            .json()
            .await
            .map_err(|e| Attempt::Retry(e.without_url().to_string()))?;
        if body["ok"] == true {
            return Ok(body["result"].clone());
        }
        let description = body["description"].as_str().unwrap_or("").to_owned();
        let code = body["error_code"]
            .as_u64()
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(status);
        match code {
            429 => {
                let wait = body["parameters"]["retry_after"].as_u64().unwrap_or(1);
                Err(Attempt::Limited(description, Duration::from_secs(wait)))
            }
            500..=599 => Err(Attempt::Retry(description)),
            _ => Err(Attempt::Final(TgError::Refused {
                method: method.to_owned(),
                code,
                description,
            })),
        }
    }

    /// Calls `method` with the retry rules, waiting out a 429.
    ///
    /// # Errors
    /// [`TgError::Refused`] for a final 4xx; [`TgError::Unavailable`] after the retries.
    pub async fn call(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, TgError> {
        self.call_with(method, params, timeout, OnLimit::Wait).await
    }

    /// Calls `method`: 5xx and network errors are retried with jittered exponential back-off;
    /// a 429 is waited out or returned, as `on_limit` says.
    ///
    /// # Errors
    /// [`TgError::Refused`] for a final 4xx; [`TgError::Limited`] for a 429 with
    /// [`OnLimit::Return`]; [`TgError::Unavailable`] after the retries.
    pub async fn call_with(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
        on_limit: OnLimit,
    ) -> Result<Value, TgError> {
        let mut backoff = Duration::from_millis(500);
        let mut last = String::new();
        for attempt in 0..=self.max_retries {
            let (reason, wait) = match self.once(method, &params, timeout).await {
                Ok(v) => return Ok(v),
                Err(Attempt::Final(e)) => return Err(e),
                Err(Attempt::Limited(_, retry_after)) if on_limit == OnLimit::Return => {
                    return Err(TgError::Limited {
                        method: method.to_owned(),
                        retry_after,
                    });
                }
                Err(Attempt::Limited(reason, wait)) => (reason, Some(wait)),
                Err(Attempt::Retry(reason)) => (reason, None),
            };
            last = reason;
            if attempt == self.max_retries {
                break;
            }
            let delay = wait.unwrap_or_else(|| jitter(backoff));
            backoff = (backoff * 2).min(MAX_BACKOFF);
            tokio::time::sleep(delay.min(Duration::from_secs(300))).await;
        }
        Err(TgError::Unavailable {
            method: method.to_owned(),
            reason: last,
        })
    }

    /// Long-polls for updates after `offset` (`None` at first start).
    ///
    /// # Errors
    /// As [`Self::call`]; a 409 means another poller or a webhook is active.
    pub async fn get_updates(
        &self,
        offset: Option<i64>,
        wait: Duration,
    ) -> Result<Vec<Update>, TgError> {
        let mut params =
            json!({"timeout": wait.as_secs(), "allowed_updates": ["message", "callback_query"]});
        if let Some(o) = offset {
            params["offset"] = json!(o);
        }
        let v = self
            .call("getUpdates", params, wait + Duration::from_secs(10))
            .await?;
        // One malformed update must not stop the others (or the bot).
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| serde_json::from_value(u.clone()).ok())
            .collect())
    }

    /// Sends `markdown` to `chat` as one or more messages (≤ 4096 visible characters each),
    /// formatted as Telegram HTML with link previews off; a chunk Telegram cannot parse is
    /// re-sent as plain text. Parts an earlier attempt delivered (`opts.skip`) are not sent
    /// again; a 429 is returned at once (the caller serves other chats meanwhile). Returns the
    /// sent message ids.
    ///
    /// # Errors
    /// [`PartialSend`] with the parts delivered so far and why it stopped.
    pub async fn send_text(
        &self,
        chat: i64,
        markdown: &str,
        opts: &SendOptions,
    ) -> Result<Vec<i64>, PartialSend> {
        let parts = chunk(markdown, MAX_MESSAGE);
        let n = parts.len();
        let mut ids = Vec::with_capacity(n);
        for (i, part) in parts.into_iter().enumerate().skip(opts.skip) {
            let stop = |error| PartialSend { sent: i, error };
            let html = telegram_html(&part);
            // Telegram's limit counts the text after entity parsing, not the markup.
            let html = if visible_len(&html) > MAX_MESSAGE || html.trim().is_empty() {
                None
            } else {
                Some(html)
            };
            let mut params = json!({
                "chat_id": chat,
                "link_preview_options": {"is_disabled": true},
            });
            if i == 0
                && let Some(to) = opts.reply_to
            {
                params["reply_parameters"] =
                    json!({"message_id": to, "allow_sending_without_reply": true});
            }
            // Buttons go on the last message.
            if i + 1 == n
                && let Some(m) = &opts.reply_markup
            {
                params["reply_markup"] = m.clone();
            }
            let timeout = Duration::from_secs(30);
            let sent = match html {
                Some(h) => {
                    let mut p = params.clone();
                    p["text"] = json!(h);
                    p["parse_mode"] = json!("HTML");
                    match self
                        .call_with("sendMessage", p, timeout, OnLimit::Return)
                        .await
                    {
                        Err(e) if e.is_parse_error() => None,
                        other => Some(other.map_err(stop)?),
                    }
                }
                None => None,
            };
            let sent = match sent {
                Some(v) => v,
                None => {
                    params["text"] = json!(part);
                    self.call_with("sendMessage", params, timeout, OnLimit::Return)
                        .await
                        .map_err(stop)?
                }
            };
            ids.push(sent["message_id"].as_i64().unwrap_or_default());
        }
        Ok(ids)
    }
}

/// Characters of Telegram HTML as displayed: tags removed, each entity one character.
fn visible_len(html: &str) -> usize {
    let mut n = 0;
    let mut in_tag = false;
    let mut in_entity = false;
    for c in html.chars() {
        match (in_tag, in_entity, c) {
            (false, false, '<') => in_tag = true,
            (true, _, '>') => in_tag = false,
            (true, _, _) => {}
            (false, false, '&') => {
                in_entity = true;
                n += 1;
            }
            (false, true, ';') => in_entity = false,
            (false, true, _) => {}
            (false, false, _) => n += 1,
        }
    }
    n
}

enum Attempt {
    /// 5xx or network: retry after back-off.
    Retry(String),
    /// 429 with Telegram's `retry_after`.
    Limited(String, Duration),
    Final(TgError),
}

/// `base` ± 25 %, from the clock's sub-second noise (no RNG needed for spreading retries).
fn jitter(base: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let factor = 0.75 + f64::from(nanos % 1000) / 2000.0;
    base.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    #[test]
    fn visible_length_ignores_tags_and_counts_entities_once() {
        assert_eq!(super::visible_len("<pre><code>a &lt; b</code></pre>"), 5);
        assert_eq!(super::visible_len("<b>x</b>&amp;y"), 3);
        assert_eq!(super::visible_len("plain"), 5);
    }
}
