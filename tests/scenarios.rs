//! Scenario tests on the deterministic simulator: every row of the fault matrix (docs/fault-matrix.md),
//! the same faults on three nodes, a one-way (tx-only) failure, an ambiguous double fault,
//! and total partitions without serial line (the fence-deadline path, with and without a
//! fence hook). Each asserts the verdict on every running node at the deadline after the
//! fault (heartbeat 100 ms × 3: node/NIC/hub 500 ms, upstream 1 s, agreed isolation 1 s),
//! and the invariants S1–S4 hold throughout (the simulator checks them after every step).

use hadiag::core::diagnosis::{Component, VerdictKind};
use hadiag::core::node::{Event, Role};
use hadiag::core::time::Instant;
use hadiag::core::topology::{NetworkId, NodeId};
use hadiag::sim::{
    AttachmentMode, DiskMode, Schedule, SerialLayout, Shape, Sim, SimConfig, SimFault,
    HEAL_DEADLINE,
};
use std::time::Duration;

const N1: NodeId = NodeId(0);
const N2: NodeId = NodeId(1);
const N3: NodeId = NodeId(2);
const A: NetworkId = NetworkId(0);
const B: NetworkId = NetworkId(1);

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// Fault start in every scenario: long after warm-up.
const T0: u64 = 10_000;
/// Heal time in heal scenarios.
const T1: u64 = 20_000;

fn config(shape: Shape, schedule: Schedule, horizon_s: u64) -> SimConfig {
    let mut c = SimConfig::new(shape);
    // Reference probes fast enough for the 500 ms NIC/hub budget: an attachment or hub
    // verdict also rests on "reaches no reference", which takes interval × failures + timeout.
    c.timing.reference_timeout = Duration::from_millis(100);
    c.thresholds.reference_failures = 2;
    c.schedule = schedule;
    c.horizon = Duration::from_secs(horizon_s);
    c
}

fn describe(sim: &Sim) -> String {
    let mut s = sim.config.schedule.describe(&sim.topology);
    for l in &sim.events {
        let name = &sim.topology.nodes[l.node.index()].name;
        match &l.event {
            Event::DiagnosisChanged { diagnosis, .. } => s.push_str(&format!(
                "{} {name}: verdict {} {:?}\n",
                l.at,
                diagnosis.kind.token(),
                diagnosis.subjects
            )),
            Event::Alert(_) => {}
            e => s.push_str(&format!("{} {name}: {e:?}\n", l.at)),
        }
    }
    s
}

fn run_to(sim: &mut Sim, t: Instant) {
    if let Err(v) = sim.run_until(t) {
        panic!("{v}\n{}", describe(sim));
    }
}

/// Every running node (except `except`) holds `kind` with `subject` among its subjects.
fn assert_all(sim: &Sim, kind: VerdictKind, subject: Option<Component>, except: &[NodeId]) {
    let mut checked = 0;
    for (i, sn) in sim.nodes.iter().enumerate() {
        let id = NodeId(i as u16);
        if except.contains(&id) || !sn.running() {
            continue;
        }
        let d = sim.node(id).unwrap().diagnosis();
        let ok = d.kind == kind && subject.is_none_or(|s| d.subjects.contains(&s));
        assert!(
            ok,
            "at {}: {} has {} {:?}, expected {} {:?}\n{}\n{}",
            sim.now,
            sim.topology.nodes[i].name,
            d.kind.token(),
            d.subjects,
            kind.token(),
            subject,
            d.render(&sim.topology),
            describe(sim)
        );
        checked += 1;
    }
    assert!(checked > 0, "no running node to check");
}

fn isolations(sim: &Sim) -> Vec<(Instant, NodeId)> {
    sim.events
        .iter()
        .filter(|l| matches!(l.event, Event::IsolateSelf { .. }))
        .map(|l| (l.at, l.node))
        .collect()
}

fn takeovers(sim: &Sim) -> Vec<(Instant, NodeId, NodeId)> {
    sim.events
        .iter()
        .filter_map(|l| match l.event {
            Event::TakeOver { peer, .. } => Some((l.at, l.node, peer)),
            _ => None,
        })
        .collect()
}

fn assert_no_isolation(sim: &Sim) {
    assert!(
        isolations(sim).is_empty(),
        "unexpected isolation\n{}",
        describe(sim)
    );
    assert!(
        takeovers(sim).is_empty(),
        "unexpected takeover\n{}",
        describe(sim)
    );
}

/// After the heal: every running node healthy, no incident, role Active.
fn assert_healed(sim: &mut Sim, healed_at: u64) {
    run_to(sim, at(healed_at) + HEAL_DEADLINE);
    for (i, sn) in sim.nodes.iter().enumerate() {
        let Some(n) = sn.node.as_ref() else { continue };
        let d = n.diagnosis();
        assert!(
            matches!(d.kind, VerdictKind::Healthy | VerdictKind::Degraded)
                && n.incident().is_none()
                && n.role() == Role::Active,
            "{} not healed: {} {:?}, incident {:?}, role {:?}\n{}",
            sim.topology.nodes[i].name,
            d.kind.token(),
            d.subjects,
            n.incident(),
            n.role(),
            describe(sim)
        );
    }
    let closed = sim
        .events
        .iter()
        .filter(|l| l.at >= at(T0) && matches!(l.event, Event::IncidentClosed { .. }))
        .count();
    assert!(closed > 0, "no incident was closed\n{}", describe(sim));
}

