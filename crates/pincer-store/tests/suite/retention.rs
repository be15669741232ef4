//! Retention (H6), on every backend: ended tasks with their decided approvals, idle
//! conversations with their messages, delivered outbox entries — by cutoff; a dry run counts
//! exactly what a real one deletes and deletes nothing.

use std::time::Duration;

use pincer_store::{NewApproval, NewOutgoing, NewTask, PrunePlan, TaskKind};
use pincer_types::{AgentId, RiskTier, SessionKey, TaskStatus};

use super::{Db, at, conformance};

fn task(session: &str) -> NewTask {
    let agent: AgentId = "main".parse().unwrap();
    NewTask {
        kind: TaskKind::Message,
        session_key: SessionKey::for_peer(&agent, "api", session).unwrap(),
        agent,
        input: "hi".into(),
        idempotency_key: None,
        deadline: None,
        owner: None,
    }
}

fn approval(task: pincer_types::TaskId) -> NewApproval {
    NewApproval {
        task: Some(task),
        tool: "fs.write".into(),
        digest: "ab".repeat(32),
        tier: RiskTier::L1Mutating,
        reason: "needs approval".into(),
        detail: serde_json::json!({}),
        requester: "main/api:s".into(),
        expires_at: at(100_000),
        taint_sources: Vec::new(),
    }
}

conformance!(old_rows_go_and_a_dry_run_only_counts, |db| {
    let s = db.open().await;
    let lease = Duration::from_secs(60);
    // t1 ended long ago with a decided approval; t2 ended recently; t3 still running; t4 ended
    // long ago but an approval of it is still pending.
    let mut ids = Vec::new();
    for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
        let (t, _) = s.submit(task(name), at(i as i64)).await.unwrap();
        ids.push(t.id);
    }
    for _ in &ids {
        s.claim("w", at(5), lease).await.unwrap().unwrap();
    }
    for (id, ended) in [(ids[0], 10), (ids[1], 5_000), (ids[3], 10)] {
        s.transition(
            id,
            None,
            TaskStatus::Succeeded,
            Some("ok".into()),
            at(ended),
        )
        .await
        .unwrap();
    }
    let decided = s.request_approval(approval(ids[0]), at(6)).await.unwrap();
    s.decide(&decided.id, true, "owner", at(7)).await.unwrap();
    s.request_approval(approval(ids[3]), at(6)).await.unwrap();

    let plan = PrunePlan {
        tasks_ended_before: Some(at(1_000)),
        ..PrunePlan::default()
    };
    let dry = s.prune(plan, true).await.unwrap();
    assert_eq!((dry.tasks, dry.approvals), (1, 1));
    assert!(
        s.task(ids[0]).await.unwrap().is_some(),
        "a dry run deletes nothing"
    );
    let done = s.prune(plan, false).await.unwrap();
    assert_eq!(done, dry);
    assert!(s.task(ids[0]).await.unwrap().is_none());
    assert!(s.approval(&decided.id).await.unwrap().is_none());
    for kept in [ids[1], ids[2], ids[3]] {
        assert!(s.task(kept).await.unwrap().is_some());
    }
    assert_eq!(s.prune(plan, false).await.unwrap().tasks, 0);
});

conformance!(idle_conversations_and_delivered_messages_go, |db| {
    let s = db.open().await;
    let agent: AgentId = "main".parse().unwrap();
    let key = SessionKey::for_peer(&agent, "api", "s").unwrap();
    let session = s.current_session(&key, &agent).await.unwrap();
    s.append_messages(
        session.id,
        vec![
            serde_json::json!({"role": "user", "content": "a"}),
            serde_json::json!({"role": "assistant", "content": "b"}),
        ],
    )
    .await
    .unwrap();
    // Messages are stamped now: a cutoff in the past keeps them, one ahead of now does not.
    let past = PrunePlan {
        sessions_idle_before: Some(at(0)),
        ..PrunePlan::default()
    };
    assert_eq!(s.prune(past, false).await.unwrap().sessions, 0);
    let ahead = PrunePlan {
        sessions_idle_before: Some(chrono::Utc::now() + chrono::Duration::days(1)),
        ..PrunePlan::default()
    };
    let dry = s.prune(ahead, true).await.unwrap();
    assert_eq!((dry.sessions, dry.messages), (1, 2));
    assert_eq!(s.messages(session.id).await.unwrap().len(), 2);
    let done = s.prune(ahead, false).await.unwrap();
    assert_eq!(done, dry);
    assert!(s.messages(session.id).await.unwrap().is_empty());
    // The key starts a fresh conversation.
    let fresh = s.current_session(&key, &agent).await.unwrap();
    assert_ne!(fresh.id, session.id);

    let sent = s
        .enqueue(NewOutgoing::text("telegram", "42", "done"), at(0))
        .await
        .unwrap();
    s.enqueue(NewOutgoing::text("telegram", "42", "waiting"), at(0))
        .await
        .unwrap();
    s.done_out(sent, None, at(5)).await.unwrap();
    let plan = PrunePlan {
        outbox_done_before: Some(at(10)),
        ..PrunePlan::default()
    };
    assert_eq!(s.prune(plan, false).await.unwrap().outbox, 1);
    let pending = s.pending_out("telegram", 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].text, "waiting");
});
