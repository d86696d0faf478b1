//! Action hooks (isolate, takeover, fence): subprocesses run off the core's task, with a
//! documented environment, the diagnosis as JSON on stdin, a per-attempt timeout and retries.
//!
//! Environment of every hook run:
//!
//! | variable | value |
//! |---|---|
//! | `HADIAG_HOOK` | `isolate`, `takeover` or `fence` |
//! | `HADIAG_INCIDENT` | incident id, `<opener>-<number>` (e.g. `n1-3`), as in the journal, the API and `explain` |
//! | `HADIAG_VERDICT` | verdict kind token (e.g. `cut_off`, `node_failed`) |
//! | `HADIAG_SUBJECT` | subjects, space-separated operator names (e.g. `node n2`) |
//! | `HADIAG_NODE` | name of the node running the hook |
//! | `HADIAG_PEER` | takeover/fence: the peer being taken over or fenced (else empty) |
//! | `HADIAG_REASON` | one-line reason (the diagnosis' first supporting observation) |
//! | `HADIAG_ATTEMPT` | 1-based attempt number |
//!
//! Stdin: the diagnosis as one JSON document. Exit status 0 = success. Each attempt is bounded
//! by the hook's `timeout` (the whole process group is killed); a failed attempt is retried
//! `retries` times after `retry_backoff`. Every attempt (exit status, duration, head of output)
//! is logged and returned; the final success/failure goes back to the core as
//! `Node::handle_hook_result`. Hooks never run on the core's task, so a hung hook cannot block
//! heartbeats or the core.
//!
//! Must not: decide whether to run (the core does) or reinterpret the result.

use crate::config::HookSpec;
use crate::probes::exec::{run_bounded, RunResult, RunSpec};
use std::time::Duration;
use tokio::sync::watch;

/// Characters of stdout/stderr kept in logs and the journal per attempt.
pub const OUTPUT_HEAD_CHARS: usize = 512;

/// What a hook run is about.
#[derive(Clone, Debug)]
pub struct HookRequest {
    /// `isolate`, `takeover` or `fence`.
    pub hook: &'static str,
    pub incident: String,
    pub verdict: String,
    pub subject: String,
    pub node: String,
    pub peer: String,
    pub reason: String,
    pub diagnosis_json: Vec<u8>,
}

/// The outcome of all attempts of one hook run.
#[derive(Clone, Debug)]
pub struct HookReport {
    pub request: HookRequest,
    pub attempts: Vec<RunResult>,
    pub success: bool,
}

impl HookReport {
    /// Short, bounded head of an attempt's output for logs and the journal.
    pub fn output_head(r: &RunResult) -> String {
        let mut s: String = r.stdout.chars().take(OUTPUT_HEAD_CHARS).collect();
        if !r.stderr.is_empty() {
            s.push_str(" | stderr: ");
            s.extend(r.stderr.chars().take(OUTPUT_HEAD_CHARS));
        }
        s
    }
}

fn env(req: &HookRequest, attempt: u32) -> Vec<(String, String)> {
    vec![
        ("HADIAG_HOOK".into(), req.hook.into()),
        ("HADIAG_INCIDENT".into(), req.incident.clone()),
        ("HADIAG_VERDICT".into(), req.verdict.clone()),
        ("HADIAG_SUBJECT".into(), req.subject.clone()),
        ("HADIAG_NODE".into(), req.node.clone()),
        ("HADIAG_PEER".into(), req.peer.clone()),
        ("HADIAG_REASON".into(), req.reason.clone()),
        ("HADIAG_ATTEMPT".into(), attempt.to_string()),
    ]
}

/// Runs a hook with its retries. `shutdown` flipping to true stops further retries (the
/// attempt in flight still finishes or is killed at its timeout).
pub async fn run_hook(
    spec: HookSpec,
    req: HookRequest,
    mut shutdown: watch::Receiver<bool>,
) -> HookReport {
    let mut attempts = Vec::new();
    let total = spec.retries.saturating_add(1);
    for attempt in 1..=total {
        let r = run_bounded(&RunSpec {
            argv: spec.command.clone(),
            env: env(&req, attempt),
            stdin: Some(req.diagnosis_json.clone()),
            timeout: spec.timeout,
        })
        .await;
        let ok = r.success();
        tracing::info!(
            hook = req.hook,
            incident = %req.incident,
            attempt,
            of = total,
            success = ok,
            exit_code = ?r.exit_code,
            timed_out = r.timed_out,
            duration_ms = r.duration.as_millis() as u64,
            output = %HookReport::output_head(&r),
            "hook run"
        );
        attempts.push(r);
        if ok {
            return HookReport {
                request: req,
                attempts,
                success: true,
            };
        }
        if attempt < total {
            let backoff = spec.retry_backoff.max(Duration::from_millis(1));
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
        }
    }
    tracing::warn!(hook = req.hook, incident = %req.incident, attempts = attempts.len(), "hook failed");
    HookReport {
        request: req,
        attempts,
        success: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> HookRequest {
        HookRequest {
            hook: "isolate",
            incident: "n1:3".into(),
            verdict: "cut_off".into(),
            subject: "node n2".into(),
            node: "n2".into(),
            peer: String::new(),
            reason: "n2 hears nobody".into(),
            diagnosis_json: br#"{"kind":"cut_off"}"#.to_vec(),
        }
    }

    #[tokio::test]
    async fn environment_stdin_and_retries() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let script = format!(
            "echo \"$HADIAG_HOOK $HADIAG_INCIDENT $HADIAG_VERDICT $HADIAG_SUBJECT $HADIAG_NODE $HADIAG_ATTEMPT $(cat)\" >> {}; [ \"$HADIAG_ATTEMPT\" = 2 ]",
            log.display()
        );
        let spec = HookSpec {
            command: vec!["/bin/sh".into(), "-c".into(), script],
            timeout: Duration::from_secs(5),
            retries: 2,
            retry_backoff: Duration::from_millis(10),
        };
        let (_tx, rx) = watch::channel(false);
        let rep = run_hook(spec, req(), rx).await;
        assert!(rep.success);
        assert_eq!(rep.attempts.len(), 2);
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            text,
            "isolate n1:3 cut_off node n2 n2 1 {\"kind\":\"cut_off\"}\nisolate n1:3 cut_off node n2 n2 2 {\"kind\":\"cut_off\"}\n"
        );
    }

    #[tokio::test]
    async fn a_hung_hook_is_killed_and_reported_failed() {
        let spec = HookSpec {
            command: vec!["/bin/sh".into(), "-c".into(), "sleep 30".into()],
            timeout: Duration::from_millis(200),
            retries: 0,
            retry_backoff: Duration::from_millis(10),
        };
        let (_tx, rx) = watch::channel(false);
        let rep = run_hook(spec, req(), rx).await;
        assert!(!rep.success);
        assert!(rep.attempts[0].timed_out);
    }
}
