//! Network namespaces with guaranteed teardown, and the links between them.
//!
//! A [`Netns`] deletes its namespace on Drop after SIGKILLing, by PID, every process still
//! inside it (the name is unique to this process, so everything inside was started by us).
//! Links are created *inside* namespaces (`ip -n NS link add … peer … netns OTHER`), so no
//! lab device ever appears in the host namespace, and no namespace gets a default route.
//!
//! Must not: touch host interfaces, or configure an address outside the documentation ranges.

use crate::lab::error::{LabError, Result};
use crate::lab::sys::{self, ProcessRecord};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name prefix unique to this process and call: `hdg<pid>-<n>`. Parallel tests (threads or
/// processes) never collide.
pub fn unique_prefix() -> String {
    format!(
        "hdg{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// True for addresses inside 192.0.2.0/24, 198.51.100.0/24 or 203.0.113.0/24 (RFC 5737).
pub fn is_lab_address(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            matches!(
                (o[0], o[1], o[2]),
                (192, 0, 2) | (198, 51, 100) | (203, 0, 113)
            )
        }
        IpAddr::V6(_) => false,
    }
}

/// The documentation /24 networks, in the order the lab hands them out.
pub const LAB_NETWORKS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(192, 0, 2, 0),
    Ipv4Addr::new(198, 51, 100, 0),
    Ipv4Addr::new(203, 0, 113, 0),
];

/// A network namespace owned by this guard.
#[derive(Debug)]
pub struct Netns {
    name: String,
    /// When false (after [`Netns::detach`]) Drop leaves the namespace alone; `lab down`
    /// removes it later from the state file.
    owned: bool,
}

impl Netns {
    /// Creates namespace `name` with loopback up and IPv6 disabled (keeps lab traffic to the
    /// IPv4 documentation ranges). Fails if it already exists.
    pub fn create(name: &str) -> Result<Netns> {
        if name.is_empty() || name.len() > 64 || name.contains('/') {
            return Err(LabError::Spec(format!("bad namespace name {name:?}")));
        }
        crate::lab::preflight::check_tools()?;
        sys::run("ip", &["netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
            owned: true,
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        // Best effort: a kernel without IPv6 has no such keys, and that is fine.
        let _ = ns.enter(|| {
            for key in ["all", "default"] {
                let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{key}/disable_ipv6"), "1");
            }
        });
        Ok(ns)
    }

    /// Creates a namespace named `<prefix>-<role>`.
    pub fn with_role(prefix: &str, role: &str) -> Result<Netns> {
        Netns::create(&format!("{prefix}-{role}"))
    }

    /// A handle to an existing namespace that Drop will NOT delete.
    pub fn borrowed(name: &str) -> Netns {
        Netns {
            name: name.to_string(),
            owned: false,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stop owning the namespace (it survives this guard; record it in a state file first).
    pub fn detach(mut self) -> String {
        self.owned = false;
        std::mem::take(&mut self.name)
    }

    /// Keeps a non-owning handle after creation (the caller recorded the namespace elsewhere,
    /// e.g. in a lab state file that tears it down).
    pub fn detach_handle(mut self) -> Netns {
        self.owned = false;
        Netns {
            name: std::mem::take(&mut self.name),
            owned: false,
        }
    }

    /// `ip -n NS args…`
    pub fn ip(&self, args: &[&str]) -> Result<Output> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        sys::run("ip", &full)
    }

    /// Runs a command inside the namespace (`ip netns exec NS …`); Err on non-zero exit.
    pub fn exec(&self, args: &[&str]) -> Result<Output> {
        let mut full = vec!["netns", "exec", self.name.as_str()];
        full.extend_from_slice(args);
        sys::run("ip", &full)
    }

    /// Runs a command inside the namespace and returns its output whatever the exit status.
    pub fn exec_unchecked(&self, args: &[&str]) -> Result<Output> {
        let mut full = vec!["netns", "exec", self.name.as_str()];
        full.extend_from_slice(args);
        sys::run_unchecked("ip", &full, None)
    }

    /// Runs `f` on a short-lived thread that has entered this namespace's network stack
    /// (setns): sockets it opens — netlink, ICMP — live in the namespace, and /proc/sys/net
    /// shows the namespace's settings. The calling thread is never moved.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        let path = Path::new("/run/netns").join(&self.name);
        let file = std::fs::File::open(&path).map_err(|e| LabError::io(&path, e))?;
        std::thread::scope(|s| {
            s.spawn(|| {
                use std::os::fd::AsRawFd;
                // SAFETY: setns on a namespace file we hold open; it affects only this thread,
                // which ends when `f` returns.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(LabError::io(&path, std::io::Error::last_os_error()));
                }
                Ok(f())
            })
            .join()
            .unwrap_or_else(|_| {
                Err(LabError::Spec(format!(
                    "a task inside namespace {} panicked",
                    self.name
                )))
            })
        })
    }

    /// A `Command` that runs `program args…` inside the namespace. `ip netns exec` execs the
    /// program in place, so the child's PID is the program's PID (signals reach it directly)
    /// and /sys shows the namespace's devices.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.name.as_str(), program])
            .args(args);
        cmd
    }

