//! Lab descriptions ([`LabSpec`], what the user asks for) and their resolution into a
//! [`Layout`] (namespace names, devices, addresses, paths) — pure, no I/O, so it is unit
//! tested and shared by `lab up`, `lab fault` and the tests.
//!
//! Addressing (documentation ranges only, see [`network_plan`]): up to 3 networks, network i
//! uses the i-th documentation /24 (192.0.2.0, 198.51.100.0, 203.0.113.0), node k (0-based)
//! gets host k+1, the router host 254 — at most 200 nodes. With 4 to 12 networks each one is
//! a /26 slice of those /24s (192.0.2.0/26, 198.51.100.0/26, 203.0.113.0/26,
//! 192.0.2.64/26, …), node k gets host k+1 of its slice, the router the slice's last host
//! (.62 above the slice base) — at most 61 nodes.

use crate::lab::error::{LabError, Result};
use crate::lab::netns::LAB_NETWORKS;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Host number of every network's router (the reference address).
pub const ROUTER_HOST: u8 = 254;
/// Heartbeat UDP port used on every lab network.
pub const HEARTBEAT_PORT: u16 = 7405;
/// Where each node's daemon serves its API (loopback of the node's own namespace).
pub const API_LISTEN: &str = "127.0.0.1:9405";
/// Node limit of the addressing plan with whole /24s (hosts 1..=200, router 254).
pub const MAX_NODES: usize = 200;
/// Node limit with /26 slices (hosts 1..=61, router 62).
pub const MAX_NODES_SLICED: usize = 61;
/// Network limit: twelve /26 slices of the three documentation /24s.
pub const MAX_NETWORKS: usize = 12;

/// One network's addresses: subnet, prefix length, router host, the node limit.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NetworkPlan {
    pub subnet: Ipv4Addr,
    pub prefix_len: u8,
    pub router_host: u8,
    pub max_nodes: usize,
}

/// The address plan of network `index` in a lab of `count` networks (None beyond
/// [`MAX_NETWORKS`]). Every address it yields is a documentation address.
pub fn network_plan(index: usize, count: usize) -> Option<NetworkPlan> {
    if index >= count || count > MAX_NETWORKS {
        return None;
    }
    if count <= LAB_NETWORKS.len() {
        return Some(NetworkPlan {
            subnet: LAB_NETWORKS[index],
            prefix_len: 24,
            router_host: ROUTER_HOST,
            max_nodes: MAX_NODES,
        });
    }
    let base = LAB_NETWORKS[index % LAB_NETWORKS.len()].octets();
    let slice = (index / LAB_NETWORKS.len()) as u8 * 64;
    Some(NetworkPlan {
        subnet: Ipv4Addr::new(base[0], base[1], base[2], slice),
        prefix_len: 26,
        router_host: slice + 62,
        max_nodes: MAX_NODES_SLICED,
    })
}

/// What a lab should contain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabSpec {
    /// Lab name: the cluster name and the state directory name.
    pub name: String,
    /// Namespace name prefix; `hdg-<name>` when None.
    pub prefix: Option<String>,
    pub nodes: Vec<String>,
    pub networks: Vec<String>,
    /// Serial lines between node pairs.
    pub serial: Vec<(String, String)>,
    pub heartbeat_interval: Duration,
    pub detect_multiplier: u32,
}

impl LabSpec {
    /// `n` nodes `n1..`, networks A and B, serial lines n1–n2, n2–n3, … (a chain).
    pub fn new(name: &str, n: usize) -> LabSpec {
        let nodes: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
        let serial = nodes
            .windows(2)
            .map(|w| (w[0].clone(), w[1].clone()))
            .collect();
        LabSpec {
            name: name.to_string(),
            prefix: None,
            nodes,
            networks: vec!["A".into(), "B".into()],
            serial,
            heartbeat_interval: Duration::from_millis(100),
            detect_multiplier: 3,
        }
    }

    /// The topology of docs/fault-matrix.md: n1, n2, networks A and B, one serial line.
    pub fn two_node(name: &str) -> LabSpec {
        LabSpec::new(name, 2)
    }

