//! A server's manifest: its tools as `tools/list` returned them, in name order, reduced to what
//! the operator approves — name, title, description, input and output schema, annotations. Its
//! sha256 over a canonical encoding (object keys sorted at every level, no whitespace) is what
//! an approval pins: any new tool, removed tool, or changed description or schema changes it.

use std::collections::BTreeSet;

use pincer_types::{RiskTier, ToolName};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

/// Longest description kept (longer ones are cut, and the cut is part of what is approved).
const MAX_DESCRIPTION: usize = 8 * 1024;

/// One tool of a server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDef {
    /// The server's name for it.
    pub name: String,
    /// Display title, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description shown to the model.
    #[serde(default)]
    pub description: String,
    /// JSON Schema of its arguments.
    #[serde(rename = "inputSchema")]
    pub input_schema: Value,
    /// JSON Schema of its structured result, if declared.
    #[serde(
        rename = "outputSchema",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub output_schema: Option<Value>,
    /// The server's hints (`readOnlyHint`, `destructiveHint`, …) — shown, never trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
}

/// The tools of one server, sorted by name.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Manifest {
    /// Tools in name order.
    pub tools: Vec<ToolDef>,
}

impl Manifest {
    /// Builds a manifest from `tools/list` entries.
    ///
    /// # Errors
    /// A message when two tools share a name or an entry is malformed.
    pub fn from_list(raw: Vec<Value>) -> Result<Self, String> {
        let mut tools = Vec::with_capacity(raw.len());
        for v in raw {
            let mut t: ToolDef = serde_json::from_value(v)
                .map_err(|e| format!("a malformed tool in tools/list: {e}"))?;
            if t.description.len() > MAX_DESCRIPTION {
                t.description = crate::error::clip(&t.description, MAX_DESCRIPTION);
            }
            tools.push(t);
        }
        tools.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = tools.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(format!("two tools are named `{}`", w[0].name));
        }
        Ok(Self { tools })
    }

    /// The hex sha256 of the canonical encoding.
    pub fn sha256(&self) -> String {
        let v = serde_json::to_value(self).unwrap_or(Value::Null);
        let mut text = String::new();
        canonical(&v, &mut text);
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    /// A tool by its server name.
    pub fn get(&self, name: &str) -> Option<&ToolDef> {
        self.tools
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.tools[i])
    }

    /// Each tool with the name it has in Pincer (`mcp.<server>.<tool>`), collisions resolved.
    pub fn local_names(&self, server: &str) -> Vec<(ToolName, &ToolDef)> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::with_capacity(self.tools.len());
        for t in &self.tools {
            let mut name = local_name(server, &t.name, false);
            if name.as_ref().is_none_or(|n| seen.contains(n)) {
                name = local_name(server, &t.name, true);
            }
            if let Some(n) = name
                && seen.insert(n.clone())
            {
                out.push((n, t));
            }
        }
        out
    }
}

/// `mcp.<server>.<tool>` with the tool's name lower-cased and cut to what tool names allow; with
/// `suffix`, a short hash of the original name is appended (to part names that sanitise alike).
pub fn local_name(server: &str, tool: &str, suffix: bool) -> Option<ToolName> {
    let mut t: String = tool
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '_') => c,
            _ => '_',
        })
        .collect();
    let room = 64usize.saturating_sub(5 + server.len() + if suffix { 7 } else { 0 });
    t.truncate(room);
    let t = t.trim_end_matches(['-', '_']);
    let t = if t.is_empty() { "tool" } else { t };
    let name = if suffix {
        let h = hex::encode(Sha256::digest(tool.as_bytes()));
        format!("mcp.{server}.{t}_{}", &h[..6])
    } else {
        format!("mcp.{server}.{t}")
    };
    name.parse().ok()
}

/// The tier a tool gets: what the operator set for it, else `L1_MUTATING`. The server's
/// annotations never lower it.
pub fn tier_for(tool: &str, configured: &std::collections::BTreeMap<String, RiskTier>) -> RiskTier {
    configured
        .get(tool)
        .copied()
        .unwrap_or(RiskTier::L1Mutating)
}

/// Writes `v` with object keys sorted at every level and no insignificant whitespace.
pub fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            out.push('{');
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                canonical(&m[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A tool's argument schema as providers accept it: an object schema without `$schema`.
pub fn model_schema(input: &Value) -> Value {
    let mut v = input.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("$schema");
        if !m.contains_key("type") {
            m.insert("type".into(), Value::String("object".into()));
        }
        if !m.contains_key("properties") {
            m.insert("properties".into(), Value::Object(Map::new()));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(name: &str, desc: &str) -> Value {
        json!({"name": name, "description": desc, "inputSchema": {"type": "object", "properties": {"a": {"type": "string"}}}})
    }

    #[test]
    fn the_hash_is_order_independent_and_sees_every_change() {
        let a = Manifest::from_list(vec![tool("x", "one"), tool("y", "two")]).unwrap();
        let b = Manifest::from_list(vec![tool("y", "two"), tool("x", "one")]).unwrap();
        assert_eq!(a.sha256(), b.sha256());
        let desc = Manifest::from_list(vec![tool("x", "one!"), tool("y", "two")]).unwrap();
        assert_ne!(a.sha256(), desc.sha256());
        let added =
            Manifest::from_list(vec![tool("x", "one"), tool("y", "two"), tool("z", "")]).unwrap();
        assert_ne!(a.sha256(), added.sha256());
        let mut schema = tool("x", "one");
        schema["inputSchema"]["properties"]["a"]["type"] = json!("number");
        let schema = Manifest::from_list(vec![schema, tool("y", "two")]).unwrap();
        assert_ne!(a.sha256(), schema.sha256());
        // Key order inside a schema does not matter.
        let reordered: Value = serde_json::from_str(
            r#"{"inputSchema": {"properties": {"a": {"type": "string"}}, "type": "object"}, "description": "one", "name": "x"}"#,
        ).unwrap();
        let r = Manifest::from_list(vec![reordered, tool("y", "two")]).unwrap();
        assert_eq!(a.sha256(), r.sha256());
    }

    #[test]
    fn duplicate_and_malformed_tools_are_refused() {
        assert!(Manifest::from_list(vec![tool("x", ""), tool("x", "")]).is_err());
        assert!(Manifest::from_list(vec![json!({"name": "x"})]).is_err());
    }

    #[test]
    fn local_names_are_valid_and_distinct() {
        let m = Manifest::from_list(vec![
            tool("get-sum", ""),
            tool("Get.Sum", ""),
            tool("get_sum", ""),
            tool("ünïcode/tool", ""),
            tool(&"x".repeat(200), ""),
        ])
        .unwrap();
        let names: Vec<String> = m
            .local_names("every")
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        assert_eq!(names.len(), 5, "{names:?}");
        let set: BTreeSet<&String> = names.iter().collect();
        assert_eq!(set.len(), 5);
        assert!(names.contains(&"mcp.every.get-sum".to_owned()), "{names:?}");
        assert!(
            names
                .iter()
                .all(|n| n.len() <= 64 && n.starts_with("mcp.every."))
        );
    }
}
