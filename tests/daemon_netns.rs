//! Real `hadiag run` daemons in network namespaces (lab rules of docs/architecture.md#testing): two nodes n1, n2 on two
//! networks A (198.51.100.0/24) and B (203.0.113.0/24), each network a bridge in its own hub
//! namespace with a router namespace holding the reference (.254), and a pty pair relayed by the lab as the
//! serial line. No namespace has a default route or a link to the host namespace; everything is
//! torn down by the guards of `hadiag::lab` (namespaces, serial relay, daemons), also on failure.
//!
//! The daemons are observed through their status files (`<state_dir>/status-<node>.json`,
//! rewritten every second) and their logs. Needs root (namespaces, raw ICMP).

use hadiag::lab::{ChildGuard, Netns, SerialLine};
use serde_json::Value;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);
const K1: &str =
    "{ key_id: k1, key: 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff }";

struct Opts {
    heartbeat: &'static str,
    port: u16,
    n2_disk_fifo: bool,
    monitor: Option<String>,
    /// Network B carries raw-Ethernet heartbeats (EtherType 0x88B5) instead of UDP.
    b_ethernet: bool,
    /// n1 logs at debug level into a FIFO nobody reads (a stuck log sink); the read end is
    /// returned by `start` and must be kept open.
    n1_stuck_log: bool,
    /// The `auth:` mapping (default: key k1 only).
    auth: Option<String>,
    /// Extra hook lines under `hooks:` (e.g. a fence hook).
    fence: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            heartbeat: "100ms",
            port: 7946,
            n2_disk_fifo: false,
            monitor: None,
            b_ethernet: false,
            n1_stuck_log: false,
            auth: None,
            fence: false,
        }
    }
}

/// Field order matters for Drop: daemons die before the serial line and the namespaces go.
struct Lab {
    daemons: Vec<(String, ChildGuard)>,
    serial: Option<SerialLine>,
    ns: Vec<(String, Netns)>,
    dir: tempfile::TempDir,
}

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "these tests need root (network namespaces, raw ICMP)"
    );
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

impl Lab {
    fn ns(&self, role: &str) -> &Netns {
        &self.ns.iter().find(|(r, _)| r == role).unwrap().1
    }

