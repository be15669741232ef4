//! `apply_patch`: multi-file changes in the `*** Begin Patch` format.
//!
//! Parse → resolve → check → apply. Every hunk of every file is matched in memory before
//! anything is written, so a failing hunk changes nothing; if the disk fails part-way through
//! the writes, the files already written are restored.

mod apply;
mod parse;

pub use apply::apply_chunks;
pub use parse::{Chunk, FileOp, ParseError, parse};

use std::collections::BTreeSet;

use pincer_policy::Approved;
use pincer_types::{Action, Capability, IdError, RiskTier};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::fs::path::{components, join};
use crate::fs::{FsScope, WriteMode, sha256_hex};
use crate::tool::parse_args;
use crate::{Tool, ToolContext, ToolError, ToolFuture, ToolOutput, ToolSpec};

const MAX_FILE: u64 = 4 * 1024 * 1024;

/// Arguments of `apply_patch`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Args {
    /// The whole patch.
    patch: String,
}

/// One resolved file change.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Staged {
    Write {
        path: String,
        content: String,
        mode: WriteMode,
        old: Option<Vec<u8>>,
    },
    Remove {
        path: String,
        sha256: String,
        old: Vec<u8>,
    },
}

impl Staged {
    fn summary(&self) -> Value {
        match self {
            Staged::Write {
                path,
                mode: WriteMode::Create,
                content,
                ..
            } => json!({"op": "create", "path": path, "sha256": sha256_hex(content.as_bytes())}),
            Staged::Write {
                path,
                mode: WriteMode::Replace { sha256 },
                content,
                ..
            } => json!({"op": "update", "path": path, "replaces_sha256": sha256,
                        "sha256": sha256_hex(content.as_bytes())}),
            Staged::Remove { path, sha256, .. } => {
                json!({"op": "delete", "path": path, "replaces_sha256": sha256})
            }
        }
    }
}

fn norm(path: &str) -> Result<String, ToolError> {
    Ok(join(&components(path)?))
}

fn existing(fs: &FsScope, path: &str) -> Result<Option<(String, Vec<u8>)>, ToolError> {
    Ok(fs.probe_for_write(path, MAX_FILE)?)
}

/// Resolves every operation against the current files, in memory.
fn stage(fs: &FsScope, ops: &[FileOp]) -> Result<(Vec<Staged>, RiskTier), ToolError> {
    let mut out = Vec::new();
    let mut touched = BTreeSet::new();
    let mut tier = RiskTier::L1Mutating;
    let mut touch = |p: &str| {
        if touched.insert(p.to_owned()) {
            Ok(())
        } else {
            Err(ToolError::InvalidArguments(format!(
                "apply_patch: `{p}` appears more than once in the patch"
            )))
        }
    };
    for op in ops {
        let path = norm(op.path())?;
        touch(&path)?;
        match op {
            FileOp::Add { lines, .. } => {
                if existing(fs, &path)?.is_some() {
                    return Err(ToolError::Failed(format!(
                        "apply_patch: `{path}` already exists; use `*** Update File:`"
                    )));
                }
                let mut content = lines.join("\n");
                content.push('\n');
                out.push(Staged::Write {
                    path,
                    content,
                    mode: WriteMode::Create,
                    old: None,
                });
            }
            FileOp::Delete { .. } => {
                let (sha, old) = existing(fs, &path)?.ok_or_else(|| {
                    ToolError::Failed(format!(
                        "apply_patch: cannot delete `{path}`: it does not exist"
                    ))
                })?;
                tier = RiskTier::L2Destructive;
                out.push(Staged::Remove {
                    path,
                    sha256: sha,
                    old,
                });
            }
            FileOp::Update {
                move_to, chunks, ..
            } => {
                let (sha, old) = existing(fs, &path)?.ok_or_else(|| {
                    ToolError::Failed(format!(
                        "apply_patch: cannot update `{path}`: it does not exist"
                    ))
                })?;
                let text = String::from_utf8(old.clone()).map_err(|_| {
                    ToolError::Failed(format!("apply_patch: `{path}` is not UTF-8 text"))
                })?;
                let content = apply_chunks(&path, &text, chunks).map_err(ToolError::Failed)?;
                match move_to {
                    None => out.push(Staged::Write {
                        path,
                        content,
                        mode: WriteMode::Replace { sha256: sha },
                        old: Some(old),
                    }),
                    Some(to) => {
                        let to = norm(to)?;
                        touch(&to)?;
                        if existing(fs, &to)?.is_some() {
                            return Err(ToolError::Failed(format!(
                                "apply_patch: cannot move `{path}` to `{to}`: the target exists"
                            )));
                        }
                        out.push(Staged::Write {
                            path: to,
                            content,
                            mode: WriteMode::Create,
                            old: None,
                        });
                        out.push(Staged::Remove {
                            path,
                            sha256: sha,
                            old,
                        });
                    }
                }
            }
        }
    }
    // Repository control files (`.git/…`) always need a human (see `fs::path::write_tier`).
    for s in &out {
        let (Staged::Write { path, .. } | Staged::Remove { path, .. }) = s;
        tier = crate::fs::path::write_tier(path, tier);
    }
    Ok((out, tier))
}

