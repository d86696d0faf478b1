//! Which extra probe would settle an ambiguous verdict: predict hypothetical observations
//! (a serial line that does not exist, a reference on a network without one, a third node on
//! a network) under each remaining explanation and name those that tell them apart.

use super::model::{breakers, Atom};
use super::types::{describe_fault, net_name, node_name};
use crate::core::diagnosis::{Component, Fault};
use crate::core::topology::{NodeId, Topology};
use std::collections::BTreeSet;

/// Stands for "no node": so hypothetical predictions may blame any real node.
const NOBODY: NodeId = NodeId(u16::MAX);
/// A hypothetical extra node on a network.
const THIRD: NodeId = NodeId(u16::MAX - 1);
/// At most this many probes are suggested.
const MAX_PROBES: usize = 3;

/// Predicted value of a hypothetical observation made by `observer`; `None` when the observer
/// itself is down in that explanation (it would report nothing).
fn predict(faults: &[Fault], observer: NodeId, atom: Atom) -> Option<bool> {
    if faults
        .iter()
        .any(|f| f.component == Component::Node(observer))
    {
        return None;
    }
    let mut ok = true;
    breakers(atom, true, NOBODY, |b| ok &= !faults.contains(&b));
    Some(ok)
}

fn differs(chosen: &[Fault], alts: &[Vec<Fault>], probes: &[(NodeId, Atom)]) -> Vec<usize> {
    alts.iter()
        .enumerate()
        .filter(|(_, alt)| {
            probes
                .iter()
                .any(|&(o, a)| predict(chosen, o, a) != predict(alt, o, a))
        })
        .map(|(i, _)| i)
        .collect()
}

pub(crate) fn settle(
    t: &Topology,
    _me: NodeId,
    chosen: &[Fault],
    alts: &[Vec<Fault>],
) -> Option<String> {
    let mut involved: BTreeSet<NodeId> = BTreeSet::new();
    for f in chosen.iter().chain(alts.iter().flatten()) {
        match f.component {
            Component::Node(n) | Component::Attachment(n, _) | Component::Disk(n) => {
                involved.insert(n);
            }
            Component::Serial(a, b) => {
                involved.insert(a);
                involved.insert(b);
            }
            Component::Hub(s) | Component::Upstream(s) => involved.extend(t.members(s)),
        }
    }
    let lines = t.serial_lines();
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    // A serial line between two involved nodes.
    let inv: Vec<NodeId> = involved.iter().copied().collect();
    for (i, &a) in inv.iter().enumerate() {
        for &b in inv.iter().skip(i + 1) {
            if lines.contains(&(a, b)) {
                continue;
            }
            let probes = [
                (a, Atom::Serial { o: a, p: b }),
                (b, Atom::Serial { o: b, p: a }),
            ];
            let sep = differs(chosen, alts, &probes);
            if !sep.is_empty() {
                out.push((
                    format!("a serial line {}–{}", node_name(t, a), node_name(t, b)),
                    sep,
                ));
            }
        }
    }
    for s in t.network_ids() {
        let members: Vec<NodeId> = t.members(s).collect();
        if t.network(s).references.is_empty() {
            let probes: Vec<(NodeId, Atom)> =
                members.iter().map(|&o| (o, Atom::Ref { o, s })).collect();
            let sep = differs(chosen, alts, &probes);
            if !sep.is_empty() {
                out.push((
                    format!(
                        "a reference target (router or switch address to ping) on {}",
                        net_name(t, s)
                    ),
                    sep,
                ));
            }
        }
        if members.len() < 3 {
            let probes: Vec<(NodeId, Atom)> = members
                .iter()
                .map(|&p| (THIRD, Atom::Hears { o: THIRD, p, s }))
                .collect();
            let sep = differs(chosen, alts, &probes);
            if !sep.is_empty() {
                out.push((format!("a third node on {}", net_name(t, s)), sep));
            }
        }
    }
    if out.is_empty() {
        return None;
    }
    // Probes that separate more alternatives first; stable otherwise.
    out.sort_by_key(|(_, sep)| std::cmp::Reverse(sep.len()));
    let picked: Vec<String> = out
        .iter()
        .take(MAX_PROBES)
        .map(|(probe, sep)| {
            let names: Vec<String> = sep
                .iter()
                .filter_map(|&i| alts.get(i))
                .map(|fs| {
                    fs.iter()
                        .map(|f| describe_fault(t, f))
                        .collect::<Vec<_>>()
                        .join(" + ")
                })
                .collect();
            format!("{probe} (would tell it from {})", names.join(", "))
        })
        .collect();
    Some(format!("add {}", picked.join("; or ")))
}
