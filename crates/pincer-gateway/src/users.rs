//! `/v1/users…` and `/v1/emergency…` (D7, D8, D13): users and roles, bypass toggles, linked
//! chat accounts, and the emergency controls. Every change is audited with who made it.
//!
//! Beyond the `admin` scope: only an owner may make someone an owner or change an owner; a
//! user's bypass may be switched by that user or an admin, and on only while org policy
//! (`governance.bypass`) allows it.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::Utc;
use pincer_config::BypassPolicy;
use pincer_store::GovernanceError;
use pincer_types::Role;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::governance::Emergency;
use crate::handlers::{ApiJson, audit, schema};
use crate::{ApiError, AppState, Caller};

pub(crate) fn governance_error(e: GovernanceError) -> ApiError {
    match e {
        GovernanceError::NotFound(u) => ApiError::not_found(format!("no user `{u}`")),
        e @ GovernanceError::Exists(_) => {
            ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
        }
        e @ (GovernanceError::LastOwner(_)
        | GovernanceError::BypassLocked
        | GovernanceError::Disabled(_)) => {
            ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
        }
        GovernanceError::Invalid(m) => ApiError::bad_request("invalid_request", m),
        GovernanceError::Store(e) => ApiError::store(&e),
    }
}

fn forbidden(m: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", m)
}

/// Only an owner may touch an owner or make one.
fn check_owner_rule(actor: Role, target: Role, new: Option<Role>) -> Result<(), ApiError> {
    if (target == Role::Owner || new == Some(Role::Owner)) && actor != Role::Owner {
        return Err(forbidden(
            "only an owner may change an owner or make someone owner",
        ));
    }
    Ok(())
}

async fn user_json(st: &AppState, name: &str) -> Result<Value, ApiError> {
    let u = st
        .store
        .user(name)
        .await
        .map_err(governance_error)?
        .ok_or_else(|| ApiError::not_found(format!("no user `{name}`")))?;
    let ids = st.store.identities(name).await.map_err(governance_error)?;
    Ok(json!({"user": u, "identities": ids}))
}

pub(crate) async fn list(State(st): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let users = st.store.users().await.map_err(governance_error)?;
    let mut out = Vec::with_capacity(users.len());
    for u in users {
        let ids = st
            .store
            .identities(&u.name)
            .await
            .map_err(governance_error)?;
        out.push(json!({"user": u, "identities": ids}));
    }
    Ok(Json(
        json!({"users": out, "bypass_policy": st.governance.bypass}),
    ))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddUser {
    /// 1-64 of a-z, A-Z, 0-9, `-`, `_`, `.`.
    name: String,
    /// `owner`, `admin`, `operator` or `member`.
    role: String,
}

pub(crate) fn add_schema() -> Value {
    schema::<AddUser>()
}

fn role_of(s: &str) -> Result<Role, ApiError> {
    s.parse()
        .map_err(|e: String| ApiError::bad_request("invalid_request", e))
}

pub(crate) async fn add(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Caller>,
    ApiJson(body): ApiJson<AddUser>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let role = role_of(&body.role)?;
    check_owner_rule(who.role(), Role::Member, Some(role))?;
    let u = st
        .store
        .add_user(&body.name, role, Utc::now())
        .await
        .map_err(governance_error)?;
    audit(
        &st,
        "user.added",
        json!({"user": u.name, "role": u.role, "by": who.by()}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"user": u}))))
}

pub(crate) async fn get(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if who.principal() != name && who.role() < Role::Admin {
        return Err(ApiError::not_found(format!("no user `{name}`")));
    }
    Ok(Json(user_json(&st, &name).await?))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Bypass {
    /// On or off.
    enabled: bool,
}

pub(crate) fn bypass_schema() -> Value {
    schema::<Bypass>()
}

pub(crate) async fn bypass(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<Bypass>,
) -> Result<Json<Value>, ApiError> {
    let by = who.by();
    let actor = Actor {
        principal: who.principal(),
        role: who.role(),
        by: &by,
    };
    Ok(Json(
        change_user(&st, actor, &name, UserChange::Bypass(body.enabled)).await?,
    ))
}

/// Who changes a user.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// Their principal.
    pub principal: &'a str,
    /// Their role.
    pub role: Role,
    /// How the change is recorded (`user:<name>`).
    pub by: &'a str,
}

