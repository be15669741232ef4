//! A fake Telegram Bot API on loopback, with the real JSON shapes and error behaviour:
//! `{"ok": true, "result": …}` / `{"ok": false, "error_code", "description", "parameters"}`;
//! `getUpdates` with `offset` confirming earlier updates and long polling up to `timeout`;
//! `sendMessage`, `editMessageText`, `answerCallbackQuery`, `sendChatAction`, `getMe`,
//! `setWebhook`, `deleteWebhook`. Tests push incoming updates and read what the bot sent, and
//! can inject faults (429 with `retry_after`, 400 parse errors, 409 conflict on `getUpdates`).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// A fault answered instead of the next call to a method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TgFault {
    /// 429 with `parameters.retry_after`.
    TooManyRequests {
        /// Seconds.
        retry_after: u64,
    },
    /// 400 with this description (e.g. `Bad Request: can't parse entities: …`).
    BadRequest(String),
    /// 409 (another `getUpdates` or a webhook is active).
    Conflict,
    /// 502 Bad Gateway.
    ServerError,
}

/// A call the bot made.
#[derive(Debug, Clone, PartialEq)]
pub struct TgCall {
    /// Method name (`sendMessage`).
    pub method: String,
    /// Parameters (JSON body).
    pub params: Value,
    /// Answered with an injected fault instead of success.
    pub faulted: bool,
}

/// An injected fault: for `method` (and only `chat`, when set), after `skip` matching calls
/// have been served normally.
#[derive(Debug)]
struct Fault {
    method: String,
    chat: Option<i64>,
    skip: usize,
    fault: TgFault,
}

#[derive(Debug, Default)]
struct Inner {
    /// Updates not yet confirmed (by a later `offset`).
    updates: VecDeque<Value>,
    next_update_id: i64,
    next_message_id: i64,
    calls: Vec<TgCall>,
    faults: Vec<Fault>,
    webhook: Option<Value>,
}

