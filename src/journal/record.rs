//! The operator-facing records shared by the journal, the JSON API, `status` and `explain`.
//!
//! These are *reports*, not core state: names instead of ids (so a journal can be read on a
//! machine without the configuration), wall-clock UTC timestamps instead of driver instants,
//! and stable tokens for kinds. They are built by the driver from core types with the helper
//! constructors below; nothing here decides anything.
//!
//! Compatibility: fields are only ever added (with `#[serde(default)]`), never renamed, so an
//! older journal stays readable by a newer `explain`.

use crate::core::classify::Diagnosis;
use crate::core::diagnosis::{
    Component, Fault, FaultMode, IncidentId, IncidentSummary, VerdictKind,
};
use crate::core::time::Instant;
use crate::core::topology::{NodeId, Topology};
use crate::core::view::{DiskHealth, Reach, View};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// UTC timestamps are written as RFC 3339 with milliseconds (`2026-11-26T02:09:05.123Z`).
pub mod ts_ms {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| serde::de::Error::custom(format!("timestamp {s:?}: {e}")))
    }
}

/// Same as [`ts_ms`] for optional timestamps.
pub mod opt_ts_ms {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        match s {
            None => Ok(None),
            Some(s) => DateTime::parse_from_rfc3339(&s)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|e| serde::de::Error::custom(format!("timestamp {s:?}: {e}"))),
        }
    }
}

/// Format a wall time the way every output of hadiag does.
pub fn fmt_ts(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Maps driver instants (core time) to wall-clock UTC. The driver creates one at start-up
/// (`WallMap::new(Instant::ZERO, Utc::now())`); core times in diagnoses become journal times.
#[derive(Copy, Clone, Debug)]
pub struct WallMap {
    pub epoch: Instant,
    pub epoch_wall: DateTime<Utc>,
}

impl WallMap {
    pub fn new(epoch: Instant, epoch_wall: DateTime<Utc>) -> Self {
        WallMap { epoch, epoch_wall }
    }

    pub fn wall(&self, at: Instant) -> DateTime<Utc> {
        let d = at.saturating_duration_since(self.epoch);
        let d = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero());
        self.epoch_wall + d
    }
}

/// Readable incident id: `<opener node name>-<number>`, e.g. `n1-7`.
pub fn incident_ref(t: &Topology, id: IncidentId) -> String {
    format!("{}-{}", t.node_name(id.opener), id.number)
}

/// Splits an incident reference `n1-7` into opener name and number; `None` when malformed.
pub fn parse_incident_ref(s: &str) -> Option<(&str, u32)> {
    let (name, num) = s.rsplit_once('-')?;
    if name.is_empty() || name.len() > 64 {
        return None;
    }
    Some((name, num.parse().ok()?))
}

/// Stable token of a fault mode (journal, labels, alert payloads).
pub fn mode_token(m: FaultMode) -> &'static str {
    match m {
        FaultMode::Crashed => "crashed",
        FaultMode::Frozen => "frozen",
        FaultMode::Down => "down",
        FaultMode::Silent => "silent",
        FaultMode::TxOnly => "tx_only",
        FaultMode::RxOnly => "rx_only",
        FaultMode::Lossy => "lossy",
        FaultMode::Unreachable => "unreachable",
        FaultMode::Failing => "failing",
        FaultMode::Hung => "hung",
        FaultMode::Slow => "slow",
    }
}

/// The verdict kind a single faulty component stands for (used to split a multi-fault
/// diagnosis into per-component alert items).
pub fn kind_of_component(c: &Component) -> VerdictKind {
    match c {
        Component::Node(_) => VerdictKind::NodeFailed,
        Component::Attachment(..) => VerdictKind::AttachmentFailed,
        Component::Hub(_) => VerdictKind::HubFailed,
        Component::Upstream(_) => VerdictKind::UpstreamFailed,
        Component::Serial(..) => VerdictKind::SerialFailed,
        Component::Disk(_) => VerdictKind::DiskFailed,
    }
}

