//! Which audit log a process writes and `pincer audit` reads: the home's day files, or — with
//! `[storage] url = "postgres://…"` — the deployment's chain in the database
//! (`pincer_store::PgAuditChain`), so several machines keep one chain without sharing a
//! filesystem. Either way the lines, the redaction and the keyed anchor are the same; the key
//! is the home's `secrets/audit.key`, which every node of a deployment must share.

use std::sync::Arc;

use pincer_audit::{
    Anchor, AnchorKey, AuditLog, AuditSource, FileWitness, Redactor, Witness, WitnessKey,
};
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
    let witnesses = witnesses(home, config, env, true)?;
    Ok(Arc::new(
        AuditLog::open_anchored(&home.audit_dir(), redactor, anchor, fresh)?
            .with_witnesses(witnesses),
    ))
}

/// The name of the witness's signing key in the secret store.
pub const WITNESS_KEY: &str = "audit-witness";

/// The witness signing key from the secret store; with `create`, a new one is stored when
/// there is none.
///
/// # Errors
/// When the store cannot be opened or written, or holds a malformed key.
pub fn witness_key(env: &Env, create: bool) -> anyhow::Result<Option<WitnessKey>> {
    let vault = env.vault()?;
    let seed = match vault.get(WITNESS_KEY)? {
        Some(hex_seed) => hex::decode(hex_seed.as_bytes()).map_err(|_| {
            Failure::usage(format!("secret `{WITNESS_KEY}` is not a hex ed25519 seed"))
        })?,
        None if create => {
            let seed = WitnessKey::random_seed()?;
            vault.set(WITNESS_KEY, &hex::encode(seed))?;
            seed.to_vec()
        }
        None => return Ok(None),
    };
    Ok(Some(WitnessKey::from_seed(&seed)?))
}

/// The day-file log's witnesses: the state database's `audit_head` (when the database
/// exists) and `[audit] witness_file` when configured — signed
/// with the key in the secret store (`write`), or checked against the pinned or stored public
/// key.
///
/// # Errors
/// [`Failure`] (exit 2) for a witness file inside the home, a key that does not match the pin,
/// or no key to check the witness with; store and I/O errors otherwise.
pub fn witnesses(
    home: &PincerHome,
    config: &Config,
    env: &Env,
    write: bool,
) -> anyhow::Result<Vec<Arc<dyn Witness>>> {
    let mut out: Vec<Arc<dyn Witness>> = Vec::new();
    // Only a database the store already made: the audit log is also written before there is
    // one (`init`, `config set storage.url` on the way to Postgres), and must not create it.
    let db = home.state_db_path();
    if db.exists() {
        out.push(Arc::new(pincer_store::SqliteAuditHead::new(&db)));
    }
    let a = &config.audit;
    let Some(path) = &a.witness_file else {
        return Ok(out);
    };
    let here = |why: String| -> anyhow::Error {
        Failure::usage(format!(
            "{}: audit.witness_file: {why}",
            home.config_path().display()
        ))
        .into()
    };
    if path.starts_with(home.root()) {
        return Err(here(format!(
            "{} is inside the Pincer home; a witness must be kept elsewhere (another mount)",
            path.display()
        )));
    }
    if write {
        let key = witness_key(env, true)?.ok_or_else(|| here("no witness key".into()))?;
        if let Some(pin) = &a.witness_public_key
            && !pin.eq_ignore_ascii_case(&key.public_hex())
        {
            return Err(here(format!(
                "the witness key in the secret store ({}) is not the pinned audit.witness_public_key",
                key.public_hex()
            )));
        }
        out.push(Arc::new(FileWitness::writer(
            path,
            key,
            a.witness_every_lines,
            std::time::Duration::from_secs(a.witness_every_secs),
        )));
    } else {
        let public = match &a.witness_public_key {
            Some(p) => p.clone(),
            None => witness_key(env, false)?
                .ok_or_else(|| {
                    here(
                        "no key to check it with: pin audit.witness_public_key or restore the secret store"
                            .into(),
                    )
                })?
                .public_hex(),
        };
        out.push(Arc::new(FileWitness::reader(path, &public)));
    }
    Ok(out)
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
    file_source(home, config, env)
}

/// The home's day files with their anchor and witnesses (whatever `[storage]` says).
///
/// # Errors
/// As [`witnesses`].
pub fn file_source(home: &PincerHome, config: &Config, env: &Env) -> anyhow::Result<AuditSource> {
    Ok(AuditSource::Files {
        dir: home.audit_dir(),
        key: home.audit_key_path(),
        anchor: home.audit_anchor_path(),
        witnesses: witnesses(home, config, env, false)?,
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
