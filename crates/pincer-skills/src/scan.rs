//! The static scan (G2): every file of a skill, its front matter and its manifest, against rules
//! modelled on the malicious skills published for other agents' hubs. Each finding has a stable
//! rule id, a level (`warn` or `block`), the file and line, and what was seen. The verdict is
//! `block` when any finding blocks, else `warn` when any warns, else `approve`.
//!
//! A scan is a tripwire, not a proof: an approved skill still runs under its manifest, the
//! agent's grants, the taint rule (its text is untrusted) and the sandbox.

use std::sync::LazyLock;

use base64::Engine as _;
use regex::Regex;
use serde::Serialize;

use crate::manifest::SkillDoc;
use crate::tree::Tree;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// The operator must accept it knowingly.
    Warn,
    /// The skill cannot be installed or approved.
    Block,
}

/// The scan's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing found.
    Approve,
    /// Findings the operator must accept.
    Warn,
    /// Not installable.
    Block,
}

impl Verdict {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Warn => "warn",
            Self::Block => "block",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable rule id (`hidden-unicode`, `download-and-run`, …).
    pub rule: &'static str,
    /// Its level.
    pub level: Level,
    /// The file (relative to the skill), or `manifest`.
    pub file: String,
    /// 1-based line, 0 when not about a line.
    pub line: usize,
    /// What was seen.
    pub message: String,
}

/// A scan report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The verdict.
    pub verdict: Verdict,
    /// Everything found, in file and line order.
    pub findings: Vec<Finding>,
}

/// Names of widely used skills (for look-alike names).
pub const WELL_KNOWN: &[&str] = &[
    "pdf",
    "docx",
    "xlsx",
    "pptx",
    "skill-creator",
    "mcp-builder",
    "webapp-testing",
    "canvas-design",
    "algorithmic-art",
    "frontend-design",
    "brand-guidelines",
    "internal-comms",
    "slack-gif-creator",
    "theme-factory",
    "artifacts-builder",
    "github",
    "gmail",
    "google-calendar",
    "notion",
    "obsidian",
    "weather",
    "web-search",
    "summarize",
    "translate",
    "git-helper",
    "code-review",
    "todoist",
    "spotify",
    "youtube-transcript",
    "crypto-wallet",
    "solana-wallet",
    "polymarket",
    "browser-use",
];

/// Words a name uses to pose as vetted.
const IMPERSONATION: &[&str] = &[
    "official",
    "verified",
    "trusted",
    "secure",
    "pincer",
    "anthropic",
    "openai",
    "claude",
];

/// Compiles constant patterns (checked by the tests: an invalid one would be left out).
fn compile(sources: &[&str]) -> Vec<Regex> {
    sources.iter().filter_map(|p| Regex::new(p).ok()).collect()
}

fn re(p: &str) -> Option<Regex> {
    Regex::new(p).ok()
}

