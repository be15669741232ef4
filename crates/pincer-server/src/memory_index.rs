//! The memory search index of one agent (A7): its memory files and past conversations kept in
//! the store's [`pincer_store::NoteIndex`], searched by full text and — with `[memory] embeddings_*` — by vector
//! similarity, the two rankings merged by reciprocal rank fusion.
//!
//! The index follows the files: before each search every memory file is compared by modification
//! time and size with what was indexed, and a changed one (an edit in an editor too) is read,
//! hashed and re-indexed; a removed one is dropped. A file that is a symlink, larger than the
//! limit or not valid UTF-8 is skipped with a note, never followed. When the embeddings server
//! does not answer, keyword results come back alone, with a note saying so.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pincer_config::MemoryConfig;
use pincer_store::{Backend, Note, query_terms};
use pincer_tools::memory::{Hit, LONG_TERM, MemoryDir, NoteSearch, SearchFuture, SearchOutcome};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::Env;

/// The reciprocal-rank-fusion constant.
const RRF_K: f64 = 60.0;
/// Messages per indexed piece of a conversation: a growing chat re-indexes only its last piece.
const SESSION_CHUNK: usize = 50;

/// The configured embeddings model ([`pincer_providers::EmbeddingsClient`]), if any.
#[derive(Debug, Clone)]
pub struct Embedder(pincer_providers::EmbeddingsClient);

