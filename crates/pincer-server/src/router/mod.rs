//! The channel router inside `pincer serve`, the same for every [`Channel`]: receiving with the
//! position saved after each delivery (a restart neither loses nor repeats one; each message
//! also submits its task with the idempotency key `<channel>:<cursor>`), who may talk (DM policy
//! with pairing and invites, group allowlist with mention), one session per DM peer and per
//! group, per-sender rate limits, chat commands, approvals with buttons, and every outgoing
//! message through a durable, ordered outbox.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use pincer_channels::{Button, Channel, ChannelFailure, Delivery, Inbound};
use pincer_config::{DmPolicy, TelegramConfig};
use pincer_gateway::EventBus;
use pincer_store::{Backend, NewOutgoing, NewTask, PairingRequest, TaskLink};
use pincer_types::{AgentId, SessionKey, TaskId, TaskStatus};
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

mod outbox;

/// The chat commands, as registered in the platform's command menu and listed by `/help`.
pub const COMMANDS: &[(&str, &str)] = &[
    ("status", "what is running"),
    ("tasks", "what is running"),
    ("cancel", "stop a task: /cancel <id> or /cancel all"),
    ("approvals", "actions waiting for your decision"),
    ("approve", "approve an action: /approve <id>"),
    ("deny", "deny an action: /deny <id>"),
    (
        "bypass",
        "skip approvals for your own actions (when the org allows it): /bypass on|off",
    ),
    ("new", "start a new conversation"),
    (
        "model",
        "which model answers: /model [name [strict] | default]",
    ),
    ("help", "what I can do"),
];

/// How often the answer loop looks for linked tasks that ended without an event on this node
/// (run by another `pincer serve` on the same database).
const ANSWER_SWEEP: Duration = Duration::from_secs(5);

/// How often "typing…" is refreshed while a task runs.
const TYPING_EVERY: Duration = Duration::from_secs(4);

/// Who may talk and how: a channel's settings in channel-independent form.
#[derive(Debug, Clone)]
pub struct Policy {
    pub agent: AgentId,
    pub dm: DmPolicy,
    pub allow_from: Vec<String>,
    pub groups: Vec<String>,
    pub rate_per_minute: u32,
    pub wait: Duration,
    pub webhook_url: Option<String>,
    /// How often a live worker renews its lease (typing stops when one is overdue).
    pub heartbeat_every: Duration,
    /// The agent's model chain (`/model` chooses within it).
    pub models: Vec<String>,
    /// `[governance]`: self-approval, bypass policy, quotas.
    pub governance: pincer_config::GovernanceConfig,
}

impl Policy {
    pub fn telegram(t: &TelegramConfig, agent: AgentId) -> Self {
        Self {
            agent,
            dm: t.dm_policy,
            allow_from: t.allow_from.iter().map(ToString::to_string).collect(),
            groups: t.groups.iter().map(ToString::to_string).collect(),
            rate_per_minute: t.rate_limit_per_minute,
            wait: Duration::from_secs(t.poll_timeout_secs),
            webhook_url: t.webhook_url.clone(),
            heartbeat_every: Duration::from_secs(10),
            models: Vec::new(),
            governance: pincer_config::GovernanceConfig::default(),
        }
    }
}

/// One channel served by the router.
#[derive(Debug)]
pub struct Router {
    channel: Arc<dyn Channel>,
    policy: Policy,
    store: Arc<dyn Backend>,
    events: Arc<EventBus>,
    wake: Arc<Notify>,
    /// Wakes the sender when a message is queued.
    outbox: Arc<Notify>,
    /// Per sender: the current minute's start and messages in it.
    rate: Mutex<HashMap<String, (std::time::Instant, u32)>>,
    /// Webhook mode: the secret the platform must send back.
    webhook_secret: Option<String>,
    /// Webhook deliveries are handled one at a time (position bookkeeping).
    deliveries: tokio::sync::Mutex<()>,
    /// Where decisions and refusals are recorded.
    audit: Option<Arc<pincer_audit::AuditLog>>,
}

/// Who a chat sender is (D13): the user their account is linked to, or — unlinked — the
/// account itself (`telegram:<id>`), a member.
#[derive(Debug, Clone)]
struct Who {
    principal: String,
    role: pincer_types::Role,
    /// The linked user's name, if any (bypass needs one).
    user: Option<String>,
}

