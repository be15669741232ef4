//! [`McpTool`]: one approved tool of one server, as a registry entry. It goes through the same
//! gate as every tool — grant check, plan, policy, approval, audit — and its result is labelled
//! untrusted like all tool output. Its spec comes from the *approved* manifest; while the server's
//! tools are withdrawn it is not offered and planning it is refused.

use std::sync::Arc;

use pincer_policy::Approved;
use pincer_tools::{Tool, ToolContext, ToolError, ToolFuture, ToolOutput, ToolSpec};
use pincer_types::{Action, Capability, ToolName};
use serde_json::{Value, json};

use crate::McpError;
use crate::hub::{McpHub, Server};
use crate::manifest::{ToolDef, model_schema, tier_for};

/// Largest arguments object accepted.
const MAX_ARGS: usize = 1 << 20;

/// An MCP tool in the registry.
#[derive(Debug)]
pub struct McpTool {
    spec: ToolSpec,
    server: Arc<Server>,
    remote: String,
    /// An external sink (D9) unless the operator listed it in `not_sinks`.
    sink: bool,
    input_schema: Value,
    output_schema: Option<Value>,
}

impl McpTool {
    fn new(name: ToolName, def: &ToolDef, server: Arc<Server>) -> Self {
        let tier = tier_for(&def.name, &server.config().tiers);
        let mut description = def.description.clone();
        if description.is_empty() {
            description = def.title.clone().unwrap_or_default();
        }
        let sink = !server.config().not_sinks.contains(&def.name);
        Self {
            spec: ToolSpec {
                name,
                description: format!("[MCP server `{}`] {description}", server.name()),
                parameters: std::sync::Arc::new(model_schema(&def.input_schema)),
                capability: Capability::Mcp,
                base_tier: tier,
            },
            remote: def.name.clone(),
            input_schema: def.input_schema.clone(),
            output_schema: def.output_schema.clone(),
            server,
            sink,
        }
    }

    /// The server's name for the tool.
    pub fn remote_name(&self) -> &str {
        &self.remote
    }
}

/// The tools of every enabled server with an approved manifest, as `(server, tool)`.
pub fn tools(hub: &McpHub) -> Vec<(String, Arc<dyn Tool>)> {
    let mut out: Vec<(String, Arc<dyn Tool>)> = Vec::new();
    for server in hub.servers() {
        if !server.config().enabled {
            continue;
        }
        let Some(approved) = server.approved() else {
            continue;
        };
        for (name, def) in approved.manifest.local_names(server.name()) {
            out.push((
                server.name().to_owned(),
                Arc::new(McpTool::new(name, def, Arc::clone(server))),
            ));
        }
    }
    out
}

impl Tool for McpTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn available(&self) -> bool {
        self.server.withdrawn().is_none()
    }

    fn plan(&self, _ctx: &ToolContext, args: &Value) -> Result<Action, ToolError> {
        if let Some(why) = self.server.withdrawn() {
            return Err(ToolError::Forbidden(format!(
                "`{}`: the tools of MCP server `{}` are withdrawn: {why}",
                self.spec.name,
                self.server.name()
            )));
        }
        let args = if args.is_null() {
            json!({})
        } else {
            args.clone()
        };
        if !args.is_object() {
            return Err(ToolError::InvalidArguments(format!(
                "{}: arguments must be an object",
                self.spec.name
            )));
        }
        if args.to_string().len() > MAX_ARGS {
            return Err(ToolError::InvalidArguments(format!(
                "{}: arguments are over 1 MiB",
                self.spec.name
            )));
        }
        crate::content::check(&self.input_schema, &args, "arguments")
            .map_err(|e| ToolError::InvalidArguments(format!("{}: {e}", self.spec.name)))?;
        // D9: an MCP tool acts outside Pincer (its side effects are unknown): an external sink
        // whose every scalar argument must come from trusted content in a tainted turn.
        let mut sink = Vec::new();
        match self.server.config().sink_args.get(&self.remote) {
            // The operator named the arguments that matter, and how to compare them.
            Some(roles) => {
                for (name, role) in roles {
                    let value = match &args[name.as_str()] {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    sink.push(pincer_types::SinkArg::new(name, *role, value));
                }
            }
            None => scalar_args("", &args, &mut sink),
        }
        let action = self.spec.action(
            self.spec.base_tier,
            json!({"server": self.server.name(), "tool": self.remote, "arguments": args}),
        );
        Ok(if self.sink {
            action.with_sink(pincer_types::SinkKind::External, sink)
        } else {
            action
        })
    }

    fn run<'a>(&'a self, _ctx: &'a ToolContext, action: Approved<Action>) -> ToolFuture<'a> {
        Box::pin(async move {
            let args = action.action().detail["arguments"].clone();
            match self
                .server
                .call(&self.remote, args, self.output_schema.as_ref())
                .await
            {
                Ok(r) if r.is_error => Err(ToolError::Failed(format!(
                    "the MCP tool reported an error: {}",
                    r.text
                ))),
                Ok(r) => Ok(ToolOutput { content: r.text }),
                Err(e @ McpError::Withdrawn { .. }) => Err(ToolError::Forbidden(e.to_string())),
                Err(e) => Err(ToolError::Failed(e.to_string())),
            }
        })
    }
}

/// Every string and number in `v` as a sink argument named by its path (`to`, `items.0.id`).
fn scalar_args(path: &str, v: &Value, out: &mut Vec<pincer_types::SinkArg>) {
    use pincer_types::{ArgRole, SinkArg};
    let at = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    match v {
        Value::Object(m) => m.iter().for_each(|(k, v)| scalar_args(&at(k), v, out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| scalar_args(&at(&i.to_string()), v, out)),
        Value::String(s) => out.push(SinkArg::new(path, ArgRole::Text, s.clone())),
        Value::Number(n) => out.push(SinkArg::new(path, ArgRole::Amount, n.to_string())),
        Value::Bool(_) | Value::Null => {}
    }
}
