//! Integrations with the cluster managers hadiag informs instead of competing with.
//!
//! - [`pacemaker`]: node-health attributes in Pacemaker's CIB, set through `attrd_updater`
//!   on every verdict change (built-in, enabled by the `pacemaker:` config section).
//! - [`fence`]: the decision and the stdin protocol of the `fence_hadiag` fence agent (a
//!   gate in a fencing topology that stops a cut-off node from fencing its healthy peer).
//!
//! Must not: judge anything (the core does) or block the daemon's loop (every external
//! command runs on its own thread, bounded by a timeout).

pub mod fence;
pub mod pacemaker;
