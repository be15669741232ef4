//! Runs tools the way the agent does: plan, authorize (trusted mode, everything granted), run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pincer_config::{ApprovalMode, ExecMode, NetworkMode};
use pincer_policy::{Context, Policy, authorize};
use pincer_tools::fs::{FsScope, ProtectedPath};
use pincer_tools::{ToolContext, ToolError, ToolRegistry};
use pincer_types::{Action, SystemClock};
use serde_json::Value;

pub struct Env {
    pub tools: ToolRegistry,
    pub ctx: ToolContext,
}

impl Env {
    pub fn new(ws: &Path) -> Self {
        Self::with(ws, BTreeMap::new(), &[])
    }

    pub fn with(ws: &Path, roots: BTreeMap<String, PathBuf>, protected: &[ProtectedPath]) -> Self {
        Self {
            tools: ToolRegistry::builtin(Arc::new(SystemClock)).unwrap(),
            ctx: ToolContext {
                agent: "main".parse().unwrap(),
                fs: Arc::new(FsScope::open(ws, &roots, protected).unwrap()),
                exec: None,
                run: None,
            },
        }
    }

    pub fn plan(&self, tool: &str, args: Value) -> Result<Action, ToolError> {
        let t = self.tools.get(&tool.parse().unwrap()).unwrap();
        t.plan(&self.ctx, &args)
    }

    pub async fn exec(&self, action: Action) -> Result<Value, ToolError> {
        let t = self.tools.get(&action.tool).unwrap();
        let policy = Policy {
            approval_mode: ApprovalMode::Trusted,
            exec: ExecMode::Off,
            network: NetworkMode::Off,
            granted: [action.tool.clone()].into(),
        };
        let ctx = Context::untainted("main".parse().unwrap());
        let approved = authorize(&policy, action, &ctx).expect("trusted mode allows L0-L2");
        let out = t.run(&self.ctx, approved).await?;
        Ok(serde_json::from_str(&out.content).unwrap())
    }

    pub async fn call(&self, tool: &str, args: Value) -> Result<Value, ToolError> {
        let action = self.plan(tool, args)?;
        self.exec(action).await
    }
}

pub fn forbidden(r: Result<impl std::fmt::Debug, ToolError>) -> String {
    match r {
        Err(ToolError::Forbidden(m)) => m,
        other => panic!("expected Forbidden, got {other:?}"),
    }
}
