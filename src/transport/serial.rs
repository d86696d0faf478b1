//! Serial heartbeats: the same ASCII messages over a serial line, one message per line.
//!
//! Framing: each message is written followed by `\n` (messages never contain a newline; one
//! that does is refused at send). The reader collects bytes up to `\n`, drops a trailing `\r`
//! and hands the line over; a line longer than `MAX_MESSAGE_BYTES` is discarded up to the next
//! newline and counted, so line noise cannot grow memory or desynchronise framing for more than
//! one line.
//!
//! Hang-up detection: the reader polls with a 100 ms timeout; POLLHUP (the far end of a pty
//! closed, a USB adapter unplugged) or any read error closes the port, reports
//! `SerialPort{open: false}` and reopens with exponential backoff (100 ms doubling to 5 s).
//! While open, `SerialPort{open: true}` is re-reported every `refresh`. Silence on an open
//! line (peer dead, cable cut without hang-up) is the core's to see: heartbeats stop.
//!
//! One supervisor/reader thread per line (the serialport crate is blocking) and one writer
//! thread fed by a bounded queue ([`WRITE_QUEUE`]); the driver only ever `try_send`s.

use super::{Inbound, Source, TransportStats};
use crate::core::observation::{Observation, Probe};
use crate::core::topology::NodeId;
use crate::core::wire::{Path, MAX_MESSAGE_BYTES};
use crate::daemon::clock::Clock;
use serialport::TTYPort;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Frames waiting for the writer: a few heartbeat periods. At 9600 baud one 1200-byte message
/// takes ~1.25 s, so a longer queue would only send stale heartbeats.
pub const WRITE_QUEUE: usize = 8;
const READ_TIMEOUT: Duration = Duration::from_millis(100);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Line framing state machine (pure; unit-tested).
#[derive(Debug, Default)]
pub struct LineFramer {
    buf: Vec<u8>,
    discarding: bool,
}

/// What one chunk of input yielded.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Framed {
    pub lines: Vec<Vec<u8>>,
    pub oversize: u64,
}

impl LineFramer {
    pub fn push(&mut self, chunk: &[u8]) -> Framed {
        let mut out = Framed::default();
        for &b in chunk {
            if b == b'\n' {
                if self.discarding {
                    self.discarding = false;
                } else {
                    let mut line = std::mem::take(&mut self.buf);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    if !line.is_empty() {
                        out.lines.push(line);
                    }
                }
                self.buf.clear();
            } else if !self.discarding {
                self.buf.push(b);
                if self.buf.len() > MAX_MESSAGE_BYTES + 1 {
                    // +1 tolerates a trailing '\r'.
                    self.buf.clear();
                    self.discarding = true;
                    out.oversize += 1;
                }
            }
        }
        out
    }
}

/// The currently open port, shared by the reader (opens/closes) and the writer (writes).
type SharedPort = Arc<Mutex<Option<TTYPort>>>;

/// The sending half of one serial line.
pub struct SerialLink {
    pub peer: NodeId,
    pub device: String,
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for SerialLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialLink")
            .field("peer", &self.peer)
            .field("device", &self.device)
            .finish()
    }
}

