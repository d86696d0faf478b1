//! Operator-readable sentences for observations.

use super::model::{Atom, Obs};
use super::types::{net_name, node_name, Fact, Support};
use crate::core::time::fmt_duration;
use crate::core::topology::{NodeId, Topology};
use crate::core::view::DiskHealth;
use crate::core::wire::Path;

pub(crate) fn fact(o: &Obs) -> Fact {
    match o.atom {
        Atom::Hears { o: a, p, s } => Fact::Hears {
            observer: a,
            peer: p,
            network: s,
            heard: o.value,
        },
        Atom::Serial { o: a, p } => Fact::Serial {
            observer: a,
            peer: p,
            heard: o.value,
        },
        Atom::Ref { o: a, s } => Fact::Reference {
            observer: a,
            network: s,
            target: o.target,
            reached: o.value,
        },
        Atom::Carrier { o: a, s } => Fact::Carrier {
            observer: a,
            network: s,
            up: o.value,
        },
        Atom::Alive { n } => Fact::ViewReceived {
            node: n,
            via: o.via,
        },
    }
}

pub(crate) fn obs_text(t: &Topology, o: &Obs) -> String {
    let n = |x: NodeId| node_name(t, x);
    match (o.atom, o.value) {
        (Atom::Hears { o: a, p, s }, true) => {
            format!("{} hears {} on {}", n(a), n(p), net_name(t, s))
        }
        (Atom::Hears { o: a, p, s }, false) => match o.since {
            // A span, not a core instant: core time means nothing to an operator.
            Some(since) => format!(
                "{} has not heard {} on {} for {}",
                n(a),
                n(p),
                net_name(t, s),
                fmt_duration(o.at - since)
            ),
            None => format!("{} does not hear {} on {}", n(a), n(p), net_name(t, s)),
        },
        (Atom::Serial { o: a, p }, true) => format!("{} hears {} on the serial line", n(a), n(p)),
        (Atom::Serial { o: a, p }, false) => {
            format!("{} does not hear {} on the serial line", n(a), n(p))
        }
        (Atom::Ref { o: a, s }, true) => match o.target {
            Some(ip) => format!("{} still reaches {} via {}", n(a), ip, net_name(t, s)),
            None => format!("{} still reaches the reference of {}", n(a), net_name(t, s)),
        },
        (Atom::Ref { o: a, s }, false) => match o.target {
            Some(ip) => format!(
                "{} reaches no reference via {} (last tried {})",
                n(a),
                net_name(t, s),
                ip
            ),
            None => format!("{} reaches no reference via {}", n(a), net_name(t, s)),
        },
        (Atom::Carrier { o: a, s }, true) => {
            format!("{}'s NIC on {} has carrier", n(a), net_name(t, s))
        }
        (Atom::Carrier { o: a, s }, false) => {
            format!("{}'s NIC on {} has lost carrier", n(a), net_name(t, s))
        }
        (Atom::Alive { n: a }, _) => match o.via {
            Some(Path::Serial) => format!("{} is up: its view arrived over the serial line", n(a)),
            Some(Path::Network(s)) => {
                format!("{} is up: its view arrived via {}", n(a), net_name(t, s))
            }
            None => format!("{} is up", n(a)),
        },
    }
}

pub(crate) fn support(t: &Topology, o: &Obs) -> Support {
    Support {
        fact: fact(o),
        at: o.at,
        source: o.source,
        text: obs_text(t, o),
    }
}

pub(crate) fn disk(t: &Topology, n: NodeId, h: DiskHealth) -> String {
    let what = match h {
        DiskHealth::Failing => "returns read errors",
        DiskHealth::Hung => "does not return reads (hung)",
        DiskHealth::Slow => "reads slower than the threshold",
        _ => "is fine",
    };
    format!("the disk of {} {}", node_name(t, n), what)
}
