//! Where config names a credential: an environment variable (`OPENAI_API_KEY`) or a stored
//! secret (`secret:openai`, from `pincer secrets set openai`) — never the value itself.

/// Whether `s` is an environment variable name (A-Z a-z 0-9 _, not starting with a digit).
pub fn env_name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

/// Whether `s` names a credential: an environment variable or `secret:NAME`.
pub fn credential_ref_ok(s: &str) -> bool {
    env_name_ok(s) || pincer_secrets::reference(s).is_some()
}

/// The error message for a field that must name a credential.
pub(crate) const CREDENTIAL_REF: &str = "must name an environment variable (A-Z, 0-9, _) or a stored secret (secret:NAME), not the value itself";

/// Every place `config` names a credential, as `(key, reference)`: provider keys, the bot token
/// and webhook secret, hook secrets, the database password, the embeddings and search keys,
/// and MCP servers' env and headers (their `env:`/`secret:` references).
pub fn credential_fields(config: &crate::Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, p) in &config.providers {
        if let Some(v) = &p.api_key_env {
            out.push((format!("providers.{name}.api_key_env"), v.clone()));
        }
        for (i, v) in p.api_key_envs.iter().enumerate() {
            out.push((format!("providers.{name}.api_key_envs[{i}]"), v.clone()));
        }
    }
    if let Some(t) = &config.channels.telegram {
        out.push(("channels.telegram.token_env".into(), t.token_env.clone()));
        if t.webhook_url.is_some() {
            out.push((
                "channels.telegram.webhook_secret_env".into(),
                t.webhook_secret_env.clone(),
            ));
        }
    }
    for (name, h) in &config.hooks {
        out.push((format!("hooks.{name}.secret_env"), h.secret_env.clone()));
    }
    if let Some(v) = &config.storage.password_env {
        out.push(("storage.password_env".into(), v.clone()));
    }
    if let Some(v) = &config.memory.embeddings_api_key_env {
        out.push(("memory.embeddings_api_key_env".into(), v.clone()));
    }
    if let Some(v) = config
        .web
        .search
        .as_ref()
        .and_then(|s| s.api_key_env.as_ref())
    {
        out.push(("web.search.api_key_env".into(), v.clone()));
    }
    for (name, s) in &config.mcp.servers {
        for (field, map) in [("env", &s.env), ("headers", &s.headers)] {
            for (k, v) in map {
                let r = v.strip_prefix("env:").unwrap_or(v);
                out.push((format!("mcp.servers.{name}.{field}.{k}"), r.to_owned()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_references_pass_values_do_not() {
        for ok in ["OPENAI_API_KEY", "secret:openai", "secret:tg.bot-1"] {
            assert!(credential_ref_ok(ok), "{ok}");
        }
        for bad in ["", "sk-live-123", "1ABC", "secret:", "secret:a b", "env:X"] {
            assert!(!credential_ref_ok(bad), "{bad}");
        }
    }
}
