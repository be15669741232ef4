//! Micro benchmarks live in `benches/`; this crate has no code of its own. Run them with
//! `cargo bench -p pincer-bench`. The macro benchmarks (server, memory, latency) are
//! `bench/run.py`; see docs/PERFORMANCE.md.
