//! Output vocabulary of the classifier: [`Diagnosis`] and its reasons.

use crate::core::diagnosis::{Component, Fault, VerdictKind};
use crate::core::evidence::{Stale, StaleWhat};
use crate::core::time::Instant;
use crate::core::topology::{NetworkId, NodeId, Topology};
use crate::core::view::DiskHealth;
use crate::core::wire::Path;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::net::IpAddr;

/// At most this many supporting observations are listed (a hub failure at 64 nodes has
/// thousands of symptoms); the rest are counted in [`Diagnosis::support_omitted`].
pub const MAX_SUPPORT: usize = 24;
/// At most this many rival explanations are listed.
pub const MAX_RIVALS: usize = 8;
/// At most this many alternative explanations are listed when ambiguous.
pub const MAX_ALTERNATIVES: usize = 8;

/// One observation, as a structured fact.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Fact {
    /// `observer` hears (or does not hear) `peer`'s heartbeats on `network`.
    Hears {
        observer: NodeId,
        peer: NodeId,
        network: NetworkId,
        heard: bool,
    },
    /// `observer` hears (or not) `peer` on their serial line.
    Serial {
        observer: NodeId,
        peer: NodeId,
        heard: bool,
    },
    /// `observer` reaches (or not) a reference of `network` through its NIC there.
    Reference {
        observer: NodeId,
        network: NetworkId,
        target: Option<IpAddr>,
        reached: bool,
    },
    /// Carrier of `observer`'s NIC on `network`.
    Carrier {
        observer: NodeId,
        network: NetworkId,
        up: bool,
    },
    /// A fresh view of `node` reached the diagnosing node (so `node` is up).
    ViewReceived { node: NodeId, via: Option<Path> },
    /// `node`'s disk probe.
    Disk { node: NodeId, health: DiskHealth },
    /// `observer` hears `peer` on `network` with loss or RTT above threshold (or not).
    Degraded {
        observer: NodeId,
        peer: NodeId,
        network: NetworkId,
        degraded: bool,
    },
    /// A monitor of `node` fails.
    MonitorFailing { node: NodeId, name: String },
    /// `node` announced planned maintenance.
    Quiesced { node: NodeId },
}

/// An observation backing a verdict or ruling out a rival, with its time and source node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Support {
    pub fact: Fact,
    /// When the source observed it (own facts) or when its view was received (peers).
    pub at: Instant,
    /// The node whose observation this is.
    pub source: NodeId,
    /// Operator-readable sentence, e.g. `n1 reaches 198.51.100.254 via A`.
    pub text: String,
}

/// A set of faults with its verdict mapping.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Explanation {
    pub kind: VerdictKind,
    pub subjects: Vec<Component>,
    pub faults: Vec<Fault>,
}

/// A rival explanation and why it was not chosen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rival {
    pub faults: Vec<Fault>,
    /// The observation that contradicts it, when one does (`None`: it is consistent but needs
    /// more faults than the verdict, or it leaves a symptom unexplained — see `reason`).
    pub ruled_out_by: Option<Support>,
    /// Operator-readable reason without time (the time is `ruled_out_by.at`), e.g.
    /// `n1 still reaches 198.51.100.254 via A`.
    pub reason: String,
}

/// The cheap, comparable part of a verdict (what agreement compares).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Summary {
    pub kind: VerdictKind,
    /// Canonical (sorted) order.
    pub subjects: Vec<Component>,
}

/// The classifier's verdict with its reasons. Compare verdicts with [`Diagnosis::summary`]:
/// the full struct also holds times.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The node that computed it.
    pub observer: NodeId,
    /// Snapshot time it was computed for.
    pub at: Instant,
    pub kind: VerdictKind,
    /// Canonical (sorted) order. `CutOff`/`NodeFailed`: `[Node(n)]`.
    pub subjects: Vec<Component>,
    /// The chosen minimal explanation (failures only), sorted.
    pub faults: Vec<Fault>,
    /// Degradations (lossy paths, slow disks), reported also when a failure dominates, sorted.
    pub degradations: Vec<Fault>,
    /// Several equally minimal explanations remain; the chosen one follows the priors.
    pub ambiguous: bool,
    /// The other equally minimal explanations (when ambiguous).
    pub alternatives: Vec<Explanation>,
    /// Which extra probe would tell the alternatives apart.
    pub settle_hint: Option<String>,
    /// Observations the verdict explains or rests on (at most [`MAX_SUPPORT`]).
    pub support: Vec<Support>,
    /// Supporting observations not listed.
    pub support_omitted: usize,
    /// Rival explanations of equal or next size with what rules them out.
    pub rivals: Vec<Rival>,
    /// Evidence ignored because it was too old.
    pub stale: Vec<Stale>,
    /// Silent nodes in announced maintenance (not counted as failures).
    pub maintenance: Vec<NodeId>,
    /// Further remarks (reduced diagnostic capacity, truncated search, …).
    pub notes: Vec<String>,
}

