//! The Telegram channel through the real binary, the fake Bot API and the fake model.

use std::process::Child;
use std::time::Duration;

use pincer_testkit::{FakeLlm, FakeTelegram};

use super::common::*;

const WAIT: Duration = Duration::from_secs(30);

fn serve(home: &Home) -> Child {
    serve_at(&home.path(), &[("PINCER_TEST_BOT", BOT_TOKEN)]).0
}

fn stop(child: &mut Child) {
    assert_eq!(term(child), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_sender_pairs_then_talks_and_a_duplicate_update_runs_once() {
    let llm = FakeLlm::start(vec![]).await.unwrap(); // echoes
    let tg = FakeTelegram::start(BOT_TOKEN).await.unwrap();
    let home = telegram_home(&llm, &tg, &[]).await;
    let mut child = serve(&home);
    // A stranger writes: they get a pairing code and nothing reaches the model.
    tg.push_text(501, 501, "hello bot");
    assert!(tg.wait_for("sendMessage", 1, WAIT).await);
    let first = texts_to(&tg, 501).join("\n");
    assert!(first.contains("pairing code"), "{first}");
    assert!(llm.requests().is_empty());
    // Writing again does not repeat the code (issue 26.3). Another stranger's code, sent after
    // the second message was handled (updates are handled in order), marks the point.
    tg.push_text(501, 501, "hello? anyone?");
    tg.push_text(502, 502, "hi");
    assert!(tg.wait_for("sendMessage", 2, WAIT).await);
    assert_eq!(texts_to(&tg, 501).len(), 1, "{:?}", texts_to(&tg, 501));
    let out = home
        .run(&["pairing", "list", "telegram", "--json"], "")
        .await;
    let list: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(list.len(), 2);
    let code = list.iter().find(|p| p["sender"] == "501").unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(first.contains(&code));
    let out = home
        .run(&["pairing", "approve", "telegram", &code], "")
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // They are told (the CLI queued it; the server's sender picks it up).
    assert!(tg.wait_for("sendMessage", 3, WAIT).await);
    assert_eq!(
        texts_to(&tg, 501).last().map(String::as_str),
        Some(pincer_store::APPROVED_TEXT)
    );
    // Now they talk to the agent; the same update delivered twice runs once.
    let id = tg.push_text(501, 501, "what is up");
    tg.push_update(serde_json::json!({
        "update_id": id,
        "message": {"message_id": 999, "date": 1, "chat": {"id": 501, "type": "private"},
                    "from": {"id": 501, "is_bot": false, "first_name": "x"}, "text": "what is up"}
    }));
    assert!(tg.wait_for("sendMessage", 4, WAIT).await);
    let texts = texts_to(&tg, 501);
    assert_eq!(
        texts.last().map(String::as_str),
        Some("echo: what is up"),
        "{texts:?}"
    );
    stop(&mut child);
    assert_eq!(llm.requests().len(), 1, "the duplicate must not run again");
    // The bot token never reached the logs.
    let audit = all_bytes(&home.path().join("audit"));
    assert!(
        !audit
            .windows(BOT_TOKEN.len())
            .any(|w| w == BOT_TOKEN.as_bytes())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_answer_only_when_the_bot_is_addressed_and_a_restart_repeats_nothing() {
    let llm = FakeLlm::start(vec![]).await.unwrap();
    let tg = FakeTelegram::start(BOT_TOKEN).await.unwrap();
    let home = telegram_home(&llm, &tg, &[("channels.telegram.groups", "[-100200]")]).await;
    let mut child = serve(&home);
    tg.push_text(-100200, 7, "just chatting among humans");
    tg.push_text(-100200, 7, "@pincer_bot summarise please");
    assert!(tg.wait_for("sendMessage", 1, WAIT).await);
    let texts = texts_to(&tg, -100200);
    assert_eq!(texts, ["echo: summarise please"], "{texts:?}");
    assert_eq!(llm.requests().len(), 1);
    // A group not on the list is ignored even when it mentions the bot.
    tg.push_text(-100999, 8, "@pincer_bot hi");
    // Restart: the updates already handled are neither lost nor repeated.
    stop(&mut child);
    let mut child = serve(&home);
    // Usernames match in any case (issue 26.3).
    tg.push_text(-100200, 7, "@Pincer_Bot again");
    assert!(tg.wait_for("sendMessage", 2, WAIT).await);
    stop(&mut child);
    assert_eq!(
        texts_to(&tg, -100200),
        ["echo: summarise please", "echo: again"]
    );
    // Group answers are replies to the question; the command menu is registered.
    for c in tg
        .calls_of("sendMessage")
        .iter()
        .filter(|c| c.params["chat_id"] == -100200)
    {
        assert!(
            c.params["reply_parameters"]["message_id"].is_i64(),
            "{:?}",
            c.params
        );
    }
    let menu = tg.calls_of("setMyCommands");
    assert!(!menu.is_empty());
    assert!(
        menu[0].params["commands"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["command"] == "approve")
    );
    assert!(texts_to(&tg, -100999).is_empty());
    assert_eq!(llm.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_button_pressed_by_someone_else_is_refused() {
    use pincer_testkit::{Reply, ScriptedCall};
    let llm = FakeLlm::start(vec![
        Reply::ToolCalls {
            calls: vec![ScriptedCall {
                name: "fs_write".into(),
                arguments: serde_json::json!({"path": "notes.txt", "content": "new notes"}),
            }],
            text: String::new(),
        },
        Reply::text("notes updated"),
    ])
    .await
    .unwrap();
    let tg = FakeTelegram::start(BOT_TOKEN).await.unwrap();
    let home = telegram_home(&llm, &tg, &[("channels.telegram.groups", "[-100300]")]).await;
    let notes = home.path().join("workspaces/main/notes.txt");
    std::fs::write(&notes, "old notes").unwrap();
    let mut child = serve(&home);
    tg.push_text(-100300, 601, "@pincer_bot update the notes");
    // The bot asks in the chat, with buttons.
    assert!(tg.wait_for("sendMessage", 1, WAIT).await);
    let prompt = tg.calls_of("sendMessage").pop().unwrap();
    assert!(
        prompt.params["text"]
            .as_str()
            .unwrap()
            .contains("Approval needed"),
        "{prompt:?}"
    );
    let buttons = &prompt.params["reply_markup"]["inline_keyboard"][0];
    let approve = buttons[0]["callback_data"].as_str().unwrap().to_owned();
    // Someone else presses Approve: refused, nothing written.
    tg.push_callback(-100300, 602, 11, &approve);
    assert!(tg.wait_for("answerCallbackQuery", 1, WAIT).await);
    let refused = tg.calls_of("answerCallbackQuery").pop().unwrap();
    assert!(
        refused.params["text"]
            .as_str()
            .unwrap()
            .contains("not yours"),
        "{refused:?}"
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "old notes");
    // The person who asked presses it: the action runs and the answer arrives.
    tg.push_callback(-100300, 601, 11, &approve);
    assert!(tg.wait_for("sendMessage", 2, WAIT).await);
    stop(&mut child);
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "new notes");
    assert_eq!(
        texts_to(&tg, -100300).last().map(String::as_str),
        Some("notes updated")
    );
    let out = home
        .run(
            &["audit", "search", "--type", "approval.granted", "--json"],
            "",
        )
        .await;
    assert!(stdout(&out).contains("telegram:601"), "{}", stdout(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_answers_while_a_long_task_runs() {
    use pincer_testkit::Reply;
    let llm = FakeLlm::start(vec![
        Reply::ToolCalls {
            calls: vec![pincer_testkit::ScriptedCall {
                name: "time_now".into(),
                arguments: serde_json::json!({}),
            }],
            text: String::new(),
        },
        Reply::Slow {
            delay_ms: 120_000,
            reply: Box::new(Reply::text("much later")),
        },
    ])
    .await
    .unwrap();
    let tg = FakeTelegram::start(BOT_TOKEN).await.unwrap();
    let home = telegram_home(&llm, &tg, &[("channels.telegram.allow_from", "[700]")]).await;
    let mut child = serve(&home);
    tg.push_text(700, 700, "do the long thing");
    // The tool ran and the second model call is under way: the task is running.
    assert!(llm.wait_for_requests(2, WAIT).await);
    tg.push_text(700, 700, "/status");
    assert!(tg.wait_for("sendMessage", 1, WAIT).await);
    let status = texts_to(&tg, 700).join("\n");
    assert!(
        status.contains("RUNNING") && status.contains("do the long thing"),
        "{status}"
    );
    // Run progress reaches the chat (issue 26.5).
    assert!(
        status.contains("1 tool call(s), last <code>time.now</code>"),
        "{status}"
    );
    // "typing…" is kept up while it runs (once at the start, then refreshed).
    assert!(tg.wait_for("sendChatAction", 2, WAIT).await);
    // Other commands answer at once too; /cancel stops the running task.
    for (n, cmd) in [(2, "/model"), (3, "/frobnicate"), (4, "/cancel all")] {
        tg.push_text(700, 700, cmd);
        assert!(tg.wait_for("sendMessage", n, WAIT).await, "{cmd}");
    }
    let texts = texts_to(&tg, 700);
    assert!(texts[1].contains("main"), "{texts:?}");
    assert!(texts[2].contains("Unknown command"), "{texts:?}");
    assert!(texts[3].contains("Canceled 1"), "{texts:?}");
    // Nothing runs any more, so a SIGTERM drain finishes.
    stop(&mut child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_sender_is_told_once_and_then_ignored() {
    let llm = FakeLlm::start(vec![]).await.unwrap();
    let tg = FakeTelegram::start(BOT_TOKEN).await.unwrap();
    let home = telegram_home(
        &llm,
        &tg,
        &[
            ("channels.telegram.allow_from", "[800]"),
            ("channels.telegram.rate_limit_per_minute", "2"),
        ],
    )
    .await;
    let mut child = serve(&home);
    for i in 0..5 {
        tg.push_text(800, 800, &format!("message {i}"));
    }
    assert!(tg.wait_for("sendMessage", 3, WAIT).await);
    stop(&mut child);
    let texts = texts_to(&tg, 800);
    assert_eq!(
        texts.iter().filter(|t| t.contains("faster than")).count(),
        1,
        "{texts:?}"
    );
    assert_eq!(
        texts.iter().filter(|t| t.starts_with("echo: ")).count(),
        2,
        "{texts:?}"
    );
    assert_eq!(llm.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_task_still_answers_the_chat_after_restart() {
    use pincer_testkit::Reply;
    let llm = FakeLlm::start(vec![Reply::Slow {
        delay_ms: 120_000,
        reply: Box::new(Reply::text("never")),
    }])
    .await
    .unwrap();
    let tg = FakeTelegram::start(BOT_TOKEN).await.unwrap();
    let home = telegram_home(
        &llm,
        &tg,
        &[
            ("channels.telegram.allow_from", "[900]"),
            ("gateway.lease_secs", "1"),
        ],
    )
    .await;
    let mut child = serve(&home);
    tg.push_text(900, 900, "start something long");
    assert!(llm.wait_for_requests(1, WAIT).await);
    child.kill().unwrap();
    child.wait().unwrap();
    // The chat link survived the crash: after restart the interrupted task is answered.
    let mut child = serve(&home);
    assert!(tg.wait_for("sendMessage", 1, WAIT).await);
    stop(&mut child);
    let texts = texts_to(&tg, 900);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("interrupted"), "{texts:?}");
    assert_eq!(llm.requests().len(), 1, "not run again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_lets_a_new_user_in_once() {
    let llm = FakeLlm::start(vec![]).await.unwrap();
    let tg = FakeTelegram::start(BOT_TOKEN).await.unwrap();
    let home = telegram_home(&llm, &tg, &[]).await;
    // An invite is for a user who exists.
    let out = home
        .run(&["invites", "create", "--user", "alice"], "")
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no user `alice`"), "{}", stderr(&out));
    let out = home
        .run(&["users", "add", "alice", "--role", "member"], "")
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = home
        .run(&["invites", "create", "--user", "alice"], "")
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let code = stdout(&out).trim().to_owned();
    let mut child = serve(&home);
    tg.push_text(950, 950, &format!("/start {code}"));
    assert!(tg.wait_for("sendMessage", 1, WAIT).await);
    tg.push_text(950, 950, "hi there");
    assert!(tg.wait_for("sendMessage", 2, WAIT).await);
    // Someone else cannot reuse it: they get the pairing flow instead.
    tg.push_text(951, 951, &format!("/start {code}"));
    assert!(tg.wait_for("sendMessage", 3, WAIT).await);
    stop(&mut child);
    let alice = texts_to(&tg, 950);
    assert!(alice[0].contains("Welcome, alice"), "{alice:?}");
    assert_eq!(alice[1], "echo: hi there");
    assert!(
        texts_to(&tg, 951)[0].contains("not valid"),
        "{:?}",
        texts_to(&tg, 951)
    );
    assert_eq!(llm.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_mode_checks_the_secret_and_processes_each_update_once() {
    const SECRET: &str = "webhook-secret-0123456789";
    let llm = FakeLlm::start(vec![]).await.unwrap();
    let tg = FakeTelegram::start(BOT_TOKEN).await.unwrap();
    let home = telegram_home(
        &llm,
        &tg,
        &[
            ("channels.telegram.allow_from", "[970]"),
            (
                "channels.telegram.webhook_url",
                "https://bot.example.org/v1/channels/telegram/webhook",
            ),
        ],
    )
    .await;
    let (mut child, addr) = serve_at(
        &home.path(),
        &[
            ("PINCER_TEST_BOT", BOT_TOKEN),
            ("TELEGRAM_WEBHOOK_SECRET", SECRET),
        ],
    );
    // The bot registered the webhook with its secret.
    assert!(tg.wait_for("setWebhook", 1, WAIT).await);
    let hook = tg.webhook().unwrap();
    assert_eq!(hook["secret_token"], SECRET);
    let post = |secret: &'static str, body: String| {
        let addr = addr.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                use std::io::{Read, Write};
                let mut s = std::net::TcpStream::connect(&addr).unwrap();
                write!(
                    s,
                    "POST /v1/channels/telegram/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Telegram-Bot-Api-Secret-Token: {secret}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).unwrap();
                out
            })
            .await
            .unwrap()
        }
    };
    let update = serde_json::json!({"update_id": 777, "message": {"message_id": 1, "date": 1,
        "chat": {"id": 970, "type": "private"},
        "from": {"id": 970, "is_bot": false, "first_name": "w"}, "text": "via webhook"}})
    .to_string();
    let wrong = post("not-the-secret-xxxxxxxx", update.clone()).await;
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    let ok = post(SECRET, update.clone()).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let again = post(SECRET, update).await;
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
    assert!(tg.wait_for("sendMessage", 1, WAIT).await);
    stop(&mut child);
    assert_eq!(texts_to(&tg, 970), ["echo: via webhook"]);
    assert_eq!(llm.requests().len(), 1, "a redelivered update runs once");
    assert!(
        tg.calls_of("getUpdates").is_empty(),
        "no polling in webhook mode"
    );
    let audit = all_bytes(&home.path().join("audit"));
    assert!(!audit.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5000_character_answer_arrives_in_correct_chunks() {
    let answer: Vec<String> = (0..12)
        .map(|i| {
            format!(
                "Paragraph {i}: {}",
                "some words here ".repeat(26).trim_end()
            )
        })
        .collect();
    let answer = answer.join("\n\n");
    assert!(answer.chars().count() > 5000);
    let llm = FakeLlm::start(vec![pincer_testkit::Reply::text(&answer)])
        .await
        .unwrap();
    let tg = FakeTelegram::start(BOT_TOKEN).await.unwrap();
    let home = telegram_home(&llm, &tg, &[("channels.telegram.allow_from", "[990]")]).await;
    let mut child = serve(&home);
    tg.push_text(990, 990, "write a lot");
    assert!(tg.wait_for("sendMessage", 2, WAIT).await);
    stop(&mut child);
    let texts = texts_to(&tg, 990);
    assert_eq!(texts.len(), 2, "{texts:?}");
    for t in &texts {
        assert!(t.chars().count() <= 4096);
        assert!(t.starts_with("Paragraph "), "{t:.30}");
    }
    // Nothing lost: every paragraph arrived, in order.
    let joined = texts.join("\n\n");
    assert_eq!(joined, answer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_warns_when_anyone_can_talk_to_the_bot() {
    let llm = FakeLlm::start(vec![]).await.unwrap();
    let tg = FakeTelegram::start(BOT_TOKEN).await.unwrap();
    let home = telegram_home(&llm, &tg, &[("channels.telegram.dm_policy", "open")]).await;
    let out = home
        .run_with_env(
            &["doctor", "--offline", "--json"],
            &[("PINCER_TEST_BOT", BOT_TOKEN)],
        )
        .await;
    let checks: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let dm = checks
        .iter()
        .find(|c| c["id"] == "channel.telegram.dm_policy")
        .unwrap();
    assert_eq!(dm["status"], "warn", "{dm}");
    // Without the token the check fails with a fix.
    let out = home.run(&["doctor", "--offline", "--json"], "").await;
    let checks: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let token = checks
        .iter()
        .find(|c| c["id"] == "channel.telegram.token")
        .unwrap();
    assert_eq!(token["status"], "fail", "{token}");
}

/// Issue 26.1: part 2 of a long answer fails past its retries; the outbox resends only part 2,
/// so the user never sees part 1 twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_answer_whose_second_part_fails_is_resumed_not_repeated() {
    let para = |i: usize| format!("Part {i} {}", "lorem ipsum ".repeat(40).trim_end());
    let long = (0..11).map(para).collect::<Vec<_>>().join("\n\n");
    let llm = FakeLlm::start(vec![pincer_testkit::Reply::text(&long)])
        .await
        .unwrap();
    let tg = FakeTelegram::start(BOT_TOKEN).await.unwrap();
    let home = telegram_home(&llm, &tg, &[("channels.telegram.allow_from", "[610]")]).await;
    // Part 1 goes through; then six 500s, more than one send's retries.
    tg.fail_after("sendMessage", 1, pincer_testkit::TgFault::ServerError);
    for _ in 0..5 {
        tg.fail_next("sendMessage", pincer_testkit::TgFault::ServerError);
    }
    let mut child = serve(&home);
    tg.push_text(610, 610, "write a lot");
    // One delivered part, six refused attempts at part 2, then part 2 delivered.
    assert!(tg.wait_for("sendMessage", 8, Duration::from_secs(90)).await);
    stop(&mut child);
    let texts = texts_to(&tg, 610);
    assert_eq!(
        texts.iter().filter(|t| t.contains("Part 0")).count(),
        1,
        "part 1 was sent again"
    );
    assert!(texts.last().is_some_and(|t| t.starts_with("Part 8")));
    assert_eq!(texts.len(), 8, "nothing after part 2 was delivered");
}

/// Issue 26.2: a 429 for one chat holds only that chat; another chat's answer goes out at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_chats_flood_limit_does_not_hold_another_chat() {
    let llm = FakeLlm::start(vec![]).await.unwrap();
    let tg = FakeTelegram::start(BOT_TOKEN).await.unwrap();
    let home = telegram_home(&llm, &tg, &[("channels.telegram.allow_from", "[111, 222]")]).await;
    tg.fail_next_for(
        "sendMessage",
        222,
        pincer_testkit::TgFault::TooManyRequests { retry_after: 5 },
    );
    let mut child = serve(&home);
    tg.push_text(222, 222, "first, from the limited chat");
    assert!(tg.wait_for("sendMessage", 1, WAIT).await); // the refused attempt for 222
    tg.push_text(111, 111, "second, from another chat");
    assert!(tg.wait_for("sendMessage", 2, WAIT).await);
    // 111's answer is delivered while 222 is still held (its retry comes 5 s later).
    let calls = tg.calls_of("sendMessage");
    assert_eq!(calls[1].params["chat_id"], 111, "{calls:?}");
    assert!(tg.wait_for("sendMessage", 3, WAIT).await);
    stop(&mut child);
    assert_eq!(texts_to(&tg, 111), ["echo: second, from another chat"]);
    let to_222 = texts_to(&tg, 222);
    assert_eq!(
        to_222.last().map(String::as_str),
        Some("echo: first, from the limited chat")
    );
}

/// Issue 15, part 3: `/model` in Telegram shows the chain and sets this chat's model; the next
/// message is answered by the chosen model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_in_telegram_chooses_the_chats_model() {
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let primary = FakeLlm::bind(any, vec![], pincer_testkit::Reply::text("from primary"))
        .await
        .unwrap();
    let backup = FakeLlm::bind(any, vec![], pincer_testkit::Reply::text("from backup"))
        .await
        .unwrap();
    let tg = FakeTelegram::start(BOT_TOKEN).await.unwrap();
    let home = telegram_home(&primary, &tg, &[("channels.telegram.allow_from", "[710]")]).await;
    let path = home.path().join("config.toml");
    let mut config = std::fs::read_to_string(&path).unwrap();
    config.push_str(&format!(
        "\n[providers.backup]\nkind = \"openai\"\nbase_url = \"{}\"\n\n[models.first]\nprovider = \"default\"\nmodel = \"m1\"\n\n[models.second]\nprovider = \"backup\"\nmodel = \"m2\"\n",
        backup.base_url()
    ));
    std::fs::write(&path, config).unwrap();
    set(&home, "agents.main.models", r#"["first", "second"]"#).await;
    let mut child = serve(&home);
    for (n, text) in [
        (1, "/model"),
        (2, "/model second strict"),
        (3, "hello there"),
    ] {
        tg.push_text(710, 710, text);
        assert!(tg.wait_for("sendMessage", n, WAIT).await, "{text}");
    }
    let texts = texts_to(&tg, 710);
    assert!(
        texts[0].contains("<code>first</code> (the agent's default)")
            && texts[0].contains("first, second"),
        "{texts:?}"
    );
    assert!(
        texts[1].contains("now uses <code>second</code> only"),
        "{texts:?}"
    );
    assert!(texts[2].contains("from backup"), "{texts:?}");
    assert!(
        primary.requests().is_empty(),
        "the chat's strict choice was not used"
    );
    assert_eq!(backup.requests()[0].body["model"], "m2");
    stop(&mut child);
}
