//! `fs.write`: create or overwrite a workspace file. Creating is `L1_MUTATING`; overwriting an
//! existing file is `L2_DESTRUCTIVE`, and the approval binds to the content being replaced.

use pincer_policy::Approved;
use pincer_types::{Action, Capability, IdError, RiskTier};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{WriteMode, blocking, sha256_hex};
use crate::tool::parse_args;
use crate::{Tool, ToolContext, ToolError, ToolFuture, ToolOutput, ToolSpec};

/// Largest file the file tools write or rewrite.
pub const MAX_WRITE: u64 = 4 * 1024 * 1024;

/// Arguments of `fs.write`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {
    /// Path relative to the workspace; parents are created.
    path: String,
    /// The whole new content.
    content: String,
}

/// Writes a whole file in the workspace.
#[derive(Debug)]
pub struct FsWrite {
    spec: ToolSpec,
}

impl FsWrite {
    /// The tool.
    ///
    /// # Errors
    /// Never in practice (literal name).
    pub fn new() -> Result<Self, IdError> {
        Ok(Self {
            spec: ToolSpec::for_args::<Args>(
                "fs.write",
                "Create a workspace file or replace its whole content (replacing may need \
                 approval). To change a file prefer fs_edit or apply_patch.",
                Capability::FsWrite,
                RiskTier::L1Mutating,
            )?,
        })
    }
}

/// Plans a whole-file write: create (L1) or replace (L2).
pub(crate) fn plan_write(
    spec: &ToolSpec,
    ctx: &ToolContext,
    path: &str,
    content: &str,
) -> Result<Action, ToolError> {
    if content.len() as u64 > MAX_WRITE {
        return Err(ToolError::InvalidArguments(format!(
            "content is {} bytes; the limit is {MAX_WRITE}",
            content.len()
        )));
    }
    let shown = super::path::join(&super::path::components(path).map_err(ToolError::from)?);
    let existing = ctx.fs.probe_for_write(path, MAX_WRITE)?;
    let (tier, replaces) = match &existing {
        None => (RiskTier::L1Mutating, Value::Null),
        Some((sha, _)) => (RiskTier::L2Destructive, Value::from(sha.as_str())),
    };
    Ok(spec.action(
        super::path::write_tier(&shown, tier),
        json!({"path": shown, "operation": if existing.is_some() { "overwrite" } else { "create" },
               "replaces_sha256": replaces, "bytes": content.len(),
               "sha256": sha256_hex(content.as_bytes()), "content": content}),
    ))
}

impl Tool for FsWrite {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn plan(&self, ctx: &ToolContext, args: &Value) -> Result<Action, ToolError> {
        let a: Args = parse_args("fs.write", args)?;
        plan_write(&self.spec, ctx, &a.path, &a.content)
    }

    fn run<'a>(&'a self, ctx: &'a ToolContext, action: Approved<Action>) -> ToolFuture<'a> {
        let fs = ctx.fs.clone();
        Box::pin(async move {
            let d = action.into_inner().detail;
            let path = d["path"].as_str().unwrap_or_default().to_owned();
            let content = d["content"].as_str().unwrap_or_default().to_owned();
            let mode = match d["replaces_sha256"].as_str() {
                Some(sha) => WriteMode::Replace {
                    sha256: sha.to_owned(),
                },
                None => WriteMode::Create,
            };
            let created = mode == WriteMode::Create;
            let p = path.clone();
            let bytes = content.len();
            blocking(move || fs.write(&p, content.as_bytes(), &mode).map_err(Into::into)).await?;
            Ok(ToolOutput {
                content: json!({"path": path, "bytes": bytes, "created": created}).to_string(),
            })
        })
    }
}
