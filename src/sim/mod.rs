//! Deterministic whole-cluster simulation in virtual time (docs/architecture.md#testing, rung 2).
//!
//! What it is for: running whole clusters of real [`crate::core::node::Node`]s (2–8 nodes,
//! 1–4 networks, serial lines) against a seeded schedule of faults from every mode of
//! docs/fault-model.md — plus loss, delay, reordering, flapping and freezes — with the safety invariants S1–S5
//! checked after every step ([`check`] documents exactly how each is judged). The same seed
//! gives the same run and the same trace hash ([`world::TraceHash`], FNV-1a over every
//! delivery, fault transition and node event).
//! Nodes crash and restart from their durable state ([`crate::core::node::DurableState`],
//! wall clock stepped back); frames enter each node through its own datagram entry (decode,
//! path check, replay filter), as in the daemon.
//! What it must not do: touch a clock, a socket, a thread or unseeded randomness. It is a
//! library module so tests, benchmarks and the CLI can use it.
//!
//! Entry points: [`world::Sim`] with a [`world::SimConfig`] (scenario tests build schedules
//! by hand with [`fault::Schedule::with`]); [`sweep::run_seed`] for seed sweeps
//! (`SIM_SEED=<n> cargo test --test sim_sweep` replays one seed).

pub mod check;
pub mod codec;
pub mod fault;
pub mod shape;
pub mod sweep;
pub mod world;

pub use check::{Violation, HEAL_DEADLINE, S6_ONSET_GRACE};
pub use fault::{AttachmentMode, DiskMode, Schedule, SimFault};
pub use shape::{SerialLayout, Shape};
pub use sweep::{run_seed, SeedReport};
pub use world::{Logged, Sim, SimConfig};
