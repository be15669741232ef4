//! Chat channels. This first part holds what every channel needs to send well: splitting long
//! answers at natural boundaries ([`chunk`]) and converting the model's Markdown into Telegram's
//! HTML subset with correct escaping ([`telegram_html`]).

mod channel;
mod chunk;
mod format;
pub mod telegram;

pub use channel::{
    Button, Capabilities, Channel, ChannelFailure, Delivery, Inbound, OutMessage, SendFailure,
};
pub use chunk::chunk;
pub use format::telegram_html;
