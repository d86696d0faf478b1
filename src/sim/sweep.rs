//! Seed sweeps: one seed ⇒ one random cluster shape, policy and fault schedule ⇒ one run with
//! every invariant checked. Used by `tests/sim_sweep.rs` (CI), the `sim_sweep` example and
//! the `sim` benchmark.

use crate::core::time::Instant;
use crate::sim::check::{Judged, Violation};
use crate::sim::fault::Schedule;
use crate::sim::shape::{SerialLayout, Shape};
use crate::sim::world::{Sim, SimConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng as SimRng;
use std::time::Duration;

/// Virtual duration of one sweep run.
pub const SWEEP_HORIZON: Duration = Duration::from_secs(20);
/// At most this many faults per schedule.
pub const SWEEP_MAX_FAULTS: usize = 3;

/// Draws the configuration of `seed`: 2–8 nodes (mostly small, as deployed), 1–4 networks,
/// a serial layout, references on ~85 % of shapes, a fence hook on ~30 %, and a schedule of
/// up to [`SWEEP_MAX_FAULTS`] faults over [`SWEEP_HORIZON`]; hook durations (1 ms–1.5 s),
/// network latency (50 µs–2 ms) and serial latency (2–20 ms) drawn per seed.
pub fn config_for_seed(seed: u64, codec: bool) -> SimConfig {
    let mut rng = SimRng::seed_from_u64(seed ^ 0x5eed_5eed_5eed_5eed);
    let nodes = match rng.gen_range(0..100) {
        0..=49 => 2,
        50..=74 => 3,
        75..=89 => 4,
        _ => rng.gen_range(5..=8),
    };
    let networks = match rng.gen_range(0..100) {
        0..=14 => 1,
        15..=79 => 2,
        80..=91 => 3,
        _ => 4,
    };
    let serial = match rng.gen_range(0..100) {
        0..=29 => SerialLayout::None,
        30..=69 => SerialLayout::Ring,
        _ => SerialLayout::FirstPair,
    };
    let shape = Shape {
        nodes,
        networks,
        serial,
        references: rng.gen_bool(0.85),
    };
    let mut config = SimConfig::new(shape);
    config.seed = seed;
    config.horizon = SWEEP_HORIZON;
    config.options.fence_hook = rng.gen_bool(0.3);
    config.codec = codec;
    config.record_events = false;
    let topology = config.topology();
    config.schedule = Schedule::random(&mut rng, &topology, SWEEP_HORIZON, SWEEP_MAX_FAULTS);
    // Timings from a second stream, so a seed's shape and schedule stay what they always were.
    let mut timing = SimRng::seed_from_u64(seed ^ 0x7177_7177_7177_7177);
    config.hook_delay = Duration::from_millis(timing.gen_range(1..=1_500));
    config.network_latency = Duration::from_micros(timing.gen_range(50..=2_000));
    config.serial_latency = Duration::from_millis(timing.gen_range(2..=20));
    config
}

/// The outcome of one seed.
#[derive(Clone, Debug)]
pub struct SeedReport {
    pub seed: u64,
    pub trace_hash: u64,
    pub virtual_time: Duration,
    pub judged: Judged,
    pub delivered: u64,
    pub codec_errors: u64,
    pub violation: Option<Violation>,
    /// Printed on failure: shape, policy and the fault schedule.
    pub description: String,
}

/// Runs one seed.
pub fn run_seed(seed: u64, codec: bool) -> SeedReport {
    let config = config_for_seed(seed, codec);
    let mut sim = Sim::new(config);
    let result = sim.run();
    let c = &sim.config;
    let description = format!(
        "seed {seed}: {} nodes, {} networks, serial {:?}, references {}, fence hook {}, codec {}\nschedule:\n{}",
        c.shape.nodes,
        c.shape.networks,
        c.shape.serial,
        c.shape.references,
        c.options.fence_hook,
        c.codec,
        c.schedule.describe(&sim.topology)
    );
    SeedReport {
        seed,
        trace_hash: sim.trace.value(),
        virtual_time: sim.now - Instant::ZERO,
        judged: sim.checker.judged.clone(),
        delivered: sim.delivered,
        codec_errors: sim.codec.as_ref().map_or(0, |c| c.errors),
        violation: result.err(),
        description,
    }
}
