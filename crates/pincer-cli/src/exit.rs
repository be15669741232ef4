//! Exit codes and error rendering.

use pincer_config::ConfigError;

pub use pincer_server::failure::{CANCELED, DENIED, FAILED, Failure, NOT_APPROVED, USAGE};

pub(crate) fn code_for(err: &anyhow::Error) -> u8 {
    if let Some(f) = err.downcast_ref::<Failure>() {
        return f.code;
    }
    if err.downcast_ref::<ConfigError>().is_some() {
        return USAGE;
    }
    FAILED
}

pub(crate) fn render(err: &anyhow::Error) -> String {
    let mut s = err.to_string();
    for cause in err.chain().skip(1) {
        s.push_str(": ");
        s.push_str(&cause.to_string());
    }
    s
}
