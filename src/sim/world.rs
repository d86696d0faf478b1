//! The simulated world: nodes, a virtual network, probes and hooks in virtual time.
//!
//! Every node is a real [`Node`]. The world plays everything around it: it routes the nodes'
//! [`Transmit`]s through a virtual network that drops, delays and reorders frames according
//! to the active faults; it plays the probes (carrier and reference ICMP every
//! `reference_interval`, disk and serial port state every `disk_interval`); it runs the hooks
//! (isolate, takeover, fence — a successful fence powers the target off); and it replays a
//! [`Schedule`] of faults. Time is virtual: an ordered queue of actions keyed by
//! `(time, insertion number)`, so the same seed always yields the same run.
//! What it must not do: read a clock, use threads, or draw randomness other than from its
//! seeded [`SimRng`] (ChaCha12 by name).

use crate::core::diagnosis::{IncidentId, VerdictKind};
use crate::core::node::{
    DurableState, Event, HookKind, Node, NodeOptions, Rejected, Role, Transmit,
};
use crate::core::observation::{DiskOutcome, EchoOutcome, Observation, Probe};
use crate::core::time::Instant;
use crate::core::topology::{NetworkId, NodeId, Thresholds, Timing, Topology};
use crate::core::wire::{DecodeError, Message, Path};
use crate::sim::check::{Checker, Violation};
use crate::sim::codec::Codec;
use crate::sim::fault::{DiskMode, FaultState, Schedule, SimFault};
use crate::sim::shape::Shape;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng as SimRng;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Frames a frozen node's kernel buffers per node before dropping (a socket buffer).
const FROZEN_INBOX: usize = 64;
/// Simulated wall clock at virtual time zero (ms since the Unix epoch).
const WALL_EPOCH_MS: u64 = 1_700_000_000_000;
/// Every restart finds the wall clock stepped back by this much (a VM restored from a
/// snapshot, a host without RTC): incarnations must still grow.
const WALL_STEP_BACK_MS: u64 = 3_600_000;

/// A node's verdict kind and subjects, as the assertions compare them.
pub type Verdict = (VerdictKind, Vec<crate::core::diagnosis::Component>);

/// Everything that defines one simulated run.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    pub shape: Shape,
    pub timing: Timing,
    pub thresholds: Thresholds,
    pub options: NodeOptions,
    pub schedule: Schedule,
    /// Virtual duration of the run.
    pub horizon: Duration,
    /// Base one-way latency of a network frame.
    pub network_latency: Duration,
    /// One-way latency of a serial frame (≈ 100 bytes at 115200 baud).
    pub serial_latency: Duration,
    /// How long a hook (isolate, takeover, fence) takes.
    pub hook_delay: Duration,
    /// Whether fence hooks succeed (a successful fence powers the target off).
    pub fence_succeeds: bool,
    /// Route every message through the wire codec (encode, stamp, decode) when available.
    pub codec: bool,
    /// Keep every node event in [`Sim::events`] (tests); the sweep only hashes them.
    pub record_events: bool,
    /// Check invariants S1–S4 after every step.
    pub check: bool,
}

impl SimConfig {
    /// The fault-matrix setup (docs/fault-matrix.md) with default timers, no faults, 30 s.
    pub fn new(shape: Shape) -> SimConfig {
        SimConfig {
            seed: 1,
            shape,
            timing: Timing::default(),
            thresholds: Thresholds::default(),
            options: NodeOptions::default(),
            schedule: Schedule::new(),
            horizon: Duration::from_secs(30),
            network_latency: Duration::from_micros(200),
            serial_latency: Duration::from_millis(8),
            hook_delay: Duration::from_millis(20),
            fence_succeeds: true,
            codec: false,
            record_events: true,
            check: true,
        }
    }

    pub fn topology(&self) -> Topology {
        self.shape
            .topology(self.timing.clone(), self.thresholds.clone())
    }
}

