//! Model pinning (B3): which of an agent's models answers a conversation. The agent's chain
//! (`agents.<id>.models`) is its default and its limit; a conversation can prefer another alias
//! of that chain (the chain still falls back) or insist on it (`strict`: fail rather than
//! switch). `/model` in chat and Telegram shows and sets it; `pincer ask --model` picks one for
//! one run.

use pincer_store::{Backend, ModelPin, SessionInfo};
use pincer_types::{AgentId, SessionKey};

/// What `/model [alias [strict] | default]` answers, after setting the pin when asked to.
///
/// # Errors
/// When the store cannot be read or written.
pub async fn model_command(
    store: &dyn Backend,
    key: &SessionKey,
    agent: &AgentId,
    chain: &[String],
    arg: &str,
) -> Result<String, pincer_store::StoreError> {
    let mut words = arg.split_whitespace();
    let (wanted, mode) = (words.next(), words.next());
    if chain.is_empty() {
        return Ok(format!(
            "Agent `{agent}` answers here with its one model; it has no others to choose from (agents.{agent}.models)."
        ));
    }
    let choices = chain.join(", ");
    let Some(wanted) = wanted else {
        let session: SessionInfo = store.current_session(key, agent).await?;
        let now = match &session.pin {
            None => format!("`{}` (the agent's default)", chain[0]),
            Some(p) if p.strict => {
                format!("`{}` (chosen here, strict: never another model)", p.alias)
            }
            Some(p) => format!(
                "`{}` (chosen here; falls back along the chain when it fails)",
                p.alias
            ),
        };
        return Ok(format!(
            "Agent `{agent}` answers here with {now}.\nModels: {choices}.\n/model <name> [strict] chooses one, /model default goes back."
        ));
    };
    if wanted == "default" {
        store.set_model_pin(key, None).await?;
        return Ok(format!(
            "Back to the agent's default model, `{}`.",
            chain[0]
        ));
    }
    if !chain.iter().any(|a| a == wanted) {
        return Ok(format!(
            "`{wanted}` is not one of this agent's models: {choices}."
        ));
    }
    let strict = match mode {
        None | Some("prefer") => false,
        Some("strict") => true,
        Some(other) => {
            return Ok(format!(
                "`{other}`? Use /model {wanted} or /model {wanted} strict."
            ));
        }
    };
    store
        .set_model_pin(
            key,
            Some(&ModelPin {
                alias: wanted.to_owned(),
                strict,
            }),
        )
        .await?;
    Ok(if strict {
        format!("This conversation now uses `{wanted}` only; if it fails, the answer fails.")
    } else {
        format!(
            "This conversation now uses `{wanted}`, falling back along the chain when it fails."
        )
    })
}
