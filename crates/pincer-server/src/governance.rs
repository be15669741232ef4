//! The [`Governor`] the gate asks at every tool call (D7, D8): the org-wide emergency pause and
//! the requesting user's bypass, read from the store each time — so a pause or a revoked bypass
//! set by an admin in any process applies to the next action — and the tier each task's run
//! reached, recorded for `emergency cancel-risky`.

use std::sync::Arc;

use pincer_agent::{ControlsFuture, Governor};
use pincer_config::{BypassPolicy, GovernanceConfig};
use pincer_policy::{Controls, bypass_ceiling};
use pincer_store::Backend;
use std::collections::HashMap;

use pincer_types::{RiskTier, SessionId, TaskId};

use crate::worker::Active;

/// The local CLI's principal: the installation's owner (created by the store's migration).
pub const CLI_PRINCIPAL: &str = "owner";

/// Controls from the store.
#[derive(Debug)]
pub struct StoreGovernor {
    store: Arc<dyn Backend>,
    config: GovernanceConfig,
    /// Served runs: which task a session's run belongs to. `None`: a one-shot CLI run, whose
    /// principal is [`CLI_PRINCIPAL`].
    tasks: Option<Active>,
    /// The highest tier already recorded per task, so a run's repeated calls of one tier write
    /// once (bounded: forgotten past 1024 tasks, which only costs a redundant write).
    raised: std::sync::Mutex<HashMap<TaskId, RiskTier>>,
}

impl StoreGovernor {
    /// A governor over `store`; `tasks` maps served sessions to their tasks.
    pub fn new(store: Arc<dyn Backend>, config: GovernanceConfig, tasks: Option<Active>) -> Self {
        Self {
            store,
            config,
            tasks,
            raised: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Whether `tier` is above what was recorded for `task` (and remembers it).
    fn newly_reached(&self, task: TaskId, tier: RiskTier) -> bool {
        let mut raised = self
            .raised
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if raised.get(&task).is_some_and(|r| *r >= tier) {
            return false;
        }
        if raised.len() >= 1024 {
            raised.clear();
        }
        raised.insert(task, tier);
        true
    }

    async fn read(&self, session: Option<SessionId>, tier: RiskTier) -> anyhow::Result<Controls> {
        let org = self.store.controls().await?;
        let task = match (&self.tasks, session) {
            (Some(tasks), Some(s)) => tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&s)
                .map(|(t, _)| *t),
            _ => None,
        };
        if let Some(t) = task
            && tier >= RiskTier::L1Mutating
            && self.newly_reached(t, tier)
        {
            self.store.raise_risk(t, tier).await?;
        }
        let bypass_allowed =
            self.config.bypass == BypassPolicy::Allowed && org.bypass_locked.is_none();
        // Whose call it is matters only for bypass (off by default: one read per call then).
        let owner = match (task, &self.tasks) {
            _ if !bypass_allowed => None,
            (Some(t), _) => self.store.task(t).await?.and_then(|t| t.owner),
            (None, None) => Some(CLI_PRINCIPAL.to_owned()),
            (None, Some(_)) => None,
        };
        let bypass_up_to = match owner {
            Some(owner) if bypass_allowed => match self.store.user(&owner).await? {
                Some(u) if u.enabled() && u.bypass => {
                    bypass_ceiling(self.config.bypass_max_tier.tier())
                }
                _ => None,
            },
            _ => None,
        };
        Ok(Controls {
            paused: org.paused.is_some(),
            bypass_up_to,
        })
    }
}

impl Governor for StoreGovernor {
    fn controls(&self, session: Option<SessionId>, tier: RiskTier) -> ControlsFuture<'_> {
        Box::pin(async move {
            match self.read(session, tier).await {
                Ok(c) => c,
                Err(e) => {
                    // Fail closed: without knowing whether mutating actions are paused, they are.
                    eprintln!(
                        "pincer: reading the governance controls failed ({e:#}); mutating actions are refused until it works"
                    );
                    Controls {
                        paused: true,
                        bypass_up_to: None,
                    }
                }
            }
        })
    }
}
