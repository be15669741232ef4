//! Approvals from the command line.
//!
//! - [`TerminalApprover`]: shows the exact action on the controlling terminal and asks y/N
//!   (default no). It reads `/dev/tty`, never stdin, so piped input cannot answer for the user.
//!   Without a terminal nobody can answer, and the action is denied.
//! - [`OperatorApprover`]: `pincer tools call --approve`; the operator running the command
//!   approves on the spot (audited as `operator:cli`). It can never turn a `Deny` into a run —
//!   the gate only consults approvers for `NeedsApproval`.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};

use pincer_agent::{ApprovalAnswer, ApprovalFuture, ApprovalRequest, Approver, summarize};

/// Asks on the controlling terminal.
#[derive(Debug, Clone, Copy, Default)]
pub struct TerminalApprover;

impl Approver for TerminalApprover {
    fn ask<'a>(&'a self, request: &'a ApprovalRequest) -> ApprovalFuture<'a> {
        let prompt = describe(request);
        Box::pin(async move {
            let answer = tokio::task::spawn_blocking(move || {
                let Ok(tty) = OpenOptions::new().read(true).write(true).open("/dev/tty") else {
                    return ApprovalAnswer::Unavailable;
                };
                let Ok(mut out) = tty.try_clone() else {
                    return ApprovalAnswer::Unavailable;
                };
                ask_on(&prompt, &mut BufReader::new(tty), &mut out)
            })
            .await;
            answer.unwrap_or(ApprovalAnswer::Unavailable)
        })
    }
}

/// Approves everything it is asked (the operator said `--approve`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OperatorApprover;

impl Approver for OperatorApprover {
    fn ask<'a>(&'a self, _request: &'a ApprovalRequest) -> ApprovalFuture<'a> {
        Box::pin(async {
            ApprovalAnswer::Approved {
                approver: "operator:cli".into(),
            }
        })
    }
}

/// The text shown to the approver: the agent, the tool, the tier, why, and the resolved action.
pub fn describe(r: &ApprovalRequest) -> String {
    let detail = serde_json::to_string_pretty(&summarize(&r.action.detail)).unwrap_or_default();
    let held = if r.taint_sources.is_empty() {
        String::new()
    } else {
        format!(
            "held:   this turn read untrusted content from {}\n",
            r.taint_sources.join(", ")
        )
    };
    format!(
        "\n── approval needed ──\nagent:  {}\ntool:   {} ({:?})\ntier:   {}\nwhy:    {}\naction: {}\ndigest: {}\n{held}",
        r.agent,
        r.action.tool,
        r.action.capability,
        r.action.tier.as_str(),
        r.reason,
        detail,
        r.digest.0
    )
}

/// Shows `prompt` and reads one answer: only `y`/`yes` approves; anything else, or end of
/// input, refuses.
pub fn ask_on(prompt: &str, input: &mut impl BufRead, out: &mut impl Write) -> ApprovalAnswer {
    if write!(out, "{prompt}Approve? [y/N] ")
        .and_then(|()| out.flush())
        .is_err()
    {
        return ApprovalAnswer::Unavailable;
    }
    let mut line = String::new();
    match input.read_line(&mut line) {
        Ok(0) | Err(_) => ApprovalAnswer::Unavailable,
        Ok(_) => match line.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => ApprovalAnswer::Approved {
                approver: "user:tty".into(),
            },
            _ => ApprovalAnswer::Denied {
                by: "user:tty".into(),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yes_approves() {
        let mut out = Vec::new();
        for (input, want_yes) in [
            ("y\n", true),
            ("YES\n", true),
            ("n\n", false),
            ("\n", false),
            ("sure\n", false),
        ] {
            let a = ask_on("p\n", &mut input.as_bytes(), &mut out);
            assert_eq!(
                matches!(a, ApprovalAnswer::Approved { .. }),
                want_yes,
                "{input:?}"
            );
        }
        assert_eq!(
            ask_on("p\n", &mut "".as_bytes(), &mut out),
            ApprovalAnswer::Unavailable
        );
        assert!(String::from_utf8(out).unwrap().contains("Approve? [y/N]"));
    }
}
