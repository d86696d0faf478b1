//! hadiag: a mon-style diagnostic prober and failure classifier for HA clusters.
//!
//! The folders show the architecture (docs/architecture.md):
//! - [`core`]: the sans-IO heart — evidence, classifier, agreement, wire codec. No I/O.
//! - [`config`]: YAML configuration, parsed and validated into a [`core::topology::Topology`].
//! - [`sim`]: deterministic whole-cluster simulation in virtual time over the core.
//! - [`probes`]: link, ICMP, disk and exec probes: they measure, the core judges.
//! - [`transport`]: heartbeat paths — UDP and raw Ethernet per NIC, serial lines.
//! - [`daemon`]: the driver that owns the core and wires probes, transports and hooks to it.
//! - [`http`]: Prometheus metrics and the JSON API.
//! - [`journal`]: the append-only incident journal (JSON Lines) that `explain` reads offline.
//! - [`alert`]: mon-style alert rules and their exec/webhook delivery.
//! - [`integration`]: Pacemaker node health and the `fence_hadiag` fencing gate.
//! - [`lab`]: network-namespace clusters for fault drills and end-to-end tests.
//! - [`cli`]: the subcommands of the `hadiag` binary.

pub mod alert;
pub mod cli;
pub mod config;
pub mod core;
pub mod daemon;
pub mod http;
pub mod integration;
pub mod journal;
pub mod lab;
pub mod ops;
pub mod probes;
pub mod sim;
pub mod transport;
