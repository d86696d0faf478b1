//! Alert rules (mon semantics) and their delivery: after / every / upalert / summary change /
//! dependency suppression on the pure engine, then real deliveries — webhooks (hadiag JSON and
//! Alertmanager v2) to a receiver on 127.0.0.1 with retry, and exec alerts writing a file.

mod obs_common;

use chrono::Utc;
use hadiag::alert::{AlertEngine, AlertPipeline, AlertType, DeliveryLimits, Trigger};
use hadiag::config::{AlertAction, AlertRule, AlertSelect, WebhookFormat};
use hadiag::core::diagnosis::{Component, Fault, FaultMode, VerdictKind};
use hadiag::core::time::Instant;
use hadiag::journal::record::{AlertRecord, WallMap};
use obs_common::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn exec_true() -> AlertAction {
    AlertAction::Exec {
        command: vec!["true".into()],
        timeout: Duration::from_secs(5),
    }
}

fn rule(name: &str, after: u32, every: Option<u64>, upalert: bool) -> AlertRule {
    AlertRule {
        name: name.into(),
        select: AlertSelect::default(),
        after,
        every: every.map(Duration::from_secs),
        upalert,
        action: exec_true(),
    }
}

fn s(secs: u64) -> Instant {
    Instant::from_millis(secs * 1000)
}

#[test]
fn after_needs_consecutive_confirmations() {
    let t = two_node();
    let mut e = AlertEngine::new(&t, vec![rule("r", 3, None, false)]);
    e.set_diagnosis(&attachment_n2a(1000), None);
    assert!(e.evaluate(s(1)).is_empty());
    assert!(e.evaluate(s(2)).is_empty());
    // Interrupted: the count starts again.
    e.set_diagnosis(&healthy(3000), None);
    assert!(e.evaluate(s(3)).is_empty());
    e.set_diagnosis(&attachment_n2a(4000), None);
    assert!(e.evaluate(s(4)).is_empty());
    assert!(e.evaluate(s(5)).is_empty());
    let n = e.evaluate(s(6));
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].alert_type, AlertType::Alert);
    assert_eq!(n[0].trigger, Trigger::First);
    assert_eq!(n[0].confirmations, 3);
    assert_eq!(n[0].first_seen, s(4));
    assert_eq!(n[0].item.subject, "attachment n2.A");
    assert_eq!(n[0].item.kind, VerdictKind::AttachmentFailed);
    // No `every`: once only.
    assert!(e.evaluate(s(7)).is_empty());
    assert!(e.evaluate(s(1000)).is_empty());
}

/// Verdict changes page `after: 1` problems at once, but confirm nothing twice: a problem
/// seen at three verdict changes within a second still waits for the periodic evaluations.
#[test]
fn verdict_changes_count_a_first_sighting_only() {
    let t = two_node();
    let mut e = AlertEngine::new(&t, vec![rule("slow", 2, None, false)]);
    e.set_diagnosis(&attachment_n2a(1000), None);
    let ms = Instant::from_millis;
    assert!(e.evaluate_on_change(ms(1000)).is_empty());
    assert!(e.evaluate_on_change(ms(1010)).is_empty());
    assert!(e.evaluate_on_change(ms(1020)).is_empty());
    let n = e.evaluate(ms(2000));
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].confirmations, 2);
    assert_eq!(n[0].first_seen, ms(1000));
    let mut fast = AlertEngine::new(&t, vec![rule("fast", 1, None, true)]);
    fast.set_diagnosis(&attachment_n2a(1000), None);
    assert_eq!(
        fast.evaluate_on_change(ms(1000)).len(),
        1,
        "after: 1 pages at once"
    );
    fast.set_diagnosis(&healthy(1100), None);
    let up = fast.evaluate_on_change(ms(1100));
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(
        up[0].trigger,
        Trigger::Recovered,
        "recoveries go out at once"
    );
}

