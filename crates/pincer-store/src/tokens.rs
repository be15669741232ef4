//! API tokens (D11): created with a name and scopes, shown once, stored only as a SHA-256 hash,
//! listed, revoked, rotated, optionally expiring.
//!
//! A token is `pnc_` followed by 43 characters of URL-safe base64 (32 random bytes from the OS).
//! Tokens are high-entropy, so an unsalted SHA-256 is enough to make a stolen database useless;
//! lookups are by hash and the final comparison is constant-time.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pincer_types::{Role, Scope};
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{SqliteStore, StoreError};

/// The prefix every token starts with (lets secret scanners recognise them).
pub const TOKEN_PREFIX: &str = "pnc_";

/// A stored token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// Unique name.
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// Created (or last rotated).
    pub created_at: DateTime<Utc>,
    /// Expiry, if any.
    pub expires_at: Option<DateTime<Utc>>,
    /// Revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Last successful use.
    pub last_used_at: Option<DateTime<Utc>>,
    /// The user it belongs to.
    pub user: String,
    /// That user's current role (`None`: the user does not exist).
    pub role: Option<Role>,
    /// Whether that user is disabled.
    pub user_disabled: bool,
}

/// How often a token's `last_used_at` is written: at most once per minute, so a busy client
/// does not turn every authenticated request into a write (it is shown in minutes and days).
pub const LAST_USED_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

impl TokenInfo {
    /// Whether a use at `now` should be recorded: never used, or last recorded at least
    /// [`LAST_USED_EVERY`] before `now` (or after it — a clock that went back).
    pub fn last_used_is_stale(&self, now: DateTime<Utc>) -> bool {
        self.last_used_at
            .is_none_or(|t| now - t >= LAST_USED_EVERY || t > now)
    }

    /// Usable at `now`: neither revoked nor expired, and its user exists and is enabled.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none()
            && self.expires_at.is_none_or(|e| e > now)
            && self.role.is_some()
            && !self.user_disabled
    }

    /// The scopes it may use now: those it holds that its user's role allows (a downgraded
    /// user's tokens lose the rest at once).
    pub fn effective_scopes(&self) -> Vec<Scope> {
        let role = self.role;
        self.scopes
            .iter()
            .copied()
            .filter(|s| role.is_some_and(|r| r.allows(*s)))
            .collect()
    }
}

