mod abuse;
mod common;
mod config_cmd;
mod e2e;
mod exec;
mod serve;
mod tokens;
mod tools_audit;
