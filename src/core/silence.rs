//! Loss-aware silence: how long a path may stay quiet before it counts as silent.
//!
//! What it is for: [`crate::core::evidence`] keeps one [`Arrivals`] per peer and path and asks
//! it for the path's silence threshold. A clean path keeps the configured
//! `heartbeat_interval × detect_multiplier`; a path that has been losing heartbeats gets a
//! longer threshold, chosen so that a healthy path with the measured loss crosses it with a
//! probability below `thresholds.false_silence_probability` per heartbeat (the Lifeguard /
//! phi-accrual idea: suspicion scales with what the path's own history makes likely), and
//! never longer than [`Timing::silence_cap`], so a path that really died is still declared
//! silent within a bounded time and the isolation margins (`fence_deadline`) still hold.
//! What it must not do: read a clock, judge a path, or count the current silence as loss (a dead
//! path must not talk itself into a longer threshold).
//!
//! Arithmetic: with independent loss `p` per heartbeat, the path is falsely silent when the
//! `k − 1` heartbeats after the last one received are lost and the `k`-th is not yet in when
//! `k` intervals have passed, so `k = 1 + ⌈ln(bound) / ln(p)⌉`. At 100 ms and bound 10⁻⁶:
//! 5 % loss ⇒ 6 intervals (600 ms), 20 % ⇒ 10 (1 s), 30 % ⇒ 13 (1.3 s), 50 % ⇒ 21 (2.1 s, so
//! the default cap of 1.7 s applies and the bound is 0.5¹⁶ ≈ 1.5 × 10⁻⁵ there).
//!
//! Loss is estimated from completed gaps between received heartbeats only: `p = missed /
//! (missed + received)` over the last [`GAP_WINDOW`] heartbeats and over the last
//! [`SHORT_GAPS`], the larger of the two; the long window counts once two heartbeats in it
//! were missed, the short one from the first miss, so a loss that starts now raises the
//! threshold at its first miss (one lost heartbeat on a clean path lengthens the threshold to
//! 600 ms for the next 16 heartbeats, then it is back to the detection time). A gap longer than the threshold in force was a silence, not loss, and is left out.

use crate::core::time::Instant;
use crate::core::topology::Timing;
use std::collections::VecDeque;
use std::time::Duration;

/// Gaps kept per path: 100 heartbeats (10 s at 100 ms) resolve 1 % loss; 4 bytes each.
pub const GAP_WINDOW: usize = 100;
/// Recent gaps that let a fresh loss raise the threshold quickly.
pub const SHORT_GAPS: usize = 16;
/// Misses needed before the long window counts: one lost heartbeat in 100 is noise, not a loss
/// rate (as for the degraded rule). The short window counts from the first miss: a path that
/// just started losing may have shown one miss only before a run of three.
const LONG_MIN_MISSED: u32 = 2;
/// Loss estimates are clamped here: beyond it the cap decides anyway.
const MAX_LOSS: f64 = 0.99;

/// One completed gap: heartbeats missed before a receipt, and how late the receipt was
/// against the heartbeat grid (jitter), in microseconds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Gap {
    missed: u16,
    late_us: u16,
}

/// Inter-arrival history of the heartbeats of one peer on one path.
#[derive(Clone, Debug, Default)]
pub struct Arrivals {
    gaps: VecDeque<Gap>,
    last: Option<Instant>,
}

impl Arrivals {
    /// A heartbeat arrived at `now`; `threshold` is the silence threshold that was in force
    /// before it (a longer gap was an outage, not loss, and stays out of the estimate).
    pub fn record(&mut self, now: Instant, interval: Duration, threshold: Duration) {
        if let Some(last) = self.last {
            let gap = now - last;
            if gap <= threshold {
                let iv = interval.as_nanos().max(1);
                let slots = ((gap.as_nanos() + iv / 2) / iv).max(1);
                let grid = iv.saturating_mul(slots);
                let late = gap.as_nanos().saturating_sub(grid);
                if self.gaps.len() >= GAP_WINDOW {
                    self.gaps.pop_front();
                }
                self.gaps.push_back(Gap {
                    missed: u16::try_from(slots - 1).unwrap_or(u16::MAX),
                    late_us: u16::try_from(late / 1000).unwrap_or(u16::MAX),
                });
            }
        }
        self.last = Some(now);
    }

    /// Forget the history (the peer restarted: its old loss says nothing about it now).
    pub fn clear(&mut self) {
        *self = Arrivals::default();
    }

