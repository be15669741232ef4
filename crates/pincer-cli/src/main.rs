//! The `pincer` binary: parse arguments, call the library.

fn main() -> std::process::ExitCode {
    // Descriptors inherited from whatever started us (`exec 7<secret` in a shell) must not pass
    // into any child: sandboxed commands, bubblewrap, tool servers. Best effort: the helper
    // repeats this before it executes a command and fails closed there.
    let _ = pincer_sandbox::fds::seal_inherited();
    // Before anything else (no threads yet): the sandbox helper re-executes this binary.
    pincer_sandbox::run_if_helper();
    pincer_cli::main_entry()
}
