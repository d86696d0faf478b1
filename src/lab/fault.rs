//! Fault injection primitives for every mode of docs/fault-model.md, and [`LabFault`], the fault
//! vocabulary of `hadiag lab fault` / `heal`.
//!
//! NIC faults use nftables `netdev` tables with ingress and egress hooks on the device inside
//! the node's namespace (installed by netlink from this process, see [`crate::lab::nft`]):
//! they drop *every* frame (IP, ARP and raw Ethernet heartbeats) while the carrier stays up.
//! One table per (device, fault kind), so healing one fault never removes another.
//!
//! Must not: install rules outside the lab's namespaces.

use crate::lab::error::{LabError, Result};
use crate::lab::netns::Netns;
use crate::lab::nft;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a NIC filter does to a device's traffic.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NicFilter {
    /// Drop in and out; carrier stays up.
    Silent,
    /// The node transmits but receives nothing.
    TxOnly,
    /// The node receives but transmits nothing.
    RxOnly,
    /// Drop `percent` % at random in each direction.
    Lossy(u8),
}

impl NicFilter {
    fn tag(self) -> &'static str {
        match self {
            NicFilter::Silent => "silent",
            NicFilter::TxOnly => "txonly",
            NicFilter::RxOnly => "rxonly",
            NicFilter::Lossy(_) => "lossy",
        }
    }
}

fn table_name(dev: &str, filter: NicFilter) -> String {
    let dev: String = dev
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("hdg_{dev}_{}", filter.tag())
}

/// What `filter` does to `dev`'s incoming and outgoing frames.
pub fn nic_filter_actions(filter: NicFilter) -> Result<(nft::Action, nft::Action)> {
    let all = nft::Action::Drop { percent: 100 };
    Ok(match filter {
        NicFilter::Silent => (all, all),
        NicFilter::TxOnly => (all, nft::Action::Pass),
        NicFilter::RxOnly => (nft::Action::Pass, all),
        NicFilter::Lossy(p) if p > 100 => {
            return Err(LabError::Spec(format!("loss {p}% is more than 100%")))
        }
        NicFilter::Lossy(p) => {
            let lossy = nft::Action::Drop { percent: p };
            (lossy, lossy)
        }
    })
}

/// Installs `filter` on `dev` in `ns` (replacing the same kind of filter on that device),
/// through nf_tables netlink messages sent from inside the namespace.
pub fn set_nic_filter(ns: &Netns, dev: &str, filter: NicFilter) -> Result<()> {
    let (ingress, egress) = nic_filter_actions(filter)?;
    let table = table_name(dev, filter);
    let (batch, acks) = nft::create_batch(&table, dev, ingress, egress);
    clear_nic_filter(ns, dev, filter);
    ns.enter(|| nft::send_batch(&batch, acks))?
        .map_err(|e| nft_error(ns, &table, "create", e))
}

fn nft_error(ns: &Netns, table: &str, what: &str, e: std::io::Error) -> LabError {
    LabError::Io {
        path: format!(
            "nf_tables: {what} netdev table {table} in namespace {}",
            ns.name()
        )
        .into(),
        source: e,
    }
}

/// Removes a filter of this kind from `dev` (no error if none is installed).
pub fn clear_nic_filter(ns: &Netns, dev: &str, filter: NicFilter) {
    let table = table_name(dev, filter);
    let (batch, acks) = nft::delete_batch(&table);
    let _ = ns.enter(|| nft::send_batch(&batch, acks));
}

/// A fault the lab can inject, named like the CLI words (`nic-down n2 A`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LabFault {
    /// NIC set administratively down (carrier lost at the node).
    NicDown {
        node: String,
        network: String,
    },
    /// NIC passes nothing, carrier up.
    NicSilent {
        node: String,
        network: String,
    },
    NicTxOnly {
        node: String,
        network: String,
    },
    NicRxOnly {
        node: String,
        network: String,
    },
    NicLossy {
        node: String,
        network: String,
        percent: u8,
    },
    /// Random loss on every NIC of every node.
    Loss {
        percent: u8,
    },
    /// The hub bridge stops forwarding.
    HubDown {
        network: String,
    },
    /// The router (reference) of a network goes away; the segment keeps working.
    RouterDown {
        network: String,
    },
    /// The serial relay stopped: the line passes nothing, no hang-up.
    SerialCut {
        a: String,
        b: String,
    },
    /// The node's daemon is SIGKILLed (heal restarts it with a new incarnation).
    NodeKilled {
        node: String,
    },
    /// The node's daemon is SIGSTOPped (heal sends SIGCONT).
    NodeFrozen {
        node: String,
    },
    /// Disk reads fail with EIO.
    DiskFailing {
        node: String,
    },
    /// Disk reads never return.
    DiskHung {
        node: String,
    },
}

/// The CLI words of every fault, for help texts.
pub const FAULT_USAGE: &str = "nic-down NODE NET | nic-silent NODE NET | nic-tx-only NODE NET | \
nic-rx-only NODE NET | nic-lossy NODE NET PERCENT | loss PERCENT | hub-down NET | \
router-down NET | serial-cut NODE NODE | node-kill NODE | node-freeze NODE | disk-fail NODE | \
disk-hang NODE";

