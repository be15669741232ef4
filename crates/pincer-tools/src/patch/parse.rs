//! Parsing the `*** Begin Patch` format (as used by Codex and OpenClaw).
//!
//! ```text
//! *** Begin Patch
//! *** Add File: path        (+ lines follow)
//! *** Delete File: path
//! *** Update File: path
//! *** Move to: new/path     (optional, right after Update)
//! @@ optional anchor line
//!  context
//! -removed
//! +added
//! *** End of File           (optional: the chunk ends at the end of the file)
//! *** End Patch
//! ```

/// One file operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOp {
    /// Create a file with these lines.
    Add {
        /// Path.
        path: String,
        /// Content lines (without the `+`).
        lines: Vec<String>,
    },
    /// Delete a file.
    Delete {
        /// Path.
        path: String,
    },
    /// Change (and maybe move) a file.
    Update {
        /// Path.
        path: String,
        /// New path, if moved.
        move_to: Option<String>,
        /// The chunks, in file order.
        chunks: Vec<Chunk>,
    },
}

impl FileOp {
    /// The path the operation reads or creates.
    pub fn path(&self) -> &str {
        match self {
            Self::Add { path, .. } | Self::Delete { path } | Self::Update { path, .. } => path,
        }
    }
}

/// One `@@` chunk of an update.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chunk {
    /// The text after `@@`, used to find the region (may be empty).
    pub anchor: Option<String>,
    /// Lines that must be present (context and removed), in order.
    pub old: Vec<String>,
    /// Lines that replace them (context and added), in order.
    pub new: Vec<String>,
    /// The chunk ends at the end of the file.
    pub eof: bool,
    /// The chunk as written in the patch, for error messages.
    pub text: String,
    /// 1-based line number in the patch where the chunk starts.
    pub patch_line: usize,
}

