//! The Telegram channel inside `pincer serve`: long polling with the offset saved after each
//! update (a restart neither loses nor repeats one; each update also submits its task with the
//! idempotency key `telegram:<update_id>`), who-may-talk checks (DM policy with pairing, group
//! allowlist with mention), one session per DM peer and per group, a few chat commands, and the
//! answer sent back when the task ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use pincer_channels::telegram::{Message, TelegramApi, Update};
use pincer_config::{DmPolicy, TelegramConfig};
use pincer_gateway::EventBus;
use pincer_store::{ChannelStore, NewTask, PairingRequest, SqliteStore, TaskQueue};
use pincer_types::{AgentId, SessionKey, TaskId, TaskStatus};
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The channel name in the store and in session keys.
pub(crate) const CHANNEL: &str = "telegram";
/// How often "typing…" is refreshed while a task runs.
const TYPING_EVERY: Duration = Duration::from_secs(4);

/// What the channel needs from the server.
#[derive(Debug)]
pub(crate) struct Telegram {
    pub api: TelegramApi,
    pub config: TelegramConfig,
    pub agent: AgentId,
    pub store: Arc<SqliteStore>,
    pub events: Arc<EventBus>,
    pub wake: Arc<Notify>,
    /// Wakes the sender when a message is queued.
    outbox: Notify,
    /// The bot's `@username` (for mentions) and id (for replies to it).
    me: Mutex<Option<(String, i64)>>,
    /// Per sender: the current minute's start and messages in it.
    rate: Mutex<HashMap<i64, (std::time::Instant, u32)>>,
    /// Webhook mode: the secret Telegram must send back.
    webhook_secret: Option<String>,
    /// Webhook deliveries are handled one at a time (offset bookkeeping).
    deliveries: tokio::sync::Mutex<()>,
}

