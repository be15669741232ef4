//! `pincer audit verify|tail|search`.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use pincer_audit::{AuditError, AuditSource, Entry, Follower};
use serde_json::{Value, json};

use crate::cli::{AuditCommand, AuditSearchArgs};
use crate::exit::FAILED;
use crate::{Env, Failure, runtime};

/// How often `tail -f` looks for new lines.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(200);

pub(crate) fn run(cmd: AuditCommand, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    // Day files, or the deployment's chain in Postgres (`[storage] url`).
    let source = pincer_server::audit::source(&home, &loaded.config, env)?;
    match cmd {
        AuditCommand::Verify { json } => match source.verify() {
            Ok(r) => {
                if json {
                    println!(
                        "{}",
                        json!({"ok": true, "lines": r.lines, "files": r.files, "last_hash": r.last_hash,
                               "after_head": r.after_head, "anchored": r.anchored,
                               "archived": r.archived, "archived_elsewhere": r.archived_elsewhere,
                               "witnesses": r.witnesses.iter().map(|w| json!({"name": w.name, "agrees_at": w.agrees_at})).collect::<Vec<_>>(),
                               "location": source.location()})
                    );
                } else {
                    let place = match &source {
                        AuditSource::Files { .. } => format!("{} files", r.files),
                        AuditSource::Chain { .. } => source.location(),
                    };
                    println!(
                        "ok: {} lines in {place}, chain intact (last hash {})",
                        r.lines, r.last_hash
                    );
                    match r.anchored {
                        Some(seq) => println!("anchored: line {seq} matches the keyed anchor"),
                        None => println!(
                            "warning: not anchored (no audit key yet); the next Pincer run anchors it"
                        ),
                    }
                    if r.archived + r.archived_elsewhere > 0 {
                        println!(
                            "archives: {} line(s) read from audit/archive/, {} vouched for by checkpoints of archives kept elsewhere",
                            r.archived, r.archived_elsewhere
                        );
                    }
                    for w in &r.witnesses {
                        match w.agrees_at {
                            Some(seq) => println!("witness: {} agrees at line {seq}", w.name),
                            None => println!("witness: {} has no record yet", w.name),
                        }
                    }
                    if r.after_head > 0 {
                        println!(
                            "{} line(s) after HEAD: written by a running Pincer, not yet synced",
                            r.after_head
                        );
                    }
                }
                Ok(0)
            }
            Err(AuditError::Tampered { path, line, reason }) => {
                if json {
                    println!(
                        "{}",
                        json!({"ok": false, "path": path, "line": line, "reason": reason})
                    );
                }
                let at = if line == 0 {
                    format!("{}", path.display())
                } else {
                    format!("{}:{line}", path.display())
                };
                eprintln!("error: audit log is not intact: {at}: {reason}");
                Ok(FAILED)
            }
            Err(e) => Err(e.into()),
        },
        AuditCommand::WitnessKey => {
            let key = pincer_server::audit::witness_key(env, true)?
                .ok_or_else(|| Failure::usage("no witness key"))?;
            println!("{}", key.public_hex());
            eprintln!(
                "Pin it as audit.witness_public_key to verify the witness file on a machine without the secret store."
            );
            Ok(0)
        }
        AuditCommand::Tail {
            lines,
            follow,
            json,
        } => {
            // Files: start following from the end *before* printing, so nothing falls in
            // between. A database chain is followed by sequence number.
            let mut follower = match (&source, follow) {
                (AuditSource::Files { dir, .. }, true) => Some(Follower::at_end(dir)?),
                _ => None,
            };
            let all = source.entries_after(0)?;
            let mut last = all.last().map_or(0, |e| e.seq);
            for e in &all[all.len().saturating_sub(lines)..] {
                print_entry(e, json);
            }
            if !follow {
                return Ok(0);
            }
            loop {
                let new = match follower.as_mut() {
                    Some(f) => f.poll()?,
                    None => source.entries_after(last)?,
                };
                for e in &new {
                    last = last.max(e.seq);
                    print_entry(e, json);
                }
                std::thread::sleep(FOLLOW_INTERVAL);
            }
        }
        AuditCommand::Search(args) => {
            let filter = Filter::new(&args)?;
            let hits: Vec<Entry> = source
                .entries_after(0)?
                .into_iter()
                .filter(|e| filter.matches(e))
                .collect();
            for e in &hits[hits.len().saturating_sub(args.limit)..] {
                print_entry(e, args.json);
            }
            Ok(0)
        }
    }
}

fn print_entry(e: &Entry, json: bool) {
    use std::io::Write;
    if json {
        println!("{}", e.raw);
    } else {
        let mut line = format!("{:>6} {} {:<20}", e.seq, e.ts, e.kind());
        for key in [
            "agent", "tool", "decision", "status", "tier", "by", "reason", "error", "key",
        ] {
            match e.event.get(key) {
                Some(Value::String(s)) if !s.is_empty() => line.push_str(&format!(" {key}={s}")),
                Some(Value::Null) | None => {}
                Some(Value::String(_)) => {}
                Some(v) => line.push_str(&format!(" {key}={v}")),
            }
        }
        println!("{line}");
    }
    let _ = std::io::stdout().flush();
}

struct Filter<'a> {
    args: &'a AuditSearchArgs,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

fn parse_time(flag: &str, s: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Some(t) = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
    {
        return Ok(t.and_utc());
    }
    Err(Failure::usage(format!(
        "--{flag} {s}: expected RFC 3339 (2026-11-21T10:00:00Z) or a date (2026-11-21)"
    ))
    .into())
}

impl<'a> Filter<'a> {
    fn new(args: &'a AuditSearchArgs) -> anyhow::Result<Self> {
        Ok(Self {
            args,
            since: args
                .since
                .as_deref()
                .map(|s| parse_time("since", s))
                .transpose()?,
            until: args
                .until
                .as_deref()
                .map(|s| parse_time("until", s))
                .transpose()?,
        })
    }

    fn matches(&self, e: &Entry) -> bool {
        let a = self.args;
        let eq = |want: &Option<String>, field: &str| {
            want.as_deref().is_none_or(|w| e.field(field) == Some(w))
        };
        if !(eq(&a.agent, "agent") && eq(&a.tool, "tool") && eq(&a.decision, "decision")) {
            return false;
        }
        if let Some(k) = &a.kind
            && !(e.kind() == k || e.kind().starts_with(&format!("{k}.")))
        {
            return false;
        }
        let ts = DateTime::parse_from_rfc3339(&e.ts)
            .ok()
            .map(|t| t.with_timezone(&Utc));
        match ts {
            Some(ts) => self.since.is_none_or(|s| ts >= s) && self.until.is_none_or(|u| ts < u),
            None => self.since.is_none() && self.until.is_none(),
        }
    }
}
