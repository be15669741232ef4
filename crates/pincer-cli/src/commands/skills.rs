//! `pincer skills validate|install|list|show|approve|enable|disable|rescan|revoke|remove`
//! (issue 22, G1/G2): the operator's side of a skill's life. The operations are
//! `pincer-server`'s (`skills_admin::Admin`, shared with `/v1/skills…`); this module parses and
//! prints.

use std::sync::Arc;

use pincer_gateway::{SkillAdmin, SkillAdminError, SkillSource};
use pincer_server::skills_admin::Admin;
use serde_json::Value;

use crate::cli::SkillsCommand;
use crate::{Env, Failure, runtime};

pub(crate) fn run(cmd: SkillsCommand, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    let rt = runtime::tokio_runtime()?;
    rt.block_on(async {
        let admin = Admin {
            home: home.clone(),
            config: Arc::new(loaded.config.clone()),
            store: runtime::open_store(&home, &loaded.config, env).await?,
            audit: runtime::open_audit(&home, &loaded.config, env)?,
        };
        let by = "operator:cli";
        let src = |s: String| SkillSource {
            source: Some(s),
            files: Vec::new(),
        };
        match cmd {
            SkillsCommand::Validate { source, json } => {
                let v = admin.validate(src(source)).await.map_err(fail)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&v["validation"])?);
                } else {
                    print_validation(&v["validation"]);
                }
                Ok(u8::from(v["validation"]["verdict"] == "block"))
            }
            SkillsCommand::Install {
                source,
                approve,
                accept_warnings,
                json,
            } => {
                let v = admin.install(src(source), by).await.map_err(fail)?;
                let name = v["skill"]["name"].as_str().unwrap_or_default().to_owned();
                let mut out = v.clone();
                if approve {
                    let sha = v["skill"]["sha256"].as_str().map(str::to_owned);
                    let a = admin
                        .approve(&name, sha.as_deref(), accept_warnings, by)
                        .await
                        .map_err(fail)?;
                    out["skill"] = a["skill"].clone();
                }
                if json {
                    println!("{}", serde_json::to_string_pretty(&out)?);
                } else {
                    print_validation(&out["validation"]);
                    println!(
                        "installed `{name}` into skills/{name}/ — {}",
                        out["skill"]["status"].as_str().unwrap_or("?")
                    );
                    if !approve {
                        println!(
                            "Next: read it (`pincer skills show {name}`), then `pincer skills approve {name} --sha256 {}`",
                            out["skill"]["sha256"].as_str().unwrap_or("")
                        );
                    }
                }
                Ok(0)
            }
            SkillsCommand::List { json } => {
                let v = admin.list().await.map_err(fail)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&v["skills"])?);
                    return Ok(0);
                }
                let list = v["skills"].as_array().cloned().unwrap_or_default();
                if list.is_empty() {
                    println!("no skills installed (pincer skills install PATH|GIT_URL)");
                }
                for s in &list {
                    println!(
                        "{:<24} {:<12} {:<8} {}",
                        s["name"].as_str().unwrap_or(""),
                        s["status"].as_str().unwrap_or(""),
                        s["verdict"].as_str().unwrap_or(""),
                        s["description"].as_str().unwrap_or("").chars().take(60).collect::<String>()
                    );
                }
                Ok(0)
            }
            SkillsCommand::Show { name, json } => {
                let v = admin.show(&name).await.map_err(fail)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                    return Ok(0);
                }
                let s = &v["skill"];
                for (k, key) in [
                    ("name", "name"),
                    ("status", "status"),
                    ("reason", "reason"),
                    ("version", "version"),
                    ("source", "source"),
                    ("verdict", "verdict"),
                    ("sha256", "sha256"),
                    ("approved", "approved_sha256"),
                    ("approved by", "approved_by"),
                ] {
                    if let Some(x) = s[key].as_str() {
                        println!("{k:<12} {x}");
                    }
                }
                println!("{:<12} {}", "permissions", s["permissions"]);
                print_findings(&s["findings"]);
                if let Some(files) = v["files"].as_object() {
                    println!("files:");
                    for f in files.keys() {
                        println!("  {f}");
                    }
                }
                Ok(0)
            }
            SkillsCommand::Approve {
                name,
                sha256,
                accept_warnings,
            } => {
                let v = admin
                    .approve(&name, sha256.as_deref(), accept_warnings, by)
                    .await
                    .map_err(fail)?;
                println!(
                    "approved `{name}` ({}); it is enabled",
                    v["skill"]["approved_sha256"].as_str().unwrap_or("")
                );
                Ok(0)
            }
            SkillsCommand::Enable { name } => act(&admin, &name, "enable", by).await,
            SkillsCommand::Disable { name } => act(&admin, &name, "disable", by).await,
            SkillsCommand::Rescan { name } => act(&admin, &name, "rescan", by).await,
            SkillsCommand::Revoke { name } => act(&admin, &name, "revoke", by).await,
            SkillsCommand::Remove { name } => {
                admin.remove(&name, by).await.map_err(fail)?;
                println!("removed `{name}`");
                Ok(0)
            }
        }
    })
}

async fn act(admin: &Admin, name: &str, action: &str, by: &str) -> anyhow::Result<u8> {
    let v = admin.act(name, action, by).await.map_err(fail)?;
    let s = &v["skill"];
    match s["reason"].as_str() {
        Some(r) => println!("`{name}`: {} ({r})", s["status"].as_str().unwrap_or("?")),
        None => println!("`{name}`: {}", s["status"].as_str().unwrap_or("?")),
    }
    Ok(0)
}

fn print_validation(v: &Value) {
    println!(
        "{} {} — sha256 {}",
        v["name"].as_str().unwrap_or("?"),
        v["version"].as_str().unwrap_or(""),
        v["sha256"].as_str().unwrap_or("")
    );
    println!("verdict: {}", v["verdict"].as_str().unwrap_or("?"));
    println!("permissions: {}", v["permissions"]);
    print_findings(&v["findings"]);
}

fn print_findings(f: &Value) {
    for x in f.as_array().into_iter().flatten() {
        println!(
            "  {:<5} {:<18} {}:{} {}",
            x["level"].as_str().unwrap_or(""),
            x["rule"].as_str().unwrap_or(""),
            x["file"].as_str().unwrap_or(""),
            x["line"],
            x["message"].as_str().unwrap_or("")
        );
    }
}

fn fail(e: SkillAdminError) -> anyhow::Error {
    Failure::usage(format!("{} ({})", e.message, e.code)).into()
}
