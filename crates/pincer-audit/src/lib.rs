//! The tamper-evident audit log (D5): append-only JSONL under `$PINCER_HOME/audit/`, one file per
//! UTC day, every line `{seq, ts, prev_hash, hash, event}`, hash-chained with sha256 over
//! canonical JSON across files and restarts. Secrets are redacted before a line is hashed.
//!
//! Invariants: `seq` starts at 1 and grows by one; each line's `prev_hash` is the previous line's
//! `hash` (the first line's is 64 zeros); `hash = sha256(canonical JSON of {seq, ts, prev_hash,
//! event})`; `HEAD` records the last `seq` and `hash`, so truncating the tail is detected too.
//!
//! The agent gate (`pincer_agent::Gate`) writes every tool call, policy decision and approval
//! here; `pincer audit verify|tail|search` read it.

mod anchor;
mod archive;
mod chain;
mod error;
mod log;
mod read;
mod redact;
mod verify;
mod witness;
mod writer;

pub use anchor::{Anchor, AnchorKey, Checkpoint};
pub use archive::{Archived, archive};
pub use chain::{
    ChainStore, Chained, Pending, SignedCheckpoint, chain, chain_entries, verify_chain,
};
pub use error::AuditError;
pub use log::GENESIS;
pub use read::{Entry, Follower, entries};
pub use redact::Redactor;
pub use verify::{VerifyReport, verify, verify_anchored, verify_witnessed};
pub use witness::{FileWitness, Witness, WitnessKey, WitnessReport};
pub use writer::{AuditLog, AuditSource, anchored_event};
