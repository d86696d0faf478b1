//! Pacemaker node health from hadiag verdicts.
//!
//! On every verdict change the daemon hands the diagnosis to [`PacemakerHealth::publish`];
//! it works out, per node the verdict concerns, a health colour and the verdict kind, and a
//! worker thread brings Pacemaker's attribute manager in line with `attrd_updater`:
//!
//! - [`HEALTH_ATTRIBUTE`] (`#health-hadiag`) = `red` | `yellow` on the node concerned, for
//!   Pacemaker's `node-health-strategy` (`migrate-on-red` moves resources off a red node);
//! - [`VERDICT_ATTRIBUTE`] (`hadiag-verdict`) = the verdict kind (e.g. `attachment_failed`),
//!   for location rules;
//!
//! and deletes both again when the node is no longer concerned (heal).
//!
//! Colours: a failed NIC, disk or the node itself (crashed, frozen, cut off) is `red`; a
//! degradation (lossy path, slow disk) is `yellow`; so is an *ambiguous* failure verdict —
//! resources move on evidence, not on the classifier's tie-break. Hub, upstream and serial
//! faults concern no single node and set nothing.
//!
//! Every daemon publishes for every node its verdict concerns (a cut-off node cannot reach
//! the attribute manager of the others; its peer can). Writes are idempotent, so both sides
//! writing the same agreed verdict is harmless.
//!
//! Bounds: one `attrd_updater` process at a time, each killed after the configured timeout;
//! changes that arrive while one runs are coalesced (only the latest desired state is kept);
//! a failed update is retried with backoff ([`RETRY_MIN`] doubling to [`RETRY_MAX`]).
//!
//! Must not: block the caller (publish only swaps a value under a short lock), or touch an
//! attribute other than its own two.

use crate::core::classify::Diagnosis;
use crate::core::diagnosis::Component;
use crate::core::topology::Topology;
use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Node-health attribute (Pacemaker treats `#health*` attributes as node health).
pub const HEALTH_ATTRIBUTE: &str = "#health-hadiag";
/// Attribute naming the verdict kind that made the node unhealthy.
pub const VERDICT_ATTRIBUTE: &str = "hadiag-verdict";
/// Default `attrd_updater` command.
pub const DEFAULT_COMMAND: &str = "attrd_updater";
/// Default bound on one `attrd_updater` run (it normally answers in milliseconds; a hung
/// attribute manager must not hold later updates hostage for long).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// First retry after a failed update.
pub const RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest wait between retries.
pub const RETRY_MAX: Duration = Duration::from_secs(30);
/// Output kept from a failed run for the log.
const MAX_OUTPUT: u64 = 4096;

/// The `pacemaker:` configuration section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacemakerSpec {
    /// The `attrd_updater` command and any prefix (e.g. `[nsenter, -t, PID, -m, attrd_updater]`);
    /// hadiag appends `-n NAME -N NODE -U VALUE` or `-n NAME -N NODE -D`.
    pub command: Vec<String>,
    /// Bound on one run.
    pub timeout: Duration,
    /// After this long without a verdict change since start, the current verdict is
    /// published once anyway, so attributes left by an earlier run are cleared.
    pub initial_sync_after: Duration,
}

impl PacemakerSpec {
    /// Defaults for everything but the start-up sync, which follows `fence_deadline` (by
    /// then every verdict about the start has settled).
    pub fn with_defaults(fence_deadline: Duration) -> PacemakerSpec {
        PacemakerSpec {
            command: vec![DEFAULT_COMMAND.to_string()],
            timeout: DEFAULT_TIMEOUT,
            initial_sync_after: fence_deadline,
        }
    }
}

/// Pacemaker's health colours.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    Yellow,
    Red,
}

impl Health {
    pub fn token(self) -> &'static str {
        match self {
            Health::Yellow => "yellow",
            Health::Red => "red",
        }
    }
}

/// What the attributes of one node should say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeHealth {
    pub health: Health,
    /// Verdict kind token.
    pub verdict: String,
}

/// Node name → its attributes; a node absent here has none (green).
pub type HealthMap = BTreeMap<String, NodeHealth>;

/// The attributes a diagnosis calls for.
pub fn node_health(topo: &Topology, d: &Diagnosis) -> HealthMap {
    let mut out = HealthMap::new();
    let node_of = |c: &Component| match *c {
        Component::Node(n) | Component::Attachment(n, _) | Component::Disk(n) => Some(n),
        Component::Hub(_) | Component::Upstream(_) | Component::Serial(..) => None,
    };
    let failure = if d.ambiguous {
        Health::Yellow
    } else {
        Health::Red
    };
    let mut mark = |c: &Component, h: Health| {
        if let Some(n) = node_of(c) {
            let e = out
                .entry(topo.node_name(n).to_string())
                .or_insert(NodeHealth {
                    health: h,
                    verdict: d.kind.token().to_string(),
                });
            e.health = e.health.max(h);
        }
    };
    for f in &d.faults {
        mark(&f.component, failure);
    }
    for c in &d.subjects {
        if matches!(c, Component::Node(_)) {
            mark(c, failure);
        }
    }
    for f in &d.degradations {
        mark(&f.component, Health::Yellow);
    }
    out
}

