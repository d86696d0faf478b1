//! Cluster shapes for the simulator: builds a [`Topology`] for N nodes, M networks and a
//! serial layout, named like the fault matrix (`n1`, `n2`, …; networks `A`, `B`, …).
//!
//! Addresses are documentation addresses (RFC 5737) and are never used to send anything:
//! the simulator only needs them as labels.

use crate::core::topology::{
    InterfaceSpec, NetworkId, NetworkSpec, NodeId, NodeSpec, SerialPortSpec, Thresholds, Timing,
    Topology, Transport,
};
use std::net::{IpAddr, Ipv4Addr};

/// Which node pairs have a serial line.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SerialLayout {
    None,
    /// Only between `n1` and `n2`.
    FirstPair,
    /// `n1–n2`, `n2–n3`, …, `nN–n1` (just `n1–n2` for two nodes).
    Ring,
}

/// The communication layout of a simulated cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    /// 2..=16 nodes (the sweep uses 2..=8).
    pub nodes: usize,
    /// 1..=4 networks; every node is attached to every network.
    pub networks: usize,
    pub serial: SerialLayout,
    /// Whether each network has a reference ("ping node").
    pub references: bool,
}

impl Shape {
    /// The fault-matrix cluster of docs/fault-matrix.md: n1, n2; networks A, B with references; serial.
    pub fn matrix() -> Shape {
        Shape {
            nodes: 2,
            networks: 2,
            serial: SerialLayout::Ring,
            references: true,
        }
    }

    pub fn with_nodes(mut self, nodes: usize) -> Shape {
        self.nodes = nodes;
        self
    }

    pub fn with_serial(mut self, serial: SerialLayout) -> Shape {
        self.serial = serial;
        self
    }

    pub fn with_networks(mut self, networks: usize) -> Shape {
        self.networks = networks;
        self
    }

    /// Serial lines as ordered pairs `(a, b)` with `a < b`.
    pub fn serial_pairs(&self) -> Vec<(NodeId, NodeId)> {
        let n = self.nodes as u16;
        let mut pairs = match self.serial {
            SerialLayout::None => Vec::new(),
            SerialLayout::FirstPair => vec![(NodeId(0), NodeId(1))],
            SerialLayout::Ring if n <= 2 => vec![(NodeId(0), NodeId(1))],
            SerialLayout::Ring => (0..n).map(|i| (NodeId(i), NodeId((i + 1) % n))).collect(),
        };
        for p in &mut pairs {
            *p = (p.0.min(p.1), p.0.max(p.1));
        }
        pairs.sort();
        pairs.dedup();
        pairs
    }

    /// Builds the topology with the given timers.
    pub fn topology(&self, timing: Timing, thresholds: Thresholds) -> Topology {
        let networks: Vec<NetworkSpec> = (0..self.networks)
            .map(|s| NetworkSpec {
                name: network_name(s),
                references: if self.references {
                    vec![IpAddr::V4(Ipv4Addr::new(198, 51, 100, 254 - s as u8))]
                } else {
                    Vec::new()
                },
                transport: Transport::Udp,
                port: 7400,
            })
            .collect();
        let pairs = self.serial_pairs();
        let nodes = (0..self.nodes)
            .map(|i| {
                let me = NodeId(i as u16);
                NodeSpec {
                    name: format!("n{}", i + 1),
                    // n1 has the highest priority, so tie-breaks are easy to read.
                    priority: (self.nodes - i) as u32 * 10,
                    interfaces: (0..self.networks)
                        .map(|s| InterfaceSpec {
                            network: NetworkId(s as u16),
                            device: format!("eth{s}"),
                            address: Some(IpAddr::V4(Ipv4Addr::new(
                                192,
                                0,
                                2,
                                (s * 32 + i + 1) as u8,
                            ))),
                        })
                        .collect(),
                    serial: pairs
                        .iter()
                        .filter_map(|&(a, b)| {
                            let peer = if a == me {
                                b
                            } else if b == me {
                                a
                            } else {
                                return None;
                            };
                            Some(SerialPortSpec {
                                peer,
                                device: format!("/dev/ttyS{}", peer.0),
                                baud: 115_200,
                            })
                        })
                        .collect(),
                    disk: Some("/dev/sda".to_string()),
                }
            })
            .collect();
        Topology {
            cluster: "sim".to_string(),
            nodes,
            networks,
            timing,
            thresholds,
        }
    }
}

/// `A`, `B`, `C`, `D`, then `N4`, `N5`, … .
pub fn network_name(index: usize) -> String {
    match index {
        0..=25 => ((b'A' + index as u8) as char).to_string(),
        _ => format!("N{index}"),
    }
}
