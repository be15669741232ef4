//! Run bundles (A4): `agents/<id>/runs/<run-id>/` with `input.md`, `transcript.jsonl`,
//! `output.md` and `meta.json`. Each file is written once: `input.md` and the transcript are
//! created when the run starts and the transcript is appended line by line as the run goes, so a
//! crash still leaves what happened; `output.md` and `meta.json` are written when the run ends
//! (`meta.json` last, through a temporary file and a rename, so a reader never sees a torn one).
//! A bundle without `meta.json` is a run still going — or one cut off by a crash.
//!
//! Durability matches the state database (WAL, `synchronous=NORMAL`), not the audit log: files
//! go through the page cache without an fsync per file, so a crash of Pincer loses nothing, and
//! a power loss can lose the newest bundles just as it can roll back the newest commits. The
//! audit log is the record that is synced before anything irreversible (see `pincer-audit`). Per
//! file fsyncs cost about 1.5 ms per run on an SSD — more than all the rest of a turn. Writing
//! each file once (no `meta.json` at the start replaced at the end) keeps a turn at five new
//! inodes and no deleted one: on ext4 a stream of freshly deleted inodes makes every later
//! create scan for a free one (measured in `docs/PERFORMANCE.md`, round 2).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use pincer_audit::Redactor;
use pincer_types::{AgentId, RunId, RunStatus, TokenUsage};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::AgentError;

/// The contents of `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// Run id.
    pub run_id: RunId,
    /// Agent.
    pub agent: AgentId,
    /// Session id.
    pub session_id: String,
    /// Session key.
    pub session_key: String,
    /// Provider kind.
    pub provider: String,
    /// Model name.
    pub model: String,
    /// Final status (`running` until it ends).
    pub status: RunStatus,
    /// Error text for runs that did not succeed.
    pub error: Option<String>,
    /// Error class (`rate_limit`, `malformed`, `step_limit`, …).
    pub error_kind: Option<String>,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End.
    pub ended_at: Option<DateTime<Utc>>,
    /// Wall time in milliseconds.
    pub duration_ms: Option<u64>,
    /// Model calls made.
    pub steps: u32,
    /// Tool calls made.
    pub tool_calls: u32,
    /// sha256 of the assembled prompt (with tool definitions).
    pub prompt_sha256: String,
    /// Bytes of the system prompt.
    pub prompt_bytes: usize,
    /// Instruction files that were truncated.
    pub truncated_files: Vec<String>,
    /// Tokens used, summed over all model calls.
    pub usage: TokenUsage,
    /// The Pincer version that ran it.
    pub pincer_version: String,
}

/// A run bundle being written.
#[derive(Debug)]
pub struct RunBundle {
    dir: PathBuf,
    run_id: RunId,
    transcript: File,
    redactor: Redactor,
}

impl RunBundle {
    /// Creates `runs_dir/<run-id>/` and writes `input.md`. Everything written to the bundle
    /// passes through `redactor` first, so secrets never land in run artifacts.
    ///
    /// # Errors
    /// [`AgentError::Io`] when the directory or files cannot be created.
    pub fn create(
        runs_dir: &Path,
        run_id: RunId,
        input: &str,
        redactor: Redactor,
    ) -> Result<Self, AgentError> {
        let dir = runs_dir.join(run_id.to_string());
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| AgentError::io(&dir, e))?;
        write_private(&dir.join("input.md"), redactor.text(input).as_bytes())?;
        let path = dir.join("transcript.jsonl");
        let transcript = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| AgentError::io(&path, e))?;
        Ok(Self {
            dir,
            run_id,
            transcript,
            redactor,
        })
    }

    /// The run this bundle records.
    pub fn run_id(&self) -> RunId {
        self.run_id
    }

    /// The bundle directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends one transcript line: `{"ts": …, "type": kind, …fields}`.
    ///
    /// # Errors
    /// [`AgentError::Io`] when the write fails.
    pub fn record(&mut self, kind: &str, fields: Value) -> Result<(), AgentError> {
        let mut line = serde_json::Map::new();
        line.insert(
            "ts".into(),
            Value::from(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
        line.insert("type".into(), Value::from(kind));
        if let Value::Object(map) = fields {
            line.extend(map);
        }
        let mut text = self.redactor.redact(Value::Object(line)).to_string();
        text.push('\n');
        let path = self.dir.join("transcript.jsonl");
        self.transcript
            .write_all(text.as_bytes())
            .map_err(|e| AgentError::io(&path, e))
    }

    /// Writes `meta.json` atomically — once, when the run ends.
    ///
    /// # Errors
    /// [`AgentError::Io`] when the write fails.
    pub fn write_meta(&self, meta: &RunMeta) -> Result<(), AgentError> {
        let path = self.dir.join("meta.json");
        let mut bytes = serde_json::to_vec_pretty(meta).unwrap_or_default();
        bytes.push(b'\n');
        let tmp = self.dir.join(".meta.json.tmp");
        write_private(&tmp, &bytes)?;
        fs::rename(&tmp, &path).map_err(|e| AgentError::io(&path, e))
    }

    /// Writes `output.md` and flushes the transcript.
    ///
    /// # Errors
    /// [`AgentError::Io`] when a write fails.
    pub fn finish(&mut self, output: &str) -> Result<(), AgentError> {
        write_private(
            &self.dir.join("output.md"),
            self.redactor.text(output).as_bytes(),
        )?;
        let path = self.dir.join("transcript.jsonl");
        self.transcript
            .flush()
            .map_err(|e| AgentError::io(&path, e))
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AgentError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| AgentError::io(path, e))?;
    f.write_all(bytes).map_err(|e| AgentError::io(path, e))
}
