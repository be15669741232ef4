//! `pincer serve`: the HTTP API on loopback (or, with an explicit opt-in and a token, beyond).
//!
//! Queued tasks are run by `gateway.workers` workers ([`crate::worker`]). At start, tasks a previous
//! crash interrupted are ended (`recover_expired`, see the task queue's recovery contract).
//! SIGTERM or Ctrl-C stops accepting connections, lets requests in flight finish, stops claiming
//! tasks and waits for running ones to finish before exit.

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::Utc;
use pincer_gateway::{AppState, router_with};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::{Env, Failure, runtime, worker};

/// What one `pincer serve` process does when several share a database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Role {
    /// The HTTP API, the singletons (channels, scheduler) and task workers.
    #[default]
    All,
    /// The HTTP API and the singletons; no task workers.
    Gateway,
    /// Task workers only: no HTTP listener, no singletons.
    Worker,
}

/// How `pincer serve` was asked to run.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Listen address (default `gateway.bind`).
    pub bind: Option<SocketAddr>,
    /// What this process does.
    pub role: Role,
}

/// Runs the server until SIGTERM or Ctrl-C; returns the process exit code.
///
/// # Errors
/// A configuration problem ([`Failure`], exit 2) or a start-up failure.
pub fn serve(args: ServeOptions, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    let config = loaded.config;
    let bind = args.bind.unwrap_or(config.gateway.bind);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let store = rt.block_on(runtime::open_store(&home, &config, env))?;
    if !bind.ip().is_loopback() {
        if !config.gateway.allow_non_loopback {
            return Err(Failure::usage(format!(
                "refusing to listen on {bind}: it is not a loopback address. Set `gateway.allow_non_loopback = true` in {} (and create an API token) to expose the API.",
                home.config_path().display()
            ))
            .into());
        }
        let now = Utc::now();
        let active = rt
            .block_on(store.tokens())?
            .iter()
            .any(|t| t.is_active(now));
        if !active {
            return Err(Failure::usage(format!(
                "refusing to listen on {bind}: no API token exists yet (the API accepts only tokens); create one first with `pincer tokens create --name N --scopes …`"
            ))
            .into());
        }
    }
    let audit = |kind: &'static str, fields: serde_json::Value| {
        runtime::audit_config(&home, &config, env, kind, fields);
    };
    rt.block_on(async {
        let mut state = AppState::new(store.clone(), config.agents.keys().cloned().collect());
        state.openai_compat = config.gateway.openai_compat;
        state.governance = config.governance.clone();
        state.agents_dir = Some(home.agents_dir());
        state.audit_source = crate::audit::source(&home, &config, env).ok();
        state.config = Some(Arc::new(config.clone()));
        state.host_policy = pincer_gateway::HostPolicy::new(
            config.gateway.allowed_hosts.iter().map(String::as_str),
            config.gateway.allowed_origins.iter().map(String::as_str),
        );
        let audit_log = runtime::open_audit(&home, &config, env)?;
        state.audit = Some(audit_log.clone());
        state.mcp = Some(Arc::new(crate::mcp_admin::Admin {
            home: home.clone(),
            env: env.clone(),
            store: store.clone(),
            audit: audit_log.clone(),
        }));
        state.process_metrics = Some(Arc::new(crate::metrics::Process::new()));
        state.skills = Some(Arc::new(crate::skills_admin::Admin {
            home: home.clone(),
            config: Arc::new(config.clone()),
            store: store.clone(),
            audit: audit_log.clone(),
        }));
        state.delivery = crate::jobs::delivery_policy(&config);
        state.hooks = crate::jobs::hooks(&config, env)?;
        // The Telegram channel is built before the state is shared: in webhook mode the
        // gateway delivers to it.
        let telegram = match config.channels.telegram.as_ref().filter(|t| t.enabled) {
            Some(t) => {
                let token = env.var(&t.token_env).ok_or_else(|| {
                    Failure::usage(format!(
                        "channels.telegram is enabled but {} is not set (export the bot token from @BotFather)",
                        t.token_env
                    ))
                })?;
                let api = pincer_channels::telegram::TelegramApi::new(
                    &t.api_base,
                    pincer_channels::telegram::BotToken::new(token),
                )?;
                let agent = t
                    .agent
                    .parse()
                    .map_err(|e| Failure::usage(format!("channels.telegram.agent: {e}")))?;
                let channel: Arc<dyn pincer_channels::Channel> =
                    Arc::new(pincer_channels::telegram::TelegramChannel::new(api));
                let mut tg = crate::router::Router::new(
                    channel,
                    crate::router::Policy {
                        // The worker renews its lease every third of it (worker.rs).
                        heartbeat_every: std::time::Duration::from_secs(
                            config.gateway.lease_secs / 3,
                        ),
                        models: config
                            .agents
                            .get(&agent)
                            .map(|a| a.models.clone())
                            .unwrap_or_default(),
                        governance: config.governance.clone(),
                        ..crate::router::Policy::telegram(t, agent)
                    },
                    store.clone(),
                    state.events.clone(),
                    state.wake.clone(),
                )
                .with_audit(audit_log.clone());
                if t.webhook_url.is_some() {
                    let secret = env.var(&t.webhook_secret_env).ok_or_else(|| {
                        Failure::usage(format!(
                            "channels.telegram.webhook_url is set but {} is not (a random secret of 16+ letters, digits, _ or -)",
                            t.webhook_secret_env
                        ))
                    })?;
                    let ok = secret.len() >= 16
                        && secret.len() <= 256
                        && secret
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                    if !ok {
                        return Err(Failure::usage(format!(
                            "{} must be 16 to 256 letters, digits, _ or -",
                            t.webhook_secret_env
                        ))
                        .into());
                    }
                    tg = tg.with_webhook_secret(secret);
                }
                let tg = Arc::new(tg);
                if t.webhook_url.is_some() {
                    state.webhooks.insert(
                        "telegram".into(),
                        tg.clone() as Arc<dyn pincer_gateway::WebhookSink>,
                    );
                }
                audit(
                    "channel.start",
                    json!({"channel": "telegram", "dm_policy": t.dm_policy,
                           "mode": if t.webhook_url.is_some() { "webhook" } else { "polling" }}),
                );
                Some(tg)
            }
            None => None,
        };
        let mut outboxes = std::collections::BTreeMap::new();
        if let Some(tg) = &telegram {
            outboxes.insert("telegram".to_owned(), tg.outbox());
        }
        let automation = Arc::new(crate::jobs::Automation {
            store: store.clone(),
            events: state.events.clone(),
            wake: state.wake.clone(),
            home: home.clone(),
            config: config.clone(),
            outboxes,
            audit: audit_log.clone(),
            started: pincer_scheduler::jiff::Timestamp::now(),
            egress: crate::web::egress(&config, &audit_log),
        });
        let state = Arc::new(state);
        // One MCP hub for the process: each server runs once, whichever agent calls it.
        let mcp = crate::mcp::hub(&home, &config, env, &store, &audit_log).await?;
        let pool = Arc::new(
            worker::Pool::new(
                home.clone(),
                config.clone(),
                env.clone(),
                store.clone(),
                state.wake.clone(),
                state.events.clone(),
                audit_log.clone(),
            )
            .with_mcp(mcp.clone()),
        );
        // Tasks a crash interrupted end before anything is claimed.
        worker::recover(&pool).await;
        let events = state.events.clone();
        let stop = CancellationToken::new();
        let role = args.role;
        // One id per process: leadership leases and relayed events carry it.
        let node = crate::leader::node_id();
        // Hooked up before any worker or request can publish an event.
        let relay = crate::relay::start(
            store.clone(),
            state.events.clone(),
            node.clone(),
            stop.clone(),
        )
        .await;
        let worker_count = if role == Role::Gateway {
            0
        } else {
            config.gateway.workers
        };
        // Signal handlers are installed before readiness is announced: a SIGTERM sent the moment
        // the "listening"/"worker" line appears must stop the process gracefully, not kill it.
        let shutdown = shutdown_signal()?;
        let workers = tokio::spawn(worker::run(pool, worker_count, stop.clone()));
        // Retention (H6): this node's run bundles, the state database's old rows and old audit
        // day files, at start and daily.
        let retention = tokio::spawn(crate::retention::daily(
            home.clone(),
            Arc::new(config.clone()),
            store.clone(),
            audit_log.clone(),
            stop.clone(),
        ));
        if role == Role::Worker {
            println!("pincer serve: worker ({worker_count} workers, no HTTP)");
            use std::io::Write as _;
            std::io::stdout().flush()?;
            audit("serve.start", json!({"role": "worker"}));
            shutdown.await;
            stop.cancel();
            let _ = workers.await;
            let _ = retention.await;
            let _ = relay.await;
            audit("serve.stop", json!({"role": "worker"}));
            eprintln!("pincer serve: stopped");
            return anyhow::Ok(());
        }
        // Singletons: one node at a time runs each (see `leader.rs`).
        let channel = telegram.map(|tg| {
            tokio::spawn(crate::leader::singleton(
                store.clone(),
                "channel:telegram",
                node.clone(),
                stop.clone(),
                move |term| tg.clone().run(term),
            ))
        });
        let jobs = tokio::spawn(crate::leader::singleton(
            store.clone(),
            "automation",
            node,
            stop.clone(),
            move |term| crate::jobs::run(automation.clone(), term),
        ));
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|e| Failure::usage(format!("cannot listen on {bind}: {e}")))?;
        let addr = listener.local_addr()?;
        audit("serve.start", json!({"addr": addr.to_string()}));
        println!("pincer serve: listening on http://{addr}");
        use std::io::Write as _;
        std::io::stdout().flush()?;
        axum::serve(
            listener,
            router_with(state, pincer_ui::routes()).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            // End event streams and task waits so open connections do not hold the exit.
            events.close();
        })
        .await?;
        // Drain: no new work is claimed; tasks already running finish.
        stop.cancel();
        let _ = workers.await;
        let _ = retention.await;
        if let Some(c) = channel {
            let _ = c.await;
        }
        let _ = jobs.await;
        let _ = relay.await;
        if let Some(hub) = &mcp {
            hub.shutdown().await;
        }
        audit("serve.stop", json!({"addr": addr.to_string()}));
        eprintln!("pincer serve: stopped");
        anyhow::Ok(())
    })?;
    Ok(0)
}

/// Installs the SIGTERM and SIGINT handlers now; the returned future completes on either.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
