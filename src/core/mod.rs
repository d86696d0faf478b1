//! The sans-IO diagnosis core.
//!
//! Everything under `core` is pure and deterministic: every entry point takes `now`
//! ([`time::Instant`]) as a parameter, deadlines are returned to the caller, and nothing here
//! reads a clock, a socket, a file or an environment variable, spawns a task or draws entropy.
//! No tokio, no `std::net` sockets, no `std::fs`. That is what lets the simulator (`crate::sim`)
//! replay whole clusters from a seed and lets `explain` re-run a journaled decision.
//!
//! Drivers (`crate::daemon`, `crate::sim`) feed it [`observation::Observation`]s and decoded
//! [`wire::Message`]s and drain transmits, events and the next deadline.

pub mod agreement;
pub mod classify;
pub mod diagnosis;
pub mod evidence;
pub mod node;
pub mod observation;
pub mod silence;
pub mod time;
pub mod topology;
pub mod view;
pub mod wire;