/// A parse error with the patch line it refers to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("patch line {line}: {message}")]
pub struct ParseError {
    /// 1-based line in the patch.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn err(line: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// Parses a whole patch.
///
/// # Errors
/// [`ParseError`] naming the first bad line.
pub fn parse(patch: &str) -> Result<Vec<FileOp>, ParseError> {
    let lines: Vec<&str> = patch.trim().lines().collect();
    if lines.first().map(|l| l.trim_end()) != Some("*** Begin Patch") {
        return Err(err(1, "the patch must start with `*** Begin Patch`"));
    }
    if lines.len() < 2 || lines.last().map(|l| l.trim_end()) != Some("*** End Patch") {
        return Err(err(lines.len(), "the patch must end with `*** End Patch`"));
    }
    let body = &lines[1..lines.len() - 1];
    let mut ops = Vec::new();
    let mut i = 0;
    while i < body.len() {
        let n = i + 2; // 1-based patch line of body[i]
        let line = body[i].trim_end();
        if let Some(path) = line.strip_prefix("*** Add File: ") {
            i += 1;
            let mut content = Vec::new();
            while i < body.len() && !body[i].starts_with("*** ") {
                match body[i].strip_prefix('+') {
                    Some(l) => content.push(l.to_owned()),
                    None => return Err(err(i + 2, "lines of an added file must start with `+`")),
                }
                i += 1;
            }
            ops.push(FileOp::Add {
                path: path.trim().to_owned(),
                lines: content,
            });
        } else if let Some(path) = line.strip_prefix("*** Delete File: ") {
            ops.push(FileOp::Delete {
                path: path.trim().to_owned(),
            });
            i += 1;
        } else if let Some(path) = line.strip_prefix("*** Update File: ") {
            i += 1;
            let mut move_to = None;
            if let Some(to) = body
                .get(i)
                .and_then(|l| l.trim_end().strip_prefix("*** Move to: "))
            {
                move_to = Some(to.trim().to_owned());
                i += 1;
            }
            let (chunks, next) = parse_chunks(body, i)?;
            i = next;
            if chunks.is_empty() && move_to.is_none() {
                return Err(err(
                    n,
                    format!("`*** Update File: {}` has no changes", path.trim()),
                ));
            }
            ops.push(FileOp::Update {
                path: path.trim().to_owned(),
                move_to,
                chunks,
            });
        } else if line.is_empty() {
            i += 1;
        } else {
            return Err(err(
                n,
                format!(
                    "expected `*** Add File:`, `*** Delete File:` or `*** Update File:`, found `{line}`"
                ),
            ));
        }
    }
    if ops.is_empty() {
        return Err(err(1, "the patch changes no files"));
    }
    Ok(ops)
}

/// Parses chunks from `body[start..]` up to the next file header.
fn parse_chunks(body: &[&str], start: usize) -> Result<(Vec<Chunk>, usize), ParseError> {
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut cur: Option<Chunk> = None;
    let mut i = start;
    while i < body.len() {
        let raw = body[i];
        let trimmed = raw.trim_end();
        if trimmed.starts_with("*** ") && trimmed != "*** End of File" {
            break;
        }
        if trimmed == "*** End of File" {
            match cur.as_mut() {
                Some(c) => c.eof = true,
                None => return Err(err(i + 2, "`*** End of File` outside a chunk")),
            }
            i += 1;
            continue;
        }
        if let Some(anchor) = trimmed.strip_prefix("@@") {
            if let Some(c) = cur.take() {
                chunks.push(c);
            }
            let anchor = anchor.trim();
            cur = Some(Chunk {
                anchor: (!anchor.is_empty()).then(|| anchor.to_owned()),
                text: format!("{trimmed}\n"),
                patch_line: i + 2,
                ..Chunk::default()
            });
            i += 1;
            continue;
        }
        let c = cur.get_or_insert_with(|| Chunk {
            patch_line: i + 2,
            ..Chunk::default()
        });
        if c.eof {
            return Err(err(
                i + 2,
                "lines after `*** End of File` in the same chunk",
            ));
        }
        c.text.push_str(raw);
        c.text.push('\n');
        match raw.chars().next() {
            Some('+') => c.new.push(raw[1..].to_owned()),
            Some('-') => c.old.push(raw[1..].to_owned()),
            Some(' ') => {
                c.old.push(raw[1..].to_owned());
                c.new.push(raw[1..].to_owned());
            }
            // An empty line inside a chunk is an empty context line (editors strip the space).
            None => {
                c.old.push(String::new());
                c.new.push(String::new());
            }
            Some(_) => {
                return Err(err(
                    i + 2,
                    format!("chunk lines must start with ' ', '+' or '-', found `{trimmed}`"),
                ));
            }
        }
        i += 1;
    }
    if let Some(c) = cur {
        chunks.push(c);
    }
    Ok((chunks, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_operation() {
        let p = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** Delete File: b.txt\n\
                 *** Update File: c.txt\n*** Move to: d.txt\n@@ fn main\n ctx\n-old\n+new\n\
                 *** End of File\n*** End Patch\n";
        let ops = parse(p).unwrap();
        assert_eq!(ops.len(), 3);
        match &ops[2] {
            FileOp::Update {
                move_to, chunks, ..
            } => {
                assert_eq!(move_to.as_deref(), Some("d.txt"));
                assert_eq!(chunks[0].anchor.as_deref(), Some("fn main"));
                assert_eq!(chunks[0].old, ["ctx", "old"]);
                assert_eq!(chunks[0].new, ["ctx", "new"]);
                assert!(chunks[0].eof);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_patches_name_the_line() {
        assert_eq!(parse("hello").unwrap_err().line, 1);
        let e = parse("*** Begin Patch\n*** Frobnicate: x\n*** End Patch").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse("*** Begin Patch\n*** Add File: x\nno plus\n*** End Patch").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(parse("*** Begin Patch\n*** End Patch").is_err());
    }
}
