//! What the CLI reads from its process environment, read once in one place.

use std::ffi::OsString;
use std::io::IsTerminal;

/// The process environment as the commands see it.
#[derive(Debug, Clone)]
pub struct Env {
    /// `PINCER_HOME`.
    pub pincer_home: Option<OsString>,
    /// `HOME`.
    pub home: Option<OsString>,
    /// Whether stdin is a terminal.
    pub stdin_tty: bool,
    /// Whether stdout is a terminal.
    pub stdout_tty: bool,
}

impl Env {
    /// Reads the real process environment.
    pub fn from_process() -> Self {
        Self {
            pincer_home: std::env::var_os("PINCER_HOME"),
            home: std::env::var_os("HOME"),
            stdin_tty: std::io::stdin().is_terminal(),
            stdout_tty: std::io::stdout().is_terminal(),
        }
    }

    /// A credential's value, read only when needed: an environment variable, or — for a
    /// `secret:NAME` reference — the stored secret, decrypted for this one lookup. A store that
    /// cannot be opened (wrong key, damaged file) is logged and the value is missing, so the
    /// caller's "not set" error names the reference.
    pub fn var(&self, name: &str) -> Option<String> {
        if let Some(secret) = pincer_secrets::reference(name) {
            return match self.vault().and_then(|v| v.get(secret).map_err(Into::into)) {
                Ok(v) => v.map(|s| s.to_string()),
                Err(e) => {
                    tracing::error!("{name}: {e:#}");
                    eprintln!("pincer: {name}: {e:#}");
                    None
                }
            };
        }
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }

    /// The home's secret store, keyed from `PINCER_SECRETS_KEY` when set.
    ///
    /// # Errors
    /// When no home can be resolved or the key in the environment is malformed.
    pub fn vault(&self) -> anyhow::Result<pincer_secrets::Vault> {
        let home = pincer_config::PincerHome::resolve(self.pincer_home.clone(), self.home.clone())?;
        let key = std::env::var(pincer_secrets::KEY_VAR).ok();
        pincer_secrets::Vault::new(&home.secrets_dir(), key.as_deref())
            .map_err(|e| crate::Failure::usage(e.to_string()).into())
    }

    /// Every stored secret's value, for the redactor (empty without a store).
    pub fn stored_secrets(&self) -> Vec<String> {
        let Ok(vault) = self.vault() else {
            return Vec::new();
        };
        if !vault.exists() {
            return Vec::new();
        }
        vault
            .values()
            .unwrap_or_default()
            .iter()
            .map(|s| s.to_string())
            .collect()
    }
}
