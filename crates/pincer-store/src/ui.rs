//! Web admin page sessions (E6): a login exchanges an API token for a server-side session; the
//! browser holds only a random session id in an `HttpOnly` cookie. Only the id's SHA-256 is
//! stored. Every request re-reads the session together with its token and user, so revoking the
//! token, disabling the user or changing their role takes effect on the next click.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pincer_types::{Role, Scope};
use rusqlite::{OptionalExtension, params};

use crate::sqlite::{stamp, ts};
use crate::tokens::parse_scopes;
use crate::{SqliteStore, StoreError};

/// A live session, as a request sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiSession {
    /// The user.
    pub user: String,
    /// Their current role.
    pub role: Role,
    /// The token logged in with.
    pub token: String,
    /// That token's scopes, capped by the role.
    pub scopes: Vec<Scope>,
    /// The form token every state-changing request must carry.
    pub csrf: String,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// The web sessions seam.
#[async_trait]
pub trait UiSessionStore: Send + Sync + std::fmt::Debug {
    /// Records a session `id_hash` for the token named `token` until `expires_at`.
    async fn create_ui_session(
        &self,
        id_hash: &str,
        token: &str,
        csrf: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The session, when it exists, has not expired, and its token and user are still active.
    async fn ui_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UiSession>, StoreError>;
    /// Ends a session (logout); also drops expired ones.
    async fn end_ui_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Uses a one-time sign-in link (a session row with an empty CSRF token, which is never a
    /// session itself): removes it and returns its token's name when it had not expired.
    async fn take_ui_link(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError>;
}

/// Builds the session from the joined row, or `None` when anything no longer holds.
#[allow(clippy::too_many_arguments)]
pub(crate) fn live(
    user: String,
    role: Option<String>,
    disabled: bool,
    token: String,
    scopes: &str,
    revoked: bool,
    token_expired: bool,
    csrf: String,
    expires_at: DateTime<Utc>,
) -> Result<Option<UiSession>, StoreError> {
    let Some(role) = role else {
        return Ok(None);
    };
    if disabled || revoked || token_expired {
        return Ok(None);
    }
    let role: Role = role.parse().map_err(StoreError::Corrupt)?;
    let scopes = parse_scopes(scopes)?
        .into_iter()
        .filter(|s| role.allows(*s))
        .collect();
    Ok(Some(UiSession {
        user,
        role,
        token,
        scopes,
        csrf,
        expires_at,
    }))
}

#[async_trait]
impl UiSessionStore for SqliteStore {
    async fn create_ui_session(
        &self,
        id_hash: &str,
        token: &str,
        csrf: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (id, token, csrf) = (id_hash.to_owned(), token.to_owned(), csrf.to_owned());
        self.with(move |c| {
            c.prepare_cached(
                "INSERT INTO ui_sessions (id_hash, token_name, csrf, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![id, token, csrf, stamp(now), stamp(expires_at)])?;
            Ok(())
        })
        .await
    }

    async fn ui_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UiSession>, StoreError> {
        let id = id_hash.to_owned();
        self.with(move |c| {
            let row = c
                .prepare_cached(
                    "SELECT t.user_name, u.role, u.disabled_at, t.name, t.scopes, t.revoked_at,
                            t.expires_at, s.csrf, s.expires_at
                     FROM ui_sessions s JOIN tokens t ON t.name = s.token_name
                     LEFT JOIN users u ON u.name = t.user_name
                     WHERE s.id_hash = ?1 AND s.expires_at > ?2 AND s.csrf <> ''",
                )?
                .query_row(params![id, stamp(now)], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, String>(7)?,
                        r.get::<_, String>(8)?,
                    ))
                })
                .optional()?;
            let Some((user, role, disabled, token, scopes, revoked, texp, csrf, exp)) = row else {
                return Ok(None);
            };
            let token_expired = texp.map(|t| ts(&t)).transpose()?.is_some_and(|t| t <= now);
            live(
                user,
                role,
                disabled.is_some(),
                token,
                &scopes,
                revoked.is_some(),
                token_expired,
                csrf,
                ts(&exp)?,
            )
        })
        .await
    }

    async fn end_ui_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let id = id_hash.to_owned();
        self.with(move |c| {
            c.prepare_cached("DELETE FROM ui_sessions WHERE id_hash = ?1 OR expires_at <= ?2")?
                .execute(params![id, stamp(now)])?;
            Ok(())
        })
        .await
    }

    async fn take_ui_link(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let id = id_hash.to_owned();
        self.transact(move |c| {
            let token: Option<String> = c
                .prepare_cached(
                    "SELECT token_name FROM ui_sessions
                     WHERE id_hash = ?1 AND csrf = '' AND expires_at > ?2",
                )?
                .query_row(params![id, stamp(now)], |r| r.get(0))
                .optional()?;
            c.prepare_cached("DELETE FROM ui_sessions WHERE id_hash = ?1 AND csrf = ''")?
                .execute(params![id])?;
            Ok::<_, StoreError>(token)
        })
        .await
    }
}