    /// A spec whose namespaces carry a process-unique prefix (for parallel tests).
    pub fn unique(mut self) -> LabSpec {
        let p = crate::lab::netns::unique_prefix();
        self.name = format!("{}-{}", self.name, &p[3..]);
        self.prefix = Some(p);
        self
    }

    /// Checks names and resolves namespaces, devices, addresses and paths.
    pub fn resolve(&self, dir: &Path) -> Result<Layout> {
        let bad = |m: String| Err(LabError::Spec(m));
        if !valid_name(&self.name) {
            return bad(format!(
                "lab name {:?}: use 1-24 of [A-Za-z0-9_-]",
                self.name
            ));
        }
        if self.networks.is_empty() || self.networks.len() > MAX_NETWORKS {
            return bad(format!(
                "{} networks: need 1..={MAX_NETWORKS} (a documentation /24 each up to 3, \
                 /26 slices of them beyond)",
                self.networks.len(),
            ));
        }
        let plans: Vec<NetworkPlan> = (0..self.networks.len())
            .filter_map(|i| network_plan(i, self.networks.len()))
            .collect();
        let max_nodes = plans.first().map_or(MAX_NODES, |p| p.max_nodes);
        if self.nodes.is_empty() || self.nodes.len() > max_nodes {
            return bad(format!(
                "{} nodes: need 1..={max_nodes} with {} networks",
                self.nodes.len(),
                self.networks.len()
            ));
        }
        for (what, names) in [("node", &self.nodes), ("network", &self.networks)] {
            for (i, n) in names.iter().enumerate() {
                if !valid_name(n) || n.len() > 8 {
                    return bad(format!("{what} name {n:?}: use 1-8 of [A-Za-z0-9_-]"));
                }
                if names[..i].contains(n) {
                    return bad(format!("duplicate {what} name {n:?}"));
                }
            }
        }
        let prefix = self
            .prefix
            .clone()
            .unwrap_or_else(|| format!("hdg-{}", self.name));
        let networks: Vec<NetworkLayout> = self
            .networks
            .iter()
            .enumerate()
            .zip(&plans)
            .map(|((_, name), plan)| NetworkLayout {
                name: name.clone(),
                subnet: plan.subnet,
                prefix_len: plan.prefix_len,
                hub_ns: format!("{prefix}-hub{name}"),
                bridge: "br0".into(),
                router_ns: format!("{prefix}-rt{name}"),
                router_dev: "eth0".into(),
                reference: host(plan.subnet, plan.router_host),
                port: HEARTBEAT_PORT,
            })
            .collect();
        let mut nodes: Vec<NodeLayout> = Vec::new();
        for (k, name) in self.nodes.iter().enumerate() {
            let node_dir = dir.join("nodes").join(name);
            nodes.push(NodeLayout {
                name: name.clone(),
                ns: format!("{prefix}-{name}"),
                priority: (self.nodes.len() - k) as u32 * 10,
                interfaces: networks
                    .iter()
                    .enumerate()
                    .map(|(i, net)| InterfaceLayout {
                        network: net.name.clone(),
                        device: format!("eth{i}"),
                        hub_port: format!("p{k}"),
                        address: host(net.subnet, net.subnet.octets()[3] + (k + 1) as u8),
                    })
                    .collect(),
                serial: Vec::new(),
                disk: node_dir.join("disk"),
                config: node_dir.join("hadiag.yaml"),
                log: node_dir.join("daemon.log"),
                hooks_dir: node_dir.join("hooks"),
                state_dir: node_dir.join("state"),
                listen: API_LISTEN
                    .parse()
                    .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9405))),
                dir: node_dir,
            });
        }
        let mut serial = Vec::new();
        for (a, b) in &self.serial {
            let (Some(ia), Some(ib)) = (
                self.nodes.iter().position(|n| n == a),
                self.nodes.iter().position(|n| n == b),
            ) else {
                return bad(format!("serial line {a}-{b}: unknown node"));
            };
            if ia == ib {
                return bad(format!("serial line {a}-{b}: a node cannot talk to itself"));
            }
            let (a, b) = if ia < ib { (a, b) } else { (b, a) };
            let line = SerialLayout {
                a: a.clone(),
                b: b.clone(),
                path_a: dir.join("serial").join(format!("{a}-{b}.{a}")),
                path_b: dir.join("serial").join(format!("{a}-{b}.{b}")),
            };
            if serial
                .iter()
                .any(|s: &SerialLayout| s.a == line.a && s.b == line.b)
            {
                return bad(format!("duplicate serial line {a}-{b}"));
            }
            for (me, peer, path) in [(a, b, &line.path_a), (b, a, &line.path_b)] {
                if let Some(n) = nodes.iter_mut().find(|n| &n.name == me) {
                    n.serial.push(SerialEnd {
                        peer: peer.clone(),
                        device: path.clone(),
                    });
                }
            }
            serial.push(line);
        }
        Ok(Layout {
            name: self.name.clone(),
            prefix,
            dir: dir.to_path_buf(),
            nodes,
            networks,
            serial,
            heartbeat_interval_ms: self.heartbeat_interval.as_millis() as u64,
            detect_multiplier: self.detect_multiplier,
            key_file: dir.join("auth.key"),
        })
    }
}

