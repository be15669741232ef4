//! The task queue, on every backend.

use std::sync::Arc;
use std::time::Duration;

use pincer_store::{NewTask, TaskError, TaskKind};
use pincer_types::{AgentId, SessionKey, TaskId, TaskStatus, TokenUsage};

use super::{Db, at, conformance};

const LEASE: Duration = Duration::from_secs(30);

fn new(session: &str, input: &str, key: Option<&str>) -> NewTask {
    let agent: AgentId = "main".parse().unwrap();
    NewTask {
        kind: TaskKind::Message,
        session_key: SessionKey::for_peer(&agent, "api", session).unwrap(),
        agent,
        input: input.into(),
        idempotency_key: key.map(str::to_owned),
        deadline: None,
        owner: None,
    }
}

conformance!(same_idempotency_key_same_task, |db| {
    let s = db.open().await;
    let (a, created) = s.submit(new("s", "hi", Some("k1")), at(0)).await.unwrap();
    assert!(created);
    let (b, created) = s
        .submit(new("s", "hi again", Some("k1")), at(1))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(a.id, b.id);
    assert_eq!(b.input, "hi");
    let (c, _) = s.submit(new("s", "hi", Some("k2")), at(2)).await.unwrap();
    assert_ne!(a.id, c.id);
    assert_eq!(s.list(None, 10).await.unwrap().len(), 2);
    assert_eq!(a.created_at, at(0));
});

conformance!(one_active_task_per_session_in_submission_order, |db| {
    let s = db.open().await;
    let (a1, _) = s.submit(new("a", "1", None), at(0)).await.unwrap();
    let (a2, _) = s.submit(new("a", "2", None), at(1)).await.unwrap();
    let (b1, _) = s.submit(new("b", "1", None), at(2)).await.unwrap();
    let first = s.claim("w1", at(3), LEASE).await.unwrap().unwrap();
    assert_eq!(first.id, a1.id);
    assert_eq!(first.status, TaskStatus::Running);
    // Session a is busy: the next claim skips a2 and takes b1.
    let second = s.claim("w2", at(3), LEASE).await.unwrap().unwrap();
    assert_eq!(second.id, b1.id);
    assert!(s.claim("w3", at(3), LEASE).await.unwrap().is_none());
    // Waiting for approval still holds the session.
    s.transition(a1.id, Some("w1"), TaskStatus::WaitingApproval, None, at(4))
        .await
        .unwrap();
    assert!(s.claim("w3", at(4), LEASE).await.unwrap().is_none());
    s.transition(a1.id, Some("w1"), TaskStatus::Running, None, at(5))
        .await
        .unwrap();
    let done = s
        .transition(
            a1.id,
            Some("w1"),
            TaskStatus::Succeeded,
            Some("ok".into()),
            at(6),
        )
        .await
        .unwrap();
    assert_eq!(done.output.as_deref(), Some("ok"));
    assert!(done.lease_owner.is_none() && done.ended_at.is_some());
    let third = s.claim("w3", at(7), LEASE).await.unwrap().unwrap();
    assert_eq!(third.id, a2.id);
    let listed: Vec<TaskId> = s
        .list(None, 10)
        .await
        .unwrap()
        .iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(listed, [b1.id, a2.id, a1.id], "newest first");
    assert_eq!(
        s.list(Some(TaskStatus::Succeeded), 10).await.unwrap().len(),
        1
    );
});

conformance!(
    the_database_itself_refuses_a_second_active_task_in_a_session,
    |db| {
        let s = db.open().await;
        let (a, _) = s.submit(new("one", "1", None), at(0)).await.unwrap();
        let (b, _) = s.submit(new("one", "2", None), at(1)).await.unwrap();
        assert_eq!(s.claim("w", at(2), LEASE).await.unwrap().unwrap().id, a.id);
        // Forcing the second one to RUNNING past the claim rule is refused by the schema.
        assert!(
            s.transition(b.id, None, TaskStatus::Running, None, at(3))
                .await
                .is_err()
        );
        assert_eq!(
            s.task(b.id).await.unwrap().unwrap().status,
            TaskStatus::Queued
        );
    }
);

conformance!(
    concurrent_claimers_never_run_two_tasks_of_one_session,
    |db| {
        let s = db.open().await;
        for i in 0..6 {
            s.submit(new("shared", &i.to_string(), None), at(i))
                .await
                .unwrap();
        }
        // Eight claimers at once (on Postgres: eight connections racing).
        let claims = futures_join(
            (0..8)
                .map(|w| {
                    let s = Arc::clone(&s);
                    tokio::spawn(async move { s.claim(&format!("w{w}"), at(10), LEASE).await })
                })
                .collect(),
        )
        .await;
        let won: Vec<_> = claims.into_iter().filter_map(|c| c.unwrap()).collect();
        assert_eq!(won.len(), 1, "one active task per session");
        assert_eq!(won[0].input, "0", "the oldest first");
    }
);

async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

