//! `pincer mcp list|add|discover|approve|enable|disable|tools|logs|remove` (issue 17, G3): the
//! operator's side of an MCP server's lifecycle. The operations are `pincer-server`'s
//! (`mcp_admin::Admin`, shared with `/v1/mcp/servers…`); this module parses and prints.

use pincer_config::McpServerConfig;
use pincer_gateway::{McpAdmin, McpAdminError};
use pincer_server::mcp_admin::Admin;
use serde_json::Value;

use crate::cli::McpCommand;
use crate::{Env, Failure, runtime};

pub(crate) fn run(cmd: McpCommand, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    let rt = runtime::tokio_runtime()?;
    rt.block_on(async {
        let admin = Admin {
            home: home.clone(),
            env: env.clone(),
            store: runtime::open_store(&home, &loaded.config, env).await?,
            audit: runtime::open_audit(&home, &loaded.config, env)?,
        };
        let by = "operator:cli";
        match cmd {
            McpCommand::Add(add) => {
                let crate::cli::McpAddArgs {
                    name,
                    command,
                    args,
                    url,
                    env: vars,
                    headers,
                    read_paths,
                    write_paths,
                    network,
                    allow_private,
                    rest,
                } = *add;
                let server = McpServerConfig {
                    command,
                    args: args.into_iter().chain(rest).collect(),
                    url,
                    env: pairs(vars, "env")?,
                    headers: pairs(headers, "header")?,
                    read_paths,
                    write_paths,
                    network,
                    allow_private,
                    ..McpServerConfig::default()
                };
                let config = serde_json::to_value(&server)?;
                admin.add(&name, config, by).await.map_err(fail)?;
                println!(
                    "added MCP server `{name}` (disabled). Next: `pincer mcp discover {name}`, then `approve` and `enable`."
                );
            }
            McpCommand::Enable { name } => {
                let v = admin.set_enabled(&name, true, by).await.map_err(fail)?;
                if v["approved"] == true {
                    println!("enabled `{name}`");
                } else {
                    println!(
                        "enabled `{name}`; its tools stay withdrawn until its manifest is approved (`pincer mcp discover {name}`, then `approve`)"
                    );
                }
                restart_note();
            }
            McpCommand::Disable { name } => {
                admin.set_enabled(&name, false, by).await.map_err(fail)?;
                println!("disabled `{name}`");
                restart_note();
            }
            McpCommand::Remove { name } => {
                admin.remove(&name, by).await.map_err(fail)?;
                println!("removed MCP server `{name}`");
            }
            McpCommand::Logs { name, lines } => {
                let v = admin.logs(&name, lines).await.map_err(fail)?;
                let lines = v["lines"].as_array().cloned().unwrap_or_default();
                if lines.is_empty() {
                    println!("(no stderr captured for `{name}`)");
                }
                for l in lines {
                    println!("{}", l.as_str().unwrap_or_default());
                }
            }
            McpCommand::List { json } => {
                let v = admin.list().await.map_err(fail)?;
                let rows = v.as_array().cloned().unwrap_or_default();
                if json {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else if rows.is_empty() {
                    println!("no MCP servers (pincer mcp add NAME --command … | --url …)");
                } else {
                    println!("SERVER                   TRANSPORT STATUS");
                    for r in &rows {
                        println!(
                            "{:<24} {:<9} {}",
                            r["server"].as_str().unwrap_or(""),
                            r["transport"].as_str().unwrap_or(""),
                            r["status"].as_str().unwrap_or("")
                        );
                    }
                }
            }
            McpCommand::Discover { name, json } => {
                let v = admin.discover(&name).await.map_err(fail)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else {
                    let sha = v["sha256"].as_str().unwrap_or("");
                    println!(
                        "`{name}`: {} {} (protocol {}), {} tools, manifest sha256 {sha}",
                        v["server_name"].as_str().unwrap_or(""),
                        v["server_version"].as_str().unwrap_or(""),
                        v["protocol"].as_str().unwrap_or(""),
                        v["tools"].as_array().map_or(0, Vec::len)
                    );
                    print_tools(&v["tools"]);
                    println!(
                        "\napprove exactly this manifest with: pincer mcp approve {name} --sha256 {sha}"
                    );
                }
            }
            McpCommand::Approve { name, sha256 } => {
                let v = admin
                    .approve(&name, sha256.as_deref(), by)
                    .await
                    .map_err(fail)?;
                println!(
                    "approved the manifest of `{name}` ({} tools, sha256 {})",
                    v["tools"],
                    v["sha256"].as_str().unwrap_or("")
                );
                if v["enabled"] != true {
                    println!(
                        "it is disabled: `pincer mcp enable {name}` offers its tools to agents that grant group:mcp:{name}"
                    );
                }
                restart_note();
            }
            McpCommand::Tools { name, json } => {
                let v = admin.tools(&name).await.map_err(fail)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else {
                    print_manifests(&name, &v);
                }
            }
        }
        anyhow::Ok(())
    })?;
    Ok(0)
}

fn restart_note() {
    println!("(a running `pincer serve` applies this at its next start)");
}

fn fail(e: McpAdminError) -> anyhow::Error {
    Failure::usage(e.to_string()).into()
}

fn pairs(v: Vec<String>, what: &str) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    v.into_iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| {
                    Failure::usage(format!("--{what} {kv:?}: expected NAME=env:VAR")).into()
                })
        })
        .collect()
}

fn print_tools(rows: &Value) {
    for row in rows.as_array().into_iter().flatten() {
        println!(
            "- {}  (as {}, tier {})",
            row["tool"].as_str().unwrap_or(""),
            row["as"].as_str().unwrap_or("(no valid name)"),
            row["tier"].as_str().unwrap_or("")
        );
        let desc = row["description"].as_str().unwrap_or("");
        if !desc.is_empty() {
            println!("    {}", desc.replace('\n', "\n    "));
        }
        println!("    input: {}", row["input_schema"]);
        if !row["output_schema"].is_null() {
            println!("    output: {}", row["output_schema"]);
        }
        if !row["annotations"].is_null() {
            println!("    server's hints (not trusted): {}", row["annotations"]);
        }
    }
}

fn print_manifests(name: &str, v: &Value) {
    match v["approved_sha256"].as_str() {
        Some(sha) => {
            println!("approved manifest of `{name}` (sha256 {sha}):");
            print_tools(&v["approved"]);
        }
        None => println!("`{name}` has no approved manifest"),
    }
    if let Some(sha) = v["seen_sha256"].as_str()
        && v["approved_sha256"].as_str() != Some(sha)
    {
        println!(
            "\nlast seen manifest (sha256 {sha}) — NOT approved; changes: {}",
            v["changes"]
        );
        print_tools(&v["seen"]);
        println!("\napprove it with: pincer mcp approve {name} --sha256 {sha}");
    }
}