fn default_prefix_len() -> u8 {
    24
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 24
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn host(subnet: Ipv4Addr, h: u8) -> IpAddr {
    let o = subnet.octets();
    IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], h))
}

/// A resolved lab: every name, address and path it uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    pub name: String,
    pub prefix: String,
    pub dir: PathBuf,
    pub nodes: Vec<NodeLayout>,
    pub networks: Vec<NetworkLayout>,
    pub serial: Vec<SerialLayout>,
    pub heartbeat_interval_ms: u64,
    pub detect_multiplier: u32,
    pub key_file: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkLayout {
    pub name: String,
    pub subnet: Ipv4Addr,
    /// Prefix length of `subnet` (24, or 26 for sliced plans).
    #[serde(default = "default_prefix_len")]
    pub prefix_len: u8,
    /// Namespace holding the hub bridge.
    pub hub_ns: String,
    pub bridge: String,
    /// Namespace of the router that holds the reference address.
    pub router_ns: String,
    pub router_dev: String,
    pub reference: IpAddr,
    pub port: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceLayout {
    pub network: String,
    /// Device inside the node's namespace.
    pub device: String,
    /// The other end of the veth, enslaved to the hub bridge.
    pub hub_port: String,
    pub address: IpAddr,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SerialEnd {
    pub peer: String,
    pub device: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLayout {
    pub name: String,
    pub ns: String,
    pub priority: u32,
    pub interfaces: Vec<InterfaceLayout>,
    pub serial: Vec<SerialEnd>,
    pub dir: PathBuf,
    /// Disk probe path (a symlink the lab re-points for faults).
    pub disk: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    pub hooks_dir: PathBuf,
    pub state_dir: PathBuf,
    /// API/metrics listen address inside the node's namespace.
    pub listen: SocketAddr,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SerialLayout {
    /// Lower-ordered node (in spec order).
    pub a: String,
    pub b: String,
    pub path_a: PathBuf,
    pub path_b: PathBuf,
}

impl Layout {
    pub fn node(&self, name: &str) -> Result<&NodeLayout> {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| LabError::Spec(format!("no node {name:?} in lab {}", self.name)))
    }

    pub fn network(&self, name: &str) -> Result<&NetworkLayout> {
        self.networks
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| LabError::Spec(format!("no network {name:?} in lab {}", self.name)))
    }

    pub fn interface(&self, node: &str, network: &str) -> Result<&InterfaceLayout> {
        self.node(node)?
            .interfaces
            .iter()
            .find(|i| i.network == network)
            .ok_or_else(|| LabError::Spec(format!("node {node} has no interface on {network}")))
    }

    pub fn serial_line(&self, x: &str, y: &str) -> Result<&SerialLayout> {
        self.serial
            .iter()
            .find(|s| (s.a == x && s.b == y) || (s.a == y && s.b == x))
            .ok_or_else(|| LabError::Spec(format!("no serial line {x}-{y} in lab {}", self.name)))
    }

    /// Every namespace of the lab, in creation order (hubs, routers, nodes).
    pub fn namespaces(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for n in &self.networks {
            v.push(n.hub_ns.clone());
            v.push(n.router_ns.clone());
        }
        v.extend(self.nodes.iter().map(|n| n.ns.clone()));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_node_layout_uses_documentation_addresses_only() {
        let l = LabSpec::two_node("t")
            .resolve(Path::new("/x"))
            .expect("valid");
        assert_eq!(l.nodes.len(), 2);
        assert_eq!(l.networks[0].reference.to_string(), "192.0.2.254");
        assert_eq!(l.networks[1].reference.to_string(), "198.51.100.254");
        assert_eq!(
            l.interface("n2", "B").map(|i| i.address.to_string()).ok(),
            Some("198.51.100.2".into())
        );
        for n in &l.nodes {
            for i in &n.interfaces {
                assert!(crate::lab::netns::is_lab_address(i.address));
            }
        }
        assert_eq!(l.serial.len(), 1);
        assert_eq!(l.nodes[0].serial[0].peer, "n2");
        assert_eq!(l.namespaces().len(), 6);
    }

    #[test]
    fn four_networks_are_disjoint_documentation_slices() {
        let mut s = LabSpec::new("t", 16);
        s.networks = vec!["A".into(), "B".into(), "C".into(), "D".into()];
        let l = s.resolve(Path::new("/x")).expect("valid");
        let refs: Vec<String> = l.networks.iter().map(|n| n.reference.to_string()).collect();
        assert_eq!(
            refs,
            ["192.0.2.62", "198.51.100.62", "203.0.113.62", "192.0.2.126"]
        );
        assert!(l.networks.iter().all(|n| n.prefix_len == 26));
        assert_eq!(
            l.interface("n16", "D").map(|i| i.address.to_string()).ok(),
            Some("192.0.2.80".into())
        );
        // Every address is a documentation address, unique, and inside its network's slice.
        let mut seen = std::collections::BTreeSet::new();
        for net in &l.networks {
            assert!(crate::lab::netns::is_lab_address(net.reference));
            assert!(seen.insert(net.reference));
        }
        for n in &l.nodes {
            for i in &n.interfaces {
                let net = l.network(&i.network).expect("net");
                assert!(crate::lab::netns::is_lab_address(i.address));
                assert!(seen.insert(i.address), "duplicate {}", i.address);
                let (IpAddr::V4(a), base) = (i.address, net.subnet) else {
                    panic!("v4 only")
                };
                assert_eq!(
                    u32::from(a) >> 6,
                    u32::from(base) >> 6,
                    "{a} outside {base}/26"
                );
            }
        }
        // Twelve networks: the whole of the three /24s, no overlap.
        let mut s = LabSpec::new("t", 61);
        s.networks = (0..12).map(|i| format!("N{i}")).collect();
        let l = s.resolve(Path::new("/x")).expect("valid");
        let subnets: std::collections::BTreeSet<_> = l.networks.iter().map(|n| n.subnet).collect();
        assert_eq!(subnets.len(), 12);
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        let mut s = LabSpec::new("t", 2);
        s.networks = (0..13).map(|i| format!("N{i}")).collect();
        let e = s.resolve(Path::new("/x")).unwrap_err().to_string();
        assert!(e.contains("13 networks"), "{e}");
        let mut s = LabSpec::new("t", 62);
        s.networks = vec!["A".into(), "B".into(), "C".into(), "D".into()];
        let e = s.resolve(Path::new("/x")).unwrap_err().to_string();
        assert!(e.contains("62 nodes: need 1..=61 with 4 networks"), "{e}");
        let mut s = LabSpec::new("t", 2);
        s.serial = vec![("n1".into(), "n9".into())];
        let e = s.resolve(Path::new("/x")).unwrap_err().to_string();
        assert!(e.contains("unknown node"), "{e}");
        let e = LabSpec::new("bad name", 2)
            .resolve(Path::new("/x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("lab name"), "{e}");
    }
}
