//! Long seed sweeps of the deterministic cluster simulation (docs/architecture.md#testing, rung 2).
//!
//! ```text
//! cargo run --release --example sim_sweep -- --seeds 100000 [--start 0] [--threads 2] [--codec]
//! cargo run --release --example sim_sweep -- --seed 1234 --verbose   # replay one seed
//! ```
//!
//! Prints seeds/s and virtual seconds per wall second; exits non-zero on the first violation,
//! printing the seed (replay with `SIM_SEED=<n> cargo test --test sim_sweep`) and its schedule.
//! With `--keep-going` it runs every seed, prints each violation's seed and invariant, and ends
//! with the count per invariant.

use hadiag::sim::sweep::config_for_seed;
use hadiag::sim::{run_seed, Sim};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant as WallClock;

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let codec = args.iter().any(|a| a == "--codec");
    if let Some(seed) = arg::<u64>(&args, "--seed") {
        let mut config = config_for_seed(seed, codec);
        config.record_events = true;
        let mut sim = Sim::new(SimConfig::clone(&config));
        let result = sim.run();
        if args.iter().any(|a| a == "--verbose") {
            for e in &sim.events {
                println!(
                    "{} {} {:?}",
                    e.at,
                    sim.topology.nodes[e.node.index()].name,
                    short(&e.event)
                );
            }
        }
        if args.iter().any(|a| a == "--verbose") {
            for (i, sn) in sim.nodes.iter().enumerate() {
                if let Some(n) = sn.node.as_ref() {
                    println!(
                        "--- n{} at {}: role {:?} stats {:?}",
                        i + 1,
                        sim.now,
                        n.role(),
                        n.stats()
                    );
                    println!("{}", n.diagnosis().render(&sim.topology));
                    println!("own view: {:?}", n.own_view(sim.now));
                }
            }
        }
        let report = run_seed(seed, codec);
        println!("{}", report.description);
        println!(
            "trace hash {:016x}, judged {:?}",
            report.trace_hash, report.judged
        );
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(v) => {
                println!("{v}");
                ExitCode::FAILURE
            }
        };
    }
    let seeds: u64 = arg(&args, "--seeds").unwrap_or(10_000);
    let start: u64 = arg(&args, "--start").unwrap_or(0);
    let threads: u64 = arg(&args, "--threads").unwrap_or(2).max(1);
    let next = AtomicU64::new(start);
    let done = AtomicU64::new(0);
    let virtual_ns = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let keep_going = args.iter().any(|a| a == "--keep-going");
    let tally: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>> =
        std::sync::Mutex::new(std::collections::BTreeMap::new());
    let t0 = WallClock::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= start + seeds || (failed.load(Ordering::Relaxed) && !keep_going) {
                    break;
                }
                let r = run_seed(seed, codec);
                virtual_ns.fetch_add(r.virtual_time.as_nanos() as u64, Ordering::Relaxed);
                if let Some(v) = &r.violation {
                    failed.store(true, Ordering::Relaxed);
                    if let Ok(mut t) = tally.lock() {
                        *t.entry(v.invariant).or_default() += 1;
                    }
                    if keep_going {
                        eprintln!("FAILED seed {seed}: {v}");
                    } else {
                        eprintln!(
                            "FAILED {v}\n{}replay: SIM_SEED={seed} cargo test --test sim_sweep",
                            r.description
                        );
                    }
                }
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n % 10_000 == 0 {
                    let secs = t0.elapsed().as_secs_f64();
                    eprintln!("{n} seeds, {:.0} seeds/s", n as f64 / secs);
                }
            });
        }
    });
    let secs = t0.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    let vsecs = virtual_ns.load(Ordering::Relaxed) as f64 / 1e9;
    println!(
        "{n} seeds in {secs:.1} s: {:.0} seeds/s, {:.0} virtual s per wall s ({threads} threads)",
        n as f64 / secs,
        vsecs / secs
    );
    let tally = tally.into_inner().unwrap_or_default();
    let total: u64 = tally.values().sum();
    println!("violations: {total} {tally:?}");
    if failed.load(Ordering::Relaxed) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

use hadiag::core::node::Event;
use hadiag::sim::SimConfig;

fn short(e: &Event) -> String {
    match e {
        Event::DiagnosisChanged { diagnosis, .. } => {
            format!(
                "verdict {} {:?} ambiguous={}",
                diagnosis.kind.token(),
                diagnosis.subjects,
                diagnosis.ambiguous
            )
        }
        other => format!("{other:?}"),
    }
}
