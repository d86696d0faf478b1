//! The node state machine: one per hadiag daemon, sans-IO (quinn-proto style).
//!
//! What it is for: the driver (`crate::daemon`, or the simulator `crate::sim`) feeds a
//! [`Node`] probe [`Observation`]s, decoded messages, timeouts and hook results; the node keeps
//! the evidence windows ([`Evidence`]), classifies ([`classify`]), runs the agreement and
//! isolation rules of docs/isolation-rules.md (pure rules in [`crate::core::agreement`]) and drives the
//! heartbeat cadence. The driver drains [`Node::poll_transmit`], [`Node::poll_event`] and
//! sleeps until [`Node::poll_timeout`].
//! What it must not do: read a clock, touch a socket, file or environment, spawn, or draw
//! randomness. `now` always comes in as an argument.
//!
//! # Behaviour (what the driver can rely on)
//!
//! - **Heartbeats.** Every `heartbeat_interval` the node sends a `Heartbeat` (own view, the
//!   incident it works on, echoes for RTT) on every network it is attached to (`to: None` =
//!   every peer on that network) and on every serial line (`to: Some(peer)`). Sequences
//!   strictly increase per incarnation across all paths.
//! - **Classification** runs at every heartbeat tick, at rule deadlines and immediately on
//!   protocol messages (proposal, ack, isolated) — not on every heartbeat received, which would
//!   cost a classification per datagram. It is skipped when the classifier's input (every
//!   view, stale set, maintenance set) is unchanged since the last run.
//! - **Incidents.** A failure verdict opens an incident `{opener, number}` (numbers start from
//!   the incarnation, so a restarted node never reuses an id). A node that sees a peer's
//!   incident with an identical verdict (kind + subjects) adopts the winning id (lower opener;
//!   "peers adopt the proposer's id"). An incident's verdict never changes: when the
//!   verdict changes, the incident closes and another opens. It closes when the verdict has
//!   differed for `heal_successes × heartbeat_interval` (hysteresis); a verdict that needs
//!   action (node failed, cut off) replaces a lesser one at once.
//! - **Agreement (rule 1).** For verdicts that need action, the node sends a `Proposal`
//!   (verdict + the view it decided on) once per heartbeat interval to every peer until one
//!   acks. A receiver merges the proposed view into its evidence, re-classifies and acks only an
//!   identical verdict; of two concurrent incidents with the same verdict the lower opener wins
//!   ([`agreement::wins_over`]). The subject of an agreed `CutOff` isolates
//!   ([`Event::IsolateSelf`]); once the isolate hook succeeded it sends `Isolated` (and its
//!   heartbeats carry `isolated`); the designated survivor ([`agreement::designated_survivor`])
//!   then takes over ([`Event::TakeOver`]). A subject that holds a `CutOff` verdict about itself
//!   for `self_fence_after` without agreement isolates anyway (it has no network to serve on).
//! - **Rule 2.** Hearing no peer on any path and reaching no reference for `self_fence_after`
//!   ⇒ isolate.
//! - **Rule 3 (two nodes).** Hearing no peer but reaching a reference: the silent peer is
//!   treated as gone `fence_deadline` after it fell silent. With a fence hook
//!   ([`NodeOptions::fence_hook`]) the node emits [`Event::Fence`] and takes over only on
//!   success (retrying every second on failure); lower-priority nodes wait an extra
//!   `fence_stagger` per rank so two halves of a symmetric partition never fence each other at
//!   once. Without a fence hook it takes over and raises an alert stating the residual risk.
//! - **Rule 4 (three or more nodes).** Our side = us + the peers we hear. A side that reaches no
//!   reference loses; otherwise the strict majority of the eligible nodes (not isolated, not in
//!   maintenance) wins, and an even split goes to the side holding the highest-priority node.
//!   Losers isolate after `self_fence_after`; winners take over silent peers after
//!   `fence_deadline` (fence hook first when configured).
//! - **Rule 7 (death needs transitive evidence).** A silent peer that another node's fresh
//!   view still hears, or that the unambiguous verdict explains by its attachments, is never
//!   taken over or fenced; each such sighting restarts its `fence_deadline`.
//! - **Rule 8 (services are claims).** Heartbeats carry `holds` (peers' services taken over,
//!   with the incident). A node that learns a peer holds its services isolates at once. An
//!   isolated node whose rejoin conditions hold advertises `rejoin_ready`; holders hand back
//!   only to a ready peer, and it rejoins only once nobody claims its services. Isolation
//!   releases everything held. Two survivors holding one peer: the lower-priority one lets go.
//! - **Rule 9.** An ambiguous verdict isolates nobody (rule 1 needs an unambiguous cut-off).
//! - **Rule 10.** [`Node::durable`] / [`Node::restore`]: what a restart must keep.
//! - **Inbound frames** enter through [`Node::handle_datagram`] (decode, path check, replay
//!   filter), shared by the daemon and the simulator.
//! - **Rule 5.** Degradation raises [`Event::Alert`]; it never isolates. A failing or hung disk
//!   isolates only with [`NodeOptions::isolate_on_disk_failure`].
//! - **Rule 6.** [`Node::quiesce`] announces maintenance (`Quiesce`, then `quiesced` in every
//!   heartbeat); a quiesced node neither isolates nor takes over, and peers neither count it
//!   nor act on its silence. [`Node::resume`] ends it.
//! - **Frozen nodes.** If the driver did not run the node for longer than `fence_deadline`
//!   (a SIGSTOP, a paused VM), peers may already hold its services: the node isolates on the
//!   first call after the gap.
//! - **Hand-back and rejoin.** A survivor hands a peer's services back ([`Event::HandBack`])
//!   when the peer is heard, its incident no longer names the peer, and the peer advertises
//!   `rejoin_ready`. An isolated node is ready ([`RejoinPolicy::AfterHeal`]) once no isolation
//!   reason has held, it hears a peer (or, on two nodes, reaches a reference), and no peer's
//!   fresh view still names it failed or cut off; it rejoins ([`Event::Rejoined`]) after
//!   `self_fence_after` of readiness and once no peer claims its services. With
//!   [`RejoinPolicy::Manual`] it stays isolated until [`Node::resume`], which also waits for
//!   the hand-back.

use crate::core::agreement::{self, Side};
use crate::core::classify::{classify, Diagnosis, Summary};
use crate::core::diagnosis::{Component, IncidentId, IncidentSummary, VerdictKind};
use crate::core::evidence::{ClusterView, Evidence, StaleWhat};
use crate::core::observation::Observation;
use crate::core::time::Instant;
use crate::core::topology::{NodeId, Thresholds, Timing, Topology};
use crate::core::view::{DiskHealth, Reach, View};
use crate::core::wire::{
    decode, Body, DecodeError, Echo, Header, Keyring, Message, Path, ReplayFilter,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Transmits queued before the oldest heartbeat is dropped. One tick at 16 nodes × 4
/// networks with serial lines queues ~20 heartbeats plus a few proposals/acks, so this holds
/// dozens of ticks; when the driver falls that far behind (a blocked serial port), stale
/// heartbeats are worthless (the next one supersedes them) and memory must stay bounded.
pub const MAX_QUEUED_TRANSMITS: usize = 1024;
/// Events queued before the oldest is dropped (counted in [`NodeStats::dropped_events`]).
/// Events are rare (verdict changes); a driver that never drains them must not grow memory.
pub const MAX_QUEUED_EVENTS: usize = 1024;
/// Ticks on which an `Isolated` confirmation is repeated after the hook succeeded (the
/// heartbeats carry `isolated` forever after; the repeats only shorten the takeover).
const ISOLATED_REPEATS: u32 = 3;
/// Retry delay of a failed isolate or fence hook.
const HOOK_RETRY: Duration = Duration::from_secs(1);

/// What happens to an isolated node once the evidence heals.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum RejoinPolicy {
    /// Rejoin automatically (see the module doc for the conditions).
    #[default]
    AfterHeal,
    /// Stay isolated until the operator runs `resume`.
    Manual,
}