/// One `attrd_updater` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttrOp {
    Set {
        node: String,
        name: &'static str,
        value: String,
    },
    Delete {
        node: String,
        name: &'static str,
    },
}

impl AttrOp {
    /// Arguments appended to the configured command.
    pub fn args(&self) -> Vec<String> {
        match self {
            AttrOp::Set { node, name, value } => vec![
                "-n".into(),
                (*name).into(),
                "-N".into(),
                node.clone(),
                "-U".into(),
                value.clone(),
            ],
            AttrOp::Delete { node, name } => {
                vec![
                    "-n".into(),
                    (*name).into(),
                    "-N".into(),
                    node.clone(),
                    "-D".into(),
                ]
            }
        }
    }
}

/// The calls that take Pacemaker from `applied` to `desired`. `applied == None` means
/// unknown (first sync after start): every node of `all_nodes` not in `desired` is cleared.
pub fn plan(applied: Option<&HealthMap>, desired: &HealthMap, all_nodes: &[String]) -> Vec<AttrOp> {
    let mut ops = Vec::new();
    for (node, want) in desired {
        let have = applied.and_then(|a| a.get(node));
        if have.map(|h| h.health) != Some(want.health) {
            ops.push(AttrOp::Set {
                node: node.clone(),
                name: HEALTH_ATTRIBUTE,
                value: want.health.token().into(),
            });
        }
        if have.map(|h| &h.verdict) != Some(&want.verdict) {
            ops.push(AttrOp::Set {
                node: node.clone(),
                name: VERDICT_ATTRIBUTE,
                value: want.verdict.clone(),
            });
        }
    }
    let stale: Vec<&String> = match applied {
        Some(a) => a.keys().filter(|n| !desired.contains_key(*n)).collect(),
        None => all_nodes
            .iter()
            .filter(|n| !desired.contains_key(*n))
            .collect(),
    };
    for node in stale {
        for name in [HEALTH_ATTRIBUTE, VERDICT_ATTRIBUTE] {
            ops.push(AttrOp::Delete {
                node: node.clone(),
                name,
            });
        }
    }
    ops
}

/// Runs `command ++ args` with stdin closed; Err (with the output head) on a non-zero
/// exit, a spawn failure or `timeout` (the process is killed and reaped).
pub fn run_bounded(command: &[String], args: &[String], timeout: Duration) -> Result<(), String> {
    let (program, prefix) = command
        .split_first()
        .ok_or_else(|| "empty command".to_string())?;
    let mut child = Command::new(program)
        .args(prefix)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{program} timed out after {timeout:?}; killed"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("waiting for {program}: {e}")),
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut err = String::new();
    if let Some(e) = child.stderr.take() {
        let _ = e.take(MAX_OUTPUT).read_to_string(&mut err);
    }
    Err(format!(
        "{program} {} failed ({status}): {}",
        args.join(" "),
        err.trim()
    ))
}

#[derive(Debug, Default)]
struct Slot {
    desired: Option<HealthMap>,
    /// Bumped on every change of `desired`.
    generation: u64,
    stop: bool,
}

type Shared = Arc<(Mutex<Slot>, Condvar)>;

/// The daemon's handle: publish verdicts; a worker thread applies them.
#[derive(Debug)]
pub struct PacemakerHealth {
    topo: Topology,
    spec: PacemakerSpec,
    shared: Shared,
    published: bool,
    worker: Option<JoinHandle<()>>,
}

impl PacemakerHealth {
    /// Starts the worker thread.
    pub fn start(topo: &Topology, spec: PacemakerSpec) -> std::io::Result<PacemakerHealth> {
        let shared: Shared = Arc::new((Mutex::new(Slot::default()), Condvar::new()));
        let all_nodes: Vec<String> = topo.nodes.iter().map(|n| n.name.clone()).collect();
        let worker = {
            let shared = shared.clone();
            let spec = spec.clone();
            std::thread::Builder::new()
                .name("hadiag-pacemaker".into())
                .spawn(move || worker(&shared, &spec, &all_nodes))?
        };
        Ok(PacemakerHealth {
            topo: topo.clone(),
            spec,
            shared,
            published: false,
            worker: Some(worker),
        })
    }