/// One fault at T0 (healing at T1 when `heal`), the verdict checked at T0 + `deadline_ms`.
fn single(
    shape: Shape,
    fault: SimFault,
    heal: bool,
    kind: VerdictKind,
    subject: Component,
    deadline_ms: u64,
) -> Sim {
    let end = heal.then(|| at(T1));
    let stopped = fault.stops_node();
    let mut sim = Sim::new(config(
        shape,
        Schedule::new().with(at(T0), end, fault),
        if heal { 30 } else { 20 },
    ));
    run_to(&mut sim, at(T0 - 1));
    assert_all(&sim, VerdictKind::Healthy, None, &[]);
    run_to(&mut sim, at(T0 + deadline_ms));
    let except: Vec<NodeId> = stopped.into_iter().collect();
    assert_all(&sim, kind, Some(subject), &except);
    if heal {
        run_to(&mut sim, at(T1 - 1));
        assert_all(&sim, kind, Some(subject), &except);
        assert_healed(&mut sim, T1);
    } else {
        run_to(&mut sim, at(20_000));
    }
    sim
}

fn matrix() -> Shape {
    Shape::matrix()
}

// ----- docs/fault-matrix.md, two nodes -------------------------------------------------------------

#[test]
fn row01_no_fault_ten_minutes_is_healthy() {
    let mut sim = Sim::new(config(matrix(), Schedule::new(), 600));
    run_to(&mut sim, at(600_000));
    assert_all(&sim, VerdictKind::Healthy, None, &[]);
    let changes = sim
        .events
        .iter()
        .filter(|l| matches!(l.event, Event::DiagnosisChanged { .. }))
        .count();
    assert_eq!(
        changes,
        0,
        "verdict changed without a fault\n{}",
        describe(&sim)
    );
    assert_no_isolation(&sim);
    assert!(
        sim.delivered > 20_000,
        "heartbeats flowed: {}",
        sim.delivered
    );
}

#[test]
fn row02_crash_node_failed_then_takeover_after_fence_deadline() {
    let sim = single(
        matrix(),
        SimFault::Crash { node: N2 },
        false,
        VerdictKind::NodeFailed,
        Component::Node(N2),
        500,
    );
    let t = takeovers(&sim);
    assert_eq!(t.len(), 1, "{t:?}");
    let (when, who, peer) = t[0];
    assert_eq!((who, peer), (N1, N2));
    let fence = sim.config.timing.fence_deadline;
    assert!(
        when >= at(T0) + fence && when <= at(T0 + 600) + fence,
        "takeover at {when}"
    );
    assert!(
        sim.events
            .iter()
            .any(|l| matches!(&l.event, Event::Alert(a) if a.text.contains("residual risk"))),
        "no residual-risk explanation without a fence hook"
    );
}

#[test]
fn row02_crash_heals_with_restart() {
    let mut sim = single(
        matrix(),
        SimFault::Crash { node: N2 },
        true,
        VerdictKind::NodeFailed,
        Component::Node(N2),
        500,
    );
    run_to(&mut sim, at(30_000));
    assert!(sim
        .events
        .iter()
        .any(|l| l.node == N1 && matches!(l.event, Event::HandBack { peer: N2, .. })));
}

#[test]
fn row03_freeze_node_failed_takeover_and_isolation_on_wake() {
    let mut sim = single(
        matrix(),
        SimFault::Freeze { node: N2 },
        true,
        VerdictKind::NodeFailed,
        Component::Node(N2),
        500,
    );
    run_to(&mut sim, at(30_000));
    let fence = sim.config.timing.fence_deadline;
    let t = takeovers(&sim);
    assert!(
        t.iter()
            .any(|&(w, who, p)| who == N1 && p == N2 && w <= at(T0 + 600) + fence),
        "{t:?}"
    );
    // On waking after more than fence_deadline, n2 isolates at once, then rejoins after heal.
    let iso = isolations(&sim);
    assert_eq!(iso, vec![(at(T1), N2)], "{}", describe(&sim));
    assert!(sim
        .first_event(N2, at(T1), |e| matches!(e, Event::Rejoined { .. }))
        .is_some());
}

#[test]
fn row03_short_freeze_is_no_takeover() {
    let schedule =
        Schedule::new().with(at(T0), Some(at(T0 + 2_000)), SimFault::Freeze { node: N2 });
    let mut sim = Sim::new(config(matrix(), schedule, 25));
    run_to(&mut sim, at(T0 + 500));
    assert_all(
        &sim,
        VerdictKind::NodeFailed,
        Some(Component::Node(N2)),
        &[N2],
    );
    run_to(&mut sim, at(25_000));
    assert_no_isolation(&sim);
    assert_all(&sim, VerdictKind::Healthy, None, &[]);
}

