//! The lab benchmark (`benches/lab.rs`): detection and isolation times on real daemons, and
//! a soak under 5 % loss.
//!
//! For each fault kind, `injections` times: wait a random time (uniform over two heartbeat
//! intervals, so faults land at every phase of the heartbeat schedule), inject, poll every
//! node's API every [`drill::POLL`] until the expected verdict, heal, wait for health. Prints
//! p50/p95/max of fault → correct verdict per node, of fault → agreed verdict / agreed
//! isolation, and of the agreement lag behind the later node's verdict, next to the targets of
//! the chosen timer profile ([`Profile`]). Soak: `soak` of 5 % random loss on every NIC;
//! every verdict other than healthy/degraded is reported (target: none).
//!
//! Must not: assert (figures are printed; tests assert behaviour).

use crate::lab::cluster::Cluster;
use crate::lab::drill::{self, fmt_duration, DrillOptions, MatrixRow};
use crate::lab::error::Result;
use crate::lab::fault::LabFault;
use crate::lab::interrupt;
use crate::lab::layout::LabSpec;
use crate::lab::observe;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub injections: usize,
    /// Timer profile of the lab's daemons.
    pub profile: Profile,
    /// Fault kinds to measure (names of [`KINDS`]); empty = all.
    pub kinds: Vec<String>,
    pub soak: Duration,
    pub exe: PathBuf,
    pub root: PathBuf,
}

/// Fault kinds: (name, docs/fault-matrix.md row).
pub const KINDS: [(&str, u8); 9] = [
    ("nic-down", 4),
    ("nic-silent", 5),
    ("hub-down", 6),
    ("upstream", 7),
    ("node-kill", 2),
    ("node-freeze", 3),
    ("serial-cut", 8),
    ("cut-off", 9),
    ("disk-fail", 10),
];

/// Heartbeat timers of the benchmarked lab; each profile carries its own targets (p95, ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// 100 ms × 3 (the default configuration).
    Standard,
    /// 20 ms × 3 (a fast profile for low-latency networks).
    Fast,
}

impl Profile {
    pub fn parse(s: &str) -> Option<Profile> {
        match s {
            "100ms" | "100" | "standard" => Some(Profile::Standard),
            "20ms" | "20" | "fast" => Some(Profile::Fast),
            _ => None,
        }
    }

    pub fn heartbeat_interval(self) -> Duration {
        match self {
            Profile::Standard => Duration::from_millis(100),
            Profile::Fast => Duration::from_millis(20),
        }
    }

    /// Target p95 of fault → verdict (ms) for a fault kind.
    pub fn verdict_target(self, kind: &str) -> Option<u64> {
        match (self, kind) {
            (Profile::Standard, "nic-down") => Some(100),
            (Profile::Standard, "nic-silent" | "hub-down" | "node-kill" | "node-freeze") => {
                Some(400)
            }
            (Profile::Standard, "upstream") => Some(700),
            (Profile::Fast, "nic-down" | "nic-silent" | "node-kill" | "node-freeze") => Some(100),
            _ => None,
        }
    }

    /// Target p95 of fault → agreed isolation (ms).
    pub fn isolation_target(self, kind: &str) -> Option<u64> {
        match (self, kind) {
            (Profile::Standard, "cut-off") => Some(500),
            _ => None,
        }
    }
}

/// Target of the agreement lag: agreement at most this long after the later node's verdict.
const AGREEMENT_LAG_TARGET_MS: u64 = 50;

fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    // Nearest-rank percentile.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

fn stats(mut v: Vec<Duration>) -> (String, String, String) {
    v.sort();
    (
        fmt_duration(percentile(&v, 50.0)),
        fmt_duration(percentile(&v, 95.0)),
        fmt_duration(v.last().copied()),
    )
}

