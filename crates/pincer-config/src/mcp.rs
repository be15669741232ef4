//! `[mcp.servers.<name>]` (C10, G3): the MCP tool servers an operator brings.
//!
//! ```toml
//! [mcp.servers.files]
//! command = "npx"                                   # a stdio server, run in the sandbox
//! args = ["-y", "@modelcontextprotocol/server-filesystem", "/srv/docs"]
//! env = { GITHUB_TOKEN = "env:GITHUB_TOKEN" }       # values by reference only, never literals
//! read_paths = ["/srv/docs", "/usr/lib/node_modules"]
//! write_paths = []
//! enabled = true                                    # `pincer mcp enable files`
//! tiers = { write_file = "L2_DESTRUCTIVE" }         # per tool; default L1_MUTATING
//!
//! [mcp.servers.search]
//! url = "https://mcp.example.org/mcp"               # streamable HTTP, through the egress policy
//! headers = { Authorization = "env:SEARCH_MCP_AUTH" }
//! network = ["mcp.example.org"]                     # hosts it may be reached at
//! allow_private = []                                # or e.g. ["127.0.0.1:8123"] for a LAN server
//! ```
//!
//! Which tools of a server the model sees is not configuration but state: the operator approves
//! the server's manifest (`pincer mcp approve`), and its sha256 is kept in the store.

use std::collections::BTreeMap;
use std::path::PathBuf;

use pincer_types::RiskTier;
use serde::{Deserialize, Serialize};

/// `[mcp]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    /// Servers by name.
    #[serde(default)]
    pub servers: BTreeMap<String, McpServerConfig>,
}

impl McpConfig {
    /// True when nothing is configured (the table is then left out of a written file).
    pub fn is_default(&self) -> bool {
        self.servers.is_empty()
    }
}

fn default_timeout() -> u64 {
    60
}
fn default_start_timeout() -> u64 {
    20
}
fn default_heartbeat() -> u64 {
    30
}
fn default_max_result() -> usize {
    64 * 1024
}
fn default_max_message() -> usize {
    4 << 20
}

/// One server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    /// The program of a stdio server (run in the sandbox).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Its environment beyond the sandbox's base: `NAME = "env:VAR"` (a variable of Pincer's
    /// environment). Literal values are refused: a secret in the file would be readable by
    /// everyone who can read the config.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The endpoint of a streamable-HTTP server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Request headers for an HTTP server, by reference like `env`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Host directories a stdio server may read (besides the system directories).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_paths: Vec<PathBuf>,
    /// Host directories a stdio server may write.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub write_paths: Vec<PathBuf>,
    /// Hosts the server may be reached at (HTTP) or may reach (stdio — see docs/MCP.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network: Vec<String>,
    /// Private addresses (`host:port`) an HTTP server may be reached at — or a stdio server may
    /// reach through the egress proxy — named one by one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_private: Vec<String>,
    /// Whether its approved tools are offered to agents.
    #[serde(default)]
    pub enabled: bool,
    /// Risk tier per tool (the server's name for it); the rest are `L1_MUTATING`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tiers: BTreeMap<String, RiskTier>,
    /// Tools (the server's names) the operator declares free of outside effects: not sensitive
    /// sinks (D9), so a turn that read untrusted content may still call them unasked. Every
    /// other tool of the server is an external sink whose arguments must come from the user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_sinks: Vec<String>,
    /// The security-relevant arguments of a sink tool and how each is compared with trusted
    /// content (`send_email = { to = "recipient" }`, `transfer = { iban = "account", amount =
    /// "amount" }`); only those must be grounded. A tool not listed here has every string and
    /// number argument checked as text.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sink_args: BTreeMap<String, BTreeMap<String, pincer_types::ArgRole>>,
    /// Seconds one tool call may take before it is cancelled.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Seconds the server may take to start and answer `initialize`.
    #[serde(default = "default_start_timeout")]
    pub start_timeout_secs: u64,
    /// Seconds between pings of a running server; one that does not answer is stopped and
    /// started again by the next call (0: no heartbeat).
    #[serde(default = "default_heartbeat")]
    pub heartbeat_secs: u64,
    /// Most bytes of a result shown to the model.
    #[serde(default = "default_max_result")]
    pub max_result_bytes: usize,
    /// Most bytes of one protocol message; a longer one ends the connection.
    #[serde(default = "default_max_message")]
    pub max_message_bytes: usize,
}

