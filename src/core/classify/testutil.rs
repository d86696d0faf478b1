//! Test helpers: small topologies and a ground-truth world that derives every node's view
//! from an injected fault set (written independently of the classifier's model code).

use crate::core::diagnosis::{Component, Fault, FaultMode};
use crate::core::evidence::{ClusterView, OwnDetail, Report};
use crate::core::time::Instant;
use crate::core::topology::{
    InterfaceSpec, NetworkId, NetworkSpec, NodeId, NodeSpec, SerialPortSpec, Thresholds, Timing,
    Topology, Transport,
};
use crate::core::view::{DiskHealth, NetView, Reach, View};
use crate::core::wire::Path;
use std::net::IpAddr;

/// `nodes` nodes n1.., networks named by `nets` (with a reference each when `refs`), a serial
/// line between each consecutive pair when `serial`, a disk on every node.
pub(crate) fn topo(nodes: usize, nets: &[&str], refs: bool, serial: bool) -> Topology {
    let networks: Vec<NetworkSpec> = nets
        .iter()
        .enumerate()
        .map(|(i, name)| NetworkSpec {
            name: name.to_string(),
            references: if refs {
                vec![IpAddr::from([198, 51, 100, 250 + i as u8])]
            } else {
                vec![]
            },
            transport: Transport::Udp,
            port: 7000,
        })
        .collect();
    let nodes: Vec<NodeSpec> = (0..nodes)
        .map(|i| NodeSpec {
            name: format!("n{}", i + 1),
            priority: 100 - i as u32,
            interfaces: (0..nets.len())
                .map(|s| InterfaceSpec {
                    network: NetworkId(s as u16),
                    device: format!("eth{s}"),
                    address: Some(IpAddr::from([192, 0, 2, (10 * s + i + 1) as u8])),
                })
                .collect(),
            serial: if serial {
                let mut v = Vec::new();
                if i > 0 {
                    v.push(SerialPortSpec {
                        peer: NodeId(i as u16 - 1),
                        device: "/dev/ttyS0".into(),
                        baud: 115200,
                    });
                }
                if i + 1 < nodes {
                    v.push(SerialPortSpec {
                        peer: NodeId(i as u16 + 1),
                        device: "/dev/ttyS1".into(),
                        baud: 115200,
                    });
                }
                v
            } else {
                vec![]
            },
            disk: Some("/dev/sda".into()),
        })
        .collect();
    Topology {
        cluster: "test".into(),
        nodes,
        networks,
        timing: Timing::default(),
        thresholds: Thresholds::default(),
    }
}

pub(crate) fn n(i: u16) -> NodeId {
    NodeId(i)
}
pub(crate) fn s(i: u16) -> NetworkId {
    NetworkId(i)
}
pub(crate) fn node(i: u16) -> Fault {
    Fault {
        component: Component::Node(NodeId(i)),
        mode: FaultMode::Crashed,
    }
}
pub(crate) fn att(i: u16, net: u16, mode: FaultMode) -> Fault {
    Fault {
        component: Component::Attachment(NodeId(i), NetworkId(net)),
        mode,
    }
}
pub(crate) fn hub(net: u16) -> Fault {
    Fault {
        component: Component::Hub(NetworkId(net)),
        mode: FaultMode::Down,
    }
}
pub(crate) fn upstream(net: u16) -> Fault {
    Fault {
        component: Component::Upstream(NetworkId(net)),
        mode: FaultMode::Unreachable,
    }
}
pub(crate) fn serial(a: u16, b: u16) -> Fault {
    Fault {
        component: Component::Serial(NodeId(a.min(b)), NodeId(a.max(b))),
        mode: FaultMode::Down,
    }
}
pub(crate) fn disk(i: u16, mode: FaultMode) -> Fault {
    Fault {
        component: Component::Disk(NodeId(i)),
        mode,
    }
}

/// Ground truth: the injected faults, plus lossy components.
pub(crate) struct World<'a> {
    pub t: &'a Topology,
    pub faults: Vec<Fault>,
    /// Hub down drops the carrier of every port (a powered-off switch) when true.
    pub hub_drops_carrier: bool,
}

