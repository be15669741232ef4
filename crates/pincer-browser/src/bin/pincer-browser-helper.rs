//! The sandbox helper entry point alone, for this crate's tests (production uses `pincer`).

fn main() {
    pincer_sandbox::run_if_helper();
    eprintln!("pincer-browser-helper: only runs as the sandbox helper");
    std::process::exit(2);
}
