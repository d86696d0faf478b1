//! The worst-case heartbeat of every node, sized with the real encoder: every list full, every
//! number at its widest. Used by the configuration check so that a cluster whose mandatory
//! heartbeat part cannot fit one datagram is refused up front (with the numbers), and one that
//! would need shedding is warned about.
//!
//! Must not: guess sizes by formula — the encoder is the only authority on the wire format.

use crate::core::diagnosis::{Component, IncidentId, IncidentSummary, VerdictKind};
use crate::core::topology::{NodeId, Topology};
use crate::core::view::{DiskHealth, NetView, Reach, View};
use crate::core::wire::{
    fitted_len, Body, Echo, EncodeError, Header, Keyring, Message, Path, Shed, MIN_KEY_BYTES,
};
use std::time::Duration;

/// Subjects counted for the worst-case incident: the classifier's exhaustive search names at
/// most this many faults; larger (greedy) explanations are shed from heartbeats first anyway.
const WORST_SUBJECTS: usize = 6;

/// One node's worst-case heartbeat, in bytes, on its widest path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatSize {
    pub node: String,
    /// Header, link/reference state, every peer heard, serial, disk, state, stamp.
    pub mandatory: usize,
    /// Everything: plus echo, degraded lists, every monitor failing, an open incident.
    pub full: usize,
}

/// Worst-case heartbeat sizes for every node of `t`, signed under a key id of `key_id`'s
/// length, with `monitors` all failing. `Err` only for names the wire cannot carry (reported
/// elsewhere by the configuration check).
pub fn worst_heartbeats(
    t: &Topology,
    key_id: &str,
    monitors: &[String],
) -> Result<Vec<HeartbeatSize>, EncodeError> {
    let Ok(keys) = Keyring::new(key_id, &[0u8; MIN_KEY_BYTES]) else {
        return Ok(Vec::new());
    };
    let longest_node = t
        .node_ids()
        .max_by_key(|&n| t.node(n).name.len())
        .unwrap_or(NodeId(0));
    let mut subjects: Vec<Component> = t
        .node_ids()
        .flat_map(|n| {
            t.node(n)
                .interfaces
                .iter()
                .map(move |i| Component::Attachment(n, i.network))
        })
        .collect();
    subjects.sort_by_key(|c| match *c {
        Component::Attachment(n, net) => {
            std::cmp::Reverse(t.node(n).name.len() + t.network(net).name.len())
        }
        _ => std::cmp::Reverse(0),
    });
    subjects.truncate(WORST_SUBJECTS);
    subjects.sort();
    let incident = IncidentSummary {
        id: IncidentId {
            opener: longest_node,
            number: u32::MAX,
        },
        kind: VerdictKind::AttachmentFailed,
        subjects,
    };
    let mut out = Vec::new();
    for me in t.node_ids() {
        let spec = t.node(me);
        let mut view = View {
            disk: DiskHealth::Unknown,
            failing_monitors: monitors.iter().cloned().collect(),
            quiesced: true,
            isolated: true,
            incident: Some(incident.clone()),
            ..View::default()
        };
        for i in &spec.interfaces {
            let peers: std::collections::BTreeSet<NodeId> =
                t.members(i.network).filter(|&n| n != me).collect();
            view.nets.insert(
                i.network,
                NetView {
                    carrier: Reach::Unknown,
                    reference: Reach::Unknown,
                    heard: peers.clone(),
                    degraded: peers,
                },
            );
        }
        for s in &spec.serial {
            view.serial.insert(s.peer, false);
        }
        let mut paths: Vec<Path> = spec
            .interfaces
            .iter()
            .map(|i| Path::Network(i.network))
            .collect();
        if !spec.serial.is_empty() {
            paths.push(Path::Serial);
        }
        let (mut mandatory, mut full) = (0, 0);
        for path in paths {
            let echo_peers: Vec<NodeId> = match path {
                Path::Network(net) => t.members(net).filter(|&n| n != me).collect(),
                Path::Serial => spec.serial.iter().map(|s| s.peer).collect(),
            };
            let msg = Message {
                header: Header {
                    sender: me,
                    incarnation: u64::MAX,
                    sequence: u64::MAX,
                    path,
                },
                body: Body::Heartbeat {
                    view: view.clone(),
                    echo: echo_peers
                        .into_iter()
                        .map(|peer| Echo {
                            peer,
                            sequence: u64::MAX,
                            held: Duration::from_secs(3600),
                        })
                        .collect(),
                },
                extensions: Vec::new(),
            };
            let all = Shed::STEPS[Shed::STEPS.len() - 1];
            mandatory = mandatory.max(fitted_len(&msg, t, &keys, all)?);
            full = full.max(fitted_len(&msg, t, &keys, Shed::default())?);
        }
        out.push(HeartbeatSize {
            node: spec.name.clone(),
            mandatory,
            full,
        });
    }
    Ok(out)
}
