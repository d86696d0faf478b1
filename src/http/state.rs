//! The snapshot the JSON API serves, kept up to date by the daemon driver.
//!
//! [`ApiState`] is a cheap handle (an `Arc`) around the latest facts the driver pushed:
//! views, link statistics, probe outcomes, the current diagnosis and the incident book. HTTP
//! handlers only read it. Locks are std locks held for microseconds, never across an await,
//! so neither side can stall the other.

use super::metrics::Metrics;
use crate::core::observation::{DiskOutcome, EchoOutcome, Observation, Probe};
use crate::core::topology::{NetworkId, NodeId, Topology};
use crate::core::view::View;
use crate::journal::book::{IncidentBook, IncidentListItem, IncidentRecord};
use crate::journal::record::{disk_token, reach_token, ts_ms, DiagnosisRecord, Entry, ViewRecord};
use crate::journal::JournalStats;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// `/api/v1/status`: networks × nodes, serial lines, disks, monitors, the verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusSnapshot {
    pub node: String,
    pub cluster: String,
    pub version: String,
    #[serde(with = "ts_ms")]
    pub at: DateTime<Utc>,
    #[serde(with = "ts_ms")]
    pub started_at: DateTime<Utc>,
    pub isolated: bool,
    pub quiesced: bool,
    pub networks: Vec<NetworkStatus>,
    pub serial: Vec<SerialStatus>,
    pub disks: Vec<DiskStatus>,
    pub monitors: Vec<MonitorStatus>,
    pub peers: Vec<PeerStatus>,
    pub verdict: Option<DiagnosisRecord>,
    pub incident: Option<IncidentListItem>,
    /// The last SIGHUP reload; `None` before the first one.
    #[serde(default)]
    pub reload: Option<ReloadResult>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkStatus {
    pub name: String,
    pub references: Vec<ReferenceStatus>,
    /// One cell per node attached to the network, in topology order.
    pub nodes: Vec<CellStatus>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReferenceStatus {
    pub target: String,
    /// This node's last echo: `yes` | `no` | `unknown`.
    pub up: String,
    pub rtt_seconds: Option<f64>,
}

/// What is known about node `node` on one network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellStatus {
    pub node: String,
    pub device: String,
    /// Carrier as that node reports it (`yes` | `no` | `unknown`).
    pub carrier: String,
    /// Whether that node reaches a reference of the network.
    pub reference: String,
    /// Whether *this* node hears it on the network (`None` for this node itself).
    pub heard: Option<bool>,
    /// Nodes that report hearing it on the network.
    pub heard_by: Vec<String>,
    /// This node's heartbeat loss ratio from it on the network.
    pub loss_ratio: Option<f64>,
    pub rtt_seconds: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SerialStatus {
    pub peer: String,
    pub device: String,
    pub port_open: Option<bool>,
    pub heard: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiskStatus {
    pub node: String,
    pub target: Option<String>,
    /// `ok` | `slow` | `failing` | `hung` | `none` | `unknown`.
    pub health: String,
    /// Last read latency (this node only).
    pub latency_seconds: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MonitorStatus {
    pub name: String,
    pub ok: bool,
    pub summary: String,
    pub duration_seconds: f64,
    pub timed_out: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub node: String,
    /// Age of the latest view received from the peer; `None` = never heard.
    pub view_age_seconds: Option<f64>,
    pub isolated: bool,
    pub quiesced: bool,
}

#[derive(Clone, Copy, Debug, Default)]
struct LinkStat {
    loss_ratio: f64,
    rtt_seconds: Option<f64>,
}

#[derive(Debug)]
struct Inner {
    topo: Topology,
    me: NodeId,
    started_at: DateTime<Utc>,
    own: View,
    peers: BTreeMap<NodeId, (View, Option<Duration>)>,
    links: BTreeMap<(NodeId, NetworkId), LinkStat>,
    references: BTreeMap<(NetworkId, IpAddr), (bool, Option<f64>)>,
    serial_port: BTreeMap<NodeId, bool>,
    disk_latency: Option<f64>,
    monitors: BTreeMap<String, MonitorStatus>,
    diagnosis: Option<DiagnosisRecord>,
    book: IncidentBook,
}

/// When the daemon's heartbeat loop last ran, for `/healthz`: a loop stalled for more than
/// two heartbeat intervals makes the check fail (HTTP 503) even while the server answers.
#[derive(Debug)]
pub struct Liveness {
    epoch: std::time::Instant,
    /// Milliseconds since `epoch` of the loop's latest pass; 0 = not yet running.
    last_ms: std::sync::atomic::AtomicU64,
    /// Stall threshold in milliseconds (2 × heartbeat interval); 0 = not checked.
    stall_ms: std::sync::atomic::AtomicU64,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            epoch: std::time::Instant::now(),
            last_ms: 0.into(),
            stall_ms: 0.into(),
        }
    }
}

impl Liveness {
    /// The loop ran now; `interval` is the current heartbeat interval.
    pub fn beat(&self, interval: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_ms.store(ms.max(1), Relaxed);
        self.stall_ms.store(
            (interval.as_millis() as u64).saturating_mul(2).max(1),
            Relaxed,
        );
    }

    /// `Err(how long)` when the loop has not run for more than two intervals.
    pub fn check(&self) -> Result<(), Duration> {
        use std::sync::atomic::Ordering::Relaxed;
        let (last, stall) = (self.last_ms.load(Relaxed), self.stall_ms.load(Relaxed));
        if last == 0 || stall == 0 {
            return Ok(());
        }
        let since = (self.epoch.elapsed().as_millis() as u64).saturating_sub(last);
        if since > stall {
            Err(Duration::from_millis(since))
        } else {
            Ok(())
        }
    }
}

/// Shared, cheaply cloneable state of the API. See the module docs of [`crate::http`].
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<RwLock<Inner>>,
    metrics: Metrics,
    /// Shared by every clone (the server's included) so a reload replaces it for all.
    token: Arc<RwLock<Option<Arc<str>>>>,
    journal_stats: Option<Arc<JournalStats>>,
    liveness: Arc<Liveness>,
    /// The last `/metrics` body and when it was rendered (see [`METRICS_MAX_AGE`]).
    metrics_cache: Arc<std::sync::Mutex<Option<(std::time::Instant, bytes::Bytes)>>>,
    reload: Arc<RwLock<Option<ReloadResult>>>,
}

