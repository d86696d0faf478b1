//! Overhead benchmark: one real `hadiag run` daemon under the design load — valid, authenticated
//! heartbeats from 16 peers × 4 networks at 10 Hz (640 messages/s) — reporting the daemon's CPU
//! share of one core and its peak RSS (`/proc/<pid>/stat` utime+stime, `/proc/<pid>/status`
//! VmHWM). Targets: ≤ 1 % of one core, ≤ 16 MiB RSS.
//!
//! Run as root (it builds two network namespaces):
//!
//! ```text
//! cargo build --release && cargo run --release --example overhead_load -- --seconds 60
//! ```
//!
//! Lab (lab rules of docs/architecture.md#testing, torn down by `hadiag::lab` guards): namespace `d` runs the daemon with
//! four NICs d0..d3 (one per network), veth-paired with g0..g3 in namespace `g`, where the load
//! generator thread (moved there with `setns`) binds the 16 peers' addresses and the reference
//! address of each network. Network n is 192.0.2.(64n)/26: daemon .1, peers .2–.17, reference
//! .62. The daemon binary is the `hadiag` next to this example's directory (same profile), or
//! `--bin PATH`.
//!
//! `--lab` measures instead one real daemon among 16 real ones: a lab of 16 nodes on 4
//! networks (`hadiag::lab`, /26 slices of the documentation ranges, serial chain, 100 ms
//! beat), every daemon the same binary; the figures are n1's, with the mean of all 16 beside
//! them. Its load is what 15 live peers send, not a generator's.
//!
//! ```text
//! cargo build --release && cargo run --release --example overhead_load -- --lab --seconds 60
//! ```

use hadiag::core::topology::{NetworkId, NodeId};
use hadiag::core::view::{DiskHealth, NetView, Reach, View};
use hadiag::core::wire::{encode, Body, Header, Keyring, Message, Path};
use std::collections::{BTreeMap, BTreeSet};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PEERS: usize = 16;
const NETS: usize = 4;
const HZ: u64 = 10;
const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

fn addr(net: usize, host: usize) -> String {
    format!("192.0.2.{}", 64 * net + host)
}

fn config(dir: &std::path::Path) -> String {
    let mut s = format!(
        "cluster: bench\nauth: {{ key_id: k1, key: {KEY} }}\nstate_dir: {}\nlisten: 127.0.0.1:0\nnetworks:\n",
        dir.join("state").display()
    );
    for n in 0..NETS {
        s += &format!(
            "  N{n}: {{ references: [{}], transport: udp, port: 7946 }}\n",
            addr(n, 62)
        );
    }
    s += "nodes:\n";
    for k in 0..=PEERS {
        s += &format!("  p{k}:\n    priority: {}\n    interfaces:\n", 1000 - k);
        for n in 0..NETS {
            let dev = if k == 0 {
                format!("d{n}")
            } else {
                format!("g{n}")
            };
            s += &format!(
                "      N{n}: {{ device: {dev}, address: {} }}\n",
                addr(n, k + 1)
            );
        }
    }
    s += "timing:\n  heartbeat_interval: 100ms\n  detect_multiplier: 3\n  reference_interval: 1s\n  reference_timeout: 300ms\n  self_fence_after: 3s\n  fence_deadline: 8s\n";
    s
}

/// Moves the calling thread into network namespace `name`.
fn enter_netns(name: &str) {
    let f = std::fs::File::open(format!("/var/run/netns/{name}")).expect("netns file");
    use std::os::fd::AsRawFd;
    // SAFETY: setns on a valid namespace fd affects only the calling thread.
    let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(r, 0, "setns {name}: {}", std::io::Error::last_os_error());
}

