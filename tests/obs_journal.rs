//! The incident journal: rotation bounds, torn-line tolerance, and `hadiag explain` offline on
//! a journal written through the daemon's Observer.

mod obs_common;

use chrono::{TimeZone, Utc};
use hadiag::core::diagnosis::{Component, IncidentSummary, VerdictKind};
use hadiag::core::node::Event;
use hadiag::core::time::Instant;
use hadiag::core::view::Reach;
use hadiag::journal::record::{ActionRecord, Entry, EntryKind, WallMap};
use hadiag::journal::{
    read_journal, rotated_path, IncidentBook, Journal, JournalHandle, Limits, FILE_NAME,
};
use hadiag::ops::Observer;
use obs_common::*;
use std::io::Write;
use std::time::Duration;

fn note(i: usize) -> Entry {
    let ts = Utc.with_ymd_and_hms(2026, 11, 26, 3, 0, 0).unwrap()
        + chrono::Duration::milliseconds(i as i64);
    Entry::new(
        ts,
        "n1",
        EntryKind::Note {
            text: format!("note number {i:05} {}", "x".repeat(40)),
        },
    )
}

#[test]
fn timestamps_are_utc_rfc3339_with_milliseconds() {
    let line = serde_json::to_string(&note(7)).unwrap();
    assert!(
        line.contains("\"ts\":\"2026-11-26T03:00:00.007Z\""),
        "{line}"
    );
    assert!(line.contains("\"type\":\"note\""), "{line}");
    let back: Entry = serde_json::from_str(&line).unwrap();
    assert_eq!(back, note(7));
}

#[test]
fn rotation_keeps_size_bounded_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_bytes: 2000,
        keep_files: 2,
    };
    let mut j = Journal::open(dir.path(), limits).unwrap();
    let n = 200;
    for i in 0..n {
        j.append(&note(i)).unwrap();
    }
    drop(j);
    let live = dir.path().join(FILE_NAME);
    let mut total = 0;
    for k in 0..=2 {
        let p = rotated_path(&live, k);
        let len = std::fs::metadata(&p)
            .unwrap_or_else(|_| panic!("{} exists", p.display()))
            .len();
        assert!(len <= limits.max_bytes, "{} is {len} bytes", p.display());
        total += len;
    }
    assert!(
        !rotated_path(&live, 3).exists(),
        "only keep_files rotated files are kept"
    );
    assert!(total <= 3 * limits.max_bytes);

    let rep = read_journal(dir.path()).unwrap();
    assert!(rep.problems.is_empty(), "{:?}", rep.problems);
    assert_eq!(rep.files.len(), 3);
    let texts: Vec<String> = rep
        .entries
        .iter()
        .map(|e| match &e.event {
            EntryKind::Note { text } => text.clone(),
            _ => panic!("unexpected entry"),
        })
        .collect();
    // The newest entries survive, oldest first, contiguous.
    assert!(texts.len() < n && texts.len() > 10, "{}", texts.len());
    assert!(texts.last().unwrap().contains(&format!("{:05}", n - 1)));
    let first: usize = texts[0][12..17].parse().unwrap();
    for (k, t) in texts.iter().enumerate() {
        assert!(t.contains(&format!("{:05}", first + k)), "gap at {k}: {t}");
    }
    // Reading the live file path directly also picks up its rotated predecessors.
    assert_eq!(read_journal(&live).unwrap().entries.len(), texts.len());
}

