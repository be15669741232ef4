//! Model health (failover cooldowns and disabled keys) on every backend.

use std::time::Duration;

use super::{Db, at, conformance};

fn ladder() -> Vec<Duration> {
    [60, 300, 1500].map(Duration::from_secs).to_vec()
}

conformance!(failures_climb_the_ladder_and_a_success_resets, |db| {
    let s = db.open().await;
    let h = s
        .record_model_failure("model:fast", "rate_limit", "429", &ladder(), at(0))
        .await
        .unwrap();
    assert_eq!(h.failures, 1);
    assert_eq!(h.cooldown_until, Some(at(60)));
    assert!(!h.usable(at(59)) && h.usable(at(60)));
    let h = s
        .record_model_failure("model:fast", "server", "500", &ladder(), at(70))
        .await
        .unwrap();
    assert_eq!((h.failures, h.cooldown_until), (2, Some(at(370))));
    for t in [400, 2000] {
        s.record_model_failure("model:fast", "server", "500", &ladder(), at(t))
            .await
            .unwrap();
    }
    // The last rung repeats.
    let all = s.model_health().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].failures, 4);
    assert_eq!(all[0].cooldown_until, Some(at(2000 + 1500)));
    assert_eq!(all[0].last_error.as_deref(), Some("server"));
    assert_eq!(all[0].last_error_at, Some(at(2000)));
    s.record_model_success("model:fast").await.unwrap();
    let h = &s.model_health().await.unwrap()[0];
    assert_eq!((h.failures, h.cooldown_until), (0, None));
    assert!(h.usable(at(0)));
    // Kept across a reopen (a restart).
    drop(s);
    let s = db.open().await;
    s.record_model_failure("model:fast", "timeout", "slow", &ladder(), at(5000))
        .await
        .unwrap();
    drop(s);
    let s = db.open().await;
    let h = &s.model_health().await.unwrap()[0];
    assert_eq!((h.failures, h.cooldown_until), (1, Some(at(5060))));
});

conformance!(a_disabled_key_stays_disabled_until_cleared, |db| {
    let s = db.open().await;
    s.disable_model_subject("key:OPENAI_KEY_1", "auth", "invalid key", at(0))
        .await
        .unwrap();
    s.record_model_success("key:OPENAI_KEY_1").await.unwrap();
    let h = &s.model_health().await.unwrap()[0];
    assert!(h.disabled && !h.usable(at(999_999)));
    assert_eq!(h.last_error.as_deref(), Some("auth"));
    assert!(s.clear_model_health("key:OPENAI_KEY_1").await.unwrap());
    assert!(s.model_health().await.unwrap()[0].usable(at(0)));
    assert!(!s.clear_model_health("key:NOPE").await.unwrap());
});

conformance!(concurrent_failures_all_count, |db| {
    let s = db.open().await;
    let mut all = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        all.push(tokio::spawn(async move {
            s.record_model_failure("model:m", "server", "x", &ladder(), at(i))
                .await
                .unwrap()
        }));
    }
    for h in all {
        h.await.unwrap();
    }
    assert_eq!(s.model_health().await.unwrap()[0].failures, 8);
});
