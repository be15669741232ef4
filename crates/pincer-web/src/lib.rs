//! Web access for agents (C6, D4) through one egress policy (`pincer-policy::egress`):
//!
//! - [`egress::Egress`]: every request Pincer makes on an agent's behalf — the URL checked
//!   (network switch, allowlist with `*.` patterns, named private `host:port`s), the name
//!   resolved and every address checked, the connection pinned to those addresses, each redirect
//!   checked again, body and time capped, each request audited (host, status, bytes — never
//!   bodies, headers or query strings).
//! - [`extract`]: a response as text for the model — HTML as readable Markdown (`dom_smoothie`,
//!   a readability.js port; the whole body as Markdown when no article is found), text and JSON
//!   as is, PDFs and binaries described, not dumped.
//! - [`fetch::HttpFetch`] (`http.fetch`) and [`search::WebSearch`] (`web.search`: SearXNG, Brave).

pub mod egress;
pub mod extract;
pub mod fetch;
pub mod proxy;
pub mod search;

pub use egress::{Egress, EgressSettings, WebError};
