//! The driver: one task owns the core [`Node`]; probes, transports and hook runs feed it through
//! bounded channels, and it turns the node's transmits into frames and its events into hooks,
//! logs and the status file.
//!
//! Loop (single owner, no locks around the core):
//! 1. drain the node: `poll_transmit` → encode → send per path (never blocking);
//!    `poll_event` → logs, hooks (spawned), status;
//! 2. wait for the first of: an observation, a received frame, a hook result, the node's
//!    deadline (`poll_timeout`, mapped to tokio time by [`Clock`]), a signal, the 1 s
//!    housekeeping tick (status file, re-binding NICs whose socket failed);
//! 3. feed it to the node with the current core time.
//!
//! Channel bounds: observations [`OBSERVATION_QUEUE`] (probes wait on a full queue, which only
//! delays that probe), frames in one lane per path of [`crate::transport::PATH_QUEUE`] each,
//! taken in turn ([`crate::transport::inbound`]: receivers drop and count beyond a lane, so a
//! flooded network neither takes another path's room nor delays its frames; UDP datagrams from
//! non-peers are dropped before queueing), hook results [`HOOK_RESULT_QUEUE`]. Order of the wait: signals, hook
//! results, the core's timer, observations, housekeeping, and inbound frames last.
//!
//! Signals: SIGTERM/SIGINT shut down cleanly — no new hooks, no retries, in-flight hook
//! attempts are waited for up to their timeout (then their process groups are killed), probe
//! and receive tasks are stopped and every socket and serial port is closed. SIGHUP reloads
//! (see [`super::reload`]).
//!
//! Incarnation: wall-clock milliseconds at start ([`super::clock::incarnation_now`]).
//!
//! Must not: judge anything (the core does), or block (every slow thing has its own task or
//! thread).

use super::clock::{incarnation_now, Clock};
use super::hooks::{run_hook, HookReport, HookRequest};
use super::observe::Operators;
use super::reload;
use super::status::{self, HookRun, ProbeState, ReloadStatus, StatusFile, HOOK_HISTORY};
use crate::config::{self, Config, ConfigError, ConfigErrors, HookSpec};
use crate::core::diagnosis::IncidentId;
use crate::core::node::{Event, HookKind, Node, NodeOptions, RejoinPolicy, Role};
use crate::core::observation::Observation;
use crate::core::topology::{NetworkId, NodeId, Topology, Transport};
use crate::core::wire::{encode_fitted, KeyError, Keyring, Path, Shed};
use crate::probes::{self, OBSERVATION_QUEUE};
use crate::transport::ethernet::EthernetLink;
use crate::transport::serial::SerialLink;
use crate::transport::udp::UdpLink;
use crate::transport::{Inbound, TransportStats};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

/// Hook results waiting for the core: at most a handful of hooks run at once (one isolate,
/// one takeover/fence per peer), 64 is ample.
pub const HOOK_RESULT_QUEUE: usize = 64;
/// A finished hook run, on its way back to the core.
type HookDone = (HookKind, IncidentId, HookReport);
/// Housekeeping period: status file, retrying NIC sockets that failed to bind.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(ConfigErrors),
    #[error("{0}")]
    Node(ConfigError),
    #[error("authentication key: {0}")]
    Key(KeyError),
    #[error("{0}")]
    Io(String),
}

/// One network's heartbeat socket.
enum NetLink {
    Udp(UdpLink, JoinHandle<()>),
    Ethernet(EthernetLink),
}

/// Everything the driver owns.
struct Driver {
    config_path: PathBuf,
    cfg: Config,
    topo: Arc<Topology>,
    me: NodeId,
    me_name: String,
    clock: Clock,
    started: tokio::time::Instant,
    keys: Keyring,
    /// Where the durable state lives, and what was stored last.
    durable_path: PathBuf,
    durable: super::durable::Stored,
    node: Node,
    stats: Arc<TransportStats>,
    nets: BTreeMap<NetworkId, NetLink>,
    pending_nets: BTreeSet<NetworkId>,
    serial: BTreeMap<NodeId, SerialLink>,
    obs_tx: mpsc::Sender<Observation>,
    in_tx: crate::transport::InboundTx,
    hook_tx: mpsc::Sender<HookDone>,
    hooks: JoinSet<()>,
    shutdown_tx: watch::Sender<bool>,
    probes: Vec<JoinHandle<()>>,
    probe_state: ProbeState,
    received: BTreeMap<(Path, NodeId), u64>,
    rejected: BTreeMap<&'static str, u64>,
    hook_runs: VecDeque<HookRun>,
    reloads: ReloadStatus,
    status_path: PathBuf,
    status_writer: status::StatusWriter,
    /// Metrics, API, journal and alerts (None if they could not start).
    ops: Option<Operators>,
    /// Pacemaker node-health attributes (`pacemaker:` section), fed every verdict change.
    pacemaker: Option<crate::integration::pacemaker::PacemakerHealth>,
    /// What the last encoded message shed to fit (logged when it changes).
    last_shed: Shed,
}

