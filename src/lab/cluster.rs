//! [`Cluster`]: builds a lab from a [`LabSpec`] — hub and router namespaces per network, a
//! namespace per node with one veth NIC per network, relayed pty serial lines, a loop-device disk
//! per node, per-node hadiag configs and hook scripts — and drives faults on it.
//!
//! Every resource is recorded in the state file before it is created. An *owned* cluster
//! (from [`Cluster::build`]) tears everything down on Drop, also when building fails half way
//! or a test panics; a *detached* one (after [`Cluster::detach`], used by `lab up`) stays up
//! until `lab down` ([`down`]) reads the state file.
//!
//! Must not: create anything in the host namespace except the lab directory, loop devices and
//! the serial relays; signal any PID it did not start.

use crate::lab::config;
use crate::lab::disk::LabDisk;
use crate::lab::error::{LabError, Result};
use crate::lab::fault::{self, ActiveFault, LabFault, NicFilter};
use crate::lab::layout::{LabSpec, Layout, NodeLayout};
use crate::lab::netns::{ChildGuard, Netns};
use crate::lab::serial::{self, RelayLife};
use crate::lab::state::{LabState, StateFile};
use crate::lab::sys::{self, ProcessRecord};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How processes the lab starts relate to the process that starts them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Ownership {
    /// Children die with this process (PR_SET_PDEATHSIG) and with the guard.
    Owned,
    /// Children run in their own session and survive us (`lab up`).
    Detached,
}

/// A lab cluster. See the module docs for ownership.
#[derive(Debug)]
pub struct Cluster {
    file: StateFile,
    ownership: Ownership,
    /// Tear down on Drop.
    teardown_on_drop: bool,
    /// Guards of the children this process started (for reaping); others are known only by
    /// their records in the state file.
    children: BTreeMap<String, ChildGuard>,
    /// The hadiag binary used to start daemons.
    exe: Option<PathBuf>,
}

fn role_daemon(node: &str) -> String {
    format!("daemon:{node}")
}

fn role_serial(a: &str, b: &str) -> String {
    format!("serial:{a}-{b}")
}

impl Cluster {
    /// Builds the lab described by `spec` under `root` (state in `root/<name>/state.json`).
    /// No daemons yet: see [`Cluster::start_daemons`]. On error everything built so far is
    /// removed again.
    pub fn build(spec: &LabSpec, root: &Path) -> Result<Cluster> {
        crate::lab::preflight::check()?;
        let file = StateFile::create(root, &spec.name)?;
        let mut cluster = Cluster {
            file,
            ownership: Ownership::Owned,
            teardown_on_drop: true,
            children: BTreeMap::new(),
            exe: None,
        };
        // On error `cluster` is dropped here and tears down what was recorded.
        cluster.build_all(spec)?;
        Ok(cluster)
    }

    /// Like [`Cluster::build`], but the processes started survive this process (`lab up`).
    pub fn build_detached(spec: &LabSpec, root: &Path) -> Result<Cluster> {
        crate::lab::preflight::check()?;
        let file = StateFile::create(root, &spec.name)?;
        let mut cluster = Cluster {
            file,
            ownership: Ownership::Detached,
            teardown_on_drop: true,
            children: BTreeMap::new(),
            exe: None,
        };
        cluster.build_all(spec)?;
        Ok(cluster)
    }

    /// Opens a running lab from its state file, without owning it (Drop leaves it up).
    pub fn attach(state_path: &Path) -> Result<Cluster> {
        sys::require_root()?;
        let file = StateFile::load(state_path)?;
        if file.state.layout.is_none() {
            return Err(LabError::State {
                path: state_path.to_path_buf(),
                cause: "lab was never fully described (half-built); run `lab down`".into(),
            });
        }
        Ok(Cluster {
            file,
            ownership: Ownership::Detached,
            teardown_on_drop: false,
            children: BTreeMap::new(),
            exe: None,
        })
    }

