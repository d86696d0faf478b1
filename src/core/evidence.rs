//! Evidence: bounded, time-stamped windows over everything one node (`me`) observes, turned
//! into facts with hysteresis and staleness, and the [`ClusterView`] the classifier reads.
//!
//! What it is for: the node state machine (`core::node`) feeds it probe [`Observation`]s,
//! decoded [`Message`]s and the sequences of its own heartbeats; it asks for [`Evidence::own_view`]
//! (what goes into our heartbeats), [`Evidence::snapshot`] (input to
//! [`crate::core::classify::classify`]) and [`Evidence::next_deadline`] (when some fact will go
//! stale, so the node re-classifies then). What it must not do: read a clock, do I/O, judge
//! (the classifier judges), or grow without bound.
//!
//! Semantics of the facts (documented thresholds come from [`Thresholds`] / [`Timing`]):
//! - **heard on a path** (a peer on one network, or the serial line): the peer's last message on
//!   that path arrived at most the path's *silence threshold* ago: `timing.detect_time()` on a
//!   clean path, longer on a path that has been losing heartbeats, so that a healthy lossy path
//!   falls silent with probability below `thresholds.false_silence_probability` per heartbeat,
//!   and never longer than `timing.silence_cap()` ([`crate::core::silence`]). Hysteresis: once
//!   a path has gone silent it counts as heard again only after `thresholds.heal_successes`
//!   consecutive messages (each within the threshold of the previous), so a flapping path does
//!   not flip a verdict. A single lost heartbeat never makes a path silent
//!   (`detect_multiplier` ≥ 2 heartbeats).
//! - **the other side's view**: a lossy network path (threshold above `detect_time`) silent
//!   for less than its threshold plus `detect_time` (at most `timing.silence_cap()`) still
//!   counts as heard while the peer's
//!   fresh view, received on another path after our last message from it on this one, says the
//!   peer hears us on that network: the path passes frames, so the silence is loss.
//! - **warm-up**: for the first `detect_time` after [`Evidence::new`] (and after the node finds
//!   it was not running: [`Evidence::restart_warm_up`]), silence means nothing yet:
//!   [`Evidence::own_view`] leaves the per-network and serial facts out (= unknown).
//! - **loss ratio** per path: heartbeats counted over the last [`LOSS_WINDOW_INTERVALS`]
//!   heartbeat intervals (receive times in a ring of that size). We count by time, not by
//!   sequence gaps, because a sender's sequence is shared by all its paths (wire `Header`), so
//!   gaps on one path are not losses. Assumes one heartbeat per peer per path per
//!   `heartbeat_interval`. Judged only once the path has been heard for
//!   [`LOSS_MIN_INTERVALS`] intervals and only when at least 2 heartbeats are missing, so one
//!   lost packet never degrades a path; it heals below half the threshold.
//! - **RTT** per path: from echoes (`now - sent - held`), median of the last
//!   [`RTT_SAMPLES`] samples (one late packet never moves a median); degraded above
//!   `thresholds.degraded_rtt`, healed below 80 % of it.
//! - **reference** per network and target: `thresholds.reference_failures` consecutive
//!   failures ⇒ unreachable; from unreachable, `thresholds.heal_successes` consecutive replies
//!   ⇒ reachable; first reply from unknown ⇒ reachable. A network is reached when any of its
//!   targets is; unreachable when all are. No probe result for [`Evidence::reference_stale_after`]
//!   ⇒ unknown again (reported as stale).
//! - **disk**: EIO needs [`DISK_CONFIRM_SAMPLES`] consecutive samples, slow reads
//!   `heal_successes` consecutive slow samples, a `Hung` report (already a timeout) counts at
//!   once; healing needs `heal_successes` good reads. No result for
//!   [`Evidence::disk_stale_after`] ⇒ unknown (stale).
//! - **peers' views**: stored with their receive time; older than the silence threshold of the
//!   path they came on (`detect_time` when clean) ⇒ stale, ignored by the classifier and listed
//!   in [`ClusterView::stale`].
//!
//! API changes after publication are noted here:
//! - (none yet)

use crate::core::observation::{DiskOutcome, EchoOutcome, Observation, Probe};
use crate::core::silence::Arrivals;
use crate::core::time::Instant;
use crate::core::topology::{NetworkId, NodeId, Thresholds, Timing, Topology};
use crate::core::view::{DiskHealth, NetView, Reach, View};
use crate::core::wire::{Body, Message, Path};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

/// Receive times kept per path for the loss ratio: 100 intervals (10 s at the default 100 ms)
/// resolves a 2 % threshold with two missing heartbeats and bounds memory to
/// 100 × 8 bytes per peer and path (≈ 200 KiB at 64 nodes × 4 networks).
pub const LOSS_WINDOW_INTERVALS: usize = 100;
/// A path's loss ratio is judged only after it has been heard this many intervals.
pub const LOSS_MIN_INTERVALS: u64 = 50;
/// RTT samples kept per path (median filter).
pub const RTT_SAMPLES: usize = 8;
/// Send times of our own heartbeats kept per path for RTT: enough for one heartbeat per peer
/// per path over two rounds at 64 nodes; an echo of an older sequence is useless as RTT.
pub const SENT_RING: usize = 256;
/// Consecutive read errors before the disk counts as failing.
pub const DISK_CONFIRM_SAMPLES: u32 = 2;
/// Distinct monitor names tracked; more are ignored (configured monitors are far fewer).
pub const MAX_MONITORS: usize = 64;

/// A path between `me` and one peer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PathKey {
    pub peer: NodeId,
    pub path: Path,
}

/// One node's report inside a [`ClusterView`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub view: View,
    /// When this report was received (for `me`: the snapshot time).
    pub received: Instant,
    /// Path the report arrived on (`None` for `me`).
    pub via: Option<Path>,
    /// Detail only `me` knows about its own facts (empty for peers).
    pub detail: OwnDetail,
}

