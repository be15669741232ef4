//! API token scopes (D11).

use serde::{Deserialize, Serialize};

/// What an API token may do. Every HTTP route declares the one scope it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Read tasks and their events.
    #[serde(rename = "tasks:read")]
    TasksRead,
    /// Submit and cancel tasks.
    #[serde(rename = "tasks:write")]
    TasksWrite,
    /// Approve or deny actions.
    #[serde(rename = "approvals:write")]
    ApprovalsWrite,
    /// Read the audit log.
    #[serde(rename = "audit:read")]
    AuditRead,
    /// Read scheduled jobs and their runs.
    #[serde(rename = "jobs:read")]
    JobsRead,
    /// Add, remove, enable, disable and trigger scheduled jobs.
    #[serde(rename = "jobs:write")]
    JobsWrite,
    /// Read token usage and cost (`GET /v1/usage`).
    #[serde(rename = "usage:read")]
    UsageRead,
    /// Scrape Prometheus metrics (`GET /metrics`).
    #[serde(rename = "metrics:read")]
    MetricsRead,
    /// Everything, including token management.
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Self; 9] = [
        Self::TasksRead,
        Self::TasksWrite,
        Self::ApprovalsWrite,
        Self::AuditRead,
        Self::JobsRead,
        Self::JobsWrite,
        Self::UsageRead,
        Self::MetricsRead,
        Self::Admin,
    ];

    /// The written form (`tasks:read`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TasksRead => "tasks:read",
            Self::TasksWrite => "tasks:write",
            Self::ApprovalsWrite => "approvals:write",
            Self::AuditRead => "audit:read",
            Self::JobsRead => "jobs:read",
            Self::JobsWrite => "jobs:write",
            Self::UsageRead => "usage:read",
            Self::MetricsRead => "metrics:read",
            Self::Admin => "admin",
        }
    }

    /// Whether a token holding `held` may use a route needing `self` (`admin` covers all).
    pub fn granted_by(self, held: &[Self]) -> bool {
        held.iter().any(|h| *h == self || *h == Self::Admin)
    }
}

impl std::str::FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = Self::ALL.iter().map(|x| x.as_str()).collect();
                format!("unknown scope `{s}` (scopes: {})", all.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_admin_covers_all() {
        for s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert!(s.granted_by(&[Scope::Admin]));
            assert!(s.granted_by(&[s]));
        }
        assert!(!Scope::TasksWrite.granted_by(&[Scope::TasksRead]));
        assert!(!Scope::Admin.granted_by(&[Scope::TasksRead, Scope::AuditRead]));
        assert!("tasks".parse::<Scope>().is_err());
    }
}
