//! Shared set-up for commands that run agents: home, config (with the loud last-known-good
//! warning), provider, store and runner.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use pincer_agent::{Approver, Gate, RunRequest, RunSettings, Runner};
use pincer_audit::AuditLog;
use pincer_config::{
    AgentConfig, Config, LoadedConfig, PincerHome, ProviderConfig, ProviderKind, ToolSelector,
};
use pincer_policy::Policy;
use pincer_providers::{
    AnthropicProvider, ApiKey, GeminiProvider, HttpSettings, ModelProvider, OpenAiProvider,
};
use pincer_store::{Backend, SessionInfo, SqliteStore};
use pincer_tools::fs::{Covers, FsScope, ProtectedPath, Protection};
use pincer_tools::{ExecScope, ToolContext, ToolRegistry};
use pincer_types::{AgentId, SystemClock};

use crate::{Env, Failure, sandbox};

/// The home directory from the environment.
pub fn home(env: &Env) -> anyhow::Result<PincerHome> {
    Ok(PincerHome::resolve(
        env.pincer_home.clone(),
        env.home.clone(),
    )?)
}

/// Loads the config; when running on the last-known-good copy, says so loudly on stderr.
pub fn load_config(home: &PincerHome, env: &Env) -> anyhow::Result<LoadedConfig> {
    let loaded = pincer_config::load(home)?;
    if let Some(err) = &loaded.fallback {
        audit_config(
            home,
            &loaded.config,
            env,
            "config.fallback",
            serde_json::json!({"error": err.to_string(), "running_on": loaded.path}),
        );
        eprintln!("WARNING: {err}");
        eprintln!(
            "WARNING: config.toml is invalid; running on the last-known-good copy {}. Fix the file, then check it with `pincer config validate`.",
            loaded.path.display()
        );
    }
    Ok(loaded)
}

/// A single-threaded Tokio runtime: the CLI runs one conversation at a time.
pub fn tokio_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Builds the client for a configured provider, with its first key.
pub fn provider(
    name: &str,
    p: &ProviderConfig,
    env: &Env,
) -> anyhow::Result<Arc<dyn ModelProvider>> {
    let key = match &p.api_key_env {
        Some(var) => Some(api_key(name, var, "api_key_env", env)?),
        None => None,
    };
    provider_with_key(p, key)
}

fn api_key(provider: &str, var: &str, field: &str, env: &Env) -> anyhow::Result<ApiKey> {
    Ok(ApiKey::new(env.var(var).ok_or_else(|| {
        Failure::usage(format!(
            "environment variable {var} is not set (providers.{provider}.{field}); export it with your API key"
        ))
    })?))
}

/// Builds the client for a provider with `key`.
fn provider_with_key(
    p: &ProviderConfig,
    key: Option<ApiKey>,
) -> anyhow::Result<Arc<dyn ModelProvider>> {
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
        ProviderKind::Gemini => Arc::new(GeminiProvider::new(&p.base_url, key, settings)?),
    })
}

/// Every key of provider `name`, as `(variable, key)` (one `(None, None)` for a provider that
/// needs no key).
fn provider_keys(
    name: &str,
    p: &ProviderConfig,
    env: &Env,
) -> anyhow::Result<Vec<(Option<String>, Option<ApiKey>)>> {
    let Some(first) = &p.api_key_env else {
        return Ok(vec![(None, None)]);
    };
    let mut keys = vec![(
        Some(first.clone()),
        Some(api_key(name, first, "api_key_env", env)?),
    )];
    for (i, var) in p.api_key_envs.iter().enumerate() {
        let field = format!("api_key_envs[{i}]");
        keys.push((Some(var.clone()), Some(api_key(name, var, &field, env)?)));
    }
    Ok(keys)
}

