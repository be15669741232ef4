//! OpenTelemetry traces over OTLP/HTTP (H4), in a `pincer` built with the `otel` feature: the
//! `pincer.task`, `pincer.model_call` and `pincer.tool_call` spans the server already makes
//! (with `tracing`) are exported to `[telemetry] otlp_endpoint` (`/v1/traces`, protobuf) by a
//! batch processor on its own thread. Only those spans — never log events, never other crates'
//! spans — and message content only when `export_content` put it on the task span.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use pincer_config::TelemetryConfig;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// Flushes and stops the exporter when dropped (at exit, after the server stopped).
#[derive(Debug)]
pub(crate) struct Guard(SdkTracerProvider);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(e) = self.0.shutdown() {
            eprintln!("pincer: exporting the last traces failed: {e}");
        }
    }
}

/// The exporting layer for `config`, and the guard that flushes it.
///
/// # Errors
/// When the exporter cannot be built.
pub(crate) fn layer<S>(
    config: &TelemetryConfig,
    endpoint: &str,
) -> anyhow::Result<(Box<dyn Layer<S> + Send + Sync>, Guard)>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    // The exporter's HTTP client uses the rustls stack the rest of Pincer uses (ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .build()?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(config.service_name.clone())
                .build(),
        )
        .build();
    let tracer = provider.tracer("pincer");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(tracing_subscriber::filter::filter_fn(|m| {
            m.is_span() && m.name().starts_with("pincer.")
        }))
        .boxed();
    Ok((layer, Guard(provider)))
}
