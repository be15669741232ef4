//! Usage records and their sums, on every backend.

use pincer_store::{UsageBy, UsageFilter, UsageRecord};

use super::{Db, at, conformance};

fn rec(
    t: i64,
    agent: &str,
    user: &str,
    model: &str,
    tokens: (u64, u64),
    cost: Option<f64>,
) -> UsageRecord {
    UsageRecord {
        at: at(t),
        agent: agent.into(),
        session: format!("{agent}:x:{user}"),
        user: user.into(),
        model: model.into(),
        input_tokens: tokens.0,
        output_tokens: tokens.1,
        cost_usd: cost,
    }
}

conformance!(usage_sums_by_filter_and_group, |db| {
    let s = db.open().await;
    for r in [
        rec(0, "main", "telegram:1", "fast", (100, 10), Some(0.5)),
        rec(10, "main", "telegram:2", "fast", (200, 20), Some(1.0)),
        rec(20, "ops", "telegram:1", "local", (1000, 100), None),
        rec(86_400, "main", "telegram:1", "backup", (50, 5), Some(0.25)),
    ] {
        s.record_usage(&r).await.unwrap();
    }
    let all = s.usage_total(&UsageFilter::default()).await.unwrap();
    assert_eq!(
        (all.calls, all.input_tokens, all.output_tokens),
        (4, 1350, 135)
    );
    assert!((all.cost_usd - 1.75).abs() < 1e-9, "{all:?}");
    assert_eq!(all.unpriced_calls, 1);
    assert_eq!(all.tokens(), 1485);
    let user1_day2 = s
        .usage_total(&UsageFilter {
            since: Some(at(86_400)),
            user: Some("telegram:1".into()),
            agent: None,
        })
        .await
        .unwrap();
    assert_eq!((user1_day2.calls, user1_day2.tokens()), (1, 55));
    let main = s
        .usage_total(&UsageFilter {
            agent: Some("main".into()),
            ..UsageFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(main.calls, 3);
    let by_model = s.usage_report(UsageBy::Model, None).await.unwrap();
    let keys: Vec<(&str, u64)> = by_model
        .iter()
        .map(|t| (t.key.as_str(), t.tokens()))
        .collect();
    assert_eq!(keys, [("local", 1100), ("fast", 330), ("backup", 55)]);
    let by_user = s.usage_report(UsageBy::User, Some(at(5))).await.unwrap();
    let keys: Vec<(&str, u64)> = by_user.iter().map(|t| (t.key.as_str(), t.calls)).collect();
    assert_eq!(keys, [("telegram:1", 2), ("telegram:2", 1)]);
    assert_eq!(s.usage_report(UsageBy::Agent, None).await.unwrap().len(), 2);
    assert_eq!(
        s.usage_report(UsageBy::Session, None).await.unwrap().len(),
        3
    );
    assert!(
        s.usage_total(&UsageFilter {
            since: Some(at(999_999)),
            ..UsageFilter::default()
        })
        .await
        .unwrap()
        .calls
            == 0
    );
});

conformance!(usage_per_day_agent_and_model_in_one_pass, |db| {
    let s = db.open().await;
    for r in [
        rec(0, "main", "u1", "fast", (100, 10), None),
        rec(86_399, "main", "u1", "fast", (1, 1), None),
        rec(20, "ops", "u2", "local", (1000, 100), None),
        rec(86_400, "main", "u1", "fast", (50, 5), None),
        rec(2 * 86_400 + 5, "main", "u2", "backup", (7, 0), None),
    ] {
        s.record_usage(&r).await.unwrap();
    }
    let day = |n: u32| chrono::NaiveDate::from_ymd_opt(2026, 1, n).unwrap();
    let rows: Vec<(chrono::NaiveDate, String, String, u64)> = s
        .usage_daily(&UsageFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.day, d.agent, d.model, d.tokens))
        .collect();
    let want = [
        (day(1), "main", "fast", 112),
        (day(1), "ops", "local", 1100),
        (day(2), "main", "fast", 55),
        (day(3), "main", "backup", 7),
    ];
    assert_eq!(
        rows,
        want.map(|(d, a, m, t)| (d, a.to_owned(), m.to_owned(), t))
    );
    // The filter applies: one user, from the second day on.
    let u1 = s
        .usage_daily(&UsageFilter {
            since: Some(at(86_400)),
            user: Some("u1".into()),
            agent: None,
        })
        .await
        .unwrap();
    assert_eq!(u1.len(), 1);
    assert_eq!((u1[0].day, u1[0].tokens), (day(2), 55));
    // `since` counts from the start of its day.
    let from_noon = s
        .usage_daily(&UsageFilter {
            since: Some(at(86_400 + 12 * 3600)),
            agent: Some("main".into()),
            user: None,
        })
        .await
        .unwrap();
    assert_eq!(from_noon.len(), 2, "{from_noon:?}");
    assert_eq!(from_noon[0].day, day(2));
});
