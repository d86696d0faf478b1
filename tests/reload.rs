//! Reload is honest: the parts of a SIGHUP reload that live on the operators' side take effect
//! at once — a replaced API token is the only one accepted (a leaked token is revoked), and new
//! journal limits govern the very next write. (Keys, timers and the fence policy are proven on
//! real daemons in `daemon_netns.rs`.)

#[path = "obs_common/mod.rs"]
mod obs_common;

use chrono::{TimeZone, Utc};
use hadiag::core::time::Instant;
use hadiag::http::serve;
use hadiag::journal::record::{Entry, EntryKind, WallMap};
use hadiag::journal::{rotated_path, Journal, JournalHandle, Limits};
use hadiag::ops::Observer;
use obs_common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_api_token_is_in_force_at_once() {
    let wall = WallMap::new(Instant::ZERO, Utc::now());
    let obs = Observer::new(&two_node(), N1, &[], Some("leaked".into()), None, wall).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = serve(
        "127.0.0.1:0".parse().unwrap(),
        obs.api.clone(),
        async move {
            let _ = rx.await;
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr;
    let get = |token: Option<&'static str>| {
        tokio::task::spawn_blocking(move || http(addr, "GET", "/api/v1/status", token).0)
    };
    assert_eq!(get(Some("leaked")).await.unwrap(), 200);
    // What the daemon's reload does with the new configuration's token.
    obs.api.set_token(Some("fresh".into()));
    assert_eq!(
        get(Some("leaked")).await.unwrap(),
        401,
        "revoked token still works"
    );
    assert_eq!(get(Some("fresh")).await.unwrap(), 200);
    let _ = tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), server.handle).await;
}

fn note(i: usize) -> Entry {
    Entry::new(
        Utc.with_ymd_and_hms(2026, 12, 1, 4, 0, 0).unwrap(),
        "n1",
        EntryKind::Note {
            text: format!("note {i:05} {}", "x".repeat(100)),
        },
    )
}

#[test]
fn new_journal_limits_govern_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let big = Limits {
        max_bytes: 1 << 20,
        keep_files: 4,
    };
    let h = JournalHandle::spawn(Journal::open(dir.path(), big).unwrap()).unwrap();
    for i in 0..50 {
        assert!(h.record(note(i)));
    }
    h.flush();
    let live = Journal::open(dir.path(), big).unwrap().path();
    assert!(!rotated_path(&live, 1).exists(), "no rotation under 1 MiB");
    // Reload: 2 KiB files, one rotated file kept.
    assert!(h.set_limits(Limits {
        max_bytes: 2048,
        keep_files: 1,
    }));
    for i in 50..100 {
        assert!(h.record(note(i)));
    }
    h.flush();
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    assert!(
        size(&live) <= 2048,
        "live file is {} bytes after the limit went to 2048",
        size(&live)
    );
    assert!(rotated_path(&live, 1).exists());
    assert!(
        !rotated_path(&live, 2).exists(),
        "keep_files 1 keeps one rotated file"
    );
}