/// Extra detail about `me`'s own facts, for explanations ("reaches 198.51.100.254 at t").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnDetail {
    /// Per network: the target last reached (or, if none reached, last tried) and when.
    pub references: BTreeMap<NetworkId, RefDetail>,
    /// Last time each peer was heard on each path, sorted by (peer, path).
    pub last_heard: Vec<HeardAt>,
    /// Loss ratio and median RTT per path, sorted by (peer, path), where measured.
    pub quality: Vec<PathQuality>,
    /// When the carrier of each NIC was last reported.
    pub carrier_at: BTreeMap<NetworkId, Instant>,
    /// When the disk was last probed.
    pub disk_at: Option<Instant>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefDetail {
    pub target: IpAddr,
    pub at: Instant,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeardAt {
    pub peer: NodeId,
    pub path: Path,
    pub at: Instant,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PathQuality {
    pub peer: NodeId,
    pub path: Path,
    /// `None` until judged (see module doc).
    pub loss_ratio: Option<f64>,
    pub rtt: Option<Duration>,
    pub degraded: bool,
}

impl Eq for PathQuality {}

/// Evidence ignored because it is old.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Stale {
    /// Whose evidence.
    pub source: NodeId,
    pub what: StaleWhat,
    /// When it was last fresh (received / probed).
    pub last: Instant,
    pub age: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum StaleWhat {
    /// A peer's reported view.
    View,
    /// Our reference probes on a network.
    Reference(NetworkId),
    /// Our disk probe.
    Disk,
}

/// Input to the classifier: `me`'s own facts, the fresh views of peers with their receive
/// times, and the stale evidence that was left out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterView {
    pub me: NodeId,
    pub now: Instant,
    /// `me`'s report and every peer's fresh report, by node id.
    pub reports: BTreeMap<NodeId, Report>,
    /// Evidence ignored because it is older than its window, sorted.
    pub stale: Vec<Stale>,
    /// Peers that announced planned maintenance (kept even when their view is stale).
    pub quiesced: BTreeSet<NodeId>,
}

impl ClusterView {
    /// An empty view (nothing known) at `now`, as seen by `me`.
    pub fn new(me: NodeId, now: Instant) -> Self {
        ClusterView {
            me,
            now,
            reports: BTreeMap::new(),
            stale: Vec::new(),
            quiesced: BTreeSet::new(),
        }
    }

    /// Age of a node's report at the snapshot time.
    pub fn age(&self, node: NodeId) -> Option<Duration> {
        self.reports.get(&node).map(|r| self.now - r.received)
    }
}

#[derive(Clone, Debug, Default)]
struct PathState {
    last_heard: Option<Instant>,
    /// Consecutive messages, each within the silence threshold of the previous.
    run: u32,
    /// The path went silent since it was last healthy; needs `heal_successes` to heal.
    was_silent: bool,
    first_heard: Option<Instant>,
    /// Receive times of heartbeats (bounded by `LOSS_WINDOW_INTERVALS`).
    receipts: VecDeque<Instant>,
    last_sequence: Option<(u64, u64)>,
    rtts: VecDeque<Duration>,
    loss_degraded: bool,
    rtt_degraded: bool,
    /// Inter-arrival history for the loss-aware silence threshold (kept across silences).
    arrivals: Arrivals,
}

#[derive(Clone, Debug)]
struct RefState {
    state: Reach,
    fails: u32,
    oks: u32,
    last_at: Instant,
    last_ok: Option<Instant>,
}

#[derive(Clone, Debug)]
struct PeerState {
    view: Option<View>,
    received: Instant,
    via: Path,
    incarnation: u64,
    quiesced: bool,
}

#[derive(Clone, Debug, Default)]
struct DiskState {
    health: DiskHealth,
    candidate: DiskHealth,
    count: u32,
    at: Option<Instant>,
}

/// Evidence windows of one node.
#[derive(Clone, Debug)]
pub struct Evidence {
    me: NodeId,
    start: Instant,
    timing: Timing,
    thresholds: Thresholds,
    /// Networks `me` is attached to, with their members other than `me` and references.
    nets: BTreeMap<NetworkId, (Vec<NodeId>, Vec<IpAddr>)>,
    serial_peers: Vec<NodeId>,
    has_disk: bool,
    node_count: usize,
    carrier: BTreeMap<NetworkId, (bool, Instant)>,
    references: BTreeMap<(NetworkId, IpAddr), RefState>,
    paths: BTreeMap<PathKey, PathState>,
    peers: BTreeMap<NodeId, PeerState>,
    serial_port: BTreeMap<NodeId, bool>,
    disk: DiskState,
    monitors: BTreeMap<String, bool>,
    sent: BTreeMap<Path, VecDeque<(u64, Instant)>>,
}

impl Evidence {
    /// Evidence of node `me`, started at `now` (warm-up runs for `detect_time` from here).
    pub fn new(topology: &Topology, me: NodeId, now: Instant) -> Self {
        let mut nets = BTreeMap::new();
        let mut serial_peers = Vec::new();
        let mut has_disk = false;
        if let Some(spec) = topology.nodes.get(me.index()) {
            for iface in &spec.interfaces {
                let members: Vec<NodeId> = topology
                    .members(iface.network)
                    .filter(|&p| p != me)
                    .collect();
                let refs = topology
                    .networks
                    .get(iface.network.index())
                    .map(|n| n.references.clone())
                    .unwrap_or_default();
                nets.insert(iface.network, (members, refs));
            }
            has_disk = spec.disk.is_some();
        }
        for (a, b) in topology.serial_lines() {
            if a == me {
                serial_peers.push(b);
            } else if b == me {
                serial_peers.push(a);
            }
        }
        serial_peers.sort();
        serial_peers.dedup();
        Evidence {
            me,
            start: now,
            timing: topology.timing.clone(),
            thresholds: topology.thresholds.clone(),
            nets,
            serial_peers,
            has_disk,
            node_count: topology.nodes.len(),
            carrier: BTreeMap::new(),
            references: BTreeMap::new(),
            paths: BTreeMap::new(),
            peers: BTreeMap::new(),
            serial_port: BTreeMap::new(),
            disk: DiskState::default(),
            monitors: BTreeMap::new(),
            sent: BTreeMap::new(),
        }
    }

    pub fn me(&self) -> NodeId {
        self.me
    }

    /// Live reload of thresholds (windows are kept).
    pub fn set_thresholds(&mut self, thresholds: Thresholds) {
        self.thresholds = thresholds;
    }

    /// Live reload of timers (windows are kept).
    pub fn set_timing(&mut self, timing: Timing) {
        self.timing = timing;
    }

    fn detect(&self) -> Duration {
        self.timing.detect_time()
    }

    /// Warm-up again from `now`: the node was not running, so its silence facts cover a time
    /// it was not listening (see [`crate::core::node::Node`]'s gap check).
    pub fn restart_warm_up(&mut self, now: Instant) {
        self.start = self.start.max(now);
    }

    fn warming_up(&self, now: Instant) -> bool {
        now - self.start < self.detect()
    }

    /// No reference result for this long ⇒ the network's reference state is unknown again.
    pub fn reference_stale_after(&self) -> Duration {
        self.timing.reference_interval * (self.thresholds.reference_failures.max(1) + 1)
            + self.timing.reference_timeout
    }

    /// No disk result for this long ⇒ disk health unknown again.
    pub fn disk_stale_after(&self) -> Duration {
        self.timing.disk_interval * 2 + self.timing.disk_timeout * 2
    }

    /// Record one probe outcome of `me`. Outcomes for networks, targets or peers `me` is not
    /// configured for are ignored (bounded state).
    pub fn record_observation(&mut self, obs: &Observation) {
        let at = obs.at;
        match &obs.probe {
            Probe::Carrier { network, up } => {
                if self.nets.contains_key(network) {
                    self.carrier.insert(*network, (*up, at));
                }
            }
            Probe::Reference {
                network,
                target,
                outcome,
            } => {
                let known = self
                    .nets
                    .get(network)
                    .is_some_and(|(_, refs)| refs.contains(target));
                if !known {
                    return;
                }
                let ok = matches!(outcome, EchoOutcome::Reply { .. });
                let failures = self.thresholds.reference_failures.max(1);
                let heal = self.thresholds.heal_successes.max(1);
                let st = self
                    .references
                    .entry((*network, *target))
                    .or_insert(RefState {
                        state: Reach::Unknown,
                        fails: 0,
                        oks: 0,
                        last_at: at,
                        last_ok: None,
                    });
                st.last_at = at;
                if ok {
                    st.fails = 0;
                    st.oks = st.oks.saturating_add(1);
                    st.last_ok = Some(at);
                    if st.state == Reach::Unknown || st.oks >= heal {
                        st.state = Reach::Yes;
                    }
                } else {
                    st.oks = 0;
                    st.fails = st.fails.saturating_add(1);
                    if st.fails >= failures {
                        st.state = Reach::No;
                    }
                }
            }
            Probe::Disk { outcome } => {
                let sample = match outcome {
                    DiskOutcome::Ok { latency } if *latency > self.thresholds.slow_disk => {
                        DiskHealth::Slow
                    }
                    DiskOutcome::Ok { .. } => DiskHealth::Ok,
                    DiskOutcome::Failed { .. } => DiskHealth::Failing,
                    DiskOutcome::Hung { .. } => DiskHealth::Hung,
                };
                self.record_disk(sample, at);
            }
            Probe::SerialPort { peer, open } => {
                if self.serial_peers.contains(peer) {
                    self.serial_port.insert(*peer, *open);
                }
            }
            Probe::Monitor { name, outcome } => {
                if self.monitors.contains_key(name) || self.monitors.len() < MAX_MONITORS {
                    self.monitors
                        .insert(name.clone(), outcome.ok && !outcome.timed_out);
                }
            }
        }
    }

    fn record_disk(&mut self, sample: DiskHealth, at: Instant) {
        let heal = self.thresholds.heal_successes.max(1);
        let d = &mut self.disk;
        d.at = Some(at);
        if sample == d.candidate {
            d.count = d.count.saturating_add(1);
        } else {
            d.candidate = sample;
            d.count = 1;
        }
        let needed = match (d.health, sample) {
            (DiskHealth::Unknown, _) => 1,
            (_, DiskHealth::Hung) => 1,
            (_, DiskHealth::Failing) => DISK_CONFIRM_SAMPLES,
            (_, DiskHealth::Slow) => heal,
            (_, _) => heal,
        };
        if d.health != sample && d.count >= needed {
            d.health = sample;
        }
    }

    /// Record the send of one of our own heartbeats, so its echo yields an RTT.
    pub fn record_sent(&mut self, now: Instant, path: Path, sequence: u64) {
        let ring = self.sent.entry(path).or_default();
        if ring.back().is_some_and(|&(s, _)| s >= sequence) {
            return; // sequences only increase; ignore anything else
        }
        if ring.len() >= SENT_RING {
            ring.pop_front();
        }
        ring.push_back((sequence, now));
    }

    /// Record a decoded, authenticated message received at `now` from `msg.header.sender` on
    /// `msg.header.path`: the sender is heard on that path; heartbeats count for the loss
    /// ratio; echoes give RTT; a carried view is stored with its receive time; quiesce/resume
    /// are remembered. Messages claiming to come from `me` or an unknown node are ignored.
    pub fn record_message(&mut self, now: Instant, msg: &Message) {
        let sender = msg.header.sender;
        if sender == self.me || sender.index() >= self.node_count {
            return;
        }
        let path = msg.header.path;
        let path_ok = match path {
            Path::Network(s) => self.nets.get(&s).is_some_and(|(m, _)| m.contains(&sender)),
            Path::Serial => self.serial_peers.contains(&sender),
        };
        if !path_ok {
            return;
        }
        let heal = self.thresholds.heal_successes.max(1);
        let interval = self.timing.heartbeat_interval;
        let is_heartbeat = matches!(msg.body, Body::Heartbeat { .. });
        let key = PathKey { peer: sender, path };
        // Whether the path counted as heard just before this message (threshold and the
        // other side's view as they were).
        let heard_before = self.heard(now, sender, path);
        let timing = self.timing.clone();
        let bound = self.thresholds.false_silence_probability;
        let ps = self.paths.entry(key).or_default();
        let threshold = ps.arrivals.threshold(&timing, bound);
        let seq = (msg.header.incarnation, msg.header.sequence);
        if ps
            .last_sequence
            .is_some_and(|last| last.0 == seq.0 && seq.1 <= last.1)
        {
            return; // duplicate or reordered: already counted
        }
        if ps.last_sequence.is_some_and(|last| last.0 != seq.0) {
            // New incarnation of the peer: its old loss history says nothing about it now.
            ps.receipts.clear();
            ps.first_heard = None;
            ps.arrivals.clear();
        }
        ps.last_sequence = Some(seq);
        let gap_ok = ps.last_heard.is_some_and(|t| now - t <= threshold) || heard_before;
        if gap_ok {
            ps.run = ps.run.saturating_add(1);
        } else {
            if ps.last_heard.is_some() {
                ps.was_silent = true;
                ps.first_heard = None;
                ps.receipts.clear();
            }
            ps.run = 1;
        }
        if ps.was_silent && ps.run >= heal {
            ps.was_silent = false;
        }
        ps.last_heard = Some(now);
        if ps.first_heard.is_none() {
            ps.first_heard = Some(now);
        }
        if is_heartbeat {
            if ps.receipts.len() >= LOSS_WINDOW_INTERVALS {
                ps.receipts.pop_front();
            }
            ps.receipts.push_back(now);
            ps.arrivals.record(now, interval, threshold);
        }
        let thresholds = self.thresholds.clone();
        update_loss(ps, now, interval, &thresholds);

        match &msg.body {
            Body::Heartbeat { view, echo } => {
                for e in echo.iter().filter(|e| e.peer == self.me) {
                    let sent = self
                        .sent
                        .get(&path)
                        .and_then(|ring| {
                            ring.binary_search_by_key(&e.sequence, |&(s, _)| s)
                                .ok()
                                .and_then(|i| ring.get(i))
                        })
                        .map(|&(_, t)| t);
                    if let Some(sent) = sent {
                        let rtt = (now - sent).saturating_sub(e.held);
                        if let Some(ps) = self.paths.get_mut(&key) {
                            if ps.rtts.len() >= RTT_SAMPLES {
                                ps.rtts.pop_front();
                            }
                            ps.rtts.push_back(rtt);
                            update_rtt(ps, &thresholds);
                        }
                    }
                }
                self.store_view(sender, now, path, msg.header.incarnation, view.clone());
            }
            Body::Proposal { view, .. } => {
                self.store_view(sender, now, path, msg.header.incarnation, view.clone());
            }
            Body::Quiesce => {
                self.set_peer_quiesced(sender, now, path, msg.header.incarnation, true)
            }
            Body::Resume => {
                self.set_peer_quiesced(sender, now, path, msg.header.incarnation, false)
            }
            Body::Ack { .. } | Body::Isolated { .. } => {}
        }
    }

    fn store_view(
        &mut self,
        sender: NodeId,
        now: Instant,
        via: Path,
        incarnation: u64,
        view: View,
    ) {
        let quiesced = view.quiesced;
        let e = self.peers.entry(sender).or_insert(PeerState {
            view: None,
            received: now,
            via,
            incarnation,
            quiesced,
        });
        if e.received <= now {
            e.view = Some(view);
            e.received = now;
            e.via = via;
            e.incarnation = incarnation;
            e.quiesced = quiesced;
        }
    }

    fn set_peer_quiesced(
        &mut self,
        sender: NodeId,
        now: Instant,
        via: Path,
        incarnation: u64,
        q: bool,
    ) {
        let e = self.peers.entry(sender).or_insert(PeerState {
            view: None,
            received: now,
            via,
            incarnation,
            quiesced: q,
        });
        e.quiesced = q;
        if let Some(v) = e.view.as_mut() {
            v.quiesced = q;
        }
    }

    /// Whether `peer` is heard on `path` at `now` (see module doc: silence threshold,
    /// hysteresis, the other side's view).
    pub fn heard(&self, now: Instant, peer: NodeId, path: Path) -> bool {
        let Some(ps) = self.paths.get(&PathKey { peer, path }) else {
            return false;
        };
        let threshold = self.silence_after(ps);
        path_heard(ps, now, threshold) || self.heard_by_peer(now, peer, path, ps, threshold)
    }

    /// The silence threshold of a path now (see [`crate::core::silence`]).
    fn silence_after(&self, ps: &PathState) -> Duration {
        ps.arrivals
            .threshold(&self.timing, self.thresholds.false_silence_probability)
    }

    /// How long the other side's view keeps a lossy path heard: one detection time past the
    /// path's threshold, at most the cap. Bounded so tightly because both sides' views can
    /// hold each other up (each says it hears the other) when the path died both ways.
    fn view_hold(&self, threshold: Duration) -> Duration {
        (threshold + self.detect()).min(self.timing.silence_cap())
    }

    /// The silence threshold of `peer`'s path `path` (`detect_time` for an unknown path).
    pub fn silence_threshold(&self, peer: NodeId, path: Path) -> Duration {
        self.paths
            .get(&PathKey { peer, path })
            .map_or(self.detect(), |ps| self.silence_after(ps))
    }

    /// A lossy network path, silent for less than the cap, whose peer's fresh view (received
    /// on another path after our last message on this one) says it hears us on that network.
    fn heard_by_peer(
        &self,
        now: Instant,
        peer: NodeId,
        path: Path,
        ps: &PathState,
        threshold: Duration,
    ) -> bool {
        let Path::Network(net) = path else {
            return false;
        };
        let Some(last) = ps.last_heard else {
            return false;
        };
        if threshold <= self.detect() || ps.was_silent || now - last > self.view_hold(threshold) {
            return false;
        }
        self.peers.get(&peer).is_some_and(|st| {
            st.via != path
                && st.received > last
                && now - st.received <= self.detect()
                && st
                    .view
                    .as_ref()
                    .and_then(|v| v.nets.get(&net))
                    .is_some_and(|nv| nv.heard.contains(&self.me))
        })
    }

    /// Loss ratio of a path, once judged.
    pub fn loss_ratio(&self, now: Instant, peer: NodeId, path: Path) -> Option<f64> {
        self.paths
            .get(&PathKey { peer, path })
            .and_then(|ps| loss_ratio(ps, now, self.timing.heartbeat_interval))
    }

    /// Median RTT of a path from echoes.
    pub fn rtt(&self, peer: NodeId, path: Path) -> Option<Duration> {
        self.paths.get(&PathKey { peer, path }).and_then(median_rtt)
    }

    /// Whether a heard path counts as degraded (loss or RTT over threshold, with hysteresis).
    pub fn path_degraded(&self, now: Instant, peer: NodeId, path: Path) -> bool {
        self.heard(now, peer, path)
            && self
                .paths
                .get(&PathKey { peer, path })
                .is_some_and(|ps| ps.loss_degraded || ps.rtt_degraded)
    }

    fn reference_reach(&self, now: Instant, network: NetworkId) -> Reach {
        let stale = self.reference_stale_after();
        let mut any_no = false;
        let mut all_no = true;
        let Some((_, refs)) = self.nets.get(&network) else {
            return Reach::Unknown;
        };
        if refs.is_empty() {
            return Reach::Unknown;
        }
        for target in refs {
            let st = self
                .references
                .get(&(network, *target))
                .filter(|st| now - st.last_at <= stale);
            match st.map(|s| s.state) {
                Some(Reach::Yes) => return Reach::Yes,
                Some(Reach::No) => any_no = true,
                _ => all_no = false,
            }
        }
        if any_no && all_no {
            Reach::No
        } else {
            Reach::Unknown
        }
    }

    fn disk_health(&self, now: Instant) -> DiskHealth {
        if !self.has_disk {
            return DiskHealth::None;
        }
        match self.disk.at {
            Some(at) if now - at <= self.disk_stale_after() => self.disk.health,
            _ => DiskHealth::Unknown,
        }
    }

    /// What `me` currently observes, as carried in our heartbeats. `quiesced`, `isolated` and
    /// `incident` are left default: the node state machine fills them.
    pub fn own_view(&self, now: Instant) -> View {
        let mut view = View {
            disk: self.disk_health(now),
            ..View::default()
        };
        view.failing_monitors = self
            .monitors
            .iter()
            .filter(|(_, ok)| !**ok)
            .map(|(n, _)| n.clone())
            .collect();
        if self.warming_up(now) {
            return view; // silence means nothing yet: per-path facts unknown
        }
        for (&net, (members, _)) in &self.nets {
            let carrier = match self.carrier.get(&net) {
                Some((true, _)) => Reach::Yes,
                Some((false, _)) => Reach::No,
                None => Reach::Unknown,
            };
            let mut nv = NetView {
                carrier,
                reference: self.reference_reach(now, net),
                ..NetView::default()
            };
            for &p in members {
                let path = Path::Network(net);
                if self.heard(now, p, path) {
                    nv.heard.insert(p);
                    if self.path_degraded(now, p, path) {
                        nv.degraded.insert(p);
                    }
                }
            }
            view.nets.insert(net, nv);
        }
        for &p in &self.serial_peers {
            let port_open = self.serial_port.get(&p).copied().unwrap_or(true);
            view.serial
                .insert(p, port_open && self.heard(now, p, Path::Serial));
        }
        view
    }

    fn own_detail(&self, now: Instant) -> OwnDetail {
        let mut d = OwnDetail::default();
        for &net in self.nets.keys() {
            let mut best: Option<RefDetail> = None;
            let mut tried: Option<RefDetail> = None;
            for ((n, target), st) in self.references.range((net, IpAddr::from([0u8, 0, 0, 0]))..) {
                if *n != net {
                    break;
                }
                if let Some(ok) = st.last_ok {
                    if st.state == Reach::Yes && best.as_ref().is_none_or(|b| b.at < ok) {
                        best = Some(RefDetail {
                            target: *target,
                            at: ok,
                        });
                    }
                }
                if tried.as_ref().is_none_or(|b| b.at < st.last_at) {
                    tried = Some(RefDetail {
                        target: *target,
                        at: st.last_at,
                    });
                }
            }
            if let Some(r) = best.or(tried) {
                d.references.insert(net, r);
            }
        }
        for (k, ps) in &self.paths {
            if let Some(at) = ps.last_heard {
                d.last_heard.push(HeardAt {
                    peer: k.peer,
                    path: k.path,
                    at,
                });
            }
            let loss = loss_ratio(ps, now, self.timing.heartbeat_interval);
            let rtt = median_rtt(ps);
            if loss.is_some() || rtt.is_some() {
                d.quality.push(PathQuality {
                    peer: k.peer,
                    path: k.path,
                    loss_ratio: loss,
                    rtt,
                    degraded: ps.loss_degraded || ps.rtt_degraded,
                });
            }
        }
        d.carrier_at = self.carrier.iter().map(|(&n, &(_, at))| (n, at)).collect();
        d.disk_at = self.disk.at;
        d
    }

    /// Input to the classifier at `now`: own facts, fresh peers' views, stale evidence.
    pub fn snapshot(&self, now: Instant) -> ClusterView {
        let mut cv = ClusterView::new(self.me, now);
        cv.reports.insert(
            self.me,
            Report {
                view: self.own_view(now),
                received: now,
                via: None,
                detail: self.own_detail(now),
            },
        );
        for (&p, st) in &self.peers {
            if st.quiesced {
                cv.quiesced.insert(p);
            }
            let Some(view) = &st.view else { continue };
            let age = now - st.received;
            if age <= self.silence_threshold(p, st.via) {
                cv.reports.insert(
                    p,
                    Report {
                        view: view.clone(),
                        received: st.received,
                        via: Some(st.via),
                        detail: OwnDetail::default(),
                    },
                );
            } else {
                cv.stale.push(Stale {
                    source: p,
                    what: StaleWhat::View,
                    last: st.received,
                    age,
                });
            }
        }
        let ref_stale = self.reference_stale_after();
        for (&net, (_, refs)) in &self.nets {
            let last = refs
                .iter()
                .filter_map(|t| self.references.get(&(net, *t)))
                .map(|s| s.last_at)
                .max();
            if let Some(last) = last {
                if now - last > ref_stale {
                    cv.stale.push(Stale {
                        source: self.me,
                        what: StaleWhat::Reference(net),
                        last,
                        age: now - last,
                    });
                }
            }
        }
        if let Some(at) = self.disk.at {
            if self.has_disk && now - at > self.disk_stale_after() {
                cv.stale.push(Stale {
                    source: self.me,
                    what: StaleWhat::Disk,
                    last: at,
                    age: now - at,
                });
            }
        }
        cv.stale.sort();
        cv
    }

    /// The next instant after `now` at which some evidence changes by itself (a path or a
    /// peer's view goes stale, warm-up ends, a probe result ages out), so the node re-classifies.
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let detect = self.detect();
        let tick = Duration::from_nanos(1);
        let mut out: Option<Instant> = None;
        let mut consider = |t: Instant| {
            if t > now && out.is_none_or(|o| t < o) {
                out = Some(t);
            }
        };
        consider(self.start + detect);
        for ps in self.paths.values() {
            if let Some(t) = ps.last_heard {
                let threshold = self.silence_after(ps);
                consider(t + threshold + tick);
                if threshold > detect {
                    consider(t + self.view_hold(threshold) + tick); // the peer's view stops counting
                }
            }
        }
        for (&p, st) in &self.peers {
            consider(st.received + detect + tick);
            consider(st.received + self.silence_threshold(p, st.via) + tick);
        }
        let ref_stale = self.reference_stale_after();
        for st in self.references.values() {
            consider(st.last_at + ref_stale + tick);
        }
        if let Some(at) = self.disk.at {
            consider(at + self.disk_stale_after() + tick);
        }
        out
    }
}

