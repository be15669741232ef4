//! Users' roles (D13): who may do what in an org that shares one Pincer.

use serde::{Deserialize, Serialize};

use crate::Scope;

/// A user's role. Ordered: a higher role may do everything a lower one may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Talks to agents: sees and continues only their own sessions and tasks, decides only
    /// their own approvals (when self-approval is allowed).
    Member,
    /// Runs the day: sees everyone's tasks, reads the audit log, manages jobs, decides
    /// others' L1/L2 approvals.
    Operator,
    /// Administers: users, tokens, pairing, MCP, emergency controls, L3 approvals.
    Admin,
    /// Owns the installation (the local CLI). Like admin; the last owner cannot be removed.
    Owner,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Self; 4] = [Self::Member, Self::Operator, Self::Admin, Self::Owner];

    /// The written form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Operator => "operator",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    /// The API scopes a token of a user with this role may hold (a token's scopes are capped
    /// by them at creation and again at every request).
    pub fn scopes(self) -> &'static [Scope] {
        match self {
            Self::Member => &[
                Scope::TasksRead,
                Scope::TasksWrite,
                Scope::ApprovalsWrite,
                Scope::UsageRead,
            ],
            Self::Operator => &[
                Scope::TasksRead,
                Scope::TasksWrite,
                Scope::ApprovalsWrite,
                Scope::UsageRead,
                Scope::AuditRead,
                Scope::JobsRead,
                Scope::JobsWrite,
                Scope::MetricsRead,
            ],
            Self::Admin | Self::Owner => &Scope::ALL,
        }
    }

    /// Whether this role may hold `scope`.
    pub fn allows(self, scope: Scope) -> bool {
        self.scopes().contains(&scope)
    }

    /// Whether this role sees (and may act on) other principals' sessions and tasks.
    pub fn sees_others(self) -> bool {
        self >= Self::Operator
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role `{s}` (roles: owner, admin, operator, member)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_order_and_cap_scopes() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!(Role::Member < Role::Operator && Role::Admin < Role::Owner);
        assert!(!Role::Member.allows(Scope::Admin));
        assert!(!Role::Member.allows(Scope::AuditRead));
        assert!(!Role::Operator.allows(Scope::Admin));
        assert!(Role::Admin.allows(Scope::Admin));
        assert!(!Role::Member.sees_others() && Role::Operator.sees_others());
        assert!("root".parse::<Role>().is_err());
    }
}