pub fn run(opts: &BenchOptions, out: &mut dyn Write) -> Result<()> {
    interrupt::install();
    let stop = || interrupt::interrupted();
    let mut spec = LabSpec::two_node("bench").unique();
    let interval = opts.profile.heartbeat_interval();
    spec.heartbeat_interval = interval;
    let mut cluster = Cluster::build(&spec, &opts.root)?;
    cluster.start_daemons(&opts.exe)?;
    drill::wait_healthy(&cluster, Duration::from_secs(30), &stop)?;
    // The phase seed is printed so a run's injection times can be replayed.
    let phase_seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut phase = ChaCha12Rng::seed_from_u64(phase_seed);
    let _ = writeln!(out, "hadiag lab bench: 2 nodes, networks A+B, serial; heartbeat {} ms × {}; {} injections per kind, each after a uniform random wait of 0-{} ms (phase seed {phase_seed}); poll {:?}", interval.as_millis(), spec.detect_multiplier, opts.injections, 2 * interval.as_millis(), drill::POLL);
    let matrix: BTreeMap<u8, MatrixRow> = drill::design_matrix(Duration::ZERO)
        .into_iter()
        .map(|r| (r.number, r))
        .collect();
    let dopts = DrillOptions::default();
    let _ = writeln!(
        out,
        "{:<12} {:<14} {:>4} {:>9} {:>9} {:>9} {:>7} {:>8}",
        "fault", "measure", "n", "p50", "p95", "max", "misses", "target"
    );
    let mut coarse = false;
    for (name, row_no) in KINDS {
        let (target, iso_target) = (
            opts.profile.verdict_target(name),
            opts.profile.isolation_target(name),
        );
        if opts.injections == 0 || !opts.kinds.is_empty() && !opts.kinds.iter().any(|k| k == name) {
            continue;
        }
        let Some(row) = matrix.get(&row_no) else {
            continue;
        };
        let mut detect: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
        let mut agreed = Vec::new();
        let mut agreed_log = Vec::new();
        let mut isolated = Vec::new();
        let mut lag = Vec::new();
        let mut misses = 0usize;
        let mut log_timed = 0usize;
        for _ in 0..opts.injections {
            if stop() {
                break;
            }
            // Uniform over two heartbeat intervals: the fault lands at any phase of the
            // schedule (a fixed pause would hit the same phase every time).
            std::thread::sleep(Duration::from_micros(
                phase.gen_range(0..2 * interval.as_micros() as u64),
            ));
            let r = drill::run_row(&mut cluster, row, &dopts, &stop)?;
            coarse |= r.coarse && log_timed == 0;
            // Prefer the daemons' own log timestamps (µs) over polling (20 ms, or 1 s from
            // status files); fall back per measurement.
            for (n, d) in &r.detect {
                let precise = r.detect_log.get(n).copied().flatten();
                match (d, precise) {
                    (Some(_), Some(p)) => {
                        log_timed += 1;
                        detect.entry(n.clone()).or_default().push(p)
                    }
                    (Some(d), None) => detect.entry(n.clone()).or_default().push(*d),
                    (None, _) => misses += 1,
                }
            }
            agreed.extend(r.agreement);
            // Agreement from the logs: the last reporter's own verdict time.
            if !r.detect_log.is_empty() && r.detect_log.values().all(Option::is_some) {
                let later = r.detect_log.values().flatten().max().copied();
                agreed_log.extend(later);
                // How long after the later node's own verdict both were seen agreeing (polled,
                // so it carries up to one poll interval of resolution).
                if let (Some(later), Some(a)) = (later, r.agreement) {
                    lag.push(a.saturating_sub(later));
                }
            }
            isolated.extend(
                r.isolation_log
                    .filter(|_| r.isolation.is_some())
                    .or(r.isolation),
            );
            if !r.ok() {
                let _ = writeln!(out, "  ({name}: {})", r.problems.join("; "));
            }
        }
        let tgt = |t: Option<u64>| t.map_or("-".to_string(), |t| format!("≤{t} ms"));
        let mut row = |measure: &str, v: &[Duration], misses: String, target: String| {
            let (p50, p95, max) = stats(v.to_vec());
            let _ = writeln!(
                out,
                "{:<12} {:<14} {:>4} {:>9} {:>9} {:>9} {:>7} {:>8}",
                name,
                measure,
                v.len(),
                p50,
                p95,
                max,
                misses,
                target
            );
        };
        for (node, v) in &detect {
            row(
                &format!("verdict {node}"),
                v,
                misses.to_string(),
                tgt(target),
            );
        }
        if !agreed_log.is_empty() {
            row("agreed (log)", &agreed_log, String::new(), tgt(None));
        }
        row("agreed (poll)", &agreed, String::new(), tgt(None));
        if !lag.is_empty() {
            row(
                "agree lag",
                &lag,
                String::new(),
                tgt(Some(AGREEMENT_LAG_TARGET_MS)),
            );
        }
        if !isolated.is_empty() {
            row("isolation", &isolated, String::new(), tgt(iso_target));
        }
        let _ = out.flush();
    }
    let _ = writeln!(out, "verdict/isolation times: from the daemons' log timestamps (µs) where present, else polled; \"agreed (log)\" = the last reporter's logged verdict; \"agreed (poll)\" = all reporters polled on the same verdict and incident; \"agree lag\" = agreed (poll) minus the later node's logged verdict (poll resolution {:?}). Targets are p95.", drill::POLL);
    if coarse {
        let _ = writeln!(out, "note: some verdicts came from the daemons' status files (rewritten once a second), not the JSON API: polled figures have ~1 s resolution.");
    }
    if opts.soak > Duration::ZERO && !stop() {
        soak(&mut cluster, opts.soak, out, &stop)?;
    }
    let problems = cluster.teardown();
    if !problems.is_empty() {
        let _ = writeln!(out, "teardown problems: {problems:?}");
    }
    Ok(())
}

