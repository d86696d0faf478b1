//! hadiag beside a real Pacemaker cluster (Corosync knet + Pacemaker inside the lab's node
//! namespaces; needs root and the Debian packages pacemaker, pacemaker-cli-utils, corosync,
//! fence-agents — CI installs them). Nothing here is mocked, and nothing passes vacuously:
//! a missing tool or privilege fails the test.
//!
//! One cluster, three checks in order (start-up dominates the cost, so they share it):
//! 1. `stonith_admin --metadata --agent fence_hadiag` reads the agent's metadata, which
//!    validates against fence-agents' schema;
//! 2. a failed NIC on n2 turns n2's `#health-hadiag` red in the CIB, and a Dummy resource
//!    that prefers n2 moves to n1 (node-health-strategy=migrate-on-red); on heal the
//!    attributes are deleted and the resource comes back;
//! 3. n2 cut off from both networks (serial line up): with `fence_hadiag` first on level 1
//!    (before the lab power switch) and the power switch alone on level 2, Pacemaker fences
//!    n2 — and never n1.

use hadiag::lab::cluster::{wait_for, Cluster};
use hadiag::lab::drill;
use hadiag::lab::fault::LabFault;
use hadiag::lab::layout::LabSpec;
use hadiag::lab::pacemaker::PacemakerCluster;
use hadiag::lab::sys;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Generous bounds: these are deadlines for events, not performance targets.
const PACEMAKER_UP: Duration = Duration::from_secs(90);
/// Pacemaker throttles itself when the machine is loaded (CI shares its cores): be patient.
const EVENT: Duration = Duration::from_secs(120);

fn daemon_exe() -> PathBuf {
    if let Ok(p) = std::env::var("HADIAG_LAB_DAEMON_EXE") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_BIN_EXE_hadiag"))
}

/// Field order is drop order: Pacemaker stops before the lab's namespaces go.
struct Lab {
    pcmk: PacemakerCluster,
    cluster: Cluster,
    _root: tempfile::TempDir,
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

impl Lab {
    fn attribute(&self, node: &str, name: &str) -> Option<String> {
        let out = self
            .pcmk
            .exec(
                "n1",
                &[
                    "crm_attribute",
                    "-N",
                    node,
                    "-n",
                    name,
                    "-G",
                    "-l",
                    "reboot",
                    "-q",
                ],
            )
            .ok()?;
        let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !v.is_empty()).then_some(v)
    }

    fn location(&self, rsc: &str) -> String {
        self.pcmk
            .exec("n1", &["crm_resource", "--locate", "-r", rsc])
            .map(|o| text(&o))
            .unwrap_or_default()
    }