fn path_heard(ps: &PathState, now: Instant, threshold: Duration) -> bool {
    match ps.last_heard {
        Some(t) => now - t <= threshold && !ps.was_silent,
        None => false,
    }
}

fn loss_ratio(ps: &PathState, now: Instant, interval: Duration) -> Option<f64> {
    let first = ps.first_heard?;
    let interval_ns = interval.as_nanos().max(1);
    let heard_for = (now - first).as_nanos() / interval_ns;
    let heard_for = u64::try_from(heard_for).unwrap_or(u64::MAX);
    if heard_for < LOSS_MIN_INTERVALS {
        return None;
    }
    let window = heard_for.min(LOSS_WINDOW_INTERVALS as u64);
    let since = now - interval * u32::try_from(window).unwrap_or(u32::MAX);
    let got = ps.receipts.iter().filter(|&&t| t > since).count() as u64;
    let missing = window.saturating_sub(got);
    Some(missing as f64 / window as f64)
}

/// Intervals the loss ratio is judged over (0 while not judged).
fn loss_window(ps: &PathState, now: Instant, interval: Duration) -> u64 {
    let Some(first) = ps.first_heard else {
        return 0;
    };
    let intervals = (now - first).as_nanos() / interval.as_nanos().max(1);
    u64::try_from(intervals)
        .unwrap_or(u64::MAX)
        .min(LOSS_WINDOW_INTERVALS as u64)
}

