//! The `Tool` seam.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use pincer_policy::Approved;
use pincer_types::{Action, AgentId, Capability, RiskTier, ToolName};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::fs::FsScope;

/// What a tool is, as shown to the model and to policy.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Canonical name (`time.now`).
    pub name: ToolName,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of its arguments object (shared: every turn offers it).
    pub parameters: std::sync::Arc<serde_json::Value>,
    /// The capability it exercises.
    pub capability: Capability,
    /// Its tier before arguments raise it.
    pub base_tier: RiskTier,
}

impl ToolSpec {
    /// A spec whose parameter schema is generated from the argument type `A`.
    ///
    /// # Errors
    /// When `name` is not a valid tool name (caught by this crate's tests).
    pub fn for_args<A: JsonSchema>(
        name: &str,
        description: &str,
        capability: Capability,
        base_tier: RiskTier,
    ) -> Result<Self, pincer_types::IdError> {
        Ok(Self {
            name: name.parse()?,
            description: description.to_owned(),
            parameters: std::sync::Arc::new(schema_of::<A>()),
            capability,
            base_tier,
        })
    }

    /// An action of this tool at `tier` (never below the base tier) with `detail`.
    pub fn action(&self, tier: RiskTier, detail: serde_json::Value) -> Action {
        Action {
            tool: self.name.clone(),
            capability: self.capability,
            tier: tier.max(self.base_tier),
            detail,
            sink: None,
        }
    }
}

/// The JSON Schema of `A` as a plain, self-contained object schema (no `$ref`s, no `$schema`).
pub fn schema_of<A: JsonSchema>() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let mut v = generator.into_root_schema_for::<A>().to_value();
    if let Some(map) = v.as_object_mut() {
        map.remove("$schema");
        map.remove("title");
        // "Arguments of `fs.read`." tells the model nothing its name does not.
        if map
            .get("description")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|d| d.starts_with("Arguments of"))
        {
            map.remove("description");
        }
    }
    compact(&mut v);
    v
}

/// Shrinks a generated schema to what a model needs to call the tool (it is sent with every
/// model call; issue 24): Rust integer `format`s and the bounds of the integer type,
/// `additionalProperties: false` (unknown arguments are refused when parsed), `null`
/// defaults and the `null` alternative of optional fields (absence says it; an `anyOf` with
/// `null` becomes its other branch), `false`, `0` and `[]` defaults, and a `oneOf` of documented
/// constants written as the `enum` it is (the field's
/// description already explains each). Arguments are still checked by deserializing them.
fn compact(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let unsigned = map
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| f.starts_with("uint"));
            if map
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| f.starts_with("uint") || f.starts_with("int"))
            {
                map.remove("format");
            }
            if unsigned && map.get("minimum") == Some(&Value::from(0)) {
                map.remove("minimum");
            }
            // The type's own bounds (a `u8`'s 255) are not the tool's; its description says those.
            if unsigned
                && map
                    .get("maximum")
                    .and_then(Value::as_u64)
                    .is_some_and(|m| [255, 65_535, 4_294_967_295].contains(&m))
            {
                map.remove("maximum");
            }
            // Unknown arguments are refused when they are parsed; saying so costs every call.
            if map.get("additionalProperties") == Some(&Value::Bool(false)) {
                map.remove("additionalProperties");
            }
            // Defaults that are the type's zero say nothing a model needs (like `false`).
            if matches!(map.get("default"), Some(Value::Null | Value::Bool(false)))
                || map.get("default").and_then(Value::as_u64) == Some(0)
                || map
                    .get("default")
                    .is_some_and(|d| d.as_array().is_some_and(Vec::is_empty))
            {
                map.remove("default");
            }
            if let Some(Value::Array(types)) = map.get("type")
                && types.len() == 2
                && types.contains(&Value::from("null"))
                && let Some(t) = types.iter().find(|t| *t != "null").cloned()
            {
                map.insert("type".into(), t);
            }
            // `anyOf: [X, null]` (an optional enum or struct) is X: absence says the rest. The
            // field's own description wins over the type's.
            let nullable = map.get("anyOf").and_then(Value::as_array).and_then(|alts| {
                let is_null = |a: &Value| a.get("type") == Some(&Value::from("null"));
                match alts.as_slice() {
                    [a, b] if is_null(b) => a.as_object().cloned(),
                    [a, b] if is_null(a) => b.as_object().cloned(),
                    _ => None,
                }
            });
            if let Some(inner) = nullable {
                map.remove("anyOf");
                for (k, v) in inner {
                    if !map.contains_key(&k) {
                        map.insert(k, v);
                    }
                }
            }
            let consts: Option<Vec<Value>> =
                map.get("oneOf").and_then(Value::as_array).and_then(|alts| {
                    alts.iter()
                        .map(|a| a.get("const").cloned())
                        .collect::<Option<Vec<Value>>>()
                });
            if let Some(values) = consts {
                map.remove("oneOf");
                if values.iter().all(Value::is_string) {
                    map.insert("type".into(), Value::from("string"));
                }
                map.insert("enum".into(), Value::Array(values));
            }
            for child in map.values_mut() {
                compact(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(compact),
        _ => {}
    }
}

