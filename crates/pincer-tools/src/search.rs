//! `code.search`: ripgrep's crates (`ignore` for the walk, `grep-regex` + `grep-searcher` for
//! matching). `.gitignore` is respected (in git repositories or not), hidden files and `.git` are
//! skipped unless asked, symlinks are not followed, and every file is opened through
//! [`FsScope::read`], so the search is confined exactly like `fs.read`.

use std::path::Path;

use grep_regex::RegexMatcherBuilder;
use grep_searcher::{BinaryDetection, SearcherBuilder, Sink, SinkContext, SinkMatch};
use ignore::WalkBuilder;
use ignore::overrides::OverrideBuilder;
use pincer_policy::Approved;
use pincer_types::{Action, Capability, IdError, RiskTier};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::fs::{FsScope, WORKSPACE, blocking};
use crate::tool::parse_args;
use crate::{Tool, ToolContext, ToolError, ToolFuture, ToolOutput, ToolSpec};

const MAX_FILE: u64 = 8 * 1024 * 1024;
const MAX_LINE: usize = 400;

/// Case handling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseMode {
    /// Case-insensitive unless the pattern has an upper-case letter (default).
    #[default]
    Smart,
    /// Exact case.
    Sensitive,
    /// Ignore case.
    Insensitive,
}

/// Arguments of `code.search`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// Rust regex, or plain text with `literal`.
    pub pattern: String,
    /// Match `pattern` as plain text.
    #[serde(default)]
    pub literal: bool,
    /// `smart` (default): case-insensitive unless the pattern has a capital.
    #[serde(default)]
    pub case: Option<CaseMode>,
    /// Directory under the root (default `.`).
    #[serde(default)]
    pub path: Option<String>,
    /// `workspace` (default) or a granted read-only root.
    #[serde(default)]
    pub root: Option<String>,
    /// Globs to include (`*.rs`); `!` excludes (`!target/**`).
    #[serde(default)]
    pub globs: Vec<String>,
    /// Lines around each match, 0-10.
    #[serde(default)]
    pub context: u8,
    /// Default 100, at most 1000.
    #[serde(default)]
    pub max_results: Option<usize>,
    /// Include dot files (never `.git`).
    #[serde(default)]
    pub hidden: bool,
}

/// One output line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    /// File, relative to the root.
    pub path: String,
    /// 1-based line number.
    pub line: u64,
    /// The line (clipped to 400 bytes).
    pub text: String,
    /// A context line rather than a match.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub context: bool,
}

/// The result of a search.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SearchResult {
    /// Matching (and context) lines, by file then line.
    pub hits: Vec<Hit>,
    /// Matching lines found (not counting context).
    pub matches: usize,
    /// Files opened and searched.
    pub files_searched: usize,
    /// Whether `max_results` cut the search short.
    pub truncated: bool,
}

struct Collect<'a> {
    path: &'a str,
    out: &'a mut SearchResult,
    max: usize,
}

fn clip(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let s = s.trim_end_matches(['\n', '\r']);
    if s.len() > MAX_LINE {
        format!("{}…", &s[..s.floor_char_boundary(MAX_LINE)])
    } else {
        s.to_owned()
    }
}

impl Sink for Collect<'_> {
    type Error = std::io::Error;

    fn matched(
        &mut self,
        _: &grep_searcher::Searcher,
        m: &SinkMatch<'_>,
    ) -> Result<bool, Self::Error> {
        if self.out.matches >= self.max {
            self.out.truncated = true;
            return Ok(false);
        }
        self.out.matches += 1;
        self.out.hits.push(Hit {
            path: self.path.to_owned(),
            line: m.line_number().unwrap_or(0),
            text: clip(m.bytes()),
            context: false,
        });
        Ok(true)
    }

    fn context(
        &mut self,
        _: &grep_searcher::Searcher,
        c: &SinkContext<'_>,
    ) -> Result<bool, Self::Error> {
        self.out.hits.push(Hit {
            path: self.path.to_owned(),
            line: c.line_number().unwrap_or(0),
            text: clip(c.bytes()),
            context: true,
        });
        Ok(true)
    }
}

