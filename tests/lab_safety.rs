//! Safety on real daemons in network namespaces (the lab): the hard cases of the isolation
//! rules (docs/isolation-rules.md) end to end — processes, sockets, serial ptys, hooks.
//!
//! - A 3-node non-transitive partition (n1 hears n2, n2 hears n3, n1 does not hear n3):
//!   nobody isolates and nobody takes over, while every node's verdict shows the fault.
//!
//! Needs root and network namespaces (CI runs it as root); every namespace, link and process
//! is torn down by the lab's guard, also on failure.

use hadiag::lab::cluster::{wait_for, Cluster};
use hadiag::lab::drill;
use hadiag::lab::fault::LabFault;
use hadiag::lab::layout::LabSpec;
use hadiag::lab::observe;
use hadiag::lab::sys;
use std::path::PathBuf;
use std::time::Duration;

fn daemon_exe() -> PathBuf {
    if let Ok(p) = std::env::var("HADIAG_LAB_DAEMON_EXE") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_BIN_EXE_hadiag"))
}

#[test]
fn non_transitive_partition_isolates_and_takes_over_nobody() {
    sys::require_root().expect("lab safety tests need root (CI runs them as root)");
    let root = tempfile::tempdir().expect("temp dir");
    // Serial chain n1–n2–n3: n1 and n3 share no serial line.
    let mut cluster =
        Cluster::build(&LabSpec::new("s10nt", 3).unique(), root.path()).expect("build lab");
    cluster.start_daemons(&daemon_exe()).expect("start daemons");
    drill::wait_healthy(&cluster, Duration::from_secs(30), &|| false).expect("lab healthy");
    let n = |s: &str| s.to_string();
    for f in [
        LabFault::NicDown {
            node: n("n1"),
            network: n("B"),
        },
        LabFault::NicDown {
            node: n("n3"),
            network: n("A"),
        },
    ] {
        cluster.inject(&f).expect("inject");
    }
    let layout = cluster.layout().clone();
    let node = |name: &str| {
        layout
            .nodes
            .iter()
            .find(|x| x.name == name)
            .expect("node")
            .clone()
    };
    // Not vacuous: n2 sees both attachment faults.
    let n2 = node("n2");
    let seen = wait_for(
        "n2 to diagnose the partition",
        Duration::from_secs(20),
        || {
            observe::node_verdict(&n2).is_ok_and(|v| {
                v.subjects.iter().any(|s| s.contains("n1.B"))
                    && v.subjects.iter().any(|s| s.contains("n3.A"))
            })
        },
    );
    let verdicts = observe::all_verdicts(&layout);
    seen.unwrap_or_else(|e| panic!("{e}; verdicts: {verdicts:?}"));
    // Past fence_deadline (5 s) with margin: n1 and n3 each count themselves in a majority
    // with n2, but n2 still hears the other, so neither may take over or isolate.
    std::thread::sleep(Duration::from_secs(12));
    let mut acted = Vec::new();
    for x in ["n1", "n2", "n3"] {
        let nl = node(x);
        for line in observe::isolate_calls(&nl) {
            acted.push(format!("{x} isolated: {line}"));
        }
        for line in observe::takeover_calls(&nl) {
            acted.push(format!("{x} took over: {line}"));
        }
    }
    let verdicts = observe::all_verdicts(&layout);
    drop(cluster);
    assert!(
        acted.is_empty(),
        "a non-transitive partition must isolate and take over nobody: {acted:?}\nverdicts: {verdicts:?}"
    );
}
