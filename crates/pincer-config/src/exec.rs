//! `[exec]`: limits for `shell.exec` and `process`, and which sandbox provider runs them
//! (`security.sandbox`).

use serde::{Deserialize, Serialize};

/// Which sandbox runs commands (`security.sandbox`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxProvider {
    /// Pincer's own namespaces + Landlock + seccomp (default; Linux only).
    #[default]
    Native,
    /// bubblewrap, with Pincer's Landlock + seccomp inside.
    Bwrap,
    /// No sandbox: the exec tools do not exist.
    None,
}

impl SandboxProvider {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Bwrap => "bwrap",
            Self::None => "none",
        }
    }
}

/// When background processes started with `process` are killed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessCleanup {
    /// When the run that started them ends (default).
    #[default]
    Run,
    /// When their session ends (or the Pincer process exits).
    Session,
}

/// `[exec]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// Default wall-clock limit of a `shell.exec` command, in seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Largest timeout a call may ask for, in seconds.
    #[serde(default = "default_max_timeout")]
    pub max_timeout_secs: u64,
    /// Bytes of stdout and of stderr returned to the model (first and last halves kept).
    #[serde(default = "default_output_cap")]
    pub output_cap_bytes: usize,
    /// Total output after which a command is killed.
    #[serde(default = "default_output_kill")]
    pub output_kill_bytes: u64,
    /// CPU seconds per command (`RLIMIT_CPU`).
    #[serde(default = "default_cpu")]
    pub cpu_secs: u64,
    /// Address space per process, in MiB (`RLIMIT_AS`).
    #[serde(default = "default_memory")]
    pub memory_mb: u64,
    /// Processes per sandbox.
    #[serde(default = "default_processes")]
    pub max_processes: u64,
    /// Open files per process.
    #[serde(default = "default_open_files")]
    pub max_open_files: u64,
    /// Largest file a command may write, in MiB.
    #[serde(default = "default_file_size")]
    pub max_file_size_mb: u64,
    /// Size of the private `/tmp`, in MiB.
    #[serde(default = "default_tmp")]
    pub tmp_size_mb: u64,
    /// Environment variables passed from Pincer's environment into commands, by name. Provider
    /// API key variables are refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_allow: Vec<String>,
    /// Background processes one agent may have running.
    #[serde(default = "default_background")]
    pub max_background: usize,
    /// When background processes are killed.
    #[serde(default)]
    pub process_cleanup: ProcessCleanup,
}

impl Default for ExecConfig {
    fn default() -> Self {
        Self {
            timeout_secs: default_timeout(),
            max_timeout_secs: default_max_timeout(),
            output_cap_bytes: default_output_cap(),
            output_kill_bytes: default_output_kill(),
            cpu_secs: default_cpu(),
            memory_mb: default_memory(),
            max_processes: default_processes(),
            max_open_files: default_open_files(),
            max_file_size_mb: default_file_size(),
            tmp_size_mb: default_tmp(),
            env_allow: Vec::new(),
            max_background: default_background(),
            process_cleanup: ProcessCleanup::default(),
        }
    }
}

fn default_timeout() -> u64 {
    120
}
fn default_max_timeout() -> u64 {
    1800
}
fn default_output_cap() -> usize {
    32 * 1024
}
fn default_output_kill() -> u64 {
    64 << 20
}
fn default_cpu() -> u64 {
    1800
}
fn default_memory() -> u64 {
    8192
}
fn default_processes() -> u64 {
    512
}
fn default_open_files() -> u64 {
    1024
}
fn default_file_size() -> u64 {
    1024
}
fn default_tmp() -> u64 {
    256
}
fn default_background() -> usize {
    4
}

/// Environment variable names that stay out of commands whatever `env_allow` says (and every
/// `LD_*` dynamic-loader variable).
const NEVER_PASSED: &[&str] = &[
    "PINCER_HOME",
    "PINCER_TOKEN",
    pincer_secrets::KEY_VAR,
    pincer_secrets::NEW_KEY_VAR,
];

impl ExecConfig {
    /// Semantic errors as `(key, message)`; `api_key_vars` are the providers' key variables.
    pub(crate) fn errors(&self, api_key_vars: &[&str]) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        let mut at_least_1 = |key: &str, v: u64| {
            if v == 0 {
                errs.push((format!("exec.{key}"), "must be at least 1".to_owned()));
            }
        };
        at_least_1("timeout_secs", self.timeout_secs);
        at_least_1("cpu_secs", self.cpu_secs);
        at_least_1("memory_mb", self.memory_mb);
        at_least_1("max_processes", self.max_processes);
        at_least_1("max_open_files", self.max_open_files);
        at_least_1("max_file_size_mb", self.max_file_size_mb);
        at_least_1("tmp_size_mb", self.tmp_size_mb);
        if self.max_timeout_secs < self.timeout_secs {
            errs.push((
                "exec.max_timeout_secs".into(),
                "must be at least timeout_secs".into(),
            ));
        }
        if self.output_cap_bytes < 256 {
            errs.push((
                "exec.output_cap_bytes".into(),
                "must be at least 256".into(),
            ));
        }
        if self.output_kill_bytes < self.output_cap_bytes as u64 {
            errs.push((
                "exec.output_kill_bytes".into(),
                "must be at least output_cap_bytes".into(),
            ));
        }
        for (i, name) in self.env_allow.iter().enumerate() {
            let key = format!("exec.env_allow[{i}]");
            let valid = !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !name.as_bytes()[0].is_ascii_digit();
            if !valid {
                errs.push((key, format!("`{name}` is not an environment variable name")));
            } else if api_key_vars.contains(&name.as_str()) {
                errs.push((
                    key,
                    format!("`{name}` holds a provider API key; secrets never enter the sandbox"),
                ));
            } else if NEVER_PASSED.contains(&name.as_str()) || name.starts_with("LD_") {
                errs.push((key, format!("`{name}` cannot be passed into the sandbox")));
            }
        }
        errs
    }
}

/// Splits an `exec_allow` entry (`"cargo test"`) into the argv prefix it matches.
pub fn argv_prefix(entry: &str) -> Vec<&str> {
    entry.split_whitespace().collect()
}
