//! The lab: real hadiag clusters in network namespaces on one machine, for fault drills,
//! end-to-end tests and detection-time benchmarks (docs/architecture.md#testing, docs/fault-matrix.md).
//!
//! - [`netns`]: namespaces, veth pairs, bridges, long-running children — teardown on Drop.
//! - [`serial`]: pty pairs relayed by the lab itself as serial lines.
//! - [`disk`]: loop-device disks that can fail (EIO) or hang (FIFO).
//! - [`fault`]: NIC filters and the [`LabFault`] vocabulary; [`nft`]: the nf_tables netlink
//!   messages behind them; [`icmp`]: the reachability check.
//! - [`preflight`]: what the lab still needs from the system, checked up front.
//! - [`layout`]: lab descriptions and their resolution (names, addresses, paths).
//! - [`cluster`]: building a whole lab, starting daemons, injecting and healing faults.
//! - [`pacemaker`]: Corosync + Pacemaker inside the lab's node namespaces.
//! - [`state`]: the JSON record that lets `lab down` remove everything, even after a crash.
//!
//! Rules this module enforces (docs/architecture.md#testing): addresses only from 192.0.2.0/24, 198.51.100.0/24
//! and 203.0.113.0/24; no default route and no link to the host namespace; everything a lab
//! creates is recorded and removed again, also after a panic or a crash; signals go only to
//! PIDs the lab started. Must not: touch host interfaces or send to real networks.

pub mod bench;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod disk;
pub mod drill;
pub mod error;
pub mod fault;
pub mod http;
pub mod icmp;
pub mod interrupt;
pub mod layout;
pub mod netns;
pub mod nft;
pub mod observe;
pub mod pacemaker;
pub mod preflight;
pub mod report;
pub mod serial;
pub mod state;
pub mod sys;

pub use cluster::Cluster;
pub use error::{LabError, Result};
pub use fault::LabFault;
pub use layout::{LabSpec, Layout};
pub use netns::{ChildGuard, Netns};
pub use serial::SerialLine;
