//! `[audit]`: an external witness of the audit chain (issue 23, part 4).
//!
//! ```toml
//! [audit]
//! witness_file = "/mnt/backup/pincer-witness.jsonl"  # on another mount; append-only
//! witness_every_lines = 100                          # a signed checkpoint every 100 lines…
//! witness_every_secs = 60                            # …or a minute, whichever comes first
//! witness_public_key = "3b6a27bc…"                   # optional: pin the key verify expects
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[audit]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// A file outside the home that receives ed25519-signed checkpoints of the chain's end
    /// (signed with the `audit-witness` key in the secret store, created on first use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness_file: Option<PathBuf>,
    /// A checkpoint at least every this many lines.
    #[serde(default = "default_lines")]
    pub witness_every_lines: u64,
    /// …or when this many seconds passed since the last one (checked at each sync).
    #[serde(default = "default_secs")]
    pub witness_every_secs: u64,
    /// The public key (64 hex digits) the witness's checkpoints must verify under; default:
    /// derived from the key in the secret store. Pin it to verify on a machine without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness_public_key: Option<String>,
}

fn default_lines() -> u64 {
    100
}
fn default_secs() -> u64 {
    60
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            witness_file: None,
            witness_every_lines: default_lines(),
            witness_every_secs: default_secs(),
            witness_public_key: None,
        }
    }
}

impl AuditConfig {
    /// Whether nothing is set.
    pub fn is_default(&self) -> bool {
        self == &Self::default()
    }

    pub(crate) fn errors(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        if let Some(p) = &self.witness_file
            && !p.is_absolute()
        {
            errs.push((
                "audit.witness_file".into(),
                "must be an absolute path (outside the Pincer home, ideally on another mount)"
                    .into(),
            ));
        }
        if self.witness_every_lines == 0 {
            errs.push((
                "audit.witness_every_lines".into(),
                "must be at least 1".into(),
            ));
        }
        if self.witness_every_secs == 0 {
            errs.push((
                "audit.witness_every_secs".into(),
                "must be at least 1".into(),
            ));
        }
        if let Some(k) = &self.witness_public_key
            && (k.len() != 64 || !k.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            errs.push((
                "audit.witness_public_key".into(),
                "must be 64 hex digits (`pincer audit witness-key` prints it)".into(),
            ));
        }
        errs
    }
}
