//! Safety on real daemons in network namespaces (the lab): the hard cases of the isolation
//! rules (docs/isolation-rules.md) end to end — processes, sockets, serial ptys, hooks.
//!
//! - A 3-node non-transitive partition (n1 hears n2, n2 hears n3, n1 does not hear n3):
//!   nobody isolates and nobody takes over, while every node's verdict shows the fault.
//! - A node frozen (SIGSTOP of its daemon) for longer than `fence_deadline` and thawed, with
//!   and then without the serial line: its peer takes over, the thawed node isolates on its
//!   first step (isolate hook), rejoins only after the holder handed back — one holder of its
//!   services at any time.
//! - Restarts with durable state: a cut-off, isolated node restarted stays isolated (its
//!   isolate hook runs again, it claims nothing) until the heal and the hand-back; a holder
//!   restarted still holds (its takeover hook runs again) until it hands back; and an
//!   isolation begun under the `manual` rejoin policy stays manual across a restart whose
//!   configuration says `resume_on_heal: true` (the policy is kept in the durable state).
//!
//! Assertions read decisions — the daemons' log records, hook marker files, the durable state
//! files — never how long something took. Needs root and network namespaces (CI runs it as
//! root); every namespace, link and process is torn down by the lab's guard, also on failure.
//! At most two labs at once (see `lab_slots`).

mod lab_slots;
use hadiag::lab::cluster::{wait_for, Cluster};
use hadiag::lab::drill;
use hadiag::lab::fault::LabFault;
use hadiag::lab::layout::{LabSpec, NodeLayout};
use hadiag::lab::observe::{self, LogEvent};
use hadiag::lab::sys;
use std::path::PathBuf;
use std::time::Duration;

/// Generous bound on any one awaited decision (the lab's fence_deadline is about 4 s).
const WAIT: Duration = Duration::from_secs(40);

fn daemon_exe() -> PathBuf {
    if let Ok(p) = std::env::var("HADIAG_LAB_DAEMON_EXE") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_BIN_EXE_hadiag"))
}

fn n(s: &str) -> String {
    s.to_string()
}

/// A started, healthy lab and its directory (removed after the cluster's guard ran).
struct Lab {
    cluster: Cluster,
    _root: tempfile::TempDir,
}

impl Lab {
    fn start(spec: LabSpec) -> Lab {
        sys::require_root().expect("lab safety tests need root (CI runs them as root)");
        let root = tempfile::tempdir().expect("temp dir");
        let mut cluster = Cluster::build(&spec.unique(), root.path()).expect("build lab");
        cluster.start_daemons(&daemon_exe()).expect("start daemons");
        let lab = Lab {
            cluster,
            _root: root,
        };
        lab.healthy("the lab to become healthy");
        lab
    }

    fn node(&self, name: &str) -> NodeLayout {
        self.cluster.layout().node(name).expect("node").clone()
    }

    fn inject(&mut self, f: &LabFault) {
        self.cluster
            .inject(f)
            .unwrap_or_else(|e| panic!("inject {f:?}: {e}"));
    }

    fn heal(&mut self, f: &LabFault) {
        self.cluster
            .heal(f)
            .unwrap_or_else(|e| panic!("heal {f:?}: {e}"));
    }

    /// Cuts n2 off from everything (both NICs down, serial line stopped) and waits until n2
    /// isolates and n1 takes over; returns the log offsets of n1 and n2 from before the cut.
    fn cut_off_n2(&mut self) -> (u64, u64) {
        let (n1, n2) = (self.node("n1"), self.node("n2"));
        let from = (observe::log_offset(&n1), observe::log_offset(&n2));
        for f in cut_off_n2() {
            self.inject(&f);
        }
        self.wait_record("n2", from.1, "isolating this node", &[]);
        self.wait_record("n1", from.0, "taking over", &["peer=n2"]);
        from
    }

    /// Undoes [`Lab::cut_off_n2`].
    fn heal_cut_off_n2(&mut self) {
        for f in cut_off_n2().iter().rev() {
            self.heal(f);
        }
    }

