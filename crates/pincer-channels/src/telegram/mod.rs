//! Telegram.

pub mod api;
mod channel;
mod mention;

pub use api::{
    BotToken, CallbackQuery, Chat, Message, MessageEntity, OnLimit, PartialSend, SendOptions,
    TelegramApi, TgError, Update, User,
};
pub use channel::TelegramChannel;
