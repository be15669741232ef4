//! Sessions, messages and the run index, on every backend.

use chrono::Utc;
use pincer_store::RunRecord;
use pincer_types::{AgentId, RunId, RunStatus, SessionKey, TokenUsage};
use serde_json::json;

use super::{Db, conformance};

fn key() -> (SessionKey, AgentId) {
    ("main:cli:default".parse().unwrap(), "main".parse().unwrap())
}

fn run(agent: &AgentId, session: pincer_types::SessionId) -> RunRecord {
    RunRecord {
        id: RunId::new(),
        agent: agent.clone(),
        session,
        status: RunStatus::Running,
        model: "m".into(),
        prompt_sha256: "abc".into(),
        usage: TokenUsage::default(),
        // Whole microseconds: what both backends store.
        started_at: chrono::DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap(),
        ended_at: None,
        error: None,
    }
}

conformance!(sessions_are_stable_until_new, |db| {
    let s = db.open().await;
    let (k, a) = key();
    let one = s.current_session(&k, &a).await.unwrap();
    assert_eq!(s.current_session(&k, &a).await.unwrap().id, one.id);
    s.append_messages(one.id, vec![json!({"role": "user", "content": "hi"})])
        .await
        .unwrap();
    let two = s.new_session(&k, &a).await.unwrap();
    assert_ne!(two.id, one.id);
    assert_eq!(s.current_session(&k, &a).await.unwrap().id, two.id);
    assert!(s.messages(two.id).await.unwrap().is_empty());
    assert_eq!(
        s.messages(one.id).await.unwrap().len(),
        1,
        "archived history is kept"
    );
});

