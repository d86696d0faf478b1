//! Wire codec properties (docs/wire-format.md): round trip over arbitrary messages,
//! never a panic on arbitrary or mutated input, the 16 × 4 size bound, and every rejection
//! with the right error.

use hadiag::core::diagnosis::{Component, IncidentId, IncidentSummary, VerdictKind};
use hadiag::core::topology::{NetworkId, NodeId, Topology};
use hadiag::core::view::{DiskHealth, NetView, Reach, View};
use hadiag::core::wire::{
    decode, encode, encode_fitted, parse, Body, DecodeError, Echo, EncodeError, Header, Keyring,
    Message, Path, ReplayFilter, ReplayKind, MAX_MESSAGE_BYTES, REPLAY_WINDOW,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const KEY: &[u8] = b"test-key-0123456789abcdef";
const OLD_KEY: &[u8] = b"old-key-fedcba9876543210";

fn keys() -> Keyring {
    Keyring::new("k2", KEY).unwrap()
}

fn topology(cluster: &str, nodes: &[String], nets: &[String]) -> Topology {
    Topology::mesh(cluster, nodes, nets)
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{prefix}{i}")).collect()
}

// ---------------------------------------------------------------------------------------
// Strategies: a topology, then messages whose ids all lie inside it.
// ---------------------------------------------------------------------------------------

/// Unique names by construction (prefix + index); prefixes may contain `-` and `_` so
/// `serial:a-1-a-2` and friends are exercised.
fn arb_topology() -> impl Strategy<Value = Topology> {
    // `select` rather than regex strategies: generation dominates the run time otherwise.
    (
        proptest::sample::select(vec!["lab", "prod-eu.1", "x", "A_b-c.d-0123456789"]),
        proptest::sample::select(vec!["n", "db-", "node_", "a-b-"]),
        proptest::sample::select(vec!["A", "net", "B_", "lan-"]),
        1usize..=6,
        1usize..=4,
    )
        .prop_map(|(cluster, np, sp, n, m)| topology(cluster, &names(np, n), &names(sp, m)))
}

fn arb_reach() -> impl Strategy<Value = Reach> {
    prop_oneof![Just(Reach::Unknown), Just(Reach::Yes), Just(Reach::No)]
}

fn arb_disk() -> impl Strategy<Value = DiskHealth> {
    prop_oneof![
        Just(DiskHealth::Unknown),
        Just(DiskHealth::None),
        Just(DiskHealth::Ok),
        Just(DiskHealth::Slow),
        Just(DiskHealth::Failing),
        Just(DiskHealth::Hung),
    ]
}

fn arb_node(n: usize) -> impl Strategy<Value = NodeId> {
    (0..n as u16).prop_map(NodeId)
}

fn arb_net(m: usize) -> impl Strategy<Value = NetworkId> {
    (0..m as u16).prop_map(NetworkId)
}

fn arb_component(n: usize, m: usize) -> impl Strategy<Value = Component> {
    prop_oneof![
        arb_node(n).prop_map(Component::Node),
        (arb_node(n), arb_net(m)).prop_map(|(a, s)| Component::Attachment(a, s)),
        arb_net(m).prop_map(Component::Hub),
        arb_net(m).prop_map(Component::Upstream),
        (arb_node(n), arb_node(n)).prop_map(|(a, b)| if a == b {
            Component::Disk(a)
        } else {
            Component::Serial(a.min(b), a.max(b))
        }),
        arb_node(n).prop_map(Component::Disk),
    ]
}

fn arb_incident_id(n: usize) -> impl Strategy<Value = IncidentId> {
    (arb_node(n), any::<u32>()).prop_map(|(opener, number)| IncidentId { opener, number })
}

/// Canonical summaries: subjects sorted and unique, as the classifier produces them.
fn arb_summary(n: usize, m: usize) -> impl Strategy<Value = IncidentSummary> {
    (
        arb_incident_id(n),
        proptest::sample::select(VerdictKind::ALL.to_vec()),
        proptest::collection::btree_set(arb_component(n, m), 0..4),
    )
        .prop_map(|(id, kind, subjects)| IncidentSummary {
            id,
            kind,
            subjects: subjects.into_iter().collect(),
        })
}

fn arb_net_view(n: usize) -> impl Strategy<Value = NetView> {
    (
        arb_reach(),
        arb_reach(),
        proptest::collection::btree_set(arb_node(n), 0..=n),
        proptest::collection::btree_set(arb_node(n), 0..=n),
    )
        .prop_map(|(carrier, reference, heard, degraded)| NetView {
            carrier,
            reference,
            heard,
            degraded,
        })
}

fn arb_view(n: usize, m: usize) -> impl Strategy<Value = View> {
    (
        proptest::collection::btree_map(arb_net(m), arb_net_view(n), 0..=m),
        proptest::collection::btree_map(arb_node(n), any::<bool>(), 0..=n),
        arb_disk(),
        proptest::collection::btree_set(
            proptest::sample::select(vec!["httpd", "smtp.check", "db-replication", "x_1"])
                .prop_map(String::from),
            0..3,
        ),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(arb_summary(n, m)),
        proptest::collection::btree_map(arb_node(n), arb_incident_id(n), 0..=n),
        any::<bool>(),
    )
        .prop_map(
            |(
                nets,
                serial,
                disk,
                failing_monitors,
                quiesced,
                isolated,
                incident,
                holds,
                rejoin_ready,
            )| View {
                nets,
                serial,
                disk,
                failing_monitors,
                quiesced,
                isolated,
                incident,
                holds,
                rejoin_ready,
            },
        )
}

fn arb_echo(n: usize) -> impl Strategy<Value = Vec<Echo>> {
    proptest::collection::btree_map(arb_node(n), (any::<u64>(), 0u64..100_000), 0..=n).prop_map(
        |m| {
            m.into_iter()
                .map(|(peer, (sequence, ms))| Echo {
                    peer,
                    sequence,
                    held: Duration::from_millis(ms),
                })
                .collect()
        },
    )
}

fn arb_body(n: usize, m: usize) -> impl Strategy<Value = Body> {
    prop_oneof![
        4 => (arb_view(n, m), arb_echo(n)).prop_map(|(view, echo)| Body::Heartbeat { view, echo }),
        2 => (arb_summary(n, m), arb_view(n, m))
            .prop_map(|(incident, view)| Body::Proposal { incident, view }),
        1 => arb_summary(n, m).prop_map(|incident| Body::Ack { incident }),
        1 => arb_incident_id(n).prop_map(|incident| Body::Isolated { incident }),
        1 => Just(Body::Quiesce),
        1 => Just(Body::Resume),
    ]
}

fn arb_message(n: usize, m: usize) -> impl Strategy<Value = Message> {
    (
        arb_node(n),
        any::<u64>(),
        any::<u64>(),
        prop_oneof![Just(Path::Serial), arb_net(m).prop_map(Path::Network)],
        arb_body(n, m),
        // Extension keys that cannot collide with known keys; values: printable, no space.
        proptest::collection::vec(
            (
                proptest::sample::select(vec!["x-zone", "load", "v2.caps", "net"]),
                proptest::sample::select(vec!["", "eu-1", "0.25,0.5", "a=b:c+d", "!~"]),
            )
                .prop_map(|(k, v)| (k.to_string(), v.to_string())),
            0..3,
        ),
    )
        .prop_map(
            |(sender, incarnation, sequence, path, body, extensions)| Message {
                header: Header {
                    sender,
                    incarnation,
                    sequence,
                    path,
                },
                body,
                extensions,
            },
        )
}

fn arb_case() -> impl Strategy<Value = (Topology, Message)> {
    arb_topology().prop_flat_map(|t| {
        let (n, m) = (t.nodes.len(), t.networks.len());
        (Just(t), arb_message(n, m))
    })
}

const SOUP: &[&str] = &[
    " cluster=",
    " sender=",
    " incarnation=",
    " sequence=",
    " path=",
    " type=",
    " net.",
    " serial=",
    " disk=",
    " failing=",
    " state=",
    " incident=",
    " echo=",
    " verdict=",
    " x=",
    "heartbeat",
    "proposal",
    "ack",
    "isolated",
    "quiesce",
    "resume",
    "link:",
    "ref:",
    "heard:",
    "degraded:",
    "up",
    "down",
    "ok",
    "fail",
    "unknown",
    "node:",
    "attachment:",
    "hub:",
    "upstream:",
    "serial:",
    "disk:",
    "hub_failed",
    "cut_off",
    "quiesced",
    ",",
    "+",
    ":",
    ".",
    "-",
    " ",
    "=",
    "0",
    "1",
    "42",
    "18446744073709551616",
    "4294967296",
];

fn arb_soup() -> impl Strategy<Value = (Topology, Vec<String>)> {
    arb_topology().prop_flat_map(|t| {
        let mut words: Vec<String> = SOUP.iter().map(|s| s.to_string()).collect();
        words.extend(t.nodes.iter().map(|n| n.name.clone()));
        words.extend(t.networks.iter().map(|n| n.name.clone()));
        let tokens = proptest::collection::vec(
            prop_oneof![
                4 => proptest::sample::select(words),
                1 => proptest::sample::select(vec!["Zz", "n0", "x-y", "9"]).prop_map(String::from),
            ],
            0..60,
        );
        (Just(t), tokens)
    })
}

/// One edit of a datagram: flip a bit, overwrite, insert or delete a byte, or truncate.
#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    // Bytes biased towards the format's own separators, so edits produce near-valid input.
    let byte = prop_oneof![
        any::<u8>(),
        proptest::sample::select(b" =,:+.-0123456789naz".to_vec())
    ];
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len().max(1);
    match *m {
        Mutation::Flip(i, bit) => {
            if let Some(b) = bytes.get_mut(i % len) {
                *b ^= 1 << bit;
            }
        }
        Mutation::Set(i, v) => {
            if let Some(b) = bytes.get_mut(i % len) {
                *b = v;
            }
        }
        Mutation::Insert(i, v) => bytes.insert(i % (bytes.len() + 1), v),
        Mutation::Delete(i) => {
            if !bytes.is_empty() {
                bytes.remove(i % len);
            }
        }
        Mutation::Truncate(i) => bytes.truncate(i % len),
    }
}