/// The whole host pauses (a VM stopped by its hypervisor, a machine-wide stall): every node
/// freezes at once, and on waking every peer has been silent for longer than the detection
/// time. That silence overlaps each node's own absence and proves nothing: no node may
/// conclude a failure, nobody isolates, and heartbeats resume.
#[test]
fn whole_host_pause_is_no_failure() {
    let pause = Some(at(T0 + 800));
    let schedule = Schedule::new()
        .with(at(T0), pause, SimFault::Freeze { node: N1 })
        .with(at(T0), pause, SimFault::Freeze { node: N2 });
    let mut sim = Sim::new(config(matrix(), schedule, 20));
    run_to(&mut sim, at(20_000));
    let verdicts: Vec<String> = sim
        .events
        .iter()
        .filter_map(|l| match &l.event {
            Event::DiagnosisChanged { diagnosis, .. } => {
                Some(format!("{:?}: {:?}", l.node, diagnosis.kind))
            }
            _ => None,
        })
        .collect();
    assert!(
        verdicts.is_empty(),
        "a verdict changed across a whole-host pause: {verdicts:?}\n{}",
        describe(&sim)
    );
    assert_no_isolation(&sim);
    assert_all(&sim, VerdictKind::Healthy, None, &[]);
}

#[test]
fn row04_nic_down() {
    let f = SimFault::Attachment {
        node: N2,
        network: A,
        mode: AttachmentMode::Down,
    };
    let sim = single(
        matrix(),
        f,
        true,
        VerdictKind::AttachmentFailed,
        Component::Attachment(N2, A),
        500,
    );
    assert_no_isolation(&sim);
}

#[test]
fn row05_nic_silent() {
    let f = SimFault::Attachment {
        node: N2,
        network: A,
        mode: AttachmentMode::Silent,
    };
    let sim = single(
        matrix(),
        f,
        true,
        VerdictKind::AttachmentFailed,
        Component::Attachment(N2, A),
        500,
    );
    assert_no_isolation(&sim);
}

#[test]
fn row06_hub_down() {
    let sim = single(
        matrix(),
        SimFault::HubDown { network: A },
        true,
        VerdictKind::HubFailed,
        Component::Hub(A),
        500,
    );
    assert_no_isolation(&sim);
}

#[test]
fn row07_upstream_down() {
    let f = SimFault::UpstreamDown { network: A };
    let sim = single(
        matrix(),
        f,
        true,
        VerdictKind::UpstreamFailed,
        Component::Upstream(A),
        1_000,
    );
    assert_no_isolation(&sim);
}

#[test]
fn row08_serial_cut() {
    let f = SimFault::SerialCut { a: N1, b: N2 };
    let sim = single(
        matrix(),
        f,
        true,
        VerdictKind::SerialFailed,
        Component::Serial(N1, N2),
        500,
    );
    assert_no_isolation(&sim);
}

fn cut_off(shape: Shape, victim: NodeId, heal: bool) -> Sim {
    let nets = shape.networks;
    let mut schedule = Schedule::new();
    for s in 0..nets {
        let f = SimFault::Attachment {
            node: victim,
            network: NetworkId(s as u16),
            mode: AttachmentMode::Down,
        };
        schedule = schedule.with(at(T0), heal.then(|| at(T1)), f);
    }
    let mut sim = Sim::new(config(shape, schedule, 30));
    run_to(&mut sim, at(T0 + 500));
    assert_all(
        &sim,
        VerdictKind::CutOff,
        Some(Component::Node(victim)),
        &[],
    );
    run_to(&mut sim, at(T0 + 1_000));
    // Agreed isolation within 1 s while the serial line survives.
    let iso = isolations(&sim);
    assert_eq!(
        iso.iter().map(|x| x.1).collect::<Vec<_>>(),
        vec![victim],
        "{}",
        describe(&sim)
    );
    let t = takeovers(&sim);
    assert_eq!(t.len(), 1, "{}", describe(&sim));
    assert_eq!(t[0].2, victim);
    assert!(t[0].0 <= at(T0 + 1_000));
    assert_eq!(sim.node(victim).unwrap().role(), Role::Isolated);
    sim
}

#[test]
fn row09_cut_off_agreed_over_serial() {
    let mut sim = cut_off(matrix(), N2, true);
    assert_healed(&mut sim, T1);
    assert!(sim
        .first_event(N2, at(T1), |e| matches!(e, Event::Rejoined { .. }))
        .is_some());
    assert!(sim
        .first_event(N1, at(T1), |e| matches!(
            e,
            Event::HandBack { peer: N2, .. }
        ))
        .is_some());
}

#[test]
fn row10_disk_eio() {
    let f = SimFault::Disk {
        node: N2,
        mode: DiskMode::Failing,
    };
    let sim = single(
        matrix(),
        f,
        true,
        VerdictKind::DiskFailed,
        Component::Disk(N2),
        3_000,
    );
    assert_no_isolation(&sim);
}

#[test]
fn row10_disk_eio_isolates_by_policy() {
    let f = SimFault::Disk {
        node: N2,
        mode: DiskMode::Failing,
    };
    let mut c = config(matrix(), Schedule::new().with(at(T0), None, f), 20);
    c.options.isolate_on_disk_failure = true;
    let mut sim = Sim::new(c);
    run_to(&mut sim, at(T0 + 3_000));
    assert_eq!(
        isolations(&sim).iter().map(|x| x.1).collect::<Vec<_>>(),
        vec![N2]
    );
    assert_eq!(
        takeovers(&sim)
            .iter()
            .map(|x| (x.1, x.2))
            .collect::<Vec<_>>(),
        vec![(N1, N2)]
    );
}

