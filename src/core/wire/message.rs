//! Validated, typed messages. Names on the wire are resolved to topology ids on decode, so a
//! `Message` can only exist for a node and network the topology knows.

use crate::core::diagnosis::{IncidentId, IncidentSummary};
use crate::core::topology::{NetworkId, NodeId};
use crate::core::view::View;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Protocol name and version, the first token of every message.
pub const PROTOCOL: &str = "HADIAG/1";

/// Largest message accepted or produced, in bytes: one unfragmented datagram on any link.
pub const MAX_MESSAGE_BYTES: usize = 1200;

/// The path a message was sent on.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Path {
    Network(NetworkId),
    /// The serial line between sender and receiver.
    Serial,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub sender: NodeId,
    /// Changes on every start of the sender; sequences restart with it.
    pub incarnation: u64,
    /// Strictly increasing per (sender, incarnation) across all paths.
    pub sequence: u64,
    pub path: Path,
}

/// The last heartbeat a sender heard from a peer on this path, so the peer can compute RTT.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Echo {
    pub peer: NodeId,
    pub sequence: u64,
    /// Time between receiving that heartbeat and sending this one (millisecond resolution).
    pub held: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    Heartbeat {
        view: View,
        echo: Vec<Echo>,
    },
    /// "I decided this over this evidence; do you agree?"
    Proposal {
        incident: IncidentSummary,
        view: View,
    },
    /// Sent only when the receiver's own classification yields an identical verdict.
    Ack {
        incident: IncidentSummary,
    },
    /// The subject confirms it has isolated itself.
    Isolated {
        incident: IncidentId,
    },
    /// Planned maintenance starts: record silence as maintenance, not failure.
    Quiesce,
    /// Planned maintenance ends.
    Resume,
}

impl Body {
    /// Stable `type=` token.
    pub fn token(&self) -> &'static str {
        match self {
            Body::Heartbeat { .. } => "heartbeat",
            Body::Proposal { .. } => "proposal",
            Body::Ack { .. } => "ack",
            Body::Isolated { .. } => "isolated",
            Body::Quiesce => "quiesce",
            Body::Resume => "resume",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub header: Header,
    pub body: Body,
    /// Unknown `key=value` fields, kept in order and otherwise ignored (rolling upgrades).
    pub extensions: Vec<(String, String)>,
}