/// A node event with its time and node.
#[derive(Clone, Debug)]
pub struct Logged {
    pub at: Instant,
    pub node: NodeId,
    pub event: Event,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ProbeTick {
    Network,
    Disk,
}

#[derive(Debug)]
enum Action {
    Timer {
        node: NodeId,
        generation: u64,
    },
    Deliver {
        to: NodeId,
        path: Path,
        frame: Frame,
    },
    Probe {
        node: NodeId,
        tick: ProbeTick,
        incarnation: u64,
    },
    Observe {
        node: NodeId,
        incarnation: u64,
        observation: Observation,
    },
    Hook {
        node: NodeId,
        incarnation: u64,
        hook: HookKind,
        incident: IncidentId,
    },
    /// A fault starts or ends, or a flap toggles: recompute the active set.
    FaultEdge,
    /// Nothing happens; invariants are checked at this exact time (S4 deadlines).
    Check,
    End,
}

/// A frame in flight: the encoded datagram (with the codec) or the message itself.
#[derive(Debug)]
enum Frame {
    Decoded(Box<Message>),
    Bytes(Vec<u8>),
}

impl Frame {
    fn copy(&self) -> Frame {
        match self {
            Frame::Decoded(m) => Frame::Decoded(m.clone()),
            Frame::Bytes(b) => Frame::Bytes(b.clone()),
        }
    }
}

struct Queued {
    at: Instant,
    order: u64,
    action: Action,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.order) == (o.at, o.order)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(o.at, o.order))
    }
}

/// One simulated host.
pub struct SimNode {
    pub node: Option<Node>,
    pub incarnation: u64,
    pub frozen: bool,
    /// Powered off by a fence hook: stays down for the rest of the run.
    pub fenced: bool,
    /// What the node's driver stored in `state_dir` (survives crashes).
    pub durable: DurableState,
    inbox: VecDeque<(Path, Frame)>,
    pending_hooks: Vec<(HookKind, IncidentId)>,
    timer_generation: u64,
    timer_at: Option<Instant>,
    disk_ticks: u64,
}

impl SimNode {
    pub fn alive(&self) -> bool {
        self.node.is_some()
    }

    /// Running and not frozen.
    pub fn running(&self) -> bool {
        self.node.is_some() && !self.frozen
    }

    /// Running and in role `Active` (may run services).
    pub fn active(&self) -> bool {
        self.running() && self.node.as_ref().is_some_and(|n| n.role() == Role::Active)
    }
}

/// FNV-1a, 64 bit: a fixed, portable hash for the trace.
#[derive(Clone, Debug)]
pub struct TraceHash(u64);

impl TraceHash {
    fn new() -> Self {
        TraceHash(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    pub fn value(&self) -> u64 {
        self.0
    }
}

/// A running simulation.
pub struct Sim {
    pub config: SimConfig,
    pub topology: Arc<Topology>,
    pub now: Instant,
    pub nodes: Vec<SimNode>,
    pub faults: FaultState,
    pub events: Vec<Logged>,
    pub trace: TraceHash,
    pub checker: Checker,
    /// Frames delivered to a node's driver.
    pub delivered: u64,
    /// The wire codec, when [`SimConfig::codec`] is set.
    pub codec: Option<Codec>,
    /// Frames the virtual network dropped (faults or loss).
    pub dropped: u64,
    rng: SimRng,
    /// Reused buffers (the hot path allocates nothing per step): a route's receivers with
    /// their arrival times, a node's drained transmits and events.
    scratch_out: Vec<(Instant, NodeId)>,
    scratch_transmits: Vec<Transmit>,
    scratch_events: Vec<Event>,
    queue: BinaryHeap<Reverse<Queued>>,
    order: u64,
    ended: bool,
}

impl Sim {
    pub fn new(config: SimConfig) -> Sim {
        let topology = Arc::new(config.topology());
        let rng = SimRng::seed_from_u64(config.seed);
        let now = Instant::ZERO;
        let nodes = topology
            .node_ids()
            .map(|id| SimNode {
                node: Some(Node::new(
                    topology.clone(),
                    id,
                    WALL_EPOCH_MS,
                    config.options.clone(),
                    now,
                )),
                incarnation: 1,
                frozen: false,
                fenced: false,
                durable: DurableState::default(),
                inbox: VecDeque::new(),
                pending_hooks: Vec::new(),
                timer_generation: 0,
                timer_at: None,
                disk_ticks: 0,
            })
            .collect();
        let checker = Checker::new(&config, &topology);
        let mut sim = Sim {
            topology,
            now,
            nodes,
            faults: FaultState::default(),
            events: Vec::new(),
            trace: TraceHash::new(),
            checker,
            delivered: 0,
            codec: if config.codec { Codec::new() } else { None },
            dropped: 0,
            rng,
            scratch_out: Vec::new(),
            scratch_transmits: Vec::new(),
            scratch_events: Vec::new(),
            queue: BinaryHeap::new(),
            order: 0,
            ended: false,
            config,
        };
        let edges: Vec<Instant> = sim
            .config
            .schedule
            .faults
            .iter()
            .flat_map(|f| {
                let mut v = vec![f.start];
                v.extend(f.end);
                if let SimFault::Flap { period, .. } = &f.fault {
                    let end = f.end.unwrap_or(Instant::ZERO + sim.config.horizon);
                    let mut t = f.start + *period;
                    // Bounded: at most 1000 toggles per flap.
                    let mut n = 0;
                    while t < end && n < 1000 {
                        v.push(t);
                        t = t + *period;
                        n += 1;
                    }
                }
                v
            })
            .collect();
        for t in edges {
            sim.push(t, Action::FaultEdge);
        }
        let end = Instant::ZERO + sim.config.horizon;
        sim.push(end, Action::End);
        for t in sim.checker.due_times() {
            sim.push(t, Action::Check);
        }
        for i in 0..sim.nodes.len() {
            let id = NodeId(i as u16);
            // Stagger probe phases a little, as real daemons start at different moments.
            let phase = Duration::from_micros(sim.rng.gen_range(0..10_000));
            sim.push(
                now + phase,
                Action::Probe {
                    node: id,
                    tick: ProbeTick::Network,
                    incarnation: 1,
                },
            );
            sim.push(
                now + phase,
                Action::Probe {
                    node: id,
                    tick: ProbeTick::Disk,
                    incarnation: 1,
                },
            );
            sim.sync(id);
        }
        sim
    }

    fn push(&mut self, at: Instant, action: Action) {
        self.order += 1;
        self.queue.push(Reverse(Queued {
            at,
            order: self.order,
            action,
        }));
    }

    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id.index()).and_then(|n| n.node.as_ref())
    }

