//! Fault drills on a running lab: the public fault matrix of docs/fault-matrix.md as data
//! ([`design_matrix`]), and [`run_row`], which injects a row's faults, polls every node's API
//! until the expected verdict appears (per node and agreed), checks isolation hooks, heals and
//! waits for health again. Shared by `hadiag lab demo`, the end-to-end tests and the bench.
//!
//! Timing is measured with the monotonic clock of this process from just before the
//! injection; polling every [`POLL`] bounds the measurement error. Must not: leave a fault
//! injected when it returns (it heals also on timeout and interruption).

use crate::lab::cluster::Cluster;
use crate::lab::error::{LabError, Result};
use crate::lab::fault::LabFault;
use crate::lab::observe::{self, NodeVerdict};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// API polling period during a drill (measurement resolution of detection times).
pub const POLL: Duration = Duration::from_millis(20);

/// What a row expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Every reporter must reach verdict `kind` whose subjects contain every needle; if
    /// `isolates` is set, that node must report isolated and its isolate hook run, and
    /// `takes_over` must run its takeover hook.
    Verdict {
        kind: &'static str,
        needles: Vec<String>,
        isolates: Option<String>,
        takes_over: Option<String>,
    },
    /// For `hold`, every reporter's verdict must stay within `allowed` kinds.
    Steady {
        allowed: Vec<&'static str>,
        hold: Duration,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatrixRow {
    /// Row number in docs/fault-matrix.md.
    pub number: u8,
    pub title: String,
    pub faults: Vec<LabFault>,
    /// Nodes whose API is read (a killed or frozen node cannot answer).
    pub reporters: Vec<String>,
    pub expect: Expect,
}

/// The fault matrix of docs/fault-matrix.md for a lab with nodes n1, n2 and networks A, B (row 12,
/// "heal after each", is part of every [`run_row`]). `steady` is the hold time of rows 1
/// and 11 (the design says 10 minutes for row 1; drills usually hold less).
pub fn design_matrix(steady: Duration) -> Vec<MatrixRow> {
    let both = || vec!["n1".to_string(), "n2".to_string()];
    let n = |s: &str| s.to_string();
    let verdict = |kind, needles: &[&str]| Expect::Verdict {
        kind,
        needles: needles.iter().map(|s| s.to_string()).collect(),
        isolates: None,
        takes_over: None,
    };
    vec![
        MatrixRow {
            number: 1,
            title: "none".into(),
            faults: vec![],
            reporters: both(),
            expect: Expect::Steady {
                allowed: vec!["healthy"],
                hold: steady,
            },
        },
        MatrixRow {
            number: 2,
            title: "n2 killed (SIGKILL)".into(),
            faults: vec![LabFault::NodeKilled { node: n("n2") }],
            reporters: vec![n("n1")],
            expect: Expect::Verdict {
                kind: "node_failed",
                needles: vec![n("n2")],
                isolates: None,
                takes_over: Some(n("n1")),
            },
        },
        MatrixRow {
            number: 3,
            title: "n2 frozen (SIGSTOP)".into(),
            faults: vec![LabFault::NodeFrozen { node: n("n2") }],
            reporters: vec![n("n1")],
            expect: Expect::Verdict {
                kind: "node_failed",
                needles: vec![n("n2")],
                isolates: None,
                takes_over: Some(n("n1")),
            },
        },
        MatrixRow {
            number: 4,
            title: "n2's NIC on A set down".into(),
            faults: vec![LabFault::NicDown {
                node: n("n2"),
                network: n("A"),
            }],
            reporters: both(),
            expect: verdict("attachment_failed", &["n2.A"]),
        },
        MatrixRow {
            number: 5,
            title: "n2's NIC on A silent (carrier up)".into(),
            faults: vec![LabFault::NicSilent {
                node: n("n2"),
                network: n("A"),
            }],
            reporters: both(),
            expect: verdict("attachment_failed", &["n2.A"]),
        },
        MatrixRow {
            number: 6,
            title: "hub A down".into(),
            faults: vec![LabFault::HubDown { network: n("A") }],
            reporters: both(),
            expect: verdict("hub_failed", &["hub A"]),
        },
        MatrixRow {
            number: 7,
            title: "router of A down".into(),
            faults: vec![LabFault::RouterDown { network: n("A") }],
            reporters: both(),
            expect: verdict("upstream_failed", &["A"]),
        },
        MatrixRow {
            number: 8,
            title: "serial line cut".into(),
            faults: vec![LabFault::SerialCut {
                a: n("n1"),
                b: n("n2"),
            }],
            reporters: both(),
            expect: verdict("serial_failed", &["serial", "n1", "n2"]),
        },
        MatrixRow {
            number: 9,
            title: "n2's NICs on A and B both down".into(),
            faults: vec![
                LabFault::NicDown {
                    node: n("n2"),
                    network: n("A"),
                },
                LabFault::NicDown {
                    node: n("n2"),
                    network: n("B"),
                },
            ],
            reporters: both(),
            expect: Expect::Verdict {
                kind: "cut_off",
                needles: vec![n("n2")],
                isolates: Some(n("n2")),
                takes_over: Some(n("n1")),
            },
        },
        MatrixRow {
            number: 10,
            title: "n2's disk returns EIO".into(),
            faults: vec![LabFault::DiskFailing { node: n("n2") }],
            reporters: both(),
            expect: verdict("disk_failed", &["n2"]),
        },
        MatrixRow {
            number: 11,
            title: "5 % random loss on every NIC".into(),
            faults: vec![LabFault::Loss { percent: 5 }],
            reporters: both(),
            expect: Expect::Steady {
                allowed: vec!["healthy", "degraded"],
                hold: steady,
            },
        },
    ]
}

/// Limits of one drill row.
#[derive(Clone, Debug)]
pub struct DrillOptions {
    /// How long to wait for the expected verdict (per row).
    pub verdict_timeout: Duration,
    /// How long to wait for every node to be healthy again after the heal.
    pub heal_timeout: Duration,
}

impl Default for DrillOptions {
    fn default() -> Self {
        DrillOptions {
            verdict_timeout: Duration::from_secs(15),
            heal_timeout: Duration::from_secs(30),
        }
    }
}

/// What one row did.
#[derive(Clone, Debug, Default)]
pub struct RowResult {
    pub number: u8,
    pub title: String,
    /// Fault → first correct verdict, per reporting node (None: never within the timeout).
    pub detect: BTreeMap<String, Option<Duration>>,
    /// Fault → all reporters on the correct verdict with the same incident id.
    pub agreement: Option<Duration>,
    /// Fault → the isolating node reports isolated and its hook ran (isolation rows).
    pub isolation: Option<Duration>,
    /// Last verdict read from each reporter before healing.
    pub verdicts: BTreeMap<String, String>,
    /// The incident every reporter agreed on (its id), once they agreed.
    pub incident: Option<String>,
    /// Fault → the heal began (the fault's span; the hold time of steady rows).
    pub heal_started: Option<Duration>,
    /// Heal → every node healthy and not isolated.
    pub healed: Option<Duration>,
    pub problems: Vec<String>,
    /// Some verdict was read from the status file (1 s resolution) instead of the API.
    pub coarse: bool,
    /// Fault → the daemon's own "diagnosis changed" log line, per reporter (µs timestamps,
    /// independent of polling); None when the log shows no such line.
    pub detect_log: BTreeMap<String, Option<Duration>>,
    /// Fault → the later of the "isolating this node" / "taking over" log lines.
    pub isolation_log: Option<Duration>,
}

impl RowResult {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn read(cluster: &Cluster, node: &str) -> std::result::Result<NodeVerdict, String> {
    let n = cluster.layout().node(node).map_err(|e| e.to_string())?;
    observe::node_verdict(n).map_err(|e| e.to_string())
}

/// Waits until every node of the lab reports `healthy` (and not isolated), without a break
/// for twice the detection time; returns when that healthy stretch began. A daemon says `healthy` from its first moment, before warm-up
/// has shown it anything; the hold is what makes the word mean "settled".
pub fn wait_healthy(
    cluster: &Cluster,
    within: Duration,
    stop: &dyn Fn() -> bool,
) -> Result<Duration> {
    let start = Instant::now();
    let layout = cluster.layout();
    let hold = Duration::from_millis(
        2 * layout.heartbeat_interval_ms * u64::from(layout.detect_multiplier),
    );
    let mut all_since: Option<Instant> = None;
    let names: Vec<String> = cluster
        .layout()
        .nodes
        .iter()
        .map(|n| n.name.clone())
        .collect();
    let mut last = BTreeMap::new();
    loop {
        let mut all = true;
        for n in &names {
            let v = read(cluster, n);
            let ok = matches!(&v, Ok(v) if v.kind == "healthy" && !v.isolated);
            all &= ok;
            last.insert(n.clone(), v.map(|v| v.short()).unwrap_or_else(|e| e));
        }
        if !all {
            all_since = None;
        } else {
            let since = *all_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= hold {
                // Healed when health began, not when the hold ended.
                return Ok(since - start);
            }
        }
        if stop() {
            return Err(LabError::Spec("interrupted".into()));
        }
        if start.elapsed() > within {
            return Err(LabError::Timeout {
                what: format!("every node healthy (last: {last:?})"),
                waited: within,
            });
        }
        std::thread::sleep(POLL);
    }
}

/// Runs one row: inject, observe, heal, wait for health. Always heals before returning.
pub fn run_row(
    cluster: &mut Cluster,
    row: &MatrixRow,
    opts: &DrillOptions,
    stop: &dyn Fn() -> bool,
) -> Result<RowResult> {
    let mut res = RowResult {
        number: row.number,
        title: row.title.clone(),
        ..RowResult::default()
    };
    for r in &row.reporters {
        res.detect.insert(r.clone(), None);
    }
    let marks_before: BTreeMap<String, (usize, usize)> = cluster
        .layout()
        .nodes
        .iter()
        .map(|n| {
            (
                n.name.clone(),
                (
                    observe::isolate_calls(n).len(),
                    observe::takeover_calls(n).len(),
                ),
            )
        })
        .collect();
    let offsets: BTreeMap<String, u64> = cluster
        .layout()
        .nodes
        .iter()
        .map(|n| (n.name.clone(), observe::log_offset(n)))
        .collect();
    let t0_wall = std::time::SystemTime::now();
    let t0 = Instant::now();
    let mut inject_err = None;
    for f in &row.faults {
        if let Err(e) = cluster.inject(f) {
            inject_err = Some(e);
            break;
        }
    }
    if let Some(e) = inject_err {
        heal_row(cluster, row);
        return Err(e);
    }
    match &row.expect {
        Expect::Steady { allowed, hold } => {
            while t0.elapsed() < *hold && !stop() {
                for r in &row.reporters {
                    match read(cluster, r) {
                        Ok(v) => {
                            if !allowed.contains(&v.kind.as_str()) || v.isolated {
                                res.problems.push(format!(
                                    "{r} at {:?}: {} (allowed: {})",
                                    t0.elapsed(),
                                    v.short(),
                                    allowed.join("/")
                                ));
                            }
                            res.verdicts.insert(r.clone(), v.short());
                        }
                        Err(e) => res.problems.push(format!("{r}: API: {e}")),
                    }
                }
                res.problems.dedup();
                if res.problems.len() > 20 {
                    break; // enough evidence; bound the report
                }
                std::thread::sleep(POLL * 5);
            }
        }
        Expect::Verdict {
            kind,
            needles,
            isolates,
            takes_over,
        } => {
            let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
            loop {
                let now = t0.elapsed();
                let mut views: BTreeMap<String, NodeVerdict> = BTreeMap::new();
                for r in &row.reporters {
                    match read(cluster, r) {
                        Ok(v) => {
                            res.coarse |= !v.from_api;
                            if v.matches(kind, &needles) {
                                res.detect.entry(r.clone()).or_default().get_or_insert(now);
                            }
                            res.verdicts.insert(r.clone(), v.short());
                            views.insert(r.clone(), v);
                        }
                        Err(e) => {
                            res.verdicts.insert(r.clone(), format!("(API: {e})"));
                        }
                    }
                }
                let all_match = views.len() == row.reporters.len()
                    && views.values().all(|v| v.matches(kind, &needles));
                let ids: Vec<&Option<String>> = views.values().map(|v| &v.incident).collect();
                let same_incident = ids.windows(2).all(|w| w[0] == w[1]);
                if all_match && same_incident && res.agreement.is_none() {
                    res.agreement = Some(now);
                    res.incident = views.values().next().and_then(|v| v.incident.clone());
                }
                if res.isolation.is_none() {
                    let iso_ok = match isolates {
                        None => true,
                        Some(n) => {
                            let node = cluster.layout().node(n)?;
                            views.get(n).is_some_and(|v| v.isolated)
                                && observe::isolate_calls(node).len()
                                    > marks_before.get(n).map_or(0, |m| m.0)
                        }
                    };
                    let take_ok = match takes_over {
                        None => true,
                        Some(n) => {
                            let node = cluster.layout().node(n)?;
                            observe::takeover_calls(node).len()
                                > marks_before.get(n).map_or(0, |m| m.1)
                        }
                    };
                    if iso_ok && take_ok && (isolates.is_some() || takes_over.is_some()) {
                        res.isolation = Some(now);
                    }
                }
                let isolation_done =
                    (isolates.is_none() && takes_over.is_none()) || res.isolation.is_some();
                if res.agreement.is_some() && isolation_done {
                    break;
                }
                if stop() {
                    res.problems.push("interrupted".into());
                    break;
                }
                if now > opts.verdict_timeout {
                    for (r, t) in &res.detect {
                        if t.is_none() {
                            res.problems.push(format!(
                                "{r}: no {kind} [{}] within {:?} (last: {})",
                                needles.join(", "),
                                opts.verdict_timeout,
                                res.verdicts.get(r).cloned().unwrap_or_default()
                            ));
                        }
                    }
                    if res.agreement.is_none() {
                        res.problems.push(
                            "no agreement (same verdict and incident on every reporter)".into(),
                        );
                    }
                    if !isolation_done {
                        res.problems.push(format!(
                            "isolation not observed (isolates: {isolates:?}, takes over: {takes_over:?})"
                        ));
                    }
                    break;
                }
                std::thread::sleep(POLL);
            }
            // Precise times from the daemons' logs (before healing adds more lines).
            let since = |e: &observe::LogEvent| e.at.duration_since(t0_wall).ok();
            let events = |n: &str| -> Vec<observe::LogEvent> {
                match cluster.layout().node(n) {
                    Ok(node) => {
                        observe::log_events_since(node, offsets.get(n).copied().unwrap_or(0))
                    }
                    Err(_) => Vec::new(),
                }
            };
            for r in &row.reporters {
                let ev = events(r);
                res.detect_log.insert(
                    r.clone(),
                    observe::first_diagnosis(&ev, kind, &needles).and_then(since),
                );
            }
            if isolates.is_some() || takes_over.is_some() {
                let iso = isolates.as_deref().map(|n| {
                    observe::first_message(&events(n), "isolating this node").and_then(since)
                });
                let take = takes_over
                    .as_deref()
                    .map(|n| observe::first_message(&events(n), "taking over").and_then(since));
                res.isolation_log = match (iso, take) {
                    (Some(None), _) | (_, Some(None)) => None,
                    (a, b) => a.flatten().max(b.flatten()),
                };
            }
            // S2: nobody else isolated.
            for n in &cluster.layout().nodes {
                if isolates.as_deref() != Some(n.name.as_str()) {
                    let before = marks_before.get(&n.name).map_or(0, |m| m.0);
                    if observe::isolate_calls(n).len() > before {
                        res.problems.push(format!(
                            "{} ran its isolate hook (needless isolation)",
                            n.name
                        ));
                    }
                }
            }
        }
    }
    res.heal_started = Some(t0.elapsed());
    heal_row(cluster, row);
    match wait_healthy(cluster, opts.heal_timeout, stop) {
        Ok(d) => res.healed = Some(d),
        Err(e) => res.problems.push(format!("after heal: {e}")),
    }
    Ok(res)
}

fn heal_row(cluster: &mut Cluster, row: &MatrixRow) {
    for f in row.faults.iter().rev() {
        if let Err(e) = cluster.heal(f) {
            eprintln!("hadiag lab: heal {f}: {e}");
        }
    }
}

/// `12.3 ms` / `1.24 s` / `—`.
pub fn fmt_duration(d: Option<Duration>) -> String {
    d.map_or_else(|| "—".into(), crate::core::time::fmt_duration)
}
