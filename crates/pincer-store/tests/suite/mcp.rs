//! MCP server approvals, on every backend.

use super::{Db, at, conformance};

conformance!(an_operator_approves_exactly_the_manifest_seen, |db| {
    let s = db.open().await;
    assert!(s.mcp_get("files").await.unwrap().is_none());
    // Nothing seen yet: nothing to approve.
    assert!(!s.mcp_approve("files", "aaa", "cli", at(0)).await.unwrap());
    s.mcp_seen("files", "aaa", r#"{"tools":[]}"#, at(1))
        .await
        .unwrap();
    // Another sha256 than the one seen is refused (the manifest changed in between).
    assert!(!s.mcp_approve("files", "bbb", "cli", at(2)).await.unwrap());
    assert!(
        s.mcp_get("files")
            .await
            .unwrap()
            .unwrap()
            .approved
            .is_none()
    );
    assert!(s.mcp_approve("files", "aaa", "cli", at(3)).await.unwrap());
    let r = s.mcp_get("files").await.unwrap().unwrap();
    let a = r.approved.unwrap();
    assert_eq!(
        (a.sha256.as_str(), a.manifest.as_str()),
        ("aaa", r#"{"tools":[]}"#)
    );
    assert_eq!(a.by.as_deref(), Some("cli"));
    assert_eq!(a.at, at(3));
    // A changed manifest is recorded as seen; the approval stays what it was.
    s.mcp_seen("files", "ccc", r#"{"tools":[1]}"#, at(4))
        .await
        .unwrap();
    let r = s.mcp_get("files").await.unwrap().unwrap();
    assert_eq!(r.approved.unwrap().sha256, "aaa");
    assert_eq!(r.seen.unwrap().sha256, "ccc");
    // It survives a reopen.
    drop(s);
    let s = db.open().await;
    assert_eq!(
        s.mcp_get("files")
            .await
            .unwrap()
            .unwrap()
            .approved
            .unwrap()
            .sha256,
        "aaa"
    );
    s.mcp_seen("time", "ttt", "{}", at(5)).await.unwrap();
    let names: Vec<String> = s
        .mcp_list()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.server)
        .collect();
    assert_eq!(names, ["files", "time"]);
    s.mcp_revoke("files").await.unwrap();
    let r = s.mcp_get("files").await.unwrap().unwrap();
    assert!(r.approved.is_none());
    assert!(r.seen.is_some());
    s.mcp_forget("files").await.unwrap();
    assert!(s.mcp_get("files").await.unwrap().is_none());
});
