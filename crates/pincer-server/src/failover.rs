//! Model failover (B2): a [`ModelProvider`] over a chain of `[models]` aliases, each reachable
//! with one or more API keys.
//!
//! A call goes to the first alias whose model and key are usable (not cooling down, not
//! disabled). When it fails *before any of its answer was produced* with an error worth moving
//! on from — rate limit, overload, timeout, server, network, or an answer that broke the wire
//! format — the next key of the same alias is tried, then the next alias. Each failure moves the
//! key (when the alias has several) and, once all its keys failed, the model one rung down the
//! cooldown ladder (`[failover] cooldown_secs`), kept in the store so restarts and other
//! processes skip it too; a success resets it. An auth or billing error disables that key until
//! an operator clears it (`pincer models clear key:VAR`). A bad request is returned as it is
//! (another model would refuse it too). Once any answer text or tool call has been produced the
//! call never switches: the error is returned, so a transcript never holds half of one model's
//! answer continued by another.
//!
//! Every switch, cooldown and disabled key is audited (`model.failover`, `model.key_disabled`).
//! Health is read from the store at most once a second per process (a cached view), and a
//! healthy call writes nothing, so failover costs a healthy turn nothing measurable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::StreamExt;
use pincer_audit::AuditLog;
use pincer_providers::{
    Capabilities, ChatRequest, CheckFuture, ErrorKind, EventStream, ModelProvider, ProviderError,
    StreamEvent,
};
use pincer_store::{Backend, ModelHealth};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// One key of one alias.
#[derive(Debug, Clone)]
pub struct Route {
    /// The `[models]` alias.
    pub alias: String,
    /// The model name sent.
    pub model: String,
    /// The environment variable holding this key (`None`: the provider needs none).
    pub key_var: Option<String>,
    /// The client, built with this key.
    pub provider: Arc<dyn ModelProvider>,
}

/// The subject an alias's health is kept under.
pub fn model_subject(alias: &str) -> String {
    format!("model:{alias}")
}

/// The subject an API key's health is kept under.
pub fn key_subject(var: &str) -> String {
    format!("key:{var}")
}

/// How often the cached view of health is re-read.
const HEALTH_TTL: Duration = Duration::from_secs(1);

/// Health by subject, as last read.
type Snapshot = Arc<HashMap<String, ModelHealth>>;

/// A per-process view of model health, re-read from the store at most once per [`HEALTH_TTL`].
#[derive(Debug)]
pub struct HealthView {
    store: Arc<dyn Backend>,
    cache: Mutex<Option<(Instant, Snapshot)>>,
}

impl HealthView {
    /// A view of `store`.
    pub fn new(store: Arc<dyn Backend>) -> Self {
        Self {
            store,
            cache: Mutex::new(None),
        }
    }

    async fn snapshot(&self) -> Snapshot {
        let fresh = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|(at, _)| at.elapsed() < HEALTH_TTL)
            .map(|(_, m)| m.clone());
        if let Some(m) = fresh {
            return m;
        }
        let map: HashMap<String, ModelHealth> = match self.store.model_health().await {
            Ok(all) => all.into_iter().map(|h| (h.subject.clone(), h)).collect(),
            Err(e) => {
                eprintln!(
                    "pincer: reading model health failed: {e}; assuming every model is usable"
                );
                HashMap::new()
            }
        };
        let map = Arc::new(map);
        *self.cache.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), map.clone()));
        map
    }

    /// Forgets the cached view (after this process changed health).
    fn invalidate(&self) {
        *self.cache.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// The failover provider.
#[derive(Debug, Clone)]
pub struct Failover {
    routes: Arc<Vec<Route>>,
    health: Arc<HealthView>,
    ladder: Arc<Vec<Duration>>,
    audit: Arc<AuditLog>,
    agent: String,
}

/// Whether an error is worth trying the next key or model for.
fn moves_on(kind: ErrorKind) -> bool {
    kind.is_retryable() || kind == ErrorKind::Malformed
}

impl Failover {
    /// Failover over `routes` (in chain order, keys of one alias together).
    pub fn new(
        routes: Vec<Route>,
        health: Arc<HealthView>,
        ladder: Vec<Duration>,
        audit: Arc<AuditLog>,
        agent: String,
    ) -> Self {
        Self {
            routes: Arc::new(routes),
            health,
            ladder: Arc::new(ladder),
            audit,
            agent,
        }
    }

    /// The routes a request may use, in order: all of them, or — when `request.model` names an
    /// alias of the chain — that alias first (or only it, when the request is strict).
    fn order(&self, request: &ChatRequest) -> Result<Vec<Route>, ProviderError> {
        let aliases: Vec<&str> = self.routes.iter().map(|r| r.alias.as_str()).collect();
        let wanted = request.model.as_str();
        if wanted.is_empty() || aliases.first() == Some(&wanted) && !request.strict_model {
            return Ok(self.routes.to_vec());
        }
        if !aliases.contains(&wanted) {
            return Err(ProviderError::new(
                ErrorKind::BadRequest,
                format!(
                    "model `{wanted}` is not one this agent may use ({})",
                    dedup(&aliases).join(", ")
                ),
            ));
        }
        let (mut first, rest): (Vec<Route>, Vec<Route>) =
            self.routes.iter().cloned().partition(|r| r.alias == wanted);
        if !request.strict_model {
            first.extend(rest);
        }
        Ok(first)
    }
}

fn dedup<'a>(v: &[&'a str]) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for a in v {
        if !out.contains(a) {
            out.push(a);
        }
    }
    out
}