impl SerialLink {
    /// Starts the supervisor/reader and writer threads; the port is opened (and reopened) by
    /// the supervisor, so a missing device at start is not an error.
    #[allow(clippy::too_many_arguments)] // one call site; each argument is a distinct resource
    pub fn start(
        peer: NodeId,
        device: &str,
        baud: u32,
        refresh: Duration,
        clock: Clock,
        inbound: super::InboundTx,
        observations: mpsc::Sender<Observation>,
        stats: Arc<TransportStats>,
    ) -> io::Result<SerialLink> {
        let (tx, wrx) = std::sync::mpsc::sync_channel::<Vec<u8>>(WRITE_QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let current: SharedPort = Arc::new(Mutex::new(None));
        // Writer: writes each queued frame to the currently open port, if any.
        {
            let current = current.clone();
            let stats = stats.clone();
            std::thread::Builder::new()
                .name(format!("hadiag-serial-w-{}", peer.0))
                .spawn(move || {
                    while let Ok(frame) = wrx.recv() {
                        let ok = match current.lock() {
                            Ok(mut g) => match g.as_mut() {
                                Some(port) => {
                                    port.write_all(&frame).and_then(|_| port.flush()).is_ok()
                                }
                                None => false,
                            },
                            Err(_) => false,
                        };
                        TransportStats::bump(if ok { &stats.sent } else { &stats.send_failed });
                    }
                })?;
        }
        let dev = device.to_string();
        let stop_r = stop.clone();
        std::thread::Builder::new()
            .name(format!("hadiag-serial-r-{}", peer.0))
            .spawn(move || {
                let report = |open: bool| {
                    let obs = Observation { at: clock.now(), probe: Probe::SerialPort { peer, open } };
                    observations.blocking_send(obs).is_ok()
                };
                let mut backoff = BACKOFF_MIN;
                let mut logged_closed = false;
                while !stop_r.load(Ordering::Relaxed) {
                    let port = serialport::new(&dev, baud).timeout(READ_TIMEOUT).open_native();
                    let mut port = match port {
                        Ok(p) => p,
                        Err(e) => {
                            if !logged_closed {
                                tracing::warn!(device = %dev, error = %e, "serial port cannot be opened; retrying with backoff");
                                logged_closed = true;
                            }
                            if !report(false) {
                                return;
                            }
                            std::thread::sleep(backoff);
                            backoff = (backoff * 2).min(BACKOFF_MAX);
                            continue;
                        }
                    };
                    tracing::info!(device = %dev, peer = peer.0, "serial port open");
                    logged_closed = false;
                    backoff = BACKOFF_MIN;
                    match port.try_clone_native() {
                        Ok(w) => {
                            if let Ok(mut g) = current.lock() {
                                *g = Some(w);
                            }
                        }
                        Err(e) => tracing::warn!(device = %dev, error = %e, "serial port cannot be cloned for writing"),
                    }
                    if !report(true) {
                        return;
                    }
                    let mut framer = LineFramer::default();
                    let mut buf = [0u8; 1024];
                    let mut last_report = std::time::Instant::now();
                    let err = loop {
                        if stop_r.load(Ordering::Relaxed) {
                            break None;
                        }
                        if last_report.elapsed() >= refresh {
                            if !report(true) {
                                return;
                            }
                            last_report = std::time::Instant::now();
                        }
                        match port.read(&mut buf) {
                            Ok(0) => break Some(io::Error::from(io::ErrorKind::UnexpectedEof)),
                            Ok(n) => {
                                let framed = framer.push(buf.get(..n).unwrap_or(&[]));
                                for _ in 0..framed.oversize {
                                    TransportStats::bump(&stats.serial_oversize);
                                }
                                for line in framed.lines {
                                    let frame = Inbound {
                                        path: Path::Serial,
                                        at: clock.now(),
                                        source: Source::Serial(dev.clone()),
                                        bytes: line,
                                    };
                                    if !super::enqueue(&inbound, &stats, frame) {
                                        return;
                                    }
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => break Some(e),
                        }
                    };
                    if let Ok(mut g) = current.lock() {
                        *g = None;
                    }
                    if let Some(e) = err {
                        tracing::warn!(device = %dev, peer = peer.0, error = %e, "serial line hung up; reopening");
                        if !report(false) {
                            return;
                        }
                        std::thread::sleep(backoff);
                    }
                }
            })?;
        Ok(SerialLink {
            peer,
            device: device.to_string(),
            tx,
            stop,
        })
    }

    /// Queues one message (a newline is appended); never blocks.
    pub fn send(&self, msg: &[u8], stats: &TransportStats) {
        if msg.contains(&b'\n') || msg.len() > MAX_MESSAGE_BYTES {
            TransportStats::bump(&stats.send_failed);
            return;
        }
        let mut f = Vec::with_capacity(msg.len() + 1);
        f.extend_from_slice(msg);
        f.push(b'\n');
        if self.tx.try_send(f).is_err() {
            TransportStats::bump(&stats.send_failed);
        }
    }
}

impl Drop for SerialLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_splits_lines_and_discards_oversize() {
        let mut f = LineFramer::default();
        let r = f.push(b"HADIAG/1 a\r\nHADIAG/1 b\npart");
        assert_eq!(
            r.lines,
            vec![b"HADIAG/1 a".to_vec(), b"HADIAG/1 b".to_vec()]
        );
        let r = f.push(b"ial\n\n");
        assert_eq!(r.lines, vec![b"partial".to_vec()]);
        let big = vec![b'x'; MAX_MESSAGE_BYTES * 3];
        let r = f.push(&big);
        assert_eq!(r.oversize, 1);
        assert!(r.lines.is_empty());
        let r = f.push(b"tail of the long line\nHADIAG/1 c\n");
        assert_eq!(r.lines, vec![b"HADIAG/1 c".to_vec()]);
        assert_eq!(r.oversize, 0);
    }
}