    /// Runs until the horizon. Returns the first invariant violation, if any.
    pub fn run(&mut self) -> Result<(), Violation> {
        self.run_until(Instant::ZERO + self.config.horizon)
    }

    /// Runs all actions up to and including `until`.
    pub fn run_until(&mut self, until: Instant) -> Result<(), Violation> {
        while let Some(Reverse(q)) = self.queue.peek() {
            if q.at > until || self.ended {
                break;
            }
            let Some(Reverse(q)) = self.queue.pop() else {
                break;
            };
            self.now = self.now.max(q.at);
            self.step(q.action);
            if self.config.check {
                let Sim {
                    checker,
                    nodes,
                    faults,
                    now,
                    config,
                    topology,
                    ..
                } = self;
                checker.check(*now, nodes, faults, config, topology)?;
            }
        }
        if until > self.now && !self.ended {
            self.now = until;
        }
        Ok(())
    }

    fn step(&mut self, action: Action) {
        match action {
            Action::End => self.ended = true,
            Action::Check => {}
            Action::FaultEdge => self.fault_edge(),
            Action::Timer { node, generation } => {
                let sn = &mut self.nodes[node.index()];
                if sn.timer_generation != generation || !sn.running() {
                    return;
                }
                sn.timer_at = None;
                if let Some(n) = sn.node.as_mut() {
                    n.handle_timeout(self.now);
                }
                self.sync(node);
            }
            Action::Deliver { to, path, frame } => self.deliver(to, path, frame),
            Action::Probe {
                node,
                tick,
                incarnation,
            } => self.probe(node, tick, incarnation),
            Action::Observe {
                node,
                incarnation,
                observation,
            } => {
                let sn = &mut self.nodes[node.index()];
                if sn.incarnation != incarnation || !sn.running() {
                    return;
                }
                let obs = Observation {
                    at: self.now,
                    ..observation
                };
                if let Some(n) = sn.node.as_mut() {
                    n.handle_observation(obs);
                }
                self.sync(node);
            }
            Action::Hook {
                node,
                incarnation,
                hook,
                incident,
            } => {
                let sn = &mut self.nodes[node.index()];
                if sn.incarnation != incarnation || !sn.alive() {
                    return;
                }
                if sn.frozen {
                    sn.pending_hooks.push((hook, incident));
                    return;
                }
                let success = match hook {
                    HookKind::Fence { peer } => self.fence(peer),
                    _ => true,
                };
                self.trace
                    .u64(0xF00D ^ u64::from(node.0) ^ u64::from(success));
                if let Some(n) = self.nodes[node.index()].node.as_mut() {
                    n.handle_hook_result(self.now, hook, incident, success);
                }
                self.sync(node);
            }
        }
    }