#[test]
fn torn_last_line_is_tolerated_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut j = Journal::open(dir.path(), Limits::default()).unwrap();
    for i in 0..3 {
        j.append(&note(i)).unwrap();
    }
    drop(j);
    let live = dir.path().join(FILE_NAME);
    // A crash in the middle of a write.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&live)
        .unwrap();
    f.write_all(b"{\"ts\":\"2026-11-26T03:00:01.000Z\",\"node\":\"n1\",\"type\":\"inci")
        .unwrap();
    drop(f);

    // The reader skips it and says so.
    let rep = read_journal(dir.path()).unwrap();
    assert_eq!(rep.entries.len(), 3);
    assert_eq!(rep.problems.len(), 1);
    assert!(rep.problems[0].torn);
    assert_eq!(rep.problems[0].line, Some(4));
    assert!(
        rep.problems[0].to_string().contains("torn last line"),
        "{}",
        rep.problems[0]
    );

    // Reopening reports it, and new entries start on a fresh line.
    let mut j = Journal::open(dir.path(), Limits::default()).unwrap();
    let torn = j.recovered().cloned().expect("torn line reported");
    assert_eq!(torn.bytes, 57);
    j.append(&Entry::new(
        Utc::now(),
        "n1",
        EntryKind::JournalRecovered {
            file: torn.file.display().to_string(),
            torn_bytes: torn.bytes,
        },
    ))
    .unwrap();
    j.append(&note(10)).unwrap();
    drop(j);
    let rep = read_journal(dir.path()).unwrap();
    assert_eq!(rep.entries.len(), 5, "{:?}", rep.problems);
    assert_eq!(
        rep.problems.len(),
        1,
        "the torn bytes stay one skipped line"
    );
    assert!(!rep.problems[0].torn, "no longer the last line");
    assert!(matches!(
        rep.entries[3].event,
        EntryKind::JournalRecovered { torn_bytes: 57, .. }
    ));
    // And a clean reopen reports nothing.
    assert!(Journal::open(dir.path(), Limits::default())
        .unwrap()
        .recovered()
        .is_none());
}

#[test]
fn garbage_and_missing_journals_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    assert!(read_journal(&dir.path().join("nope.jsonl")).is_err());
    assert!(
        read_journal(dir.path()).is_err(),
        "empty state dir has no journal"
    );
    std::fs::write(dir.path().join(FILE_NAME), b"\xff\xfe\n{}\n[1,2]\nnull\n\n").unwrap();
    let rep = read_journal(dir.path()).unwrap();
    assert!(rep.entries.is_empty());
    assert_eq!(rep.problems.len(), 4);
}

/// n1's Observer on a journal in `dir`, started as the daemon starts it (inside a runtime).
fn started_observer(dir: &std::path::Path) -> (JournalHandle, Observer) {
    let j = Journal::open(dir, Limits::default()).unwrap();
    let torn = j.recovered().cloned();
    let handle = JournalHandle::spawn(j).unwrap();
    let wall = WallMap::new(Instant::ZERO, Utc::now());
    let obs = Observer::new(&two_node(), N1, &[], None, Some(handle.clone()), wall).unwrap();
    obs.start(torn);
    (handle, obs)
}

/// Runs `f` on n1's Observer journaling into `dir` (inside a runtime, as the daemon does),
/// then waits until the journal is on disk.
fn journal_with<T>(dir: &std::path::Path, f: impl FnOnce(&mut Observer) -> T) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let (handle, mut obs) = started_observer(dir);
    let out = f(&mut obs);
    handle.flush();
    out
}

/// Fault #4 (n2's NIC on A) as the daemon journals it, up to incident `n1-<number>` opening.
fn n2a_incident(obs: &mut Observer, number: u32) -> IncidentSummary {
    healthy_then_n2a_goes_away(obs);
    obs.diagnosis(&attachment_n2a(600));
    let inc = incident(
        number,
        VerdictKind::AttachmentFailed,
        vec![Component::Attachment(N2, A)],
    );
    obs.incident_opened(&inc);
    inc
}