#[derive(Debug)]
struct Shared {
    token: String,
    inner: Mutex<Inner>,
    /// Fired when an update is pushed (wakes long polls) or a call arrives (wakes waiters).
    changed: tokio::sync::Notify,
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    s.inner.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The fake Bot API. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeTelegram {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeTelegram {
    /// Starts on `127.0.0.1:0` accepting the bot token `token`.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start(token: &str) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            inner: Mutex::new(Inner {
                next_update_id: 100_000,
                next_message_id: 1,
                ..Inner::default()
            }),
            changed: tokio::sync::Notify::new(),
        });
        let app = Router::new()
            .route("/{bot}/{method}", post(call).get(call_get))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    /// The API base URL (`http://127.0.0.1:PORT`); methods are at `{base}/bot<token>/<method>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues a raw update (its `update_id` is assigned when absent); returns the id.
    pub fn push_update(&self, mut update: Value) -> i64 {
        let id = {
            let mut g = lock(&self.shared);
            let id = match update["update_id"].as_i64() {
                Some(id) => id,
                None => {
                    let id = g.next_update_id;
                    g.next_update_id += 1;
                    update["update_id"] = json!(id);
                    id
                }
            };
            g.updates.push_back(update);
            id
        };
        self.shared.changed.notify_waiters();
        id
    }

    /// Queues a text message from user `from` in chat `chat` (`private` when they are equal,
    /// else `group`); returns the update id.
    pub fn push_text(&self, chat: i64, from: i64, text: &str) -> i64 {
        let message_id = {
            let mut g = lock(&self.shared);
            g.next_message_id += 1;
            g.next_message_id
        };
        let chat_type = if chat == from { "private" } else { "group" };
        self.push_update(json!({
            "message": {
                "message_id": message_id,
                "date": 1_700_000_000,
                "chat": {"id": chat, "type": chat_type},
                "from": {"id": from, "is_bot": false, "first_name": format!("user{from}")},
                "text": text,
            }
        }))
    }

    /// Queues a press on an inline button with `data` by user `from` in chat `chat`.
    pub fn push_callback(&self, chat: i64, from: i64, message_id: i64, data: &str) -> i64 {
        self.push_update(json!({
            "callback_query": {
                "id": format!("cb{}", message_id * 1000 + from),
                "from": {"id": from, "is_bot": false, "first_name": format!("user{from}")},
                "message": {"message_id": message_id, "date": 1_700_000_000,
                            "chat": {"id": chat, "type": if chat == from { "private" } else { "group" }}},
                "data": data,
            }
        }))
    }

    /// Answers the next call to `method` with `fault` instead.
    pub fn fail_next(&self, method: &str, fault: TgFault) {
        self.fail(method, None, 0, fault);
    }

    /// Answers the next call to `method` for `chat_id` with `fault` instead (other chats are
    /// served normally).
    pub fn fail_next_for(&self, method: &str, chat: i64, fault: TgFault) {
        self.fail(method, Some(chat), 0, fault);
    }

    /// Serves `skip` calls to `method` normally, then answers the next one with `fault`.
    pub fn fail_after(&self, method: &str, skip: usize, fault: TgFault) {
        self.fail(method, None, skip, fault);
    }

    fn fail(&self, method: &str, chat: Option<i64>, skip: usize, fault: TgFault) {
        lock(&self.shared).faults.push(Fault {
            method: method.to_owned(),
            chat,
            skip,
            fault,
        });
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<TgCall> {
        lock(&self.shared).calls.clone()
    }

    /// Calls of one method so far.
    pub fn calls_of(&self, method: &str) -> Vec<TgCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.method == method)
            .collect()
    }

    /// Waits until at least `n` calls of `method` arrived, for at most `timeout`.
    pub async fn wait_for(&self, method: &str, n: usize, timeout: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.shared.changed.notified();
                if lock(&self.shared)
                    .calls
                    .iter()
                    .filter(|c| c.method == method)
                    .count()
                    >= n
                {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }

    /// The webhook set by `setWebhook`, if any.
    pub fn webhook(&self) -> Option<Value> {
        lock(&self.shared).webhook.clone()
    }
}

fn ok(result: Value) -> Response {
    Json(json!({"ok": true, "result": result})).into_response()
}

fn error(status: StatusCode, description: &str, parameters: Option<Value>) -> Response {
    let mut body = json!({"ok": false, "error_code": status.as_u16(), "description": description});
    if let Some(p) = parameters {
        body["parameters"] = p;
    }
    (status, Json(body)).into_response()
}

async fn call_get(state: State<Arc<Shared>>, path: Path<(String, String)>) -> Response {
    call(state, path, Json(json!({}))).await
}