    /// Stops owning the lab: it stays up after this value is dropped. Returns the state path.
    pub fn detach(mut self) -> PathBuf {
        self.teardown_on_drop = false;
        for (_, guard) in std::mem::take(&mut self.children) {
            guard.detach();
        }
        self.file.path().to_path_buf()
    }

    pub fn layout(&self) -> &Layout {
        // build_all stores the layout before anything else; attach checks it.
        self.file
            .state
            .layout
            .as_ref()
            .expect("layout recorded at build")
    }

    pub fn state(&self) -> &LabState {
        &self.file.state
    }

    pub fn state_path(&self) -> &Path {
        self.file.path()
    }

    /// A non-owning handle to node `node`'s namespace.
    pub fn node_ns(&self, node: &str) -> Result<Netns> {
        Ok(Netns::borrowed(&self.layout().node(node)?.ns))
    }

    pub fn hub_ns(&self, network: &str) -> Result<Netns> {
        Ok(Netns::borrowed(&self.layout().network(network)?.hub_ns))
    }

    pub fn router_ns(&self, network: &str) -> Result<Netns> {
        Ok(Netns::borrowed(&self.layout().network(network)?.router_ns))
    }

    fn build_all(&mut self, spec: &LabSpec) -> Result<()> {
        let dir = self.file.state.dir.clone();
        let layout = spec.resolve(&dir)?;
        self.file.state.layout = Some(layout.clone());
        self.file.save()?;
        let mkdir = |p: &Path| std::fs::create_dir_all(p).map_err(|e| LabError::io(p, e));
        mkdir(&dir.join("serial"))?;
        write_key(&layout.key_file)?;

        for net in &layout.networks {
            self.file.record_namespace(&net.hub_ns)?;
            let hub = Netns::create(&net.hub_ns)?.detach_handle();
            hub.bridge(&net.bridge)?;
            self.file.record_namespace(&net.router_ns)?;
            let router = Netns::create(&net.router_ns)?.detach_handle();
            router.veth(&net.router_dev, &hub, "rt")?;
            hub.enslave("rt", &net.bridge)?;
            router.add_address(&net.router_dev, net.reference, net.prefix_len)?;
        }
        for node in &layout.nodes {
            self.file.record_namespace(&node.ns)?;
            let ns = Netns::create(&node.ns)?.detach_handle();
            for iface in &node.interfaces {
                let net = layout.network(&iface.network)?;
                let hub = Netns::borrowed(&net.hub_ns);
                ns.veth(&iface.device, &hub, &iface.hub_port)?;
                hub.enslave(&iface.hub_port, &net.bridge)?;
                ns.add_address(&iface.device, iface.address, net.prefix_len)?;
            }
            for sub in [
                &node.dir,
                &node.hooks_dir,
                &node.state_dir,
                &node.dir.join("markers"),
            ] {
                mkdir(sub)?;
            }
            // Record the disk (its image path) before attaching a loop device to it.
            self.file.record_disk(
                &node.name,
                LabDisk {
                    image: node.dir.join("disk.img"),
                    loop_device: None,
                    probe_path: node.disk.clone(),
                    fifo: node.dir.join("disk.fifo"),
                    size_bytes: crate::lab::disk::DISK_SIZE_BYTES,
                },
            )?;
            let disk = LabDisk::create(&node.dir)?;
            self.file.record_disk(&node.name, disk)?;
            for (hook, marker) in [
                ("isolate", config::ISOLATE_MARKER),
                ("takeover", config::TAKEOVER_MARKER),
                ("fence", config::FENCE_MARKER),
            ] {
                let path = node.hooks_dir.join(format!("{hook}.sh"));
                write_file(&path, &config::hook_script(node, marker), 0o755)?;
            }
            write_file(&node.config, &config::render(&layout, node), 0o644)?;
        }
        for line in &layout.serial {
            let role = role_serial(&line.a, &line.b);
            let life = match self.ownership {
                Ownership::Owned => RelayLife::Owned,
                Ownership::Detached => RelayLife::Detached,
            };
            let guard = serial::start_relay(&line.path_a, &line.path_b, life, &role)?;
            self.keep_recorded(&role, guard, None)?;
        }
        Ok(())
    }