impl Embedder {
    /// The configured embeddings model, if any.
    ///
    /// # Errors
    /// When the key's variable is named but not set, or the client cannot be built.
    pub fn from_config(c: &MemoryConfig, env: &Env) -> anyhow::Result<Option<Self>> {
        let (Some(base), Some(model)) = (&c.embeddings_base_url, &c.embeddings_model) else {
            return Ok(None);
        };
        let key = match &c.embeddings_api_key_env {
            Some(var) => Some(pincer_providers::ApiKey::new(env.var(var).ok_or_else(
                || {
                    crate::Failure::usage(format!(
                        "memory.embeddings_api_key_env names `{var}`, which is not set"
                    ))
                },
            )?)),
            None => None,
        };
        let settings = pincer_providers::HttpSettings {
            timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(3),
            max_retries: 1,
            retry_base: Duration::from_millis(200),
            stream: false,
        };
        Ok(Some(Self(pincer_providers::EmbeddingsClient::new(
            base, model, key, settings,
        )?)))
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        self.0
            .embed(texts)
            .await
            .map_err(|e| format!("embeddings: {e}"))
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

/// One agent's index.
#[derive(Debug)]
pub struct MemoryIndex {
    store: Arc<dyn Backend>,
    agent: String,
    mem: MemoryDir,
    embedder: Option<Embedder>,
}

impl MemoryIndex {
    /// The index of `agent` (whose directory is `agent_dir`) in `store`.
    pub fn new(
        store: Arc<dyn Backend>,
        agent: &str,
        agent_dir: &std::path::Path,
        embedder: Option<Embedder>,
    ) -> Self {
        Self {
            store,
            agent: agent.to_owned(),
            mem: MemoryDir::new(agent_dir),
            embedder,
        }
    }

    /// Brings the index up to date with the files; returns notes about skipped files and
    /// embeddings that could not be made.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn sync(&self) -> Result<Vec<String>, String> {
        let mut notes = Vec::new();
        let indexed: HashMap<String, String> = self
            .store
            .note_sources(&self.agent)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        let files = self.mem.files();
        let stamp_of = |mtime: std::time::SystemTime, size: u64| {
            format!(
                "{}:{size}",
                mtime
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            )
        };
        for file in &files {
            // Unchanged since it was indexed (same time and size): nothing to read.
            if let Some((mtime, size)) = self.mem.stat(file) {
                let head = stamp_of(mtime, size);
                if indexed
                    .get(file)
                    .is_some_and(|s| s.starts_with(&format!("{head}:")))
                {
                    continue;
                }
            }
            let read = {
                let (mem, f) = (self.mem.clone(), file.clone());
                tokio::task::spawn_blocking(move || mem.read_bytes(&f))
                    .await
                    .map_err(|e| e.to_string())?
            };
            let (bytes, mtime, size) = match read {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    notes.push(format!("skipped {file}: {e}"));
                    continue;
                }
            };
            let stamp_head = stamp_of(mtime, size);
            let Ok(text) = String::from_utf8(bytes) else {
                notes.push(format!("skipped {file}: not valid UTF-8"));
                continue;
            };
            let hash = hex::encode(&Sha256::digest(text.as_bytes())[..8]);
            let stamp = format!("{stamp_head}:{hash}");
            let date = (file != LONG_TERM).then(|| file.trim_end_matches(".md").to_owned());
            let docs: Vec<Note> = text
                .lines()
                .enumerate()
                // Notes, not headings or blank lines.
                .filter(|(_, l)| {
                    let t = l.trim();
                    !t.is_empty() && !t.starts_with('#')
                })
                .map(|(i, l)| Note {
                    source: file.clone(),
                    line: u32::try_from(i + 1).unwrap_or(u32::MAX),
                    date: date.clone(),
                    text: l.trim().to_owned(),
                })
                .collect();
            self.store_source(file, stamp, &docs, &mut notes).await?;
        }
        let sessions = self.sync_sessions(&indexed, &mut notes).await?;
        for source in indexed.keys() {
            let gone = if source.starts_with("session:") {
                !sessions.contains(source)
            } else {
                !files.contains(source)
            };
            if gone {
                self.store
                    .remove_notes(&self.agent, source)
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(notes)
    }

    /// Stores one source's notes, with vectors when an embeddings model is configured and
    /// answers. Without them the stamp is marked pending, so the next search tries again.
    async fn store_source(
        &self,
        source: &str,
        stamp: String,
        docs: &[Note],
        notes: &mut Vec<String>,
    ) -> Result<(), String> {
        let vectors = match &self.embedder {
            Some(e) if !docs.is_empty() => {
                let texts: Vec<String> = docs.iter().map(|d| d.text.clone()).collect();
                match e.embed(&texts).await {
                    Ok(v) => Some(v),
                    Err(err) => {
                        notes.push(format!("{source} indexed without vectors: {err}"));
                        None
                    }
                }
            }
            _ => None,
        };
        let stamp = if self.embedder.is_some() && vectors.is_none() {
            format!("pending:{stamp}")
        } else {
            stamp
        };
        self.store
            .replace_notes(&self.agent, source, &stamp, docs, vectors.as_deref())
            .await
            .map_err(|e| e.to_string())
    }

    /// Indexes past conversations: each session in chunks of [`SESSION_CHUNK`] messages (only
    /// the chunks that grew are read again), user and assistant text only — tool output stays
    /// out. Returns every session source that exists.
    async fn sync_sessions(
        &self,
        indexed: &HashMap<String, String>,
        notes: &mut Vec<String>,
    ) -> Result<Vec<String>, String> {
        let agent: pincer_types::AgentId = self.agent.parse().map_err(|e| format!("{e}"))?;
        let mut present = Vec::new();
        for s in self
            .store
            .agent_sessions(&agent)
            .await
            .map_err(|e| e.to_string())?
        {
            let total = usize::try_from(s.messages).unwrap_or(0);
            let chunks = total.div_ceil(SESSION_CHUNK);
            let mut messages: Option<Vec<Value>> = None;
            for c in 0..chunks {
                let source = format!("session:{}:{c}", s.id);
                let in_chunk = (total - c * SESSION_CHUNK).min(SESSION_CHUNK);
                let stamp = format!("{in_chunk}:");
                present.push(source.clone());
                if indexed.get(&source).is_some_and(|st| *st == stamp) {
                    continue;
                }
                if messages.is_none() {
                    messages = Some(self.store.messages(s.id).await.map_err(|e| e.to_string())?);
                }
                let all = messages.as_deref().unwrap_or_default();
                let date = Some(s.created_at.format("%Y-%m-%d").to_string());
                let docs: Vec<Note> = all
                    .iter()
                    .enumerate()
                    .skip(c * SESSION_CHUNK)
                    .take(SESSION_CHUNK)
                    .filter_map(|(i, m)| {
                        let role = m["role"].as_str()?;
                        let text = m["content"].as_str()?.trim();
                        (matches!(role, "user" | "assistant") && !text.is_empty()).then(|| Note {
                            source: source.clone(),
                            line: u32::try_from(i + 1).unwrap_or(u32::MAX),
                            date: date.clone(),
                            text: format!(
                                "{role} ({}): {}",
                                s.key,
                                text.chars().take(2000).collect::<String>()
                            ),
                        })
                    })
                    .collect();
                self.store_source(&source, stamp, &docs, notes).await?;
            }
        }
        Ok(present)
    }

    /// Drops the agent's index and builds it again from the files.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn reindex(&self) -> Result<Vec<String>, String> {
        for (source, _) in self
            .store
            .note_sources(&self.agent)
            .await
            .map_err(|e| e.to_string())?
        {
            self.store
                .remove_notes(&self.agent, &source)
                .await
                .map_err(|e| e.to_string())?;
        }
        self.sync().await
    }

    /// Keyword and (when configured) vector search, fused.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn find(&self, query: &str, limit: usize) -> Result<SearchOutcome, String> {
        let mut notes = self.sync().await?;
        let wide = limit.saturating_mul(3).max(10);
        let keyword = self
            .store
            .search_notes(&self.agent, &query_terms(query), wide)
            .await
            .map_err(|e| e.to_string())?;
        let mut lists: Vec<Vec<Note>> = vec![keyword.into_iter().map(|h| h.note).collect()];
        if let Some(e) = &self.embedder {
            match e.embed(&[query.to_owned()]).await {
                Ok(q) => {
                    let q = q.into_iter().next().unwrap_or_default();
                    let mut scored: Vec<(f64, Note)> = self
                        .store
                        .note_vectors(&self.agent)
                        .await
                        .map_err(|e| e.to_string())?
                        .into_iter()
                        .map(|(n, v)| (cosine(&q, &v), n))
                        .filter(|(s, _)| *s > 0.0)
                        .collect();
                    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
                    scored.truncate(wide);
                    lists.push(scored.into_iter().map(|(_, n)| n).collect());
                }
                Err(err) => notes.push(format!("{err}; keyword results only")),
            }
        }
        // Reciprocal rank fusion: a note high in either ranking rises.
        let mut fused: HashMap<(String, u32), (f64, Note)> = HashMap::new();
        for list in lists {
            for (rank, n) in list.into_iter().enumerate() {
                #[allow(clippy::cast_precision_loss, reason = "ranks are small")]
                let add = 1.0 / (RRF_K + rank as f64 + 1.0);
                fused
                    .entry((n.source.clone(), n.line))
                    .and_modify(|e| e.0 += add)
                    .or_insert((add, n));
            }
        }
        let mut hits: Vec<Hit> = fused
            .into_values()
            .map(|(score, n)| Hit {
                file: n.source,
                line: usize::try_from(n.line).unwrap_or(0),
                date: n.date,
                snippet: n.text.chars().take(300).collect(),
                score,
            })
            .collect();
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(b.date.cmp(&a.date))
                .then(a.line.cmp(&b.line))
        });
        hits.truncate(limit);
        Ok(SearchOutcome { hits, notes })
    }
}

impl NoteSearch for MemoryIndex {
    fn search<'a>(&'a self, query: &'a str, limit: usize) -> SearchFuture<'a> {
        Box::pin(self.find(query, limit))
    }
}
