//! Clock adapter: maps tokio's monotonic clock to the core's [`Instant`] (nanoseconds since the
//! daemon's start) and back, and picks the incarnation number.
//!
//! The core never reads a clock; only this adapter does. Tokio time is used (not `std`) so a
//! paused test runtime drives the daemon consistently.

use crate::core::time::Instant;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Core time origin: the tokio instant the daemon started at.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: tokio::time::Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        Clock {
            epoch: tokio::time::Instant::now(),
        }
    }

    /// Current core time.
    pub fn now(&self) -> Instant {
        self.to_core(tokio::time::Instant::now())
    }

    /// Converts a tokio instant (saturating at the epoch).
    pub fn to_core(&self, t: tokio::time::Instant) -> Instant {
        let d = t.saturating_duration_since(self.epoch);
        Instant::from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// Converts a core deadline back to tokio time, for `sleep_until`.
    pub fn to_tokio(&self, t: Instant) -> tokio::time::Instant {
        // Cap far-future deadlines (u64::MAX nanos would overflow tokio's Instant).
        let d = t.since_epoch().min(Duration::from_secs(100 * 365 * 86_400));
        self.epoch + d
    }
}

/// The incarnation of this start: wall-clock milliseconds since the Unix epoch.
///
/// Peers' replay filters accept a new incarnation only when it changes, and sequence numbers
/// restart with it. Wall-clock ms changes on every start (two starts within one millisecond
/// are impossible for one daemon) and grows across restarts as long as the clock is not set
/// back by more than the downtime; if the clock is before 1970 we fall back to 1.
pub fn incarnation_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(1)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let c = Clock::new();
        let t = Instant::from_millis(1500);
        assert_eq!(c.to_core(c.to_tokio(t)), t);
        assert!(c.now() < Instant::from_millis(60_000));
        // Far-future deadlines do not overflow.
        let _ = c.to_tokio(Instant::from_nanos(u64::MAX));
        assert!(incarnation_now() > 1_600_000_000_000);
    }
}