impl Telegram {
    pub(crate) fn new(
        api: TelegramApi,
        config: TelegramConfig,
        agent: AgentId,
        store: Arc<SqliteStore>,
        events: Arc<EventBus>,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            api,
            config,
            agent,
            store,
            events,
            wake,
            outbox: Notify::new(),
            me: Mutex::new(None),
            rate: Mutex::new(HashMap::new()),
            webhook_secret: None,
            deliveries: tokio::sync::Mutex::new(()),
        }
    }

    /// The same channel in webhook mode with `secret`.
    pub(crate) fn with_webhook_secret(mut self, secret: String) -> Self {
        self.webhook_secret = Some(secret);
        self
    }

    /// Polls until `stop`, answers finished tasks and sends the outbox.
    pub(crate) async fn run(self: Arc<Self>, stop: CancellationToken) {
        // Tasks that ended while the server was down are answered first.
        self.answer_finished().await;
        let answers = tokio::spawn(self.clone().answer_loop(stop.clone()));
        let sender = tokio::spawn(self.clone().send_loop(stop.clone()));
        let typing = tokio::spawn(self.clone().typing_loop(stop.clone()));
        match (&self.config.webhook_url, &self.webhook_secret) {
            (Some(url), Some(secret)) => {
                // Updates arrive through the gateway; tell Telegram where.
                let set = self
                    .api
                    .call(
                        "setWebhook",
                        json!({"url": url, "secret_token": secret,
                               "allowed_updates": ["message", "callback_query"]}),
                        Duration::from_secs(30),
                    )
                    .await;
                if let Err(e) = set {
                    eprintln!("pincer serve: telegram: setWebhook failed: {e}");
                }
                self.me_or_fetch().await;
                stop.cancelled().await;
            }
            _ => self.poll_loop(stop).await,
        }
        let _ = answers.await;
        let _ = sender.await;
        let _ = typing.await;
    }

    /// Keeps "typing…" showing in chats whose task is running (Telegram shows it ~5 s).
    async fn typing_loop(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(TYPING_EVERY) => {}
                () = stop.cancelled() => return,
            }
            for id in self.store.linked_tasks(CHANNEL).await.unwrap_or_default() {
                let running = matches!(
                    self.store.task(id).await,
                    Ok(Some(t)) if t.status == TaskStatus::Running
                );
                if !running {
                    continue;
                }
                if let Ok(Some((chat, _))) = self.store.task_link(id).await {
                    let _ = self
                        .api
                        .call(
                            "sendChatAction",
                            json!({"chat_id": chat, "action": "typing"}),
                            Duration::from_secs(10),
                        )
                        .await;
                }
            }
        }
    }

    /// Sends queued messages in order; a message Telegram refuses is set aside, one that
    /// cannot be sent now is retried (the queue survives restarts).
    async fn send_loop(self: Arc<Self>, stop: CancellationToken) {
        let mut backoff = Duration::from_secs(1);
        loop {
            let notified = self.outbox.notified();
            let pending = self
                .store
                .pending_out(CHANNEL, 50)
                .await
                .unwrap_or_default();
            let mut stalled = false;
            for m in &pending {
                let Ok(chat) = m.chat.parse::<i64>() else {
                    let _ = self
                        .store
                        .done_out(m.id, Some("bad chat id"), Utc::now())
                        .await;
                    continue;
                };
                let markup = m
                    .markup
                    .as_deref()
                    .and_then(|s| serde_json::from_str(s).ok());
                let failure = match self.api.send_text(chat, &m.text, markup).await {
                    Ok(_) => None,
                    Err(e @ pincer_channels::telegram::TgError::Refused { .. }) => {
                        Some(e.to_string())
                    }
                    Err(e) => {
                        eprintln!("pincer serve: telegram: sending: {e}; will retry");
                        stalled = true;
                        break;
                    }
                };
                if let Err(e) = self
                    .store
                    .done_out(m.id, failure.as_deref(), Utc::now())
                    .await
                {
                    eprintln!("pincer serve: telegram: outbox: {e}");
                }
            }
            if stalled {
                pause(&stop, backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                continue;
            }
            backoff = Duration::from_secs(1);
            if stop.is_cancelled() {
                return;
            }
            if pending.is_empty() {
                tokio::select! {
                    () = notified => {}
                    () = stop.cancelled() => return,
                }
            }
        }
    }

    async fn poll_loop(&self, stop: CancellationToken) {
        let wait = Duration::from_secs(self.config.poll_timeout_secs);
        let mut backoff = Duration::from_secs(1);
        while !stop.is_cancelled() {
            if self.me_or_fetch().await.is_none() {
                pause(&stop, backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                continue;
            }
            let offset = match self.store.offset(CHANNEL).await {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("pincer serve: telegram: reading the offset: {e}");
                    pause(&stop, backoff).await;
                    continue;
                }
            };
            let updates = tokio::select! {
                u = self.api.get_updates(offset, wait) => u,
                () = stop.cancelled() => return,
            };
            match updates {
                Ok(updates) => {
                    backoff = Duration::from_secs(1);
                    for u in updates {
                        // Telegram may resend what we already handled; the offset says so.
                        if offset.is_some_and(|o| u.update_id < o) {
                            continue;
                        }
                        self.handle(&u).await;
                        if let Err(e) = self.store.set_offset(CHANNEL, u.update_id + 1).await {
                            eprintln!("pincer serve: telegram: saving the offset: {e}");
                        }
                    }
                }
                Err(e) => {
                    if e.is_conflict() {
                        eprintln!(
                            "pincer serve: telegram: another poller or a webhook holds this bot (409); retrying"
                        );
                    } else {
                        eprintln!("pincer serve: telegram: {e}");
                    }
                    pause(&stop, backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            }
        }
    }

    async fn me_or_fetch(&self) -> Option<(String, i64)> {
        if let Some(me) = self
            .me
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Some(me);
        }
        match self
            .api
            .call("getMe", json!({}), Duration::from_secs(30))
            .await
        {
            Ok(v) => {
                let me = (
                    v["username"].as_str().unwrap_or_default().to_owned(),
                    v["id"].as_i64().unwrap_or_default(),
                );
                *self.me.lock().unwrap_or_else(PoisonError::into_inner) = Some(me.clone());
                Some(me)
            }
            Err(e) => {
                eprintln!("pincer serve: telegram: getMe: {e}");
                None
            }
        }
    }

    /// Queues a message (durably, in order) and wakes the sender.
    async fn queue(&self, chat: i64, text: &str, markup: Option<&str>, answers: Option<TaskId>) {
        match self
            .store
            .enqueue(
                CHANNEL,
                &chat.to_string(),
                text,
                markup,
                answers,
                Utc::now(),
            )
            .await
        {
            Ok(_) => self.outbox.notify_one(),
            Err(e) => eprintln!("pincer serve: telegram: queueing a message: {e}"),
        }
    }

    async fn say(&self, chat: i64, text: &str) {
        self.queue(chat, text, None, None).await;
    }

    async fn handle(&self, u: &Update) {
        if let Some(q) = &u.callback_query {
            self.button(q).await;
            return;
        }
        let Some(m) = &u.message else {
            return;
        };
        let (Some(text), Some(from)) = (m.text.as_deref(), m.from.as_ref()) else {
            return;
        };
        if from.is_bot {
            return;
        }
        let private = m.chat.kind == "private";
        let text = if private {
            text.trim().to_owned()
        } else {
            match self.addressed(m, text) {
                Some(t) => t,
                None => return,
            }
        };
        // `/start <invite>` links an unknown sender before any policy applies.
        if private
            && let Some(code) = text.strip_prefix("/start ").map(str::trim)
            && !code.is_empty()
        {
            let reply = match self
                .store
                .redeem_invite(
                    code,
                    CHANNEL,
                    &from.id.to_string(),
                    &from.first_name,
                    Utc::now(),
                )
                .await
            {
                Ok(user) => format!("Welcome, {user}! You can talk to me now."),
                Err(_) => "That invite is not valid (used, expired or mistyped).".into(),
            };
            self.say(m.chat.id, &reply).await;
            return;
        }
        if private && !self.dm_allowed(m).await {
            return;
        }
        if !private && !self.config.groups.contains(&m.chat.id) {
            return;
        }
        match self.rate_check(from.id) {
            Rate::Ok => {}
            Rate::JustLimited => {
                self.say(
                    m.chat.id,
                    "You are sending messages faster than I can take them; please wait a minute.",
                )
                .await;
                return;
            }
            Rate::Limited => return,
        }
        let peer = if private {
            format!("dm-{}", from.id)
        } else {
            format!("group{}", m.chat.id)
        };
        let Ok(key) = SessionKey::for_peer(&self.agent, CHANNEL, &peer) else {
            return;
        };
        if let Some(reply) = self.command(&text, &key, from.id).await {
            self.say(m.chat.id, &reply).await;
            return;
        }
        let submitted = self
            .store
            .submit(
                NewTask {
                    agent: self.agent.clone(),
                    session_key: key,
                    input: text,
                    idempotency_key: Some(format!("{CHANNEL}:{}", u.update_id)),
                    deadline: None,
                },
                Utc::now(),
            )
            .await;
        match submitted {
            Ok((task, created)) => {
                if created {
                    if let Err(e) = self
                        .store
                        .link_task(
                            task.id,
                            CHANNEL,
                            &m.chat.id.to_string(),
                            &from.id.to_string(),
                        )
                        .await
                    {
                        eprintln!("pincer serve: telegram: linking task {}: {e}", task.id);
                    }
                    self.wake.notify_one();
                    self.events
                        .publish("task.queued", json!({"task": task.id, "agent": task.agent}));
                    let _ = self
                        .api
                        .call(
                            "sendChatAction",
                            json!({"chat_id": m.chat.id, "action": "typing"}),
                            Duration::from_secs(10),
                        )
                        .await;
                }
            }
            Err(e) => {
                eprintln!("pincer serve: telegram: submitting a task: {e}");
                self.say(
                    m.chat.id,
                    "Sorry — that could not be queued. Try again in a moment.",
                )
                .await;
            }
        }
    }

    /// A group message's text when it addresses the bot (mention or reply), mention removed.
    fn addressed(&self, m: &Message, text: &str) -> Option<String> {
        let (username, id) = self
            .me
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()?;
        let mention = format!("@{username}");
        let replied = m
            .reply_to_message
            .as_ref()
            .and_then(|r| r.from.as_ref())
            .is_some_and(|f| f.id == id);
        if !username.is_empty() && text.contains(&mention) {
            Some(text.replace(&mention, "").trim().to_owned())
        } else if replied {
            Some(text.trim().to_owned())
        } else {
            None
        }
    }

    /// Whether a direct message may be processed; tells an unknown sender what to do.
    async fn dm_allowed(&self, m: &Message) -> bool {
        let Some(from) = &m.from else {
            return false;
        };
        if self.config.allow_from.contains(&from.id) {
            return true;
        }
        match self.config.dm_policy {
            DmPolicy::Open => true,
            DmPolicy::Disabled | DmPolicy::Allowlist => false,
            DmPolicy::Pairing => {
                let sender = from.id.to_string();
                if self
                    .store
                    .is_paired(CHANNEL, &sender)
                    .await
                    .unwrap_or(false)
                {
                    return true;
                }
                let reply = match self
                    .store
                    .request_pairing(CHANNEL, &sender, &from.first_name, Utc::now())
                    .await
                {
                    Ok(PairingRequest::Code(code)) => format!(
                        "Hi! This bot only talks to people its owner approved.\n\nYour pairing code: `{code}`\n\nAsk the owner to run `pincer pairing approve telegram {code}`. The code expires in an hour."
                    ),
                    Ok(PairingRequest::TooMany) => {
                        "Too many pairing requests are waiting. Please try again later.".into()
                    }
                    Err(e) => {
                        eprintln!("pincer serve: telegram: pairing: {e}");
                        return false;
                    }
                };
                self.say(m.chat.id, &reply).await;
                false
            }
        }
    }

    /// Chat commands answered at once (even while a task runs).
    async fn command(&self, text: &str, key: &SessionKey, user: i64) -> Option<String> {
        let mut words = text.split_whitespace();
        let cmd = words.next()?;
        let cmd = cmd.split('@').next().unwrap_or(cmd);
        let arg = words.next().unwrap_or("");
        if !cmd.starts_with('/') {
            return None;
        }
        let short = |id: &TaskId| {
            let s = id.to_string();
            s[s.len().saturating_sub(8)..].to_owned()
        };
        let mine = || async {
            self.store
                .list(None, 500)
                .await
                .map(|ts| {
                    ts.into_iter()
                        .filter(|t| &t.session_key == key && !t.status.is_terminal())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        Some(match cmd {
            "/start" | "/help" => "Send me a message and I will work on it.\n\n\
/status or /tasks — what is running\n\
/cancel <id|all> — stop tasks\n\
/approvals — actions waiting for you; /approve <id>, /deny <id>\n\
/new — start a new conversation\n\
/model — who answers\n\
/help — this text"
                .into(),
            "/status" | "/tasks" => {
                let tasks = mine().await;
                if tasks.is_empty() {
                    "Nothing is running.".into()
                } else {
                    tasks
                        .iter()
                        .map(|t| {
                            format!(
                                "`{}` {} — {}",
                                short(&t.id),
                                t.status.as_str(),
                                t.input.chars().take(60).collect::<String>()
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            }
            "/cancel" => {
                let targets: Vec<_> = mine()
                    .await
                    .into_iter()
                    .filter(|t| {
                        arg == "all" || (!arg.is_empty() && t.id.to_string().ends_with(arg))
                    })
                    .collect();
                if targets.is_empty() {
                    return Some(
                        "Nothing to cancel (use /tasks to see ids, or /cancel all).".into(),
                    );
                }
                let mut n = 0;
                for t in targets {
                    let canceled = self
                        .store
                        .transition(
                            t.id,
                            None,
                            TaskStatus::Canceled,
                            Some("canceled in chat".into()),
                            Utc::now(),
                        )
                        .await;
                    if canceled.is_ok() {
                        n += 1;
                        self.events
                            .publish("task.canceled", json!({"task": t.id, "agent": t.agent}));
                    }
                }
                format!("Canceled {n} task(s).")
            }
            "/new" => {
                use pincer_store::Store as _;
                match self.store.new_session(key, &self.agent).await {
                    Ok(_) => "Started a new conversation.".into(),
                    Err(e) => format!("Could not start a new conversation: {e}"),
                }
            }
            "/model" => format!("Agent `{}` answers here.", self.agent),
            "/approvals" => {
                let ids: Vec<TaskId> = mine().await.iter().map(|t| t.id).collect();
                let pending = pincer_store::ApprovalStore::approvals(
                    &*self.store,
                    Some(pincer_store::ApprovalStatus::Pending),
                    200,
                )
                .await
                .unwrap_or_default();
                let lines: Vec<String> = pending
                    .iter()
                    .filter(|a| a.task.is_some_and(|t| ids.contains(&t)))
                    .map(|a| format!("`{}` {} ({}) — {}", a.id, a.tool, a.tier.as_str(), a.reason))
                    .collect();
                if lines.is_empty() {
                    "No approvals are waiting.".into()
                } else {
                    lines.join("\n")
                }
            }
            "/approve" | "/deny" => self.decide_in_chat(arg, cmd == "/approve", user).await,
            _ => "Unknown command; /help lists them.".into(),
        })
    }

    /// Decides an approval named in a command, with the same rule as the buttons.
    async fn decide_in_chat(&self, approval: &str, approve: bool, user: i64) -> String {
        let record = match pincer_store::ApprovalStore::approval(&*self.store, approval).await {
            Ok(Some(a)) => a,
            _ => return "No such approval (see /approvals).".into(),
        };
        let requester = match record.task {
            Some(t) => self
                .store
                .task_link(t)
                .await
                .ok()
                .flatten()
                .and_then(|(_, u)| u.parse::<i64>().ok()),
            None => None,
        };
        if requester != Some(user) && !self.config.allow_from.contains(&user) {
            return "This approval is not yours to decide.".into();
        }
        let by = format!("telegram:{user}");
        match pincer_store::ApprovalStore::decide(&*self.store, approval, approve, &by, Utc::now())
            .await
        {
            Ok(a) => {
                self.events.publish(
                    "approval.decided",
                    json!({"approval": a.id, "task": a.task, "status": a.status, "decided_by": by}),
                );
                format!("{}.", a.status.as_str().to_lowercase())
            }
            Err(e) => e.to_string(),
        }
    }

    /// Queues the answer of a linked task that has ended (and forgets the link).
    async fn answer(&self, id: TaskId) {
        let Ok(Some((chat, _))) = self.store.task_link(id).await else {
            return;
        };
        let Ok(chat) = chat.parse::<i64>() else {
            return;
        };
        let Ok(Some(t)) = self.store.task(id).await else {
            return;
        };
        let text = match t.status {
            TaskStatus::Succeeded => t.output.unwrap_or_default(),
            TaskStatus::Failed | TaskStatus::TimedOut | TaskStatus::Canceled => format!(
                "That did not work ({}): {}",
                t.status.as_str().to_lowercase(),
                t.error.unwrap_or_default()
            ),
            TaskStatus::Queued | TaskStatus::Running | TaskStatus::WaitingApproval => return,
        };
        let text = if text.trim().is_empty() {
            "(no answer)".to_owned()
        } else {
            text
        };
        self.queue(chat, &text, None, Some(id)).await;
    }

    /// Answers every linked task that already ended (after a restart).
    async fn answer_finished(&self) {
        for id in self.store.linked_tasks(CHANNEL).await.unwrap_or_default() {
            self.answer(id).await;
        }
    }

    /// Sends each finished task's answer to its chat.
    async fn answer_loop(self: Arc<Self>, stop: CancellationToken) {
        let mut rx = self.events.subscribe();
        let mut seen = self.events.latest();
        loop {
            let (batch, _) = self.events.since(seen);
            for e in batch {
                seen = e.id;
                let Some(id) = e.data["task"]
                    .as_str()
                    .and_then(|s| s.parse::<TaskId>().ok())
                else {
                    continue;
                };
                if e.kind == "approval.requested" {
                    if let Ok(Some((chat, _))) = self.store.task_link(id).await
                        && let Ok(chat) = chat.parse::<i64>()
                    {
                        self.ask_approval(chat, &e.data).await;
                    }
                    continue;
                }
                self.answer(id).await;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                () = stop.cancelled() => return,
            }
            if self.events.is_closed() {
                return;
            }
        }
    }
}

impl Telegram {
    /// Shows a parked action with Approve / Deny buttons in the chat that asked for it.
    async fn ask_approval(&self, chat: i64, data: &serde_json::Value) {
        let Some(id) = data["approval"].as_str() else {
            return;
        };
        let text = format!(
            "Approval needed: `{}` ({}): {}",
            data["tool"].as_str().unwrap_or("?"),
            data["tier"].as_str().unwrap_or("?"),
            data["reason"].as_str().unwrap_or("")
        );
        let buttons = json!({"inline_keyboard": [[
            {"text": "Approve", "callback_data": format!("apr:{id}:y")},
            {"text": "Deny", "callback_data": format!("apr:{id}:n")},
        ]]});
        self.queue(chat, &text, Some(&buttons.to_string()), None)
            .await;
    }

    /// A button press: only the user who asked (or an `allow_from` user) may decide.
    async fn button(&self, q: &pincer_channels::telegram::CallbackQuery) {
        let answer = |text: String| {
            let id = q.id.clone();
            async move {
                let _ = self
                    .api
                    .call(
                        "answerCallbackQuery",
                        json!({"callback_query_id": id, "text": text}),
                        Duration::from_secs(10),
                    )
                    .await;
            }
        };
        let Some((approval, approve)) = q.data.as_deref().and_then(|d| {
            let rest = d.strip_prefix("apr:")?;
            let (id, verdict) = rest.rsplit_once(':')?;
            Some((id.to_owned(), verdict == "y"))
        }) else {
            answer("Unknown button.".into()).await;
            return;
        };
        let text = self.decide_in_chat(&approval, approve, q.from.id).await;
        answer(text).await;
    }
}

/// A sender's standing against the per-minute limit.
enum Rate {
    Ok,
    /// Over the limit for the first time this minute: tell them once.
    JustLimited,
    /// Still over: ignore quietly.
    Limited,
}

impl Telegram {
    fn rate_check(&self, sender: i64) -> Rate {
        let now = std::time::Instant::now();
        let mut map = self.rate.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() > 10_000 {
            map.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
        }
        let e = map.entry(sender).or_insert((now, 0));
        if now.duration_since(e.0) >= Duration::from_secs(60) {
            *e = (now, 0);
        }
        e.1 += 1;
        let limit = self.config.rate_limit_per_minute;
        if e.1 <= limit {
            Rate::Ok
        } else if e.1 == limit + 1 {
            Rate::JustLimited
        } else {
            Rate::Limited
        }
    }
}

impl pincer_gateway::WebhookSink for Telegram {
    fn secret(&self) -> &str {
        self.webhook_secret.as_deref().unwrap_or("")
    }

    fn deliver(&self, update: serde_json::Value) -> futures_util::future::BoxFuture<'_, ()> {
        Box::pin(async move {
            let Ok(u) = serde_json::from_value::<Update>(update) else {
                return;
            };
            let _one_at_a_time = self.deliveries.lock().await;
            if self.me_or_fetch().await.is_none() {
                return;
            }
            let offset = self.store.offset(CHANNEL).await.ok().flatten();
            // Telegram redelivers when it did not see our answer in time: once is enough.
            if offset.is_some_and(|o| u.update_id < o) {
                return;
            }
            self.handle(&u).await;
            if let Err(e) = self.store.set_offset(CHANNEL, u.update_id + 1).await {
                eprintln!("pincer serve: telegram: saving the offset: {e}");
            }
        })
    }
}

async fn pause(stop: &CancellationToken, d: Duration) {
    tokio::select! {
        () = tokio::time::sleep(d) => {}
        () = stop.cancelled() => {}
    }
}