/// The signing key plus every accepted key (`auth.accept`).
fn keyring(cfg: &Config) -> Result<Keyring, DaemonError> {
    let mut k = Keyring::new(&cfg.auth.key_id, &cfg.auth.key).map_err(DaemonError::Key)?;
    for (id, key) in &cfg.auth.accept {
        k.add(id, key).map_err(DaemonError::Key)?;
    }
    Ok(k)
}

/// The core's policy switches from `cfg`; the rejoin policy is the stricter of the
/// configured one and the one the current isolation is bound by (`pinned`, kept in the
/// durable state).
fn node_options(cfg: &Config, pinned: Option<super::durable::StoredRejoin>) -> NodeOptions {
    let configured = if cfg.policy.resume_on_heal {
        RejoinPolicy::AfterHeal
    } else {
        RejoinPolicy::Manual
    };
    NodeOptions {
        fence_hook: cfg.hooks.fence.is_some(),
        isolate_on_disk_failure: cfg.policy.isolate_on_disk_failure,
        rejoin: super::durable::effective(pinned, configured),
        ..NodeOptions::default()
    }
}

/// Starts every probe task for `me` under `cfg`. Called at start and on every applied reload.
pub fn spawn_probes(
    cfg: &Config,
    me: NodeId,
    clock: Clock,
    tx: &mpsc::Sender<Observation>,
) -> Vec<JoinHandle<()>> {
    let t = &cfg.topology;
    let mut tasks = Vec::new();
    let Some(node) = t.nodes.get(me.index()) else {
        return tasks;
    };
    let devices: Vec<(NetworkId, String)> = node
        .interfaces
        .iter()
        .map(|i| (i.network, i.device.clone()))
        .collect();
    tasks.push(probes::spawn_on_own_thread(
        "hadiag-link",
        probes::link::link_task(devices, t.timing.heartbeat_interval, clock, tx.clone()),
    ));
    // Distinct ICMP identifiers per target; seeded by the pid so two daemons sharing a
    // namespace do not collide.
    let mut ident = (std::process::id() as u16).wrapping_mul(64);
    for iface in &node.interfaces {
        let Some(net) = t.networks.get(iface.network.index()) else {
            continue;
        };
        for &target in &net.references {
            ident = ident.wrapping_add(1);
            tasks.push(tokio::spawn(probes::icmp::reference_task(
                iface.network,
                iface.device.clone(),
                target,
                ident,
                t.timing.reference_interval,
                t.timing.reference_timeout,
                clock,
                tx.clone(),
            )));
        }
    }
    if let Some(disk) = &node.disk {
        let path = resolve(cfg, disk);
        tasks.push(tokio::spawn(probes::disk::disk_task(
            path,
            t.timing.disk_interval,
            t.timing.disk_timeout,
            clock,
            tx.clone(),
        )));
    }
    for m in &cfg.monitors {
        tasks.push(tokio::spawn(probes::exec::monitor_task(
            m.clone(),
            clock,
            tx.clone(),
        )));
    }
    tasks
}

fn resolve(cfg: &Config, p: &str) -> PathBuf {
    let p = FsPath::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cfg.base_dir().join(p)
    }
}

impl Driver {
    fn name_of(&self, n: NodeId) -> String {
        self.topo.node_name(n).to_string()
    }

    /// The same id the journal, the API and `explain` show, so an operator can follow one
    /// incident from a hook's environment to `hadiag explain`.
    fn incident_ref(&self, id: IncidentId) -> String {
        crate::journal::record::incident_ref(&self.topo, id)
    }