/// How long a rendered `/metrics` body is served again: rendering walks every series and
/// reads `/proc`, so however many clients scrape (or flood) the endpoint, it costs at most
/// one render per second. Prometheus scrapes every 10–60 s and the values themselves change
/// about once a second (the daemon's tick), so a scrape never sees older data than that.
pub const METRICS_MAX_AGE: Duration = Duration::from_secs(1);

/// The last SIGHUP reload: when, whether it went live, and what it changed or why not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadResult {
    #[serde(with = "ts_ms")]
    pub at: DateTime<Utc>,
    /// `applied` | `refused`.
    pub outcome: String,
    /// Why it was refused, naming the place and the cause (first problem; all of them are in
    /// `refused`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What went live.
    #[serde(default)]
    pub applied: Vec<String>,
    /// What was refused (then nothing of that reload went live).
    #[serde(default)]
    pub refused: Vec<String>,
    /// Reloads since start, by outcome.
    #[serde(default)]
    pub applied_total: u64,
    #[serde(default)]
    pub refused_total: u64,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("token", &self.token().map(|_| "<set>"))
            .finish_non_exhaustive()
    }
}

/// Monitors kept in the status (bounded by configuration; this caps a misbehaving driver).
const MAX_MONITORS: usize = 256;

impl ApiState {
    /// `token`: when set, `/api/*` requires `Authorization: Bearer <token>`.
    pub fn new(topo: &Topology, me: NodeId, metrics: Metrics, token: Option<String>) -> ApiState {
        let inner = Inner {
            topo: topo.clone(),
            me,
            started_at: Utc::now(),
            own: View::default(),
            peers: BTreeMap::new(),
            links: BTreeMap::new(),
            references: BTreeMap::new(),
            serial_port: BTreeMap::new(),
            disk_latency: None,
            monitors: BTreeMap::new(),
            diagnosis: None,
            book: IncidentBook::new(),
        };
        ApiState {
            inner: Arc::new(RwLock::new(inner)),
            metrics,
            token: Arc::new(RwLock::new(token.filter(|t| !t.is_empty()).map(Arc::from))),
            journal_stats: None,
            liveness: Arc::new(Liveness::default()),
            metrics_cache: Arc::default(),
            reload: Arc::default(),
        }
    }

    /// The heartbeat loop's liveness, shared with the driver (see [`Liveness`]).
    pub fn liveness(&self) -> Arc<Liveness> {
        self.liveness.clone()
    }

