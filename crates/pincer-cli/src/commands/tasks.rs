//! `pincer tasks`: a client of a running `pincer serve`. The token comes from `PINCER_TOKEN`
//! (never a flag: command lines are visible to every local user).

use serde_json::{Value, json};

use crate::cli::TasksCommand;
use crate::exit::FAILED;
use crate::{Env, Failure, runtime};

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(server: Option<String>, env: &Env) -> anyhow::Result<Self> {
        let base = match server.or_else(|| env.var("PINCER_URL")) {
            Some(s) => s,
            None => {
                let home = runtime::home(env)?;
                let config = pincer_config::load(&home)?.config;
                format!("http://{}", config.gateway.bind)
            }
        };
        let token = env.var("PINCER_TOKEN").ok_or_else(|| {
            Failure::usage(
                "set PINCER_TOKEN to an API token (create one with `pincer tokens create`)",
            )
        })?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("pincer/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r
            .send()
            .await
            .map_err(|e| Failure::usage(format!("cannot reach {}: {e}", self.base)))?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let code = v["error"]["code"].as_str().unwrap_or("error");
            let msg = v["error"]["message"].as_str().unwrap_or("");
            return Err(Failure::usage(format!("{status} {code}: {msg}")).into());
        }
        Ok(v)
    }
}

