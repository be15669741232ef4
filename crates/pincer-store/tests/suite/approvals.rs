//! Approvals, on every backend.

use pincer_store::{ApprovalError, ApprovalStatus, NewApproval};
use pincer_types::{RiskTier, TaskId};

use super::{Db, at, conformance};

fn req(expires: i64) -> NewApproval {
    NewApproval {
        task: Some(TaskId::new()),
        tool: "shell.exec".into(),
        digest: "ab".repeat(32),
        tier: RiskTier::L2Destructive,
        reason: "L2 needs approval".into(),
        detail: serde_json::json!({"argv": ["rm", "x"]}),
        requester: "main/api:s".into(),
        expires_at: at(expires),
        taint_sources: vec!["web:https://evil.example/".into(), "mcp:notes".into()],
    }
}

conformance!(decided_once_bound_to_the_digest, |db| {
    let s = db.open().await;
    let a = s.request_approval(req(60), at(0)).await.unwrap();
    assert!(a.id.starts_with("apr_") && a.id.len() == 36, "{}", a.id);
    assert_eq!(a.status, ApprovalStatus::Pending);
    let b = s.request_approval(req(60), at(0)).await.unwrap();
    assert_ne!(a.id, b.id);
    let d = s.decide(&a.id, true, "token:ops", at(10)).await.unwrap();
    assert_eq!(d.status, ApprovalStatus::Approved);
    assert_eq!(d.digest, "ab".repeat(32));
    assert_eq!(d.decided_by.as_deref(), Some("token:ops"));
    assert_eq!(d.detail["argv"][0], "rm");
    assert_eq!(d.tier, RiskTier::L2Destructive);
    assert_eq!(
        d.taint_sources,
        ["web:https://evil.example/", "mcp:notes"],
        "the held action's taint sources are kept for the person deciding"
    );
    // A second decision is refused, whatever it says.
    assert!(matches!(
        s.decide(&a.id, false, "someone", at(11)).await,
        Err(ApprovalError::Decided { .. })
    ));
    assert!(matches!(
        s.decide("apr_nope", true, "x", at(11)).await,
        Err(ApprovalError::NotFound(_))
    ));
    let pending = s
        .approvals(Some(ApprovalStatus::Pending), 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, b.id);
    assert_eq!(s.approvals(None, 10).await.unwrap().len(), 2);
    // Counted without loading the rows (what /metrics asks at every scrape).
    assert_eq!(s.count_approvals(ApprovalStatus::Pending).await.unwrap(), 1);
    assert_eq!(
        s.count_approvals(ApprovalStatus::Approved).await.unwrap(),
        1
    );
    assert_eq!(s.count_approvals(ApprovalStatus::Denied).await.unwrap(), 0);
});

conformance!(concurrent_decisions_have_one_winner, |db| {
    let s = db.open().await;
    let a = s.request_approval(req(60), at(0)).await.unwrap();
    let mut handles = Vec::new();
    for i in 0..6 {
        let (s, id) = (std::sync::Arc::clone(&s), a.id.clone());
        handles.push(tokio::spawn(async move {
            s.decide(&id, i % 2 == 0, &format!("op{i}"), at(5)).await
        }));
    }
    let mut won = 0;
    for h in handles {
        if h.await.unwrap().is_ok() {
            won += 1;
        }
    }
    assert_eq!(won, 1, "exactly one decision wins");
});

conformance!(expired_requests_cannot_be_approved, |db| {
    let s = db.open().await;
    let a = s.request_approval(req(30), at(0)).await.unwrap();
    assert!(matches!(
        s.decide(&a.id, true, "late", at(30)).await,
        Err(ApprovalError::Decided {
            status: "EXPIRED",
            ..
        })
    ));
    assert_eq!(
        s.approval(&a.id).await.unwrap().unwrap().status,
        ApprovalStatus::Expired
    );
    let b = s.request_approval(req(30), at(0)).await.unwrap();
    assert_eq!(
        s.expire_approvals(at(29)).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        s.expire_approvals(at(31)).await.unwrap(),
        vec![b.id.clone()]
    );
    assert!(s.decide(&b.id, true, "late", at(32)).await.is_err());
});

conformance!(a_tasks_approvals_are_listed_in_order, |db| {
    let s = db.open().await;
    let task = TaskId::new();
    let mut first = req(60);
    first.task = Some(task);
    let mut second = req(60);
    second.task = Some(task);
    let a = s.request_approval(first, at(0)).await.unwrap();
    s.request_approval(req(60), at(1)).await.unwrap(); // another task's
    let b = s.request_approval(second, at(2)).await.unwrap();
    s.decide(&a.id, false, "token:ops", at(3)).await.unwrap();
    let listed = s.task_approvals(task).await.unwrap();
    let ids: Vec<(&str, ApprovalStatus)> =
        listed.iter().map(|x| (x.id.as_str(), x.status)).collect();
    assert_eq!(
        ids,
        [
            (a.id.as_str(), ApprovalStatus::Denied),
            (b.id.as_str(), ApprovalStatus::Pending)
        ]
    );
    assert!(s.task_approvals(TaskId::new()).await.unwrap().is_empty());
});
