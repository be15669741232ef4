//! The registry: every tool by canonical name and by wire name.
//!
//! Model APIs allow only `[a-zA-Z0-9_-]` in tool names, so `time.now` travels as `time_now`. The
//! registry refuses a tool whose wire name would collide with another's.

use std::collections::BTreeMap;
use std::sync::Arc;

use pincer_types::{Clock, ToolName};

use crate::{
    ApplyPatch, CodeSearch, FsEdit, FsList, FsRead, FsWrite, ProcessTool, ShellExec, TimeNow, Tool,
    ToolSpec,
};

/// Registration failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Two tools share a name or wire name.
    #[error("tool `{0}` collides with an existing tool")]
    Duplicate(String),
    /// A built-in tool's name is not a valid tool name.
    #[error(transparent)]
    InvalidName(#[from] pincer_types::IdError),
}

/// All tools Pincer knows, whether or not a given agent may use them.
#[derive(Debug, Default, Clone)]
pub struct ToolRegistry {
    tools: BTreeMap<ToolName, Arc<dyn Tool>>,
    wire: BTreeMap<String, ToolName>,
}

impl ToolRegistry {
    /// The built-in tools.
    ///
    /// # Errors
    /// [`RegistryError`] if a built-in is misdefined (caught by this crate's tests).
    pub fn builtin(clock: Arc<dyn Clock>) -> Result<Self, RegistryError> {
        let mut r = Self::default();
        r.register(Arc::new(TimeNow::new(clock)?))?;
        r.register(Arc::new(FsRead::new()?))?;
        r.register(Arc::new(FsList::new()?))?;
        r.register(Arc::new(FsWrite::new()?))?;
        r.register(Arc::new(FsEdit::new()?))?;
        r.register(Arc::new(ApplyPatch::new()?))?;
        r.register(Arc::new(CodeSearch::new()?))?;
        Ok(r)
    }

    /// Adds the memory tools over the agent's memory directory, searching through `index` when
    /// there is one.
    ///
    /// # Errors
    /// [`RegistryError`] if they are already registered.
    pub fn with_memory(
        mut self,
        mem: Arc<crate::memory::MemoryDir>,
        index: Option<Arc<dyn crate::memory::NoteSearch>>,
    ) -> Result<Self, RegistryError> {
        use crate::memory::{MemoryAppend, MemoryForget, MemoryGet, MemorySearch};
        self.register(Arc::new(MemoryGet::new(mem.clone())?))?;
        self.register(Arc::new(MemorySearch::new(mem.clone(), index)?))?;
        self.register(Arc::new(MemoryAppend::new(mem.clone())?))?;
        self.register(Arc::new(MemoryForget::new(mem)?))?;
        Ok(self)
    }

    /// Adds `shell.exec` and `process`. Call only when the agent's sandbox passed its probe:
    /// a registry without them is how "no enforced sandbox" reaches the model (C1, D3).
    ///
    /// # Errors
    /// [`RegistryError`] if they are already registered.
    pub fn with_exec(mut self) -> Result<Self, RegistryError> {
        self.register(Arc::new(ShellExec::new()?))?;
        self.register(Arc::new(ProcessTool::new()?))?;
        Ok(self)
    }

    /// Adds a tool.
    ///
    /// # Errors
    /// [`RegistryError::Duplicate`] when its name or wire name is taken.
    pub fn register(&mut self, tool: Arc<dyn Tool>) -> Result<(), RegistryError> {
        let name = tool.spec().name.clone();
        let wire = Self::wire_name(&name);
        if self.tools.contains_key(&name) || self.wire.contains_key(&wire) {
            return Err(RegistryError::Duplicate(name.to_string()));
        }
        self.wire.insert(wire, name.clone());
        self.tools.insert(name, tool);
        Ok(())
    }

    /// The name a tool travels under on the wire (`time.now` → `time_now`).
    pub fn wire_name(name: &ToolName) -> String {
        name.as_str().replace('.', "_")
    }

    /// A tool by canonical name.
    pub fn get(&self, name: &ToolName) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name)
    }

    /// A tool's canonical name from its wire name.
    pub fn by_wire(&self, wire: &str) -> Option<&ToolName> {
        self.wire.get(wire)
    }

    /// Specs of the listed tools that exist and are available now, in the listed order
    /// (deterministic prompts).
    pub fn specs_for<'a>(
        &'a self,
        allowed: &'a [ToolName],
    ) -> impl Iterator<Item = &'a ToolSpec> + 'a {
        allowed
            .iter()
            .filter_map(|n| self.tools.get(n))
            .filter(|t| t.available())
            .map(|t| t.spec())
    }

    /// Every tool's spec, by name.
    pub fn all(&self) -> impl Iterator<Item = &ToolSpec> {
        self.tools.values().map(|t| t.spec())
    }

    /// Tells every tool that `run` ended (see [`Tool::end_run`]).
    pub fn end_run(&self, run: pincer_types::RunId) {
        for t in self.tools.values() {
            t.end_run(run);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pincer_types::SystemClock;

    #[test]
    fn wire_names_map_both_ways() {
        let r = ToolRegistry::builtin(Arc::new(SystemClock)).unwrap();
        let name: ToolName = "time.now".parse().unwrap();
        assert_eq!(ToolRegistry::wire_name(&name), "time_now");
        assert_eq!(r.by_wire("time_now"), Some(&name));
        assert!(r.by_wire("time.now").is_none());
    }

    #[test]
    fn every_builtin_has_an_object_schema_without_refs() {
        let r = ToolRegistry::builtin(Arc::new(SystemClock)).unwrap();
        for spec in r.all() {
            assert_eq!(spec.parameters["type"], "object", "{}", spec.name);
            let text = spec.parameters.to_string();
            assert!(
                !text.contains("$ref") && !text.contains("$schema"),
                "{text}"
            );
        }
    }

    #[test]
    fn duplicates_are_refused() {
        let mut r = ToolRegistry::builtin(Arc::new(SystemClock)).unwrap();
        assert!(
            r.register(Arc::new(TimeNow::new(Arc::new(SystemClock)).unwrap()))
                .is_err()
        );
    }

    #[tokio::test]
    async fn time_now_validates_and_runs() {
        use pincer_config::{ApprovalMode, ExecMode, NetworkMode};
        let r = ToolRegistry::builtin(Arc::new(SystemClock)).unwrap();
        let t = r.get(&"time.now".parse().unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ctx = crate::ToolContext {
            agent: "main".parse().unwrap(),
            fs: Arc::new(crate::fs::FsScope::open(dir.path(), &Default::default(), &[]).unwrap()),
            exec: None,
            run: None,
        };
        assert!(t.plan(&ctx, &serde_json::json!({"tz": "x"})).is_err());
        assert!(t.plan(&ctx, &serde_json::json!([1])).is_err());
        let action = t.plan(&ctx, &serde_json::json!({})).unwrap();
        let policy = pincer_policy::Policy {
            approval_mode: ApprovalMode::Balanced,
            exec: ExecMode::Off,
            network: NetworkMode::Off,
            granted: [action.tool.clone()].into(),
        };
        let pctx = pincer_policy::Context::untainted("main".parse().unwrap());
        let approved = pincer_policy::authorize(&policy, action, &pctx).unwrap();
        let out = t.run(&ctx, approved).await.unwrap();
        let v: serde_json::Value = serde_json::from_str(&out.content).unwrap();
        assert!(v["unix"].as_i64().unwrap() > 1_600_000_000);
    }
}
