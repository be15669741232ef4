//! Governance rules (D6–D8), pure like the rest of the engine: the controls in force for one
//! call, and who may decide an approval. Every path that decides approvals — the API, the CLI
//! through the API, chat commands and buttons, the web page — asks [`may_decide`]; nothing else
//! answers that question.

use pincer_types::{RiskTier, Role};
use serde::{Deserialize, Serialize};

/// The org-wide and per-user controls in force for one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Controls {
    /// Mutating actions are paused org-wide (`pincer emergency pause-mutating`): every L1+
    /// action is denied; L0 work continues.
    pub paused: bool,
    /// The requesting user's bypass, when org policy allows it and their toggle is on:
    /// approvals are skipped up to this tier. Never L3 (see [`bypass_ceiling`]), never a
    /// denial, never a held tainted sink.
    pub bypass_up_to: Option<RiskTier>,
}

/// The highest tier a bypass may skip: the configured one, but never L3.
pub fn bypass_ceiling(configured: RiskTier) -> Option<RiskTier> {
    match configured {
        RiskTier::L0ReadOnly => None,
        RiskTier::L1Mutating => Some(RiskTier::L1Mutating),
        RiskTier::L2Destructive | RiskTier::L3Privileged => Some(RiskTier::L2Destructive),
    }
}

/// Someone deciding an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decider<'a> {
    /// Their principal: a user's name, or `telegram:<id>` for an unlinked chat account.
    pub principal: &'a str,
    /// Their role (an unlinked chat account is a member).
    pub role: Role,
}

/// Whether `decider` may decide an approval of `tier` requested by `requester` (the owner of
/// the parked task; `None` for system work — schedules, heartbeats, webhooks):
///
/// | whose action | L0–L2 | L3 |
/// |---|---|---|
/// | the decider's own | when `self_approval` is on (operators and above always) | admin or owner |
/// | another principal's, or system work | operator or above | admin or owner |
///
/// # Errors
/// Why not, for the person who tried (and the audit log).
pub fn may_decide(
    decider: Decider<'_>,
    requester: Option<&str>,
    tier: RiskTier,
    self_approval: bool,
) -> Result<(), String> {
    let own = requester == Some(decider.principal);
    if tier >= RiskTier::L3Privileged {
        return if decider.role >= Role::Admin {
            Ok(())
        } else {
            Err(format!(
                "{} actions can only be approved by an admin or owner",
                tier.as_str()
            ))
        };
    }
    if decider.role >= Role::Operator {
        return Ok(());
    }
    match (own, self_approval) {
        (true, true) => Ok(()),
        (true, false) => {
            Err("self-approval is off (governance.self_approval): an operator must decide".into())
        }
        (false, _) => Err(match requester {
            Some(_) => {
                "this approval belongs to another user; only an operator or above may decide it"
                    .into()
            }
            None => "this approval belongs to system work; only an operator or above may decide it"
                .into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_approver_table() {
        use RiskTier::{L1Mutating as L1, L2Destructive as L2, L3Privileged as L3};
        let d = |principal, role| Decider { principal, role };
        let member = d("ann", Role::Member);
        let operator = d("ops", Role::Operator);
        let admin = d("adm", Role::Admin);
        // (decider, requester, tier, self_approval, allowed)
        let cases = [
            (member, Some("ann"), L1, true, true),
            (member, Some("ann"), L2, true, true),
            (member, Some("ann"), L1, false, false),
            (member, Some("ann"), L3, true, false),
            (member, Some("bob"), L1, true, false),
            (member, None, L1, true, false),
            (operator, Some("bob"), L2, true, true),
            (operator, None, L2, false, true),
            (operator, Some("bob"), L3, true, false),
            (operator, Some("ops"), L3, true, false),
            (admin, Some("bob"), L3, true, true),
            (
                d("telegram:42", Role::Member),
                Some("telegram:42"),
                L1,
                true,
                true,
            ),
            (
                d("telegram:42", Role::Member),
                Some("telegram:43"),
                L1,
                true,
                false,
            ),
        ];
        for (who, requester, tier, self_ok, want) in cases {
            assert_eq!(
                may_decide(who, requester, tier, self_ok).is_ok(),
                want,
                "{who:?} {requester:?} {tier:?} {self_ok}"
            );
        }
    }

    #[test]
    fn bypass_never_reaches_l3() {
        assert_eq!(
            bypass_ceiling(RiskTier::L3Privileged),
            Some(RiskTier::L2Destructive)
        );
        assert_eq!(
            bypass_ceiling(RiskTier::L1Mutating),
            Some(RiskTier::L1Mutating)
        );
        assert_eq!(bypass_ceiling(RiskTier::L0ReadOnly), None);
    }
}