/// What must survive a restart (rule 10). The driver stores it in `state_dir` — atomically,
/// synced — whenever [`Node::durable`] changes, and hands it to [`Node::restore`] on start.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DurableState {
    /// The last incarnation used; the next start uses `max(wall ms, last + 1)`.
    pub incarnation: u64,
    /// Isolated under this incident: a restarted node stays isolated until its policy lets
    /// it rejoin (and the isolate hook runs again, whatever the boot started).
    pub isolated: Option<IncidentId>,
    /// `resume` was given while isolated under the manual policy.
    pub released: bool,
    /// Peers' services this node took over: a restarted holder still holds them.
    pub held: BTreeMap<NodeId, IncidentId>,
    /// Next incident number, so incident ids never repeat across restarts.
    pub next_incident_number: u32,
}

impl DurableState {
    /// The incarnation of a new start: above every earlier one even when the wall clock was
    /// stepped back (VM restore, no RTC, start before NTP).
    pub fn next_incarnation(&self, wall_ms: u64) -> u64 {
        wall_ms.max(self.incarnation.saturating_add(1))
    }
}

/// Policy switches of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeOptions {
    /// A `fence` hook (IPMI, cloud API) is configured: fence a silent peer before taking over.
    pub fence_hook: bool,
    /// Isolate when the own disk is failing or hung (docs/fault-matrix.md row 10, "per policy").
    pub isolate_on_disk_failure: bool,
    pub rejoin: RejoinPolicy,
    /// Extra wait before fencing, per priority rank below the top (see rule 3).
    pub fence_stagger: Duration,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            fence_hook: false,
            isolate_on_disk_failure: false,
            rejoin: RejoinPolicy::AfterHeal,
            fence_stagger: Duration::from_secs(1),
        }
    }
}

/// Current role of the node.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// May run services.
    Active,
    /// Isolated (the decision is taken; the isolate hook may still be running).
    Isolated,
    /// Planned maintenance announced.
    Quiesced,
}

/// A hook the driver runs on the node's behalf, reported back with [`Node::handle_hook_result`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HookKind {
    Isolate,
    TakeOver { peer: NodeId },
    Fence { peer: NodeId },
}

/// A message to send. `to: None` on a network path means every peer on that network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub path: Path,
    pub to: Option<NodeId>,
    pub message: Message,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// Something an operator should hear about (alert hooks, journal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub severity: Severity,
    pub incident: Option<IncidentId>,
    pub text: String,
}

/// What the node tells its driver.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The verdict (kind, subjects or ambiguity) changed.
    DiagnosisChanged {
        previous: Summary,
        diagnosis: Box<Diagnosis>,
    },
    IncidentOpened {
        incident: IncidentSummary,
    },
    /// `superseded_by`: closed because a peer's concurrent incident with the same verdict won.
    IncidentClosed {
        incident: IncidentSummary,
        open_for: Duration,
        superseded_by: Option<IncidentId>,
    },
    /// Run the isolate hook, then report with [`HookKind::Isolate`].
    IsolateSelf {
        incident: IncidentId,
        diagnosis: Box<Diagnosis>,
        reason: String,
    },
    /// Run the takeover hook for `peer`'s services.
    TakeOver {
        peer: NodeId,
        incident: IncidentId,
    },
    /// Run the fence hook against `peer`, then report with [`HookKind::Fence`].
    Fence {
        peer: NodeId,
        incident: IncidentId,
    },
    /// `peer` is back: its services may return to it (per the cluster manager's policy).
    HandBack {
        peer: NodeId,
        incident: Option<IncidentId>,
    },
    /// The node left isolation and may run services again.
    Rejoined {
        incident: Option<IncidentId>,
    },
    Alert(Alert),
}

/// Why an inbound frame was dropped before it reached the node's logic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// Malformed, wrong cluster, bad stamp, unknown key, oversize — or a replay.
    Decode(DecodeError),
    /// Our own message (looped back by a hub).
    Own,
    /// Sent on one path, received on another: miscabling or bridged hubs. Trusting the header
    /// would make the node believe a path works that does not.
    Path { sent: Path, received: Path },
}

impl Rejected {
    /// Stable metrics label.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejected::Decode(e) => e.reason(),
            Rejected::Own => "own",
            Rejected::Path { .. } => "path",
        }
    }
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejected::Decode(e) => write!(f, "{e}"),
            Rejected::Own => write!(f, "own message"),
            Rejected::Path { sent, received } => {
                write!(f, "sent on {sent:?}, received on {received:?}")
            }
        }
    }
}

/// An accepted frame: who sent it and what type it was (for per-path counters).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub sender: NodeId,
    pub sequence: u64,
    pub token: &'static str,
}

/// Counters for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    pub classifications: u64,
    pub classifications_skipped: u64,
    pub dropped_transmits: u64,
    pub dropped_events: u64,
    pub heartbeats_sent: u64,
    /// Times this node found it had not run for over two heartbeat intervals.
    pub stalls: u64,
}

#[derive(Clone, Debug)]
struct Incident {
    summary: IncidentSummary,
    opened_at: Instant,
    /// An identical verdict was acked by us or to us.
    agreed: bool,
    last_proposal: Option<Instant>,
}

#[derive(Clone, Debug)]
struct Isolation {
    incident: IncidentId,
    /// The isolate hook succeeded.
    confirmed: bool,
    hook_pending: bool,
    retry_at: Option<Instant>,
    confirmations_left: u32,
}

/// Last facts a peer told us (kept when its view goes stale: we act on its last word).
#[derive(Clone, Debug, Default)]
struct PeerInfo {
    isolated: bool,
    quiesced: bool,
    incident: Option<IncidentSummary>,
    incarnation: u64,
    /// Its last service claims and when it made them (rule 8).
    holds: BTreeMap<NodeId, IncidentId>,
    claimed_at: Option<Instant>,
}

#[derive(Clone, Debug)]
struct Fencing {
    incident: IncidentId,
    in_flight: bool,
    next_attempt: Instant,
}

/// The classifier's input without times, to skip re-classifying unchanged evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ClassKey {
    views: Vec<(NodeId, View)>,
    stale: Vec<(NodeId, StaleWhat)>,
    quiesced: BTreeSet<NodeId>,
}

