//! Shared set-up for commands that run agents: home, config (with the loud last-known-good
//! warning), provider, store and runner.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use pincer_agent::{RunRequest, RunSettings, Runner};
use pincer_config::{Config, LoadedConfig, PincerHome, ProviderConfig, ProviderKind};
use pincer_policy::Policy;
use pincer_providers::{AnthropicProvider, ApiKey, HttpSettings, ModelProvider, OpenAiProvider};
use pincer_store::{SessionInfo, SqliteStore};
use pincer_tools::ToolRegistry;
use pincer_types::{AgentId, SystemClock};

use crate::{Env, Failure};

/// The home directory from the environment.
pub(crate) fn home(env: &Env) -> anyhow::Result<PincerHome> {
    Ok(PincerHome::resolve(
        env.pincer_home.clone(),
        env.home.clone(),
    )?)
}

/// Loads the config; when running on the last-known-good copy, says so loudly on stderr.
pub(crate) fn load_config(home: &PincerHome) -> anyhow::Result<LoadedConfig> {
    let loaded = pincer_config::load(home)?;
    if let Some(err) = &loaded.fallback {
        eprintln!("WARNING: {err}");
        eprintln!(
            "WARNING: config.toml is invalid; running on the last-known-good copy {}. Fix the file, then check it with `pincer config validate`.",
            loaded.path.display()
        );
    }
    Ok(loaded)
}

/// A single-threaded Tokio runtime: the CLI runs one conversation at a time.
pub(crate) fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Builds the client for a configured provider.
pub(crate) fn provider(
    name: &str,
    p: &ProviderConfig,
    env: &Env,
) -> anyhow::Result<Arc<dyn ModelProvider>> {
    let key = match &p.api_key_env {
        Some(var) => Some(ApiKey::new(env.var(var).ok_or_else(|| {
            Failure::usage(format!(
                "environment variable {var} is not set (providers.{name}.api_key_env); export it with your API key"
            ))
        })?)),
        None => None,
    };
    let settings = HttpSettings {
        timeout: Duration::from_secs(p.timeout_secs),
        connect_timeout: Duration::from_secs(p.connect_timeout_secs),
        max_retries: p.max_retries,
        retry_base: Duration::from_millis(p.retry_base_ms),
        stream: p.stream,
    };
    Ok(match p.kind {
        ProviderKind::Openai => Arc::new(OpenAiProvider::new(&p.base_url, key, settings)?),
        ProviderKind::Anthropic => Arc::new(AnthropicProvider::new(&p.base_url, key, settings)?),
    })
}

/// Everything needed to run one agent from the CLI.
#[derive(Debug)]
pub(crate) struct AgentRuntime {
    pub runner: Runner,
    pub store: Arc<SqliteStore>,
    pub agent: AgentId,
    template: RunRequestTemplate,
}

#[derive(Debug, Clone)]
struct RunRequestTemplate {
    agent_dir: std::path::PathBuf,
    settings: RunSettings,
    policy: Policy,
}

impl AgentRuntime {
    /// Resolves `agent` in `config` and builds its runner.
    pub(crate) fn build(
        home: &PincerHome,
        config: &Config,
        agent: &str,
        env: &Env,
    ) -> anyhow::Result<Self> {
        let agent: AgentId = agent.parse().map_err(|e| Failure::usage(format!("{e}")))?;
        let a = config.agents.get(&agent).ok_or_else(|| {
            Failure::usage(format!(
                "no agent `{agent}` in {} (add [agents.{agent}])",
                home.config_path().display()
            ))
        })?;
        let p = config
            .providers
            .get(&a.provider)
            .ok_or_else(|| Failure::usage(format!("no provider `{}` in config", a.provider)))?;
        let provider = provider(&a.provider, p, env)?;
        let store = Arc::new(SqliteStore::open(&home.state_db_path())?);
        let tools = Arc::new(ToolRegistry::builtin(Arc::new(SystemClock))?);
        let unknown: Vec<String> = a
            .tools
            .iter()
            .filter(|t| tools.get(t).is_none())
            .map(ToString::to_string)
            .collect();
        if !unknown.is_empty() {
            return Err(Failure::usage(format!(
                "agents.{agent}.tools names unknown tools: {}",
                unknown.join(", ")
            ))
            .into());
        }
        let template = RunRequestTemplate {
            agent_dir: home.agent_dir(&agent),
            settings: RunSettings {
                provider_name: a.provider.clone(),
                model: a.model.clone(),
                max_steps: a.max_steps,
                run_timeout: Duration::from_secs(a.run_timeout_secs),
                max_tokens: a.max_tokens,
                prompt: a.prompt,
            },
            policy: Policy {
                approval_mode: config.approval_mode(&agent),
                exec: config.security.exec,
                network: config.security.network,
                granted: a.tools.iter().cloned().collect(),
            },
        };
        let runner = Runner::new(
            provider,
            tools,
            store.clone() as Arc<dyn pincer_store::Store>,
        );
        Ok(Self {
            runner,
            store,
            agent,
            template,
        })
    }

    /// A run request for `input` in `session`.
    pub(crate) fn request(&self, session: SessionInfo, input: String) -> RunRequest {
        RunRequest {
            agent: self.agent.clone(),
            agent_dir: self.template.agent_dir.clone(),
            settings: self.template.settings.clone(),
            policy: self.template.policy.clone(),
            session,
            input,
        }
    }
}