/// Runs a search under `fs`. Public for the bench harness.
///
/// # Errors
/// [`ToolError`] for a bad pattern or glob, or a confinement violation of the base directory.
pub fn search(fs: &FsScope, args: &SearchArgs) -> Result<SearchResult, ToolError> {
    let root = args.root.as_deref().unwrap_or(WORKSPACE);
    let base = fs.search_base(root, args.path.as_deref().unwrap_or("."))?;
    let root_host = fs
        .root_path(root)
        .ok_or_else(|| ToolError::Internal("root vanished".into()))?
        .to_owned();
    let matcher = RegexMatcherBuilder::new()
        .case_smart(args.case.unwrap_or_default() == CaseMode::Smart)
        .case_insensitive(args.case == Some(CaseMode::Insensitive))
        .fixed_strings(args.literal)
        .line_terminator(Some(b'\n'))
        .build(&args.pattern)
        .map_err(|e| ToolError::InvalidArguments(format!("code.search: bad pattern: {e}")))?;
    let mut overrides = OverrideBuilder::new(&base);
    for g in &args.globs {
        overrides.add(g).map_err(|e| {
            ToolError::InvalidArguments(format!("code.search: bad glob `{g}`: {e}"))
        })?;
    }
    let overrides = overrides
        .build()
        .map_err(|e| ToolError::InvalidArguments(format!("code.search: bad globs: {e}")))?;
    let context = usize::from(args.context.min(10));
    let mut searcher = SearcherBuilder::new()
        .line_number(true)
        .before_context(context)
        .after_context(context)
        .binary_detection(BinaryDetection::quit(0))
        .build();
    let max = args.max_results.unwrap_or(100).clamp(1, 1000);
    let walk = WalkBuilder::new(&base)
        .hidden(!args.hidden)
        .git_ignore(true)
        .git_exclude(true)
        .ignore(true)
        .parents(true)
        .require_git(false)
        .follow_links(false)
        .max_filesize(Some(MAX_FILE))
        .overrides(overrides)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(|e| e.file_name() != ".git")
        .build();
    let reader = fs.reader(root)?;
    let mut out = SearchResult::default();
    for entry in walk {
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Some(rel) = relative(&root_host, entry.path()) else {
            continue;
        };
        // The walk only proposes names; the bytes come through the confined reader.
        let Ok(data) = reader.read(&rel, MAX_FILE) else {
            continue;
        };
        out.files_searched += 1;
        let sink = Collect {
            path: &rel,
            out: &mut out,
            max,
        };
        let _ = searcher.search_slice(&matcher, &data.bytes, sink);
        if out.truncated {
            break;
        }
    }
    Ok(out)
}

fn relative(root: &Path, p: &Path) -> Option<String> {
    p.strip_prefix(root).ok()?.to_str().map(str::to_owned)
}

/// Searches file contents under a granted root.
#[derive(Debug)]
pub struct CodeSearch {
    spec: ToolSpec,
}

impl CodeSearch {
    /// The tool.
    ///
    /// # Errors
    /// Never in practice (literal name).
    pub fn new() -> Result<Self, IdError> {
        Ok(Self {
            spec: ToolSpec::for_args::<SearchArgs>(
                "code.search",
                "Search file contents like ripgrep (honours .gitignore; skips hidden and binary \
                 files).",
                Capability::FsRead,
                RiskTier::L0ReadOnly,
            )?,
        })
    }
}

impl Tool for CodeSearch {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn plan(&self, ctx: &ToolContext, args: &Value) -> Result<Action, ToolError> {
        let mut a: SearchArgs = parse_args("code.search", args)?;
        if a.pattern.is_empty() {
            return Err(ToolError::InvalidArguments(
                "code.search: `pattern` must not be empty".into(),
            ));
        }
        let root = a.root.clone().unwrap_or_else(|| WORKSPACE.to_owned());
        a.path = Some(ctx.fs.check_dir(&root, a.path.as_deref().unwrap_or("."))?);
        a.root = Some(root);
        let detail = serde_json::to_value(&a).map_err(|e| ToolError::Internal(e.to_string()))?;
        Ok(self.spec.action(RiskTier::L0ReadOnly, detail))
    }

    fn run<'a>(&'a self, ctx: &'a ToolContext, action: Approved<Action>) -> ToolFuture<'a> {
        let fs = ctx.fs.clone();
        Box::pin(async move {
            let args: SearchArgs = serde_json::from_value(action.into_inner().detail)
                .map_err(|e| ToolError::Internal(e.to_string()))?;
            let result = blocking(move || search(&fs, &args)).await?;
            Ok(ToolOutput {
                content: serde_json::to_string(&result)
                    .map_err(|e| ToolError::Internal(e.to_string()))?,
            })
        })
    }
}
