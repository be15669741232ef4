//! The `Channel` seam: what the channel-independent router in `pincer serve` needs from a chat
//! platform. Receiving (long poll, or parsing a webhook delivery), sending text with optional
//! buttons, acknowledging a button press, showing "typing…", and what the platform can do.
//! Who may talk, sessions, commands, approvals, rate limits and the durable outbox live in the
//! router, shared by every channel.

use std::time::Duration;

use futures_util::future::BoxFuture;

/// What a channel can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Longest message in characters (longer text is chunked by the channel).
    pub max_message_chars: usize,
    /// Inline buttons.
    pub buttons: bool,
    /// A "typing…" indicator.
    pub typing: bool,
}

/// A button under a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    /// What it says.
    pub label: String,
    /// What comes back when pressed.
    pub data: String,
}

/// Something that arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A text message.
    Message {
        /// Chat id.
        chat: String,
        /// Sender id.
        sender: String,
        /// Sender's display name.
        sender_name: String,
        /// The text (in groups: with the bot's mention removed).
        text: String,
        /// A one-to-one chat.
        private: bool,
        /// In a group: the message mentions or replies to the bot.
        addressed: bool,
        /// The message's id in its chat (answers in groups are sent as replies to it).
        message_id: Option<String>,
    },
    /// A button press.
    Button {
        /// Id to acknowledge.
        id: String,
        /// Chat.
        chat: String,
        /// Who pressed.
        sender: String,
        /// The button's data.
        data: String,
    },
}

/// One delivery: its position (for de-duplication and resuming) and what it carried, if
/// anything the router handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Increasing position; the next receive starts after it.
    pub cursor: i64,
    /// The content, when relevant.
    pub inbound: Option<Inbound>,
}

/// A channel operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelFailure {
    /// The platform refused (bad request, chat gone): retrying will not help.
    #[error("refused: {0}")]
    Refused(String),
    /// Unreachable or overloaded now; try again later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Another consumer holds the stream (Telegram's 409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Flood control for this chat: try again after the duration (other chats may go on).
    #[error("rate limited: retry after {}s", .0.as_secs())]
    Limited(Duration),
}

/// A message to send.
#[derive(Debug, Clone, Copy)]
pub struct OutMessage<'a> {
    /// Chat id.
    pub chat: &'a str,
    /// Markdown text (chunked by the channel).
    pub text: &'a str,
    /// Buttons under the last part.
    pub buttons: &'a [Button],
    /// The message this answers (sent as a reply to it).
    pub reply_to: Option<&'a str>,
    /// Parts an earlier attempt already delivered: not sent again.
    pub parts_sent: u32,
}

/// A send that stopped part-way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{failure} (after {parts_sent} part(s))")]
pub struct SendFailure {
    /// Parts delivered so far (including ones skipped), to resume from.
    pub parts_sent: u32,
    /// Why it stopped.
    pub failure: ChannelFailure,
}

/// A chat platform.
pub trait Channel: Send + Sync + std::fmt::Debug {
    /// Name used in config, session keys and the store (`telegram`).
    fn name(&self) -> &'static str;
    /// What it can do.
    fn capabilities(&self) -> Capabilities;
    /// Deliveries after `after`, waiting up to `wait` for some.
    fn receive(
        &self,
        after: Option<i64>,
        wait: Duration,
    ) -> BoxFuture<'_, Result<Vec<Delivery>, ChannelFailure>>;
    /// Parses a webhook delivery.
    fn parse(&self, raw: serde_json::Value) -> BoxFuture<'_, Option<Delivery>>;
    /// Registers a webhook at `url` with `secret`.
    fn start_webhook<'a>(
        &'a self,
        url: &'a str,
        secret: &'a str,
    ) -> BoxFuture<'a, Result<(), ChannelFailure>>;
    /// Sends a message, resuming after the parts an earlier attempt delivered. An implementor
    /// must not wait out a rate limit for one chat (return [`ChannelFailure::Limited`]) and must
    /// report how many parts were delivered when it stops.
    fn send<'a>(&'a self, msg: OutMessage<'a>) -> BoxFuture<'a, Result<(), SendFailure>>;
    /// Acknowledges a button press with a short notice to the presser.
    fn answer_button<'a>(&'a self, id: &'a str, text: &'a str) -> BoxFuture<'a, ()>;
    /// Shows "typing…" in `chat`.
    fn typing<'a>(&'a self, chat: &'a str) -> BoxFuture<'a, ()>;
    /// Registers the chat commands (name without `/`, description) so the platform offers them
    /// in its command menu.
    ///
    /// # Errors
    /// When the platform refuses or cannot be reached.
    fn set_commands<'a>(
        &'a self,
        commands: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<(), ChannelFailure>>;
}
