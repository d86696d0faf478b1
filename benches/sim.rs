//! Simulation speed: seeds per second and virtual seconds per wall second.
//! `cargo bench --bench sim` (harness = false), or until the [[bench]] entry exists:
//! `cargo run --release --example sim_sweep -- --seeds 2000 --threads 1`.

use hadiag::sim::run_seed;
use std::time::Instant;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // as a smoke run that keeps the suite short.
    let full = std::env::args().any(|a| a == "--bench");
    for codec in [false, true] {
        let seeds = if full { 500u64 } else { 10 };
        let t0 = Instant::now();
        let mut virtual_s = 0.0;
        for seed in 0..seeds {
            let r = run_seed(seed, codec);
            virtual_s += r.virtual_time.as_secs_f64();
        }
        let wall = t0.elapsed().as_secs_f64();
        println!(
            "sim (codec {codec}): {seeds} seeds in {wall:.2} s = {:.0} seeds/s, {:.0} virtual s per wall s (1 thread)",
            seeds as f64 / wall,
            virtual_s / wall
        );
    }
}