impl ModelProvider for Failover {
    fn name(&self) -> &'static str {
        "failover"
    }

    fn capabilities(&self) -> Capabilities {
        // What every model in the chain supports.
        self.routes.iter().map(|r| r.provider.capabilities()).fold(
            Capabilities {
                tools: true,
                streaming: true,
            },
            |a, b| Capabilities {
                tools: a.tools && b.tools,
                streaming: a.streaming && b.streaming,
            },
        )
    }

    fn stream(&self, request: &ChatRequest, cancel: CancellationToken) -> EventStream {
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let this = self.clone();
        let request = request.clone();
        tokio::spawn(async move {
            let routes = match this.order(&request) {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            this.run(routes, request, cancel, tx).await;
        });
        Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
    }

    fn check(&self) -> CheckFuture {
        match self.routes.first() {
            Some(r) => r.provider.check(),
            None => Box::pin(async {
                Err(ProviderError::new(
                    ErrorKind::BadRequest,
                    "an empty model chain",
                ))
            }),
        }
    }
}

type Tx = tokio::sync::mpsc::Sender<Result<StreamEvent, ProviderError>>;

impl Failover {
    async fn run(
        &self,
        routes: Vec<Route>,
        request: ChatRequest,
        cancel: CancellationToken,
        tx: Tx,
    ) {
        let health = self.health.snapshot().await;
        let now = Utc::now();
        let usable = |subject: &str| health.get(subject).is_none_or(|h| h.usable(now));
        let mut last: Option<ProviderError> = None;
        let mut skipped = Vec::new();
        let mut i = 0;
        while i < routes.len() {
            let alias = routes[i].alias.clone();
            let keys: Vec<&Route> = routes[i..]
                .iter()
                .take_while(|r| r.alias == alias)
                .collect();
            i += keys.len();
            if !usable(&model_subject(&alias)) {
                skipped.push(format!("{alias} (cooling down)"));
                continue;
            }
            let several_keys = keys.len() > 1;
            let mut alias_failed = None;
            for route in keys {
                if let Some(var) = &route.key_var
                    && !usable(&key_subject(var))
                {
                    continue;
                }
                let mut req = request.clone();
                req.model.clone_from(&route.model);
                req.strict_model = false;
                let mut inner = route.provider.stream(&req, cancel.clone());
                let mut produced = false;
                let outcome = loop {
                    match inner.next().await {
                        Some(Ok(ev)) => {
                            produced |=
                                matches!(ev, StreamEvent::TextDelta(_) | StreamEvent::ToolCall(_));
                            let finished = matches!(ev, StreamEvent::Finish(_));
                            if tx.send(Ok(ev)).await.is_err() {
                                return;
                            }
                            if finished {
                                break Ok(());
                            }
                        }
                        Some(Err(e)) => break Err(e),
                        None => {
                            break Err(ProviderError::malformed(
                                "the answer ended without a finish event",
                            ));
                        }
                    }
                };
                match outcome {
                    Ok(()) => {
                        self.succeeded(&health, &alias, route.key_var.as_deref())
                            .await;
                        return;
                    }
                    Err(e)
                        if produced
                            || !(moves_on(e.kind)
                                || matches!(e.kind, ErrorKind::Auth | ErrorKind::Billing)) =>
                    {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                    Err(e) => {
                        if matches!(e.kind, ErrorKind::Auth | ErrorKind::Billing) {
                            if let Some(var) = &route.key_var {
                                self.disable_key(&alias, var, &e).await;
                            }
                        } else if several_keys && let Some(var) = &route.key_var {
                            self.key_failed(&alias, var, &e).await;
                        }
                        alias_failed = Some(e.clone());
                        last = Some(e);
                    }
                }
            }
            if let Some(e) = alias_failed {
                let next = routes[i..].first().map(|r| r.alias.clone());
                self.model_failed(&alias, next.as_deref(), &e).await;
            }
        }
        let e = last.unwrap_or_else(|| {
            ProviderError::new(
                ErrorKind::Overloaded,
                format!(
                    "no model of this agent can be used right now: {}; `pincer models status` shows why",
                    if skipped.is_empty() { "every key is disabled".to_owned() } else { skipped.join(", ") }
                ),
            )
        });
        let _ = tx.send(Err(e)).await;
    }

    async fn succeeded(
        &self,
        health: &HashMap<String, ModelHealth>,
        alias: &str,
        key: Option<&str>,
    ) {
        let mut subjects = vec![model_subject(alias)];
        subjects.extend(key.map(key_subject));
        let mut changed = false;
        for s in subjects {
            // A healthy subject has nothing to reset: no write on the healthy path.
            if health
                .get(&s)
                .is_some_and(|h| h.failures > 0 || h.cooldown_until.is_some())
            {
                if let Err(e) = self.health.store.record_model_success(&s).await {
                    eprintln!("pincer: recording model health: {e}");
                }
                changed = true;
            }
        }
        if changed {
            self.health.invalidate();
        }
    }

    /// Records a failure of `subject` on the ladder; returns when its cooldown ends.
    async fn climb(&self, subject: &str, e: &ProviderError) -> Option<chrono::DateTime<Utc>> {
        let h = self
            .health
            .store
            .record_model_failure(
                subject,
                e.kind.as_str(),
                &e.message,
                &self.ladder,
                Utc::now(),
            )
            .await;
        self.health.invalidate();
        match h {
            Ok(h) => h.cooldown_until,
            Err(err) => {
                eprintln!("pincer: recording model health: {err}");
                None
            }
        }
    }

    async fn key_failed(&self, alias: &str, var: &str, e: &ProviderError) {
        let until = self.climb(&key_subject(var), e).await;
        crate::runtime::record(
            &self.audit,
            "model.key_rotated",
            json!({"agent": self.agent, "model": alias, "key": var, "class": e.kind.as_str(),
                   "cooldown_until": until}),
        )
        .await;
    }

    async fn disable_key(&self, alias: &str, var: &str, e: &ProviderError) {
        if let Err(err) = self
            .health
            .store
            .disable_model_subject(&key_subject(var), e.kind.as_str(), &e.message, Utc::now())
            .await
        {
            eprintln!("pincer: recording model health: {err}");
        }
        self.health.invalidate();
        crate::runtime::record(
            &self.audit,
            "model.key_disabled",
            json!({"agent": self.agent, "model": alias, "key": var, "class": e.kind.as_str(),
                   "error": e.message}),
        )
        .await;
    }

    async fn model_failed(&self, alias: &str, next: Option<&str>, e: &ProviderError) {
        pincer_agent::stats::event("failover", alias);
        let until = self.climb(&model_subject(alias), e).await;
        crate::runtime::record(
            &self.audit,
            "model.failover",
            json!({"agent": self.agent, "from": alias, "to": next, "class": e.kind.as_str(),
                   "error": e.message, "cooldown_until": until}),
        )
        .await;
    }
}
