//! Lab primitives on real namespaces (needs root; CI runs as root). Fails loudly — never
//! passes vacuously — when root or a tool is missing.
//!
//! Every address used is from the documentation ranges; nothing routes out of the lab.

use hadiag::lab::cluster::Cluster;
use hadiag::lab::fault::LabFault;
use hadiag::lab::layout::LabSpec;
use hadiag::lab::netns::{self, is_lab_address, Netns};
use hadiag::lab::serial::SerialLine;
use hadiag::lab::sys;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

fn root_dir() -> tempfile::TempDir {
    sys::require_root().expect("lab tests need root (CI runs them as root)");
    tempfile::tempdir().expect("temp dir")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

fn ping_ok(ns: &Netns, target: &str) -> bool {
    ns.ping_until(ip(target), Duration::from_secs(30))
        .expect("ping runs")
}

/// Names of host-namespace links whose veth peer sits in a namespace with `prefix`.
fn host_links_into(prefix: &str) -> Vec<String> {
    let out = sys::run("ip", &["-o", "link", "show"]).expect("ip link");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(prefix))
        .map(String::from)
        .collect()
}

/// A stable "host" address to look up routes for (a route lookup sends no packet).
fn host_addresses() -> Vec<String> {
    let out = sys::run("ip", &["-4", "-o", "addr", "show", "scope", "global"]).expect("ip addr");
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter_map(|a| a.split('/').next().map(String::from))
        // A host address inside a documentation range (this very CI host has 192.0.2.2)
        // exists in the lab too, as a lab node: that is the lab's own, isolated segment.
        .filter(|a| a.parse::<IpAddr>().is_ok_and(|a| !is_lab_address(a)))
        .collect();
    // Also a typical LAN and a public address: the lab must have no route to them either.
    v.push("10.0.0.1".into());
    v.push("1.1.1.1".into());
    v
}

fn lab_resources_gone(
    cluster_namespaces: &[String],
    loops: &[String],
    pids: &[sys::ProcessRecord],
    dir: &Path,
) {
    for ns in cluster_namespaces {
        assert!(!netns::namespace_exists(ns), "namespace {ns} left behind");
    }
    for dev in loops {
        let name = dev.trim_start_matches("/dev/");
        let backing = std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file"))
            .unwrap_or_default();
        assert!(
            !backing.contains(&dir.display().to_string()),
            "loop device {dev} still attached to {backing}"
        );
    }
    for p in pids {
        assert!(!p.is_alive(), "{} (pid {}) still running", p.what, p.pid);
    }
    assert!(!dir.exists(), "lab directory {} left behind", dir.display());
}

#[test]
fn netns_guard_deletes_namespace_and_kills_children() {
    let _root = root_dir();
    let prefix = netns::unique_prefix();
    let (name, pid, child_rec);
    {
        let a = Netns::with_role(&prefix, "a").expect("create ns");
        let b = Netns::with_role(&prefix, "b").expect("create ns");
        a.veth("eth0", &b, "eth0").expect("veth");
        a.add_address("eth0", ip("203.0.113.1"), 24).expect("addr");
        b.add_address("eth0", ip("203.0.113.2"), 24).expect("addr");
        assert!(
            a.add_address("eth0", ip("10.1.2.3"), 24).is_err(),
            "non-documentation address accepted"
        );
        assert!(
            ping_ok(&a, "203.0.113.2"),
            "veth pair does not pass traffic"
        );
        assert!(
            !a.has_default_route().expect("route"),
            "fresh namespace has a default route"
        );
        let mut sleeper = a.spawn("sleep", &["600"], None).expect("spawn");
        pid = sleeper.pid();
        assert!(sleeper.is_running());
        // `ip netns exec` enters the namespace right after the fork: give it a moment.
        let start = Instant::now();
        while !a.pids().contains(&pid) && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            a.pids().contains(&pid),
            "spawned child is not inside the namespace"
        );
        // A second process started in the namespace without a guard: Drop of the namespace
        // must kill it too (by PID).
        let stray = a.command("sleep", &["600"]).spawn().expect("spawn stray");
        child_rec = sys::ProcessRecord::of(stray.id(), "stray sleep").expect("record");
        std::mem::forget(stray);
        name = a.name().to_string();
        drop(sleeper);
        assert!(
            sys::process_start_time(pid).is_none(),
            "guard did not kill+reap its child"
        );
    }
    assert!(
        !netns::namespace_exists(&name),
        "namespace survived its guard"
    );
    for _ in 0..100 {
        if !child_rec.is_alive() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // The stray is our grandchild-less child: it becomes a zombie until reaped by us; a zombie
    // has no start time change but state Z. Accept dead or zombie, never running.
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child_rec.pid)).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "stray process still running: {stat}"
    );
    // SAFETY: reaping our own child by PID.
    unsafe { libc::waitpid(child_rec.pid as i32, std::ptr::null_mut(), libc::WNOHANG) };
}