    /// Powers `peer` off (a successful fence). Returns whether the fence device answered.
    fn fence(&mut self, peer: NodeId) -> bool {
        if !self.config.fence_succeeds {
            return false;
        }
        if let Some(sn) = self.nodes.get_mut(peer.index()) {
            sn.node = None;
            sn.fenced = true;
            sn.frozen = false;
            sn.inbox.clear();
            sn.pending_hooks.clear();
        }
        true
    }

    fn fault_edge(&mut self) {
        let now = self.now;
        let mut active = Vec::new();
        for f in &self.config.schedule.faults {
            if f.start > now || f.end.is_some_and(|e| e <= now) {
                continue;
            }
            match &f.fault {
                SimFault::Flap { inner, period } => {
                    let p = period.as_nanos().max(1);
                    let k = (now - f.start).as_nanos() / p;
                    if k % 2 == 0 {
                        active.push((**inner).clone());
                    }
                }
                other => active.push(other.clone()),
            }
        }
        // Node-level transitions.
        for i in 0..self.nodes.len() {
            let id = NodeId(i as u16);
            let crashed = active
                .iter()
                .any(|f| matches!(*f, SimFault::Crash { node } if node == id));
            let frozen = active
                .iter()
                .any(|f| matches!(*f, SimFault::Freeze { node } if node == id));
            let sn = &mut self.nodes[i];
            if sn.fenced {
                continue;
            }
            if crashed && sn.node.is_some() {
                sn.node = None;
                sn.frozen = false;
                sn.inbox.clear();
                sn.pending_hooks.clear();
                sn.timer_at = None;
                self.trace.u64(0xC0DE ^ i as u64);
            } else if !crashed && sn.node.is_none() {
                // Restart with a new incarnation.
                sn.incarnation += 1;
                let inc = sn.incarnation;
                let wall = (WALL_EPOCH_MS + (now - Instant::ZERO).as_millis() as u64)
                    .saturating_sub(WALL_STEP_BACK_MS);
                let incarnation = sn.durable.next_incarnation(wall);
                sn.durable.incarnation = incarnation;
                let mut node = Node::new(
                    self.topology.clone(),
                    id,
                    incarnation,
                    self.config.options.clone(),
                    now,
                );
                node.restore(now, &sn.durable);
                sn.node = Some(node);
                sn.timer_at = None;
                sn.disk_ticks = 0;
                self.push(
                    now,
                    Action::Probe {
                        node: id,
                        tick: ProbeTick::Network,
                        incarnation: inc,
                    },
                );
                self.push(
                    now,
                    Action::Probe {
                        node: id,
                        tick: ProbeTick::Disk,
                        incarnation: inc,
                    },
                );
                self.trace.u64(0xB007 ^ i as u64);
                self.sync(id);
            }
            let sn = &mut self.nodes[i];
            if sn.node.is_some() && frozen != sn.frozen {
                sn.frozen = frozen;
                self.trace.u64(0xF4EE ^ i as u64 ^ u64::from(frozen));
                if !frozen {
                    self.unfreeze(id);
                }
            }
        }
        self.faults.set(active);
        let Sim {
            checker,
            faults,
            nodes,
            topology,
            now,
            ..
        } = self;
        checker.faults_changed(*now, faults, nodes, topology);
    }

    fn unfreeze(&mut self, id: NodeId) {
        let now = self.now;
        let sn = &mut self.nodes[id.index()];
        let inbox: Vec<(Path, Frame)> = sn.inbox.drain(..).collect();
        let hooks: Vec<(HookKind, IncidentId)> = sn.pending_hooks.drain(..).collect();
        let inc = sn.incarnation;
        if let Some(n) = sn.node.as_mut() {
            n.handle_timeout(now);
        }
        for (path, frame) in inbox {
            self.accept(id, path, frame);
        }
        for (hook, incident) in hooks {
            self.push(
                now,
                Action::Hook {
                    node: id,
                    incarnation: inc,
                    hook,
                    incident,
                },
            );
        }
        // Probes stopped while frozen: restart them.
        self.push(
            now,
            Action::Probe {
                node: id,
                tick: ProbeTick::Network,
                incarnation: inc,
            },
        );
        self.push(
            now,
            Action::Probe {
                node: id,
                tick: ProbeTick::Disk,
                incarnation: inc,
            },
        );
        self.sync(id);
    }