/// Replace the stamp of `bytes` (if any) by a valid one over the mutated body, so edits reach
/// the resolver instead of stopping at the stamp check.
fn restamp(bytes: &[u8], keys: &Keyring) -> Vec<u8> {
    let cut = bytes
        .windows(7)
        .rposition(|w| w == b" stamp=")
        .unwrap_or(bytes.len());
    let mut body = bytes[..cut].to_vec();
    keys.append_stamp(&mut body);
    body
}

/// Whatever decodes must re-encode (or be refused as oversize) and decode to the same message.
fn check_decoded(bytes: &[u8], t: &Topology, k: &Keyring) -> Result<(), TestCaseError> {
    match decode(bytes, t, k) {
        Ok(msg) => match encode(&msg, t, k) {
            Ok(again) => prop_assert_eq!(decode(&again, t, k), Ok(msg)),
            Err(EncodeError::Oversize { len }) => prop_assert!(len > MAX_MESSAGE_BYTES),
            Err(e) => prop_assert!(false, "decoded message does not re-encode: {e}"),
        },
        Err(e) => prop_assert!(!e.reason().is_empty()),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn round_trip((t, msg) in arb_case()) {
        let k = keys();
        match encode_fitted(&msg, &t, &k) {
            Ok((bytes, shed)) => {
                prop_assert!(bytes.len() <= MAX_MESSAGE_BYTES);
                prop_assert!(bytes.iter().all(|b| (b' '..=b'~').contains(b)));
                // Whatever was shed to fit is exactly what the receiver misses.
                prop_assert_eq!(decode(&bytes, &t, &k), Ok(shed.apply(&msg)));
            }
            // Large random topologies with 20-digit numbers may not fit: refused, not truncated.
            Err(EncodeError::Oversize { len }) => prop_assert!(len > MAX_MESSAGE_BYTES),
            Err(e) => prop_assert!(false, "valid message refused: {e}"),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1400)) {
        let t = topology("lab", &names("n", 3), &names("N", 2));
        let k = keys();
        check_decoded(&bytes, &t, &k)?;
        if let Ok(raw) = parse(&bytes) {
            let _ = raw.resolve(&t);
        }
        // The same bytes behind a valid version token and stamp reach every later stage.
        let mut framed = b"HADIAG/1 ".to_vec();
        framed.extend_from_slice(&bytes);
        check_decoded(&restamp(&framed, &k), &t, &k)?;
    }

    #[test]
    fn token_soup_never_panics((t, tokens) in arb_soup()) {
        // Signed soup of the format's own tokens and this topology's names reaches the
        // resolver with many near-valid field combinations.
        let k = keys();
        let body = format!("HADIAG/1 cluster={} type=heartbeat{}", t.cluster, tokens.concat());
        check_decoded(&restamp(body.as_bytes(), &k), &t, &k)?;
    }

    #[test]
    fn mutated_messages_never_panic(
        (t, msg) in arb_case(),
        edits in proptest::collection::vec(arb_mutation(), 1..6),
    ) {
        let k = keys();
        let Ok(mut bytes) = encode(&msg, &t, &k) else { return Ok(()) };
        let original = bytes.clone();
        for e in &edits {
            mutate(&mut bytes, e);
        }
        if bytes != original {
            // Any edit of a signed message is caught (stamp, or earlier stages).
            prop_assert!(decode(&bytes, &t, &k).is_err());
        }
        check_decoded(&bytes, &t, &k)?;
        check_decoded(&restamp(&bytes, &k), &t, &k)?;
    }
}

// ---------------------------------------------------------------------------------------
// Size bound and specific rejections.
// ---------------------------------------------------------------------------------------

/// The docs/wire-format.md bound: a plausible heartbeat at 16 nodes × 4 networks fits one datagram.
#[test]
fn heartbeat_16_nodes_4_networks_fits_one_datagram() {
    let t = topology(
        "prod-cluster",
        &names("n", 16),
        &["A", "B", "C", "D"].map(String::from),
    );
    let me = NodeId(0);
    let peers: BTreeSet<NodeId> = (1..16).map(NodeId).collect();
    let view = View {
        nets: (0..4)
            .map(|s| {
                let degraded = [NodeId(2 + s), NodeId(9 + s)].into();
                (
                    NetworkId(s),
                    NetView {
                        carrier: Reach::Yes,
                        reference: if s == 3 { Reach::No } else { Reach::Yes },
                        heard: peers.clone(),
                        degraded,
                    },
                )
            })
            .collect(),
        serial: BTreeMap::from([(NodeId(1), true), (NodeId(15), false)]),
        disk: DiskHealth::Slow,
        failing_monitors: ["http-frontend", "smtp"].map(String::from).into(),
        quiesced: false,
        isolated: false,
        incident: Some(IncidentSummary {
            id: IncidentId {
                opener: NodeId(11),
                number: 4_000_000,
            },
            kind: VerdictKind::MultipleFaults,
            subjects: vec![
                Component::Attachment(NodeId(12), NetworkId(0)),
                Component::Upstream(NetworkId(3)),
                Component::Serial(NodeId(0), NodeId(15)),
            ],
        }),
        // A survivor that took over two peers.
        holds: [
            (
                NodeId(4),
                IncidentId {
                    opener: NodeId(11),
                    number: 4_000_000,
                },
            ),
            (
                NodeId(5),
                IncidentId {
                    opener: NodeId(11),
                    number: 4_000_000,
                },
            ),
        ]
        .into(),
        rejoin_ready: false,
    };
    let msg = Message {
        header: Header {
            sender: me,
            incarnation: 1_764_121_800_123,
            sequence: 987_654_321_012,
            path: Path::Network(NetworkId(3)),
        },
        body: Body::Heartbeat {
            view,
            echo: peers
                .iter()
                .map(|&peer| Echo {
                    peer,
                    sequence: 987_654_321_000 + u64::from(peer.0),
                    held: Duration::from_millis(99),
                })
                .collect(),
        },
        extensions: vec![],
    };
    let k = Keyring::new("2026-11-rot", KEY).unwrap();
    let bytes = encode(&msg, &t, &k).expect("16x4 heartbeat must fit");
    println!(
        "16 nodes x 4 networks heartbeat: {} bytes (limit {MAX_MESSAGE_BYTES})\n{}",
        bytes.len(),
        String::from_utf8_lossy(&bytes)
    );
    assert!(bytes.len() <= MAX_MESSAGE_BYTES);
    assert_eq!(decode(&bytes, &t, &k).unwrap(), msg);
}

fn two_node() -> Topology {
    topology("lab", &names("n", 2), &["A", "B"].map(String::from))
}

fn heartbeat(sequence: u64) -> Message {
    Message {
        header: Header {
            sender: NodeId(1),
            incarnation: 7,
            sequence,
            path: Path::Network(NetworkId(0)),
        },
        body: Body::Heartbeat {
            view: View {
                disk: DiskHealth::Ok,
                ..View::default()
            },
            echo: vec![],
        },
        extensions: vec![],
    }
}

#[test]
fn tampered_messages_are_bad_stamps() {
    let (t, k) = (two_node(), keys());
    let bytes = encode(&heartbeat(1), &t, &k).unwrap();
    // A flip in the body that keeps it valid (sequence=1 -> sequence=0), and one in the MAC.
    let mut body = bytes.clone();
    let seq_at = body.windows(11).position(|w| w == b"sequence=1 ").unwrap() + 9;
    body[seq_at] ^= 0x01;
    assert_eq!(decode(&body, &t, &k), Err(DecodeError::BadStamp));
    let mut mac = bytes.clone();
    let last = mac.len() - 1;
    mac[last] = if mac[last] == b'0' { b'1' } else { b'0' };
    assert_eq!(decode(&mac, &t, &k), Err(DecodeError::BadStamp));
    // Every single bit flip anywhere is rejected; inside the MAC it is always `BadStamp`
    // when the digit stays a lowercase hex digit.
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            let e = decode(&b, &t, &k).expect_err("bit flip accepted");
            let in_mac = i >= bytes.len() - 64;
            if in_mac && b[i].is_ascii_hexdigit() && !b[i].is_ascii_uppercase() {
                assert_eq!(e, DecodeError::BadStamp);
            }
        }
    }
    // A key with the right id but other bytes: bad stamp, not unknown key.
    let other = Keyring::new("k2", OLD_KEY).unwrap();
    assert_eq!(decode(&bytes, &t, &other), Err(DecodeError::BadStamp));
}

