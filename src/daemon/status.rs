//! The daemon's status file: a JSON snapshot of what this node measures and decides, rewritten
//! atomically (write + rename) once per second to `<state_dir>/status-<node>.json`.
//!
//! It is what the integration tests and a quick `cat` read; the full operator view is the HTTP
//! API (`crate::http`). The file is bounded: one entry per configured network, reference,
//! serial line, monitor and reject reason, and the last [`HOOK_HISTORY`] hook runs.
//!
//! Must not: be read back by the daemon (it is output only).

use crate::core::observation::{DiskOutcome, EchoOutcome, MonitorOutcome, Observation, Probe};
use crate::core::topology::{NetworkId, NodeId, Topology};
use crate::core::wire::Path;
use crate::http::ReloadResult;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;

/// Hook runs kept in the status file.
pub const HOOK_HISTORY: usize = 16;

/// Latest raw probe results, kept by the driver as observations pass by.
#[derive(Debug, Default)]
pub struct ProbeState {
    pub carrier: BTreeMap<NetworkId, bool>,
    pub references: BTreeMap<(NetworkId, IpAddr), (EchoOutcome, u64)>,
    pub disk: Option<(DiskOutcome, u64)>,
    pub serial_open: BTreeMap<NodeId, bool>,
    pub monitors: BTreeMap<String, (MonitorOutcome, u64)>,
}

