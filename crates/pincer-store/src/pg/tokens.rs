//! [`TokenStore`] on Postgres: the same hashing, names and checks as the SQLite backend (shared
//! helpers in `tokens.rs`); tokens created on one node authenticate on every node.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use pincer_types::Scope;

use crate::tokens::check_scopes;
use tokio_postgres::Row;

use super::{PgStore, db};
use crate::StoreError;
use crate::tokens::{
    TOKEN_PREFIX, TokenError, TokenInfo, TokenStore, check_name, ct_eq, new_secret, parse_scopes,
    scopes_str, token_hash,
};

const COLUMNS: &str = "t.name, t.scopes, t.created_at, t.expires_at, t.revoked_at, t.last_used_at, \
                       t.user_name, u.role, u.disabled_at";
const FROM: &str = "tokens t LEFT JOIN users u ON u.name = t.user_name";

fn row(r: &Row) -> Result<TokenInfo, StoreError> {
    Ok(TokenInfo {
        name: r.get(0),
        scopes: parse_scopes(r.get::<_, &str>(1))?,
        created_at: r.get(2),
        expires_at: r.get(3),
        revoked_at: r.get(4),
        last_used_at: r.get(5),
        user: r.get(6),
        role: r
            .get::<_, Option<&str>>(7)
            .map(|s| s.parse().map_err(StoreError::Corrupt))
            .transpose()?,
        user_disabled: r.get::<_, Option<DateTime<Utc>>>(8).is_some(),
    })
}

async fn by_name(c: &impl GenericClient, name: &str) -> Result<Option<TokenInfo>, StoreError> {
    c.query_opt(
        &format!("SELECT {COLUMNS} FROM {FROM} WHERE t.name = $1"),
        &[&name],
    )
    .await
    .map_err(|e| db(&e))?
    .as_ref()
    .map(row)
    .transpose()
}

#[async_trait]
impl TokenStore for PgStore {
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
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| db(&e))?;
        // The user's row is locked so a concurrent role change or disable waits for this.
        let owner = tx
            .query_opt(
                "SELECT role, disabled_at FROM users WHERE name = $1 FOR UPDATE",
                &[&user],
            )
            .await
            .map_err(|e| db(&e))?
            .ok_or_else(|| TokenError::Invalid(format!("no user `{user}`")))?;
        if owner.get::<_, Option<DateTime<Utc>>>(1).is_some() {
            return Err(TokenError::Invalid(format!("user `{user}` is disabled")));
        }
        let role = owner
            .get::<_, &str>(0)
            .parse()
            .map_err(StoreError::Corrupt)?;
        check_scopes(user, role, scopes)?;
        let n = tx
            .execute(
                "INSERT INTO tokens (name, hash, scopes, created_at, expires_at, user_name)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING",
                &[
                    &name,
                    &token_hash(&secret),
                    &scopes_str(scopes),
                    &now,
                    &expires_at,
                    &user,
                ],
            )
            .await
            .map_err(|e| db(&e))?;
        if n == 0 {
            return Err(TokenError::Exists(name.to_owned()));
        }
        let info = by_name(&tx, name)
            .await?
            .ok_or_else(|| TokenError::NotFound(name.to_owned()))?;
        tx.commit().await.map_err(|e| db(&e))?;
        Ok((secret, info))
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>, TokenError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!("SELECT {COLUMNS} FROM {FROM} ORDER BY t.name"),
                &[],
            )
            .await
            .map_err(|e| db(&e))?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    async fn revoke_token(&self, name: &str, now: DateTime<Utc>) -> Result<TokenInfo, TokenError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE name = $1",
                &[&name, &now],
            )
            .await
            .map_err(|e| db(&e))?;
        by_name(&client, name)
            .await?
            .ok_or_else(|| TokenError::NotFound(name.to_owned()))
    }

    async fn rotate_token(
        &self,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, TokenInfo), TokenError> {
        let secret = new_secret()?;
        let client = self.client().await?;
        client
            .execute(
                "UPDATE tokens SET hash = $2, created_at = $3, revoked_at = NULL,
                        last_used_at = NULL WHERE name = $1",
                &[&name, &token_hash(&secret), &now],
            )
            .await
            .map_err(|e| db(&e))?;
        let info = by_name(&client, name)
            .await?
            .ok_or_else(|| TokenError::NotFound(name.to_owned()))?;
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
        let client = self.client().await?;
        let found = client
            .query_opt("SELECT name, hash FROM tokens WHERE hash = $1", &[&hash])
            .await
            .map_err(|e| db(&e))?;
        let Some(found) = found else {
            return Ok(None);
        };
        let (name, stored): (String, String) = (found.get(0), found.get(1));
        if !ct_eq(stored.as_bytes(), hash.as_bytes()) {
            return Ok(None);
        }
        let mut info = match by_name(&client, &name).await? {
            Some(info) if info.is_active(now) => info,
            _ => return Ok(None),
        };
        // At most once per LAST_USED_EVERY: most requests write nothing.
        if info.last_used_is_stale(now) {
            client
                .execute(
                    "UPDATE tokens SET last_used_at = $2 WHERE name = $1",
                    &[&name, &now],
                )
                .await
                .map_err(|e| db(&e))?;
            info.last_used_at = Some(now);
        }
        Ok(Some(info))
    }
}
