//! `SKILL.md`: YAML front matter (the common layout — `name`, `description`, optional
//! `version`, `license`, `metadata`… — plus Pincer's `permissions` manifest), then Markdown
//! instructions.
//!
//! The front matter is untrusted input: at most 16 KiB, one document, no anchors, aliases or
//! tags, at most 16 levels and 2,000 nodes, no duplicate keys. It is read from yaml-rust2's event
//! stream into JSON, so none of that can expand or recurse.

use std::collections::BTreeSet;

use pincer_config::ToolSelector;
use pincer_types::ToolName;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use yaml_rust2::Event;
use yaml_rust2::parser::Parser;
use yaml_rust2::scanner::TScalarStyle;

use crate::SkillError;

/// Largest front matter read.
const MAX_FRONT: usize = 16 * 1024;
/// Deepest nesting.
const MAX_DEPTH: usize = 16;
/// Most nodes.
const MAX_NODES: usize = 2_000;

/// What a skill declares it needs (every list may be empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    /// Tools, by canonical name or `group:<name>`.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Hosts it reaches (`api.example.org`, `*.example.org`).
    #[serde(default)]
    pub network: Vec<String>,
    /// Command prefixes it runs (`git log`, `python3 scripts/x.py`).
    #[serde(default)]
    pub exec: Vec<String>,
    /// Workspace paths it touches (none: as the agent is granted).
    #[serde(default)]
    pub paths: Vec<String>,
}