impl Diagnosis {
    /// A healthy verdict with nothing to explain.
    pub fn healthy(
        observer: NodeId,
        at: Instant,
        stale: Vec<Stale>,
        _topology: &Topology,
    ) -> Diagnosis {
        Diagnosis {
            observer,
            at,
            kind: VerdictKind::Healthy,
            subjects: Vec::new(),
            faults: Vec::new(),
            degradations: Vec::new(),
            ambiguous: false,
            alternatives: Vec::new(),
            settle_hint: None,
            support: Vec::new(),
            support_omitted: 0,
            rivals: Vec::new(),
            stale,
            maintenance: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Kind and subjects: what nodes compare to agree.
    pub fn summary(&self) -> Summary {
        Summary {
            kind: self.kind,
            subjects: self.subjects.clone(),
        }
    }

    /// Whether the verdict is a failure (neither healthy nor merely degraded).
    pub fn is_failure(&self) -> bool {
        !matches!(self.kind, VerdictKind::Healthy | VerdictKind::Degraded)
    }

    /// The node that must isolate itself, for a `CutOff` verdict.
    pub fn cut_off_node(&self) -> Option<NodeId> {
        match (self.kind, self.subjects.first()) {
            (VerdictKind::CutOff, Some(Component::Node(n))) => Some(*n),
            _ => None,
        }
    }

    /// Nodes judged failed (crashed or frozen) — in `NodeFailed` or `MultipleFaults`.
    pub fn failed_nodes(&self) -> Vec<NodeId> {
        self.faults
            .iter()
            .filter_map(|f| match f.component {
                Component::Node(n) => Some(n),
                _ => None,
            })
            .collect()
    }

    /// Operator-readable explanation, several lines. Times use [`Instant`]'s display.
    pub fn render(&self, topology: &Topology) -> String {
        let mut out = String::new();
        let name = |n: NodeId| node_name(topology, n);
        let _ = writeln!(
            out,
            "verdict at {} (by {}): {}",
            self.at,
            name(self.observer),
            headline(topology, self)
        );
        if !self.faults.is_empty() {
            let list: Vec<String> = self
                .faults
                .iter()
                .map(|f| describe_fault(topology, f))
                .collect();
            let _ = writeln!(out, "explanation: {}", list.join(", "));
        }
        if !self.degradations.is_empty() {
            let list: Vec<String> = self
                .degradations
                .iter()
                .map(|f| describe_fault(topology, f))
                .collect();
            let _ = writeln!(out, "degraded: {}", list.join(", "));
        }
        if self.ambiguous {
            let _ = writeln!(out, "AMBIGUOUS: equally small explanations remain:");
            for a in &self.alternatives {
                let list: Vec<String> = a
                    .faults
                    .iter()
                    .map(|f| describe_fault(topology, f))
                    .collect();
                let _ = writeln!(out, "  - {}", list.join(", "));
            }
        }
        if let Some(h) = &self.settle_hint {
            let _ = writeln!(out, "to settle it: {h}");
        }
        if !self.support.is_empty() {
            let _ = writeln!(out, "because:");
            for s in &self.support {
                let _ = writeln!(out, "  - {} (at {}, from {})", s.text, s.at, name(s.source));
            }
            if self.support_omitted > 0 {
                let _ = writeln!(out, "  - … and {} more observations", self.support_omitted);
            }
        }
        if !self.rivals.is_empty() {
            let _ = writeln!(out, "rivals:");
            for r in &self.rivals {
                let list: Vec<String> = r
                    .faults
                    .iter()
                    .map(|f| describe_fault(topology, f))
                    .collect();
                match &r.ruled_out_by {
                    Some(s) => {
                        let _ = writeln!(
                            out,
                            "  - {} ruled out: {} (at {}, from {})",
                            list.join(" + "),
                            r.reason,
                            s.at,
                            name(s.source)
                        );
                    }
                    None => {
                        let _ = writeln!(out, "  - {} ruled out: {}", list.join(" + "), r.reason);
                    }
                }
            }
        }
        for n in &self.maintenance {
            let _ = writeln!(
                out,
                "maintenance: {} announced planned maintenance; its silence is not a failure",
                name(*n)
            );
        }
        for s in &self.stale {
            let what = match &s.what {
                StaleWhat::View => format!("view of {}", name(s.source)),
                StaleWhat::Reference(net) => format!(
                    "reference probes of {} on {}",
                    name(s.source),
                    net_name(topology, *net)
                ),
                StaleWhat::Disk => format!("disk probe of {}", name(s.source)),
            };
            let _ = writeln!(
                out,
                "ignored stale evidence: {what}, last at {}, {} ms old",
                s.last,
                s.age.as_millis()
            );
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        out
    }
}

pub(crate) fn node_name(t: &Topology, n: NodeId) -> String {
    t.node_name(n).to_string()
}

pub(crate) fn net_name(t: &Topology, n: NetworkId) -> String {
    t.network_name(n).to_string()
}

/// One-line verdict, e.g. `node n2 failed (crashed or frozen)`.
pub fn headline(t: &Topology, d: &Diagnosis) -> String {
    let subjects: Vec<String> = d.subjects.iter().map(|c| c.describe(t)).collect();
    let s = subjects.join(", ");
    let line = match d.kind {
        VerdictKind::Healthy => "healthy".to_string(),
        VerdictKind::Degraded => format!("degraded: {s}"),
        VerdictKind::NodeFailed => format!("{s} failed (crashed or frozen: silent on every path)"),
        VerdictKind::AttachmentFailed => format!("{s} failed"),
        VerdictKind::HubFailed => format!("{s} failed (no forwarding)"),
        VerdictKind::UpstreamFailed => {
            format!("{s} failed (clients cannot reach the cluster there; nobody isolates)")
        }
        VerdictKind::SerialFailed => format!("{s} failed (diagnostic capacity reduced)"),
        VerdictKind::DiskFailed => format!("{s} failed"),
        VerdictKind::CutOff => format!("{s} is cut off from every network: it must isolate"),
        VerdictKind::MultipleFaults => format!("multiple faults: {s}"),
    };
    if d.ambiguous && d.kind == VerdictKind::Degraded {
        let settle = d
            .settle_hint
            .as_deref()
            .map_or(String::new(), |h| format!("; {h}"));
        format!("degraded: one or more of {s} — AMBIGUOUS (the evidence cannot tell which{settle})")
    } else if d.ambiguous {
        let settle = d
            .settle_hint
            .as_deref()
            .map_or(String::new(), |h| format!("; to settle it: {h}"));
        format!(
            "{line} — AMBIGUOUS (likeliest by priors; other explanations fit equally; no action is taken on it{settle})"
        )
    } else {
        line
    }
}

/// `attachment n2.A down (carrier lost)`.
pub fn describe_fault(t: &Topology, f: &Fault) -> String {
    use crate::core::diagnosis::FaultMode as M;
    let c = f.component.describe(t);
    let m = match f.mode {
        M::Crashed => "crashed or frozen",
        M::Frozen => "frozen",
        M::Down => match f.component {
            Component::Attachment(..) => "down (carrier lost)",
            _ => "down",
        },
        M::Silent => "silent (carrier up, no traffic)",
        M::TxOnly => "transmit-only (receives nothing)",
        M::RxOnly => "receive-only (transmits nothing)",
        M::Lossy => "lossy or slow",
        M::Unreachable => "unreachable",
        M::Failing => "failing (read errors)",
        M::Hung => "hung (reads never return)",
        M::Slow => "slow",
    };
    format!("{c} {m}")
}
