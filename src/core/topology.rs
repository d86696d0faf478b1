//! The resolved communication layout of a cluster: nodes, networks, attachments, serial lines
//! and timers — never current state.
//!
//! `crate::config` builds a [`Topology`] from YAML after validating it; the core, the wire
//! codec and the simulator only read it. Ids are indices into the ordered vectors, so every node
//! built from the same configuration agrees on them; order follows the configuration file.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Duration;

/// Index of a node in [`Topology::nodes`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u16);

/// Index of a network in [`Topology::networks`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NetworkId(pub u16);

impl NodeId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl NetworkId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// How heartbeats cross a network.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP datagrams from a socket bound to the device and address.
    Udp,
    /// Raw Ethernet frames, EtherType 0x88B5, for networks without IP.
    Ethernet,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    pub name: String,
    /// Reference targets ("ping nodes": router/switch) reached through this network.
    /// Empty means upstream failures of this network are invisible.
    pub references: Vec<IpAddr>,
    pub transport: Transport,
    /// UDP port of the heartbeats (ignored for `Ethernet`).
    pub port: u16,
}

/// A node's attachment to one network: NIC, cable and hub port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceSpec {
    pub network: NetworkId,
    /// Device name, e.g. `eth1`.
    pub device: String,
    /// Heartbeat source address; `None` on `Ethernet` networks without IP.
    pub address: Option<IpAddr>,
}

/// One end of a serial line, as seen from the node that owns the device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SerialPortSpec {
    pub peer: NodeId,
    pub device: String,
    pub baud: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    pub name: String,
    /// Higher wins the last partition tie-break (docs/isolation-rules.md, partition tie-break).
    pub priority: u32,
    /// One per network the node is attached to, ordered by network id.
    pub interfaces: Vec<InterfaceSpec>,
    pub serial: Vec<SerialPortSpec>,
    /// Block device or file the disk probe reads, if any.
    pub disk: Option<String>,
}

impl NodeSpec {
    pub fn interface(&self, network: NetworkId) -> Option<&InterfaceSpec> {
        self.interfaces.iter().find(|i| i.network == network)
    }
}

/// Timers of detection and isolation. Defaults are documented in `config/two-node.yaml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    pub heartbeat_interval: Duration,
    /// A peer is silent on a path after `heartbeat_interval * detect_multiplier` without news.
    pub detect_multiplier: u32,
    pub reference_interval: Duration,
    pub reference_timeout: Duration,
    pub disk_interval: Duration,
    pub disk_timeout: Duration,
    /// A node that hears nobody and reaches nothing isolates itself after this long.
    pub self_fence_after: Duration,
    /// A node that still reaches its references waits this long before it treats a
    /// silent peer as gone.
    pub fence_deadline: Duration,
}

impl Timing {
    /// Time without news after which a path to a peer counts as silent.
    pub fn detect_time(&self) -> Duration {
        self.heartbeat_interval * self.detect_multiplier
    }

    /// The longest a lossy path's silence threshold may grow (`crate::core::silence`):
    /// `fence_deadline − self_fence_after − detect_time − FENCE_SLACK`, at least
    /// `detect_time`. Why: the isolation margin assumes a cut-off node notices within this
    /// time and its peer no earlier than `detect_time`, so the survivor never takes over while
    /// the cut-off node may still be active (`fence_deadline > self_fence_after + 2 ×
    /// detect_time + FENCE_SLACK` leaves at least `detect_time` here).
    pub fn silence_cap(&self) -> Duration {
        self.fence_deadline
            .saturating_sub(self.self_fence_after)
            .saturating_sub(self.detect_time())
            .saturating_sub(FENCE_SLACK)
            .max(self.detect_time())
    }
}

/// Added to the fence margin for clock-rate drift, scheduling delay and hook start-up.
pub const FENCE_SLACK: Duration = Duration::from_secs(1);

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat_interval: Duration::from_millis(100),
            detect_multiplier: 3,
            reference_interval: Duration::from_millis(100),
            reference_timeout: Duration::from_millis(300),
            disk_interval: Duration::from_secs(1),
            disk_timeout: Duration::from_secs(2),
            self_fence_after: Duration::from_secs(2),
            fence_deadline: Duration::from_secs(5),
        }
    }
}

