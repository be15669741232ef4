//! Newtype identifiers. Each is validated on construction (`FromStr` / `TryFrom<String>`), so a
//! value in hand is always safe to use as a path component or a wire name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} `{value}`: {reason}")]
pub struct IdError {
    /// Which identifier kind was being parsed.
    pub kind: &'static str,
    /// The rejected input (never a secret).
    pub value: String,
    /// What rule it broke.
    pub reason: &'static str,
}

fn check_slug(kind: &'static str, s: &str, max: usize, extra: &[char]) -> Result<(), IdError> {
    let err = |reason| IdError {
        kind,
        value: s.chars().take(80).collect(),
        reason,
    };
    if s.is_empty() {
        return Err(err("must not be empty"));
    }
    if s.len() > max {
        return Err(err("too long"));
    }
    let first = s.as_bytes()[0];
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(err("must start with a lowercase letter or digit"));
    }
    if !s.chars().all(|c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' || extra.contains(&c)
    }) {
        return Err(err("may contain only a-z, 0-9, '-' and '_'"));
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                let check: fn(&str) -> Result<(), IdError> = $check;
                check(s)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                let check: fn(&str) -> Result<(), IdError> = $check;
                check(&s)?;
                Ok(Self(s))
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// An agent's id: a lowercase slug (`main`, `coder-2`), at most 64 bytes. Safe as a directory name.
    AgentId,
    "agent id",
    |s| check_slug("agent id", s, 64, &[])
);

string_id!(
    /// A tool's name: dotted lowercase segments (`time.now`, `fs.read`, `apply_patch`).
    ToolName,
    "tool name",
    |s| {
        check_slug("tool name", s, 64, &['.'])?;
        if s.split('.').any(str::is_empty) || s.ends_with(['-', '_']) {
            return Err(IdError {
                kind: "tool name",
                value: s.to_owned(),
                reason: "segments must be non-empty",
            });
        }
        Ok(())
    }
);

string_id!(
    /// A session key: which conversation a message belongs to, built from agent × channel × peer,
    /// e.g. `main:cli:default` or `main:telegram:dm:42`. Printable ASCII without spaces.
    SessionKey,
    "session key",
    |s| {
        let ok = !s.is_empty()
            && s.len() <= 200
            && s.bytes().all(|b| b.is_ascii_graphic());
        if ok {
            Ok(())
        } else {
            Err(IdError {
                kind: "session key",
                value: s.chars().take(80).collect(),
                reason: "must be 1-200 printable ASCII characters without spaces",
            })
        }
    }
);

impl SessionKey {
    /// Builds the canonical key for an agent, a channel and a peer on that channel.
    ///
    /// # Errors
    /// Returns [`IdError`] when a part contains spaces or non-printable characters.
    pub fn for_peer(agent: &AgentId, channel: &str, peer: &str) -> Result<Self, IdError> {
        format!("{agent}:{channel}:{peer}").parse()
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new, time-ordered (UUIDv7) id.
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                uuid::Uuid::parse_str(s).map(Self).map_err(|_| IdError {
                    kind: $kind,
                    value: s.chars().take(80).collect(),
                    reason: "not a UUID",
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.as_hyphenated(), f)
            }
        }
    };
}

uuid_id!(
    /// One run of the agent loop. Time-ordered, so run directories sort by start time.
    RunId,
    "run id"
);
uuid_id!(
    /// One stored conversation (a session key points at its current session).
    SessionId,
    "session id"
);
uuid_id!(
    /// One queued unit of work.
    TaskId,
    "task id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_ids_reject_path_tricks() {
        for bad in [
            "",
            "..",
            "a/b",
            "A",
            "a b",
            "-x",
            ".hidden",
            "a\0b",
            &"x".repeat(65),
        ] {
            assert!(bad.parse::<AgentId>().is_err(), "{bad:?} accepted");
        }
        assert_eq!("main".parse::<AgentId>().unwrap().as_str(), "main");
    }

    #[test]
    fn tool_names_are_dotted_slugs() {
        assert!("time.now".parse::<ToolName>().is_ok());
        assert!("apply_patch".parse::<ToolName>().is_ok());
        for bad in ["time..now", "time.", ".time", "Time.now", "a b"] {
            assert!(bad.parse::<ToolName>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn session_keys_are_built_from_parts() {
        let agent: AgentId = "main".parse().unwrap();
        let key = SessionKey::for_peer(&agent, "cli", "default").unwrap();
        assert_eq!(key.as_str(), "main:cli:default");
        assert!(SessionKey::for_peer(&agent, "cli", "two words").is_err());
    }

    #[test]
    fn run_ids_round_trip_and_sort_by_time() {
        let a = RunId::new();
        let b = RunId::new();
        assert!(a < b);
        assert_eq!(a.to_string().parse::<RunId>().unwrap(), a);
    }

    #[test]
    fn serde_rejects_invalid_ids() {
        assert!(serde_json::from_str::<AgentId>("\"../etc\"").is_err());
        assert!(serde_json::from_str::<AgentId>("\"ok\"").is_ok());
    }
}
