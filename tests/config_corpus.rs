//! Configuration tests: the examples load and resolve as documented; every broken config in
//! tests/config/bad/ reports exactly the errors listed in its trailing `# expect:` lines (place
//! and message, all of them); key-file rules; `hadiag check-config` exit codes; reload plans;
//! and the parser never panics on arbitrary input.

use hadiag::config::{self, AlertAction, Config, WebhookFormat};
use hadiag::core::diagnosis::{Component, VerdictKind};
use hadiag::core::topology::{NetworkId, NodeId, Timing, Transport};
use proptest::prelude::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const TWO: &str = "config/two-node.yaml";
const THREE: &str = "config/three-node.yaml";

fn load(path: &str) -> Config {
    config::load(Path::new(path)).unwrap_or_else(|e| panic!("{path} should load:\n{e}"))
}

fn messages(ws: &[config::ConfigError]) -> Vec<String> {
    ws.iter()
        .map(|w| format!("{}: {}", w.path, w.message))
        .collect()
}

#[test]
fn two_node_example_resolves_to_the_design_topology() {
    let c = load(TWO);
    let t = &c.topology;
    assert_eq!(t.cluster, "demo");
    assert_eq!(
        t.nodes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
        ["n1", "n2"]
    );
    assert_eq!(
        t.networks
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        ["A", "B"]
    );
    assert_eq!(t.serial_lines(), vec![(NodeId(0), NodeId(1))]);
    let a = t.network(NetworkId(0));
    assert_eq!(
        a.references,
        vec!["198.51.100.254".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!((a.transport, a.port), (Transport::Udp, 7946));
    let n2 = t.node(NodeId(1));
    let b = n2.interface(NetworkId(1)).expect("n2 on B");
    assert_eq!(
        (b.device.as_str(), b.address.map(|a| a.to_string())),
        ("eth2", Some("203.0.113.2".to_string()))
    );
    assert_eq!(n2.disk.as_deref(), Some("/dev/vda"));
    // Defaults, except a fence_deadline that leaves room for the isolate hook's 10 s.
    assert_eq!(
        t.timing,
        Timing {
            fence_deadline: Duration::from_secs(15),
            ..Default::default()
        }
    );
    assert_eq!(t.thresholds, Default::default());
    assert_eq!(c.auth.key_id, "k1");
    assert_eq!(c.auth.key.len(), 32);
    assert_eq!(c.auth.key_file, None);
    assert_eq!(c.listen, "127.0.0.1:9617".parse().unwrap());
    assert_eq!(c.state_dir, PathBuf::from("/var/lib/hadiag"));
    // Monitor paths resolve against the config directory, to an absolute path.
    let web = &c.monitors[0];
    assert_eq!(web.name, "web");
    let expected = std::fs::canonicalize("probes/tcp_port.sh").unwrap();
    assert_eq!(PathBuf::from(&web.command[0]), expected);
    assert_eq!(&web.command[1..], ["127.0.0.1", "80"]);
    assert_eq!(
        (web.interval, web.timeout),
        (Duration::from_secs(10), Duration::from_secs(5))
    );
    let iso = c.hooks.isolate.as_ref().expect("isolate hook");
    assert_eq!(
        (iso.retries, iso.timeout, iso.retry_backoff),
        (0, Duration::from_secs(10), Duration::from_secs(1))
    );
    assert!(c.hooks.fence.is_none());
    assert_eq!(c.alerts.len(), 2);
    assert_eq!(
        c.alerts[0].select.kinds,
        [
            VerdictKind::NodeFailed,
            VerdictKind::CutOff,
            VerdictKind::HubFailed
        ]
    );
    assert_eq!(
        (c.alerts[0].after, c.alerts[0].every, c.alerts[0].upalert),
        (2, Some(Duration::from_secs(600)), true)
    );
    assert!(matches!(
        &c.alerts[1].action,
        AlertAction::Webhook {
            format: WebhookFormat::Alertmanager,
            retries: 2,
            ..
        }
    ));
    assert_eq!(c.journal.max_bytes, 16 << 20);
    assert!(!c.policy.isolate_on_disk_failure);
    // Only the inline-key warning: the example is otherwise clean.
    assert_eq!(c.warnings.len(), 1, "{:?}", messages(&c.warnings));
    assert!(
        c.warnings[0]
            .to_string()
            .starts_with("config/two-node.yaml:"),
        "{}",
        c.warnings[0]
    );
    assert!(c.warnings[0].message.contains("key_file with mode 0600"));
    assert_eq!(c.local_node(Some("n2")).unwrap(), NodeId(1));
}

#[test]
fn three_node_example_loads_with_its_documented_warnings() {
    let c = load(THREE);
    let t = &c.topology;
    assert_eq!(t.nodes.len(), 3);
    let hb = t.network_by_name("hb").expect("hb network");
    assert_eq!(t.network(hb).transport, Transport::Ethernet);
    assert!(t.network(hb).references.is_empty());
    assert_eq!(
        t.node(NodeId(2)).interface(hb).map(|i| i.address),
        Some(None)
    );
    assert_eq!(t.members(hb).count(), 3);
    assert_eq!(t.serial_lines(), vec![(NodeId(0), NodeId(1))]);
    assert_eq!(t.timing.heartbeat_interval, Duration::from_millis(200));
    assert_eq!(config::fence_margin(&t.timing), Duration::from_millis(2200));
    assert!(c.policy.isolate_on_disk_failure);
    let w = messages(&c.warnings);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].starts_with("auth.key: "));
    assert!(w[1].starts_with("networks.hb.references: no reference target"));
    // The alert selector matches by node and by network.
    let sel = &c.alerts[0].select;
    assert!(sel.matches(VerdictKind::NodeFailed, &[Component::Node(NodeId(2))], t));
    assert!(sel.matches(VerdictKind::HubFailed, &[Component::Hub(NetworkId(1))], t));
    assert!(!sel.matches(VerdictKind::HubFailed, &[Component::Hub(NetworkId(0))], t));
    assert!(!sel.matches(VerdictKind::SerialFailed, &[Component::Node(NodeId(2))], t));
    assert!(c.alerts[1].select.matches(VerdictKind::Degraded, &[], t));
    assert!(!c.alerts[1].select.matches(VerdictKind::Healthy, &[], t));
}

