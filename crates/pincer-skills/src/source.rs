//! Where a skill comes from: a folder; a local git repository (cloned, so only committed
//! content at the revision is installed); or a remote `https://` (or `http://`) git URL whose
//! host and path are in `skills.trusted_sources`, fetched with git through the egress proxy —
//! the same policy agents' traffic passes. ssh and other transports are refused. git runs with
//! no system or global config, no hooks, no fsmonitor, no submodules, no prompts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::SkillError;

/// Longest a fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(120);

/// A parsed source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A plain folder.
    Dir(PathBuf),
    /// A git repository on this machine.
    LocalGit {
        /// Its path.
        path: PathBuf,
        /// Revision to install (default: its HEAD).
        rev: Option<String>,
    },
    /// A remote git repository.
    Remote {
        /// The URL.
        url: String,
        /// Its host.
        host: String,
        /// Its path (without a trailing `.git`).
        path: String,
        /// Revision to install.
        rev: Option<String>,
    },
}

/// `(rest, rev)` for `rest@rev` when `rev` is a plain revision (no `/`, `@` or `:`).
fn split_rev(s: &str) -> (&str, Option<String>) {
    match s.rsplit_once('@') {
        Some((rest, rev))
            if !rev.is_empty()
                && !rest.is_empty()
                && rev
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) =>
        {
            (rest, Some(rev.to_owned()))
        }
        _ => (s, None),
    }
}

impl Source {
    /// Parses what the operator typed.
    ///
    /// # Errors
    /// [`SkillError::Source`] for an unsupported or malformed source.
    pub fn parse(s: &str) -> Result<Self, SkillError> {
        let bad = |m: String| Err(SkillError::Source(m));
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("https://") || lower.starts_with("http://") {
            let (url, rev) = split_rev(s);
            let Some((_, after)) = url.split_once("://") else {
                return bad(format!("`{s}` is not a URL"));
            };
            let (authority, path) = after.split_once('/').unwrap_or((after, ""));
            if authority.contains('@') {
                return bad("credentials in a git URL are refused".into());
            }
            let host = authority
                .split(':')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if host.is_empty() || path.is_empty() {
                return bad(format!("`{s}` does not name a repository"));
            }
            return Ok(Self::Remote {
                url: url.to_owned(),
                host,
                path: path
                    .trim_end_matches('/')
                    .trim_end_matches(".git")
                    .to_owned(),
                rev,
            });
        }
        if let Some(p) = s.strip_prefix("file://") {
            let (p, rev) = split_rev(p);
            return Ok(Self::LocalGit {
                path: PathBuf::from(p),
                rev,
            });
        }
        if lower.starts_with("git@") || lower.contains("://") {
            return bad(format!(
                "`{s}`: skills come from a folder, a local git repository, or an https:// git URL"
            ));
        }
        let plain = Path::new(s);
        if plain.is_dir() {
            return Ok(if is_git(plain) {
                Self::LocalGit {
                    path: plain.to_owned(),
                    rev: None,
                }
            } else {
                Self::Dir(plain.to_owned())
            });
        }
        let (p, rev) = split_rev(s);
        if rev.is_some() && Path::new(p).is_dir() && is_git(Path::new(p)) {
            return Ok(Self::LocalGit {
                path: PathBuf::from(p),
                rev,
            });
        }
        bad(format!(
            "`{s}` is not a folder, a git repository or a git URL"
        ))
    }

    /// Refuses a remote source whose host and path no `trusted_sources` entry covers
    /// (`github.com/acme` covers `github.com/acme/*`; `git.example.com` covers the host).
    ///
    /// # Errors
    /// [`SkillError::Source`].
    pub fn check_trusted(&self, trusted: &[String]) -> Result<(), SkillError> {
        let Self::Remote { host, path, .. } = self else {
            return Ok(());
        };
        let covered = trusted.iter().any(|t| {
            let t = t.trim_end_matches('/').to_ascii_lowercase();
            let (th, tp) = t.split_once('/').unwrap_or((&t, ""));
            th == host
                && (tp.is_empty() || {
                    let p = path.to_ascii_lowercase();
                    p == tp || p.starts_with(&format!("{tp}/"))
                })
        });
        if covered {
            Ok(())
        } else {
            Err(SkillError::Source(format!(
                "{host}/{path} is not in skills.trusted_sources (not allowlisted)"
            )))
        }
    }
}

