//! Usage and budgets (issue 15, part 4): every model call is recorded with its tokens and cost,
//! reported by agent/session/user/model on the CLI and the API, and a budget refuses a call
//! before anything is sent.

use super::common::*;

fn append_config(home: &Home, text: &str) {
    let path = home.path().join("config.toml");
    let mut config = std::fs::read_to_string(&path).unwrap();
    config.push_str(text);
    std::fs::write(&path, config).unwrap();
}

/// A home whose agent runs on the priced alias `fast` (at the fake model).
async fn priced_home(llm: &pincer_testkit::FakeLlm) -> Home {
    let home = Home::new();
    home.init(&llm.base_url()).await;
    append_config(
        &home,
        r#"
[models.fast]
provider = "default"
model = "fake-model"
input_price = 2.0
output_price = 10.0
"#,
    );
    set(&home, "agents.main.models", r#"["fast"]"#).await;
    home
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    assert_eq!(out.status.code(), Some(0), "{}", stderr(out));
    serde_json::from_str(&stdout(out)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_recorded_with_its_cost_and_reported() {
    let llm = pincer_testkit::FakeLlm::start(vec![]).await.unwrap();
    let home = priced_home(&llm).await;
    for (session, text) in [("a", "one"), ("b", "two"), ("a", "three")] {
        let out = home.run(&["ask", "--session", session, text], "").await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let v = json_of(&home.run(&["usage", "--by", "model", "--json"], "").await);
    let row = &v["rows"][0];
    assert_eq!(
        (row["key"].as_str(), row["calls"].as_u64()),
        (Some("fast"), Some(3)),
        "{v}"
    );
    let (input, output) = (
        row["input_tokens"].as_f64().unwrap(),
        row["output_tokens"].as_f64().unwrap(),
    );
    assert!(input > 0.0 && output > 0.0, "{v}");
    let cost = row["cost_usd"].as_f64().unwrap();
    assert!(
        (cost - (input * 2.0 + output * 10.0) / 1e6).abs() < 1e-12,
        "{v}"
    );
    assert_eq!(v["total"]["calls"], 3);
    let v = json_of(&home.run(&["usage", "--by", "session", "--json"], "").await);
    let calls: Vec<(String, u64)> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_owned(),
                r["calls"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(calls.len(), 2, "{v}");
    assert!(calls.contains(&("main:cli:a".to_owned(), 2)), "{v}");
    let v = json_of(
        &home
            .run(&["usage", "--by", "user", "--since", "1d", "--json"], "")
            .await,
    );
    // The local CLI's calls count for its principal, the owner.
    assert_eq!(v["rows"][0]["key"], "owner", "{v}");
    let out = home.run(&["usage", "--by", "colour"], "").await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // The same sums through the API, for a token with usage:read.
    let out = home
        .run(
            &["tokens", "create", "--name", "u", "--scopes", "usage:read"],
            "",
        )
        .await;
    let token = stdout(&out).trim().to_owned();
    let path = home.path();
    let (mut child, api) = tokio::task::spawn_blocking(move || {
        let (child, addr) = serve_at(&path, &[]);
        let r = super::serve::request(&addr, "GET", "/v1/usage?by=agent", &token, None);
        (child, r)
    })
    .await
    .unwrap();
    assert_eq!(term(&mut child), Some(0));
    assert_eq!(api.0, 200, "{}", api.1);
    assert_eq!(api.1["rows"][0]["key"], "main", "{}", api.1);
    assert_eq!(api.1["rows"][0]["calls"], 3, "{}", api.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_refuses_a_call_before_it_is_sent_and_warns_first() {
    let llm = pincer_testkit::FakeLlm::start(vec![]).await.unwrap();
    let home = priced_home(&llm).await;
    // A per-user daily token limit smaller than any request: refused, nothing sent.
    set(&home, "budgets.per_user.daily_tokens", "10").await;
    let out = home.run(&["ask", "hello"], "").await;
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        said.contains("daily budget for user owner is reached"),
        "{said}"
    );
    assert!(said.contains("Nothing was sent"), "{said}");
    assert!(
        !said.contains("fake-model"),
        "the message should not depend on the model: {said}"
    );
    assert!(
        llm.requests().is_empty(),
        "a refused call reached the model"
    );
    // A large limit with a tiny warning line: the first call warns, the second does not.
    set(&home, "budgets.per_user.daily_tokens", "100000000").await;
    set(&home, "budgets.warn_at", "0.0000001").await;
    for text in ["one", "two"] {
        let out = home.run(&["ask", "--session", "w", text], "").await;
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    assert_eq!(llm.requests().len(), 2);
    // A global cost limit the calls so far already spent: refused, still nothing sent.
    set(&home, "budgets.global.daily_cost_usd", "0.0000001").await;
    let out = home.run(&["ask", "--session", "w", "three"], "").await;
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(llm.requests().len(), 2, "a refused call reached the model");
    let out = home
        .run(&["audit", "search", "--type", "budget", "--json"], "")
        .await;
    let kinds: Vec<String> = stdout(&out)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["event"]["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        ["budget.refused", "budget.warning", "budget.refused"],
        "{}",
        stdout(&out)
    );
}