/// One hadiag node (see the module doc).
#[derive(Debug)]
pub struct Node {
    topology: Arc<Topology>,
    me: NodeId,
    incarnation: u64,
    options: NodeOptions,
    timing: Timing,
    thresholds: Thresholds,
    evidence: Evidence,
    /// Every path we send on: networks (`to: None`) and serial lines (`to: Some(peer)`).
    paths: Vec<(Path, Option<NodeId>)>,
    sequence: u64,
    next_heartbeat: Instant,
    last_activity: Instant,
    quiesced: bool,
    isolation: Option<Isolation>,
    diagnosis: Diagnosis,
    class_key: Option<ClassKey>,
    own_view: View,
    quiesced_peers: BTreeSet<NodeId>,
    /// Peers with a fresh view at the last classification.
    fresh_peers: BTreeMap<NodeId, View>,
    incident: Option<Incident>,
    next_incident_number: u32,
    differs_since: Option<Instant>,
    echoes: BTreeMap<(Path, NodeId), (u64, Instant)>,
    peers: BTreeMap<NodeId, PeerInfo>,
    silent_since: BTreeMap<NodeId, Instant>,
    cut_since: Option<Instant>,
    losing_since: Option<Instant>,
    cut_off_verdict_since: Option<Instant>,
    rejoin_ready_since: Option<Instant>,
    held: BTreeMap<NodeId, IncidentId>,
    /// Isolated and ready to rejoin once nobody claims our services (advertised).
    rejoin_ready: bool,
    /// The operator ran `resume` while isolated under the manual policy: rejoin once handed back.
    released: bool,
    fencing: BTreeMap<NodeId, Fencing>,
    wake: Option<Instant>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: NodeStats,
    /// Drops replays of authentic frames (one window per sender, bounded by the topology).
    replay: ReplayFilter,
}

impl Node {
    /// A node `me` of `topology`, started at `now` with a fresh `incarnation` (it must differ
    /// on every start, e.g. the boot time in nanoseconds).
    pub fn new(
        topology: Arc<Topology>,
        me: NodeId,
        incarnation: u64,
        options: NodeOptions,
        now: Instant,
    ) -> Node {
        let mut paths = Vec::new();
        if let Some(spec) = topology.nodes.get(me.index()) {
            for iface in &spec.interfaces {
                paths.push((Path::Network(iface.network), None));
            }
        }
        for (a, b) in topology.serial_lines() {
            if a == me {
                paths.push((Path::Serial, Some(b)));
            } else if b == me {
                paths.push((Path::Serial, Some(a)));
            }
        }
        let evidence = Evidence::new(&topology, me, now);
        let timing = topology.timing.clone();
        let thresholds = topology.thresholds.clone();
        let replay = ReplayFilter::new(&topology);
        Node {
            diagnosis: Diagnosis::healthy(me, now, Vec::new(), &topology),
            topology,
            me,
            incarnation,
            options,
            timing,
            thresholds,
            evidence,
            paths,
            sequence: 0,
            next_heartbeat: now,
            last_activity: now,
            quiesced: false,
            isolation: None,
            class_key: None,
            own_view: View::default(),
            quiesced_peers: BTreeSet::new(),
            fresh_peers: BTreeMap::new(),
            incident: None,
            // Incident numbers start from the incarnation so a restart never reuses an id.
            next_incident_number: ((incarnation as u32) << 16) | 1,
            differs_since: None,
            echoes: BTreeMap::new(),
            peers: BTreeMap::new(),
            silent_since: BTreeMap::new(),
            cut_since: None,
            losing_since: None,
            cut_off_verdict_since: None,
            rejoin_ready_since: None,
            held: BTreeMap::new(),
            rejoin_ready: false,
            released: false,
            fencing: BTreeMap::new(),
            wake: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: NodeStats::default(),
            replay,
        }
    }

    // ----- accessors -------------------------------------------------------------------

    pub fn me(&self) -> NodeId {
        self.me
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The current verdict.
    pub fn diagnosis(&self) -> &Diagnosis {
        &self.diagnosis
    }

    pub fn role(&self) -> Role {
        if self.isolation.is_some() {
            Role::Isolated
        } else if self.quiesced {
            Role::Quiesced
        } else {
            Role::Active
        }
    }

    /// The isolate hook has succeeded (what peers see as `isolated`).
    pub fn isolation_confirmed(&self) -> bool {
        self.isolation.as_ref().is_some_and(|i| i.confirmed)
    }

    /// The state a restart must keep (see [`DurableState`]).
    pub fn durable(&self) -> DurableState {
        DurableState {
            incarnation: self.incarnation,
            isolated: self.isolation.as_ref().map(|i| i.incident),
            released: self.released,
            held: self.held.clone(),
            next_incident_number: self.next_incident_number,
        }
    }

    /// Resumes from the state of an earlier run (call once, right after [`Node::new`]): stays
    /// isolated (running the isolate hook again) or keeps holding peers' services (running
    /// the takeover hook again), and never reuses an incident number.
    pub fn restore(&mut self, now: Instant, state: &DurableState) {
        self.next_incident_number = self.next_incident_number.max(state.next_incident_number);
        if let Some(id) = state.isolated {
            self.isolate_in(
                now,
                Some(id),
                "restarted while isolated: staying isolated until the rejoin policy allows"
                    .to_string(),
            );
            self.released = state.released;
            return;
        }
        for (&peer, &incident) in &state.held {
            if peer != self.me && peer.index() < self.topology.nodes.len() {
                self.take_over(now, peer, incident, "held before the restart");
            }
        }
    }

    /// The incident the node works on.
    pub fn incident(&self) -> Option<&IncidentSummary> {
        self.incident.as_ref().map(|i| &i.summary)
    }

    /// Whether the current incident's verdict was acked by us or to us.
    pub fn incident_agreed(&self) -> bool {
        self.incident.as_ref().is_some_and(|i| i.agreed)
    }

    /// Peers whose services this node holds (took over), with the incident.
    pub fn held_peers(&self) -> &BTreeMap<NodeId, IncidentId> {
        &self.held
    }

    /// Own observables as carried in the next heartbeat.
    pub fn own_view(&self, now: Instant) -> View {
        let mut v = self.evidence.own_view(now);
        self.decorate(&mut v);
        v
    }

    /// The classifier's input at `now` (for the JSON API and `explain`).
    pub fn cluster_view(&self, now: Instant) -> ClusterView {
        self.snapshot(now)
    }

    pub fn evidence(&self) -> &Evidence {
        &self.evidence
    }

    pub fn stats(&self) -> &NodeStats {
        &self.stats
    }

    // ----- inputs ----------------------------------------------------------------------

    /// A probe outcome; `obs.at` is now.
    pub fn handle_observation(&mut self, obs: Observation) {
        let now = obs.at;
        self.check_gap(now);
        self.evidence.record_observation(&obs);
        // A changed fact (carrier lost, reference unreachable) is judged at once rather than
        // at the next heartbeat tick: up to one interval sooner.
        if !same_facts(&self.evidence.own_view(now), &self.own_view) {
            self.wake_at(now);
        }
    }

    /// The entry for inbound frames: `bytes` arrived on `path` at `now`. Decodes and
    /// authenticates them with `keys`, checks the path and filters replays, then handles the
    /// message. The daemon and the simulator both feed frames here, so they share one pipeline.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        path: Path,
        bytes: &[u8],
        keys: &Keyring,
    ) -> Result<Accepted, Rejected> {
        let msg = decode(bytes, &self.topology, keys).map_err(Rejected::Decode)?;
        self.handle_frame(now, path, msg)
    }

    /// Like [`Node::handle_datagram`] for a frame that is already decoded and authenticated
    /// (the simulator without its codec): path check and replay filter, then the message.
    pub fn handle_frame(
        &mut self,
        now: Instant,
        path: Path,
        msg: Message,
    ) -> Result<Accepted, Rejected> {
        if msg.header.sender == self.me {
            return Err(Rejected::Own);
        }
        if msg.header.path != path {
            return Err(Rejected::Path {
                sent: msg.header.path,
                received: path,
            });
        }
        self.replay.accept(&msg.header).map_err(Rejected::Decode)?;
        let accepted = Accepted {
            sender: msg.header.sender,
            sequence: msg.header.sequence,
            token: msg.body.token(),
        };
        self.handle_message(now, msg);
        Ok(accepted)
    }

