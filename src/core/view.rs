//! A node's compact view of its own observables, as carried in every heartbeat.
//!
//! This is what gives "differential observability": each node knows what its peers see
//! ("I hear X on s, I reach R_s, my disk is OK"). The evidence module produces the local
//! [`View`]; the wire codec carries it; the classifier merges everyone's views.

use crate::core::diagnosis::{IncidentId, IncidentSummary};
use crate::core::topology::{NetworkId, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Three-valued reachability: unknown is not the same as unreachable.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum Reach {
    #[default]
    Unknown,
    Yes,
    No,
}

#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum DiskHealth {
    #[default]
    Unknown,
    /// No disk probe configured.
    None,
    Ok,
    Slow,
    Failing,
    Hung,
}

impl DiskHealth {
    /// Stable token used on the wire and in the journal.
    pub fn token(self) -> &'static str {
        match self {
            DiskHealth::Unknown => "unknown",
            DiskHealth::None => "none",
            DiskHealth::Ok => "ok",
            DiskHealth::Slow => "slow",
            DiskHealth::Failing => "failing",
            DiskHealth::Hung => "hung",
        }
    }
}

/// What a node sees on one of its networks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetView {
    /// Carrier of this node's NIC on the network.
    pub carrier: Reach,
    /// Whether it reaches at least one reference of the network (`Unknown` if none configured).
    pub reference: Reach,
    /// Peers it currently hears on this network.
    pub heard: BTreeSet<NodeId>,
    /// Peers it hears, but with loss or RTT above the degradation thresholds.
    pub degraded: BTreeSet<NodeId>,
}

/// A node's own observables, compact enough for one datagram at 16 nodes × 4 networks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub nets: BTreeMap<NetworkId, NetView>,
    /// Serial peers currently heard, per line (`true` = heard).
    pub serial: BTreeMap<NodeId, bool>,
    pub disk: DiskHealth,
    /// Names of failing monitors (bounded by the number of configured monitors).
    pub failing_monitors: BTreeSet<String>,
    /// Planned maintenance announced with `hadiag quiesce`.
    pub quiesced: bool,
    /// The node has isolated itself.
    pub isolated: bool,
    /// The incident the node currently works on, if any.
    pub incident: Option<IncidentSummary>,
    /// Service claims: peers whose services this node runs (it took them over), with the
    /// incident of the takeover. Its own services are claimed by not being isolated.
    pub holds: BTreeMap<NodeId, IncidentId>,
    /// Isolated, and ready to rejoin as soon as every holder of its services hands them back.
    pub rejoin_ready: bool,
}