impl Who {
    /// How their decisions are recorded: `user:<name>` when linked, else the account.
    fn by(&self) -> String {
        self.user
            .as_ref()
            .map_or_else(|| self.principal.clone(), |u| format!("user:{u}"))
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

impl Router {
    pub fn new(
        channel: Arc<dyn Channel>,
        policy: Policy,
        store: Arc<dyn Backend>,
        events: Arc<EventBus>,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            channel,
            policy,
            store,
            events,
            wake,
            outbox: Arc::new(Notify::new()),
            rate: Mutex::new(HashMap::new()),
            webhook_secret: None,
            deliveries: tokio::sync::Mutex::new(()),
            audit: None,
        }
    }

    /// The same router recording approval decisions and refusals to `audit`.
    #[must_use]
    pub fn with_audit(mut self, audit: Arc<pincer_audit::AuditLog>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Who `sender` is; `None` when their linked user is disabled (or it cannot be told:
    /// fail closed).
    async fn who(&self, sender: &str) -> Option<Who> {
        match self.store.user_of_sender(self.name(), sender).await {
            Ok(Some(u)) if u.enabled() => Some(Who {
                principal: u.name.clone(),
                role: u.role,
                user: Some(u.name),
            }),
            Ok(Some(_)) => None,
            Ok(None) => Some(Who {
                principal: format!("{}:{sender}", self.name()),
                role: pincer_types::Role::Member,
                user: None,
            }),
            Err(e) => {
                eprintln!("pincer serve: {}: looking up {sender}: {e}", self.name());
                None
            }
        }
    }

    /// Wakes the sender after something else (a job, a heartbeat) queued a message.
    pub fn outbox(&self) -> Arc<Notify> {
        self.outbox.clone()
    }

    /// The same router in webhook mode with `secret`.
    pub fn with_webhook_secret(mut self, secret: String) -> Self {
        self.webhook_secret = Some(secret);
        self
    }

    fn name(&self) -> &'static str {
        self.channel.name()
    }

    /// Receives until `stop` (polling, or webhook deliveries through the gateway), answers
    /// finished tasks and sends the outbox.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        // The command menu; a failure is reported, not fatal (the commands work typed).
        if let Err(e) = self.channel.set_commands(COMMANDS).await {
            eprintln!(
                "pincer serve: {}: registering the command menu: {e}",
                self.name()
            );
        }
        // Tasks that ended while the server was down are answered first.
        self.answer_finished().await;
        let answers = tokio::spawn(self.clone().answer_loop(stop.clone()));
        let sender = tokio::spawn(self.clone().send_loop(stop.clone()));
        let typing = tokio::spawn(self.clone().typing_loop(stop.clone()));
        match (&self.policy.webhook_url, &self.webhook_secret) {
            (Some(url), Some(secret)) => {
                if let Err(e) = self.channel.start_webhook(url, secret).await {
                    eprintln!(
                        "pincer serve: {}: registering the webhook: {e}",
                        self.name()
                    );
                }
                stop.cancelled().await;
            }
            _ => self.poll_loop(stop).await,
        }
        let _ = answers.await;
        let _ = sender.await;
        let _ = typing.await;
    }

    async fn poll_loop(&self, stop: CancellationToken) {
        let mut backoff = Duration::from_secs(1);
        while !stop.is_cancelled() {
            let offset = match self.store.offset(self.name()).await {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("pincer serve: {}: reading the position: {e}", self.name());
                    pause(&stop, backoff).await;
                    continue;
                }
            };
            let got = tokio::select! {
                r = self.channel.receive(offset, self.policy.wait) => r,
                () = stop.cancelled() => return,
            };
            match got {
                Ok(deliveries) => {
                    backoff = Duration::from_secs(1);
                    for d in deliveries {
                        self.take(d, offset).await;
                    }
                }
                Err(e) => {
                    match &e {
                        ChannelFailure::Conflict(_) => eprintln!(
                            "pincer serve: {}: another consumer holds this bot ({e}); retrying",
                            self.name()
                        ),
                        ChannelFailure::Refused(_)
                        | ChannelFailure::Unavailable(_)
                        | ChannelFailure::Limited(_) => {
                            eprintln!("pincer serve: {}: {e}", self.name());
                        }
                    }
                    pause(&stop, backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            }
        }
    }

    /// Handles a delivery once: skipped when at or before the saved position, which is moved
    /// past it afterwards.
    async fn take(&self, d: Delivery, offset: Option<i64>) {
        if offset.is_some_and(|o| d.cursor < o) {
            return;
        }
        if let Some(inbound) = d.inbound {
            self.handle(d.cursor, inbound).await;
        }
        if let Err(e) = self.store.set_offset(self.name(), d.cursor + 1).await {
            eprintln!("pincer serve: {}: saving the position: {e}", self.name());
        }
    }

    /// Queues a message (durably, in order) and wakes the sender.
    async fn queue(
        &self,
        chat: &str,
        text: &str,
        buttons: &[Button],
        answers: Option<TaskId>,
        reply_to: Option<&str>,
    ) {
        let markup = (!buttons.is_empty()).then(|| {
            json!(
                buttons
                    .iter()
                    .map(|b| json!({"label": b.label, "data": b.data}))
                    .collect::<Vec<_>>()
            )
            .to_string()
        });
        match self
            .store
            .enqueue(
                NewOutgoing {
                    channel: self.name(),
                    chat,
                    text,
                    markup: markup.as_deref(),
                    reply_to,
                    answers,
                },
                Utc::now(),
            )
            .await
        {
            Ok(_) => self.outbox.notify_one(),
            Err(e) => eprintln!("pincer serve: {}: queueing a message: {e}", self.name()),
        }
    }

    async fn say(&self, chat: &str, text: &str) {
        self.queue(chat, text, &[], None, None).await;
    }

    async fn handle(&self, cursor: i64, inbound: Inbound) {
        let (chat, sender, name, text, private, message_id) = match inbound {
            Inbound::Button {
                id,
                chat: _,
                sender,
                data,
            } => {
                let text = match self.who(&sender).await {
                    Some(who) => self.button(&who, &data).await,
                    None => "Your access has been disabled.".to_owned(),
                };
                self.channel.answer_button(&id, &text).await;
                return;
            }
            Inbound::Message {
                chat,
                sender,
                sender_name,
                text,
                private,
                addressed,
                message_id,
            } => {
                if !addressed {
                    return;
                }
                (chat, sender, sender_name, text, private, message_id)
            }
        };
        // `/start <invite>` links an unknown sender before any policy applies.
        if private
            && let Some(code) = text.strip_prefix("/start ").map(str::trim)
            && !code.is_empty()
        {
            let reply = match self
                .store
                .redeem_invite(code, self.name(), &sender, &name, Utc::now())
                .await
            {
                Ok(user) => format!("Welcome, {user}! You can talk to me now."),
                Err(_) => "That invite is not valid (used, expired or mistyped).".into(),
            };
            self.say(&chat, &reply).await;
            return;
        }
        if private && !self.dm_allowed(&chat, &sender, &name).await {
            return;
        }
        if !private && !self.policy.groups.contains(&chat) {
            return;
        }
        // A disabled user's chat access stops at once (told in a DM, ignored in groups).
        let Some(who) = self.who(&sender).await else {
            if private {
                self.say(&chat, "Your access to this bot has been disabled.")
                    .await;
            }
            return;
        };
        match self.rate_check(&sender) {
            Rate::Ok => {}
            Rate::JustLimited => {
                self.say(
                    &chat,
                    "You are sending messages faster than I can take them; please wait a minute.",
                )
                .await;
                return;
            }
            Rate::Limited => return,
        }
        let peer = if private {
            format!("dm-{sender}")
        } else {
            format!("group{chat}")
        };
        let Ok(key) = SessionKey::for_peer(&self.policy.agent, self.name(), &peer) else {
            return;
        };
        if let Some(reply) = self.command(&text, &key, &who).await {
            self.say(&chat, &reply).await;
            return;
        }
        match pincer_gateway::governance::check_quota(
            &*self.store,
            &self.policy.governance,
            &who.principal,
            who.role,
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(message)) => {
                self.say(&chat, &format!("Not queued — {message}.")).await;
                return;
            }
            Err(e) => {
                eprintln!("pincer serve: {}: checking a quota: {e}", self.name());
                self.say(
                    &chat,
                    "Sorry — that could not be queued. Try again in a moment.",
                )
                .await;
                return;
            }
        }
        let submitted = self
            .store
            .submit(
                NewTask {
                    kind: pincer_store::TaskKind::Message,
                    agent: self.policy.agent.clone(),
                    session_key: key,
                    input: text,
                    idempotency_key: Some(format!("{}:{cursor}", self.name())),
                    deadline: None,
                    owner: Some(who.principal.clone()),
                },
                Utc::now(),
            )
            .await;
        match submitted {
            Ok((task, true)) => {
                // In a group the answer is a reply to the question (several people talk there).
                let link = TaskLink {
                    chat: chat.clone(),
                    user: sender.clone(),
                    reply_to: if private { None } else { message_id },
                };
                if let Err(e) = self.store.link_task(task.id, self.name(), &link).await {
                    eprintln!(
                        "pincer serve: {}: linking task {}: {e}",
                        self.name(),
                        task.id
                    );
                }
                self.wake.notify_one();
                self.events
                    .publish("task.queued", json!({"task": task.id, "agent": task.agent}));
                if self.channel.capabilities().typing {
                    self.channel.typing(&chat).await;
                }
            }
            Ok((_, false)) => {}
            Err(e) => {
                eprintln!("pincer serve: {}: submitting a task: {e}", self.name());
                self.say(
                    &chat,
                    "Sorry — that could not be queued. Try again in a moment.",
                )
                .await;
            }
        }
    }

    /// Whether a direct message may be processed; tells an unknown sender what to do.
    async fn dm_allowed(&self, chat: &str, sender: &str, name: &str) -> bool {
        if self.policy.allow_from.iter().any(|a| a == sender) {
            return true;
        }
        match self.policy.dm {
            DmPolicy::Open => true,
            DmPolicy::Disabled | DmPolicy::Allowlist => false,
            DmPolicy::Pairing => {
                if self
                    .store
                    .is_paired(self.name(), sender)
                    .await
                    .unwrap_or(false)
                {
                    return true;
                }
                let reply = match self
                    .store
                    .request_pairing(self.name(), sender, name, Utc::now())
                    .await
                {
                    // Told once; a sender who keeps writing is not sent the code again.
                    Ok(PairingRequest::Code { new: false, .. }) => return false,
                    Ok(PairingRequest::Code { code, new: true }) => format!(
                        "Hi! This bot only talks to people its owner approved.\n\nYour pairing code: `{code}`\n\nAsk the owner to run `pincer pairing approve {} {code}`. The code expires in an hour.",
                        self.name()
                    ),
                    Ok(PairingRequest::TooMany) => {
                        "Too many pairing requests are waiting. Please try again later.".into()
                    }
                    Err(e) => {
                        eprintln!("pincer serve: {}: pairing: {e}", self.name());
                        return false;
                    }
                };
                self.say(chat, &reply).await;
                false
            }
        }
    }

    fn rate_check(&self, sender: &str) -> Rate {
        let now = std::time::Instant::now();
        let mut map = self.rate.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() > 10_000 {
            map.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
        }
        let e = map.entry(sender.to_owned()).or_insert((now, 0));
        if now.duration_since(e.0) >= Duration::from_secs(60) {
            *e = (now, 0);
        }
        e.1 += 1;
        let limit = self.policy.rate_per_minute;
        if e.1 <= limit {
            Rate::Ok
        } else if e.1 == limit + 1 {
            Rate::JustLimited
        } else {
            Rate::Limited
        }
    }
}

/// Chat commands, approvals and answers.
impl Router {
    /// Chat commands answered at once (even while a task runs).
    async fn command(&self, text: &str, key: &SessionKey, who: &Who) -> Option<String> {
        let mut words = text.split_whitespace();
        let cmd = words.next()?;
        let cmd = cmd.split('@').next().unwrap_or(cmd);
        // The rest of the line (most commands take one word; `/model` takes two).
        let rest: Vec<&str> = words.collect();
        let arg = rest.first().copied().unwrap_or("");
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
            "/start" | "/help" => format!(
                "Send me a message and I will work on it.\n\n{}",
                COMMANDS
                    .iter()
                    .map(|(c, d)| format!("/{c} — {d}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
            "/status" | "/tasks" => {
                let tasks = mine().await;
                if tasks.is_empty() {
                    "Nothing is running.".into()
                } else {
                    tasks
                        .iter()
                        .map(|t| {
                            format!(
                                "`{}` {}{} — {}",
                                short(&t.id),
                                t.status.as_str(),
                                self.progress_of(t.id),
                                t.input.chars().take(60).collect::<String>()
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            }
            "/cancel" => {
                // In a group, a member cancels only their own tasks (operators: anyone's).
                let targets: Vec<_> = mine()
                    .await
                    .into_iter()
                    .filter(|t| {
                        who.role.sees_others() || t.owner.as_deref() == Some(&who.principal)
                    })
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
            "/new" => match self.store.new_session(key, &self.policy.agent).await {
                Ok(_) => "Started a new conversation.".into(),
                Err(e) => format!("Could not start a new conversation: {e}"),
            },
            "/model" => crate::pins::model_command(
                &*self.store,
                key,
                &self.policy.agent,
                &self.policy.models,
                &rest.join(" "),
            )
            .await
            .unwrap_or_else(|e| format!("Could not read or set the model: {e}")),
            "/approvals" => {
                // Members: their own; operators and above: everyone's.
                let owner = (!who.role.sees_others()).then_some(who.principal.as_str());
                let pending = self
                    .store
                    .approvals_of(owner, Some(pincer_store::ApprovalStatus::Pending), 200)
                    .await
                    .unwrap_or_default();
                let lines: Vec<String> = pending
                    .iter()
                    .map(|a| format!("`{}` {} ({}) — {}", a.id, a.tool, a.tier.as_str(), a.reason))
                    .collect();
                if lines.is_empty() {
                    "No approvals are waiting.".into()
                } else {
                    lines.join("\n")
                }
            }
            "/approve" | "/deny" => self.decide(arg, cmd == "/approve", who).await,
            "/bypass" => self.bypass(arg, who).await,
            _ => "Unknown command; /help lists them.".into(),
        })
    }

    /// `/bypass on|off`: the sender's own toggle (a linked user; the org must allow it).
    async fn bypass(&self, arg: &str, who: &Who) -> String {
        let on = match arg {
            "on" => true,
            "off" => false,
            _ => {
                return match &who.user {
                    Some(u) => match self.store.user(u).await {
                        Ok(Some(u)) => format!(
                            "Your bypass is {} (org policy: {}). Use /bypass on or /bypass off.",
                            if u.bypass { "on" } else { "off" },
                            self.bypass_policy_name()
                        ),
                        _ => "Could not read your bypass.".into(),
                    },
                    None => "Use /bypass on or /bypass off.".into(),
                };
            }
        };
        let Some(user) = &who.user else {
            return "Bypass belongs to Pincer users; ask an admin to link this account to yours."
                .into();
        };
        if on && self.policy.governance.bypass != pincer_config::BypassPolicy::Allowed {
            return "Bypass is off by org policy.".into();
        }
        match self.store.set_bypass(user, on).await {
            Ok(u) => {
                let _ = pincer_gateway::governance::record(
                    self.audit.as_ref(),
                    "user.bypass",
                    json!({"user": u.name, "enabled": u.bypass, "by": who.by()}),
                )
                .await;
                if u.bypass {
                    format!(
                        "Bypass on: your own actions up to {} run without asking (never L3, never what policy denies).",
                        self.policy.governance.bypass_max_tier.tier().as_str()
                    )
                } else {
                    "Bypass off: your actions ask for approval again.".into()
                }
            }
            Err(e) => format!("Could not change your bypass: {e}"),
        }
    }

    fn bypass_policy_name(&self) -> &'static str {
        match self.policy.governance.bypass {
            pincer_config::BypassPolicy::Off => "off",
            pincer_config::BypassPolicy::Allowed => "allowed",
        }
    }

    /// A button press (`apr:<id>:y|n`), decided with the same rule as the commands.
    async fn button(&self, who: &Who, data: &str) -> String {
        let parsed = data.strip_prefix("apr:").and_then(|rest| {
            let (id, verdict) = rest.rsplit_once(':')?;
            Some((id.to_owned(), verdict == "y"))
        });
        match parsed {
            Some((approval, approve)) => self.decide(&approval, approve, who).await,
            None => "Unknown button.".into(),
        }
    }

    /// Decides an approval under the approver rules ([`pincer_gateway::governance::decide`],
    /// the same function as the API's).
    async fn decide(&self, approval: &str, approve: bool, who: &Who) -> String {
        use pincer_gateway::governance::DecideError;
        let by = who.by();
        let decider = pincer_policy::Decider {
            principal: &who.principal,
            role: who.role,
        };
        match pincer_gateway::governance::decide(
            &*self.store,
            self.audit.as_ref(),
            approval,
            approve,
            decider,
            self.policy.governance.self_approval,
            &by,
        )
        .await
        {
            Ok(a) => {
                self.events.publish(
                    "approval.decided",
                    json!({"approval": a.id, "task": a.task, "status": a.status, "decided_by": by}),
                );
                format!("{}.", a.status.as_str().to_lowercase())
            }
            Err(DecideError::Approval(pincer_store::ApprovalError::NotFound(_))) => {
                "No such approval (see /approvals).".into()
            }
            Err(DecideError::Forbidden(why)) => {
                format!("This approval is not yours to decide: {why}.")
            }
            Err(e) => e.to_string(),
        }
    }

    /// Shows a parked action with Approve / Deny buttons in the chat that asked for it.
    async fn ask_approval(&self, chat: &str, data: &serde_json::Value) {
        let Some(id) = data["approval"].as_str() else {
            return;
        };
        let mut text = format!(
            "Approval needed: `{}` ({}): {}",
            data["tool"].as_str().unwrap_or("?"),
            data["tier"].as_str().unwrap_or("?"),
            data["reason"].as_str().unwrap_or("")
        );
        if let Some(sources) = data["taint_sources"].as_array().filter(|s| !s.is_empty()) {
            let list: Vec<&str> = sources.iter().filter_map(|s| s.as_str()).collect();
            text.push_str(&format!(
                "\nHeld: this turn read untrusted content from {}.",
                list.join(", ")
            ));
        }
        let buttons = if self.channel.capabilities().buttons {
            vec![
                Button {
                    label: "Approve".into(),
                    data: format!("apr:{id}:y"),
                },
                Button {
                    label: "Deny".into(),
                    data: format!("apr:{id}:n"),
                },
            ]
        } else {
            Vec::new()
        };
        let text = if buttons.is_empty() {
            format!("{text}\n\nReply /approve {id} or /deny {id}.")
        } else {
            text
        };
        self.queue(chat, &text, &buttons, None, None).await;
    }

    /// ` (3 tool call(s), last `fs.read`)` for a task whose run has called tools, from the
    /// bus's recent `run.tool_call` events (nothing once they left its ring).
    fn progress_of(&self, task: TaskId) -> String {
        let id = task.to_string();
        let (events, _) = self.events.since(0);
        let calls: Vec<&str> = events
            .iter()
            .filter(|e| e.kind == "run.tool_call" && e.data["task"].as_str() == Some(&id))
            .filter_map(|e| e.data["tool"].as_str())
            .collect();
        match calls.last() {
            Some(last) => format!(" ({} tool call(s), last `{last}`)", calls.len()),
            None => String::new(),
        }
    }

    /// Queues the answer of a linked task that has ended (and forgets the link).
    async fn answer(&self, id: TaskId) {
        let Ok(Some(link)) = self.store.task_link(id).await else {
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
        self.queue(&link.chat, &text, &[], Some(id), link.reply_to.as_deref())
            .await;
    }

    /// Answers every linked task that already ended (after a restart).
    async fn answer_finished(&self) {
        for id in self
            .store
            .linked_tasks(self.name())
            .await
            .unwrap_or_default()
        {
            self.answer(id).await;
        }
    }

    /// Sends each finished task's answer to its chat, and approval prompts.
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
                // Progress is read off the bus by `/status`; it answers nothing.
                if e.kind.starts_with("run.") {
                    continue;
                }
                if e.kind == "approval.requested" {
                    if let Ok(Some(link)) = self.store.task_link(id).await {
                        self.ask_approval(&link.chat, &e.data).await;
                    }
                    continue;
                }
                self.answer(id).await;
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                // Tasks run by other nodes end without an event here: sweep for them.
                () = tokio::time::sleep(ANSWER_SWEEP) => self.answer_finished().await,
                () = stop.cancelled() => return,
            }
            if self.events.is_closed() {
                return;
            }
        }
    }
}

impl pincer_gateway::WebhookSink for Router {
    fn secret(&self) -> &str {
        self.webhook_secret.as_deref().unwrap_or("")
    }

    fn deliver(&self, update: serde_json::Value) -> futures_util::future::BoxFuture<'_, ()> {
        Box::pin(async move {
            let Some(d) = self.channel.parse(update).await else {
                return;
            };
            let _one_at_a_time = self.deliveries.lock().await;
            // Platforms redeliver when they did not see the answer in time: once is enough.
            let offset = self.store.offset(self.name()).await.ok().flatten();
            self.take(d, offset).await;
        })
    }
}

async fn pause(stop: &CancellationToken, d: Duration) {
    tokio::select! {
        () = tokio::time::sleep(d) => {}
        () = stop.cancelled() => {}
    }
}
