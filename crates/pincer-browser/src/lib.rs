//! The managed browser (C7): headless Chromium (Debian's `chromium` package) inside Pincer's
//! sandbox — the same providers, Landlock and seccomp as `shell.exec` — with its network only
//! through the egress proxy (every navigation and subresource checked by the same policy as
//! `http.fetch`, and audited), a throwaway profile in the sandbox's private `/tmp`, downloads
//! denied, and CDP over a pipe rather than a debugging port ([`cdp`]). [`browser::Browser`] is
//! one browser; [`tools`] are `browser.navigate`, `browser.snapshot`, `browser.click`,
//! `browser.type`, `browser.screenshot` and `browser.close`, one browser per agent, killed when
//! the run that started it ends.

pub mod browser;
pub mod cdp;
pub mod tools;

pub use browser::{Browser, BrowserError, BrowserSettings};
