//! The topology as a model: observations as compact atoms, what each atom needs to hold
//! (its conditions), and which single component faults break each condition.
//!
//! Every prediction is a conjunction of "component works" conditions, so a fault set breaks a
//! positive observation iff one of its faults does alone, and explains a negative observation
//! iff one of its faults does alone. That makes the search exact with per-fault tables.

use crate::core::diagnosis::{Component, Fault, FaultMode};
use crate::core::evidence::ClusterView;
use crate::core::time::Instant;
use crate::core::topology::{NetworkId, NodeId, Topology};
use crate::core::view::{DiskHealth, Reach};
use crate::core::wire::Path;
use std::net::IpAddr;

/// A compact observable.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Atom {
    /// `o` hears `p` on `s`.
    Hears { o: NodeId, p: NodeId, s: NetworkId },
    /// `o` hears `p` on their serial line.
    Serial { o: NodeId, p: NodeId },
    /// `o` reaches a reference of `s`.
    Ref { o: NodeId, s: NetworkId },
    /// `o`'s NIC on `s` has carrier.
    Carrier { o: NodeId, s: NetworkId },
    /// A fresh view of `n` arrived: `n` is up.
    Alive { n: NodeId },
}

impl Atom {
    /// Preference when citing a positive observation that rules a rival out: references are
    /// the most telling to an operator, then heartbeats, serial, carrier, liveness.
    pub(crate) fn cite_rank(&self) -> u8 {
        match self {
            Atom::Ref { .. } => 0,
            Atom::Hears { .. } => 1,
            Atom::Serial { .. } => 2,
            Atom::Carrier { .. } => 3,
            Atom::Alive { .. } => 4,
        }
    }
}

/// One observation: an atom, its observed value, where and when it comes from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Obs {
    pub atom: Atom,
    pub value: bool,
    pub source: NodeId,
    pub at: Instant,
    /// Reference target reached or tried (own reference facts).
    pub target: Option<IpAddr>,
    /// Own negative heartbeat facts: when the peer was last heard on that path.
    pub since: Option<Instant>,
    /// `Alive`: the path the view came by.
    pub via: Option<Path>,
}

const ATT_MODES: [FaultMode; 4] = [
    FaultMode::Down,
    FaultMode::Silent,
    FaultMode::TxOnly,
    FaultMode::RxOnly,
];

/// Calls `f` with each single fault that makes `obs`'s predicted value false. For a negative
/// observation these are its possible explanations; for a positive one, the faults it rules
/// out. The observer itself is never an explanation (it reported), and `me` is up.
pub(crate) fn breakers(atom: Atom, value: bool, me: NodeId, mut f: impl FnMut(Fault)) {
    let node = |n: NodeId, f: &mut dyn FnMut(Fault)| {
        if n != me {
            f(Fault {
                component: Component::Node(n),
                mode: FaultMode::Crashed,
            });
        }
    };
    let tx = |n: NodeId, s: NetworkId, f: &mut dyn FnMut(Fault)| {
        for mode in [FaultMode::Down, FaultMode::Silent, FaultMode::RxOnly] {
            f(Fault {
                component: Component::Attachment(n, s),
                mode,
            });
        }
    };
    let rx = |n: NodeId, s: NetworkId, f: &mut dyn FnMut(Fault)| {
        for mode in [FaultMode::Down, FaultMode::Silent, FaultMode::TxOnly] {
            f(Fault {
                component: Component::Attachment(n, s),
                mode,
            });
        }
    };
    match atom {
        Atom::Hears { o, p, s } => {
            node(p, &mut f);
            tx(p, s, &mut f);
            rx(o, s, &mut f);
            f(Fault {
                component: Component::Hub(s),
                mode: FaultMode::Down,
            });
        }
        Atom::Ref { o, s } => {
            for mode in ATT_MODES {
                f(Fault {
                    component: Component::Attachment(o, s),
                    mode,
                });
            }
            f(Fault {
                component: Component::Hub(s),
                mode: FaultMode::Down,
            });
            f(Fault {
                component: Component::Upstream(s),
                mode: FaultMode::Unreachable,
            });
        }
        Atom::Carrier { o, s } => {
            f(Fault {
                component: Component::Attachment(o, s),
                mode: FaultMode::Down,
            });
            // A dead hub may or may not drop the link: carrier is "don't care" under it, so
            // it explains a lost carrier but is not contradicted by one that stays up.
            if !value {
                f(Fault {
                    component: Component::Hub(s),
                    mode: FaultMode::Down,
                });
            }
        }
        Atom::Serial { o, p } => {
            node(p, &mut f);
            f(Fault {
                component: Component::Serial(o.min(p), o.max(p)),
                mode: FaultMode::Down,
            });
        }
        Atom::Alive { n } => node(n, &mut f),
    }
}

