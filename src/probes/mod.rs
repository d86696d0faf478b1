//! Probes: independent tasks that measure one thing each and report [`Observation`]s to the
//! driver. A probe only measures; the core judges.
//!
//! - [`link`]: carrier/operstate per NIC (netlink events, `/sys` polling fallback);
//! - [`icmp`]: echo to each reference of each network, bound to that network's NIC;
//! - [`disk`]: direct read of one block, on a dedicated thread, hung reads reported;
//! - [`exec`]: mon-compatible monitors (and the bounded subprocess runner hooks reuse).
//!
//! Every probe owns its interval, timeout and resources; none shares a lock or a thread with
//! another, so a stuck probe cannot stall the others, the heartbeats or the core. They all send
//! into one bounded channel ([`OBSERVATION_QUEUE`]) drained by the driver.
//!
//! Must not: hold core state or decide anything.
//!
//! [`Observation`]: crate::core::observation::Observation

pub mod disk;
pub mod exec;
pub mod icmp;
pub mod link;

/// Capacity of the observation channel. Steady state at the largest supported layout (4
/// networks × 4 references at 10 Hz, link refresh, disk, 16 monitors) is < 250 observations/s,
/// each handled by the core in microseconds; 1024 absorbs several seconds of a stalled driver
/// before probes start waiting on `send` (which only delays that probe's next tick).
pub const OBSERVATION_QUEUE: usize = 1024;
