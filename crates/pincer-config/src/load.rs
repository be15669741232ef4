//! Loading and saving `config.toml`, with the last-known-good fallback.

use std::fs;
use std::path::{Path, PathBuf};

use crate::locate::{line_col, locate_key};
use crate::{Config, ConfigError, PincerHome, atomic_write};

/// A loaded config, and whether it came from the last-known-good copy.
#[derive(Debug)]
pub struct LoadedConfig {
    /// The config in force.
    pub config: Config,
    /// The file it was read from.
    pub path: PathBuf,
    /// `Some(error)` when `config.toml` is broken and Pincer is running on the last-known-good
    /// copy; the error says what is wrong with the current file. Callers must say so loudly.
    pub fallback: Option<ConfigError>,
}

/// Parses and validates a config text. `path` is only used in error messages.
///
/// # Errors
/// [`ConfigError::Invalid`] naming line, column and key for TOML syntax errors, schema
/// mismatches (unknown keys, wrong types) and semantic errors.
pub fn parse_and_validate(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let de = toml::Deserializer::parse(text).map_err(|e| toml_error(path, text, &e, None))?;
    let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        toml_error(path, text, e.inner(), Some(at))
    })?;
    if let Some((key, message)) = config.semantic_errors().into_iter().next() {
        let (line, column) = locate_key(text, &key);
        return Err(ConfigError::Invalid {
            path: path.to_owned(),
            line,
            column,
            key: Some(key),
            message,
        });
    }
    Ok(config)
}

fn toml_error(path: &Path, text: &str, e: &toml::de::Error, at: Option<String>) -> ConfigError {
    let message = e.message().trim().to_owned();
    // serde_path_to_error names the table; an unknown field's own name is in the message.
    let mut key = at.filter(|p| !p.is_empty() && p != "." && p != "?");
    if let Some(field) = message
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
    {
        key = Some(match key {
            Some(k) if k == field || k.ends_with(&format!(".{field}")) => k,
            Some(table) => format!("{table}.{field}"),
            None => field.to_owned(),
        });
    }
    let (line, column) = match (e.span(), &key) {
        (Some(span), _) => line_col(text, span.start),
        (None, Some(k)) => locate_key(text, k),
        (None, None) => (0, 0),
    };
    ConfigError::Invalid {
        path: path.to_owned(),
        line,
        column,
        key,
        message,
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            line: 0,
            column: 0,
            key: None,
            message: format!("not UTF-8 text ({e})"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ConfigError::NotFound {
            path: path.to_owned(),
        }),
        Err(e) => Err(ConfigError::io(path, e)),
    }
}

/// Loads `config.toml`. When it is valid, the last-known-good copy is refreshed. When it is not
/// and a last-known-good copy exists and is valid, that copy is returned with `fallback` set.
///
/// # Errors
/// The current file's error when there is no usable last-known-good copy.
pub fn load(home: &PincerHome) -> Result<LoadedConfig, ConfigError> {
    let path = home.config_path();
    let current = read(&path).and_then(|text| parse_and_validate(&path, &text).map(|c| (c, text)));
    match current {
        Ok((config, text)) => {
            refresh_last_good(home, &text);
            Ok(LoadedConfig {
                config,
                path,
                fallback: None,
            })
        }
        Err(err) => {
            let lkg_path = home.last_good_path();
            let lkg = read(&lkg_path).and_then(|t| parse_and_validate(&lkg_path, &t));
            match lkg {
                Ok(config) => Ok(LoadedConfig {
                    config,
                    path: lkg_path,
                    fallback: Some(err),
                }),
                Err(_) => Err(err),
            }
        }
    }
}

fn refresh_last_good(home: &PincerHome, text: &str) {
    let lkg = home.last_good_path();
    if fs::read_to_string(&lkg).ok().as_deref() == Some(text) {
        return;
    }
    if let Err(e) = atomic_write(&lkg, text.as_bytes()) {
        tracing::warn!(error = %e, "could not refresh the last-known-good config");
    }
}

