//! `pincer init`: create the home (0700), `config.toml`, and the default agent `main` with its
//! instruction files and workspace. Never overwrites a file that exists.

use std::io::{BufRead, Write};

use pincer_agent::scaffold_agent;
use pincer_config::{AgentConfig, Config, PincerHome, ProviderConfig, ProviderKind, ToolProfile};
use pincer_types::AgentId;

use crate::cli::{InitArgs, ProviderArg};
use crate::runtime;
use crate::{Env, Failure};

const HEADER: &str = "\
# Pincer configuration. Human-controlled: no agent or tool can write this file.
# Check it with `pincer config validate`; change it with `pincer config set KEY VALUE` or an
# editor. Secure defaults: no command execution, no network for tools, loopback-only gateway.
# Reference: docs/CONFIG.md

";

pub(crate) fn run(args: InitArgs, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    // A failed first init (bad flags, an invalid value, no terminal for the questions) must not
    // leave a half-made home behind: when this run created the home, it removes it again.
    // Re-running `init` on an existing home resumes: it never overwrites, only adds what is
    // missing.
    let existed = home.root().exists();
    let result = init(&home, args, env);
    if result.is_err()
        && !existed
        && let Err(e) = std::fs::remove_dir_all(home.root())
    {
        eprintln!(
            "warning: could not remove the half-made home {}: {e}",
            home.root().display()
        );
    }
    result
}

fn init(home: &PincerHome, args: InitArgs, env: &Env) -> anyhow::Result<u8> {
    home.ensure()?;
    let agent: AgentId = "main".parse().map_err(|e| Failure::usage(format!("{e}")))?;
    let config_path = home.config_path();
    if config_path.exists() {
        println!("config: {} exists, left unchanged", config_path.display());
        if args.provider.is_some()
            || args.base_url.is_some()
            || args.model.is_some()
            || args.api_key_env.is_some()
        {
            eprintln!(
                "note: flags were ignored because the config exists; use `pincer config set` to change it"
            );
        }
    } else {
        let text = new_config_text(&args, env, &agent)?;
        let saved = pincer_config::save(home, &text)?;
        runtime::audit_config(
            home,
            &saved,
            env,
            "config.init",
            serde_json::json!({"file": config_path, "by": "operator:cli"}),
        );
        println!("config: wrote {}", config_path.display());
    }
    scaffold(home, &agent)?;
    println!("home:   {}", home.root().display());
    println!("next:   pincer ask \"hello\"   (or `pincer chat`; `pincer doctor` checks the setup)");
    Ok(0)
}

fn scaffold(home: &PincerHome, agent: &AgentId) -> anyhow::Result<()> {
    let created = scaffold_agent(&home.agent_dir(agent))?;
    for p in &created {
        println!("created {}", p.display());
    }
    let ws = home.default_workspace(agent);
    if !ws.is_dir() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&ws)?;
        println!("created {}", ws.display());
    }
    Ok(())
}

/// Whether a base URL points at this machine (local model servers need no key).
fn is_local(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn new_config_text(args: &InitArgs, env: &Env, agent: &AgentId) -> anyhow::Result<String> {
    let interactive = env.stdin_tty;
    let mut ask = Prompter { interactive };
    let kind = match args.provider {
        Some(ProviderArg::Openai) => ProviderKind::Openai,
        Some(ProviderArg::Anthropic) => ProviderKind::Anthropic,
        Some(ProviderArg::Gemini) => ProviderKind::Gemini,
        None => match ask
            .line(
                "Provider wire format (openai/anthropic/gemini)",
                Some("openai"),
            )?
            .as_deref()
        {
            Some("anthropic") => ProviderKind::Anthropic,
            Some("gemini") => ProviderKind::Gemini,
            Some("openai") | None => ProviderKind::Openai,
            Some(other) => return Err(Failure::usage(format!("unknown provider `{other}`")).into()),
        },
    };
    let default_url = match kind {
        ProviderKind::Openai => "https://api.openai.com/v1",
        ProviderKind::Anthropic => "https://api.anthropic.com/v1",
        ProviderKind::Gemini => "https://generativelanguage.googleapis.com/v1beta",
    };
    let base_url = match &args.base_url {
        Some(u) => u.clone(),
        None => ask
            .line("API base URL", Some(default_url))?
            .unwrap_or_else(|| default_url.to_owned()),
    };
    let model = match &args.model {
        Some(m) => m.clone(),
        None => ask.line("Model name", None)?.ok_or_else(|| {
            Failure::usage(
                "--model is required when stdin is not a terminal (e.g. --model gpt-4o-mini)",
            )
        })?,
    };
    let default_key = match kind {
        ProviderKind::Openai => "OPENAI_API_KEY",
        ProviderKind::Anthropic => "ANTHROPIC_API_KEY",
        ProviderKind::Gemini => "GEMINI_API_KEY",
    };
    let api_key_env = if args.no_api_key {
        None
    } else if let Some(v) = &args.api_key_env {
        Some(v.clone())
    } else if is_local(&base_url) && !interactive {
        None
    } else {
        let suggested = if is_local(&base_url) {
            None
        } else {
            Some(default_key)
        };
        ask.line(
            "Environment variable holding the API key (empty for none)",
            suggested,
        )?
    };
    let mut config = Config::new();
    config.providers.insert(
        "default".into(),
        ProviderConfig::new(kind, base_url, api_key_env),
    );
    // The first agent can work on files in its own workspace; exec and network stay off.
    let mut main = AgentConfig::new("default", model);
    main.profile = ToolProfile::Coding;
    config.agents.insert(agent.clone(), main);
    let body = config
        .to_toml()
        .map_err(|e| Failure::usage(format!("cannot write config: {e}")))?;
    Ok(format!("{HEADER}{body}"))
}

struct Prompter {
    interactive: bool,
}

impl Prompter {
    /// Asks on a terminal; returns the default (or None) otherwise or on an empty answer.
    fn line(&mut self, question: &str, default: Option<&str>) -> anyhow::Result<Option<String>> {
        if !self.interactive {
            return Ok(default.map(str::to_owned));
        }
        match default {
            Some(d) => print!("{question} [{d}]: "),
            None => print!("{question}: "),
        }
        std::io::stdout().flush()?;
        let mut s = String::new();
        std::io::stdin().lock().read_line(&mut s)?;
        let s = s.trim();
        Ok(if s.is_empty() {
            default.map(str::to_owned)
        } else {
            Some(s.to_owned())
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn local_urls() {
        for u in [
            "http://127.0.0.1:11434/v1",
            "http://localhost:8080/v1",
            "http://[::1]:1/v1",
        ] {
            assert!(super::is_local(u), "{u}");
        }
        for u in [
            "https://api.openai.com/v1",
            "http://10.0.0.1/v1",
            "http://127.0.0.1.evil.com/v1",
        ] {
            assert!(!super::is_local(u), "{u}");
        }
    }
}
