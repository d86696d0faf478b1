//! Raw Ethernet source filter on a real veth pair in network namespaces (root): once the peer's
//! MAC is learned, frames from other MACs are dropped before queueing and counted, apart from
//! the relearning trickle, while the peer's frames keep arriving.

use hadiag::core::topology::{NetworkId, NodeId};
use hadiag::core::wire::Path;
use hadiag::daemon::clock::Clock;
use hadiag::lab::netns::{unique_prefix, Netns};
use hadiag::transport::ethernet::{frame, EthernetLink, PROBATION_PER_SECOND};
use hadiag::transport::inbound::{channel, InboundRx};
use hadiag::transport::{Source, TransportStats};
use pnet::datalink::{self, Channel};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PEER: [u8; 6] = [0x02, 0, 0x5e, 0, 0, 0x02];
const JUNK: usize = 100;

/// Sends `frames` (source MAC, payload) out of `dev` inside `ns`, spoofing the sources.
fn send_from(ns: &Netns, dev: &str, frames: &[([u8; 6], Vec<u8>)]) {
    ns.enter(|| {
        let iface = datalink::interfaces()
            .into_iter()
            .find(|i| i.name == dev)
            .expect("veth end");
        let Ok(Channel::Ethernet(mut tx, _rx)) = datalink::channel(&iface, Default::default())
        else {
            panic!("raw socket on {dev}");
        };
        for (src, msg) in frames {
            let f = frame(*src, [0xff; 6], msg).expect("fits");
            tx.send_to(&f, None).expect("send").expect("sent");
        }
    })
    .expect("namespace");
}

/// Takes frames until `want` of them came from `from`, failing (after a generous wait) with
/// what was seen; returns how many others were taken on the way.
fn take_until(rx: &mut InboundRx, from: [u8; 6], want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut got, mut others) = (0, 0);
    while got < want {
        match rx.try_recv() {
            Some(f) => {
                assert_eq!(f.path, Path::Network(NetworkId(0)));
                match f.source {
                    Source::Ethernet(mac) if mac == from => got += 1,
                    _ => others += 1,
                }
            }
            None if Instant::now() > deadline => {
                panic!("{got} of {want} frames from the peer arrived ({others} others)")
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    others
}

#[test]
fn unknown_macs_are_dropped_once_the_peer_is_learned() {
    let prefix = unique_prefix();
    let me = Netns::with_role(&prefix, "me").expect("namespace (root)");
    let wire = Netns::with_role(&prefix, "wire").expect("namespace");
    me.veth("e0", &wire, "e1").expect("veth pair");
    let stats = Arc::new(TransportStats::default());
    let (tx, mut rx) = channel();
    // One peer on the segment (a two-node cluster).
    let link = me
        .enter(|| EthernetLink::start(NetworkId(0), "e0", 1, Clock::new(), tx, stats.clone()))
        .expect("namespace")
        .expect("raw socket (CAP_NET_RAW)");
    let started = Instant::now();

    // Learning: the peer's first frame is queued like any other; the driver then reports the
    // authenticated sender's MAC.
    send_from(&wire, "e1", &[(PEER, b"HADIAG/1 first".to_vec())]);
    take_until(&mut rx, PEER, 1);
    link.learn(NodeId(1), PEER);

    // A flood from made-up MACs, then the peer again.
    let mut frames: Vec<([u8; 6], Vec<u8>)> = (0..JUNK)
        .map(|i| {
            (
                [0x02, 0xee, 0, 0, (i >> 8) as u8, i as u8],
                b"junk".to_vec(),
            )
        })
        .collect();
    frames.extend((0..5).map(|_| (PEER, b"HADIAG/1 again".to_vec())));
    send_from(&wire, "e1", &frames);
    let junk_queued = take_until(&mut rx, PEER, 5);
    let dropped = stats.foreign_dropped.load(Ordering::Relaxed) as usize;
    // The trickle lets a few unknown frames through per second of the test.
    let trickle = PROBATION_PER_SECOND as usize * (started.elapsed().as_secs() as usize + 1);
    assert!(
        junk_queued <= trickle,
        "{junk_queued} junk frames queued (at most {trickle} expected)"
    );
    assert_eq!(
        dropped + junk_queued,
        JUNK,
        "every junk frame is queued or counted"
    );
    drop(link);
}
