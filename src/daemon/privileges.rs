//! Start-up privilege check: which capabilities the configured probes need, which the process
//! has (`CapEff` in `/proc/self/status`), and exactly which probe will fail without which.
//!
//! | capability | needed by | why |
//! |---|---|---|
//! | `CAP_NET_RAW` | icmp probe | raw ICMP socket (unless `net.ipv4.ping_group_range` covers the daemon's group, then an unprivileged ICMP datagram socket is used) |
//! | `CAP_NET_RAW` | ethernet heartbeats | `AF_PACKET` socket for EtherType 0x88B5 |
//! | `CAP_NET_RAW` | udp heartbeats, icmp probe | `SO_BINDTODEVICE` on kernels before 5.7 |
//! | `CAP_NET_ADMIN` | udp heartbeats, icmp probe | binding to a device that is administratively restricted; kept so a hardened kernel or LSM that treats device binding as network administration does not break heartbeats |
//!
//! Nothing else needs privileges: serial devices need group `dialout` (or the device's group),
//! the disk probe needs read access to its device or file. `config/hadiag.service` grants
//! exactly `CAP_NET_RAW CAP_NET_ADMIN` (ambient + bounding set) to a non-root user.
//!
//! README snippet (for the lead):
//!
//! ```text
//! ## Privileges
//! hadiag does not need root. It needs CAP_NET_RAW (ICMP reference probes, raw-Ethernet
//! heartbeats, device binding on kernels < 5.7) and CAP_NET_ADMIN (device binding), read access
//! to the disk it probes and to its serial devices. config/hadiag.service runs it as user
//! `hadiag` with exactly these capabilities. At start the daemon logs which capability is
//! missing for which probe, e.g.
//!   WARN missing CAP_NET_RAW: icmp probe of network A (references 198.51.100.254) will fail
//! ```
//!
//! Must not: change privileges (no setuid/capset) — it only reports.

use crate::core::topology::{NodeId, Topology, Transport};

pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_NET_RAW: u32 = 13;

/// Effective capability mask of this process, or `None` if `/proc` is unreadable.
pub fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_cap_eff(&status)
}

pub fn parse_cap_eff(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
}

pub fn cap_name(cap: u32) -> &'static str {
    match cap {
        CAP_NET_ADMIN => "CAP_NET_ADMIN",
        CAP_NET_RAW => "CAP_NET_RAW",
        _ => "CAP_?",
    }
}

/// Whether `net.ipv4.ping_group_range` allows our effective group unprivileged ICMP sockets.
pub fn ping_group_allows_us() -> bool {
    let Ok(range) = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range") else {
        return false;
    };
    // SAFETY: getegid has no preconditions.
    let gid = u64::from(unsafe { libc::getegid() });
    let mut it = range
        .split_whitespace()
        .filter_map(|s| s.parse::<u64>().ok());
    matches!((it.next(), it.next()), (Some(lo), Some(hi)) if lo <= gid && gid <= hi)
}

/// Kernel release `(major, minor)` from `/proc/sys/kernel/osrelease`.
fn kernel_version() -> Option<(u32, u32)> {
    let s = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut it = s
        .trim()
        .split(['.', '-'])
        .filter_map(|p| p.parse::<u32>().ok());
    Some((it.next()?, it.next()?))
}

/// One missing capability and what it breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    pub capability: &'static str,
    pub probe: String,
    /// True when the probe will certainly fail; false for a "may fail" warning.
    pub fatal_for_probe: bool,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "missing {}: {} {}",
            self.capability,
            self.probe,
            if self.fatal_for_probe {
                "will fail"
            } else {
                "may fail on this kernel"
            }
        )
    }
}

