//! The simulator's fault model (docs/fault-model.md) and seeded fault schedules.
//!
//! A [`Schedule`] is a list of faults with start and (optional) end times in virtual time.
//! [`FaultState`] answers ground-truth questions ("does n2's NIC on A transmit?") for the set
//! of faults active right now; the simulator updates it at every fault start, end and flap
//! toggle, so queries never scan the whole schedule.

use crate::core::diagnosis::{Component, VerdictKind};
use crate::core::time::Instant;
use crate::core::topology::{NetworkId, NodeId, Topology};
use rand::Rng;
use rand_chacha::ChaCha12Rng as SimRng;
use std::fmt;
use std::time::Duration;

/// How an attachment (NIC + cable + hub port) misbehaves.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum AttachmentMode {
    /// Carrier lost: nothing in or out.
    Down,
    /// Carrier up, nothing in or out.
    Silent,
    /// Sends, receives nothing.
    TxOnly,
    /// Receives, sends nothing.
    RxOnly,
    /// Drops this many per mille of frames in each direction.
    Lossy { permille: u16 },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum DiskMode {
    Failing,
    Hung,
    Slow,
}

/// One fault of the model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SimFault {
    /// The node stops; at the end of the fault it restarts with a new incarnation.
    Crash {
        node: NodeId,
    },
    /// The node stops processing (carrier stays up); at the end it resumes where it was.
    Freeze {
        node: NodeId,
    },
    Attachment {
        node: NodeId,
        network: NetworkId,
        mode: AttachmentMode,
    },
    HubDown {
        network: NetworkId,
    },
    /// The references of the network stop answering; the segment itself works.
    UpstreamDown {
        network: NetworkId,
    },
    SerialCut {
        a: NodeId,
        b: NodeId,
    },
    Disk {
        node: NodeId,
        mode: DiskMode,
    },
    /// Random loss on every NIC, per mille, each frame independently.
    Loss {
        permille: u16,
    },
    /// Extra one-way latency on every network path.
    Delay {
        extra: Duration,
    },
    /// Random extra latency in `[0, jitter)` per frame, so frames overtake each other.
    Reorder {
        jitter: Duration,
    },
    /// `inner` toggles on and off every `period` while the flap is active (on first).
    Flap {
        inner: Box<SimFault>,
        period: Duration,
    },
}

impl SimFault {
    /// Faults that count as "single faults of the fault matrix" for S2/S4, with the verdict
    /// kind and subject the classifier must produce. `None` for faults that are environmental
    /// (loss, delay, reordering), flapping, or whose verdict depends on policy.
    pub fn expected(&self) -> Option<(VerdictKind, Component)> {
        Some(match *self {
            SimFault::Crash { node } | SimFault::Freeze { node } => {
                (VerdictKind::NodeFailed, Component::Node(node))
            }
            SimFault::Attachment {
                node,
                network,
                mode: AttachmentMode::Down | AttachmentMode::Silent,
            } => (
                VerdictKind::AttachmentFailed,
                Component::Attachment(node, network),
            ),
            SimFault::HubDown { network } => (VerdictKind::HubFailed, Component::Hub(network)),
            SimFault::UpstreamDown { network } => {
                (VerdictKind::UpstreamFailed, Component::Upstream(network))
            }
            SimFault::SerialCut { a, b } => (
                VerdictKind::SerialFailed,
                Component::Serial(a.min(b), a.max(b)),
            ),
            SimFault::Disk {
                node,
                mode: DiskMode::Failing | DiskMode::Hung,
            } => (VerdictKind::DiskFailed, Component::Disk(node)),
            _ => return None,
        })
    }

    /// Operator-facing description, e.g. `attachment n2.A tx-only`.
    pub fn describe(&self, t: &Topology) -> String {
        let n = |id: NodeId| t.node_name(id);
        let s = |id: NetworkId| t.network_name(id);
        match self {
            SimFault::Crash { node } => format!("crash {}", n(*node)),
            SimFault::Freeze { node } => format!("freeze {}", n(*node)),
            SimFault::Attachment {
                node,
                network,
                mode,
            } => {
                let m = match mode {
                    AttachmentMode::Down => "down".to_string(),
                    AttachmentMode::Silent => "silent".to_string(),
                    AttachmentMode::TxOnly => "tx-only".to_string(),
                    AttachmentMode::RxOnly => "rx-only".to_string(),
                    AttachmentMode::Lossy { permille } => format!("lossy {}‰", permille),
                };
                format!("attachment {}.{} {}", n(*node), s(*network), m)
            }
            SimFault::HubDown { network } => format!("hub {} down", s(*network)),
            SimFault::UpstreamDown { network } => {
                format!("upstream of {} unreachable", s(*network))
            }
            SimFault::SerialCut { a, b } => format!("serial {}–{} cut", n(*a), n(*b)),
            SimFault::Disk { node, mode } => {
                format!("disk of {} {:?}", n(*node), mode).to_lowercase()
            }
            SimFault::Loss { permille } => format!("loss {}‰ on every NIC", permille),
            SimFault::Delay { extra } => format!("delay +{} ms", extra.as_millis()),
            SimFault::Reorder { jitter } => {
                format!("reordering (jitter {} ms)", jitter.as_millis())
            }
            SimFault::Flap { inner, period } => format!(
                "flapping every {} ms: {}",
                period.as_millis(),
                inner.describe(t)
            ),
        }
    }

