use super::testutil::*;
use super::*;
use crate::core::diagnosis::{Component, FaultMode, VerdictKind};
use crate::core::evidence::{Stale, StaleWhat};
use crate::core::time::Instant;
use crate::core::topology::{NodeId, Topology};
use std::time::Duration;

const T: Instant = Instant::from_millis(21_003_412);

fn diagnose(t: &Topology, faults: &[Fault], me: u16) -> Diagnosis {
    let w = world(t, faults);
    let d = classify(t, &w.cluster_view(n(me), T));
    // Determinism: the same input gives the same output.
    assert_eq!(d, classify(t, &w.cluster_view(n(me), T)));
    d
}

/// The verdict from every live node's viewpoint.
fn check_all(
    t: &Topology,
    faults: &[Fault],
    kind: VerdictKind,
    subjects: &[Component],
) -> Vec<Diagnosis> {
    let mut out = Vec::new();
    for me in t.node_ids() {
        if faults.iter().any(|f| f.component == Component::Node(me)) {
            continue;
        }
        let d = diagnose(t, faults, me.0);
        assert_eq!(
            (d.kind, d.subjects.as_slice()),
            (kind, subjects),
            "viewpoint {}:\n{}",
            me.0,
            d.render(t)
        );
        assert!(!d.ambiguous, "viewpoint {}:\n{}", me.0, d.render(t));
        out.push(d);
    }
    out
}

fn two() -> Topology {
    topo(2, &["A", "B"], true, true)
}

#[test]
fn healthy_from_both_sides() {
    let t = two();
    for d in check_all(&t, &[], VerdictKind::Healthy, &[]) {
        assert!(d.faults.is_empty() && d.support.is_empty() && d.rivals.is_empty());
    }
}

#[test]
fn node_failed() {
    let t = two();
    let ds = check_all(
        &t,
        &[node(1)],
        VerdictKind::NodeFailed,
        &[Component::Node(n(1))],
    );
    let text = ds[0].render(&t);
    assert!(text.contains("node n2 failed"), "{text}");
    assert!(
        text.contains("n1 does not hear n2 on the serial line"),
        "{text}"
    );
}

#[test]
fn peer_attachment_down_and_silent() {
    let t = two();
    for mode in [FaultMode::Down, FaultMode::Silent] {
        let ds = check_all(
            &t,
            &[att(1, 0, mode)],
            VerdictKind::AttachmentFailed,
            &[Component::Attachment(n(1), s(0))],
        );
        for d in ds {
            assert_eq!(d.faults, vec![att(1, 0, mode)]);
        }
    }
}

#[test]
fn my_attachment_failed_with_hub_ruled_out() {
    let t = two();
    let ds = check_all(
        &t,
        &[att(0, 0, FaultMode::Silent)],
        VerdictKind::AttachmentFailed,
        &[Component::Attachment(n(0), s(0))],
    );
    for d in &ds {
        let hub_rival = d
            .rivals
            .iter()
            .find(|r| r.faults == vec![hub(0)])
            .expect("hub A is a rival");
        let by = hub_rival
            .ruled_out_by
            .as_ref()
            .expect("ruled out by an observation");
        assert_eq!(by.source, n(1));
        assert!(
            hub_rival
                .reason
                .contains("n2 still reaches 198.51.100.250 via A"),
            "{}",
            hub_rival.reason
        );
    }
    let text = ds[0].render(&t);
    assert!(
        text.contains(
            "hub A down ruled out: n2 still reaches 198.51.100.250 via A (at 21003.412s, from n2)"
        ),
        "{text}"
    );
}

#[test]
fn hub_failed() {
    let t = two();
    check_all(
        &t,
        &[hub(0)],
        VerdictKind::HubFailed,
        &[Component::Hub(s(0))],
    );
    let mut w = world(&t, &[hub(0)]);
    w.hub_drops_carrier = true;
    let d = classify(&t, &w.cluster_view(n(0), T));
    assert_eq!(d.summary().subjects, vec![Component::Hub(s(0))]);
}

#[test]
fn upstream_failed() {
    let t = two();
    let ds = check_all(
        &t,
        &[upstream(0)],
        VerdictKind::UpstreamFailed,
        &[Component::Upstream(s(0))],
    );
    assert!(ds[0].render(&t).contains("nobody isolates"));
}