#[test]
fn row11_five_percent_loss_never_fails() {
    let schedule = Schedule::new().with(at(1_000), None, SimFault::Loss { permille: 50 });
    let mut sim = Sim::new(config(matrix(), schedule, 600));
    run_to(&mut sim, at(600_000));
    assert_no_isolation(&sim);
    let failures: Vec<String> = sim
        .events
        .iter()
        .filter_map(|l| match &l.event {
            Event::DiagnosisChanged { diagnosis, .. } if diagnosis.is_failure() => Some(format!(
                "{} {}: {} {:?}",
                l.at,
                l.node.0,
                diagnosis.kind.token(),
                diagnosis.subjects
            )),
            _ => None,
        })
        .collect();
    assert!(
        failures.is_empty(),
        "failure verdicts under 5 % loss: {failures:#?}"
    );
}

// ----- gray failures: loss is not failure; a dead path is still found --------------------

fn failure_verdicts(sim: &Sim, from: Instant) -> Vec<String> {
    sim.events
        .iter()
        .filter(|l| l.at >= from)
        .filter_map(|l| match &l.event {
            Event::DiagnosisChanged { diagnosis, .. } if diagnosis.is_failure() => Some(format!(
                "{} {}: {} {:?}",
                l.at,
                sim.topology.nodes[l.node.index()].name,
                diagnosis.kind.token(),
                diagnosis.subjects
            )),
            _ => None,
        })
        .collect()
}

fn lossy(node: NodeId, network: NetworkId, permille: u16) -> SimFault {
    SimFault::Attachment {
        node,
        network,
        mode: AttachmentMode::Lossy { permille },
    }
}

/// One lossy NIC for two minutes, on shapes from the fault matrix down to a single network
/// without serial line or references (where nothing but heartbeats tells loss from death):
/// no isolation, no takeover, and no failure verdict once the loss has been seen for a
/// moment ([`hadiag::sim::S6_ONSET_GRACE`]; before that a first burst of misses looks like a
/// dead NIC, see docs/diagnosis.md).
#[test]
fn lossy_nic_is_never_a_failure() {
    let one_net = |nodes| Shape {
        nodes,
        networks: 1,
        serial: SerialLayout::None,
        references: false,
    };
    let cases = [
        ("matrix, n2.A 20 %", matrix(), lossy(N2, A, 200)),
        ("matrix, n1.B 30 %", matrix(), lossy(N1, B, 300)),
        (
            "2 nodes, 1 network, n2.A 30 %",
            one_net(2),
            lossy(N2, A, 300),
        ),
        (
            "3 nodes, 1 network, n3.A 28 %",
            one_net(3),
            lossy(N3, A, 280),
        ),
        ("3 nodes matrix, n2.A 25 %", three(), lossy(N2, A, 250)),
    ];
    for (what, shape, fault) in cases {
        let schedule = Schedule::new().with(at(T0), None, fault);
        let mut sim = Sim::new(config(shape, schedule, 130));
        run_to(&mut sim, at(130_000));
        assert_no_isolation(&sim);
        let grace = at(T0) + hadiag::sim::S6_ONSET_GRACE;
        let late = failure_verdicts(&sim, grace);
        assert!(
            late.is_empty(),
            "{what}: failure verdicts under loss: {late:#?}"
        );
        println!(
            "{what}: {} failure verdict(s) at the onset",
            failure_verdicts(&sim, at(0)).len()
        );
    }
}

/// A NIC that dies after a period of loss is still reported, within the silence cap.
#[test]
fn dead_nic_after_loss_is_still_reported() {
    for permille in [0u16, 50, 200, 500] {
        let death = T0 + 30_000;
        let mut schedule = Schedule::new().with(
            at(death),
            None,
            SimFault::Attachment {
                node: N2,
                network: A,
                mode: AttachmentMode::Silent,
            },
        );
        if permille > 0 {
            schedule = schedule.with(at(T0), Some(at(death)), lossy(N2, A, permille));
        }
        let mut sim = Sim::new(config(matrix(), schedule, 50));
        let cap = sim.config.timing.silence_cap();
        let deadline = at(death) + cap + Duration::from_secs(1);
        run_to(&mut sim, deadline);
        assert_all(
            &sim,
            VerdictKind::AttachmentFailed,
            Some(Component::Attachment(N2, A)),
            &[],
        );
        assert_no_isolation(&sim);
    }
}

// ----- the same faults on three nodes ----------------------------------------------------

fn three() -> Shape {
    Shape::matrix().with_nodes(3)
}

#[test]
fn three_nodes_crash() {
    let sim = single(
        three(),
        SimFault::Crash { node: N3 },
        true,
        VerdictKind::NodeFailed,
        Component::Node(N3),
        500,
    );
    let t = takeovers(&sim);
    assert_eq!(
        t.iter().map(|x| (x.1, x.2)).collect::<Vec<_>>(),
        vec![(N1, N3)],
        "exactly one survivor takes over"
    );
}

#[test]
fn three_nodes_nic_down() {
    let f = SimFault::Attachment {
        node: N3,
        network: B,
        mode: AttachmentMode::Down,
    };
    let sim = single(
        three(),
        f,
        true,
        VerdictKind::AttachmentFailed,
        Component::Attachment(N3, B),
        500,
    );
    assert_no_isolation(&sim);
}

#[test]
fn three_nodes_hub_down() {
    let sim = single(
        three(),
        SimFault::HubDown { network: B },
        true,
        VerdictKind::HubFailed,
        Component::Hub(B),
        500,
    );
    assert_no_isolation(&sim);
}

#[test]
fn three_nodes_upstream_down() {
    let f = SimFault::UpstreamDown { network: B };
    let sim = single(
        three(),
        f,
        true,
        VerdictKind::UpstreamFailed,
        Component::Upstream(B),
        1_000,
    );
    assert_no_isolation(&sim);
}