    /// A decoded, authenticated, replay-filtered message received at `now` (drivers use
    /// [`Node::handle_datagram`]; this is for tests that build messages by hand).
    pub fn handle_message(&mut self, now: Instant, msg: Message) {
        self.check_gap(now);
        let sender = msg.header.sender;
        if sender == self.me || sender.index() >= self.topology.nodes.len() {
            return;
        }
        self.evidence.record_message(now, &msg);
        let info = self.peers.entry(sender).or_default();
        if info.incarnation != msg.header.incarnation {
            // A restarted peer starts from scratch: neither isolated nor in maintenance.
            *info = PeerInfo {
                incarnation: msg.header.incarnation,
                ..PeerInfo::default()
            };
        }
        match &msg.body {
            Body::Heartbeat { view, .. } | Body::Proposal { view, .. } => {
                // A peer whose facts changed is judged at once, not at our next tick.
                if self
                    .fresh_peers
                    .get(&sender)
                    .is_none_or(|before| !same_facts(view, before))
                {
                    self.wake = Some(self.wake.map_or(now, |w| w.min(now)));
                }
                info.isolated = view.isolated;
                info.quiesced = view.quiesced;
                info.incident = view.incident.clone();
                info.holds = view.holds.clone();
                info.claimed_at = Some(now);
            }
            Body::Isolated { .. } => info.isolated = true,
            Body::Quiesce => info.quiesced = true,
            Body::Resume => info.quiesced = false,
            Body::Ack { .. } => {}
        }
        let path = msg.header.path;
        match msg.body {
            Body::Heartbeat { .. } => {
                self.echoes
                    .insert((path, sender), (msg.header.sequence, now));
            }
            Body::Proposal { incident, .. } => self.on_proposal(now, sender, incident),
            Body::Ack { incident } => {
                if let Some(inc) = self.incident.as_mut() {
                    if inc.summary == incident {
                        inc.agreed = true;
                    }
                }
                self.evaluate(now);
            }
            Body::Isolated { .. } | Body::Quiesce | Body::Resume => self.evaluate(now),
        }
        self.last_activity = now;
    }