impl ProbeState {
    pub fn record(&mut self, o: &Observation) {
        match &o.probe {
            Probe::Carrier { network, up } => {
                self.carrier.insert(*network, *up);
            }
            Probe::Reference {
                network,
                target,
                outcome,
            } => {
                let e = self
                    .references
                    .entry((*network, *target))
                    .or_insert((outcome.clone(), 0));
                e.0 = outcome.clone();
                e.1 += 1;
            }
            Probe::Disk { outcome } => {
                let n = self.disk.as_ref().map_or(0, |d| d.1) + 1;
                self.disk = Some((outcome.clone(), n));
            }
            Probe::SerialPort { peer, open } => {
                self.serial_open.insert(*peer, *open);
            }
            Probe::Monitor { name, outcome } => {
                let e = self
                    .monitors
                    .entry(name.clone())
                    .or_insert((outcome.clone(), 0));
                e.0 = outcome.clone();
                e.1 += 1;
            }
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ReferenceStatus {
    /// `ok`, `timeout` or `error`.
    pub state: String,
    pub rtt_seconds: Option<f64>,
    pub error: Option<String>,
    pub probes: u64,
}

#[derive(Debug, Serialize)]
pub struct NetworkStatus {
    pub device: String,
    pub carrier: Option<bool>,
    pub references: BTreeMap<String, ReferenceStatus>,
    /// Peers this node currently hears on the network (core view).
    pub heard: Vec<String>,
    /// Authenticated messages accepted on this network, per sender.
    pub received: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct SerialStatus {
    pub device: String,
    pub open: Option<bool>,
    pub heard: Option<bool>,
    pub received: u64,
}

#[derive(Debug, Serialize)]
pub struct DiskStatus {
    /// `ok`, `failed`, `hung` or `unknown` (no result yet).
    pub state: String,
    pub latency_seconds: Option<f64>,
    pub hung_seconds: Option<f64>,
    pub error: Option<String>,
    pub probes: u64,
}

#[derive(Debug, Serialize)]
pub struct MonitorStatus {
    pub ok: bool,
    pub summary: String,
    pub timed_out: bool,
    pub duration_seconds: f64,
    pub runs: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct HookRun {
    pub hook: String,
    pub incident: String,
    pub success: bool,
    pub attempts: usize,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub output: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ReloadStatus {
    pub applied: u64,
    pub refused: u64,
    pub last: Option<String>,
    /// When the last reload was attempted (RFC 3339, UTC).
    #[serde(with = "crate::journal::record::opt_ts_ms")]
    pub last_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The last reload's result, field by field: what went live, and what was refused (then
    /// nothing of that reload went live).
    pub last_applied: Vec<String>,
    pub last_refused: Vec<String>,
}

impl ReloadStatus {
    /// A reload refused: `summary` says why in one line, `fields` lists every problem (each
    /// naming its place: file:line, field, or the change that needs a restart).
    pub fn refuse(&mut self, summary: String, fields: Vec<String>) -> ReloadResult {
        self.refused += 1;
        self.last = Some(format!("refused: {summary}"));
        self.last_at = Some(chrono::Utc::now());
        self.last_applied = Vec::new();
        self.last_refused = fields;
        self.result()
    }

    /// A reload applied; `changes` are what went live (empty: the file did not change).
    pub fn apply(&mut self, changes: Vec<String>) -> ReloadResult {
        self.applied += 1;
        self.last = Some(if changes.is_empty() {
            "applied: no change".to_string()
        } else {
            format!("applied: {}", changes.join("; "))
        });
        self.last_at = Some(chrono::Utc::now());
        self.last_refused = Vec::new();
        self.last_applied = changes;
        self.result()
    }

    /// The last reload as the API and `hadiag status` show it.
    pub fn result(&self) -> ReloadResult {
        let refused = self
            .last
            .as_deref()
            .is_some_and(|l| l.starts_with("refused"));
        ReloadResult {
            at: self.last_at.unwrap_or_default(),
            outcome: if refused { "refused" } else { "applied" }.to_string(),
            error: if refused {
                let more = self.last_refused.len().saturating_sub(1);
                self.last_refused
                    .first()
                    .map(|f| match more {
                        0 => f.clone(),
                        n => format!("{f} (and {n} more)"),
                    })
                    .or_else(|| self.last.clone())
            } else {
                None
            },
            applied: self.last_applied.clone(),
            refused: self.last_refused.clone(),
            applied_total: self.applied,
            refused_total: self.refused,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct StatusFile {
    pub node: String,
    /// The policy in force in the core: fence a silent peer before taking over (a fence hook
    /// is configured), so a reload's effect on it can be seen.
    pub fence_before_takeover: bool,
    /// Key id that signs outgoing messages, and every key id accepted (rotation state).
    pub signing_key: String,
    pub accepted_keys: Vec<String>,
    pub pid: u32,
    pub incarnation: u64,
    pub uptime_seconds: f64,
    pub role: String,
    pub verdict: String,
    pub subjects: Vec<String>,
    pub incident: Option<String>,
    pub heartbeat_interval_seconds: f64,
    pub networks: BTreeMap<String, NetworkStatus>,
    pub serial: BTreeMap<String, SerialStatus>,
    pub disk: Option<DiskStatus>,
    pub monitors: BTreeMap<String, MonitorStatus>,
    pub rejected: BTreeMap<String, u64>,
    pub transport: BTreeMap<String, u64>,
    pub hooks: VecDeque<HookRun>,
    pub reloads: ReloadStatus,
}

pub fn reference_status(o: &EchoOutcome, probes: u64) -> ReferenceStatus {
    match o {
        EchoOutcome::Reply { rtt } => ReferenceStatus {
            state: "ok".into(),
            rtt_seconds: Some(rtt.as_secs_f64()),
            error: None,
            probes,
        },
        EchoOutcome::Timeout => ReferenceStatus {
            state: "timeout".into(),
            rtt_seconds: None,
            error: None,
            probes,
        },
        EchoOutcome::Error(e) => ReferenceStatus {
            state: "error".into(),
            rtt_seconds: None,
            error: Some(e.clone()),
            probes,
        },
    }
}

pub fn disk_status(d: Option<&(DiskOutcome, u64)>) -> DiskStatus {
    match d {
        None => DiskStatus {
            state: "unknown".into(),
            latency_seconds: None,
            hung_seconds: None,
            error: None,
            probes: 0,
        },
        Some((DiskOutcome::Ok { latency }, n)) => DiskStatus {
            state: "ok".into(),
            latency_seconds: Some(latency.as_secs_f64()),
            hung_seconds: None,
            error: None,
            probes: *n,
        },
        Some((DiskOutcome::Failed { error }, n)) => DiskStatus {
            state: "failed".into(),
            latency_seconds: None,
            hung_seconds: None,
            error: Some(error.clone()),
            probes: *n,
        },
        Some((DiskOutcome::Hung { for_time }, n)) => DiskStatus {
            state: "hung".into(),
            latency_seconds: None,
            hung_seconds: Some(for_time.as_secs_f64()),
            error: None,
            probes: *n,
        },
    }
}

/// Accepted-message counts keyed by (path, sender) → per network name / serial peer.
pub fn received_on(
    t: &Topology,
    counts: &BTreeMap<(Path, NodeId), u64>,
    path: Path,
) -> BTreeMap<String, u64> {
    counts
        .iter()
        .filter(|((p, _), _)| *p == path)
        .map(|((_, n), c)| (t.node_name(*n).to_string(), *c))
        .collect()
}

/// Writes `value` to `path` atomically (temporary file + rename).
pub fn write_atomic(path: &std::path::Path, value: &StatusFile) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Writes the status file on a thread of its own. The file system can stall for a long time
/// (writeback of gigabytes of dirty pages, a slow disk), and the driver's loop is the one that
/// sends the heartbeats: a stalled write there would make the peers see this node die.
/// At most one file waits while a write is under way; a newer one arriving meanwhile is
/// skipped (the next second brings a fresh one).
pub struct StatusWriter {
    tx: std::sync::mpsc::SyncSender<StatusFile>,
}

impl StatusWriter {
    pub fn spawn(path: std::path::PathBuf) -> std::io::Result<StatusWriter> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<StatusFile>(1);
        std::thread::Builder::new()
            .name("hadiag-status".into())
            .spawn(move || {
                for file in rx {
                    if let Err(e) = write_atomic(&path, &file) {
                        tracing::debug!(path = %path.display(), error = %e, "status file not written");
                    }
                }
            })?;
        Ok(StatusWriter { tx })
    }

    /// Queues `file` unless a write is still pending; never blocks.
    pub fn submit(&self, file: StatusFile) {
        let _ = self.tx.try_send(file);
    }
}
