//! Prometheus metrics of one hadiag node.
//!
//! Names follow Prometheus conventions: `hadiag_` prefix, base units (seconds, ratios),
//! counters end in `_total`, variations are labels not new names. Label values come from the
//! topology (node, network, device and monitor names) or from small closed sets (results,
//! verdict kinds, rejection reasons), so cardinality is bounded by the configuration.
//! Counters, histograms and the verdict series the topology implies are created at start-up,
//! so dashboards and alerting rules see them before the first probe finishes. A state that is
//! not known yet is absent, never 0: carrier, interface health, reference and heartbeat reach,
//! serial line and disk series appear once a probe answered or the core judged them (after the
//! start-up warm-up); the judged ones disappear again when the core no longer knows (stale
//! evidence, a restarted warm-up), the raw probe results keep their last value.
//!
//! This module only records; it must not decide anything (that is the core's job).

use crate::alert::names::SubjectLabels;
use crate::core::diagnosis::{Component, VerdictKind};
use crate::core::observation::{DiskOutcome, EchoOutcome, Observation, Probe};
use crate::core::topology::{NetworkId, NodeId, Topology};
use crate::core::view::{DiskHealth, Reach, View};
use crate::core::wire::Path;
use crate::journal::record::DiagnosisRecord;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Rejection reasons with their own series; anything else is counted as `other`
/// (bounded cardinality even if a decoder invents new reasons).
pub const MAX_REJECT_REASONS: usize = 32;

/// Reasons created at start-up (the wire decoder's error classes, docs/wire-format.md).
pub const KNOWN_REJECT_REASONS: [&str; 9] = [
    "malformed",
    "unsupported_version",
    "bad_stamp",
    "unknown_key_id",
    "oversize",
    "wrong_cluster",
    "replay",
    "unknown_sender",
    "other",
];

/// Hooks whose runs are counted.
pub const HOOKS: [&str; 3] = ["isolate", "takeover", "fence"];

/// RTT buckets: 100 µs … ~3.3 s, doubling (LAN heartbeats and pings live in the low ms).
fn rtt_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.0001, 2.0, 16).unwrap_or_default()
}

/// Disk read and monitor buckets: 1 ms … ~32 s.
fn slow_buckets() -> Vec<f64> {
    prometheus::exponential_buckets(0.001, 2.0, 16).unwrap_or_default()
}

struct Inner {
    registry: Registry,
    topo: Topology,
    me: NodeId,
    interface_carrier: IntGaugeVec,
    interface_healthy: IntGaugeVec,
    reference_up: IntGaugeVec,
    reference_reachable: IntGaugeVec,
    reference_rtt: HistogramVec,
    reference_probes: IntCounterVec,
    heartbeat_up: IntGaugeVec,
    heartbeat_loss: GaugeVec,
    heartbeat_rtt: HistogramVec,
    serial_up: IntGaugeVec,
    serial_port_open: IntGaugeVec,
    /// No labels: a vector only so the series can be absent.
    disk_up: IntGaugeVec,
    disk_read: Histogram,
    disk_probes: IntCounterVec,
    monitor_up: IntGaugeVec,
    monitor_duration: HistogramVec,
    monitor_runs: IntCounterVec,
    messages_received: IntCounterVec,
    messages_rejected: IntCounterVec,
    reject_reasons: Mutex<BTreeSet<String>>,
    verdict: IntGaugeVec,
    verdict_series: Mutex<Vec<Vec<String>>>,
    verdict_kind: IntGaugeVec,
    verdict_ambiguous: IntGauge,
    verdict_changes: IntCounter,
    incident_open: IntGauge,
    incidents_opened: IntCounterVec,
    isolated: IntGauge,
    quiesced: IntGauge,
    hook_runs: IntCounterVec,
    hook_duration: HistogramVec,
    alerts: IntCounterVec,
    journal_entries: IntCounterVec,
    journal_seen: Mutex<[u64; 3]>,
    start_time: Gauge,
    peer_view_age: GaugeVec,
    peer_quiesced: IntGaugeVec,
    peer_isolated: IntGaugeVec,
    incident_info: IntGaugeVec,
    incident_series: Mutex<Option<(String, String)>>,
    incident_start: GaugeVec,
    incident_agreed: IntGaugeVec,
    reload_successful: IntGauge,
    reload_success_time: Gauge,
    /// No labels: a vector only so the series can be absent.
    reload_time: GaugeVec,
    reloads: IntCounterVec,
    process: ProcessMetrics,
}

