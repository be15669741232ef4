//! `[storage]`: where state lives. Without `url`, the embedded SQLite database in the home
//! (zero setup). With `url = "postgres://user@host:port/db"`, a Postgres database several
//! `pincer serve` processes can share; its password comes from the environment variable named by
//! `password_env` (never from the file — a URL carrying a password is refused).

use serde::{Deserialize, Serialize};

/// `[storage]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `postgres://user@host:port/db`; absent: SQLite in the home.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Environment variable holding the database password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// A CA certificate (PEM) to trust besides the system's, for `sslmode=require`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
}

impl StorageConfig {
    /// Whether this is the default (SQLite) configuration.
    pub fn is_default(&self) -> bool {
        self == &Self::default()
    }

    /// Validation errors, `(key, message)`.
    pub(crate) fn errors(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        if let Some(url) = &self.url {
            let rest = url
                .strip_prefix("postgres://")
                .or_else(|| url.strip_prefix("postgresql://"));
            match rest {
                None => errs.push((
                    "storage.url".into(),
                    "must be a postgres:// URL (leave it out for the embedded SQLite database)"
                        .into(),
                )),
                Some(rest) => {
                    let auth = rest.split_once('@').map(|(a, _)| a);
                    if auth.is_some_and(|a| a.contains(':')) {
                        errs.push((
                            "storage.url".into(),
                            "must not contain a password; name an environment variable in storage.password_env".into(),
                        ));
                    }
                }
            }
        }
        if let Some(var) = &self.password_env
            && !crate::credential_ref_ok(var)
        {
            errs.push((
                "storage.password_env".into(),
                crate::credential::CREDENTIAL_REF.into(),
            ));
        }
        if let Some(f) = &self.ca_file {
            if !f.is_absolute() {
                errs.push(("storage.ca_file".into(), "must be an absolute path".into()));
            }
            if !self
                .url
                .as_deref()
                .is_some_and(|u| u.contains("sslmode=require"))
            {
                errs.push((
                    "storage.ca_file".into(),
                    "is only used with a storage.url that has sslmode=require".into(),
                ));
            }
        }
        if self.password_env.is_some() && self.url.is_none() {
            errs.push((
                "storage.password_env".into(),
                "is only used with storage.url".into(),
            ));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: Option<&str>, env: Option<&str>) -> StorageConfig {
        StorageConfig {
            url: url.map(str::to_owned),
            password_env: env.map(str::to_owned),
            ca_file: None,
        }
    }

    #[test]
    fn passwords_never_live_in_the_file() {
        assert!(cfg(None, None).errors().is_empty());
        assert!(
            cfg(Some("postgres://pincer@db:5432/p"), Some("PG_PASS"))
                .errors()
                .is_empty()
        );
        let e = cfg(Some("postgres://pincer:s3cret@db/p"), None).errors();
        assert_eq!(e[0].0, "storage.url");
        assert!(e[0].1.contains("password"));
        assert_eq!(cfg(Some("mysql://x"), None).errors()[0].0, "storage.url");
        assert_eq!(
            cfg(None, Some("PG_PASS")).errors()[0].0,
            "storage.password_env"
        );
        assert_eq!(
            cfg(Some("postgres://p@h/d"), Some("bad name")).errors()[0].0,
            "storage.password_env"
        );
    }
}
