//! Bounded start-up: a daemon reads back only the newest journal bytes, streamed entry by entry
//! into its incident book, so a full journal (6 × 16 MiB) costs neither time nor memory at
//! start. The real-daemon test prints the figures (start-up time, peak RSS); it asserts the
//! structural bound (bytes read), never a wall-clock duration.

use chrono::{TimeZone, Utc};
use hadiag::journal::record::{Entry, EntryKind};
use hadiag::journal::{for_each_recent, rotated_path, STARTUP_READ_BYTES};
use hadiag::lab::{ChildGuard, Netns};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

fn note(i: usize, pad: usize) -> Entry {
    Entry::new(
        Utc.with_ymd_and_hms(2026, 12, 1, 4, 0, 0).unwrap()
            + chrono::Duration::milliseconds(i as i64),
        "n1",
        EntryKind::Note {
            text: format!("note {i:08} {}", "x".repeat(pad)),
        },
    )
}

fn line(e: &Entry) -> String {
    let mut s = serde_json::to_string(e).unwrap();
    s.push('\n');
    s
}

#[test]
fn newest_lines_first_under_a_cap_oldest_first_out_and_a_bad_line_costs_only_itself() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("journal.jsonl");
    // .2 holds 0..100, .1 holds 100..200 with garbage in the middle, live holds 200..300.
    for (file, range) in [
        (rotated_path(&live, 2), 0..100),
        (rotated_path(&live, 1), 100..200),
        (live.clone(), 200..300),
    ] {
        let mut f = std::fs::File::create(&file).unwrap();
        for i in range {
            if i == 150 {
                // A line torn by a full disk, then the next entry written after space came back.
                f.write_all(&line(&note(i, 20)).as_bytes()[..30]).unwrap();
                f.write_all(b"\n").unwrap();
                continue;
            }
            f.write_all(line(&note(i, 20)).as_bytes()).unwrap();
        }
    }
    let one = line(&note(0, 20)).len() as u64;
    // Everything: 299 entries in order, one skipped line.
    let mut seen = Vec::new();
    let r = for_each_recent(dir.path(), u64::MAX, |e| seen.push(e)).unwrap();
    assert_eq!(r.entries, 299);
    assert_eq!(r.skipped, 1);
    let expect: Vec<Entry> = (0..300)
        .filter(|&i| i != 150)
        .map(|i| note(i, 20))
        .collect();
    assert_eq!(seen, expect);
    // A cap of 150.5 lines: the newest 150 whole lines (one of them the torn one), in order.
    let mut seen = Vec::new();
    let r = for_each_recent(dir.path(), one * 150 + one / 2, |e| seen.push(e)).unwrap();
    assert!(r.bytes <= one * 151, "read {} bytes", r.bytes);
    let first = match &seen[0].event {
        EntryKind::Note { text } => text.clone(),
        other => panic!("{other:?}"),
    };
    // Whole lines only: the line the cap falls into is dropped, none is half-read.
    assert!(
        (148..=151).any(|i| first.starts_with(&format!("note {i:08} "))),
        "{first}"
    );
    assert!((148..=151).contains(&(seen.len() as i32)), "{}", seen.len());
    assert_eq!(seen.last(), Some(&note(299, 20)));
    assert!(seen.windows(2).all(|w| w[0].ts < w[1].ts), "oldest first");
}

/// Writes `files` journal files of `bytes` each (live + rotated) into `dir`.
fn full_journal(dir: &Path, files: u32, bytes: u64) -> u64 {
    let live = dir.join("journal.jsonl");
    let mut total = 0;
    let mut i = 0;
    for n in (0..files).rev() {
        let mut f = std::io::BufWriter::new(std::fs::File::create(rotated_path(&live, n)).unwrap());
        let mut size = 0;
        while size < bytes {
            let l = line(&note(i, 400));
            i += 1;
            f.write_all(l.as_bytes()).unwrap();
            size += l.len() as u64;
        }
        total += size;
    }
    total
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[test]
fn a_daemon_with_a_full_journal_reads_a_bounded_tail_and_starts() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "needs root (network namespaces)"
    );
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let total = full_journal(&state, 6, 16 * 1024 * 1024);
    let prefix = hadiag::lab::netns::unique_prefix();
    let n1 = Netns::with_role(&prefix, "js1").expect("namespace");
    let hub = Netns::with_role(&prefix, "jsh").expect("namespace");
    n1.veth("eth1", &hub, "p1").unwrap();
    n1.add_address("eth1", "192.0.2.1".parse().unwrap(), 24)
        .unwrap();
    let cfg = dir.path().join("cluster.yaml");
    std::fs::write(
        &cfg,
        format!(
            r#"cluster: startup
auth: {{ key_id: k1, key: 00112233445566778899aabbccddeeff }}
state_dir: {}
listen: 127.0.0.1:0
networks:
  A: {{ references: [192.0.2.254], port: 7946 }}
nodes:
  n1: {{ priority: 2, interfaces: {{ A: {{ device: eth1, address: 192.0.2.1 }} }} }}
  n2: {{ priority: 1, interfaces: {{ A: {{ device: eth1, address: 192.0.2.2 }} }} }}
journal: {{ max_bytes: 16MiB, keep_files: 5 }}
"#,
            state.display()
        ),
    )
    .unwrap();
    let log = dir.path().join("n1.log");
    let mut cmd = n1.command(
        env!("CARGO_BIN_EXE_hadiag"),
        &["run", "--config", cfg.to_str().unwrap(), "--node", "n1"],
    );
    cmd.env("RUST_LOG", "info").env("NO_COLOR", "1");
    let started = Instant::now();
    let daemon = ChildGuard::spawn(cmd, "hadiag n1", Some(&log)).expect("start daemon");
    let deadline = started + Duration::from_secs(60);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("hadiag running") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "daemon did not start; log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let up = started.elapsed();
    let rss = vm_hwm_kib(daemon.pid());
    let history = text
        .lines()
        .find(|l| l.contains("incident history read back"))
        .unwrap_or_else(|| panic!("no history line in:\n{text}"));
    let bytes: u64 = history
        .split("bytes=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("bytes= in the history line");
    assert!(bytes <= STARTUP_READ_BYTES, "read {bytes} bytes at start");
    println!(
        "full journal {:.1} MiB: start-up to 'hadiag running' {:?} (this build, includes process start), peak RSS {} KiB; history line: {history}",
        total as f64 / 1048576.0,
        up,
        rss.map_or("?".to_string(), |k| k.to_string())
    );
}