/// A change to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserChange {
    /// A new role (only an owner makes or changes an owner; the last owner stays).
    Role(Role),
    /// Disable (tokens, chat and pending approvals stop).
    Disable,
    /// Enable again.
    Enable,
    /// Switch bypass (the user themselves or an admin; on only while org policy allows).
    Bypass(bool),
}

/// Applies `change` to user `name` for `actor` — the one implementation behind `/v1/users…`
/// and the web page; audited. Admin scope is the caller's to check (bypass excepted: the user
/// themselves may switch their own).
///
/// # Errors
/// Typed API errors (404 unknown user, 403 not allowed, 409 conflicts such as the last owner).
pub async fn change_user(
    st: &AppState,
    actor: Actor<'_>,
    name: &str,
    change: UserChange,
) -> Result<Value, ApiError> {
    let target = st
        .store
        .user(name)
        .await
        .map_err(governance_error)?
        .ok_or_else(|| ApiError::not_found(format!("no user `{name}`")))?;
    match change {
        UserChange::Role(role) => {
            check_owner_rule(actor.role, target.role, Some(role))?;
            let u = st
                .store
                .set_role(name, role)
                .await
                .map_err(governance_error)?;
            audit(
                st,
                "user.role",
                json!({"user": name, "from": target.role, "to": u.role, "by": actor.by}),
            )
            .await?;
            Ok(json!({"user": u}))
        }
        UserChange::Disable => {
            check_owner_rule(actor.role, target.role, None)?;
            let d = st
                .store
                .disable_user(name, Utc::now())
                .await
                .map_err(governance_error)?;
            audit(
                st,
                "user.disabled",
                json!({"user": name, "approvals_denied": d.approvals_denied,
                       "tasks_canceled": d.tasks_canceled, "by": actor.by}),
            )
            .await?;
            for t in &d.tasks_canceled {
                st.events.publish("task.canceled", json!({"task": t}));
            }
            Ok(json!(d))
        }
        UserChange::Enable => {
            check_owner_rule(actor.role, target.role, None)?;
            let u = st.store.enable_user(name).await.map_err(governance_error)?;
            audit(st, "user.enabled", json!({"user": name, "by": actor.by})).await?;
            Ok(json!({"user": u}))
        }
        UserChange::Bypass(on) => {
            if actor.principal != name && actor.role < Role::Admin {
                return Err(forbidden(
                    "only the user themselves or an admin may switch a user's bypass",
                ));
            }
            if on && st.governance.bypass != BypassPolicy::Allowed {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "bypass_off",
                    "bypass is off by org policy (governance.bypass = \"off\")",
                ));
            }
            let u = st
                .store
                .set_bypass(name, on)
                .await
                .map_err(governance_error)?;
            audit(
                st,
                "user.bypass",
                json!({"user": u.name, "enabled": u.bypass, "by": actor.by}),
            )
            .await?;
            Ok(json!({"user": u}))
        }
    }
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserAction {
    /// For `role`: the new role.
    #[serde(default)]
    role: Option<String>,
    /// For `link`/`unlink`: the channel (`telegram`).
    #[serde(default)]
    channel: Option<String>,
    /// For `link`/`unlink`: the platform's sender id.
    #[serde(default)]
    sender: Option<String>,
}

pub(crate) fn action_schema() -> Value {
    schema::<UserAction>()
}