#[test]
fn three_nodes_serial_cut() {
    let f = SimFault::SerialCut { a: N2, b: N3 };
    let sim = single(
        three(),
        f,
        true,
        VerdictKind::SerialFailed,
        Component::Serial(N2, N3),
        500,
    );
    assert_no_isolation(&sim);
}

#[test]
fn three_nodes_disk_eio() {
    let f = SimFault::Disk {
        node: N3,
        mode: DiskMode::Failing,
    };
    let sim = single(
        three(),
        f,
        true,
        VerdictKind::DiskFailed,
        Component::Disk(N3),
        3_000,
    );
    assert_no_isolation(&sim);
}

#[test]
fn three_nodes_cut_off_agreed() {
    let mut sim = cut_off(three(), N3, true);
    assert_healed(&mut sim, T1);
}

#[test]
fn three_nodes_cut_off_without_serial_minority_isolates() {
    let shape = three().with_serial(SerialLayout::None);
    let schedule = Schedule::new()
        .with(
            at(T0),
            None,
            SimFault::Attachment {
                node: N3,
                network: A,
                mode: AttachmentMode::Down,
            },
        )
        .with(
            at(T0),
            None,
            SimFault::Attachment {
                node: N3,
                network: B,
                mode: AttachmentMode::Down,
            },
        );
    let mut sim = Sim::new(config(shape, schedule, 20));
    run_to(&mut sim, at(T0 + 500));
    assert_all(
        &sim,
        VerdictKind::NodeFailed,
        Some(Component::Node(N3)),
        &[N3],
    );
    run_to(&mut sim, at(20_000));
    let self_fence = sim.config.timing.self_fence_after;
    let iso = isolations(&sim);
    assert_eq!(iso.len(), 1);
    assert_eq!(iso[0].1, N3);
    assert!(iso[0].0 <= at(T0 + 600) + self_fence, "{iso:?}");
    let t = takeovers(&sim);
    assert_eq!(
        t.iter().map(|x| (x.1, x.2)).collect::<Vec<_>>(),
        vec![(N1, N3)]
    );
}

// ----- one-way failure -------------------------------------------------------------------

#[test]
fn tx_only_nic() {
    let f = SimFault::Attachment {
        node: N2,
        network: A,
        mode: AttachmentMode::TxOnly,
    };
    let sim = single(
        matrix(),
        f,
        true,
        VerdictKind::AttachmentFailed,
        Component::Attachment(N2, A),
        500,
    );
    assert_no_isolation(&sim);
}

#[test]
fn rx_only_nic_three_nodes() {
    let f = SimFault::Attachment {
        node: N2,
        network: A,
        mode: AttachmentMode::RxOnly,
    };
    let sim = single(
        three(),
        f,
        true,
        VerdictKind::AttachmentFailed,
        Component::Attachment(N2, A),
        500,
    );
    assert_no_isolation(&sim);
}

// ----- ambiguous double fault ------------------------------------------------------------

#[test]
fn double_fault_is_ambiguous_with_hint() {
    // Two nodes, A and B, no serial: n2's NIC on A and n1's NIC on B go silent. n1 then
    // hears n2 nowhere and reaches only R_A; "n2 failed + n1.B" and "n2.A + n1.B" are
    // equally small, and only another path (a serial line) could tell them apart.
    let shape = matrix().with_serial(SerialLayout::None);
    let schedule = Schedule::new()
        .with(
            at(T0),
            None,
            SimFault::Attachment {
                node: N2,
                network: A,
                mode: AttachmentMode::Silent,
            },
        )
        .with(
            at(T0),
            None,
            SimFault::Attachment {
                node: N1,
                network: B,
                mode: AttachmentMode::Silent,
            },
        );
    let mut sim = Sim::new(config(shape, schedule, 14));
    run_to(&mut sim, at(T0 + 1_000));
    for id in [N1, N2] {
        let d = sim.node(id).unwrap().diagnosis();
        assert!(
            d.ambiguous,
            "{} not ambiguous:\n{}",
            id.0,
            d.render(&sim.topology)
        );
        assert!(
            d.settle_hint.is_some(),
            "no disambiguation hint:\n{}",
            d.render(&sim.topology)
        );
    }
}

// ----- total partition without serial: the fence-deadline path ---------------------------

fn symmetric_partition(fence_hook: bool) -> Sim {
    // n1 keeps only A, n2 keeps only B: both reach a reference, neither hears the other.
    let shape = matrix().with_serial(SerialLayout::None);
    let schedule = Schedule::new()
        .with(
            at(T0),
            None,
            SimFault::Attachment {
                node: N1,
                network: B,
                mode: AttachmentMode::Down,
            },
        )
        .with(
            at(T0),
            None,
            SimFault::Attachment {
                node: N2,
                network: A,
                mode: AttachmentMode::Down,
            },
        );
    let mut c = config(shape, schedule, 25);
    c.options.fence_hook = fence_hook;
    let mut sim = Sim::new(c);
    run_to(&mut sim, at(25_000));
    sim
}

