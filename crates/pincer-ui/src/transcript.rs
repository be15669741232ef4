//! The transcript viewer: a task's run bundle (`transcript.jsonl`) as the page shows it, the
//! bundle's PNG screenshots, and its other files as downloads. Confined: the bundle directory recorded for the task must resolve
//! inside `<home>/agents/`, files are read only by a plain name from that directory, never
//! through a symbolic link, and with size caps.

use std::io::Read;
use std::path::{Path, PathBuf};

use maud::{Markup, html};
use serde_json::Value;

/// Most transcript bytes read.
const MAX_TRANSCRIPT: u64 = 2 * 1024 * 1024;
/// Most characters of one text shown (the rest is elided).
const MAX_TEXT: usize = 8 * 1024;
/// Largest bundle file served (screenshots, artifacts).
pub(crate) const MAX_FILE: u64 = 8 * 1024 * 1024;

/// The bundle directory, when it resolves to `<agents_dir>/<agent>/runs/<run>` exactly.
pub(crate) fn bundle_dir(agents_dir: &Path, run_dir: &str) -> Option<PathBuf> {
    let root = agents_dir.canonicalize().ok()?;
    let dir = Path::new(run_dir).canonicalize().ok()?;
    let runs = dir.parent()?;
    let shaped = runs.file_name()? == "runs" && runs.parent()?.parent()? == root;
    shaped.then_some(dir)
}

/// A plain file `name` directly in `dir` (no separators, no dot files, not a link), opened.
pub(crate) fn open_plain(dir: &Path, name: &str, max: u64) -> Option<std::fs::File> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !plain {
        return None;
    }
    // Opened without following a link, and never blocking on a FIFO; checked after opening
    // (no window between a check and the open).
    let fd = rustix::fs::open(
        dir.join(name),
        rustix::fs::OFlags::RDONLY
            | rustix::fs::OFlags::NOFOLLOW
            | rustix::fs::OFlags::NONBLOCK
            | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    let file = std::fs::File::from(fd);
    let meta = file.metadata().ok()?;
    (meta.file_type().is_file() && meta.len() <= max).then_some(file)
}

/// The plain files of a bundle (what `open_plain` would open, size aside), by name, with
/// their sizes.
pub(crate) fn files(dir: &Path) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let meta = e.metadata().ok()?; // of the entry itself: links are not files here
            let name = e.file_name().into_string().ok()?;
            (meta.file_type().is_file() && !name.starts_with('.')).then_some((name, meta.len()))
        })
        .collect();
    out.sort();
    out
}

fn cut(s: &str) -> String {
    if s.len() <= MAX_TEXT {
        return s.to_owned();
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} more bytes)", &s[..end], s.len() - end)
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => cut(s),
        Value::Null => String::new(),
        other => cut(&serde_json::to_string_pretty(other).unwrap_or_default()),
    }
}

/// The PNG files among a bundle's `files`.
pub(crate) fn images(files: &[(String, u64)]) -> Vec<String> {
    files
        .iter()
        .filter(|(n, _)| n.ends_with(".png"))
        .map(|(n, _)| n.clone())
        .collect()
}

/// The transcript as markup (each line a section; unknown kinds shown as JSON).
pub(crate) fn render(dir: &Path) -> Markup {
    let mut raw = String::new();
    let read = open_plain(dir, "transcript.jsonl", u64::MAX)
        .map(|f| f.take(MAX_TRANSCRIPT).read_to_string(&mut raw).is_ok());
    if read != Some(true) {
        return html! { p.hint { "No transcript in this run's bundle." } };
    }
    let lines: Vec<Value> = raw
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    html! {
        ol.transcript {
            @for e in &lines {
                @let kind = e["type"].as_str().unwrap_or("?");
                li class={ "entry " (kind) } {
                    span.kind { (kind) }
                    @match kind {
                        "user" => { pre.text { (text(&e["text"])) } }
                        "assistant" => {
                            @if e["text"].as_str().is_some_and(|t| !t.is_empty()) { pre.text { (text(&e["text"])) } }
                            @for c in e["tool_calls"].as_array().into_iter().flatten() {
                                p { "calls " code { (c["name"].as_str().unwrap_or("?")) } }
                            }
                        }
                        "tool_call" => {
                            p {
                                code { (e["tool"].as_str().or(e["wire_name"].as_str()).unwrap_or("?")) }
                                " · " (e["tier"].as_str().unwrap_or("")) " · decision "
                                strong { (e["decision"]["decision"].as_str().unwrap_or("?")) }
                                " · " (e["status"].as_str().unwrap_or(""))
                            }
                            @if let Some(r) = e["decision"]["reason"].as_str() { p.hint { (r) } }
                            pre.text { (text(&e["arguments"])) }
                        }
                        "tool_result" => {
                            p.hint { (e["provenance"]["trust"].as_str().unwrap_or("")) " output"
                                @if e["is_error"] == true { " (error)" } }
                            pre.text { (text(&e["content"])) }
                        }
                        "system_prompt" => { p.hint { "system prompt, sha256 " code { (e["sha256"].as_str().unwrap_or("")) } } }
                        "run_end" => { p { (e["status"].as_str().unwrap_or("?")) @if let Some(err) = e["error"].as_str() { " — " (err) } } }
                        _ => { pre.text { (text(e)) } }
                    }
                }
            }
        }
        @if lines.is_empty() { p.hint { "The transcript is empty." } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_inside_the_agents_directory() {
        let home = tempfile::tempdir().unwrap();
        let agents = home.path().join("agents");
        let run = agents.join("main/runs/r1");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("transcript.jsonl"), "{}\n").unwrap();
        std::fs::write(home.path().join("secret.txt"), "s").unwrap();
        std::os::unix::fs::symlink(home.path().join("secret.txt"), run.join("link.png")).unwrap();
        assert!(bundle_dir(&agents, run.to_str().unwrap()).is_some());
        assert!(bundle_dir(&agents, home.path().to_str().unwrap()).is_none());
        assert!(bundle_dir(&agents, &format!("{}/../..", run.display())).is_none());
        let dir = bundle_dir(&agents, run.to_str().unwrap()).unwrap();
        assert!(open_plain(&dir, "transcript.jsonl", 10).is_some());
        for bad in ["../secret.txt", "link.png", ".hidden", "", "a/b"] {
            assert!(open_plain(&dir, bad, 10).is_none(), "{bad}");
        }
        assert!(
            open_plain(&dir, "transcript.jsonl", 1).is_none(),
            "size cap"
        );
    }

    #[test]
    fn long_texts_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_TEXT);
        let out = cut(&long);
        assert!(out.contains("more bytes"));
    }
}
