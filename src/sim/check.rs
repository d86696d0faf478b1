//! Safety invariants S1–S5 (docs/isolation-rules.md), judged against the simulator's ground truth after
//! every step.
//!
//! Random schedules combine faults freely, and several invariants only make sense for some
//! combinations, so each is judged exactly as follows. "Connected" means a working path in
//! both directions between two nodes: a serial line that is up, or a network both are attached
//! to where each one's attachment transmits and the other's receives, and the hub forwards
//! (random loss below 100 % does not disconnect). "Running" means powered on and not frozen;
//! "active" means running in role `Active`.
//!
//! - **S1 no split brain.** Sides = connected components of the running nodes. Two active
//!   nodes on different sides are a split. A split is *judged* when a fence hook is
//!   configured, or when one of the two sides reaches no reference (ground truth: no member's
//!   attachment, hub and upstream on a network with references all work), or when the cluster
//!   has three or more nodes (rule 4; one-way and non-transitive partitions included — their
//!   count is [`Judged::s1_irregular`]), or when a one-way link joins the two sides (the
//!   holder's claim reaches the other side, rule 8). A judged split that
//!   lasts longer than `fence_deadline + detect_time + 2 heartbeats + 2 hook delays +
//!   fence_stagger × (nodes − 1) + 0.5 s` violates S1. (Unjudged: a symmetric two-node
//!   partition where both sides reach references and no fence exists — the documented residual
//!   risk.)
//! - **S1′ takeover safety** (an extension): a node holding a peer's services (after
//!   `TakeOver`) while that peer is active and connected to it, for longer than
//!   `fence_deadline + 2 s`, violates S1; when the two are connected only through a third
//!   node (a non-transitive partition, rule 7), for longer than the S1 limit.
//! - **S5 one holder.** Holders of a node's services: the node while active, and every
//!   running node that claims them. Two holders that can talk (both ways, or the claim
//!   reaching the owner) for longer than `4 × heartbeat_interval + 2 hook delays + 0.2 s`
//!   violate S5.
//! - **S2 no needless isolation.** Judged at every `IsolateSelf`. It is needless when every
//!   fault active within the preceding `fence_deadline + self_fence_after + 2 s` is a single
//!   fault of the S2 classes — an attachment (any mode, also flapping), a hub, an upstream, a
//!   serial line, a slow disk (a failing or hung one too unless `isolate_on_disk_failure`) —
//!   possibly with loss ≤ 10 %, delay or reordering, *and* the running nodes stayed connected
//!   over networks (one component; a serial line alone is no path to serve clients on, so a
//!   node left with only its serial line is cut off, docs/diagnosis.md) over that whole time
//!   ("another path left"). No fault at all is needless too.
//! - **S6 loss is no failure** (gray failures). Judged at every isolation, takeover and fence
//!   and at every change to a failure verdict (not healthy, degraded): when every fault active
//!   within the S2 lookback is loss — a lossy attachment (also flapping), loss on every NIC —
//!   or delay or reordering, and the worst path (both attachments and the segment) loses at
//!   most [`S6_MAX_PATH_LOSS_PERMILLE`], the action or verdict violates S6. The verdict check
//!   allows the onset of a loss: a failure verdict within [`S6_ONSET_GRACE`] after a loss
//!   starts (or a flap turns it on) is counted in [`Judged::s6_onset`] instead, since before a
//!   path has lost anything its first burst of misses looks exactly like a dead NIC
//!   (docs/diagnosis.md, "Loss and silence").
//! - **S3 agreement.** Two running, connected nodes whose current incidents have the same id
//!   record the same verdict (kind and subjects).
//! - **S4 accuracy.** Judged only for *single-fault windows*: a fault of the fault matrix
//!   ([`SimFault::expected`]: node crash/freeze, attachment down/silent, hub, upstream,
//!   serial, failing/hung disk) with no other fault from 10 s before it until its deadline,
//!   lasting past the deadline, on a shape with ≥ 2 networks and references (what the matrix
//!   assumes), with no fenced node. At `start + deadline` ([`deadline`]: node/NIC/hub/serial
//!   500 ms, upstream 1 s, disk 3 s, stretched to what the reference probe timers allow) every running node except the failed one must hold the expected
//!   kind with the expected subject among its subjects. Heal: if the fault ends and nothing
//!   else happens from 10 s before it until 6 s after its end, every running node must be
//!   healthy (or degraded), with no open incident and in role `Active`, 6 s after the end.

