//! Heartbeats always fit: at 16 nodes × 4 networks with long names, every monitor failing and an
//! open incident, the encoder sheds optional detail in its documented order and never refuses a
//! heartbeat; the configuration check sizes the true worst case with the same encoder, refuses
//! a cluster whose mandatory part cannot fit (with the numbers) and bounds the monitors.

use hadiag::config;
use hadiag::core::diagnosis::{Component, IncidentId, IncidentSummary, VerdictKind};
use hadiag::core::topology::{NetworkId, NodeId, Topology};
use hadiag::core::view::{DiskHealth, NetView, Reach, View};
use hadiag::core::wire::{
    decode, encode, encode_fitted, fitted_len, Body, Echo, Header, Keyring, Message, Path, Shed,
    MAX_MESSAGE_BYTES, MAX_MONITORS, SHED_KEY,
};
use std::collections::BTreeSet;
use std::path::Path as FsPath;
use std::time::Duration;

fn sixteen_by_four() -> Topology {
    let nodes: Vec<String> = (1..=16).map(|i| format!("db-prod-{i:02}")).collect();
    let nets: Vec<String> = ["public", "private", "storage", "backup"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    Topology::mesh("prod-eu-west.db", &nodes, &nets)
}

/// The largest heartbeat node 0 can send: every peer heard and degraded everywhere, every
/// monitor (32, long names) failing, an open multi-fault incident, echoes for every peer.
fn worst_heartbeat() -> Message {
    let peers: BTreeSet<NodeId> = (1..16).map(NodeId).collect();
    let mut view = View {
        disk: DiskHealth::Failing,
        failing_monitors: (0..MAX_MONITORS)
            .map(|i| format!("application-health-check-{i:02}"))
            .collect(),
        quiesced: true,
        isolated: true,
        incident: Some(IncidentSummary {
            id: IncidentId {
                opener: NodeId(3),
                number: 4_000_000_000,
            },
            kind: VerdictKind::MultipleFaults,
            subjects: vec![
                Component::Node(NodeId(5)),
                Component::Attachment(NodeId(7), NetworkId(2)),
                Component::Hub(NetworkId(3)),
            ],
        }),
        ..View::default()
    };
    for n in 0..4 {
        view.nets.insert(
            NetworkId(n),
            NetView {
                carrier: Reach::Unknown,
                reference: Reach::Unknown,
                heard: peers.clone(),
                degraded: peers.clone(),
            },
        );
    }
    Message {
        header: Header {
            sender: NodeId(0),
            incarnation: u64::MAX,
            sequence: u64::MAX,
            path: Path::Network(NetworkId(1)),
        },
        body: Body::Heartbeat {
            view,
            echo: peers
                .iter()
                .map(|&peer| Echo {
                    peer,
                    sequence: u64::MAX,
                    held: Duration::from_millis(99_999),
                })
                .collect(),
        },
        extensions: Vec::new(),
    }
}

/// The worst heartbeat cut down to n1 of a two-node, one-network cluster, without incident.
fn two_node_heartbeat() -> Message {
    let mut msg = worst_heartbeat();
    if let Body::Heartbeat { view, .. } = &mut msg.body {
        view.nets.retain(|n, _| n.0 == 0);
        for nv in view.nets.values_mut() {
            nv.heard = BTreeSet::from([NodeId(1)]);
            nv.degraded = BTreeSet::new();
        }
        view.incident = None;
    }
    msg.header.path = Path::Network(NetworkId(0));
    msg
}

fn keys() -> Keyring {
    Keyring::new("key-2026-12", b"0123456789abcdef0123456789abcdef").unwrap()
}

#[test]
fn worst_heartbeat_at_16_by_4_is_sent_with_detail_shed_in_order() {
    let t = sixteen_by_four();
    let k = keys();
    let msg = worst_heartbeat();
    let (bytes, shed) = encode_fitted(&msg, &t, &k).expect("a heartbeat is never refused");
    assert!(
        bytes.len() <= MAX_MESSAGE_BYTES,
        "{} bytes over the limit",
        bytes.len()
    );
    assert!(shed.any(), "this heartbeat cannot fit whole");
    // Shedding follows the documented order: a later step only with every earlier one.
    let step = Shed::STEPS.iter().position(|s| *s == shed).expect("a step");
    assert!(step >= 1);
    let got = decode(&bytes, &t, &k).expect("what is sent decodes");
    assert_eq!(got, shed.apply(&msg));
    let Body::Heartbeat { view, .. } = &got.body else {
        panic!("not a heartbeat")
    };
    // Mandatory evidence survives: every peer heard on every network, disk, state.
    for nv in view.nets.values() {
        assert_eq!(nv.heard.len(), 15);
    }
    assert_eq!(view.disk, DiskHealth::Failing);
    assert!(view.quiesced && view.isolated);
    assert!(got
        .extensions
        .iter()
        .any(|(k, v)| k == SHED_KEY && *v == shed.token()));
    println!(
        "16x4 worst heartbeat: {} bytes, shed {}",
        bytes.len(),
        shed.token()
    );
}

#[test]
fn shedding_stops_as_soon_as_the_message_fits() {
    let t = sixteen_by_four();
    let k = keys();
    let mut msg = worst_heartbeat();
    // Without degraded lists and monitors, only the echo needs to go (or nothing).
    if let Body::Heartbeat { view, .. } = &mut msg.body {
        view.failing_monitors.clear();
        for nv in view.nets.values_mut() {
            nv.degraded.clear();
        }
    }
    let (_, shed) = encode_fitted(&msg, &t, &k).unwrap();
    let step = Shed::STEPS.iter().position(|s| *s == shed).unwrap();
    // Minimal: the step before did not fit.
    if step > 0 {
        let before = fitted_len(&msg, &t, &k, Shed::STEPS[step - 1]).unwrap();
        assert!(before > MAX_MESSAGE_BYTES, "shed too much: {shed:?}");
    }
    // A small heartbeat goes out whole and carries no `shed` marker.
    let t2 = Topology::mesh("lab", &["n1", "n2"], &["A"]);
    let mut small = two_node_heartbeat();
    if let Body::Heartbeat { view, echo } = &mut small.body {
        view.failing_monitors.clear();
        echo.truncate(1);
        echo[0].peer = NodeId(1);
    }
    let (bytes, shed) = encode_fitted(&small, &t2, &k).unwrap();
    assert!(!shed.any());
    assert_eq!(decode(&bytes, &t2, &k).unwrap(), small);
}

#[test]
fn more_failing_monitors_than_the_wire_lists_shed_the_names_not_the_beat() {
    let t = Topology::mesh("lab", &["n1", "n2"], &["A"]);
    let k = keys();
    let mut msg = two_node_heartbeat();
    if let Body::Heartbeat { view, echo } = &mut msg.body {
        view.failing_monitors = (0..MAX_MONITORS + 1).map(|i| format!("m{i}")).collect();
        echo.clear();
    }
    let bytes = encode(&msg, &t, &k).expect("sent");
    let got = decode(&bytes, &t, &k).unwrap();
    let Body::Heartbeat { view, .. } = &got.body else {
        panic!()
    };
    assert!(view.failing_monitors.is_empty());
}

fn write_config(dir: &FsPath, names: &[String], monitors: usize) -> std::path::PathBuf {
    let mut y = String::from(
        "cluster: prod-eu-west\nauth: { key_id: key-2026-12, key: 00112233445566778899aabbccddeeff }\nnetworks:\n",
    );
    for (i, net) in ["public", "private", "storage", "backup"]
        .iter()
        .enumerate()
    {
        y += &format!(
            "  {net}: {{ references: [192.0.2.254], port: {} }}\n",
            7946 + i
        );
    }
    y += "nodes:\n";
    for (i, n) in names.iter().enumerate() {
        y += &format!(
            "  {n}: {{ priority: {i}, interfaces: {{ public: {{ device: eth0, address: 198.51.100.{a} }}, private: {{ device: eth1, address: 203.0.113.{a} }}, storage: {{ device: eth2, address: 192.0.2.{a} }}, backup: {{ device: eth3, address: 198.51.100.{b} }} }} }}\n",
            a = i + 1,
            b = i + 101
        );
    }
    if monitors > 0 {
        y += "monitors:\n";
        for i in 0..monitors {
            y += &format!(
                "  - {{ name: application-health-check-{i:02}, command: [/bin/true], interval: 5s, timeout: 2s }}\n"
            );
        }
    }
    let p = dir.join("cluster.yaml");
    std::fs::write(&p, y).unwrap();
    p
}

#[test]
fn check_config_accepts_16_by_4_with_32_monitors_and_says_what_sheds() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (1..=16).map(|i| format!("db-prod-{i:02}")).collect();
    let p = write_config(dir.path(), &names, MAX_MONITORS);
    let c = config::load(&p).unwrap_or_else(|e| panic!("should load:\n{e}"));
    let sizes = config::worst_heartbeats(
        &c.topology,
        &c.auth.key_id,
        &c.monitors
            .iter()
            .map(|m| m.name.clone())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert_eq!(sizes.len(), 16);
    for s in &sizes {
        assert!(s.mandatory <= MAX_MESSAGE_BYTES, "{s:?}");
        assert!(s.full > MAX_MESSAGE_BYTES, "{s:?}");
    }
    let warned = c
        .warnings
        .iter()
        .find(|w| w.message.contains("worst-case heartbeat"))
        .expect("a warning about shedding");
    assert!(warned.message.contains("shed"), "{}", warned.message);
}

#[test]
fn check_config_refuses_a_mandatory_part_that_cannot_fit_with_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (1..=16)
        .map(|i| format!("database-production-node-{i:02}"))
        .collect();
    let p = write_config(dir.path(), &names, 0);
    let e = config::load(&p).expect_err("cannot fit");
    let msg = e
        .errors
        .iter()
        .find(|e| e.message.contains("heartbeat too large"))
        .unwrap_or_else(|| panic!("no size error in:\n{e}"));
    assert!(msg.message.contains("1200-byte"), "{}", msg.message);
    let needed: usize = msg
        .message
        .split("needs ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the number of bytes");
    assert!(needed > MAX_MESSAGE_BYTES);
}

#[test]
fn monitors_are_bounded_in_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (1..=2).map(|i| format!("n{i}")).collect();
    let p = write_config(dir.path(), &names, MAX_MONITORS + 1);
    let e = config::load(&p).expect_err("33 monitors");
    assert!(
        e.errors
            .iter()
            .any(|e| e.path == "monitors" && e.message.contains("at most 32")),
        "{e}"
    );
}