#[test]
fn partition_without_serial_no_fence_hook_takes_over_with_residual_risk() {
    let sim = symmetric_partition(false);
    let fence = sim.config.timing.fence_deadline;
    let t = takeovers(&sim);
    assert_eq!(
        t.len(),
        2,
        "both sides take over (the residual risk)\n{}",
        describe(&sim)
    );
    for (when, _, _) in &t {
        assert!(
            *when >= at(T0) + fence && *when <= at(T0 + 600) + fence,
            "{when}"
        );
    }
    let risks = sim
        .events
        .iter()
        .filter(|l| matches!(&l.event, Event::Alert(a) if a.text.contains("residual risk")))
        .count();
    assert_eq!(risks, 2);
    assert!(isolations(&sim).is_empty());
}

#[test]
fn partition_without_serial_fence_hook_one_survivor() {
    let sim = symmetric_partition(true);
    let fence = sim.config.timing.fence_deadline;
    let fences: Vec<(Instant, NodeId)> = sim
        .events
        .iter()
        .filter(|l| matches!(l.event, Event::Fence { .. }))
        .map(|l| (l.at, l.node))
        .collect();
    assert_eq!(
        fences.len(),
        1,
        "only the higher-priority node fences\n{}",
        describe(&sim)
    );
    assert_eq!(fences[0].1, N1);
    assert!(fences[0].0 >= at(T0) + fence && fences[0].0 <= at(T0 + 600) + fence);
    assert!(sim.nodes[N2.index()].fenced);
    let t = takeovers(&sim);
    assert_eq!(
        t.iter().map(|x| (x.1, x.2)).collect::<Vec<_>>(),
        vec![(N1, N2)]
    );
    assert!(
        t[0].0 > fences[0].0,
        "takeover only after the fence succeeded"
    );
}

#[test]
fn partition_without_serial_fence_fails_no_takeover() {
    let shape = matrix().with_serial(SerialLayout::None);
    let schedule = Schedule::new()
        .with(
            at(T0),
            None,
            SimFault::Attachment {
                node: N1,
                network: B,
                mode: AttachmentMode::Down,
            },
        )
        .with(
            at(T0),
            None,
            SimFault::Attachment {
                node: N2,
                network: A,
                mode: AttachmentMode::Down,
            },
        );
    let mut c = config(shape, schedule, 25);
    c.options.fence_hook = true;
    c.fence_succeeds = false;
    c.check = false; // S1 cannot hold when every fence fails; this test checks the refusal
    let mut sim = Sim::new(c);
    run_to(&mut sim, at(25_000));
    assert!(
        takeovers(&sim).is_empty(),
        "took over without a successful fence\n{}",
        describe(&sim)
    );
    assert!(
        sim.events
            .iter()
            .filter(|l| matches!(l.event, Event::Fence { .. }))
            .count()
            >= 2,
        "fence retried"
    );
}

#[test]
fn cut_off_without_serial_self_fences_then_peer_takes_over() {
    // n2 loses both NICs and there is no serial line: n2 reaches nothing and isolates after
    // self_fence_after (rule 2); n1 takes over after fence_deadline (rule 3).
    let shape = matrix().with_serial(SerialLayout::None);
    let schedule = Schedule::new()
        .with(
            at(T0),
            None,
            SimFault::Attachment {
                node: N2,
                network: A,
                mode: AttachmentMode::Down,
            },
        )
        .with(
            at(T0),
            None,
            SimFault::Attachment {
                node: N2,
                network: B,
                mode: AttachmentMode::Down,
            },
        );
    let mut sim = Sim::new(config(shape, schedule, 25));
    run_to(&mut sim, at(25_000));
    let t = &sim.config.timing;
    let iso = isolations(&sim);
    assert_eq!(iso.len(), 1);
    assert_eq!(iso[0].1, N2);
    assert!(iso[0].0 <= at(T0 + 600) + t.self_fence_after);
    let tk = takeovers(&sim);
    assert_eq!(
        tk.iter().map(|x| (x.1, x.2)).collect::<Vec<_>>(),
        vec![(N1, N2)]
    );
    assert!(tk[0].0 >= at(T0) + t.fence_deadline && tk[0].0 > iso[0].0);
}

// ----- planned maintenance ---------------------------------------------------------------

#[test]
fn quiesced_node_going_silent_is_maintenance() {
    let schedule = Schedule::new().with(at(T0), Some(at(T1)), SimFault::Crash { node: N2 });
    let mut c = config(matrix(), schedule, 30);
    // S4 expects "node failed" for a crash; an announced crash is maintenance instead, which
    // this test asserts itself.
    c.check = false;
    let mut sim = Sim::new(c);
    run_to(&mut sim, at(T0 - 2_000));
    sim.with_node(N2, |n, now| n.quiesce(now));
    run_to(&mut sim, at(T1 - 1));
    assert_no_isolation(&sim);
    let d = sim.node(N1).unwrap().diagnosis();
    assert!(
        !d.is_failure(),
        "maintenance is not a failure: {}",
        d.render(&sim.topology)
    );
    assert!(sim.node(N1).unwrap().incident().is_none());
}

// ----- determinism -------------------------------------------------------------------------

#[test]
fn same_schedule_same_trace() {
    let mk = || {
        let schedule = Schedule::new()
            .with(
                at(T0),
                Some(at(T1)),
                SimFault::Reorder {
                    jitter: Duration::from_millis(30),
                },
            )
            .with(at(T0), Some(at(T1)), SimFault::Loss { permille: 30 })
            .with(
                at(12_000),
                Some(at(15_000)),
                SimFault::HubDown { network: A },
            );
        let mut sim = Sim::new(config(three(), schedule, 25));
        run_to(&mut sim, at(25_000));
        sim.trace.value()
    };
    assert_eq!(mk(), mk());
}

