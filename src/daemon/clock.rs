//! Clock adapter: the core's [`Instant`] (nanoseconds since the daemon's start) on a clock
//! that counts suspend (`CLOCK_BOOTTIME`), mapped to and from tokio's timers; and the
//! incarnation number.
//!
//! Why BOOTTIME: the core tells a freeze or a suspended host (a paused VM, a laptop lid) by
//! the gap between two of its steps. Tokio's monotonic clock stops during suspend, so a host
//! suspended for a minute would look as if it never left — and resume services a peer took
//! over. Tokio instants are converted relative to the present (timers and probe timestamps
//! are always near it), so the two clocks need not run in step.
//! The core never reads a clock; only this adapter does. Nothing here depends on the wall
//! clock moving forward.

use crate::core::time::Instant;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds on `CLOCK_BOOTTIME` (monotonic, counts suspend); falls back to the monotonic
/// clock where BOOTTIME is unavailable.
fn boottime() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if rc != 0 {
        // SAFETY: as above.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Core time origin: the BOOTTIME reading at the daemon's start.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: Duration,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        Clock { epoch: boottime() }
    }

    /// Current core time (counts time the host spent suspended).
    pub fn now(&self) -> Instant {
        let d = boottime().saturating_sub(self.epoch);
        Instant::from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// Converts a tokio instant (a probe's timestamp), relative to now.
    pub fn to_core(&self, t: tokio::time::Instant) -> Instant {
        let (tokio_now, now) = (tokio::time::Instant::now(), self.now());
        if t >= tokio_now {
            now + (t - tokio_now)
        } else {
            now - (tokio_now - t)
        }
    }

    /// Converts a core deadline to tokio time, for `sleep_until` (relative to now; a past
    /// deadline is now).
    pub fn to_tokio(&self, t: Instant) -> tokio::time::Instant {
        // Cap far-future deadlines (u64::MAX nanos would overflow tokio's Instant).
        let ahead = (t - self.now()).min(Duration::from_secs(100 * 365 * 86_400));
        tokio::time::Instant::now() + ahead
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
        let t = c.now() + Duration::from_millis(1500);
        let back = c.to_core(c.to_tokio(t));
        // Relative conversions: equal up to the time the two calls took.
        assert!(back <= t + Duration::from_millis(50) && back + Duration::from_millis(50) >= t);
        assert!(c.now() < Instant::from_millis(60_000));
        // Far-future deadlines do not overflow.
        let _ = c.to_tokio(Instant::from_nanos(u64::MAX));
        assert!(incarnation_now() > 1_600_000_000_000);
    }
}
