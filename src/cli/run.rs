//! `hadiag run --config FILE [--node NAME]`: the daemon.
//!
//! Logs are structured `tracing` lines on stderr (level from `RUST_LOG`, default `info`),
//! written by a thread of their own so that a slow log sink never blocks the daemon.
//! Exit codes: 0 after a clean SIGTERM/SIGINT shutdown, 2 for an invalid configuration or
//! node name, 1 for any other start-up failure.

use std::path::Path;
use std::process::ExitCode;

/// Log lines queued for the writer thread: minutes of normal logging, a few MiB at most.
const LOG_QUEUE_LINES: usize = 4096;

pub fn run(config: &Path, node: Option<&str>) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Logging must never hold up the daemon: a slow sink (journald under load, a file system
    // flushing gigabytes of dirty pages) would stop the heartbeats with it, and the peers would
    // see this node die. Lines go through a bounded queue to a writer thread; when the queue
    // is full a line is dropped rather than waited for. The guard flushes at exit.
    let (writer, _log_flush) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .finish(std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false)
        // No colour escapes into journald or a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    // One thread: the core, the receivers and the probes are all short non-blocking steps;
    // everything that can block (disk reads, serial ports, raw sockets, subprocess waits) has
    // its own thread or child process. One thread keeps CPU and memory overhead minimal.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hadiag run: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(crate::daemon::run(config, node)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ (crate::daemon::DaemonError::Config(_) | crate::daemon::DaemonError::Node(_))) => {
            eprintln!("hadiag run: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("hadiag run: {e}");
            ExitCode::from(1)
        }
    }
}