/// One faulty component of a verdict.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// Operator-facing name, e.g. `attachment n2.A`.
    pub component: String,
    /// `node` | `attachment` | `hub` | `upstream` | `serial` | `disk`.
    pub class: String,
    /// Network name when the component belongs to one (attachment, hub, upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Node name when the component belongs to one (node, attachment, disk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Fault mode token, e.g. `down`, `silent`, `crashed`.
    pub mode: String,
}

impl FaultRecord {
    pub fn from_fault(t: &Topology, f: &Fault) -> Self {
        let mut r = FaultRecord::from_component(t, &f.component);
        r.mode = mode_token(f.mode).to_string();
        r
    }

    pub fn from_component(t: &Topology, c: &Component) -> Self {
        let node = |id: NodeId| t.nodes.get(id.index()).map(|n| n.name.clone());
        let net = |id| {
            t.networks
                .get(crate::core::topology::NetworkId::index(id))
                .map(|n| n.name.clone())
        };
        let (class, node, network) = match *c {
            Component::Node(n) => ("node", node(n), None),
            Component::Attachment(n, s) => ("attachment", node(n), net(s)),
            Component::Hub(s) => ("hub", None, net(s)),
            Component::Upstream(s) => ("upstream", None, net(s)),
            Component::Serial(..) => ("serial", None, None),
            Component::Disk(n) => ("disk", node(n), None),
        };
        FaultRecord {
            component: c.describe(t),
            class: class.to_string(),
            network,
            node,
            mode: String::new(),
        }
    }
}

/// One observation a verdict rests on (or that rules a rival out).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRecord {
    /// When it was observed (wall clock), if known.
    #[serde(default, with = "opt_ts_ms", skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// The node that observed it.
    #[serde(default)]
    pub node: String,
    /// The observation in words, e.g. `n1 reaches 198.51.100.254 via A`.
    pub text: String,
}

/// A rival explanation and why it was not chosen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RivalRecord {
    /// The rival explanation, e.g. `hub A failed`.
    pub explanation: String,
    /// The observation that rules it out; `None` when the rival is equally consistent
    /// (the verdict is then ambiguous).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ruled_out_by: Option<EvidenceRecord>,
}

/// A verdict with its reasons, as journaled and served by `/api/v1/diagnosis`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnosisRecord {
    /// When this node reached the verdict.
    #[serde(with = "ts_ms")]
    pub at: DateTime<Utc>,
    /// Verdict kind token (`VerdictKind::token`).
    pub kind: String,
    /// Subjects, operator-facing, canonical order.
    pub subjects: Vec<String>,
    #[serde(default)]
    pub faults: Vec<FaultRecord>,
    #[serde(default)]
    pub ambiguous: bool,
    /// One-line summary, e.g. `attachment n2.A failed (down)`.
    pub summary: String,
    #[serde(default)]
    pub support: Vec<EvidenceRecord>,
    #[serde(default)]
    pub rivals: Vec<RivalRecord>,
    /// When ambiguous: which extra probe would settle it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle_hint: Option<String>,
    /// Notes such as ignored stale evidence or residual risk.
    #[serde(default)]
    pub notes: Vec<String>,
    /// The classifier's own full rendering, if it offers one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered: Option<String>,
    /// The incident this verdict belongs to, if any (`n1-7`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    /// Degradations reported alongside (lossy paths, slow disks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub degradations: Vec<FaultRecord>,
    /// When ambiguous: the other equally small explanations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<String>,
}

impl DiagnosisRecord {
    /// A record with kind, subjects and faults filled from core types; the driver adds
    /// support, rivals, hint and notes from the classifier's output.
    pub fn new(t: &Topology, at: DateTime<Utc>, kind: VerdictKind, faults: &[Fault]) -> Self {
        let mut subjects: Vec<Component> = faults.iter().map(|f| f.component).collect();
        subjects.sort();
        subjects.dedup();
        let faults: Vec<FaultRecord> = faults
            .iter()
            .map(|f| FaultRecord::from_fault(t, f))
            .collect();
        let subjects: Vec<String> = subjects.iter().map(|c| c.describe(t)).collect();
        let summary = summarize(kind, &faults);
        DiagnosisRecord {
            at,
            kind: kind.token().to_string(),
            subjects,
            faults,
            ambiguous: false,
            summary,
            support: Vec::new(),
            rivals: Vec::new(),
            settle_hint: None,
            notes: Vec::new(),
            rendered: None,
            incident: None,
            degradations: Vec::new(),
            alternatives: Vec::new(),
        }
    }