conformance!(concurrent_first_use_of_a_key_makes_one_session, |db| {
    let s = db.open().await;
    let (k, a) = key();
    let mut handles = Vec::new();
    for _ in 0..8 {
        let (s, k, a) = (std::sync::Arc::clone(&s), k.clone(), a.clone());
        handles.push(tokio::spawn(async move { s.current_session(&k, &a).await }));
    }
    let mut ids = Vec::new();
    for h in handles {
        ids.push(h.await.unwrap().unwrap().id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one current session per key");
});

conformance!(messages_keep_order_and_clear, |db| {
    let s = db.open().await;
    let (k, a) = key();
    let sess = s.current_session(&k, &a).await.unwrap();
    s.append_messages(sess.id, vec![json!(1), json!(2)])
        .await
        .unwrap();
    s.append_messages(sess.id, vec![json!(3)]).await.unwrap();
    assert_eq!(
        s.messages(sess.id).await.unwrap(),
        vec![json!(1), json!(2), json!(3)]
    );
    s.clear_messages(sess.id).await.unwrap();
    assert!(s.messages(sess.id).await.unwrap().is_empty());
});

conformance!(
    a_run_begins_with_its_history_and_ends_with_its_messages,
    |db| {
        let s = db.open().await;
        let (k, a) = key();
        let sess = s.current_session(&k, &a).await.unwrap();
        s.append_messages(sess.id, vec![json!("earlier")])
            .await
            .unwrap();
        let mut r = run(&a, sess.id);
        let history = s.begin_run(&r).await.unwrap().history;
        assert_eq!(history, vec![json!("earlier")]);
        assert_eq!(s.runs(sess.id).await.unwrap()[0].status, RunStatus::Running);
        r.status = RunStatus::Succeeded;
        r.ended_at = Some(r.started_at);
        s.end_run(&r, vec![json!("q"), json!("a")]).await.unwrap();
        assert_eq!(s.runs(sess.id).await.unwrap(), vec![r.clone()]);
        assert_eq!(s.messages(sess.id).await.unwrap().len(), 3);
        // A failed run adds no messages.
        r.id = RunId::new();
        r.status = RunStatus::Failed;
        s.end_run(&r, vec![]).await.unwrap();
        assert_eq!(s.messages(sess.id).await.unwrap().len(), 3);
        assert_eq!(s.runs(sess.id).await.unwrap().len(), 2);
    }
);

conformance!(runs_round_trip_and_update, |db| {
    let s = db.open().await;
    let (k, a) = key();
    let sess = s.current_session(&k, &a).await.unwrap();
    let mut r = run(&a, sess.id);
    s.upsert_run(&r).await.unwrap();
    r.status = RunStatus::Failed;
    r.error = Some("boom".into());
    r.ended_at = Some(r.started_at);
    r.usage = TokenUsage {
        input_tokens: 5,
        output_tokens: 2,
    };
    s.upsert_run(&r).await.unwrap();
    let runs = s.runs(sess.id).await.unwrap();
    assert_eq!(runs, vec![r]);
});

conformance!(
    a_model_pin_belongs_to_the_key_and_outlives_new_sessions,
    |db| {
        use pincer_store::ModelPin;
        let s = db.open().await;
        let agent: pincer_types::AgentId = "main".parse().unwrap();
        let key: pincer_types::SessionKey = "main:telegram:dm:1".parse().unwrap();
        let other: pincer_types::SessionKey = "main:telegram:dm:2".parse().unwrap();
        assert_eq!(s.current_session(&key, &agent).await.unwrap().pin, None);
        let pin = ModelPin {
            alias: "backup".into(),
            strict: true,
        };
        s.set_model_pin(&key, Some(&pin)).await.unwrap();
        assert_eq!(
            s.current_session(&key, &agent).await.unwrap().pin,
            Some(pin.clone())
        );
        assert_eq!(s.current_session(&other, &agent).await.unwrap().pin, None);
        // A fresh session (/new) keeps the key's pin; a change replaces it; None removes it.
        assert_eq!(s.new_session(&key, &agent).await.unwrap().pin, Some(pin));
        let prefer = ModelPin {
            alias: "fast".into(),
            strict: false,
        };
        s.set_model_pin(&key, Some(&prefer)).await.unwrap();
        drop(s);
        let s = db.open().await;
        assert_eq!(
            s.current_session(&key, &agent).await.unwrap().pin,
            Some(prefer)
        );
        s.set_model_pin(&key, None).await.unwrap();
        assert_eq!(s.current_session(&key, &agent).await.unwrap().pin, None);
    }
);

conformance!(
    a_compacted_view_is_kept_per_session_and_cleared_with_it,
    |db| {
        use pincer_store::SessionView;
        let s = db.open().await;
        let (k, a) = key();
        let session = s.current_session(&k, &a).await.unwrap();
        assert_eq!(s.session_view(session.id).await.unwrap(), None);
        let view = SessionView {
            covers: 40,
            sent: vec![json!({"role": "user", "content": "[Summary] the code word is marlin"})],
        };
        s.set_session_view(session.id, &view).await.unwrap();
        assert_eq!(s.session_view(session.id).await.unwrap(), Some(view));
        let later = SessionView {
            covers: 60,
            sent: vec![json!({"role": "user", "content": "[Summary] newer"})],
        };
        s.set_session_view(session.id, &later).await.unwrap();
        drop(s);
        let s = db.open().await;
        assert_eq!(s.session_view(session.id).await.unwrap(), Some(later));
        // A fresh session has none; clearing the history clears the view too.
        let fresh = s.new_session(&k, &a).await.unwrap();
        assert_eq!(s.session_view(fresh.id).await.unwrap(), None);
        s.clear_messages(session.id).await.unwrap();
        assert_eq!(s.session_view(session.id).await.unwrap(), None);
    }
);

conformance!(
    an_agents_sessions_are_listed_with_their_message_counts,
    |db| {
        let s = db.open().await;
        let (k, a) = key();
        let first = s.current_session(&k, &a).await.unwrap();
        s.append_messages(
            first.id,
            vec![
                json!({"role": "user", "content": "one"}),
                json!({"role": "assistant", "content": "two"}),
            ],
        )
        .await
        .unwrap();
        let second = s.new_session(&k, &a).await.unwrap();
        let other: AgentId = "ops".parse().unwrap();
        s.current_session(&"ops:cli:x".parse().unwrap(), &other)
            .await
            .unwrap();
        let list = s.agent_sessions(&a).await.unwrap();
        let got: Vec<(pincer_types::SessionId, u64)> =
            list.iter().map(|x| (x.id, x.messages)).collect();
        assert_eq!(got, vec![(first.id, 2), (second.id, 0)]);
        assert_eq!(list[0].key, k);
    }
);
