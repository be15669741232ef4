//! Checking a model-supplied relative path before any system call sees it.

use super::FsError;

/// Longest path accepted, in bytes (Linux `PATH_MAX`).
pub const MAX_PATH: usize = 4096;
/// Longest single component, in bytes (Linux `NAME_MAX`).
pub const MAX_NAME: usize = 255;

/// Splits `path` into components, refusing NUL bytes, absolute paths, `..`, and over-long paths
/// or names. `""` and `"."` mean the root itself (no components).
///
/// # Errors
/// The [`FsError`] naming the problem.
pub fn components(path: &str) -> Result<Vec<&str>, FsError> {
    if path.contains('\0') {
        return Err(FsError::Nul);
    }
    if path.len() > MAX_PATH {
        return Err(FsError::TooLong(format!(
            "path is {} bytes; the limit is {MAX_PATH}",
            path.len()
        )));
    }
    if path.starts_with('/') || path.starts_with('~') {
        return Err(FsError::Absolute(path.to_owned()));
    }
    let mut out = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(FsError::DotDot(path.to_owned())),
            c if c.len() > MAX_NAME => {
                return Err(FsError::TooLong(format!(
                    "a path component is {} bytes; the limit is {MAX_NAME}",
                    c.len()
                )));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// The normalized spelling of `components` (`a/b/c`, or `.` for the root).
pub fn join(components: &[&str]) -> String {
    if components.is_empty() {
        ".".to_owned()
    } else {
        components.join("/")
    }
}

/// The risk tier of a file-tool write to `path`, at least `tier`.
///
/// A write into a repository's control files (any component named `.git`: `.git/config`,
/// `.git/hooks/*`, or a `.git` file pointing elsewhere) is `L3_PRIVILEGED`, so it always needs
/// a human: git runs programs those files name (`core.fsmonitor`, hooks, filters), and an
/// allowlisted `git status` would otherwise run whatever the model wrote there without approval.
pub fn write_tier(path: &str, tier: pincer_types::RiskTier) -> pincer_types::RiskTier {
    let control = path.split('/').any(|c| c.eq_ignore_ascii_case(".git"));
    if control {
        pincer_types::RiskTier::L3Privileged
    } else {
        tier
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_relative_and_normalizes() {
        assert_eq!(components("a/./b//c/").unwrap(), ["a", "b", "c"]);
        assert!(components(".").unwrap().is_empty());
        assert!(components("").unwrap().is_empty());
        assert_eq!(join(&components("./x").unwrap()), "x");
    }

    #[test]
    fn refuses_escapes() {
        for bad in [
            "../x",
            "a/../../x",
            "a/..",
            "/etc/passwd",
            "~/.ssh/id_rsa",
            "a\0b",
        ] {
            assert!(components(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            components(&"a/".repeat(3000)),
            Err(FsError::TooLong(_))
        ));
        assert!(matches!(
            components(&"x".repeat(300)),
            Err(FsError::TooLong(_))
        ));
    }

    #[test]
    fn writes_into_repository_control_files_are_privileged() {
        use pincer_types::RiskTier::{L1Mutating, L3Privileged};
        for p in [
            ".git/config",
            ".git/hooks/pre-commit",
            "sub/.GIT/config",
            ".git",
        ] {
            assert_eq!(super::write_tier(p, L1Mutating), L3Privileged, "{p}");
        }
        for p in ["src/git.rs", ".gitignore", "a/.github/x.yml", "x.git"] {
            assert_eq!(super::write_tier(p, L1Mutating), L1Mutating, "{p}");
        }
    }
}