    pub fn healthy(at: DateTime<Utc>) -> Self {
        DiagnosisRecord {
            at,
            kind: VerdictKind::Healthy.token().to_string(),
            subjects: Vec::new(),
            faults: Vec::new(),
            ambiguous: false,
            summary: "healthy".to_string(),
            support: Vec::new(),
            rivals: Vec::new(),
            settle_hint: None,
            notes: Vec::new(),
            rendered: None,
            incident: None,
            degradations: Vec::new(),
            alternatives: Vec::new(),
        }
    }

    /// The full record of a classifier verdict: reasons with wall-clock times, rivals with
    /// the observation ruling them out, stale evidence and notes.
    pub fn from_diagnosis(t: &Topology, d: &Diagnosis, wall: &WallMap) -> Self {
        use crate::core::classify::{describe_fault, headline};
        use crate::core::evidence::StaleWhat;
        let name = |n: NodeId| t.node_name(n).to_string();
        let mut r = DiagnosisRecord::new(t, wall.wall(d.at), d.kind, &d.faults);
        if !d.subjects.is_empty() {
            r.subjects = d.subjects.iter().map(|c| c.describe(t)).collect();
        }
        r.summary = headline(t, d);
        r.ambiguous = d.ambiguous;
        r.settle_hint = d.settle_hint.clone();
        r.degradations = d
            .degradations
            .iter()
            .map(|f| FaultRecord::from_fault(t, f))
            .collect();
        r.alternatives = d
            .alternatives
            .iter()
            .map(|a| {
                a.faults
                    .iter()
                    .map(|f| describe_fault(t, f))
                    .collect::<Vec<_>>()
                    .join(" + ")
            })
            .collect();
        let ev = |s: &crate::core::classify::Support| EvidenceRecord {
            at: Some(wall.wall(s.at)),
            node: name(s.source),
            text: s.text.clone(),
        };
        r.support = d.support.iter().map(ev).collect();
        if d.support_omitted > 0 {
            r.notes.push(format!(
                "{} more supporting observations not listed",
                d.support_omitted
            ));
        }
        r.rivals = d
            .rivals
            .iter()
            .map(|rv| RivalRecord {
                explanation: rv
                    .faults
                    .iter()
                    .map(|f| describe_fault(t, f))
                    .collect::<Vec<_>>()
                    .join(" + "),
                ruled_out_by: Some(match &rv.ruled_out_by {
                    Some(s) => EvidenceRecord {
                        text: rv.reason.clone(),
                        ..ev(s)
                    },
                    None => EvidenceRecord {
                        at: None,
                        node: String::new(),
                        text: rv.reason.clone(),
                    },
                }),
            })
            .collect();
        for n in &d.maintenance {
            r.notes.push(format!(
                "{} announced planned maintenance; its silence is not a failure",
                name(*n)
            ));
        }
        for s in &d.stale {
            let what = match &s.what {
                StaleWhat::View => format!("view of {}", name(s.source)),
                StaleWhat::Reference(net) => {
                    format!(
                        "reference probes of {} on {}",
                        name(s.source),
                        t.network_name(*net)
                    )
                }
                StaleWhat::Disk => format!("disk probe of {}", name(s.source)),
            };
            r.notes.push(format!(
                "ignored stale evidence: {what}, last at {}, {} ms old",
                fmt_ts(&wall.wall(s.last)),
                s.age.as_millis()
            ));
        }
        r.notes.extend(d.notes.iter().cloned());
        r.rendered = Some(d.render(t));
        r
    }

    pub fn verdict_kind(&self) -> Option<VerdictKind> {
        VerdictKind::from_token(&self.kind)
    }

    pub fn is_healthy(&self) -> bool {
        self.kind == VerdictKind::Healthy.token()
    }
}