#[test]
fn cut_off_agreed_over_serial() {
    let t = two();
    for mode in [FaultMode::Down, FaultMode::Silent] {
        let ds = check_all(
            &t,
            &[att(1, 0, mode), att(1, 1, mode)],
            VerdictKind::CutOff,
            &[Component::Node(n(1))],
        );
        for d in &ds {
            assert_eq!(d.cut_off_node(), Some(n(1)));
            assert!(
                d.support.iter().any(|s| s.text.contains("serial")),
                "{}",
                d.render(&t)
            );
            // The smaller explanation, "n2 crashed", is the first rival, and the serial line
            // is what rules it out.
            let node = d
                .rivals
                .iter()
                .find(|r| {
                    r.faults
                        .iter()
                        .any(|f| f.component == Component::Node(n(1)))
                })
                .unwrap_or_else(|| panic!("node n2 is no rival:\n{}", d.render(&t)));
            assert!(
                node.ruled_out_by
                    .as_ref()
                    .is_some_and(|s| s.text.contains("serial")),
                "{}",
                d.render(&t)
            );
        }
    }
}

#[test]
fn serial_failed_says_capacity_reduced() {
    let t = two();
    let ds = check_all(
        &t,
        &[serial(0, 1)],
        VerdictKind::SerialFailed,
        &[Component::Serial(n(0), n(1))],
    );
    assert!(ds[0].render(&t).contains("diagnostic capacity reduced"));
}

#[test]
fn one_way_attachments() {
    let t = two();
    for mode in [FaultMode::TxOnly, FaultMode::RxOnly] {
        let ds = check_all(
            &t,
            &[att(1, 0, mode)],
            VerdictKind::AttachmentFailed,
            &[Component::Attachment(n(1), s(0))],
        );
        assert_eq!(ds[0].faults, vec![att(1, 0, mode)]);
    }
}

#[test]
fn disks() {
    let t = two();
    check_all(
        &t,
        &[disk(1, FaultMode::Failing)],
        VerdictKind::DiskFailed,
        &[Component::Disk(n(1))],
    );
    check_all(
        &t,
        &[disk(1, FaultMode::Hung)],
        VerdictKind::DiskFailed,
        &[Component::Disk(n(1))],
    );
    let ds = check_all(
        &t,
        &[disk(1, FaultMode::Slow)],
        VerdictKind::Degraded,
        &[Component::Disk(n(1))],
    );
    assert!(ds[0].faults.is_empty());
}

#[test]
fn lossy_is_degraded_never_failed() {
    let t = two();
    let lossy = Fault {
        component: Component::Attachment(n(1), s(0)),
        mode: FaultMode::Lossy,
    };
    // With two nodes, either NIC or the hub may be lossy; a third node separates them.
    for me in 0..2 {
        let d = diagnose(&t, &[lossy], me);
        assert_eq!(d.kind, VerdictKind::Degraded);
        assert!(!d.is_failure() && d.faults.is_empty());
        // Not separable: both NICs are named (the hub is less likely by the priors) and the
        // verdict says so, rather than one NIC picked by node order.
        assert!(d.ambiguous, "{}", d.render(&t));
        for c in [
            Component::Attachment(n(0), s(0)),
            Component::Attachment(n(1), s(0)),
        ] {
            assert!(d.subjects.contains(&c), "{c:?}: {}", d.render(&t));
        }
        assert!(
            crate::core::classify::types::headline(&t, &d).contains("cannot tell which"),
            "{}",
            d.render(&t)
        );
    }
    let t3 = topo(3, &["A", "B"], true, true);
    for d in check_all(
        &t3,
        &[lossy],
        VerdictKind::Degraded,
        &[Component::Attachment(n(1), s(0))],
    ) {
        assert!(
            !d.ambiguous,
            "separable with three nodes: {}",
            d.render(&t3)
        );
    }
    // Loss everywhere: degraded, never failed.
    let all: Vec<Fault> = t3
        .node_ids()
        .flat_map(|a| {
            t3.network_ids().map(move |net| Fault {
                component: Component::Attachment(a, net),
                mode: FaultMode::Lossy,
            })
        })
        .collect();
    for me in 0..3 {
        let d = diagnose(&t3, &all, me);
        assert_eq!(d.kind, VerdictKind::Degraded, "{}", d.render(&t3));
    }
}

