//! Journal durability on a real, small, full file system (ext2 on a loop device the test
//! creates and removes, also on failure): writes fail while the disk is full, and once space
//! comes back the journal carries on — the torn fragment costs only its own line, every entry
//! written after it reads back,

use chrono::{TimeZone, Utc};
use hadiag::journal::record::{Entry, EntryKind};
use hadiag::journal::{read_journal, Journal, Limits};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A loop-mounted ext2 image; unmounted and detached on drop.
struct SmallFs {
    mount: PathBuf,
    device: Option<String>,
    _dir: tempfile::TempDir,
}

impl SmallFs {
    fn new(kib: u64) -> SmallFs {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fs.img");
        std::fs::write(&image, vec![0u8; (kib * 1024) as usize]).unwrap();
        let ok = |c: &mut Command| {
            let out = c.output().expect("run");
            assert!(
                out.status.success(),
                "{c:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        ok(Command::new("mkfs.ext2")
            .args(["-q", "-F", "-m", "0"])
            .arg(&image));
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).unwrap();
        let mut fs = SmallFs {
            mount: mount.clone(),
            device: None,
            _dir: dir,
        };
        let dev = ok(Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&image));
        fs.device = Some(dev.clone());
        ok(Command::new("mount").arg(&dev).arg(&mount));
        fs
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
        if let Some(d) = &self.device {
            let _ = Command::new("losetup").arg("-d").arg(d).status();
        }
    }
}

fn note(i: usize, pad: usize) -> Entry {
    Entry::new(
        Utc.with_ymd_and_hms(2026, 12, 1, 5, 0, 0).unwrap(),
        "n1",
        EntryKind::Note {
            text: format!("note {i:06} {}", "x".repeat(pad)),
        },
    )
}

fn fill(dir: &Path) -> PathBuf {
    let p = dir.join("filler");
    let mut chunk = 0;
    loop {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .unwrap();
        if f.write_all(&[b'z'; 4096]).is_err() || f.sync_all().is_err() {
            break;
        }
        chunk += 1;
        assert!(chunk < 100_000, "the file system never filled");
    }
    p
}

#[test]
fn a_line_torn_by_a_full_disk_costs_only_itself() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "needs root (loop device, mount)"
    );
    let fs = SmallFs::new(512);
    let dir = fs.mount.join("state");
    std::fs::create_dir(&dir).unwrap();
    let mut j = Journal::open(&dir, Limits::default()).unwrap();
    for i in 0..10 {
        j.append(&note(i, 50)).unwrap();
    }
    let filler = fill(&fs.mount);
    // Disk full: big entries fail (possibly after writing part of themselves).
    let mut failed = 0;
    for i in 10..20 {
        if j.append(&note(i, 3000)).is_err() {
            failed += 1;
        }
    }
    assert!(failed > 0, "the full disk accepted every write");
    // Space comes back; the journal carries on.
    std::fs::remove_file(&filler).unwrap();
    for i in 20..30 {
        j.append(&note(i, 50)).unwrap();
    }
    j.sync().unwrap();
    drop(j);
    let r = read_journal(&dir).unwrap();
    let texts: Vec<String> = r
        .entries
        .iter()
        .filter_map(|e| match &e.event {
            EntryKind::Note { text } => Some(text[..11].to_string()),
            _ => None,
        })
        .collect();
    for i in (0..10).chain(20..30) {
        assert!(
            texts.contains(&format!("note {i:06}")),
            "entry {i} lost; read back {texts:?}, problems {:?}",
            r.problems
        );
    }
    assert!(
        r.problems.len() <= 1,
        "more than the torn line lost: {:?}",
        r.problems
    );
    println!(
        "{failed} writes failed on the full disk; read back {} entries, {} skipped line(s)",
        r.entries.len(),
        r.problems.len()
    );
}
