#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The fake model's `/_stats`: what the benchmark runner reads.

use pincer_testkit::FakeLlm;
use serde_json::{Value, json};

#[tokio::test]
async fn stats_report_the_size_of_the_last_request() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let llm = FakeLlm::start(vec![]).await.unwrap();
    let http = reqwest::Client::new();
    let stats = |http: reqwest::Client, url: String| async move {
        http.get(url)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let url = format!("http://{}/_stats", llm.addr());
    assert_eq!(stats(http.clone(), url.clone()).await["requests"], 0);
    let body =
        json!({"model": "m", "messages": [{"role": "user", "content": "hello"}]}).to_string();
    let resp = http
        .post(format!("{}/chat/completions", llm.base_url()))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let s = stats(http, url).await;
    assert_eq!(s["requests"], 1);
    assert_eq!(s["last_bytes"], body.len());
    assert_eq!(s["last_body"]["messages"][0]["content"], "hello");
    assert_eq!(llm.requests()[0].bytes, body.len());
}