/// An agent's model: a plain provider, or — with `agents.<id>.models` or several keys — a
/// failover chain. Returns the provider, its name and the model (or first alias) for records.
fn agent_model(
    config: &Config,
    agent: &AgentId,
    a: &AgentConfig,
    env: &Env,
    backing: &Backing,
) -> anyhow::Result<(Arc<dyn ModelProvider>, String, String)> {
    let meter = Arc::new(crate::metering::Meter {
        store: backing.store.clone(),
        budgets: config.budgets.clone(),
        audit: backing.audit.clone(),
    });
    let metered = |inner: Arc<dyn ModelProvider>, alias: &str| -> Arc<dyn ModelProvider> {
        let prices = config.models.get(alias).and_then(|m| {
            Some(crate::metering::Prices {
                input: m.input_price?,
                output: m.output_price?,
            })
        });
        Arc::new(crate::metering::Metered::new(
            inner,
            alias.to_owned(),
            prices,
            meter.clone(),
        ))
    };
    let chain: Vec<(String, String, String)> = if a.models.is_empty() {
        let p = config
            .providers
            .get(&a.provider)
            .ok_or_else(|| Failure::usage(format!("no provider `{}` in config", a.provider)))?;
        if p.api_key_envs.is_empty() {
            return Ok((
                metered(provider(&a.provider, p, env)?, &a.model),
                a.provider.clone(),
                a.model.clone(),
            ));
        }
        vec![(a.model.clone(), a.provider.clone(), a.model.clone())]
    } else {
        a.models
            .iter()
            .map(|alias| {
                let m = config.models.get(alias).ok_or_else(|| {
                    Failure::usage(format!("agents.{agent}.models: no model named `{alias}`"))
                })?;
                Ok((alias.clone(), m.provider.clone(), m.model.clone()))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let mut routes = Vec::new();
    for (alias, provider_name, model) in &chain {
        let p = config.providers.get(provider_name).ok_or_else(|| {
            Failure::usage(format!(
                "models.{alias}: no provider `{provider_name}` in config"
            ))
        })?;
        for (key_var, key) in provider_keys(provider_name, p, env)? {
            routes.push(crate::failover::Route {
                alias: alias.clone(),
                model: model.clone(),
                key_var,
                provider: metered(provider_with_key(p, key)?, alias),
            });
        }
    }
    let first = chain.first().map(|c| c.0.clone()).unwrap_or_default();
    let failover = crate::failover::Failover::new(
        routes,
        Arc::new(crate::failover::HealthView::new(backing.store.clone())),
        config.failover.ladder(),
        backing.audit.clone(),
        agent.to_string(),
    );
    Ok((Arc::new(failover), "failover".to_owned(), first))
}

/// Who approves actions in `ask` and `chat`: the user at the terminal when there is one,
/// otherwise nobody (so every action needing approval is denied).
pub fn interactive_approver(env: &Env) -> Arc<dyn Approver> {
    if env.stdin_tty {
        Arc::new(crate::approver::TerminalApprover)
    } else {
        Arc::new(pincer_agent::NoApprover)
    }
}

/// Records an event about the configuration (a change, a fallback, a sandbox that cannot be
/// enforced) in the audit log. An event that cannot be audited is reported loudly; whatever it
/// describes has already happened.
/// `config` is the configuration in force (its keys and patterns drive redaction).
pub fn audit_config(
    home: &PincerHome,
    config: &Config,
    env: &Env,
    kind: &'static str,
    fields: serde_json::Value,
) {
    let logged = open_audit(home, config, env).and_then(|log| Ok(log.append(kind, fields)?));
    if let Err(e) = logged {
        eprintln!("WARNING: could not record {kind} in the audit log: {e}");
    }
}

/// Records an event in a log a long-running process keeps open (`pincer serve`), on the
/// blocking pool (appends wait for their fsync). Failures are reported loudly, as in
/// [`audit_config`].
pub async fn record(log: &Arc<AuditLog>, kind: &'static str, fields: serde_json::Value) {
    let log = Arc::clone(log);
    let logged = tokio::task::spawn_blocking(move || log.append(kind, fields)).await;
    match logged {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => eprintln!("WARNING: could not record {kind} in the audit log: {e}"),
        Err(e) => eprintln!("WARNING: could not record {kind} in the audit log: {e}"),
    }
}

/// Records an event nothing irreversible waits on, without waiting for the disk (see
/// [`AuditLog::append_lazy`]); `pincer serve` syncs the log at least once a second.
pub fn record_lazy(log: &AuditLog, kind: &'static str, fields: serde_json::Value) {
    if let Err(e) = log.append_lazy(kind, fields) {
        eprintln!("WARNING: could not record {kind} in the audit log: {e}");
    }
}

/// Opens the audit log (day files, or the deployment's database chain on Postgres) with a
/// redactor that knows every API key Pincer can see and the configured extra patterns.
///
/// # Errors
/// See [`crate::audit::open`].
pub fn open_audit(home: &PincerHome, config: &Config, env: &Env) -> anyhow::Result<Arc<AuditLog>> {
    crate::audit::open(home, config, env)
}

/// Paths no tool may write (or, for secrets, read), whatever the workspace.
///
/// The list is resolved again at every file access (`FsScope`), so a file the operator replaces
/// is protected again at once, and it covers every agent's directory but the caller's own
/// agent-editable files (D1).
pub fn protected_paths(home: &PincerHome, agent: &AgentId) -> Vec<ProtectedPath> {
    let no_write = |path: std::path::PathBuf, label: &str| {
        ProtectedPath::new(path, label, Protection::NoWrite)
    };
    let db = home.state_db_path();
    let mut v = vec![
        no_write(home.config_path(), "Pincer's configuration"),
        no_write(
            home.last_good_path(),
            "Pincer's last-known-good configuration",
        ),
        no_write(db.clone(), "Pincer's state database"),
        no_write(db.with_extension("db-wal"), "Pincer's state database"),
        no_write(db.with_extension("db-shm"), "Pincer's state database"),
        no_write(db.with_extension("db-journal"), "Pincer's state database"),
        no_write(home.audit_dir(), "the audit log"),
        no_write(home.skills_dir(), "installed skills"),
        ProtectedPath::new(home.secrets_dir(), "Pincer's secrets", Protection::NoAccess),
        // Every other agent's directory, including ones created later.
        ProtectedPath {
            covers: Covers::EntriesExcept(agent.as_str().to_owned()),
            ..no_write(home.agents_dir(), "another agent's files")
        },
    ];
    let dir = home.agent_dir(agent);
    for f in pincer_agent::AGENT_FILES
        .iter()
        .filter(|f| !f.agent_editable)
    {
        v.push(no_write(
            dir.join(f.name),
            "a read-only agent instruction file",
        ));
    }
    v.push(no_write(dir.join("runs"), "the agent's run records"));
    // The heartbeat's instructions are the operator's: an agent that could write them could
    // schedule prompts for itself.
    v.push(no_write(
        dir.join(crate::heartbeat::HEARTBEAT_FILE),
        "the heartbeat instructions",
    ));
    v.push(no_write(dir.join("skills"), "installed skills"));
    v.push(ProtectedPath::new(
        home.mcp_dir(),
        "MCP servers' state and logs",
        Protection::NoAccess,
    ));
    v
}

/// The agent's workspace path (created if missing).
pub fn workspace(
    home: &PincerHome,
    agent: &AgentId,
    a: &AgentConfig,
) -> anyhow::Result<std::path::PathBuf> {
    let ws = a
        .workspace
        .clone()
        .unwrap_or_else(|| home.default_workspace(agent));
    if !ws.is_dir() {
        std::fs::create_dir_all(&ws)
            .with_context(|| format!("creating workspace {}", ws.display()))?;
    }
    Ok(ws)
}

/// What the agent's tools can reach.
pub fn tool_context(
    home: &PincerHome,
    agent: &AgentId,
    a: &AgentConfig,
    exec: Option<Arc<ExecScope>>,
) -> anyhow::Result<ToolContext> {
    let ws = workspace(home, agent, a)?;
    let scope = FsScope::open(&ws, &a.read_roots, &protected_paths(home, agent))
        .map_err(|e| Failure::usage(format!("agents.{agent}: {e}")))?;
    Ok(ToolContext {
        agent: agent.clone(),
        fs: Arc::new(scope),
        exec,
        run: None,
    })
}

/// The agent's policy: grants from profile/allow/deny, switches from `[security]`.
pub fn policy(config: &Config, agent: &AgentId, a: &AgentConfig) -> Policy {
    policy_with(config, agent, a, &[])
}

/// [`policy`] where `group:mcp:<server>` grants the given MCP tools (`(server, tool)`).
pub fn policy_with(
    config: &Config,
    agent: &AgentId,
    a: &AgentConfig,
    mcp: &[(String, pincer_types::ToolName)],
) -> Policy {
    Policy {
        approval_mode: config.approval_mode(agent),
        exec: config.security.exec,
        network: config.security.network,
        granted: pincer_policy::resolve_grants_with(a.profile, &a.allow, &a.deny, mcp),
    }
}

/// Looks an agent up in the config.
pub fn agent_config<'c>(
    home: &PincerHome,
    config: &'c Config,
    agent: &str,
) -> anyhow::Result<(AgentId, &'c AgentConfig)> {
    let id: AgentId = agent.parse().map_err(|e| Failure::usage(format!("{e}")))?;
    let a = config.agents.get(&id).ok_or_else(|| {
        Failure::usage(format!(
            "no agent `{id}` in {} (add [agents.{id}])",
            home.config_path().display()
        ))
    })?;
    Ok((id, a))
}

/// The built-in tools, plus the exec tools when the agent's sandbox is enforced; an explicitly
/// allowed tool that does not exist at all is a config error.
pub fn registry(
    agent: &AgentId,
    a: &AgentConfig,
    agent_dir: &std::path::Path,
    with_exec: bool,
    index: Option<Arc<dyn pincer_tools::memory::NoteSearch>>,
    extra: &[Arc<dyn pincer_tools::Tool>],
) -> anyhow::Result<Arc<ToolRegistry>> {
    let mut tools = ToolRegistry::builtin(Arc::new(SystemClock))?.with_memory(
        Arc::new(pincer_tools::memory::MemoryDir::new(agent_dir).with_tz(a.timezone.clone())),
        index,
    )?;
    if with_exec {
        tools = tools.with_exec()?;
    }
    for t in extra {
        tools.register(Arc::clone(t))?;
    }
    let tools = Arc::new(tools);
    let unknown: Vec<String> = a
        .allow
        .iter()
        .filter_map(|s| match s {
            // An MCP tool may be missing because its server is not approved or enabled yet, a
            // web tool because the network is off.
            ToolSelector::Tool(t)
                if tools.get(t).is_none()
                    && !sandbox::EXEC_TOOLS.contains(&t.as_str())
                    && !crate::web::WEB_TOOLS.contains(&t.as_str())
                    && !t.as_str().starts_with("mcp.") =>
            {
                Some(t.to_string())
            }
            _ => None,
        })
        .collect();
    if !unknown.is_empty() {
        return Err(Failure::usage(format!(
            "agents.{agent}.allow names tools this Pincer does not have: {}",
            unknown.join(", ")
        ))
        .into());
    }
    Ok(tools)
}

/// What an agent's tools record to: the audit log, and the store when there is one (memory
/// search then goes through its index).
#[derive(Debug, Clone)]
pub struct ToolBacking {
    pub audit: Arc<AuditLog>,
    pub store: Option<Arc<dyn Backend>>,
    /// The process's MCP servers, when any are configured.
    pub mcp: Option<Arc<pincer_mcp::hub::McpHub>>,
}

/// An agent's tool side, built the same way for agent runs and `pincer tools call`: the gate
/// (registry, audit log, approver), what its tools can reach, and its policy.
#[derive(Debug)]
pub struct AgentTools {
    pub gate: Arc<Gate>,
    pub ctx: ToolContext,
    pub policy: Policy,
}

impl AgentTools {
    /// Builds the agent's tools. Probes the sandbox when the agent may run commands; when it
    /// cannot be enforced, says so on stderr and leaves the exec tools out.
    pub async fn build(
        home: &PincerHome,
        config: &Config,
        agent: &AgentId,
        a: &AgentConfig,
        env: &Env,
        approver: Arc<dyn Approver>,
        backing: ToolBacking,
    ) -> anyhow::Result<Self> {
        let ToolBacking { audit, store, mcp } = backing;
        let mcp_tools = mcp
            .as_deref()
            .map(pincer_mcp::tool::tools)
            .unwrap_or_default();
        let mcp_names: Vec<(String, pincer_types::ToolName)> = mcp_tools
            .iter()
            .map(|(s, t)| (s.clone(), t.spec().name.clone()))
            .collect();
        let policy = policy_with(config, agent, a, &mcp_names);
        // Beside the built-ins: the MCP tools, and the web tools (only with the network on).
        let mut extra_tools: Vec<Arc<dyn pincer_tools::Tool>> =
            mcp_tools.into_iter().map(|(_, t)| t).collect();
        let egress = crate::web::agent_egress(config, &audit, agent.as_str());
        extra_tools.extend(crate::web::tools(config, env, egress.as_ref())?);
        let ws = workspace(home, agent, a)?;
        let protected = protected_paths(home, agent);
        let proxy = crate::web::exec_proxy(egress.as_ref());
        let exec = match sandbox::exec_state(
            config,
            a,
            &policy.granted,
            &ws,
            &protected,
            env,
            proxy.clone(),
        )
        .await
        {
            sandbox::ExecState::On(scope) => Some(scope),
            sandbox::ExecState::NotWanted => None,
            sandbox::ExecState::Unavailable(why) => {
                audit_config(
                    home,
                    config,
                    env,
                    "sandbox.unavailable",
                    serde_json::json!({"agent": agent, "provider": config.security.sandbox.as_str(),
                                       "reason": why, "tools_removed": sandbox::EXEC_TOOLS}),
                );
                eprintln!(
                    "WARNING: shell.exec and process are unavailable to agent `{agent}`: the {} sandbox cannot be enforced here ({why}). Run `pincer sandbox check`.",
                    config.security.sandbox.as_str()
                );
                None
            }
        };
        // The browser runs in the sandbox exec already probed, if any, and shares the agent's
        // egress proxy (one connection cap for its commands and its browser).
        let probed = exec.as_ref().map(|s| s.sandbox().clone());
        match crate::web::browser_tools(
            config,
            egress.as_ref(),
            proxy.clone(),
            probed,
            &policy.granted,
            &home.agent_dir(agent),
        )
        .await
        {
            crate::web::BrowserState::On(tools) => extra_tools.extend(tools),
            crate::web::BrowserState::NotWanted => {}
            crate::web::BrowserState::Unavailable(why) => {
                audit_config(
                    home,
                    config,
                    env,
                    "browser.unavailable",
                    serde_json::json!({"agent": agent, "reason": why,
                                       "tools_removed": pincer_browser::tools::BROWSER_TOOLS}),
                );
                eprintln!("WARNING: the browser tools are unavailable to agent `{agent}`: {why}");
            }
        }
        // Memory search goes through the store's index when there is a store.
        let index: Option<Arc<dyn pincer_tools::memory::NoteSearch>> = match store.clone() {
            Some(store) => Some(Arc::new(crate::memory_index::MemoryIndex::new(
                store,
                agent.as_str(),
                &home.agent_dir(agent),
                crate::memory_index::Embedder::from_config(&config.memory, env)?,
            ))),
            None => None,
        };
        // Installed skills (G1): `skill.read`, and the runs' skill source (both need the store).
        let skills = store.as_ref().map(|s| {
            pincer_skills::Skills::new(
                home.skills_dir(),
                s.clone() as Arc<dyn pincer_store::SkillStore>,
                audit.clone(),
                config.skills.trusted_sources.clone(),
            )
        });
        if let Some(s) = &skills {
            extra_tools.push(Arc::new(pincer_skills::SkillRead::new(s.clone())?));
        }
        let tools = registry(
            agent,
            a,
            &home.agent_dir(agent),
            exec.is_some(),
            index,
            &extra_tools,
        )?;
        let mut gate = Gate::new(tools, audit, approver);
        if let Some(s) = skills {
            gate = gate.with_skills(Arc::new(pincer_skills::SkillRuntime::new(s)));
        }
        Ok(Self {
            gate: Arc::new(gate),
            ctx: tool_context(home, agent, a, exec)?,
            policy,
        })
    }
}

/// What an agent runtime records to: the state database and the audit log. A process opens
/// them once and shares them (`pincer serve` hands the same two to every agent), so appends
/// extend one in-memory chain and every store call queues on one connection.
#[derive(Debug, Clone)]
pub struct Backing {
    pub store: Arc<dyn Backend>,
    pub audit: Arc<AuditLog>,
    /// The process's MCP servers (one hub for every agent), when any are configured.
    pub mcp: Option<Arc<pincer_mcp::hub::McpHub>>,
    /// Served runs: the worker pool's session → task map (whose task a tool call belongs to,
    /// for the governor); `None` for one-shot CLI runs (the owner's).
    pub tasks: Option<crate::worker::Active>,
}

impl Backing {
    /// Opens the configured store and the home's audit log.
    ///
    /// # Errors
    /// As [`open_store`], or when the audit log cannot be opened.
    pub async fn open(home: &PincerHome, config: &Config, env: &Env) -> anyhow::Result<Self> {
        let store = open_store(home, config, env).await?;
        let audit = open_audit(home, config, env)?;
        let mcp = crate::mcp::hub(home, config, env, &store, &audit).await?;
        Ok(Self {
            store,
            audit,
            mcp,
            tasks: None,
        })
    }
}

/// The configured store: the home's SQLite database, or Postgres at `storage.url` (password from
/// the variable `storage.password_env` names).
///
/// # Errors
/// [`Failure`] (exit 2) naming the URL without a password when Postgres cannot be reached, has a
/// newer schema, or this build has no Postgres support; a SQLite error otherwise.
pub async fn open_store(
    home: &PincerHome,
    config: &Config,
    env: &Env,
) -> anyhow::Result<Arc<dyn Backend>> {
    let Some(url) = &config.storage.url else {
        return Ok(Arc::new(SqliteStore::open(&home.state_db_path())?));
    };
    open_postgres(url, &config.storage, env).await
}

#[cfg(feature = "postgres")]
async fn open_postgres(
    url: &str,
    storage: &pincer_config::StorageConfig,
    env: &Env,
) -> anyhow::Result<Arc<dyn Backend>> {
    Ok(Arc::new(
        connect_postgres(
            url,
            storage.password_env.as_deref(),
            storage.ca_file.as_deref(),
            env,
        )
        .await?,
    ))
}

/// Connects to Postgres at `url` (password from the variable `password_env` names) and brings
/// its schema up to date.
///
/// # Errors
/// [`Failure`] (exit 2) naming the URL without a password.
#[cfg(feature = "postgres")]
pub async fn connect_postgres(
    url: &str,
    password_env: Option<&str>,
    ca_file: Option<&std::path::Path>,
    env: &Env,
) -> anyhow::Result<pincer_store::PgStore> {
    let shown = pincer_store::redact_url(url);
    let cfg = pg_config(url, password_env, env)?;
    let tls = pincer_store::PgTls::for_config(&cfg, ca_file)
        .map_err(|e| Failure::usage(format!("storage.url {shown}: {e}")))?;
    Ok(pincer_store::PgStore::with_tls(cfg, url, tls)
        .await
        .map_err(|e| Failure::usage(format!("storage.url {shown}: {e}")))?)
}

/// The connection settings for `url`, with the password from the variable `password_env` names.
///
/// # Errors
/// [`Failure`] (exit 2) when the URL does not parse or the variable is not set.
#[cfg(feature = "postgres")]
pub fn pg_config(
    url: &str,
    password_env: Option<&str>,
    env: &Env,
) -> anyhow::Result<tokio_postgres::Config> {
    let shown = pincer_store::redact_url(url);
    let mut cfg: tokio_postgres::Config = url
        .parse()
        .map_err(|e| Failure::usage(format!("storage.url {shown}: {e}")))?;
    if let Some(var) = password_env {
        let password = env.var(var).ok_or_else(|| {
            Failure::usage(format!(
                "storage.password_env names `{var}`, which is not set"
            ))
        })?;
        cfg.password(password);
    }
    Ok(cfg)
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(
    url: &str,
    _storage: &pincer_config::StorageConfig,
    _env: &Env,
) -> anyhow::Result<Arc<dyn Backend>> {
    Err(Failure::usage(format!(
        "storage.url {}: this pincer was built without Postgres support (feature `postgres`)",
        pincer_store::redact_url(url)
    ))
    .into())
}

impl AgentRuntime {
    /// Runs on `alias` (strictly or preferred) instead of the session's choice: `pincer ask
    /// --model`. Refused for an agent without a chain, or an alias outside it.
    ///
    /// # Errors
    /// [`Failure`] (exit 2) naming the allowed models.
    pub fn choose_model(
        &mut self,
        alias: &str,
        strict: bool,
        chain: &[String],
    ) -> anyhow::Result<()> {
        if !chain.iter().any(|a| a == alias) {
            return Err(Failure::usage(format!(
                "--model {alias}: agent `{}` may use {}",
                self.agent,
                if chain.is_empty() {
                    "only its one model (agents.<id>.models names a chain)".to_owned()
                } else {
                    chain.join(", ")
                }
            ))
            .into());
        }
        self.template.settings.model = alias.to_owned();
        self.template.settings.strict_model = strict;
        self.pinned = true;
        Ok(())
    }
}

/// An agent's context budget: its own window, else its first model's, else the default.
fn context_limits(config: &Config, a: &AgentConfig) -> pincer_agent::ContextLimits {
    let default = pincer_agent::ContextLimits::default();
    pincer_agent::ContextLimits {
        window: a
            .context_window
            .or_else(|| {
                a.models
                    .first()
                    .and_then(|alias| config.models.get(alias))
                    .and_then(|m| m.context_window)
            })
            .unwrap_or(default.window),
        compact_at: a.compact_at.unwrap_or(default.compact_at),
    }
}

/// Everything needed to run one agent from the CLI.
#[derive(Debug)]
pub struct AgentRuntime {
    pub runner: Runner,
    pub store: Arc<dyn Backend>,
    pub agent: AgentId,
    template: RunRequestTemplate,
    /// `--model` chose the model: the session's pin does not apply.
    pinned: bool,
}

#[derive(Debug, Clone)]
struct RunRequestTemplate {
    agent_dir: std::path::PathBuf,
    settings: RunSettings,
    policy: Policy,
    tools: ToolContext,
}

impl AgentRuntime {
    /// Resolves `agent` in `config` and builds its runner.
    pub async fn build(
        home: &PincerHome,
        config: &Config,
        agent: &str,
        env: &Env,
        approver: Arc<dyn Approver>,
        backing: Backing,
    ) -> anyhow::Result<Self> {
        let (agent, a) = agent_config(home, config, agent)?;
        let (provider, provider_name, model) = agent_model(config, &agent, a, env, &backing)?;
        let Backing {
            store,
            audit,
            mcp,
            tasks,
        } = backing;
        let AgentTools { gate, ctx, policy } = AgentTools::build(
            home,
            config,
            &agent,
            a,
            env,
            approver,
            ToolBacking {
                audit,
                store: Some(store.clone()),
                mcp,
            },
        )
        .await?;
        // Every tool call of an agent run is governed (pause, bypass) by the store's controls.
        let gate = Arc::new((*gate).clone().with_governor(Arc::new(
            crate::governance::StoreGovernor::new(store.clone(), config.governance.clone(), tasks),
        )));
        let template = RunRequestTemplate {
            agent_dir: home.agent_dir(&agent),
            settings: RunSettings {
                provider_name,
                model,
                strict_model: false,
                context: context_limits(config, a),
                max_steps: a.max_steps,
                run_timeout: Duration::from_secs(a.run_timeout_secs),
                max_tokens: a.max_tokens,
                prompt: a.prompt,
                light_context: false,
            },
            policy,
            tools: ctx,
        };
        let runner = Runner::new(
            provider,
            gate,
            store.clone() as Arc<dyn pincer_store::Store>,
        );
        Ok(Self {
            runner,
            store,
            agent,
            template,
            pinned: false,
        })
    }

    /// A run request for `input` in `session`, on the session's pinned model when its agent has
    /// a chain (the chain refuses an alias it does not hold).
    pub fn request(&self, session: SessionInfo, input: String) -> RunRequest {
        let mut settings = self.template.settings.clone();
        if let Some(pin) = session
            .pin
            .as_ref()
            .filter(|_| settings.provider_name == "failover" && !self.pinned)
        {
            settings.model.clone_from(&pin.alias);
            settings.strict_model = pin.strict;
        }
        RunRequest {
            agent: self.agent.clone(),
            agent_dir: self.template.agent_dir.clone(),
            settings,
            policy: self.template.policy.clone(),
            tools: self.template.tools.clone(),
            session,
            input,
        }
    }
}
