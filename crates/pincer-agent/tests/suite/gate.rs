//! The gate fails closed: when the audit log cannot record a call, the tool does not run.

use std::sync::Arc;

use pincer_agent::{CallScope, CallStatus, Gate, NoApprover};
use pincer_audit::{AuditLog, Redactor};
use pincer_config::{ApprovalMode, ExecMode, NetworkMode};
use pincer_policy::Policy;
use pincer_tools::fs::FsScope;
use pincer_tools::{ToolContext, ToolRegistry};
use pincer_types::SystemClock;

fn setup(dir: &std::path::Path) -> (Gate, ToolContext, Policy) {
    let ws = dir.join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let audit =
        Arc::new(AuditLog::open(&dir.join("audit"), Redactor::new(vec![], &[]).unwrap()).unwrap());
    let tools = Arc::new(ToolRegistry::builtin(Arc::new(SystemClock)).unwrap());
    let gate = Gate::new(tools, audit, Arc::new(NoApprover));
    let ctx = ToolContext {
        agent: "main".parse().unwrap(),
        fs: Arc::new(FsScope::open(&ws, &Default::default(), &[]).unwrap()),
        exec: None,
        run: None,
    };
    let policy = Policy {
        approval_mode: ApprovalMode::Balanced,
        exec: ExecMode::Off,
        network: NetworkMode::Off,
        granted: ["fs.write".parse().unwrap()].into(),
    };
    (gate, ctx, policy)
}

#[tokio::test]
async fn no_audit_no_tool() {
    let dir = tempfile::tempdir().unwrap();
    let (gate, ctx, policy) = setup(dir.path());
    let scope = CallScope {
        ctx: &ctx,
        policy: &policy,
        run_id: None,
        session: None,
        origin: "test",
        taint: None,
        skills: &[],
    };
    let args = r#"{"path": "a.txt", "content": "x"}"#;
    // With a working log the write goes through.
    let out = gate.call(scope, "c1", "fs.write", args).await;
    assert_eq!(out.status, CallStatus::Ok, "{:?}", out.result);
    // Break the log: its directory becomes a plain file.
    std::fs::remove_dir_all(dir.path().join("audit")).unwrap();
    std::fs::write(dir.path().join("audit"), "not a directory").unwrap();
    let args = r#"{"path": "b.txt", "content": "x"}"#;
    let out = gate.call(scope, "c2", "fs_write", args).await;
    assert_eq!(out.status, CallStatus::Denied);
    assert!(out.result.unwrap_err().contains("audit log"));
    assert!(
        !dir.path().join("ws/b.txt").exists(),
        "the tool ran without an audit record"
    );
}