struct Rule {
    id: &'static str,
    level: Level,
    what: &'static str,
    sources: &'static [&'static str],
    patterns: Vec<Regex>,
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let mut rules = vec![
        Rule {
            id: "prompt-override",
            level: Level::Block,
            what: "instructions aimed at the model to drop its rules or hide things from the user",
            sources: &[
                r"(?i)\b(ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}\b(previous|prior|earlier|above|all|any|your|system|safety|security)\b[^.\n]{0,30}\b(instructions?|rules|prompts?|guidelines|polic(y|ies)|restrictions|guardrails)\b",
                r"(?i)\byou are (now )?(in )?(developer|god|admin|jailbreak|dan|unrestricted) mode\b",
                r"(?i)\b(do not|don't|never)\s+(tell|inform|mention|reveal|show)\b[^.\n]{0,30}\b(the )?(user|operator|human)\b",
                r"(?i)\bwithout (telling|asking|informing|notifying|alerting) (the )?(user|operator|human)\b",
                r"(?i)\b(new|updated|real) system prompt\b|\bsystem override\b",
            ],
            patterns: Vec::new(),
        },
        Rule {
            id: "exfiltration",
            level: Level::Block,
            what: "instructions to send secrets or data somewhere",
            sources: &[
                r"(?i)\b(send|post|upload|exfiltrate|forward|transmit|leak|submit|report)\b[^\n]{0,80}\b(api[ _-]?keys?|tokens?|secrets?|credentials?|passwords?|private[ _-]?keys?|ssh[ _-]?keys?|env(ironment)?[ _-]?(vars?|variables?)|\.env\b|cookies?|session[ _-]?ids?|seed[ _-]?phrases?|mnemonics?|wallet)\b[^\n]{0,80}(https?://|\bto\s+\S+\.\S+|webhook|endpoint)",
                r"(?i)\b(webhook\.site|requestbin|pipedream\.net|ngrok(-free)?\.(io|app)|burpcollaborator|interact\.sh|oast\.(fun|me|pro|live|site)|canarytokens)\b",
            ],
            patterns: Vec::new(),
        },
        Rule {
            id: "download-and-run",
            level: Level::Block,
            what: "downloads something and runs it",
            sources: &[
                r"(?i)\b(curl|wget|iwr|invoke-webrequest)\b[^\n|]*\|\s*(sudo\s+)?(ba|z|da|k)?sh\b",
                r"(?i)\b(curl|wget)\b[^\n|]*\|\s*(sudo\s+)?(python[0-9.]*|perl|ruby|node|php)\b",
                r#"(?i)\b(ba)?sh\s+(-c\s+)?["']?\$\(\s*(curl|wget)"#,
                r"(?i)\b(ba)?sh\s+<\(\s*(curl|wget)",
                r"(?i)\b(iex|invoke-expression)\b",
                r"(?i)\bpowershell(\.exe)?\b[^\n]*\s-(e|enc|encodedcommand)\s",
                r"(?i)\bbase64\s+(-d|--decode)\b[^\n]*\|\s*(ba)?sh\b",
                r"(?i)\b(curl|wget)\b[^\n]*\s(-o|-O|--output)\s*\S+[^\n]*(&&|;)\s*(chmod\s+\+x|\./|(ba)?sh\s)",
                r"(?i)\bchmod\s+\+x\b[^\n]*(&&|;)\s*\./",
            ],
            patterns: Vec::new(),
        },
        Rule {
            id: "credential-path",
            level: Level::Block,
            what: "refers to where credentials are kept",
            sources: &[
                r"(?i)(~|\$home|/home/[^/\s]+|/root)/\.(ssh|aws|gnupg|kube|docker|netrc|git-credentials|npmrc|pypirc|config/gh)\b",
                r"(?i)\bid_(rsa|ed25519|ecdsa|dsa)\b",
                r"(?i)\.aws/credentials|/etc/(shadow|sudoers)\b|\.git-credentials|\bwallet\.dat\b|\bkeychain\b|\blogin data\b|\bcookies\.sqlite\b|\bsecrets\.enc\b|\baudit\.key\b",
            ],
            patterns: Vec::new(),
        },
        Rule {
            id: "fake-prerequisite",
            level: Level::Block,
            what: "asks the user to run a command by hand",
            sources: &[
                r"(?i)\b(ask|tell|instruct|have|get)\s+(the\s+)?(user|operator|human)\s+to\s+(run|paste|execute|enter|type|install|copy|download)\b",
                r"(?i)\b(paste|run|execute|copy|type)\b[^\n]{0,60}\b(in|into)\s+(your|a|the)\s+(terminal|shell|console|command prompt|powershell|run dialog)\b",
            ],
            patterns: Vec::new(),
        },
    ];
    for r in &mut rules {
        r.patterns = compile(r.sources);
    }
    rules
});

static BASE64_RUN: LazyLock<Option<Regex>> = LazyLock::new(|| re(r"[A-Za-z0-9+/]{120,}={0,2}"));
static TOOL_MENTION: LazyLock<Option<Regex>> = LazyLock::new(|| {
    re(
        r"\b(fs\.(read|list|write|edit)|apply_patch|code\.search|shell\.exec|process|http\.fetch|web\.search|browser\.[a-z]+|memory\.(search|get|append|forget)|message\.send|schedule\.(add|list|remove))\b",
    )
});

/// Hidden characters: zero-width, bidirectional controls, tags.
fn hidden(c: char) -> bool {
    matches!(c as u32,
        0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x2069 | 0xFEFF
        | 0x180E | 0xE0000..=0xE007F)
}