/// Writes a journal as the daemon does during fault #4 and its heal.
fn write_incident_journal(dir: &std::path::Path) {
    journal_with(dir, |obs| {
        n2a_incident(obs, 3);
        obs.incident_agreed("n1-3", "n2");
        obs.action(
            Some("n1-3"),
            ActionRecord {
                action: "takeover".into(),
                target: Some("n2".into()),
                ok: false,
                exit_status: Some(3),
                duration_seconds: 1.5,
                output_head: "vip busy\n".into(),
                ..Default::default()
            },
        );
        obs.own_view(&view(
            &[
                (A, &[N2], Reach::Yes, Reach::Yes),
                (B, &[N2], Reach::Yes, Reach::Yes),
            ],
            Some((N2, true)),
        ));
        obs.diagnosis(&healthy(5000));
        obs.incident_closed(
            &incident(
                3,
                VerdictKind::AttachmentFailed,
                vec![Component::Attachment(N2, A)],
            ),
            Duration::from_millis(4400),
            None,
        );
    });
}

#[test]
fn explain_offline_from_journal() {
    let dir = tempfile::tempdir().unwrap();
    write_incident_journal(dir.path());
    // The fold sees what explain shows.
    let rep = read_journal(dir.path()).unwrap();
    assert!(rep.problems.is_empty(), "{:?}", rep.problems);
    let book = IncidentBook::replay(&rep.entries);
    let inc = book.get("n1-3").expect("incident n1-3");
    assert_eq!(inc.kind, "attachment_failed");
    assert!(inc.closed_at.is_some());
    assert!(inc.close_reason.contains("healed"));
    assert_eq!(inc.views["n2"].nets["A"].carrier, "no");

    // Append a torn line: explain must still work, and warn.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join(FILE_NAME))
        .unwrap();
    f.write_all(b"{\"ts\":\"2026-").unwrap();
    drop(f);

    let run = run_hadiag;
    let d = dir.path().to_str().unwrap();
    let (code, out, err) = run(&["explain", "--journal", d]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("torn last line"), "torn line reported: {err}");
    assert!(!out.contains('\x1b'));
    for want in [
        "incident n1-3: attachment n2.A failed",
        "closed:",
        "evidence healed",
        "agreed by: n2",
        "n2 reports carrier down on A",
        "chosen: attachment n2.A down",
        "ruled out: hub A down — n1 reaches 198.51.100.254 via A",
        "what each node saw",
        "takeover",
        "failed (exit 3)",
        "vip busy",
        "timeline",
        "no longer hears n2 on A",
        "n2 reports: carrier A: yes → no",
        "incident n1-3 closed",
    ] {
        assert!(out.contains(want), "explain lacks {want:?}:\n{out}");
    }
    // What came before the cluster was last all healthy is no lead-up.
    assert!(!out.contains("first view"), "{out}");
    println!("--- hadiag explain --journal ---\n{out}");

    let (code, out, _) = run(&["explain", "n1-3", "--journal", d, "--json"]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["id"], "n1-3");
    assert_eq!(v["actions"][0]["exit_status"], 3);

    let (code, out, _) = run(&["explain", "--list", "--journal", d]);
    assert_eq!(code, Some(0));
    assert!(out.contains("n1-3"), "{out}");

    let (code, _, err) = run(&["explain", "n1-9", "--journal", d]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("no incident n1-9") && err.contains("known: n1-3"),
        "{err}"
    );
    let (code, _, err) = run(&["explain", "not an id", "--journal", d]);
    assert_eq!(code, Some(2), "{err}");
    let (code, _, err) = run(&["explain", "--journal", "/nonexistent/hadiag"]);
    assert_eq!(code, Some(1), "{err}");
}