use crate::core::diagnosis::{Component, VerdictKind};
use crate::core::node::{Event, Role};
use crate::core::time::Instant;
use crate::core::topology::{NodeId, Topology};
use crate::sim::fault::{AttachmentMode, DiskMode, FaultState, ScheduledFault, SimFault};
use crate::sim::world::{SimConfig, SimNode};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Quiet time required before a single fault for S4.
const S4_QUIET_BEFORE: Duration = Duration::from_secs(10);
/// Time after a heal by which everything must be healthy again.
pub const HEAL_DEADLINE: Duration = Duration::from_secs(6);
/// Global loss still counted as "within the degradation bound" for S2.
const S2_MAX_LOSS_PERMILLE: u16 = 100;
/// Worst path loss under which no failure verdict or action may come out (S6).
pub const S6_MAX_PATH_LOSS_PERMILLE: u32 = 300;
/// A failure verdict this soon after a loss starts is an onset miss, counted, not a violation.
pub const S6_ONSET_GRACE: Duration = Duration::from_secs(2);

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub invariant: &'static str,
    pub at: Instant,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} violated at {}: {}",
            self.invariant, self.at, self.detail
        )
    }
}

/// How often each invariant was actually judged (so a sweep can show it is not vacuous).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Judged {
    pub s1_splits: u64,
    /// Splits judged that are one-way or non-transitive (a subset of `s1_splits`).
    pub s1_irregular: u64,
    /// Pairs of nodes seen running the same node's services while able to talk.
    pub s5_pairs: u64,
    pub s2_isolations: u64,
    /// Actions and failure verdicts judged under loss only (S6).
    pub s6_judged: u64,
    /// Failure verdicts within the onset grace of a loss (S6, not violations).
    pub s6_onset: u64,
    pub s3_pairs: u64,
    pub s4_detections: u64,
    pub s4_heals: u64,
}

#[derive(Clone, Debug)]
struct S4Check {
    at: Instant,
    heal: bool,
    expected: (VerdictKind, Component),
    stopped: Option<NodeId>,
    fault: String,
}

/// Invariant state of one run.
#[derive(Clone, Debug)]
pub struct Checker {
    s1_limit: Duration,
    s1b_limit: Duration,
    s5_limit: Duration,
    lookback: Duration,
    fence_hook: bool,
    isolate_on_disk_failure: bool,
    /// Bidirectional connectivity between nodes (ignoring node liveness), per fault set.
    connected: Vec<Vec<bool>>,
    /// The same over networks only (a serial line is no path to serve clients on).
    net_connected: Vec<Vec<bool>>,
    /// One-way passes `a → b` on some path.
    passes: Vec<Vec<bool>>,
    reaches_reference: Vec<bool>,
    split_since: BTreeMap<(NodeId, NodeId), Instant>,
    conflict_since: BTreeMap<(NodeId, NodeId), Instant>,
    /// (owner, holder a, holder b) → since when both run the owner's services.
    holders_since: BTreeMap<(NodeId, NodeId, NodeId), Instant>,
    last_disconnected: Option<Instant>,
    s4: Vec<S4Check>,
    schedule: Vec<ScheduledFault>,
    pub judged: Judged,
    violation: Option<Violation>,
}

/// S4 deadline of a verdict kind under `t`: the budgets (node/NIC/hub 500 ms,
/// upstream 1 s, at heartbeat 100 ms × 3), stretched to what reference probing allows —
/// attachment and hub verdicts also rest on reference reachability, which takes
/// `reference_interval × reference_failures + reference_timeout` plus two ticks to turn.
pub fn deadline(
    kind: VerdictKind,
    t: &crate::core::topology::Timing,
    th: &crate::core::topology::Thresholds,
) -> Duration {
    let tick = t.heartbeat_interval * 2;
    let reference =
        t.reference_interval * th.reference_failures.max(1) + t.reference_timeout + tick;
    let detect = t.detect_time() + tick;
    match kind {
        VerdictKind::UpstreamFailed => Duration::from_secs(1).max(reference),
        // A hung read is reported after disk_timeout; EIO needs two samples.
        VerdictKind::DiskFailed => {
            Duration::from_secs(3).max(t.disk_interval * 2 + t.disk_timeout + tick)
        }
        VerdictKind::AttachmentFailed | VerdictKind::HubFailed => {
            Duration::from_millis(500).max(reference).max(detect)
        }
        _ => Duration::from_millis(500).max(detect),
    }
}