    /// Spawns a long-running process inside the namespace; the guard SIGKILLs and reaps it.
    /// stdout/stderr go to `log` (appended) when given, else are discarded.
    pub fn spawn(&self, program: &str, args: &[&str], log: Option<&Path>) -> Result<ChildGuard> {
        let cmd = self.command(program, args);
        ChildGuard::spawn(cmd, &format!("{program} in {}", self.name), log)
    }

    /// PIDs of every process in the namespace.
    pub fn pids(&self) -> Vec<u32> {
        namespace_pids(&self.name)
    }

    /// Creates a veth pair: `dev` inside this namespace, `peer_dev` inside `peer`; both up.
    pub fn veth(&self, dev: &str, peer: &Netns, peer_dev: &str) -> Result<()> {
        check_ifname(dev)?;
        check_ifname(peer_dev)?;
        self.ip(&[
            "link", "add", dev, "type", "veth", "peer", "name", peer_dev, "netns", &peer.name,
        ])?;
        self.ip(&["link", "set", dev, "up"])?;
        peer.ip(&["link", "set", peer_dev, "up"])?;
        Ok(())
    }

    /// Creates a bridge (a hub/switch) inside this namespace, up, STP off (forwards at once).
    pub fn bridge(&self, name: &str) -> Result<()> {
        check_ifname(name)?;
        self.ip(&["link", "add", name, "type", "bridge", "stp_state", "0"])?;
        self.ip(&["link", "set", name, "up"])?;
        Ok(())
    }

    /// Enslaves `port` to `bridge` (both in this namespace).
    pub fn enslave(&self, port: &str, bridge: &str) -> Result<()> {
        self.ip(&["link", "set", port, "master", bridge, "up"])?;
        Ok(())
    }

    /// Adds `addr/prefix` to `dev`; refuses anything outside the documentation ranges.
    pub fn add_address(&self, dev: &str, addr: IpAddr, prefix: u8) -> Result<()> {
        if !is_lab_address(addr) {
            return Err(LabError::ForbiddenAddress(addr));
        }
        self.ip(&["addr", "add", &format!("{addr}/{prefix}"), "dev", dev])?;
        Ok(())
    }

    /// Sets a device administratively up or down.
    pub fn set_link(&self, dev: &str, up: bool) -> Result<()> {
        self.ip(&["link", "set", dev, if up { "up" } else { "down" }])?;
        Ok(())
    }

    /// Whether the namespace has a default route (the lab never creates one).
    pub fn has_default_route(&self) -> Result<bool> {
        let v4 = self.ip(&["-4", "route", "show", "default"])?;
        let v6 = self.ip(&["-6", "route", "show", "default"])?;
        Ok(!v4.stdout.iter().all(u8::is_ascii_whitespace)
            || !v6.stdout.iter().all(u8::is_ascii_whitespace))
    }

    /// One ICMP echo from inside the namespace (a raw socket of this process, no `ping`
    /// binary), true when answered within `timeout`. Only documentation addresses are allowed.
    pub fn ping(&self, target: IpAddr, timeout: Duration) -> Result<bool> {
        let IpAddr::V4(v4) = target else {
            return Err(LabError::ForbiddenAddress(target));
        };
        if !is_lab_address(target) {
            return Err(LabError::ForbiddenAddress(target));
        }
        self.enter(|| crate::lab::icmp::echo(v4, timeout))?
            .map_err(|e| LabError::io(format!("ICMP echo to {target} in {}", self.name), e))
    }