    /// Kills `node`'s daemon (SIGKILL) and starts it again; returns the log offset from
    /// where the new daemon writes.
    fn restart(&mut self, node: &str) -> u64 {
        let killed = LabFault::NodeKilled { node: n(node) };
        self.inject(&killed);
        let from = observe::log_offset(&self.node(node));
        self.heal(&killed);
        from
    }

    /// Every node healthy and not isolated (held for two detection times).
    fn healthy(&self, what: &str) {
        if let Err(e) = drill::wait_healthy(&self.cluster, Duration::from_secs(60), &|| false) {
            panic!("{what}: {e}\n{}", self.report());
        }
    }

    /// Every node's verdict and the tail of its log, for failure messages.
    fn report(&self) -> String {
        let mut s = String::new();
        for nl in &self.cluster.layout().nodes {
            let v = observe::node_verdict(nl).map_or_else(|e| e.to_string(), |v| v.short());
            let log = std::fs::read_to_string(&nl.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(25).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            s += &format!("--- {}: {v}\n{}\n", nl.name, tail.join("\n"));
        }
        s
    }

    /// Waits for `node`'s first log record after `from` that starts with `message` and
    /// contains every needle.
    fn wait_record(&self, node: &str, from: u64, message: &str, needles: &[&str]) -> LogEvent {
        let nl = self.node(node);
        let mut found = None;
        let r = wait_for(&format!("{node}: {message} {needles:?}"), WAIT, || {
            found = find(&observe::log_events_since(&nl, from), message, needles).cloned();
            found.is_some()
        });
        match (r, found) {
            (Ok(()), Some(e)) => e,
            (r, _) => panic!("{r:?}\n{}", self.report()),
        }
    }
}

fn find<'a>(events: &'a [LogEvent], message: &str, needles: &[&str]) -> Option<&'a LogEvent> {
    events
        .iter()
        .find(|e| e.text.starts_with(message) && needles.iter().all(|x| e.text.contains(x)))
}

fn count(events: &[LogEvent], message: &str) -> usize {
    events
        .iter()
        .filter(|e| e.text.starts_with(message))
        .count()
}

/// One holder, read from the holder's records `ev` (all of the round, read after the peer
/// rejoined): it took over at least once, every takeover was followed by a hand-back before
/// the peer's `rejoined`, and none came after it. A takeover repeated between a hand-back and
/// the rejoin (a new incident about the same peer) is not a second holder — the peer was still
/// isolated — but it is printed, since it re-runs the takeover hook.
fn one_holder(ev: &[LogEvent], rejoined: &LogEvent, label: &str, report: &str) {
    let takeovers: Vec<&LogEvent> = ev
        .iter()
        .filter(|e| e.text.starts_with("taking over"))
        .collect();
    let Some(last) = takeovers.last() else {
        panic!("{label}: no takeover\n{report}");
    };
    assert!(
        last.at <= rejoined.at,
        "{label}: a takeover after the peer rejoined {rejoined:?}: {takeovers:#?}\n{report}"
    );
    assert!(
        ev.iter().any(|e| e.text.starts_with("peer is back: hand back")
            && last.at <= e.at
            && e.at <= rejoined.at),
        "{label}: no hand-back between the last takeover {last:?} and the rejoin {rejoined:?}\n{report}"
    );
    if takeovers.len() > 1 {
        eprintln!(
            "{label}: {} takeover records (the takeover hook ran again before the rejoin): {takeovers:#?}",
            takeovers.len()
        );
    }
}

