//! Test stand-in for the `pincer` binary: only the sandbox helper entry point.

fn main() {
    pincer_sandbox::run_if_helper();
    eprintln!("pincer-sandbox-helper: only runs as `__pincer-sandbox <stage> <spec>`");
    std::process::exit(2);
}