    /// Opens the heartbeat socket of one of our networks.
    fn open_net(&mut self, net: NetworkId) -> Result<(), String> {
        let t = self.topo.clone();
        let me = t.node(self.me);
        let iface = me.interface(net).ok_or("not attached")?;
        let spec = t.networks.get(net.index()).ok_or("unknown network")?;
        match spec.transport {
            Transport::Udp => {
                let addr = iface.address.ok_or("udp network without an address")?;
                let peers: BTreeMap<NodeId, std::net::SocketAddr> = t
                    .members(net)
                    .filter(|&n| n != self.me)
                    .filter_map(|n| {
                        t.node(n)
                            .interface(net)
                            .and_then(|i| i.address)
                            .map(|a| (n, std::net::SocketAddr::new(a, spec.port)))
                    })
                    .collect();
                let (link, h) = UdpLink::start(
                    net,
                    &iface.device,
                    addr,
                    spec.port,
                    peers,
                    self.clock,
                    self.in_tx.clone(),
                    self.stats.clone(),
                )
                .map_err(|e| e.to_string())?;
                self.nets.insert(net, NetLink::Udp(link, h));
            }
            Transport::Ethernet => {
                let link = EthernetLink::start(
                    net,
                    &iface.device,
                    t.members(net).filter(|&n| n != self.me).count(),
                    self.clock,
                    self.in_tx.clone(),
                    self.stats.clone(),
                )
                .map_err(|e| e.to_string())?;
                self.nets.insert(net, NetLink::Ethernet(link));
            }
        }
        tracing::info!(network = %spec.name, device = %iface.device, transport = ?spec.transport, "heartbeat socket open");
        Ok(())
    }

    fn open_transports(&mut self) {
        let nets: Vec<NetworkId> = self
            .topo
            .node(self.me)
            .interfaces
            .iter()
            .map(|i| i.network)
            .collect();
        for net in nets {
            if let Err(e) = self.open_net(net) {
                let name = self.topo.network(net).name.clone();
                tracing::error!(network = %name, error = %e, "heartbeat socket cannot be opened; retrying every second");
                self.pending_nets.insert(net);
            }
        }
        let serial = self.topo.node(self.me).serial.clone();
        for s in serial {
            let dev = resolve(&self.cfg, &s.device);
            match SerialLink::start(
                s.peer,
                &dev.to_string_lossy(),
                s.baud,
                self.topo.timing.heartbeat_interval,
                self.clock,
                self.in_tx.clone(),
                self.obs_tx.clone(),
                self.stats.clone(),
            ) {
                Ok(l) => {
                    self.serial.insert(s.peer, l);
                }
                Err(e) => {
                    tracing::error!(device = %s.device, error = %e, "serial line cannot be started")
                }
            }
        }
    }

    fn retry_pending(&mut self) {
        let pending: Vec<NetworkId> = self.pending_nets.iter().copied().collect();
        for net in pending {
            if self.open_net(net).is_ok() {
                self.pending_nets.remove(&net);
            }
        }
    }

    fn on_inbound(&mut self, f: Inbound) {
        // Decode, path check and replay filter live in the core (shared with the simulator).
        let now = self.clock.now();
        match self.node.handle_datagram(now, f.path, &f.bytes, &self.keys) {
            Ok(a) => {
                if let (crate::transport::Source::Ethernet(mac), Path::Network(n)) =
                    (&f.source, f.path)
                {
                    if let Some(NetLink::Ethernet(l)) = self.nets.get(&n) {
                        l.learn(a.sender, *mac);
                    }
                }
                *self.received.entry((f.path, a.sender)).or_insert(0) += 1;
                if let Some(o) = &self.ops {
                    o.received(f.path, a.token);
                }
            }
            Err(e) => self.reject(e.reason(), &f, &e.to_string()),
        }
    }

    fn reject(&mut self, reason: &'static str, f: &Inbound, detail: &str) {
        if let Some(o) = &self.ops {
            o.rejected(reason);
        }
        let n = self.rejected.entry(reason).or_insert(0);
        *n += 1;
        // First of each reason at warn, the rest at debug: a flood must not flood the log.
        if *n == 1 {
            tracing::warn!(reason, source = ?f.source, detail, "message rejected (further rejects of this reason logged at debug)");
        } else {
            tracing::debug!(reason, source = ?f.source, detail, "message rejected");
        }
    }

    /// Stores the durable state when it changed (before the hooks the change asked for run),
    /// with the rejoin policy the current isolation is bound by.
    fn persist(&mut self) {
        let core = self.node.durable();
        let rejoin = super::durable::pin(
            self.durable.rejoin,
            core.isolated.is_some(),
            self.node.options().rejoin,
        );
        if rejoin != self.durable.rejoin {
            // Pinned or released: the core follows the stricter of it and the configuration.
            self.node.update_options(node_options(&self.cfg, rejoin));
        }
        let now = super::durable::Stored { core, rejoin };
        if now != self.durable {
            match super::durable::store(&self.durable_path, &now) {
                Ok(()) => self.durable = now,
                Err(e) => tracing::error!(error = %e, "cannot store the durable state"),
            }
        }
    }

