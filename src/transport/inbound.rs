//! The inbound queue between the transports' receivers and the driver: one bounded lane per
//! path (each network, and the serial lines together), drained round-robin.
//!
//! A flood or a switching loop on one network fills only that network's lane — further frames
//! of that path are dropped at the receiver and counted — and the driver takes one frame from
//! each non-empty lane in turn, so a heartbeat on a quiet path waits behind at most one frame
//! of every other path, never behind the flood's backlog. Bounded: [`LANES`] lanes of
//! [`PATH_QUEUE`] frames, each at most [`super::RECV_BUFFER_BYTES`] long (≤ 8 MiB in all).
//!
//! Must not: decode or judge frames (the driver and the core do), or block a receiver (a
//! push takes a short lock and never waits for room).

use super::Inbound;
use crate::config::MAX_NETWORKS;
use crate::core::wire::Path;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// One lane per network a configuration may have, plus one for the serial lines.
pub const LANES: usize = MAX_NETWORKS + 1;

/// Frames one path may have waiting. The design load of a path is 16 peers × 10 Hz = 160
/// frames/s and decoding one costs a few µs, so 455 frames (~3 s of it) outlast any driver
/// hiccup; all lanes together hold at most [`super::INBOUND_QUEUE`] frames.
pub const PATH_QUEUE: usize = super::INBOUND_QUEUE / LANES;

/// Why a frame was not queued; the frame comes back.
#[derive(Debug)]
pub enum Refused {
    /// Its path's lane is full: drop it and count it.
    Full(Inbound),
    /// The driver is gone: the receiver should stop.
    Closed(Inbound),
}

#[derive(Debug)]
struct Shared {
    lanes: Mutex<Vec<VecDeque<Inbound>>>,
    /// Woken on every push; holds one permit when nobody waits, so no push is missed.
    ready: Notify,
    closed: AtomicBool,
}

impl Shared {
    fn lanes(&self) -> MutexGuard<'_, Vec<VecDeque<Inbound>>> {
        // A panic while holding the lock cannot leave a lane half-updated (push/pop only).
        self.lanes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn lane(path: Path) -> Option<usize> {
    match path {
        Path::Network(n) => (n.index() < MAX_NETWORKS).then_some(n.index()),
        Path::Serial => Some(LANES - 1),
    }
}

/// The receivers' end (cloned into every transport).
#[derive(Clone, Debug)]
pub struct InboundTx {
    shared: Arc<Shared>,
}

/// The driver's end.
#[derive(Debug)]
pub struct InboundRx {
    shared: Arc<Shared>,
    /// The lane to look at first on the next take (the one after the last served).
    next: usize,
}

/// A new, empty queue.
pub fn channel() -> (InboundTx, InboundRx) {
    let shared = Arc::new(Shared {
        lanes: Mutex::new((0..LANES).map(|_| VecDeque::new()).collect()),
        ready: Notify::new(),
        closed: AtomicBool::new(false),
    });
    (
        InboundTx {
            shared: shared.clone(),
        },
        InboundRx { shared, next: 0 },
    )
}

impl InboundTx {
    /// Queues `frame` in its path's lane unless that lane is full; never waits.
    pub fn try_send(&self, frame: Inbound) -> Result<(), Refused> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Refused::Closed(frame));
        }
        let Some(i) = lane(frame.path) else {
            return Err(Refused::Full(frame));
        };
        {
            let mut lanes = self.shared.lanes();
            let Some(q) = lanes.get_mut(i) else {
                return Err(Refused::Full(frame));
            };
            if q.len() >= PATH_QUEUE {
                return Err(Refused::Full(frame));
            }
            q.push_back(frame);
        }
        self.shared.ready.notify_one();
        Ok(())
    }
}

impl InboundRx {
    /// The next frame in round-robin order over the paths, if any is waiting.
    pub fn try_recv(&mut self) -> Option<Inbound> {
        let mut lanes = self.shared.lanes();
        for k in 0..LANES {
            let i = (self.next + k) % LANES;
            if let Some(f) = lanes.get_mut(i).and_then(VecDeque::pop_front) {
                self.next = (i + 1) % LANES;
                return Some(f);
            }
        }
        None
    }

    /// Waits for the next frame. Cancel-safe (a frame is taken only when returned), so it
    /// can be one branch of a `select!`.
    pub async fn recv(&mut self) -> Inbound {
        loop {
            if let Some(f) = self.try_recv() {
                return f;
            }
            self.shared.ready.notified().await;
        }
    }

    /// Frames waiting on `path`.
    pub fn waiting(&self, path: Path) -> usize {
        lane(path).map_or(0, |i| self.shared.lanes().get(i).map_or(0, VecDeque::len))
    }
}

impl Drop for InboundRx {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.lanes().iter_mut().for_each(VecDeque::clear);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::time::Instant;
    use crate::core::topology::NetworkId;
    use crate::transport::Source;

    fn frame(path: Path, tag: u8) -> Inbound {
        Inbound {
            path,
            at: Instant::ZERO,
            source: Source::Serial("test".into()),
            bytes: vec![tag],
        }
    }

    const A: Path = Path::Network(NetworkId(0));
    const B: Path = Path::Network(NetworkId(1));

    #[test]
    fn a_flooded_path_fills_only_its_own_lane() {
        let (tx, mut rx) = channel();
        let mut admitted = 0;
        while tx.try_send(frame(A, 0)).is_ok() {
            admitted += 1;
        }
        assert_eq!(admitted, PATH_QUEUE);
        assert!(matches!(tx.try_send(frame(A, 0)), Err(Refused::Full(_))));
        assert!(tx.try_send(frame(B, 1)).is_ok());
        assert!(tx.try_send(frame(Path::Serial, 2)).is_ok());
        assert!(rx.try_recv().is_some());
        assert!(
            tx.try_send(frame(A, 0)).is_ok(),
            "room again once one is taken"
        );
    }

    /// Behind a full lane of A, frames of B and serial come out within one round of the lanes,
    /// and the lanes keep alternating for as long as each has frames.
    #[test]
    fn lanes_are_drained_in_turn() {
        let (tx, mut rx) = channel();
        while tx.try_send(frame(A, b'a')).is_ok() {}
        for _ in 0..3 {
            tx.try_send(frame(B, b'b')).unwrap();
            tx.try_send(frame(Path::Serial, b's')).unwrap();
        }
        let order: Vec<u8> = (0..9).map(|_| rx.try_recv().unwrap().bytes[0]).collect();
        assert_eq!(order, b"abs".repeat(3));
        assert_eq!(rx.waiting(A), PATH_QUEUE - 3);
        assert_eq!((rx.waiting(B), rx.waiting(Path::Serial)), (0, 0));
        assert_eq!(rx.try_recv().unwrap().bytes[0], b'a');
    }

    #[test]
    fn a_network_beyond_the_lanes_is_refused_and_a_gone_driver_closes() {
        let (tx, rx) = channel();
        let far = Path::Network(NetworkId(MAX_NETWORKS as u16));
        assert!(matches!(tx.try_send(frame(far, 0)), Err(Refused::Full(_))));
        drop(rx);
        assert!(matches!(tx.try_send(frame(A, 0)), Err(Refused::Closed(_))));
    }

    #[tokio::test]
    async fn recv_wakes_on_a_push_from_another_thread() {
        let (tx, mut rx) = channel();
        let t = std::thread::spawn(move || tx.try_send(frame(B, 7)).unwrap());
        let f = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .expect("the pushed frame");
        assert_eq!((f.path, f.bytes), (B, vec![7]));
        t.join().unwrap();
    }
}