/// `attachment n2.A failed (down)`, `hub A failed`, `healthy`, …
pub fn summarize(kind: VerdictKind, faults: &[FaultRecord]) -> String {
    if faults.is_empty() {
        return kind.token().replace('_', " ");
    }
    let parts: Vec<String> = faults
        .iter()
        .map(|f| {
            if f.mode.is_empty() {
                f.component.clone()
            } else {
                format!("{} ({})", f.component, f.mode)
            }
        })
        .collect();
    let verb = match kind {
        VerdictKind::Degraded => "degraded",
        VerdictKind::CutOff => "cut off",
        VerdictKind::UpstreamFailed => "unreachable",
        _ => "failed",
    };
    format!("{} {verb}", parts.join(", "))
}

/// A node's view, with names instead of ids.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewRecord {
    /// Per network name.
    pub nets: BTreeMap<String, NetViewRecord>,
    /// Serial peer name → heard.
    #[serde(default)]
    pub serial: BTreeMap<String, bool>,
    /// `unknown` | `none` | `ok` | `slow` | `failing` | `hung`.
    pub disk: String,
    #[serde(default)]
    pub failing_monitors: Vec<String>,
    #[serde(default)]
    pub quiesced: bool,
    #[serde(default)]
    pub isolated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
}

impl ViewRecord {
    /// Nothing wrong in this view: no carrier or reference down, someone heard on every
    /// network, nothing degraded, disk fine, every serial peer heard, no failing monitor, no
    /// isolation. (Facts not known yet count as fine: there is no evidence. The incident a
    /// view names is left out: it trails the facts, and only changed facts are journaled.)
    pub fn looks_healthy(&self) -> bool {
        self.nets.values().all(|n| {
            n.carrier != "no" && n.reference != "no" && !n.heard.is_empty() && n.degraded.is_empty()
        }) && self.serial.values().all(|h| *h)
            && matches!(self.disk.as_str(), "ok" | "none" | "unknown")
            && self.failing_monitors.is_empty()
            && !self.isolated
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetViewRecord {
    /// `yes` | `no` | `unknown`.
    pub carrier: String,
    /// `yes` | `no` | `unknown`.
    pub reference: String,
    pub heard: Vec<String>,
    #[serde(default)]
    pub degraded: Vec<String>,
}

pub fn reach_token(r: Reach) -> &'static str {
    match r {
        Reach::Unknown => "unknown",
        Reach::Yes => "yes",
        Reach::No => "no",
    }
}

pub fn disk_token(d: DiskHealth) -> &'static str {
    d.token()
}

impl ViewRecord {
    pub fn from_view(t: &Topology, v: &View) -> Self {
        let node = |id: NodeId| t.node_name(id).to_string();
        let nets = v
            .nets
            .iter()
            .map(|(s, nv)| {
                let name = t.network_name(*s).to_string();
                let rec = NetViewRecord {
                    carrier: reach_token(nv.carrier).to_string(),
                    reference: reach_token(nv.reference).to_string(),
                    heard: nv.heard.iter().map(|&n| node(n)).collect(),
                    degraded: nv.degraded.iter().map(|&n| node(n)).collect(),
                };
                (name, rec)
            })
            .collect();
        ViewRecord {
            nets,
            serial: v.serial.iter().map(|(&p, &h)| (node(p), h)).collect(),
            disk: disk_token(v.disk).to_string(),
            failing_monitors: v.failing_monitors.iter().cloned().collect(),
            quiesced: v.quiesced,
            isolated: v.isolated,
            incident: v
                .incident
                .as_ref()
                .map(|i: &IncidentSummary| incident_ref(t, i.id)),
        }
    }