    /// Drains transmits and events until the node is quiet.
    fn flush(&mut self) {
        loop {
            // Durable before anything acts on the change: no claim goes out, no hook starts,
            // before the state it rests on is on disk.
            self.persist();
            let mut progressed = false;
            while let Some(t) = self.node.poll_transmit() {
                progressed = true;
                let bytes = match encode_fitted(&t.message, &self.topo, &self.keys) {
                    Ok((b, shed)) => {
                        if shed != self.last_shed {
                            // Logged on change only: shedding lasts as long as its cause.
                            if shed.any() {
                                tracing::warn!(shed = %shed.token(), len = b.len(), "heartbeat over the datagram limit: optional detail shed to fit");
                            } else {
                                tracing::info!("heartbeats fit whole again");
                            }
                            self.last_shed = shed;
                        }
                        b
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot encode a message");
                        continue;
                    }
                };
                match t.path {
                    Path::Network(net) => match self.nets.get(&net) {
                        Some(NetLink::Udp(l, _)) => l.send(&bytes, t.to, &self.stats),
                        Some(NetLink::Ethernet(l)) => l.send(&bytes, &self.stats),
                        None => TransportStats::bump(&self.stats.send_failed),
                    },
                    Path::Serial => {
                        for (peer, l) in &self.serial {
                            if t.to.is_none() || t.to == Some(*peer) {
                                l.send(&bytes, &self.stats);
                            }
                        }
                    }
                }
            }
            while let Some(ev) = self.node.poll_event() {
                progressed = true;
                self.on_event(ev);
            }
            if !progressed {
                return;
            }
        }
    }