#[test]
fn every_repeats_and_summary_change_repeats_at_once() {
    let t = two_node();
    let mut e = AlertEngine::new(&t, vec![rule("r", 1, Some(10), false)]);
    e.set_diagnosis(&attachment_n2a(1000), None);
    assert_eq!(e.evaluate(s(0)).len(), 1);
    assert!(e.evaluate(s(5)).is_empty());
    assert!(e.evaluate(s(9)).is_empty());
    let n = e.evaluate(s(10));
    assert_eq!(
        (n.len(), n[0].trigger, n[0].sent_before),
        (1, Trigger::Repeat, 1)
    );
    assert!(e.evaluate(s(11)).is_empty());
    // Same problem, new summary (the NIC went from down to silent): at once.
    let mut d = attachment_n2a(12_000);
    d.faults[0].mode = FaultMode::Silent;
    e.set_diagnosis(&d, None);
    let n = e.evaluate(s(12));
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].trigger, Trigger::Changed);
    assert!(
        n[0].item.summary.contains("silent"),
        "{}",
        n[0].item.summary
    );
    // The repeat clock restarted with the change.
    assert!(e.evaluate(s(21)).is_empty());
    assert_eq!(e.evaluate(s(22))[0].trigger, Trigger::Repeat);
}

#[test]
fn upalert_on_recovery_only_after_an_alert() {
    let t = two_node();
    let mut e = AlertEngine::new(
        &t,
        vec![rule("up", 2, None, true), rule("quiet", 1, None, false)],
    );
    e.set_diagnosis(&node_failed(1000), None);
    let n = e.evaluate(s(1));
    assert_eq!(
        n.iter().map(|n| n.rule_name.as_str()).collect::<Vec<_>>(),
        ["quiet"],
        "after=2 not reached for `up`"
    );
    e.set_diagnosis(&healthy(2000), None);
    assert!(
        e.evaluate(s(2)).is_empty(),
        "`up` never alerted, `quiet` has no upalert"
    );

    e.set_diagnosis(&node_failed(3000), None);
    e.evaluate(s(3));
    assert_eq!(
        e.evaluate(s(4)).len(),
        1,
        "`up` alerts at its 2nd confirmation"
    );
    e.set_diagnosis(&healthy(5000), None);
    let n = e.evaluate(s(5));
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(
        (n[0].rule_name.as_str(), n[0].alert_type, n[0].trigger),
        ("up", AlertType::Upalert, Trigger::Recovered)
    );
    assert!(
        n[0].item.summary.starts_with("recovered: node n2"),
        "{}",
        n[0].item.summary
    );
    assert!(e.evaluate(s(6)).is_empty(), "one upalert only");
}

#[test]
fn hub_or_upstream_suppresses_nic_and_peer_alerts_on_that_network() {
    let t = two_node();
    let mut e = AlertEngine::new(&t, vec![rule("r", 1, Some(1), true)]);
    // NIC alert first.
    e.set_diagnosis(&attachment_n2a(1000), None);
    assert_eq!(e.evaluate(s(1)).len(), 1);
    // Then the hub on A turns out to be down as well; a lossy path on A and one on B.
    let mut d = hub_and_attachment(2000);
    d.degradations = vec![
        Fault {
            component: Component::Attachment(N1, A),
            mode: FaultMode::Lossy,
        },
        Fault {
            component: Component::Attachment(N1, B),
            mode: FaultMode::Lossy,
        },
    ];
    e.set_diagnosis(&d, None);
    let n = e.evaluate(s(2));
    let subjects: Vec<(VerdictKind, String)> = n
        .iter()
        .map(|n| (n.item.kind, n.item.subject.clone()))
        .collect();
    assert_eq!(
        subjects,
        [
            (VerdictKind::HubFailed, "hub A".to_string()),
            (VerdictKind::Degraded, "attachment n1.B".to_string())
        ],
        "per-NIC and per-peer alerts on A are suppressed, B is not"
    );
    // While suppressed: no repeat and no upalert for n2.A.
    let n = e.evaluate(s(3));
    assert!(
        n.iter()
            .all(|n| n.item.subject != "attachment n2.A" && n.item.subject != "attachment n1.A"),
        "{n:?}"
    );
    // Upstream suppresses too.
    let mut u = healthy(4000);
    u.kind = VerdictKind::MultipleFaults;
    u.faults = vec![
        Fault {
            component: Component::Upstream(B),
            mode: FaultMode::Unreachable,
        },
        Fault {
            component: Component::Attachment(N2, B),
            mode: FaultMode::Down,
        },
    ];
    let mut e2 = AlertEngine::new(&t, vec![rule("r", 1, None, false)]);
    e2.set_diagnosis(&u, None);
    let n = e2.evaluate(s(4));
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].item.subject, "upstream of B");
}

