//! A flooded path does not starve the others: real UDP sockets on loopback for networks A, B
//! and C feed the inbound queue; a peer floods A with copies of one of its heartbeats (a
//! switching loop) until A's lane is full and dropping, while heartbeats arrive on B and C.
//! Drained into the core as the driver does, B's and C's heartbeats are taken in turn with
//! A's backlog — within the first round of lanes, not after it — and all are accepted. No
//! timings: the test waits for events (drops counted, frames queued) and checks the order.

#[path = "fuzz_checks/mod.rs"]
mod fuzz_checks;

use hadiag::core::node::{Node, NodeOptions};
use hadiag::core::time::Instant;
use hadiag::core::topology::{NetworkId, NodeId, Topology};
use hadiag::core::wire::{encode, Keyring, Path};
use hadiag::daemon::clock::Clock;
use hadiag::transport::inbound::{channel, InboundRx};
use hadiag::transport::udp::UdpLink;
use hadiag::transport::TransportStats;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const N1: NodeId = NodeId(0);
const N2: NodeId = NodeId(1);
const BEATS: usize = 20;

fn heartbeat(t: &Topology, k: &Keyring, path: Path, sequence: u64) -> Vec<u8> {
    encode(&fuzz_checks::heartbeat(N2, 1, sequence, path), t, k).expect("fits")
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (generously) for `done`, failing with what was seen.
async fn wait_for(what: &str, mut done: impl FnMut() -> Result<(), String>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match done() {
            Ok(()) => return,
            Err(seen) if tokio::time::Instant::now() >= deadline => {
                panic!("gave up waiting for {what}; saw {seen}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Stops the flooding thread, also when the test fails.
struct Flood(Arc<AtomicBool>, Option<std::thread::JoinHandle<u64>>);

impl Drop for Flood {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        if let Some(h) = self.1.take() {
            let _ = h.join();
        }
    }
}

#[tokio::test]
async fn a_flooded_network_does_not_starve_the_others() {
    let t = Arc::new(Topology::mesh("lab", &["n1", "n2"], &["A", "B", "C"]));
    let k = Keyring::new("k1", b"flood-test-key-0123456789").unwrap();
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    // n2's address on each network: the only source each link queues from.
    let peer_ip = |n: u8| -> IpAddr { format!("127.0.0.{}", 2 + n).parse().unwrap() };
    let stats = Arc::new(TransportStats::default());
    let (tx, mut rx) = channel();
    let clock = Clock::new();
    let mut ports = Vec::new();
    let mut links = Vec::new();
    for n in 0..3u8 {
        let port = free_port();
        let (link, task) = UdpLink::start(
            NetworkId(n.into()),
            "lo",
            lo,
            port,
            BTreeMap::from([(N2, SocketAddr::new(peer_ip(n), port))]),
            clock,
            tx.clone(),
            stats.clone(),
        )
        .expect("loopback socket");
        ports.push(port);
        links.push((link, task));
    }
    let (a, b, c) = (
        Path::Network(NetworkId(0)),
        Path::Network(NetworkId(1)),
        Path::Network(NetworkId(2)),
    );

    // A switching loop on A: one heartbeat of n2 over and over, as fast as the socket takes it.
    let stop = Arc::new(AtomicBool::new(false));
    let looped = heartbeat(&t, &k, a, 1);
    let flood = {
        let stop = stop.clone();
        let to = SocketAddr::new(lo, ports[0]);
        let from = UdpSocket::bind((peer_ip(0), 0)).unwrap();
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if from.send_to(&looped, to).is_ok() {
                    sent += 1;
                }
            }
            sent
        })
    };
    let flood = Flood(stop, Some(flood));
    wait_for("A's lane to overflow", || {
        match stats.inbound_dropped.load(Ordering::Relaxed) {
            0 => Err(format!(
                "{} frames waiting on A, none dropped",
                rx.waiting(a)
            )),
            _ => Ok(()),
        }
    })
    .await;

    // Heartbeats on B and C while A keeps flooding.
    for (n, path) in [(1u8, b), (2, c)] {
        let from = UdpSocket::bind((peer_ip(n), 0)).unwrap();
        for s in 0..BEATS as u64 {
            // Sequences are per sender across paths: B and C use disjoint ranges.
            let bytes = heartbeat(&t, &k, path, 2 + s + 100 * u64::from(n));
            from.send_to(&bytes, (lo, ports[usize::from(n)])).unwrap();
        }
    }
    wait_for("B's and C's heartbeats to be queued", || {
        let (qb, qc) = (rx.waiting(b), rx.waiting(c));
        if qb == BEATS && qc == BEATS {
            Ok(())
        } else {
            Err(format!("{qb} on B and {qc} on C of {BEATS} each"))
        }
    })
    .await;
    let backlog = rx.waiting(a);
    assert!(backlog > 3 * BEATS, "A's backlog is only {backlog} frames");

    // Drain as the driver does, into the core.
    let mut node = Node::new(t.clone(), N1, 1, NodeOptions::default(), clock.now());
    let takes = drain(&mut rx, &mut node, &k, clock.now(), 3 * BEATS);
    drop(flood);
    let accepted = |p: Path| takes.iter().filter(|(q, ok)| *q == p && *ok).count();
    assert_eq!(
        (accepted(b), accepted(c)),
        (BEATS, BEATS),
        "B's and C's heartbeats within the first {} frames taken: {takes:?}",
        3 * BEATS
    );
    // A got its turns too (its first copy accepted, the rest refused as replays).
    assert!(takes.iter().filter(|(p, _)| *p == a).count() >= BEATS);
    assert!(accepted(a) <= 1);
}

/// Takes `n` frames in queue order and hands each to the core; (path, accepted) per frame.
fn drain(
    rx: &mut InboundRx,
    node: &mut Node,
    k: &Keyring,
    now: Instant,
    n: usize,
) -> Vec<(Path, bool)> {
    (0..n)
        .map_while(|_| rx.try_recv())
        .map(|f| {
            let ok = node
                .handle_datagram(now, f.path, &f.bytes, k)
                .map(|a| a.sender == N2)
                .unwrap_or(false);
            (f.path, ok)
        })
        .collect()
}
