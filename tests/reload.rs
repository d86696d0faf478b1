//! Reload is honest: the parts of a SIGHUP reload that live on the operators' side take effect
//! at once — a replaced API token is the only one accepted (a leaked token is revoked), and new
//! journal limits govern the very next write, and alert rules added where the start had none
//! page for the problem already going on. (Keys, timers and the fence policy are proven on
//! real daemons in `daemon_netns.rs`.)

#[path = "obs_common/mod.rs"]
mod obs_common;

use chrono::{TimeZone, Utc};
use hadiag::core::diagnosis::{Component, VerdictKind};
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

/// The daemon started without alert rules; a SIGHUP adds one. The daemon's reload hands the new
/// rules to `Observer::set_alert_rules` (as its start does), which must start the pipeline and
/// feed it the verdict in force: the ongoing node failure pages, and names its incident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_rules_added_by_a_reload_page_for_the_ongoing_problem() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("paged.json");
    let wall = WallMap::new(Instant::ZERO, Utc::now());
    let mut obs = Observer::new(&two_node(), N1, &[], None, None, wall).unwrap();
    // Start-up as the daemon does it with `alerts: []`.
    obs.set_alert_rules(Vec::new(), None);
    assert!(obs.alerts_mut().is_none(), "no rules, no pipeline");
    obs.diagnosis(&node_failed(1000));
    obs.incident_opened(&incident(
        1,
        VerdictKind::NodeFailed,
        vec![Component::Node(N2)],
    ));
    obs.tick(Instant::from_millis(1500));
    // SIGHUP with a rule.
    let rule = exec_rule(vec![
        "/bin/sh".into(),
        "-c".into(),
        format!("cat > {}.tmp && mv {0}.tmp {0}", out.display()),
    ]);
    obs.set_alert_rules(vec![rule], Some("http://127.0.0.1:9617".into()));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut ms = 2000;
    while !out.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the rule added by the reload never paged (waited 30 s)"
        );
        obs.tick(Instant::from_millis(ms));
        ms += 1000;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let page: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(page["kind"], "node_failed", "{page}");
    assert_eq!(page["subject"], "node n2", "{page}");
    assert_eq!(page["incident"], "n1-1", "{page}");
    assert_eq!(page["labels"]["node"], "n2", "{page}");
    assert_eq!(
        page["generator_url"], "http://127.0.0.1:9617/api/v1/incidents/n1-1",
        "{page}"
    );
}