#[test]
fn codec_roundtrip_run_matches_plain_run() {
    let mk = |codec: bool| {
        let mut c = config(
            matrix(),
            Schedule::new().with(at(T0), Some(at(T1)), SimFault::HubDown { network: A }),
            25,
        );
        c.codec = codec;
        let mut sim = Sim::new(c);
        run_to(&mut sim, at(25_000));
        let errors = sim.codec.as_ref().map_or(0, |c| c.errors);
        assert_eq!(
            errors,
            0,
            "codec errors: {:?}",
            sim.codec.as_ref().and_then(|c| c.last_error.clone())
        );
        sim.trace.value()
    };
    assert_eq!(mk(false), mk(true), "the wire codec must be transparent");
}

// ----- regressions: seeds the sweep found ------------------------------------------------

/// One seed the sweep found, written out: shape, fence policy and schedule exactly as
/// `config_for_seed` drew them (same simulation seed, so the same loss draws), with the
/// default timers of the sweep at the time. Each must now run clean under S1–S5.
struct Regression {
    seed: u64,
    what: &'static str,
    shape: Shape,
    faults: Vec<(u64, Option<u64>, SimFault)>,
}

const fn att(node: u16, network: u16, mode: AttachmentMode) -> SimFault {
    SimFault::Attachment {
        node: NodeId(node),
        network: NetworkId(network),
        mode,
    }
}

fn one_net(nodes: usize, serial: SerialLayout, references: bool) -> Shape {
    Shape {
        nodes,
        networks: 1,
        serial,
        references,
    }
}

fn regressions() -> Vec<Regression> {
    use AttachmentMode::*;
    vec![
        Regression {
            seed: 3022,
            what: "S1: hub A flapping + n1.A rx-only; n1 and n2 both active",
            shape: one_net(3, SerialLayout::None, true),
            faults: vec![
                (
                    1_936,
                    None,
                    SimFault::Flap {
                        inner: Box::new(SimFault::HubDown { network: A }),
                        period: Duration::from_millis(1_205),
                    },
                ),
                (4_791, None, att(0, 0, RxOnly)),
            ],
        },
        Regression {
            seed: 11432,
            what: "S1': serial ring, n2 held n1's services while n1 was active and reachable",
            shape: one_net(3, SerialLayout::Ring, true),
            faults: vec![
                (5_841, Some(7_804), att(0, 0, Silent)),
                (7_158, None, att(1, 0, RxOnly)),
                (14_840, None, SimFault::Loss { permille: 29 }),
            ],
        },
        Regression {
            seed: 4702,
            what: "S2: 2 nodes, n1.A lossy 24.8 %: tie-broken cut-off isolated n1",
            shape: one_net(2, SerialLayout::None, false),
            faults: vec![(6_213, None, att(0, 0, Lossy { permille: 248 }))],
        },
        Regression {
            seed: 22207,
            what: "S2: 2 nodes, n1.A lossy 29.5 %",
            shape: one_net(2, SerialLayout::None, false),
            faults: vec![
                (1_299, Some(8_047), att(0, 0, Lossy { permille: 295 })),
                (11_943, None, att(0, 0, TxOnly)),
            ],
        },
        Regression {
            seed: 32865,
            what: "S2: 2 nodes + serial, loss 0.8 % + n2.A lossy 26.5 %",
            shape: one_net(2, SerialLayout::Ring, false),
            faults: vec![
                (1_583, Some(8_998), SimFault::Loss { permille: 8 }),
                (6_495, Some(14_053), att(1, 0, Lossy { permille: 265 })),
                (15_207, Some(16_688), att(0, 0, TxOnly)),
            ],
        },
        Regression {
            seed: 6238,
            what: "S2: 3 nodes, 1 network, n3.A lossy 28 % flapping: n3 isolated as cut off",
            shape: one_net(3, SerialLayout::FirstPair, false),
            faults: vec![
                (
                    2_158,
                    Some(5_210),
                    SimFault::Flap {
                        inner: Box::new(att(2, 0, Lossy { permille: 280 })),
                        period: Duration::from_millis(1_778),
                    },
                ),
                (11_328, None, SimFault::UpstreamDown { network: A }),
            ],
        },
        Regression {
            seed: 16075,
            what: "S2: 3 nodes, 1 network, n2.A lossy 28.3 %: n2 isolated as cut off",
            shape: one_net(3, SerialLayout::FirstPair, false),
            faults: vec![
                (6_637, Some(8_489), att(1, 0, Lossy { permille: 283 })),
                (7_932, Some(9_047), SimFault::Crash { node: N1 }),
                (15_491, Some(22_993), SimFault::Freeze { node: N2 }),
            ],
        },
        Regression {
            seed: 39841,
            what: "S2: 3 nodes, 1 network, n1.A lossy 26.9 %: n1 isolated as cut off",
            shape: one_net(3, SerialLayout::None, false),
            faults: vec![
                (2_389, None, att(0, 0, Lossy { permille: 269 })),
                (13_416, None, att(2, 0, TxOnly)),
            ],
        },
    ]
}