    /// Exports the journal writer's counters on `/metrics`.
    pub fn with_journal_stats(mut self, s: Arc<JournalStats>) -> Self {
        self.journal_stats = Some(s);
        self
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub(crate) fn token(&self) -> Option<Arc<str>> {
        self.token.read().ok().and_then(|t| t.clone())
    }

    /// Replaces the API token (live reload: a revoked token stops working at once).
    pub fn set_token(&self, token: Option<String>) {
        if let Ok(mut t) = self.token.write() {
            *t = token.filter(|t| !t.is_empty()).map(Arc::from);
        }
    }

    pub(crate) fn journal_stats(&self) -> Option<&JournalStats> {
        self.journal_stats.as_deref()
    }

    /// The `/metrics` body at `now`: rendered afresh only when the last render is
    /// [`METRICS_MAX_AGE`] old; scrapes in between get the same body. Concurrent scrapes wait
    /// for one render instead of rendering side by side.
    pub fn metrics_body(&self, now: std::time::Instant) -> bytes::Bytes {
        let mut cache = self.metrics_cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, body)) = cache.as_ref() {
            if now.saturating_duration_since(*at) < METRICS_MAX_AGE {
                return body.clone();
            }
        }
        if let Some(s) = self.journal_stats() {
            self.metrics.sync_journal(s);
        }
        let body = bytes::Bytes::from(self.metrics.render());
        *cache = Some((now, body.clone()));
        body
    }

    /// Records the result of a SIGHUP reload for the API (and its metrics).
    pub fn set_reload(&self, r: ReloadResult) {
        self.metrics.reload_result(
            r.outcome == "applied",
            r.at.timestamp_millis() as f64 / 1000.0,
        );
        if let Ok(mut cur) = self.reload.write() {
            *cur = Some(r);
        }
    }

    pub fn reload(&self) -> Option<ReloadResult> {
        self.reload.read().ok().and_then(|r| r.clone())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        // A panic while holding the lock cannot leave Inner inconsistent in a way that
        // matters for a read-only report, so recover from poisoning.
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// A probe outcome of this node (status only; metrics are fed separately).
    pub fn observe(&self, o: &Observation) {
        let mut i = self.write();
        match &o.probe {
            Probe::Reference {
                network,
                target,
                outcome,
            } => {
                let v = match outcome {
                    EchoOutcome::Reply { rtt } => (true, Some(rtt.as_secs_f64())),
                    _ => (false, None),
                };
                i.references.insert((*network, *target), v);
            }
            Probe::Disk { outcome } => {
                i.disk_latency = match outcome {
                    DiskOutcome::Ok { latency } => Some(latency.as_secs_f64()),
                    DiskOutcome::Hung { for_time } => Some(for_time.as_secs_f64()),
                    DiskOutcome::Failed { .. } => None,
                };
            }
            Probe::SerialPort { peer, open } => {
                i.serial_port.insert(*peer, *open);
            }
            Probe::Monitor { name, outcome } => {
                if i.monitors.len() < MAX_MONITORS || i.monitors.contains_key(name) {
                    i.monitors.insert(
                        name.clone(),
                        MonitorStatus {
                            name: name.clone(),
                            ok: outcome.ok,
                            summary: outcome.summary.chars().take(200).collect(),
                            duration_seconds: outcome.duration.as_secs_f64(),
                            timed_out: outcome.timed_out,
                        },
                    );
                }
            }
            Probe::Carrier { .. } => {}
        }
    }

    /// This node's own view.
    pub fn set_own_view(&self, v: &View) {
        self.write().own = v.clone();
    }

    /// A peer's latest reported view and how old it is.
    pub fn set_peer_view(&self, peer: NodeId, v: &View, age: Option<Duration>) {
        self.write().peers.insert(peer, (v.clone(), age));
    }

    /// Heartbeat statistics of the path to `peer` on `network`.
    pub fn set_link(
        &self,
        peer: NodeId,
        network: NetworkId,
        loss_ratio: f64,
        rtt: Option<Duration>,
    ) {
        self.write().links.insert(
            (peer, network),
            LinkStat {
                loss_ratio,
                rtt_seconds: rtt.map(|d| d.as_secs_f64()),
            },
        );
    }

    pub fn set_diagnosis(&self, d: &DiagnosisRecord) {
        self.write().diagnosis = Some(d.clone());
    }

    /// Feeds a journal entry to the incident book (call for every entry journaled).
    pub fn apply(&self, e: &Entry) {
        self.write().book.apply(e);
    }

    pub fn diagnosis(&self) -> Option<DiagnosisRecord> {
        let i = self.read();
        i.diagnosis
            .clone()
            .or_else(|| i.book.latest_diagnosis().cloned())
    }

    pub fn incidents_since(&self, since: Option<DateTime<Utc>>) -> Vec<IncidentListItem> {
        let i = self.read();
        i.book
            .all()
            .filter(|r| since.is_none_or(|s| r.active_since(s)))
            .map(|r| r.list_item())
            .collect()
    }

    pub fn incident(&self, id: &str) -> Option<IncidentRecord> {
        self.read().book.get(id).cloned()
    }

    /// The latest views of every node (own and peers'), by node name.
    pub fn views(&self) -> BTreeMap<String, ViewRecord> {
        let i = self.read();
        let mut out = BTreeMap::new();
        let name = |n: NodeId| i.topo.node_name(n).to_string();
        out.insert(name(i.me), ViewRecord::from_view(&i.topo, &i.own));
        for (p, (v, _)) in &i.peers {
            out.insert(name(*p), ViewRecord::from_view(&i.topo, v));
        }
        out
    }

    /// Builds `/api/v1/status`.
    pub fn snapshot(&self) -> StatusSnapshot {
        let i = self.read();
        let t = &i.topo;
        let name = |n: NodeId| t.node_name(n).to_string();
        let view_of = |n: NodeId| -> Option<&View> {
            if n == i.me {
                Some(&i.own)
            } else {
                i.peers.get(&n).map(|(v, _)| v)
            }
        };
        let mut networks = Vec::new();
        for s in t.network_ids() {
            let spec = t.network(s);
            let references = spec
                .references
                .iter()
                .map(|r| {
                    let (up, rtt) = match i.references.get(&(s, *r)) {
                        Some(&(up, rtt)) => (if up { "yes" } else { "no" }, rtt),
                        None => ("unknown", None),
                    };
                    ReferenceStatus {
                        target: r.to_string(),
                        up: up.to_string(),
                        rtt_seconds: rtt,
                    }
                })
                .collect();
            let mut nodes = Vec::new();
            for n in t.members(s) {
                let nv = view_of(n).and_then(|v| v.nets.get(&s));
                let heard_by = t
                    .node_ids()
                    .filter(|&o| o != n)
                    .filter(|&o| {
                        view_of(o)
                            .and_then(|v| v.nets.get(&s))
                            .is_some_and(|x| x.heard.contains(&n))
                    })
                    .map(name)
                    .collect();
                let link = i.links.get(&(n, s));
                nodes.push(CellStatus {
                    node: name(n),
                    device: t
                        .node(n)
                        .interface(s)
                        .map(|f| f.device.clone())
                        .unwrap_or_default(),
                    carrier: reach_token(nv.map(|x| x.carrier).unwrap_or_default()).to_string(),
                    reference: reach_token(nv.map(|x| x.reference).unwrap_or_default()).to_string(),
                    heard: (n != i.me)
                        .then(|| i.own.nets.get(&s).is_some_and(|x| x.heard.contains(&n))),
                    heard_by,
                    loss_ratio: if n == i.me {
                        None
                    } else {
                        link.map(|l| l.loss_ratio)
                    },
                    rtt_seconds: if n == i.me {
                        None
                    } else {
                        link.and_then(|l| l.rtt_seconds)
                    },
                });
            }
            networks.push(NetworkStatus {
                name: spec.name.clone(),
                references,
                nodes,
            });
        }
        let me_spec = t.nodes.get(i.me.index());
        let serial = me_spec
            .map(|m| {
                m.serial
                    .iter()
                    .map(|sp| SerialStatus {
                        peer: name(sp.peer),
                        device: sp.device.clone(),
                        port_open: i.serial_port.get(&sp.peer).copied(),
                        heard: i.own.serial.get(&sp.peer).copied(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let disks = t
            .node_ids()
            .map(|n| DiskStatus {
                node: name(n),
                target: t.node(n).disk.clone(),
                health: disk_token(view_of(n).map(|v| v.disk).unwrap_or_default()).to_string(),
                latency_seconds: if n == i.me { i.disk_latency } else { None },
            })
            .collect();
        let peers = t
            .node_ids()
            .filter(|&n| n != i.me)
            .map(|n| {
                let p = i.peers.get(&n);
                PeerStatus {
                    node: name(n),
                    view_age_seconds: p.and_then(|(_, a)| a.map(|d| d.as_secs_f64())),
                    isolated: p.is_some_and(|(v, _)| v.isolated),
                    quiesced: p.is_some_and(|(v, _)| v.quiesced),
                }
            })
            .collect();
        StatusSnapshot {
            node: name(i.me),
            cluster: t.cluster.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            at: Utc::now(),
            started_at: i.started_at,
            isolated: i.own.isolated,
            quiesced: i.own.quiesced,
            networks,
            serial,
            disks,
            monitors: i.monitors.values().cloned().collect(),
            peers,
            verdict: i
                .diagnosis
                .clone()
                .or_else(|| i.book.latest_diagnosis().cloned()),
            incident: i.book.current().map(|r| r.list_item()),
            reload: self.reload(),
        }
    }
}

#[cfg(test)]
mod liveness_tests {
    use super::*;

    #[test]
    fn healthz_liveness_fails_after_two_intervals_without_a_pass() {
        let l = Liveness::default();
        assert!(l.check().is_ok(), "not checked before the loop runs");
        l.beat(Duration::from_secs(3600));
        assert!(l.check().is_ok());
        l.beat(Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(20));
        assert!(l.check().is_err(), "a 20 ms stall of a 1 ms loop must fail");
        l.beat(Duration::from_secs(3600));
        assert!(l.check().is_ok(), "a pass clears it");
    }
}
