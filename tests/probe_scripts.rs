//! The mon-compatible monitors in `probes/` against real local things: a TCP listener and a
//! tiny HTTP server on loopback, a temporary directory, a process this test starts.
//! Each script: exit 0 = OK, 1 = failure, 2 = bad arguments; first stdout line = summary.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("probes")
        .join(name)
}

/// Runs a monitor under `sh` (like the daemon's exec probe would) → (exit code, summary).
fn run(name: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new("/bin/sh")
        .arg(script(name))
        .args(args)
        .output()
        .expect("run sh");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let summary = stdout.lines().next().unwrap_or("").to_string();
    (out.status.code().unwrap_or(-1), summary)
}

fn free_port() -> u16 {
    // Bind and drop: the port is free right after (loopback only).
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn every_script_has_a_header_and_rejects_missing_arguments() {
    for name in [
        "tcp_port.sh",
        "http_status.sh",
        "fs_writable.sh",
        "process_alive.sh",
    ] {
        let text = std::fs::read_to_string(script(name)).unwrap();
        assert!(text.starts_with("#!/bin/sh\n"), "{name}: POSIX sh shebang");
        assert!(text.contains("# Usage:"), "{name}: header with usage");
        let (code, summary) = run(name, &[]);
        assert_eq!(code, 2, "{name} without arguments");
        assert!(summary.starts_with("usage:"), "{name}: {summary}");
    }
}

#[test]
fn tcp_port_open_and_closed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let (code, summary) = run("tcp_port.sh", &["127.0.0.1", &port, "2"]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary, format!("tcp 127.0.0.1:{port} open"));
    drop(listener);
    let closed = free_port().to_string();
    let (code, summary) = run("tcp_port.sh", &["127.0.0.1", &closed, "2"]);
    assert_eq!(code, 1, "{summary}");
    assert_eq!(summary, format!("tcp 127.0.0.1:{closed} not reachable"));
    assert_eq!(run("tcp_port.sh", &["127.0.0.1", "http"]).0, 2);
}

/// A one-thread HTTP server: `/ok` → 200, anything else → 503. Serves `n` requests.
fn http_server(n: usize) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        for _ in 0..n {
            let Ok((mut s, _)) = listener.accept() else {
                return;
            };
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 2048];
            let len = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..len]);
            let status = if req.starts_with("GET /ok ") {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
            );
        }
    });
    (port, h)
}

#[test]
fn http_status_matches_expected_code() {
    let (port, server) = http_server(3);
    let ok = format!("http://127.0.0.1:{port}/ok");
    let bad = format!("http://127.0.0.1:{port}/down");
    let (code, summary) = run("http_status.sh", &[&ok, "200", "5"]);
    assert_eq!(
        (code, summary.as_str()),
        (0, format!("http {ok} status 200").as_str())
    );
    let (code, summary) = run("http_status.sh", &[&bad, "200", "5"]);
    assert_eq!(code, 1);
    assert_eq!(summary, format!("http {bad} status 503, expected 200"));
    // 503 expected → healthy
    assert_eq!(run("http_status.sh", &[&bad, "503", "5"]).0, 0);
    server.join().unwrap();
    let gone = format!("http://127.0.0.1:{}/ok", free_port());
    let (code, summary) = run("http_status.sh", &[&gone, "200", "2"]);
    assert_eq!((code, summary), (1, format!("http {gone} no answer")));
}

#[test]
fn fs_writable_checks_writes_and_free_space() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (code, summary) = run("fs_writable.sh", &[d, "1"]);
    assert_eq!(code, 0, "{summary}");
    assert!(
        summary.starts_with(&format!("fs {d} writable, ")),
        "{summary}"
    );
    // No probe file is left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    // More free space than any test machine has.
    let (code, summary) = run("fs_writable.sh", &[d, "999999999"]);
    assert_eq!(code, 1);
    assert!(summary.contains("MiB free, need 999999999"), "{summary}");
    let missing = dir.path().join("missing");
    let (code, summary) = run("fs_writable.sh", &[missing.to_str().unwrap()]);
    assert_eq!(
        (code, summary),
        (1, format!("fs {}: not a directory", missing.display()))
    );
}

#[test]
fn process_alive_by_pidfile_and_name() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("p.pid");
    // A uniquely named process: a copy of `sleep` under a test-specific name.
    let exe = dir.path().join("hadiagtst");
    std::fs::copy("/bin/sleep", &exe).unwrap();
    let mut child = Command::new(&exe).arg("30").spawn().unwrap();
    std::fs::write(&pidfile, format!("{}\n", child.id())).unwrap();
    let pf = pidfile.to_str().unwrap();
    let (code, summary) = run("process_alive.sh", &["-p", pf]);
    assert_eq!(
        (code, summary),
        (0, format!("process {} (from {pf}) alive", child.id()))
    );
    let (code, summary) = run("process_alive.sh", &["-n", "hadiagtst"]);
    assert_eq!(
        (code, summary.as_str()),
        (0, "process hadiagtst alive (1 running)")
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let (code, summary) = run("process_alive.sh", &["-p", pf]);
    assert_eq!(
        (code, summary),
        (1, format!("process {} (from {pf}) not running", child.id()))
    );
    let (code, summary) = run("process_alive.sh", &["-n", "hadiagtst"]);
    assert_eq!(
        (code, summary.as_str()),
        (1, "process hadiagtst not running")
    );
}