/// The node's durable state file as stored (what a restart resumes from).
fn durable(nl: &NodeLayout) -> serde_json::Value {
    let p = nl.state_dir.join(format!("durable-{}.json", nl.name));
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Peers (by id) whose services the node's durable state says it holds.
fn held(nl: &NodeLayout) -> Vec<String> {
    durable(nl)["held"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

fn isolated_in_durable(nl: &NodeLayout) -> bool {
    !durable(nl)["isolated"].is_null()
}

#[test]
fn non_transitive_partition_isolates_and_takes_over_nobody() {
    let _slot = lab_slots::take();
    // Serial chain n1–n2–n3: n1 and n3 share no serial line.
    let mut lab = Lab::start(LabSpec::new("s10nt", 3));
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
        lab.inject(&f);
    }
    // Not vacuous: n2 sees both attachment faults.
    let n2 = lab.node("n2");
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
    seen.unwrap_or_else(|e| panic!("{e}\n{}", lab.report()));
    // Past fence_deadline with margin: n1 and n3 each count themselves in a majority with
    // n2, but n2 still hears the other, so neither may take over or isolate.
    let fence = hadiag::lab::config::fence_deadline(lab.cluster.layout());
    std::thread::sleep(fence * 3);
    let mut acted = Vec::new();
    for x in ["n1", "n2", "n3"] {
        let nl = lab.node(x);
        for line in observe::isolate_calls(&nl) {
            acted.push(format!("{x} isolated: {line}"));
        }
        for line in observe::takeover_calls(&nl) {
            acted.push(format!("{x} took over: {line}"));
        }
    }
    assert!(
        acted.is_empty(),
        "a non-transitive partition must isolate and take over nobody: {acted:?}\n{}",
        lab.report()
    );
}

/// One freeze–thaw round of n2 (the caller set up the serial line's state): n1 takes over,
/// the thawed n2 isolates before anything else, n1 hands back, n2 rejoins after that.
fn freeze_thaw_round(lab: &mut Lab, label: &str) {
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    let (from1, from2) = (observe::log_offset(&n1), observe::log_offset(&n2));
    let iso2_before = observe::isolate_calls(&n2).len();
    let frozen = LabFault::NodeFrozen { node: n("n2") };
    lab.inject(&frozen);
    // n2 silent on every path past fence_deadline: n1 takes over (rule 3, reaches its
    // references, no fence hook).
    lab.wait_record("n1", from1, "taking over", &["peer=n2"]);
    let nl1 = n1.clone();
    wait_for("n1 to store that it holds n2", WAIT, || {
        held(&nl1).len() == 1
    })
    .unwrap_or_else(|e| panic!("{label}: {e}\n{}", lab.report()));
    let thawed_from2 = observe::log_offset(&n2);
    lab.heal(&frozen);
    // First decision of the thawed n2: isolate (it did not run for longer than
    // fence_deadline, so a peer may hold its services).
    let iso = lab.wait_record("n2", thawed_from2, "isolating this node", &[]);
    let hand_back = lab.wait_record("n1", from1, "peer is back: hand back", &["peer=n2"]);
    let rejoined = lab.wait_record("n2", thawed_from2, "left isolation: rejoined", &[]);
    wait_for("n1's durable state to hold nothing", WAIT, || {
        held(&nl1).is_empty()
    })
    .unwrap_or_else(|e| panic!("{label}: {e}\n{}", lab.report()));

    let ev1 = observe::log_events_since(&n1, from1);
    let ev2 = observe::log_events_since(&n2, from2);
    let report = lab.report();
    assert!(
        observe::isolate_calls(&n2).len() > iso2_before,
        "{label}: n2's isolate hook never ran after the thaw\n{report}"
    );
    // One holder: n2 never took anything over, isolated before n1 handed back and rejoined
    // only after that.
    assert_eq!(
        count(&ev2, "taking over"),
        0,
        "{label}: n2 took over\n{report}"
    );
    assert!(
        observe::takeover_calls(&n2).is_empty(),
        "{label}: n2's takeover hook ran\n{report}"
    );
    assert!(
        iso.at <= hand_back.at,
        "{label}: n1 handed back before n2 isolated\n{report}"
    );
    assert!(
        hand_back.at <= rejoined.at,
        "{label}: n2 rejoined ({:?}) before n1 handed back ({:?})\n{report}",
        rejoined.at,
        hand_back.at
    );
    // One holder throughout; n1 never isolated, n2 isolated once.
    one_holder(&ev1, &rejoined, label, &report);
    assert_eq!(count(&ev1, "isolating this node"), 0, "{label}\n{report}");
    assert_eq!(count(&ev2, "isolating this node"), 1, "{label}\n{report}");
    assert!(!isolated_in_durable(&n2), "{label}: {}", durable(&n2));
}

#[test]
fn frozen_node_thawed_with_and_without_serial_never_leaves_two_holders() {
    let _slot = lab_slots::take();
    let mut lab = Lab::start(LabSpec::two_node("s10fz"));
    freeze_thaw_round(&mut lab, "with the serial line");
    lab.healthy("both healthy after the thaw");
    let cut = LabFault::SerialCut {
        a: n("n1"),
        b: n("n2"),
    };
    lab.inject(&cut);
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));
    wait_for("both to see the serial line cut", WAIT, || {
        [&n1, &n2].iter().all(|nl| {
            observe::node_verdict(nl).is_ok_and(|v| v.matches("serial_failed", &["serial"]))
        })
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.report()));
    freeze_thaw_round(&mut lab, "without the serial line");
    lab.heal(&cut);
    lab.healthy("healthy after the serial line healed");
}