/// Shells, interpreters and fetchers: a command prefix that is only one of these allows
/// anything (also what `pincer security audit` flags in an exec allowlist).
pub const OPEN_ENDED: &[&str] = &[
    "sh",
    "bash",
    "zsh",
    "dash",
    "fish",
    "env",
    "find",
    "awk",
    "sudo",
    "python",
    "python3",
    "node",
    "perl",
    "ruby",
    "php",
    "curl",
    "wget",
    "nc",
    "ncat",
    "socat",
    "powershell",
    "pwsh",
    "eval",
    "xargs",
];

/// Scans `doc` (parsed from `tree`'s `SKILL.md`) and every file of `tree`; `others` are the
/// names of the other installed skills (look-alikes of them are flagged too).
pub fn scan(doc: &SkillDoc, tree: &Tree, others: &[String]) -> Report {
    let mut f = Vec::new();
    for file in &tree.files {
        scan_file(&file.rel, &file.content, file.executable, &mut f);
    }
    scan_manifest(doc, &mut f);
    scan_name(&doc.name, others, &mut f);
    let verdict = match f.iter().map(|x| x.level).max() {
        None => Verdict::Approve,
        Some(Level::Warn) => Verdict::Warn,
        Some(Level::Block) => Verdict::Block,
    };
    Report {
        verdict,
        findings: f,
    }
}

fn finding(rule: &'static str, level: Level, file: &str, line: usize, message: String) -> Finding {
    Finding {
        rule,
        level,
        file: file.to_owned(),
        line,
        message,
    }
}

fn scan_file(rel: &str, content: &[u8], executable: bool, out: &mut Vec<Finding>) {
    let magic: &[(&[u8], &str)] = &[
        (b"\x7fELF", "an ELF program"),
        (b"MZ", "a Windows program"),
        (b"\xcf\xfa\xed\xfe", "a macOS program"),
        (b"\xce\xfa\xed\xfe", "a macOS program"),
        (b"\xca\xfe\xba\xbe", "a macOS program"),
    ];
    if let Some((_, what)) = magic.iter().find(|(m, _)| content.starts_with(m)) {
        out.push(finding(
            "executable-file",
            Level::Block,
            rel,
            0,
            format!("{rel} is {what}"),
        ));
        return;
    }
    if executable || content.starts_with(b"#!") {
        out.push(finding(
            "executable-file",
            Level::Warn,
            rel,
            1,
            format!("{rel} is a script meant to be run (it is installed without its execute bit)"),
        ));
    }
    let Ok(text) = std::str::from_utf8(content) else {
        return; // binary resources (images): nothing to read
    };
    scan_text(rel, text, 0, out);
}

/// Text rules over `text`; `depth` > 0 for decoded payloads (their findings say so).
fn scan_text(rel: &str, text: &str, depth: u8, out: &mut Vec<Finding>) {
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(c) = line
            .chars()
            .enumerate()
            .find(|&(j, c)| hidden(c) && !(n == 1 && j == 0 && c == '\u{feff}'))
            .map(|(_, c)| c)
        {
            out.push(finding(
                "hidden-unicode",
                Level::Block,
                rel,
                n,
                format!(
                    "invisible or direction-changing character U+{:04X}",
                    c as u32
                ),
            ));
        }
        for rule in RULES.iter() {
            if let Some(m) = rule.patterns.iter().find_map(|p| p.find(line)) {
                let seen: String = m.as_str().chars().take(80).collect();
                let what = if depth > 0 {
                    format!("{} (inside an encoded payload): {seen:?}", rule.what)
                } else {
                    format!("{}: {seen:?}", rule.what)
                };
                out.push(finding(rule.id, rule.level, rel, n, what));
            }
        }
        if depth == 0 {
            for m in BASE64_RUN.iter().flat_map(|r| r.find_iter(line)) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(m.as_str().trim_end_matches('='))
                    .or_else(|_| {
                        base64::engine::general_purpose::STANDARD_NO_PAD
                            .decode(m.as_str().trim_end_matches('='))
                    })
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok());
                let before = out.len();
                if let Some(d) = &decoded {
                    scan_text(rel, d, 1, out);
                    for f in &mut out[before..] {
                        f.line = n;
                    }
                }
                if out.len() == before {
                    out.push(finding(
                        "encoded-payload",
                        Level::Warn,
                        rel,
                        n,
                        format!("a {}-character base64 run", m.as_str().len()),
                    ));
                }
            }
        }
    }
}

