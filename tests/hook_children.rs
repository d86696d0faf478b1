//! Hooks may leave children: a takeover hook that starts a service in the background and exits
//! 0 succeeds at once (first attempt, not a timeout), and the service it started keeps running.

use hadiag::config::HookSpec;
use hadiag::daemon::hooks::{run_hook, HookRequest};
use std::time::Duration;
use tokio::sync::watch;

/// Kills the background child by its PID when the test ends, also on failure.
struct KillOnDrop(Option<i32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0.filter(|p| *p > 0) {
            // SAFETY: plain syscall on a PID this test's hook started and reported.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

fn alive(pid: i32) -> bool {
    // Zombies count as dead: the child is reparented and reaped by init.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn a_hook_that_leaves_a_background_service_succeeds_and_the_service_survives() {
    // The service keeps stdout and stderr (inherited), as `svc &` does in a real hook.
    let spec = HookSpec {
        command: vec![
            "/bin/sh".into(),
            "-c".into(),
            "sleep 600 & echo \"started $!\"; exit 0".into(),
        ],
        timeout: Duration::from_secs(5),
        retries: 2,
        retry_backoff: Duration::from_millis(100),
    };
    let req = HookRequest {
        hook: "takeover",
        incident: "n1:1".into(),
        verdict: "node_failed".into(),
        subject: "node:n2".into(),
        node: "n1".into(),
        peer: "n2".into(),
        reason: "test".into(),
        diagnosis_json: b"{}".to_vec(),
    };
    let (_tx, rx) = watch::channel(false);
    let report = run_hook(spec, req, rx).await;
    let first = report.attempts.first().expect("one attempt");
    let pid: Option<i32> = first
        .stdout
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok());
    let _guard = KillOnDrop(pid);
    assert!(
        report.success,
        "hook failed: attempts {:?}",
        report
            .attempts
            .iter()
            .map(|a| (a.exit_code, a.timed_out, a.duration))
            .collect::<Vec<_>>()
    );
    assert_eq!(report.attempts.len(), 1, "retried a successful hook");
    assert!(!first.timed_out);
    let pid = pid.expect("the hook printed its child's pid");
    assert!(alive(pid), "the service the hook started was killed");
    println!(
        "hook with a background child finished in {:?}",
        first.duration
    );
}
