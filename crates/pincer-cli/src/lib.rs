//! The `pincer` command line. Thin: each subcommand parses its arguments, reads the environment
//! once through [`Env`], and calls into the library crates.
//!
//! Exit codes: 0 success, 1 a run or check failed, 2 bad usage or configuration, 3 denied by
//! policy, 4 needed approval and none was given, 130 canceled.

mod cli;
mod commands;
mod exit;

pub use exit::Failure;
pub use pincer_server::Env;
use pincer_server::{runtime, sandbox};

use std::process::ExitCode;

use clap::Parser;

/// Parses `std::env::args`, runs the command and returns its exit code.
pub fn main_entry() -> ExitCode {
    let args = cli::Cli::parse();
    init_tracing();
    let env = Env::from_process();
    let code = match commands::dispatch(args, &env) {
        Ok(code) => code,
        Err(err) => {
            let code = exit::code_for(&err);
            eprintln!("error: {}", exit::render(&err));
            code
        }
    };
    ExitCode::from(code)
}

/// Logs on stderr: level by `PINCER_LOG` (`warn` by default; `info` shows tasks, model and tool
/// calls), human-readable or one JSON object a line with `PINCER_LOG_FORMAT=json`. Log events
/// carry ids, names, statuses and timings — never message content.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PINCER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if std::env::var("PINCER_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