/// `(file, expected "file:line:col: path: message" lines)` for every broken config.
fn corpus() -> Vec<(PathBuf, Vec<String>)> {
    let dir = Path::new("tests/config/bad");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("tests/config/bad")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).expect("read corpus file");
            let expected = text
                .lines()
                .filter_map(|l| l.strip_prefix("# expect: "))
                .map(|l| format!("{}:{l}", f.display()))
                .collect();
            (f, expected)
        })
        .collect()
}

#[test]
fn broken_configs_report_every_error_with_place_and_cause() {
    let corpus = corpus();
    assert!(corpus.len() >= 12, "corpus has only {} files", corpus.len());
    let mut failures = Vec::new();
    let mut total = 0;
    for (file, expected) in &corpus {
        assert!(
            !expected.is_empty(),
            "{}: no '# expect:' lines",
            file.display()
        );
        total += expected.len();
        match config::load(file) {
            Ok(_) => failures.push(format!("{}: loaded, but should fail", file.display())),
            Err(e) => {
                let actual: Vec<String> = e.errors.iter().map(|x| x.to_string()).collect();
                if &actual != expected {
                    failures.push(format!(
                        "{}:\n  expected:\n    {}\n  actual:\n    {}",
                        file.display(),
                        expected.join("\n    "),
                        actual.join("\n    ")
                    ));
                }
                // Every error has a place in these files.
                assert!(e.errors.iter().all(|x| x.location.is_some()), "{}", e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(total >= 40, "corpus checks only {total} errors");
}

#[test]
fn the_design_example_error_reads_exactly_as_documented() {
    let e = config::load(Path::new("tests/config/bad/undefined_network.yaml")).unwrap_err();
    assert_eq!(
        e.errors[0].to_string(),
        "tests/config/bad/undefined_network.yaml:14:7: nodes.n2.interfaces.C: network \"C\" is not defined"
    );
}

/// A valid two-node config in a temp dir whose `auth` section is `auth`.
fn temp_config(auth: &str, extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "cluster: t\n{auth}\nnetworks:\n  A: {{ references: [198.51.100.254] }}\nnodes:\n  \
         n1: {{ interfaces: {{ A: {{ device: eth1, address: 198.51.100.1 }} }} }}\n  \
         n2: {{ interfaces: {{ A: {{ device: eth1, address: 198.51.100.2 }} }} }}\n{extra}"
    );
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, text).expect("write config");
    (dir, path)
}

fn write_mode(path: &Path, bytes: &[u8], mode: u32) {
    std::fs::write(path, bytes).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn key_file_rules() {
    // Good: 0600, 32 bytes, relative to the config directory.
    let (dir, cfg) = temp_config("auth: { key_id: k2, key_file: secret.key }", "");
    write_mode(&dir.path().join("secret.key"), &[7u8; 32], 0o600);
    let c = config::load(&cfg).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.auth.key, vec![7u8; 32]);
    assert_eq!(
        c.auth.key_file.as_deref(),
        Some(
            std::fs::canonicalize(dir.path())
                .unwrap()
                .join("secret.key")
                .as_path()
        )
    );
    assert!(c.warnings.is_empty(), "{:?}", messages(&c.warnings));
    assert!(
        !format!("{:?}", c.auth).contains("7, 7"),
        "Debug must not print the key"
    );

    // Short AND readable by others: both reported, at the key_file value.
    write_mode(&dir.path().join("secret.key"), b"0123456789", 0o644);
    let e = config::load(&cfg).unwrap_err();
    let m = messages(&e.errors);
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(
        m[0].starts_with("auth.key_file: key file ")
            && m[0].contains("is readable by group or others (mode 0644): run chmod 600"),
        "{m:?}"
    );
    assert!(
        m[1].contains("holds 10 bytes; at least 16 random bytes are needed"),
        "{m:?}"
    );
    assert_eq!(
        e.errors[0].location.map(|l| (l.line, l.column)),
        Some((2, 31))
    );

    // Group-readable only (0640) is refused too.
    write_mode(&dir.path().join("secret.key"), &[1u8; 16], 0o640);
    let e = config::load(&cfg).unwrap_err();
    assert!(e.errors[0].message.contains("(mode 0640)"), "{e}");

    // Missing: says how to create one.
    std::fs::remove_file(dir.path().join("secret.key")).unwrap();
    let e = config::load(&cfg).unwrap_err();
    assert_eq!(e.errors.len(), 1);
    assert!(e.errors[0].message.contains("No such file"), "{e}");
    assert!(
        e.errors[0].message.contains("head -c 32 /dev/urandom"),
        "{e}"
    );

    // Inline keys: hex, ≥ 16 bytes, with a warning.
    let (_d, cfg) = temp_config("auth: { key_id: k1, key: 0011 }", "");
    let e = config::load(&cfg).unwrap_err();
    assert_eq!(
        messages(&e.errors),
        ["auth.key: the inline key is 2 bytes; at least 16 are needed (32 hex digits)"]
    );
    let (_d, cfg) = temp_config(
        "auth: { key_id: k1, key: zz112233445566778899aabbccddeeff }",
        "",
    );
    assert!(config::load(&cfg).unwrap_err().errors[0]
        .message
        .starts_with("the inline key must be hexadecimal"));
    let (_d, cfg) = temp_config(
        "auth: { key_id: k1, key: 00112233445566778899aabbccddeeff, key_file: x }",
        "",
    );
    assert_eq!(
        messages(&config::load(&cfg).unwrap_err().errors),
        ["auth.key: give either key_file or key, not both"]
    );
}

#[test]
fn api_token_file_and_exposed_listen() {
    let key = "auth: { key_id: k1, key: 00112233445566778899aabbccddeeff }";
    let (dir, cfg) = temp_config(key, "listen: 0.0.0.0:9617\napi_token_file: token\n");
    write_mode(&dir.path().join("token"), b"s3cret\n", 0o600);
    let c = config::load(&cfg).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.api_token.as_deref(), Some("s3cret"));
    assert_eq!(c.listen, "0.0.0.0:9617".parse().unwrap());
    let (_d, cfg) = temp_config(key, "listen: \"[::]:9617\"\n");
    let c = config::load(&cfg).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        messages(&c.warnings)
            .iter()
            .any(|w| w.starts_with("listen: the API listens on [::]:9617")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn anchors_and_merge_keys_work_and_keep_places() {
    let key = "auth: { key_id: k1, key: 00112233445566778899aabbccddeeff }";
    let extra = "hooks:\n  isolate: &h { command: [logger, x], timeout: 1s }\n  takeover: *h\n  fence: { <<: *h, retries: 3 }\n";
    let (_d, cfg) = temp_config(key, extra);
    let c = config::load(&cfg).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.hooks.isolate, c.hooks.takeover);
    assert_eq!(
        c.hooks.fence.as_ref().map(|f| (f.retries, f.timeout)),
        Some((3, Duration::from_secs(1)))
    );
    // An error inside a merged mapping still gets the nearest place (the merging mapping).
    let extra = "hooks:\n  isolate: &h { command: [logger, x], timeout: 5 }\n  fence: { <<: *h }\n";
    let (_d, cfg) = temp_config(key, extra);
    let e = config::load(&cfg).unwrap_err();
    let places: Vec<String> = e
        .errors
        .iter()
        .map(|x| format!("{:?} {}", x.location.map(|l| l.line), x.path))
        .collect();
    assert_eq!(
        places,
        [
            "Some(9) hooks.isolate.timeout",
            "Some(10) hooks.fence.timeout"
        ]
    );
}

#[test]
fn local_node_by_name_and_suggestion() {
    let c = load(TWO);
    assert_eq!(c.local_node(Some("n1")).unwrap(), NodeId(0));
    let e = c.local_node(Some("n3")).unwrap_err();
    assert_eq!(e.to_string(), "config/two-node.yaml: nodes: node \"n3\" is not defined (nodes: n1, n2); did you mean \"n1\"?");
    // Without a name it matches the host name (not a node in this container).
    if let Err(e) = c.local_node(None) {
        assert!(e.message.contains("pass --node NAME"), "{e}");
    }
}

#[test]
fn reload_plan_separates_live_from_restart_changes() {
    let old = load(TWO);
    let mut new = old.clone();
    assert!(config::reload_plan(&old, &new).is_empty());
    new.topology.timing.heartbeat_interval = Duration::from_millis(200);
    new.monitors.clear();
    new.topology.thresholds.reference_failures = 5;
    let p = config::reload_plan(&old, &new);
    assert!(p.acceptable());
    assert_eq!(
        p.safe,
        [
            "timing.heartbeat_interval: 100ms -> 200ms",
            "thresholds.reference_failures: 3 -> 5",
            "monitors: web removed"
        ]
    );
    new.topology.nodes[1].interfaces[0].address = Some("198.51.100.9".parse().unwrap());
    new.topology.cluster = "other".into();
    let p = config::reload_plan(&old, &new);
    assert!(!p.acceptable());
    assert_eq!(
        p.refused,
        [
            "cluster: demo -> other (needs a restart of every node)",
            "nodes.n2.interfaces: devices or addresses changed (needs a restart of every node)"
        ]
    );
}

fn check_config(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_hadiag"))
        .arg("check-config")
        .args(args)
        .output()
        .expect("run hadiag");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_cli_prints_topology_or_every_error() {
    let (code, out, err) = check_config(&[TWO, "--node", "n2"]);
    assert_eq!(code, 0, "stderr: {err}");
    for needle in [
        "cluster \"demo\", 2 nodes, 2 networks, 1 serial line",
        "A        udp:7946   198.51.100.254  eth1 198.51.100.1  eth1 198.51.100.2",
        "n1 /dev/ttyS0 <-> n2 /dev/ttyS0  115200 baud",
        "a peer path is silent after 300ms (100ms × 3)",
        "unreachable after 600ms (3 failures × 100ms + 300ms)",
        "after 15s (must exceed 2s + margin 1.6s + isolate hook's longest run 10s)",
        "warning: config/two-node.yaml:",
        "local view of n2 (id 1):",
        "A: eth1 198.51.100.2 -> heartbeats to n1 198.51.100.1:7946; pings 198.51.100.254",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }

    for (file, expected) in corpus() {
        let (code, out, err) = check_config(&[file.to_str().expect("utf-8 path")]);
        assert_eq!(code, 2, "{}: stdout {out} stderr {err}", file.display());
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| !l.starts_with("warning: "))
            .collect();
        let n = expected.len();
        assert_eq!(
            &lines[..lines.len() - 1],
            expected.as_slice(),
            "{}",
            file.display()
        );
        assert_eq!(
            lines[lines.len() - 1],
            format!(
                "{}: {n} error{} found",
                file.display(),
                if n == 1 { "" } else { "s" }
            )
        );
    }

    let (code, _, err) = check_config(&[TWO, "--node", "n7"]);
    assert_eq!(code, 2);
    assert!(err.contains("node \"n7\" is not defined"), "{err}");
    let (code, _, err) = check_config(&["tests/config/does-not-exist.yaml"]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("tests/config/does-not-exist.yaml: cannot read: "),
        "{err}"
    );
}

/// Mutations of the example: delete a line, duplicate a line, or overwrite one byte.
fn mutate(text: &str, op: u8, at: usize, byte: u8) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    let i = at % lines.len().max(1);
    match op % 3 {
        0 => {
            lines.remove(i);
            lines.join("\n")
        }
        1 => {
            let l = lines[i];
            lines.insert(i, l);
            lines.join("\n")
        }
        _ => {
            let mut b = text.as_bytes().to_vec();
            let j = at % b.len().max(1);
            if let Some(x) = b.get_mut(j) {
                *x = byte;
            }
            String::from_utf8_lossy(&b).into_owned()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_arbitrary_strings(s in "\\PC{0,400}") {
        let _ = config::load_str(&s, Path::new("fuzz.yaml"));
    }

    #[test]
    fn parser_never_panics_on_yamlish_strings(s in "[a-z_:\\-\\[\\]{}, \n0-9.\"'&*!|>#?<]{0,300}") {
        let _ = config::load_str(&s, Path::new("fuzz.yaml"));
    }

    #[test]
    fn parser_never_panics_on_mutated_examples(op in any::<u8>(), at in any::<usize>(), byte in any::<u8>(), which in any::<bool>()) {
        let text = std::fs::read_to_string(if which { TWO } else { THREE }).expect("example");
        let m = mutate(&text, op, at, byte);
        // Either it loads or every error is well-formed (has a message).
        if let Err(e) = config::load_str(&m, Path::new(TWO)) {
            prop_assert!(!e.errors.is_empty());
            prop_assert!(e.errors.iter().all(|x| !x.message.is_empty()));
        }
    }

    #[test]
    fn parser_never_panics_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        let s = String::from_utf8_lossy(&b);
        let _ = config::load_str(&s, Path::new("fuzz.yaml"));
    }
}
