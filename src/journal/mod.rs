//! The incident journal: append-only JSON Lines in the state directory.
//!
//! Every incident opened and closed, every verdict change with the evidence it was decided on,
//! every hook run and alert delivery is one line ([`record::Entry`]), timestamped in UTC
//! RFC 3339 with milliseconds. `explain --journal` reads it offline — the newest
//! [`EXPLAIN_READ_BYTES`] streamed from the end ([`scan_recent`]) into a
//! [`book::IncidentBook`] — because the node that most needs an explanation may be the
//! isolated one.
//!
//! Durability: incident opens and closes are fsync'ed; other lines are written through to the
//! OS and synced with the next sync or rotation. Size: the live file `journal.jsonl` is rotated
//! to `journal.jsonl.1 … .N` when it would exceed `max_bytes`, keeping `keep_files` old files,
//! so the journal never exceeds `(keep_files + 1) × max_bytes` (plus one oversize line).
//! Crashes: a torn last line (no trailing newline) is tolerated — reported by
//! [`Journal::recovered`] and by the reader, never fatal; the next entry starts on a fresh line.
//!
//! What it must not do: block the daemon. [`JournalHandle`] puts the writer on its own thread
//! behind a bounded queue; when the disk stalls, entries are dropped and counted, never waited
//! on.

pub mod book;
pub mod record;

pub use book::{IncidentBook, IncidentListItem, IncidentRecord, TimelineItem};
pub use record::{Entry, EntryKind};

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

/// Name of the live journal file inside the state directory.
pub const FILE_NAME: &str = "journal.jsonl";

/// Size bounds of the journal.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Rotate when the live file would grow beyond this many bytes.
    pub max_bytes: u64,
    /// Rotated files kept (`journal.jsonl.1` is the newest).
    pub keep_files: u32,
}

