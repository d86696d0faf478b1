//! Replay filter: per sender, the newest incarnation and a sliding window of the sequences
//! seen in it. Apply it to *authenticated* messages only (after the stamp), or a forger could
//! advance a sender's window and lock it out.

use super::error::{DecodeError, ReplayKind};
use super::Header;
use crate::core::topology::Topology;

/// Width of the window in sequences. Sequences are shared by all paths of a sender (and may
/// advance once per peer per path per interval), so a message delayed on one path arrives
/// behind many newer ones: 256 tolerates e.g. 16 peers × 4 networks × 4 intervals of skew,
/// in 32 bytes per sender.
pub const REPLAY_WINDOW: u64 = 256;
const WORDS: usize = (REPLAY_WINDOW / 64) as usize;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Entry {
    incarnation: u64,
    newest: u64,
    /// Bit `p` set = sequence `newest - p` already accepted.
    seen: [u64; WORDS],
}

impl Entry {
    fn fresh(incarnation: u64, sequence: u64) -> Entry {
        let mut seen = [0; WORDS];
        seen[0] = 1;
        Entry {
            incarnation,
            newest: sequence,
            seen,
        }
    }

    /// Move the window forward by `k`: bit `p` becomes bit `p + k`.
    fn advance(&mut self, k: u64) {
        if k >= REPLAY_WINDOW {
            self.seen = [0; WORDS];
            return;
        }
        let words = (k / 64) as usize;
        let rem = (k % 64) as u32;
        let old = self.seen;
        for (w, out) in self.seen.iter_mut().enumerate() {
            let src = w.checked_sub(words);
            let hi = src.and_then(|s| old.get(s)).map_or(0, |&x| x << rem);
            let lo = match (rem, src.and_then(|s| s.checked_sub(1))) {
                (0, _) | (_, None) => 0,
                (_, Some(s)) => old.get(s).map_or(0, |&x| x >> (64 - rem)),
            };
            *out = hi | lo;
        }
    }

    fn bit(p: u64) -> (usize, u64) {
        ((p / 64) as usize, 1u64 << (p % 64))
    }
}

/// Bounded memory: one entry per topology node, fixed at construction.
#[derive(Clone, Debug)]
pub struct ReplayFilter {
    entries: Vec<Option<Entry>>,
}

impl ReplayFilter {
    pub fn new(topology: &Topology) -> ReplayFilter {
        ReplayFilter {
            entries: vec![None; topology.nodes.len()],
        }
    }

    /// Accept `header` (and remember it) unless it is a replay. A newer incarnation resets the
    /// sender's window: incarnations must increase across restarts (e.g. boot time in ms).
    pub fn accept(&mut self, header: &Header) -> Result<(), DecodeError> {
        let (inc, seq) = (header.incarnation, header.sequence);
        let replay = |why| DecodeError::Replay {
            sender: header.sender,
            incarnation: inc,
            sequence: seq,
            why,
        };
        let Some(slot) = self.entries.get_mut(header.sender.index()) else {
            return Err(DecodeError::malformed(
                "sender",
                "node id outside the topology",
                &header.sender.0.to_string(),
            ));
        };
        let e = match slot {
            Some(e) if inc == e.incarnation => e,
            Some(e) if inc < e.incarnation => {
                return Err(replay(ReplayKind::OldIncarnation {
                    newest: e.incarnation,
                }))
            }
            _ => {
                *slot = Some(Entry::fresh(inc, seq));
                return Ok(());
            }
        };
        if seq > e.newest {
            e.advance(seq - e.newest);
            e.newest = seq;
            e.seen[0] |= 1;
            return Ok(());
        }
        let behind = e.newest - seq;
        if behind >= REPLAY_WINDOW {
            return Err(replay(ReplayKind::TooOld { newest: e.newest }));
        }
        let (w, mask) = Entry::bit(behind);
        let word = e
            .seen
            .get_mut(w)
            .ok_or_else(|| replay(ReplayKind::TooOld { newest: e.newest }))?;
        if *word & mask != 0 {
            return Err(replay(ReplayKind::Duplicate));
        }
        *word |= mask;
        Ok(())
    }
}