#[test]
fn underobserved_is_ambiguous_with_hint() {
    // 2 nodes, one network, no references, no serial: a silent peer is its crash, its NIC,
    // my NIC or the hub.
    let t = topo(2, &["A"], false, false);
    let d = diagnose(&t, &[node(1)], 0);
    assert!(d.ambiguous, "{}", d.render(&t));
    // By the priors a NIC is blamed (on equal priors the lower id: n1's own, so n1, with
    // one network only, calls itself cut off — ambiguously; acting on it is the node's call).
    assert_eq!(
        (d.kind, d.subjects.clone()),
        (VerdictKind::CutOff, vec![Component::Node(n(0))])
    );
    let alts: Vec<_> = d
        .alternatives
        .iter()
        .flat_map(|a| a.subjects.clone())
        .collect();
    assert!(alts.contains(&Component::Node(n(1))));
    assert!(alts.contains(&Component::Hub(s(0))));
    let hint = d.settle_hint.clone().expect("hint");
    assert!(hint.contains("a serial line n1–n2"), "{hint}");
    assert!(
        hint.contains("third node on A") || hint.contains("reference target"),
        "{hint}"
    );
}

#[test]
fn no_serial_node_failure_notes_residual_risk() {
    let t = topo(2, &["A", "B"], true, false);
    let d = diagnose(&t, &[node(1)], 0);
    assert_eq!(d.kind, VerdictKind::NodeFailed);
    assert!(
        d.rivals
            .iter()
            .any(|r| r.faults.len() == 2 && r.reason.contains("consistent, but needs 2")),
        "{}",
        d.render(&t)
    );
    assert!(d.notes.iter().any(|n| n.contains("no serial line")));
}

#[test]
fn isolated_self_without_serial_prefers_own_cut_off() {
    let t = topo(2, &["A", "B"], true, false);
    let d = diagnose(
        &t,
        &[att(0, 0, FaultMode::Silent), att(0, 1, FaultMode::Silent)],
        0,
    );
    assert_eq!(
        (d.kind, d.subjects.clone()),
        (VerdictKind::CutOff, vec![Component::Node(n(0))]),
        "{}",
        d.render(&t)
    );
}

#[test]
fn three_nodes_are_sharper() {
    let t = topo(3, &["A", "B"], false, false);
    // Without references or serial, a third observer still tells NIC, hub and node apart.
    check_all(
        &t,
        &[node(2)],
        VerdictKind::NodeFailed,
        &[Component::Node(n(2))],
    );
    check_all(
        &t,
        &[att(1, 0, FaultMode::Silent)],
        VerdictKind::AttachmentFailed,
        &[Component::Attachment(n(1), s(0))],
    );
    check_all(
        &t,
        &[hub(1)],
        VerdictKind::HubFailed,
        &[Component::Hub(s(1))],
    );
    // Cut off without serial: the others cannot tell it from a crash; n3 itself sees nothing
    // and, by the priors, blames its own NICs (ambiguous with both hubs).
    let cut = [att(2, 0, FaultMode::Down), att(2, 1, FaultMode::Down)];
    check_all_from(
        &t,
        &cut,
        VerdictKind::NodeFailed,
        &[Component::Node(n(2))],
        &[0, 1],
    );
    let d = diagnose(&t, &cut, 2);
    assert_eq!(
        (d.kind, d.subjects.clone(), d.ambiguous),
        (VerdictKind::CutOff, vec![Component::Node(n(2))], true)
    );
    let t = topo(3, &["A", "B"], true, true);
    check_all(
        &t,
        &[upstream(1)],
        VerdictKind::UpstreamFailed,
        &[Component::Upstream(s(1))],
    );
    check_all(
        &t,
        &[att(0, 0, FaultMode::Down), att(0, 1, FaultMode::Down)],
        VerdictKind::CutOff,
        &[Component::Node(n(0))],
    );
    check_all(
        &t,
        &[serial(1, 2)],
        VerdictKind::SerialFailed,
        &[Component::Serial(n(1), n(2))],
    );
}

#[test]
fn double_fault_is_multiple() {
    let t = two();
    check_all(
        &t,
        &[hub(0), serial(0, 1)],
        VerdictKind::MultipleFaults,
        &[Component::Hub(s(0)), Component::Serial(n(0), n(1))],
    );
    check_all(
        &t,
        &[hub(0), disk(0, FaultMode::Failing)],
        VerdictKind::MultipleFaults,
        &[Component::Hub(s(0)), Component::Disk(n(0))],
    );
}