/// Writes every staged change; on failure, undoes the ones already done.
fn commit(fs: &FsScope, staged: &[Staged]) -> Result<(), ToolError> {
    for (i, s) in staged.iter().enumerate() {
        let done = match s {
            Staged::Write {
                path,
                content,
                mode,
                ..
            } => fs.write(path, content.as_bytes(), mode),
            Staged::Remove { path, sha256, .. } => fs.remove(path, sha256),
        };
        if let Err(e) = done {
            for prev in staged[..i].iter().rev() {
                let _ = match prev {
                    Staged::Write {
                        path,
                        content,
                        old: None,
                        ..
                    } => fs.remove(path, &sha256_hex(content.as_bytes())),
                    Staged::Write {
                        path,
                        content,
                        old: Some(old),
                        ..
                    } => fs.write(
                        path,
                        old,
                        &WriteMode::Replace {
                            sha256: sha256_hex(content.as_bytes()),
                        },
                    ),
                    Staged::Remove { path, old, .. } => fs.write(path, old, &WriteMode::Create),
                };
            }
            return Err(ToolError::Failed(format!(
                "apply_patch: {e}; the files already changed were restored"
            )));
        }
    }
    Ok(())
}

/// Applies a multi-file patch in the workspace.
#[derive(Debug)]
pub struct ApplyPatch {
    spec: ToolSpec,
}

impl ApplyPatch {
    /// The tool.
    ///
    /// # Errors
    /// Never in practice (literal name).
    pub fn new() -> Result<Self, IdError> {
        Ok(Self {
            spec: ToolSpec::for_args::<Args>(
                "apply_patch",
                "Apply a patch to workspace files. Format:\n*** Begin Patch\n*** Add File: path\n\
                 +line\n*** Delete File: path\n*** Update File: path\n*** Move to: new/path (optional)\n\
                 @@ optional line to anchor on\n context line\n-removed line\n+added line\n\
                 *** End of File (optional)\n*** End Patch\nAll files change or none do.",
                Capability::FsWrite,
                RiskTier::L1Mutating,
            )?,
        })
    }
}

impl Tool for ApplyPatch {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn plan(&self, ctx: &ToolContext, args: &Value) -> Result<Action, ToolError> {
        let a: Args = parse_args("apply_patch", args)?;
        let ops = parse(&a.patch)
            .map_err(|e| ToolError::InvalidArguments(format!("apply_patch: {e}")))?;
        let (staged, tier) = stage(&ctx.fs, &ops)?;
        let files: Vec<Value> = staged.iter().map(Staged::summary).collect();
        Ok(self
            .spec
            .action(tier, json!({"patch": a.patch, "files": files})))
    }

    fn run<'a>(&'a self, ctx: &'a ToolContext, action: Approved<Action>) -> ToolFuture<'a> {
        let fs = ctx.fs.clone();
        Box::pin(async move {
            let d = action.into_inner().detail;
            let patch = d["patch"].as_str().unwrap_or_default().to_owned();
            let approved = d["files"].clone();
            crate::fs::blocking(move || {
                let ops = parse(&patch)
                    .map_err(|e| ToolError::InvalidArguments(format!("apply_patch: {e}")))?;
                let (staged, _) = stage(&fs, &ops)?;
                let files: Vec<Value> = staged.iter().map(Staged::summary).collect();
                if Value::from(files.clone()) != approved {
                    return Err(ToolError::Failed(
                        "apply_patch: the files changed since the patch was approved; nothing was written"
                            .into(),
                    ));
                }
                commit(&fs, &staged)?;
                Ok(ToolOutput {
                    content: json!({"applied": true, "files": files}).to_string(),
                })
            })
            .await
        })
    }
}