    fn build() -> Lab {
        require_root();
        let prefix = hadiag::lab::netns::unique_prefix();
        let mut ns = Vec::new();
        for role in ["n1", "n2", "hA", "hB", "rA", "rB"] {
            ns.push((
                role.to_string(),
                Netns::with_role(&prefix, role).expect("namespace"),
            ));
        }
        let dir = tempfile::tempdir().unwrap();
        let mut lab = Lab {
            daemons: Vec::new(),
            serial: None,
            ns,
            dir,
        };
        for (net, hub, router, subnet) in [
            ("A", "hA", "rA", "198.51.100"),
            ("B", "hB", "rB", "203.0.113"),
        ] {
            lab.ns(hub).bridge("br0").unwrap();
            for (i, n) in ["n1", "n2"].iter().enumerate() {
                let dev = if net == "A" { "eth1" } else { "eth2" };
                let port = format!("{n}{}", net.to_lowercase());
                lab.ns(n).veth(dev, lab.ns(hub), &port).unwrap();
                lab.ns(hub).enslave(&port, "br0").unwrap();
                lab.ns(n)
                    .add_address(dev, ip(&format!("{subnet}.{}", i + 1)), 24)
                    .unwrap();
            }
            lab.ns(router).veth("eth0", lab.ns(hub), "router").unwrap();
            lab.ns(hub).enslave("router", "br0").unwrap();
            lab.ns(router)
                .add_address("eth0", ip(&format!("{subnet}.254")), 24)
                .unwrap();
        }
        for (_, n) in &lab.ns {
            assert!(
                !n.has_default_route().unwrap(),
                "lab namespaces must not route anywhere"
            );
        }
        assert!(lab
            .ns("n1")
            .ping_until(ip("198.51.100.254"), Duration::from_secs(30))
            .unwrap());
        assert!(lab
            .ns("n2")
            .ping_until(ip("203.0.113.254"), Duration::from_secs(30))
            .unwrap());
        lab.serial = Some(SerialLine::temp().expect("pty pair with its relay"));
        std::fs::write(lab.path("disk1.img"), vec![0u8; 16384]).unwrap();
        std::fs::write(lab.path("disk2.img"), vec![0u8; 16384]).unwrap();
        lab
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self, o: &Opts) -> PathBuf {
        let serial = self.serial.as_ref().unwrap();
        let disk2 = if o.n2_disk_fifo {
            self.path("disk2.fifo")
        } else {
            self.path("disk2.img")
        };
        let monitors = match &o.monitor {
            Some(m) => format!("monitors:\n{m}\n"),
            None => String::new(),
        };
        let text = format!(
            r#"cluster: netns
auth: {auth}
state_dir: {state}
listen: 127.0.0.1:0
networks:
  A: {{ references: [198.51.100.254], transport: udp, port: {port} }}
  B: {{ references: [203.0.113.254], transport: {btransport}, port: {port} }}
nodes:
  n1:
    priority: 100
    interfaces:
      A: {{ device: eth1, address: 198.51.100.1 }}
      B: {{ device: eth2, address: 203.0.113.1 }}
    serial: [ {{ device: {sa}, baud: 115200, peer: n2 }} ]
    disk: {disk1}
  n2:
    priority: 90
    interfaces:
      A: {{ device: eth1, address: 198.51.100.2 }}
      B: {{ device: eth2, address: 203.0.113.2 }}
    serial: [ {{ device: {sb}, baud: 115200, peer: n1 }} ]
    disk: {disk2}
timing:
  heartbeat_interval: {hb}
  detect_multiplier: 3
  reference_interval: 100ms
  reference_timeout: 300ms
  disk_interval: 200ms
  disk_timeout: 500ms
  self_fence_after: 3s
  fence_deadline: 9s
{monitors}hooks:
  isolate: {{ command: [/bin/sh, -c, "echo isolate $HADIAG_NODE >> {hooklog}"], timeout: 1s }}
  takeover: {{ command: [/bin/sh, -c, "echo takeover $HADIAG_NODE $HADIAG_PEER >> {hooklog}"], timeout: 5s }}
{fence}"#,
            auth = o.auth.clone().unwrap_or_else(|| K1.to_string()),
            fence = if o.fence {
                format!("  fence: {{ command: [/bin/sh, -c, \"echo fence $HADIAG_PEER >> {}\"], timeout: 5s }}\n", self.path("hooks.log").display())
            } else {
                String::new()
            },
            state = self.path("state").display(),
            port = o.port,
            sa = serial.path_a().display(),
            sb = serial.path_b().display(),
            disk1 = self.path("disk1.img").display(),
            disk2 = disk2.display(),
            hb = o.heartbeat,
            btransport = if o.b_ethernet { "ethernet" } else { "udp" },
            hooklog = self.path("hooks.log").display(),
        );
        let p = self.path("cluster.yaml");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn start(&mut self, o: &Opts) -> Option<std::fs::File> {
        let cfg = self.config(o);
        let mut stuck_reader = None;
        for n in ["n1", "n2"] {
            let mut cmd = self.ns(n).command(
                env!("CARGO_BIN_EXE_hadiag"),
                &["run", "--config", cfg.to_str().unwrap(), "--node", n],
            );
            cmd.env("RUST_LOG", "info").env("NO_COLOR", "1");
            let mut log = self.path(&format!("{n}.log"));
            if n == "n1" && o.n1_stuck_log {
                log = self.path("n1.log.fifo");
                let c = std::ffi::CString::new(log.to_str().unwrap()).unwrap();
                // SAFETY: mkfifo on a valid NUL-terminated path.
                assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
                // Opened (so the daemon's open for writing does not wait) and never read.
                use std::os::unix::fs::OpenOptionsExt;
                stuck_reader = Some(
                    std::fs::OpenOptions::new()
                        .read(true)
                        .custom_flags(libc::O_NONBLOCK)
                        .open(&log)
                        .expect("open the FIFO's read end"),
                );
                cmd.env("RUST_LOG", "debug");
            }
            let g =
                ChildGuard::spawn(cmd, &format!("hadiag {n}"), Some(&log)).expect("start daemon");
            self.daemons.push((n.to_string(), g));
        }
        stuck_reader
    }

    fn daemon(&mut self, n: &str) -> &mut ChildGuard {
        &mut self.daemons.iter_mut().find(|(k, _)| k == n).unwrap().1
    }

    fn log(&self, n: &str) -> String {
        std::fs::read_to_string(self.path(&format!("{n}.log"))).unwrap_or_default()
    }

    fn status(&self, n: &str) -> Option<Value> {
        let text = std::fs::read_to_string(self.path(&format!("state/status-{n}.json"))).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Polls node `n`'s status until `pred` holds; panics with the last status and log.
    fn wait_for(&self, n: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            if let Some(s) = self.status(n) {
                if pred(&s) {
                    return s;
                }
            }
            if start.elapsed() > WAIT {
                panic!(
                    "{n}: timed out waiting for {what}\nstatus: {}\nlog tail:\n{}",
                    self.status(n).map(|s| s.to_string()).unwrap_or_default(),
                    tail(&self.log(n), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_healthy(&self) {
        for n in ["n1", "n2"] {
            self.wait_for(n, "healthy with both NICs and serial heard", |s| {
                s["verdict"] == "healthy"
                    && heard(s, "A")
                    && heard(s, "B")
                    && s["serial"]
                        .as_object()
                        .is_some_and(|m| m.values().all(|v| v["heard"] == true))
            });
        }
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn heard(s: &Value, net: &str) -> bool {
    s["networks"][net]["heard"]
        .as_array()
        .is_some_and(|a| !a.is_empty())
}

fn received(s: &Value, net: &str, from: &str) -> u64 {
    s["networks"][net]["received"][from].as_u64().unwrap_or(0)
}

fn reference_state(s: &Value, net: &str) -> String {
    s["networks"][net]["references"]
        .as_object()
        .and_then(|m| m.values().next())
        .and_then(|r| r["state"].as_str())
        .unwrap_or("none")
        .to_string()
}

fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

#[test]
fn heartbeats_on_both_nics_icmp_bound_per_nic_and_clean_shutdown() {
    let mut lab = Lab::build();
    lab.start(&Opts::default());
    lab.wait_healthy();
    let s1 = lab.status("n1").unwrap();
    for net in ["A", "B"] {
        assert!(received(&s1, net, "n2") > 0, "n1 hears n2 on {net}: {s1}");
        assert_eq!(
            reference_state(&s1, net),
            "ok",
            "n1 reaches the router of {net}"
        );
        assert_eq!(s1["networks"][net]["carrier"], true);
    }
    assert!(
        s1["serial"]["n2"]["received"].as_u64().unwrap() > 0,
        "serial messages flow"
    );
    assert_eq!(s1["disk"]["state"], "ok");
    assert!(
        s1["rejected"].as_object().unwrap().is_empty(),
        "no rejects in a clean lab: {s1}"
    );

    // n2's NIC on A goes down: only n2's reference on A fails (ICMP is bound per NIC — with a
    // route through B it would still answer), B keeps working.
    lab.ns("n2").set_link("eth1", false).unwrap();
    let s2 = lab.wait_for("n2", "reference A failing after eth1 down", |s| {
        reference_state(s, "A") != "ok" && s["networks"]["A"]["carrier"] == false
    });
    assert_eq!(
        reference_state(&s2, "B"),
        "ok",
        "reference on B unaffected: {s2}"
    );
    let s1 = lab.wait_for("n1", "n2 silent on A only", |s| {
        !heard(s, "A") && heard(s, "B")
    });
    assert_eq!(
        reference_state(&s1, "A"),
        "ok",
        "n1 still reaches A's router: {s1}"
    );
    for n in ["n1", "n2"] {
        lab.wait_for(n, "verdict attachment n2.A", |s| {
            s["verdict"] == "attachment_failed" && s["subjects"][0] == "attachment n2.A"
        });
    }
    lab.ns("n2").set_link("eth1", true).unwrap();
    lab.wait_healthy();

    // SIGTERM: clean shutdown, sockets closed, exit.
    assert!(lab.daemon("n1").signal(libc::SIGTERM));
    let start = Instant::now();
    while lab.daemon("n1").is_running() {
        // A generous bound: a clean exit takes milliseconds; this only keeps a hang from
        // blocking CI for ever, and says what the daemon logged.
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "n1 did not exit within 60 s of SIGTERM; its log:\n{}",
            lab.log("n1")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = lab.log("n1");
    assert!(
        log.contains("SIGTERM: shutting down") && log.contains("stopped; sockets closed"),
        "{}",
        tail(&log, 20)
    );
    // n2 hears nobody anymore on any path but still runs.
    lab.wait_for("n2", "n1 silent everywhere", |s| {
        !heard(s, "A") && !heard(s, "B")
    });
    assert!(lab.daemon("n2").is_running());
}

#[test]
fn serial_flows_a_cut_is_detected_and_a_hang_up_reported() {
    let mut lab = Lab::build();
    lab.start(&Opts::default());
    lab.wait_healthy();
    let before = lab.status("n2").unwrap()["serial"]["n1"]["received"]
        .as_u64()
        .unwrap();
    assert!(before > 0);
    // Cut: relay frozen, both ptys stay open, nothing crosses.
    assert!(lab.serial.as_mut().unwrap().cut());
    for n in ["n1", "n2"] {
        let s = lab.wait_for(n, "serial line silent and diagnosed", |s| {
            s["verdict"] == "serial_failed"
                && s["serial"]
                    .as_object()
                    .unwrap()
                    .values()
                    .all(|v| v["heard"] == false)
        });
        assert_eq!(s["subjects"][0], "serial n1–n2");
        assert!(heard(&s, "A") && heard(&s, "B"), "networks unaffected: {s}");
    }
    assert!(lab.serial.as_mut().unwrap().restore());
    lab.wait_healthy();
    // Hang-up: the relay ends, the ptys vanish; the daemons see the port close and keep retrying.
    drop(lab.serial.take());
    for n in ["n1", "n2"] {
        lab.wait_for(n, "serial port reported closed", |s| {
            s["serial"]
                .as_object()
                .unwrap()
                .values()
                .all(|v| v["open"] == false)
        });
        assert!(
            lab.log(n).contains("serial line hung up"),
            "{}",
            tail(&lab.log(n), 20)
        );
    }
}

#[test]
fn hung_disk_is_reported_while_heartbeats_flow_and_a_slow_monitor_is_killed() {
    let mut lab = Lab::build();
    let fifo = lab.path("disk2.fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: valid C string. A FIFO without a writer: open(2) for reading never returns.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let pids = lab.path("monitor.pids");
    let monitor = format!(
        "  - {{ name: slow, command: [/bin/sh, -c, \"sleep 60 & echo $$ $! >> {}; wait\"], interval: 1s, timeout: 400ms }}",
        pids.display()
    );
    lab.start(&Opts {
        n2_disk_fifo: true,
        monitor: Some(monitor),
        ..Opts::default()
    });

    let s = lab.wait_for("n2", "disk hung for over a second", |s| {
        s["disk"]["state"] == "hung" && s["disk"]["hung_seconds"].as_f64().unwrap_or(0.0) > 1.0
    });
    let at_hang = received(&s, "A", "n1");
    // Heartbeats keep flowing both ways while the read is stuck.
    lab.wait_for("n2", "heartbeats still arriving", |s| {
        received(s, "A", "n1") >= at_hang + 10
            && s["disk"]["state"] == "hung"
            && heard(s, "A")
            && heard(s, "B")
    });
    let s1 = lab.wait_for("n1", "n1 diagnoses n2's disk", |s| {
        s["verdict"] == "disk_failed"
    });
    assert_eq!(s1["subjects"][0], "disk of n2");
    assert!(heard(&s1, "A") && heard(&s1, "B"));

    // The monitor sleeps past its 400 ms timeout: reported timed out, its process group killed.
    let s = lab.wait_for("n1", "monitor timed out twice", |s| {
        s["monitors"]["slow"]["timed_out"] == true
            && s["monitors"]["slow"]["runs"].as_u64().unwrap_or(0) >= 2
    });
    assert_eq!(s["monitors"]["slow"]["ok"], false);
    let text = std::fs::read_to_string(&pids).unwrap();
    let first: Vec<u32> = text
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(first.len(), 2, "shell and its background sleep: {text}");
    for pid in first {
        assert!(
            process_gone(pid),
            "monitor process {pid} survived its timeout"
        );
    }
}

#[test]
fn sighup_applies_a_new_interval_and_refuses_a_topology_change() {
    let mut lab = Lab::build();
    lab.start(&Opts::default());
    lab.wait_healthy();
    let rate = |lab: &Lab| {
        let a = received(&lab.status("n2").unwrap(), "B", "n1");
        std::thread::sleep(Duration::from_secs(3));
        let b = received(&lab.status("n2").unwrap(), "B", "n1");
        (b - a) as f64 / 3.0
    };
    let fast = rate(&lab);
    assert!(fast > 6.0, "about 10 heartbeats/s at 100 ms, got {fast}");

    lab.config(&Opts {
        heartbeat: "500ms",
        ..Opts::default()
    });
    for n in ["n1", "n2"] {
        assert!(lab.daemon(n).signal(libc::SIGHUP));
    }
    for n in ["n1", "n2"] {
        let s = lab.wait_for(n, "new interval applied", |s| {
            s["heartbeat_interval_seconds"].as_f64() == Some(0.5)
        });
        assert_eq!(s["reloads"]["applied"], 1);
    }
    std::thread::sleep(Duration::from_secs(1));
    let slow = rate(&lab);
    assert!(slow < 3.5, "about 2 heartbeats/s at 500 ms, got {slow}");
    lab.wait_healthy();

    // A topology change (heartbeat port) is refused: logged, old config kept, still healthy.
    lab.config(&Opts {
        heartbeat: "500ms",
        port: 7999,
        ..Opts::default()
    });
    assert!(lab.daemon("n1").signal(libc::SIGHUP));
    let s = lab.wait_for("n1", "reload refused", |s| s["reloads"]["refused"] == 1);
    assert_eq!(s["heartbeat_interval_seconds"].as_f64(), Some(0.5));
    assert!(
        lab.log("n1").contains("reload refused"),
        "{}",
        tail(&lab.log("n1"), 20)
    );
    assert!(lab.daemon("n1").is_running());
    // The API and the metrics say what happened, naming the place and the cause.
    let status = api_get(&lab, "n1", "/api/v1/status");
    let body = status.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let st: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {status}"));
    let r = &st["reload"];
    assert_eq!(r["outcome"], "refused", "{r}");
    assert_eq!(
        (r["applied_total"].as_u64(), r["refused_total"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );
    let err = r["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("networks") && err.contains("coordinated restart"),
        "{r}"
    );
    let metrics = api_get(&lab, "n1", "/metrics");
    assert!(
        metrics.contains("hadiag_config_last_reload_successful 0")
            && metrics.contains("hadiag_config_reloads_total{result=\"applied\"} 1"),
        "{metrics}"
    );
    std::thread::sleep(Duration::from_secs(2));
    lab.wait_healthy();
    let _ = Path::new("unused");
}

/// `GET path` on `node`'s API, from inside its namespace (the port is in its log): the whole
/// response, head and body; empty when it cannot connect.
fn api_get(lab: &Lab, node: &str, path: &'static str) -> String {
    let port = lab
        .log(node)
        .lines()
        .find(|l| l.contains("metrics and API listening"))
        .and_then(|l| l.split("listen=").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or_else(|| panic!("{node}'s API port in its log"));
    let ns = lab.ns(node).name().to_string();
    in_netns(&ns, move || {
        use std::io::{Read, Write};
        let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return String::new();
        };
        let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = write!(
            c,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
        let mut out = String::new();
        let _ = c.read_to_string(&mut out);
        out
    })
    .join()
    .unwrap_or_default()
}

#[test]
fn raw_ethernet_heartbeats_on_a_network_configured_ethernet() {
    let mut lab = Lab::build();
    lab.start(&Opts {
        b_ethernet: true,
        ..Opts::default()
    });
    lab.wait_healthy();
    for (n, peer) in [("n1", "n2"), ("n2", "n1")] {
        let s = lab.status(n).unwrap();
        assert!(
            received(&s, "B", peer) > 0,
            "{n} hears {peer} over raw Ethernet on B: {s}"
        );
        assert!(
            received(&s, "A", peer) > 0,
            "{n} hears {peer} over UDP on A: {s}"
        );
        assert!(
            s["rejected"].as_object().unwrap().is_empty(),
            "own frames are filtered, nothing rejected: {s}"
        );
    }
    assert!(
        lab.log("n1").contains("transport=Ethernet"),
        "{}",
        tail(&lab.log("n1"), 20)
    );
    // A dead NIC on B silences the Ethernet path only.
    lab.ns("n2").set_link("eth2", false).unwrap();
    lab.wait_for("n1", "n2 silent on B only", |s| {
        !heard(s, "B") && heard(s, "A")
    });
}

/// A log sink that stops reading (journald stalled, a full pipe) must not stop the daemon:
/// n1 logs at debug level into a FIFO nobody reads, and a flood of junk datagrams makes it
/// log a line per datagram ("message rejected"). The pipe is full after a few hundred lines;
/// n1 must keep sending heartbeats (n2 stays healthy and keeps hearing it) and keep working.
#[test]
fn a_stuck_log_sink_never_stops_the_heartbeats() {
    let mut lab = Lab::build();
    let o = Opts {
        n1_stuck_log: true,
        ..Opts::default()
    };
    let _stuck = lab.start(&o).expect("the FIFO's read end");
    // n1's log goes nowhere, so its status file is what shows it healthy.
    lab.wait_healthy();
    let before = lab.status("n2").unwrap();
    let ns2 = format!("/run/netns/{}", lab.ns("n2").name());
    let port = o.port;
    let flood = std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(&ns2).expect("n2's namespace");
        // SAFETY: setns on a valid namespace fd; it changes only this thread's namespace.
        assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
        let sock = std::net::UdpSocket::bind("198.51.100.2:0").expect("bind in n2");
        for i in 0..20_000u32 {
            let _ = sock.send_to(
                format!("junk {i} not a hadiag message").as_bytes(),
                ("198.51.100.1", port),
            );
            if i % 100 == 99 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    flood.join().expect("flood");
    std::thread::sleep(Duration::from_secs(2));
    let s1 = lab.status("n1").expect("n1 status");
    let rejected: u64 = s1["rejected"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    assert!(
        rejected > 2_000,
        "n1 did not process the flood (so nothing was logged): rejected {rejected}: {s1}"
    );
    let after = lab.status("n2").unwrap();
    assert_eq!(
        after["verdict"], "healthy",
        "n2 while n1's log sink is stuck: {after}"
    );
    for net in ["A", "B"] {
        assert!(
            received(&after, net, "n1") > received(&before, net, "n1") + 20,
            "n2 stopped hearing n1 on {net}: before {before}, after {after}"
        );
    }
}

/// Live key rotation in three steps on two running daemons (the README's procedure), plus the
/// fence policy following the hooks on reload. Every heartbeat of the rotation is accepted:
/// no rejection of any kind, the verdict stays healthy, and each step's reload result lists
/// what went live.
#[test]
fn keys_rotate_live_in_three_steps_without_a_rejected_heartbeat() {
    let mut lab = Lab::build();
    lab.start(&Opts::default());
    lab.wait_healthy();
    let k2 =
        "{ key_id: k2, key: ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100 }";
    let k1_inline =
        "key_id: k1, key: 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let k2_inline =
        "key_id: k2, key: ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
    let k1_entry = format!("{{ {k1_inline} }}");
    let steps = [
        // 1. every node accepts the new key; still signs with the old one.
        (
            format!("{{ {k1_inline}, accept: [ {k2} ] }}"),
            "k1",
            "auth.accept: [] -> [k2]",
        ),
        // 2. every node signs with the new key; still accepts the old one.
        (
            format!("{{ {k2_inline}, accept: [ {k1_entry} ] }}"),
            "k2",
            "auth.key_id (signing): k1 -> k2",
        ),
        // 3. every node drops the old key.
        (
            format!("{{ {k2_inline} }}"),
            "k2",
            "auth.accept: [k1] -> []",
        ),
    ];
    let mut before: Vec<u64> = ["n1", "n2"]
        .iter()
        .map(|n| {
            received(
                &lab.status(n).unwrap(),
                "B",
                if *n == "n1" { "n2" } else { "n1" },
            )
        })
        .collect();
    for (i, (auth, signing, change)) in steps.iter().enumerate() {
        let applied = i as u64 + 1;
        lab.config(&Opts {
            auth: Some(auth.clone()),
            fence: i == 2,
            ..Opts::default()
        });
        // One node at a time, with heartbeats flowing in between: a cluster is never
        // reloaded at one instant.
        for n in ["n1", "n2"] {
            assert!(lab.daemon(n).signal(libc::SIGHUP));
            let s = lab.wait_for(n, &format!("rotation step {applied} applied"), |s| {
                s["reloads"]["applied"] == applied && s["signing_key"] == *signing
            });
            let listed = s["reloads"]["last_applied"].to_string();
            assert!(listed.contains(change), "step {applied}: {listed}");
            std::thread::sleep(Duration::from_millis(700));
        }
        for (k, n) in ["n1", "n2"].iter().enumerate() {
            let peer = if *n == "n1" { "n2" } else { "n1" };
            let s = lab.wait_for(n, "heartbeats still counted", |s| {
                received(s, "B", peer) > before[k] + 3
            });
            before[k] = received(&s, "B", peer);
            assert_eq!(s["verdict"], "healthy", "step {applied}: {s}");
            assert!(
                s["rejected"].as_object().is_none_or(|m| m.is_empty()),
                "step {applied}: heartbeats rejected during the rotation: {}",
                s["rejected"]
            );
        }
    }
    for n in ["n1", "n2"] {
        let s = lab.status(n).unwrap();
        assert_eq!(s["accepted_keys"], serde_json::json!(["k2"]));
        // The fence hook added in step 3 is the core's policy now, not only a command.
        assert_eq!(s["fence_before_takeover"], true, "{s}");
        let listed = s["reloads"]["last_applied"].to_string();
        assert!(listed.contains("hooks.fence"), "{listed}");
    }
    lab.wait_healthy();
}

/// Runs `f` on a thread that has joined the network namespace `ns` (sockets it opens live
/// there). The test process itself never leaves its namespace.
fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        let fd = std::fs::File::open(&path).expect("namespace handle");
        // SAFETY: setns on a valid namespace fd; affects this thread only.
        assert_eq!(
            unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) },
            0,
            "setns"
        );
        f()
    })
}

fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(") ")?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

/// A 50,000 packets/s junk flood on network A, sent from the router namespace of A at n1's
/// heartbeat port: the junk is dropped before queueing (counted), and n1 keeps hearing n2 on B
/// and on the serial line, keeps its verdict and answers /metrics. Prints n1's CPU and the
/// largest gap between status samples that saw a new heartbeat on B.
#[test]
fn a_junk_flood_on_one_network_leaves_the_other_paths_and_metrics_answering() {
    let mut lab = Lab::build();
    lab.start(&Opts::default());
    lab.wait_healthy();
    let pid = lab.daemon("n1").pid();
    let ra = lab.ns("rA").name().to_string();
    let flood_secs = 5u64;
    let flood = in_netns(&ra, move || {
        let s = std::net::UdpSocket::bind("198.51.100.254:0").expect("bind in rA");
        let start = Instant::now();
        let mut sent = 0u64;
        while start.elapsed() < Duration::from_secs(flood_secs) {
            // Paced: 50 per millisecond = 50,000 packets/s.
            let due = (start.elapsed().as_micros() as u64) * 50 / 1000;
            while sent < due {
                let _ = s.send_to(b"HADIAG/1 junk junk junk", "198.51.100.1:7946");
                sent += 1;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        (sent, start.elapsed())
    });
    let cpu0 = cpu_ticks(pid);
    let t0 = Instant::now();
    let mut samples: Vec<(Instant, u64, u64)> = Vec::new();
    let mut metrics_ok = 0;
    while t0.elapsed() < Duration::from_secs(flood_secs) {
        if let Some(s) = lab.status("n1") {
            samples.push((
                Instant::now(),
                received(&s, "B", "n2"),
                s["serial"]["n2"]["received"].as_u64().unwrap_or(0),
            ));
        }
        let ok = api_get(&lab, "n1", "/metrics").starts_with("HTTP/1.1 200");
        metrics_ok += ok as u32;
        std::thread::sleep(Duration::from_millis(250));
    }
    let (sent, took) = flood.join().unwrap();
    let cpu = cpu_ticks(pid) - cpu0;
    let elapsed = t0.elapsed();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let s = lab.wait_for("n1", "junk counted", |s| {
        s["transport"]["foreign_dropped"].as_u64().unwrap_or(0) > 0
    });
    let mut gap = Duration::ZERO;
    let mut last_new = samples.first().map(|x| x.0).unwrap_or(t0);
    for w in samples.windows(2) {
        if w[1].1 > w[0].1 {
            gap = gap.max(w[1].0 - last_new);
            last_new = w[1].0;
        }
    }
    let first = samples.first().copied().unwrap_or((t0, 0, 0));
    let last = samples.last().copied().unwrap_or((t0, 0, 0));
    println!(
        "flood: {sent} junk datagrams in {took:?} ({:.0}/s); n1 CPU {:.0}% of one core; B heartbeats from n2 {} -> {}, serial {} -> {}; largest gap between status samples with a new B heartbeat {gap:?} (status written every 1 s); /metrics answered {metrics_ok} times; foreign_dropped {}",
        sent as f64 / took.as_secs_f64(),
        100.0 * cpu as f64 / hz / elapsed.as_secs_f64(),
        first.1, last.1, first.2, last.2,
        s["transport"]["foreign_dropped"]
    );
    assert!(last.1 > first.1, "no heartbeat on B during the flood");
    assert!(last.2 > first.2, "no serial heartbeat during the flood");
    assert!(metrics_ok > 0, "/metrics never answered during the flood");
    lab.wait_healthy();
}
