//! Heartbeats (F2): a periodic check-in per agent (`agents.<id>.heartbeat`), cheap by default.
//!
//! - Due every `every` (counted from the last heartbeat, or from server start), only inside
//!   `active_hours` in `tz`.
//! - The agent's `HEARTBEAT.md` (in its agent directory, operator-written and protected from
//!   the agent) is read first. Missing, empty, or only blank lines, Markdown headings and
//!   `<!-- comments -->`: **no model call**; the heartbeat is recorded as `skipped`.
//! - Otherwise one task of kind `heartbeat` runs in a fresh session with a light context
//!   (`SOUL.md` and `RULES.md`, no history) unless `full_context = true`.
//! - The `HEARTBEAT_OK` contract: a reply that begins or ends with `HEARTBEAT_OK` and has at
//!   most 300 other characters delivers nothing (`ok`). Any other reply goes to `deliver`.
//! - Every heartbeat is recorded with its token use (`pincer heartbeat runs`) and audited.

use chrono::Utc;
use pincer_gateway::from_ts;
use pincer_scheduler::jiff::{SignedDuration, Timestamp};
use pincer_scheduler::{ActiveHours, parse_duration};
use pincer_store::{NewTask, TaskKind};
use pincer_types::{AgentId, SessionKey, TaskStatus};
use serde_json::json;

use crate::jobs::Automation;

/// The heartbeat instructions, in the agent directory.
pub const HEARTBEAT_FILE: &str = "HEARTBEAT.md";
/// The "nothing to report" token.
pub const OK_TOKEN: &str = "HEARTBEAT_OK";
/// Characters besides the token an OK reply may carry.
const OK_MAX_OTHER: usize = 300;
/// Largest `HEARTBEAT.md` read.
const MAX_FILE: u64 = 64 * 1024;

/// What the model is told around the file.
const PROMPT: &str = "This is a scheduled heartbeat check-in. Follow the checklist below. If \
nothing needs the user's attention, reply exactly HEARTBEAT_OK. Otherwise reply with what they \
should know — briefly.";

/// The file's text without blank lines, Markdown headings and HTML comments; empty when nothing
/// actionable remains.
pub fn actionable(content: &str) -> String {
    let mut without_comments = String::with_capacity(content.len());
    let mut rest = content;
    while let Some(start) = rest.find("<!--") {
        without_comments.push_str(&rest[..start]);
        rest = match rest[start..].find("-->") {
            Some(end) => &rest[start + end + 3..],
            None => "",
        };
    }
    without_comments.push_str(rest);
    without_comments
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a reply honours the `HEARTBEAT_OK` contract (and so delivers nothing).
pub fn is_ok_reply(reply: &str) -> bool {
    let t = reply.trim();
    let rest = if let Some(r) = t.strip_prefix(OK_TOKEN) {
        r
    } else if let Some(r) = t.strip_suffix(OK_TOKEN) {
        r
    } else {
        return false;
    };
    rest.trim().chars().count() <= OK_MAX_OTHER
}

/// Why a heartbeat makes no model call, or the checklist to send.
fn read_checklist(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read as _;
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("{HEARTBEAT_FILE} is missing"));
        }
        Err(e) => return Err(format!("{HEARTBEAT_FILE} cannot be read: {e}")),
    };
    let mut text = String::new();
    f.take(MAX_FILE)
        .read_to_string(&mut text)
        .map_err(|e| format!("{HEARTBEAT_FILE} cannot be read: {e}"))?;
    if actionable(&text).is_empty() {
        return Err(format!(
            "{HEARTBEAT_FILE} has nothing to check (empty, headings or comments only)"
        ));
    }
    Ok(text)
}

/// Starts due heartbeats and settles ended ones.
pub async fn tick(a: &Automation) -> anyhow::Result<()> {
    for (agent, cfg) in &a.config.agents {
        if let Some(hb) = &cfg.heartbeat {
            beat(a, agent, hb, cfg.run_timeout_secs).await?;
        }
    }
    settle(a).await
}