fn open_pty(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .expect("open pty")
}

fn read_for(f: &mut std::fs::File, within: Duration) -> Vec<u8> {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while start.elapsed() < within {
        match f.read(&mut buf) {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
        if got.ends_with(b"\n") {
            break;
        }
    }
    got
}

#[test]
fn serial_line_passes_data_and_cut_stops_it() {
    let _root = root_dir();
    let mut line = SerialLine::temp().expect("pty pair with its relay");
    let pid = line.pid();
    let dir = line.path_a().parent().expect("dir").to_path_buf();
    let mut a = open_pty(line.path_a());
    let mut b = open_pty(line.path_b());
    a.write_all(b"hello\n").expect("write");
    assert_eq!(read_for(&mut b, Duration::from_secs(30)), b"hello\n");
    assert!(line.cut(), "SIGSTOP the relay");
    a.write_all(b"lost?\n").expect("write while cut");
    assert!(
        read_for(&mut b, Duration::from_millis(500)).is_empty(),
        "data crossed a cut line"
    );
    assert!(line.restore(), "SIGCONT the relay");
    drop(a);
    drop(b);
    drop(line);
    assert!(
        sys::process_start_time(pid).is_none(),
        "the relay survived its guard"
    );
    assert!(!dir.exists(), "serial temp dir left behind");
}

#[test]
fn two_node_lab_connects_nodes_and_routers_but_nothing_else() {
    let root = root_dir();
    let spec = LabSpec::two_node("conn").unique();
    let cluster = Cluster::build(&spec, root.path()).expect("build lab");
    let layout = cluster.layout().clone();
    let prefix = layout.prefix.clone();
    let dir = layout.dir.clone();
    assert!(
        host_links_into(&prefix).is_empty(),
        "host namespace has links into the lab: {:?}",
        host_links_into(&prefix)
    );
    for node in &layout.nodes {
        let ns = Netns::borrowed(&node.ns);
        assert!(
            !ns.has_default_route().expect("routes"),
            "{} has a default route",
            node.ns
        );
        for net in &layout.networks {
            assert!(
                ping_ok(&ns, &net.reference.to_string()),
                "{} cannot reach router of {}",
                node.name,
                net.name
            );
            for peer in &layout.nodes {
                let addr = layout
                    .interface(&peer.name, &net.name)
                    .expect("iface")
                    .address;
                assert!(is_lab_address(addr));
                if peer.name != node.name {
                    assert!(
                        ping_ok(&ns, &addr.to_string()),
                        "{} cannot reach {} on {}",
                        node.name,
                        peer.name,
                        net.name
                    );
                }
            }
        }
        for host in host_addresses() {
            let out = ns
                .exec_unchecked(&["ip", "route", "get", &host])
                .expect("ip route get");
            assert!(
                !out.status.success(),
                "{} has a route to host address {host}: {}",
                node.ns,
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
    for net in &layout.networks {
        for ns in [&net.hub_ns, &net.router_ns] {
            assert!(
                !Netns::borrowed(ns).has_default_route().expect("routes"),
                "{ns} has a default route"
            );
        }
    }
    // The config each daemon would load exists and names only lab addresses.
    let cfg = std::fs::read_to_string(&layout.nodes[0].config).expect("config written");
    assert!(
        cfg.contains("192.0.2.254") && cfg.contains("198.51.100.2"),
        "{cfg}"
    );
    let namespaces = layout.namespaces();
    let loops: Vec<String> = cluster
        .state()
        .disks
        .values()
        .filter_map(|d| d.loop_device.clone())
        .collect();
    let pids: Vec<sys::ProcessRecord> = cluster.state().processes.values().cloned().collect();
    assert_eq!(pids.len(), 1, "one relay per serial line");
    let problems = cluster.teardown();
    assert!(problems.is_empty(), "{problems:?}");
    lab_resources_gone(&namespaces, &loops, &pids, &dir);
}

#[test]
fn panic_inside_a_lab_tears_everything_down() {
    let root = root_dir();
    let spec = LabSpec::two_node("panic").unique();
    let root_path = root.path().to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::panic::catch_unwind(move || {
        let cluster = Cluster::build(&spec, &root_path).expect("build lab");
        let s = cluster.state();
        let loops: Vec<String> = s
            .disks
            .values()
            .filter_map(|d| d.loop_device.clone())
            .collect();
        tx.send((
            s.namespaces.clone(),
            loops,
            s.processes.values().cloned().collect::<Vec<_>>(),
            s.dir.clone(),
        ))
        .expect("send");
        panic!("deliberate panic inside the lab");
    });
    assert!(result.is_err(), "the closure should have panicked");
    let (namespaces, loops, pids, dir) = rx.recv().expect("lab was built before the panic");
    assert_eq!(namespaces.len(), 6, "2 nodes + 2 hubs + 2 routers");
    assert!(!pids.is_empty());
    lab_resources_gone(&namespaces, &loops, &pids, &dir);
}

#[test]
fn half_built_lab_is_removed_by_down_from_its_state_file() {
    let root = root_dir();
    // Build, then "crash": detach (nothing removed), then run `down` from the state file.
    let spec = LabSpec::new("crash", 3).unique();
    let cluster = Cluster::build_detached(&spec, root.path()).expect("build lab");
    let s = cluster.state().clone();
    let state_path = cluster.detach();
    for ns in &s.namespaces {
        assert!(netns::namespace_exists(ns), "{ns} should survive a detach");
    }
    let problems = hadiag::lab::cluster::down(&state_path).expect("down");
    assert!(problems.is_empty(), "{problems:?}");
    let loops: Vec<String> = s
        .disks
        .values()
        .filter_map(|d| d.loop_device.clone())
        .collect();
    let pids: Vec<sys::ProcessRecord> = s.processes.values().cloned().collect();
    lab_resources_gone(&s.namespaces, &loops, &pids, &s.dir);
    // A state file that names resources that never came to be (crash mid-`up`) is fine too.
    let mut file = hadiag::lab::state::StateFile::create(root.path(), "half").expect("state");
    file.record_namespace("hdg-never-created-xyz")
        .expect("record");
    let problems = hadiag::lab::cluster::down(file.path()).expect("down");
    assert!(problems.is_empty(), "{problems:?}");
}

fn carrier(ns: &Netns, dev: &str) -> String {
    let out = ns
        .exec(&["cat", &format!("/sys/class/net/{dev}/carrier")])
        .expect("read carrier");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn dd_direct(path: &Path, timeout_s: &str) -> (bool, String) {
    let out = sys::run_unchecked(
        "timeout",
        &[
            timeout_s,
            "dd",
            &format!("if={}", path.display()),
            "of=/dev/null",
            "bs=4096",
            "count=1",
            "iflag=direct",
        ],
        None,
    )
    .expect("dd runs");
    let mut err = String::from_utf8_lossy(&out.stderr).to_string();
    if out.status.code() == Some(124) {
        // `timeout` killed dd: the read did not return (a hung disk), as opposed to failing.
        err.push_str("[timed out]");
    }
    (out.status.success(), err)
}

#[test]
fn faults_do_what_they_say_and_heal() {
    let root = root_dir();
    let spec = LabSpec::two_node("faults").unique();
    let mut c = Cluster::build(&spec, root.path()).expect("build lab");
    let l = c.layout().clone();
    let n1 = c.node_ns("n1").expect("ns");
    let n2 = c.node_ns("n2").expect("ns");
    let a2 = l.interface("n2", "A").expect("if").address.to_string();
    let b2 = l.interface("n2", "B").expect("if").address.to_string();
    let ra = l.network("A").expect("net").reference.to_string();
    let rb = l.network("B").expect("net").reference.to_string();
    let dev_a2 = l.interface("n2", "A").expect("if").device.clone();
    assert!(ping_ok(&n1, &a2) && ping_ok(&n1, &b2));
    let words =
        |s: &str| LabFault::parse(&s.split(' ').map(String::from).collect::<Vec<_>>()).expect(s);

    // NIC silent: no traffic on A, carrier up, B unaffected.
    let f = words("nic-silent n2 A");
    c.inject(&f).expect("inject");
    assert_eq!(carrier(&n2, &dev_a2), "1", "silent NIC must keep carrier");
    assert!(
        !n1.ping(ip(&a2), Duration::from_secs(1)).expect("ping"),
        "silent NIC answered"
    );
    assert!(
        !n2.ping(ip(&ra), Duration::from_secs(1)).expect("ping"),
        "silent NIC reached its router"
    );
    assert!(ping_ok(&n1, &b2), "network B affected by a fault on A");
    c.heal(&f).expect("heal");
    assert!(ping_ok(&n1, &a2), "heal did not restore A");

    // NIC down: carrier lost at the node.
    let f = words("nic-down n2 A");
    c.inject(&f).expect("inject");
    assert!(!n1.ping(ip(&a2), Duration::from_secs(1)).expect("ping"));
    c.heal(&f).expect("heal");
    assert!(ping_ok(&n1, &a2));

    // tx-only at n2: n2's packets leave but replies never come in, so n2's own ping fails,
    // and n1's ping to n2 fails too (n2 hears nothing).
    let f = words("nic-tx-only n2 A");
    c.inject(&f).expect("inject");
    assert!(!n2.ping(ip(&ra), Duration::from_secs(1)).expect("ping"));
    c.heal(&f).expect("heal");
    assert!(ping_ok(&n2, &ra));

    // Hub A down: nobody on A hears anybody or the router; B fine.
    let f = words("hub-down A");
    c.inject(&f).expect("inject");
    assert!(!n1.ping(ip(&a2), Duration::from_secs(1)).expect("ping"));
    assert!(!n1.ping(ip(&ra), Duration::from_secs(1)).expect("ping"));
    assert!(ping_ok(&n1, &rb));
    c.heal(&f).expect("heal");
    assert!(ping_ok(&n1, &a2));

    // Router A down: the segment works, the reference does not answer.
    let f = words("router-down A");
    c.inject(&f).expect("inject");
    assert!(!n1.ping(ip(&ra), Duration::from_secs(1)).expect("ping"));
    assert!(ping_ok(&n1, &a2), "router fault broke the segment");
    c.heal(&f).expect("heal");
    assert!(ping_ok(&n1, &ra));

    // rx-only at n2: n2 hears but cannot answer.
    let f = words("nic-rx-only n2 A");
    c.inject(&f).expect("inject");
    assert!(!n1.ping(ip(&a2), Duration::from_secs(1)).expect("ping"));
    c.heal(&f).expect("heal");
    assert!(ping_ok(&n1, &a2));

    // Random loss: 50 % each way loses some echoes and lets some through (the chance that
    // 40 echoes all pass or all fail is below 1e-4).
    let f = words("nic-lossy n2 A 50");
    c.inject(&f).expect("inject");
    let answered = (0..40)
        .filter(|_| n1.ping(ip(&a2), Duration::from_millis(100)).expect("ping"))
        .count();
    c.heal(&f).expect("heal");
    assert!(
        answered > 0 && answered < 40,
        "50 % loss each way: {answered} of 40 echoes answered"
    );
    assert!(ping_ok(&n1, &a2));

    // 100 % loss is a drop; 0 % passes everything.
    let f = words("loss 100");
    c.inject(&f).expect("inject");
    assert!(!n1.ping(ip(&b2), Duration::from_secs(1)).expect("ping"));
    c.heal(&f).expect("heal");
    assert!(ping_ok(&n1, &b2));

    // Disk: EIO, then hung, then healthy again.
    let disk = c.state().disks.get("n2").expect("disk").clone();
    assert!(
        disk.loop_device.is_some(),
        "no loop device could be attached (need /dev/loop-control and losetup)"
    );
    assert!(
        dd_direct(&disk.probe_path, "5").0,
        "healthy disk unreadable"
    );
    c.inject(&words("disk-fail n2")).expect("inject");
    let (ok, err) = dd_direct(&disk.probe_path, "5");
    assert!(
        !ok && err.contains("Input/output error"),
        "expected EIO, got ok={ok} {err}"
    );
    c.heal(&words("disk-fail n2")).expect("heal");
    assert!(dd_direct(&disk.probe_path, "5").0, "disk not healed");
    c.inject(&words("disk-hang n2")).expect("inject");
    let (ok, err) = dd_direct(&disk.probe_path, "1");
    assert!(
        !ok && err.contains("[timed out]"),
        "hung disk read returned instead of hanging: ok={ok} {err}"
    );
    c.heal(&words("disk-hang n2")).expect("heal");
    assert!(
        dd_direct(&disk.probe_path, "5").0,
        "disk not healed after hang"
    );

    // Serial cut = relay stopped (state T), heal = running again.
    let relay = c
        .state()
        .processes
        .get("serial:n1-n2")
        .expect("serial relay")
        .clone();
    // SIGSTOP/SIGCONT take effect when the kernel next schedules the process: on a loaded
    // machine /proc shows the new state a moment later, so wait for it (generously).
    let stat_until = |stopped: bool| {
        let path = format!("/proc/{}/stat", relay.pid);
        let mut stat = String::new();
        for _ in 0..600 {
            stat = std::fs::read_to_string(&path).expect("stat");
            if stat.contains(") T ") == stopped {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        stat
    };
    c.inject(&words("serial-cut n1 n2")).expect("inject");
    let stat = stat_until(true);
    assert!(
        stat.contains(") T "),
        "relay not stopped within 30 s: {stat}"
    );
    assert_eq!(c.state().faults.len(), 1);
    let healed = c.heal_all().expect("heal all");
    assert_eq!(healed.len(), 1);
    let stat = stat_until(false);
    assert!(
        !stat.contains(") T "),
        "relay still stopped after 30 s: {stat}"
    );
    // No daemons in this test: node faults say so instead of pretending.
    let e = c.inject(&words("node-kill n1")).unwrap_err().to_string();
    assert!(e.contains("daemon:n1"), "{e}");
}