    /// Drains a node's transmits and events and re-arms its timer.
    fn sync(&mut self, id: NodeId) {
        let now = self.now;
        let mut transmits = std::mem::take(&mut self.scratch_transmits);
        let mut events = std::mem::take(&mut self.scratch_events);
        transmits.clear();
        events.clear();
        let timeout;
        {
            let sn = &mut self.nodes[id.index()];
            let Some(n) = sn.node.as_mut() else {
                self.scratch_transmits = transmits;
                self.scratch_events = events;
                return;
            };
            // The driver stores the durable state before acting on a change.
            sn.durable = n.durable();
            while let Some(t) = n.poll_transmit() {
                transmits.push(t);
            }
            while let Some(e) = n.poll_event() {
                events.push(e);
            }
            timeout = n.poll_timeout();
        }
        for t in transmits.drain(..) {
            self.route(id, t);
        }
        self.scratch_transmits = transmits;
        let inc = self.nodes[id.index()].incarnation;
        for e in events.drain(..) {
            self.hash_event(id, &e);
            match &e {
                Event::IsolateSelf { incident, .. } => {
                    let at = now + self.config.hook_delay;
                    self.push(
                        at,
                        Action::Hook {
                            node: id,
                            incarnation: inc,
                            hook: HookKind::Isolate,
                            incident: *incident,
                        },
                    );
                }
                Event::Fence { peer, incident } => {
                    let at = now + self.config.hook_delay;
                    self.push(
                        at,
                        Action::Hook {
                            node: id,
                            incarnation: inc,
                            hook: HookKind::Fence { peer: *peer },
                            incident: *incident,
                        },
                    );
                }
                Event::TakeOver { peer, incident } => {
                    let at = now + self.config.hook_delay;
                    self.push(
                        at,
                        Action::Hook {
                            node: id,
                            incarnation: inc,
                            hook: HookKind::TakeOver { peer: *peer },
                            incident: *incident,
                        },
                    );
                }
                _ => {}
            }
            self.checker
                .event(now, id, &e, &self.faults, &self.nodes, &self.topology);
            if self.config.record_events {
                self.events.push(Logged {
                    at: now,
                    node: id,
                    event: e,
                });
            }
        }
        self.scratch_events = events;
        let sn = &mut self.nodes[id.index()];
        if let Some(t) = timeout {
            let t = t.max(now);
            if sn.timer_at != Some(t) {
                sn.timer_generation += 1;
                sn.timer_at = Some(t);
                let generation = sn.timer_generation;
                self.push(
                    t,
                    Action::Timer {
                        node: id,
                        generation,
                    },
                );
            }
        }
    }

    fn hash_event(&mut self, id: NodeId, e: &Event) {
        let h = &mut self.trace;
        h.u64(self.now.as_nanos());
        h.u64(u64::from(id.0));
        match e {
            Event::DiagnosisChanged { diagnosis, .. } => {
                h.u64(1);
                h.bytes(diagnosis.kind.token().as_bytes());
                h.bytes(format!("{:?}", diagnosis.subjects).as_bytes());
            }
            Event::IncidentOpened { incident } => {
                h.u64(2);
                h.u64(u64::from(incident.id.opener.0) << 32 | u64::from(incident.id.number));
            }
            Event::IncidentClosed { incident, .. } => {
                h.u64(3);
                h.u64(u64::from(incident.id.opener.0) << 32 | u64::from(incident.id.number));
            }
            Event::IsolateSelf { .. } => h.u64(4),
            Event::TakeOver { peer, .. } => h.u64(5 | u64::from(peer.0) << 8),
            Event::Fence { peer, .. } => h.u64(6 | u64::from(peer.0) << 8),
            Event::HandBack { peer, .. } => h.u64(7 | u64::from(peer.0) << 8),
            Event::Rejoined { .. } => h.u64(8),
            Event::Alert(a) => {
                h.u64(9);
                h.bytes(a.text.as_bytes());
            }
        }
    }