#[test]
fn rules_select_kinds_and_subjects() {
    let t = two_node();
    let mut only_nodes = rule("nodes", 1, None, false);
    only_nodes.select = AlertSelect {
        kinds: vec![VerdictKind::NodeFailed],
        subjects: vec![],
    };
    let mut only_n1 = rule("n1", 1, None, false);
    only_n1.select = AlertSelect {
        kinds: vec![],
        subjects: vec!["n1".into()],
    };
    let mut net_a = rule("netA", 1, None, false);
    net_a.select = AlertSelect {
        kinds: vec![],
        subjects: vec!["A".into()],
    };
    let mut e = AlertEngine::new(&t, vec![only_nodes, only_n1, net_a]);
    e.set_diagnosis(&attachment_n2a(1000), None);
    let n = e.evaluate(s(1));
    assert_eq!(
        n.iter().map(|n| n.rule_name.as_str()).collect::<Vec<_>>(),
        ["netA"]
    );
    e.set_diagnosis(&node_failed(2000), None);
    let n = e.evaluate(s(2));
    assert_eq!(
        n.iter().map(|n| n.rule_name.as_str()).collect::<Vec<_>>(),
        ["nodes"]
    );
}

// ---- real deliveries ----

#[derive(Default)]
struct Received {
    requests: Vec<(String, serde_json::Value)>,
    fail_first: usize,
}

/// A webhook receiver on 127.0.0.1: records every POST; the first `fail_first` get a 500.
async fn receiver(
    fail_first: usize,
) -> (
    std::net::SocketAddr,
    Arc<Mutex<Received>>,
    tokio::task::JoinHandle<()>,
) {
    use http_body_util::{BodyExt, Full};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(Mutex::new(Received {
        fail_first,
        ..Default::default()
    }));
    let g = got.clone();
    let h = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let g = g.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let g = g.clone();
                        async move {
                            let path = req.uri().path().to_string();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let v: serde_json::Value =
                                serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                            let mut r = g.lock().unwrap();
                            r.requests.push((path, v));
                            let status = if r.requests.len() <= r.fail_first {
                                500
                            } else {
                                200
                            };
                            let mut resp =
                                hyper::Response::new(Full::new(bytes::Bytes::from_static(b"{}")));
                            *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, got, h)
}