impl Default for McpServerConfig {
    fn default() -> Self {
        Self {
            command: None,
            args: Vec::new(),
            env: BTreeMap::new(),
            url: None,
            headers: BTreeMap::new(),
            read_paths: Vec::new(),
            write_paths: Vec::new(),
            network: Vec::new(),
            allow_private: Vec::new(),
            enabled: false,
            tiers: BTreeMap::new(),
            not_sinks: Vec::new(),
            sink_args: BTreeMap::new(),
            timeout_secs: default_timeout(),
            start_timeout_secs: default_start_timeout(),
            heartbeat_secs: default_heartbeat(),
            max_result_bytes: default_max_result(),
            max_message_bytes: default_max_message(),
        }
    }
}

/// What an `env:NAME` or `secret:NAME` reference looks up: the variable `NAME`, or
/// `secret:NAME` itself (the form the process environment's lookup resolves from the store).
pub fn env_reference(v: &str) -> Option<&str> {
    if pincer_secrets::reference(v).is_some() {
        return Some(v);
    }
    let name = v.strip_prefix("env:")?;
    let ok = !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    ok.then_some(name)
}

/// Whether `name` can name a server (it becomes part of tool names: `mcp.<name>.<tool>`).
pub fn server_name_error(name: &str) -> Option<&'static str> {
    let ok = !name.is_empty()
        && name.len() <= 24
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    (!ok).then_some("a server name is 1–24 characters of a-z, 0-9 and inner '-'")
}

