//! The memory search index (A7): every line of an agent's memory files — and of its past
//! conversations — as a searchable note, with full-text ranking (SQLite FTS5 / Postgres
//! full-text search) and, when an embeddings model is configured, a vector per note. Sources
//! (`MEMORY.md`, `2026-12-04.md`, `session:<key>`) are replaced whole when their stamp (mtime,
//! size, hash) changes, so the index follows edits made anywhere, including in an editor.

use async_trait::async_trait;
use rusqlite::params;
use serde::{Deserialize, Serialize};

use crate::{SqliteStore, StoreError};

/// One indexed note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// `MEMORY.md`, `YYYY-MM-DD.md` or `session:<key>`.
    pub source: String,
    /// 1-based line (or message number for a session).
    pub line: u32,
    /// The day it belongs to, when known.
    pub date: Option<String>,
    /// The text.
    pub text: String,
}

/// A keyword match.
#[derive(Debug, Clone, PartialEq)]
pub struct NoteHit {
    /// The note.
    pub note: Note,
    /// Relevance, higher is better (only comparable within one search).
    pub score: f64,
}

/// The words of a query as the index matches them: alphanumeric runs, lower-cased, at most 16.
pub fn query_terms(query: &str) -> Vec<String> {
    let mut t: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    t.sort_unstable();
    t.dedup();
    t.truncate(16);
    t
}

fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|f| f.to_le_bytes()).collect()
}