/// Ticks `p` (with an advancing clock) until `want` reports arrived, or gives up after a
/// generous 60 s (a loaded CI machine must not fail this; callers print what did arrive).
async fn collect(p: &mut AlertPipeline, clock: &mut u64, want: usize) -> Vec<AlertRecord> {
    let mut out = Vec::new();
    for _ in 0..1200 {
        *clock += 50;
        out.extend(p.tick(Instant::from_millis(*clock), Utc::now(), "n1", "demo"));
        if out.len() >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_and_exec_deliveries_with_retry() {
    let (addr, got, server) = receiver(1).await;
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("alert.out");
    let script = format!(
        "cat > '{0}.json'; printf '%s|%s|%s|%s\\n' \"$HADIAG_ALERT_TYPE\" \"$HADIAG_VERDICT\" \"$HADIAG_SUBJECT\" \"$HADIAG_INCIDENT\" >> '{0}'; echo delivered",
        out_file.display()
    );
    let t = two_node();
    let mut json_rule = rule("hook-json", 1, None, true);
    json_rule.select.kinds = vec![VerdictKind::AttachmentFailed];
    json_rule.action = AlertAction::Webhook {
        url: format!("http://{addr}/hadiag"),
        format: WebhookFormat::Json,
        timeout: Duration::from_secs(5),
        retries: 2,
        options: hadiag::config::WebhookOptions {
            urls: vec![format!("http://{addr}/hadiag")],
            ..Default::default()
        },
    };
    let mut am_rule = rule("alertmanager", 1, None, true);
    am_rule.select.kinds = vec![VerdictKind::AttachmentFailed];
    am_rule.action = AlertAction::Webhook {
        url: format!("http://{addr}/api/v2/alerts"),
        format: WebhookFormat::Alertmanager,
        timeout: Duration::from_secs(5),
        retries: 2,
        options: hadiag::config::WebhookOptions {
            urls: vec![format!("http://{addr}/api/v2/alerts")],
            ..Default::default()
        },
    };
    let mut exec_rule = rule("exec", 1, None, true);
    exec_rule.select.kinds = vec![VerdictKind::AttachmentFailed];
    exec_rule.action = AlertAction::Exec {
        command: vec!["/bin/sh".into(), "-c".into(), script],
        timeout: Duration::from_secs(10),
    };
    let limits = DeliveryLimits {
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        ..Default::default()
    };
    let wall = WallMap::new(Instant::ZERO, Utc::now());
    let mut p = AlertPipeline::new(&t, vec![json_rule, am_rule, exec_rule], limits, None, wall);

    let mut clock = 0;
    p.set_diagnosis(&attachment_n2a(1000), Some("n1-4"));
    let reports = collect(&mut p, &mut clock, 3).await;
    assert_eq!(reports.len(), 3, "{reports:?}");
    assert!(
        reports.iter().all(|r| r.ok && r.alert_type == "alert"),
        "{reports:?}"
    );
    // Exactly one delivery saw the receiver's 500 and succeeded on its retry.
    let attempts: u32 = reports
        .iter()
        .filter(|r| r.channel == "webhook")
        .map(|r| r.attempts)
        .sum();
    assert_eq!(attempts, 3, "{reports:?}");
    let exec = reports.iter().find(|r| r.channel == "exec").unwrap();
    assert!(
        exec.detail.contains("exit 0") && exec.detail.contains("delivered"),
        "{exec:?}"
    );

    p.set_diagnosis(&healthy(5000), None);
    let reports = collect(&mut p, &mut clock, 3).await;
    assert_eq!(reports.len(), 3, "{reports:?}");
    assert!(
        reports.iter().all(|r| r.ok && r.alert_type == "upalert"),
        "{reports:?}"
    );

    let r = got.lock().unwrap();
    let hadiag: Vec<&serde_json::Value> = r
        .requests
        .iter()
        .filter(|(p, _)| p == "/hadiag")
        .map(|(_, v)| v)
        .collect();
    let am: Vec<&serde_json::Value> = r
        .requests
        .iter()
        .filter(|(p, _)| p == "/api/v2/alerts")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(hadiag.len() + am.len(), 5, "4 deliveries + 1 retried");
    let first = hadiag
        .iter()
        .find(|v| v["type"] == "alert")
        .expect("hadiag alert");
    assert_eq!(first["kind"], "attachment_failed");
    assert_eq!(first["subject"], "attachment n2.A");
    assert_eq!(first["incident"], "n1-4");
    assert_eq!(first["severity"], "warning");
    assert_eq!(first["node"], "n1");
    assert!(hadiag
        .iter()
        .any(|v| v["type"] == "upalert" && v["trigger"] == "recovered"));
    let fire = am
        .iter()
        .find(|v| v[0].get("endsAt").is_none())
        .expect("firing Alertmanager alert");
    assert_eq!(fire[0]["labels"]["alertname"], "HadiagAttachmentFailed");
    assert_eq!(fire[0]["labels"]["subject"], "attachment n2.A");
    assert_eq!(fire[0]["labels"]["component"], "attachment");
    assert_eq!(fire[0]["labels"]["node"], "n2");
    assert_eq!(fire[0]["labels"]["network"], "A");
    assert_eq!(fire[0]["labels"]["reporter"], "n1");
    assert!(fire[0]["startsAt"].as_str().unwrap().ends_with('Z'));
    let resolved = am
        .iter()
        .find(|v| v[0].get("endsAt").is_some())
        .expect("resolving Alertmanager alert");
    assert_eq!(resolved[0]["labels"]["alertname"], "HadiagAttachmentFailed");
    drop(r);

    // The recovery names the incident it recovers from.
    let lines = std::fs::read_to_string(&out_file).unwrap();
    assert_eq!(
        lines.lines().collect::<Vec<_>>(),
        [
            "alert|attachment_failed|attachment n2.A|n1-4",
            "upalert|attachment_failed|attachment n2.A|n1-4"
        ],
        "{lines}"
    );
    let stdin: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{}.json", out_file.display())).unwrap(),
    )
    .unwrap();
    assert_eq!(stdin["type"], "upalert");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_deliveries_are_bounded_and_reported() {
    let t = two_node();
    let mut hung = rule("hung-exec", 1, None, false);
    hung.action = AlertAction::Exec {
        command: vec!["sleep".into(), "30".into()],
        timeout: Duration::from_millis(300),
    };
    // A port nobody listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut dead = rule("dead-hook", 1, None, false);
    dead.action = AlertAction::Webhook {
        url: format!("http://127.0.0.1:{port}/x"),
        format: WebhookFormat::Json,
        timeout: Duration::from_secs(2),
        retries: 2,
        options: hadiag::config::WebhookOptions {
            urls: vec![format!("http://127.0.0.1:{port}/x")],
            ..Default::default()
        },
    };
    let mut https = rule("https", 1, None, false);
    https.action = AlertAction::Webhook {
        url: format!("https://127.0.0.1:{port}/x"),
        format: WebhookFormat::Json,
        timeout: Duration::from_secs(2),
        retries: 0,
        options: hadiag::config::WebhookOptions {
            urls: vec![format!("https://127.0.0.1:{port}/x")],
            ..Default::default()
        },
    };
    // A hook that cannot finish before the test opens its FIFO: if tick() waited for
    // deliveries it would never return, so tick() returning while this hook is still blocked
    // is the proof (by order, not by a stopwatch). A fallback opener frees it after 60 s so a
    // regression fails the test instead of hanging it.
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    let c_path = std::ffi::CString::new(gate.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path in our own temp dir.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    let released = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let fallback = {
        let (gate, released) = (gate.clone(), released.clone());
        std::thread::spawn(move || {
            for _ in 0..600 {
                if released.load(std::sync::atomic::Ordering::SeqCst) {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = std::fs::write(&gate, b"fallback\n");
            true
        })
    };
    let mut gated = rule("gated-exec", 1, None, false);
    gated.action = AlertAction::Exec {
        command: vec!["cat".into(), gate.display().to_string()],
        timeout: Duration::from_secs(120),
    };
    let limits = DeliveryLimits {
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_millis(50),
        ..Default::default()
    };
    let mut p = AlertPipeline::new(
        &t,
        vec![hung, dead, https, gated],
        limits,
        None,
        WallMap::new(Instant::ZERO, Utc::now()),
    );
    p.set_diagnosis(&node_failed(1000), None);
    // tick() itself never blocks on deliveries: it returns while the gated hook is blocked.
    let first = p.tick(Instant::from_millis(0), Utc::now(), "n1", "demo");
    assert!(first.is_empty(), "{first:?}");
    released.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        !fallback.join().unwrap(),
        "tick() returned only after the fallback released the gated hook: it waited for a delivery"
    );
    // Now release the gated hook: it completes like any other delivery.
    let opener = {
        let gate = gate.clone();
        std::thread::spawn(move || std::fs::write(&gate, b"go\n"))
    };
    let mut clock = 0;
    let reports = collect(&mut p, &mut clock, 4).await;
    opener.join().unwrap().expect("open the gate");
    assert_eq!(reports.len(), 4, "{reports:?}");
    let by = |n: &str| reports.iter().find(|r| r.rule == n).unwrap();
    assert!(
        !by("hung-exec").ok && by("hung-exec").detail.contains("timed out"),
        "{:?}",
        by("hung-exec")
    );
    assert!(
        !by("dead-hook").ok && by("dead-hook").attempts == 3,
        "{:?}",
        by("dead-hook")
    );
    assert!(
        !by("https").ok && by("https").detail.contains("127.0.0.1"),
        "{:?}",
        by("https")
    );
    assert!(by("gated-exec").ok, "{:?}", by("gated-exec"));
}

/// Issue 14: an escalation is one problem changing kind, never a recovery; a NIC problem
/// absorbed into a hub failure on its network ends as superseded.
#[test]
fn escalation_is_one_problem_changing_kind_not_a_recovery() {
    let t = two_node();
    let mut e = AlertEngine::new(&t, vec![rule("r", 1, None, true)]);
    // n2.A lossy (degraded), then down (attachment failed): same component.
    let mut lossy = healthy(1000);
    lossy.kind = VerdictKind::Degraded;
    lossy.degradations = vec![Fault {
        component: Component::Attachment(N2, A),
        mode: FaultMode::Lossy,
    }];
    e.set_diagnosis(&lossy, None);
    let n = e.evaluate(s(1));
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].item.kind, VerdictKind::Degraded);
    e.set_diagnosis(&attachment_n2a(2000), None);
    let n = e.evaluate_on_change(s(2));
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].trigger, Trigger::Escalated);
    assert_eq!(n[0].alert_type, AlertType::Alert);
    assert_eq!(n[0].item.kind, VerdictKind::AttachmentFailed);
    assert_eq!(n[0].previous_kind, Some(VerdictKind::Degraded));
    // The hub of A fails too: the NIC problem is superseded, the hub alerts.
    e.set_diagnosis(&hub(A, 3000), None);
    let n = e.evaluate_on_change(s(3));
    let got: Vec<(AlertType, Trigger, String)> = n
        .iter()
        .map(|n| (n.alert_type, n.trigger, n.item.subject.clone()))
        .collect();
    assert!(
        got.contains(&(
            AlertType::Superseded,
            Trigger::Escalated,
            "attachment n2.A".into()
        )) && got.contains(&(AlertType::Alert, Trigger::First, "hub A".into()))
            && !got.iter().any(|g| g.0 == AlertType::Upalert),
        "{got:?}"
    );
    // The hub heals: a real recovery.
    e.set_diagnosis(&healthy(4000), None);
    let n = e.evaluate_on_change(s(4));
    assert_eq!(n.len(), 1);
    assert_eq!(
        (n[0].alert_type, n[0].trigger),
        (AlertType::Upalert, Trigger::Recovered)
    );
}

