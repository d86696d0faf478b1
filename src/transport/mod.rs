//! Heartbeat transports: bytes in, bytes out — per-NIC UDP ([`udp`]), raw Ethernet for networks
//! without IP ([`ethernet`]), and serial lines ([`serial`]).
//!
//! Received frames go to the driver through one bounded channel of [`Inbound`]s; the driver
//! decodes, authenticates and replay-filters them. Sending is non-blocking everywhere: a full
//! socket buffer, a stalled serial line or a full writer queue drops the frame and counts it
//! (heartbeats are periodic, a late one is worth less than a fresh one) — the core never waits
//! on a transport.
//!
//! Must not: parse or judge messages (the wire codec and the core do), or block the driver.

use crate::core::time::Instant;
use crate::core::wire::Path;
use std::sync::atomic::{AtomicU64, Ordering};

pub mod ethernet;
pub mod serial;
pub mod udp;

/// Capacity of the inbound channel. The design load is 16 peers × 4 networks × 10 Hz = 640
/// frames/s plus serial; decoding one costs a few µs. 4096 frames ≈ 6 s of that load, far more
/// than any driver hiccup, and ≤ 4096 × 1.2 KiB ≈ 5 MiB worst case. When full, frames are
/// dropped and counted in [`TransportStats::inbound_dropped`].
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

/// Most frames one path (a network, or the serial lines) may have waiting in the inbound
/// channel: a flood or a switching loop on one network fills its own share and is dropped
/// there, while every other path keeps room (at most 8 networks + serial share
/// [`INBOUND_QUEUE`]). Each share is still ~0.7 s of the design load of its path.
pub const PATH_QUEUE: usize = INBOUND_QUEUE / (crate::config::MAX_NETWORKS + 1);

/// Per-path occupancy of the shared inbound channel: receivers [`PathQuota::admit`] a frame
/// before queueing it, the driver [`PathQuota::release`]s it when taken out.
#[derive(Debug, Default)]
pub struct PathQuota {
    used: [std::sync::atomic::AtomicUsize; crate::config::MAX_NETWORKS + 1],
}

impl PathQuota {
    fn slot(&self, path: Path) -> Option<&std::sync::atomic::AtomicUsize> {
        match path {
            Path::Network(n) => self.used.get(n.index()),
            Path::Serial => self.used.last(),
        }
    }

    /// Takes a place for a frame of `path`; false when its share is full (drop the frame).
    pub fn admit(&self, path: Path) -> bool {
        let Some(slot) = self.slot(path) else {
            return false;
        };
        slot.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < PATH_QUEUE).then_some(n + 1)
        })
        .is_ok()
    }

    /// Gives back the place of a frame of `path` (taken out, or not queued after all).
    pub fn release(&self, path: Path) {
        if let Some(slot) = self.slot(path) {
            let _ = slot.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
    }
}

/// Queues `frame` if its path has room; counts it as dropped otherwise. `false` when the
/// driver is gone (receivers then stop).
pub fn enqueue(
    tx: &tokio::sync::mpsc::Sender<Inbound>,
    stats: &TransportStats,
    frame: Inbound,
) -> bool {
    let path = frame.path;
    if !stats.quota.admit(path) {
        TransportStats::bump(&stats.inbound_dropped);
        return true;
    }
    match tx.try_send(frame) {
        Ok(()) => true,
        Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
            stats.quota.release(path);
            TransportStats::bump(&stats.inbound_dropped);
            true
        }
        Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
            stats.quota.release(path);
            false
        }
    }
}

/// Counters shared by all transports (read by the driver for metrics and logs).
#[derive(Debug, Default)]
pub struct TransportStats {
    /// Frames dropped because their path's share of the inbound channel was full.
    pub inbound_dropped: AtomicU64,
    /// Datagrams from an address that is no configured peer on that network, dropped before
    /// queueing (junk floods, strays): they never cost a decode.
    pub foreign_dropped: AtomicU64,
    /// Per-path shares of the inbound channel.
    pub quota: PathQuota,
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