pub(crate) async fn act(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Caller>,
    Path((name, action)): Path<(String, String)>,
    raw: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: UserAction = if raw.iter().all(u8::is_ascii_whitespace) {
        UserAction::default()
    } else {
        serde_json::from_slice(&raw)
            .map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))?
    };
    // Unknown users are 404s whatever the action.
    st.store
        .user(&name)
        .await
        .map_err(governance_error)?
        .ok_or_else(|| ApiError::not_found(format!("no user `{name}`")))?;
    let now = Utc::now();
    let account = |b: &UserAction| -> Result<(String, String), ApiError> {
        match (&b.channel, &b.sender) {
            (Some(c), Some(s)) if !c.is_empty() && !s.is_empty() => Ok((c.clone(), s.clone())),
            _ => Err(ApiError::bad_request(
                "invalid_request",
                "give `channel` and `sender`",
            )),
        }
    };
    let by = who.by();
    let actor = Actor {
        principal: who.principal(),
        role: who.role(),
        by: &by,
    };
    let fields = match action.as_str() {
        "role" => {
            let role = role_of(body.role.as_deref().unwrap_or(""))?;
            change_user(&st, actor, &name, UserChange::Role(role)).await?
        }
        "disable" => change_user(&st, actor, &name, UserChange::Disable).await?,
        "enable" => change_user(&st, actor, &name, UserChange::Enable).await?,
        "link" => {
            let (channel, sender) = account(&body)?;
            st.store
                .link(&name, &channel, &sender, now)
                .await
                .map_err(governance_error)?;
            audit(
                &st,
                "user.linked",
                json!({"user": name, "channel": channel, "sender": sender, "by": who.by()}),
            )
            .await?;
            user_json(&st, &name).await?
        }
        "unlink" => {
            let (channel, sender) = account(&body)?;
            let owner = st
                .store
                .user_of_sender(&channel, &sender)
                .await
                .map_err(governance_error)?;
            if owner.as_ref().map(|u| u.name.as_str()) != Some(name.as_str()) {
                return Err(ApiError::not_found(format!(
                    "{channel}:{sender} is not linked to `{name}`"
                )));
            }
            st.store
                .unlink(&channel, &sender)
                .await
                .map_err(governance_error)?;
            audit(
                &st,
                "user.unlinked",
                json!({"user": name, "channel": channel, "sender": sender, "by": who.by()}),
            )
            .await?;
            user_json(&st, &name).await?
        }
        other => {
            return Err(ApiError::not_found(format!(
                "no user action `{other}` (role, disable, enable, link, unlink)"
            )));
        }
    };
    Ok(Json(fields))
}

pub(crate) async fn emergency_state(
    State(st): State<Arc<AppState>>,
) -> Result<Json<Value>, ApiError> {
    let c = st.store.controls().await.map_err(governance_error)?;
    Ok(Json(
        json!({"controls": c, "bypass_policy": st.governance.bypass}),
    ))
}

pub(crate) async fn emergency(
    State(st): State<Arc<AppState>>,
    Extension(who): Extension<Caller>,
    Path(control): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let control: Emergency = control.parse().map_err(ApiError::not_found)?;
    let mut report = crate::governance::emergency(
        &*st.store,
        st.audit.as_ref(),
        control,
        &who.by(),
        &crate::governance::hook_fingerprints(&st.hooks),
    )
    .await
    .map_err(governance_error)?;
    if control == Emergency::RotateCredentials {
        // Every token is revoked; the caller gets a new one with its scopes.
        let now = Utc::now();
        let mut name = format!("{}-{}", who.0.name, now.timestamp());
        if name.len() > 64 {
            name = format!("rotated-{}", now.timestamp());
        }
        let (secret, info) = st
            .store
            .create_token(&name, who.principal(), &who.0.scopes, None, now)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        audit(
            &st,
            "token.create",
            json!({"name": info.name, "user": info.user, "scopes": info.scopes, "by": who.by()}),
        )
        .await?;
        if let Some(m) = report.as_object_mut() {
            m.insert("token".into(), json!({"name": info.name, "secret": secret}));
        }
    }
    if control == Emergency::CancelRisky
        && let Some(ids) = report["canceled"].as_array()
    {
        for id in ids {
            st.events.publish("task.canceled", json!({"task": id}));
        }
    }
    Ok(Json(json!({"control": control.as_str(), "report": report})))
}