/// Alertmanager rules re-send a firing alert every `resend` and resolve it even without
/// `upalert`.
#[test]
fn alertmanager_rules_resend_until_resolved() {
    let t = two_node();
    let mut r = rule("am", 1, None, false);
    r.action = AlertAction::Webhook {
        url: "http://127.0.0.1:9/api/v2/alerts".into(),
        format: WebhookFormat::Alertmanager,
        timeout: Duration::from_secs(1),
        retries: 0,
        options: hadiag::config::WebhookOptions {
            resend: Some(Duration::from_secs(60)),
            ..Default::default()
        },
    };
    let mut e = AlertEngine::new(&t, vec![r]);
    e.set_diagnosis(&node_failed(0), None);
    assert_eq!(e.evaluate(s(1))[0].trigger, Trigger::First);
    assert!(e.evaluate(s(30)).is_empty());
    let n = e.evaluate(s(61));
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].trigger, Trigger::Resend);
    e.set_diagnosis(&healthy(0), None);
    let n = e.evaluate(s(62));
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].alert_type, AlertType::Upalert);
}

/// Issue 13 item 7: a receiver that answers 200 with an endless body gets at most
/// `MAX_RESPONSE_BODY` (plus transport buffers) read; the delivery succeeds and the
/// connection is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_response_bodies_are_capped() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(Mutex::new(0usize));
    let sent2 = sent.clone();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        let chunk = format!("{:x}\r\n{}\r\n", 8192, "x".repeat(8192));
        // Stop after 256 MiB at the latest: the test must end even if the cap were missing.
        for _ in 0..32768 {
            if s.write_all(chunk.as_bytes()).is_err() {
                break;
            }
            *sent2.lock().unwrap() += 8192;
        }
    });
    let mut r = rule("big", 1, None, false);
    r.action = AlertAction::Webhook {
        url: format!("http://{addr}/x"),
        format: WebhookFormat::Json,
        timeout: Duration::from_secs(20),
        retries: 0,
        options: Default::default(),
    };
    let mut p = AlertPipeline::new(
        &two_node(),
        vec![r],
        DeliveryLimits::default(),
        None,
        WallMap::new(Instant::ZERO, Utc::now()),
    );
    p.set_diagnosis(&node_failed(1000), None);
    let mut clock = 0;
    let reports = collect(&mut p, &mut clock, 1).await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].ok, "{:?}", reports[0]);
    server.join().unwrap();
    let sent = *sent.lock().unwrap();
    println!(
        "receiver wrote {sent} bytes before the client hung up (cap {} bytes + socket buffers)",
        hadiag::alert::deliver::MAX_RESPONSE_BODY
    );
    assert!(sent < 64 << 20, "read {sent} bytes: the body is not capped");
}