async fn call(
    State(s): State<Arc<Shared>>,
    Path((bot, method)): Path<(String, String)>,
    Json(params): Json<Value>,
) -> Response {
    if bot.strip_prefix("bot") != Some(s.token.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized", None);
    }
    let fault = {
        let mut g = lock(&s);
        let chat = params["chat_id"].as_i64();
        let pos = g
            .faults
            .iter()
            .position(|f| f.method == method && (f.chat.is_none() || f.chat == chat));
        match pos {
            Some(i) if g.faults[i].skip > 0 => {
                g.faults[i].skip -= 1;
                None
            }
            Some(i) => Some(g.faults.remove(i).fault),
            None => None,
        }
    };
    if method != "getUpdates" {
        lock(&s).calls.push(TgCall {
            method: method.clone(),
            params: params.clone(),
            faulted: fault.is_some(),
        });
        s.changed.notify_waiters();
    }
    match fault {
        Some(TgFault::TooManyRequests { retry_after }) => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too Many Requests: retry after {retry_after}"),
                Some(json!({"retry_after": retry_after})),
            );
        }
        Some(TgFault::BadRequest(d)) => return error(StatusCode::BAD_REQUEST, &d, None),
        Some(TgFault::Conflict) => {
            return error(
                StatusCode::CONFLICT,
                "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                None,
            );
        }
        Some(TgFault::ServerError) => return error(StatusCode::BAD_GATEWAY, "Bad Gateway", None),
        None => {}
    }
    match method.as_str() {
        "getMe" => ok(
            json!({"id": 4242, "is_bot": true, "first_name": "Pincer", "username": "pincer_bot"}),
        ),
        "getUpdates" => get_updates(&s, &params).await,
        "sendMessage" => {
            if params["text"].as_str().is_none_or(str::is_empty) {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: message text is empty",
                    None,
                );
            }
            // Like Telegram: the limit is on the text after entity parsing.
            let html = params["parse_mode"] == "HTML";
            if params["text"]
                .as_str()
                .is_some_and(|t| visible_chars(t, html) > 4096)
            {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: message is too long",
                    None,
                );
            }
            let id = {
                let mut g = lock(&s);
                g.next_message_id += 1;
                g.next_message_id
            };
            ok(json!({
                "message_id": id, "date": 1_700_000_000,
                "chat": {"id": params["chat_id"], "type": "private"},
                "text": params["text"],
            }))
        }
        "editMessageText" => ok(
            json!({"message_id": params["message_id"], "date": 1_700_000_000,
                                       "chat": {"id": params["chat_id"], "type": "private"},
                                       "text": params["text"]}),
        ),
        "answerCallbackQuery" | "sendChatAction" | "deleteWebhook" => ok(json!(true)),
        "setWebhook" => {
            lock(&s).webhook = Some(params);
            ok(json!(true))
        }
        "setMyCommands" => {
            // Like Telegram: 1-32 lowercase letters, digits and underscores; a description.
            let valid = params["commands"].as_array().is_some_and(|cs| {
                cs.len() <= 100
                    && cs.iter().all(|c| {
                        c["command"].as_str().is_some_and(|n| {
                            (1..=32).contains(&n.len())
                                && n.bytes().all(|b| {
                                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'
                                })
                        }) && c["description"]
                            .as_str()
                            .is_some_and(|d| (1..=256).contains(&d.chars().count()))
                    })
            });
            if valid {
                ok(json!(true))
            } else {
                error(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: BOT_COMMAND_INVALID",
                    None,
                )
            }
        }
        _ => error(StatusCode::NOT_FOUND, "Not Found: method not found", None),
    }
}

/// `getUpdates`: confirms updates below `offset`, returns the rest (up to `limit`), waiting up
/// to `timeout` seconds when there are none.
async fn get_updates(s: &Shared, params: &Value) -> Response {
    let offset = params["offset"].as_i64();
    let limit = params["limit"].as_u64().unwrap_or(100).clamp(1, 100) as usize;
    let timeout = Duration::from_secs(params["timeout"].as_u64().unwrap_or(0).min(50));
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let notified = s.changed.notified();
        {
            let mut g = lock(s);
            if let Some(off) = offset {
                g.updates
                    .retain(|u| u["update_id"].as_i64().is_none_or(|id| id >= off));
            }
            let batch: Vec<Value> = g.updates.iter().take(limit).cloned().collect();
            if !batch.is_empty() || tokio::time::Instant::now() >= deadline {
                return ok(Value::Array(batch));
            }
        }
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }
}

/// Characters a user sees: for HTML, tags removed and each entity one character.
fn visible_chars(text: &str, html: bool) -> usize {
    if !html {
        return text.chars().count();
    }
    let (mut n, mut tag, mut entity) = (0, false, false);
    for c in text.chars() {
        match c {
            '<' if !tag => tag = true,
            '>' if tag => tag = false,
            _ if tag => {}
            '&' => {
                entity = true;
                n += 1;
            }
            ';' if entity => entity = false,
            _ if entity => {}
            _ => n += 1,
        }
    }
    n
}