#[test]
fn replays_are_refused_after_authentication() {
    let (t, k) = (two_node(), keys());
    let mut filter = ReplayFilter::new(&t);
    let mut accept = |seq: u64, inc: u64| {
        let mut m = heartbeat(seq);
        m.header.incarnation = inc;
        let msg = decode(&encode(&m, &t, &k).unwrap(), &t, &k).unwrap();
        filter.accept(&msg.header)
    };
    accept(100, 7).unwrap();
    accept(98, 7).unwrap(); // reordered between paths
    let why = |r: Result<(), DecodeError>| match r {
        Err(e @ DecodeError::Replay { why, .. }) => {
            assert_eq!(e.reason(), "replay");
            why
        }
        other => panic!("expected Replay, got {other:?}"),
    };
    assert_eq!(why(accept(100, 7)), ReplayKind::Duplicate);
    assert_eq!(why(accept(98, 7)), ReplayKind::Duplicate);
    accept(100 + REPLAY_WINDOW, 7).unwrap();
    assert_eq!(
        why(accept(100, 7)),
        ReplayKind::TooOld {
            newest: 100 + REPLAY_WINDOW
        }
    );
    accept(1, 8).unwrap(); // restart: new incarnation, sequences start over
    assert_eq!(
        why(accept(500, 7)),
        ReplayKind::OldIncarnation { newest: 8 }
    );
}