fn soak(
    cluster: &mut Cluster,
    length: Duration,
    out: &mut dyn Write,
    stop: &dyn Fn() -> bool,
) -> Result<()> {
    let fault = LabFault::Loss { percent: 5 };
    cluster.inject(&fault)?;
    let start = Instant::now();
    let mut reads = 0u64;
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    let mut bad: Vec<String> = Vec::new();
    let mut unexpected_reads = 0u64;
    while start.elapsed() < length && !stop() {
        for (node, v) in observe::all_verdicts(cluster.layout()) {
            reads += 1;
            match v {
                Ok(v) => {
                    *kinds.entry(v.kind.clone()).or_default() += 1;
                    let unexpected =
                        !matches!(v.kind.as_str(), "healthy" | "degraded") || v.isolated;
                    unexpected_reads += u64::from(unexpected);
                    // Bounded report: the first 50 are enough to see what went wrong.
                    if unexpected && bad.len() < 50 {
                        bad.push(format!(
                            "{:>7.1} s {node}: {}",
                            start.elapsed().as_secs_f64(),
                            v.short()
                        ));
                    }
                }
                Err(e) => {
                    if bad.len() < 50 {
                        bad.push(format!(
                            "{:>7.1} s {node}: API: {e}",
                            start.elapsed().as_secs_f64()
                        ));
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    cluster.heal(&fault)?;
    let _ = writeln!(
        out,
        "\nsoak: {:.0} s of 5 % loss on every NIC, {reads} verdict reads ({unexpected_reads} other than healthy/degraded, target 0): {kinds:?}",
        start.elapsed().as_secs_f64()
    );
    if bad.is_empty() {
        let _ = writeln!(
            out,
            "soak: no verdict other than healthy/degraded (target: none) ✓"
        );
    } else {
        let _ = writeln!(
            out,
            "soak: {} verdicts other than healthy/degraded:",
            bad.len()
        );
        for b in bad {
            let _ = writeln!(out, "  {b}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Some(Duration::from_millis(10)));
        assert_eq!(percentile(&v, 95.0), Some(Duration::from_millis(19)));
        assert_eq!(percentile(&v, 100.0), Some(Duration::from_millis(20)));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