#[test]
fn stale_views_are_ignored_and_said() {
    let t = two();
    let w = world(&t, &[node(1)]);
    let mut cv = w.cluster_view(n(0), T);
    cv.stale.push(Stale {
        source: n(1),
        what: StaleWhat::View,
        last: T - Duration::from_secs(2),
        age: Duration::from_secs(2),
    });
    let d = classify(&t, &cv);
    assert_eq!(d.kind, VerdictKind::NodeFailed);
    assert!(
        d.render(&t).contains("ignored stale evidence: view of n2"),
        "{}",
        d.render(&t)
    );
}

#[test]
fn maintenance_is_not_failure() {
    let t = two();
    let w = world(&t, &[node(1)]);
    let mut cv = w.cluster_view(n(0), T);
    cv.quiesced.insert(n(1));
    let d = classify(&t, &cv);
    assert_eq!(d.kind, VerdictKind::Healthy, "{}", d.render(&t));
    assert_eq!(d.maintenance, vec![n(1)]);
}

#[test]
fn unknown_facts_constrain_nothing() {
    let t = two();
    let cv = crate::core::evidence::ClusterView::new(n(0), T);
    let d = classify(&t, &cv);
    assert_eq!(d.kind, VerdictKind::Healthy);
}

#[test]
fn large_cluster_single_faults() {
    let t = topo(64, &["A", "B", "C", "D"], true, false);
    check_all_from(
        &t,
        &[node(17)],
        VerdictKind::NodeFailed,
        &[Component::Node(n(17))],
        &[0, 40],
    );
    check_all_from(
        &t,
        &[hub(2)],
        VerdictKind::HubFailed,
        &[Component::Hub(s(2))],
        &[0, 63],
    );
    check_all_from(
        &t,
        &[att(5, 3, FaultMode::Silent)],
        VerdictKind::AttachmentFailed,
        &[Component::Attachment(n(5), s(3))],
        &[5, 6],
    );
}

fn check_all_from(
    t: &Topology,
    faults: &[Fault],
    kind: VerdictKind,
    subjects: &[Component],
    from: &[u16],
) {
    for &me in from {
        let d = diagnose(t, faults, me);
        assert_eq!(
            (d.kind, d.subjects.as_slice()),
            (kind, subjects),
            "from {me}: {}",
            d.render(t)
        );
        assert!(d.support.len() <= MAX_SUPPORT);
    }
}

/// Print one rendered example per verdict kind (`cargo test --lib classify::tests::examples -- --nocapture`).
#[test]
fn examples() {
    let t = two();
    let cases: Vec<(&str, Vec<Fault>, u16)> = vec![
        ("healthy", vec![], 0),
        (
            "degraded",
            vec![Fault {
                component: Component::Attachment(n(1), s(0)),
                mode: FaultMode::Lossy,
            }],
            0,
        ),
        ("node_failed", vec![node(1)], 0),
        ("attachment_failed", vec![att(1, 0, FaultMode::Down)], 0),
        ("hub_failed", vec![hub(0)], 0),
        ("upstream_failed", vec![upstream(0)], 0),
        ("serial_failed", vec![serial(0, 1)], 0),
        ("disk_failed", vec![disk(1, FaultMode::Failing)], 0),
        (
            "cut_off",
            vec![att(1, 0, FaultMode::Down), att(1, 1, FaultMode::Down)],
            0,
        ),
        ("multiple_faults", vec![hub(0), serial(0, 1)], 0),
    ];
    for (name, faults, me) in cases {
        let d = diagnose(&t, &faults, me);
        assert_eq!(d.kind.token(), name);
        println!("=== {name}\n{}", d.render(&t));
    }
    let t1 = topo(2, &["A"], false, false);
    println!(
        "=== ambiguous\n{}",
        diagnose(&t1, &[node(1)], 0).render(&t1)
    );
}

mod prop {
    use super::*;
    use crate::core::evidence::{ClusterView, OwnDetail, Report};
    use crate::core::view::{DiskHealth, NetView, Reach, View};
    use crate::core::wire::Path;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn reach() -> impl Strategy<Value = Reach> {
        prop_oneof![Just(Reach::Unknown), Just(Reach::Yes), Just(Reach::No)]
    }

