//! Applying update chunks to a file's text, with tolerant matching: exact first, then ignoring
//! trailing whitespace, then surrounding whitespace, then Unicode punctuation look-alikes
//! (curly quotes, dashes, non-breaking spaces) folded to ASCII.

use super::parse::Chunk;

/// Folds punctuation look-alikes to ASCII.
fn fold(s: &str) -> String {
    s.trim()
        .chars()
        .map(|c| match c {
            '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' => '\'',
            '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' => '"',
            '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2015}'
            | '\u{2212}' => '-',
            '\u{00A0}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => ' ',
            c => c,
        })
        .collect()
}

type Eq = fn(&str, &str) -> bool;

const PASSES: [Eq; 4] = [
    |a, b| a == b,
    |a, b| a.trim_end() == b.trim_end(),
    |a, b| a.trim() == b.trim(),
    |a, b| fold(a) == fold(b),
];

/// Where `pattern` occurs in `lines` at or after `start` (preferring the end for `eof`).
fn seek(lines: &[String], pattern: &[String], start: usize, eof: bool) -> Option<usize> {
    if pattern.len() > lines.len() {
        return None;
    }
    let last = lines.len() - pattern.len();
    for eq in PASSES {
        let at = |i: usize| pattern.iter().zip(&lines[i..]).all(|(p, l)| eq(l, p));
        if eof && last >= start && at(last) {
            return Some(last);
        }
        if let Some(i) = (start..=last).find(|&i| at(i)) {
            return Some(i);
        }
    }
    None
}

/// Applies `chunks` to `text`. The error names the hunk that failed and shows it.
///
/// # Errors
/// A message for the model when a hunk's lines cannot be found.
pub fn apply_chunks(path: &str, text: &str, chunks: &[Chunk]) -> Result<String, String> {
    let crlf = text.contains("\r\n");
    let had_newline = text.is_empty() || text.ends_with('\n');
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut edits: Vec<(usize, usize, &[String])> = Vec::new();
    let mut cursor = 0;
    for (n, chunk) in chunks.iter().enumerate() {
        let fail = |what: &str| {
            format!(
                "apply_patch: {what} for hunk {} of `{path}` (patch line {}); nothing was changed:\n{}",
                n + 1,
                chunk.patch_line,
                chunk.text
            )
        };
        if let Some(anchor) = &chunk.anchor {
            let found = (cursor..lines.len()).find(|&i| fold(&lines[i]) == fold(anchor));
            match found {
                Some(i) => cursor = i + 1,
                None => return Err(fail(&format!("could not find the `@@ {anchor}` line"))),
            }
        }
        if chunk.old.is_empty() {
            let at = if chunk.anchor.is_some() && !chunk.eof {
                cursor
            } else {
                lines.len()
            };
            edits.push((at, 0, &chunk.new));
            cursor = at;
            continue;
        }
        let Some(at) = seek(&lines, &chunk.old, cursor, chunk.eof) else {
            return Err(fail("could not find the context and removed lines"));
        };
        edits.push((at, chunk.old.len(), &chunk.new));
        cursor = at + chunk.old.len();
    }
    for (at, len, new) in edits.into_iter().rev() {
        lines.splice(at..at + len, new.iter().cloned());
    }
    let sep = if crlf { "\r\n" } else { "\n" };
    let mut out = lines.join(sep);
    if had_newline && !out.is_empty() {
        out.push_str(sep);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(old: &[&str], new: &[&str]) -> Chunk {
        Chunk {
            old: old.iter().map(|s| (*s).to_owned()).collect(),
            new: new.iter().map(|s| (*s).to_owned()).collect(),
            ..Chunk::default()
        }
    }

    #[test]
    fn tolerant_matching() {
        let text = "let s = \u{201C}hi\u{201D};   \nnext\n";
        let out = apply_chunks(
            "f",
            text,
            &[chunk(&["let s = \"hi\";"], &["let s = \"yo\";"])],
        )
        .unwrap();
        assert_eq!(out, "let s = \"yo\";\nnext\n");
    }

    #[test]
    fn missing_context_names_the_hunk() {
        let e = apply_chunks("f.rs", "a\nb\n", &[chunk(&["zzz"], &["y"])]).unwrap_err();
        assert!(e.contains("hunk 1 of `f.rs`"), "{e}");
    }

    #[test]
    fn keeps_crlf_and_missing_final_newline() {
        assert_eq!(
            apply_chunks("f", "a\r\nb\r\n", &[chunk(&["b"], &["c"])]).unwrap(),
            "a\r\nc\r\n"
        );
        assert_eq!(
            apply_chunks("f", "a\nb", &[chunk(&["b"], &["c"])]).unwrap(),
            "a\nc"
        );
    }
}