impl LabFault {
    /// Parses CLI words, e.g. `["nic-down", "n2", "A"]`.
    pub fn parse(words: &[String]) -> std::result::Result<LabFault, String> {
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        let pct = |s: &str| -> std::result::Result<u8, String> {
            s.trim_end_matches('%')
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= 100)
                .ok_or_else(|| format!("percent {s:?}: expected 0..100"))
        };
        let nn = |n: &str, s: &str| (n.to_string(), s.to_string());
        Ok(match w.as_slice() {
            ["nic-down", n, s] => {
                let (node, network) = nn(n, s);
                LabFault::NicDown { node, network }
            }
            ["nic-silent", n, s] => {
                let (node, network) = nn(n, s);
                LabFault::NicSilent { node, network }
            }
            ["nic-tx-only", n, s] => {
                let (node, network) = nn(n, s);
                LabFault::NicTxOnly { node, network }
            }
            ["nic-rx-only", n, s] => {
                let (node, network) = nn(n, s);
                LabFault::NicRxOnly { node, network }
            }
            ["nic-lossy", n, s, p] => LabFault::NicLossy {
                node: n.to_string(),
                network: s.to_string(),
                percent: pct(p)?,
            },
            ["loss", p] => LabFault::Loss { percent: pct(p)? },
            ["hub-down", s] => LabFault::HubDown {
                network: s.to_string(),
            },
            ["router-down", s] => LabFault::RouterDown {
                network: s.to_string(),
            },
            ["serial-cut", a, b] => LabFault::SerialCut {
                a: a.to_string(),
                b: b.to_string(),
            },
            ["node-kill", n] => LabFault::NodeKilled {
                node: n.to_string(),
            },
            ["node-freeze", n] => LabFault::NodeFrozen {
                node: n.to_string(),
            },
            ["disk-fail", n] => LabFault::DiskFailing {
                node: n.to_string(),
            },
            ["disk-hang", n] => LabFault::DiskHung {
                node: n.to_string(),
            },
            _ => {
                return Err(format!(
                    "unknown fault {:?}; expected one of: {FAULT_USAGE}",
                    w.join(" ")
                ))
            }
        })
    }

    /// The node whose daemon the fault acts on, if any.
    pub fn node(&self) -> Option<&str> {
        match self {
            LabFault::NicDown { node, .. }
            | LabFault::NicSilent { node, .. }
            | LabFault::NicTxOnly { node, .. }
            | LabFault::NicRxOnly { node, .. }
            | LabFault::NicLossy { node, .. }
            | LabFault::NodeKilled { node }
            | LabFault::NodeFrozen { node }
            | LabFault::DiskFailing { node }
            | LabFault::DiskHung { node } => Some(node),
            _ => None,
        }
    }
}

impl fmt::Display for LabFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabFault::NicDown { node, network } => write!(f, "nic-down {node} {network}"),
            LabFault::NicSilent { node, network } => write!(f, "nic-silent {node} {network}"),
            LabFault::NicTxOnly { node, network } => write!(f, "nic-tx-only {node} {network}"),
            LabFault::NicRxOnly { node, network } => write!(f, "nic-rx-only {node} {network}"),
            LabFault::NicLossy {
                node,
                network,
                percent,
            } => write!(f, "nic-lossy {node} {network} {percent}"),
            LabFault::Loss { percent } => write!(f, "loss {percent}"),
            LabFault::HubDown { network } => write!(f, "hub-down {network}"),
            LabFault::RouterDown { network } => write!(f, "router-down {network}"),
            LabFault::SerialCut { a, b } => write!(f, "serial-cut {a} {b}"),
            LabFault::NodeKilled { node } => write!(f, "node-kill {node}"),
            LabFault::NodeFrozen { node } => write!(f, "node-freeze {node}"),
            LabFault::DiskFailing { node } => write!(f, "disk-fail {node}"),
            LabFault::DiskHung { node } => write!(f, "disk-hang {node}"),
        }
    }
}

/// An injected fault and when (Unix milliseconds, so another process can time it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveFault {
    pub fault: LabFault,
    pub injected_at_unix_ms: u64,
}

/// Wall-clock now in Unix milliseconds (for records shared between processes only).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_words_round_trip() {
        for text in [
            "nic-down n2 A",
            "nic-silent n2 A",
            "nic-tx-only n1 B",
            "nic-rx-only n1 B",
            "nic-lossy n1 A 20",
            "loss 5",
            "hub-down A",
            "router-down B",
            "serial-cut n1 n2",
            "node-kill n2",
            "node-freeze n2",
            "disk-fail n2",
            "disk-hang n1",
        ] {
            let words: Vec<String> = text.split(' ').map(String::from).collect();
            let f = LabFault::parse(&words).expect(text);
            assert_eq!(f.to_string(), text);
        }
        let bad: Vec<String> = ["loss", "101"].map(String::from).to_vec();
        assert!(LabFault::parse(&bad).unwrap_err().contains("percent"));
        let bad: Vec<String> = ["explode"].map(String::from).to_vec();
        assert!(LabFault::parse(&bad).unwrap_err().contains("unknown fault"));
    }

    #[test]
    fn nic_filters_drop_the_right_directions() {
        use nft::Action::{Drop, Pass};
        let all = Drop { percent: 100 };
        assert_eq!(
            nic_filter_actions(NicFilter::TxOnly).ok(),
            Some((all, Pass))
        );
        assert_eq!(
            nic_filter_actions(NicFilter::RxOnly).ok(),
            Some((Pass, all))
        );
        assert_eq!(nic_filter_actions(NicFilter::Silent).ok(), Some((all, all)));
        let five = Drop { percent: 5 };
        assert_eq!(
            nic_filter_actions(NicFilter::Lossy(5)).ok(),
            Some((five, five))
        );
        assert!(nic_filter_actions(NicFilter::Lossy(101)).is_err());
    }
}
