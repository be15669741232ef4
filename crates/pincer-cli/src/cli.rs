//! Command-line definitions (clap derive).

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Pincer: a secure, self-hosted AI agent gateway.
#[derive(Debug, Parser)]
#[command(name = "pincer", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create the Pincer home, config and the default agent `main`.
    Init(InitArgs),
    /// Ask an agent once and print its answer.
    Ask(AskArgs),
    /// Talk to an agent interactively (/new, /reset, /exit).
    Chat(ChatArgs),
    /// Show, check or change configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Check the installation and suggest fixes.
    Doctor(DoctorArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProviderArg {
    Openai,
    Anthropic,
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// Wire format of the model API.
    #[arg(long, value_enum)]
    pub provider: Option<ProviderArg>,
    /// API base URL (e.g. http://127.0.0.1:11434/v1 for Ollama).
    #[arg(long)]
    pub base_url: Option<String>,
    /// Model name.
    #[arg(long)]
    pub model: Option<String>,
    /// Environment variable that holds the API key.
    #[arg(long)]
    pub api_key_env: Option<String>,
    /// The model server needs no API key (local servers).
    #[arg(long, conflicts_with = "api_key_env")]
    pub no_api_key: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AskArgs {
    /// The message (read from stdin when omitted).
    pub message: Vec<String>,
    /// Agent id.
    #[arg(long, default_value = "main")]
    pub agent: String,
    /// Continue a named session instead of starting a fresh one.
    #[arg(long)]
    pub session: Option<String>,
    /// Print the run record as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ChatArgs {
    /// Agent id.
    #[arg(long, default_value = "main")]
    pub agent: String,
    /// Session name.
    #[arg(long, default_value = "chat")]
    pub session: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print the config file path.
    Path,
    /// Check config.toml; exit 2 naming file, line and key when it is invalid.
    Validate,
    /// Print the effective value of a dotted key (e.g. security.exec).
    Get {
        /// Dotted key.
        key: String,
    },
    /// Set a dotted key; the result is validated before it is written (atomically).
    Set {
        /// Dotted key.
        key: String,
        /// Value (TOML syntax, or a bare string).
        value: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// Skip checks that contact the model provider.
    #[arg(long)]
    pub offline: bool,
    /// Print results as JSON.
    #[arg(long)]
    pub json: bool,
}
