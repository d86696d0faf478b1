//! systemd readiness and watchdog (`Type=notify`, `WatchdogSec=`): the sd_notify datagram
//! protocol written directly (one `sendto` on a Unix datagram socket; no library needed).
//!
//! - `READY=1` once the first round of heartbeats went out: before that, peers have not heard
//!   this node and `systemctl start` must not report it up.
//! - `WATCHDOG=1` from the heartbeat loop, at most every quarter of `WatchdogSec` and only
//!   while heartbeats advance: a loop that stalls stops the pings and systemd restarts it.
//! - `STATUS=` the current verdict line (what `systemctl status` shows), sent when it changes.
//! - `STOPPING=1` at shutdown.
//!
//! Without `NOTIFY_SOCKET` (not under systemd) every call is a no-op. Must not block: the
//! socket is non-blocking and a failed send is dropped (systemd restarts us if pings stop).

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// Longest STATUS text sent (systemd shows one line).
const MAX_STATUS: usize = 200;

#[derive(Debug)]
pub struct Notifier {
    socket: Option<(UnixDatagram, std::os::unix::net::SocketAddr)>,
    watchdog: Option<Duration>,
    last_ping: Option<Instant>,
    ready: bool,
    status: String,
    heartbeats_seen: u64,
}

impl Notifier {
    /// From the environment systemd sets (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`).
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|p| {
            let addr = address(p.as_encoded_bytes())?;
            let s = UnixDatagram::unbound().ok()?;
            s.set_nonblocking(true).ok()?;
            Some((s, addr))
        });
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
            .is_none_or(|p| p == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|&u| u > 0 && for_us)
            .map(Duration::from_micros);
        Notifier {
            socket,
            watchdog,
            last_ping: None,
            ready: false,
            status: String::new(),
            heartbeats_seen: 0,
        }
    }

    /// Whether systemd listens.
    pub fn active(&self) -> bool {
        self.socket.is_some()
    }

    fn send(&self, msg: &str) {
        if let Some((s, addr)) = &self.socket {
            let _ = s.send_to_addr(msg.as_bytes(), addr);
        }
    }

    /// Called on every pass of the heartbeat loop with the core's heartbeat count and the
    /// verdict line: readiness after the first round, watchdog pings while heartbeats
    /// advance, status when it changed.
    pub fn beat(&mut self, heartbeats_sent: u64, status: impl FnOnce() -> String) {
        if self.socket.is_none() {
            return;
        }
        let status = &status();
        let advanced = heartbeats_sent > self.heartbeats_seen;
        self.heartbeats_seen = heartbeats_sent;
        let mut msg = String::new();
        if !self.ready && heartbeats_sent > 0 {
            self.ready = true;
            msg.push_str("READY=1\n");
        }
        if let Some(w) = self.watchdog {
            let due = self.last_ping.is_none_or(|l| l.elapsed() >= w / 4);
            if advanced && due {
                self.last_ping = Some(Instant::now());
                msg.push_str("WATCHDOG=1\n");
            }
        }
        if *status != self.status {
            self.status = status.clone();
            let line: String = status
                .chars()
                .filter(|c| *c != '\n')
                .take(MAX_STATUS)
                .collect();
            msg.push_str(&format!("STATUS={line}\n"));
        }
        if !msg.is_empty() {
            self.send(&msg);
        }
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1\n");
    }
}

/// The STATUS line: role and verdict, e.g. `active; healthy` or `quiesced; node n2 failed`.
pub fn status_line(node: &crate::core::node::Node) -> String {
    let d = node.diagnosis();
    let role = super::control::role_token(node.role());
    let subjects: Vec<String> = d
        .subjects
        .iter()
        .map(|c| c.describe(node.topology()))
        .collect();
    if subjects.is_empty() {
        format!("{role}; {}", d.kind.token())
    } else {
        format!("{role}; {}: {}", d.kind.token(), subjects.join(", "))
    }
}

/// `NOTIFY_SOCKET`: a path, or `@name` for an abstract socket.
fn address(p: &[u8]) -> Option<std::os::unix::net::SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    match p.split_first() {
        Some((b'@', name)) => std::os::unix::net::SocketAddr::from_abstract_name(name).ok(),
        Some((b'/', _)) => {
            std::os::unix::net::SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(p)).ok()
        }
        _ => None,
    }
}

use std::os::unix::ffi::OsStrExt;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_after_first_heartbeat_then_watchdog_and_status_changes() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_nonblocking(true).unwrap();
        let mut n = Notifier {
            socket: Some((
                UnixDatagram::unbound().unwrap(),
                address(path.as_os_str().as_bytes()).unwrap(),
            )),
            watchdog: Some(Duration::from_millis(1)),
            last_ping: None,
            ready: false,
            status: String::new(),
            heartbeats_seen: 0,
        };
        let recv = || {
            let mut buf = [0u8; 512];
            rx.recv(&mut buf)
                .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
                .unwrap_or_default()
        };
        n.beat(0, || "starting".into());
        assert_eq!(recv(), "STATUS=starting\n", "no READY before a heartbeat");
        n.beat(2, || "healthy".into());
        assert_eq!(recv(), "READY=1\nWATCHDOG=1\nSTATUS=healthy\n");
        std::thread::sleep(Duration::from_millis(2));
        n.beat(2, || "healthy".into());
        assert_eq!(recv(), "", "no ping while heartbeats stand still");
        n.beat(4, || "healthy".into());
        assert_eq!(recv(), "WATCHDOG=1\n");
        assert!(address(b"@abstract").is_some());
        assert!(address(b"relative").is_none());
    }
}