    fn route(&mut self, from: NodeId, t: Transmit) {
        if !self.nodes[from.index()].running() {
            return;
        }
        let bytes = match self.codec.as_mut() {
            Some(c) => match c.encode(&self.topology, &t.message) {
                Some(b) => Some(b),
                None => return,
            },
            None => None,
        };
        let mut out = std::mem::take(&mut self.scratch_out);
        out.clear();
        match t.path {
            Path::Serial => match t.to {
                Some(to) if self.faults.serial_up(from, to) => {
                    out.push((self.now + self.config.serial_latency, to));
                }
                Some(_) => self.dropped += 1,
                None => {}
            },
            Path::Network(s) => {
                let global = u32::from(self.faults.global_loss());
                let lf = u32::from(self.faults.attachment_loss(from, s));
                let extra = self.faults.extra_delay();
                let jitter = self.faults.jitter();
                let topology = self.topology.clone();
                let receivers = topology
                    .members(s)
                    .filter(|&n| n != from && t.to.is_none_or(|to| to == n));
                for to in receivers {
                    if !self.faults.network_passes(from, to, s) {
                        self.dropped += 1;
                        continue;
                    }
                    let lt = u32::from(self.faults.attachment_loss(to, s));
                    // Independent drops at sender NIC, receiver NIC and on the segment.
                    let mut lost = false;
                    for p in [lf, lt, global] {
                        if p > 0 && self.rng.gen_range(0..1000) < p {
                            lost = true;
                        }
                    }
                    if lost {
                        self.dropped += 1;
                        continue;
                    }
                    let mut delay = self.config.network_latency + extra;
                    if !jitter.is_zero() {
                        delay +=
                            Duration::from_nanos(self.rng.gen_range(0..jitter.as_nanos() as u64));
                    }
                    out.push((self.now + delay, to));
                }
            }
        }
        // Every receiver but the last gets a copy; the last takes the frame itself (most
        // frames have one receiver: two-node clusters, unicast and serial).
        let mut frame = Some(match bytes {
            Some(b) => Frame::Bytes(b),
            None => Frame::Decoded(Box::new(t.message)),
        });
        let last = out.len().saturating_sub(1);
        for (i, &(at, to)) in out.iter().enumerate() {
            let f = if i == last {
                frame.take()
            } else {
                frame.as_ref().map(Frame::copy)
            };
            if let Some(frame) = f {
                self.push(
                    at,
                    Action::Deliver {
                        to,
                        path: t.path,
                        frame,
                    },
                );
            }
        }
        self.scratch_out = out;
    }

    fn deliver(&mut self, to: NodeId, path: Path, frame: Frame) {
        let sn = &mut self.nodes[to.index()];
        if sn.node.is_none() {
            return;
        }
        if sn.frozen {
            if sn.inbox.len() >= FROZEN_INBOX {
                sn.inbox.pop_front();
            }
            sn.inbox.push_back((path, frame));
            return;
        }
        self.accept(to, path, frame);
        self.sync(to);
    }

    /// Feeds a frame through the node's own entry (decode, path check, replay filter).
    fn accept(&mut self, to: NodeId, path: Path, frame: Frame) {
        let now = self.now;
        let Some(node) = self.nodes[to.index()].node.as_mut() else {
            return;
        };
        let result = match (frame, self.codec.as_ref()) {
            (Frame::Bytes(b), Some(c)) => node.handle_datagram(now, path, &b, c.keys()),
            (Frame::Decoded(m), _) => node.handle_frame(now, path, *m),
            (Frame::Bytes(_), None) => return,
        };
        match result {
            Ok(a) => {
                self.delivered += 1;
                self.trace.u64(
                    now.as_nanos()
                        ^ (u64::from(to.0) << 48)
                        ^ (u64::from(a.sender.0) << 56)
                        ^ a.sequence,
                );
            }
            Err(Rejected::Decode(DecodeError::Replay { .. })) => {}
            Err(e) => {
                // Every simulated frame is authentic and on its path: any other drop is a bug.
                if let Some(c) = self.codec.as_mut() {
                    c.errors += 1;
                    c.last_error = Some(format!("decode: {e}"));
                }
            }
        }
    }