    /// Estimated loss per heartbeat (0 when nothing was missed).
    pub fn loss(&self) -> f64 {
        let rate = |gaps: &mut dyn Iterator<Item = &Gap>| {
            let (mut missed, mut got) = (0u32, 0u32);
            for g in gaps {
                missed += u32::from(g.missed);
                got += 1;
            }
            (missed, got)
        };
        let ratio = |(missed, got): (u32, u32), min: u32| {
            if missed < min.max(1) {
                0.0
            } else {
                f64::from(missed) / f64::from(missed + got)
            }
        };
        let long = ratio(rate(&mut self.gaps.iter()), LONG_MIN_MISSED);
        let short = ratio(rate(&mut self.gaps.iter().rev().take(SHORT_GAPS)), 1);
        long.max(short).min(MAX_LOSS)
    }

    /// Largest lateness against the heartbeat grid over the recent gaps.
    fn jitter(&self) -> Duration {
        let us = self
            .gaps
            .iter()
            .rev()
            .take(SHORT_GAPS)
            .map(|g| g.late_us)
            .max()
            .unwrap_or(0);
        Duration::from_micros(u64::from(us))
    }

    /// The silence threshold of this path (see the module doc).
    pub fn threshold(&self, timing: &Timing, bound: f64) -> Duration {
        threshold_for(timing, bound, self.loss(), self.jitter())
    }
}

/// Heartbeat intervals a path with loss `p` needs so that a healthy path crosses the threshold
/// with probability below `bound` per heartbeat (0 when `p` is 0).
pub fn intervals_for(p: f64, bound: f64) -> u32 {
    if p <= 0.0 {
        return 0;
    }
    let bound = bound.clamp(f64::MIN_POSITIVE, 0.5);
    let k = (bound.ln() / p.min(MAX_LOSS).ln()).ceil();
    1 + k.clamp(0.0, 10_000.0) as u32
}

/// The threshold for loss `p` and jitter: `detect_time` when that suffices, else enough
/// intervals for the bound plus the jitter, at most [`Timing::silence_cap`].
pub fn threshold_for(timing: &Timing, bound: f64, p: f64, jitter: Duration) -> Duration {
    let base = timing.detect_time();
    let k = intervals_for(p, bound);
    if k <= timing.detect_multiplier {
        return base;
    }
    let wanted =
        (timing.heartbeat_interval * k).saturating_add(jitter.min(timing.heartbeat_interval));
    wanted.min(timing.silence_cap()).max(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha12Rng;

    fn ms(x: u64) -> Instant {
        Instant::from_millis(x)
    }

    #[test]
    fn clean_path_keeps_the_configured_detection_time() {
        let t = Timing::default();
        let mut a = Arrivals::default();
        for i in 0..200 {
            a.record(ms(i * 100), t.heartbeat_interval, t.detect_time());
        }
        assert_eq!(a.loss(), 0.0);
        assert_eq!(a.threshold(&t, 1e-6), t.detect_time());
        // One lost heartbeat lengthens it for the short window only.
        let mut at = 200 * 100 + 100;
        a.record(ms(at), t.heartbeat_interval, t.detect_time());
        assert_eq!(a.threshold(&t, 1e-6), Duration::from_millis(600));
        for _ in 0..SHORT_GAPS {
            at += 100;
            a.record(ms(at), t.heartbeat_interval, a.threshold(&t, 1e-6));
        }
        assert_eq!(a.threshold(&t, 1e-6), t.detect_time());
    }

    #[test]
    fn thresholds_at_stated_loss() {
        let t = Timing::default();
        let th = |p| threshold_for(&t, 1e-6, p, Duration::ZERO);
        assert_eq!(th(0.05), Duration::from_millis(600));
        assert_eq!(th(0.2), Duration::from_millis(1000));
        assert_eq!(th(0.3), Duration::from_millis(1300));
        assert_eq!(th(0.5), t.silence_cap());
        assert_eq!(t.silence_cap(), Duration::from_millis(1700));
    }

    #[test]
    fn lossy_path_adapts_within_a_few_heartbeats_and_never_counts_silence() {
        let t = Timing::default();
        let mut rng = ChaCha12Rng::seed_from_u64(7);
        let mut a = Arrivals::default();
        let mut at = 0;
        for _ in 0..40 {
            at += 100;
            a.record(ms(at), t.heartbeat_interval, a.threshold(&t, 1e-6));
        }
        // 25 % loss starts: after a couple of misses the threshold is up.
        let mut misses = 0;
        while misses < 3 {
            at += 100;
            if rng.gen_bool(0.25) {
                misses += 1;
            } else {
                a.record(ms(at), t.heartbeat_interval, a.threshold(&t, 1e-6));
            }
        }
        assert!(a.threshold(&t, 1e-6) >= Duration::from_millis(700));
        // An outage longer than the threshold is not loss.
        let before = a.loss();
        let th = a.threshold(&t, 1e-6);
        a.record(
            ms(at) + th + Duration::from_millis(50),
            t.heartbeat_interval,
            th,
        );
        assert_eq!(a.loss(), before);
    }
}