    /// What a first view says, in words: only what is abnormal (`carrier A: no`,
    /// `hears nobody on A`), so a start-up does not flood the timeline.
    pub fn first_sight(&self) -> Vec<String> {
        let mut out = vec!["first view".to_string()];
        for (net, nv) in &self.nets {
            if nv.carrier == "no" {
                out.push(format!("carrier {net}: no"));
            }
            if nv.reference == "no" {
                out.push(format!("reference {net}: no"));
            }
            if nv.heard.is_empty() {
                out.push(format!("hears nobody on {net}"));
            }
            for p in &nv.degraded {
                out.push(format!("path to {p} on {net} degraded"));
            }
        }
        for (peer, heard) in &self.serial {
            if !heard {
                out.push(format!("serial to {peer}: silent"));
            }
        }
        if !matches!(self.disk.as_str(), "ok" | "none" | "unknown" | "") {
            out.push(format!("disk: {}", self.disk));
        }
        for m in &self.failing_monitors {
            out.push(format!("monitor {m} failing"));
        }
        if self.isolated {
            out.push("isolated".into());
        }
        if self.quiesced {
            out.push("quiesced (maintenance)".into());
        }
        out
    }

    /// Differences from `before`, in words (`carrier A: yes → no`), for the timeline.
    pub fn changes_from(&self, before: &ViewRecord) -> Vec<String> {
        let mut out = Vec::new();
        for (net, now) in &self.nets {
            let was = before.nets.get(net).cloned().unwrap_or_default();
            if was.carrier != now.carrier {
                out.push(format!(
                    "carrier {net}: {} → {}",
                    or_unknown(&was.carrier),
                    now.carrier
                ));
            }
            if was.reference != now.reference {
                out.push(format!(
                    "reference {net}: {} → {}",
                    or_unknown(&was.reference),
                    now.reference
                ));
            }
            // "again" only where this network was seen before (not in a first view).
            let again = if before.nets.contains_key(net) {
                " again"
            } else {
                ""
            };
            for p in now.heard.iter().filter(|p| !was.heard.contains(p)) {
                out.push(format!("hears {p} on {net}{again}"));
            }
            for p in was.heard.iter().filter(|p| !now.heard.contains(p)) {
                out.push(format!("no longer hears {p} on {net}"));
            }
            for p in now.degraded.iter().filter(|p| !was.degraded.contains(p)) {
                out.push(format!("path to {p} on {net} degraded"));
            }
        }
        for (peer, &heard) in &self.serial {
            if before.serial.get(peer) != Some(&heard) {
                out.push(format!(
                    "serial to {peer}: {}",
                    if heard { "heard" } else { "silent" }
                ));
            }
        }
        if self.disk != before.disk {
            out.push(format!(
                "disk: {} → {}",
                or_unknown(&before.disk),
                self.disk
            ));
        }
        for m in self
            .failing_monitors
            .iter()
            .filter(|m| !before.failing_monitors.contains(m))
        {
            out.push(format!("monitor {m} failing"));
        }
        for m in before
            .failing_monitors
            .iter()
            .filter(|m| !self.failing_monitors.contains(m))
        {
            out.push(format!("monitor {m} ok again"));
        }
        if self.isolated != before.isolated {
            out.push(if self.isolated {
                "isolated".into()
            } else {
                "no longer isolated".into()
            });
        }
        if self.quiesced != before.quiesced {
            out.push(if self.quiesced {
                "quiesced (maintenance)".into()
            } else {
                "resumed".into()
            });
        }
        out
    }
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() {
        "unknown"
    } else {
        s
    }
}

/// One hook run (isolate, takeover, fence) or any other action and its outcome.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// `isolate` | `takeover` | `fence` | free text for other actions.
    pub action: String,
    /// The node the action targets (the peer for takeover/fence, this node for isolate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default)]
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<i32>,
    #[serde(default)]
    pub duration_seconds: f64,
    #[serde(default)]
    pub timed_out: bool,
    /// First bytes of the hook's output (bounded by the driver).
    #[serde(default)]
    pub output_head: String,
}

/// What an alert delivery did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub rule: String,
    /// `alert` | `upalert`.
    pub alert_type: String,
    /// `exec` | `webhook`.
    pub channel: String,
    pub subject: String,
    pub ok: bool,
    pub attempts: u32,
    #[serde(default)]
    pub detail: String,
    /// The incident the page was about (an upalert comes after its incident closed). In
    /// memory only: the journal line carries it as the entry's own `incident` (a field of the
    /// same name in this flattened record would collide with it).
    #[serde(skip)]
    pub incident: Option<String>,
    /// When the delivery finished (the journal line is written at the next tick).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_ts_ms")]
    pub delivered_at: Option<DateTime<Utc>>,
}