    /// Faults that make the node stop (no probes, no processing).
    pub fn stops_node(&self) -> Option<NodeId> {
        match *self {
            SimFault::Crash { node } | SimFault::Freeze { node } => Some(node),
            _ => None,
        }
    }
}

/// A fault with its active interval `[start, end)`; `end = None` lasts to the end of the run.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ScheduledFault {
    pub start: Instant,
    pub end: Option<Instant>,
    pub fault: SimFault,
}

/// The faults of one run, sorted by start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Schedule {
    pub faults: Vec<ScheduledFault>,
}

impl Schedule {
    pub fn new() -> Schedule {
        Schedule::default()
    }

    /// Adds a fault from `start` to `end` (builder style, for scenario tests).
    pub fn with(mut self, start: Instant, end: Option<Instant>, fault: SimFault) -> Schedule {
        self.faults.push(ScheduledFault { start, end, fault });
        self.faults.sort_by_key(|f| f.start);
        self
    }

    /// Human-readable listing, printed when an invariant fails.
    pub fn describe(&self, t: &Topology) -> String {
        if self.faults.is_empty() {
            return "  (no faults)\n".to_string();
        }
        let mut out = String::new();
        for f in &self.faults {
            let end = f.end.map_or("end".to_string(), |e| e.to_string());
            out.push_str(&format!(
                "  {} .. {}: {}\n",
                f.start,
                end,
                f.fault.describe(t)
            ));
        }
        out
    }

    /// Draws a random schedule over every fault mode of docs/fault-model.md (plus loss, delay,
    /// reordering, flapping and freezes): `0..=max_faults` faults starting in
    /// `[1 s, horizon - 4 s)`, each either healing after 0.3–8 s or lasting to the end.
    pub fn random(
        rng: &mut SimRng,
        t: &Topology,
        horizon: Duration,
        max_faults: usize,
    ) -> Schedule {
        let mut s = Schedule::new();
        let count = rng.gen_range(0..=max_faults);
        let horizon_ms = horizon.as_millis() as u64;
        for _ in 0..count {
            let fault = random_fault(rng, t, 0);
            let start_ms = rng.gen_range(1_000..horizon_ms.saturating_sub(4_000).max(1_001));
            let end = if rng.gen_bool(0.7) {
                Some(Instant::from_millis(start_ms + rng.gen_range(300..8_000)))
            } else {
                None
            };
            s.faults.push(ScheduledFault {
                start: Instant::from_millis(start_ms),
                end,
                fault,
            });
        }
        s.faults.sort_by_key(|f| f.start);
        s
    }
}

fn random_fault(rng: &mut SimRng, t: &Topology, depth: u32) -> SimFault {
    let node = NodeId(rng.gen_range(0..t.nodes.len()) as u16);
    let network = NetworkId(rng.gen_range(0..t.networks.len()) as u16);
    let lines = t.serial_lines();
    let pick = rng.gen_range(0..if depth == 0 { 14 } else { 9 });
    match pick {
        0 => SimFault::Attachment {
            node,
            network,
            mode: AttachmentMode::Down,
        },
        1 => SimFault::Attachment {
            node,
            network,
            mode: AttachmentMode::Silent,
        },
        2 => SimFault::Attachment {
            node,
            network,
            mode: AttachmentMode::TxOnly,
        },
        3 => SimFault::Attachment {
            node,
            network,
            mode: AttachmentMode::RxOnly,
        },
        4 => SimFault::HubDown { network },
        5 => SimFault::UpstreamDown { network },
        6 if !lines.is_empty() => {
            let (a, b) = lines[rng.gen_range(0..lines.len())];
            SimFault::SerialCut { a, b }
        }
        6 | 7 => SimFault::Attachment {
            node,
            network,
            mode: AttachmentMode::Lossy {
                permille: rng.gen_range(10..300),
            },
        },
        8 => SimFault::Loss {
            permille: rng.gen_range(1..60),
        },
        9 => SimFault::Crash { node },
        10 => SimFault::Freeze { node },
        11 => {
            let mode = [DiskMode::Failing, DiskMode::Hung, DiskMode::Slow][rng.gen_range(0..3)];
            SimFault::Disk { node, mode }
        }
        12 => {
            if rng.gen_bool(0.5) {
                SimFault::Delay {
                    extra: Duration::from_millis(rng.gen_range(1..40)),
                }
            } else {
                SimFault::Reorder {
                    jitter: Duration::from_millis(rng.gen_range(1..40)),
                }
            }
        }
        _ => SimFault::Flap {
            inner: Box::new(random_fault(rng, t, depth + 1)),
            period: Duration::from_millis(rng.gen_range(150..2_000)),
        },
    }
}

