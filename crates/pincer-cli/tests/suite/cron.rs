//! Scheduled jobs through the real binary and the fake model.

use std::process::Child;
use std::time::Duration;

use pincer_testkit::FakeLlm;
use serde_json::Value;

use super::common::*;

const WAIT: Duration = Duration::from_secs(60);

fn serve(home: &Home) -> Child {
    serve_at(&home.path(), &[]).0
}

fn stop(child: &mut Child) {
    assert_eq!(term(child), Some(0));
}

async fn runs(home: &Home, name: &str) -> Vec<Value> {
    let out = home.run(&["cron", "runs", name, "--json"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_every_2s_job_runs_is_listed_survives_a_restart_and_stops_when_removed() {
    let llm = FakeLlm::start(vec![]).await.unwrap(); // echoes
    let home = Home::new();
    home.init(&llm.base_url()).await;
    let out = home
        .run(
            &[
                "cron", "add", "--name", "tick", "--every", "2s", "tick", "tock",
            ],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = home.run(&["cron", "list", "--json"], "").await;
    let jobs: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(jobs[0]["name"], "tick");
    let mut child = serve(&home);
    assert!(llm.wait_for_requests(2, WAIT).await, "two runs");
    stop(&mut child);
    let listed = runs(&home, "tick").await;
    assert!(listed.len() >= 2, "{listed:?}");
    assert!(
        listed.iter().any(|r| r["status"] == "SUCCEEDED"),
        "{listed:?}"
    );
    // Each isolated run had its own session: the model saw only "tick tock" each time.
    for r in llm.requests() {
        let msgs = r.body["messages"].as_array().unwrap();
        assert_eq!(msgs.iter().filter(|m| m["role"] == "user").count(), 1);
    }
    // After a restart the job is still there and keeps running.
    let before = llm.requests().len();
    let mut child = serve(&home);
    assert!(
        llm.wait_for_requests(before + 1, WAIT).await,
        "ran after restart"
    );
    // Removed: it runs no more. A second job proves time passed (three of its runs).
    let out = home.run(&["cron", "rm", "tick"], "").await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = home
        .run(
            &["cron", "add", "--name", "witness", "--every", "1s", "w"],
            "",
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let after_rm = llm.requests().len();
    assert!(llm.wait_for_requests(after_rm + 4, WAIT).await);
    stop(&mut child);
    let tick_after: usize = llm
        .requests()
        .iter()
        .skip(after_rm)
        .filter(|r| r.body.to_string().contains("tick tock"))
        .count();
    // At most one run already in flight when it was removed.
    assert!(tick_after <= 1, "{tick_after} runs after rm");
    assert!(home.run(&["cron", "runs", "tick"], "").await.status.code() == Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_schedules_are_refused_with_a_reason() {
    let llm = FakeLlm::start(vec![]).await.unwrap();
    let home = Home::new();
    home.init(&llm.base_url()).await;
    for (args, needle) in [
        (vec!["--every", "0s"], "duration"),
        (vec!["--cron", "61 * * * *"], "cron"),
        (
            vec!["--cron", "* * * * *", "--tz", "Mars/Base"],
            "time zone",
        ),
        (vec!["--at", "2001-01-01T00:00:00Z"], "never runs"),
        (vec![], "exactly one"),
    ] {
        let mut argv = vec!["cron", "add", "--name", "x"];
        argv.extend(args);
        argv.push("msg");
        let out = home.run(&argv, "").await;
        assert_eq!(out.status.code(), Some(2), "{argv:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{argv:?}: {}", stderr(&out));
    }
}
