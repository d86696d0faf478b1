//! Agreement and isolation rules (docs/isolation-rules.md) as pure functions over small inputs.
//!
//! What it is for: [`crate::core::node::Node`] keeps the state (incidents, timers, hooks) and
//! asks this module the questions the rules answer: which verdicts need action, which nodes
//! a verdict isolates, which of two simultaneous incidents wins, which side of a partition
//! survives (rule 4), and which survivor runs the `takeover` hook. Keeping the rules here,
//! free of state and time, makes them unit-testable one by one.
//! What it must not do: keep state, read a clock, or decide anything from data it was not
//! given (every input is an argument).

use crate::core::diagnosis::{Component, IncidentId, IncidentSummary, VerdictKind};
use crate::core::topology::{NodeId, Topology};
use std::collections::BTreeSet;

/// Verdicts that ask for isolation or takeover (and therefore for agreement first).
pub fn needs_action(kind: VerdictKind) -> bool {
    matches!(kind, VerdictKind::NodeFailed | VerdictKind::CutOff)
}

/// Verdicts that open an incident. Degradation alerts but is no incident (rule 5).
pub fn opens_incident(kind: VerdictKind) -> bool {
    !matches!(kind, VerdictKind::Healthy | VerdictKind::Degraded)
}

/// Nodes a verdict tells to isolate themselves: the subject of a `CutOff` (given as
/// `Node(n)` or as the attachments of `n`). Nothing else isolates by verdict: failed nodes
/// are silent (the silence rules handle them) and other faults leave a path (S2).
pub fn isolation_subjects(kind: VerdictKind, subjects: &[Component]) -> BTreeSet<NodeId> {
    if kind != VerdictKind::CutOff {
        return BTreeSet::new();
    }
    subjects
        .iter()
        .filter_map(|c| match *c {
            Component::Node(n) | Component::Attachment(n, _) => Some(n),
            _ => None,
        })
        .collect()
}

/// Whether an incident summary names `node` as failed or cut off (so a peer may hold, or
/// be about to take over, its services).
pub fn names_as_failed(incident: &IncidentSummary, node: NodeId) -> bool {
    needs_action(incident.kind)
        && incident
            .subjects
            .iter()
            .any(|c| matches!(*c, Component::Node(n) | Component::Attachment(n, _) if n == node))
}

/// Two incidents with the same verdict opened concurrently: the one with the lower opener id
/// wins (then the lower number), so every node converges on the same id without a round trip.
pub fn wins_over(a: IncidentId, b: IncidentId) -> bool {
    (a.opener, a.number) < (b.opener, b.number)
}

/// One side of a (suspected) partition, as one node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Side {
    /// Members of our side (including us): nodes we hear on some path, not isolated, not
    /// in maintenance.
    pub members: BTreeSet<NodeId>,
    /// Whether some member reaches a reference on some network.
    pub reaches_reference: bool,
    /// Nodes that count for the majority: every node neither known to be isolated nor in
    /// announced maintenance (members included).
    pub eligible: BTreeSet<NodeId>,
}

/// Rule 4 (three or more nodes): does `side` survive a partition from the other eligible
/// nodes? The side that reaches references survives (we cannot see whether the silent side
/// does, so we assume it might: a side that reaches none always loses); then the larger side;
/// on equal size the side holding the highest-priority eligible node.
pub fn side_survives(topology: &Topology, side: &Side) -> bool {
    if !side.reaches_reference {
        return false;
    }
    let ours = side.members.intersection(&side.eligible).count();
    let total = side.eligible.len();
    match (2 * ours).cmp(&total) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => highest_priority(topology, side.eligible.iter().copied())
            .is_some_and(|top| side.members.contains(&top)),
    }
}

/// The node with the highest priority (ties: lowest id).
pub fn highest_priority(
    topology: &Topology,
    nodes: impl IntoIterator<Item = NodeId>,
) -> Option<NodeId> {
    nodes.into_iter().max_by_key(|&n| {
        (
            topology.nodes.get(n.index()).map_or(0, |s| s.priority),
            std::cmp::Reverse(n),
        )
    })
}

/// Which member of our side runs the `takeover` (and `fence`) hook for a lost peer: the
/// highest-priority active member, so exactly one survivor acts when all agree on the side.
pub fn designated_survivor(
    topology: &Topology,
    active_members: &BTreeSet<NodeId>,
) -> Option<NodeId> {
    highest_priority(topology, active_members.iter().copied())
}

/// Rank of `me` among all nodes by priority (0 = highest). Lower-ranked nodes wait longer
/// before fencing, so two nodes of a symmetric partition never shoot each other at once.
pub fn priority_rank(topology: &Topology, me: NodeId) -> usize {
    let mine = topology.nodes.get(me.index()).map_or(0, |s| s.priority);
    topology
        .node_ids()
        .filter(|&n| n != me)
        .filter(|&n| {
            let p = topology.node(n).priority;
            p > mine || (p == mine && n < me)
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::topology::{NetworkId, NodeSpec, Thresholds, Timing};

    fn topo(n: usize) -> Topology {
        Topology {
            cluster: "t".into(),
            nodes: (0..n)
                .map(|i| NodeSpec {
                    name: format!("n{}", i + 1),
                    priority: (n - i) as u32,
                    interfaces: vec![],
                    serial: vec![],
                    disk: None,
                })
                .collect(),
            networks: vec![],
            timing: Timing::default(),
            thresholds: Thresholds::default(),
        }
    }

    fn set(ids: &[u16]) -> BTreeSet<NodeId> {
        ids.iter().map(|&i| NodeId(i)).collect()
    }

    #[test]
    fn majority_then_priority_then_references() {
        let t = topo(4);
        let all = set(&[0, 1, 2, 3]);
        let side = |m: &[u16], r: bool| Side {
            members: set(m),
            reaches_reference: r,
            eligible: all.clone(),
        };
        assert!(side_survives(&t, &side(&[0, 1, 2], true)));
        assert!(!side_survives(&t, &side(&[3], true)));
        // Even split: the side with n1 (highest priority) wins.
        assert!(side_survives(&t, &side(&[0, 3], true)));
        assert!(!side_survives(&t, &side(&[1, 2], true)));
        // A side that reaches no reference loses even as the majority.
        assert!(!side_survives(&t, &side(&[0, 1, 2], false)));
    }

    #[test]
    fn cut_off_subjects_and_ids() {
        let subjects = vec![
            Component::Attachment(NodeId(1), NetworkId(0)),
            Component::Attachment(NodeId(1), NetworkId(1)),
        ];
        assert_eq!(
            isolation_subjects(VerdictKind::CutOff, &subjects),
            set(&[1])
        );
        assert!(isolation_subjects(VerdictKind::AttachmentFailed, &subjects).is_empty());
        let a = IncidentId {
            opener: NodeId(0),
            number: 9,
        };
        let b = IncidentId {
            opener: NodeId(1),
            number: 1,
        };
        assert!(wins_over(a, b) && !wins_over(b, a));
        let t = topo(3);
        assert_eq!(priority_rank(&t, NodeId(0)), 0);
        assert_eq!(priority_rank(&t, NodeId(2)), 2);
        assert_eq!(designated_survivor(&t, &set(&[1, 2])), Some(NodeId(1)));
    }
}