impl Checker {
    pub fn new(config: &SimConfig, topology: &Topology) -> Checker {
        let t = &config.timing;
        let n = topology.nodes.len();
        let s1_limit = t.fence_deadline
            + t.detect_time()
            + t.heartbeat_interval * 2
            + config.hook_delay * 2
            + config.options.fence_stagger * (n.saturating_sub(1) as u32)
            + Duration::from_millis(500);
        let mut s4 = Vec::new();
        let diagnosable = config.shape.networks >= 2 && config.shape.references;
        let faults = &config.schedule.faults;
        let horizon = Instant::ZERO + config.horizon;
        for (i, f) in faults.iter().enumerate() {
            let Some(expected) = f.fault.expected() else {
                continue;
            };
            if !diagnosable {
                continue;
            }
            if matches!(f.fault, SimFault::Disk { .. }) && config.options.isolate_on_disk_failure {
                continue;
            }
            let others_overlap = |from: Instant, to: Instant| {
                faults
                    .iter()
                    .enumerate()
                    .any(|(j, g)| j != i && g.start < to && g.end.is_none_or(|e| e > from))
            };
            let due = f.start + deadline(expected.0, &config.timing, &config.thresholds);
            if f.end.is_none_or(|e| e > due)
                && !others_overlap(f.start - S4_QUIET_BEFORE, due)
                && due < horizon
            {
                s4.push(S4Check {
                    at: due,
                    heal: false,
                    expected,
                    stopped: f.fault.stops_node(),
                    fault: f.fault.describe(topology),
                });
            }
            if let Some(end) = f.end {
                let healed = end + HEAL_DEADLINE;
                if healed < horizon && !others_overlap(f.start - S4_QUIET_BEFORE, healed) {
                    s4.push(S4Check {
                        at: healed,
                        heal: true,
                        expected,
                        stopped: None,
                        fault: f.fault.describe(topology),
                    });
                }
            }
        }
        s4.sort_by_key(|c| c.at);
        s4.reverse(); // pop from the back in time order
        let mut c = Checker {
            s1_limit,
            s1b_limit: t.fence_deadline + Duration::from_secs(2),
            // One heartbeat to carry the claim (a few, against loss), plus the hook time.
            s5_limit: t.heartbeat_interval * 4 + config.hook_delay * 2 + Duration::from_millis(200),
            lookback: t.fence_deadline + t.self_fence_after + Duration::from_secs(2),
            fence_hook: config.options.fence_hook,
            isolate_on_disk_failure: config.options.isolate_on_disk_failure,
            connected: vec![vec![true; n]; n],
            net_connected: vec![vec![true; n]; n],
            passes: vec![vec![true; n]; n],
            reaches_reference: vec![config.shape.references; n],
            split_since: BTreeMap::new(),
            conflict_since: BTreeMap::new(),
            holders_since: BTreeMap::new(),
            last_disconnected: None,
            s4,
            schedule: faults.clone(),
            judged: Judged::default(),
            violation: None,
        };
        c.recompute(&FaultState::default(), topology);
        c
    }

    fn recompute(&mut self, faults: &FaultState, t: &Topology) {
        let n = t.nodes.len();
        for a in 0..n {
            let na = NodeId(a as u16);
            self.reaches_reference[a] = t.nodes[a].interfaces.iter().any(|i| {
                !t.network(i.network).references.is_empty()
                    && faults.reference_reachable(na, i.network)
            });
            for b in 0..n {
                if a == b {
                    continue;
                }
                let nb = NodeId(b as u16);
                let serial =
                    t.nodes[a].serial.iter().any(|s| s.peer == nb) && faults.serial_up(na, nb);
                let net = |x: NodeId, y: NodeId| {
                    t.nodes[a].interfaces.iter().any(|i| {
                        t.nodes[b].interface(i.network).is_some()
                            && faults.network_passes(x, y, i.network)
                            && faults.attachment_loss(x, i.network) < 1000
                            && faults.attachment_loss(y, i.network) < 1000
                    })
                };
                self.passes[a][b] = serial || net(na, nb);
                let both = t.nodes[a].interfaces.iter().any(|i| {
                    t.nodes[b].interface(i.network).is_some()
                        && faults.network_passes(na, nb, i.network)
                        && faults.network_passes(nb, na, i.network)
                });
                self.connected[a][b] = serial || both;
                self.net_connected[a][b] = both;
            }
        }
    }

