//! A bigger lab end to end: 8 real daemons on 4 networks (/26 slices of the documentation
//! ranges), walking a node, a NIC and a hub fault with verdicts read from every reporting
//! node, each fault healed and every node healthy again. Needs root (CI runs as root).
//!
//! Kept short on purpose (one lab, three rows): the 16-node lab is exercised by
//! `hadiag lab up --nodes 16 --networks A,B,C,D` and the overhead benchmark's lab mode.

use hadiag::lab::cluster::Cluster;
use hadiag::lab::drill::{self, fmt_duration, DrillOptions, Expect, MatrixRow};
use hadiag::lab::fault::LabFault;
use hadiag::lab::layout::LabSpec;
use hadiag::lab::sys;
use std::path::PathBuf;
use std::time::Duration;

fn daemon_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hadiag"))
}

fn verdict(kind: &'static str, needle: &str) -> Expect {
    Expect::Verdict {
        kind,
        needles: vec![needle.to_string()],
        isolates: None,
        takes_over: None,
    }
}

#[test]
fn eight_nodes_on_four_networks_tell_node_nic_and_hub_faults_apart() {
    sys::require_root().expect("lab tests need root (CI runs them as root)");
    let root = tempfile::tempdir().expect("temp dir");
    let mut spec = LabSpec::new("big8", 8);
    spec.networks = ["A", "B", "C", "D"].map(String::from).to_vec();
    // 8 daemons × 4 networks × 7 peers: a 200 ms beat keeps the debug-built daemons of
    // `cargo test` well inside two shared cores (detection time 600 ms).
    spec.heartbeat_interval = Duration::from_millis(200);
    let mut cluster = Cluster::build(&spec.unique(), root.path()).expect("build 8 x 4 lab");
    let layout = cluster.layout().clone();
    assert_eq!(layout.networks.len(), 4);
    assert!(layout.networks.iter().all(|n| n.prefix_len == 26));
    cluster.start_daemons(&daemon_exe()).expect("start daemons");
    if let Err(e) = drill::wait_healthy(&cluster, Duration::from_secs(60), &|| false) {
        let logs: Vec<String> = layout
            .nodes
            .iter()
            .map(|n| n.log.display().to_string())
            .collect();
        panic!("8-node lab never became healthy: {e}\nlogs: {logs:?}");
    }
    let all: Vec<String> = layout.nodes.iter().map(|n| n.name.clone()).collect();
    let n = |s: &str| s.to_string();
    let rows = vec![
        MatrixRow {
            number: 2,
            title: "n5 killed".into(),
            faults: vec![LabFault::NodeKilled { node: n("n5") }],
            reporters: all.iter().filter(|x| *x != "n5").cloned().collect(),
            expect: verdict("node_failed", "n5"),
        },
        MatrixRow {
            number: 5,
            title: "n3's NIC on C silent".into(),
            faults: vec![LabFault::NicSilent {
                node: n("n3"),
                network: n("C"),
            }],
            reporters: all.clone(),
            expect: verdict("attachment_failed", "n3.C"),
        },
        MatrixRow {
            number: 6,
            title: "hub D down".into(),
            faults: vec![LabFault::HubDown { network: n("D") }],
            reporters: all.clone(),
            expect: verdict("hub_failed", "hub D"),
        },
    ];
    let opts = DrillOptions {
        verdict_timeout: Duration::from_secs(20),
        heal_timeout: Duration::from_secs(40),
    };
    let mut problems = Vec::new();
    for row in &rows {
        let r = drill::run_row(&mut cluster, row, &opts, &|| false).expect("drill row");
        println!(
            "#{} {:<24} agreed {} healed {} {}",
            r.number,
            r.title,
            fmt_duration(r.agreement),
            fmt_duration(r.healed),
            if r.ok() { "ok" } else { "PROBLEMS" }
        );
        problems.extend(r.problems.iter().map(|p| format!("{}: {p}", r.title)));
    }
    let problems_down = cluster.teardown();
    assert!(problems.is_empty(), "8 x 4 lab:\n{}", problems.join("\n"));
    assert!(problems_down.is_empty(), "teardown: {problems_down:?}");
}
