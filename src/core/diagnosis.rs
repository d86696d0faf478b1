//! The vocabulary of verdicts: components, fault modes, verdict kinds and incidents.
//!
//! Shared by the classifier, the agreement state machine, the wire codec and every output
//! (metrics labels, journal, `explain`). Tokens are stable: they appear on the wire and in
//! the journal.

use crate::core::topology::{NetworkId, NodeId, Topology};
use serde::{Deserialize, Serialize};

/// A component of the topology model that can fail (docs/fault-model.md).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Component {
    Node(NodeId),
    /// NIC + cable + hub port of a node on a network.
    Attachment(NodeId, NetworkId),
    Hub(NetworkId),
    /// Router/uplink of a network: clients cannot reach the cluster through it.
    Upstream(NetworkId),
    /// Serial line between two nodes, stored with the lower id first.
    Serial(NodeId, NodeId),
    Disk(NodeId),
}

impl Component {
    /// Operator-facing name, e.g. `node n2`, `attachment n2.A`, `hub A`.
    pub fn describe(&self, t: &Topology) -> String {
        let n = |id: NodeId| t.node_name(id);
        let s = |id: NetworkId| t.network_name(id);
        match *self {
            Component::Node(a) => format!("node {}", n(a)),
            Component::Attachment(a, net) => format!("attachment {}.{}", n(a), s(net)),
            Component::Hub(net) => format!("hub {}", s(net)),
            Component::Upstream(net) => format!("upstream of {}", s(net)),
            Component::Serial(a, b) => format!("serial {}–{}", n(a), n(b)),
            Component::Disk(a) => format!("disk of {}", n(a)),
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FaultMode {
    /// Node: silent everywhere.
    Crashed,
    /// Node: silent, carrier up.
    Frozen,
    /// Attachment: carrier lost. Hub: no forwarding. Serial: line dead.
    Down,
    /// Attachment: carrier up, no traffic either way.
    Silent,
    TxOnly,
    RxOnly,
    Lossy,
    /// Upstream: references unreachable while the segment works.
    Unreachable,
    /// Disk: read errors.
    Failing,
    /// Disk: a read never returns.
    Hung,
    /// Disk: reads slower than the threshold.
    Slow,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Fault {
    pub component: Component,
    pub mode: FaultMode,
}

/// Verdict classes. `Degraded` is its own class: it alerts but never isolates.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum VerdictKind {
    Healthy,
    Degraded,
    NodeFailed,
    AttachmentFailed,
    HubFailed,
    UpstreamFailed,
    SerialFailed,
    DiskFailed,
    /// A node is reachable on no network (only serial, or nothing): it must isolate.
    CutOff,
    /// Several simultaneous faults (a minimal explanation of more than one component).
    MultipleFaults,
}

impl VerdictKind {
    pub const ALL: [VerdictKind; 10] = [
        VerdictKind::Healthy,
        VerdictKind::Degraded,
        VerdictKind::NodeFailed,
        VerdictKind::AttachmentFailed,
        VerdictKind::HubFailed,
        VerdictKind::UpstreamFailed,
        VerdictKind::SerialFailed,
        VerdictKind::DiskFailed,
        VerdictKind::CutOff,
        VerdictKind::MultipleFaults,
    ];

    /// Stable token used on the wire, in metrics labels and in the journal.
    pub fn token(self) -> &'static str {
        match self {
            VerdictKind::Healthy => "healthy",
            VerdictKind::Degraded => "degraded",
            VerdictKind::NodeFailed => "node_failed",
            VerdictKind::AttachmentFailed => "attachment_failed",
            VerdictKind::HubFailed => "hub_failed",
            VerdictKind::UpstreamFailed => "upstream_failed",
            VerdictKind::SerialFailed => "serial_failed",
            VerdictKind::DiskFailed => "disk_failed",
            VerdictKind::CutOff => "cut_off",
            VerdictKind::MultipleFaults => "multiple_faults",
        }
    }

    pub fn from_token(s: &str) -> Option<VerdictKind> {
        VerdictKind::ALL.into_iter().find(|k| k.token() == s)
    }
}

/// Incident id: the node that opened it and that node's running number.
/// Opened by the first node to propose; peers adopt the proposer's id.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IncidentId {
    pub opener: NodeId,
    pub number: u32,
}

/// What a proposal, an ack and a heartbeat say about an incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentSummary {
    pub id: IncidentId,
    pub kind: VerdictKind,
    /// Subjects in canonical (sorted) order.
    pub subjects: Vec<Component>,
}
