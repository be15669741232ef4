//! Heartbeat records, on every backend.

use pincer_store::{NewTask, TaskKind};
use pincer_types::{AgentId, SessionKey, TaskStatus, TokenUsage};

use super::{Db, at, conformance};

conformance!(heartbeats_are_recorded_finished_and_listed, |db| {
    let s = db.open().await;
    let main: AgentId = "main".parse().unwrap();
    assert_eq!(s.last_heartbeat(&main).await.unwrap(), None);
    s.record_heartbeat(&main, at(0), "skipped", Some("empty".into()), None)
        .await
        .unwrap();
    let (t, _) = s
        .submit(
            NewTask {
                kind: TaskKind::Heartbeat,
                session_key: SessionKey::for_peer(&main, "heartbeat", "1").unwrap(),
                agent: main.clone(),
                input: "check".into(),
                idempotency_key: None,
                deadline: None,
                owner: None,
            },
            at(60),
        )
        .await
        .unwrap();
    assert_eq!(t.kind, TaskKind::Heartbeat);
    let id = s
        .record_heartbeat(&main, at(60), "queued", None, Some(t.id))
        .await
        .unwrap();
    assert_eq!(s.last_heartbeat(&main).await.unwrap(), Some(at(60)));
    assert!(s.ended_heartbeats().await.unwrap().is_empty());
    s.transition(t.id, None, TaskStatus::Canceled, None, at(61))
        .await
        .unwrap();
    let ended = s.ended_heartbeats().await.unwrap();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].id, id);
    assert_eq!(ended[0].task, Some(t.id));
    let usage = TokenUsage {
        input_tokens: 120,
        output_tokens: 3,
    };
    s.finish_heartbeat(id, "ok", None, Some(usage))
        .await
        .unwrap();
    assert!(s.ended_heartbeats().await.unwrap().is_empty());
    let all = s.heartbeats(Some(&main), 10).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].status, "ok");
    assert_eq!(all[0].usage, Some(usage));
    assert_eq!(all[1].status, "skipped");
    assert_eq!(all[1].usage, None);
    assert_eq!(all[1].at, at(0));
    let other: AgentId = "other".parse().unwrap();
    assert!(s.heartbeats(Some(&other), 10).await.unwrap().is_empty());
    assert_eq!(s.heartbeats(None, 10).await.unwrap().len(), 2);
});