#[test]
fn foreign_cluster_is_refused_before_names_are_resolved() {
    let k = keys();
    // Another cluster whose node names this one does not know at all.
    let other = topology("other", &names("db", 2), &["X"].map(String::from));
    let mut m = heartbeat(1);
    m.header.path = Path::Serial;
    let bytes = encode(&m, &other, &k).unwrap();
    let e = decode(&bytes, &two_node(), &k).unwrap_err();
    assert_eq!(e, DecodeError::WrongCluster("other".into()));
    assert_eq!(e.reason(), "cluster");
}

#[test]
fn unknown_key_id_unsupported_version_and_oversize() {
    let (t, k) = (two_node(), keys());
    let bytes = encode(&heartbeat(1), &t, &Keyring::new("k9", KEY).unwrap()).unwrap();
    assert_eq!(
        decode(&bytes, &t, &k),
        Err(DecodeError::UnknownKeyId("k9".into()))
    );

    let good = encode(&heartbeat(1), &t, &k).unwrap();
    let v2 = [b"HADIAG/2".as_slice(), &good[8..]].concat();
    let e = decode(&v2, &t, &k).unwrap_err();
    assert_eq!(e, DecodeError::UnsupportedVersion("HADIAG/2".into()));
    assert_eq!(e.reason(), "version");

    let mut big = good.clone();
    big.resize(MAX_MESSAGE_BYTES + 1, b' ');
    assert_eq!(
        decode(&big, &t, &k),
        Err(DecodeError::Oversize { len: 1201 })
    );
    assert_eq!(
        parse(&vec![0xff; 1_000_000]).unwrap_err().reason(),
        "oversize"
    );

    let mut m = heartbeat(1);
    m.extensions.push(("pad".into(), "x".repeat(1100)));
    assert!(matches!(encode(&m, &t, &k), Err(EncodeError::Oversize { len }) if len > 1200));
}

