//! Scheduled jobs over HTTP (`/v1/jobs`, scopes `jobs:read` / `jobs:write`) and the one place a
//! job is validated and built — `pincer cron add` uses [`JobSpec::into_job`] too, so the CLI
//! and the API accept exactly the same jobs.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use pincer_config::NetworkMode;
use pincer_scheduler::jiff::Timestamp;
use pincer_scheduler::{Schedule, parse_duration};
use pincer_store::{Job, JobError};
use pincer_types::AgentId;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::handlers::{ApiJson, audit};
use crate::{ApiError, AppState, Caller};

/// Longest job message.
const MAX_MESSAGE: usize = 64 * 1024;
/// Longest jitter.
const MAX_JITTER_SECS: u64 = 3600;

/// chrono → jiff.
pub fn to_ts(t: DateTime<Utc>) -> Option<Timestamp> {
    Timestamp::from_nanosecond(i128::from(t.timestamp_nanos_opt()?)).ok()
}

/// jiff → chrono.
pub fn from_ts(t: Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.as_second(), u32::try_from(t.subsec_nanosecond()).ok()?)
}

/// A stored job's schedule.
///
/// # Errors
/// A message when the stored schedule no longer parses.
pub fn schedule_of(job: &Job) -> Result<Schedule, String> {
    match job.kind.as_str() {
        "at" => job
            .spec
            .parse::<Timestamp>()
            .map(Schedule::At)
            .map_err(|e| e.to_string()),
        "every" => {
            let every = parse_duration(&job.spec).map_err(|e| e.to_string())?;
            let anchor = to_ts(job.anchor).ok_or("bad anchor")?;
            Ok(Schedule::Every { every, anchor })
        }
        "cron" => Schedule::cron(&job.spec, &job.tz).map_err(|e| e.to_string()),
        other => Err(format!("unknown schedule kind `{other}`")),
    }
}

/// Where job results and alerts may go.
#[derive(Debug, Clone, Default)]
pub struct DeliveryPolicy {
    /// Channels that run in this server (`telegram`).
    pub channels: BTreeSet<String>,
    /// `security.network`.
    pub network: NetworkMode,
    /// `security.egress_allow`.
    pub egress_allow: Vec<String>,
    /// `security.egress_allow_private`.
    pub egress_allow_private: Vec<String>,
}

impl DeliveryPolicy {
    /// Checks a delivery target: a configured channel's chat, or a URL egress policy allows.
    ///
    /// # Errors
    /// Why it is refused.
    pub fn check(&self, target: &str) -> Result<(), String> {
        if let Some(e) = pincer_config::delivery_target_error(target) {
            return Err(e);
        }
        if target.starts_with("https://") {
            return pincer_policy::egress::EgressPolicy {
                network: self.network,
                allow: &self.egress_allow,
                allow_private: &self.egress_allow_private,
            }
            .check(target)
            .map(|_| ())
            .map_err(|e| format!("`{target}`: {e}"));
        }
        // The shape check above leaves `<channel>:<chat>`.
        let channel = target.split(':').next().unwrap_or_default();
        if self.channels.contains(channel) {
            Ok(())
        } else {
            Err(format!(
                "`{target}`: the {channel} channel is not enabled ([channels.{channel}])"
            ))
        }
    }
}

/// A job to add (`POST /v1/jobs`, `pincer cron add`): exactly one of `at`, `every`, `cron`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Unique name (1-64 of a-z, A-Z, 0-9, -, _).
    pub name: String,
    /// Once: an RFC 3339 time or a delay (`20m`).
    #[serde(default)]
    pub at: Option<String>,
    /// Repeatedly: an interval (`2s`, `15m`, `1h`), first run one interval from now.
    #[serde(default)]
    pub every: Option<String>,
    /// A cron expression (5 fields, or 6 with seconds first).
    #[serde(default)]
    pub cron: Option<String>,
    /// IANA time zone for `cron` (default UTC).
    #[serde(default = "default_tz")]
    pub tz: String,
    /// The agent that runs it (default `main`).
    #[serde(default = "default_agent")]
    pub agent: String,
    /// `isolated` (a fresh session per run, default) or `main` (one session for the job).
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Runs missed while the server was down: `skip` (default) or `run_once`.
    #[serde(default = "default_missed")]
    pub missed: String,
    /// Seconds a run may take (default 600).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// The message each run sends.
    pub message: String,
    /// Where results and failure alerts go: `telegram:<chat id>` or an https URL.
    #[serde(default)]
    pub deliver: Option<String>,
    /// Up to this many seconds of fixed per-job delay (spreads top-of-hour jobs; default 0).
    #[serde(default)]
    pub jitter_secs: u64,
}

