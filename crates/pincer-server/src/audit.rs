//! Which audit log a process writes and `pincer audit` reads: the home's day files, or — with
//! `[storage] url = "postgres://…"` — the deployment's chain in the database
//! (`pincer_store::PgAuditChain`), so several machines keep one chain without sharing a
//! filesystem. Either way the lines, the redaction and the keyed anchor are the same; the key
//! is the home's `secrets/audit.key`, which every node of a deployment must share.

use std::sync::Arc;

use pincer_audit::{Anchor, AnchorKey, AuditLog, AuditSource, Redactor};
use pincer_config::{Config, PincerHome};

use crate::{Env, Failure};

/// The redactor for every event: each API key and token Pincer can see, and the configured
/// extra patterns.
fn redactor(home: &PincerHome, config: &Config, env: &Env) -> anyhow::Result<Redactor> {
    let secrets: Vec<String> = config
        .providers
        .values()
        .filter_map(|p| p.api_key_env.as_deref())
        .chain(
            config
                .channels
                .telegram
                .iter()
                .flat_map(|t| [t.token_env.as_str(), t.webhook_secret_env.as_str()]),
        )
        .chain(config.storage.password_env.as_deref())
        .filter_map(|var| env.var(var))
        // Every stored secret, referenced or not: none may reach the log.
        .chain(env.stored_secrets())
        .collect();
    let extra: Vec<(String, String)> = config
        .security
        .redact_patterns
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Redactor::new(secrets, &extra).map_err(|e| {
        Failure::usage(format!(
            "{}: security.redact_patterns: {e}",
            home.config_path().display()
        ))
        .into()
    })
}

/// Opens the audit log this process appends to.
///
/// # Errors
/// [`Failure`] (exit 2) for a bad redaction pattern, an unreachable database (named without its
/// password) or a node key that differs from the deployment's; an I/O error for the files.
pub fn open(home: &PincerHome, config: &Config, env: &Env) -> anyhow::Result<Arc<AuditLog>> {
    let redactor = redactor(home, config, env)?;
    let (key, fresh) = AnchorKey::load_or_create(&home.audit_key_path())?;
    if let Some(url) = &config.storage.url {
        let chain = chain(url, config, env, Some(pincer_store_writer(key, fresh)))?;
        return Ok(Arc::new(AuditLog::on_chain(chain, redactor)));
    }
    let anchor = Anchor {
        path: home.audit_anchor_path(),
        key,
    };
    Ok(Arc::new(AuditLog::open_anchored(
        &home.audit_dir(),
        redactor,
        anchor,
        fresh,
    )?))
}

/// Where `pincer audit verify|tail|search` and `pincer doctor` read the log.
///
/// # Errors
/// As [`open`], and when the key cannot be read.
pub fn source(home: &PincerHome, config: &Config, env: &Env) -> anyhow::Result<AuditSource> {
    if let Some(url) = &config.storage.url {
        let key = AnchorKey::load(&home.audit_key_path())?;
        return Ok(AuditSource::Chain {
            store: chain(url, config, env, None)?,
            key,
        });
    }
    Ok(AuditSource::Files {
        dir: home.audit_dir(),
        key: home.audit_key_path(),
        anchor: home.audit_anchor_path(),
    })
}

#[cfg(feature = "postgres")]
type Writer = pincer_store::ChainWriter;
#[cfg(not(feature = "postgres"))]
type Writer = (AnchorKey, bool);

#[cfg(feature = "postgres")]
fn pincer_store_writer(key: AnchorKey, fresh: bool) -> Writer {
    pincer_store::ChainWriter { key, fresh }
}

#[cfg(not(feature = "postgres"))]
fn pincer_store_writer(key: AnchorKey, fresh: bool) -> Writer {
    (key, fresh)
}

/// The database chain at `url` (on its own connection).
#[cfg(feature = "postgres")]
fn chain(
    url: &str,
    config: &Config,
    env: &Env,
    writer: Option<Writer>,
) -> anyhow::Result<Arc<dyn pincer_audit::ChainStore>> {
    let shown = pincer_store::redact_url(url);
    let cfg = crate::runtime::pg_config(url, config.storage.password_env.as_deref(), env)?;
    let tls = pincer_store::PgTls::for_config(&cfg, config.storage.ca_file.as_deref())
        .map_err(|e| Failure::usage(format!("storage.url {shown}: {e}")))?;
    let chain =
        pincer_store::PgAuditChain::open(cfg, tls, format!("{shown} (audit_lines)"), writer)
            .map_err(|e| Failure::usage(format!("storage.url {shown}: audit log: {e}")))?;
    Ok(chain)
}

#[cfg(not(feature = "postgres"))]
fn chain(
    url: &str,
    _config: &Config,
    _env: &Env,
    _writer: Option<Writer>,
) -> anyhow::Result<Arc<dyn pincer_audit::ChainStore>> {
    Err(Failure::usage(format!(
        "storage.url {}: this pincer was built without Postgres support (feature `postgres`)",
        pincer_store::redact_url(url)
    ))
    .into())
}