impl Permissions {
    /// The tools named, groups expanded.
    ///
    /// # Errors
    /// A name that is neither a tool nor a group.
    pub fn tool_names(&self) -> Result<BTreeSet<ToolName>, String> {
        let mut out = BTreeSet::new();
        for t in &self.tools {
            let sel: ToolSelector = t
                .parse()
                .map_err(|e| format!("permissions.tools: `{t}`: {e}"))?;
            match sel {
                ToolSelector::Tool(n) => {
                    out.insert(n);
                }
                ToolSelector::Group(g) => {
                    out.extend(
                        pincer_policy::group_tools(g)
                            .iter()
                            .filter_map(|n| n.parse().ok()),
                    );
                }
                ToolSelector::McpServer(_) => {
                    return Err(format!(
                        "permissions.tools: `{t}`: name the MCP tools one by one"
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// A parsed `SKILL.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkillDoc {
    /// `name`: lower-case letters, digits and single hyphens, at most 64.
    pub name: String,
    /// `description`: what it is for (at most 1,024 characters).
    pub description: String,
    /// `version` (`0` when not given).
    pub version: String,
    /// `permissions`.
    pub permissions: Permissions,
    /// Fields of the front matter Pincer does not use, by name (`allowed-tools`, `license`…).
    pub other_fields: Vec<String>,
    /// The instructions (after the front matter).
    pub body: String,
    /// The line of `SKILL.md` the body starts on.
    pub body_line: usize,
}

/// Whether `name` is a valid skill name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.split('-').all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Parses `SKILL.md`.
///
/// # Errors
/// [`SkillError::Manifest`] saying what is wrong, with the line where it helps.
pub fn parse(text: &str) -> Result<SkillDoc, SkillError> {
    let bad = |m: String| SkillError::Manifest(m);
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    if lines.next().map(str::trim_end) != Some("---") {
        return Err(bad(
            "SKILL.md must start with a `---` line opening its front matter".into(),
        ));
    }
    let mut front_len = 0;
    let mut closed = None;
    for (i, line) in lines.enumerate() {
        if line.trim_end() == "---" {
            closed = Some(i + 2);
            break;
        }
        front_len += line.len();
        if front_len > MAX_FRONT {
            return Err(bad(format!(
                "the front matter is longer than {} KiB",
                MAX_FRONT / 1024
            )));
        }
    }
    let Some(close_line) = closed else {
        return Err(bad("the front matter is not closed by a `---` line".into()));
    };
    let start = text.find('\n').map_or(text.len(), |i| i + 1);
    let front = &text[start..start + front_len];
    let body_start =
        (start + front_len + text[start + front_len..].find('\n').map_or(0, |i| i + 1))
            .min(text.len());
    let value = yaml_value(front).map_err(|e| bad(format!("front matter: {e}")))?;
    let Value::Object(map) = value else {
        return Err(bad("front matter: expected `key: value` pairs".into()));
    };
    let text_field = |k: &str| -> Result<Option<String>, SkillError> {
        match map.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(bad(format!("front matter: `{k}` must be text"))),
        }
    };
    let name = text_field("name")?.ok_or_else(|| bad("front matter: `name` is missing".into()))?;
    if !valid_name(&name) {
        return Err(bad(format!(
            "front matter: name `{name}` must be lower-case letters, digits and single hyphens (at most 64)"
        )));
    }
    let description = text_field("description")?
        .filter(|d| !d.trim().is_empty())
        .ok_or_else(|| bad("front matter: `description` is missing".into()))?;
    if description.chars().count() > 1024 {
        return Err(bad(
            "front matter: `description` is longer than 1,024 characters".into(),
        ));
    }
    let version = text_field("version")?.unwrap_or_else(|| "0".into());
    if version.len() > 32 || version.chars().any(char::is_whitespace) {
        return Err(bad(format!(
            "front matter: version `{version}` must be one word of at most 32 characters"
        )));
    }
    let permissions: Permissions = match map.get("permissions") {
        None | Some(Value::Null) => Permissions::default(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| bad(format!("front matter: permissions: {e}")))?,
    };
    permissions.tool_names().map_err(bad)?;
    for host in &permissions.network {
        let h = host.strip_prefix("*.").unwrap_or(host);
        if h.is_empty()
            || !h
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'*'))
        {
            return Err(bad(format!(
                "front matter: permissions.network: `{host}` is not a host"
            )));
        }
    }
    let other_fields = map
        .keys()
        .filter(|k| {
            !matches!(
                k.as_str(),
                "name" | "description" | "version" | "permissions"
            )
        })
        .cloned()
        .collect();
    Ok(SkillDoc {
        name,
        description,
        version,
        permissions,
        other_fields,
        body: text[body_start..].to_owned(),
        body_line: close_line + 1,
    })
}

enum Frame {
    Seq(Vec<Value>),
    Map(Map<String, Value>, Option<String>),
}

/// The front matter as JSON (see the module docs for what is refused).
fn yaml_value(src: &str) -> Result<Value, String> {
    let mut parser = Parser::new_from_str(src);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Value> = None;
    let mut nodes = 0usize;
    loop {
        let (ev, mark) = parser.next_token().map_err(|e| e.to_string())?;
        let at = || format!("line {}", mark.line() + 1);
        let value = match ev {
            Event::StreamEnd => break,
            Event::StreamStart | Event::DocumentStart | Event::DocumentEnd | Event::Nothing => {
                continue;
            }
            Event::Alias(_) => return Err(format!("{}: aliases are not allowed", at())),
            Event::Scalar(s, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return Err(format!("{}: anchors and tags are not allowed", at()));
                }
                scalar(s, style)
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag)
                if anchor != 0 || tag.is_some() =>
            {
                return Err(format!("{}: anchors and tags are not allowed", at()));
            }
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(format!("{}: nested deeper than {MAX_DEPTH} levels", at()));
                }
                stack.push(if matches!(ev, Event::SequenceStart(..)) {
                    Frame::Seq(Vec::new())
                } else {
                    Frame::Map(Map::new(), None)
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq(v)) => Value::Array(v),
                Some(Frame::Map(m, None)) => Value::Object(m),
                Some(Frame::Map(_, Some(k))) => return Err(format!("`{k}` has no value")),
                None => return Err(format!("{}: unbalanced document", at())),
            },
        };
        nodes += 1;
        if nodes > MAX_NODES {
            return Err(format!("more than {MAX_NODES} values"));
        }
        match stack.last_mut() {
            None if root.is_some() => return Err("only one document is allowed".into()),
            None => root = Some(value),
            Some(Frame::Seq(v)) => v.push(value),
            Some(Frame::Map(m, key)) => match key.take() {
                None => match value {
                    Value::String(k) => *key = Some(k),
                    _ => return Err(format!("{}: keys must be text", at())),
                },
                Some(k) => {
                    if m.contains_key(&k) {
                        return Err(format!("{}: `{k}` is given twice", at()));
                    }
                    m.insert(k, value);
                }
            },
        }
    }
    Ok(root.unwrap_or(Value::Null))
}

fn scalar(s: String, style: TScalarStyle) -> Value {
    if style != TScalarStyle::Plain {
        return Value::String(s);
    }
    match s.as_str() {
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        _ => Value::String(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "---\nname: weekly-report\ndescription: >\n  Writes the weekly report\n  from notes.\nversion: 1.2\nlicense: MIT\npermissions:\n  tools: [fs.read, fs.write, group:memory]\n  network:\n    - api.example.org\n  exec: [\"python3 scripts/report.py\"]\n  paths: [reports]\n---\n# Weekly report\n\nRead the notes.\n";

    #[test]
    fn the_common_layout_with_a_manifest_parses() {
        let d = parse(GOOD).unwrap();
        assert_eq!(d.name, "weekly-report");
        assert_eq!(d.description.trim(), "Writes the weekly report from notes.");
        assert_eq!(d.version, "1.2");
        assert_eq!(d.permissions.exec, ["python3 scripts/report.py"]);
        assert!(
            d.permissions
                .tool_names()
                .unwrap()
                .contains(&"memory.append".parse().unwrap())
        );
        assert_eq!(d.other_fields, ["license"]);
        assert!(d.body.starts_with("# Weekly report"), "{:?}", d.body);
        assert_eq!(d.body_line, 15);
    }

    #[test]
    fn broken_or_hostile_front_matter_is_refused_with_a_reason() {
        for (text, want) in [
            ("# no front matter", "must start with"),
            ("---\nname: x\n", "not closed"),
            ("---\nname: x\n---\n", "description"),
            ("---\nname: X_Y\ndescription: d\n---\n", "lower-case"),
            ("---\nname: x\ndescription: d\nname: y\n---\n", "twice"),
            (
                "---\na: &a [1, 2]\nb: *a\nname: x\ndescription: d\n---\n",
                "not allowed",
            ),
            (
                "---\nname: !!python/object x\ndescription: d\n---\n",
                "not allowed",
            ),
            (
                "---\nname: x\ndescription: d\npermissions:\n  tools: [\"Rm Rf\"]\n---\n",
                "Rm Rf",
            ),
            (
                "---\nname: x\ndescription: d\npermissions:\n  tool: [fs.read]\n---\n",
                "unknown field",
            ),
            (
                "---\nname: x\ndescription: [unclosed\n---\n",
                "front matter",
            ),
            (
                "---\nname: x\ndescription: d\npermissions:\n  network: ['a b']\n---\n",
                "not a host",
            ),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let deep = format!(
            "---\nname: x\ndescription: d\nm: {}1{}\n---\n",
            "[".repeat(40),
            "]".repeat(40)
        );
        assert!(parse(&deep).unwrap_err().to_string().contains("deeper"));
        let long = format!("---\nname: x\ndescription: {}\n---\n", "a".repeat(20_000));
        assert!(parse(&long).unwrap_err().to_string().contains("KiB"));
    }

    #[test]
    fn names() {
        for ok in ["a", "pdf", "weekly-report-2"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "a--b", "A", "a_b", "ａ", &"a".repeat(65)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