    /// A verdict changed: bring the attributes in line (asynchronously, coalesced).
    pub fn publish(&mut self, d: &Diagnosis) {
        self.published = true;
        let want = node_health(&self.topo, d);
        let (lock, cv) = &*self.shared;
        let mut slot = lock.lock().unwrap_or_else(|p| p.into_inner());
        if slot.desired.as_ref() != Some(&want) {
            slot.desired = Some(want);
            slot.generation += 1;
            cv.notify_all();
        }
    }

    /// Housekeeping: once `initial_sync_after` has passed since start without any verdict
    /// change, publish the current verdict (clears what an earlier run left behind).
    pub fn tick(&mut self, since_start: Duration, current: &Diagnosis) {
        if !self.published && since_start >= self.spec.initial_sync_after {
            self.publish(current);
        }
    }
}

impl Drop for PacemakerHealth {
    fn drop(&mut self) {
        let (lock, cv) = &*self.shared;
        lock.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        cv.notify_all();
        // Not joined: a run in progress ends within its timeout and the thread then exits;
        // the daemon's shutdown must not wait for Pacemaker.
        drop(self.worker.take());
    }
}

fn worker(shared: &Shared, spec: &PacemakerSpec, all_nodes: &[String]) {
    let (lock, cv) = &**shared;
    let mut applied: Option<HealthMap> = None;
    let mut done_generation = 0u64;
    let mut failed_generation: Option<u64> = None;
    let mut backoff = RETRY_MIN;
    let mut retry_at: Option<Instant> = None;
    loop {
        let (want, generation) = {
            let mut slot = lock.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if slot.stop {
                    return;
                }
                // A newer desired state goes out at once; a failed one waits for its retry.
                let fresh = slot.generation != done_generation
                    && failed_generation != Some(slot.generation);
                let due = retry_at.is_some_and(|t| Instant::now() >= t);
                if fresh || due {
                    break;
                }
                slot = match retry_at {
                    Some(t) => {
                        let wait = t.saturating_duration_since(Instant::now());
                        cv.wait_timeout(slot, wait)
                            .unwrap_or_else(|p| p.into_inner())
                            .0
                    }
                    None => cv.wait(slot).unwrap_or_else(|p| p.into_inner()),
                };
            }
            (slot.desired.clone().unwrap_or_default(), slot.generation)
        };
        let ops = plan(applied.as_ref(), &want, all_nodes);
        let mut failed = None;
        for op in &ops {
            if lock.lock().unwrap_or_else(|p| p.into_inner()).stop {
                return;
            }
            if let Err(e) = run_bounded(&spec.command, &op.args(), spec.timeout) {
                failed = Some(e);
                break;
            }
            tracing::debug!(?op, "pacemaker attribute updated");
        }
        match failed {
            None => {
                if !ops.is_empty() {
                    tracing::info!(
                        nodes = ?want.iter().map(|(n, h)| format!("{n}={}/{}", h.health.token(), h.verdict)).collect::<Vec<_>>(),
                        updates = ops.len(),
                        "pacemaker node health updated"
                    );
                }
                applied = Some(want);
                done_generation = generation;
                failed_generation = None;
                backoff = RETRY_MIN;
                retry_at = None;
            }
            Some(e) => {
                // `applied` stays as it was: the retry replays every call (they are
                // idempotent), or a newer desired state replaces this one.
                tracing::warn!(error = %e, retry_in = ?backoff, "pacemaker node health not updated");
                failed_generation = Some(generation);
                retry_at = Some(Instant::now() + backoff);
                backoff = (backoff * 2).min(RETRY_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(items: &[(&str, Health, &str)]) -> HealthMap {
        items
            .iter()
            .map(|(n, h, v)| {
                (
                    n.to_string(),
                    NodeHealth {
                        health: *h,
                        verdict: v.to_string(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn colours_follow_the_faults_and_ambiguity_only_warns() {
        use crate::core::diagnosis::{Fault, FaultMode, VerdictKind};
        use crate::core::time::Instant;
        use crate::core::topology::{NetworkId, NodeId};
        let topo = Topology::mesh("c", &["n1", "n2"], &["A", "B"]);
        let mut d = Diagnosis::healthy(NodeId(0), Instant::ZERO, Vec::new(), &topo);
        assert!(node_health(&topo, &d).is_empty(), "healthy sets nothing");
        d.kind = VerdictKind::AttachmentFailed;
        d.subjects = vec![Component::Attachment(NodeId(1), NetworkId(0))];
        d.faults = vec![Fault {
            component: Component::Attachment(NodeId(1), NetworkId(0)),
            mode: FaultMode::Down,
        }];
        d.degradations = vec![Fault {
            component: Component::Disk(NodeId(0)),
            mode: FaultMode::Slow,
        }];
        let h = node_health(&topo, &d);
        assert_eq!(h["n2"].health, Health::Red);
        assert_eq!(h["n2"].verdict, "attachment_failed");
        assert_eq!(h["n1"].health, Health::Yellow, "slow disk: a degradation");
        d.ambiguous = true;
        assert_eq!(node_health(&topo, &d)["n2"].health, Health::Yellow);
        d.ambiguous = false;
        d.kind = VerdictKind::HubFailed;
        d.subjects = vec![Component::Hub(NetworkId(0))];
        d.faults = vec![Fault {
            component: Component::Hub(NetworkId(0)),
            mode: FaultMode::Down,
        }];
        d.degradations.clear();
        assert!(
            node_health(&topo, &d).is_empty(),
            "a hub concerns no single node"
        );
        d.kind = VerdictKind::CutOff;
        d.subjects = vec![Component::Node(NodeId(1))];
        d.faults.clear();
        assert_eq!(node_health(&topo, &d)["n2"].health, Health::Red);
    }

    #[test]
    fn first_sync_clears_every_node_not_concerned() {
        let nodes = vec!["n1".to_string(), "n2".to_string()];
        let ops = plan(None, &map(&[("n2", Health::Red, "cut_off")]), &nodes);
        assert_eq!(ops.len(), 4, "{ops:?}");
        assert!(ops.contains(&AttrOp::Delete {
            node: "n1".into(),
            name: HEALTH_ATTRIBUTE
        }));
        assert!(ops.contains(&AttrOp::Set {
            node: "n2".into(),
            name: HEALTH_ATTRIBUTE,
            value: "red".into()
        }));
    }

    #[test]
    fn only_changes_are_written_and_heal_deletes() {
        let nodes = vec!["n1".to_string(), "n2".to_string()];
        let a = map(&[("n2", Health::Red, "attachment_failed")]);
        let b = map(&[("n2", Health::Red, "multiple_faults")]);
        assert_eq!(
            plan(Some(&a), &b, &nodes),
            vec![AttrOp::Set {
                node: "n2".into(),
                name: VERDICT_ATTRIBUTE,
                value: "multiple_faults".into()
            }]
        );
        let healed = plan(Some(&b), &HealthMap::new(), &nodes);
        assert_eq!(healed.len(), 2);
        assert!(healed
            .iter()
            .all(|o| matches!(o, AttrOp::Delete { node, .. } if node == "n2")));
        assert!(plan(Some(&b), &b, &nodes).is_empty());
    }

    fn example_with(extra: &str) -> Result<crate::config::Config, crate::config::ConfigErrors> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/two-node.yaml");
        let text = std::fs::read_to_string(&path).expect("example config");
        crate::config::load_str(&format!("{text}\n{extra}\n"), &path)
    }

    #[test]
    fn config_section_is_optional_and_checked() {
        assert_eq!(example_with("").expect("example loads").pacemaker, None);
        let c = example_with("pacemaker: {}").expect("defaults");
        let p = c.pacemaker.expect("enabled");
        assert_eq!(p.command, vec![DEFAULT_COMMAND.to_string()]);
        assert_eq!(p.timeout, DEFAULT_TIMEOUT);
        assert_eq!(p.initial_sync_after, c.topology.timing.fence_deadline);
        let c = example_with("pacemaker: { command: [sudo, attrd_updater], timeout: 3s }")
            .expect("explicit");
        let p = c.pacemaker.expect("enabled");
        assert_eq!(
            p.command,
            vec!["sudo".to_string(), "attrd_updater".to_string()]
        );
        assert_eq!(p.timeout, Duration::from_secs(3));
        let e = example_with("pacemaker: { timeout: soon }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pacemaker.timeout"), "{e}");
        let e = example_with("pacemaker: { comand: [x] }")
            .unwrap_err()
            .to_string();
        assert!(e.contains("command"), "{e}");
    }

    #[test]
    fn bounded_run_reports_failure_and_timeout() {
        let sh = |s: &str| vec!["sh".to_string(), "-c".to_string(), s.to_string()];
        assert!(run_bounded(&sh("exit 0"), &[], Duration::from_secs(5)).is_ok());
        let e = run_bounded(&sh("echo nope >&2; exit 3"), &[], Duration::from_secs(5)).unwrap_err();
        assert!(e.contains("nope"), "{e}");
        let e = run_bounded(&sh("sleep 30"), &[], Duration::from_millis(200)).unwrap_err();
        assert!(e.contains("timed out"), "{e}");
        assert!(run_bounded(&[], &[], Duration::from_secs(1)).is_err());
    }
}
