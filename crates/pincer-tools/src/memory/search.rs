//! `memory.search`: BM25 over the lines of every memory file — each non-empty line (a note, a
//! bullet) is a document. Computed per search, in process, with no index to keep in step with
//! the files: edits made in an editor count at once.

use std::future::Future;
use std::pin::Pin;

use super::{LONG_TERM, MemoryDir};

/// What an index-backed search found, and what the caller should know (files skipped, an
/// embeddings server that did not answer).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SearchOutcome {
    /// Best first.
    pub hits: Vec<Hit>,
    /// Notes for the reader.
    pub notes: Vec<String>,
}

/// The future a [`NoteSearch`] returns.
pub type SearchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<SearchOutcome, String>> + Send + 'a>>;

/// An index `memory.search` asks first (full text and, when configured, embeddings); without
/// one, or when it fails, the files are scanned.
pub trait NoteSearch: Send + Sync + std::fmt::Debug {
    /// The best `limit` notes for `query`.
    fn search<'a>(&'a self, query: &'a str, limit: usize) -> SearchFuture<'a>;
}

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

fn words(text: &str) -> impl Iterator<Item = &str> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// Whether word `w` is the (lower-case) term `t`, without allocating for ASCII words.
fn is_term(w: &str, t: &str) -> bool {
    if w.is_ascii() {
        w.len() == t.len() && w.eq_ignore_ascii_case(t)
    } else {
        w.to_lowercase() == t
    }
}

/// One line as a document: file, line number, text, frequency of each query term (by index),
/// length in words.
struct Doc {
    file: String,
    line: usize,
    text: String,
    tf: Vec<u32>,
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
    let mut terms: Vec<String> = words(query).map(str::to_lowercase).collect();
    terms.sort_unstable();
    terms.dedup();
    // Only lines with a query term are kept; every line counts towards N, lengths and df.
    let mut docs: Vec<Doc> = Vec::new();
    let (mut n_docs, mut total_len) = (0usize, 0usize);
    let mut df = vec![0usize; terms.len()];
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
            let mut tf = vec![0u32; terms.len()];
            let mut len = 0;
            for w in words(trimmed) {
                len += 1;
                for (k, t) in terms.iter().enumerate() {
                    if is_term(w, t) {
                        tf[k] += 1;
                    }
                }
            }
            if len == 0 {
                continue;
            }
            n_docs += 1;
            total_len += len;
            for (k, n) in tf.iter().enumerate() {
                df[k] += usize::from(*n > 0);
            }
            if tf.iter().any(|n| *n > 0) {
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
    if docs.is_empty() {
        return (Vec::new(), skipped);
    }
    let n = n_docs as f64;
    let avg = total_len as f64 / n;
    let mut hits: Vec<Hit> = docs
        .into_iter()
        .map(
            |Doc {
                 file,
                 line,
                 text,
                 tf,
                 len,
             }| {
                let score: f64 = tf
                    .iter()
                    .zip(&df)
                    .filter(|(f, _)| **f > 0)
                    .map(|(f, d)| {
                        let (f, d) = (f64::from(*f), *d as f64);
                        let idf = ((n - d + 0.5) / (d + 0.5) + 1.0).ln();
                        idf * f * (K1 + 1.0) / (f + K1 * (1.0 - B + B * len as f64 / avg))
                    })
                    .sum();
                Hit {
                    date: (file != LONG_TERM).then(|| file.trim_end_matches(".md").to_owned()),
                    snippet: text.chars().take(300).collect(),
                    file,
                    line,
                    score,
                }
            },
        )
        .collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(b.date.cmp(&a.date)));
    hits.truncate(limit);
    (hits, skipped)
}
