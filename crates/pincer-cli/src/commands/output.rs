//! Printing run results, and Ctrl-C handling around a run.

use std::io::Write;

use pincer_agent::RunOutcome;
use pincer_types::{RunEvent, RunStatus};
use tokio_util::sync::CancellationToken;

use crate::exit;

/// Prints text deltas to stdout as they arrive (terminal mode).
pub(crate) fn streaming_printer() -> impl FnMut(&RunEvent) + Send {
    move |e| {
        if let RunEvent::TextDelta { text } = e {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }
}

/// Cancels `token` on Ctrl-C, for as long as the returned guard lives.
pub(crate) fn cancel_on_ctrl_c(token: &CancellationToken) -> tokio::task::JoinHandle<()> {
    let token = token.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            token.cancel();
        }
    })
}

/// Reports a finished run; returns the exit code.
pub(crate) fn report(outcome: &RunOutcome, streamed: bool, json: bool) -> u8 {
    if json {
        let record = serde_json::json!({
            "run": outcome.meta,
            "output": outcome.output,
            "bundle": outcome.bundle_dir,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&record).unwrap_or_default()
        );
    } else if outcome.meta.status == RunStatus::Succeeded {
        if streamed {
            println!();
        } else {
            println!("{}", outcome.output);
        }
    } else if streamed {
        println!();
    }
    match outcome.meta.status {
        RunStatus::Succeeded => 0,
        RunStatus::Canceled => {
            eprintln!("canceled (bundle: {})", outcome.bundle_dir.display());
            exit::CANCELED
        }
        RunStatus::Failed | RunStatus::TimedOut | RunStatus::Running => {
            if !json {
                eprintln!(
                    "error: run {}: {}\nbundle: {}",
                    match outcome.meta.status {
                        RunStatus::TimedOut => "timed out",
                        _ => "failed",
                    },
                    outcome.meta.error.as_deref().unwrap_or("unknown error"),
                    outcome.bundle_dir.display()
                );
            }
            exit::FAILED
        }
    }
}