/// A daemon that dies with an incident open never journals its close; the next start ends it
/// (in `explain` offline and in the restarted daemon's API alike), with a reason that says so.
#[test]
fn superseded_incidents_pass_on_their_timeline_and_a_restart_ends_what_a_crash_left_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let (handle, mut obs) = started_observer(dir.path());
        obs.diagnosis(&attachment_n2a(600));
        obs.incident_opened(&incident(
            7,
            VerdictKind::AttachmentFailed,
            vec![Component::Attachment(N2, A)],
        ));
        // The peer's id wins for the same verdict: n1-7 is superseded by n2-9, whose
        // explanation must still show what led to it (recorded under n1-7).
        let mut theirs = incident(
            9,
            VerdictKind::AttachmentFailed,
            vec![Component::Attachment(N2, A)],
        );
        theirs.id.opener = N2;
        obs.incident_closed(
            &incident(
                7,
                VerdictKind::AttachmentFailed,
                vec![Component::Attachment(N2, A)],
            ),
            Duration::from_millis(300),
            Some(theirs.id),
        );
        obs.incident_opened(&theirs);
        // The crash: no close. Then the next run starts on the same journal.
        obs.start(None);
        handle.flush();
    }
    let rep = read_journal(dir.path()).unwrap();
    let book = IncidentBook::replay(&rep.entries);
    let old = book.get("n1-7").expect("incident n1-7");
    assert_eq!(old.close_reason, "superseded by n2-9");
    let r = book.get("n2-9").expect("incident n2-9");
    assert!(
        r.timeline
            .iter()
            .any(|i| i.text.starts_with("verdict: attachment n2.A")),
        "the lead-up stayed with the superseded incident: {:#?}",
        r.timeline
    );
    assert!(r.closed_at.is_some(), "still open after a restart");
    assert!(r.close_reason.contains("restarted"), "{}", r.close_reason);
    assert!(book.current().is_none());
}

/// An alert line names its incident once (the entry's own `incident`) and reads back whole,
/// delivery time included.
#[test]
fn alert_lines_read_back() {
    use hadiag::journal::record::AlertRecord;
    let at = Utc.with_ymd_and_hms(2026, 11, 26, 3, 0, 1).unwrap();
    let e = Entry::new(
        at,
        "n1",
        EntryKind::Alert {
            incident: Some("n1-3".into()),
            alert: AlertRecord {
                rule: "nic".into(),
                alert_type: "upalert".into(),
                channel: "webhook".into(),
                subject: "attachment n2.A".into(),
                ok: true,
                attempts: 1,
                detail: "HTTP 200".into(),
                incident: Some("n1-3".into()),
                delivered_at: Some(at),
            },
        },
    );
    let line = serde_json::to_string(&e).unwrap();
    assert_eq!(line.matches("\"incident\"").count(), 1, "{line}");
    let back: Entry = serde_json::from_str(&line).unwrap_or_else(|err| panic!("{err}: {line}"));
    match back.event {
        EntryKind::Alert { incident, alert } => {
            assert_eq!(incident.as_deref(), Some("n1-3"));
            assert_eq!(alert.delivered_at, Some(at));
            assert_eq!(alert.alert_type, "upalert");
        }
        other => panic!("read back as {other:?}"),
    }
}