/// Prior weight of a fault (lower = likelier), docs/diagnosis.md: a NIC is likelier than a serial
/// line, than an upstream, than a hub, than a node. Within an attachment, a lost carrier is
/// the commonest cause, then a silent NIC, then one-way failures.
pub(crate) fn prior(f: &Fault) -> u32 {
    let base = match f.component {
        Component::Attachment(..) => 10,
        Component::Serial(..) => 20,
        Component::Upstream(_) => 30,
        Component::Hub(_) => 40,
        Component::Node(_) => 50,
        Component::Disk(_) => 10,
    };
    let sub = match f.mode {
        // Silent before down: on equal evidence (carrier unknown) claim less; a lost carrier,
        // when reported, makes "down" explain strictly more and win anyway.
        FaultMode::Silent | FaultMode::Crashed | FaultMode::Unreachable | FaultMode::Failing => 0,
        FaultMode::Down | FaultMode::Hung => 1,
        FaultMode::RxOnly | FaultMode::TxOnly | FaultMode::Frozen | FaultMode::Slow => 2,
        FaultMode::Lossy => 3,
    };
    base + sub
}

/// Dense index of a fault for O(1) candidate lookup (`None` if ids are out of range).
pub(crate) struct Dense {
    nodes: usize,
    nets: usize,
}

