//! The memory tools. Each holds its agent's [`MemoryDir`]; none takes a path.

use std::sync::Arc;

use chrono::Utc;
use pincer_policy::Approved;
use pincer_types::{Action, Capability, IdError, RiskTier};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{LONG_TERM, MemoryDir, search};
use crate::fs::blocking;
use crate::tool::parse_args;
use crate::{Tool, ToolContext, ToolError, ToolFuture, ToolOutput, ToolSpec};

/// Longest text one `memory.append` adds.
const MAX_APPEND: usize = 4000;

fn file_arg(mem: &MemoryDir, file: Option<String>) -> Result<String, ToolError> {
    let f = file.unwrap_or_else(|| LONG_TERM.to_owned());
    if f == "today" {
        return Ok(mem.today_file());
    }
    if MemoryDir::valid_name(&f) {
        Ok(f)
    } else {
        Err(ToolError::InvalidArguments(format!(
            "`{f}`: memory files are MEMORY.md, YYYY-MM-DD.md or `today`"
        )))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GetArgs {
    /// MEMORY.md, YYYY-MM-DD.md or `today`.
    #[serde(default)]
    file: Option<String>,
    /// 1-based.
    #[serde(default)]
    from_line: Option<usize>,
    /// Default 400.
    #[serde(default)]
    lines: Option<usize>,
}

/// `memory.get`: reads a memory file or a line range of it.
#[derive(Debug)]
pub struct MemoryGet {
    spec: ToolSpec,
    mem: Arc<MemoryDir>,
}

impl MemoryGet {
    /// The tool over `mem`.
    ///
    /// # Errors
    /// Never in practice (literal name).
    pub fn new(mem: Arc<MemoryDir>) -> Result<Self, IdError> {
        Ok(Self {
            spec: ToolSpec::for_args::<GetArgs>(
                "memory.get",
                "Read a memory file: MEMORY.md (default), YYYY-MM-DD.md or `today`.",
                Capability::Memory,
                RiskTier::L0ReadOnly,
            )?,
            mem,
        })
    }
}

impl Tool for MemoryGet {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn plan(&self, _ctx: &ToolContext, args: &Value) -> Result<Action, ToolError> {
        let a: GetArgs = parse_args("memory.get", args)?;
        let file = file_arg(&self.mem, a.file)?;
        if a.from_line == Some(0) {
            return Err(ToolError::InvalidArguments(
                "memory.get: `from_line` is 1-based".into(),
            ));
        }
        Ok(self.spec.action(
            RiskTier::L0ReadOnly,
            json!({"file": file, "from_line": a.from_line.unwrap_or(1), "lines": a.lines.unwrap_or(400)}),
        ))
    }

    fn run<'a>(&'a self, _ctx: &'a ToolContext, action: Approved<Action>) -> ToolFuture<'a> {
        let mem = self.mem.clone();
        Box::pin(async move {
            let d = action.action().detail.clone();
            let file = d["file"].as_str().unwrap_or(LONG_TERM).to_owned();
            let from = usize::try_from(d["from_line"].as_u64().unwrap_or(1)).unwrap_or(1);
            let take = usize::try_from(d["lines"].as_u64().unwrap_or(400)).unwrap_or(400);
            let f = file.clone();
            let text = blocking(move || mem.read(&f)).await?;
            let Some(text) = text else {
                return Ok(ToolOutput {
                    content: json!({"file": file, "exists": false}).to_string(),
                });
            };
            let total = text.lines().count();
            let content: Vec<&str> = text.lines().skip(from - 1).take(take).collect();
            Ok(ToolOutput {
                content: json!({"file": file, "total_lines": total, "from_line": from,
                                "content": content.join("\n")})
                .to_string(),
            })
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    /// Words to look for.
    query: String,
    /// Default 10.
    #[serde(default)]
    limit: Option<usize>,
}

/// `memory.search`: ranks memory notes for a query — through the index when there is one, by
/// scanning the files (BM25) otherwise.
#[derive(Debug)]
pub struct MemorySearch {
    spec: ToolSpec,
    mem: Arc<MemoryDir>,
    index: Option<Arc<dyn super::NoteSearch>>,
}

impl MemorySearch {
    /// The tool over `mem`.
    ///
    /// # Errors
    /// Never in practice (literal name).
    pub fn new(
        mem: Arc<MemoryDir>,
        index: Option<Arc<dyn super::NoteSearch>>,
    ) -> Result<Self, IdError> {
        Ok(Self {
            index,
            spec: ToolSpec::for_args::<SearchArgs>(
                "memory.search",
                "Search your memory notes; best matches first, with file and line.",
                Capability::Memory,
                RiskTier::L0ReadOnly,
            )?,
            mem,
        })
    }
}

impl Tool for MemorySearch {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn plan(&self, _ctx: &ToolContext, args: &Value) -> Result<Action, ToolError> {
        let a: SearchArgs = parse_args("memory.search", args)?;
        if a.query.trim().is_empty() {
            return Err(ToolError::InvalidArguments(
                "memory.search: `query` is empty".into(),
            ));
        }
        Ok(self.spec.action(
            RiskTier::L0ReadOnly,
            json!({"query": a.query, "limit": a.limit.unwrap_or(10).clamp(1, 50)}),
        ))
    }

    fn run<'a>(&'a self, _ctx: &'a ToolContext, action: Approved<Action>) -> ToolFuture<'a> {
        let mem = self.mem.clone();
        let index = self.index.clone();
        Box::pin(async move {
            let d = action.action().detail.clone();
            let query = d["query"].as_str().unwrap_or_default().to_owned();
            let limit = usize::try_from(d["limit"].as_u64().unwrap_or(10)).unwrap_or(10);
            let mut notes = Vec::new();
            if let Some(index) = &index {
                match index.search(&query, limit).await {
                    Ok(found) => {
                        return Ok(ToolOutput {
                            content: json!({"results": found.hits, "notes": found.notes})
                                .to_string(),
                        });
                    }
                    Err(e) => notes.push(format!("index unavailable ({e}); files scanned instead")),
                }
            }
            let (hits, skipped) = blocking(move || Ok(search(&mem, &query, limit))).await?;
            notes.extend(skipped.into_iter().map(|s| format!("skipped {s}")));
            Ok(ToolOutput {
                content: json!({"results": hits, "notes": notes}).to_string(),
            })
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AppendArgs {
    /// The note.
    text: String,
    /// A MEMORY.md section.
    #[serde(default)]
    section: Option<String>,
}

/// `memory.append`: adds a note to today's file or to a section of MEMORY.md (L1).
#[derive(Debug)]
pub struct MemoryAppend {
    spec: ToolSpec,
    mem: Arc<MemoryDir>,
}

impl MemoryAppend {
    /// The tool over `mem`.
    ///
    /// # Errors
    /// Never in practice (literal name).
    pub fn new(mem: Arc<MemoryDir>) -> Result<Self, IdError> {
        Ok(Self {
            spec: ToolSpec::for_args::<AppendArgs>(
                "memory.append",
                "Save a note to today's file, or with `section` to MEMORY.md (long-term facts).",
                Capability::Memory,
                RiskTier::L1Mutating,
            )?,
            mem,
        })
    }
}

/// `text` added under `## section` of `doc` (the section is created at the end when missing).
fn add_to_section(doc: &str, section: &str, text: &str) -> String {
    let heading = format!("## {section}");
    let mut lines: Vec<String> = doc.lines().map(str::to_owned).collect();
    let at = lines.iter().position(|l| l.trim() == heading);
    match at {
        Some(i) => {
            let end = lines[i + 1..]
                .iter()
                .position(|l| l.starts_with("## "))
                .map_or(lines.len(), |j| i + 1 + j);
            // Before trailing blank lines of the section.
            let mut insert = end;
            while insert > i + 1 && lines[insert - 1].trim().is_empty() {
                insert -= 1;
            }
            lines.insert(insert, text.to_owned());
        }
        None => {
            if lines.last().is_some_and(|l| !l.trim().is_empty()) {
                lines.push(String::new());
            }
            lines.push(heading);
            lines.push(text.to_owned());
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

impl Tool for MemoryAppend {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn plan(&self, _ctx: &ToolContext, args: &Value) -> Result<Action, ToolError> {
        let a: AppendArgs = parse_args("memory.append", args)?;
        let text = a.text.trim();
        if text.is_empty() || text.len() > MAX_APPEND {
            return Err(ToolError::InvalidArguments(format!(
                "memory.append: `text` must be 1 to {MAX_APPEND} bytes"
            )));
        }
        let section = a
            .section
            .map(|s| s.trim().replace(['\n', '#'], " "))
            .filter(|s| !s.is_empty());
        let file = if section.is_some() {
            LONG_TERM.to_owned()
        } else {
            self.mem.today_file()
        };
        Ok(self.spec.action(
            RiskTier::L1Mutating,
            json!({"file": file, "section": section, "text": text}),
        ))
    }

    fn run<'a>(&'a self, _ctx: &'a ToolContext, action: Approved<Action>) -> ToolFuture<'a> {
        let mem = self.mem.clone();
        Box::pin(async move {
            let d = action.action().detail.clone();
            let file = d["file"].as_str().unwrap_or(LONG_TERM).to_owned();
            let section = d["section"].as_str().map(str::to_owned);
            let text = d["text"].as_str().unwrap_or_default().replace('\n', " ");
            let f = file.clone();
            blocking(move || {
                mem.locked(|| {
                    let doc = mem.read(&f)?.unwrap_or_default();
                    let entry = format!("- {text}");
                    let new = match &section {
                        Some(s) => add_to_section(&doc, s, &entry),
                        None => {
                            let mut d = if doc.is_empty() {
                                format!("# {}\n\n", f.trim_end_matches(".md"))
                            } else {
                                doc
                            };
                            if !d.ends_with('\n') {
                                d.push('\n');
                            }
                            d.push_str(&format!("- [{}] {text}\n", Utc::now().format("%H:%M")));
                            d
                        }
                    };
                    mem.write(&f, &new)
                })
            })
            .await?;
            Ok(ToolOutput {
                content: json!({"file": file, "added": true}).to_string(),
            })
        })
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ForgetArgs {
    /// MEMORY.md, YYYY-MM-DD.md or `today`.
    #[serde(default)]
    file: Option<String>,
    /// Text to match.
    text: String,
}

/// `memory.forget`: removes notes (L2).
#[derive(Debug)]
pub struct MemoryForget {
    spec: ToolSpec,
    mem: Arc<MemoryDir>,
}

impl MemoryForget {
    /// The tool over `mem`.
    ///
    /// # Errors
    /// Never in practice (literal name).
    pub fn new(mem: Arc<MemoryDir>) -> Result<Self, IdError> {
        Ok(Self {
            spec: ToolSpec::for_args::<ForgetArgs>(
                "memory.forget",
                "Remove every line containing `text` from a memory file.",
                Capability::Memory,
                RiskTier::L2Destructive,
            )?,
            mem,
        })
    }
}

impl Tool for MemoryForget {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn plan(&self, _ctx: &ToolContext, args: &Value) -> Result<Action, ToolError> {
        let a: ForgetArgs = parse_args("memory.forget", args)?;
        if a.text.trim().len() < 3 {
            return Err(ToolError::InvalidArguments(
                "memory.forget: `text` must be at least 3 characters".into(),
            ));
        }
        Ok(self.spec.action(
            RiskTier::L2Destructive,
            json!({"file": file_arg(&self.mem, a.file)?, "text": a.text.trim()}),
        ))
    }

    fn run<'a>(&'a self, _ctx: &'a ToolContext, action: Approved<Action>) -> ToolFuture<'a> {
        let mem = self.mem.clone();
        Box::pin(async move {
            let d = action.action().detail.clone();
            let file = d["file"].as_str().unwrap_or(LONG_TERM).to_owned();
            let text = d["text"].as_str().unwrap_or_default().to_owned();
            let f = file.clone();
            let removed = blocking(move || {
                mem.locked(|| {
                    let Some(doc) = mem.read(&f)? else {
                        return Ok(0);
                    };
                    let kept: Vec<&str> = doc.lines().filter(|l| !l.contains(&text)).collect();
                    let removed = doc.lines().count() - kept.len();
                    if removed > 0 {
                        mem.write(&f, &(kept.join("\n") + "\n"))?;
                    }
                    Ok(removed)
                })
            })
            .await?;
            Ok(ToolOutput {
                content: json!({"file": file, "removed_lines": removed}).to_string(),
            })
        })
    }
}
