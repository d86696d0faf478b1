//! Exec probe: mon-compatible monitors, and the bounded subprocess runner the hooks reuse.
//!
//! Monitor semantics (mon): exit status 0 = OK, anything else = failure; the first stdout line
//! is the summary, the rest is detail. Every run has a timeout; on timeout the *whole process
//! group* is killed (the child is started in its own group with `process_group(0)`, then
//! `kill(-pgid, SIGKILL)`), so a monitor's own children cannot linger. Output is bounded: at most
//! [`MAX_OUTPUT_BYTES`] of stdout and of stderr are kept, the rest is read and discarded so the
//! child never blocks on a full pipe. A run ends when the child exits: descendants it leaves
//! behind (a service started with `svc &`) keep running; pipes they still hold are read for
//! [`PIPE_GRACE`] more and then closed.
//!
//! Must not: judge (the core decides what a failing monitor means), or block the driver (every
//! run is its own task).

use crate::config::MonitorSpec;
use crate::core::observation::{MonitorOutcome, Observation, Probe};
use crate::daemon::clock::Clock;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Output kept per stream: enough for a summary and a useful detail, small enough that 16
/// monitors running at once stay far below the daemon's memory budget.
pub const MAX_OUTPUT_BYTES: usize = 16 * 1024;
/// Summary lines are cut to this many characters (they end up in views, logs and metrics).
pub const MAX_SUMMARY_CHARS: usize = 200;
/// How long the output pipes stay open after the child exited, for descendants that still hold
/// them (a background service a takeover hook started): enough to collect late lines, short
/// enough that the hook's result is not held up.
pub const PIPE_GRACE: Duration = Duration::from_millis(500);
/// Largest stdin payload written to a child (hooks' JSON diagnosis).
pub const MAX_STDIN_BYTES: usize = 256 * 1024;

/// What to run.
#[derive(Clone, Debug)]
pub struct RunSpec {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub stdin: Option<Vec<u8>>,
    pub timeout: Duration,
}

/// How a bounded run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunResult {
    /// Exit code; `None` when killed by a signal, timed out or never started.
    pub exit_code: Option<i32>,
    /// The process group was killed after `timeout`.
    pub timed_out: bool,
    /// Could not start (e.g. file not found); the text is the OS error.
    pub spawn_error: Option<String>,
    pub stdout: String,
    pub stderr: String,
    /// More output was produced than kept.
    pub truncated: bool,
    pub duration: Duration,
}

impl RunResult {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }

    /// First stdout line, trimmed and bounded; falls back to a description of the failure.
    pub fn summary(&self) -> String {
        let first = self.stdout.lines().next().unwrap_or("").trim();
        let s = if !first.is_empty() {
            first.to_string()
        } else if let Some(e) = &self.spawn_error {
            format!("cannot start: {e}")
        } else if self.timed_out {
            format!("timed out after {:?}", self.duration)
        } else {
            match self.exit_code {
                Some(0) => "ok".to_string(),
                Some(c) => format!("exit status {c}"),
                None => "killed by a signal".to_string(),
            }
        };
        s.chars().take(MAX_SUMMARY_CHARS).collect()
    }

    /// Stdout after the first line (mon's detail).
    pub fn detail(&self) -> &str {
        self.stdout.split_once('\n').map_or("", |(_, rest)| rest)
    }
}

/// Output read so far from one stream: the first `limit` bytes, and whether more came.
#[derive(Default)]
struct Kept {
    bytes: Vec<u8>,
    truncated: bool,
}

/// Reads a stream to its end (or until dropped), keeping the first `limit` bytes in `kept`, so
/// whatever was read survives a reader cut short.
async fn read_bounded<R: AsyncRead + Unpin>(r: Option<R>, limit: usize, kept: &mut Kept) {
    let Some(mut r) = r else {
        return;
    };
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = limit.saturating_sub(kept.bytes.len());
                let take = n.min(room);
                kept.bytes.extend_from_slice(buf.get(..take).unwrap_or(&[]));
                if take < n {
                    kept.truncated = true;
                }
            }
        }
    }
}

fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        if pid > 0 {
            // SAFETY: plain syscall; the group id is the pid of a child we started with
            // process_group(0), so it only reaches that child and its descendants.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }
}