fn from_blob(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The index seam.
#[async_trait]
pub trait NoteIndex: Send + Sync + std::fmt::Debug {
    /// Every indexed source of `agent` with its stamp.
    async fn note_sources(&self, agent: &str) -> Result<Vec<(String, String)>, StoreError>;
    /// Replaces `source`'s notes (and vectors, one per note, when given) in one transaction.
    async fn replace_notes(
        &self,
        agent: &str,
        source: &str,
        stamp: &str,
        notes: &[Note],
        vectors: Option<&[Vec<f32>]>,
    ) -> Result<(), StoreError>;
    /// Removes `source` from the index.
    async fn remove_notes(&self, agent: &str, source: &str) -> Result<(), StoreError>;
    /// Keyword search: notes with any of `terms`, best first.
    async fn search_notes(
        &self,
        agent: &str,
        terms: &[String],
        limit: usize,
    ) -> Result<Vec<NoteHit>, StoreError>;
    /// Every note of `agent` that has a vector.
    async fn note_vectors(&self, agent: &str) -> Result<Vec<(Note, Vec<f32>)>, StoreError>;
}

fn note_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Note> {
    Ok(Note {
        source: r.get(0)?,
        line: r.get(1)?,
        date: r.get(2)?,
        text: r.get(3)?,
    })
}

#[async_trait]
impl NoteIndex for SqliteStore {
    async fn note_sources(&self, agent: &str) -> Result<Vec<(String, String)>, StoreError> {
        let agent = agent.to_owned();
        self.with(move |c| {
            let mut st = c.prepare_cached(
                "SELECT source, stamp FROM memory_sources WHERE agent = ?1 ORDER BY source",
            )?;
            let rows = st
                .query_map(params![agent], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn replace_notes(
        &self,
        agent: &str,
        source: &str,
        stamp: &str,
        notes: &[Note],
        vectors: Option<&[Vec<f32>]>,
    ) -> Result<(), StoreError> {
        let (agent, source, stamp) = (agent.to_owned(), source.to_owned(), stamp.to_owned());
        let notes = notes.to_vec();
        let vectors: Option<Vec<Vec<u8>>> = vectors.map(|v| v.iter().map(|x| to_blob(x)).collect());
        self.with_tx(move |tx| {
            tx.prepare_cached("DELETE FROM memory_notes WHERE agent = ?1 AND source = ?2")?
                .execute(params![agent, source])?;
            tx.prepare_cached("DELETE FROM memory_fts WHERE agent = ?1 AND source = ?2")?
                .execute(params![agent, source])?;
            let mut note = tx.prepare_cached(
                "INSERT INTO memory_notes (agent, source, line, date, text, vector) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let mut fts = tx.prepare_cached(
                "INSERT INTO memory_fts (text, agent, source, line, date) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (i, n) in notes.iter().enumerate() {
                let v = vectors.as_ref().and_then(|v| v.get(i));
                note.execute(params![agent, source, n.line, n.date, n.text, v])?;
                fts.execute(params![n.text, agent, source, n.line, n.date])?;
            }
            tx.prepare_cached(
                "INSERT INTO memory_sources (agent, source, stamp) VALUES (?1, ?2, ?3)
                 ON CONFLICT(agent, source) DO UPDATE SET stamp = excluded.stamp",
            )?
            .execute(params![agent, source, stamp])?;
            Ok(())
        })
        .await
    }

    async fn remove_notes(&self, agent: &str, source: &str) -> Result<(), StoreError> {
        let (agent, source) = (agent.to_owned(), source.to_owned());
        self.with_tx(move |tx| {
            for sql in [
                "DELETE FROM memory_notes WHERE agent = ?1 AND source = ?2",
                "DELETE FROM memory_fts WHERE agent = ?1 AND source = ?2",
                "DELETE FROM memory_sources WHERE agent = ?1 AND source = ?2",
            ] {
                tx.prepare_cached(sql)?.execute(params![agent, source])?;
            }
            Ok(())
        })
        .await
    }

    async fn search_notes(
        &self,
        agent: &str,
        terms: &[String],
        limit: usize,
    ) -> Result<Vec<NoteHit>, StoreError> {
        let terms: Vec<String> = terms
            .iter()
            .filter(|t| t.chars().all(char::is_alphanumeric) && !t.is_empty())
            .map(|t| format!("\"{t}\""))
            .collect();
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let query = terms.join(" OR ");
        let agent = agent.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(move |c| {
            let mut st = c.prepare_cached(
                "SELECT source, line, date, text, bm25(memory_fts) FROM memory_fts
                 WHERE memory_fts MATCH ?1 AND agent = ?2 ORDER BY bm25(memory_fts) LIMIT ?3",
            )?;
            let rows = st
                .query_map(params![query, agent, limit], |r| {
                    Ok(NoteHit {
                        note: note_row(r)?,
                        score: -r.get::<_, f64>(4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn note_vectors(&self, agent: &str) -> Result<Vec<(Note, Vec<f32>)>, StoreError> {
        let agent = agent.to_owned();
        self.with(move |c| {
            let mut st = c.prepare_cached(
                "SELECT source, line, date, text, vector FROM memory_notes
                 WHERE agent = ?1 AND vector IS NOT NULL",
            )?;
            let rows = st
                .query_map(params![agent], |r| {
                    Ok((note_row(r)?, from_blob(&r.get::<_, Vec<u8>>(4)?)))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }
}

#[cfg(feature = "postgres")]
pub(crate) mod pg {
    //! [`NoteIndex`] on Postgres: full-text search over an expression index
    //! (`to_tsvector('simple', text)`, no stemming, any language), ranked with `ts_rank`.

    use async_trait::async_trait;

    use super::{Note, NoteHit, NoteIndex, from_blob, to_blob};
    use crate::StoreError;
    use crate::pg::{PgStore, db};

    fn note(r: &tokio_postgres::Row) -> Note {
        Note {
            source: r.get(0),
            line: u32::try_from(r.get::<_, i64>(1)).unwrap_or(0),
            date: r.get(2),
            text: r.get(3),
        }
    }

    #[async_trait]
    impl NoteIndex for PgStore {
        async fn note_sources(&self, agent: &str) -> Result<Vec<(String, String)>, StoreError> {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT source, stamp FROM memory_sources WHERE agent = $1 ORDER BY source",
                    &[&agent],
                )
                .await
                .map_err(|e| db(&e))?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        }

        async fn replace_notes(
            &self,
            agent: &str,
            source: &str,
            stamp: &str,
            notes: &[Note],
            vectors: Option<&[Vec<f32>]>,
        ) -> Result<(), StoreError> {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(|e| db(&e))?;
            tx.execute(
                "DELETE FROM memory_notes WHERE agent = $1 AND source = $2",
                &[&agent, &source],
            )
            .await
            .map_err(|e| db(&e))?;
            let insert = tx
                .prepare(
                    "INSERT INTO memory_notes (agent, source, line, date, text, vector)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .await
                .map_err(|e| db(&e))?;
            for (i, n) in notes.iter().enumerate() {
                let v: Option<Vec<u8>> = vectors.and_then(|v| v.get(i)).map(|x| to_blob(x));
                tx.execute(
                    &insert,
                    &[&agent, &source, &i64::from(n.line), &n.date, &n.text, &v],
                )
                .await
                .map_err(|e| db(&e))?;
            }
            tx.execute(
                "INSERT INTO memory_sources (agent, source, stamp) VALUES ($1, $2, $3)
                 ON CONFLICT (agent, source) DO UPDATE SET stamp = excluded.stamp",
                &[&agent, &source, &stamp],
            )
            .await
            .map_err(|e| db(&e))?;
            tx.commit().await.map_err(|e| db(&e))
        }

        async fn remove_notes(&self, agent: &str, source: &str) -> Result<(), StoreError> {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(|e| db(&e))?;
            for sql in [
                "DELETE FROM memory_notes WHERE agent = $1 AND source = $2",
                "DELETE FROM memory_sources WHERE agent = $1 AND source = $2",
            ] {
                tx.execute(sql, &[&agent, &source])
                    .await
                    .map_err(|e| db(&e))?;
            }
            tx.commit().await.map_err(|e| db(&e))
        }

        async fn search_notes(
            &self,
            agent: &str,
            terms: &[String],
            limit: usize,
        ) -> Result<Vec<NoteHit>, StoreError> {
            let terms: Vec<&str> = terms
                .iter()
                .map(String::as_str)
                .filter(|t| !t.is_empty() && t.chars().all(char::is_alphanumeric))
                .collect();
            if terms.is_empty() {
                return Ok(Vec::new());
            }
            let query = terms.join(" | ");
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT source, line, date, text,
                            ts_rank(to_tsvector('simple', text), to_tsquery('simple', $2))::FLOAT8 AS r
                     FROM memory_notes
                     WHERE agent = $1 AND to_tsvector('simple', text) @@ to_tsquery('simple', $2)
                     ORDER BY r DESC, source, line LIMIT $3",
                    &[&agent, &query, &limit],
                )
                .await
                .map_err(|e| db(&e))?;
            Ok(rows
                .iter()
                .map(|r| NoteHit {
                    note: note(r),
                    score: r.get(4),
                })
                .collect())
        }

        async fn note_vectors(&self, agent: &str) -> Result<Vec<(Note, Vec<f32>)>, StoreError> {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT source, line, date, text, vector FROM memory_notes
                     WHERE agent = $1 AND vector IS NOT NULL",
                    &[&agent],
                )
                .await
                .map_err(|e| db(&e))?;
            Ok(rows
                .iter()
                .map(|r| (note(r), from_blob(r.get::<_, &[u8]>(4))))
                .collect())
        }
    }
}