fn line(t: &Value) -> String {
    format!(
        "{}  {:<16} {:<8} {}",
        t["id"].as_str().unwrap_or_default(),
        t["status"].as_str().unwrap_or_default(),
        t["agent"].as_str().unwrap_or_default(),
        t["input"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .take(60)
            .collect::<String>()
    )
}

pub(crate) fn run(server: Option<String>, cmd: TasksCommand, env: &Env) -> anyhow::Result<u8> {
    let client = Client::new(server, env)?;
    let rt = runtime::tokio_runtime()?;
    rt.block_on(async {
        match cmd {
            TasksCommand::Submit {
                agent,
                session,
                key,
                timeout,
                wait,
                message,
            } => {
                let mut body = json!({"agent": agent, "message": message.join(" ")});
                if let Some(s) = session {
                    body["session"] = json!(s);
                }
                if let Some(k) = key {
                    body["idempotency_key"] = json!(k);
                }
                if let Some(t) = timeout {
                    body["timeout_secs"] = json!(t);
                }
                let v = client
                    .call(reqwest::Method::POST, "/v1/tasks", Some(body))
                    .await?;
                let id = v["task"]["id"].as_str().unwrap_or_default().to_owned();
                if !wait {
                    println!("{id}");
                    return Ok(0);
                }
                follow(&client, &id).await
            }
            TasksCommand::List { status } => {
                let path = match status {
                    Some(s) => format!("/v1/tasks?status={s}"),
                    None => "/v1/tasks".to_owned(),
                };
                let v = client.call(reqwest::Method::GET, &path, None).await?;
                for t in v["tasks"].as_array().into_iter().flatten() {
                    println!("{}", line(t));
                }
                Ok(0)
            }
            TasksCommand::Show { id } => {
                let v = client
                    .call(reqwest::Method::GET, &format!("/v1/tasks/{id}"), None)
                    .await?;
                println!("{}", serde_json::to_string_pretty(&v["task"])?);
                Ok(0)
            }
            TasksCommand::Cancel { id } => {
                let v = client
                    .call(
                        reqwest::Method::POST,
                        &format!("/v1/tasks/{id}/cancel"),
                        None,
                    )
                    .await?;
                println!("{}", line(&v["task"]));
                Ok(0)
            }
            TasksCommand::Watch => {
                let mut resp = client
                    .http
                    .get(format!("{}/v1/events", client.base))
                    .bearer_auth(&client.token)
                    .send()
                    .await?;
                if !resp.status().is_success() {
                    return Err(Failure::usage(format!("events: {}", resp.status())).into());
                }
                while let Some(chunk) = resp.chunk().await? {
                    use std::io::Write as _;
                    let mut out = std::io::stdout().lock();
                    out.write_all(&chunk)?;
                    out.flush()?;
                }
                Ok(0)
            }
        }
    })
}

/// `pincer run` through a server: submit, follow to the end, print the answer and artifacts.
pub(crate) fn run_remote(args: crate::cli::RunArgs, env: &Env) -> anyhow::Result<u8> {
    let client = Client::new(args.server, env)?;
    let rt = runtime::tokio_runtime()?;
    rt.block_on(async {
        let body = json!({"agent": args.agent, "message": args.message.join(" ")});
        let v = client
            .call(reqwest::Method::POST, "/v1/tasks", Some(body))
            .await?;
        let id = v["task"]["id"].as_str().unwrap_or_default().to_owned();
        eprintln!("task {id} queued");
        follow(&client, &id).await
    })
}

/// Follows a task to its end: progress on stderr, the answer on stdout, then where the
/// artifacts are. Exit 0 when it succeeded.
async fn follow(client: &Client, id: &str) -> anyhow::Result<u8> {
    let mut last = String::new();
    loop {
        let v = client
            .call(
                reqwest::Method::GET,
                &format!("/v1/tasks/{id}?wait_secs=55"),
                None,
            )
            .await?;
        let t = &v["task"];
        let status = t["status"].as_str().unwrap_or_default().to_owned();
        if status != last {
            eprintln!("task {id}: {status}");
            last.clone_from(&status);
        }
        let artifacts = || {
            if let Some(dir) = t["run_dir"].as_str() {
                eprintln!("artifacts: {dir}");
            }
        };
        match status.as_str() {
            "SUCCEEDED" => {
                println!("{}", t["output"].as_str().unwrap_or_default());
                artifacts();
                return Ok(0);
            }
            "FAILED" | "CANCELED" | "TIMED_OUT" => {
                eprintln!("error: {}", t["error"].as_str().unwrap_or_default());
                artifacts();
                return Ok(FAILED);
            }
            "WAITING_APPROVAL" => {
                eprintln!("waiting for an approval: `pincer approvals list` or the API");
            }
            _ => {}
        }
    }
}

/// `pincer approvals …` through the server's API (decided as the token's name).
pub(crate) fn approvals_remote(
    server: Option<String>,
    cmd: crate::cli::ApprovalsCommand,
    env: &Env,
) -> anyhow::Result<u8> {
    use crate::cli::ApprovalsCommand;
    let client = Client::new(server, env)?;
    let rt = runtime::tokio_runtime()?;
    rt.block_on(async {
        let decide = |id: String, decision: &'static str| {
            let client = &client;
            async move {
                let v = client
                    .call(
                        reqwest::Method::POST,
                        &format!("/v1/approvals/{id}/decision"),
                        Some(json!({"decision": decision})),
                    )
                    .await?;
                println!(
                    "{} {}",
                    v["approval"]["id"].as_str().unwrap_or_default(),
                    v["approval"]["status"].as_str().unwrap_or_default()
                );
                anyhow::Ok(0u8)
            }
        };
        match cmd {
            ApprovalsCommand::List { all, json } => {
                let path = if all {
                    "/v1/approvals?limit=200"
                } else {
                    "/v1/approvals?status=PENDING&limit=200"
                };
                let v = client.call(reqwest::Method::GET, path, None).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&v["approvals"])?);
                } else {
                    for a in v["approvals"].as_array().into_iter().flatten() {
                        println!(
                            "{}  {:<9} {:<12} {:<15} {}",
                            a["id"].as_str().unwrap_or_default(),
                            a["status"].as_str().unwrap_or_default(),
                            a["tool"].as_str().unwrap_or_default(),
                            a["tier"].as_str().unwrap_or_default(),
                            a["reason"].as_str().unwrap_or_default()
                        );
                    }
                }
                Ok(0)
            }
            ApprovalsCommand::Approve { id } => decide(id, "APPROVE").await,
            ApprovalsCommand::Deny { id } => decide(id, "DENY").await,
        }
    })
}