    fn wait(&self, what: &str, within: Duration, mut ok: impl FnMut(&Lab) -> bool) {
        if let Err(e) = wait_for(what, within, || {
            let r = ok(self);
            if !r {
                // Pacemaker 2.1.5's controller can lose a child's SIGCHLD and stall (see
                // reap_lost_children); the nudge is logged so a run shows when it mattered.
                let n = self.pcmk.reap_lost_children();
                if n > 0 {
                    eprintln!("waiting for {what}: sent SIGCHLD to {n} controller(s) with an unreaped child");
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            r
        }) {
            panic!(
                "{e}\ncrm_mon:\n{}\nlogs:\n{}",
                self.pcmk
                    .exec("n1", &["crm_mon", "-1", "-A"])
                    .map(|o| text(&o))
                    .unwrap_or_default(),
                self.pcmk.log_tails(25)
            );
        }
    }

    fn cib(&self, args: &[&str]) {
        self.pcmk
            .exec_ok("n1", args)
            .unwrap_or_else(|e| panic!("configuring the CIB: {e}"));
    }
}

fn start_lab() -> Lab {
    sys::require_root().expect("the Pacemaker lab needs root (CI runs tests as root)");
    let mut root = tempfile::tempdir().expect("temp dir");
    if std::env::var_os("HADIAG_LAB_KEEP").is_some() {
        root.disable_cleanup(true);
        eprintln!("keeping lab directory {}", root.path().display());
    }
    let exe = daemon_exe();
    let mut cluster =
        Cluster::build(&LabSpec::two_node("pcmk").unique(), root.path()).expect("build lab");
    let pcmk = PacemakerCluster::start(&cluster, &exe).expect("start corosync + pacemaker");
    pcmk.enable_in_hadiag_configs(&cluster)
        .expect("pacemaker section in hadiag configs");
    cluster.start_daemons(&exe).expect("start hadiag daemons");
    let lab = Lab {
        pcmk,
        cluster,
        _root: root,
    };
    drill::wait_healthy(&lab.cluster, Duration::from_secs(30), &|| false)
        .expect("hadiag healthy on both nodes");
    if let Err(e) = lab.pcmk.wait_online("n1", &["n1", "n2"], PACEMAKER_UP) {
        panic!("{e}\n{}", lab.pcmk.log_tails(30));
    }
    lab
}

/// Pacemaker reads the agent's metadata (`stonith_admin --metadata` parses it and adds its
/// own start/stop actions, with `timeout` attributes fence-agents' schema does not know);
/// the agent's own metadata validates against fence-agents' schema.
fn validate_metadata(lab: &Lab, dir: &Path) {
    let parsed = lab
        .pcmk
        .exec_ok(
            "n1",
            &["stonith_admin", "--metadata", "--agent", "fence_hadiag"],
        )
        .expect("stonith_admin --metadata --agent fence_hadiag");
    for needle in [
        "<resource-agent name=\"fence_hadiag\"",
        "<parameter name=\"hold\"",
        "<action name=\"off\"",
        "<action name=\"start\"",
    ] {
        assert!(parsed.contains(needle), "{needle} missing in:\n{parsed}");
    }
    // By path: the lab adds the agent to /usr/sbin inside the node's mount namespace, where
    // Pacemaker looks; the caller's PATH may not list /usr/sbin itself (CI hides tools).
    let own = lab
        .pcmk
        .exec_ok("n1", &["/usr/sbin/fence_hadiag", "-o", "metadata"])
        .expect("fence_hadiag -o metadata");
    let file = dir.join("fence_hadiag.xml");
    std::fs::write(&file, &own).expect("write metadata");
    let schema = "/usr/share/cluster/relaxng/metadata.rng";
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--relaxng", schema])
        .arg(&file)
        .output()
        .expect("xmllint (libxml2-utils)");
    assert!(
        out.status.success(),
        "fence_hadiag metadata does not validate against {schema}: {}",
        text(&out)
    );
    let installed = lab
        .pcmk
        .exec_ok("n1", &["stonith_admin", "--list-installed"])
        .expect("stonith_admin --list-installed");
    assert!(installed.contains("fence_hadiag"), "{installed}");
}

/// Adds the two fence devices and the resource one at a time, each once the previous one
/// runs: the controller fetches an agent's metadata when it first acts on a resource of that
/// agent, and Pacemaker 2.1.5's controller can lose the SIGCHLD of one such child while it
/// waits for another (see `reap_lost_children`, which the waits also use). One new agent at
/// a time keeps few metadata children in flight together.
fn configure(lab: &Lab, log: &Path) {
    let log = log.display();
    lab.cib(&[
        "cibadmin", "-C", "-o", "resources", "-X",
        &format!(
            "<primitive id=\"gate\" class=\"stonith\" type=\"fence_hadiag\"><instance_attributes id=\"gate-ia\">\
             <nvpair id=\"gate-url\" name=\"url\" value=\"http://127.0.0.1:9405\"/>\
             <nvpair id=\"gate-hold\" name=\"hold\" value=\"30\"/>\
             <nvpair id=\"gate-log\" name=\"log_file\" value=\"{log}\"/>\
             <nvpair id=\"gate-hosts\" name=\"pcmk_host_list\" value=\"n1 n2\"/>\
             <nvpair id=\"gate-mon\" name=\"pcmk_monitor_timeout\" value=\"120s\"/>\
             </instance_attributes></primitive>"
        ),
    ]);
    lab.wait("the gate device started", EVENT, |l| {
        l.location("gate").contains("running on")
    });
    lab.cib(&[
        "cibadmin", "-C", "-o", "resources", "-X",
        "<primitive id=\"power\" class=\"stonith\" type=\"fence_lab_power\"><instance_attributes id=\"power-ia\">\
         <nvpair id=\"power-hosts\" name=\"pcmk_host_list\" value=\"n1 n2\"/>\
         <nvpair id=\"power-mon\" name=\"pcmk_monitor_timeout\" value=\"120s\"/>\
         </instance_attributes></primitive>",
    ]);
    lab.wait("the power device started", EVENT, |l| {
        l.location("power").contains("running on")
    });
    lab.cib(&[
        "cibadmin", "-C", "-o", "resources", "-X",
        "<primitive id=\"svc\" class=\"ocf\" provider=\"pacemaker\" type=\"Dummy\">\
         <operations><op id=\"svc-mon\" name=\"monitor\" interval=\"2s\"/></operations></primitive>",
    ]);
    lab.cib(&[
        "cibadmin",
        "-C",
        "-o",
        "constraints",
        "-X",
        "<rsc_location id=\"svc-prefers-n2\" rsc=\"svc\" node=\"n2\" score=\"100\"/>",
    ]);
    let mut levels = String::from("<fencing-topology>");
    for n in ["n1", "n2"] {
        levels.push_str(&format!(
            "<fencing-level id=\"fl-{n}-1\" target=\"{n}\" index=\"1\" devices=\"gate,power\"/>\
             <fencing-level id=\"fl-{n}-2\" target=\"{n}\" index=\"2\" devices=\"power\"/>"
        ));
    }
    levels.push_str("</fencing-topology>");
    lab.cib(&["cibadmin", "-C", "-o", "configuration", "-X", &levels]);
    for (name, value) in [
        ("node-health-strategy", "migrate-on-red"),
        ("stonith-enabled", "true"),
    ] {
        lab.cib(&["crm_attribute", "-t", "crm_config", "-n", name, "-v", value]);
    }
}

#[test]
fn pacemaker_follows_hadiag_health_and_fencing_spares_the_healthy_node() {
    let mut lab = start_lab();
    let dir = lab.cluster.layout().dir.clone();
    let gate_log = dir.join("fence_hadiag.log");

    // 1. The agent's metadata, as Pacemaker reads it.
    validate_metadata(&lab, &dir);

    configure(&lab, &gate_log);
    lab.wait("svc running on n2", EVENT, |l| {
        l.location("svc").contains("running on: n2")
    });

    // 2. A failed NIC on n2: red health in the CIB, the resource leaves n2.
    let nic = LabFault::NicDown {
        node: "n2".into(),
        network: "A".into(),
    };
    lab.cluster.inject(&nic).expect("inject n2.A down");
    lab.wait("#health-hadiag=red on n2", EVENT, |l| {
        l.attribute("n2", "#health-hadiag").as_deref() == Some("red")
    });
    assert_eq!(
        lab.attribute("n2", "hadiag-verdict").as_deref(),
        Some("attachment_failed")
    );
    assert_eq!(
        lab.attribute("n1", "#health-hadiag"),
        None,
        "n1 stays green"
    );
    lab.wait("svc moved to n1", EVENT, |l| {
        l.location("svc").contains("running on: n1")
    });
    lab.cluster.heal(&nic).expect("heal n2.A");
    lab.wait("n2's health attributes cleared", EVENT, |l| {
        l.attribute("n2", "#health-hadiag").is_none()
            && l.attribute("n2", "hadiag-verdict").is_none()
    });
    lab.wait("svc back on n2", EVENT, |l| {
        l.location("svc").contains("running on: n2")
    });
    drill::wait_healthy(&lab.cluster, Duration::from_secs(30), &|| false)
        .expect("hadiag healthy again after the NIC heals");
    lab.pcmk
        .wait_online("n1", &["n1", "n2"], EVENT)
        .expect("both nodes online before the split");

    // 3. n2 cut off from both networks, serial line up: n2 is fenced, never n1.
    for net in ["A", "B"] {
        lab.cluster
            .inject(&LabFault::NicDown {
                node: "n2".into(),
                network: net.into(),
            })
            .expect("cut n2 off");
    }
    lab.wait(
        "the power switch to turn n2 off",
        Duration::from_secs(90),
        |l| l.pcmk.power_log().lines().any(|line| line.ends_with(" n2")),
    );
    lab.wait("n2's corosync to be gone", EVENT, |l| {
        // is_running needs &mut; a read-only probe: n2 no longer answers.
        !l.pcmk
            .exec("n2", &["corosync-cmapctl", "-g", "totem.cluster_name"])
            .map(|o| o.status.success())
            .unwrap_or(false)
    });
    // The power switch's SIGKILLs land when the kernel next runs each process: wait for
    // n2's corosync to be gone (generously) rather than reading its state once.
    let deadline = std::time::Instant::now() + EVENT;
    while lab.pcmk.is_running("n2") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!lab.pcmk.is_running("n2"), "n2 was powered off");
    assert!(lab.pcmk.is_running("n1"), "n1 still runs");
    let power = lab.pcmk.power_log();
    let gate = std::fs::read_to_string(&gate_log).unwrap_or_default();
    assert!(
        power.lines().all(|l| !l.ends_with(" n1")),
        "n1 must never be fenced; power switch log:\n{power}\nfence_hadiag log:\n{gate}"
    );
    assert!(
        power
            .lines()
            .any(|l| l.contains(" n1 ") && l.ends_with(" n2")),
        "n1 fenced n2; power switch log:\n{power}"
    );
    assert!(
        gate.lines()
            .any(|l| l.contains("target=n2 decision=proceed:") && l.contains("says n2 is down")),
        "fence_hadiag on n1 let the fencing of n2 through on hadiag's verdict:\n{gate}"
    );
    assert!(
        gate.lines()
            .filter(|l| l.contains("target=n1"))
            .all(|l| l.contains("decision=refuse")),
        "fence_hadiag on n2 may only refuse to fence n1:\n{gate}"
    );
    // Pacemaker itself records n2 as fenced (by n1), and n1 never.
    let history = |l: &Lab| {
        l.pcmk
            .exec("n1", &["stonith_admin", "--history", "*", "--verbose"])
            .map(|o| text(&o))
            .unwrap_or_default()
    };
    lab.wait("Pacemaker to record n2 as fenced", EVENT, |l| {
        history(l)
            .lines()
            .any(|h| h.contains("of n2 successful") && h.contains("delegate=n1"))
    });
    let history = history(&lab);
    assert!(
        !history.lines().any(|h| h.contains("of n1 successful")),
        "n1 must never be fenced; history:\n{history}"
    );
    println!("power switch:\n{power}fence_hadiag:\n{gate}fencing history (n1):\n{history}");
}
