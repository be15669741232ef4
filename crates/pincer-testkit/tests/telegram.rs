#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The fake Bot API behaves like Telegram where the bot depends on it.

use std::time::Duration;

use pincer_testkit::{FakeTelegram, TgFault};
use serde_json::{Value, json};

async fn call(tg: &FakeTelegram, token: &str, method: &str, params: Value) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let r = reqwest::Client::new()
        .post(format!("{}/bot{token}/{method}", tg.base_url()))
        .json(&params)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn offsets_confirm_updates_and_long_polls_wake_on_new_ones() {
    let tg = FakeTelegram::start("123:abc").await.unwrap();
    let a = tg.push_text(7, 7, "one");
    let b = tg.push_text(7, 7, "two");
    let (st, v) = call(&tg, "123:abc", "getUpdates", json!({})).await;
    assert_eq!(st, 200);
    assert_eq!(v["ok"], true);
    assert_eq!(v["result"].as_array().unwrap().len(), 2);
    assert_eq!(v["result"][0]["message"]["chat"]["type"], "private");
    // Confirming the first leaves the second.
    let (_, v) = call(&tg, "123:abc", "getUpdates", json!({"offset": a + 1})).await;
    assert_eq!(v["result"][0]["update_id"], b);
    // A long poll returns as soon as an update arrives.
    let poll = tokio::spawn({
        let base = tg.base_url();
        async move {
            reqwest::Client::new()
                .post(format!("{base}/bot123:abc/getUpdates"))
                .json(&json!({"offset": b + 1, "timeout": 30}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    });
    let c = tg.push_text(-100, 7, "in a group");
    let v = tokio::time::timeout(Duration::from_secs(10), poll)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v["result"][0]["update_id"], c);
    assert_eq!(v["result"][0]["message"]["chat"]["type"], "group");
}

#[tokio::test]
async fn errors_have_telegrams_shapes() {
    let tg = FakeTelegram::start("123:abc").await.unwrap();
    let (st, v) = call(&tg, "999:wrong", "getMe", json!({})).await;
    assert_eq!((st, v["ok"].clone()), (401, json!(false)));
    tg.fail_next("sendMessage", TgFault::TooManyRequests { retry_after: 3 });
    let (st, v) = call(
        &tg,
        "123:abc",
        "sendMessage",
        json!({"chat_id": 1, "text": "x"}),
    )
    .await;
    assert_eq!(st, 429);
    assert_eq!(v["parameters"]["retry_after"], 3);
    let (st, _) = call(
        &tg,
        "123:abc",
        "sendMessage",
        json!({"chat_id": 1, "text": "x"}),
    )
    .await;
    assert_eq!(st, 200);
    tg.fail_next("getUpdates", TgFault::Conflict);
    let (st, v) = call(&tg, "123:abc", "getUpdates", json!({})).await;
    assert_eq!((st, v["error_code"].clone()), (409, json!(409)));
    let long = "x".repeat(4097);
    let (st, _) = call(
        &tg,
        "123:abc",
        "sendMessage",
        json!({"chat_id": 1, "text": long}),
    )
    .await;
    assert_eq!(st, 400);
    assert_eq!(tg.calls_of("sendMessage").len(), 3);
    assert!(tg.wait_for("sendMessage", 3, Duration::from_secs(1)).await);
}