impl Default for Limits {
    /// 8 MiB × (1 + 4): months of incidents, small enough for any state partition.
    fn default() -> Self {
        Limits {
            max_bytes: 8 * 1024 * 1024,
            keep_files: 4,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("journal entry could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// A torn last line found when the journal was opened (a crash mid-write).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub file: PathBuf,
    pub bytes: u64,
}

/// The synchronous writer. Use [`JournalHandle`] from async code.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    limits: Limits,
    file: File,
    size: u64,
    recovered: Option<TornTail>,
    /// A write failed (disk full, EIO), possibly after writing part of its line: the next
    /// line starts with a newline so the fragment ends there and costs only itself.
    torn: bool,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Path of rotated file `n` (`n == 0` is the live file).
pub fn rotated_path(live: &Path, n: u32) -> PathBuf {
    if n == 0 {
        live.to_path_buf()
    } else {
        let mut s = live.as_os_str().to_os_string();
        s.push(format!(".{n}"));
        PathBuf::from(s)
    }
}

impl Journal {
    /// Opens (creating if needed) `dir/journal.jsonl` for appending.
    pub fn open(dir: &Path, limits: Limits) -> Result<Journal, JournalError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(FILE_NAME);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let size = file.metadata().map_err(io_err(&path))?.len();
        let mut recovered = None;
        if size > 0 {
            let torn = torn_tail_len(&mut file, size).map_err(io_err(&path))?;
            if torn > 0 {
                // Keep the torn bytes for forensics but end them, so the next entry starts on
                // its own line and readers skip exactly one bad line.
                file.write_all(b"\n").map_err(io_err(&path))?;
                file.sync_data().map_err(io_err(&path))?;
                recovered = Some(TornTail {
                    file: path.clone(),
                    bytes: torn,
                });
                tracing::warn!(file = %path.display(), bytes = torn, "journal: torn last line after a crash; skipped");
            }
        }
        let size = file.metadata().map_err(io_err(&path))?.len();
        Ok(Journal {
            dir: dir.to_path_buf(),
            limits,
            file,
            size,
            recovered,
            torn: false,
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// The torn line found at open, if any (journal it as `JournalRecovered`).
    pub fn recovered(&self) -> Option<&TornTail> {
        self.recovered.as_ref()
    }

    /// Appends one entry as one line; fsyncs incident opens/closes.
    pub fn append(&mut self, entry: &Entry) -> Result<(), JournalError> {
        let mut line = serde_json::to_vec(entry)?;
        line.push(b'\n');
        if self.size > 0 && self.size + line.len() as u64 > self.limits.max_bytes {
            self.rotate()?;
        }
        let path = self.path();
        if self.torn {
            line.insert(0, b'\n');
        }
        // One write call per line: with O_APPEND a reader never sees interleaved halves.
        if let Err(e) = self.file.write_all(&line) {
            self.torn = true;
            self.size = self.file.metadata().map_or(self.size, |m| m.len());
            return Err(io_err(&path)(e));
        }
        self.torn = false;
        self.size += line.len() as u64;
        if entry.event.must_sync() {
            self.file.sync_data().map_err(io_err(&path))?;
        }
        Ok(())
    }

    /// New rotation limits (live reload): the next append rotates if the live file is now over
    /// `max_bytes`; rotated files beyond the new `keep_files` are removed at once.
    pub fn set_limits(&mut self, limits: Limits) -> Result<(), JournalError> {
        let old = self.limits;
        self.limits = limits;
        let live = self.path();
        for n in limits.keep_files.saturating_add(1)..=old.keep_files.max(limits.keep_files) {
            let p = rotated_path(&live, n);
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(&p)(e)),
                _ => {}
            }
        }
        Ok(())
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn sync(&mut self) -> Result<(), JournalError> {
        let path = self.path();
        self.file.sync_data().map_err(io_err(&path))
    }

    fn rotate(&mut self) -> Result<(), JournalError> {
        let live = self.path();
        self.file.sync_data().map_err(io_err(&live))?;
        let keep = self.limits.keep_files;
        if keep == 0 {
            std::fs::remove_file(&live).map_err(io_err(&live))?;
        } else {
            let oldest = rotated_path(&live, keep);
            match std::fs::remove_file(&oldest) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(&oldest)(e)),
                _ => {}
            }
            for n in (0..keep).rev() {
                let from = rotated_path(&live, n);
                if from.exists() {
                    std::fs::rename(&from, rotated_path(&live, n + 1)).map_err(io_err(&from))?;
                }
            }
        }
        self.file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&live)
            .map_err(io_err(&live))?;
        self.size = 0;
        // Make the renames durable too.
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// Bytes after the last newline (0 when the file ends with one).
fn torn_tail_len(file: &mut File, size: u64) -> io::Result<u64> {
    // Look back at most 1 MiB: a longer torn line is reported as its last MiB.
    let look = size.min(1 << 20);
    file.seek(SeekFrom::Start(size - look))?;
    let mut buf = Vec::with_capacity(look as usize);
    file.take(look).read_to_end(&mut buf)?;
    Ok(match buf.iter().rposition(|&b| b == b'\n') {
        Some(p) => (buf.len() - p - 1) as u64,
        None => buf.len() as u64,
    })
}

/// Counters of the background writer (exported as metrics).
#[derive(Debug, Default)]
pub struct JournalStats {
    pub written: AtomicU64,
    /// Dropped because the queue was full (the disk is stalled) or the writer is gone.
    pub dropped: AtomicU64,
    /// Write errors (disk full, EIO).
    pub failed: AtomicU64,
}

/// Entries queued to the writer thread at most; ~1 minute of a very busy incident. Beyond
/// that the disk is stalled and dropping is better than stalling the daemon.
pub const QUEUE_CAPACITY: usize = 1024;

enum Msg {
    Entry(Box<Entry>),
    Flush(mpsc::SyncSender<()>),
    Limits(Limits),
}

/// Non-blocking front of a [`Journal`] running on its own thread. Cloneable; the thread ends
/// when the last handle is dropped.
#[derive(Clone)]
pub struct JournalHandle {
    tx: mpsc::SyncSender<Msg>,
    stats: Arc<JournalStats>,
}

impl JournalHandle {
    pub fn spawn(journal: Journal) -> io::Result<JournalHandle> {
        let (tx, rx) = mpsc::sync_channel::<Msg>(QUEUE_CAPACITY);
        let stats = Arc::new(JournalStats::default());
        let s = stats.clone();
        std::thread::Builder::new()
            .name("hadiag-journal".into())
            .spawn(move || {
                let mut j = journal;
                while let Ok(msg) = rx.recv() {
                    match msg {
                        Msg::Entry(e) => match j.append(&e) {
                            Ok(()) => {
                                s.written.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(err) => {
                                s.failed.fetch_add(1, Ordering::Relaxed);
                                tracing::warn!(error = %err, "journal write failed");
                            }
                        },
                        Msg::Flush(done) => {
                            let _ = j.sync();
                            let _ = done.send(());
                        }
                        Msg::Limits(l) => {
                            if let Err(err) = j.set_limits(l) {
                                tracing::warn!(error = %err, "journal limits: removing old files failed");
                            }
                        }
                    }
                }
                let _ = j.sync();
            })?;
        Ok(JournalHandle { tx, stats })
    }

    /// Queues an entry; never blocks. Returns `false` (and counts it) when dropped.
    pub fn record(&self, entry: Entry) -> bool {
        match self.tx.try_send(Msg::Entry(Box::new(entry))) {
            Ok(()) => true,
            Err(_) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Waits until everything queued so far is written and synced (shutdown, tests).
    /// Blocking: call from a blocking context.
    pub fn flush(&self) {
        let (tx, rx) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    pub fn stats(&self) -> Arc<JournalStats> {
        self.stats.clone()
    }

    /// Applies new rotation limits on the writer thread, after everything queued before.
    /// Blocks only for queue room (reloads are rare; the queue drains at disk speed).
    pub fn set_limits(&self, limits: Limits) -> bool {
        self.tx.send(Msg::Limits(limits)).is_ok()
    }
}

/// A line the reader skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineProblem {
    pub file: PathBuf,
    /// 1-based line number; `None` when the read entered the file part-way (bounded reads
    /// from the end), then `offset` places it.
    pub line: Option<usize>,
    /// Byte offset of the line in its file.
    pub offset: u64,
    /// The last line had no newline: a write torn by a crash.
    pub torn: bool,
    pub error: String,
}

impl std::fmt::Display for LineProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.torn {
            "torn last line (crash during write), skipped"
        } else {
            "unreadable line, skipped"
        };
        match self.line {
            Some(l) => write!(f, "{}:{l}: {what}: {}", self.file.display(), self.error),
            None => write!(
                f,
                "{} at byte {}: {what}: {}",
                self.file.display(),
                self.offset,
                self.error
            ),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ReadReport {
    /// Entries of all files, oldest file first.
    pub entries: Vec<Entry>,
    pub problems: Vec<LineProblem>,
    pub files: Vec<PathBuf>,
}

/// Journal bytes a starting daemon reads back into its incident book, newest first: enough for
/// the incidents of the last days on a busy node, small enough that a full journal (6 × 16 MiB
/// by default) starts in well under a second and well under the unit's memory limit.
pub const STARTUP_READ_BYTES: u64 = 4 * 1024 * 1024;
/// Longest journal line read back; a longer one is skipped (no entry comes near it).
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// What [`for_each_recent`] read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecentReport {
    pub entries: u64,
    /// Lines that were not an entry (torn, garbage, over [`MAX_LINE_BYTES`]): skipped.
    pub skipped: u64,
    pub bytes: u64,
    /// Older history was left unread because the byte cap was reached.
    pub truncated: bool,
}

/// Journal bytes `hadiag explain --journal` reads, newest first. Read as a stream into the
/// incident book, memory is bounded by the book (at most [`book::MAX_INCIDENTS`] incidents),
/// not by the files; 32 MiB is two full files at the default 16 MiB — weeks of incidents on a
/// normal node — and parses in well under a second. Older history: point `--journal` at an
/// older rotated file (`journal.jsonl.N`), which is read from its own end the same way.
pub const EXPLAIN_READ_BYTES: u64 = 32 * 1024 * 1024;

/// The files of the journal at `path` — a state directory, its live file, or a rotated file —
/// newest first: that file (the live one for a directory) and its rotated predecessors.
/// Files that do not exist are left out (rotated files may exist without a live one).
pub fn journal_files(path: &Path) -> Vec<PathBuf> {
    let (live, first) = if path.is_dir() {
        (path.join(FILE_NAME), 0)
    } else {
        let rotated = path.extension().and_then(|e| e.to_str()).and_then(|e| {
            let n: u32 = e.parse().ok()?;
            Some((path.with_extension(""), n))
        });
        rotated.unwrap_or((path.to_path_buf(), 0))
    };
    let mut out = Vec::new();
    // Bounded scan: keep_files is far below this.
    for n in first..=first.saturating_add(1000) {
        let p = rotated_path(&live, n);
        if p.exists() {
            out.push(p);
        } else if n != first {
            break;
        }
    }
    out
}

/// Streams the newest whole lines of the journal in `dir`, at most `cap` bytes of them, to `f`
/// oldest first, one entry at a time: memory stays bounded by one line whatever the journal's
/// size. Files are taken newest first (live file, then `.1`, `.2`, …) until `cap` is reached;
/// the oldest file read is entered at a line boundary. A bad line costs only itself.
pub fn for_each_recent(
    dir: &Path,
    cap: u64,
    f: impl FnMut(Entry),
) -> Result<RecentReport, JournalError> {
    scan_recent(&journal_files(dir), cap, f, |_| {})
}

/// [`for_each_recent`] over `files` (newest first, as [`journal_files`] lists them), also
/// reporting each line that is not an entry to `problem`.
pub fn scan_recent(
    files: &[PathBuf],
    cap: u64,
    mut f: impl FnMut(Entry),
    mut problem: impl FnMut(LineProblem),
) -> Result<RecentReport, JournalError> {
    // (file, offset to start from), newest first.
    let mut plan: Vec<(PathBuf, u64)> = Vec::new();
    let mut left = cap;
    let mut report = RecentReport::default();
    for p in files {
        if left == 0 {
            report.truncated = true;
            break;
        }
        let size = match std::fs::metadata(p) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(p)(e)),
        };
        let take = size.min(left);
        left -= take;
        report.truncated |= take < size;
        plan.push((p.clone(), size - take));
    }
    let newest = plan.first().map(|(p, _)| p.clone());
    for (path, start) in plan.into_iter().rev() {
        let file = File::open(&path).map_err(io_err(&path))?;
        let mut r = io::BufReader::new(file);
        r.seek(SeekFrom::Start(start)).map_err(io_err(&path))?;
        let mut line = Vec::new();
        let mut at = start;
        if start > 0 {
            // Entered mid-file: the first (partial) line belongs to older history.
            let (n, _) = read_line_bounded(&mut r, &mut line).map_err(io_err(&path))?;
            report.bytes += n as u64;
            at += n as u64;
        }
        let mut number = (start == 0).then_some(0usize);
        loop {
            line.clear();
            let (n, newline) = read_line_bounded(&mut r, &mut line).map_err(io_err(&path))?;
            if n == 0 {
                break;
            }
            let offset = at;
            at += n as u64;
            number = number.map(|k| k + 1);
            report.bytes += n as u64;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Entry>(&line) {
                Ok(e) => {
                    report.entries += 1;
                    f(e);
                }
                Err(e) => {
                    report.skipped += 1;
                    let over = line.last() == Some(&0);
                    problem(LineProblem {
                        file: path.clone(),
                        line: number,
                        offset,
                        // Only the newest file's last line can be a write still torn.
                        torn: !newline && newest.as_ref() == Some(&path),
                        error: if over {
                            format!("line longer than {MAX_LINE_BYTES} bytes")
                        } else {
                            e.to_string()
                        },
                    });
                }
            }
        }
    }
    Ok(report)
}

/// Reads one line into `out` (without its newline), keeping at most [`MAX_LINE_BYTES`]; a
/// longer line is consumed and returned empty-but-counted as garbage. Returns bytes consumed
/// and whether the line ended with a newline (not: the file's last, torn line).
fn read_line_bounded<R: BufRead>(r: &mut R, out: &mut Vec<u8>) -> io::Result<(usize, bool)> {
    let mut consumed = 0;
    let mut over = false;
    let mut newline = false;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let data = buf.get(..chunk).unwrap_or(&[]);
        let data = if done {
            data.get(..chunk - 1).unwrap_or(&[])
        } else {
            data
        };
        if !over && out.len() + data.len() <= MAX_LINE_BYTES {
            out.extend_from_slice(data);
        } else {
            over = true;
            out.clear();
        }
        r.consume(chunk);
        consumed += chunk;
        if done {
            newline = true;
            break;
        }
    }
    if over {
        // Not JSON: counted as a skipped line by the caller.
        out.extend_from_slice(b"\x00");
    }
    Ok((consumed, newline))
}

/// Most journal bytes [`read_journal`] collects (newest kept): it holds every entry in memory,
/// so it is for tests and tools over small journals; `explain` streams instead
/// ([`EXPLAIN_READ_BYTES`]).
pub const MAX_READ_BYTES: u64 = 256 * 1024 * 1024;

/// Reads a journal into memory: `path` is the state directory, the live file, or a rotated
/// file (then it and its older predecessors). Entries come out oldest first; at most the newest
/// [`MAX_READ_BYTES`] are read.
pub fn read_journal(path: &Path) -> Result<ReadReport, JournalError> {
    let mut files = journal_files(path);
    if files.is_empty() {
        let (p, why) = if path.is_dir() {
            (path.join(FILE_NAME), "no journal in this directory")
        } else {
            (path.to_path_buf(), "no such journal file")
        };
        return Err(JournalError::Io {
            path: p,
            source: io::Error::new(io::ErrorKind::NotFound, why),
        });
    }
    let mut report = ReadReport::default();
    let mut problems = Vec::new();
    scan_recent(
        &files,
        MAX_READ_BYTES,
        |e| report.entries.push(e),
        |p| problems.push(p),
    )?;
    report.problems = problems;
    files.reverse();
    report.files = files;
    Ok(report)
}
