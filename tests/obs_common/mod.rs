//! Shared fixtures of the observability tests (`tests/obs_*.rs`): the two-node topology of
//! fault matrix (docs/fault-matrix.md), core diagnoses, and a tiny blocking HTTP/1.1 client for loopback calls.
#![allow(dead_code)]

use hadiag::core::classify::{Diagnosis, Fact, Rival, Support};
use hadiag::core::diagnosis::{
    Component, Fault, FaultMode, IncidentId, IncidentSummary, VerdictKind,
};
use hadiag::core::time::Instant;
use hadiag::core::topology::{
    InterfaceSpec, NetworkId, NetworkSpec, NodeId, NodeSpec, SerialPortSpec, Thresholds, Timing,
    Topology, Transport,
};
use hadiag::core::view::{DiskHealth, NetView, Reach, View};
use hadiag::ops::Observer;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub const N1: NodeId = NodeId(0);
pub const N2: NodeId = NodeId(1);
pub const A: NetworkId = NetworkId(0);
pub const B: NetworkId = NetworkId(1);

/// n1, n2 on networks A and B, one serial line, a disk each.
pub fn two_node() -> Topology {
    let node = |name: &str, last: u8, peer: NodeId| NodeSpec {
        name: name.to_string(),
        priority: 100 - u32::from(last),
        interfaces: vec![
            InterfaceSpec {
                network: A,
                device: "eth1".into(),
                address: Some(format!("198.51.100.{last}").parse().unwrap()),
            },
            InterfaceSpec {
                network: B,
                device: "eth2".into(),
                address: Some(format!("203.0.113.{last}").parse().unwrap()),
            },
        ],
        serial: vec![SerialPortSpec {
            peer,
            device: "/dev/ttyS0".into(),
            baud: 115200,
        }],
        disk: Some("/dev/vda".into()),
    };
    Topology {
        cluster: "demo".into(),
        nodes: vec![node("n1", 1, N2), node("n2", 2, N1)],
        networks: vec![
            NetworkSpec {
                name: "A".into(),
                references: vec!["198.51.100.254".parse().unwrap()],
                transport: Transport::Udp,
                port: 7946,
            },
            NetworkSpec {
                name: "B".into(),
                references: vec!["203.0.113.254".parse().unwrap()],
                transport: Transport::Udp,
                port: 7946,
            },
        ],
        timing: Timing::default(),
        thresholds: Thresholds::default(),
    }
}

/// A view where `me` hears `peers` on each network with the given reference state.
pub fn view(
    me_hears: &[(NetworkId, &[NodeId], Reach, Reach)],
    serial_heard: Option<(NodeId, bool)>,
) -> View {
    let mut v = View {
        disk: DiskHealth::Ok,
        ..Default::default()
    };
    for (net, heard, carrier, reference) in me_hears {
        v.nets.insert(
            *net,
            NetView {
                carrier: *carrier,
                reference: *reference,
                heard: heard.iter().copied().collect(),
                degraded: Default::default(),
            },
        );
    }
    if let Some((p, h)) = serial_heard {
        v.serial.insert(p, h);
    }
    v
}

pub fn healthy(at_ms: u64) -> Diagnosis {
    Diagnosis::healthy(N1, Instant::from_millis(at_ms), Vec::new(), &two_node())
}

/// "attachment n2.A down", with support and a rival ruled out.
pub fn attachment_n2a(at_ms: u64) -> Diagnosis {
    let mut d = healthy(at_ms);
    d.kind = VerdictKind::AttachmentFailed;
    d.subjects = vec![Component::Attachment(N2, A)];
    d.faults = vec![Fault {
        component: Component::Attachment(N2, A),
        mode: FaultMode::Down,
    }];
    d.support = vec![
        Support {
            fact: Fact::Hears {
                observer: N1,
                peer: N2,
                network: A,
                heard: false,
            },
            at: Instant::from_millis(at_ms - 300),
            source: N1,
            text: "n1 no longer hears n2 on A".into(),
        },
        Support {
            fact: Fact::Carrier {
                observer: N2,
                network: A,
                up: false,
            },
            at: Instant::from_millis(at_ms - 250),
            source: N2,
            text: "n2 reports carrier down on A".into(),
        },
    ];
    d.rivals = vec![Rival {
        faults: vec![Fault {
            component: Component::Hub(A),
            mode: FaultMode::Down,
        }],
        ruled_out_by: Some(Support {
            fact: Fact::Reference {
                observer: N1,
                network: A,
                target: Some("198.51.100.254".parse().unwrap()),
                reached: true,
            },
            at: Instant::from_millis(at_ms - 100),
            source: N1,
            text: "n1 reaches 198.51.100.254 via A".into(),
        }),
        reason: "n1 reaches 198.51.100.254 via A".into(),
    }];
    d
}