/// Refuses scopes beyond what `role` may hold.
pub(crate) fn check_scopes(user: &str, role: Role, scopes: &[Scope]) -> Result<(), TokenError> {
    match scopes.iter().find(|s| !role.allows(**s)) {
        Some(s) => Err(TokenError::Invalid(format!(
            "user `{user}` is a {role}; a {role}'s token cannot hold `{}` (allowed: {})",
            s.as_str(),
            role.scopes()
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        None => Ok(()),
    }
}

/// A token operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The name is taken.
    #[error("a token named `{0}` already exists (revoke or rotate it)")]
    Exists(String),
    /// No such token.
    #[error("no token named `{0}`")]
    NotFound(String),
    /// Invalid input.
    #[error("{0}")]
    Invalid(String),
    /// The OS random source failed.
    #[error("no randomness available: {0}")]
    Random(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The token store seam.
#[async_trait]
pub trait TokenStore: Send + Sync + std::fmt::Debug {
    /// Creates a token for `user` (existing and enabled; `scopes` within the user's role);
    /// returns the secret (shown once) and its info.
    async fn create_token(
        &self,
        name: &str,
        user: &str,
        scopes: &[Scope],
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(String, TokenInfo), TokenError>;
    /// Every token, by name.
    async fn tokens(&self) -> Result<Vec<TokenInfo>, TokenError>;
    /// Revokes a token at once.
    async fn revoke_token(&self, name: &str, now: DateTime<Utc>) -> Result<TokenInfo, TokenError>;
    /// Replaces a token's secret (same name, scopes and expiry); the old secret stops working.
    async fn rotate_token(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, TokenInfo), TokenError>;
    /// The active token whose secret is `presented`, recording the use; `None` for anything
    /// unknown, revoked or expired.
    async fn authenticate(
        &self,
        presented: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<TokenInfo>, TokenError>;
}

pub(crate) fn new_secret() -> Result<String, TokenError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    Ok(format!("{TOKEN_PREFIX}{}", base64url(&bytes)))
}

fn base64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 2);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// The stored form of a secret.
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Equal in time independent of where the inputs differ (tokens, webhook and hook secrets).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn scopes_str(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

use crate::sqlite::stamp;

const COLUMNS: &str = "t.name, t.scopes, t.created_at, t.expires_at, t.revoked_at, t.last_used_at, \
                       t.user_name, u.role, u.disabled_at";
const FROM: &str = "tokens t LEFT JOIN users u ON u.name = t.user_name";

/// Scopes as stored (comma-separated).
pub(crate) fn parse_scopes(scopes: &str) -> Result<Vec<Scope>, StoreError> {
    scopes
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(StoreError::Corrupt))
        .collect()
}

fn row(r: &Row<'_>) -> Result<TokenInfo, StoreError> {
    let scopes: String = r.get(1)?;
    let opt = |s: Option<String>| s.map(|s| crate::sqlite::ts(&s)).transpose();
    Ok(TokenInfo {
        name: r.get(0)?,
        scopes: parse_scopes(&scopes)?,
        created_at: crate::sqlite::ts(&r.get::<_, String>(2)?)?,
        expires_at: opt(r.get(3)?)?,
        revoked_at: opt(r.get(4)?)?,
        last_used_at: opt(r.get(5)?)?,
        user: r.get(6)?,
        role: r
            .get::<_, Option<String>>(7)?
            .map(|s| s.parse().map_err(StoreError::Corrupt))
            .transpose()?,
        user_disabled: r.get::<_, Option<String>>(8)?.is_some(),
    })
}

fn by_name(c: &rusqlite::Connection, name: &str) -> Result<Option<TokenInfo>, StoreError> {
    let mut st = c.prepare_cached(&format!("SELECT {COLUMNS} FROM {FROM} WHERE t.name = ?1"))?;
    let mut rows = st.query(params![name])?;
    rows.next()?.map(row).transpose()
}

/// The names tokens and users take: 1-64 of `a-z A-Z 0-9 - _ .` (no `:`, so a name never
/// looks like a chat account's principal `telegram:<id>`).
pub(crate) fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

pub(crate) fn check_name(name: &str) -> Result<(), TokenError> {
    if plain_name(name) {
        Ok(())
    } else {
        Err(TokenError::Invalid(format!(
            "token name `{name}`: use 1-64 of a-z, A-Z, 0-9, `-`, `_`, `.`"
        )))
    }
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn create_token(
        &self,
        name: &str,
        user: &str,
        scopes: &[Scope],
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(String, TokenInfo), TokenError> {
        check_name(name)?;
        if scopes.is_empty() {
            return Err(TokenError::Invalid(
                "a token needs at least one scope".into(),
            ));
        }
        let secret = new_secret()?;
        let wanted = scopes.to_vec();
        let (name, hash, scopes) = (name.to_owned(), token_hash(&secret), scopes_str(scopes));
        let user = user.to_owned();
        let info = self
            .transact(move |c| {
                if by_name(c, &name)?.is_some() {
                    return Err(TokenError::Exists(name));
                }
                let owner = crate::users::get(c, &user)?
                    .ok_or_else(|| TokenError::Invalid(format!("no user `{user}`")))?;
                if owner.disabled_at.is_some() {
                    return Err(TokenError::Invalid(format!("user `{user}` is disabled")));
                }
                check_scopes(&user, owner.role, &wanted)?;
                c.prepare_cached(
                    "INSERT INTO tokens (name, hash, scopes, created_at, expires_at, user_name)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        name,
                        hash,
                        scopes,
                        stamp(now),
                        expires_at.map(stamp),
                        user
                    ])
                })
                .map_err(StoreError::from)?;
                by_name(c, &name)?.ok_or(TokenError::NotFound(name))
            })
            .await?;
        Ok((secret, info))
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>, TokenError> {
        Ok(self
            .with(|c| {
                let mut st =
                    c.prepare_cached(&format!("SELECT {COLUMNS} FROM {FROM} ORDER BY t.name"))?;
                let mut rows = st.query([])?;
                let mut v = Vec::new();
                while let Some(r) = rows.next()? {
                    v.push(row(r)?);
                }
                Ok(v)
            })
            .await?)
    }

    async fn revoke_token(&self, name: &str, now: DateTime<Utc>) -> Result<TokenInfo, TokenError> {
        let name = name.to_owned();
        self.transact(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE name = ?1",
                )
                .and_then(|mut st| st.execute(params![name, stamp(now)]))
                .map_err(StoreError::from)?;
            if n == 0 {
                return Err(TokenError::NotFound(name));
            }
            by_name(c, &name)?.ok_or(TokenError::NotFound(name))
        })
        .await
    }

    async fn rotate_token(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, TokenInfo), TokenError> {
        let secret = new_secret()?;
        let (name, hash) = (name.to_owned(), token_hash(&secret));
        let info = self
            .transact(move |c| {
                let n = c
                    .prepare_cached(
                        "UPDATE tokens SET hash = ?2, created_at = ?3, revoked_at = NULL,
                                last_used_at = NULL WHERE name = ?1",
                    )
                    .and_then(|mut st| st.execute(params![name, hash, stamp(now)]))
                    .map_err(StoreError::from)?;
                if n == 0 {
                    return Err(TokenError::NotFound(name));
                }
                by_name(c, &name)?.ok_or(TokenError::NotFound(name))
            })
            .await?;
        Ok((secret, info))
    }

    async fn authenticate(
        &self,
        presented: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<TokenInfo>, TokenError> {
        if !presented.starts_with(TOKEN_PREFIX) || presented.len() > 128 {
            return Ok(None);
        }
        let hash = token_hash(presented);
        let h = hash.clone();
        // Most requests only read (on the caller's thread when the connection is free); at most
        // once per LAST_USED_EVERY one single-statement update (atomic on its own) on the
        // store's thread. No transaction.
        Ok(self
            .look_or_call(
                move |c| match active_token(c, &h, now)? {
                    Some(info) if info.last_used_is_stale(now) => Ok(None),
                    found => Ok(Some(found)),
                },
                move |c| {
                    let Some(mut info) = active_token(c, &hash, now)? else {
                        return Ok::<_, StoreError>(None);
                    };
                    if info.last_used_is_stale(now) {
                        c.prepare_cached("UPDATE tokens SET last_used_at = ?2 WHERE name = ?1")
                            .and_then(|mut st| st.execute(params![info.name, stamp(now)]))?;
                        info.last_used_at = Some(now);
                    }
                    Ok(Some(info))
                },
            )
            .await?)
    }
}

/// The active token whose stored hash is `hash`, if any (compared in constant time).
fn active_token(
    c: &rusqlite::Connection,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<TokenInfo>, StoreError> {
    let found: Option<(String, String)> = c
        .prepare_cached("SELECT name, hash FROM tokens WHERE hash = ?1")
        .and_then(|mut st| st.query_row(params![hash], |r| Ok((r.get(0)?, r.get(1)?))))
        .optional()?;
    let Some((name, stored)) = found else {
        return Ok(None);
    };
    if !ct_eq(stored.as_bytes(), hash.as_bytes()) {
        return Ok(None);
    }
    Ok(by_name(c, &name)?.filter(|info| info.is_active(now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_known_vectors() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64url(&[0u8; 32]).len(), 43);
    }
}
