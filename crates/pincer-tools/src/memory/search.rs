//! `memory.search`: BM25 over the lines of every memory file — each non-empty line (a note, a
//! bullet) is a document. Computed per search, in process, with no index to keep in step with
//! the files: edits made in an editor count at once.

use std::collections::HashMap;

use super::{LONG_TERM, MemoryDir};

/// One result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    /// The file (`MEMORY.md`, `2026-12-04.md`).
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// The note's date (daily notes only).
    pub date: Option<String>,
    /// The line, cut to 300 characters.
    pub snippet: String,
    /// BM25 score.
    pub score: f64,
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// One line as a document: file, line number, text, term frequencies of the query's terms,
/// length in words.
struct Doc {
    file: String,
    line: usize,
    text: String,
    tf: HashMap<String, u32>,
    len: usize,
}

const K1: f64 = 1.2;
const B: f64 = 0.75;

/// The best `limit` lines for `query`, and the files skipped (unreadable, too large, links).
#[allow(
    clippy::cast_precision_loss,
    reason = "document counts and lengths are far below 2^52"
)]
pub fn search(mem: &MemoryDir, query: &str, limit: usize) -> (Vec<Hit>, Vec<String>) {
    let terms: Vec<String> = words(query).collect();
    let mut docs: Vec<Doc> = Vec::new();
    let mut skipped = Vec::new();
    for file in mem.files() {
        let text = match mem.read(&file) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => {
                skipped.push(format!("{file}: {e}"));
                continue;
            }
        };
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') && trimmed.len() < 3 {
                continue;
            }
            let mut tf: HashMap<String, u32> = HashMap::new();
            let mut len = 0;
            for w in words(trimmed) {
                len += 1;
                if terms.contains(&w) {
                    *tf.entry(w).or_default() += 1;
                }
            }
            if len > 0 {
                docs.push(Doc {
                    file: file.clone(),
                    line: i + 1,
                    text: trimmed.to_owned(),
                    tf,
                    len,
                });
            }
        }
    }
    if docs.is_empty() || terms.is_empty() {
        return (Vec::new(), skipped);
    }
    let n = docs.len() as f64;
    let avg = docs.iter().map(|d| d.len).sum::<usize>() as f64 / n;
    let df: HashMap<&str, f64> = terms
        .iter()
        .map(|t| {
            let c = docs.iter().filter(|d| d.tf.contains_key(t)).count() as f64;
            (t.as_str(), c)
        })
        .collect();
    let mut hits: Vec<Hit> = docs
        .into_iter()
        .filter_map(
            |Doc {
                 file,
                 line,
                 text,
                 tf,
                 len,
             }| {
                let score: f64 = terms
                    .iter()
                    .filter_map(|t| {
                        let f = f64::from(*tf.get(t)?);
                        let d = df.get(t.as_str()).copied().unwrap_or(0.0);
                        let idf = ((n - d + 0.5) / (d + 0.5) + 1.0).ln();
                        Some(idf * f * (K1 + 1.0) / (f + K1 * (1.0 - B + B * len as f64 / avg)))
                    })
                    .sum();
                (score > 0.0).then(|| Hit {
                    date: (file != LONG_TERM).then(|| file.trim_end_matches(".md").to_owned()),
                    snippet: text.chars().take(300).collect(),
                    file,
                    line,
                    score,
                })
            },
        )
        .collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(b.date.cmp(&a.date)));
    hits.truncate(limit);
    (hits, skipped)
}
