//! The `pincer` binary: parse arguments, call the library.

fn main() -> std::process::ExitCode {
    // Before anything else (no threads yet): the sandbox helper re-executes this binary.
    pincer_sandbox::run_if_helper();
    pincer_cli::main_entry()
}
