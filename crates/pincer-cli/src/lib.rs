//! The `pincer` command line. Thin: each subcommand parses its arguments, reads the environment
//! once through [`Env`], and calls into the library crates.
//!
//! Exit codes: 0 success, 1 a run or check failed, 2 bad usage or configuration, 3 denied by
//! policy, 4 needed approval and none was given, 130 canceled.

mod cli;
mod commands;
mod exit;
#[cfg(feature = "otel")]
mod telemetry;

pub use exit::Failure;
pub use pincer_server::Env;
use pincer_server::{runtime, sandbox};

use std::process::ExitCode;

use clap::Parser;

/// Parses `std::env::args`, runs the command and returns its exit code.
pub fn main_entry() -> ExitCode {
    let args = cli::Cli::parse();
    let env = Env::from_process();
    let serving = matches!(args.command, cli::Command::Serve(_));
    // Dropped after the command: flushes the last traces.
    let _traces = match init_tracing(serving, &env) {
        Ok(t) => t,
        Err(err) => {
            eprintln!("error: {}", exit::render(&err));
            return ExitCode::from(exit::code_for(&err));
        }
    };
    let code = match commands::dispatch(args, &env) {
        Ok(code) => code,
        Err(err) => {
            let code = exit::code_for(&err);
            eprintln!("error: {}", exit::render(&err));
            code
        }
    };
    ExitCode::from(code)
}

/// Logs on stderr: level by `PINCER_LOG` (`warn` by default; `info` shows tasks, model and tool
/// calls), human-readable or one JSON object a line with `PINCER_LOG_FORMAT=json`. Log events
/// carry ids, names, statuses and timings — never message content. For `pincer serve` with
/// `[telemetry] otlp_endpoint`, spans are also exported as traces (`otel` feature); the
/// returned guard flushes them at exit.
fn init_tracing(serving: bool, env: &Env) -> anyhow::Result<Option<Traces>> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_env("PINCER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let json = std::env::var("PINCER_LOG_FORMAT").is_ok_and(|f| f == "json");
    let Some(t) = serving.then(|| telemetry_config(env)).flatten() else {
        // No traces: the filter is global, so every disabled callsite (ours and every
        // dependency's debug and trace events) is switched off once, not asked at each event.
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false);
        let _ = if json {
            builder.json().try_init()
        } else {
            builder.try_init()
        };
        return Ok(None);
    };
    // Traces: the log filter applies to the log layer only, the trace layer takes Pincer's
    // spans whatever `PINCER_LOG` says.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let fmt = if json {
        fmt.json().with_filter(filter).boxed()
    } else {
        fmt.with_filter(filter).boxed()
    };
    let (traces, guard) = traces_layer(&t)?;
    let mut layers: Vec<BoxedLayer> = vec![fmt];
    layers.extend(traces);
    let _ = tracing_subscriber::registry().with(layers).try_init();
    Ok(guard)
}

/// `[telemetry]` of the home's config when it sets an endpoint (errors in the config are left
/// for `serve` to report, with file, line and key).
fn telemetry_config(env: &Env) -> Option<pincer_config::TelemetryConfig> {
    let home = runtime::home(env).ok()?;
    let loaded = pincer_config::load(&home).ok()?;
    loaded
        .config
        .telemetry
        .otlp_endpoint
        .is_some()
        .then_some(loaded.config.telemetry)
}

type BoxedLayer = Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

#[cfg(feature = "otel")]
type Traces = telemetry::Guard;
#[cfg(not(feature = "otel"))]
type Traces = ();

#[cfg(feature = "otel")]
fn traces_layer(
    t: &pincer_config::TelemetryConfig,
) -> anyhow::Result<(Option<BoxedLayer>, Option<Traces>)> {
    let endpoint = t.otlp_endpoint.as_deref().unwrap_or_default();
    let (layer, guard) = telemetry::layer(t, endpoint)
        .map_err(|e| Failure::usage(format!("telemetry.otlp_endpoint {endpoint}: {e}")))?;
    Ok((Some(layer), Some(guard)))
}

#[cfg(not(feature = "otel"))]
fn traces_layer(
    t: &pincer_config::TelemetryConfig,
) -> anyhow::Result<(Option<BoxedLayer>, Option<Traces>)> {
    Err(Failure::usage(format!(
        "telemetry.otlp_endpoint {}: this pincer was built without OpenTelemetry support (build with `--features otel`)",
        t.otlp_endpoint.as_deref().unwrap_or_default()
    ))
    .into())
}
