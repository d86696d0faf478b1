//! UDP heartbeats: one socket per NIC, bound to the device (`SO_BINDTODEVICE`) and to the
//! node's address and the network's port, sending to every peer's address on that network.
//!
//! Binding to the device matters: without it the kernel could route a heartbeat for network A
//! out of the NIC on B, and a dead NIC on A would go unnoticed.

use super::{enqueue, Inbound, Source, TransportStats, RECV_BUFFER_BYTES};
use crate::core::topology::{NetworkId, NodeId};
use crate::core::wire::Path;
use crate::daemon::clock::Clock;
use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::net::UdpSocket;

/// The sending half of a network's UDP socket (the receive loop runs in its own task).
#[derive(Debug)]
pub struct UdpLink {
    pub network: NetworkId,
    pub device: String,
    /// Sending half: a std socket (a dup of the receiving one), non-blocking. Sends go straight
    /// to the kernel; tokio's `try_send_to` would report WouldBlock until the reactor has seen
    /// the socket writable once, silently dropping the first heartbeats.
    tx: std::net::UdpSocket,
    /// Every peer's heartbeat address on this network.
    peers: BTreeMap<NodeId, SocketAddr>,
}

/// Opens the socket for one NIC: the tokio receiving half and a std sending half.
pub fn bind(
    device: &str,
    address: IpAddr,
    port: u16,
) -> io::Result<(UdpSocket, std::net::UdpSocket)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if address.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.bind_device(Some(device.as_bytes()))
        .map_err(|e| io::Error::new(e.kind(), format!("SO_BINDTODEVICE {device}: {e}")))?;
    s.set_nonblocking(true)?;
    let addr = SocketAddr::new(address, port);
    s.bind(&addr.into())
        .map_err(|e| io::Error::new(e.kind(), format!("bind {addr} on {device}: {e}")))?;
    let tx: std::net::UdpSocket = s.try_clone()?.into();
    Ok((UdpSocket::from_std(s.into())?, tx))
}

impl UdpLink {
    /// Opens the socket and starts its receive task.
    #[allow(clippy::too_many_arguments)] // one call site; each argument is a distinct resource
    pub fn start(
        network: NetworkId,
        device: &str,
        address: IpAddr,
        port: u16,
        peers: BTreeMap<NodeId, SocketAddr>,
        clock: Clock,
        inbound: super::InboundTx,
        stats: Arc<TransportStats>,
    ) -> io::Result<(UdpLink, tokio::task::JoinHandle<()>)> {
        let (rx, tx) = bind(device, address, port)?;
        // Peers' addresses on this network: anything else is dropped before it is queued.
        let allowed: std::collections::BTreeSet<IpAddr> = peers.values().map(|a| a.ip()).collect();
        let handle = tokio::spawn(async move {
            let mut buf = vec![0u8; RECV_BUFFER_BYTES];
            loop {
                match rx.recv_from(&mut buf).await {
                    Ok((_, from)) if !allowed.contains(&from.ip()) => {
                        TransportStats::bump(&stats.foreign_dropped);
                    }
                    Ok((n, from)) => {
                        let frame = Inbound {
                            path: Path::Network(network),
                            at: clock.now(),
                            source: Source::Udp(from),
                            bytes: buf.get(..n).unwrap_or(&[]).to_vec(),
                        };
                        if !enqueue(&inbound, &stats, frame) {
                            return;
                        }
                    }
                    // ICMP port unreachable from a peer that is down surfaces here as
                    // ECONNREFUSED: harmless, keep receiving.
                    Err(e) => tracing::trace!(network = network.0, error = %e, "udp receive error"),
                }
            }
        });
        Ok((
            UdpLink {
                network,
                device: device.to_string(),
                tx,
                peers,
            },
            handle,
        ))
    }

    /// Sends to one peer or to every peer on this network; never blocks.
    pub fn send(&self, bytes: &[u8], to: Option<NodeId>, stats: &TransportStats) {
        let targets: Vec<SocketAddr> = match to {
            Some(n) => self.peers.get(&n).copied().into_iter().collect(),
            None => self.peers.values().copied().collect(),
        };
        for addr in targets {
            match self.tx.send_to(bytes, addr) {
                Ok(_) => TransportStats::bump(&stats.sent),
                Err(e) => {
                    TransportStats::bump(&stats.send_failed);
                    tracing::trace!(network = self.network.0, %addr, error = %e, "udp send failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::inbound::channel;
    use std::sync::atomic::Ordering;

    /// A UDP port free on loopback right now (a link needs a fixed port: peers address it).
    fn free_port() -> u16 {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[tokio::test]
    async fn loopback_round_trip() {
        let stats = Arc::new(TransportStats::default());
        let (tx, mut rx) = channel();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let port = free_port();
        let (a, _ha) = UdpLink::start(
            NetworkId(0),
            "lo",
            lo,
            port,
            BTreeMap::from([(NodeId(1), SocketAddr::new(lo, port))]),
            Clock::new(),
            tx,
            stats.clone(),
        )
        .unwrap();
        a.send(b"HADIAG/1 hello", None, &stats);
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
            .await
            .expect("datagram");
        assert_eq!(got.bytes, b"HADIAG/1 hello");
        assert_eq!(got.path, Path::Network(NetworkId(0)));
    }

    /// A datagram from an address that is no peer on the network is dropped before it is
    /// queued, and counted; a flood of them cannot take a peer's place in the queue.
    #[tokio::test]
    async fn datagrams_from_strangers_are_dropped_before_queueing() {
        let stats = Arc::new(TransportStats::default());
        let (tx, mut rx) = channel();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let port = free_port();
        // The only peer is 127.0.0.2; datagrams from 127.0.0.1 are strangers.
        let peer: IpAddr = "127.0.0.2".parse().unwrap();
        let (_a, _ha) = UdpLink::start(
            NetworkId(0),
            "lo",
            lo,
            port,
            BTreeMap::from([(NodeId(1), SocketAddr::new(peer, port))]),
            Clock::new(),
            tx,
            stats.clone(),
        )
        .unwrap();
        let stranger = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..100 {
            stranger.send_to(b"junk", (lo, port)).unwrap();
        }
        let from_peer = std::net::UdpSocket::bind((peer, 0)).unwrap();
        from_peer.send_to(b"HADIAG/1 hello", (lo, port)).unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
            .await
            .expect("the peer's datagram");
        assert_eq!(
            got.bytes, b"HADIAG/1 hello",
            "a stranger's datagram was queued"
        );
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while stats.foreign_dropped.load(Ordering::Relaxed) < 100 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "strangers not counted"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(stats.inbound_dropped.load(Ordering::Relaxed), 0);
    }
}
