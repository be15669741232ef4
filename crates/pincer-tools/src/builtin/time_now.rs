//! `time.now`: the current time. Read-only, needs only the `time` capability.

use std::sync::Arc;

use pincer_policy::Approved;
use pincer_types::{Action, Capability, Clock, IdError, RiskTier};
use serde_json::{Value, json};

use crate::{Tool, ToolContext, ToolError, ToolFuture, ToolOutput, ToolSpec};

/// Reports the current time in UTC and as a Unix timestamp.
#[derive(Debug)]
pub struct TimeNow {
    spec: ToolSpec,
    clock: Arc<dyn Clock>,
}

impl TimeNow {
    /// A `time.now` tool reading `clock`.
    ///
    /// # Errors
    /// Never in practice: the name is a valid literal, checked by the unit tests.
    pub fn new(clock: Arc<dyn Clock>) -> Result<Self, IdError> {
        let spec = ToolSpec {
            name: "time.now".parse()?,
            description: "The current date and time (UTC, RFC 3339) and Unix timestamp.".into(),
            parameters: std::sync::Arc::new(
                json!({"type": "object", "properties": {}, "additionalProperties": false}),
            ),
            capability: Capability::Time,
            base_tier: RiskTier::L0ReadOnly,
        };
        Ok(Self { spec, clock })
    }
}

impl Tool for TimeNow {
    /// The clock's reading: nothing a third party wrote (D9).
    fn output_is_untrusted(&self) -> bool {
        false
    }

    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn plan(&self, _ctx: &ToolContext, args: &Value) -> Result<Action, ToolError> {
        match args {
            Value::Object(map) if map.is_empty() => {}
            Value::Null => {}
            Value::Object(map) => {
                let keys: Vec<&str> = map.keys().map(String::as_str).collect();
                return Err(ToolError::InvalidArguments(format!(
                    "time.now takes no arguments (got {})",
                    keys.join(", ")
                )));
            }
            _ => {
                return Err(ToolError::InvalidArguments(
                    "arguments must be a JSON object".into(),
                ));
            }
        }
        Ok(Action {
            tool: self.spec.name.clone(),
            capability: self.spec.capability,
            tier: self.spec.base_tier,
            detail: json!({}),
            sink: None,
        })
    }

    fn run<'a>(&'a self, _ctx: &'a ToolContext, _action: Approved<Action>) -> ToolFuture<'a> {
        let now = self.clock.now();
        Box::pin(async move {
            Ok(ToolOutput {
                content: json!({
                    "utc": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "unix": now.timestamp(),
                })
                .to_string(),
            })
        })
    }
}
