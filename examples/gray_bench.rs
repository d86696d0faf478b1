//! Gray failures on the deterministic simulator: prints figures, asserts nothing.
//!
//! ```text
//! cargo run --release --example gray_bench [-- --runs 50 --soak-s 600]
//! ```
//!
//! 1. Detection time of a NIC that dies (carrier up, nothing passes) after 30 s of prior loss
//!    on it, at 0, 5, 20 and 50 %: time from the death to the first `attachment_failed` verdict
//!    naming it on the peer, over `--runs` seeds, the death at a random phase of the heartbeat
//!    schedule. Fault-matrix cluster (2 nodes, A and B with references, serial), 100 ms × 3.
//! 2. Soak: 20 % loss on n2.A for `--soak-s` virtual seconds: failure verdicts, incidents and
//!    the components named by degraded verdicts.

use hadiag::core::diagnosis::{Component, VerdictKind};
use hadiag::core::node::Event;
use hadiag::core::time::Instant;
use hadiag::core::topology::{NetworkId, NodeId};
use hadiag::sim::{AttachmentMode, Schedule, Shape, Sim, SimConfig, SimFault};
use std::collections::BTreeMap;
use std::time::Duration;

const N1: NodeId = NodeId(0);
const N2: NodeId = NodeId(1);
const A: NetworkId = NetworkId(0);

fn arg(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn att(mode: AttachmentMode) -> SimFault {
    SimFault::Attachment {
        node: N2,
        network: A,
        mode,
    }
}

fn config(seed: u64, schedule: Schedule, horizon: Duration) -> SimConfig {
    let mut c = SimConfig::new(Shape::matrix());
    c.seed = seed;
    c.timing.reference_timeout = Duration::from_millis(100);
    c.thresholds.reference_failures = 2;
    c.schedule = schedule;
    c.horizon = horizon;
    c.check = false;
    c
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn detection(runs: u64) {
    println!("detection of a NIC that dies after 30 s of prior loss on it (n2.A, seen by n1)");
    println!("prior loss | runs | median   | p90      | max      | silence cap");
    for permille in [0u16, 50, 200, 500] {
        let mut times = Vec::new();
        let mut missed = 0;
        let mut cap = Duration::ZERO;
        for run in 0..runs {
            // The death at a random phase of the 100 ms heartbeat schedule.
            let death =
                Instant::from_millis(35_000) + Duration::from_micros((run * 7_919) % 100_000);
            let mut schedule = Schedule::new().with(death, None, att(AttachmentMode::Silent));
            if permille > 0 {
                schedule = schedule.with(
                    Instant::from_millis(5_000),
                    Some(death),
                    att(AttachmentMode::Lossy { permille }),
                );
            }
            let mut sim = Sim::new(config(run, schedule, Duration::from_secs(40)));
            cap = sim.config.timing.silence_cap();
            if let Err(v) = sim.run() {
                println!("  run {run}: {v}");
            }
            let seen = sim.events.iter().find(|l| {
                l.node == N1
                    && l.at >= death
                    && matches!(&l.event, Event::DiagnosisChanged { diagnosis, .. }
                        if diagnosis.kind == VerdictKind::AttachmentFailed
                            && diagnosis.subjects.contains(&Component::Attachment(N2, A)))
            });
            match seen {
                Some(l) => times.push(l.at - death),
                None => missed += 1,
            }
        }
        times.sort();
        if times.is_empty() {
            println!("{:>9} % | none detected", f64::from(permille) / 10.0);
            continue;
        }
        println!(
            "{:>9} % | {:>4} | {:>6} ms | {:>6} ms | {:>6} ms | {} ms{}",
            f64::from(permille) / 10.0,
            times.len(),
            percentile(&times, 0.5).as_millis(),
            percentile(&times, 0.9).as_millis(),
            times[times.len() - 1].as_millis(),
            cap.as_millis(),
            if missed > 0 {
                format!(" ({missed} runs never reported it)")
            } else {
                String::new()
            }
        );
    }
}

fn soak(seconds: u64) {
    let start = Instant::from_millis(1_000);
    let schedule = Schedule::new().with(start, None, att(AttachmentMode::Lossy { permille: 200 }));
    let mut sim = Sim::new(config(1, schedule, Duration::from_secs(seconds)));
    if let Err(v) = sim.run() {
        println!("invariant: {v}");
    }
    let mut failures = 0;
    let mut incidents = 0;
    let mut degraded: BTreeMap<String, u64> = BTreeMap::new();
    let mut changes = 0;
    for l in &sim.events {
        match &l.event {
            Event::DiagnosisChanged { diagnosis, .. } => {
                changes += 1;
                if diagnosis.is_failure() {
                    failures += 1;
                }
                if diagnosis.kind == VerdictKind::Degraded {
                    let named = diagnosis
                        .degradations
                        .iter()
                        .map(|d| format!("{:?}", d.component))
                        .collect::<Vec<_>>()
                        .join(", ");
                    *degraded.entry(named).or_default() += 1;
                }
            }
            Event::IncidentOpened { .. } => incidents += 1,
            _ => {}
        }
    }
    println!(
        "soak: 20 % loss on n2.A for {seconds} s (virtual): {failures} failure verdicts (target 0), {incidents} incidents (target 0), {changes} verdict changes"
    );
    for (named, n) in degraded {
        println!("  degraded naming [{named}]: {n} times");
    }
}

fn main() {
    detection(arg("--runs").unwrap_or(50));
    soak(arg("--soak-s").unwrap_or(600));
}
