//! Scheduled jobs and their runs, on every backend.

use pincer_store::{Job, JobError, NewTask, Retry, Settlement, TaskKind};
use pincer_types::{AgentId, SessionKey, TaskId, TaskStatus};

use super::{Db, at, conformance};

fn job(name: &str) -> Job {
    Job {
        name: name.into(),
        agent: "main".parse().unwrap(),
        kind: "every".into(),
        spec: "2s".into(),
        tz: "UTC".into(),
        anchor: at(0),
        message: "tick".into(),
        mode: "isolated".into(),
        missed: "skip".into(),
        timeout_secs: 60,
        enabled: true,
        next_run: Some(at(0)),
        created_at: at(0),
        deliver: Some("telegram:42".into()),
        jitter_secs: 0,
        failures: 0,
        retry: None,
    }
}

conformance!(jobs_persist_runs_are_recorded_and_removal_is_clean, |db| {
    {
        let s = db.open().await;
        s.add_job(&job("tick")).await.unwrap();
        assert!(matches!(
            s.add_job(&job("tick")).await,
            Err(JobError::Exists(_))
        ));
        let t = TaskId::new();
        s.record_run("tick", t, at(0), false, Some(at(2)))
            .await
            .unwrap();
    }
    let s = db.open().await;
    let j = s.job("tick").await.unwrap().unwrap();
    assert_eq!(j.next_run, Some(at(2)));
    let runs = s.job_runs("tick", 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, TaskStatus::Queued);
    s.set_job_enabled("tick", false).await.unwrap();
    assert!(!s.job("tick").await.unwrap().unwrap().enabled);
    s.remove_job("tick").await.unwrap();
    assert!(s.jobs().await.unwrap().is_empty());
    assert!(matches!(
        s.remove_job("tick").await,
        Err(JobError::NotFound(_))
    ));
});

conformance!(
    ended_runs_are_settled_once_with_retries_and_disabling,
    |db| {
        let s = db.open().await;
        s.add_job(&job("flaky")).await.unwrap();
        let agent: AgentId = "main".parse().unwrap();
        let submit = |n: u32| NewTask {
            kind: TaskKind::Message,
            session_key: SessionKey::for_peer(&agent, "cron", &format!("f{n}")).unwrap(),
            agent: agent.clone(),
            input: "x".into(),
            idempotency_key: None,
            deadline: None,
            owner: None,
        };
        let (t, _) = s.submit(submit(0), at(0)).await.unwrap();
        s.record_run("flaky", t.id, at(0), false, Some(at(60)))
            .await
            .unwrap();
        // Not ended yet: nothing to settle.
        assert!(s.ended_runs().await.unwrap().is_empty());
        s.transition(t.id, None, TaskStatus::Canceled, Some("x".into()), at(1))
            .await
            .unwrap();
        let ended = s.ended_runs().await.unwrap();
        assert_eq!(ended.len(), 1);
        assert_eq!((ended[0].task, ended[0].attempt), (t.id, 0));
        let retry = Retry {
            at: at(31),
            scheduled_for: at(0),
            attempt: 1,
        };
        s.settle_run(
            &ended[0],
            Settlement {
                failures: 1,
                retry: Some(retry),
                disable: false,
            },
        )
        .await
        .unwrap();
        assert!(s.ended_runs().await.unwrap().is_empty());
        let j = s.job("flaky").await.unwrap().unwrap();
        assert_eq!((j.failures, j.retry, j.enabled), (1, Some(retry), true));
        // The retry's task is recorded as attempt 1 and the pending retry is cleared.
        let (t2, _) = s.submit(submit(1), at(31)).await.unwrap();
        s.record_retry("flaky", t2.id, retry).await.unwrap();
        let j = s.job("flaky").await.unwrap().unwrap();
        assert_eq!(j.retry, None);
        let runs = s.job_runs("flaky", 10).await.unwrap();
        assert_eq!(
            runs.iter().map(|r| r.attempt).collect::<Vec<_>>(),
            vec![1, 0]
        );
        s.transition(t2.id, None, TaskStatus::Canceled, None, at(32))
            .await
            .unwrap();
        let ended = s.ended_runs().await.unwrap();
        s.settle_run(
            &ended[0],
            Settlement {
                failures: 2,
                retry: None,
                disable: true,
            },
        )
        .await
        .unwrap();
        let j = s.job("flaky").await.unwrap().unwrap();
        assert!(!j.enabled);
        assert_eq!(j.failures, 2);
        // Enabling again forgets the failures.
        s.set_job_enabled("flaky", true).await.unwrap();
        assert_eq!(s.job("flaky").await.unwrap().unwrap().failures, 0);
        // Settling the same run again (another node) changes nothing.
        s.settle_run(
            &ended[0],
            Settlement {
                failures: 9,
                retry: None,
                disable: true,
            },
        )
        .await
        .unwrap();
        let j = s.job("flaky").await.unwrap().unwrap();
        assert_eq!((j.failures, j.enabled), (0, true));
    }
);