impl McpConfig {
    pub(crate) fn errors(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        for (name, s) in &self.servers {
            let key = |k: &str| format!("mcp.servers.{name}{k}");
            if let Some(m) = server_name_error(name) {
                errs.push((key(""), m.into()));
            }
            match (&s.command, &s.url) {
                (Some(_), Some(_)) => errs.push((
                    key(".url"),
                    "give `command` (stdio) or `url` (HTTP), not both".into(),
                )),
                (None, None) => errs.push((
                    key(".command"),
                    "give `command` (a stdio server) or `url` (a streamable-HTTP server)".into(),
                )),
                (Some(c), None) => {
                    if c.trim().is_empty() || c.contains('\0') {
                        errs.push((key(".command"), "must name a program".into()));
                    }
                    if !s.headers.is_empty() {
                        errs.push((
                            key(".headers"),
                            "only an HTTP server (`url`) takes headers".into(),
                        ));
                    }
                    // `allow_private` on a stdio server: the private `host:port`s it may
                    // reach through the egress proxy.
                }
                (None, Some(u)) => {
                    if !(u.starts_with("https://") || u.starts_with("http://")) {
                        errs.push((key(".url"), "must be an http:// or https:// URL".into()));
                    }
                    if !s.env.is_empty() || !s.args.is_empty() {
                        errs.push((
                            key(".env"),
                            "only a stdio server (`command`) takes args and env".into(),
                        ));
                    }
                    if !s.read_paths.is_empty() || !s.write_paths.is_empty() {
                        errs.push((
                            key(".read_paths"),
                            "an HTTP server runs elsewhere: paths apply to stdio servers".into(),
                        ));
                    }
                }
            }
            for (field, map) in [("env", &s.env), ("headers", &s.headers)] {
                for (k, v) in map {
                    if k.is_empty() || k.contains(['=', '\0', '\n', ':']) && field == "env" {
                        errs.push((key(&format!(".{field}.{k}")), "invalid name".into()));
                    }
                    if env_reference(v).is_none() {
                        errs.push((
                            key(&format!(".{field}.{k}")),
                            "must be a reference like \"env:VARIABLE\" or \"secret:NAME\" — values are never written into the config".into(),
                        ));
                    }
                }
            }
            for (field, paths) in [
                ("read_paths", &s.read_paths),
                ("write_paths", &s.write_paths),
            ] {
                for (i, p) in paths.iter().enumerate() {
                    if !p.is_absolute() {
                        errs.push((
                            key(&format!(".{field}[{i}]")),
                            "must be an absolute path".into(),
                        ));
                    } else if p.as_os_str() == "/" {
                        errs.push((key(&format!(".{field}[{i}]")), "cannot be `/`".into()));
                    }
                }
            }
            for (i, h) in s.network.iter().enumerate() {
                if let Some(m) = crate::names::host_name_error(h) {
                    errs.push((key(&format!(".network[{i}]")), m.into()));
                }
            }
            for (i, a) in s.allow_private.iter().enumerate() {
                if a.parse::<std::net::SocketAddr>().is_err() {
                    let host_port = a.rsplit_once(':').filter(|(h, p)| {
                        crate::names::host_name_error(h).is_none() && p.parse::<u16>().is_ok()
                    });
                    if host_port.is_none() {
                        errs.push((
                            key(&format!(".allow_private[{i}]")),
                            "must be host:port or ip:port (e.g. \"127.0.0.1:8123\")".into(),
                        ));
                    }
                }
            }
            if !(1..=3600).contains(&s.timeout_secs) {
                errs.push((key(".timeout_secs"), "must be 1..=3600".into()));
            }
            if s.heartbeat_secs > 3600 {
                errs.push((key(".heartbeat_secs"), "must be 0..=3600 (0: off)".into()));
            }
            if !(1..=600).contains(&s.start_timeout_secs) {
                errs.push((key(".start_timeout_secs"), "must be 1..=600".into()));
            }
            if !(1024..=(16 << 20)).contains(&s.max_result_bytes) {
                errs.push((key(".max_result_bytes"), "must be 1024..=16777216".into()));
            }
            if !((64 << 10)..=(64 << 20)).contains(&s.max_message_bytes) {
                errs.push((key(".max_message_bytes"), "must be 65536..=67108864".into()));
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(toml_text: &str) -> Vec<(String, String)> {
        let c: McpConfig = toml::from_str(toml_text).unwrap();
        c.errors()
    }

    #[test]
    fn a_stdio_and_an_http_server_validate() {
        assert!(
            errs(
                r#"
[servers.files]
command = "node"
args = ["server.js"]
env = { TOKEN = "env:FILES_TOKEN" }
read_paths = ["/srv"]
[servers.remote]
url = "https://mcp.example.org/mcp"
headers = { Authorization = "env:REMOTE_AUTH" }
network = ["mcp.example.org"]
allow_private = ["127.0.0.1:8123", "nas.lan:443"]
tiers = { delete = "L2_DESTRUCTIVE" }
"#
            )
            .is_empty()
        );
    }

    #[test]
    fn literals_bad_names_and_mixed_transports_are_refused() {
        for (text, key) in [
            (
                "[servers.a]\ncommand = \"x\"\nenv = { TOKEN = \"sk-live-123\" }",
                "mcp.servers.a.env.TOKEN",
            ),
            (
                "[servers.a]\nurl = \"https://x.example\"\nheaders = { A = \"Bearer x\" }",
                "mcp.servers.a.headers.A",
            ),
            (
                "[servers.Bad_Name]\ncommand = \"x\"",
                "mcp.servers.Bad_Name",
            ),
            (
                "[servers.a]\ncommand = \"x\"\nurl = \"https://x.example\"",
                "mcp.servers.a.url",
            ),
            ("[servers.a]", "mcp.servers.a.command"),
            (
                "[servers.a]\ncommand = \"x\"\nread_paths = [\"rel\"]",
                "mcp.servers.a.read_paths[0]",
            ),
            (
                "[servers.a]\ncommand = \"x\"\nwrite_paths = [\"/\"]",
                "mcp.servers.a.write_paths[0]",
            ),
            (
                "[servers.a]\nurl = \"https://x.example\"\nallow_private = [\"10.0.0.5\"]",
                "mcp.servers.a.allow_private[0]",
            ),
            (
                "[servers.a]\ncommand = \"x\"\ntimeout_secs = 0",
                "mcp.servers.a.timeout_secs",
            ),
            ("[servers.a]\nurl = \"ftp://x\"", "mcp.servers.a.url"),
        ] {
            let e = errs(text);
            assert!(e.iter().any(|(k, _)| k == key), "{text}: {e:?}");
        }
        assert!(
            toml::from_str::<McpConfig>("[servers.a]\ncommand = \"x\"\ntiers = { t = \"L9\" }")
                .is_err()
        );
    }
}
