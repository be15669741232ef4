//! `pincer ask`: one question, one answer.

use std::io::Read;

use anyhow::Context as _;
use pincer_types::SessionKey;
use tokio_util::sync::CancellationToken;

use super::output;
use crate::cli::AskArgs;
use crate::runtime::{self, AgentRuntime};
use crate::{Env, Failure};

pub(crate) fn run(args: AskArgs, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    let message = if args.message.is_empty() || args.message == ["-"] {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the message from stdin")?;
        s
    } else {
        args.message.join(" ")
    };
    if message.trim().is_empty() {
        return Err(Failure::usage("the message is empty").into());
    }
    let rt = runtime::tokio_runtime()?;
    rt.block_on(async {
        let mut agent = AgentRuntime::build(
            &home,
            &loaded.config,
            &args.agent,
            env,
            runtime::interactive_approver(env),
            runtime::Backing::open(&home, &loaded.config, env).await?,
        )
        .await?;
        if let Some(alias) = &args.model {
            let chain = loaded
                .config
                .agents
                .get(&agent.agent)
                .map(|a| a.models.clone())
                .unwrap_or_default();
            agent.choose_model(alias, args.strict, &chain)?;
        }
        // Without --session every ask is a fresh conversation, so identical asks see identical
        // prompts; with it, the named session continues.
        let (peer, fresh) = match &args.session {
            Some(name) => (name.as_str(), false),
            None => ("ask", true),
        };
        let key = SessionKey::for_peer(&agent.agent, "cli", peer)
            .map_err(|e| Failure::usage(e.to_string()))?;
        let session = if fresh {
            agent.store.new_session(&key, &agent.agent).await?
        } else {
            agent.store.current_session(&key, &agent.agent).await?
        };
        let cancel = CancellationToken::new();
        let guard = output::cancel_on_ctrl_c(&cancel);
        let stream = env.stdout_tty && !args.json;
        let mut printer = output::streaming_printer();
        let mut quiet = |_: &pincer_types::RunEvent| {};
        let on_event: &mut (dyn FnMut(&pincer_types::RunEvent) + Send) =
            if stream { &mut printer } else { &mut quiet };
        let outcome = agent
            .runner
            .run(agent.request(session, message), cancel, on_event)
            .await?;
        guard.abort();
        let code = output::report(&outcome, stream, args.json);
        if args.artifacts && !args.json {
            eprintln!("artifacts: {}", outcome.bundle_dir.display());
        }
        Ok(code)
    })
}
