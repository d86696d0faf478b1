//! Wire codec micro-benchmark (issue 2 item 8): encode, decode+verify and round-trip
//! throughput of a 4-node heartbeat, plus its size. std::time only, no harness:
//!
//! ```text
//! cargo bench --bench wire                      # once Cargo.toml has [[bench]] harness = false
//! cargo run --release --example wire_bench      # same code, always available
//! ```
//!
//! Each measurement runs batches until `MEASURE` has elapsed and reports the mean.
// Compiled as a libtest bench while Cargo.toml has no `harness = false` entry; `main` is then
// unused there.
#![cfg_attr(test, allow(dead_code))]

use hadiag::core::diagnosis::{Component, IncidentId, IncidentSummary, VerdictKind};
use hadiag::core::topology::{NetworkId, NodeId, SerialPortSpec, Topology};
use hadiag::core::view::{DiskHealth, NetView, Reach, View};
use hadiag::core::wire::{decode, encode, parse, Body, Echo, Header, Keyring, Message, Path};
use std::hint::black_box;
use std::time::{Duration, Instant};

const MEASURE: Duration = Duration::from_secs(1);
const BATCH: u32 = 1_000;

fn topology() -> Topology {
    let mut t = Topology::mesh("bench", &["n1", "n2", "n3", "n4"], &["A", "B"]);
    // Priorities, serial lines and disks: the heartbeat below reports on all of them.
    for (i, n) in t.nodes.iter_mut().enumerate() {
        n.priority = 99 - i as u32;
        n.serial = vec![SerialPortSpec {
            peer: NodeId(((i + 1) % 4) as u16),
            device: "/dev/ttyS0".into(),
            baud: 115_200,
        }];
        n.disk = Some("/dev/sda".into());
    }
    t
}

/// A realistic heartbeat of n1 in a 4-node cluster: everyone heard on both networks, one
/// degraded peer, serial up, an open incident, echoes for the three peers.
fn heartbeat() -> Message {
    let peers = [NodeId(1), NodeId(2), NodeId(3)];
    let net = |reference, degraded: &[NodeId]| NetView {
        carrier: Reach::Yes,
        reference,
        heard: peers.into(),
        degraded: degraded.iter().copied().collect(),
    };
    Message {
        header: Header {
            sender: NodeId(0),
            incarnation: 1_764_121_800_123,
            sequence: 123_456_789,
            path: Path::Network(NetworkId(0)),
        },
        body: Body::Heartbeat {
            view: View {
                nets: [
                    (NetworkId(0), net(Reach::Yes, &[])),
                    (NetworkId(1), net(Reach::No, &[NodeId(2)])),
                ]
                .into(),
                serial: [(NodeId(1), true)].into(),
                disk: DiskHealth::Ok,
                failing_monitors: Default::default(),
                quiesced: false,
                isolated: false,
                incident: Some(IncidentSummary {
                    id: IncidentId {
                        opener: NodeId(0),
                        number: 3,
                    },
                    kind: VerdictKind::UpstreamFailed,
                    subjects: vec![Component::Upstream(NetworkId(1))],
                }),
                holds: Default::default(),
                rejoin_ready: false,
            },
            echo: peers
                .iter()
                .map(|&peer| Echo {
                    peer,
                    sequence: 98_765_432,
                    held: Duration::from_millis(7),
                })
                .collect(),
        },
        extensions: vec![],
    }
}

/// Mean time of `f` over batches run for at least `MEASURE`.
fn measure(mut f: impl FnMut()) -> Duration {
    for _ in 0..BATCH {
        f(); // warm-up
    }
    let start = Instant::now();
    let mut runs: u32 = 0;
    while start.elapsed() < MEASURE {
        for _ in 0..BATCH {
            f();
        }
        runs += BATCH;
    }
    start.elapsed() / runs.max(1)
}

fn report(name: &str, per: Duration) {
    let per_s = 1.0 / per.as_secs_f64().max(1e-12);
    println!(
        "{name:<16} {:>9.0} messages/s  {:>7.2} µs/message",
        per_s,
        per.as_secs_f64() * 1e6
    );
}

pub fn main() {
    let t = topology();
    let keys = Keyring::new("k1", b"bench-key-0123456789abcdef").expect("valid key");
    let msg = heartbeat();
    let bytes = encode(&msg, &t, &keys).expect("4-node heartbeat encodes");
    assert_eq!(decode(&bytes, &t, &keys).as_ref(), Ok(&msg));
    println!("4-node heartbeat: {} bytes", bytes.len());
    println!("{}", String::from_utf8_lossy(&bytes));

    report(
        "encode",
        measure(|| {
            black_box(encode(black_box(&msg), &t, &keys).ok());
        }),
    );
    report(
        "parse only",
        measure(|| {
            black_box(parse(black_box(&bytes)).ok());
        }),
    );
    report(
        "decode+verify",
        measure(|| {
            black_box(decode(black_box(&bytes), &t, &keys).ok());
        }),
    );
    report(
        "round trip",
        measure(|| {
            let b = encode(black_box(&msg), &t, &keys).unwrap_or_default();
            black_box(decode(&b, &t, &keys).ok());
        }),
    );
}