fn is_git(p: &Path) -> bool {
    p.join(".git").exists() || (p.join("HEAD").is_file() && p.join("objects").is_dir())
}

/// Clones `source` (a git one) into `dest` (which must not exist), at its revision. Remote
/// sources go through `proxy` (`http://127.0.0.1:PORT`, the egress proxy); `None` refuses them.
///
/// # Errors
/// [`SkillError::Git`] with git's own message, [`SkillError::Source`] without a proxy.
pub async fn clone(source: &Source, dest: &Path, proxy: Option<&str>) -> Result<(), SkillError> {
    let (url, rev, local) = match source {
        Source::Dir(_) => return Err(SkillError::Source("not a git source".into())),
        Source::LocalGit { path, rev } => {
            let abs = std::fs::canonicalize(path)
                .map_err(|e| SkillError::Source(format!("{}: {e}", path.display())))?;
            (abs.to_string_lossy().into_owned(), rev.clone(), true)
        }
        Source::Remote { url, rev, .. } => (url.clone(), rev.clone(), false),
    };
    let mut args: Vec<String> = vec![
        "-c".into(),
        "core.hooksPath=/dev/null".into(),
        "-c".into(),
        "core.fsmonitor=false".into(),
        "-c".into(),
        "protocol.allow=never".into(),
        "-c".into(),
        format!(
            "protocol.file.allow={}",
            if local { "always" } else { "never" }
        ),
    ];
    if !local {
        let Some(proxy) = proxy else {
            return Err(SkillError::Source(
                "remote skills are fetched through the egress policy, and the network is off (security.network)".into(),
            ));
        };
        for a in [
            "protocol.https.allow=always".to_owned(),
            "protocol.http.allow=always".to_owned(),
            format!("http.proxy={proxy}"),
        ] {
            args.push("-c".into());
            args.push(a);
        }
    }
    // A full clone: git's dumb HTTP transport cannot do shallow ones, and skills are small.
    args.extend(["clone", "--quiet", "--no-recurse-submodules"].map(String::from));
    args.extend(["--".to_owned(), url, dest.to_string_lossy().into_owned()]);
    git(&args, None).await?;
    if let Some(rev) = rev {
        let dir = dest.to_string_lossy().into_owned();
        git(
            &[
                "-C".into(),
                dir,
                "-c".into(),
                "advice.detachedHead=false".into(),
                "checkout".into(),
                "--quiet".into(),
                "--detach".into(),
                rev,
                "--".into(),
            ],
            None,
        )
        .await?;
    }
    Ok(())
}

async fn git(args: &[String], cwd: Option<&Path>) -> Result<(), SkillError> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ALLOW_PROTOCOL", "file:https:http")
        .env("HOME", "/nonexistent")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let out = tokio::time::timeout(FETCH_TIMEOUT, cmd.output())
        .await
        .map_err(|_| SkillError::Git(format!("gave up after {} s", FETCH_TIMEOUT.as_secs())))?
        .map_err(|e| SkillError::Git(format!("cannot run git: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(SkillError::Git(err.trim().chars().take(500).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_and_remote_ones_must_be_trusted() {
        let r = Source::parse("https://github.com/acme/skills.git@v1.2").unwrap();
        assert_eq!(
            r,
            Source::Remote {
                url: "https://github.com/acme/skills.git".into(),
                host: "github.com".into(),
                path: "acme/skills".into(),
                rev: Some("v1.2".into()),
            }
        );
        let trusted = vec!["github.com/acme".to_owned(), "git.example.com".to_owned()];
        assert!(r.check_trusted(&trusted).is_ok());
        let other = Source::parse("https://github.com/acme-evil/skills").unwrap();
        assert!(
            other
                .check_trusted(&trusted)
                .unwrap_err()
                .to_string()
                .contains("not allowlisted")
        );
        assert!(
            Source::parse("https://git.example.com/x/y")
                .unwrap()
                .check_trusted(&trusted)
                .is_ok()
        );
        for bad in [
            "git@github.com:acme/x.git",
            "ssh://h/x",
            "https://u:p@h/x",
            "/no/such/dir",
        ] {
            assert!(Source::parse(bad).is_err(), "{bad}");
        }
    }
}
