//! `pincer memory search|show`: an operator's view of an agent's notes (A7), through the same
//! confinement as the agent's tools (file names only, no links followed).

use pincer_server::memory_index::{Embedder, MemoryIndex};
use pincer_tools::memory::{LONG_TERM, MemoryDir};

use crate::cli::MemoryCommand;
use crate::{Env, Failure, runtime};

pub(crate) fn run(cmd: MemoryCommand, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    let config = &loaded.config;
    let dir = |agent: &str| -> anyhow::Result<MemoryDir> {
        let (id, a) = runtime::agent_config(&home, config, agent)?;
        Ok(MemoryDir::new(&home.agent_dir(&id)).with_tz(a.timezone.clone()))
    };
    let index = |agent: &str, rt: &tokio::runtime::Runtime| -> anyhow::Result<MemoryIndex> {
        let (id, _) = runtime::agent_config(&home, config, agent)?;
        let store = rt.block_on(runtime::open_store(&home, config, env))?;
        Ok(MemoryIndex::new(
            store,
            id.as_str(),
            &home.agent_dir(&id),
            Embedder::from_config(&config.memory, env)?,
        ))
    };
    match cmd {
        MemoryCommand::Search {
            query,
            agent,
            limit,
            json,
        } => {
            let rt = runtime::tokio_runtime()?;
            let idx = index(&agent, &rt)?;
            let found = rt
                .block_on(idx.find(&query.join(" "), limit.clamp(1, 1000)))
                .map_err(|e| Failure::usage(format!("memory search: {e}")))?;
            let (hits, skipped) = (found.hits, found.notes);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"results": hits, "notes": skipped})
                    )?
                );
                return Ok(0);
            }
            for s in &skipped {
                eprintln!("note: {s}");
            }
            if hits.is_empty() {
                println!("no notes match");
            }
            for h in &hits {
                println!("{}:{}  {}", h.file, h.line, h.snippet);
            }
            Ok(0)
        }
        MemoryCommand::Reindex { agent } => {
            let rt = runtime::tokio_runtime()?;
            let idx = index(&agent, &rt)?;
            let notes = rt
                .block_on(idx.reindex())
                .map_err(|e| Failure::usage(format!("memory reindex: {e}")))?;
            for n in &notes {
                eprintln!("note: {n}");
            }
            println!("reindexed agent {agent}'s memory");
            Ok(0)
        }
        MemoryCommand::Show { file, agent, list } => {
            let mem = dir(&agent)?;
            if list {
                for f in mem.files() {
                    println!("{f}");
                }
                return Ok(0);
            }
            let name = match file.as_deref() {
                None => LONG_TERM.to_owned(),
                Some("today") => mem.today_file(),
                Some(f) => f.to_owned(),
            };
            match mem.read(&name) {
                Ok(Some(text)) => {
                    print!("{text}");
                    Ok(0)
                }
                Ok(None) => Err(Failure::usage(format!("{name}: no such memory file")).into()),
                Err(e) => Err(Failure::usage(format!("{name}: {e}")).into()),
            }
        }
    }
}
