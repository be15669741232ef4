//! `pincer chat`: a REPL that keeps its session. `/new` starts a fresh session (the old one stays
//! in the store), `/reset` clears the current session's history, `/exit` (or end of input) quits.

use std::io::Write;

use tokio::io::{AsyncBufReadExt, BufReader};

use pincer_types::{RunEvent, SessionKey};
use tokio_util::sync::CancellationToken;

use super::output;
use crate::cli::ChatArgs;
use crate::runtime::{self, AgentRuntime};
use crate::{Env, Failure};

const HELP: &str = "commands: /new (fresh session), /reset (clear this session), /model [name [strict] | default] (which model answers), /exit, /help";

pub(crate) fn run(args: ChatArgs, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    let rt = runtime::tokio_runtime()?;
    let result = rt.block_on(async {
        let agent = AgentRuntime::build(
            &home,
            &loaded.config,
            &args.agent,
            env,
            runtime::interactive_approver(env),
            runtime::Backing::open(&home, &loaded.config, env).await?,
        )
        .await?;
        let key = SessionKey::for_peer(&agent.agent, "cli", &args.session)
            .map_err(|e| Failure::usage(e.to_string()))?;
        let mut session = agent.store.current_session(&key, &agent.agent).await?;
        if env.stdin_tty {
            println!(
                "pincer chat — agent `{}`, session `{}`. {HELP}",
                agent.agent, args.session
            );
        }
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        loop {
            if env.stdin_tty {
                print!("you> ");
                let _ = std::io::stdout().flush();
            }
            // Ctrl-C at the prompt quits; during an answer it cancels only that answer.
            let line = tokio::select! {
                line = lines.next_line() => line?,
                _ = tokio::signal::ctrl_c() => {
                    println!();
                    None
                }
            };
            let Some(line) = line else { break };
            let text = line.trim();
            match text {
                "" => continue,
                "/exit" | "/quit" => break,
                "/help" => println!("{HELP}"),
                "/new" => {
                    session = agent.store.new_session(&key, &agent.agent).await?;
                    println!("(new session {})", session.id);
                }
                "/reset" => {
                    agent.store.clear_messages(session.id).await?;
                    println!("(session history cleared)");
                }
                _ if text == "/model" || text.starts_with("/model ") => {
                    let chain = loaded
                        .config
                        .agents
                        .get(&agent.agent)
                        .map(|a| a.models.clone())
                        .unwrap_or_default();
                    let reply = pincer_server::pins::model_command(
                        &*agent.store,
                        &key,
                        &agent.agent,
                        &chain,
                        text.trim_start_matches("/model").trim(),
                    )
                    .await?;
                    println!("{reply}");
                    // The next turn reads the pin with its session.
                    session = agent.store.current_session(&key, &agent.agent).await?;
                }
                _ if text.starts_with('/') => println!("unknown command {text}. {HELP}"),
                _ => {
                    let cancel = CancellationToken::new();
                    let guard = output::cancel_on_ctrl_c(&cancel);
                    let stream = env.stdout_tty;
                    let mut printer = output::streaming_printer();
                    let mut quiet = |_: &RunEvent| {};
                    let on_event: &mut (dyn FnMut(&RunEvent) + Send) =
                        if stream { &mut printer } else { &mut quiet };
                    let outcome = agent
                        .runner
                        .run(
                            agent.request(session.clone(), text.to_owned()),
                            cancel,
                            on_event,
                        )
                        .await?;
                    guard.abort();
                    // A failed turn is reported and the conversation goes on.
                    output::report(&outcome, stream, false);
                }
            }
        }
        Ok(0)
    });
    // Tokio's stdin reader may still be blocked in read(2); do not wait for it.
    rt.shutdown_background();
    result
}