/// Two incidents in a row, as in the demo: the second one's timeline holds neither the first
/// one's takeover nor its heal nor the hand-back that came after it closed; those stay with
/// the first.
#[test]
fn explain_timeline_is_scoped_to_its_incident() {
    let dir = tempfile::tempdir().unwrap();
    journal_with(dir.path(), |obs| {
        let first = n2a_incident(obs, 3);
        obs.event(&Event::TakeOver {
            peer: N2,
            incident: first.id,
        });
        // Heal: own view first, verdict, close; n2's healed view and the hand-back arrive after.
        let all_heard = |other| {
            view(
                &[
                    (A, &[other], Reach::Yes, Reach::Yes),
                    (B, &[other], Reach::Yes, Reach::Yes),
                ],
                Some((other, true)),
            )
        };
        obs.own_view(&all_heard(N2));
        obs.diagnosis(&healthy(5000));
        obs.incident_closed(&first, Duration::from_millis(4400), None);
        obs.peer_view(N2, &all_heard(N1), Some(Duration::from_millis(40)));
        obs.event(&Event::HandBack {
            peer: N2,
            incident: Some(first.id),
        });
        // Next row: n2 falls silent.
        obs.own_view(&view(
            &[
                (A, &[], Reach::Yes, Reach::Yes),
                (B, &[], Reach::Yes, Reach::Yes),
            ],
            Some((N2, false)),
        ));
        obs.diagnosis(&node_failed(9000));
        obs.incident_opened(&incident(
            4,
            VerdictKind::NodeFailed,
            vec![Component::Node(N2)],
        ));
    });

    let rep = read_journal(dir.path()).unwrap();
    let book = IncidentBook::replay(&rep.entries);
    let texts = |id: &str| -> Vec<String> {
        book.get(id)
            .unwrap_or_else(|| panic!("incident {id}"))
            .timeline
            .iter()
            .map(|i| i.text.clone())
            .collect()
    };
    let second = texts("n1-4");
    for leaked in [
        "taking over",
        "n1-3",
        "is back",
        "hears ",
        "n2 reports: hears ",
    ] {
        let hit = |t: &String| {
            if leaked.starts_with("hears") || leaked.starts_with("n2 reports") {
                t.starts_with(leaked)
            } else {
                t.contains(leaked)
            }
        };
        assert!(
            !second.iter().any(hit),
            "n1-4's timeline holds {leaked:?} of the previous incident: {second:#?}"
        );
    }
    for want in ["no longer hears n2 on B", "incident n1-4 opened"] {
        assert!(
            second.iter().any(|t| t.contains(want)),
            "n1-4's timeline lacks {want:?}: {second:#?}"
        );
    }
    let first = texts("n1-3");
    for want in [
        "taking over from n2 for incident n1-3",
        "incident n1-3 closed",
        "n2 is back; its services may return (incident n1-3)",
    ] {
        assert!(
            first.iter().any(|t| t.contains(want)),
            "n1-3's timeline lacks {want:?}: {first:#?}"
        );
    }
}

/// `explain --journal` reads a bounded tail: an incident in the newest 32 MiB is explained; one
/// older than that is reported as beyond the read, with the way to reach it.
#[test]
fn explain_journal_reads_a_bounded_tail() {
    let dir = tempfile::tempdir().unwrap();
    let old = tempfile::tempdir().unwrap();
    let new = tempfile::tempdir().unwrap();
    let journal_of = |d: &std::path::Path, number: u32| {
        journal_with(d, |obs| n2a_incident(obs, number));
        std::fs::read(d.join(FILE_NAME)).unwrap()
    };
    let mut rotated = journal_of(old.path(), 1);
    // 40 MiB of notes after incident n1-1.
    let pad = format!("{}\n", serde_json::to_string(&note(1)).unwrap());
    while rotated.len() < 40 << 20 {
        rotated.extend_from_slice(pad.as_bytes());
    }
    let live = dir.path().join(FILE_NAME);
    std::fs::write(rotated_path(&live, 1), &rotated).unwrap();
    std::fs::write(&live, journal_of(new.path(), 2)).unwrap();

    let explain = |args: &[&str]| run_hadiag(&[&["explain"], args].concat());
    let d = dir.path().to_str().unwrap();
    let started = std::time::Instant::now();
    let (code, out, err) = explain(&["--journal", d]);
    println!(
        "explain --journal over {} MiB: {:.2} s (reads the newest {} MiB)",
        (rotated.len() >> 20) + 1,
        started.elapsed().as_secs_f64(),
        hadiag::journal::EXPLAIN_READ_BYTES >> 20
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("incident n1-2"), "{out}");
    let (code, _, err) = explain(&["n1-1", "--journal", d]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("no incident n1-1") && err.contains("only the newest 32 MiB were read"),
        "{err}"
    );
    // The rotated file is read from its own end too: n1-1, 40 MiB back in it, is beyond...
    let r1 = rotated_path(&live, 1);
    let r1s = r1.to_str().unwrap().to_string();
    let (code, _, err) = explain(&["n1-1", "--journal", &r1s]);
    assert_eq!(code, Some(1), "n1-1 lies 40 MiB back in that file: {err}");
    // ...and within reach once it lies less than 32 MiB from that file's end.
    rotated.truncate(rotated.len() - (20 << 20));
    std::fs::write(&r1, &rotated).unwrap();
    let (code, out, err) = explain(&["n1-1", "--journal", &r1s]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("incident n1-1"), "{out}");
}