    fn describe_subjects(&self, subjects: &[crate::core::diagnosis::Component]) -> String {
        subjects
            .iter()
            .map(|c| c.describe(&self.topo))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn on_event(&mut self, ev: Event) {
        if let Some(o) = self.ops.as_mut() {
            o.event(self.clock.now(), &self.node, &ev);
        }
        match ev {
            Event::DiagnosisChanged {
                previous,
                diagnosis,
            } => {
                if let Some(p) = self.pacemaker.as_mut() {
                    p.publish(&diagnosis);
                }
                tracing::info!(
                    verdict = diagnosis.kind.token(),
                    subjects = %self.describe_subjects(&diagnosis.subjects),
                    previous = previous.kind.token(),
                    ambiguous = diagnosis.ambiguous,
                    "diagnosis changed"
                );
            }
            Event::IncidentOpened { incident } => tracing::warn!(
                incident = %self.incident_ref(incident.id),
                verdict = incident.kind.token(),
                subjects = %self.describe_subjects(&incident.subjects),
                "incident opened"
            ),
            Event::IncidentClosed {
                incident,
                open_for,
                superseded_by,
            } => tracing::info!(
                incident = %self.incident_ref(incident.id),
                verdict = incident.kind.token(),
                open_for_ms = open_for.as_millis() as u64,
                superseded_by = ?superseded_by.map(|i| self.incident_ref(i)),
                "incident closed"
            ),
            Event::IsolateSelf {
                incident,
                diagnosis,
                reason,
            } => {
                tracing::warn!(incident = %self.incident_ref(incident), %reason, "isolating this node");
                let json = serde_json::to_vec(&diagnosis).unwrap_or_default();
                let subj = self.describe_subjects(&diagnosis.subjects);
                let spec = self.cfg.hooks.isolate.clone();
                self.start_hook(
                    HookKind::Isolate,
                    incident,
                    spec,
                    diagnosis.kind.token(),
                    subj,
                    String::new(),
                    reason,
                    json,
                );
            }
            Event::TakeOver { peer, incident } => {
                let peer_name = self.name_of(peer);
                tracing::warn!(incident = %self.incident_ref(incident), peer = %peer_name, "taking over");
                self.hook_for_peer(HookKind::TakeOver { peer }, incident, peer_name);
            }
            Event::Fence { peer, incident } => {
                let peer_name = self.name_of(peer);
                tracing::warn!(incident = %self.incident_ref(incident), peer = %peer_name, "fencing peer");
                self.hook_for_peer(HookKind::Fence { peer }, incident, peer_name);
            }
            Event::HandBack { peer, incident } => tracing::info!(
                peer = %self.name_of(peer),
                incident = ?incident.map(|i| self.incident_ref(i)),
                "peer is back: hand back its services"
            ),
            Event::Rejoined { incident } => {
                tracing::info!(incident = ?incident.map(|i| self.incident_ref(i)), "left isolation: rejoined")
            }
            Event::Alert(a) => {
                tracing::warn!(severity = ?a.severity, incident = ?a.incident.map(|i| self.incident_ref(i)), text = %a.text, "alert")
            }
        }
    }

    fn hook_for_peer(&mut self, kind: HookKind, incident: IncidentId, peer: String) {
        let d = self.node.diagnosis().clone();
        let json = serde_json::to_vec(&d).unwrap_or_default();
        let subj = self.describe_subjects(&d.subjects);
        let reason = d
            .support
            .first()
            .map(|s| s.text.clone())
            .unwrap_or_else(|| format!("{} {}", d.kind.token(), subj));
        let spec = match kind {
            HookKind::Fence { .. } => self.cfg.hooks.fence.clone(),
            _ => self.cfg.hooks.takeover.clone(),
        };
        self.start_hook(
            kind,
            incident,
            spec,
            d.kind.token(),
            subj,
            peer,
            reason,
            json,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn start_hook(
        &mut self,
        kind: HookKind,
        incident: IncidentId,
        spec: Option<HookSpec>,
        verdict: &str,
        subject: String,
        peer: String,
        reason: String,
        json: Vec<u8>,
    ) {
        let hook = match kind {
            HookKind::Isolate => "isolate",
            HookKind::TakeOver { .. } => "takeover",
            HookKind::Fence { .. } => "fence",
        };
        let Some(spec) = spec else {
            // No hook configured: isolation/takeover is a state only (logged); a fence without
            // a hook cannot succeed (the core only asks when one is configured).
            let ok = !matches!(kind, HookKind::Fence { .. });
            tracing::info!(
                hook,
                "no hook configured; reported as {}",
                if ok { "done" } else { "failed" }
            );
            self.node
                .handle_hook_result(self.clock.now(), kind, incident, ok);
            return;
        };
        if *self.shutdown_tx.borrow() {
            return;
        }
        let req = HookRequest {
            hook,
            incident: self.incident_ref(incident),
            verdict: verdict.to_string(),
            subject,
            node: self.me_name.clone(),
            peer,
            reason,
            diagnosis_json: json,
        };
        let tx = self.hook_tx.clone();
        let shutdown = self.shutdown_tx.subscribe();
        self.hooks.spawn(async move {
            let report = run_hook(spec, req, shutdown).await;
            let _ = tx.send((kind, incident, report)).await;
        });
    }

    fn on_hook_result(&mut self, kind: HookKind, incident: IncidentId, report: HookReport) {
        if let Some(o) = &self.ops {
            let target = match kind {
                HookKind::Isolate => self.me_name.clone(),
                HookKind::TakeOver { peer } | HookKind::Fence { peer } => self.name_of(peer),
            };
            o.hook_finished(&report, Some(target));
        }
        let last = report.attempts.last();
        self.hook_runs.push_back(HookRun {
            hook: report.request.hook.to_string(),
            incident: report.request.incident.clone(),
            success: report.success,
            attempts: report.attempts.len(),
            exit_code: last.and_then(|r| r.exit_code),
            timed_out: last.is_some_and(|r| r.timed_out),
            output: last.map(HookReport::output_head).unwrap_or_default(),
        });
        while self.hook_runs.len() > HOOK_HISTORY {
            self.hook_runs.pop_front();
        }
        self.node
            .handle_hook_result(self.clock.now(), kind, incident, report.success);
    }

    fn write_status(&self) {
        let now = self.clock.now();
        let view = self.node.own_view(now);
        let t = &self.topo;
        let me = t.node(self.me);
        let mut networks = BTreeMap::new();
        for iface in &me.interfaces {
            let Some(spec) = t.networks.get(iface.network.index()) else {
                continue;
            };
            let references = self
                .probe_state
                .references
                .iter()
                .filter(|((n, _), _)| *n == iface.network)
                .map(|((_, ip), (o, c))| (ip.to_string(), status::reference_status(o, *c)))
                .collect();
            let heard = view
                .nets
                .get(&iface.network)
                .map(|v| v.heard.iter().map(|n| self.name_of(*n)).collect())
                .unwrap_or_default();
            networks.insert(
                spec.name.clone(),
                status::NetworkStatus {
                    device: iface.device.clone(),
                    carrier: self.probe_state.carrier.get(&iface.network).copied(),
                    references,
                    heard,
                    received: status::received_on(t, &self.received, Path::Network(iface.network)),
                },
            );
        }
        let serial = me
            .serial
            .iter()
            .map(|s| {
                (
                    self.name_of(s.peer),
                    status::SerialStatus {
                        device: s.device.clone(),
                        open: self.probe_state.serial_open.get(&s.peer).copied(),
                        heard: view.serial.get(&s.peer).copied(),
                        received: self
                            .received
                            .get(&(Path::Serial, s.peer))
                            .copied()
                            .unwrap_or(0),
                    },
                )
            })
            .collect();
        let d = self.node.diagnosis();
        let file = StatusFile {
            node: self.me_name.clone(),
            fence_before_takeover: self.node.options().fence_hook,
            signing_key: self.keys.current_id().to_string(),
            accepted_keys: self.keys.ids().map(str::to_string).collect(),
            pid: std::process::id(),
            incarnation: self.node.incarnation(),
            uptime_seconds: self.started.elapsed().as_secs_f64(),
            role: match self.node.role() {
                Role::Active => "active",
                Role::Isolated => "isolated",
                Role::Quiesced => "quiesced",
            }
            .to_string(),
            verdict: d.kind.token().to_string(),
            subjects: d.subjects.iter().map(|c| c.describe(t)).collect(),
            incident: self.node.incident().map(|i| self.incident_ref(i.id)),
            heartbeat_interval_seconds: t.timing.heartbeat_interval.as_secs_f64(),
            networks,
            serial,
            disk: me
                .disk
                .as_ref()
                .map(|_| status::disk_status(self.probe_state.disk.as_ref())),
            monitors: self
                .probe_state
                .monitors
                .iter()
                .map(|(k, (o, n))| {
                    (
                        k.clone(),
                        status::MonitorStatus {
                            ok: o.ok,
                            summary: o.summary.clone(),
                            timed_out: o.timed_out,
                            duration_seconds: o.duration.as_secs_f64(),
                            runs: *n,
                        },
                    )
                })
                .collect(),
            rejected: self
                .rejected
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            transport: BTreeMap::from([
                ("sent".to_string(), self.stats.sent.load(Ordering::Relaxed)),
                (
                    "send_failed".to_string(),
                    self.stats.send_failed.load(Ordering::Relaxed),
                ),
                (
                    "inbound_dropped".to_string(),
                    self.stats.inbound_dropped.load(Ordering::Relaxed),
                ),
                (
                    "serial_oversize".to_string(),
                    self.stats.serial_oversize.load(Ordering::Relaxed),
                ),
                (
                    "foreign_dropped".to_string(),
                    self.stats.foreign_dropped.load(Ordering::Relaxed),
                ),
            ]),
            hooks: self.hook_runs.clone(),
            reloads: self.reloads.clone(),
        };
        self.status_writer.submit(file);
    }

    fn refuse_reload(&mut self, summary: String, fields: Vec<String>) {
        let r = self.reloads.refuse(summary, fields);
        if let Some(o) = self.ops.as_ref() {
            o.reload_result(r);
        }
    }

    fn reload(&mut self) {
        tracing::info!(config = %self.config_path.display(), "SIGHUP: reloading configuration");
        let new = match config::load(&self.config_path) {
            Ok(c) => c,
            Err(errs) => {
                for e in &errs.errors {
                    tracing::error!("reload refused: {e}");
                }
                let n = errs.errors.len();
                let fields = errs.errors.iter().map(|e| e.to_string()).collect();
                self.refuse_reload(format!("{n} error(s) in the new file"), fields);
                return;
            }
        };
        let refused = reload::refused_changes(&self.cfg, &new, &self.me_name);
        if !refused.is_empty() {
            for r in &refused {
                tracing::error!(change = %r, "reload refused: this change needs a coordinated restart; still running on the old configuration");
            }
            self.refuse_reload(refused.join("; "), refused);
            return;
        }
        let safe = reload::safe_changes(&self.cfg, &new);
        // Keys rotate live (the key id travels in every stamp); checked before anything else
        // is applied so a bad key refuses the whole reload.
        let keys = match keyring(&new) {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "reload refused: bad key");
                self.refuse_reload(e.to_string(), vec![format!("auth: {e}")]);
                return;
            }
        };
        for s in &safe {
            tracing::info!(change = %s, "reload: applying");
        }
        self.keys = keys;
        self.node
            .update_timing(new.topology.timing.clone(), new.topology.thresholds.clone());
        // Adding or removing the fence hook changes the core's policy, not only the command.
        self.node
            .update_options(node_options(&new, self.durable.rejoin));
        if let Some(o) = self.ops.as_mut() {
            o.reload(&new);
        }
        self.topo = Arc::new(new.topology.clone());
        self.cfg = new;
        for p in self.probes.drain(..) {
            p.abort();
        }
        self.probes = spawn_probes(&self.cfg, self.me, self.clock, &self.obs_tx);
        let r = self.reloads.apply(safe);
        if let Some(o) = self.ops.as_ref() {
            o.reload_result(r);
        }
        tracing::info!(
            changes = self.reloads.last_applied.len(),
            keys = ?self.keys.ids().collect::<Vec<_>>(),
            signing = self.keys.current_id(),
            "reload applied"
        );
    }

    async fn shutdown(mut self) {
        let _ = self.shutdown_tx.send(true);
        for p in self.probes.drain(..) {
            p.abort();
        }
        let grace = [
            &self.cfg.hooks.isolate,
            &self.cfg.hooks.takeover,
            &self.cfg.hooks.fence,
        ]
        .iter()
        .filter_map(|h| h.as_ref().map(|h| h.timeout))
        .max()
        .unwrap_or(Duration::ZERO)
            + Duration::from_secs(1);
        if !self.hooks.is_empty() {
            tracing::info!(
                running = self.hooks.len(),
                ?grace,
                "waiting for in-flight hooks"
            );
            let _ = tokio::time::timeout(grace, async {
                while self.hooks.join_next().await.is_some() {}
            })
            .await;
            // Anything left is aborted: dropping run_bounded kills its process group.
            self.hooks.shutdown().await;
        }
        for l in std::mem::take(&mut self.nets).into_values() {
            if let NetLink::Udp(_, h) = l {
                h.abort();
            }
        }
        self.serial.clear();
        self.write_status();
        if let Some(o) = self.ops.take() {
            o.stop().await;
        }
        tracing::info!("stopped; sockets closed");
    }
}

/// Runs the daemon until SIGTERM/SIGINT. Must be called inside a tokio runtime.
pub async fn run(config_path: &FsPath, node: Option<&str>) -> Result<(), DaemonError> {
    let cfg = config::load(config_path).map_err(DaemonError::Config)?;
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
    let me = cfg.local_node(node).map_err(DaemonError::Node)?;
    let topo = Arc::new(cfg.topology.clone());
    let me_name = topo.node(me).name.clone();
    let keys = keyring(&cfg)?;
    super::privileges::log_check(&topo, me);
    std::fs::create_dir_all(&cfg.state_dir).map_err(|e| {
        DaemonError::Io(format!("state directory {}: {e}", cfg.state_dir.display()))
    })?;
    let status_path = cfg.state_dir.join(format!("status-{me_name}.json"));

    let clock = Clock::new();
    // Rule 10: state that must survive a restart, stored before the first heartbeat.
    let durable_path = cfg.state_dir.join(format!("durable-{me_name}.json"));
    let durable = super::durable::start(&durable_path, incarnation_now())
        .map_err(|e| DaemonError::Io(e.to_string()))?;
    let incarnation = durable.core.incarnation;
    let (obs_tx, mut obs_rx) = mpsc::channel(OBSERVATION_QUEUE);
    let (in_tx, mut in_rx) = crate::transport::inbound::channel();
    let (hook_tx, mut hook_rx) = mpsc::channel(HOOK_RESULT_QUEUE);
    let (shutdown_tx, _) = watch::channel(false);
    let mut node_core = Node::new(
        topo.clone(),
        me,
        incarnation,
        node_options(&cfg, durable.rejoin),
        clock.now(),
    );
    if durable.core.isolated.is_some()
        && durable.rejoin == Some(super::durable::StoredRejoin::Manual)
        && cfg.policy.resume_on_heal
    {
        tracing::warn!("isolated under the manual rejoin policy before this start: the isolation still waits for `hadiag rejoin`, although the configuration now says resume_on_heal: true");
    }
    node_core.restore(clock.now(), &durable.core);
    let mut d = Driver {
        config_path: config_path.to_path_buf(),
        cfg,
        topo,
        me,
        me_name,
        clock,
        started: tokio::time::Instant::now(),
        keys,
        node: node_core,
        durable_path,
        durable,
        stats: Arc::new(TransportStats::default()),
        nets: BTreeMap::new(),
        pending_nets: BTreeSet::new(),
        serial: BTreeMap::new(),
        obs_tx,
        in_tx,
        hook_tx,
        hooks: JoinSet::new(),
        shutdown_tx,
        probes: Vec::new(),
        probe_state: ProbeState::default(),
        received: BTreeMap::new(),
        rejected: BTreeMap::new(),
        hook_runs: VecDeque::new(),
        reloads: ReloadStatus::default(),
        status_writer: status::StatusWriter::spawn(status_path.clone())
            .map_err(|e| DaemonError::Io(format!("status writer thread: {e}")))?,
        status_path,
        ops: None,
        pacemaker: None,
        last_shed: Shed::default(),
    };
    if let Some(spec) = d.cfg.pacemaker.clone() {
        match crate::integration::pacemaker::PacemakerHealth::start(&d.topo, spec) {
            Ok(p) => d.pacemaker = Some(p),
            Err(e) => tracing::error!(error = %e, "pacemaker integration thread did not start"),
        }
    }
    // A maintenance window persisted before a restart is restored before the API starts, so
    // no status read ever shows this node out of maintenance while it is in it.
    let ctl_file = super::control::maintenance_path(&d.cfg.state_dir, &d.me_name);
    super::control::restore(&mut d.node, clock.now(), &ctl_file);
    d.ops = Operators::start(&d.cfg, &d.topo, me, clock.now()).await;
    if let Some(o) = d.ops.as_mut() {
        o.first_verdict(clock.now(), &d.node);
    }
    let sig =
        |k: SignalKind| signal(k).map_err(|e| DaemonError::Io(format!("signal handler: {e}")));
    let (mut term, mut int, mut hup) = (
        sig(SignalKind::terminate())?,
        sig(SignalKind::interrupt())?,
        sig(SignalKind::hangup())?,
    );
    // Maintenance: the control channel.
    let ctl_sock = super::control::socket_path(&d.cfg.state_dir, &d.me_name);
    let (_control, mut ctl_rx) = match super::control::bind(ctl_sock) {
        Ok((server, rx)) => (Some(server), rx),
        Err(e) => {
            tracing::error!(error = %e, "control channel unavailable: quiesce/resume/leave cannot reach this daemon");
            (None, mpsc::channel(1).1)
        }
    };
    d.open_transports();
    d.probes = spawn_probes(&d.cfg, me, clock, &d.obs_tx);
    tracing::info!(node = %d.me_name, incarnation, pid = std::process::id(), status = %d.status_path.display(), "hadiag running");
    // systemd: READY after the first heartbeat round, WATCHDOG while heartbeats advance,
    // STATUS = the verdict; /healthz fails when this loop stalls (see super::notify).
    let mut notifier = super::notify::Notifier::from_env();
    let liveness = d.ops.as_ref().map(|o| o.liveness());
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
    housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        d.flush();
        if let Some(o) = d.ops.as_mut() {
            o.settle(clock.now());
        }
        if let Some(l) = &liveness {
            l.beat(d.topo.timing.heartbeat_interval);
        }
        notifier.beat(d.node.stats().heartbeats_sent, || {
            super::notify::status_line(&d.node)
        });
        let deadline = d.node.poll_timeout().map(|t| clock.to_tokio(t));
        let sleep = async {
            match deadline {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = term.recv() => { tracing::info!("SIGTERM: shutting down; {}", super::control::announce_leave(&mut d.node, clock.now(), &ctl_file)); break; }
            _ = int.recv() => { tracing::info!("SIGINT: shutting down; {}", super::control::announce_leave(&mut d.node, clock.now(), &ctl_file)); break; }
            Some(req) = ctl_rx.recv() => if super::control::apply(&mut d.node, clock.now(), &ctl_file, req) == super::control::After::Stop { break; },
            _ = hup.recv() => d.reload(),
            Some((kind, incident, report)) = hook_rx.recv() => d.on_hook_result(kind, incident, report),
            // A late timer (the process did not run) is the core's to judge: see its gap check.
            _ = sleep => d.node.handle_timeout(clock.now()),
            Some(o) = obs_rx.recv() => {
                d.probe_state.record(&o);
                if let Some(ops) = &d.ops {
                    ops.observe(&o);
                }
                d.node.handle_observation(o);
            }
            // Housekeeping before inbound work: a flood must not starve the status file.
            _ = housekeeping.tick() => {
                super::control::tick(&mut d.node, clock.now(), &ctl_file, d.started.elapsed());
                d.retry_pending();
                if let Some(ops) = d.ops.as_mut() {
                    ops.tick(clock.now(), &d.node);
                }
                if let Some(p) = d.pacemaker.as_mut() {
                    p.tick(d.started.elapsed(), d.node.diagnosis());
                }
                d.write_status();
            }
            f = in_rx.recv() => d.on_inbound(f),
        }
    }
    d.flush(); // a leave announced above goes out before the sockets close
    notifier.stopping();
    d.shutdown().await;
    Ok(())
}
