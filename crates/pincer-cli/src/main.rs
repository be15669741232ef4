//! The `pincer` binary: parse arguments, call the library.

fn main() -> std::process::ExitCode {
    pincer_cli::main_entry()
}