    /// Times at which S4 checks fall due (the world schedules a step at each).
    pub fn due_times(&self) -> Vec<Instant> {
        self.s4.iter().map(|c| c.at).collect()
    }

    /// The active fault set changed.
    pub fn faults_changed(
        &mut self,
        now: Instant,
        faults: &FaultState,
        nodes: &[SimNode],
        t: &Topology,
    ) {
        self.recompute(faults, t);
        self.note_connectivity(now, nodes);
    }

    fn note_connectivity(&mut self, now: Instant, nodes: &[SimNode]) {
        let comps = self.components_by(nodes, &self.net_connected);
        let distinct = comps
            .iter()
            .flatten()
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        if distinct > 1 {
            self.last_disconnected = Some(now);
        }
    }

    /// Component label per running node (`None` for stopped nodes).
    fn components(&self, nodes: &[SimNode]) -> Vec<Option<usize>> {
        self.components_by(nodes, &self.connected)
    }

    fn components_by(&self, nodes: &[SimNode], connected: &[Vec<bool>]) -> Vec<Option<usize>> {
        let n = nodes.len();
        let mut label: Vec<Option<usize>> = vec![None; n];
        for start in 0..n {
            if label[start].is_some() || !nodes[start].running() {
                continue;
            }
            label[start] = Some(start);
            let mut stack = vec![start];
            while let Some(a) = stack.pop() {
                for b in 0..n {
                    if label[b].is_none() && nodes[b].running() && connected[a][b] {
                        label[b] = Some(start);
                        stack.push(b);
                    }
                }
            }
        }
        label
    }

    fn clean_partition(&self, nodes: &[SimNode], comps: &[Option<usize>]) -> bool {
        let n = nodes.len();
        for a in 0..n {
            for b in 0..n {
                if a == b || comps[a].is_none() || comps[b].is_none() {
                    continue;
                }
                if self.passes[a][b] != self.passes[b][a] {
                    return false;
                }
                if comps[a] == comps[b] && !self.connected[a][b] {
                    return false;
                }
            }
        }
        true
    }

    /// Whether some pair across components `x` and `y` passes frames one way only.
    fn one_way_between(&self, comps: &[Option<usize>], x: Option<usize>, y: Option<usize>) -> bool {
        let n = comps.len();
        (0..n).any(|a| {
            comps[a] == x && (0..n).any(|b| comps[b] == y && self.passes[a][b] != self.passes[b][a])
        })
    }

    /// A node emitted an event (S2 is judged on isolation).
    pub fn event(
        &mut self,
        now: Instant,
        node: NodeId,
        e: &Event,
        _faults: &FaultState,
        nodes: &[SimNode],
        t: &Topology,
    ) {
        if self.violation.is_some() {
            return;
        }
        self.judge_loss(now, node, e, t);
        let Event::IsolateSelf { reason, .. } = e else {
            return;
        };
        self.note_connectivity(now, nodes);
        let from = now - self.lookback;
        let relevant = self.active_within_lookback(now);
        let mut structural = 0;
        let mut all_s2 = true;
        for f in &relevant {
            match self.s2_class(&f.fault) {
                Some(true) => structural += 1,
                Some(false) => {}
                None => all_s2 = false,
            }
        }
        let stayed_connected = self.last_disconnected.is_none_or(|d| d < from);
        if all_s2 && structural <= 1 && stayed_connected {
            self.judged.s2_isolations += 1;
            let faults: Vec<String> = relevant.iter().map(|f| f.fault.describe(t)).collect();
            self.violation = Some(Violation {
                invariant: "S2 (no needless isolation)",
                at: now,
                detail: format!(
                    "{} isolated ({reason}) although the only faults were [{}] and every node kept a path",
                    t.nodes[node.index()].name,
                    faults.join("; ")
                ),
            });
        }
    }