/// Runs `spec` to completion or timeout. Never returns `Err`: failures are data.
pub async fn run_bounded(spec: &RunSpec) -> RunResult {
    let started = tokio::time::Instant::now();
    let mut result = RunResult {
        exit_code: None,
        timed_out: false,
        spawn_error: None,
        stdout: String::new(),
        stderr: String::new(),
        truncated: false,
        duration: Duration::ZERO,
    };
    let Some((program, args)) = spec.argv.split_first() else {
        result.spawn_error = Some("empty command".to_string());
        return result;
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            result.spawn_error = Some(format!("{program}: {e}"));
            result.duration = started.elapsed();
            return result;
        }
    };
    let pid = child.id();
    // Kills the whole group if this future is dropped mid-run (daemon shutdown aborts hook
    // tasks that outlive their grace period): no orphaned hook or monitor survives us.
    let mut guard = GroupGuard { pid, armed: true };
    if let (Some(mut stdin), Some(data)) = (child.stdin.take(), spec.stdin.clone()) {
        // A child that never reads its stdin must not stall us: write in the background.
        tokio::spawn(async move {
            let end = data.len().min(MAX_STDIN_BYTES);
            let _ = stdin.write_all(data.get(..end).unwrap_or(&[])).await;
        });
    }
    let out = child.stdout.take();
    let err = child.stderr.take();
    let (mut o, mut e) = (Kept::default(), Kept::default());
    let deadline = started + spec.timeout;
    let status = {
        let reading = async {
            tokio::join!(
                read_bounded(out, MAX_OUTPUT_BYTES, &mut o),
                read_bounded(err, MAX_OUTPUT_BYTES, &mut e)
            )
        };
        tokio::pin!(reading);
        let mut read_all = false;
        let status = loop {
            tokio::select! {
                s = child.wait() => break Some(s),
                _ = &mut reading, if !read_all => read_all = true,
                _ = tokio::time::sleep_until(deadline) => break None,
            }
        };
        if status.is_some() && !read_all {
            // Exited, but something it started in the background still holds the pipes (a
            // service started with `svc &`): take what comes within a short grace, then close
            // our ends. The run succeeded; its children are not ours to wait for or kill.
            let _ = tokio::time::timeout(PIPE_GRACE, &mut reading).await;
        }
        status
    };
    result.stdout = String::from_utf8_lossy(&o.bytes).into_owned();
    result.stderr = String::from_utf8_lossy(&e.bytes).into_owned();
    result.truncated = o.truncated || e.truncated;
    match status {
        Some(status) => {
            result.exit_code = status.ok().and_then(|s| s.code());
        }
        None => {
            result.timed_out = true;
            kill_group(pid);
            // The group is SIGKILLed: reaping is immediate; bound it anyway.
            let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
        }
    }
    guard.armed = false;
    result.duration = started.elapsed();
    result
}

struct GroupGuard {
    pid: Option<u32>,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            kill_group(self.pid);
        }
    }
}

/// Runs one monitor forever at its interval; a run never overlaps the next (a slow run
/// delays the next tick, bounded by the timeout). One task per monitor.
pub async fn monitor_task(spec: MonitorSpec, clock: Clock, tx: mpsc::Sender<Observation>) {
    let mut tick = tokio::time::interval(spec.interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let run = run_bounded(&RunSpec {
            argv: spec.command.clone(),
            env: vec![("HADIAG_MONITOR".to_string(), spec.name.clone())],
            stdin: None,
            timeout: spec.timeout,
        })
        .await;
        if run.timed_out {
            tracing::warn!(monitor = %spec.name, timeout = ?spec.timeout, "monitor timed out; process group killed");
        } else if !run.success() {
            tracing::info!(monitor = %spec.name, summary = %run.summary(), detail = %run.detail().trim(), "monitor failed");
        }
        let obs = Observation {
            at: clock.now(),
            probe: Probe::Monitor {
                name: spec.name.clone(),
                outcome: MonitorOutcome {
                    ok: run.success(),
                    summary: run.summary(),
                    duration: run.duration,
                    timed_out: run.timed_out,
                },
            },
        };
        if tx.send(obs).await.is_err() {
            return; // driver gone: shutting down
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Duration) -> RunSpec {
        RunSpec {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec![("X".into(), "42".into())],
            stdin: None,
            timeout,
        }
    }

    #[tokio::test]
    async fn ok_and_failure_and_summary() {
        let r = run_bounded(&sh(
            "echo \"all good $X\"; echo more",
            Duration::from_secs(5),
        ))
        .await;
        assert!(r.success());
        assert_eq!(r.summary(), "all good 42");
        assert_eq!(r.detail(), "more\n");
        let r = run_bounded(&sh("echo broken; exit 3", Duration::from_secs(5))).await;
        assert!(!r.success());
        assert_eq!(r.exit_code, Some(3));
        assert_eq!(r.summary(), "broken");
        let r = run_bounded(&RunSpec {
            argv: vec!["/nonexistent/monitor".into()],
            env: vec![],
            stdin: None,
            timeout: Duration::from_secs(1),
        })
        .await;
        assert!(!r.success());
        assert!(r.summary().starts_with("cannot start"), "{}", r.summary());
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild.pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let r = run_bounded(&sh(&script, Duration::from_millis(300))).await;
        assert!(r.timed_out);
        assert!(!r.success());
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild was in the group: it is gone (or a zombie reaped by init shortly).
        let mut alive = true;
        for _ in 0..50 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z ") {
                alive = false;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive, "grandchild {pid} survived the timeout");
    }

    #[tokio::test]
    async fn output_is_bounded_and_stdin_delivered() {
        let r = run_bounded(&sh(
            "head -c 100000 /dev/zero | tr '\\0' x",
            Duration::from_secs(5),
        ))
        .await;
        assert!(r.success());
        assert!(r.truncated);
        assert_eq!(r.stdout.len(), MAX_OUTPUT_BYTES);
        let mut spec = sh("cat", Duration::from_secs(5));
        spec.stdin = Some(b"{\"kind\":\"x\"}".to_vec());
        let r = run_bounded(&spec).await;
        assert_eq!(r.stdout, "{\"kind\":\"x\"}");
    }
}