async fn beat(
    a: &Automation,
    agent: &AgentId,
    hb: &pincer_config::HeartbeatConfig,
    run_timeout_secs: u64,
) -> anyhow::Result<()> {
    // Validated with the config; a value that no longer parses just means no heartbeat.
    let Ok(every) = parse_duration(&hb.every) else {
        return Ok(());
    };
    let every = SignedDuration::try_from(every).unwrap_or(SignedDuration::MAX);
    let now = Timestamp::now();
    let last = a
        .store
        .last_heartbeat(agent)
        .await?
        .and_then(pincer_gateway::to_ts)
        .unwrap_or(a.started);
    if last.checked_add(every).is_ok_and(|due| due > now) {
        return Ok(());
    }
    if let Some(window) = &hb.active_hours
        && let Ok(window) = ActiveHours::parse(window)
        && let Ok(tz) = pincer_scheduler::jiff::tz::TimeZone::get(&hb.tz)
        && !window.contains(now, &tz)
    {
        return Ok(());
    }
    let at = from_ts(now).unwrap_or_else(Utc::now);
    // One at a time: a heartbeat still running makes this one a skip.
    let running = a
        .store
        .heartbeats(Some(agent), 1)
        .await?
        .first()
        .is_some_and(|h| h.status == "queued");
    let checklist = if running {
        Err("the previous heartbeat is still running".to_owned())
    } else {
        read_checklist(&a.home.agent_dir(agent).join(HEARTBEAT_FILE))
    };
    let text = match checklist {
        Ok(t) => t,
        Err(reason) => {
            a.store
                .record_heartbeat(agent, at, "skipped", Some(reason.clone()), None)
                .await?;
            a.audit(
                "heartbeat.skipped",
                json!({"agent": agent, "reason": reason}),
            )
            .await;
            return Ok(());
        }
    };
    let session_key = SessionKey::for_peer(agent, "heartbeat", &format!("hb-{}", now.as_second()))?;
    let deadline =
        at + chrono::Duration::seconds(i64::try_from(run_timeout_secs).unwrap_or(i64::MAX / 2));
    let (task, _) = a
        .store
        .submit(
            NewTask {
                kind: TaskKind::Heartbeat,
                agent: agent.clone(),
                session_key,
                input: format!(
                    "{PROMPT}\n\n<heartbeat file=\"{HEARTBEAT_FILE}\">\n{}\n</heartbeat>",
                    text.trim_end()
                ),
                idempotency_key: Some(format!("heartbeat:{agent}:{}", now.as_second())),
                deadline: Some(deadline),
                owner: None,
            },
            Utc::now(),
        )
        .await?;
    a.store
        .record_heartbeat(agent, at, "queued", None, Some(task.id))
        .await?;
    a.audit(
        "heartbeat.queued",
        json!({"agent": agent, "task": task.id.to_string()}),
    )
    .await;
    a.wake.notify_one();
    a.events.publish(
        "task.queued",
        json!({"task": task.id, "agent": agent, "heartbeat": true}),
    );
    Ok(())
}

async fn settle(a: &Automation) -> anyhow::Result<()> {
    for hb in a.store.ended_heartbeats().await? {
        // Only queued heartbeats with an ended task are returned, so both exist.
        let Some(id) = hb.task else { continue };
        let Some(task) = a.store.task(id).await? else {
            continue;
        };
        let deliver = a
            .config
            .agents
            .get(&hb.agent)
            .and_then(|c| c.heartbeat.as_ref())
            .and_then(|h| h.deliver.clone());
        let (status, detail) = match task.status {
            TaskStatus::Succeeded => {
                let reply = task.output.clone().unwrap_or_default();
                if is_ok_reply(&reply) {
                    ("ok", None)
                } else if let Some(target) = deliver {
                    match a
                        .deliver(&target, &format!("heartbeat:{}", hb.agent), &reply)
                        .await
                    {
                        Ok(()) => ("delivered", Some(format!("to {target}"))),
                        Err(e) => ("undelivered", Some(format!("to {target}: {e}"))),
                    }
                } else {
                    (
                        "undelivered",
                        Some("no heartbeat.deliver target".to_owned()),
                    )
                }
            }
            _ => ("failed", task.error.clone()),
        };
        a.store
            .finish_heartbeat(hb.id, status, detail.clone(), task.usage)
            .await?;
        a.audit(
            "heartbeat.done",
            json!({"agent": hb.agent, "task": task.id.to_string(), "status": status,
                   "detail": detail,
                   "input_tokens": task.usage.map(|u| u.input_tokens),
                   "output_tokens": task.usage.map(|u| u.output_tokens)}),
        )
        .await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_checklist_lines_count() {
        assert_eq!(actionable(""), "");
        assert_eq!(actionable("\n\n  \n"), "");
        assert_eq!(actionable("# Heartbeat\n\n## Checks\n"), "");
        assert_eq!(actionable("<!-- nothing yet -->\n# Heartbeat"), "");
        assert_eq!(actionable("<!--\nmulti\nline\n-->"), "");
        assert_eq!(actionable("<!-- unterminated"), "");
        assert_eq!(
            actionable("# Heartbeat\n- check the inbox <!-- daily -->\n"),
            "- check the inbox"
        );
    }

    #[test]
    fn the_ok_contract() {
        assert!(is_ok_reply("HEARTBEAT_OK"));
        assert!(is_ok_reply("  HEARTBEAT_OK\n"));
        assert!(is_ok_reply("HEARTBEAT_OK — all quiet."));
        assert!(is_ok_reply("Nothing new. HEARTBEAT_OK"));
        assert!(is_ok_reply(&format!("HEARTBEAT_OK {}", "x".repeat(300))));
        assert!(!is_ok_reply(&format!("HEARTBEAT_OK {}", "x".repeat(301))));
        assert!(!is_ok_reply(
            "The build is red. HEARTBEAT_OK is not right here, sorry."
        ));
        assert!(!is_ok_reply("Your server is down."));
        assert!(!is_ok_reply(""));
    }
}
