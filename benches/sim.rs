//! Simulation speed: seeds per second and virtual seconds per wall second, on 1 and 2 threads
//! (target: ≥ 1,000 seeds/s on 2 threads). `cargo bench --bench sim` (harness = false), or
//! `cargo run --release --example sim_sweep -- --seeds 2000 --threads 2`.

use hadiag::sim::run_seed;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this binary without it,
    // as a smoke run that keeps the suite short.
    let full = std::env::args().any(|a| a == "--bench");
    for (codec, threads) in [(false, 1), (true, 1), (false, 2)] {
        let seeds = if full { 500u64 * threads } else { 10 };
        let next = AtomicU64::new(0);
        let virtual_ns = AtomicU64::new(0);
        let t0 = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= seeds {
                        break;
                    }
                    let r = run_seed(seed, codec);
                    virtual_ns.fetch_add(r.virtual_time.as_nanos() as u64, Ordering::Relaxed);
                });
            }
        });
        let wall = t0.elapsed().as_secs_f64();
        let virtual_s = virtual_ns.load(Ordering::Relaxed) as f64 / 1e9;
        println!(
            "sim (codec {codec}): {seeds} seeds in {wall:.2} s = {:.0} seeds/s, {:.0} virtual s per wall s ({threads} thread{}){}",
            seeds as f64 / wall,
            virtual_s / wall,
            if threads > 1 { "s" } else { "" },
            if threads == 2 { " (target ≥ 1000 seeds/s)" } else { "" }
        );
    }
}
