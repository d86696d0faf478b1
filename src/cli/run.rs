//! `hadiag run --config FILE [--node NAME]`: the daemon.
//!
//! Logs are structured `tracing` lines on stderr (level from `RUST_LOG`, default `info`).
//! Exit codes: 0 after a clean SIGTERM/SIGINT shutdown, 2 for an invalid configuration or
//! node name, 1 for any other start-up failure.

use std::path::Path;
use std::process::ExitCode;

pub fn run(config: &Path, node: Option<&str>) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
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
