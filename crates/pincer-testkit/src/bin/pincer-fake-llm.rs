//! `pincer-fake-llm`: the test kit's fake model server as a program, for humans and benchmarks.
//!
//! Speaks OpenAI chat completions and Anthropic Messages on loopback. With `--script FILE` (a JSON
//! array of replies, see `pincer_testkit::Reply`) it answers from the script in order, then
//! falls back to the default reply (`echo: <last user message>`, or `--text`).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use pincer_testkit::{FakeLlm, Reply};

#[derive(Debug, Parser)]
#[command(
    name = "pincer-fake-llm",
    version,
    about = "A scripted fake model server on loopback"
)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// JSON file with an array of replies, used in order.
    #[arg(long)]
    script: Option<PathBuf>,
    /// Fixed text for every unscripted request (default: echo the last user message).
    #[arg(long, conflicts_with = "default")]
    text: Option<String>,
    /// JSON file with one reply for every unscripted request (e.g. a `when_asked` that calls a
    /// tool on each new turn and answers after the result).
    #[arg(long)]
    default: Option<PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let script: Vec<Reply> = match &args.script {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => Vec::new(),
    };
    let default = match (&args.default, args.text) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        (None, text) => text.map_or(Reply::Echo, Reply::text),
    };
    let server = FakeLlm::bind(
        SocketAddr::from(([127, 0, 0, 1], args.port)),
        script,
        default,
    )
    .await?;
    println!("pincer-fake-llm listening on {}", server.base_url());
    server.run_forever().await?;
    Ok(())
}