/// Thresholds that turn evidence into facts; see the evidence module for their meaning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Loss ratio over the heartbeat window above which a path counts as degraded.
    pub degraded_loss_ratio: f64,
    /// Round-trip time above which a path or reference counts as degraded.
    pub degraded_rtt: Duration,
    /// Disk read latency above which the disk counts as slow.
    pub slow_disk: Duration,
    /// Consecutive reference probe failures before a reference counts as unreachable.
    pub reference_failures: u32,
    /// Consecutive successes needed before a failed observable counts as healed.
    pub heal_successes: u32,
    /// Largest accepted probability, per heartbeat, that a healthy but lossy path counts as
    /// silent (its silence threshold grows with its measured loss; `crate::core::silence`).
    #[serde(default = "default_false_silence_probability")]
    pub false_silence_probability: f64,
}

fn default_false_silence_probability() -> f64 {
    1e-6
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            degraded_loss_ratio: 0.02,
            degraded_rtt: Duration::from_millis(50),
            slow_disk: Duration::from_millis(500),
            reference_failures: 3,
            heal_successes: 3,
            false_silence_probability: default_false_silence_probability(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Topology {
    pub cluster: String,
    pub nodes: Vec<NodeSpec>,
    pub networks: Vec<NetworkSpec>,
    pub timing: Timing,
    pub thresholds: Thresholds,
}

impl Topology {
    /// The name of node `id`; `?` for an id outside this topology (operator-facing text only).
    pub fn node_name(&self, id: NodeId) -> &str {
        self.nodes.get(id.index()).map_or("?", |n| n.name.as_str())
    }

    /// The name of network `id`; `?` for an id outside this topology.
    pub fn network_name(&self, id: NetworkId) -> &str {
        self.networks
            .get(id.index())
            .map_or("?", |n| n.name.as_str())
    }

    /// Every node on every network — devices `eth0`, `eth1`, … in network order, UDP port
    /// 7400, no references, serial lines or disks, default timers and thresholds: the plain
    /// shape that tests, benchmarks and the fuzzer start from. Names are taken as given (the
    /// config loader is what validates names).
    pub fn mesh<S: AsRef<str>>(cluster: &str, nodes: &[S], networks: &[S]) -> Topology {
        Topology {
            cluster: cluster.to_string(),
            nodes: nodes
                .iter()
                .map(|n| NodeSpec {
                    name: n.as_ref().to_string(),
                    priority: 0,
                    interfaces: (0..networks.len())
                        .map(|i| InterfaceSpec {
                            network: NetworkId(i as u16),
                            device: format!("eth{i}"),
                            address: None,
                        })
                        .collect(),
                    serial: vec![],
                    disk: None,
                })
                .collect(),
            networks: networks
                .iter()
                .map(|n| NetworkSpec {
                    name: n.as_ref().to_string(),
                    references: vec![],
                    transport: Transport::Udp,
                    port: 7400,
                })
                .collect(),
            timing: Timing::default(),
            thresholds: Thresholds::default(),
        }
    }

    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.nodes.len()).map(|i| NodeId(i as u16))
    }

    pub fn network_ids(&self) -> impl Iterator<Item = NetworkId> + '_ {
        (0..self.networks.len()).map(|i| NetworkId(i as u16))
    }

    pub fn node(&self, id: NodeId) -> &NodeSpec {
        &self.nodes[id.index()]
    }

    pub fn network(&self, id: NetworkId) -> &NetworkSpec {
        &self.networks[id.index()]
    }

    pub fn node_by_name(&self, name: &str) -> Option<NodeId> {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .map(|i| NodeId(i as u16))
    }

    pub fn network_by_name(&self, name: &str) -> Option<NetworkId> {
        self.networks
            .iter()
            .position(|n| n.name == name)
            .map(|i| NetworkId(i as u16))
    }

    /// Nodes attached to `network`, in id order.
    pub fn members(&self, network: NetworkId) -> impl Iterator<Item = NodeId> + '_ {
        self.node_ids()
            .filter(move |&n| self.node(n).interface(network).is_some())
    }

    /// Serial lines as unordered pairs `(a, b)` with `a < b`, each once.
    pub fn serial_lines(&self) -> Vec<(NodeId, NodeId)> {
        let mut lines: Vec<(NodeId, NodeId)> = self
            .node_ids()
            .flat_map(|a| {
                self.node(a)
                    .serial
                    .iter()
                    .map(move |s| (a.min(s.peer), a.max(s.peer)))
            })
            .collect();
        lines.sort();
        lines.dedup();
        lines
    }
}