    /// Faults active at some point within the lookback before `now` (S2, S6).
    fn active_within_lookback(&self, now: Instant) -> Vec<ScheduledFault> {
        let from = now - self.lookback;
        self.schedule
            .iter()
            .filter(|f| f.start <= now && f.end.is_none_or(|e| e > from))
            .cloned()
            .collect()
    }

    /// S6: under loss alone (≤ the bound on every path), no action and no failure verdict.
    fn judge_loss(&mut self, now: Instant, node: NodeId, e: &Event, t: &Topology) {
        let what = match e {
            Event::IsolateSelf { reason, .. } => format!("isolated ({reason})"),
            Event::TakeOver { peer, .. } => format!("took over {}", t.node_name(*peer)),
            Event::Fence { peer, .. } => format!("fenced {}", t.node_name(*peer)),
            Event::DiagnosisChanged { diagnosis, .. } if diagnosis.is_failure() => {
                format!(
                    "gave the failure verdict {}",
                    diagnosis.render(t).lines().next().unwrap_or_default()
                )
            }
            _ => return,
        };
        let relevant = self.active_within_lookback(now);
        if relevant.is_empty() {
            return;
        }
        let mut global = 0u32;
        let mut worst_nic = 0u32;
        for f in &relevant {
            match loss_of(&f.fault) {
                Some(LossOf::Global(p)) => global = global.max(p),
                Some(LossOf::Nic(p)) => worst_nic = worst_nic.max(p),
                Some(LossOf::None) => {}
                None => return,
            }
        }
        // Worst path: its two attachments (both lossy only if two NIC faults were active) and
        // the segment's loss at each end.
        let nics = relevant
            .iter()
            .filter(|f| matches!(loss_of(&f.fault), Some(LossOf::Nic(_))))
            .count();
        let second = if nics >= 2 { worst_nic } else { 0 };
        let keep = |p: u32| 1.0 - f64::from(p.min(1000)) / 1000.0;
        let path = 1000.0 * (1.0 - keep(worst_nic) * keep(second) * keep(global) * keep(global));
        if path > f64::from(S6_MAX_PATH_LOSS_PERMILLE) {
            return;
        }
        self.judged.s6_judged += 1;
        if matches!(e, Event::DiagnosisChanged { .. }) {
            let onset = self.schedule.iter().any(|f| {
                loss_of(&f.fault).is_some() && f.start <= now && now - f.start <= S6_ONSET_GRACE
                    || matches!(f.fault, SimFault::Flap { .. })
                        && f.start <= now
                        && f.end.is_none_or(|e| e > now - S6_ONSET_GRACE)
            });
            if onset {
                self.judged.s6_onset += 1;
                return;
            }
        }
        let faults: Vec<String> = relevant.iter().map(|f| f.fault.describe(t)).collect();
        self.violation.get_or_insert(Violation {
            invariant: "S6 (loss is no failure)",
            at: now,
            detail: format!(
                "{} {what} although the only faults were [{}] (worst path loss {:.0}‰)",
                t.node_name(node),
                faults.join("; "),
                path
            ),
        });
    }

    /// `Some(true)`: a structural single fault of the S2 classes; `Some(false)`: environmental
    /// within bounds; `None`: outside S2.
    fn s2_class(&self, f: &SimFault) -> Option<bool> {
        match f {
            SimFault::Attachment { .. }
            | SimFault::HubDown { .. }
            | SimFault::UpstreamDown { .. }
            | SimFault::SerialCut { .. } => Some(true),
            SimFault::Disk {
                mode: DiskMode::Slow,
                ..
            } => Some(true),
            SimFault::Disk { .. } if !self.isolate_on_disk_failure => Some(true),
            SimFault::Loss { permille } if *permille <= S2_MAX_LOSS_PERMILLE => Some(false),
            SimFault::Delay { .. } | SimFault::Reorder { .. } => Some(false),
            SimFault::Flap { inner, .. } => match self.s2_class(inner) {
                Some(true) => Some(true),
                _ => None,
            },
            _ => None,
        }
    }