/// The standard `process_*` metrics of the daemon itself (Linux `/proc/self`), sampled at
/// each scrape.
struct ProcessMetrics {
    cpu: prometheus::Counter,
    cpu_seen: Mutex<f64>,
    resident: Gauge,
    virtual_mem: Gauge,
    open_fds: Gauge,
    max_fds: Gauge,
    start_time: Gauge,
}

impl ProcessMetrics {
    fn new(r: &Registry) -> prometheus::Result<ProcessMetrics> {
        let g = |name: &str, help: &str| -> prometheus::Result<Gauge> {
            let m = Gauge::new(name, help)?;
            r.register(Box::new(m.clone()))?;
            Ok(m)
        };
        let cpu = prometheus::Counter::new(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
        )?;
        r.register(Box::new(cpu.clone()))?;
        Ok(ProcessMetrics {
            cpu,
            cpu_seen: Mutex::new(0.0),
            resident: g(
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            )?,
            virtual_mem: g(
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
            )?,
            open_fds: g("process_open_fds", "Number of open file descriptors.")?,
            max_fds: g(
                "process_max_fds",
                "Maximum number of open file descriptors.",
            )?,
            start_time: g(
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
            )?,
        })
    }

    /// Reads `/proc/self`; a field that cannot be read keeps its last value.
    fn sample(&self) {
        // SAFETY: sysconf and getrlimit only read process-wide values into locals.
        let (tick, page) = unsafe {
            (
                libc::sysconf(libc::_SC_CLK_TCK).max(1) as f64,
                libc::sysconf(libc::_SC_PAGESIZE).max(1) as f64,
            )
        };
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the command name, which may contain spaces: state is field 3.
            if let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) {
                let f: Vec<&str> = rest.split_whitespace().collect();
                let num = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok());
                if let (Some(u), Some(s)) = (num(14), num(15)) {
                    let total = (u + s) / tick;
                    if let Ok(mut seen) = self.cpu_seen.lock() {
                        if total > *seen {
                            self.cpu.inc_by(total - *seen);
                            *seen = total;
                        }
                    }
                }
                if let Some(v) = num(23) {
                    self.virtual_mem.set(v);
                }
                if let Some(rss) = num(24) {
                    self.resident.set(rss * page);
                }
                if let (Some(start), Some(btime)) = (num(22), boot_time()) {
                    self.start_time.set(btime + start / tick);
                }
            }
        }
        if let Ok(d) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(d.count() as f64);
        }
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we own.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
            self.max_fds.set(lim.rlim_cur as f64);
        }
    }
}

/// Boot time, Unix seconds (`btime` in /proc/stat).
fn boot_time() -> Option<f64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Cheap to clone; all clones share one registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn igv(r: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntGaugeVec> {
    let m = IntGaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(m.clone()))?;
    Ok(m)
}

fn icv(r: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    let m = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(m.clone()))?;
    Ok(m)
}

fn hv(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> prometheus::Result<HistogramVec> {
    let m = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)?;
    r.register(Box::new(m.clone()))?;
    Ok(m)
}

fn ig(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let m = IntGauge::new(name, help)?;
    r.register(Box::new(m.clone()))?;
    Ok(m)
}

fn b(v: bool) -> i64 {
    i64::from(v)
}

/// The label values of a series without labels (kept in a vector so it can be absent).
const NO_LABELS: &[&str] = &[];

/// Labels of `hadiag_verdict`: the kind, then the subject as [`SubjectLabels`].
const VERDICT_LABELS: [&str; 5] = ["kind", "component", "node", "network", "peer"];

fn healthy_series() -> Vec<String> {
    let mut v = vec!["healthy".to_string()];
    v.extend(
        SubjectLabels::default()
            .values()
            .iter()
            .map(|x| x.to_string()),
    );
    v
}

