//! Usage and budgets (B4): a [`ModelProvider`] wrapper around each model that records what
//! every call used and cost, and refuses a call **before it is sent** when it could push a
//! budget past its limit.
//!
//! The check counts what the request could cost at most: its estimated input tokens
//! ([`ChatRequest::estimate_input_tokens`]) plus its `max_tokens` of output, priced at the
//! model's `[models]` prices when they are configured (a model without prices counts towards
//! token limits only, and is refused by a cost limit only once that limit is already spent).
//! Limits are per UTC day and calendar month, for everything (`global`), for each user
//! (`per_user`) and per agent. A refusal is a [`ErrorKind::Budget`] error — the run fails with a
//! message that names the budget, not the model — and a `budget.refused` audit event; crossing
//! `warn_at` of a limit records `budget.warning` once.
//!
//! The user of a call is derived from its conversation's session key ([`user_of`]).

use std::sync::Arc;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use futures_util::StreamExt;
use pincer_audit::AuditLog;
use pincer_config::{BudgetsConfig, Limits};
use pincer_providers::{
    Capabilities, ChatRequest, CheckFuture, ErrorKind, EventStream, ModelProvider, ProviderError,
    StreamEvent,
};
use pincer_store::{Backend, UsageFilter, UsageRecord, UsageTotal};
use pincer_types::TokenUsage;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    /// Input.
    pub input: f64,
    /// Output.
    pub output: f64,
}

impl Prices {
    #[allow(
        clippy::cast_precision_loss,
        reason = "token counts are far below 2^52"
    )]
    fn cost(self, input: u64, output: u64) -> f64 {
        (input as f64 * self.input + output as f64 * self.output) / 1_000_000.0
    }
}

/// Who a conversation's calls count for: the chat account (`telegram:42`; in a group, the group
/// `telegram:group-100…`), the user of an API conversation (its session key names them:
/// `api:<user>:<session>`, `openai:<user>:<name>`), the owner for the local CLI, or the
/// conversation itself (schedules, hooks).
pub fn user_of(session: &str) -> String {
    let mut parts = session.splitn(3, ':');
    let (_agent, channel, rest) = (parts.next(), parts.next(), parts.next());
    match (channel, rest) {
        (Some("telegram"), Some(rest)) => match rest.strip_prefix("dm-") {
            Some(id) => format!("telegram:{id}"),
            None => format!("telegram:{rest}"),
        },
        (Some("openai" | "api"), Some(rest)) if rest.contains(':') => {
            rest.split(':').next().unwrap_or(rest).to_owned()
        }
        (Some("cli"), Some(_)) => crate::governance::CLI_PRINCIPAL.to_owned(),
        // The web page's chat: `<agent>:web:<user>`.
        (Some("web"), Some(user)) => user.to_owned(),
        (Some(channel), Some(rest)) => format!("{channel}:{rest}"),
        _ => session.to_owned(),
    }
}

/// Shared by every metered model of a process.
#[derive(Debug)]
pub struct Meter {
    /// Where usage goes.
    pub store: Arc<dyn Backend>,
    /// The limits.
    pub budgets: BudgetsConfig,
    /// Where refusals and warnings are recorded.
    pub audit: Arc<AuditLog>,
}

/// One model, metered.
#[derive(Debug, Clone)]
pub struct Metered {
    inner: Arc<dyn ModelProvider>,
    /// The alias (or model name) usage is recorded under.
    model: String,
    prices: Option<Prices>,
    meter: Arc<Meter>,
}

impl Metered {
    /// `inner`, recorded as `model` at `prices`.
    pub fn new(
        inner: Arc<dyn ModelProvider>,
        model: String,
        prices: Option<Prices>,
        meter: Arc<Meter>,
    ) -> Self {
        Self {
            inner,
            model,
            prices,
            meter,
        }
    }
}

fn start_of_day(now: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(now.year(), now.month(), now.day(), 0, 0, 0)
        .single()
        .unwrap_or(now)
}

fn start_of_month(now: DateTime<Utc>) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .single()
        .unwrap_or(now)
}

/// One limit in force for a call.
struct Check<'a> {
    scope: String,
    period: &'static str,
    since: DateTime<Utc>,
    filter: UsageFilter,
    tokens: Option<u64>,
    cost: Option<f64>,
    _limits: &'a Limits,
}