/// n2 cut off from everything (both NICs down, serial line stopped).
fn cut_off_n2() -> Vec<LabFault> {
    vec![
        LabFault::NicDown {
            node: n("n2"),
            network: n("A"),
        },
        LabFault::NicDown {
            node: n("n2"),
            network: n("B"),
        },
        LabFault::SerialCut {
            a: n("n1"),
            b: n("n2"),
        },
    ]
}

#[test]
fn restarted_isolated_node_and_restarted_holder_keep_their_roles() {
    let _slot = lab_slots::take();
    let mut lab = Lab::start(LabSpec::two_node("s10rs"));
    let (n1, n2) = (lab.node("n1"), lab.node("n2"));

    // 1. Restart of an isolated node.
    let (from1, _) = lab.cut_off_n2();
    let nl2 = n2.clone();
    wait_for("n2's isolate hook", WAIT, || {
        !observe::isolate_calls(&nl2).is_empty()
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.report()));
    assert!(isolated_in_durable(&n2), "{}", durable(&n2));
    let iso_before = observe::isolate_calls(&n2).len();
    let restart2 = lab.restart("n2"); // still cut off
    let again = lab.wait_record(
        "n2",
        restart2,
        "isolating this node",
        &["restarted while isolated"],
    );
    wait_for("n2's isolate hook after the restart", WAIT, || {
        observe::isolate_calls(&nl2).len() > iso_before
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.report()));
    wait_for("the restarted n2's API to say isolated", WAIT, || {
        observe::node_verdict_api(&nl2).is_ok_and(|v| v.isolated)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.report()));
    assert!(
        held(&n1).len() == 1,
        "n1 still holds n2's services: {}",
        durable(&n1)
    );
    lab.heal_cut_off_n2();
    let hand_back = lab.wait_record("n1", from1, "peer is back: hand back", &["peer=n2"]);
    let rejoined = lab.wait_record("n2", restart2, "left isolation: rejoined", &[]);
    lab.healthy("healthy after the isolated node's restart and the heal");
    let report = lab.report();
    assert!(
        again.at <= hand_back.at && hand_back.at <= rejoined.at,
        "{report}"
    );
    assert!(observe::takeover_calls(&n2).is_empty(), "{report}");
    let ev1 = observe::log_events_since(&n1, from1);
    one_holder(&ev1, &rejoined, "isolated node restarted", &report);
    assert!(
        held(&n1).is_empty() && !isolated_in_durable(&n2),
        "{report}"
    );

    // 2. Restart of the holder.
    let (_, from2) = lab.cut_off_n2();
    let nl1 = n1.clone();
    wait_for("n1 to store that it holds n2", WAIT, || {
        held(&nl1).len() == 1
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.report()));
    let take_before = observe::takeover_calls(&n1).len();
    let restart1 = lab.restart("n1");
    // The restarted holder still holds: its takeover hook runs again for n2.
    lab.wait_record("n1", restart1, "taking over", &["peer=n2"]);
    wait_for("n1's takeover hook after the restart", WAIT, || {
        observe::takeover_calls(&nl1).len() > take_before
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.report()));
    assert!(held(&n1).len() == 1, "{}", durable(&n1));
    lab.heal_cut_off_n2();
    let hand_back = lab.wait_record("n1", restart1, "peer is back: hand back", &["peer=n2"]);
    let rejoined = lab.wait_record("n2", from2, "left isolation: rejoined", &[]);
    lab.healthy("healthy after the holder's restart and the heal");
    let report = lab.report();
    assert!(hand_back.at <= rejoined.at, "{report}");
    let ev1 = observe::log_events_since(&n1, restart1);
    one_holder(&ev1, &rejoined, "holder restarted", &report);
    // n2 stayed isolated across the holder's restart: one isolation, one rejoin.
    let ev2 = observe::log_events_since(&n2, from2);
    assert_eq!(count(&ev2, "isolating this node"), 1, "{report}");
    assert_eq!(count(&ev2, "left isolation: rejoined"), 1, "{report}");
    assert!(observe::takeover_calls(&n2).is_empty(), "{report}");
    assert!(observe::isolate_calls(&n1).is_empty(), "{report}");
    assert!(
        held(&n1).is_empty() && !isolated_in_durable(&n2),
        "{report}"
    );

    // 3. The rejoin policy of an isolation survives a restart: n2 isolated under `manual`,
    // restarted with a configuration that says resume_on_heal: true, stays isolated after
    // the heal until the operator's `hadiag rejoin`.
    let original = std::fs::read_to_string(&n2.config).expect("n2 config");
    std::fs::write(
        &n2.config,
        format!("{original}policy:\n  resume_on_heal: false\n"),
    )
    .expect("write n2 config");
    lab.restart("n2");
    lab.healthy("healthy with n2 under the manual policy");
    let (from1, _) = lab.cut_off_n2();
    assert_eq!(durable(&n2)["rejoin"], "manual", "{}", durable(&n2));
    std::fs::write(&n2.config, &original).expect("restore n2 config");
    let restart2 = lab.restart("n2");
    lab.wait_record(
        "n2",
        restart2,
        "isolated under the manual rejoin policy before this start",
        &[],
    );
    lab.heal_cut_off_n2();
    // n2 hears n1 again and sees nothing wrong, yet stays isolated: held for three times
    // self_fence_after (the automatic rejoin would need one).
    wait_for("n2 to see the heal while isolated", WAIT, || {
        observe::node_verdict_api(&nl2).is_ok_and(|v| v.kind == "healthy" && v.isolated)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.report()));
    let hold = hadiag::lab::config::self_fence_after(lab.cluster.layout()) * 3;
    let until = std::time::Instant::now() + hold;
    while std::time::Instant::now() < until {
        let v = observe::node_verdict_api(&nl2);
        assert!(
            v.as_ref().map_or(true, |v| v.isolated),
            "n2 left a manual isolation by itself: {v:?}\n{}",
            lab.report()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ev = observe::log_events_since(&n2, restart2);
    assert_eq!(count(&ev, "left isolation"), 0, "{}", lab.report());
    assert!(held(&n1).len() == 1, "{}", durable(&n1));
    // The operator lets it rejoin: n1 hands back, n2 rejoins, the pin goes.
    let out = std::process::Command::new(daemon_exe())
        .args(["rejoin", "--config"])
        .arg(&n2.config)
        .args(["--node", "n2"])
        .output()
        .expect("run hadiag rejoin");
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("left isolation") || said.contains("still isolated"),
        "hadiag rejoin: {said}"
    );
    let hand_back = lab.wait_record("n1", from1, "peer is back: hand back", &["peer=n2"]);
    let rejoined = lab.wait_record("n2", restart2, "left isolation: rejoined", &[]);
    lab.healthy("healthy after the operator's rejoin");
    let report = lab.report();
    assert!(hand_back.at <= rejoined.at, "{report}");
    let ev1 = observe::log_events_since(&n1, from1);
    one_holder(&ev1, &rejoined, "manual isolation restarted", &report);
    assert!(durable(&n2)["rejoin"].is_null(), "{}", durable(&n2));
}