/// What `me` needs under `topology`, given the capability mask `caps`.
pub fn check(topology: &Topology, me: NodeId, caps: u64, ping_group_ok: bool) -> Vec<Missing> {
    let has = |c: u32| caps & (1u64 << c) != 0;
    let old_kernel = kernel_version().is_some_and(|v| v < (5, 7));
    let mut out = Vec::new();
    let Some(node) = topology.nodes.get(me.index()) else {
        return out;
    };
    for iface in &node.interfaces {
        let Some(net) = topology.networks.get(iface.network.index()) else {
            continue;
        };
        let refs: Vec<String> = net.references.iter().map(|r| r.to_string()).collect();
        if !refs.is_empty() && !has(CAP_NET_RAW) && !ping_group_ok {
            out.push(Missing {
                capability: cap_name(CAP_NET_RAW),
                probe: format!(
                    "icmp probe of network {} (references {}) via {}",
                    net.name,
                    refs.join(", "),
                    iface.device
                ),
                fatal_for_probe: true,
            });
        }
        match net.transport {
            Transport::Ethernet if !has(CAP_NET_RAW) => out.push(Missing {
                capability: cap_name(CAP_NET_RAW),
                probe: format!(
                    "ethernet heartbeats on network {} via {}",
                    net.name, iface.device
                ),
                fatal_for_probe: true,
            }),
            Transport::Udp if old_kernel && !has(CAP_NET_RAW) => out.push(Missing {
                capability: cap_name(CAP_NET_RAW),
                probe: format!(
                    "udp heartbeats on network {} (SO_BINDTODEVICE {})",
                    net.name, iface.device
                ),
                fatal_for_probe: true,
            }),
            Transport::Udp if !has(CAP_NET_ADMIN) => out.push(Missing {
                capability: cap_name(CAP_NET_ADMIN),
                probe: format!(
                    "udp heartbeats on network {} (SO_BINDTODEVICE {})",
                    net.name, iface.device
                ),
                fatal_for_probe: false,
            }),
            _ => {}
        }
    }
    out
}

/// Runs the check for the live process and logs one line per missing capability.
pub fn log_check(topology: &Topology, me: NodeId) -> Vec<Missing> {
    let Some(caps) = effective_caps() else {
        tracing::warn!("cannot read /proc/self/status: capability check skipped");
        return Vec::new();
    };
    let missing = check(topology, me, caps, ping_group_allows_us());
    for m in &missing {
        tracing::warn!("{m}");
    }
    if missing.is_empty() {
        tracing::info!(
            cap_eff = format!("{caps:016x}"),
            "privileges sufficient for every configured probe"
        );
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::topology::{
        InterfaceSpec, NetworkId, NetworkSpec, NodeSpec, Thresholds, Timing,
    };

    fn topo() -> Topology {
        Topology {
            cluster: "t".into(),
            nodes: vec![NodeSpec {
                name: "n1".into(),
                priority: 1,
                interfaces: vec![
                    InterfaceSpec {
                        network: NetworkId(0),
                        device: "eth1".into(),
                        address: Some("192.0.2.1".parse().unwrap()),
                    },
                    InterfaceSpec {
                        network: NetworkId(1),
                        device: "eth2".into(),
                        address: None,
                    },
                ],
                serial: vec![],
                disk: None,
            }],
            networks: vec![
                NetworkSpec {
                    name: "A".into(),
                    references: vec!["192.0.2.254".parse().unwrap()],
                    transport: Transport::Udp,
                    port: 7410,
                },
                NetworkSpec {
                    name: "B".into(),
                    references: vec![],
                    transport: Transport::Ethernet,
                    port: 0,
                },
            ],
            timing: Timing::default(),
            thresholds: Thresholds::default(),
        }
    }

    #[test]
    fn names_the_probe_and_the_capability() {
        assert_eq!(
            parse_cap_eff("Name:\tx\nCapEff:\t0000000000003000\n"),
            Some(0x3000)
        );
        let all = (1 << CAP_NET_RAW) | (1 << CAP_NET_ADMIN);
        assert!(check(&topo(), NodeId(0), all, false).is_empty());
        let m = check(&topo(), NodeId(0), 0, false);
        let text: Vec<String> = m.iter().map(|m| m.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.contains("CAP_NET_RAW: icmp probe of network A")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("CAP_NET_RAW: ethernet heartbeats on network B")),
            "{text:?}"
        );
        // ping_group_range makes ICMP work without CAP_NET_RAW.
        let m = check(&topo(), NodeId(0), 1 << CAP_NET_ADMIN, true);
        assert!(m.iter().all(|m| !m.probe.starts_with("icmp")), "{m:?}");
    }
}
