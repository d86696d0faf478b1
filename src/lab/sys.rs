//! Thin wrappers over the system tools the lab drives (`ip`, `nft`, `losetup`) and over
//! signals. Every command's failure becomes a [`LabError::Command`] with its stderr.
//!
//! Must not: signal a process it cannot prove it started (see [`ProcessRecord`]).

use crate::lab::error::{LabError, Result};
use serde::{Deserialize, Serialize};
use std::ffi::OsStr;
use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Renders a command line for error messages.
pub(crate) fn render<S: AsRef<OsStr>>(program: &str, args: &[S]) -> String {
    let mut s = program.to_string();
    for a in args {
        s.push(' ');
        s.push_str(&a.as_ref().to_string_lossy());
    }
    s
}

/// Runs `program args…` to completion; Err when it cannot start or exits non-zero.
pub fn run<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Result<Output> {
    run_input(program, args, None)
}

/// Like [`run`], feeding `input` on stdin.
pub fn run_input<S: AsRef<OsStr>>(
    program: &str,
    args: &[S],
    input: Option<&str>,
) -> Result<Output> {
    let out = run_unchecked(program, args, input)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(LabError::Command {
            command: render(program, args),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Runs a command and returns its output whatever the exit status (Err only if it cannot run).
pub fn run_unchecked<S: AsRef<OsStr>>(
    program: &str,
    args: &[S],
    input: Option<&str>,
) -> Result<Output> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawn_err = |e| LabError::Spawn {
        command: render(program, args),
        source: e,
    };
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let Some(text) = input {
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(text.as_bytes())
                .map_err(|e| LabError::Spawn {
                    command: render(program, args),
                    source: e,
                })?;
        }
    }
    child.wait_with_output().map_err(|e| LabError::Spawn {
        command: render(program, args),
        source: e,
    })
}

/// Fails loudly unless running as root: lab tests must never pass vacuously.
pub fn require_root() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    if uid == 0 {
        Ok(())
    } else {
        Err(LabError::NotRoot(uid))
    }
}

/// Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), used to
/// make sure a recorded PID still names the process we started and not a recycled one.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    // rest starts at field 3; field 22 is index 19 of the remaining fields.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Scheduler state of a process (field 3 of /proc/PID/stat: R, S, D, T, Z, …).
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .next()?
        .chars()
        .next()
}

/// A process the lab started, identified by PID and start time so that a later `lab down`
/// never signals an unrelated process that reused the PID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRecord {
    pub pid: u32,
    pub start_time: u64,
    pub what: String,
}

impl ProcessRecord {
    pub fn of(pid: u32, what: impl Into<String>) -> Option<ProcessRecord> {
        Some(ProcessRecord {
            pid,
            start_time: process_start_time(pid)?,
            what: what.into(),
        })
    }

    /// True while the PID still names the very process that was recorded.
    /// A zombie (exited, not yet reaped by its parent) counts as gone.
    pub fn is_alive(&self) -> bool {
        process_start_time(self.pid) == Some(self.start_time)
            && !matches!(process_state(self.pid), Some('Z' | 'X'))
    }

    /// Sends `signal` if (and only if) the recorded process still exists.
    pub fn signal(&self, signal: i32) -> bool {
        if !self.is_alive() {
            return false;
        }
        send_signal(self.pid, signal)
    }
}

/// Sends a signal to one PID (never a group, never a broadcast).
pub(crate) fn send_signal(pid: u32, signal: i32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false; // 0 and negatives would address groups: never.
    }
    // SAFETY: kill(2) with a positive pid addresses exactly one process.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// How long a SIGSTOP / SIGCONT may take to show in the process state.
const STOP_SETTLE: std::time::Duration = std::time::Duration::from_secs(2);

/// Waits until `pid` shows as stopped (`T`) — or, with `stopped` false, as no longer stopped.
/// A signal is delivered asynchronously: a cut or a freeze counts as injected only once the
/// kernel shows it. False when it did not happen within a bounded wait (or the process ended).
pub fn wait_stop_state(pid: u32, stopped: bool) -> bool {
    let start = std::time::Instant::now();
    loop {
        match process_state(pid) {
            None | Some('Z' | 'X') => return false,
            Some(s) if (s == 'T') == stopped => return true,
            Some(_) => {}
        }
        if start.elapsed() > STOP_SETTLE {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
