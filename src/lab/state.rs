//! The lab's record of everything it created, kept as JSON in `<root>/<name>/state.json`.
//!
//! Each resource is recorded *before* it is created and the file is rewritten atomically
//! after every change, so `lab down` (or a guard's Drop) can remove everything even after a
//! crash or a half-built `up`. Teardown tolerates resources that are already gone.
//!
//! Must not: kill a recorded PID whose start time no longer matches (recycled PID).

use crate::lab::disk::LabDisk;
use crate::lab::error::{LabError, Result};
use crate::lab::fault::ActiveFault;
use crate::lab::layout::Layout;
use crate::lab::netns;
use crate::lab::sys::ProcessRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default root of lab state directories.
pub const DEFAULT_STATE_ROOT: &str = "/run/hadiag-lab";

/// Format version of state.json.
const STATE_VERSION: u32 = 1;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LabState {
    pub version: u32,
    pub name: String,
    /// The lab's directory (configs, logs, disks, pty links); removed by teardown.
    pub dir: PathBuf,
    /// Namespaces, in creation order.
    pub namespaces: Vec<String>,
    /// Running processes by role (`daemon:n1`, `serial:n1-n2`).
    pub processes: BTreeMap<String, ProcessRecord>,
    /// Disks by node name.
    pub disks: BTreeMap<String, LabDisk>,
    /// What was built (filled in once the description is resolved).
    pub layout: Option<Layout>,
    /// Faults currently injected.
    pub faults: Vec<ActiveFault>,
    /// The hadiag binary the daemons run (reused when `heal node-kill` restarts one).
    #[serde(default)]
    pub daemon_exe: Option<PathBuf>,
}

/// A state file on disk together with its in-memory copy.
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    pub state: LabState,
}

impl StateFile {
    /// Path of the state file of lab `name` under `root`.
    pub fn path_for(root: &Path, name: &str) -> PathBuf {
        root.join(name).join("state.json")
    }

    /// Starts a new record for lab `name` in `root/name`; fails if a lab of that name is up.
    pub fn create(root: &Path, name: &str) -> Result<StateFile> {
        let dir = root.join(name);
        let path = dir.join("state.json");
        if path.exists() {
            return Err(LabError::State {
                path,
                cause: format!(
                    "lab {name:?} already exists; run `hadiag lab down --name {name}` first"
                ),
            });
        }
        std::fs::create_dir_all(&dir).map_err(|e| LabError::io(&dir, e))?;
        let file = StateFile {
            path,
            state: LabState {
                version: STATE_VERSION,
                name: name.to_string(),
                dir,
                ..LabState::default()
            },
        };
        file.save()?;
        Ok(file)
    }

    pub fn load(path: &Path) -> Result<StateFile> {
        let text = std::fs::read_to_string(path).map_err(|e| LabError::io(path, e))?;
        let state: LabState = serde_json::from_str(&text).map_err(|e| LabError::State {
            path: path.to_path_buf(),
            cause: e.to_string(),
        })?;
        if state.version != STATE_VERSION {
            return Err(LabError::State {
                path: path.to_path_buf(),
                cause: format!("version {} (expected {STATE_VERSION})", state.version),
            });
        }
        Ok(StateFile {
            path: path.to_path_buf(),
            state,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the record atomically (temp file + rename).
    pub fn save(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.state).map_err(|e| LabError::State {
            path: self.path.clone(),
            cause: e.to_string(),
        })?;
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(|e| LabError::io(&tmp, e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| LabError::io(&self.path, e))
    }

    /// Records a namespace before it is created.
    pub fn record_namespace(&mut self, name: &str) -> Result<()> {
        self.state.namespaces.push(name.to_string());
        self.save()
    }

    pub fn record_process(&mut self, role: &str, record: ProcessRecord) -> Result<()> {
        self.state.processes.insert(role.to_string(), record);
        self.save()
    }

    pub fn record_disk(&mut self, node: &str, disk: LabDisk) -> Result<()> {
        self.state.disks.insert(node.to_string(), disk);
        self.save()
    }

    /// Removes everything recorded and the lab directory. Returns what could not be removed.
    pub fn teardown(&mut self) -> Vec<String> {
        let problems = teardown(&self.state);
        self.state.namespaces.clear();
        self.state.processes.clear();
        self.state.disks.clear();
        problems
    }
}

/// Removes every recorded resource: processes (by PID + start time), namespaces (killing
/// whatever still runs inside them), loop devices, then the lab directory.
pub fn teardown(state: &LabState) -> Vec<String> {
    let mut problems = Vec::new();
    for record in state.processes.values() {
        record.signal(libc::SIGKILL);
    }
    // Let killed processes exit (they hold pty links and namespace references); bounded.
    for _ in 0..50 {
        if state.processes.values().all(|r| !r.is_alive()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for (role, record) in &state.processes {
        if record.is_alive() {
            problems.push(format!("{role} (pid {}) still alive", record.pid));
        }
    }
    for ns in state.namespaces.iter().rev() {
        netns::delete_namespace(ns);
        if netns::namespace_exists(ns) {
            problems.push(format!("namespace {ns} still exists"));
        }
    }
    for disk in state.disks.values() {
        disk.teardown();
    }
    // Only remove a directory that really is a lab directory (holds our state file).
    if state.dir.join("state.json").exists() {
        if let Err(e) = std::fs::remove_dir_all(&state.dir) {
            problems.push(format!("{}: {e}", state.dir.display()));
        }
    }
    problems
}