#[test]
fn sweep_regressions_run_clean() {
    let mut failures = Vec::new();
    for r in regressions() {
        let mut schedule = Schedule::new();
        for (start, end, fault) in r.faults {
            schedule = schedule.with(at(start), end.map(at), fault);
        }
        let mut c = SimConfig::new(r.shape.clone());
        c.seed = r.seed;
        c.horizon = Duration::from_secs(20);
        c.schedule = schedule;
        let mut sim = Sim::new(c);
        if let Err(v) = sim.run() {
            failures.push(format!(
                "seed {} ({}): {v}\n{}",
                r.seed,
                r.what,
                describe(&sim)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ----- hard cases: non-transitive partitions, restarts with durable state -----------------

fn down(node: NodeId, network: NetworkId) -> SimFault {
    SimFault::Attachment {
        node,
        network,
        mode: AttachmentMode::Down,
    }
}

#[test]
fn non_transitive_partition_takes_over_and_isolates_nobody() {
    // n1 loses B, n3 loses A, no serial: n1 and n3 share no working network, n2 hears both.
    // Each of n1 and n3 counts itself in a majority with n2, but n2's view still hears the
    // other: death needs transitive evidence.
    let shape = three().with_serial(SerialLayout::None);
    let schedule = Schedule::new()
        .with(at(T0), None, down(N1, B))
        .with(at(T0), None, down(N3, A));
    let mut sim = Sim::new(config(shape, schedule, 30));
    run_to(&mut sim, at(30_000));
    assert_no_isolation(&sim);
}

#[test]
fn restarted_holder_still_holds() {
    // n2 crashes for good; n1 takes over after fence_deadline; n1 then crashes and restarts
    // (wall clock stepped back): it still holds n2's services.
    let schedule = Schedule::new()
        .with(at(T0), None, SimFault::Crash { node: N2 })
        .with(
            at(T0 + 8_000),
            Some(at(T0 + 9_000)),
            SimFault::Crash { node: N1 },
        );
    let mut sim = Sim::new(config(matrix(), schedule, 25));
    run_to(&mut sim, at(T0 + 7_900));
    assert!(sim.node(N1).unwrap().held_peers().contains_key(&N2));
    let before = sim.node(N1).unwrap().incarnation();
    run_to(&mut sim, at(T0 + 9_500));
    let n1 = sim.node(N1).unwrap();
    assert!(
        n1.incarnation() > before,
        "incarnation must grow although the wall clock stepped back"
    );
    assert!(
        n1.held_peers().contains_key(&N2),
        "a restarted holder still holds\n{}",
        describe(&sim)
    );
    run_to(&mut sim, at(25_000));
}

#[test]
fn restarted_isolated_node_stays_isolated() {
    // n2 loses both NICs (serial up): agreed cut-off, n2 isolates, n1 takes over. n2 then
    // crashes and restarts while still cut off: it comes back isolated, never active.
    let schedule = Schedule::new()
        .with(at(T0), Some(at(T0 + 12_000)), down(N2, A))
        .with(at(T0), Some(at(T0 + 12_000)), down(N2, B))
        .with(
            at(T0 + 4_000),
            Some(at(T0 + 5_000)),
            SimFault::Crash { node: N2 },
        );
    let mut sim = Sim::new(config(matrix(), schedule, 40));
    run_to(&mut sim, at(T0 + 3_900));
    assert_eq!(sim.node(N2).unwrap().role(), Role::Isolated);
    for t in (T0 + 5_000..T0 + 12_000).step_by(100) {
        run_to(&mut sim, at(t));
        if let Some(n) = sim.node(N2) {
            assert_eq!(
                n.role(),
                Role::Isolated,
                "at {t}: restarted isolated node must stay isolated\n{}",
                describe(&sim)
            );
        }
    }
    // After the heal: n1 hands back, n2 rejoins, one holder throughout (S5 is checked).
    run_to(&mut sim, at(40_000));
    assert_eq!(
        sim.node(N2).unwrap().role(),
        Role::Active,
        "{}",
        describe(&sim)
    );
    assert!(sim.node(N1).unwrap().held_peers().is_empty());
}

#[test]
fn freeze_longer_than_fence_deadline_then_thaw_one_holder() {
    // n2 frozen for 8 s (> fence_deadline) and thawed, with and without a serial line: n1
    // takes over, n2 isolates on waking (it learns of the takeover), n1 hands back once n2 is
    // ready, n2 rejoins. S5 (one holder) is checked after every step.
    for serial in [SerialLayout::Ring, SerialLayout::None] {
        let schedule =
            Schedule::new().with(at(T0), Some(at(T0 + 8_000)), SimFault::Freeze { node: N2 });
        let mut sim = Sim::new(config(matrix().with_serial(serial), schedule, 40));
        run_to(&mut sim, at(T0 + 7_900));
        assert!(
            sim.node(N1).unwrap().held_peers().contains_key(&N2),
            "{serial:?}: n1 took over the frozen n2\n{}",
            describe(&sim)
        );
        run_to(&mut sim, at(T0 + 8_100));
        assert_eq!(
            sim.node(N2).unwrap().role(),
            Role::Isolated,
            "{serial:?}: thawed n2 must not resume\n{}",
            describe(&sim)
        );
        run_to(&mut sim, at(40_000));
        assert_eq!(
            sim.node(N2).unwrap().role(),
            Role::Active,
            "{}",
            describe(&sim)
        );
        assert!(
            sim.node(N1).unwrap().held_peers().is_empty(),
            "{}",
            describe(&sim)
        );
    }
}