fn str_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A judged reach: 1 / 0, or no series while unknown.
fn set_reach(g: &IntGaugeVec, labels: &[&str], r: Reach) {
    match r {
        Reach::Unknown => {
            let _ = g.remove_label_values(labels);
        }
        known => g.with_label_values(labels).set(b(known == Reach::Yes)),
    }
}

impl Metrics {
    /// Registers every metric and creates the series the topology implies for node `me`.
    /// `monitors` are the configured exec monitor names.
    pub fn new(topo: &Topology, me: NodeId, monitors: &[String]) -> prometheus::Result<Metrics> {
        let r = Registry::new();
        let build = igv(
            &r,
            "hadiag_build_info",
            "Build information; always 1.",
            &["version"],
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let node_info = igv(
            &r,
            "hadiag_node_info",
            "This node's identity; always 1.",
            &["node", "cluster"],
        )?;
        let my_name = topo.node_name(me);
        node_info
            .with_label_values(&[my_name, topo.cluster.as_str()])
            .set(1);
        let start_time = Gauge::new(
            "hadiag_start_time_seconds",
            "Start time of the daemon, Unix seconds.",
        )?;
        r.register(Box::new(start_time.clone()))?;

        let inner = Inner {
            interface_carrier: igv(&r, "hadiag_interface_carrier", "Carrier of this node's NIC on a network (1 up, 0 down).", &["network", "device"])?,
            interface_healthy: igv(
                &r,
                "hadiag_interface_healthy",
                "1 when the NIC has carrier and carries traffic (hears a peer or reaches a reference).",
                &["network", "device"],
            )?,
            reference_up: igv(&r, "hadiag_reference_up", "Whether the last echo to a reference target through this network's NIC was answered; absent before the first echo.", &["network", "device", "target"])?,
            reference_reachable: igv(&r, "hadiag_reference_reachable", "Judged reach of the network's references through this node's NIC (1 reached, 0 unreachable after the configured failures); absent while unknown.", &["network", "device"])?,
            reference_rtt: hv(&r, "hadiag_reference_rtt_seconds", "Round-trip time of echoes to a reference target.", &["network", "target"], rtt_buckets())?,
            reference_probes: icv(&r, "hadiag_reference_probes_total", "Echoes sent to a reference target, by result.", &["network", "target", "result"])?,
            heartbeat_up: igv(&r, "hadiag_heartbeat_up", "Whether this node currently hears a peer on a network (1) or not (0); absent until judged (start-up warm-up).", &["peer", "network"])?,
            heartbeat_loss: {
                let m = GaugeVec::new(Opts::new("hadiag_heartbeat_loss_ratio", "Heartbeat loss ratio from a peer on a network over the evidence window (0..1); absent until judged."), &["peer", "network"])?;
                r.register(Box::new(m.clone()))?;
                m
            },
            heartbeat_rtt: hv(&r, "hadiag_heartbeat_rtt_seconds", "Heartbeat round-trip time to a peer on a network.", &["peer", "network"], rtt_buckets())?,
            serial_up: igv(&r, "hadiag_serial_up", "Whether the peer is heard over the serial line; absent until judged.", &["peer"])?,
            serial_port_open: igv(&r, "hadiag_serial_port_open", "Whether the local serial device towards the peer is open; absent before the first attempt.", &["peer"])?,
            disk_up: igv(&r, "hadiag_disk_up", "Whether the disk probe reads succeed in time (1) or fail/hang (0); 1 without a disk probe, absent before the first result.", &[])?,
            disk_read: {
                let m = Histogram::with_opts(HistogramOpts::new("hadiag_disk_read_seconds", "Latency of disk probe reads.").buckets(slow_buckets()))?;
                r.register(Box::new(m.clone()))?;
                m
            },
            disk_probes: icv(&r, "hadiag_disk_probes_total", "Disk probe reads, by result.", &["result"])?,
            monitor_up: igv(&r, "hadiag_monitor_up", "Whether the last run of an exec monitor succeeded.", &["monitor"])?,
            monitor_duration: hv(&r, "hadiag_monitor_duration_seconds", "Run time of exec monitors.", &["monitor"], slow_buckets())?,
            monitor_runs: icv(&r, "hadiag_monitor_runs_total", "Exec monitor runs, by result (ok, failed, timeout).", &["monitor", "result"])?,
            messages_received: icv(&r, "hadiag_messages_received_total", "Authenticated messages received, by path and type.", &["path", "type"])?,
            messages_rejected: icv(&r, "hadiag_messages_rejected_total", "Messages dropped on receipt, by reason.", &["reason"])?,
            reject_reasons: Mutex::new(BTreeSet::new()),
            verdict: igv(&r, "hadiag_verdict", "Current verdict of this node: 1 per subject of the verdict (component class, node, network, serial peer; empty where it does not apply).", &VERDICT_LABELS)?,
            verdict_series: Mutex::new(vec![healthy_series()]),
            verdict_kind: igv(&r, "hadiag_verdict_kind", "Current verdict kind of this node, one-hot over all kinds.", &["kind"])?,
            verdict_ambiguous: ig(&r, "hadiag_verdict_ambiguous", "1 when the current verdict is ambiguous.")?,
            verdict_changes: {
                let m = IntCounter::new("hadiag_verdict_changes_total", "Verdict changes of this node.")?;
                r.register(Box::new(m.clone()))?;
                m
            },
            incident_open: ig(&r, "hadiag_incident_open", "1 while an incident is open.")?,
            incidents_opened: icv(&r, "hadiag_incidents_opened_total", "Incidents opened, by verdict kind.", &["kind"])?,
            isolated: ig(&r, "hadiag_isolated", "1 while this node has isolated itself.")?,
            quiesced: ig(&r, "hadiag_quiesced", "1 while this node is in announced maintenance.")?,
            hook_runs: icv(&r, "hadiag_hook_runs_total", "Action hook runs (isolate, takeover, fence), by result.", &["hook", "result"])?,
            hook_duration: hv(&r, "hadiag_hook_duration_seconds", "Run time of action hooks.", &["hook"], slow_buckets())?,
            alerts: icv(&r, "hadiag_alerts_total", "Alert deliveries, by rule, channel, type (alert, upalert) and result.", &["rule", "channel", "type", "result"])?,
            journal_entries: icv(&r, "hadiag_journal_entries_total", "Journal entries by result (written, dropped, failed).", &["result"])?,
            journal_seen: Mutex::new([0; 3]),
            start_time,
            peer_view_age: {
                let m = GaugeVec::new(Opts::new("hadiag_peer_view_age_seconds", "Age of the latest view received from a peer; absent until the peer was heard."), &["peer"])?;
                r.register(Box::new(m.clone()))?;
                m
            },
            peer_quiesced: igv(&r, "hadiag_peer_quiesced", "1 while a peer announced planned maintenance (its last word when silent).", &["peer"])?,
            peer_isolated: igv(&r, "hadiag_peer_isolated", "1 while a peer reports itself isolated (its last word when silent).", &["peer"])?,
            incident_info: igv(&r, "hadiag_incident_info", "The open incident of this node (id and verdict kind); absent when none.", &["incident", "kind"])?,
            incident_series: Mutex::new(None),
            incident_start: {
                let m = GaugeVec::new(Opts::new("hadiag_incident_start_time_seconds", "When the open incident opened, Unix seconds; absent when none."), &["incident"])?;
                r.register(Box::new(m.clone()))?;
                m
            },
            incident_agreed: igv(&r, "hadiag_incident_agreed", "Agreement on the open incident: 1 once its verdict was acknowledged by a peer (or this node acknowledged a peer's), 0 otherwise; absent when no incident is open. Agreement is sought for node_failed and cut_off, whose takeover and isolation rest on it.", &["incident"])?,
            reload_successful: ig(&r, "hadiag_config_last_reload_successful", "Whether the last configuration load (start-up or SIGHUP reload) was applied (1) or refused (0).")?,
            reload_success_time: {
                let m = Gauge::new("hadiag_config_last_reload_success_timestamp_seconds", "When the configuration in force was loaded (start-up or the last applied reload), Unix seconds.")?;
                r.register(Box::new(m.clone()))?;
                m
            },
            reload_time: {
                let m = GaugeVec::new(Opts::new("hadiag_config_last_reload_timestamp_seconds", "When the last SIGHUP reload was attempted, Unix seconds; absent before the first reload."), &[])?;
                r.register(Box::new(m.clone()))?;
                m
            },
            reloads: icv(&r, "hadiag_config_reloads_total", "SIGHUP reloads, by result (applied, refused).", &["result"])?,
            process: ProcessMetrics::new(&r)?,
            registry: r,
            topo: topo.clone(),
            me,
        };
        let m = Metrics {
            inner: Arc::new(inner),
        };
        m.init_series(monitors);
        Ok(m)
    }

    fn init_series(&self, monitors: &[String]) {
        let i = &*self.inner;
        let t = &i.topo;
        i.start_time
            .set(chrono::Utc::now().timestamp_millis() as f64 / 1000.0);
        if let Some(me) = t.nodes.get(i.me.index()) {
            for ifc in &me.interfaces {
                let Some(net) = t.networks.get(ifc.network.index()) else {
                    continue;
                };
                for target in &net.references {
                    let target = target.to_string();
                    i.reference_rtt.with_label_values(&[&net.name, &target]);
                    for res in ["reply", "timeout", "error"] {
                        i.reference_probes
                            .with_label_values(&[&net.name, &target, res]);
                    }
                }
                for peer in t.members(ifc.network).filter(|&p| p != i.me) {
                    let peer = &t.node(peer).name;
                    i.heartbeat_rtt.with_label_values(&[peer, &net.name]);
                    i.messages_received
                        .with_label_values(&[&net.name, "heartbeat"]);
                }
            }
            if !me.serial.is_empty() {
                i.messages_received
                    .with_label_values(&["serial", "heartbeat"]);
            }
            if me.disk.is_some() {
                for res in ["ok", "failed", "hung"] {
                    i.disk_probes.with_label_values(&[res]);
                }
            }
        }
        // No disk configured: report up (nothing to fail) so "disk down" rules stay quiet. A
        // configured disk's series waits for its first result.
        if t.nodes.get(i.me.index()).is_some_and(|m| m.disk.is_none()) {
            i.disk_up.with_label_values(NO_LABELS).set(1);
        }
        i.reload_successful.set(1);
        i.reload_success_time
            .set(chrono::Utc::now().timestamp_millis() as f64 / 1000.0);
        for res in ["applied", "refused"] {
            i.reloads.with_label_values(&[res]);
        }
        for m in monitors {
            i.monitor_up.with_label_values(&[m]).set(1);
            i.monitor_duration.with_label_values(&[m]);
            for res in ["ok", "failed", "timeout"] {
                i.monitor_runs.with_label_values(&[m, res]);
            }
        }
        for r in KNOWN_REJECT_REASONS {
            i.messages_rejected.with_label_values(&[r]);
        }
        if let Ok(mut seen) = i.reject_reasons.lock() {
            seen.extend(KNOWN_REJECT_REASONS.iter().map(|s| s.to_string()));
        }
        for k in VerdictKind::ALL {
            i.verdict_kind
                .with_label_values(&[k.token()])
                .set(b(k == VerdictKind::Healthy));
            i.incidents_opened.with_label_values(&[k.token()]);
        }
        i.verdict
            .with_label_values(&str_refs(&healthy_series()))
            .set(1);
        for h in HOOKS {
            i.hook_duration.with_label_values(&[h]);
            for res in ["ok", "failed"] {
                i.hook_runs.with_label_values(&[h, res]);
            }
        }
        for res in ["written", "dropped", "failed"] {
            i.journal_entries.with_label_values(&[res]);
        }
    }

    fn net_name(&self, n: NetworkId) -> &str {
        self.inner.topo.network_name(n)
    }

    fn node_name(&self, n: NodeId) -> &str {
        self.inner.topo.node_name(n)
    }

    fn device(&self, n: NetworkId) -> &str {
        let i = &*self.inner;
        i.topo
            .nodes
            .get(i.me.index())
            .and_then(|me| me.interface(n))
            .map_or("?", |f| f.device.as_str())
    }

    /// Records one probe outcome of this node.
    pub fn observe(&self, o: &Observation) {
        let i = &*self.inner;
        match &o.probe {
            Probe::Carrier { network, up } => {
                i.interface_carrier
                    .with_label_values(&[self.net_name(*network), self.device(*network)])
                    .set(b(*up));
            }
            Probe::Reference {
                network,
                target,
                outcome,
            } => {
                let (net, dev, target) = (
                    self.net_name(*network),
                    self.device(*network),
                    target.to_string(),
                );
                let (up, res) = match outcome {
                    EchoOutcome::Reply { rtt } => {
                        i.reference_rtt
                            .with_label_values(&[net, &target])
                            .observe(rtt.as_secs_f64());
                        (true, "reply")
                    }
                    EchoOutcome::Timeout => (false, "timeout"),
                    EchoOutcome::Error(_) => (false, "error"),
                };
                i.reference_up
                    .with_label_values(&[net, dev, &target])
                    .set(b(up));
                i.reference_probes
                    .with_label_values(&[net, &target, res])
                    .inc();
            }
            Probe::Disk { outcome } => {
                let (up, res) = match outcome {
                    DiskOutcome::Ok { latency } => {
                        i.disk_read.observe(latency.as_secs_f64());
                        (true, "ok")
                    }
                    DiskOutcome::Failed { .. } => (false, "failed"),
                    DiskOutcome::Hung { .. } => (false, "hung"),
                };
                i.disk_up.with_label_values(NO_LABELS).set(b(up));
                i.disk_probes.with_label_values(&[res]).inc();
            }
            Probe::SerialPort { peer, open } => {
                i.serial_port_open
                    .with_label_values(&[self.node_name(*peer)])
                    .set(b(*open));
            }
            Probe::Monitor { name, outcome } => {
                let res = if outcome.timed_out {
                    "timeout"
                } else if outcome.ok {
                    "ok"
                } else {
                    "failed"
                };
                i.monitor_up.with_label_values(&[name]).set(b(outcome.ok));
                i.monitor_duration
                    .with_label_values(&[name])
                    .observe(outcome.duration.as_secs_f64());
                i.monitor_runs.with_label_values(&[name, res]).inc();
            }
        }
    }

    /// Records this node's own current view (heard peers, serial, interface health, judged
    /// reference reach, isolation and maintenance state). What the view leaves unknown (the
    /// start-up warm-up, stale evidence) is removed, not set to 0.
    pub fn set_view(&self, v: &View) {
        let i = &*self.inner;
        let t = &i.topo;
        let Some(me) = t.nodes.get(i.me.index()) else {
            return;
        };
        for ifc in &me.interfaces {
            let net = ifc.network;
            let name = self.net_name(net);
            let dev = ifc.device.as_str();
            let peers = t.members(net).filter(|&p| p != i.me);
            let Some(nv) = v.nets.get(&net) else {
                let _ = i.interface_healthy.remove_label_values(&[name, dev]);
                let _ = i.reference_reachable.remove_label_values(&[name, dev]);
                for peer in peers {
                    let _ = i
                        .heartbeat_up
                        .remove_label_values(&[self.node_name(peer), name]);
                }
                continue;
            };
            if nv.carrier != Reach::Unknown {
                i.interface_carrier
                    .with_label_values(&[name, dev])
                    .set(b(nv.carrier == Reach::Yes));
            }
            set_reach(&i.reference_reachable, &[name, dev], nv.reference);
            let traffic = !nv.heard.is_empty() || nv.reference == Reach::Yes;
            i.interface_healthy
                .with_label_values(&[name, dev])
                .set(b(nv.carrier != Reach::No && traffic));
            for peer in peers {
                i.heartbeat_up
                    .with_label_values(&[self.node_name(peer), name])
                    .set(b(nv.heard.contains(&peer)));
            }
        }
        for s in &me.serial {
            let p = self.node_name(s.peer);
            match v.serial.get(&s.peer) {
                Some(heard) => i.serial_up.with_label_values(&[p]).set(b(*heard)),
                None => {
                    let _ = i.serial_up.remove_label_values(&[p]);
                }
            }
        }
        match v.disk {
            DiskHealth::Failing | DiskHealth::Hung => i.disk_up.with_label_values(NO_LABELS).set(0),
            DiskHealth::Ok | DiskHealth::Slow | DiskHealth::None => {
                i.disk_up.with_label_values(NO_LABELS).set(1)
            }
            DiskHealth::Unknown => {}
        }
        i.isolated.set(b(v.isolated));
        i.quiesced.set(b(v.quiesced));
    }

    /// Heartbeat path statistics to `peer` on `network` (from the evidence window).
    pub fn heartbeat(
        &self,
        peer: NodeId,
        network: NetworkId,
        loss_ratio: f64,
        rtt: Option<Duration>,
    ) {
        let i = &*self.inner;
        let (p, n) = (self.node_name(peer), self.net_name(network));
        i.heartbeat_loss
            .with_label_values(&[p, n])
            .set(loss_ratio.clamp(0.0, 1.0));
        if let Some(rtt) = rtt {
            i.heartbeat_rtt
                .with_label_values(&[p, n])
                .observe(rtt.as_secs_f64());
        }
    }

    /// An authenticated message was accepted.
    pub fn message_received(&self, path: Path, body_token: &str) {
        let p = match path {
            Path::Network(n) => self.net_name(n).to_string(),
            Path::Serial => "serial".to_string(),
        };
        self.inner
            .messages_received
            .with_label_values(&[&p, body_token])
            .inc();
    }

    /// A message was dropped; `reason` is the decoder's short reason token
    /// (e.g. `bad_stamp`). Unknown reasons beyond [`MAX_REJECT_REASONS`] count as `other`.
    pub fn message_rejected(&self, reason: &str) {
        let i = &*self.inner;
        let clean: String = reason
            .chars()
            .map(|c| c.to_ascii_lowercase())
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(32)
            .collect();
        let label = match i.reject_reasons.lock() {
            Ok(mut seen) => {
                if seen.contains(&clean) {
                    clean
                } else if seen.len() < MAX_REJECT_REASONS && !clean.is_empty() {
                    seen.insert(clean.clone());
                    clean
                } else {
                    "other".to_string()
                }
            }
            Err(_) => "other".to_string(),
        };
        i.messages_rejected.with_label_values(&[&label]).inc();
    }

    /// The current verdict of this node; `subjects` are its components (the record's
    /// subjects in words).
    pub fn set_diagnosis(&self, d: &DiagnosisRecord, subjects: &[Component]) {
        let i = &*self.inner;
        // Set the new series before removing the old ones, so a concurrent scrape never
        // sees a node without a verdict.
        let mut now: Vec<Vec<String>> = subjects
            .iter()
            .map(|c| {
                let l = SubjectLabels::of(&i.topo, c);
                let mut v = vec![d.kind.clone()];
                v.extend(l.values().iter().map(|x| x.to_string()));
                v
            })
            .collect();
        if now.is_empty() {
            let mut v = healthy_series();
            v[0] = d.kind.clone();
            now.push(v);
        }
        now.dedup();
        for series in &now {
            i.verdict.with_label_values(&str_refs(series)).set(1);
        }
        if let Ok(mut cur) = i.verdict_series.lock() {
            for old in cur.iter().filter(|x| !now.contains(x)) {
                let _ = i.verdict.remove_label_values(&str_refs(old));
            }
            *cur = now;
        }
        for k in VerdictKind::ALL {
            i.verdict_kind
                .with_label_values(&[k.token()])
                .set(b(k.token() == d.kind));
        }
        i.verdict_ambiguous.set(b(d.ambiguous));
        i.verdict_changes.inc();
    }

    pub fn incident_opened(&self, kind: &str) {
        let i = &*self.inner;
        i.incidents_opened.with_label_values(&[kind]).inc();
        i.incident_open.set(1);
    }

    pub fn incident_closed(&self) {
        self.inner.incident_open.set(0);
        self.set_incident(None);
    }

    /// The open incident's identity and start (`None` removes the series).
    pub fn set_incident(&self, open: Option<(&str, &str, f64)>) {
        let i = &*self.inner;
        let Ok(mut cur) = i.incident_series.lock() else {
            return;
        };
        if let Some((id, kind)) = cur.take() {
            let _ = i.incident_info.remove_label_values(&[&id, &kind]);
            let _ = i.incident_start.remove_label_values(&[&id]);
            let _ = i.incident_agreed.remove_label_values(&[&id]);
        }
        if let Some((id, kind, start)) = open {
            i.incident_info.with_label_values(&[id, kind]).set(1);
            i.incident_start.with_label_values(&[id]).set(start);
            i.incident_agreed.with_label_values(&[id]).set(0);
            *cur = Some((id.to_string(), kind.to_string()));
        }
    }

    /// Whether the open incident's verdict is agreed (ignored when no incident is open).
    pub fn set_incident_agreed(&self, agreed: bool) {
        let i = &*self.inner;
        if let Ok(cur) = i.incident_series.lock() {
            if let Some((id, _)) = cur.as_ref() {
                i.incident_agreed.with_label_values(&[id]).set(b(agreed));
            }
        }
    }

    /// The result of a SIGHUP reload, at `at` (Unix seconds).
    pub fn reload_result(&self, applied: bool, at: f64) {
        let i = &*self.inner;
        i.reload_successful.set(b(applied));
        i.reload_time.with_label_values(NO_LABELS).set(at);
        if applied {
            i.reload_success_time.set(at);
        }
        i.reloads
            .with_label_values(&[if applied { "applied" } else { "refused" }])
            .inc();
    }

    /// A peer's latest view and its age (`None` = never heard: no series).
    pub fn set_peer(&self, peer: NodeId, v: &View, age: Option<Duration>) {
        let i = &*self.inner;
        let p = self.node_name(peer);
        if let Some(a) = age {
            i.peer_view_age.with_label_values(&[p]).set(a.as_secs_f64());
        }
        i.peer_quiesced.with_label_values(&[p]).set(b(v.quiesced));
        i.peer_isolated.with_label_values(&[p]).set(b(v.isolated));
    }

    pub fn set_isolated(&self, isolated: bool) {
        self.inner.isolated.set(b(isolated));
    }

    /// An action hook (`isolate`, `takeover`, `fence`) finished.
    pub fn hook_run(&self, hook: &str, ok: bool, duration: Duration) {
        let i = &*self.inner;
        let hook = if HOOKS.contains(&hook) { hook } else { "other" };
        i.hook_runs
            .with_label_values(&[hook, if ok { "ok" } else { "failed" }])
            .inc();
        i.hook_duration
            .with_label_values(&[hook])
            .observe(duration.as_secs_f64());
    }

    /// An alert delivery finished (after its retries).
    pub fn alert_delivered(&self, rule: &str, channel: &str, alert_type: &str, ok: bool) {
        self.inner
            .alerts
            .with_label_values(&[rule, channel, alert_type, if ok { "ok" } else { "failed" }])
            .inc();
    }

    /// Creates the delivery series of configured alert rules (so rules and dashboards see them
    /// before the first alert).
    pub fn register_alert_rules(&self, rules: &[(String, &'static str)]) {
        for (rule, channel) in rules {
            for ty in ["alert", "upalert"] {
                for res in ["ok", "failed"] {
                    self.inner
                        .alerts
                        .with_label_values(&[rule.as_str(), channel, ty, res]);
                }
            }
        }
    }

    /// Brings the journal counters up to date with the writer's statistics.
    pub fn sync_journal(&self, s: &crate::journal::JournalStats) {
        use std::sync::atomic::Ordering::Relaxed;
        let i = &*self.inner;
        let now = [
            s.written.load(Relaxed),
            s.dropped.load(Relaxed),
            s.failed.load(Relaxed),
        ];
        if let Ok(mut seen) = i.journal_seen.lock() {
            for (k, res) in ["written", "dropped", "failed"].iter().enumerate() {
                if now[k] > seen[k] {
                    i.journal_entries
                        .with_label_values(&[res])
                        .inc_by(now[k] - seen[k]);
                    seen[k] = now[k];
                }
            }
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The text exposition format (what `/metrics` serves).
    pub fn render(&self) -> String {
        self.inner.process.sample();
        let mut buf = Vec::new();
        let enc = TextEncoder::new();
        if let Err(e) = enc.encode(&self.inner.registry.gather(), &mut buf) {
            tracing::warn!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}
