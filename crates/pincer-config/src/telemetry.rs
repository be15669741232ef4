//! `[telemetry]`: OpenTelemetry traces over OTLP/HTTP (H4), in a `pincer` built with the `otel`
//! feature. One span per task, model call and tool call; message content stays out unless
//! `export_content` says otherwise.
//!
//! ```toml
//! [telemetry]
//! otlp_endpoint = "http://127.0.0.1:4318"   # an OTLP/HTTP collector; spans go to /v1/traces
//! service_name = "pincer"
//! export_content = false                    # true: task input and output on the task span
//! ```

use serde::{Deserialize, Serialize};

/// `[telemetry]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Base URL of an OTLP/HTTP collector (`http://host:4318`); unset: no traces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans.
    #[serde(default = "default_service")]
    pub service_name: String,
    /// Put task input and output on the task span (off: ids, names, statuses, timings and
    /// token counts only).
    #[serde(default)]
    pub export_content: bool,
}

fn default_service() -> String {
    "pincer".into()
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: default_service(),
            export_content: false,
        }
    }
}

impl TelemetryConfig {
    /// Whether nothing is set.
    pub fn is_default(&self) -> bool {
        self == &Self::default()
    }

    pub(crate) fn errors(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        if let Some(url) = &self.otlp_endpoint {
            let rest = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"));
            match rest {
                None => errs.push((
                    "telemetry.otlp_endpoint".into(),
                    "must be an http:// or https:// URL".into(),
                )),
                Some(r) if r.split('/').next().is_some_and(|h| h.contains('@')) => errs.push((
                    "telemetry.otlp_endpoint".into(),
                    "must not carry credentials".into(),
                )),
                Some("") => errs.push(("telemetry.otlp_endpoint".into(), "needs a host".into())),
                Some(_) => {}
            }
        }
        if self.service_name.is_empty() || self.service_name.len() > 128 {
            errs.push((
                "telemetry.service_name".into(),
                "must be 1 to 128 characters".into(),
            ));
        }
        errs
    }
}
