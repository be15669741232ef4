//! `fs.edit`: exact-match replace in a workspace file. Refuses a match that is missing or
//! ambiguous, so an edit never lands somewhere the model did not mean.

use pincer_policy::Approved;
use pincer_types::{Action, Capability, IdError, RiskTier};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::write::MAX_WRITE;
use super::{WriteMode, blocking};
use crate::tool::parse_args;
use crate::{Tool, ToolContext, ToolError, ToolFuture, ToolOutput, ToolSpec};

/// Arguments of `fs.edit`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {
    /// File path relative to the workspace.
    path: String,
    /// Exact text to find.
    old_string: String,
    /// Replacement text.
    new_string: String,
    /// Replace every occurrence.
    #[serde(default)]
    replace_all: bool,
}

/// Replaces exact text in a workspace file.
#[derive(Debug)]
pub struct FsEdit {
    spec: ToolSpec,
}

impl FsEdit {
    /// The tool.
    ///
    /// # Errors
    /// Never in practice (literal name).
    pub fn new() -> Result<Self, IdError> {
        Ok(Self {
            spec: ToolSpec::for_args::<Args>(
                "fs.edit",
                "Replace exact text in a workspace file. `old_string` must occur exactly once \
                 (add surrounding lines to make it unique) unless `replace_all`.",
                Capability::FsWrite,
                RiskTier::L1Mutating,
            )?,
        })
    }
}

/// Applies the edit to `text`, or says why it cannot.
fn apply(text: &str, old: &str, new: &str, all: bool) -> Result<(String, usize), ToolError> {
    if old.is_empty() {
        return Err(ToolError::InvalidArguments(
            "fs.edit: `old_string` must not be empty".into(),
        ));
    }
    let n = text.matches(old).count();
    match n {
        0 => Err(ToolError::Failed(
            "fs.edit: `old_string` was not found; read the file and copy the text exactly".into(),
        )),
        n if n > 1 && !all => Err(ToolError::Failed(format!(
            "fs.edit: `old_string` matches {n} places; add surrounding lines to make it unique, \
             or set replace_all"
        ))),
        n => Ok((text.replace(old, new), n)),
    }
}

impl Tool for FsEdit {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn plan(&self, ctx: &ToolContext, args: &Value) -> Result<Action, ToolError> {
        let a: Args = parse_args("fs.edit", args)?;
        let shown = super::path::join(&super::path::components(&a.path)?);
        let (sha, bytes) = ctx
            .fs
            .probe_for_write(&a.path, MAX_WRITE)?
            .ok_or_else(|| ToolError::Failed(format!("fs.edit: `{shown}` does not exist")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| ToolError::Failed(format!("fs.edit: `{shown}` is not UTF-8 text")))?;
        let (_, n) = apply(&text, &a.old_string, &a.new_string, a.replace_all)?;
        Ok(self.spec.action(
            super::path::write_tier(&shown, RiskTier::L1Mutating),
            json!({"path": shown, "replaces_sha256": sha, "old_string": a.old_string,
                   "new_string": a.new_string, "replace_all": a.replace_all, "occurrences": n}),
        ))
    }

    fn run<'a>(&'a self, ctx: &'a ToolContext, action: Approved<Action>) -> ToolFuture<'a> {
        let fs = ctx.fs.clone();
        Box::pin(async move {
            let d = action.into_inner().detail;
            let path = d["path"].as_str().unwrap_or_default().to_owned();
            let sha = d["replaces_sha256"].as_str().unwrap_or_default().to_owned();
            let old = d["old_string"].as_str().unwrap_or_default().to_owned();
            let new = d["new_string"].as_str().unwrap_or_default().to_owned();
            let all = d["replace_all"].as_bool().unwrap_or(false);
            let p = path.clone();
            let n = blocking(move || {
                let (cur_sha, bytes) = fs
                    .probe_for_write(&p, MAX_WRITE)?
                    .ok_or_else(|| ToolError::Failed(format!("`{p}` no longer exists")))?;
                if cur_sha != sha {
                    return Err(super::FsError::Changed(p).into());
                }
                let text = String::from_utf8(bytes)
                    .map_err(|_| ToolError::Failed(format!("`{p}` is not UTF-8 text")))?;
                let (updated, n) = apply(&text, &old, &new, all)?;
                if updated.len() as u64 > MAX_WRITE {
                    return Err(ToolError::Failed(format!(
                        "result exceeds {MAX_WRITE} bytes"
                    )));
                }
                fs.write(
                    &p,
                    updated.as_bytes(),
                    &WriteMode::Replace { sha256: cur_sha },
                )?;
                Ok(n)
            })
            .await?;
            Ok(ToolOutput {
                content: json!({"path": path, "replacements": n}).to_string(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_refuses_missing_and_ambiguous_matches() {
        assert!(apply("a b a", "a", "x", false).is_err());
        assert_eq!(apply("a b a", "a", "x", true).unwrap(), ("x b x".into(), 2));
        assert!(apply("abc", "zz", "x", false).is_err());
        assert!(apply("abc", "", "x", false).is_err());
        assert_eq!(apply("abc", "b", "B", false).unwrap().0, "aBc");
    }
}