    fn probe(&mut self, id: NodeId, tick: ProbeTick, incarnation: u64) {
        let now = self.now;
        let sn = &self.nodes[id.index()];
        if sn.incarnation != incarnation || !sn.running() {
            return; // probes of a stopped node stop; a restart or unfreeze re-arms them
        }
        let timing = self.topology.timing.clone();
        match tick {
            ProbeTick::Network => {
                let nets: Vec<NetworkId> = self
                    .topology
                    .node(id)
                    .interfaces
                    .iter()
                    .map(|i| i.network)
                    .collect();
                for s in nets {
                    let up = self.faults.carrier(id, s);
                    self.observe_now(id, Probe::Carrier { network: s, up });
                    let targets = self.topology.network(s).references.clone();
                    for target in targets {
                        if self.faults.reference_reachable(id, s) {
                            let rtt = Duration::from_micros(400) + self.faults.extra_delay() * 2;
                            let obs = Observation {
                                at: now,
                                probe: Probe::Reference {
                                    network: s,
                                    target,
                                    outcome: EchoOutcome::Reply { rtt },
                                },
                            };
                            self.push(
                                now + rtt,
                                Action::Observe {
                                    node: id,
                                    incarnation,
                                    observation: obs,
                                },
                            );
                        } else {
                            let obs = Observation {
                                at: now,
                                probe: Probe::Reference {
                                    network: s,
                                    target,
                                    outcome: EchoOutcome::Timeout,
                                },
                            };
                            self.push(
                                now + timing.reference_timeout,
                                Action::Observe {
                                    node: id,
                                    incarnation,
                                    observation: obs,
                                },
                            );
                        }
                    }
                }
                self.push(
                    now + timing.reference_interval,
                    Action::Probe {
                        node: id,
                        tick,
                        incarnation,
                    },
                );
            }
            ProbeTick::Disk => {
                let serial_peers: Vec<NodeId> = self
                    .topology
                    .node(id)
                    .serial
                    .iter()
                    .map(|s| s.peer)
                    .collect();
                for peer in serial_peers {
                    self.observe_now(id, Probe::SerialPort { peer, open: true });
                }
                let (delay, outcome) = match self.faults.disk(id) {
                    None => (
                        Duration::from_millis(1),
                        DiskOutcome::Ok {
                            latency: Duration::from_millis(1),
                        },
                    ),
                    Some(DiskMode::Slow) => {
                        let l = self.topology.thresholds.slow_disk * 2;
                        (l, DiskOutcome::Ok { latency: l })
                    }
                    Some(DiskMode::Failing) => (
                        Duration::from_millis(1),
                        DiskOutcome::Failed {
                            error: "EIO".to_string(),
                        },
                    ),
                    Some(DiskMode::Hung) => (
                        timing.disk_timeout,
                        DiskOutcome::Hung {
                            for_time: timing.disk_timeout,
                        },
                    ),
                };
                self.nodes[id.index()].disk_ticks += 1;
                let obs = Observation {
                    at: now,
                    probe: Probe::Disk { outcome },
                };
                self.push(
                    now + delay,
                    Action::Observe {
                        node: id,
                        incarnation,
                        observation: obs,
                    },
                );
                self.push(
                    now + timing.disk_interval,
                    Action::Probe {
                        node: id,
                        tick,
                        incarnation,
                    },
                );
            }
        }
        self.sync(id);
    }

    fn observe_now(&mut self, id: NodeId, probe: Probe) {
        let now = self.now;
        if let Some(n) = self.nodes[id.index()].node.as_mut() {
            n.handle_observation(Observation { at: now, probe });
        }
    }

    /// Verdict kind and subjects of every running node (for assertions).
    pub fn verdicts(&self) -> Vec<(NodeId, Option<Verdict>)> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, sn)| {
                let v = sn
                    .node
                    .as_ref()
                    .filter(|_| !sn.frozen)
                    .map(|n| (n.diagnosis().kind, n.diagnosis().subjects.clone()));
                (NodeId(i as u16), v)
            })
            .collect()
    }
}

impl Sim {
    /// Runs `f` on a running node at the current virtual time, then routes its output
    /// (operator commands such as quiesce/resume in scenario tests).
    pub fn with_node(&mut self, id: NodeId, f: impl FnOnce(&mut Node, Instant)) {
        let now = self.now;
        if let Some(n) = self
            .nodes
            .get_mut(id.index())
            .and_then(|sn| sn.node.as_mut())
        {
            f(n, now);
        }
        self.sync(id);
    }

    /// First logged event of `node` at or after `after` matching `pred`.
    pub fn first_event(
        &self,
        node: NodeId,
        after: Instant,
        pred: impl Fn(&Event) -> bool,
    ) -> Option<Instant> {
        self.events
            .iter()
            .find(|l| l.node == node && l.at >= after && pred(&l.event))
            .map(|l| l.at)
    }
}