fn default_tz() -> String {
    "UTC".into()
}
fn default_agent() -> String {
    "main".into()
}
fn default_mode() -> String {
    "isolated".into()
}
fn default_missed() -> String {
    "skip".into()
}
fn default_timeout() -> u64 {
    600
}

impl JobSpec {
    /// Validates the spec and builds the job with its first run after `now`.
    ///
    /// # Errors
    /// A message naming the bad field.
    pub fn into_job(
        self,
        now: Timestamp,
        agents: &BTreeSet<AgentId>,
        delivery: &DeliveryPolicy,
    ) -> Result<Job, String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err("name: use 1-64 of a-z, A-Z, 0-9, -, _".into());
        }
        let agent: AgentId = self.agent.parse().map_err(|e| format!("agent: {e}"))?;
        if !agents.contains(&agent) {
            return Err(format!("agent: no agent `{agent}`"));
        }
        if !matches!(self.mode.as_str(), "isolated" | "main") {
            return Err("mode: `isolated` or `main`".into());
        }
        if !matches!(self.missed.as_str(), "skip" | "run_once") {
            return Err("missed: `skip` or `run_once`".into());
        }
        if !(1..=86_400).contains(&self.timeout_secs) {
            return Err("timeout_secs: 1..=86400".into());
        }
        if self.message.trim().is_empty() || self.message.len() > MAX_MESSAGE {
            return Err("message: 1 to 65536 bytes".into());
        }
        if self.jitter_secs > MAX_JITTER_SECS {
            return Err(format!("jitter_secs: at most {MAX_JITTER_SECS}"));
        }
        if let Some(d) = &self.deliver {
            delivery.check(d).map_err(|e| format!("deliver: {e}"))?;
        }
        // Every kind records its zone (and `at`/`every` jobs are shown in it): never accept one
        // that does not exist.
        pincer_scheduler::check_zone(&self.tz).map_err(|e| format!("tz: {e}"))?;
        let (kind, spec, sched) = match (self.at, self.every, self.cron) {
            (Some(a), None, None) => {
                let s = Schedule::at(&a, now).map_err(|e| format!("at: {e}"))?;
                let Schedule::At(t) = &s else {
                    return Err("at: not a time".into());
                };
                ("at", t.to_string(), s)
            }
            (None, Some(e), None) => {
                let s = Schedule::every(&e, now).map_err(|e| format!("every: {e}"))?;
                ("every", e, s)
            }
            (None, None, Some(c)) => {
                let s = Schedule::cron(&c, &self.tz).map_err(|e| format!("cron: {e}"))?;
                ("cron", c, s)
            }
            _ => return Err("give exactly one of at, every, cron".into()),
        };
        let next = sched
            .next_after(now)
            .and_then(from_ts)
            .ok_or("that schedule never runs (a time in the past?)")?;
        Ok(Job {
            name: self.name,
            agent,
            kind: kind.into(),
            spec,
            tz: self.tz,
            anchor: from_ts(now).unwrap_or_else(Utc::now),
            message: self.message,
            mode: self.mode,
            missed: self.missed,
            timeout_secs: self.timeout_secs,
            enabled: true,
            next_run: Some(next),
            created_at: Utc::now(),
            deliver: self.deliver,
            jitter_secs: self.jitter_secs,
            failures: 0,
            retry: None,
        })
    }
}

pub(crate) fn job_spec_schema() -> Value {
    crate::handlers::schema::<JobSpec>()
}