impl World<'_> {
    fn mode(&self, c: Component) -> Option<FaultMode> {
        self.faults
            .iter()
            .find(|f| f.component == c)
            .map(|f| f.mode)
    }
    fn up(&self, a: NodeId) -> bool {
        self.mode(Component::Node(a)).is_none()
    }
    fn tx(&self, a: NodeId, net: NetworkId) -> bool {
        self.up(a)
            && !matches!(
                self.mode(Component::Attachment(a, net)),
                Some(FaultMode::Down | FaultMode::Silent | FaultMode::RxOnly)
            )
    }
    fn rx(&self, a: NodeId, net: NetworkId) -> bool {
        self.up(a)
            && !matches!(
                self.mode(Component::Attachment(a, net)),
                Some(FaultMode::Down | FaultMode::Silent | FaultMode::TxOnly)
            )
    }
    fn hub_ok(&self, net: NetworkId) -> bool {
        self.mode(Component::Hub(net)).is_none()
    }
    fn serial_ok(&self, a: NodeId, b: NodeId) -> bool {
        self.up(a) && self.up(b) && self.mode(Component::Serial(a.min(b), a.max(b))).is_none()
    }
    fn lossy(&self, a: NodeId, b: NodeId, net: NetworkId) -> bool {
        [
            Component::Attachment(a, net),
            Component::Attachment(b, net),
            Component::Hub(net),
        ]
        .iter()
        .any(|&c| self.mode(c) == Some(FaultMode::Lossy))
    }

    /// The view node `o` would report.
    pub(crate) fn view_of(&self, o: NodeId) -> View {
        let t = self.t;
        let mut v = View::default();
        for iface in &t.node(o).interfaces {
            let net = iface.network;
            let mut nv = NetView::default();
            let down = self.mode(Component::Attachment(o, net)) == Some(FaultMode::Down);
            nv.carrier = if down || (!self.hub_ok(net) && self.hub_drops_carrier) {
                Reach::No
            } else {
                Reach::Yes
            };
            if !t.network(net).references.is_empty() {
                let ok = self.tx(o, net)
                    && self.rx(o, net)
                    && self.hub_ok(net)
                    && self.mode(Component::Upstream(net)).is_none();
                nv.reference = if ok { Reach::Yes } else { Reach::No };
            }
            for p in t.members(net).filter(|&p| p != o) {
                if self.tx(p, net) && self.rx(o, net) && self.hub_ok(net) {
                    nv.heard.insert(p);
                    if self.lossy(o, p, net) {
                        nv.degraded.insert(p);
                    }
                }
            }
            v.nets.insert(net, nv);
        }
        for (a, b) in t.serial_lines() {
            if a == o {
                v.serial.insert(b, self.serial_ok(a, b));
            } else if b == o {
                v.serial.insert(a, self.serial_ok(a, b));
            }
        }
        v.disk = match self.mode(Component::Disk(o)) {
            Some(FaultMode::Failing) => DiskHealth::Failing,
            Some(FaultMode::Hung) => DiskHealth::Hung,
            Some(FaultMode::Slow) => DiskHealth::Slow,
            _ => DiskHealth::Ok,
        };
        v
    }

    /// The path by which `p`'s view reaches `me`, if any.
    fn path(&self, p: NodeId, me: NodeId) -> Option<Path> {
        for net in self.t.network_ids() {
            let both =
                self.t.node(p).interface(net).is_some() && self.t.node(me).interface(net).is_some();
            if both && self.tx(p, net) && self.rx(me, net) && self.hub_ok(net) {
                return Some(Path::Network(net));
            }
        }
        if self.t.serial_lines().contains(&(p.min(me), p.max(me))) && self.serial_ok(p, me) {
            return Some(Path::Serial);
        }
        None
    }

    /// What `me` would feed the classifier at `now`.
    pub(crate) fn cluster_view(&self, me: NodeId, now: Instant) -> ClusterView {
        let mut cv = ClusterView::new(me, now);
        cv.reports.insert(
            me,
            Report {
                view: self.view_of(me),
                received: now,
                via: None,
                detail: OwnDetail::default(),
            },
        );
        for p in self.t.node_ids().filter(|&p| p != me && self.up(p)) {
            if let Some(via) = self.path(p, me) {
                cv.reports.insert(
                    p,
                    Report {
                        view: self.view_of(p),
                        received: now,
                        via: Some(via),
                        detail: OwnDetail::default(),
                    },
                );
            }
        }
        cv
    }
}

pub(crate) fn world<'a>(t: &'a Topology, faults: &[Fault]) -> World<'a> {
    World {
        t,
        faults: faults.to_vec(),
        hub_drops_carrier: false,
    }
}
