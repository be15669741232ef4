//! `[governance]`: self-approval, the org's bypass policy, and per-role quotas (D6, D7, D13).

use std::collections::BTreeMap;

use pincer_types::{RiskTier, Role};
use serde::{Deserialize, Serialize};

/// Whether users may switch bypass on for themselves (D7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BypassPolicy {
    /// Nobody's bypass applies (default).
    #[default]
    Off,
    /// A user's own toggle applies, up to `bypass_max_tier`.
    Allowed,
}

/// The highest tier a bypass skips (L3 never).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum BypassTier {
    /// Mutating actions (default).
    #[default]
    L1,
    /// Mutating and destructive actions.
    L2,
}

impl BypassTier {
    /// As a risk tier.
    pub fn tier(self) -> RiskTier {
        match self {
            Self::L1 => RiskTier::L1Mutating,
            Self::L2 => RiskTier::L2Destructive,
        }
    }
}

/// One role's limits per user (unset: no limit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Tasks a user may submit per minute (chat messages and API tasks alike).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_per_minute: Option<u32>,
    /// Unfinished tasks a user may have at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent_tasks: Option<u32>,
}

/// `[governance]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GovernanceConfig {
    /// Whether a member may approve their own L1/L2 actions (default true). Off: an operator
    /// or above decides every approval.
    #[serde(default = "yes")]
    pub self_approval: bool,
    /// Org policy for per-user bypass toggles (default `off`).
    #[serde(default)]
    pub bypass: BypassPolicy,
    /// The highest tier a bypass skips: `L1` (default) or `L2`; L3 never.
    #[serde(default)]
    pub bypass_max_tier: BypassTier,
    /// Limits per user, by role (`[governance.quotas.member]`); the default limits members to
    /// 30 tasks a minute and 4 at once, and other roles not at all.
    #[serde(default = "default_quotas")]
    pub quotas: BTreeMap<Role, Quota>,
}

fn yes() -> bool {
    true
}

fn default_quotas() -> BTreeMap<Role, Quota> {
    BTreeMap::from([(
        Role::Member,
        Quota {
            messages_per_minute: Some(30),
            concurrent_tasks: Some(4),
        },
    )])
}

impl Default for GovernanceConfig {
    fn default() -> Self {
        Self {
            self_approval: true,
            bypass: BypassPolicy::Off,
            bypass_max_tier: BypassTier::L1,
            quotas: default_quotas(),
        }
    }
}

impl GovernanceConfig {
    /// Whether this is the default.
    pub fn is_default(&self) -> bool {
        self == &Self::default()
    }

    /// The limits for a user with `role`.
    pub fn quota(&self, role: Role) -> Quota {
        self.quotas.get(&role).copied().unwrap_or_default()
    }

    pub(crate) fn errors(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        for (role, q) in &self.quotas {
            if q.messages_per_minute == Some(0) || q.concurrent_tasks == Some(0) {
                errs.push((
                    format!("governance.quotas.{role}"),
                    "a limit of 0 would lock the role out; remove the key for no limit".into(),
                ));
            }
        }
        errs
    }
}