    fn view(nodes: u16, nets: u16) -> impl Strategy<Value = View> {
        let nv = (
            reach(),
            reach(),
            proptest::collection::btree_set(0..nodes + 1, 0..4),
            proptest::collection::btree_set(0..nodes + 1, 0..2),
        )
            .prop_map(|(carrier, reference, heard, degraded)| NetView {
                carrier,
                reference,
                heard: heard.into_iter().map(NodeId).collect(),
                degraded: degraded.into_iter().map(NodeId).collect(),
            });
        (
            proptest::collection::btree_map(
                (0..nets + 1).prop_map(crate::core::topology::NetworkId),
                nv,
                0..4,
            ),
            proptest::collection::btree_map((0..nodes + 1).prop_map(NodeId), any::<bool>(), 0..3),
            0..6u8,
            any::<bool>(),
        )
            .prop_map(|(nets, serial, disk, mon)| View {
                nets,
                serial,
                disk: [
                    DiskHealth::Unknown,
                    DiskHealth::None,
                    DiskHealth::Ok,
                    DiskHealth::Slow,
                    DiskHealth::Failing,
                    DiskHealth::Hung,
                ][disk as usize % 6],
                failing_monitors: if mon {
                    ["m".to_string()].into_iter().collect()
                } else {
                    BTreeSet::new()
                },
                ..View::default()
            })
    }

    fn cluster_view(nodes: u16, nets: u16) -> impl Strategy<Value = ClusterView> {
        (
            0..nodes,
            proptest::collection::btree_map(
                (0..nodes + 1).prop_map(NodeId),
                (view(nodes, nets), 0..3u8),
                0..5,
            ),
            proptest::collection::btree_set((0..nodes + 1).prop_map(NodeId), 0..2),
        )
            .prop_map(|(me, reports, quiesced)| {
                let mut cv = ClusterView::new(NodeId(me), T);
                for (id, (v, via)) in reports {
                    let via = match via {
                        0 => None,
                        1 => Some(Path::Serial),
                        _ => Some(Path::Network(crate::core::topology::NetworkId(0))),
                    };
                    cv.reports.insert(
                        id,
                        Report {
                            view: v,
                            received: T,
                            via,
                            detail: OwnDetail::default(),
                        },
                    );
                }
                cv.quiesced = quiesced;
                cv
            })
    }

    fn fault_set(nodes: u16, nets: u16) -> impl Strategy<Value = Vec<Fault>> {
        let one = prop_oneof![
            (0..nodes).prop_map(node),
            (0..nodes, 0..nets, 0..4u8).prop_map(|(a, s, m)| att(
                a,
                s,
                [
                    FaultMode::Down,
                    FaultMode::Silent,
                    FaultMode::TxOnly,
                    FaultMode::RxOnly
                ][m as usize]
            )),
            (0..nets).prop_map(hub),
            (0..nets).prop_map(upstream),
            (1..nodes).prop_map(|a| serial(a - 1, a)),
        ];
        proptest::collection::vec(one, 0..4).prop_map(|mut v| {
            v.sort();
            v.dedup_by_key(|f| f.component);
            v
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn never_panics_and_is_deterministic(cv in cluster_view(3, 2), refs in any::<bool>(), ser in any::<bool>()) {
            let t = topo(3, &["A", "B"], refs, ser);
            let a = classify(&t, &cv);
            let b = classify(&t, &cv.clone());
            prop_assert_eq!(&a, &b);
            let _ = a.render(&t);
        }

        /// From any live node, the chosen explanation is never larger than the truth, and
        /// predicts exactly what the world shows (consistency).
        #[test]
        fn sound_and_minimal(faults in fault_set(3, 2), me in 0..3u16, refs in any::<bool>(), ser in any::<bool>()) {
            let t = topo(3, &["A", "B"], refs, ser);
            prop_assume!(!faults.contains(&node(me)));
            let w = world(&t, &faults);
            let cv = w.cluster_view(n(me), T);
            let d = classify(&t, &cv);
            prop_assert!(d.faults.len() <= faults.len(), "{}", d.render(&t));
            if !d.notes.iter().any(|x| x.contains("bounded")) {
                // Re-predict the observations with the chosen faults: same visible world.
                let w2 = world(&t, &d.faults);
                let cv2 = w2.cluster_view(n(me), T);
                for (id, r) in &cv.reports {
                    let r2 = cv2.reports.get(id);
                    prop_assert!(r2.is_some(), "node {} visible under truth only\n{}", id.0, d.render(&t));
                    let mut a = r.view.clone();
                    let mut b = r2.map(|r| r.view.clone()).unwrap_or_default();
                    for v in [&mut a, &mut b] { for nv in v.nets.values_mut() { nv.carrier = Reach::Unknown; } }
                    // Facts that only the truth's faults' observers could see are not compared.
                    prop_assert_eq!(a.nets, b.nets, "\n{}", d.render(&t));
                }
            }
        }
    }
}
