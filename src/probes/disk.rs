//! Disk probe: a direct (uncached) read of one aligned block of a device or file, with a
//! timeout, on a dedicated thread, at most one read outstanding.
//!
//! Why a thread: a read of a dead SAN path or a FIFO without a writer can block in the kernel
//! forever and cannot be cancelled; on a blocking-pool thread it would pin a tokio worker. The
//! dedicated thread may stay blocked for good; the async side then reports
//! [`DiskOutcome::Hung`] (with the time the read has been outstanding) at every interval and
//! never submits a second read, so a hung disk costs one thread, not one per interval.
//!
//! Direct I/O: the file is opened with `O_DIRECT` and read into a 4096-byte-aligned buffer at
//! offset 0, so the page cache cannot hide a failing disk. Some files refuse `O_DIRECT` (tmpfs
//! on older kernels, FIFOs, some FUSE file systems: `EINVAL`); then the probe falls back to a
//! normal read followed by `posix_fadvise(POSIX_FADV_DONTNEED)`, which drops the cached page so
//! the *next* read goes to the device again (the first one may come from cache). The file is
//! reopened for every read so a vanished device shows up as an error.
//!
//! Must not: judge latency (the core applies `slow_disk`), or block the driver.

use crate::core::observation::{DiskOutcome, Observation, Probe};
use crate::daemon::clock::Clock;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Block size and alignment of the direct read (covers 512- and 4096-byte sector devices).
pub const BLOCK_BYTES: usize = 4096;

/// One read on the calling thread. Returns the number of bytes read.
pub fn read_block(path: &std::path::Path) -> io::Result<usize> {
    let direct = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(path);
    let (file, is_direct) = match direct {
        Ok(f) => (f, true),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            (std::fs::OpenOptions::new().read(true).open(path)?, false)
        }
        Err(e) => return Err(e),
    };
    let layout = std::alloc::Layout::from_size_align(BLOCK_BYTES, BLOCK_BYTES)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let buf = AlignedBuf::new(layout)?;
    let fd = file.as_raw_fd();
    // SAFETY: buf points to BLOCK_BYTES writable bytes owned by `buf` for the whole call.
    let mut n = unsafe { libc::pread(fd, buf.ptr.cast(), BLOCK_BYTES, 0) };
    if n < 0 && is_direct && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // O_DIRECT accepted at open but refused at read (some FUSE/overlay setups).
        let f2 = std::fs::OpenOptions::new().read(true).open(path)?;
        // SAFETY: as above.
        n = unsafe { libc::pread(f2.as_raw_fd(), buf.ptr.cast(), BLOCK_BYTES, 0) };
        // SAFETY: advisory call on an fd we own.
        unsafe {
            libc::posix_fadvise(
                f2.as_raw_fd(),
                0,
                BLOCK_BYTES as i64,
                libc::POSIX_FADV_DONTNEED,
            )
        };
    } else if !is_direct {
        // SAFETY: advisory call on an fd we own; drops the page we just read from the cache.
        unsafe { libc::posix_fadvise(fd, 0, BLOCK_BYTES as i64, libc::POSIX_FADV_DONTNEED) };
    }
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

struct AlignedBuf {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

impl AlignedBuf {
    fn new(layout: std::alloc::Layout) -> io::Result<Self> {
        // SAFETY: layout has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        Ok(AlignedBuf { ptr, layout })
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with the same layout.
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}

/// A finished read: bytes read (or the error) and how long it took.
type ReadResult = (io::Result<usize>, Duration);
type Reply = oneshot::Sender<ReadResult>;
/// The outstanding read: when it started and where its answer arrives.
type Outstanding = (tokio::time::Instant, oneshot::Receiver<ReadResult>);

/// The reader thread: one request at a time, forever (or until the sender is dropped).
fn spawn_reader(path: PathBuf) -> io::Result<std::sync::mpsc::SyncSender<Reply>> {
    // Capacity 1: the async side never queues a second read while one is outstanding.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Reply>(1);
    std::thread::Builder::new()
        .name("hadiag-disk".into())
        .spawn(move || {
            while let Ok(reply) = rx.recv() {
                let t0 = std::time::Instant::now();
                let r = read_block(&path);
                let _ = reply.send((r, t0.elapsed()));
            }
        })?;
    Ok(tx)
}

fn outcome(r: io::Result<usize>, latency: Duration) -> DiskOutcome {
    match r {
        Ok(_) => DiskOutcome::Ok { latency },
        Err(e) => DiskOutcome::Failed {
            error: e.to_string(),
        },
    }
}

/// Probes `path` every `interval`; a read not back within `timeout` is reported as hung and
/// re-reported (with a growing `for_time`) every interval until it returns.
pub async fn disk_task(
    path: PathBuf,
    interval: Duration,
    timeout: Duration,
    clock: Clock,
    tx: mpsc::Sender<Observation>,
) {
    let reader = match spawn_reader(path.clone()) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot start the disk probe thread");
            return;
        }
    };
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The outstanding read, if any: when it started and where its answer arrives.
    let mut outstanding: Option<Outstanding> = None;
    let mut hung_logged = false;
    loop {
        tick.tick().await;
        let (started, mut rx) = match outstanding.take() {
            Some(o) => o,
            None => {
                let (otx, orx) = oneshot::channel();
                if reader.try_send(otx).is_err() {
                    return; // thread gone (cannot happen while the loop runs)
                }
                (tokio::time::Instant::now(), orx)
            }
        };
        let deadline = started + timeout;
        let result = tokio::time::timeout_at(deadline, &mut rx).await;
        let out = match result {
            Ok(Ok((r, latency))) => {
                if hung_logged {
                    tracing::info!(path = %path.display(), "disk read returned after hanging");
                    hung_logged = false;
                }
                outcome(r, latency)
            }
            Ok(Err(_)) => return, // thread died
            Err(_) => {
                let for_time = started.elapsed();
                if !hung_logged {
                    tracing::warn!(path = %path.display(), ?for_time, "disk read hung");
                    hung_logged = true;
                }
                outstanding = Some((started, rx));
                DiskOutcome::Hung { for_time }
            }
        };
        let obs = Observation {
            at: clock.now(),
            probe: Probe::Disk { outcome: out },
        };
        if tx.send(obs).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_regular_file_and_reports_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("disk.img");
        std::fs::write(&p, vec![7u8; 8192]).unwrap();
        assert_eq!(read_block(&p).unwrap(), BLOCK_BYTES);
        assert!(read_block(&dir.path().join("missing")).is_err());
    }

    #[tokio::test]
    async fn fifo_without_writer_is_hung_and_reported_once_per_interval() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("hung");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let (tx, mut rx) = mpsc::channel(8);
        let task = tokio::spawn(disk_task(
            fifo.clone(),
            Duration::from_millis(50),
            Duration::from_millis(100),
            Clock::new(),
            tx,
        ));
        let mut hung = Vec::new();
        while hung.len() < 3 {
            let obs = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("disk reports")
                .unwrap();
            match obs.probe {
                Probe::Disk {
                    outcome: DiskOutcome::Hung { for_time },
                } => hung.push(for_time),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(
            hung.windows(2).all(|w| w[0] < w[1]),
            "for_time grows: {hung:?}"
        );
        task.abort();
        // Release the blocked thread (open on a FIFO returns once a writer appears).
        let _w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    }
}