    /// Spawns `cmd`, records it under `role` and keeps its guard.
    fn spawn_recorded(&mut self, role: &str, mut cmd: Command, log: &Path) -> Result<u32> {
        let ownership = self.ownership;
        // SAFETY: the closure only calls async-signal-safe functions (prctl, setsid).
        unsafe {
            cmd.pre_exec(move || {
                match ownership {
                    Ownership::Owned => {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                    }
                    Ownership::Detached => {
                        libc::setsid();
                    }
                }
                Ok(())
            });
        }
        let guard = ChildGuard::spawn(cmd, role, Some(log))?;
        self.keep_recorded(role, guard, Some(log))
    }

    /// Records a started child under `role` and keeps its guard (replacing an older one).
    fn keep_recorded(&mut self, role: &str, guard: ChildGuard, log: Option<&Path>) -> Result<u32> {
        let pid = guard.pid();
        // Record at once; a process that exited already has no start time: say so.
        let record = guard.record().ok_or_else(|| LabError::Spawn {
            command: role.to_string(),
            source: std::io::Error::other(match log {
                Some(log) => format!("exited at once; see {}", log.display()),
                None => "exited at once".to_string(),
            }),
        })?;
        self.file.record_process(role, record)?;
        if let Some(mut old) = self.children.insert(role.to_string(), guard) {
            old.kill();
        }
        Ok(pid)
    }

    /// Starts `hadiag run --config FILE --node NAME` in every node's namespace using `exe`.
    pub fn start_daemons(&mut self, exe: &Path) -> Result<()> {
        // Daemons run in their node's directory: a relative path would name nothing there.
        let exe = std::fs::canonicalize(exe).map_err(|e| LabError::io(exe, e))?;
        self.exe = Some(exe.clone());
        self.file.state.daemon_exe = Some(exe);
        self.file.save()?;
        let names: Vec<String> = self.layout().nodes.iter().map(|n| n.name.clone()).collect();
        for n in names {
            self.start_daemon(&n)?;
        }
        Ok(())
    }

    /// (Re)starts the daemon of `node`.
    pub fn start_daemon(&mut self, node: &str) -> Result<u32> {
        let exe = match self.exe.as_ref().or(self.file.state.daemon_exe.as_ref()) {
            Some(e) => e.clone(),
            None => std::env::current_exe().map_err(|e| LabError::io("current_exe", e))?,
        };
        let n: NodeLayout = self.layout().node(node)?.clone();
        let role = role_daemon(node);
        if let Some(old) = self.file.state.processes.get(&role) {
            old.signal(libc::SIGKILL);
        }
        let ns = Netns::borrowed(&n.ns);
        let mut cmd = ns.command(
            &exe.display().to_string(),
            &[
                "run",
                "--config",
                &n.config.display().to_string(),
                "--node",
                node,
            ],
        );
        cmd.current_dir(&n.dir);
        self.spawn_recorded(&role, cmd, &n.log)
    }

    /// The daemon record of `node`, if one was started.
    pub fn daemon(&self, node: &str) -> Option<&ProcessRecord> {
        self.file.state.processes.get(&role_daemon(node))
    }

    /// Injects `fault` and records it as active.
    pub fn inject(&mut self, fault: &LabFault) -> Result<()> {
        self.apply(fault, true)?;
        self.file.state.faults.retain(|f| &f.fault != fault);
        self.file.state.faults.push(ActiveFault {
            fault: fault.clone(),
            injected_at_unix_ms: fault::unix_ms(),
        });
        self.file.save()
    }

    /// Undoes `fault` (also when it was not recorded as active: heal is idempotent).
    pub fn heal(&mut self, fault: &LabFault) -> Result<()> {
        self.apply(fault, false)?;
        self.file.state.faults.retain(|f| &f.fault != fault);
        self.file.save()
    }

