//! Context budget (issue 16, part 1): a long conversation with tool calls never outgrows the
//! model's context window — old tool outputs are pruned, old turns summarised — and no request
//! ever separates a tool call from its result.

use super::common::*;

/// Whether every tool call in an OpenAI-format request is followed by its result, and every
/// result answers a call made before it.
fn pairs_intact(body: &serde_json::Value) -> Result<(), String> {
    let mut open: Vec<String> = Vec::new();
    for m in body["messages"].as_array().into_iter().flatten() {
        match m["role"].as_str() {
            Some("assistant") => {
                if !open.is_empty() {
                    return Err(format!(
                        "calls {open:?} unanswered before the next assistant turn"
                    ));
                }
                for c in m["tool_calls"].as_array().into_iter().flatten() {
                    open.push(c["id"].as_str().unwrap_or_default().to_owned());
                }
            }
            Some("tool") => {
                let id = m["tool_call_id"].as_str().unwrap_or_default();
                let Some(at) = open.iter().position(|o| o == id) else {
                    return Err(format!("result {id} without its call"));
                };
                open.remove(at);
            }
            Some("user") if !open.is_empty() => {
                return Err(format!("calls {open:?} unanswered before a user turn"));
            }
            _ => {}
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_chat_with_tool_calls_stays_inside_the_context_window() {
    use pincer_testkit::{FakeLlm, Reply};
    const WINDOW: usize = 6000;
    // Summaries on request; otherwise every turn calls a tool, then answers.
    let llm = FakeLlm::bind(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        vec![],
        Reply::WhenAsked {
            marker: "Summarise this conversation".into(),
            // The summary forgets the code word: only memory keeps it.
            reply: Box::new(Reply::text("SUMMARY: we talked about numbers.")),
            otherwise: Box::new(Reply::WhenAsked {
                marker: "about to be compacted".into(),
                // The memory flush: the agent writes the fact down (and tries a tool it was not
                // offered, which is refused and audited).
                reply: Box::new(Reply::ToolCalls {
                    calls: vec![
                        pincer_testkit::ScriptedCall {
                            name: "memory_append".into(),
                            arguments: serde_json::json!({"text": "The user's code word is marlin", "section": "Facts"}),
                        },
                        pincer_testkit::ScriptedCall {
                            name: "time_now".into(),
                            arguments: serde_json::json!({}),
                        },
                    ],
                    text: String::new(),
                }),
                otherwise: Box::new(Reply::WhenAsked {
                    marker: "turn".into(),
                    reply: Box::new(Reply::tool_call("time_now", serde_json::json!({}))),
                    otherwise: Box::new(Reply::Echo),
                }),
            }),
        },
    )
    .await
    .unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    set(&home, "agents.main.context_window", &WINDOW.to_string()).await;
    set(&home, "agents.main.max_tokens", "200").await;
    let mut input = String::from("turn 1: my code word is marlin\n");
    for i in 2..=200 {
        input.push_str(&format!(
            "turn {i}: tell me something about the number {i}, please\n"
        ));
    }
    input.push_str("what is my code word?\n");
    let out = home.run(&["chat", "--session", "long"], &input).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let requests = llm.requests();
    assert!(requests.len() > 400, "{} requests", requests.len());
    let mut summaries = 0;
    for (i, r) in requests.iter().enumerate() {
        assert!(
            r.bytes / 4 <= WINDOW,
            "request {i} is {} bytes, over the {WINDOW}-token window: {} messages, first {}",
            r.bytes,
            r.body["messages"].as_array().map_or(0, Vec::len),
            r.body["messages"][1]
                .to_string()
                .chars()
                .take(300)
                .collect::<String>()
        );
        if let Err(e) = pairs_intact(&r.body) {
            panic!("request {i}: {e}\n{}", r.body);
        }
        if r.body["messages"]
            .to_string()
            .contains("[Summary of the earlier conversation")
        {
            summaries += 1;
        }
    }
    assert!(summaries > 0, "no request carried a summary");
    // A memory flush ran before every summary: the agent was asked to save notes (offered only
    // memory tools), and saved them.
    let mut flushed = false;
    for r in &requests {
        let text = r.body["messages"].to_string();
        if text.contains("about to be compacted") {
            let tools: Vec<&str> = r.body["tools"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["function"]["name"].as_str())
                .collect();
            assert!(tools.iter().all(|t| t.starts_with("memory_")), "{tools:?}");
            flushed = true;
        } else if text.contains("Summarise this conversation") {
            assert!(flushed, "a summary without a memory flush before it");
            flushed = false;
        }
    }
    let out = home
        .run(&["audit", "search", "--type", "tool.refused", "--json"], "")
        .await;
    assert!(
        stdout(&out).contains("\"phase\":\"memory_flush\"") && stdout(&out).contains("time_now"),
        "a refused flush call was not audited: {}",
        stdout(&out)
    );
    let memory = std::fs::read_to_string(home.path().join("agents/main/memory/MEMORY.md")).unwrap();
    assert!(
        memory.contains("- The user's code word is marlin"),
        "{memory}"
    );
    // The last question still has the fact from turn 1: not from the summary, which forgot it,
    // but from MEMORY.md in the prompt.
    let last = &requests.last().unwrap().body["messages"];
    assert!(
        last[0]["content"]
            .as_str()
            .unwrap()
            .contains("code word is marlin"),
        "{last}"
    );
    assert!(!last.to_string().contains("SUMMARY: the user"), "{last}");
    // Compactions are written to the run bundles: what was replaced, tokens before and after.
    let compactions: Vec<serde_json::Value> = home
        .runs()
        .iter()
        .flat_map(|d| {
            std::fs::read_to_string(d.join("transcript.jsonl"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|v| v["type"] == "compaction")
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!compactions.is_empty());
    let c = &compactions[0];
    assert!(
        c["tokens_after"].as_u64().unwrap() < c["tokens_before"].as_u64().unwrap(),
        "{c}"
    );
    // The compacted view is kept with the session: later turns continue from the summary
    // instead of summarising the whole history again on every turn.
    let summarising = requests
        .iter()
        .filter(|r| {
            r.body["messages"]
                .to_string()
                .contains("Summarise this conversation")
        })
        .count();
    assert!(
        summarising > 0 && summarising * 4 < 201,
        "{summarising} summarising calls for 201 turns: {:?}",
        compactions
            .iter()
            .take(6)
            .map(|c| (
                c["tokens_before"].clone(),
                c["tokens_after"].clone(),
                c["replaced_messages"].clone()
            ))
            .collect::<Vec<_>>()
    );
}