fn scan_manifest(doc: &SkillDoc, out: &mut Vec<Finding>) {
    let p = &doc.permissions;
    let m = |level, msg: String| finding("permission-creep", level, "manifest", 0, msg);
    let prose = format!("{}\n{}", doc.description, doc.body).to_lowercase();
    for host in &p.network {
        if host == "*" || host == "*.*" || host.starts_with("*.") && !host[2..].contains('.') {
            out.push(m(
                Level::Block,
                format!("network `{host}` reaches any host"),
            ));
        } else if !prose.contains(host.trim_start_matches("*.").to_lowercase().as_str()) {
            out.push(m(
                Level::Warn,
                format!("network `{host}` is never mentioned in the description or instructions"),
            ));
        }
    }
    for prefix in &p.exec {
        let first = prefix.split_whitespace().next().unwrap_or("");
        let words = prefix.split_whitespace().count();
        if words == 0 {
            out.push(m(
                Level::Block,
                "an empty exec prefix allows every command".into(),
            ));
        } else if words == 1 && OPEN_ENDED.contains(&first) {
            out.push(m(
                Level::Warn,
                format!("exec `{prefix}` allows any {first} command"),
            ));
        } else if !prose.contains(first.to_lowercase().as_str()) {
            out.push(m(
                Level::Warn,
                format!("exec `{prefix}` is never mentioned in the description or instructions"),
            ));
        }
    }
    let tools = p.tool_names().unwrap_or_default();
    if !p.exec.is_empty() && !p.network.is_empty() {
        out.push(m(
            Level::Warn,
            "declares both commands and network access (what is read can be sent)".into(),
        ));
    }
    for risky in ["message.send", "schedule.add", "browser.type"] {
        if tools.iter().any(|t| t.as_str() == risky) {
            out.push(m(Level::Warn, format!("declares `{risky}`")));
        }
    }
    if tools.len() > 10 {
        out.push(m(Level::Warn, format!("declares {} tools", tools.len())));
    }
    for (i, line) in doc.body.lines().enumerate() {
        for t in TOOL_MENTION.iter().flat_map(|r| r.find_iter(line)) {
            if !tools.iter().any(|d| d.as_str() == t.as_str()) {
                out.push(finding(
                    "undeclared-tool",
                    Level::Warn,
                    "SKILL.md",
                    doc.body_line + i,
                    format!("the instructions use `{}`, which the manifest does not declare (it will be denied)", t.as_str()),
                ));
            }
        }
    }
    if doc.other_fields.iter().any(|k| k == "allowed-tools") && p.tools.is_empty() {
        out.push(m(
            Level::Warn,
            "`allowed-tools` is another agent's field; Pincer reads `permissions.tools` (none declared: the skill can use no tool)".into(),
        ));
    }
}

fn scan_name(name: &str, others: &[String], out: &mut Vec<Finding>) {
    let known = WELL_KNOWN
        .iter()
        .copied()
        .chain(others.iter().map(String::as_str));
    for k in known {
        let d = distance(name, k);
        let close = if k.len() <= 4 {
            d == 1
        } else {
            (1..=2).contains(&d)
        };
        if close || (name != k && name.replace('-', "") == k.replace('-', "")) {
            out.push(finding(
                "typosquat",
                Level::Warn,
                "manifest",
                0,
                format!("the name `{name}` looks like `{k}`"),
            ));
            return;
        }
    }
    if let Some(w) = name.split('-').find(|p| IMPERSONATION.contains(p)) {
        out.push(finding(
            "typosquat",
            Level::Warn,
            "manifest",
            0,
            format!("the name `{name}` claims to be `{w}`"),
        ));
    }
}

/// Levenshtein distance (short names only; capped work).
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 2 {
        return 3;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        for r in RULES.iter() {
            assert_eq!(r.patterns.len(), r.sources.len(), "{}", r.id);
        }
        assert!(BASE64_RUN.is_some() && TOOL_MENTION.is_some());
        assert_eq!(distance("pdff", "pdf"), 1);
        assert_eq!(distance("gihtub", "github"), 2);
        assert_eq!(distance("abc", "abcdefg"), 3);
    }
}