impl Meter {
    fn checks(&self, agent: &str, user: &str, now: DateTime<Utc>) -> Vec<Check<'_>> {
        let scopes: Vec<(String, UsageFilter, &Limits)> = [
            Some((
                "global".to_owned(),
                UsageFilter::default(),
                &self.budgets.global,
            )),
            Some((
                format!("user {user}"),
                UsageFilter {
                    user: Some(user.to_owned()),
                    ..UsageFilter::default()
                },
                &self.budgets.per_user,
            )),
            self.budgets.agents.get(agent).map(|l| {
                (
                    format!("agent {agent}"),
                    UsageFilter {
                        agent: Some(agent.to_owned()),
                        ..UsageFilter::default()
                    },
                    l,
                )
            }),
        ]
        .into_iter()
        .flatten()
        .filter(|(_, _, l)| l.any())
        .collect();
        let mut out = Vec::new();
        for (scope, filter, l) in scopes {
            for (period, since, tokens, cost) in [
                ("daily", start_of_day(now), l.daily_tokens, l.daily_cost_usd),
                (
                    "monthly",
                    start_of_month(now),
                    l.monthly_tokens,
                    l.monthly_cost_usd,
                ),
            ] {
                if tokens.is_some() || cost.is_some() {
                    out.push(Check {
                        scope: scope.clone(),
                        period,
                        since,
                        filter: UsageFilter {
                            since: Some(since),
                            ..filter.clone()
                        },
                        tokens,
                        cost,
                        _limits: l,
                    });
                }
            }
        }
        out
    }

    /// Refuses when a limit would be exceeded by `(tokens, cost)` more; otherwise returns what
    /// each limit had used (the baseline the call's record is compared with for warnings).
    async fn admit(
        &self,
        agent: &str,
        user: &str,
        tokens: u64,
        cost: Option<f64>,
    ) -> Result<Vec<UsageTotal>, ProviderError> {
        let now = Utc::now();
        let mut used = Vec::new();
        for c in self.checks(agent, user, now) {
            let spent = self.store.usage_total(&c.filter).await.map_err(|e| {
                ProviderError::new(
                    ErrorKind::Budget,
                    format!("the budget cannot be checked ({e}); nothing was sent"),
                )
            })?;
            let over = c
                .tokens
                .filter(|limit| spent.tokens().saturating_add(tokens) > *limit)
                .map(|limit| {
                    format!(
                        "{limit} tokens ({} used, this request may need {tokens})",
                        spent.tokens()
                    )
                })
                .or_else(|| {
                    c.cost
                        .filter(|limit| match cost {
                            Some(more) => spent.cost_usd + more > *limit,
                            None => spent.cost_usd >= *limit,
                        })
                        .map(|limit| format!("${limit:.2} (${:.4} used)", spent.cost_usd))
                });
            if let Some(what) = over {
                let resets = if c.period == "daily" {
                    "tomorrow (UTC)"
                } else {
                    "next month (UTC)"
                };
                crate::runtime::record(
                    &self.audit,
                    "budget.refused",
                    json!({"agent": agent, "user": user, "scope": c.scope, "period": c.period,
                           "limit": what, "since": c.since}),
                )
                .await;
                return Err(ProviderError::new(
                    ErrorKind::Budget,
                    format!(
                        "the {} budget for {} is reached: {what}. Nothing was sent; it resets {resets}.",
                        c.period, c.scope
                    ),
                ));
            }
            used.push(spent);
        }
        Ok(used)
    }

    /// Records a call, then a warning for every limit it carried past `warn_at`, measured from
    /// what `admit` found each limit had used (no second read).
    async fn record(&self, record: UsageRecord, before: Vec<UsageTotal>) {
        let checks = self.checks(&record.agent, &record.user, record.at);
        if let Err(e) = self.store.record_usage(&record).await {
            eprintln!("pincer: recording usage failed: {e}");
            return;
        }
        let added = record.input_tokens.saturating_add(record.output_tokens);
        let warn = self.budgets.warn_at;
        for (c, b) in checks.iter().zip(before) {
            #[allow(clippy::cast_precision_loss, reason = "limits are far below 2^52")]
            let crossed_tokens = c.tokens.is_some_and(|l| {
                let line = l as f64 * warn;
                (b.tokens() as f64) < line && (b.tokens().saturating_add(added) as f64) >= line
            });
            let crossed_cost = c.cost.is_some_and(|l| {
                let line = l * warn;
                let after = b.cost_usd + record.cost_usd.unwrap_or(0.0);
                b.cost_usd < line && after >= line
            });
            if crossed_tokens || crossed_cost {
                crate::runtime::record(
                    &self.audit,
                    "budget.warning",
                    json!({"agent": record.agent, "user": record.user, "scope": c.scope,
                           "period": c.period, "warn_at": warn,
                           "limit_tokens": c.tokens, "limit_cost_usd": c.cost}),
                )
                .await;
                eprintln!(
                    "pincer: {} {} budget is {:.0}% used",
                    c.scope,
                    c.period,
                    warn * 100.0
                );
            }
        }
    }
}