impl Dense {
    pub(crate) fn new(t: &Topology) -> Self {
        Dense {
            nodes: t.nodes.len(),
            nets: t.networks.len(),
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.nodes + self.nodes * self.nets * 4 + 2 * self.nets + self.nodes * self.nodes
    }

    pub(crate) fn index(&self, f: &Fault) -> Option<usize> {
        let (n, s) = (self.nodes, self.nets);
        match f.component {
            Component::Node(a) if a.index() < n => Some(a.index()),
            Component::Attachment(a, net) if a.index() < n && net.index() < s => {
                let m = match f.mode {
                    FaultMode::Down => 0,
                    FaultMode::Silent => 1,
                    FaultMode::TxOnly => 2,
                    FaultMode::RxOnly => 3,
                    _ => return None,
                };
                Some(n + (a.index() * s + net.index()) * 4 + m)
            }
            Component::Hub(net) if net.index() < s => Some(n + n * s * 4 + net.index()),
            Component::Upstream(net) if net.index() < s => Some(n + n * s * 4 + s + net.index()),
            Component::Serial(a, b) if a.index() < n && b.index() < n => {
                Some(n + n * s * 4 + 2 * s + a.index() * n + b.index())
            }
            _ => None,
        }
    }
}

/// Everything the classifier reads from a [`ClusterView`], flattened.
pub(crate) struct Extracted {
    /// Network and serial observations, in (source-independent) atom order.
    pub obs: Vec<Obs>,
    /// (node, health, at) for Failing/Hung/Slow disks.
    pub disks: Vec<(NodeId, DiskHealth, Instant)>,
    /// (observer, peer, network, degraded, at) for every heartbeat heard on a network
    /// (left empty when nobody reports a degraded path).
    pub quality: Vec<(NodeId, NodeId, NetworkId, bool, Instant)>,
    /// (node, monitor name, at).
    pub monitors: Vec<(NodeId, String, Instant)>,
}

/// Flattens the fresh reports of `view` into observations, ignoring anything that does not
/// fit the topology (unknown nodes, networks a node is not on, serial lines that do not exist).
pub(crate) fn extract(t: &Topology, view: &ClusterView) -> Extracted {
    let facts: usize = view
        .reports
        .values()
        .map(|r| r.view.nets.len() * t.nodes.len() + r.view.serial.len() + 1)
        .sum();
    let mut obs = Vec::with_capacity(facts);
    let any_degraded = view
        .reports
        .values()
        .any(|r| r.view.nets.values().any(|nv| !nv.degraded.is_empty()));
    let mut disks = Vec::new();
    let mut quality = Vec::new();
    let mut monitors = Vec::new();
    let lines = t.serial_lines();
    let members: Vec<Vec<NodeId>> = t.network_ids().map(|s| t.members(s).collect()).collect();
    for (&o, r) in &view.reports {
        let Some(spec) = t.nodes.get(o.index()) else {
            continue;
        };
        let own = o == view.me;
        if !own {
            obs.push(Obs {
                atom: Atom::Alive { n: o },
                value: true,
                source: view.me,
                at: r.received,
                target: None,
                since: None,
                via: r.via,
            });
        }
        for (&s, nv) in &r.view.nets {
            let Some(net) = t.networks.get(s.index()) else {
                continue;
            };
            if spec.interface(s).is_none() {
                continue;
            }
            for &p in members
                .get(s.index())
                .into_iter()
                .flatten()
                .filter(|&&p| p != o)
            {
                let heard = nv.heard.contains(&p);
                let last = if own {
                    r.detail
                        .last_heard
                        .iter()
                        .find(|h| h.peer == p && h.path == Path::Network(s))
                        .map(|h| h.at)
                } else {
                    None
                };
                let at = if own && heard {
                    last.unwrap_or(r.received)
                } else {
                    r.received
                };
                obs.push(Obs {
                    atom: Atom::Hears { o, p, s },
                    value: heard,
                    source: o,
                    at,
                    target: None,
                    since: if heard { None } else { last },
                    via: None,
                });
                if heard && any_degraded {
                    quality.push((o, p, s, nv.degraded.contains(&p), r.received));
                }
            }
            if !net.references.is_empty() {
                if let Some(value) = reach(nv.reference) {
                    let detail = if own {
                        r.detail.references.get(&s)
                    } else {
                        None
                    };
                    // Peers report only reached/not: name the target when there is just one.
                    let only = match net.references.as_slice() {
                        [one] => Some(*one),
                        _ => None,
                    };
                    obs.push(Obs {
                        atom: Atom::Ref { o, s },
                        value,
                        source: o,
                        at: detail.map_or(r.received, |d| d.at),
                        target: detail.map(|d| d.target).or(only),
                        since: None,
                        via: None,
                    });
                }
            }
            if let Some(value) = reach(nv.carrier) {
                let at = if own {
                    r.detail.carrier_at.get(&s).copied().unwrap_or(r.received)
                } else {
                    r.received
                };
                obs.push(Obs {
                    atom: Atom::Carrier { o, s },
                    value,
                    source: o,
                    at,
                    target: None,
                    since: None,
                    via: None,
                });
            }
        }
        for (&p, &heard) in &r.view.serial {
            if p == o || lines.binary_search(&(o.min(p), o.max(p))).is_err() {
                continue;
            }
            obs.push(Obs {
                atom: Atom::Serial { o, p },
                value: heard,
                source: o,
                at: r.received,
                target: None,
                since: None,
                via: None,
            });
        }
        match r.view.disk {
            h @ (DiskHealth::Failing | DiskHealth::Hung | DiskHealth::Slow)
                if spec.disk.is_some() || !own =>
            {
                let at = if own {
                    r.detail.disk_at.unwrap_or(r.received)
                } else {
                    r.received
                };
                disks.push((o, h, at));
            }
            _ => {}
        }
        for m in &r.view.failing_monitors {
            monitors.push((o, m.clone(), r.received));
        }
    }
    // Already in a deterministic order: reports by node id, networks by id, peers by id.
    Extracted {
        obs,
        disks,
        quality,
        monitors,
    }
}

fn reach(r: Reach) -> Option<bool> {
    match r {
        Reach::Yes => Some(true),
        Reach::No => Some(false),
        Reach::Unknown => None,
    }
}
