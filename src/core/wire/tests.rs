//! Unit tests of the codec internals; the property tests live in `tests/wire.rs`.

use super::*;
use crate::core::diagnosis::{Component, IncidentId, IncidentSummary, VerdictKind};
use crate::core::topology::{NetworkId, NodeId, Topology};
use crate::core::view::{DiskHealth, NetView, Reach, View};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const KEY: &[u8] = b"lab-key-0123456789abcdef";

fn topology(cluster: &str, nodes: &[&str], nets: &[&str]) -> Topology {
    Topology::mesh(cluster, nodes, nets)
}

fn keys() -> Keyring {
    Keyring::new("k1", KEY).unwrap()
}

/// The datagram shown in the module documentation.
fn doc_example() -> Message {
    let (n1, n2, a, b) = (NodeId(0), NodeId(1), NetworkId(0), NetworkId(1));
    Message {
        header: Header {
            sender: n1,
            incarnation: 1764121800123,
            sequence: 4711,
            path: Path::Network(a),
        },
        body: Body::Heartbeat {
            view: View {
                nets: BTreeMap::from([
                    (
                        a,
                        NetView {
                            carrier: Reach::Yes,
                            reference: Reach::Yes,
                            heard: BTreeSet::from([n2]),
                            degraded: BTreeSet::new(),
                        },
                    ),
                    (
                        b,
                        NetView {
                            carrier: Reach::Yes,
                            reference: Reach::No,
                            heard: BTreeSet::from([n2]),
                            degraded: BTreeSet::from([n2]),
                        },
                    ),
                ]),
                serial: BTreeMap::from([(n2, true)]),
                disk: DiskHealth::Ok,
                failing_monitors: BTreeSet::new(),
                quiesced: false,
                isolated: false,
                incident: Some(IncidentSummary {
                    id: IncidentId {
                        opener: n1,
                        number: 3,
                    },
                    kind: VerdictKind::UpstreamFailed,
                    subjects: vec![Component::Upstream(b)],
                }),
                holds: Default::default(),
                rejoin_ready: false,
            },
            echo: vec![Echo {
                peer: n2,
                sequence: 5120,
                held: Duration::from_millis(12),
            }],
        },
        extensions: vec![],
    }
}

const DOC_EXAMPLE: &str = "HADIAG/1 cluster=lab sender=n1 incarnation=1764121800123 \
sequence=4711 path=A type=heartbeat net.A=link:up,ref:ok,heard:n2 \
net.B=link:up,ref:fail,heard:n2,degraded:n2 serial=n2:up disk=ok \
incident=n1:3,upstream_failed,upstream:B echo=n2:5120:12 \
stamp=k1:3e86018442f391019431d71380f495053e7ba1b2228c950cfd74d750d09b0e7a";

fn lab() -> Topology {
    topology("lab", &["n1", "n2"], &["A", "B"])
}

#[test]
fn doc_example_is_what_the_encoder_writes() {
    let t = lab();
    let bytes = encode(&doc_example(), &t, &keys()).unwrap();
    assert_eq!(String::from_utf8(bytes).unwrap(), DOC_EXAMPLE);
    assert_eq!(
        decode(DOC_EXAMPLE.as_bytes(), &t, &keys()).unwrap(),
        doc_example()
    );
}

#[test]
fn raw_view_borrows_fields_in_order() {
    let raw = parse(DOC_EXAMPLE.as_bytes()).unwrap();
    assert_eq!(raw.version, "HADIAG/1");
    assert_eq!(raw.fields.first(), Some(&("cluster", "lab")));
    assert_eq!(raw.fields.last(), Some(&("echo", "n2:5120:12")));
    assert_eq!(raw.stamp.key_id, "k1");
    assert!(DOC_EXAMPLE.as_bytes().starts_with(raw.signed));
    assert!(DOC_EXAMPLE[raw.signed.len()..].starts_with(" stamp="));
}

/// Sign `body` (everything before the stamp) with the test key.
fn signed(body: &str) -> Vec<u8> {
    let mut b = body.as_bytes().to_vec();
    keys().append_stamp(&mut b);
    b
}