    /// Pings until answered or `within` passes (ARP and bridge learning take a moment).
    pub fn ping_until(&self, target: IpAddr, within: Duration) -> Result<bool> {
        let start = Instant::now();
        while start.elapsed() < within {
            if self.ping(target, Duration::from_secs(1))? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if self.owned {
            delete_namespace(&self.name);
        }
    }
}

/// Interface names are limited to 15 bytes by the kernel.
fn check_ifname(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 15 || name.contains(['/', ' ']) {
        return Err(LabError::Spec(format!("bad interface name {name:?}")));
    }
    Ok(())
}

/// PIDs inside namespace `name` (empty if it does not exist).
pub fn namespace_pids(name: &str) -> Vec<u32> {
    match sys::run_unchecked("ip", &["netns", "pids", name], None) {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether namespace `name` exists.
pub fn namespace_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

/// SIGKILLs every process inside namespace `name` (by PID; such a namespace is unique to
/// the lab that created it), then deletes it. Tolerates a namespace that is already gone.
pub fn delete_namespace(name: &str) {
    if !namespace_exists(name) {
        return;
    }
    // A few rounds: a process may fork while we kill (bounded to avoid spinning forever).
    for _ in 0..5 {
        let pids = namespace_pids(name);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            if pid != std::process::id() {
                sys::send_signal(pid, libc::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = sys::run_unchecked("ip", &["netns", "del", name], None);
}

/// What a [`ChildGuard`] holds.
#[derive(Debug)]
enum Owned {
    None,
    /// Started through `std::process::Command`.
    Child(Child),
    /// Forked by this process without exec (the serial relay); reaped with waitpid.
    Forked {
        pid: u32,
        reaped: bool,
    },
}

/// A long-running child process; Drop SIGKILLs and reaps it (by PID).
#[derive(Debug)]
pub struct ChildGuard {
    child: Owned,
    what: String,
}

impl ChildGuard {
    /// Spawns `cmd` with stdin closed and output to `log` (appended) or discarded.
    pub fn spawn(mut cmd: Command, what: &str, log: Option<&Path>) -> Result<ChildGuard> {
        cmd.stdin(Stdio::null());
        match log {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| LabError::io(path, e))?;
                let err = file.try_clone().map_err(|e| LabError::io(path, e))?;
                cmd.stdout(file).stderr(err);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let child = cmd.spawn().map_err(|e| LabError::Spawn {
            command: what.to_string(),
            source: e,
        })?;
        Ok(ChildGuard {
            child: Owned::Child(child),
            what: what.to_string(),
        })
    }

    /// Guards a child this process forked itself (its PID, as fork returned it).
    pub(crate) fn forked(pid: u32, what: &str) -> ChildGuard {
        ChildGuard {
            child: Owned::Forked { pid, reaped: false },
            what: what.to_string(),
        }
    }

    /// A guard that owns no process (placeholder after a detach).
    pub fn none(what: &str) -> ChildGuard {
        ChildGuard {
            child: Owned::None,
            what: what.to_string(),
        }
    }

    pub fn pid(&self) -> u32 {
        match &self.child {
            Owned::None => 0,
            Owned::Child(c) => c.id(),
            Owned::Forked { pid, .. } => *pid,
        }
    }

    pub fn what(&self) -> &str {
        &self.what
    }

    /// A record for the state file.
    pub fn record(&self) -> Option<ProcessRecord> {
        ProcessRecord::of(self.pid(), self.what.clone())
    }

    /// Whether the child is still running (not exited); reaps it if it exited.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Owned::None => false,
            Owned::Child(c) => matches!(c.try_wait(), Ok(None)),
            Owned::Forked { pid, reaped } => {
                if *reaped {
                    return false;
                }
                // SAFETY: waitpid on our own child's PID, without blocking.
                let r = unsafe {
                    libc::waitpid(*pid as libc::pid_t, std::ptr::null_mut(), libc::WNOHANG)
                };
                if r == 0 {
                    true
                } else {
                    *reaped = true;
                    false
                }
            }
        }
    }

    /// Sends a signal to the child (only while it has not been reaped).
    pub fn signal(&mut self, signal: i32) -> bool {
        self.is_running() && sys::send_signal(self.pid(), signal)
    }

    /// Freezes the child (SIGSTOP); true once it shows as stopped.
    pub fn stop(&mut self) -> bool {
        self.signal(libc::SIGSTOP) && sys::wait_stop_state(self.pid(), true)
    }

    /// Thaws the child (SIGCONT); true once it shows as running again.
    pub fn cont(&mut self) -> bool {
        self.signal(libc::SIGCONT) && sys::wait_stop_state(self.pid(), false)
    }

    /// SIGKILLs and reaps the child now.
    pub fn kill(&mut self) {
        match std::mem::replace(&mut self.child, Owned::None) {
            Owned::None => {}
            Owned::Child(mut c) => {
                if matches!(c.try_wait(), Ok(None)) {
                    let _ = c.kill();
                }
                let _ = c.wait();
            }
            Owned::Forked { pid, reaped } => {
                if !reaped {
                    sys::send_signal(pid, libc::SIGKILL);
                    // SAFETY: reaping our own child by PID (it was just SIGKILLed).
                    unsafe { libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0) };
                }
            }
        }
    }

    /// Gives up ownership: the process keeps running after this guard (record it first).
    pub fn detach(mut self) -> u32 {
        let pid = self.pid();
        self.child = Owned::None;
        pid
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}