    /// A timer fired (at or after [`Node::poll_timeout`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.check_gap(now);
        if now >= self.next_heartbeat {
            self.evaluate(now);
            self.send_heartbeats(now);
            let interval = self.timing.heartbeat_interval.max(Duration::from_millis(1));
            self.next_heartbeat = self.next_heartbeat + interval;
            if self.next_heartbeat <= now {
                self.next_heartbeat = now + interval; // fell behind: do not burst
            }
        } else if self.wake.is_some_and(|w| now >= w) {
            self.evaluate(now);
        }
        self.last_activity = now;
    }

    /// The driver finished running a hook.
    pub fn handle_hook_result(
        &mut self,
        now: Instant,
        hook: HookKind,
        incident: IncidentId,
        success: bool,
    ) {
        self.check_gap(now);
        match hook {
            HookKind::Isolate => {
                if let Some(iso) = self.isolation.as_mut() {
                    iso.hook_pending = false;
                    if success {
                        iso.confirmed = true;
                        iso.confirmations_left = ISOLATED_REPEATS;
                        let id = iso.incident;
                        self.broadcast(now, Body::Isolated { incident: id });
                    } else {
                        iso.retry_at = Some(now + HOOK_RETRY);
                        self.alert(
                            Severity::Critical,
                            Some(incident),
                            "isolate hook failed; retrying".to_string(),
                        );
                    }
                }
            }
            HookKind::Fence { peer } => {
                if success {
                    self.take_over(now, peer, incident, "fenced");
                } else {
                    if let Some(f) = self.fencing.get_mut(&peer) {
                        f.in_flight = false;
                        f.next_attempt = now + HOOK_RETRY;
                    }
                    let name = self.name(peer);
                    self.alert(
                        Severity::Critical,
                        Some(incident),
                        format!("fence hook against {name} failed; not taking over, retrying"),
                    );
                }
            }
            HookKind::TakeOver { peer } => {
                if !success {
                    let name = self.name(peer);
                    self.alert(
                        Severity::Critical,
                        Some(incident),
                        format!("takeover hook for {name} failed"),
                    );
                }
            }
        }
        self.evaluate(now);
        self.last_activity = now;
    }

    /// Planned maintenance starts (docs/isolation-rules.md, maintenance).
    pub fn quiesce(&mut self, now: Instant) {
        self.check_gap(now);
        if !self.quiesced {
            self.quiesced = true;
            self.broadcast(now, Body::Quiesce);
            self.alert(
                Severity::Info,
                None,
                "planned maintenance announced (quiesce)".to_string(),
            );
        }
        self.last_activity = now;
    }

    /// Planned maintenance ends; also ends an isolation under [`RejoinPolicy::Manual`].
    pub fn resume(&mut self, now: Instant) {
        self.check_gap(now);
        if self.quiesced {
            self.quiesced = false;
            self.broadcast(now, Body::Resume);
            self.alert(
                Severity::Info,
                None,
                "planned maintenance ended (resume)".to_string(),
            );
        } else if self.isolation.is_some() {
            // Rule 8: a peer that runs our services hands them back first.
            if self.claims_on_me(now).is_empty() {
                self.rejoin(now);
            } else {
                self.released = true;
                self.rejoin_ready = true;
                self.alert(
                    Severity::Info,
                    None,
                    "resume: rejoining once the peers holding this node's services hand them back"
                        .to_string(),
                );
            }
        }
        self.last_activity = now;
    }

    /// Live reload of timers and thresholds.
    pub fn update_timing(&mut self, timing: Timing, thresholds: Thresholds) {
        self.evidence.set_timing(timing.clone());
        self.evidence.set_thresholds(thresholds.clone());
        let next = self.last_activity + timing.heartbeat_interval;
        if next < self.next_heartbeat {
            self.next_heartbeat = next;
        }
        self.timing = timing;
        self.thresholds = thresholds;
        self.class_key = None;
    }

    /// Live reload of the policy switches: consulted at each decision, so the next one uses
    /// them (a fence already requested still reports its result).
    pub fn update_options(&mut self, options: NodeOptions) {
        self.options = options;
    }

    pub fn options(&self) -> &NodeOptions {
        &self.options
    }

    // ----- outputs ---------------------------------------------------------------------

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`Node::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(match self.wake {
            Some(w) if w < self.next_heartbeat => w,
            _ => self.next_heartbeat,
        })
    }

    // ----- internals -------------------------------------------------------------------

    fn name(&self, n: NodeId) -> String {
        self.topology.node_name(n).to_string()
    }

    fn heal_hold(&self) -> Duration {
        self.timing.heartbeat_interval * self.thresholds.heal_successes.max(1)
    }

    /// A gap longer than `fence_deadline` between calls means we were frozen: peers may
    /// have treated us as gone and taken over. Isolate before doing anything else.
    fn check_gap(&mut self, now: Instant) {
        // The node wakes at least once per heartbeat interval to send; a longer gap means it
        // was not running (descheduled, frozen, the whole VM paused). Silence that overlaps
        // our own absence proves nothing about the peers — after a VM pause every peer looks
        // dead at once — so evidence is judged afresh, as at start.
        if now - self.last_activity > self.timing.heartbeat_interval * 2 {
            self.evidence.restart_warm_up(now);
            self.stats.stalls += 1;
        }
        if now - self.last_activity > self.timing.fence_deadline
            && self.isolation.is_none()
            && !self.quiesced
        {
            let gap = now - self.last_activity;
            self.class_key = None;
            self.isolate(
                now,
                format!(
                    "this node did not run for {} ms (frozen?), longer than fence_deadline: peers may hold its services",
                    gap.as_millis()
                ),
            );
        }
        self.last_activity = self.last_activity.max(now);
    }

    fn decorate(&self, v: &mut View) {
        v.quiesced = self.quiesced;
        v.isolated = self.isolation_confirmed();
        v.incident = self.incident.as_ref().map(|i| i.summary.clone());
        v.holds = self.held.clone();
        v.rejoin_ready = self.isolation.is_some() && self.rejoin_ready;
    }

    fn snapshot(&self, now: Instant) -> ClusterView {
        let mut cv = self.evidence.snapshot(now);
        if let Some(r) = cv.reports.get_mut(&self.me) {
            self.decorate(&mut r.view);
        }
        if self.quiesced {
            cv.quiesced.insert(self.me);
        }
        cv
    }

    fn push_transmit(&mut self, t: Transmit) {
        if self.transmits.len() >= MAX_QUEUED_TRANSMITS {
            match self
                .transmits
                .iter()
                .position(|t| matches!(t.message.body, Body::Heartbeat { .. }))
            {
                Some(i) => {
                    self.transmits.remove(i);
                }
                None => {
                    self.transmits.pop_front();
                }
            }
            self.stats.dropped_transmits += 1;
        }
        self.transmits.push_back(t);
    }

    fn push_event(&mut self, e: Event) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
            self.stats.dropped_events += 1;
        }
        self.events.push_back(e);
    }

    fn alert(&mut self, severity: Severity, incident: Option<IncidentId>, text: String) {
        self.push_event(Event::Alert(Alert {
            severity,
            incident,
            text,
        }));
    }

    fn message(&mut self, path: Path, body: Body) -> Message {
        self.sequence += 1;
        Message {
            header: Header {
                sender: self.me,
                incarnation: self.incarnation,
                sequence: self.sequence,
                path,
            },
            body,
            extensions: Vec::new(),
        }
    }

    /// Sends `body` on every path we have.
    fn broadcast(&mut self, _now: Instant, body: Body) {
        for i in 0..self.paths.len() {
            let (path, to) = self.paths[i];
            let message = self.message(path, body.clone());
            self.push_transmit(Transmit { path, to, message });
        }
    }

    /// Sends `body` to `peer` on every path shared with it.
    fn send_to(&mut self, peer: NodeId, body: Body) {
        for i in 0..self.paths.len() {
            let (path, to) = self.paths[i];
            let shares = match (path, to) {
                (Path::Serial, Some(p)) => p == peer,
                (Path::Network(s), _) => self
                    .topology
                    .nodes
                    .get(peer.index())
                    .is_some_and(|n| n.interface(s).is_some()),
                _ => false,
            };
            if shares {
                let message = self.message(path, body.clone());
                self.push_transmit(Transmit {
                    path,
                    to: Some(peer),
                    message,
                });
            }
        }
    }

    fn send_heartbeats(&mut self, now: Instant) {
        let detect = self.timing.detect_time();
        let mut view = self.evidence.own_view(now);
        self.decorate(&mut view);
        for i in 0..self.paths.len() {
            let (path, to) = self.paths[i];
            let echo: Vec<Echo> = self
                .echoes
                .range((path, NodeId(0))..=(path, NodeId(u16::MAX)))
                .filter(|(&(_, peer), &(_, at))| now - at <= detect && to.is_none_or(|t| t == peer))
                .map(|(&(_, peer), &(sequence, at))| Echo {
                    peer,
                    sequence,
                    held: Duration::from_millis((now - at).as_millis() as u64),
                })
                .collect();
            let message = self.message(
                path,
                Body::Heartbeat {
                    view: view.clone(),
                    echo,
                },
            );
            self.evidence
                .record_sent(now, path, message.header.sequence);
            self.push_transmit(Transmit { path, to, message });
            self.stats.heartbeats_sent += 1;
        }
        // Repeat a fresh isolation confirmation a few times.
        if let Some(iso) = self.isolation.as_mut() {
            if iso.confirmed && iso.confirmations_left > 0 {
                iso.confirmations_left -= 1;
                let id = iso.incident;
                self.broadcast(now, Body::Isolated { incident: id });
            }
        }
    }

    /// Re-classify (when the evidence changed), then run incidents, rules and proposals.
    fn evaluate(&mut self, now: Instant) {
        self.reclassify(now);
        self.track_incident(now);
        self.apply_rules(now);
        self.send_proposal(now);
    }

    fn reclassify(&mut self, now: Instant) {
        let cv = self.snapshot(now);
        let key = ClassKey {
            views: cv
                .reports
                .iter()
                .map(|(&n, r)| {
                    let mut v = r.view.clone();
                    v.incident = None;
                    (n, v)
                })
                .collect(),
            stale: cv
                .stale
                .iter()
                .map(|s| (s.source, s.what.clone()))
                .collect(),
            quiesced: cv.quiesced.clone(),
        };
        self.own_view = cv
            .reports
            .get(&self.me)
            .map(|r| r.view.clone())
            .unwrap_or_default();
        self.fresh_peers = cv
            .reports
            .iter()
            .filter(|(&n, _)| n != self.me)
            .map(|(&n, r)| (n, r.view.clone()))
            .collect();
        self.quiesced_peers = cv
            .quiesced
            .iter()
            .copied()
            .filter(|&n| n != self.me)
            .collect();
        for (&n, info) in &self.peers {
            if info.quiesced {
                self.quiesced_peers.insert(n);
            }
        }
        if self.class_key.as_ref() == Some(&key) {
            self.stats.classifications_skipped += 1;
            return;
        }
        self.class_key = Some(key);
        self.stats.classifications += 1;
        let diagnosis = classify(&self.topology, &cv);
        let previous = self.diagnosis.summary();
        let changed =
            previous != diagnosis.summary() || self.diagnosis.ambiguous != diagnosis.ambiguous;
        let kind_changed = self.diagnosis.kind != diagnosis.kind;
        self.diagnosis = diagnosis;
        if changed {
            self.push_event(Event::DiagnosisChanged {
                previous,
                diagnosis: Box::new(self.diagnosis.clone()),
            });
            if kind_changed || self.diagnosis.is_failure() {
                let severity = match self.diagnosis.kind {
                    VerdictKind::Healthy => Severity::Info,
                    VerdictKind::Degraded
                    | VerdictKind::SerialFailed
                    | VerdictKind::UpstreamFailed => Severity::Warning,
                    _ => Severity::Critical,
                };
                let text = crate::core::classify::headline(&self.topology, &self.diagnosis);
                let id = self.incident.as_ref().map(|i| i.summary.id);
                self.alert(severity, id, text);
            }
        }
    }

    fn verdict(&self) -> (VerdictKind, &[Component]) {
        (self.diagnosis.kind, &self.diagnosis.subjects)
    }

    fn same_verdict(a: &IncidentSummary, kind: VerdictKind, subjects: &[Component]) -> bool {
        a.kind == kind && a.subjects == subjects
    }

    /// The winning id among peers' fresh incidents with our verdict, if it beats `than`.
    fn peer_incident_with_verdict(&self, than: Option<IncidentId>) -> Option<IncidentSummary> {
        let (kind, subjects) = self.verdict();
        self.fresh_peers
            .values()
            .filter_map(|v| v.incident.as_ref())
            .filter(|i| Self::same_verdict(i, kind, subjects))
            .filter(|i| than.is_none_or(|t| agreement::wins_over(i.id, t)))
            .min_by_key(|i| (i.id.opener, i.id.number))
            .cloned()
    }

    fn open_incident(&mut self, now: Instant, summary: Option<IncidentSummary>) {
        let summary = summary.unwrap_or_else(|| {
            let id = IncidentId {
                opener: self.me,
                number: self.next_incident_number,
            };
            self.next_incident_number = self.next_incident_number.wrapping_add(1);
            IncidentSummary {
                id,
                kind: self.diagnosis.kind,
                subjects: self.diagnosis.subjects.clone(),
            }
        });
        self.incident = Some(Incident {
            summary: summary.clone(),
            opened_at: now,
            agreed: false,
            last_proposal: None,
        });
        self.differs_since = None;
        self.push_event(Event::IncidentOpened { incident: summary });
    }

    fn close_incident(&mut self, now: Instant, superseded_by: Option<IncidentId>) {
        if let Some(inc) = self.incident.take() {
            self.push_event(Event::IncidentClosed {
                incident: inc.summary,
                open_for: now - inc.opened_at,
                superseded_by,
            });
        }
        self.differs_since = None;
    }

    fn track_incident(&mut self, now: Instant) {
        let (kind, _) = self.verdict();
        let worthy = agreement::opens_incident(kind);
        match &self.incident {
            Some(inc) if Self::same_verdict(&inc.summary, kind, &self.diagnosis.subjects) => {
                self.differs_since = None;
                let mine = inc.summary.id;
                let agreed = inc.agreed;
                if let Some(theirs) = self.peer_incident_with_verdict(Some(mine)) {
                    self.close_incident(now, Some(theirs.id));
                    self.open_incident(now, Some(theirs));
                    if let Some(i) = self.incident.as_mut() {
                        i.agreed = agreed;
                    }
                }
            }
            Some(inc) => {
                let escalate = worthy
                    && agreement::needs_action(kind)
                    && !agreement::needs_action(inc.summary.kind);
                let since = *self.differs_since.get_or_insert(now);
                if escalate || now - since >= self.heal_hold() {
                    self.close_incident(now, None);
                    if worthy {
                        let theirs = self.peer_incident_with_verdict(None);
                        self.open_incident(now, theirs);
                    }
                } else {
                    self.wake_at(since + self.heal_hold());
                }
            }
            None if worthy => {
                let theirs = self.peer_incident_with_verdict(None);
                self.open_incident(now, theirs);
            }
            None => {}
        }
    }

    /// Incident to attach an isolation or takeover to: the current one, or a fresh one.
    fn ensure_incident(
        &mut self,
        now: Instant,
        kind: VerdictKind,
        subjects: Vec<Component>,
    ) -> IncidentId {
        if let Some(inc) = &self.incident {
            return inc.summary.id;
        }
        let id = IncidentId {
            opener: self.me,
            number: self.next_incident_number,
        };
        self.next_incident_number = self.next_incident_number.wrapping_add(1);
        self.open_incident(now, Some(IncidentSummary { id, kind, subjects }));
        id
    }

    fn wake_at(&mut self, t: Instant) {
        if self.wake.is_none_or(|w| t < w) {
            self.wake = Some(t);
        }
    }

    fn on_proposal(&mut self, now: Instant, from: NodeId, proposed: IncidentSummary) {
        // The proposer's view is already merged into the evidence (record_message).
        self.reclassify(now);
        self.track_incident(now);
        let (kind, subjects) = self.verdict();
        if Self::same_verdict(&proposed, kind, subjects) {
            let ack = match &self.incident {
                Some(inc) if inc.summary.id == proposed.id => true,
                Some(inc) if agreement::wins_over(inc.summary.id, proposed.id) => false,
                _ => {
                    self.close_incident(now, Some(proposed.id));
                    self.open_incident(now, Some(proposed.clone()));
                    true
                }
            };
            if ack {
                if let Some(inc) = self.incident.as_mut() {
                    inc.agreed = true;
                }
                self.send_to(from, Body::Ack { incident: proposed });
            }
        }
        self.apply_rules(now);
        self.send_proposal(now);
    }

    fn send_proposal(&mut self, now: Instant) {
        let interval = self.timing.heartbeat_interval;
        let any_heard = self
            .topology
            .node_ids()
            .any(|p| p != self.me && self.heard_any(now, p));
        let Some(inc) = self.incident.as_mut() else {
            return;
        };
        if inc.agreed || !agreement::needs_action(inc.summary.kind) || !any_heard {
            return;
        }
        if inc.last_proposal.is_some_and(|t| now - t < interval) {
            return;
        }
        inc.last_proposal = Some(now);
        let incident = inc.summary.clone();
        let view = self.own_view.clone();
        self.broadcast(now, Body::Proposal { incident, view });
    }

    /// Whether `peer` is heard on any path (network or serial) now.
    fn heard_any(&self, now: Instant, peer: NodeId) -> bool {
        self.paths.iter().any(|&(path, to)| match path {
            Path::Serial => to == Some(peer) && self.evidence.heard(now, peer, path),
            Path::Network(_) => self.evidence.heard(now, peer, path),
        })
    }

    fn isolate(&mut self, now: Instant, reason: String) {
        self.isolate_in(now, None, reason);
    }

    /// Isolates under `incident` (or the current one, or a fresh cut-off incident).
    fn isolate_in(&mut self, now: Instant, incident: Option<IncidentId>, reason: String) {
        if self.isolation.is_some() {
            return;
        }
        let id = match incident {
            Some(id) => id,
            None => self.ensure_incident(now, VerdictKind::CutOff, vec![Component::Node(self.me)]),
        };
        // The isolate hook quiesces everything this node runs, the services it took over
        // included: it claims nothing any more.
        self.held.clear();
        self.rejoin_ready = false;
        self.released = false;
        self.isolation = Some(Isolation {
            incident: id,
            confirmed: false,
            hook_pending: true,
            retry_at: None,
            confirmations_left: 0,
        });
        self.rejoin_ready_since = None;
        self.fencing.clear();
        self.push_event(Event::IsolateSelf {
            incident: id,
            diagnosis: Box::new(self.diagnosis.clone()),
            reason: reason.clone(),
        });
        self.alert(Severity::Critical, Some(id), format!("isolating: {reason}"));
    }

    fn take_over(&mut self, _now: Instant, peer: NodeId, incident: IncidentId, how: &str) {
        self.fencing.remove(&peer);
        if self.held.contains_key(&peer) || self.isolation.is_some() {
            return;
        }
        self.held.insert(peer, incident);
        self.push_event(Event::TakeOver { peer, incident });
        let name = self.name(peer);
        self.alert(
            Severity::Critical,
            Some(incident),
            format!("taking over the services of {name} ({how})"),
        );
    }

    fn rejoin(&mut self, now: Instant) {
        let incident = self.isolation.take().map(|i| i.incident);
        self.rejoin_ready = false;
        self.released = false;
        self.cut_since = None;
        self.losing_since = None;
        self.cut_off_verdict_since = None;
        self.rejoin_ready_since = None;
        self.silent_since.clear();
        self.last_activity = now;
        self.push_event(Event::Rejoined { incident });
        self.alert(
            Severity::Info,
            incident,
            "left isolation: evidence healed".to_string(),
        );
    }

    fn apply_rules(&mut self, now: Instant) {
        self.wake = None;
        let me = self.me;
        let peers: Vec<NodeId> = self.topology.node_ids().filter(|&p| p != me).collect();
        let heard: BTreeSet<NodeId> = peers
            .iter()
            .copied()
            .filter(|&p| self.heard_any(now, p))
            .collect();
        for &p in &peers {
            if heard.contains(&p) {
                self.silent_since.remove(&p);
            } else {
                self.silent_since.entry(p).or_insert(now);
            }
        }
        let isolated_peers: BTreeSet<NodeId> = peers
            .iter()
            .copied()
            .filter(|p| {
                self.fresh_peers.get(p).map_or_else(
                    || self.peers.get(p).is_some_and(|i| i.isolated),
                    |v| v.isolated,
                )
            })
            .collect();
        let relevant: BTreeSet<NodeId> = peers
            .iter()
            .copied()
            .filter(|p| !self.quiesced_peers.contains(p) && !isolated_peers.contains(p))
            .collect();
        let reach_ref = self
            .own_view
            .nets
            .values()
            .any(|nv| nv.reference == Reach::Yes);
        let alone = heard.is_empty() && !relevant.is_empty();
        let many = self.topology.nodes.len() >= 3;
        let self_fence_after = self.timing.self_fence_after;

        // Reasons to isolate, evaluated for active and isolated nodes alike (rejoin needs
        // every one of them to be gone).
        let mut reasons: Vec<(Instant, String)> = Vec::new();
        // Rule 2.
        if alone && !reach_ref {
            let since = *self.cut_since.get_or_insert(now);
            reasons.push((
                since + self_fence_after,
                format!(
                    "hears no peer on any path and reaches no reference for {} ms (rule 2)",
                    self_fence_after.as_millis()
                ),
            ));
        } else {
            self.cut_since = None;
        }
        // Rule 4.
        let eligible: BTreeSet<NodeId> = std::iter::once(me)
            .chain(relevant.iter().copied())
            .collect();
        let members: BTreeSet<NodeId> = std::iter::once(me)
            .chain(heard.iter().copied().filter(|p| relevant.contains(p)))
            .collect();
        if many && members != eligible {
            let side_reaches = reach_ref
                || members.iter().any(|m| {
                    self.fresh_peers
                        .get(m)
                        .is_some_and(|v| v.nets.values().any(|nv| nv.reference == Reach::Yes))
                });
            let side = Side {
                members: members.clone(),
                reaches_reference: side_reaches,
                eligible: eligible.clone(),
            };
            if !agreement::side_survives(&self.topology, &side) {
                let since = *self.losing_since.get_or_insert(now);
                reasons.push((
                    since + self_fence_after,
                    format!(
                        "partition: our side ({} of {} nodes{}) loses to the other side (rule 4)",
                        members.len(),
                        eligible.len(),
                        if side_reaches {
                            ""
                        } else {
                            ", reaching no reference"
                        }
                    ),
                ));
            } else {
                self.losing_since = None;
            }
        } else {
            self.losing_since = None;
        }
        // Rule 1: a cut-off verdict about us.
        // Rule 9: an ambiguous verdict (a tie broken by priors) isolates nobody.
        let cut_off_me = !self.diagnosis.ambiguous
            && agreement::isolation_subjects(self.diagnosis.kind, &self.diagnosis.subjects)
                .contains(&me);
        if cut_off_me {
            let since = *self.cut_off_verdict_since.get_or_insert(now);
            let agreed = self.incident.as_ref().is_some_and(|i| {
                i.agreed
                    && agreement::isolation_subjects(i.summary.kind, &i.summary.subjects)
                        .contains(&me)
            });
            // One-way (we still hear a peer on some network, it does not hear us): the onset
            // of loss on our NIC looks the same for a few heartbeats, until the peers' silence
            // thresholds adapt to it, so the verdict must hold for self_fence_after even when
            // agreed — the same wait as without agreement, so the fence margin still holds.
            let one_way = self.own_view.nets.values().any(|nv| !nv.heard.is_empty());
            let at = if agreed && !one_way {
                now
            } else {
                since + self_fence_after
            };
            let how = match (agreed, one_way) {
                (true, false) => "agreed with a peer",
                (true, true) => "agreed with a peer, held for self_fence_after as we still hear peers that do not hear us",
                (false, _) => "no agreement within self_fence_after",
            };
            reasons.push((
                at,
                format!("this node is cut off from every network ({how}, rule 1)"),
            ));
        } else {
            self.cut_off_verdict_since = None;
        }
        // Disk policy.
        if self.options.isolate_on_disk_failure
            && matches!(self.own_view.disk, DiskHealth::Failing | DiskHealth::Hung)
        {
            reasons.push((
                now,
                "own disk is failing or hung (policy isolate_on_disk_failure)".to_string(),
            ));
        }

        if self.quiesced {
            return; // planned maintenance: no isolation, no takeover
        }

        // Rule 8: a peer runs our services (we were frozen, partitioned or restarted while it
        // took them over). Resuming them would make two holders: isolate at once instead.
        if self.isolation.is_none() {
            if let Some(&(holder, id)) = self.claims_on_me(now).first() {
                let reason = format!(
                    "{} holds this node's services (incident {}:{}); not resuming them, rejoining only after it hands them back (rule 8)",
                    self.name(holder),
                    self.name(id.opener),
                    id.number
                );
                self.isolate_in(now, Some(id), reason);
                return;
            }
        }

        if self.isolation.is_some() {
            self.isolated_duties(now, &reasons, &heard, reach_ref);
            return;
        }

        if let Some((at, reason)) = reasons.iter().min_by_key(|(at, _)| *at).cloned() {
            if now >= at {
                self.isolate(now, reason);
                return;
            }
            self.wake_at(at);
        }

        // Survivor duties.
        let mut active_members: BTreeSet<NodeId> = BTreeSet::from([me]);
        for &p in &heard {
            if !isolated_peers.contains(&p) && !self.quiesced_peers.contains(&p) {
                active_members.insert(p);
            }
        }
        let designated =
            agreement::designated_survivor(&self.topology, &active_members) == Some(me);
        let incident_id = self.incident.as_ref().map(|i| i.summary.id);
        // Peers that confirmed their isolation: take over their services.
        for &p in &isolated_peers {
            // A peer ready to rejoin waits for its services to come back, not to be taken.
            let ready = self.fresh_peers.get(&p).is_some_and(|v| v.rejoin_ready);
            if designated
                && !ready
                && !self.held.contains_key(&p)
                && heard.contains(&p)
                && self.other_holder(p).is_none()
            {
                let id = self
                    .fresh_peers
                    .get(&p)
                    .and_then(|v| v.incident.as_ref().map(|i| i.id))
                    .or(incident_id)
                    .unwrap_or(IncidentId {
                        opener: p,
                        number: 0,
                    });
                self.take_over(now, p, id, "it confirmed its isolation");
            }
        }
        // Silent peers: treated as gone after fence_deadline (rules 3 and 4).
        let stagger =
            self.options.fence_stagger * agreement::priority_rank(&self.topology, me) as u32;
        for &p in relevant.iter() {
            if heard.contains(&p) || self.held.contains_key(&p) || self.other_holder(p).is_some() {
                continue;
            }
            let Some(&since) = self.silent_since.get(&p) else {
                continue;
            };
            // Rule 7: death needs transitive evidence. A peer that another node still hears,
            // or that the verdict explains as alive, is behind a non-transitive partition.
            if self.heard_by_others(p) || self.diagnosis_names_alive(p) {
                self.silent_since.insert(p, now);
                continue;
            }
            let mut due = since + self.timing.fence_deadline;
            if self.options.fence_hook {
                due = due + stagger;
            }
            if now < due {
                self.wake_at(due);
                continue;
            }
            if !designated {
                continue;
            }
            let id = self.ensure_incident(now, VerdictKind::NodeFailed, vec![Component::Node(p)]);
            if self.options.fence_hook {
                let f = self.fencing.entry(p).or_insert(Fencing {
                    incident: id,
                    in_flight: false,
                    next_attempt: now,
                });
                if !f.in_flight && now >= f.next_attempt {
                    f.in_flight = true;
                    let incident = f.incident;
                    self.push_event(Event::Fence { peer: p, incident });
                } else if !f.in_flight {
                    let t = f.next_attempt;
                    self.wake_at(t);
                }
            } else {
                let name = self.name(p);
                let how = if many {
                    "silent past fence_deadline; our side holds the majority"
                } else {
                    "silent past fence_deadline, no fence hook"
                };
                self.take_over(now, p, id, how);
                if !many {
                    self.alert(
                        Severity::Warning,
                        Some(id),
                        format!(
                            "residual risk: {name} may be alive behind a symmetric partition; without a serial line, \
                             a third node or a fence device this cannot be excluded"
                        ),
                    );
                }
            }
        }
        // Two survivors took over the same peer (their views of who is designated differed for
        // a moment): the lower-priority one lets go, so one holder remains (S5).
        let doubled: Vec<(NodeId, IncidentId)> = self
            .held
            .iter()
            .filter(|(&p, _)| {
                self.other_holder(p).is_some_and(|h| {
                    agreement::highest_priority(&self.topology, [h, me]) == Some(h)
                })
            })
            .map(|(&p, &i)| (p, i))
            .collect();
        for (p, i) in doubled {
            self.held.remove(&p);
            let name = self.name(p);
            self.alert(
                Severity::Warning,
                Some(i),
                format!("another survivor also took over {name}: releasing its services here"),
            );
            self.push_event(Event::HandBack {
                peer: p,
                incident: Some(i),
            });
        }
        // Hand back peers that are heard again and no longer named failed.
        let named: BTreeSet<NodeId> = self
            .incident
            .as_ref()
            .map(|i| {
                self.held
                    .keys()
                    .copied()
                    .filter(|&p| agreement::names_as_failed(&i.summary, p))
                    .collect()
            })
            .unwrap_or_default();
        let back: Vec<(NodeId, IncidentId)> = self
            .held
            .iter()
            .filter(|(p, _)| {
                // Rule 8: hand back only to a peer that says it is ready to rejoin (isolated,
                // its evidence healed): a peer that sees our claim isolates at once, and one
                // that stays isolated keeps its services here.
                heard.contains(p)
                    && !named.contains(p)
                    && self.fresh_peers.get(p).is_some_and(|v| v.rejoin_ready)
            })
            .map(|(&p, &i)| (p, i))
            .collect();
        for (p, i) in back {
            self.held.remove(&p);
            self.push_event(Event::HandBack {
                peer: p,
                incident: Some(i),
            });
        }
    }

    /// Peers that claim to run this node's services (rule 8): claims heard within
    /// `fence_deadline` (a holder silent for longer is treated as gone, as for takeover).
    fn claims_on_me(&self, now: Instant) -> Vec<(NodeId, IncidentId)> {
        let me = self.me;
        self.peers
            .iter()
            .filter_map(|(&p, info)| {
                let id = *info.holds.get(&me)?;
                let recent = info
                    .claimed_at
                    .is_some_and(|t| now - t <= self.timing.fence_deadline);
                recent.then_some((p, id))
            })
            .collect()
    }

    /// A peer other than `p` whose fresh view claims `p`'s services.
    fn other_holder(&self, p: NodeId) -> Option<NodeId> {
        self.fresh_peers
            .iter()
            .find(|(&q, v)| q != p && v.holds.contains_key(&p))
            .map(|(&q, _)| q)
    }

    /// Rule 7: another node's fresh view hears `p` on some path.
    fn heard_by_others(&self, p: NodeId) -> bool {
        self.fresh_peers.iter().any(|(&q, v)| {
            q != p
                && (v.nets.values().any(|nv| nv.heard.contains(&p))
                    || v.serial.get(&p) == Some(&true))
        })
    }

    /// Rule 7: the (unambiguous) verdict explains `p`'s silence by faults of its attachments
    /// rather than by its death: it names `p` alive.
    fn diagnosis_names_alive(&self, p: NodeId) -> bool {
        let d = &self.diagnosis;
        !d.ambiguous
            && !d.faults.iter().any(|f| f.component == Component::Node(p))
            && d.faults
                .iter()
                .any(|f| matches!(f.component, Component::Attachment(n, _) if n == p))
    }

    fn isolated_duties(
        &mut self,
        now: Instant,
        reasons: &[(Instant, String)],
        heard: &BTreeSet<NodeId>,
        reach_ref: bool,
    ) {
        // Retry a failed isolate hook.
        let retry = self.isolation.as_ref().and_then(|i| {
            if !i.confirmed && !i.hook_pending {
                i.retry_at
            } else {
                None
            }
        });
        if let Some(t) = retry {
            if now >= t {
                if let Some(iso) = self.isolation.as_mut() {
                    iso.hook_pending = true;
                    iso.retry_at = None;
                    let incident = iso.incident;
                    self.push_event(Event::IsolateSelf {
                        incident,
                        diagnosis: Box::new(self.diagnosis.clone()),
                        reason: "retrying the isolate hook".to_string(),
                    });
                }
            } else {
                self.wake_at(t);
            }
        }
        let policy_allows = self.options.rejoin == RejoinPolicy::AfterHeal || self.released;
        if !policy_allows || !self.isolation_confirmed() {
            self.rejoin_ready = false;
            return;
        }
        let named_by_peer = self.fresh_peers.values().any(|v| {
            v.incident
                .as_ref()
                .is_some_and(|i| agreement::names_as_failed(i, self.me))
        });
        let can_see = !heard.is_empty() || (self.topology.nodes.len() == 2 && reach_ref);
        if self.released || (reasons.is_empty() && !named_by_peer && can_see) {
            self.rejoin_ready = true;
            let since = *self.rejoin_ready_since.get_or_insert(now);
            let due = since + self.timing.self_fence_after;
            // Rule 8: and only once every holder of our services has handed them back.
            let claimed = !self.claims_on_me(now).is_empty();
            if now >= due && !claimed {
                self.rejoin(now);
            } else if !claimed {
                self.wake_at(due);
            }
        } else {
            self.rejoin_ready = false;
            self.rejoin_ready_since = None;
        }
    }
}

/// Whether two views state the same facts (decoration — isolation, maintenance, incident —
/// aside): what decides if a new view is worth an immediate re-classification.
fn same_facts(a: &View, b: &View) -> bool {
    a.nets == b.nets
        && a.serial == b.serial
        && a.disk == b.disk
        && a.failing_monitors == b.failing_monitors
}
