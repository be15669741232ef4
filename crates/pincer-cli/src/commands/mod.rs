//! One module per subcommand.

mod approvals;
mod ask;
mod audit;
mod chat;
mod config;
mod cron;
mod doctor;
mod gc;
mod heartbeat;
mod init;
mod mcp;
mod memory;
mod models;
mod output;
mod pairing;
mod sandbox;
mod secrets;
mod security;
mod service;
mod skills;
mod storage;
mod tasks;
mod tokens;
mod tools;
mod usage;
mod users;

use crate::Env;
use crate::cli::{Cli, Command};

pub(crate) fn dispatch(cli: Cli, env: &Env) -> anyhow::Result<u8> {
    match cli.command {
        Command::Init(args) => init::run(args, env),
        Command::Ask(args) => ask::run(args, env),
        Command::Run(args) => {
            if args.server.is_some() || env.var("PINCER_URL").is_some() {
                tasks::run_remote(args, env)
            } else {
                ask::run(
                    crate::cli::AskArgs {
                        message: args.message,
                        agent: args.agent,
                        session: None,
                        model: None,
                        strict: false,
                        json: false,
                        artifacts: true,
                    },
                    env,
                )
            }
        }
        Command::Chat(args) => chat::run(args, env),
        Command::Config { command } => config::run(command, env),
        Command::Doctor(args) => doctor::run(args, env),
        Command::Tools { command } => tools::run(command, env),
        Command::Audit { command } => audit::run(command, env),
        Command::Sandbox { command } => sandbox::run(command, env),
        Command::Mcp { command } => mcp::run(command, env),
        Command::Skills { command } => skills::run(command, env),
        Command::Secrets { command } => secrets::run(command, env),
        Command::Gc { dry_run, json } => gc::run(dry_run, json, env),
        Command::Service { command } => match command {
            crate::cli::ServiceCommand::Unit(a) => service::run(false, a.system, a.run_as, env),
            crate::cli::ServiceCommand::Install(a) => service::run(true, a.system, a.run_as, env),
        },
        Command::Security {
            command: crate::cli::SecurityCommand::Audit { json },
        } => security::run(json, env),
        Command::Tokens { command } => tokens::run(command, env),
        Command::Pairing { command } => pairing::run(command, env),
        Command::Invites { command } => pairing::invites(command, env),
        Command::Users { command } => users::run(command, env),
        Command::Ui { command } => users::ui(command, env),
        Command::Emergency { command } => users::emergency(command, env),
        Command::Cron { command } => cron::run(command, env),
        Command::Heartbeat { command } => heartbeat::run(command, env),
        Command::Models { command } => models::run(command, env),
        Command::Usage(args) => usage::run(args, env),
        Command::Memory { command } => memory::run(command, env),
        Command::Storage { command } => storage::run(command, env),
        Command::Approvals { server, command } => {
            if server.is_some() || env.var("PINCER_URL").is_some() {
                tasks::approvals_remote(server, command, env)
            } else {
                approvals::run(command, env)
            }
        }
        Command::Tasks { server, command } => tasks::run(server, command, env),
        Command::Serve(args) => {
            let role = match args.role {
                crate::cli::ServeRole::All => pincer_server::Role::All,
                crate::cli::ServeRole::Gateway => pincer_server::Role::Gateway,
                crate::cli::ServeRole::Worker => pincer_server::Role::Worker,
            };
            pincer_server::serve(
                pincer_server::ServeOptions {
                    bind: args.bind,
                    role,
                },
                env,
            )
        }
    }
}