    /// Undoes every active fault, most recent first.
    pub fn heal_all(&mut self) -> Result<Vec<LabFault>> {
        let active: Vec<LabFault> = self
            .file
            .state
            .faults
            .iter()
            .rev()
            .map(|f| f.fault.clone())
            .collect();
        for f in &active {
            self.heal(f)?;
        }
        Ok(active)
    }

    fn apply(&mut self, fault: &LabFault, inject: bool) -> Result<()> {
        let layout = self.layout().clone();
        let nic = |node: &str, network: &str| -> Result<(Netns, String)> {
            let dev = layout.interface(node, network)?.device.clone();
            Ok((Netns::borrowed(&layout.node(node)?.ns), dev))
        };
        let filter = |node: &str, network: &str, f: NicFilter| -> Result<()> {
            let (ns, dev) = nic(node, network)?;
            if inject {
                fault::set_nic_filter(&ns, &dev, f)
            } else {
                fault::clear_nic_filter(&ns, &dev, f);
                Ok(())
            }
        };
        match fault {
            LabFault::NicDown { node, network } => {
                let (ns, dev) = nic(node, network)?;
                ns.set_link(&dev, !inject)
            }
            LabFault::NicSilent { node, network } => filter(node, network, NicFilter::Silent),
            LabFault::NicTxOnly { node, network } => filter(node, network, NicFilter::TxOnly),
            LabFault::NicRxOnly { node, network } => filter(node, network, NicFilter::RxOnly),
            LabFault::NicLossy {
                node,
                network,
                percent,
            } => filter(node, network, NicFilter::Lossy(*percent)),
            LabFault::Loss { percent } => {
                for n in &layout.nodes {
                    for i in &n.interfaces {
                        filter(&n.name, &i.network, NicFilter::Lossy(*percent))?;
                    }
                }
                Ok(())
            }
            LabFault::HubDown { network } => {
                let net = layout.network(network)?;
                Netns::borrowed(&net.hub_ns).set_link(&net.bridge, !inject)
            }
            LabFault::RouterDown { network } => {
                let net = layout.network(network)?;
                Netns::borrowed(&net.router_ns).set_link(&net.router_dev, !inject)
            }
            LabFault::SerialCut { a, b } => {
                let line = layout.serial_line(a, b)?;
                let role = role_serial(&line.a, &line.b);
                let sig = if inject { libc::SIGSTOP } else { libc::SIGCONT };
                self.signal_role(&role, sig)
            }
            LabFault::NodeKilled { node } => {
                let role = role_daemon(node);
                if inject {
                    self.signal_role(&role, libc::SIGKILL)?;
                    if let Some(mut g) = self.children.remove(&role) {
                        g.kill(); // reap
                    }
                    Ok(())
                } else {
                    let alive = self
                        .file
                        .state
                        .processes
                        .get(&role)
                        .is_some_and(ProcessRecord::is_alive);
                    if !alive {
                        self.start_daemon(node)?;
                    }
                    Ok(())
                }
            }
            LabFault::NodeFrozen { node } => {
                let sig = if inject { libc::SIGSTOP } else { libc::SIGCONT };
                self.signal_role(&role_daemon(node), sig)
            }
            LabFault::DiskFailing { node } | LabFault::DiskHung { node } => {
                let disk =
                    self.file.state.disks.get(node).ok_or_else(|| {
                        LabError::Spec(format!("no disk recorded for node {node:?}"))
                    })?;
                match (inject, fault) {
                    (true, LabFault::DiskFailing { .. }) => disk.fail(),
                    (true, _) => disk.hang(),
                    (false, _) => disk.heal(),
                }
            }
        }
    }

