//! Heartbeat transports: bytes in, bytes out — per-NIC UDP ([`udp`]), raw Ethernet for networks
//! without IP ([`ethernet`]), and serial lines ([`serial`]).
//!
//! Received frames go to the driver through the [`inbound`] queue — one bounded lane per path,
//! drained in turn — as [`Inbound`]s; the driver decodes, authenticates and replay-filters them. Sending is non-blocking everywhere: a full
//! socket buffer, a stalled serial line or a full writer queue drops the frame and counts it
//! (heartbeats are periodic, a late one is worth less than a fresh one) — the core never waits
//! on a transport.
//!
//! Must not: parse or judge messages (the wire codec and the core do), or block the driver.

use crate::core::time::Instant;
use crate::core::wire::Path;
use std::sync::atomic::{AtomicU64, Ordering};

pub mod ethernet;
pub mod inbound;
pub mod serial;
pub mod udp;

pub use inbound::{InboundTx, PATH_QUEUE};

/// Frames the inbound queue holds over all its lanes. The design load is 16 peers × 4
/// networks × 10 Hz = 640 frames/s plus serial; decoding one costs a few µs. 4096 frames ≈ 6 s
/// of that load, far more than any driver hiccup. Each path gets an equal share
/// ([`PATH_QUEUE`]); beyond it frames of that path are dropped and counted in
/// [`TransportStats::inbound_dropped`].
pub const INBOUND_QUEUE: usize = 4096;

/// Receive buffer per datagram/frame: larger than `MAX_MESSAGE_BYTES` so oversize input is
/// seen as oversize by the decoder instead of being silently truncated to a valid size.
pub const RECV_BUFFER_BYTES: usize = 2048;

/// Where a received frame came from (for logs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Udp(std::net::SocketAddr),
    Ethernet([u8; 6]),
    Serial(String),
}

/// One received frame, not yet decoded.
#[derive(Clone, Debug)]
pub struct Inbound {
    pub path: Path,
    pub at: Instant,
    pub source: Source,
    pub bytes: Vec<u8>,
}

/// Queues `frame` in its path's lane if there is room; counts it as dropped otherwise.
/// `false` when the driver is gone (receivers then stop).
pub fn enqueue(tx: &InboundTx, stats: &TransportStats, frame: Inbound) -> bool {
    match tx.try_send(frame) {
        Ok(()) => true,
        Err(inbound::Refused::Full(_)) => {
            TransportStats::bump(&stats.inbound_dropped);
            true
        }
        Err(inbound::Refused::Closed(_)) => false,
    }
}

/// Counters shared by all transports (read by the driver for metrics and logs).
#[derive(Debug, Default)]
pub struct TransportStats {
    /// Frames dropped because their path's lane of the inbound queue was full.
    pub inbound_dropped: AtomicU64,
    /// Datagrams from an address that is no configured peer on that network, dropped before
    /// queueing (junk floods, strays): they never cost a decode.
    pub foreign_dropped: AtomicU64,
    /// Frames not sent: socket buffer full, serial writer queue full, or a send error.
    pub send_failed: AtomicU64,
    /// Frames sent.
    pub sent: AtomicU64,
    /// Serial lines longer than the largest message, discarded up to their newline.
    pub serial_oversize: AtomicU64,
}

impl TransportStats {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