    /// Judges S1, S1′, S3 and due S4 checks at `now`.
    pub fn check(
        &mut self,
        now: Instant,
        nodes: &[SimNode],
        _faults: &FaultState,
        config: &SimConfig,
        t: &Topology,
    ) -> Result<(), Violation> {
        if let Some(v) = self.violation.take() {
            return Err(v);
        }
        let n = nodes.len();
        let comps = self.components(nodes);
        let name = |i: usize| t.nodes[i].name.clone();
        // S1.
        let mut clean: Option<bool> = None;
        for a in 0..n {
            for b in (a + 1)..n {
                let key = (NodeId(a as u16), NodeId(b as u16));
                let split = nodes[a].active() && nodes[b].active() && comps[a] != comps[b];
                let judged = split && {
                    let side_ref = |c: Option<usize>| {
                        (0..n).any(|m| comps[m] == c && self.reaches_reference[m])
                    };
                    // One-way links between the sides let a claim through (rule 8);
                    // three or more nodes have rule 4 (and rule 7 inside a side).
                    self.fence_hook
                        || !side_ref(comps[a])
                        || !side_ref(comps[b])
                        || n >= 3
                        || self.one_way_between(&comps, comps[a], comps[b])
                };
                if !judged {
                    self.split_since.remove(&key);
                    continue;
                }
                if !self.split_since.contains_key(&key)
                    && !*clean.get_or_insert_with(|| self.clean_partition(nodes, &comps))
                {
                    self.judged.s1_irregular += 1;
                }
                let since = *self.split_since.entry(key).or_insert_with(|| {
                    self.judged.s1_splits += 1;
                    now
                });
                if now - since > self.s1_limit {
                    return Err(Violation {
                        invariant: "S1 (no split brain)",
                        at: now,
                        detail: format!(
                            "{} and {} cannot communicate and have both been active since {} (limit {} ms)",
                            name(a),
                            name(b),
                            since,
                            self.s1_limit.as_millis()
                        ),
                    });
                }
            }
        }
        // S1′: holding the services of an active, connected peer.
        for a in 0..n {
            let Some(node) = nodes[a].node.as_ref().filter(|_| nodes[a].running()) else {
                continue;
            };
            for &p in node.held_peers().keys() {
                let b = p.index();
                let key = (NodeId(a as u16), p);
                // Directly connected, or in one component through a third node (a
                // non-transitive partition: rule 7 forbids the takeover).
                let direct = b < n && self.connected[a][b];
                let related = b < n && comps[a].is_some() && comps[a] == comps[b];
                if b < n && nodes[b].active() && (direct || related) {
                    let since = *self.conflict_since.entry(key).or_insert(now);
                    let limit = if direct {
                        self.s1b_limit
                    } else {
                        self.s1_limit
                    };
                    if now - since > limit {
                        return Err(Violation {
                            invariant: "S1' (takeover safety)",
                            at: now,
                            detail: format!(
                                "{} holds the services of {} since {} although {} is active and reachable (directly: {direct})",
                                name(a),
                                name(b),
                                since,
                                name(b)
                            ),
                        });
                    }
                } else {
                    self.conflict_since.remove(&key);
                }
            }
        }
        self.conflict_since.retain(|&(a, p), _| {
            nodes[a.index()]
                .node
                .as_ref()
                .is_some_and(|x| x.held_peers().contains_key(&p))
        });
        // S5: one holder. Holders of x's services: x itself while active, and every running
        // node that claims them. Two holders that can talk — both ways, or the claim reaching
        // the owner — must not overlap for longer than a heartbeat plus the hook time.
        for x in 0..n {
            let mut holders: Vec<usize> = Vec::new();
            if nodes[x].active() {
                holders.push(x);
            }
            for (h, sn) in nodes.iter().enumerate() {
                let holds = sn.running()
                    && sn
                        .node
                        .as_ref()
                        .is_some_and(|nd| nd.held_peers().contains_key(&NodeId(x as u16)));
                if holds {
                    holders.push(h);
                }
            }
            for (i, &a) in holders.iter().enumerate() {
                for &b in &holders[i + 1..] {
                    let talk = self.connected[a][b]
                        || (a == x && self.passes[b][a])
                        || (b == x && self.passes[a][b]);
                    let key = (NodeId(x as u16), NodeId(a as u16), NodeId(b as u16));
                    if !talk {
                        self.holders_since.remove(&key);
                        continue;
                    }
                    let since = *self.holders_since.entry(key).or_insert_with(|| {
                        self.judged.s5_pairs += 1;
                        now
                    });
                    if now - since > self.s5_limit {
                        return Err(Violation {
                            invariant: "S5 (one holder)",
                            at: now,
                            detail: format!(
                                "{} and {} both run the services of {} since {} and can talk (limit {} ms)",
                                name(a),
                                name(b),
                                name(x),
                                since,
                                self.s5_limit.as_millis()
                            ),
                        });
                    }
                }
            }
        }
        self.holders_since.retain(|&(x, a, b), _| {
            let holds = |h: NodeId| {
                let sn = &nodes[h.index()];
                if h == x {
                    sn.active()
                } else {
                    sn.running()
                        && sn
                            .node
                            .as_ref()
                            .is_some_and(|nd| nd.held_peers().contains_key(&x))
                }
            };
            holds(a) && holds(b)
        });
        // S3.
        for a in 0..n {
            for b in (a + 1)..n {
                if !(nodes[a].running() && nodes[b].running() && self.connected[a][b]) {
                    continue;
                }
                let (Some(x), Some(y)) = (nodes[a].node.as_ref(), nodes[b].node.as_ref()) else {
                    continue;
                };
                let (Some(ix), Some(iy)) = (x.incident(), y.incident()) else {
                    continue;
                };
                if ix.id == iy.id {
                    self.judged.s3_pairs += 1;
                    if ix != iy {
                        return Err(Violation {
                            invariant: "S3 (agreement)",
                            at: now,
                            detail: format!(
                                "{} records {:?} but {} records {:?} for the same incident",
                                name(a),
                                ix,
                                name(b),
                                iy
                            ),
                        });
                    }
                }
            }
        }
        // S4.
        while self.s4.last().is_some_and(|c| c.at <= now) {
            let Some(c) = self.s4.pop() else { break };
            if nodes.iter().any(|sn| sn.fenced) {
                continue;
            }
            let (kind, subject) = c.expected;
            for (i, sn) in nodes.iter().enumerate() {
                let Some(node) = sn.node.as_ref().filter(|_| sn.running()) else {
                    continue;
                };
                if c.stopped == Some(NodeId(i as u16)) {
                    continue;
                }
                let d = node.diagnosis();
                if c.heal {
                    let ok = matches!(d.kind, VerdictKind::Healthy | VerdictKind::Degraded)
                        && node.incident().is_none()
                        && node.role() == Role::Active;
                    if !ok {
                        return Err(Violation {
                            invariant: "S4 (accuracy: heal)",
                            at: now,
                            detail: format!(
                                "{} ms after `{}` healed, {} still has verdict {} {:?}, incident {:?}, role {:?}",
                                HEAL_DEADLINE.as_millis(),
                                c.fault,
                                name(i),
                                d.kind.token(),
                                d.subjects,
                                node.incident().map(|i| i.id),
                                node.role()
                            ),
                        });
                    }
                    self.judged.s4_heals += 1;
                } else {
                    if d.kind != kind || !d.subjects.contains(&subject) {
                        return Err(Violation {
                            invariant: "S4 (accuracy)",
                            at: now,
                            detail: format!(
                                "after `{}`, {} has verdict {} {:?} (expected {} with {}) at its deadline",
                                c.fault,
                                name(i),
                                d.kind.token(),
                                d.subjects,
                                kind.token(),
                                subject.describe(t)
                            ),
                        });
                    }
                    self.judged.s4_detections += 1;
                }
            }
        }
        let _ = config;
        Ok(())
    }
}

enum LossOf {
    Global(u32),
    Nic(u32),
    None,
}

/// How a fault loses frames, if it is a loss-only fault (S6): `None` for any other fault.
fn loss_of(f: &SimFault) -> Option<LossOf> {
    match f {
        SimFault::Attachment {
            mode: AttachmentMode::Lossy { permille },
            ..
        } => Some(LossOf::Nic(u32::from(*permille))),
        SimFault::Loss { permille } => Some(LossOf::Global(u32::from(*permille))),
        SimFault::Delay { .. } | SimFault::Reorder { .. } => Some(LossOf::None),
        SimFault::Flap { inner, .. } => match loss_of(inner) {
            Some(LossOf::None) => Some(LossOf::None),
            other => other,
        },
        _ => None,
    }
}
