//! Probe outcomes as data.
//!
//! A probe only measures; the core judges. A failed ping is an [`Observation`] with an
//! unsuccessful outcome, never an `Err`. Heartbeats and serial messages do not appear here:
//! they reach the core as decoded [`crate::core::wire::Message`]s.

use crate::core::time::Instant;
use crate::core::topology::{NetworkId, NodeId};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// When the probe finished (driver time).
    pub at: Instant,
    pub probe: Probe,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Probe {
    /// Carrier/operstate of this node's NIC on `network`.
    Carrier { network: NetworkId, up: bool },
    /// One ICMP echo to a reference target, sent bound to the NIC on `network`.
    Reference {
        network: NetworkId,
        target: IpAddr,
        outcome: EchoOutcome,
    },
    /// One direct read of the node's disk probe target.
    Disk { outcome: DiskOutcome },
    /// State of the local serial device towards `peer` (hang-up detection).
    SerialPort { peer: NodeId, open: bool },
    /// One run of a mon-compatible monitor.
    Monitor {
        name: String,
        outcome: MonitorOutcome,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum EchoOutcome {
    Reply {
        rtt: Duration,
    },
    Timeout,
    /// Could not even send (no route, device gone); the text is the OS error.
    Error(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DiskOutcome {
    Ok {
        latency: Duration,
    },
    /// The read returned an error (e.g. EIO).
    Failed {
        error: String,
    },
    /// A read has been outstanding for `for_time` without returning.
    Hung {
        for_time: Duration,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MonitorOutcome {
    pub ok: bool,
    /// First stdout line.
    pub summary: String,
    pub duration: Duration,
    pub timed_out: bool,
}