/// Ground truth for the faults active right now.
#[derive(Clone, Debug, Default)]
pub struct FaultState {
    /// Active faults; a flap contributes its inner fault only while "on".
    active: Vec<SimFault>,
}

impl FaultState {
    pub fn set(&mut self, active: Vec<SimFault>) {
        self.active = active;
    }

    pub fn active(&self) -> &[SimFault] {
        &self.active
    }

    fn attachment_mode(&self, node: NodeId, network: NetworkId) -> Option<AttachmentMode> {
        // The most severe mode wins when several apply.
        let mut worst: Option<AttachmentMode> = None;
        for f in &self.active {
            if let SimFault::Attachment {
                node: n,
                network: s,
                mode,
            } = *f
            {
                if n == node && s == network {
                    worst = Some(match (worst, mode) {
                        (Some(AttachmentMode::Down), _) | (_, AttachmentMode::Down) => {
                            AttachmentMode::Down
                        }
                        (None, m) | (Some(AttachmentMode::Lossy { .. }), m) => m,
                        (Some(w), AttachmentMode::Lossy { .. }) => w,
                        (Some(w), m) if w == m => w,
                        // tx-only + rx-only or anything with silent: nothing passes.
                        (Some(_), _) => AttachmentMode::Silent,
                    });
                }
            }
        }
        worst
    }

    pub fn carrier(&self, node: NodeId, network: NetworkId) -> bool {
        self.attachment_mode(node, network) != Some(AttachmentMode::Down)
    }

    pub fn can_tx(&self, node: NodeId, network: NetworkId) -> bool {
        matches!(
            self.attachment_mode(node, network),
            None | Some(AttachmentMode::TxOnly | AttachmentMode::Lossy { .. })
        )
    }

    pub fn can_rx(&self, node: NodeId, network: NetworkId) -> bool {
        matches!(
            self.attachment_mode(node, network),
            None | Some(AttachmentMode::RxOnly | AttachmentMode::Lossy { .. })
        )
    }

    /// Loss probability (per mille) a frame suffers leaving or entering this attachment.
    pub fn attachment_loss(&self, node: NodeId, network: NetworkId) -> u16 {
        match self.attachment_mode(node, network) {
            Some(AttachmentMode::Lossy { permille }) => permille,
            _ => 0,
        }
    }

    pub fn hub_up(&self, network: NetworkId) -> bool {
        !self
            .active
            .iter()
            .any(|f| matches!(*f, SimFault::HubDown { network: s } if s == network))
    }

    pub fn upstream_up(&self, network: NetworkId) -> bool {
        !self
            .active
            .iter()
            .any(|f| matches!(*f, SimFault::UpstreamDown { network: s } if s == network))
    }

    pub fn serial_up(&self, a: NodeId, b: NodeId) -> bool {
        let (a, b) = (a.min(b), a.max(b));
        !self.active.iter().any(
            |f| matches!(*f, SimFault::SerialCut { a: x, b: y } if (x.min(y), x.max(y)) == (a, b)),
        )
    }

    pub fn disk(&self, node: NodeId) -> Option<DiskMode> {
        self.active.iter().find_map(|f| match *f {
            SimFault::Disk { node: n, mode } if n == node => Some(mode),
            _ => None,
        })
    }

    /// Global loss, per mille.
    pub fn global_loss(&self) -> u16 {
        self.active
            .iter()
            .filter_map(|f| match *f {
                SimFault::Loss { permille } => Some(permille),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    pub fn extra_delay(&self) -> Duration {
        self.active
            .iter()
            .filter_map(|f| match *f {
                SimFault::Delay { extra } => Some(extra),
                _ => None,
            })
            .max()
            .unwrap_or(Duration::ZERO)
    }

    pub fn jitter(&self) -> Duration {
        self.active
            .iter()
            .filter_map(|f| match *f {
                SimFault::Reorder { jitter } => Some(jitter),
                _ => None,
            })
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Whether a frame from `a` can reach `b` on `network` at all (ignoring random loss).
    pub fn network_passes(&self, a: NodeId, b: NodeId, network: NetworkId) -> bool {
        self.can_tx(a, network) && self.can_rx(b, network) && self.hub_up(network)
    }

    /// Whether `node` reaches the references of `network` (echo out and reply back).
    pub fn reference_reachable(&self, node: NodeId, network: NetworkId) -> bool {
        self.can_tx(node, network)
            && self.can_rx(node, network)
            && self.hub_up(network)
            && self.upstream_up(network)
    }
}

impl fmt::Display for ScheduledFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}..{}: {:?}",
            self.start,
            self.end.map_or("end".to_string(), |e| e.to_string()),
            self.fault
        )
    }
}