fn update_loss(ps: &mut PathState, now: Instant, interval: Duration, th: &Thresholds) {
    let Some(ratio) = loss_ratio(ps, now, interval) else {
        ps.loss_degraded = false;
        return;
    };
    let missing = ratio * loss_window(ps, now, interval) as f64;
    if !ps.loss_degraded {
        // One lost packet never degrades a path: at least two must be missing.
        if ratio > th.degraded_loss_ratio && missing >= 1.5 {
            ps.loss_degraded = true;
        }
    } else if ratio <= th.degraded_loss_ratio / 2.0 {
        ps.loss_degraded = false;
    }
}

fn median_rtt(ps: &PathState) -> Option<Duration> {
    if ps.rtts.is_empty() {
        return None;
    }
    let mut v: Vec<Duration> = ps.rtts.iter().copied().collect();
    v.sort();
    v.get(v.len() / 2).copied()
}

fn update_rtt(ps: &mut PathState, th: &Thresholds) {
    let Some(m) = median_rtt(ps) else { return };
    if !ps.rtt_degraded {
        if m > th.degraded_rtt && ps.rtts.len() >= 3 {
            ps.rtt_degraded = true;
        }
    } else if m < th.degraded_rtt.mul_f64(0.8) {
        ps.rtt_degraded = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::observation::MonitorOutcome;
    use crate::core::topology::{InterfaceSpec, NetworkSpec, NodeSpec, SerialPortSpec, Transport};
    use crate::core::wire::{Echo, Header};

    fn topo() -> Topology {
        let nets = ["A", "B"]
            .iter()
            .enumerate()
            .map(|(i, n)| NetworkSpec {
                name: n.to_string(),
                references: vec![IpAddr::from([198, 51, 100, 250 + i as u8])],
                transport: Transport::Udp,
                port: 7000,
            })
            .collect();
        let nodes = (0..2u16)
            .map(|i| NodeSpec {
                name: format!("n{}", i + 1),
                priority: 1,
                interfaces: (0..2)
                    .map(|s| InterfaceSpec {
                        network: NetworkId(s),
                        device: format!("eth{s}"),
                        address: None,
                    })
                    .collect(),
                serial: vec![SerialPortSpec {
                    peer: NodeId(1 - i),
                    device: "/dev/ttyS0".into(),
                    baud: 115200,
                }],
                disk: Some("/dev/sda".into()),
            })
            .collect();
        Topology {
            cluster: "t".into(),
            nodes,
            networks: nets,
            timing: Timing::default(),
            thresholds: Thresholds::default(),
        }
    }

    const A: NetworkId = NetworkId(0);
    const ME: NodeId = NodeId(0);
    const PEER: NodeId = NodeId(1);

    fn ms(x: u64) -> Instant {
        Instant::from_millis(x)
    }

    fn hb(seq: u64, path: Path, echo: Vec<Echo>) -> Message {
        Message {
            header: Header {
                sender: PEER,
                incarnation: 1,
                sequence: seq,
                path,
            },
            body: Body::Heartbeat {
                view: View::default(),
                echo,
            },
            extensions: vec![],
        }
    }

    fn reference(at: u64, ok: bool) -> Observation {
        let outcome = if ok {
            EchoOutcome::Reply {
                rtt: Duration::from_millis(1),
            }
        } else {
            EchoOutcome::Timeout
        };
        Observation {
            at: ms(at),
            probe: Probe::Reference {
                network: A,
                target: IpAddr::from([198, 51, 100, 250]),
                outcome,
            },
        }
    }

    #[test]
    fn warm_up_hides_silence() {
        let t = topo();
        let e = Evidence::new(&t, ME, ms(0));
        assert!(e.own_view(ms(100)).nets.is_empty());
        let v = e.own_view(ms(400));
        assert_eq!(v.nets.len(), 2);
        assert!(v.nets[&A].heard.is_empty());
        assert_eq!(v.serial.get(&PEER), Some(&false));
        assert_eq!(e.next_deadline(ms(0)), Some(ms(300)));
    }

    #[test]
    fn one_lost_heartbeat_never_silences_and_silence_needs_heal() {
        let t = topo();
        let mut e = Evidence::new(&t, ME, ms(0));
        let p = Path::Network(A);
        e.record_message(ms(1000), &hb(1, p, vec![]));
        // Heartbeat at 1100 lost; 1200 arrives: heard throughout.
        assert!(e.heard(ms(1150), PEER, p));
        assert!(e.heard(ms(1300), PEER, p));
        e.record_message(ms(1200), &hb(3, p, vec![]));
        assert!(e.heard(ms(1450), PEER, p));
        // The lost heartbeat lengthened the silence threshold (one miss in two heartbeats: up
        // to the cap until more history comes in).
        let th = e.silence_threshold(PEER, p);
        assert!(
            th > Duration::from_millis(300) && th <= t.timing.silence_cap(),
            "{th:?}"
        );
        // The next deadline is no later than the path's (the view goes stale first).
        assert!(e.next_deadline(ms(1450)) <= Some(ms(1200) + th + Duration::from_nanos(1)));
        assert!(e.heard(ms(1200) + th, PEER, p));
        // Silent beyond the threshold.
        assert!(!e.heard(ms(1201) + th, PEER, p));
        // Back: needs heal_successes (3) consecutive heartbeats.
        e.record_message(ms(3000), &hb(4, p, vec![]));
        assert!(!e.heard(ms(3000), PEER, p));
        e.record_message(ms(3100), &hb(5, p, vec![]));
        assert!(!e.heard(ms(3100), PEER, p));
        e.record_message(ms(3200), &hb(6, p, vec![]));
        assert!(e.heard(ms(3200), PEER, p));
        // Duplicates and replays do not count.
        e.record_message(ms(3250), &hb(6, p, vec![]));
        assert_eq!(
            e.paths[&PathKey {
                peer: PEER,
                path: p
            }]
                .receipts
                .len(),
            3
        );
    }

    #[test]
    fn peer_views_go_stale() {
        let t = topo();
        let mut e = Evidence::new(&t, ME, ms(0));
        e.record_message(ms(1000), &hb(1, Path::Serial, vec![]));
        let cv = e.snapshot(ms(1300));
        assert!(cv.reports.contains_key(&PEER) && cv.stale.is_empty());
        let cv = e.snapshot(ms(1301));
        assert!(!cv.reports.contains_key(&PEER));
        assert_eq!(cv.stale.len(), 1);
        assert_eq!(
            (cv.stale[0].source, &cv.stale[0].what),
            (PEER, &StaleWhat::View)
        );
        assert_eq!(cv.stale[0].age, Duration::from_millis(301));
    }

    fn feed(e: &mut Evidence, path: Path, count: u64, lost: &[u64]) {
        for i in 0..count {
            if !lost.contains(&i) {
                e.record_message(ms(1000 + i * 100), &hb(i + 1, path, vec![]));
            }
        }
    }

    #[test]
    fn loss_ratio_and_degradation_hysteresis() {
        let t = topo();
        let p = Path::Network(A);
        // One lost heartbeat in 100: not degraded.
        let mut e = Evidence::new(&t, ME, ms(0));
        feed(&mut e, p, 100, &[50]);
        let now = ms(1000 + 99 * 100);
        let r = e.loss_ratio(now, PEER, p).expect("judged");
        assert!((0.005..0.025).contains(&r), "{r}");
        assert!(!e.path_degraded(now, PEER, p));
        // Five lost: degraded, and the view says so.
        let mut e = Evidence::new(&t, ME, ms(0));
        feed(&mut e, p, 100, &[10, 30, 50, 70, 90]);
        let r = e.loss_ratio(now, PEER, p).expect("judged");
        assert!((0.04..0.07).contains(&r), "{r}");
        assert!(e.path_degraded(now, PEER, p));
        assert!(e.own_view(now).nets[&A].degraded.contains(&PEER));
        // Not judged before enough history.
        let mut e = Evidence::new(&t, ME, ms(0));
        feed(&mut e, p, 20, &[5, 6]);
        assert_eq!(e.loss_ratio(ms(1000 + 19 * 100), PEER, p), None);
        assert!(!e.path_degraded(ms(1000 + 19 * 100), PEER, p));
    }

    #[test]
    fn rtt_from_echoes_median_filtered() {
        let t = topo();
        let p = Path::Network(A);
        let mut e = Evidence::new(&t, ME, ms(0));
        for i in 0..8u64 {
            let sent = 1000 + i * 100;
            e.record_sent(ms(sent), p, 10 + i);
            // Peer holds it 20 ms; network RTT 5 ms, except one 400 ms outlier.
            let rtt = if i == 3 { 400 } else { 5 };
            let echo = Echo {
                peer: ME,
                sequence: 10 + i,
                held: Duration::from_millis(20),
            };
            e.record_message(ms(sent + rtt + 20), &hb(i + 1, p, vec![echo]));
        }
        assert_eq!(e.rtt(PEER, p), Some(Duration::from_millis(5)));
        assert!(!e.path_degraded(ms(1800), PEER, p));
        // Echoes for other nodes or unknown sequences are ignored.
        let echo = Echo {
            peer: PEER,
            sequence: 10,
            held: Duration::ZERO,
        };
        e.record_message(ms(1900), &hb(20, p, vec![echo]));
        assert_eq!(e.rtt(PEER, p), Some(Duration::from_millis(5)));
    }

    #[test]
    fn reference_failures_are_counted_and_healed() {
        let t = topo();
        let mut e = Evidence::new(&t, ME, ms(0));
        let reach = |e: &Evidence, at: u64| e.own_view(ms(at)).nets[&A].reference;
        e.record_observation(&reference(400, true));
        assert_eq!(reach(&e, 400), Reach::Yes);
        e.record_observation(&reference(500, false));
        e.record_observation(&reference(600, false));
        assert_eq!(reach(&e, 600), Reach::Yes, "two failures are not enough");
        e.record_observation(&reference(700, false));
        assert_eq!(reach(&e, 700), Reach::No);
        e.record_observation(&reference(800, true));
        e.record_observation(&reference(900, true));
        assert_eq!(reach(&e, 900), Reach::No, "heal needs 3 successes");
        e.record_observation(&reference(1000, true));
        assert_eq!(reach(&e, 1000), Reach::Yes);
        // Probe results stop: unknown again, and reported stale.
        let later = 1000 + e.reference_stale_after().as_millis() as u64 + 1;
        assert_eq!(reach(&e, later), Reach::Unknown);
        assert!(e
            .snapshot(ms(later))
            .stale
            .iter()
            .any(|s| s.what == StaleWhat::Reference(A)));
        // Unknown targets are ignored.
        let bogus = Observation {
            at: ms(1100),
            probe: Probe::Reference {
                network: A,
                target: IpAddr::from([203, 0, 113, 1]),
                outcome: EchoOutcome::Timeout,
            },
        };
        e.record_observation(&bogus);
        assert_eq!(e.references.len(), 1);
    }

    #[test]
    fn disk_hysteresis() {
        let t = topo();
        let mut e = Evidence::new(&t, ME, ms(0));
        let disk = |e: &mut Evidence, at: u64, outcome: DiskOutcome| {
            e.record_observation(&Observation {
                at: ms(at),
                probe: Probe::Disk { outcome },
            });
            e.own_view(ms(at)).disk
        };
        let ok = || DiskOutcome::Ok {
            latency: Duration::from_millis(3),
        };
        let eio = || DiskOutcome::Failed {
            error: "EIO".into(),
        };
        assert_eq!(disk(&mut e, 1000, ok()), DiskHealth::Ok);
        assert_eq!(
            disk(&mut e, 2000, eio()),
            DiskHealth::Ok,
            "one EIO is not enough"
        );
        assert_eq!(disk(&mut e, 3000, eio()), DiskHealth::Failing);
        assert_eq!(disk(&mut e, 4000, ok()), DiskHealth::Failing);
        assert_eq!(disk(&mut e, 5000, ok()), DiskHealth::Failing);
        assert_eq!(disk(&mut e, 6000, ok()), DiskHealth::Ok);
        assert_eq!(
            disk(
                &mut e,
                7000,
                DiskOutcome::Hung {
                    for_time: Duration::from_secs(2)
                }
            ),
            DiskHealth::Hung
        );
        let slow = || DiskOutcome::Ok {
            latency: Duration::from_secs(1),
        };
        let mut e = Evidence::new(&t, ME, ms(0));
        disk(&mut e, 1000, ok());
        disk(&mut e, 2000, slow());
        disk(&mut e, 3000, slow());
        assert_eq!(disk(&mut e, 4000, slow()), DiskHealth::Slow);
        assert_eq!(
            e.own_view(ms(20_000)).disk,
            DiskHealth::Unknown,
            "stale disk probe"
        );
    }

    #[test]
    fn serial_port_hangup_and_monitors() {
        let t = topo();
        let mut e = Evidence::new(&t, ME, ms(0));
        e.record_message(ms(1000), &hb(1, Path::Serial, vec![]));
        assert_eq!(e.own_view(ms(1000)).serial.get(&PEER), Some(&true));
        e.record_observation(&Observation {
            at: ms(1050),
            probe: Probe::SerialPort {
                peer: PEER,
                open: false,
            },
        });
        assert_eq!(e.own_view(ms(1100)).serial.get(&PEER), Some(&false));
        let mon = |ok| Probe::Monitor {
            name: "http".into(),
            outcome: MonitorOutcome {
                ok,
                summary: String::new(),
                duration: Duration::ZERO,
                timed_out: false,
            },
        };
        e.record_observation(&Observation {
            at: ms(1100),
            probe: mon(false),
        });
        assert!(e.own_view(ms(1100)).failing_monitors.contains("http"));
        e.record_observation(&Observation {
            at: ms(1200),
            probe: mon(true),
        });
        assert!(e.own_view(ms(1200)).failing_monitors.is_empty());
    }

    #[test]
    fn snapshot_feeds_the_classifier() {
        use crate::core::classify::classify;
        use crate::core::diagnosis::{Component, VerdictKind};
        let t = topo();
        let mut e = Evidence::new(&t, ME, ms(0));
        // Everything fine until 2 s: then the peer falls silent everywhere.
        let mut seq = 0;
        for i in 0..20u64 {
            for path in [Path::Network(A), Path::Network(NetworkId(1)), Path::Serial] {
                seq += 1;
                let mut m = hb(seq, path, vec![]);
                if let Body::Heartbeat { view, .. } = &mut m.body {
                    view.disk = DiskHealth::Ok;
                }
                e.record_message(ms(i * 100), &m);
            }
            for net in [A, NetworkId(1)] {
                let target = t.network(net).references[0];
                e.record_observation(&Observation {
                    at: ms(i * 100),
                    probe: Probe::Reference {
                        network: net,
                        target,
                        outcome: EchoOutcome::Reply {
                            rtt: Duration::from_millis(1),
                        },
                    },
                });
            }
        }
        assert_eq!(
            classify(&t, &e.snapshot(ms(1950))).kind,
            VerdictKind::Healthy
        );
        let d = classify(&t, &e.snapshot(ms(1900 + 301)));
        assert_eq!(
            (d.kind, d.subjects.clone()),
            (VerdictKind::NodeFailed, vec![Component::Node(PEER)]),
            "{}",
            d.render(&t)
        );
        assert!(
            d.render(&t).contains("ignored stale evidence: view of n2"),
            "{}",
            d.render(&t)
        );
        assert!(
            d.render(&t).contains("n1 has not heard n2 on A for 301 ms"),
            "{}",
            d.render(&t)
        );
    }
}
