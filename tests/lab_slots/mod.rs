//! How many labs one test binary runs at once. A lab's daemons sleep between heartbeats (a few
//! percent of a core each), so two labs side by side leave detection unstarved on two cores
//! while halving the wall time of the lab tests; more would start to compete with set-up work
//! (namespaces, links, process starts). `HADIAG_LAB_SLOTS=1` runs one lab at a time.

use std::sync::{Condvar, Mutex};

/// Labs at once unless `HADIAG_LAB_SLOTS` says otherwise (1..=8).
const DEFAULT_SLOTS: usize = 2;

static BUSY: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

fn slots() -> usize {
    std::env::var("HADIAG_LAB_SLOTS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| (1..=8).contains(n))
        .unwrap_or(DEFAULT_SLOTS)
}

/// A held lab slot; dropping it lets the next waiting test build its lab.
pub struct Slot(());

/// Waits for a free lab slot.
pub fn take() -> Slot {
    let max = slots();
    let mut busy = BUSY.lock().unwrap_or_else(|p| p.into_inner());
    while *busy >= max {
        busy = FREED.wait(busy).unwrap_or_else(|p| p.into_inner());
    }
    *busy += 1;
    Slot(())
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut busy = BUSY.lock().unwrap_or_else(|p| p.into_inner());
        *busy = busy.saturating_sub(1);
        FREED.notify_one();
    }
}
