//! `[skills]`: where skills may come from besides the operator's own folders.

use serde::{Deserialize, Serialize};

/// `[skills]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkillsConfig {
    /// Git hosts, or host/owner prefixes, remote skills may be installed from
    /// (`github.com/acme`, `git.example.com`). Empty: only folders and local repositories.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_sources: Vec<String>,
}

impl SkillsConfig {
    /// Whether nothing is set.
    pub fn is_default(&self) -> bool {
        self == &Self::default()
    }

    pub(crate) fn errors(&self) -> Vec<(String, String)> {
        self.trusted_sources
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                let host = s.split('/').next().unwrap_or("");
                s.contains("://")
                    || host.is_empty()
                    || !host
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':'))
            })
            .map(|(i, s)| {
                (
                    format!("skills.trusted_sources[{i}]"),
                    format!(
                        "`{s}` must be a host or host/path (github.com/acme), without a scheme"
                    ),
                )
            })
            .collect()
    }
}
