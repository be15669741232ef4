//! `fs.read`: read a text file by lines, with a size cap and binary detection.

use pincer_policy::Approved;
use pincer_types::{Action, Capability, IdError, RiskTier};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{WORKSPACE, blocking};
use crate::tool::parse_args;
use crate::{Tool, ToolContext, ToolError, ToolFuture, ToolOutput, ToolSpec};

/// Most bytes read from one file.
pub const MAX_READ: u64 = 1024 * 1024;
const DEFAULT_LINES: usize = 2000;

/// Arguments of `fs.read`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {
    /// Path relative to the root.
    path: String,
    /// `workspace` (default) or a granted read-only root.
    #[serde(default)]
    root: Option<String>,
    /// First line, 1-based.
    #[serde(default)]
    offset: Option<usize>,
    /// Default 2000.
    #[serde(default)]
    limit: Option<usize>,
}

/// Reads a file under a granted root.
#[derive(Debug)]
pub struct FsRead {
    spec: ToolSpec,
}

impl FsRead {
    /// The tool.
    ///
    /// # Errors
    /// Never in practice (literal name).
    pub fn new() -> Result<Self, IdError> {
        Ok(Self {
            spec: ToolSpec::for_args::<Args>(
                "fs.read",
                "Read a text file of the workspace (or a granted read-only root): lines \
                 `offset` to `offset+limit`. Binary files are reported, files over 1 MiB cut.",
                Capability::FsRead,
                RiskTier::L0ReadOnly,
            )?,
        })
    }
}

impl Tool for FsRead {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn plan(&self, ctx: &ToolContext, args: &Value) -> Result<Action, ToolError> {
        let a: Args = parse_args("fs.read", args)?;
        let root = a.root.unwrap_or_else(|| WORKSPACE.to_owned());
        let path = ctx.fs.check_read(&root, &a.path)?;
        if a.offset == Some(0) {
            return Err(ToolError::InvalidArguments(
                "fs.read: `offset` is 1-based".into(),
            ));
        }
        Ok(self.spec.action(
            RiskTier::L0ReadOnly,
            json!({"root": root, "path": path, "offset": a.offset.unwrap_or(1),
                   "limit": a.limit.unwrap_or(DEFAULT_LINES)}),
        ))
    }

    fn run<'a>(&'a self, ctx: &'a ToolContext, action: Approved<Action>) -> ToolFuture<'a> {
        let fs = ctx.fs.clone();
        Box::pin(async move {
            let d = &action.action().detail;
            let root = d["root"].as_str().unwrap_or(WORKSPACE).to_owned();
            let path = d["path"].as_str().unwrap_or_default().to_owned();
            let offset = d["offset"].as_u64().unwrap_or(1).max(1);
            let limit = d["limit"].as_u64().unwrap_or(DEFAULT_LINES as u64);
            let data = {
                let (root, path) = (root.clone(), path.clone());
                blocking(move || fs.read(&root, &path, MAX_READ).map_err(Into::into)).await?
            };
            let sniff = &data.bytes[..data.bytes.len().min(8192)];
            let text = match std::str::from_utf8(&data.bytes) {
                Ok(t) if !sniff.contains(&0) => t,
                // A cut in the middle of a multi-byte character at the cap is not binary.
                Err(e)
                    if data.truncated
                        && e.valid_up_to() + 4 > data.bytes.len()
                        && !sniff.contains(&0) =>
                {
                    std::str::from_utf8(&data.bytes[..e.valid_up_to()]).unwrap_or_default()
                }
                _ => {
                    return Ok(ToolOutput {
                        content:
                            json!({"root": root, "path": path, "size": data.size, "binary": true,
                                        "note": "binary file; content not shown"})
                            .to_string(),
                    });
                }
            };
            let skip = usize::try_from(offset - 1).unwrap_or(usize::MAX);
            let take = usize::try_from(limit).unwrap_or(usize::MAX);
            let total = text.lines().count();
            let content: Vec<&str> = text.lines().skip(skip).take(take).collect();
            let end = skip + content.len();
            Ok(ToolOutput {
                content: json!({
                    "root": root, "path": path, "size": data.size,
                    "total_lines": total, "start_line": offset, "end_line": end,
                    "more_lines": end < total, "truncated_at_bytes": data.truncated.then_some(MAX_READ),
                    "content": content.join("\n"),
                })
                .to_string(),
            })
        })
    }
}
