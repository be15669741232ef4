#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Telegram client against the fake Bot API.

use std::time::Duration;

use pincer_channels::telegram::{BotToken, SendOptions, TelegramApi, TgError};
use pincer_testkit::{FakeTelegram, TgFault};

const TOKEN: &str = "123456:SECRET-token-value";

async fn api() -> (FakeTelegram, TelegramApi) {
    let tg = FakeTelegram::start(TOKEN).await.unwrap();
    let api = TelegramApi::new(&tg.base_url(), BotToken::new(TOKEN)).unwrap();
    (tg, api)
}

#[tokio::test]
async fn a_5000_character_answer_arrives_as_correct_chunks() {
    let (tg, api) = api().await;
    let para = |i: usize| format!("**Part {i}** {}", "lorem ipsum ".repeat(40).trim_end());
    let text: Vec<String> = (0..11).map(para).collect();
    let text = text.join("\n\n");
    assert!(text.chars().count() > 5000);
    let ids = api
        .send_text(42, &text, &SendOptions::default())
        .await
        .unwrap();
    assert_eq!(ids.len(), 2);
    let sent = tg.calls_of("sendMessage");
    assert_eq!(sent.len(), 2);
    for c in &sent {
        let t = c.params["text"].as_str().unwrap();
        assert!(t.chars().count() <= 4096);
        assert_eq!(c.params["parse_mode"], "HTML");
        assert_eq!(c.params["link_preview_options"]["is_disabled"], true);
        assert!(t.starts_with("<b>Part "), "{t:.40}");
    }
}

#[tokio::test]
async fn a_formatting_rejection_falls_back_to_plain_text() {
    let (tg, api) = api().await;
    tg.fail_next(
        "sendMessage",
        TgFault::BadRequest("Bad Request: can't parse entities: unclosed tag".into()),
    );
    api.send_text(42, "some *text*", &SendOptions::default())
        .await
        .unwrap();
    let sent = tg.calls_of("sendMessage");
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].params["text"], "some *text*");
    assert!(sent[1].params.get("parse_mode").is_none());
}

#[tokio::test]
async fn rate_limits_are_returned_for_sends_waited_out_elsewhere_and_errors_never_show_the_token() {
    let (tg, api) = api().await;
    // A send returns the 429 at once (the router serves other chats meanwhile).
    tg.fail_next("sendMessage", TgFault::TooManyRequests { retry_after: 7 });
    let e = api
        .send_text(42, "hi", &SendOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.sent, 0);
    assert!(
        matches!(e.error, TgError::Limited { retry_after, .. } if retry_after == Duration::from_secs(7)),
        "{e}"
    );
    assert_eq!(tg.calls_of("sendMessage").len(), 1);
    // Other calls wait it out.
    tg.fail_next(
        "sendChatAction",
        TgFault::TooManyRequests { retry_after: 1 },
    );
    api.call(
        "sendChatAction",
        serde_json::json!({"chat_id": 42, "action": "typing"}),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(tg.calls_of("sendChatAction").len(), 2);
    tg.fail_next("getUpdates", TgFault::Conflict);
    let e = api.get_updates(None, Duration::ZERO).await.unwrap_err();
    assert!(e.is_conflict(), "{e}");
    let wrong = TelegramApi::new(&tg.base_url(), BotToken::new("999:other-secret")).unwrap();
    let e = wrong
        .send_text(1, "x", &SendOptions::default())
        .await
        .unwrap_err();
    assert!(!e.to_string().contains("other-secret"), "{e}");
    assert!(!format!("{e:?}{wrong:?}").contains("other-secret"));
    // Unreachable server: retried, then a typed error without the token.
    let dead = TelegramApi::new("http://127.0.0.1:9", BotToken::new(TOKEN))
        .unwrap()
        .with_max_retries(2);
    let e = tokio::time::timeout(
        Duration::from_secs(120),
        dead.get_updates(None, Duration::ZERO),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert!(!e.to_string().contains("SECRET"), "{e}");
}

#[tokio::test]
async fn updates_parse_and_a_malformed_one_is_skipped() {
    let (tg, api) = api().await;
    tg.push_text(5, 5, "hello");
    tg.push_update(serde_json::json!({"message": {"chat": "not an object"}}));
    tg.push_callback(5, 5, 77, "approve:apr_1");
    let updates = api.get_updates(None, Duration::ZERO).await.unwrap();
    assert_eq!(updates.len(), 2);
    assert_eq!(
        updates[0].message.as_ref().unwrap().text.as_deref(),
        Some("hello")
    );
    assert_eq!(
        updates[1].callback_query.as_ref().unwrap().data.as_deref(),
        Some("approve:apr_1")
    );
}

/// Issue 26.1: a later part that fails reports how many parts were delivered, and a resend
/// starting there never repeats the first.
#[tokio::test]
async fn a_resend_after_a_failed_part_sends_only_the_rest() {
    let (tg, api) = api().await;
    let api = api.with_max_retries(1);
    let para = |i: usize| format!("Part {i} {}", "lorem ipsum ".repeat(40).trim_end());
    let text = (0..11).map(para).collect::<Vec<_>>().join("\n\n");
    // Part 1 goes through; part 2 fails past its retries.
    tg.fail_after("sendMessage", 1, TgFault::ServerError);
    tg.fail_next("sendMessage", TgFault::ServerError);
    let e = api
        .send_text(42, &text, &SendOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.sent, 1, "{e}");
    let first = tg.calls_of("sendMessage")[0].params["text"].clone();
    // The resend starts at part 2.
    let n = tg.calls_of("sendMessage").len();
    let opts = SendOptions {
        skip: e.sent,
        ..SendOptions::default()
    };
    let ids = api.send_text(42, &text, &opts).await.unwrap();
    assert_eq!(ids.len(), 1);
    let sent = tg.calls_of("sendMessage");
    assert_eq!(sent.len(), n + 1);
    assert_ne!(sent[n].params["text"], first, "part 1 was sent twice");
}

/// Issue 26.3: group answers are replies to the question; code-heavy parts stay formatted
/// (the 4096 limit is on visible text, not on the HTML).
#[tokio::test]
async fn replies_and_code_heavy_parts_keep_their_formatting() {
    let (tg, api) = api().await;
    let opts = SendOptions {
        reply_to: Some(77),
        ..SendOptions::default()
    };
    api.send_text(-100, "answer", &opts).await.unwrap();
    let sent = tg.calls_of("sendMessage");
    assert_eq!(sent[0].params["reply_parameters"]["message_id"], 77);
    // 3,900 visible characters of code full of `<` and `&`: the HTML is longer than 4096,
    // what the user sees is not.
    let code = format!("```\n{}\n```", "a<b && c>d; ".repeat(325));
    api.send_text(42, &code, &SendOptions::default())
        .await
        .unwrap();
    let sent = tg.calls_of("sendMessage");
    let last = sent.last().unwrap();
    assert_eq!(last.params["parse_mode"], "HTML", "fell back to plain text");
    assert!(last.params["text"].as_str().unwrap().starts_with("<pre>"));
}