#[test]
fn unknown_keys_are_kept_and_ignored() {
    let (t, k) = (two_node(), keys());
    // A newer sender adds fields this version does not know, anywhere in the message.
    let mut body = b"HADIAG/1 zone=eu-1 cluster=lab sender=n2 incarnation=7 sequence=1 path=A \
                     type=heartbeat disk=ok load=0.25,0.5 x.y="
        .to_vec();
    k.append_stamp(&mut body);
    let msg = decode(&body, &t, &k).unwrap();
    assert_eq!(
        msg.extensions,
        vec![
            ("zone".to_string(), "eu-1".to_string()),
            ("load".to_string(), "0.25,0.5".to_string()),
            ("x.y".to_string(), String::new()),
        ]
    );
    assert_eq!(
        Message {
            extensions: vec![],
            ..msg.clone()
        },
        heartbeat(1)
    );
    // Re-encoding keeps them (after the known fields).
    let again = encode(&msg, &t, &k).unwrap();
    assert!(String::from_utf8_lossy(&again).contains(" zone=eu-1 load=0.25,0.5 x.y= stamp="));
    assert_eq!(decode(&again, &t, &k).unwrap(), msg);
}

#[test]
fn rotated_keys_still_verify() {
    let t = two_node();
    let old = Keyring::new("k1", OLD_KEY).unwrap();
    let signed_old = encode(&heartbeat(1), &t, &old).unwrap();

    // Rotation step 1: every node learns k2 while still signing with k1.
    let mut ring = old.clone();
    ring.add("k2", KEY).unwrap();
    assert_eq!(ring.current_id(), "k1");
    // Step 2: sign with k2; messages from nodes still on k1 keep verifying.
    ring.set_current("k2").unwrap();
    let signed_new = encode(&heartbeat(2), &t, &ring).unwrap();
    assert!(String::from_utf8_lossy(&signed_new).contains(" stamp=k2:"));
    assert_eq!(decode(&signed_old, &t, &ring).unwrap(), heartbeat(1));
    assert_eq!(decode(&signed_new, &t, &ring).unwrap(), heartbeat(2));
    // A node that has not rotated yet cannot check k2 and says so.
    assert_eq!(
        decode(&signed_new, &t, &old),
        Err(DecodeError::UnknownKeyId("k2".into()))
    );
    // Step 3: k1 retired.
    ring.remove("k1").unwrap();
    assert_eq!(
        decode(&signed_old, &t, &ring),
        Err(DecodeError::UnknownKeyId("k1".into()))
    );
}
