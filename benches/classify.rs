//! Classifier micro-benchmark (issue 3 item 6): cost of one `classify()` call in µs at 2, 4,
//! 16 and 64 nodes × 4 networks (references on every network, serial lines between
//! neighbours), healthy and with one fault, from node n1's point of view. std::time only, no
//! harness:
//!
//! ```text
//! cargo bench --bench classify                  # once Cargo.toml has [[bench]] harness = false
//! cargo run --release --example classify_bench  # same code, always available
//! ```
//!
//! Each case runs batches until `MEASURE` has elapsed and reports the mean per call.
#![cfg_attr(test, allow(dead_code))]

use hadiag::core::classify::classify;
use hadiag::core::diagnosis::VerdictKind;
use hadiag::core::evidence::{ClusterView, OwnDetail, Report};
use hadiag::core::time::Instant as CoreInstant;
use hadiag::core::topology::{
    InterfaceSpec, NetworkId, NetworkSpec, NodeId, NodeSpec, SerialPortSpec, Thresholds, Timing,
    Topology, Transport,
};
use hadiag::core::view::{DiskHealth, NetView, Reach, View};
use hadiag::core::wire::Path;
use std::hint::black_box;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const MEASURE: Duration = Duration::from_millis(500);
const NETS: usize = 4;

fn topology(nodes: usize) -> Topology {
    let networks = (0..NETS)
        .map(|s| NetworkSpec {
            name: ["A", "B", "C", "D"][s].to_string(),
            references: vec![IpAddr::from([198, 51, 100, 250 + s as u8])],
            transport: Transport::Udp,
            port: 7000,
        })
        .collect();
    let nodes = (0..nodes)
        .map(|i| NodeSpec {
            name: format!("n{}", i + 1),
            priority: 1,
            interfaces: (0..NETS)
                .map(|s| InterfaceSpec {
                    network: NetworkId(s as u16),
                    device: format!("eth{s}"),
                    address: None,
                })
                .collect(),
            serial: [i.checked_sub(1), Some(i + 1).filter(|&j| j < nodes)]
                .into_iter()
                .flatten()
                .map(|j| SerialPortSpec {
                    peer: NodeId(j as u16),
                    device: "/dev/ttyS0".into(),
                    baud: 115200,
                })
                .collect(),
            disk: Some("/dev/sda".into()),
        })
        .collect();
    Topology {
        cluster: "bench".into(),
        nodes,
        networks,
        timing: Timing::default(),
        thresholds: Thresholds::default(),
    }
}

#[derive(Clone, Copy)]
enum Case {
    Healthy,
    /// The last node crashed.
    NodeCrashed,
    /// Hub of network C down.
    HubDown,
}

/// What node n1 sees when `case` holds.
fn view(t: &Topology, case: Case) -> ClusterView {
    let now = CoreInstant::from_millis(10_000);
    let n = t.nodes.len();
    let dead = NodeId(n as u16 - 1);
    let up = |a: NodeId| !matches!(case, Case::NodeCrashed) || a != dead;
    let hub_ok = |s: NetworkId| !matches!(case, Case::HubDown) || s != NetworkId(2);
    let mut cv = ClusterView::new(NodeId(0), now);
    for o in t.node_ids().filter(|&o| up(o)) {
        let mut v = View {
            disk: DiskHealth::Ok,
            ..View::default()
        };
        for s in t.network_ids() {
            let mut nv = NetView {
                carrier: Reach::Yes,
                reference: if hub_ok(s) { Reach::Yes } else { Reach::No },
                ..NetView::default()
            };
            if hub_ok(s) {
                nv.heard = t.members(s).filter(|&p| p != o && up(p)).collect();
            }
            v.nets.insert(s, nv);
        }
        for (a, b) in t.serial_lines() {
            if a == o || b == o {
                let p = if a == o { b } else { a };
                v.serial.insert(p, up(p));
            }
        }
        let via = (o != NodeId(0)).then_some(Path::Network(NetworkId(0)));
        cv.reports.insert(
            o,
            Report {
                view: v,
                received: now,
                via,
                detail: OwnDetail::default(),
            },
        );
    }
    cv
}

fn measure(t: &Topology, cv: &ClusterView) -> (f64, VerdictKind) {
    let kind = classify(t, cv).kind;
    let start = Instant::now();
    let mut calls: u64 = 0;
    while start.elapsed() < MEASURE {
        for _ in 0..10 {
            black_box(classify(black_box(t), black_box(cv)));
        }
        calls += 10;
    }
    (start.elapsed().as_secs_f64() * 1e6 / calls as f64, kind)
}

pub fn main() {
    println!("classify() cost, {NETS} networks, from n1's view (mean of batches over {MEASURE:?})");
    println!(
        "{:>6} | {:>14} | {:>14} | {:>14}",
        "nodes", "healthy µs", "node down µs", "hub down µs"
    );
    println!("{:-<6}-+-{:-<14}-+-{:-<14}-+-{:-<14}", "", "", "", "");
    for nodes in [2usize, 4, 16, 64] {
        let t = topology(nodes);
        let (h, hk) = measure(&t, &view(&t, Case::Healthy));
        let (c, ck) = measure(&t, &view(&t, Case::NodeCrashed));
        let (d, dk) = measure(&t, &view(&t, Case::HubDown));
        assert_eq!(
            (hk, ck, dk),
            (
                VerdictKind::Healthy,
                VerdictKind::NodeFailed,
                VerdictKind::HubFailed
            )
        );
        println!("{nodes:>6} | {h:>14.1} | {c:>14.1} | {d:>14.1}");
    }
}
