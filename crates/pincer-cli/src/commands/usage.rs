//! `pincer usage`: tokens and cost per agent, session, user or model (B4).

use chrono::Utc;
use pincer_store::{UsageBy, UsageFilter, parse_since};

use crate::cli::UsageArgs;
use crate::{Env, Failure, runtime};

pub(crate) fn run(args: UsageArgs, env: &Env) -> anyhow::Result<u8> {
    let by: UsageBy = args
        .by
        .parse()
        .map_err(|e: String| Failure::usage(format!("--by {e}")))?;
    let since = args
        .since
        .as_deref()
        .map(|s| parse_since(s, Utc::now()))
        .transpose()
        .map_err(|e| Failure::usage(format!("--since {e}")))?;
    let home = runtime::home(env)?;
    let loaded = runtime::load_config(&home, env)?;
    let rt = runtime::tokio_runtime()?;
    let store = rt.block_on(runtime::open_store(&home, &loaded.config, env))?;
    let rows = rt.block_on(store.usage_report(by, since))?;
    let total = rt.block_on(store.usage_total(&UsageFilter {
        since,
        ..UsageFilter::default()
    }))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "by": args.by, "since": since, "rows": rows, "total": total}))?
        );
        return Ok(0);
    }
    let cost = |t: &pincer_store::UsageTotal| {
        let mut s = format!("${:.4}", t.cost_usd);
        if t.unpriced_calls > 0 {
            s.push_str(&format!(" (+{} unpriced)", t.unpriced_calls));
        }
        s
    };
    println!(
        "{:<32} {:>7} {:>12} {:>12}  cost",
        args.by, "calls", "input", "output"
    );
    for r in &rows {
        println!(
            "{:<32} {:>7} {:>12} {:>12}  {}",
            r.key,
            r.calls,
            r.input_tokens,
            r.output_tokens,
            cost(r)
        );
    }
    println!(
        "{:<32} {:>7} {:>12} {:>12}  {}",
        "total",
        total.calls,
        total.input_tokens,
        total.output_tokens,
        cost(&total)
    );
    Ok(0)
}