fn proc_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(") ")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After "pid (comm) ": state is field 3, utime 14, stime 15 → indices 11 and 12 here.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let mut seconds = 60u64;
    let mut bin: Option<PathBuf> = None;
    let mut lab = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--seconds N")
            }
            "--bin" => bin = args.next().map(PathBuf::from),
            "--lab" => lab = true,
            other => panic!("unknown argument {other} (use --seconds N, --bin PATH, --lab)"),
        }
    }
    let bin = bin.unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("current exe");
        exe.parent()
            .and_then(|p| p.parent())
            .expect("target dir")
            .join("hadiag")
    });
    if lab {
        return lab_mode(&bin, seconds);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg_path = dir.path().join("bench.yaml");
    std::fs::write(&cfg_path, config(dir.path())).unwrap();
    let cfg =
        hadiag::config::load(&cfg_path).unwrap_or_else(|e| panic!("bench config invalid:\n{e}"));
    let topo = cfg.topology.clone();
    let keys = Keyring::new(&cfg.auth.key_id, &cfg.auth.key).expect("key");

    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "run as root: the benchmark builds network namespaces"
    );
    let prefix = hadiag::lab::netns::unique_prefix();
    let dns = hadiag::lab::Netns::with_role(&prefix, "d").expect("namespace d");
    let gns = hadiag::lab::Netns::with_role(&prefix, "g").expect("namespace g");
    for n in 0..NETS {
        dns.veth(&format!("d{n}"), &gns, &format!("g{n}"))
            .expect("veth");
        dns.add_address(&format!("d{n}"), addr(n, 1).parse().unwrap(), 26)
            .unwrap();
        for host in (2..=PEERS + 1).chain([62]) {
            gns.add_address(&format!("g{n}"), addr(n, host).parse().unwrap(), 26)
                .unwrap();
        }
    }
    let mut daemon = Command::new("ip")
        .args(["netns", "exec", dns.name()])
        .arg(&bin)
        .args([
            "run",
            "--config",
            cfg_path.to_str().unwrap(),
            "--node",
            "p0",
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("daemon.log")).unwrap())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {}: {e} (build it first: cargo build --release)",
                bin.display()
            )
        });
    let pid = daemon.id();

    // One socket per (peer, network), bound to the peer's address, created inside `g`.
    let gname = gns.name().to_string();
    let socks = std::thread::spawn(move || {
        enter_netns(&gname);
        let mut socks = Vec::new();
        for k in 1..=PEERS {
            for n in 0..NETS {
                let s =
                    UdpSocket::bind(format!("{}:7946", addr(n, k + 1))).expect("bind peer socket");
                s.set_nonblocking(true).unwrap();
                socks.push((k, n, s));
            }
        }
        socks
    })
    .join()
    .expect("generator sockets");
    let all: BTreeSet<NodeId> = (0..=PEERS as u16).map(NodeId).collect();
    let view_of = |k: usize| View {
        nets: (0..NETS as u16)
            .map(|n| {
                let heard: BTreeSet<NodeId> = all
                    .iter()
                    .copied()
                    .filter(|&x| x != NodeId(k as u16))
                    .collect();
                (
                    NetworkId(n),
                    NetView {
                        carrier: Reach::Yes,
                        reference: Reach::Yes,
                        heard,
                        degraded: BTreeSet::new(),
                    },
                )
            })
            .collect(),
        disk: DiskHealth::None,
        ..View::default()
    };
    let views: BTreeMap<usize, View> = (1..=PEERS).map(|k| (k, view_of(k))).collect();
    let incarnation = 1_000 + u64::from(std::process::id());
    let mut seq = [0u64; PEERS + 1];
    let period = Duration::from_millis(1000 / HZ);
    let warmup = Duration::from_secs(3);
    let start = Instant::now();
    let mut next = start;
    let mut sent = 0u64;
    let mut buf = [0u8; 2048];
    let mut measure: Option<(Instant, u64)> = None;
    let end = start + warmup + Duration::from_secs(seconds);
    let mut max_bytes = 0usize;
    while Instant::now() < end {
        for (k, n, s) in &socks {
            seq[*k] += 1;
            let msg = Message {
                header: Header {
                    sender: NodeId(*k as u16),
                    incarnation,
                    sequence: seq[*k],
                    path: Path::Network(NetworkId(*n as u16)),
                },
                body: Body::Heartbeat {
                    view: views[k].clone(),
                    echo: Vec::new(),
                },
                extensions: Vec::new(),
            };
            let bytes = encode(&msg, &topo, &keys).expect("encode");
            max_bytes = max_bytes.max(bytes.len());
            if s.send_to(&bytes, format!("{}:7946", addr(*n, 1))).is_ok() {
                sent += 1;
            }
            // Drain what the daemon sends us (keeps socket buffers from filling).
            while s.recv(&mut buf).is_ok() {}
        }
        if measure.is_none() && start.elapsed() >= warmup {
            measure = Some((Instant::now(), proc_cpu_ticks(pid).expect("daemon running")));
        }
        next += period;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    let (t0, ticks0) = measure.expect("measured");
    let ticks1 = proc_cpu_ticks(pid).expect("daemon still running");
    let elapsed = t0.elapsed().as_secs_f64();
    let hwm = proc_status_kib(pid, "VmHWM:").unwrap_or(0);
    let rss = proc_status_kib(pid, "VmRSS:").unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu = (ticks1 - ticks0) as f64 / hz / elapsed * 100.0;
    let status: serde_json::Value =
        std::fs::read_to_string(dir.path().join("state/status-p0.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
    let accepted: u64 = status["networks"]
        .as_object()
        .map(|m| {
            m.values()
                .flat_map(|n| {
                    n["received"]
                        .as_object()
                        .into_iter()
                        .flat_map(|r| r.values())
                })
                .filter_map(|v| v.as_u64())
                .sum()
        })
        .unwrap_or(0);
    // SAFETY: plain kill(2) on the child we started.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = daemon.wait();
    println!("hadiag overhead: {PEERS} peers x {NETS} networks at {HZ} Hz = {} msg/s, largest heartbeat {max_bytes} B", PEERS * NETS * HZ as usize);
    println!(
        "  measured over      {elapsed:.1} s (after {} s warm-up)",
        warmup.as_secs()
    );
    println!(
        "  messages sent      {sent}, accepted by the daemon {accepted}, rejected {}",
        status["rejected"]
    );
    println!("  daemon verdict     {}", status["verdict"]);
    println!("  CPU                {cpu:.2} % of one core (target <= 1 %)");
    println!(
        "  peak RSS (VmHWM)   {:.1} MiB (target <= 16 MiB), current RSS {:.1} MiB",
        hwm as f64 / 1024.0,
        rss as f64 / 1024.0
    );
    assert!(
        accepted > 0,
        "the daemon accepted no heartbeat: the figures would be meaningless"
    );
}

/// One real daemon among 16: see the module docs.
fn lab_mode(bin: &std::path::Path, seconds: u64) {
    use hadiag::lab::{cluster::Cluster, drill, layout::LabSpec};
    let root = tempfile::tempdir().expect("tempdir");
    let mut spec = LabSpec::new("ovh16", PEERS);
    spec.networks = (0..NETS).map(|n| format!("N{n}")).collect();
    let built = Instant::now();
    let mut cluster = Cluster::build(&spec.unique(), root.path()).expect("build 16 x 4 lab");
    cluster.start_daemons(bin).expect("start daemons");
    let up = built.elapsed();
    let healthy = drill::wait_healthy(&cluster, Duration::from_secs(120), &|| false)
        .unwrap_or_else(|e| panic!("16-node lab never became healthy: {e}"));
    let pids: Vec<(String, u32)> = cluster
        .layout()
        .nodes
        .iter()
        .filter_map(|n| cluster.daemon(&n.name).map(|r| (n.name.clone(), r.pid)))
        .collect();
    let warmup = Duration::from_secs(3);
    std::thread::sleep(warmup);
    let t0 = Instant::now();
    let ticks0: Vec<u64> = pids
        .iter()
        .map(|(_, p)| proc_cpu_ticks(*p).expect("daemon running"))
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    let ticks1: Vec<u64> = pids
        .iter()
        .map(|(_, p)| proc_cpu_ticks(*p).expect("daemon still running"))
        .collect();
    let elapsed = t0.elapsed().as_secs_f64();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu: Vec<f64> = ticks0
        .iter()
        .zip(&ticks1)
        .map(|(a, b)| (b - a) as f64 / hz / elapsed * 100.0)
        .collect();
    let hwm: Vec<u64> = pids
        .iter()
        .map(|(_, p)| proc_status_kib(*p, "VmHWM:").unwrap_or(0))
        .collect();
    let verdicts = hadiag::lab::observe::all_verdicts(cluster.layout());
    let healthy_now = verdicts
        .iter()
        .filter(|(_, v)| matches!(v, Ok(v) if v.kind == "healthy"))
        .count();
    let problems = cluster.teardown();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!(
        "hadiag overhead, lab mode: {PEERS} real daemons x {NETS} networks at {HZ} Hz (each hears {} heartbeats/s)",
        (PEERS - 1) * NETS * HZ as usize
    );
    println!(
        "  lab up (namespaces, links, relays, disks, daemons) {:.1} s; all healthy {:.1} s later",
        up.as_secs_f64(),
        healthy.as_secs_f64()
    );
    println!(
        "  measured over      {elapsed:.1} s (after {} s warm-up); {healthy_now} of {PEERS} healthy at the end",
        warmup.as_secs()
    );
    println!(
        "  CPU of {}          {:.2} % of one core (target <= 1 %); mean of all {PEERS} {:.2} %, max {:.2} %",
        pids[0].0,
        cpu[0],
        mean(&cpu),
        cpu.iter().cloned().fold(0.0, f64::max)
    );
    println!(
        "  peak RSS of {}     {:.1} MiB (target <= 16 MiB); max of all {:.1} MiB",
        pids[0].0,
        hwm[0] as f64 / 1024.0,
        hwm.iter().copied().max().unwrap_or(0) as f64 / 1024.0
    );
    if !problems.is_empty() {
        eprintln!("teardown problems: {problems:?}");
    }
}
