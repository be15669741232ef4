//! `fs.list`: list a directory tree with depth and entry limits.

use pincer_policy::Approved;
use pincer_types::{Action, Capability, IdError, RiskTier};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{WORKSPACE, blocking};
use crate::tool::parse_args;
use crate::{Tool, ToolContext, ToolError, ToolFuture, ToolOutput, ToolSpec};

const MAX_DEPTH: u32 = 8;
const MAX_ENTRIES: usize = 5000;

/// Arguments of `fs.list`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {
    /// Directory under the root (default `.`).
    #[serde(default)]
    path: Option<String>,
    /// `workspace` (default) or a granted read-only root.
    #[serde(default)]
    root: Option<String>,
    /// 1-8, default 2.
    #[serde(default)]
    depth: Option<u32>,
    /// Default 500, at most 5000.
    #[serde(default)]
    limit: Option<usize>,
}

/// Lists files under a granted root.
#[derive(Debug)]
pub struct FsList {
    spec: ToolSpec,
}

impl FsList {
    /// The tool.
    ///
    /// # Errors
    /// Never in practice (literal name).
    pub fn new() -> Result<Self, IdError> {
        Ok(Self {
            spec: ToolSpec::for_args::<Args>(
                "fs.list",
                "List a directory, `depth` levels deep, by name. Links are shown, not followed.",
                Capability::FsRead,
                RiskTier::L0ReadOnly,
            )?,
        })
    }
}

impl Tool for FsList {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn plan(&self, ctx: &ToolContext, args: &Value) -> Result<Action, ToolError> {
        let a: Args = parse_args("fs.list", args)?;
        let root = a.root.unwrap_or_else(|| WORKSPACE.to_owned());
        let path = ctx.fs.check_dir(&root, a.path.as_deref().unwrap_or("."))?;
        let depth = a.depth.unwrap_or(2);
        if !(1..=MAX_DEPTH).contains(&depth) {
            return Err(ToolError::InvalidArguments(format!(
                "fs.list: `depth` must be 1..={MAX_DEPTH}"
            )));
        }
        let limit = a.limit.unwrap_or(500).clamp(1, MAX_ENTRIES);
        Ok(self.spec.action(
            RiskTier::L0ReadOnly,
            json!({"root": root, "path": path, "depth": depth, "limit": limit}),
        ))
    }

    fn run<'a>(&'a self, ctx: &'a ToolContext, action: Approved<Action>) -> ToolFuture<'a> {
        let fs = ctx.fs.clone();
        Box::pin(async move {
            let d = &action.action().detail;
            let root = d["root"].as_str().unwrap_or(WORKSPACE).to_owned();
            let path = d["path"].as_str().unwrap_or(".").to_owned();
            let depth = u32::try_from(d["depth"].as_u64().unwrap_or(2)).unwrap_or(2);
            let limit = usize::try_from(d["limit"].as_u64().unwrap_or(500)).unwrap_or(500);
            let listing = {
                let (root, path) = (root.clone(), path.clone());
                blocking(move || fs.list(&root, &path, depth, limit).map_err(Into::into)).await?
            };
            Ok(ToolOutput {
                content: json!({"root": root, "path": path, "entries": listing.entries,
                                "truncated": listing.truncated})
                .to_string(),
            })
        })
    }
}