fn malformed_field(r: Result<Message, DecodeError>) -> String {
    match r {
        Err(DecodeError::Malformed { field, .. }) => field,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

const HB: &str = "HADIAG/1 cluster=lab sender=n1 incarnation=1 sequence=2 path=A type=heartbeat";

#[test]
fn errors_name_the_field() {
    let t = lab();
    let k = keys();
    let dec = |body: &str| decode(&signed(body), &t, &k);
    assert!(dec(HB).is_ok());
    assert_eq!(
        malformed_field(dec(&HB.replace("sender=n1", "sender=n9"))),
        "sender"
    );
    assert_eq!(
        malformed_field(dec(&HB.replace("path=A", "path=C"))),
        "path"
    );
    assert!(dec(&HB.replace("path=A", "path=serial")).is_ok());
    assert_eq!(
        malformed_field(dec(&format!("{HB} net.C=link:up,ref:ok"))),
        "net.C"
    );
    assert_eq!(
        malformed_field(dec(&format!("{HB} net.A=link:up,ref:ok,heard:n3"))),
        "net.A"
    );
    assert_eq!(
        malformed_field(dec(&format!("{HB} net.A=link:sideways"))),
        "net.A"
    );
    assert_eq!(
        malformed_field(dec(&format!("{HB} net.A=link:up,link:up"))),
        "net.A"
    );
    assert_eq!(
        malformed_field(dec(&format!("{HB} net.A=link:up net.A=link:up"))),
        "net.A"
    );
    assert_eq!(malformed_field(dec(&format!("{HB} net.A="))), "net.A");
    assert_eq!(malformed_field(dec(&format!("{HB} disk=melted"))), "disk");
    assert_eq!(malformed_field(dec(&format!("{HB} echo=n2:1"))), "echo");
    assert_eq!(malformed_field(dec(&format!("{HB} echo=n2:01:1"))), "echo");
    assert_eq!(
        malformed_field(dec(&format!("{HB} echo=n2:1:1,n2:2:1"))),
        "echo"
    );
    assert_eq!(
        malformed_field(dec(&format!("{HB} incident=n1:3,meltdown"))),
        "incident"
    );
    assert_eq!(
        malformed_field(dec(&format!("{HB} incident=n1:3,hub_failed,hub:C"))),
        "incident"
    );
    assert_eq!(
        malformed_field(dec(&format!("{HB} incident=n1:4294967296,healthy"))),
        "incident"
    );
    assert_eq!(
        malformed_field(dec(&format!("{HB} verdict=n1:3,healthy"))),
        "verdict"
    );
    assert_eq!(malformed_field(dec(&format!("{HB} state=asleep"))), "state");
    assert_eq!(
        malformed_field(dec(
            &HB.replace("sequence=2", "sequence=18446744073709551616")
        )),
        "sequence"
    );
    assert_eq!(
        malformed_field(dec(&HB.replace("sequence=2", "sequence=+2"))),
        "sequence"
    );
    assert_eq!(
        malformed_field(dec(&HB.replace(" sequence=2", ""))),
        "sequence"
    );
    assert_eq!(malformed_field(dec(&format!("{HB} sender=n2"))), "sender");
    assert_eq!(
        malformed_field(dec(&HB.replace("heartbeat", "gossip"))),
        "type"
    );
    assert_eq!(
        malformed_field(dec(&HB.replace("heartbeat", "ack"))),
        "verdict"
    );
    assert_eq!(
        malformed_field(dec(&format!(
            "{} disk=ok",
            HB.replace("heartbeat", "quiesce")
        ))),
        "type"
    );
    assert_eq!(malformed_field(dec(&format!("{HB}  x=1"))), "field");
    assert_eq!(malformed_field(dec(&format!("{HB} novalue"))), "field");
    assert_eq!(malformed_field(dec(&format!("{HB} stamp=k1:00"))), "stamp");
    // Printable but unsigned, and non-ASCII.
    assert_eq!(malformed_field(decode(HB.as_bytes(), &t, &k)), "stamp");
    let mut bin = signed(HB);
    bin[20] = 0xff;
    assert_eq!(malformed_field(decode(&bin, &t, &k)), "message");
    assert_eq!(
        malformed_field(decode(b"GET / HTTP/1.1", &t, &k)),
        "version"
    );
    assert_eq!(malformed_field(decode(b"", &t, &k)), "version");
}

#[test]
fn every_message_type_round_trips() {
    let t = lab();
    let k = keys();
    let summary = IncidentSummary {
        id: IncidentId {
            opener: NodeId(1),
            number: 9,
        },
        kind: VerdictKind::CutOff,
        subjects: vec![
            Component::Node(NodeId(1)),
            Component::Serial(NodeId(0), NodeId(1)),
        ],
    };
    let view = match doc_example().body {
        Body::Heartbeat { view, .. } => view,
        _ => unreachable!(),
    };
    for body in [
        Body::Proposal {
            incident: summary.clone(),
            view,
        },
        Body::Ack {
            incident: summary.clone(),
        },
        Body::Isolated {
            incident: summary.id,
        },
        Body::Quiesce,
        Body::Resume,
    ] {
        let msg = Message {
            body,
            ..doc_example()
        };
        let bytes = encode(&msg, &t, &k).unwrap();
        assert_eq!(
            decode(&bytes, &t, &k).unwrap(),
            msg,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
    }
}

#[test]
fn serial_subjects_with_dashed_names() {
    let t = topology("lab", &["db-1", "db-2", "db"], &["A"]);
    let k = keys();
    let msg = Message {
        header: Header {
            sender: NodeId(0),
            incarnation: 1,
            sequence: 1,
            path: Path::Serial,
        },
        body: Body::Ack {
            incident: IncidentSummary {
                id: IncidentId {
                    opener: NodeId(0),
                    number: 1,
                },
                kind: VerdictKind::SerialFailed,
                subjects: vec![Component::Serial(NodeId(0), NodeId(1))],
            },
        },
        extensions: vec![],
    };
    let bytes = encode(&msg, &t, &k).unwrap();
    assert!(String::from_utf8_lossy(&bytes).contains("serial:db-1-db-2"));
    assert_eq!(decode(&bytes, &t, &k).unwrap(), msg);
    // `a-b-c` where both `a`+`b-c` and `a-b`+`c` are nodes cannot be resolved.
    let t = topology("lab", &["a", "b-c", "a-b", "c"], &["A"]);
    let body = "HADIAG/1 cluster=lab sender=a incarnation=1 sequence=1 path=A type=ack \
                verdict=a:1,serial_failed,serial:a-b-c";
    assert_eq!(malformed_field(decode(&signed(body), &t, &k)), "verdict");
}

#[test]
fn encoder_refuses_what_the_decoder_would_refuse() {
    let t = lab();
    let k = keys();
    let mut msg = doc_example();
    msg.extensions = vec![("disk".into(), "ok".into())];
    assert!(matches!(
        encode(&msg, &t, &k),
        Err(EncodeError::Invalid { .. })
    ));
    msg.extensions = vec![("x".into(), "a b".into())];
    assert!(matches!(
        encode(&msg, &t, &k),
        Err(EncodeError::Invalid { .. })
    ));
    msg.extensions = vec![];
    msg.header.sender = NodeId(7);
    assert!(matches!(
        encode(&msg, &t, &k),
        Err(EncodeError::Invalid { .. })
    ));
    let bad = topology("lab", &["n.1", "n2"], &["A", "B"]);
    assert!(matches!(
        encode(&doc_example(), &bad, &k),
        Err(EncodeError::Invalid { .. })
    ));
    let bad = topology("lab", &["n1", "n2"], &["serial", "B"]);
    assert!(matches!(
        encode(&doc_example(), &bad, &k),
        Err(EncodeError::Invalid { .. })
    ));
    let mut msg = doc_example();
    msg.extensions = vec![("pad".into(), "x".repeat(MAX_MESSAGE_BYTES))];
    assert!(
        matches!(encode(&msg, &t, &k), Err(EncodeError::Oversize { len }) if len > MAX_MESSAGE_BYTES)
    );
}

#[test]
fn reasons_are_stable_labels() {
    let all = [
        DecodeError::malformed("f", "r", "v"),
        DecodeError::UnsupportedVersion("HADIAG/2".into()),
        DecodeError::BadStamp,
        DecodeError::UnknownKeyId("k9".into()),
        DecodeError::Oversize { len: 1201 },
        DecodeError::WrongCluster("prod".into()),
        DecodeError::Replay {
            sender: NodeId(0),
            incarnation: 1,
            sequence: 1,
            why: ReplayKind::Duplicate,
        },
    ];
    let labels: Vec<_> = all.iter().map(DecodeError::reason).collect();
    assert_eq!(labels, DECODE_REASONS);
}

mod replay_model {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn header(sender: u16, incarnation: u64, sequence: u64) -> Header {
        Header {
            sender: NodeId(sender),
            incarnation,
            sequence,
            path: Path::Serial,
        }
    }

    /// The obvious (unbounded) specification the bitmap must agree with.
    #[derive(Default)]
    struct Model {
        incarnation: Option<u64>,
        newest: u64,
        seen: BTreeSet<u64>,
    }

    impl Model {
        fn accept(&mut self, inc: u64, seq: u64) -> bool {
            match self.incarnation {
                Some(i) if inc < i => return false,
                Some(i) if inc == i => {}
                _ => {
                    *self = Model {
                        incarnation: Some(inc),
                        newest: seq,
                        seen: BTreeSet::from([seq]),
                    };
                    return true;
                }
            }
            if seq > self.newest {
                self.newest = seq;
            } else if self.newest - seq >= REPLAY_WINDOW || self.seen.contains(&seq) {
                return false;
            }
            self.seen.insert(seq)
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]
        #[test]
        fn bitmap_matches_model(ops in proptest::collection::vec(
            (0u16..2, 0u64..3, prop_oneof![0u64..600, Just(u64::MAX), Just(u64::MAX - 1)]), 1..300)) {
            let t = topology("lab", &["n1", "n2"], &["A"]);
            let mut filter = ReplayFilter::new(&t);
            let mut models = [Model::default(), Model::default()];
            for (s, inc, seq) in ops {
                let want = models[usize::from(s)].accept(inc, seq);
                let got = filter.accept(&header(s, inc, seq));
                prop_assert_eq!(got.is_ok(), want, "sender {} inc {} seq {}: {:?}", s, inc, seq, got);
                if let Err(e) = got {
                    prop_assert_eq!(e.reason(), "replay");
                }
            }
        }
    }

    #[test]
    fn kinds_and_bounds() {
        let t = topology("lab", &["n1"], &["A"]);
        let mut f = ReplayFilter::new(&t);
        f.accept(&header(0, 5, 1000)).unwrap();
        f.accept(&header(0, 5, 990)).unwrap(); // reordered between paths: fine
        let why = |r: Result<(), DecodeError>| match r {
            Err(DecodeError::Replay { why, .. }) => why,
            other => panic!("{other:?}"),
        };
        assert_eq!(why(f.accept(&header(0, 5, 990))), ReplayKind::Duplicate);
        assert_eq!(why(f.accept(&header(0, 5, 1000))), ReplayKind::Duplicate);
        assert_eq!(
            why(f.accept(&header(0, 5, 1000 - REPLAY_WINDOW))),
            ReplayKind::TooOld { newest: 1000 }
        );
        assert_eq!(
            why(f.accept(&header(0, 4, 5000))),
            ReplayKind::OldIncarnation { newest: 5 }
        );
        f.accept(&header(0, 6, 0)).unwrap(); // restart: sequences begin again
        assert!(matches!(
            f.accept(&header(3, 1, 1)),
            Err(DecodeError::Malformed { .. })
        ));
    }
}
