//! Raw Ethernet heartbeats (pnet datalink, EtherType 0x88B5 — IEEE local experimental) for
//! networks configured `transport: ethernet`, i.e. segments without IP.
//!
//! Frame: destination (broadcast), source (own MAC), EtherType 0x88B5, then a 2-byte big-endian
//! payload length and the ASCII message (the length survives the minimum-frame padding).
//! Received frames with another EtherType or with our own source MAC (the packet socket also
//! sees our outgoing frames) are ignored. Needs CAP_NET_RAW (AF_PACKET socket).
//!
//! Source filter ([`SourceFilter`]): a segment without IP has no configured peer addresses, so
//! each peer's MAC is learned from its first authenticated frame (the driver reports it). Until
//! every peer of the network is learned, frames from any MAC are queued; from then on frames
//! from other MACs are dropped before queueing and counted (`foreign_dropped`), except a
//! trickle of [`PROBATION_PER_SECOND`] so that a peer whose NIC was replaced is learned again.
//!
//! The receive side runs on a dedicated thread (pnet's receiver is blocking) with a 100 ms read
//! timeout so it notices shutdown; the send side is a packet-socket write under a mutex, which
//! does not block.

use super::{Inbound, Source, TransportStats};
use crate::core::topology::{NetworkId, NodeId};
use crate::core::wire::{Path, MAX_MESSAGE_BYTES};
use crate::daemon::clock::Clock;
use pnet::datalink::{self, Channel, DataLinkSender, NetworkInterface};
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const ETHERTYPE: u16 = 0x88B5;
/// Frames per second from unlearned MACs still queued once every peer is learned: enough to
/// relearn a replaced NIC within seconds, nothing a flood can use.
pub const PROBATION_PER_SECOND: u32 = 4;
const HEADER: usize = 14 + 2;
const BROADCAST: [u8; 6] = [0xff; 6];

pub struct EthernetLink {
    pub network: NetworkId,
    pub device: String,
    mac: [u8; 6],
    tx: Mutex<Box<dyn DataLinkSender>>,
    stop: Arc<AtomicBool>,
    sources: Arc<Mutex<SourceFilter>>,
}

/// Which source MACs may queue frames on one network (see the module docs).
#[derive(Debug)]
pub struct SourceFilter {
    /// Peers on this network: once that many MACs are learned, the filter closes.
    peers: usize,
    /// Each peer's MAC, from its last authenticated frame (at most `peers` entries).
    learned: BTreeMap<NodeId, [u8; 6]>,
    /// Start of the current probation second and frames admitted in it.
    window: Option<(std::time::Instant, u32)>,
}

impl SourceFilter {
    pub fn new(peers: usize) -> SourceFilter {
        SourceFilter {
            peers,
            learned: BTreeMap::new(),
            window: None,
        }
    }

    /// Whether a frame from `src` may be queued.
    pub fn admit(&mut self, src: [u8; 6], now: std::time::Instant) -> bool {
        if self.learned.len() < self.peers || self.learned.values().any(|m| *m == src) {
            return true;
        }
        match &mut self.window {
            Some((start, n)) if now.duration_since(*start) < Duration::from_secs(1) => {
                *n += 1;
                *n <= PROBATION_PER_SECOND
            }
            w => {
                *w = Some((now, 1));
                true
            }
        }
    }

    /// `peer` authenticated a frame sent from `mac`.
    pub fn learn(&mut self, peer: NodeId, mac: [u8; 6]) {
        if self.learned.get(&peer) != Some(&mac) {
            self.learned.retain(|_, m| *m != mac);
            self.learned.insert(peer, mac);
        }
    }
}

impl std::fmt::Debug for EthernetLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EthernetLink")
            .field("network", &self.network)
            .field("device", &self.device)
            .finish()
    }
}

/// Builds a frame; `None` when the message does not fit.
pub fn frame(src: [u8; 6], dst: [u8; 6], msg: &[u8]) -> Option<Vec<u8>> {
    if msg.len() > MAX_MESSAGE_BYTES {
        return None;
    }
    let len = u16::try_from(msg.len()).ok()?;
    let mut f = Vec::with_capacity(HEADER + msg.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETHERTYPE.to_be_bytes());
    f.extend_from_slice(&len.to_be_bytes());
    f.extend_from_slice(msg);
    Some(f)
}

/// Extracts `(source MAC, message)` from a frame of ours, ignoring anything else.
pub fn unframe(own: [u8; 6], f: &[u8]) -> Option<([u8; 6], &[u8])> {
    let src: [u8; 6] = f.get(6..12)?.try_into().ok()?;
    let ty = u16::from_be_bytes(f.get(12..14)?.try_into().ok()?);
    if ty != ETHERTYPE || src == own {
        return None;
    }
    let len = u16::from_be_bytes(f.get(14..16)?.try_into().ok()?) as usize;
    // A length beyond the frame is passed on truncated-to-frame only if it fits; otherwise the
    // whole rest is handed over and the decoder rejects it (oversize / malformed).
    let body = f.get(HEADER..HEADER + len).or_else(|| f.get(HEADER..))?;
    Some((src, body))
}

