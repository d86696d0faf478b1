//! `hadiag fence-agent` (installed as `fence_hadiag` through a two-line wrapper script): the
//! I/O side of the fencing gate — reads the fencer's request, asks the local daemon, waits,
//! logs and exits. The decision and the protocol live in [`crate::integration::fence`].
//!
//! Logs go to stderr (Pacemaker's fencer logs an agent's stderr) and, when `log_file` is
//! set, one line per decision to that file.

use crate::cli::status::{api_json, ApiArgs, Endpoint};
use crate::integration::fence::{self, Action, DaemonView, Judgement, Request};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Fence-agent exit codes: 0 success, 1 failure.
const FAILED: u8 = 1;
/// Pause between questions to the daemon while waiting for a verdict.
const SETTLE_POLL: Duration = Duration::from_millis(500);
/// Pause between questions while a refusal holds.
const HOLD_POLL: Duration = Duration::from_secs(1);

/// How long to wait for the end of stdin when options came on the command line too (the
/// fencer writes its parameters at once and closes the pipe; a terminal never ends).
const STDIN_WAIT: Duration = Duration::from_secs(2);

/// Reads stdin up to [`fence::MAX_STDIN`]: to its end when it is the only source, else for
/// at most [`STDIN_WAIT`] (a terminal is not read at all when options were given). Reading
/// it matters also for the fencer, which gets SIGPIPE if the agent leaves its pipe unread.
fn read_stdin(have_args: bool) -> std::io::Result<String> {
    use std::io::IsTerminal;
    if have_args && std::io::stdin().is_terminal() {
        return Ok(String::new());
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut input = String::new();
        let r = std::io::stdin()
            .take(fence::MAX_STDIN)
            .read_to_string(&mut input)
            .map(|_| input);
        let _ = tx.send(r);
    });
    if have_args {
        Ok(rx
            .recv_timeout(STDIN_WAIT)
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default())
    } else {
        rx.recv().unwrap_or_else(|_| Ok(String::new()))
    }
}

pub fn run(args: Vec<String>) -> ExitCode {
    // Like fence-agents: `name=value` lines on stdin and/or options on the command line.
    let input = match read_stdin(!args.is_empty()) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("fence_hadiag: reading stdin: {e}");
            return ExitCode::from(FAILED);
        }
    };
    let req = match fence::parse(&input, &args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fence_hadiag: {e}");
            return ExitCode::from(FAILED);
        }
    };
    match req.action {
        Action::Metadata => {
            print!("{}", fence::metadata());
            ExitCode::SUCCESS
        }
        Action::ValidateAll => match endpoint(&req) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("fence_hadiag: {e:#}");
                ExitCode::from(FAILED)
            }
        },
        // Unfencing is never gated; a gate has no outlets to list.
        Action::On | Action::List => ExitCode::SUCCESS,
        // The gate works (fails safe) without the daemon, so the device is healthy whenever
        // the agent runs. No API call here: the fencer runs monitors on a timeout, often
        // under load, and a slow answer must not fail the device.
        Action::Monitor | Action::Status => ExitCode::SUCCESS,
        Action::Off | Action::Reboot => gate(&req),
    }
}

fn endpoint(req: &Request) -> anyhow::Result<Endpoint> {
    ApiArgs {
        config: req.config.as_ref().map(PathBuf::from),
        url: req.url.clone(),
        token_file: req.token_file.as_ref().map(PathBuf::from),
    }
    .endpoint()
}

fn log(req: &Request, target: &str, decision: &str, reason: &str) {
    let line = format!(
        "{} fence_hadiag action={} target={target} decision={decision}: {reason}",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        req.action.token()
    );
    eprintln!("{line}");
    if let Some(path) = &req.log_file {
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = written {
            eprintln!("fence_hadiag: log_file {path}: {e}");
        }
    }
}

fn gate(req: &Request) -> ExitCode {
    let Some(target) = req.target.as_deref() else {
        eprintln!("fence_hadiag: no node to fence (plug, port or nodename)");
        return ExitCode::from(FAILED);
    };
    let ep = match endpoint(req) {
        Ok(ep) => ep,
        Err(e) => {
            log(
                req,
                target,
                "proceed (fail safe)",
                &format!("{e:#}; the ordinary delay logic decides"),
            );
            return ExitCode::SUCCESS;
        }
    };
    let start = Instant::now();
    loop {
        let why = match api_json::<DaemonView>(&ep, "/api/v1/status") {
            Ok(view) => match fence::judge(&view, target) {
                Judgement::Proceed(r) => {
                    log(req, target, "proceed", &r);
                    return ExitCode::SUCCESS;
                }
                Judgement::Refuse(r) => return hold(req, &ep, target, &r),
                Judgement::Undecided(r) => r,
            },
            Err(e) => format!("no answer from hadiag: {e:#}"),
        };
        if start.elapsed() >= req.settle {
            log(
                req,
                target,
                "proceed (fail safe)",
                &format!(
                    "{why} after {:?}; the ordinary delay logic decides",
                    req.settle
                ),
            );
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(SETTLE_POLL);
    }
}

/// This node is the cut-off one: hold (re-asking), then fail so the real device on this
/// level does not run.
fn hold(req: &Request, ep: &Endpoint, target: &str, reason: &str) -> ExitCode {
    log(
        req,
        target,
        &format!("refuse (holding {:?})", req.hold),
        reason,
    );
    let until = Instant::now() + req.hold;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(HOLD_POLL));
        if let Ok(view) = api_json::<DaemonView>(ep, "/api/v1/status") {
            if let Judgement::Proceed(r) = fence::judge(&view, target) {
                log(req, target, "proceed (verdict changed while holding)", &r);
                return ExitCode::SUCCESS;
            }
        }
    }
    log(req, target, "refused", reason);
    ExitCode::from(FAILED)
}