conformance!(ending_with_a_run_records_both_or_neither, |db| {
    let s = db.open().await;
    let usage = TokenUsage {
        input_tokens: 7,
        output_tokens: 3,
    };
    s.submit(new("s", "x", None), at(0)).await.unwrap();
    let t = s.claim("w", at(1), LEASE).await.unwrap().unwrap();
    let done = s
        .end_with_run(
            t.id,
            "w",
            TaskStatus::Succeeded,
            Some("ok".into()),
            at(2),
            Some(("/runs/r1".into(), usage)),
        )
        .await
        .unwrap();
    assert_eq!(done.status, TaskStatus::Succeeded);
    assert_eq!(done.output.as_deref(), Some("ok"));
    assert_eq!(done.run_dir.as_deref(), Some("/runs/r1"));
    assert_eq!(done.usage, Some(usage));
    // A worker without the lease cannot end a task, and its run is not recorded either.
    s.submit(new("s2", "y", None), at(3)).await.unwrap();
    let t2 = s.claim("w", at(3), LEASE).await.unwrap().unwrap();
    let refused = s
        .end_with_run(
            t2.id,
            "intruder",
            TaskStatus::Succeeded,
            None,
            at(4),
            Some(("/runs/r2".into(), usage)),
        )
        .await;
    assert!(refused.is_err());
    let t2 = s.task(t2.id).await.unwrap().unwrap();
    assert_eq!(t2.status, TaskStatus::Running);
    assert_eq!(t2.run_dir, None);
    s.set_run_info(t2.id, "/runs/r3", usage).await.unwrap();
    assert_eq!(
        s.task(t2.id).await.unwrap().unwrap().run_dir.as_deref(),
        Some("/runs/r3")
    );
});

conformance!(
    transitions_outside_the_table_and_without_the_lease_are_refused,
    |db| {
        let s = db.open().await;
        let (t, _) = s.submit(new("s", "x", None), at(0)).await.unwrap();
        let err = s
            .transition(t.id, None, TaskStatus::Succeeded, None, at(1))
            .await
            .unwrap_err();
        assert!(matches!(err, TaskError::Transition { .. }), "{err}");
        s.claim("w1", at(1), LEASE).await.unwrap().unwrap();
        let err = s
            .transition(t.id, Some("w2"), TaskStatus::Succeeded, None, at(2))
            .await
            .unwrap_err();
        assert!(matches!(err, TaskError::LeaseLost(_)), "{err}");
        assert!(matches!(
            s.heartbeat(t.id, "w2", at(2), LEASE).await,
            Err(TaskError::LeaseLost(_))
        ));
        s.heartbeat(t.id, "w1", at(20), LEASE).await.unwrap();
        // Renewed: still held at 45 s (20 + 30).
        s.transition(
            t.id,
            Some("w1"),
            TaskStatus::Canceled,
            Some("by user".into()),
            at(45),
        )
        .await
        .unwrap();
        let err = s
            .transition(t.id, None, TaskStatus::Running, None, at(46))
            .await
            .unwrap_err();
        assert!(matches!(err, TaskError::Transition { .. }), "{err}");
        let missing = TaskId::new();
        assert!(matches!(
            s.transition(missing, None, TaskStatus::Canceled, None, at(47))
                .await,
            Err(TaskError::NotFound(_))
        ));
        assert!(s.task(missing).await.unwrap().is_none());
    }
);

conformance!(
    after_a_crash_nothing_stays_running_and_nothing_runs_twice,
    |db| {
        let (running, queued) = {
            let s = db.open().await;
            let (a, _) = s.submit(new("a", "1", None), at(0)).await.unwrap();
            let (b, _) = s.submit(new("b", "1", None), at(1)).await.unwrap();
            s.claim("w1", at(2), LEASE).await.unwrap().unwrap();
            (a.id, b.id)
            // The store is dropped here: the worker is gone without a word.
        };
        let s = db.open().await;
        // Before the lease runs out nothing is touched.
        assert!(s.recover_expired(at(10)).await.unwrap().is_empty());
        let touched = s.recover_expired(at(40)).await.unwrap();
        assert_eq!(touched, vec![running]);
        let t = s.task(running).await.unwrap().unwrap();
        assert_eq!(t.status, TaskStatus::Failed);
        assert!(t.error.unwrap().contains("interrupted"));
        // The interrupted task is not claimable again; the queued one runs once.
        let next = s.claim("w2", at(41), LEASE).await.unwrap().unwrap();
        assert_eq!(next.id, queued);
        assert!(s.claim("w3", at(41), LEASE).await.unwrap().is_none());
        // The old worker cannot finish what it no longer holds.
        assert!(
            s.transition(running, Some("w1"), TaskStatus::Succeeded, None, at(42))
                .await
                .is_err()
        );
        assert_eq!(
            s.list(Some(TaskStatus::Running), 10).await.unwrap().len(),
            1
        );
    }
);

conformance!(deadlines_time_tasks_out, |db| {
    let s = db.open().await;
    let mut n = new("s", "x", None);
    n.deadline = Some(at(10));
    let (t, _) = s.submit(n, at(0)).await.unwrap();
    s.claim("w", at(1), Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(s.recover_expired(at(11)).await.unwrap(), vec![t.id]);
    let t = s.task(t.id).await.unwrap().unwrap();
    assert_eq!(t.status, TaskStatus::TimedOut);
});

conformance!(tasks_are_counted_by_state, |db| {
    let s = db.open().await;
    assert!(s.task_counts().await.unwrap().is_empty());
    s.submit(new("a", "1", None), at(0)).await.unwrap();
    s.submit(new("a", "2", None), at(1)).await.unwrap();
    s.submit(new("b", "1", None), at(2)).await.unwrap();
    s.claim("w1", at(3), LEASE).await.unwrap().unwrap();
    let mut counts = s.task_counts().await.unwrap();
    counts.sort_by_key(|(st, _)| st.as_str());
    assert_eq!(counts, [(TaskStatus::Queued, 2), (TaskStatus::Running, 1)]);
});