fn job_error(e: JobError) -> ApiError {
    match e {
        e @ JobError::NotFound(_) => ApiError::not_found(e.to_string()),
        e @ JobError::Exists(_) => ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()),
        JobError::Store(e) => ApiError::store(&e),
    }
}

async fn existing(st: &AppState, name: &str) -> Result<Job, ApiError> {
    st.store
        .job(name)
        .await
        .map_err(job_error)?
        .ok_or_else(|| ApiError::not_found(format!("no job named `{name}`")))
}

pub(crate) async fn list(State(st): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let jobs = st.store.jobs().await.map_err(job_error)?;
    Ok(Json(json!({"jobs": jobs})))
}

/// A job from `spec` as of now, validated against the server's agents and delivery policy (the
/// API's and the web page's one way in).
///
/// # Errors
/// What is wrong with the spec.
pub fn job_from_spec(st: &AppState, spec: JobSpec) -> Result<pincer_store::Job, String> {
    spec.into_job(Timestamp::now(), &st.agents, &st.delivery)
}

pub(crate) async fn add(
    State(st): State<Arc<AppState>>,
    Extension(Caller(who)): Extension<Caller>,
    ApiJson(spec): ApiJson<JobSpec>,
) -> Result<Response, ApiError> {
    let job = job_from_spec(&st, spec).map_err(|e| ApiError::bad_request("invalid_request", e))?;
    st.store.add_job(&job).await.map_err(job_error)?;
    audit(
        &st,
        "job.added",
        json!({"job": job.name, "kind": job.kind, "spec": job.spec, "agent": job.agent,
               "by": format!("token:{}", who.name)}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"job": job}))).into_response())
}

pub(crate) async fn get(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let job = existing(&st, &name).await?;
    let runs = st.store.job_runs(&name, 20).await.map_err(job_error)?;
    Ok(Json(json!({"job": job, "runs": runs})))
}

pub(crate) async fn runs(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    existing(&st, &name).await?;
    let runs = st.store.job_runs(&name, 100).await.map_err(job_error)?;
    Ok(Json(json!({"runs": runs})))
}

pub(crate) async fn remove(
    State(st): State<Arc<AppState>>,
    Extension(Caller(who)): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    st.store.remove_job(&name).await.map_err(job_error)?;
    audit(
        &st,
        "job.removed",
        json!({"job": name, "by": format!("token:{}", who.name)}),
    )
    .await?;
    Ok(Json(json!({"removed": name})))
}

/// Enables a job; its next run moves past now, so no burst of missed runs follows.
pub async fn enable_job(store: &dyn pincer_store::Backend, name: &str) -> Result<(), JobError> {
    let job = store
        .job(name)
        .await?
        .ok_or_else(|| JobError::NotFound(name.to_owned()))?;
    let next = schedule_of(&job)
        .ok()
        .and_then(|s| s.next_after(Timestamp::now()))
        .and_then(from_ts);
    store.set_job_enabled(name, true).await?;
    store.set_next_run(name, next).await
}

/// Makes a job due now (the scheduler picks it up within a second).
pub async fn run_job_now(store: &dyn pincer_store::Backend, name: &str) -> Result<(), JobError> {
    let now = to_ts(Utc::now()).and_then(from_ts);
    store.set_next_run(name, now).await
}

pub(crate) async fn act(
    State(st): State<Arc<AppState>>,
    Extension(Caller(who)): Extension<Caller>,
    Path((name, action)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let kind = match action.as_str() {
        "enable" => {
            enable_job(&*st.store, &name).await.map_err(job_error)?;
            "job.enabled"
        }
        "disable" => {
            st.store
                .set_job_enabled(&name, false)
                .await
                .map_err(job_error)?;
            "job.disabled"
        }
        "run" => {
            run_job_now(&*st.store, &name).await.map_err(job_error)?;
            "job.run"
        }
        other => {
            return Err(ApiError::not_found(format!(
                "no action `{other}` (enable, disable, run)"
            )));
        }
    };
    audit(
        &st,
        kind,
        json!({"job": name, "by": format!("token:{}", who.name)}),
    )
    .await?;
    let job = existing(&st, &name).await?;
    Ok(Json(json!({"job": job})))
}
