//! Telegram.

pub mod api;
mod channel;

pub use api::{BotToken, CallbackQuery, Chat, Message, TelegramApi, TgError, Update, User};
pub use channel::TelegramChannel;