/// One line of the journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(with = "ts_ms")]
    pub ts: DateTime<Utc>,
    /// The node that wrote the line.
    pub node: String,
    #[serde(flatten)]
    pub event: EntryKind,
}

/// What happened. Tagged by `"type"` in the JSON line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EntryKind {
    /// The daemon started (or the journal was reopened).
    Started {
        version: String,
        #[serde(default)]
        cluster: String,
    },
    /// A view (own or a peer's) changed; `changes` says how, for the timeline.
    ViewChanged {
        /// Whose view.
        of: String,
        view: ViewRecord,
        #[serde(default)]
        changes: Vec<String>,
    },
    /// The verdict changed; `views` is the evidence it was decided on (node → view).
    DiagnosisChanged {
        diagnosis: DiagnosisRecord,
        #[serde(default)]
        views: BTreeMap<String, ViewRecord>,
    },
    IncidentOpened {
        incident: String,
        diagnosis: DiagnosisRecord,
        #[serde(default)]
        views: BTreeMap<String, ViewRecord>,
    },
    /// A peer acknowledged (agreed on) the incident.
    IncidentAgreed { incident: String, peer: String },
    IncidentClosed {
        incident: String,
        #[serde(default)]
        reason: String,
        /// The incident that replaced this one (a peer's id for the same verdict): its
        /// explanation continues this one's timeline.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        superseded_by: Option<String>,
    },
    /// A hook ran (isolate, takeover, fence).
    Action {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incident: Option<String>,
        #[serde(flatten)]
        action: ActionRecord,
    },
    /// An alert was delivered (or gave up).
    Alert {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incident: Option<String>,
        #[serde(flatten)]
        alert: AlertRecord,
    },
    /// The journal found and skipped a torn last line when it was opened.
    JournalRecovered { file: String, torn_bytes: u64 },
    /// Free-form note (configuration reload, maintenance, …).
    Note { text: String },
}

impl EntryKind {
    /// Incident opens and closes are fsync'ed: they are what `explain` needs after a crash.
    /// Lines fsynced as they are written: an incident's open, agreement and close, and the
    /// hook runs and alert deliveries that belong to it (a few per incident), so after a crash
    /// the journal says what was done about an incident as surely as that it happened.
    pub fn must_sync(&self) -> bool {
        matches!(
            self,
            EntryKind::IncidentOpened { .. }
                | EntryKind::IncidentAgreed { .. }
                | EntryKind::IncidentClosed { .. }
                | EntryKind::Action { .. }
                | EntryKind::Alert { .. }
        )
    }

    pub fn type_token(&self) -> &'static str {
        match self {
            EntryKind::Started { .. } => "started",
            EntryKind::ViewChanged { .. } => "view_changed",
            EntryKind::DiagnosisChanged { .. } => "diagnosis_changed",
            EntryKind::IncidentOpened { .. } => "incident_opened",
            EntryKind::IncidentAgreed { .. } => "incident_agreed",
            EntryKind::IncidentClosed { .. } => "incident_closed",
            EntryKind::Action { .. } => "action",
            EntryKind::Alert { .. } => "alert",
            EntryKind::JournalRecovered { .. } => "journal_recovered",
            EntryKind::Note { .. } => "note",
        }
    }

    /// The incident the entry belongs to, if it names one.
    pub fn incident(&self) -> Option<&str> {
        match self {
            EntryKind::IncidentOpened { incident, .. }
            | EntryKind::IncidentAgreed { incident, .. }
            | EntryKind::IncidentClosed { incident, .. } => Some(incident),
            EntryKind::Action { incident, .. } | EntryKind::Alert { incident, .. } => {
                incident.as_deref()
            }
            EntryKind::DiagnosisChanged { diagnosis, .. } => diagnosis.incident.as_deref(),
            _ => None,
        }
    }
}

impl Entry {
    pub fn new(ts: DateTime<Utc>, node: impl Into<String>, event: EntryKind) -> Self {
        Entry {
            ts,
            node: node.into(),
            event,
        }
    }
}
