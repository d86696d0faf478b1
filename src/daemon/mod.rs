//! The daemon (`hadiag run`): the driver that owns the sans-IO core and wires probes,
//! transports, hooks, signals and reload to it.
//!
//! - [`driver`]: the single task that owns the core `Node`, the channels into it, signals;
//! - [`control`]: the local control channel (quiesce, resume, leave, rejoin);
//! - [`clock`]: tokio time ↔ core `Instant`, incarnation numbers;
//! - [`notify`]: systemd readiness, watchdog and status;
//! - [`hooks`]: isolate/takeover/fence subprocesses (environment, JSON stdin, timeout, retries);
//! - [`reload`]: which SIGHUP changes apply live and which are refused;
//! - [`privileges`]: start-up capability check (which probe lacks which capability);
//! - [`status`]: the per-node status file written once per second;
//! - [`observe`]: the one integration point with metrics, API, journal and alerts.
//!
//! Must not: judge (the core does) or block the core's task.

pub mod clock;
pub mod control;
pub mod driver;
pub mod hooks;
pub mod notify;
pub mod observe;
pub mod privileges;
pub mod reload;
pub mod status;

pub use driver::{run, DaemonError};
