//! `PincerHome`: where Pincer keeps its state (`$PINCER_HOME`, default `~/.pincer`), and the
//! fixed layout below it.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use pincer_types::AgentId;

use crate::ConfigError;

/// The Pincer home directory and the paths inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PincerHome {
    root: PathBuf,
}

impl PincerHome {
    /// Resolves the home from `PINCER_HOME` or, failing that, `$HOME/.pincer`. Both are passed in
    /// so callers decide where environment is read.
    ///
    /// # Errors
    /// [`ConfigError::NoHome`] when neither is set.
    pub fn resolve(
        pincer_home: Option<OsString>,
        user_home: Option<OsString>,
    ) -> Result<Self, ConfigError> {
        match (
            pincer_home.filter(|v| !v.is_empty()),
            user_home.filter(|v| !v.is_empty()),
        ) {
            (Some(p), _) => Ok(Self::at(PathBuf::from(p))),
            (None, Some(h)) => Ok(Self::at(PathBuf::from(h).join(".pincer"))),
            (None, None) => Err(ConfigError::NoHome),
        }
    }

    /// A home at an explicit path.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Creates the home (mode 0700) and its fixed subdirectories if they are missing. An existing
    /// home keeps its mode; `pincer doctor` reports a lax one.
    ///
    /// # Errors
    /// [`ConfigError::Io`] when a directory cannot be created.
    pub fn ensure(&self) -> Result<(), ConfigError> {
        for dir in [
            self.root.clone(),
            self.agents_dir(),
            self.workspaces_dir(),
            self.audit_dir(),
        ] {
            create_private_dir(&dir)?;
        }
        Ok(())
    }

    /// `mcp/`: MCP servers' scratch directories and stderr logs.
    pub fn mcp_dir(&self) -> PathBuf {
        self.root.join("mcp")
    }

    /// The home directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    /// The last-known-good copy of the config.
    pub fn last_good_path(&self) -> PathBuf {
        self.root.join("config.last-good.toml")
    }
    /// The embedded SQLite database.
    pub fn state_db_path(&self) -> PathBuf {
        self.root.join("state.db")
    }
    /// `agents/`.
    pub fn agents_dir(&self) -> PathBuf {
        self.root.join("agents")
    }
    /// `agents/<id>/`.
    pub fn agent_dir(&self, agent: &AgentId) -> PathBuf {
        self.agents_dir().join(agent.as_str())
    }
    /// `workspaces/`.
    pub fn workspaces_dir(&self) -> PathBuf {
        self.root.join("workspaces")
    }
    /// The default workspace of an agent, `workspaces/<id>/`.
    pub fn default_workspace(&self, agent: &AgentId) -> PathBuf {
        self.workspaces_dir().join(agent.as_str())
    }
    /// `audit/`.
    pub fn audit_dir(&self) -> PathBuf {
        self.root.join("audit")
    }
    /// `secrets/audit.key`: the key the audit anchor is signed with.
    pub fn audit_key_path(&self) -> PathBuf {
        self.secrets_dir().join("audit.key")
    }
    /// `secrets/audit.anchor`: the keyed checkpoint of the audit chain's end, outside `audit/`.
    pub fn audit_anchor_path(&self) -> PathBuf {
        self.secrets_dir().join("audit.anchor")
    }
    /// `secrets/`: credentials Pincer keeps on disk (never readable or writable by tools).
    pub fn secrets_dir(&self) -> PathBuf {
        self.root.join("secrets")
    }
    /// `skills/`: installed skills (never writable by tools).
    pub fn skills_dir(&self) -> PathBuf {
        self.root.join("skills")
    }
}

/// Creates a directory (and parents) with mode 0700 if it does not exist.
///
/// # Errors
/// [`ConfigError::Io`] on failure.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), ConfigError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ConfigError::io(dir, e))?;
    // The umask may have narrowed the mode further, never widened it; set it exactly.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| ConfigError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_env_before_home() {
        let h = PincerHome::resolve(Some("/x".into()), Some("/home/u".into())).unwrap();
        assert_eq!(h.root(), Path::new("/x"));
        let h = PincerHome::resolve(None, Some("/home/u".into())).unwrap();
        assert_eq!(h.root(), Path::new("/home/u/.pincer"));
        assert!(PincerHome::resolve(Some("".into()), None).is_err());
    }

    #[test]
    fn ensure_creates_private_dirs() {
        let t = tempfile::tempdir().unwrap();
        let home = PincerHome::at(t.path().join("h"));
        home.ensure().unwrap();
        let mode = fs::metadata(home.root()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(home.agents_dir().is_dir());
    }
}