/// Parses tool arguments into `A`, with an error the model can act on.
///
/// # Errors
/// [`ToolError::InvalidArguments`] naming the field and what was wrong.
pub fn parse_args<A: DeserializeOwned>(
    tool: &str,
    args: &serde_json::Value,
) -> Result<A, ToolError> {
    let args = if args.is_null() {
        &serde_json::Value::Object(serde_json::Map::new())
    } else {
        args
    };
    serde_path_to_error::deserialize(args).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        if at == "." {
            ToolError::InvalidArguments(format!("{tool}: {inner}"))
        } else {
            ToolError::InvalidArguments(format!("{tool}: `{at}`: {inner}"))
        }
    })
}

/// A tool's result as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    /// Result text (usually JSON).
    pub content: String,
}

/// A tool failure. Every variant is shown to the model so it can correct itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The arguments did not match the schema.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The call tried to leave its confinement (path escape, protected file, special file).
    /// Reported and audited as a policy denial.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The tool ran and failed.
    #[error("{0}")]
    Failed(String),
    /// An internal fault.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What a tool may reach for one agent: the agent and its file scope.
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// The agent calling.
    pub agent: AgentId,
    /// Its workspace and read-only roots.
    pub fs: Arc<FsScope>,
    /// Its sandbox for `shell.exec` and `process`; `None` when exec is off or no sandbox can be
    /// enforced (the exec tools are then not registered either).
    pub exec: Option<Arc<crate::exec::ExecScope>>,
    /// The run the calls belong to (set by the runner; `None` for `pincer tools call`).
    pub run: Option<pincer_types::RunId>,
}

/// The future a tool's `run` returns.
pub type ToolFuture<'a> = Pin<Box<dyn Future<Output = Result<ToolOutput, ToolError>> + Send + 'a>>;

/// A capability-gated tool.
///
/// Implementors guarantee: `plan` has no side effects and returns an [`Action`] whose `tier` is
/// at least `spec().base_tier`; `run` does exactly what the approved action describes and
/// nothing else; neither panics on any input.
pub trait Tool: Send + Sync + std::fmt::Debug {
    /// The tool's description.
    fn spec(&self) -> &ToolSpec;
    /// Validates `args` and resolves them into an action.
    ///
    /// # Errors
    /// [`ToolError::InvalidArguments`] when the arguments are wrong, [`ToolError::Forbidden`]
    /// when they reach outside the agent's scope.
    fn plan(&self, ctx: &ToolContext, args: &serde_json::Value) -> Result<Action, ToolError>;
    /// Runs an approved action.
    fn run<'a>(&'a self, ctx: &'a ToolContext, action: Approved<Action>) -> ToolFuture<'a>;
    /// Whether the tool is offered to the model right now (an MCP server's tools are withdrawn
    /// while its manifest is not the approved one). Built-in tools always are.
    fn available(&self) -> bool {
        true
    }
    /// Called when a run ends: a tool holding resources for that run (the browser) releases
    /// them. Must not block.
    fn end_run(&self, _run: pincer_types::RunId) {}
    /// Whether what this tool returns can carry third-party text (D9: it then taints the
    /// turn). True for every tool but the few whose output Pincer itself makes from nothing
    /// anyone else wrote (`time.now`).
    fn output_is_untrusted(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Arguments of `x.test`.
    #[derive(schemars::JsonSchema, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Args {
        /// Required text.
        pattern: String,
        /// Optional count.
        limit: Option<u32>,
        /// A small number.
        #[serde(default)]
        context: u8,
        /// A flag.
        #[serde(default)]
        literal: bool,
        /// A choice.
        #[serde(default)]
        case: Case,
        /// An optional choice.
        maybe: Option<Case>,
    }

    #[derive(schemars::JsonSchema, serde::Deserialize, Default)]
    #[serde(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Case {
        /// Smart.
        #[default]
        Smart,
        /// Exact.
        Sensitive,
    }

    #[test]
    fn wire_schemas_keep_what_a_model_needs_and_drop_the_rest() {
        let v = schema_of::<Args>();
        let text = v.to_string();
        for gone in [
            "format",
            "additionalProperties",
            "\"null\"",
            "Arguments of",
            "oneOf",
            "anyOf",
            "255",
        ] {
            assert!(!text.contains(gone), "{gone} left in {text}");
        }
        let p = &v["properties"];
        assert_eq!(v["required"], serde_json::json!(["pattern"]));
        assert_eq!(p["limit"]["type"], "integer");
        assert_eq!(p["context"]["type"], "integer");
        assert_eq!(p["literal"]["type"], "boolean");
        assert_eq!(p["case"]["enum"], serde_json::json!(["smart", "sensitive"]));
        assert_eq!(p["case"]["type"], "string");
        assert_eq!(p["pattern"]["description"], "Required text.");
        assert_eq!(
            p["maybe"]["enum"],
            serde_json::json!(["smart", "sensitive"])
        );
        assert_eq!(p["maybe"]["description"], "An optional choice.");
        assert!(
            p["context"].get("default").is_none(),
            "a zero default says nothing"
        );
        // Arguments are still checked when parsed: unknown ones are refused.
        let bad: Result<Args, _> =
            serde_json::from_value(serde_json::json!({"pattern": "x", "nope": 1}));
        assert!(bad.is_err());
    }
}
