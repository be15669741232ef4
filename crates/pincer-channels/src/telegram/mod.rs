//! Telegram.

pub mod api;

pub use api::{BotToken, CallbackQuery, Chat, Message, TelegramApi, TgError, Update, User};
