//! The isolate-hook margin of `check-config`, run in the simulator: with the timing of each
//! shipped example and an isolate hook taking its whole accepted run, a cut-off node's hook has
//! ended before its peer takes over — at every phase of the heartbeat schedule the cut may
//! fall on. And the reason for the rule: a hook longer than the room the loader allows is
//! still running when the peer takes over.
//!
//! Virtual time only (no wall clock, no sockets): each run is a few milliseconds.

use hadiag::config::{self, isolate_hook_longest, isolate_hook_room};
use hadiag::core::node::Event;
use hadiag::core::time::Instant;
use hadiag::core::topology::{NetworkId, NodeId, Timing};
use hadiag::sim::{AttachmentMode, Schedule, SerialLayout, Shape, Sim, SimConfig, SimFault};
use std::path::Path;
use std::time::Duration;

const N1: NodeId = NodeId(0);
const N2: NodeId = NodeId(1);

/// n2 loses both NICs at `cut_ms` (no serial line): it reaches nothing and isolates after
/// self_fence_after; n1 still reaches its references and takes over after fence_deadline.
/// Returns (n2's isolate hook ends, n1's takeover starts).
fn cut_off(timing: &Timing, hook: Duration, cut_ms: u64) -> (Instant, Instant) {
    let mut c = SimConfig::new(Shape::matrix().with_serial(SerialLayout::None));
    c.timing = timing.clone();
    c.hook_delay = hook;
    c.horizon = Duration::from_millis(cut_ms) + timing.fence_deadline * 3 + hook;
    // The check's S1 allowance includes hook time; this test asserts the order itself.
    c.check = false;
    let cut = Instant::from_millis(cut_ms);
    let down = |network| SimFault::Attachment {
        node: N2,
        network: NetworkId(network),
        mode: AttachmentMode::Down,
    };
    c.schedule = Schedule::new()
        .with(cut, None, down(0))
        .with(cut, None, down(1));
    let mut sim = Sim::new(c);
    let end = Instant::from_millis(cut_ms) + timing.fence_deadline * 3 + hook;
    if let Err(v) = sim.run_until(end) {
        panic!("{v}");
    }
    let first = |want: &dyn Fn(&Event) -> bool, node: NodeId| {
        sim.events
            .iter()
            .find(|l| l.node == node && want(&l.event))
            .map(|l| l.at)
    };
    let isolated = first(&|e| matches!(e, Event::IsolateSelf { .. }), N2)
        .unwrap_or_else(|| panic!("n2 never isolated (hook {hook:?}, cut at {cut_ms} ms)"));
    let takeover = first(
        &|e| matches!(e, Event::TakeOver { peer, .. } if *peer == N2),
        N1,
    )
    .unwrap_or_else(|| panic!("n1 never took over (hook {hook:?}, cut at {cut_ms} ms)"));
    (isolated + hook, takeover)
}

/// Cut times spread over one heartbeat interval, after warm-up.
fn phases(timing: &Timing) -> Vec<u64> {
    let hb = timing.heartbeat_interval.as_millis() as u64;
    (0..10).map(|i| 10_000 + i * hb / 10 + i % 3).collect()
}

#[test]
fn shipped_examples_isolate_hook_ends_before_the_takeover() {
    for file in ["config/two-node.yaml", "config/three-node.yaml"] {
        let c = config::load(Path::new(file)).unwrap_or_else(|e| panic!("{e}"));
        let t = &c.topology.timing;
        let hook = isolate_hook_longest(c.hooks.isolate.as_ref().expect("isolate hook"));
        assert!(hook < isolate_hook_room(t), "{file}: the loader's own rule");
        for cut in phases(t) {
            let (hook_ends, takeover) = cut_off(t, hook, cut);
            assert!(
                hook_ends < takeover,
                "{file}, cut at {cut} ms: n2's isolate hook ends at {hook_ends}, n1 takes over at {takeover}"
            );
        }
    }
}

#[test]
fn any_hook_the_default_timing_accepts_ends_before_the_takeover() {
    let t = Timing::default();
    let room = isolate_hook_room(&t);
    // Hook runs from instant to just inside the room, at several phases each.
    let mut least = Duration::MAX;
    for hook_ms in [1, room.as_millis() as u64 / 2, room.as_millis() as u64 - 1] {
        let hook = Duration::from_millis(hook_ms);
        for cut in phases(&t) {
            let (hook_ends, takeover) = cut_off(&t, hook, cut);
            assert!(
                hook_ends < takeover,
                "hook {hook_ms} ms, cut at {cut} ms: hook ends at {hook_ends}, takeover at {takeover}"
            );
            least = least.min(takeover.saturating_duration_since(hook_ends));
        }
    }
    // A figure, not a bound: how much of the margin the simulated cut-off left unused.
    eprintln!("least gap between the isolate hook's end and the takeover: {least:?}");
}

#[test]
fn a_hook_longer_than_the_room_still_runs_at_the_takeover() {
    // Why check-config refuses it: 1.5 s past the room, every phase overlaps.
    let t = Timing::default();
    let hook = isolate_hook_room(&t) + Duration::from_millis(1500);
    for cut in phases(&t) {
        let (hook_ends, takeover) = cut_off(&t, hook, cut);
        assert!(
            hook_ends > takeover,
            "cut at {cut} ms: hook ends at {hook_ends}, takeover at {takeover}"
        );
    }
}