    fn signal_role(&self, role: &str, signal: i32) -> Result<()> {
        let record = self
            .file
            .state
            .processes
            .get(role)
            .ok_or_else(|| LabError::Spec(format!("no {role} process in this lab")))?;
        if record.signal(signal) {
            // A stop or continue is injected only once the kernel shows it.
            let settled = match signal {
                libc::SIGSTOP => sys::wait_stop_state(record.pid, true),
                libc::SIGCONT => sys::wait_stop_state(record.pid, false),
                _ => true,
            };
            if settled {
                Ok(())
            } else {
                Err(LabError::Spec(format!(
                    "{role} (pid {}) did not {} within 2 s",
                    record.pid,
                    if signal == libc::SIGSTOP {
                        "stop"
                    } else {
                        "resume"
                    }
                )))
            }
        } else {
            Err(LabError::Spec(format!(
                "{role} (pid {}) is not running",
                record.pid
            )))
        }
    }

    /// Removes everything now; returns what could not be removed.
    pub fn teardown(mut self) -> Vec<String> {
        self.teardown_on_drop = false;
        let problems = self.file.teardown();
        for (_, mut g) in std::mem::take(&mut self.children) {
            g.kill();
        }
        problems
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.teardown_on_drop {
            let problems = self.file.teardown();
            for (_, mut g) in std::mem::take(&mut self.children) {
                g.kill();
            }
            for p in problems {
                eprintln!("hadiag lab: teardown: {p}");
            }
        } else {
            // A lab this value does not own (attached by `lab fault` / `lab heal`, or
            // detached): what it started here — a daemon restarted by `heal node-kill` — runs
            // on like the ones `lab up` started, recorded in the state file for `lab down`.
            for (_, g) in std::mem::take(&mut self.children) {
                g.detach();
            }
        }
    }
}

/// `lab down`: removes everything recorded in the state file at `state_path`.
pub fn down(state_path: &Path) -> Result<Vec<String>> {
    sys::require_root()?;
    let mut file = StateFile::load(state_path)?;
    Ok(file.teardown())
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<()> {
    std::fs::write(path, text).map_err(|e| LabError::io(path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| LabError::io(path, e))
}

/// A fresh random 32-byte key, mode 0600 (the config loader refuses group/other access).
fn write_key(path: &Path) -> Result<()> {
    use rand::RngCore;
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    write_file(path, &hex, 0o600)
}

/// Polls `ready` every 10 ms until true or `within` passes.
pub fn wait_for(what: &str, within: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
    let start = std::time::Instant::now();
    while !ready() {
        if start.elapsed() > within {
            return Err(LabError::Timeout {
                what: what.to_string(),
                waited: within,
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Removes what crashed *test* processes left behind: namespaces named `hdg<pid>-…` whose
/// creating process no longer exists (killing, by PID, whatever still runs inside them), and
/// loop devices whose backing lab disk image was deleted. Returns what was removed.
/// Labs from `lab up` (`hdg-<name>-…`) are left alone: `lab down` removes those.
pub fn gc_stale() -> Result<Vec<String>> {
    sys::require_root()?;
    let mut removed = Vec::new();
    let entries = std::fs::read_dir("/run/netns")
        .map(|d| d.flatten().collect::<Vec<_>>())
        .unwrap_or_default();
    for e in entries {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix("hdg") else {
            continue;
        };
        let Some((pid, _)) = rest.split_once('-') else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if sys::process_start_time(pid).is_none() {
            crate::lab::netns::delete_namespace(&name);
            removed.push(format!("namespace {name}"));
        }
    }
    let blocks = std::fs::read_dir("/sys/block")
        .map(|d| d.flatten().collect::<Vec<_>>())
        .unwrap_or_default();
    for b in blocks {
        let dev = b.file_name().to_string_lossy().to_string();
        if !dev.starts_with("loop") {
            continue;
        }
        let Ok(backing) = std::fs::read_to_string(b.path().join("loop/backing_file")) else {
            continue;
        };
        let backing = backing.trim();
        if backing.ends_with("/disk.img (deleted)") && backing.contains("/nodes/") {
            let path = format!("/dev/{dev}");
            let _ = sys::run_unchecked("losetup", &["-d", path.as_str()], None);
            removed.push(format!("loop device {path} ({backing})"));
        }
    }
    Ok(removed)
}