/// Validates `text` as a config and, only if it is valid, writes it atomically as
/// `config.toml` and as the last-known-good copy.
///
/// # Errors
/// [`ConfigError::Invalid`] when the text does not validate (nothing is written), or
/// [`ConfigError::Io`] when the write fails (the old file is untouched).
pub fn save(home: &PincerHome, text: &str) -> Result<Config, ConfigError> {
    let path = home.config_path();
    let config = parse_and_validate(&path, text)?;
    atomic_write(&path, text.as_bytes())?;
    refresh_last_good(home, text);
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"version = 1

[providers.default]
kind = "openai"
base_url = "http://127.0.0.1:1/v1"

[agents.main]
model = "m"
"#;

    fn invalid(text: &str) -> (usize, Option<String>, String) {
        match parse_and_validate(Path::new("/h/config.toml"), text) {
            Err(ConfigError::Invalid {
                line, key, message, ..
            }) => (line, key, message),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn good_config_parses_with_secure_defaults() {
        let c = parse_and_validate(Path::new("c"), GOOD).unwrap();
        assert_eq!(c.security.exec, crate::ExecMode::Off);
        assert_eq!(c.security.network, crate::NetworkMode::Off);
        assert!(c.gateway.bind.ip().is_loopback());
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let text = GOOD.replace("model = \"m\"", "model = \"m\"\nshell = true");
        let (line, key, message) = invalid(&text);
        assert_eq!(line, 9);
        assert_eq!(key.as_deref(), Some("agents.main.shell"));
        assert!(message.contains("unknown field"), "{message}");
    }

    #[test]
    fn wrong_type_names_key() {
        let text = GOOD.replace("kind = \"openai\"", "kind = \"gopher\"");
        let (line, key, _) = invalid(&text);
        assert_eq!(line, 4);
        assert_eq!(key.as_deref(), Some("providers.default.kind"));
    }

    #[test]
    fn syntax_error_names_line() {
        let (line, _, _) = invalid("version = 1\n[agents\n");
        assert_eq!(line, 2);
    }

    #[test]
    fn truncated_file_is_an_error_not_a_panic() {
        for cut in 0..GOOD.len() {
            let _ = parse_and_validate(Path::new("c"), &GOOD[..cut]);
        }
    }

    #[test]
    fn semantic_error_names_key() {
        let text = GOOD.replace("model = \"m\"", "model = \"m\"\nprovider = \"nope\"");
        let (line, key, _) = invalid(&text);
        assert_eq!(key.as_deref(), Some("agents.main.provider"));
        assert_eq!(line, 9);
        let (_, key, _) = invalid(&GOOD.replace("version = 1", "version = 2"));
        assert_eq!(key.as_deref(), Some("version"));
        let text = format!("{GOOD}\n[gateway]\nbind = \"0.0.0.0:80\"\n");
        assert_eq!(invalid(&text).1.as_deref(), Some("gateway.bind"));
    }

    #[test]
    fn tool_settings_are_checked_with_their_key() {
        let with = |extra: &str| GOOD.replace("model = \"m\"", &format!("model = \"m\"\n{extra}"));
        let (line, key, message) = invalid(&with("deny = [\"group:nope\"]"));
        assert_eq!((line, key.as_deref()), (9, Some("agents.main.deny[0]")));
        assert!(message.contains("unknown tool group"), "{message}");
        let (_, key, _) = invalid(&with("allow = [\"Bad Name\"]"));
        assert_eq!(key.as_deref(), Some("agents.main.allow[0]"));
        let (_, key, _) = invalid(&with("profile = \"everything\""));
        assert_eq!(key.as_deref(), Some("agents.main.profile"));
        let (_, key, _) = invalid(&with("workspace = \"relative/dir\""));
        assert_eq!(key.as_deref(), Some("agents.main.workspace"));
        let (_, key, _) = invalid(&with("read_roots = { workspace = \"/x\" }"));
        assert_eq!(key.as_deref(), Some("agents.main.read_roots.workspace"));
        let c = parse_and_validate(
            Path::new("c"),
            &with("profile = \"coding\"\nallow = [\"group:web\"]\ndeny = [\"fs.write\"]"),
        )
        .unwrap();
        let a = &c.agents[&"main".parse().unwrap()];
        assert_eq!(a.profile, crate::ToolProfile::Coding);
        assert_eq!(a.deny[0].to_string(), "fs.write");
    }

    #[test]
    fn exec_settings_are_checked_with_their_key() {
        let keyed = GOOD.replace(
            "base_url = \"http://127.0.0.1:1/v1\"",
            "base_url = \"http://127.0.0.1:1/v1\"\napi_key_env = \"OPENAI_API_KEY\"",
        );
        let (_, key, message) = invalid(&format!(
            "{keyed}\n[exec]\nenv_allow = [\"LANG\", \"OPENAI_API_KEY\"]\n"
        ));
        assert_eq!(key.as_deref(), Some("exec.env_allow[1]"));
        assert!(message.contains("API key"), "{message}");
        let (_, key, _) = invalid(&format!("{GOOD}\n[exec]\ntimeout_secs = 0\n"));
        assert_eq!(key.as_deref(), Some("exec.timeout_secs"));
        let (_, key, _) = invalid(&format!(
            "{GOOD}\n[exec]\ntimeout_secs = 60\nmax_timeout_secs = 30\n"
        ));
        assert_eq!(key.as_deref(), Some("exec.max_timeout_secs"));
        let (_, key, _) =
            invalid(&GOOD.replace("model = \"m\"", "model = \"m\"\nexec_allow = [\"  \"]"));
        assert_eq!(key.as_deref(), Some("agents.main.exec_allow[0]"));
        let (_, key, _) = invalid(&GOOD.replace(
            "version = 1",
            "version = 1\n[security]\nsandbox = \"docker\"",
        ));
        assert_eq!(key.as_deref(), Some("security.sandbox"));
        let c = parse_and_validate(
            Path::new("c"),
            &format!("{GOOD}\n[exec]\nenv_allow = [\"LANG\"]\nprocess_cleanup = \"session\"\n"),
        )
        .unwrap();
        assert_eq!(c.exec.process_cleanup, crate::ProcessCleanup::Session);
        assert_eq!(c.security.sandbox, crate::SandboxProvider::Native);
    }

    #[test]
    fn broken_current_falls_back_to_last_good() {
        let t = tempfile::tempdir().unwrap();
        let home = PincerHome::at(t.path());
        save(&home, GOOD).unwrap();
        fs::write(home.config_path(), &GOOD[..GOOD.len() / 2]).unwrap();
        let loaded = load(&home).unwrap();
        assert!(loaded.fallback.is_some());
        assert_eq!(loaded.path, home.last_good_path());
        assert_eq!(loaded.config.agents.len(), 1);
    }

    #[test]
    fn no_last_good_means_error() {
        let t = tempfile::tempdir().unwrap();
        let home = PincerHome::at(t.path());
        fs::write(home.config_path(), "version = ").unwrap();
        assert!(matches!(load(&home), Err(ConfigError::Invalid { .. })));
        fs::remove_file(home.config_path()).unwrap();
        assert!(matches!(load(&home), Err(ConfigError::NotFound { .. })));
    }

    #[test]
    fn save_refuses_invalid_and_keeps_old() {
        let t = tempfile::tempdir().unwrap();
        let home = PincerHome::at(t.path());
        save(&home, GOOD).unwrap();
        assert!(save(&home, "version = 1\nbogus = 1\n").is_err());
        assert_eq!(fs::read_to_string(home.config_path()).unwrap(), GOOD);
    }
}