impl EthernetLink {
    pub fn start(
        network: NetworkId,
        device: &str,
        peers: usize,
        clock: Clock,
        inbound: super::InboundTx,
        stats: Arc<TransportStats>,
    ) -> io::Result<EthernetLink> {
        let iface: NetworkInterface = datalink::interfaces()
            .into_iter()
            .find(|i| i.name == device)
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("no interface {device}"))
            })?;
        let mac = iface.mac.map(|m| m.octets()).unwrap_or([0; 6]);
        let cfg = datalink::Config {
            read_timeout: Some(Duration::from_millis(100)),
            promiscuous: false,
            ..Default::default()
        };
        let (tx, mut rx) = match datalink::channel(&iface, cfg)
            .map_err(|e| io::Error::new(e.kind(), format!("raw socket on {device}: {e}")))?
        {
            Channel::Ethernet(tx, rx) => (tx, rx),
            _ => return Err(io::Error::other("unsupported datalink channel")),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let stop_rx = stop.clone();
        let sources = Arc::new(Mutex::new(SourceFilter::new(peers)));
        let filter = sources.clone();
        std::thread::Builder::new()
            .name(format!("hadiag-eth-{device}"))
            .spawn(move || {
                while !stop_rx.load(Ordering::Relaxed) {
                    match rx.next() {
                        Ok(f) => {
                            let Some((src, body)) = unframe(mac, f) else {
                                continue;
                            };
                            let admitted = filter
                                .lock()
                                .map(|mut s| s.admit(src, std::time::Instant::now()))
                                .unwrap_or(true);
                            if !admitted {
                                TransportStats::bump(&stats.foreign_dropped);
                                continue;
                            }
                            let frame = Inbound {
                                path: Path::Network(network),
                                at: clock.now(),
                                source: Source::Ethernet(src),
                                bytes: body.to_vec(),
                            };
                            if !super::enqueue(&inbound, &stats, frame) {
                                return;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                        Err(e) => {
                            tracing::warn!(network = network.0, error = %e, "raw receive failed");
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
            })?;
        Ok(EthernetLink {
            network,
            device: device.to_string(),
            mac,
            tx: Mutex::new(tx),
            stop,
            sources,
        })
    }

    /// `peer` authenticated a frame that came from `mac` on this network.
    pub fn learn(&self, peer: NodeId, mac: [u8; 6]) {
        if let Ok(mut s) = self.sources.lock() {
            s.learn(peer, mac);
        }
    }

    /// Broadcasts one message on the segment (peers filter by authenticated sender).
    pub fn send(&self, msg: &[u8], stats: &TransportStats) {
        let Some(f) = frame(self.mac, BROADCAST, msg) else {
            TransportStats::bump(&stats.send_failed);
            return;
        };
        let Ok(mut tx) = self.tx.lock() else {
            TransportStats::bump(&stats.send_failed);
            return;
        };
        match tx.send_to(&f, None) {
            Some(Ok(())) => TransportStats::bump(&stats.sent),
            _ => TransportStats::bump(&stats.send_failed),
        }
    }
}

impl Drop for EthernetLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip_and_filters() {
        let me = [2, 0, 0, 0, 0, 1];
        let peer = [2, 0, 0, 0, 0, 2];
        let f = frame(peer, BROADCAST, b"HADIAG/1 x").unwrap();
        assert_eq!(unframe(me, &f), Some((peer, &b"HADIAG/1 x"[..])));
        // own frames and foreign EtherTypes are ignored
        assert_eq!(unframe(peer, &f), None);
        let mut other = f.clone();
        other[12] = 0x08;
        other[13] = 0x00;
        assert_eq!(unframe(me, &other), None);
        // padded frames keep their length
        let mut padded = frame(peer, BROADCAST, b"hi").unwrap();
        padded.resize(60, 0);
        assert_eq!(unframe(me, &padded).unwrap().1, b"hi");
        assert!(frame(me, BROADCAST, &vec![b'x'; MAX_MESSAGE_BYTES + 1]).is_none());
        for n in 0..20 {
            let _ = unframe(me, &f[..n.min(f.len())]);
        }
    }

    #[test]
    fn unknown_sources_are_dropped_once_every_peer_is_learned() {
        let (p1, p2, junk) = ([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 3], [6, 6, 6, 6, 6, 6]);
        let t0 = std::time::Instant::now();
        let mut f = SourceFilter::new(2);
        // Learning: anything may be a peer not heard yet.
        assert!(f.admit(junk, t0));
        f.learn(NodeId(1), p1);
        assert!(f.admit(junk, t0));
        f.learn(NodeId(2), p2);
        // Closed: peers pass, others only as a trickle per second.
        assert!(f.admit(p1, t0) && f.admit(p2, t0));
        let passed = (0..1000).filter(|_| f.admit(junk, t0)).count();
        assert_eq!(passed, PROBATION_PER_SECOND as usize);
        assert!(f.admit(junk, t0 + Duration::from_millis(1001)));
        // A replaced NIC: the peer's new MAC replaces the old one.
        let new = [2, 0, 0, 0, 0, 9];
        f.learn(NodeId(1), new);
        assert!(f.admit(new, t0));
        let old_passes = (0..10).filter(|_| f.admit(p1, t0)).count();
        assert!(old_passes <= PROBATION_PER_SECOND as usize);
        assert_eq!(f.learned.len(), 2);
    }
}
