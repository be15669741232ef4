//! `pincer config path|validate|get|set`.

use pincer_config::{get_value, parse_and_validate, save, set_value};

use crate::cli::ConfigCommand;
use crate::runtime;
use crate::{Env, Failure};

pub(crate) fn run(cmd: ConfigCommand, env: &Env) -> anyhow::Result<u8> {
    let home = runtime::home(env)?;
    let path = home.config_path();
    match cmd {
        ConfigCommand::Path => println!("{}", path.display()),
        ConfigCommand::Validate => {
            let text = read(&path)?;
            parse_and_validate(&path, &text)?;
            println!("ok: {}", path.display());
        }
        ConfigCommand::Get { key } => {
            let loaded = runtime::load_config(&home, env)?;
            println!("{}", get_value(&loaded.config, &key)?.trim_end());
        }
        ConfigCommand::Set { key, value } => {
            let text = read(&path)?;
            parse_and_validate(&path, &text).map_err(|e| {
                Failure::usage(format!(
                    "{e}\nconfig.toml must be valid before `config set` can change it"
                ))
            })?;
            let updated = set_value(&path, &text, &key, &value)?;
            let saved = save(&home, &updated)?;
            runtime::audit_config(
                &home,
                &saved,
                env,
                "config.set",
                serde_json::json!({"key": key, "value": value, "file": path, "by": "operator:cli"}),
            );
            println!("set {key} = {value}");
        }
    }
    Ok(0)
}

fn read(path: &std::path::Path) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(pincer_config::ConfigError::NotFound {
                path: path.to_owned(),
            }
            .into())
        }
        Err(e) => Err(Failure::usage(format!("{}: {e}", path.display())).into()),
    }
}