impl Metered {
    /// `inner`, with the call's usage recorded when it finishes, before the finish is passed on
    /// (so a one-shot `pincer ask` cannot exit with the record unwritten, and the run's next call
    /// is checked against it). Other events pass straight through.
    fn recording(
        &self,
        inner: EventStream,
        context: &pincer_providers::CallContext,
        before: Vec<UsageTotal>,
    ) -> impl futures_util::Stream<Item = Result<StreamEvent, ProviderError>> + Send + 'static {
        let meter = self.meter.clone();
        let (model, prices) = (self.model.clone(), self.prices);
        let (agent, session) = (context.agent.clone(), context.session.clone());
        let mut usage = TokenUsage::default();
        let mut before = before;
        inner.then(move |item| {
            let record = match &item {
                Ok(StreamEvent::Usage(u)) => {
                    usage = *u;
                    None
                }
                Ok(StreamEvent::Finish(_)) => Some(UsageRecord {
                    at: Utc::now(),
                    agent: agent.clone(),
                    user: user_of(&session),
                    session: session.clone(),
                    model: model.clone(),
                    input_tokens: usage.input_tokens,
                    output_tokens: usage.output_tokens,
                    cost_usd: prices.map(|p| p.cost(usage.input_tokens, usage.output_tokens)),
                }),
                _ => None,
            };
            let meter = meter.clone();
            let before = if record.is_some() {
                std::mem::take(&mut before)
            } else {
                Vec::new()
            };
            async move {
                if let Some(r) = record {
                    meter.record(r, before).await;
                }
                item
            }
        })
    }
}

impl ModelProvider for Metered {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn stream(&self, request: &ChatRequest, cancel: CancellationToken) -> EventStream {
        if !self.meter.budgets.any() {
            // Nothing to check first: no task, no channel — the inner stream, watched.
            let inner = self.inner.stream(request, cancel);
            return Box::pin(self.recording(inner, &request.context, Vec::new()));
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let this = self.clone();
        let request = request.clone();
        tokio::spawn(async move {
            let agent = request.context.agent.clone();
            let user = user_of(&request.context.session);
            let input = request.estimate_input_tokens();
            let output = u64::from(request.max_tokens);
            let cost = this.prices.map(|p| p.cost(input, output));
            let used = match this
                .meter
                .admit(&agent, &user, input.saturating_add(output), cost)
                .await
            {
                Ok(used) => used,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let mut inner = Box::pin(this.recording(
                this.inner.stream(&request, cancel),
                &request.context,
                used,
            ));
            while let Some(item) = inner.next().await {
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        });
        Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }

    fn check(&self) -> CheckFuture {
        self.inner.check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_come_from_the_conversation() {
        assert_eq!(user_of("main:telegram:dm-42"), "telegram:42");
        assert_eq!(
            user_of("main:telegram:group-100123"),
            "telegram:group-100123"
        );
        assert_eq!(user_of("main:openai:ann:req-0193"), "ann");
        assert_eq!(user_of("main:openai:ann:mychat"), "ann");
        assert_eq!(user_of("main:api:ann:default"), "ann");
        assert_eq!(user_of("main:cli:default"), "owner");
        assert_eq!(user_of("main:web:ann"), "ann");
        assert_eq!(user_of("main:hook:github"), "hook:github");
        assert_eq!(user_of("odd"), "odd");
    }

    #[test]
    fn prices_are_per_million_tokens() {
        let p = Prices {
            input: 2.0,
            output: 10.0,
        };
        assert!((p.cost(1_000_000, 100_000) - 3.0).abs() < 1e-9);
    }
}