pub fn hub(net: NetworkId, at_ms: u64) -> Diagnosis {
    let mut d = healthy(at_ms);
    d.kind = VerdictKind::HubFailed;
    d.subjects = vec![Component::Hub(net)];
    d.faults = vec![Fault {
        component: Component::Hub(net),
        mode: FaultMode::Down,
    }];
    d
}

/// Hub A down plus the attachment n2.A (a symptom on the same network).
pub fn hub_and_attachment(at_ms: u64) -> Diagnosis {
    let mut d = healthy(at_ms);
    d.kind = VerdictKind::MultipleFaults;
    d.subjects = vec![Component::Attachment(N2, A), Component::Hub(A)];
    d.faults = vec![
        Fault {
            component: Component::Attachment(N2, A),
            mode: FaultMode::Down,
        },
        Fault {
            component: Component::Hub(A),
            mode: FaultMode::Down,
        },
    ];
    d
}

pub fn node_failed(at_ms: u64) -> Diagnosis {
    let mut d = healthy(at_ms);
    d.kind = VerdictKind::NodeFailed;
    d.subjects = vec![Component::Node(N2)];
    d.faults = vec![Fault {
        component: Component::Node(N2),
        mode: FaultMode::Crashed,
    }];
    d
}

pub fn incident(number: u32, kind: VerdictKind, subjects: Vec<Component>) -> IncidentSummary {
    IncidentSummary {
        id: IncidentId { opener: N1, number },
        kind,
        subjects,
    }
}

/// A raw HTTP/1.1 exchange over a real loopback socket: (status, headers, body).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the test server");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// Runs `promtool` with `args`, feeding `stdin`; panics (never passes vacuously) when absent.
pub fn promtool(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool not found: install the Debian package `prometheus` (.ci/run does)");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Sample names (`name` or `name_bucket`…) present in an exposition.
pub fn sample_names(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap_or("").to_string())
        .collect()
}

/// Every `hadiag_…` metric name a text (dashboard JSON, rules YAML) mentions.
pub fn hadiag_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(p) = text[i..].find("hadiag_") {
        let start = i + p;
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        // Skip label values and prose (`hadiag_` inside a word like `job=~".*hadiag.*"`).
        if start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_') {
            out.insert(text[start..end].to_string());
        }
        i = end;
    }
    out
}

/// The metrics the Grafana dashboard and the alerting rules use that `scrape` lacks.
pub fn dashboard_metrics_missing_from(scrape: &str) -> Vec<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let read = |f: &str| {
        std::fs::read_to_string(format!("{root}/dashboards/{f}"))
            .unwrap_or_else(|e| panic!("dashboards/{f}: {e}"))
    };
    let mut used = hadiag_names(&read("hadiag-grafana.json"));
    used.extend(hadiag_names(&read("hadiag-rules.yml")));
    assert!(
        used.len() >= 15,
        "too few metrics found in dashboard + rules: {used:?}"
    );
    let present = sample_names(scrape);
    used.into_iter().filter(|m| !present.contains(m)).collect()
}

/// Feeds n1's Observer the views and verdict of a healthy two-node cluster, then the views
/// of fault #4 (n2's NIC on A gone) as both nodes report them.
pub fn healthy_then_n2a_goes_away(obs: &mut Observer) {
    obs.own_view(&view(
        &[
            (A, &[N2], Reach::Yes, Reach::Yes),
            (B, &[N2], Reach::Yes, Reach::Yes),
        ],
        Some((N2, true)),
    ));
    obs.peer_view(
        N2,
        &view(
            &[
                (A, &[N1], Reach::Yes, Reach::Yes),
                (B, &[N1], Reach::Yes, Reach::Yes),
            ],
            Some((N1, true)),
        ),
        Some(Duration::from_millis(40)),
    );
    obs.diagnosis(&healthy(100));
    obs.own_view(&view(
        &[
            (A, &[], Reach::Yes, Reach::Yes),
            (B, &[N2], Reach::Yes, Reach::Yes),
        ],
        Some((N2, true)),
    ));
    obs.peer_view(
        N2,
        &view(
            &[
                (A, &[], Reach::No, Reach::No),
                (B, &[N1], Reach::Yes, Reach::Yes),
            ],
            Some((N1, true)),
        ),
        Some(Duration::from_millis(50)),
    );
}

/// A rule on every verdict that pages at once (and on recovery) by running `command`.
pub fn exec_rule(command: Vec<String>) -> hadiag::config::AlertRule {
    hadiag::config::AlertRule {
        name: "page".into(),
        select: hadiag::config::AlertSelect::default(),
        after: 1,
        every: None,
        upalert: true,
        action: hadiag::config::AlertAction::Exec {
            command,
            timeout: Duration::from_secs(10),
        },
    }
}

/// Runs the `hadiag` binary with `args`: exit code, stdout, stderr.
pub fn run_hadiag(args: &[&str]) -> (Option<i32>, String, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_hadiag"))
        .args(args)
        .output()
        .expect("run hadiag");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
