//! Metrics and JSON API over a real loopback socket: every route (incl. 401/404/400/405),
//! `promtool check metrics` on a real scrape, `promtool check rules` on the shipped rules,
//! every metric used by the dashboard and the rules present in a scrape, and `hadiag status` /
//! `hadiag explain` live against the server.

mod obs_common;

use chrono::Utc;
use hadiag::alert::{AlertPipeline, DeliveryLimits};
use hadiag::core::diagnosis::{Component, VerdictKind};
use hadiag::core::observation::{DiskOutcome, EchoOutcome, MonitorOutcome, Observation, Probe};
use hadiag::core::time::Instant;
use hadiag::core::view::Reach;
use hadiag::core::wire::Path;
use hadiag::http::serve;
use hadiag::journal::record::{ActionRecord, WallMap};
use hadiag::journal::{Journal, JournalHandle, Limits};
use hadiag::ops::Observer;
use obs_common::*;
use std::net::SocketAddr;
use std::time::Duration;

const TOKEN: &str = "s3cret-token";

fn obs_at(ms: u64, probe: Probe) -> Observation {
    Observation {
        at: Instant::from_millis(ms),
        probe,
    }
}

/// Feeds an Observer like the daemon driver would during fault #4 (n2's NIC on A down).
fn feed(obs: &mut Observer) {
    let t = two_node();
    obs.observe(&obs_at(
        10,
        Probe::Carrier {
            network: A,
            up: true,
        },
    ));
    obs.observe(&obs_at(
        10,
        Probe::Carrier {
            network: B,
            up: true,
        },
    ));
    obs.observe(&obs_at(
        20,
        Probe::Reference {
            network: A,
            target: t.networks[0].references[0],
            outcome: EchoOutcome::Reply {
                rtt: Duration::from_micros(400),
            },
        },
    ));
    obs.observe(&obs_at(
        20,
        Probe::Reference {
            network: B,
            target: t.networks[1].references[0],
            outcome: EchoOutcome::Timeout,
        },
    ));
    obs.observe(&obs_at(
        30,
        Probe::Disk {
            outcome: DiskOutcome::Ok {
                latency: Duration::from_millis(2),
            },
        },
    ));
    obs.observe(&obs_at(
        30,
        Probe::SerialPort {
            peer: N2,
            open: true,
        },
    ));
    obs.observe(&obs_at(
        40,
        Probe::Monitor {
            name: "web".into(),
            outcome: MonitorOutcome {
                ok: true,
                summary: "HTTP 200".into(),
                duration: Duration::from_millis(12),
                timed_out: false,
            },
        },
    ));
    // Healthy first, then n2.A goes away.
    healthy_then_n2a_goes_away(obs);
    obs.link(N2, A, 1.0, None);
    obs.link(N2, B, 0.05, Some(Duration::from_micros(350)));
    obs.received(Path::Network(B), "heartbeat");
    obs.received(Path::Serial, "heartbeat");
    obs.rejected("bad_stamp");
    obs.rejected("replay");
    obs.rejected("Some Weird/Reason");
    obs.diagnosis(&attachment_n2a(500));
    obs.incident_opened(&incident(
        1,
        VerdictKind::AttachmentFailed,
        vec![Component::Attachment(N2, A)],
    ));
    obs.incident_agreed("n1-1", "n2");
    obs.action(
        Some("n1-1"),
        ActionRecord {
            action: "fence".into(),
            target: Some("n2".into()),
            ok: true,
            exit_status: Some(0),
            duration_seconds: 0.2,
            ..Default::default()
        },
    );
}

struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
    obs: Observer,
}

async fn start(token: Option<&str>) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let t = two_node();
    let j = JournalHandle::spawn(Journal::open(dir.path(), Limits::default()).unwrap()).unwrap();
    let wall = WallMap::new(Instant::ZERO, Utc::now());
    let mut obs = Observer::new(
        &t,
        N1,
        &["web".to_string()],
        token.map(str::to_string),
        Some(j),
        wall,
    )
    .unwrap();
    // An alert rule, so the delivery series exist (exec `true` never fires here: no tick).
    let rule = exec_rule(vec!["true".into()]);
    obs.set_alerts(AlertPipeline::new(
        &t,
        vec![rule],
        DeliveryLimits::default(),
        Some(obs.metrics.clone()),
        wall,
    ));
    obs.start(None);
    feed(&mut obs);
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
    assert!(server.local_addr.ip().is_loopback());
    Running {
        addr: server.local_addr,
        stop: Some(tx),
        handle: server.handle,
        _dir: dir,
        obs,
    }
}

impl Running {
    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(Duration::from_secs(5), &mut self.handle)
            .await
            .expect("server stops")
            .unwrap();
        drop(self.obs);
    }
}

async fn call(
    addr: SocketAddr,
    method: &'static str,
    path: &str,
    token: Option<&'static str>,
) -> (u16, String, String) {
    let path = path.to_string();
    tokio::task::spawn_blocking(move || http(addr, method, &path, token))
        .await
        .unwrap()
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_over_loopback() {
    let r = start(Some(TOKEN)).await;
    let a = r.addr;

    let (s, _, b) = call(a, "GET", "/healthz", None).await;
    assert_eq!((s, b.as_str()), (200, "ok\n"));

    let (s, h, b) = call(a, "GET", "/metrics", None).await;
    assert_eq!(s, 200, "metrics are not behind the token");
    assert!(
        h.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{h}"
    );
    assert!(b.contains("hadiag_build_info{version=\""), "{b}");

    // Token: missing and wrong → 401 with a message and WWW-Authenticate.
    for tok in [None, Some("wrong")] {
        let (s, h, b) = call(a, "GET", "/api/v1/status", tok).await;
        assert_eq!(s, 401, "{tok:?}");
        assert!(
            h.to_ascii_lowercase().contains("www-authenticate: bearer"),
            "{h}"
        );
        assert!(
            json(&b)["error"].as_str().unwrap().contains("bearer token"),
            "{b}"
        );
    }

    let (s, _, b) = call(a, "GET", "/api/v1/status", Some(TOKEN)).await;
    assert_eq!(s, 200, "{b}");
    let st = json(&b);
    assert_eq!(st["node"], "n1");
    assert_eq!(st["cluster"], "demo");
    let net_a = &st["networks"][0];
    assert_eq!(net_a["name"], "A");
    assert_eq!(net_a["references"][0]["up"], "yes");
    assert_eq!(net_a["nodes"][1]["node"], "n2");
    assert_eq!(
        net_a["nodes"][1]["heard"], false,
        "n1 no longer hears n2 on A"
    );
    assert_eq!(
        net_a["nodes"][1]["carrier"], "no",
        "n2 reports its carrier down"
    );
    assert_eq!(net_a["nodes"][1]["loss_ratio"], 1.0);
    assert_eq!(st["networks"][1]["nodes"][1]["heard"], true);
    assert_eq!(st["networks"][1]["references"][0]["up"], "no");
    assert_eq!(st["serial"][0]["port_open"], true);
    assert_eq!(st["monitors"][0]["name"], "web");
    assert_eq!(st["verdict"]["kind"], "attachment_failed");
    assert_eq!(st["incident"]["id"], "n1-1");

    let (s, _, b) = call(a, "GET", "/api/v1/diagnosis", Some(TOKEN)).await;
    assert_eq!(s, 200);
    let d = json(&b);
    assert_eq!(d["diagnosis"]["kind"], "attachment_failed");
    assert_eq!(d["diagnosis"]["subjects"][0], "attachment n2.A");
    assert!(d["diagnosis"]["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        d["diagnosis"]["rivals"][0]["explanation"].as_str().unwrap(),
        "hub A down"
    );
    assert_eq!(d["views"]["n2"]["nets"]["A"]["carrier"], "no");

    let (s, _, b) = call(a, "GET", "/api/v1/incidents?since=1h", Some(TOKEN)).await;
    assert_eq!(s, 200, "{b}");
    let l = json(&b);
    assert_eq!(l["incidents"].as_array().unwrap().len(), 1);
    assert_eq!(l["incidents"][0]["id"], "n1-1");
    let (s, _, b) = call(
        a,
        "GET",
        "/api/v1/incidents?since=2026-01-01T00:00:00Z",
        Some(TOKEN),
    )
    .await;
    assert_eq!(
        (s, json(&b)["incidents"].as_array().unwrap().len()),
        (200, 1)
    );
    let (s, _, b) = call(a, "GET", "/api/v1/incidents", Some(TOKEN)).await;
    assert_eq!(s, 200, "{b}");

    for bad in [
        "/api/v1/incidents?since=yesterday",
        "/api/v1/incidents?since=",
        "/api/v1/incidents?since=5y",
    ] {
        let (s, _, b) = call(a, "GET", bad, Some(TOKEN)).await;
        assert_eq!(s, 400, "{bad}");
        assert!(
            json(&b)["error"]
                .as_str()
                .unwrap()
                .contains("bad 'since' value"),
            "{b}"
        );
    }
    let (s, _, b) = call(a, "GET", "/api/v1/incidents?until=1h", Some(TOKEN)).await;
    assert_eq!(s, 400);
    assert!(b.contains("unknown query parameter"), "{b}");

    let (s, _, b) = call(a, "GET", "/api/v1/incidents/n1-1", Some(TOKEN)).await;
    assert_eq!(s, 200, "{b}");
    let inc = json(&b);
    assert_eq!(inc["id"], "n1-1");
    assert_eq!(inc["agreed_by"][0], "n2");
    assert_eq!(inc["actions"][0]["action"], "fence");
    assert!(
        inc["timeline"].as_array().unwrap().iter().any(|i| i["text"]
            .as_str()
            .unwrap()
            .contains("no longer hears n2 on A")),
        "{b}"
    );
    let (s, _, b) = call(a, "GET", "/api/v1/incidents/n1-99", Some(TOKEN)).await;
    assert_eq!(s, 404, "{b}");
    let (s, _, _) = call(a, "GET", "/api/v1/incidents/garbage", Some(TOKEN)).await;
    assert_eq!(s, 400);

    let (s, _, b) = call(a, "GET", "/nope", Some(TOKEN)).await;
    assert_eq!(s, 404);
    assert!(json(&b)["error"].as_str().unwrap().contains("/nope"));
    let (s, h, _) = call(a, "POST", "/api/v1/status", Some(TOKEN)).await;
    assert_eq!(s, 405);
    assert!(h.to_ascii_lowercase().contains("allow: get"), "{h}");

    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_passes_promtool_and_covers_dashboard_and_rules() {
    let r = start(None).await;
    let (s, _, scrape) = call(r.addr, "GET", "/metrics", None).await;
    assert_eq!(s, 200);
    r.stop().await;

    let (ok, out) = promtool(&["check", "metrics"], Some(&scrape));
    assert!(
        ok,
        "promtool check metrics failed:\n{out}\n--- scrape ---\n{scrape}"
    );

    // Values reflect what was fed.
    for want in [
        "hadiag_interface_carrier{device=\"eth1\",network=\"A\"} 1",
        "hadiag_heartbeat_up{network=\"A\",peer=\"n2\"} 0",
        "hadiag_heartbeat_up{network=\"B\",peer=\"n2\"} 1",
        "hadiag_heartbeat_loss_ratio{network=\"A\",peer=\"n2\"} 1",
        "hadiag_reference_up{device=\"eth2\",network=\"B\",target=\"203.0.113.254\"} 0",
        "hadiag_messages_rejected_total{reason=\"bad_stamp\"} 1",
        "hadiag_messages_rejected_total{reason=\"some_weird_reason\"} 1",
        "hadiag_verdict{component=\"attachment\",kind=\"attachment_failed\",network=\"A\",node=\"n2\",peer=\"\"} 1",
        "hadiag_reference_reachable{device=\"eth1\",network=\"A\"} 1",
        "hadiag_incident_agreed{incident=\"n1-1\"} 1",
        "hadiag_config_last_reload_successful 1",
        "hadiag_verdict_kind{kind=\"attachment_failed\"} 1",
        "hadiag_verdict_kind{kind=\"healthy\"} 0",
        "hadiag_incident_open 1",
        "hadiag_hook_runs_total{hook=\"fence\",result=\"ok\"} 1",
        "hadiag_serial_port_open{peer=\"n2\"} 1",
        "hadiag_node_info{cluster=\"demo\",node=\"n1\"} 1",
    ] {
        assert!(
            scrape.contains(want),
            "missing `{want}` in scrape:\n{scrape}"
        );
    }
    assert!(
        !scrape.contains("hadiag_verdict{component=\"\",kind=\"healthy\""),
        "old verdict series must be gone"
    );

    let root = env!("CARGO_MANIFEST_DIR");
    let rules = format!("{root}/dashboards/hadiag-rules.yml");
    let (ok, out) = promtool(&["check", "rules", &rules], None);
    assert!(ok, "promtool check rules failed:\n{out}");
    let (ok, out) = promtool(
        &[
            "test",
            "rules",
            &format!("{root}/dashboards/hadiag-rules.test.yml"),
        ],
        None,
    );
    assert!(ok, "promtool test rules failed:\n{out}");

    let dash = std::fs::read_to_string(format!("{root}/dashboards/hadiag-grafana.json")).unwrap();
    let dash_json: serde_json::Value = serde_json::from_str(&dash).unwrap();
    // Datasource is a variable, not a hard-coded uid.
    assert!(dash_json["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["type"] == "datasource"));
    assert!(!dash.contains("\"uid\": \"prometheus\""));
    // The metrics reference documents every metric a scrape shows.
    let doc = std::fs::read_to_string(format!("{root}/docs/metrics.md")).unwrap();
    let undocumented: Vec<String> = sample_names(&scrape)
        .into_iter()
        .map(|n| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s).map(str::to_string))
                .unwrap_or(n)
        })
        .filter(|n| !doc.contains(&format!("`{n}")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "docs/metrics.md lacks {undocumented:?}"
    );
    let missing = dashboard_metrics_missing_from(&scrape);
    assert!(
        missing.is_empty(),
        "used by dashboard/rules but absent from a real scrape: {missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_explain_cli_live() {
    let r = start(Some(TOKEN)).await;
    let url = format!("http://{}", r.addr);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let tf = token_file.display().to_string();
    let u = url.clone();
    let outs = tokio::task::spawn_blocking(move || {
        let run = |args: &[&str]| {
            let o = std::process::Command::new(env!("CARGO_BIN_EXE_hadiag"))
                .args(args)
                .output()
                .unwrap();
            (
                o.status.code(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        };
        vec![
            run(&["status", "--url", &u, "--token-file", &tf]),
            run(&["status", "--url", &u, "--token-file", &tf, "--json"]),
            run(&["status", "--url", &u]),
            run(&["explain", "--url", &u, "--token-file", &tf]),
            run(&[
                "explain",
                "n1-1",
                "--url",
                &u,
                "--token-file",
                &tf,
                "--json",
            ]),
            run(&["explain", "n1-7", "--url", &u, "--token-file", &tf]),
        ]
    })
    .await
    .unwrap();
    r.stop().await;

    let (code, out, err) = &outs[0];
    assert_eq!(*code, Some(0), "{err}");
    assert!(!out.contains('\x1b'), "no colour when piped:\n{out}");
    for want in [
        "node n1 of cluster demo",
        "network A",
        "network B",
        "heard by",
        "attachment n2.A failed",
        "incident: n1-1",
        "serial lines",
        "disks",
        "monitors",
        "web",
    ] {
        assert!(out.contains(want), "status lacks {want:?}:\n{out}");
    }
    println!("--- hadiag status ---\n{out}");
    let (code, out, _) = &outs[1];
    assert_eq!(*code, Some(0));
    assert_eq!(json(out)["node"], "n1");
    let (code, _, err) = &outs[2];
    assert_eq!(*code, Some(1), "no token → failure");
    assert!(err.contains("401"), "{err}");

    let (code, out, err) = &outs[3];
    assert_eq!(*code, Some(0), "{err}");
    for want in [
        "incident n1-1",
        "evidence",
        "n1 no longer hears n2 on A",
        "reasoning",
        "ruled out: hub A down — n1 reaches 198.51.100.254 via A",
        "what each node saw",
        "actions",
        "fence",
        "timeline",
        "n2 agreed on incident n1-1",
    ] {
        assert!(out.contains(want), "explain lacks {want:?}:\n{out}");
    }
    println!("--- hadiag explain ---\n{out}");
    let (code, out, _) = &outs[4];
    assert_eq!(*code, Some(0));
    assert_eq!(json(out)["id"], "n1-1");
    let (code, _, err) = &outs[5];
    assert_eq!(*code, Some(1));
    assert!(err.contains("404") || err.contains("no incident"), "{err}");
}

/// Series with the given metric name in a scrape, as `name{labels} value` lines.
fn series_of<'a>(scrape: &'a str, name: &str) -> Vec<&'a str> {
    scrape
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .collect()
}

#[test]
fn unknown_state_is_absent_until_judged_and_again_when_stale() {
    let wall = WallMap::new(Instant::ZERO, Utc::now());
    let mut obs = Observer::new(&two_node(), N1, &[], None, None, wall).unwrap();
    let judged = [
        "hadiag_interface_carrier",
        "hadiag_interface_healthy",
        "hadiag_reference_up",
        "hadiag_reference_reachable",
        "hadiag_heartbeat_up",
        "hadiag_heartbeat_loss_ratio",
        "hadiag_serial_up",
        "hadiag_serial_port_open",
        "hadiag_disk_up",
    ];
    let absent = |scrape: &str, names: &[&str]| {
        for n in names {
            let s = series_of(scrape, n);
            assert!(s.is_empty(), "{n} must be absent while unknown: {s:?}");
        }
    };
    absent(&obs.metrics.render(), &judged);
    // The warm-up view: no per-network or serial facts yet, disk unknown.
    obs.own_view(&hadiag::core::view::View::default());
    let scrape = obs.metrics.render();
    absent(&scrape, &judged);
    // Counters and histograms are there from the start (rates need their zero).
    assert!(!series_of(&scrape, "hadiag_heartbeat_rtt_seconds_count").is_empty());
    // Judged: n1 hears n2 on B only, reaches A's reference, B's is unknown (stale).
    obs.own_view(&view(
        &[
            (A, &[], Reach::Yes, Reach::Yes),
            (B, &[N2], Reach::Yes, Reach::Unknown),
        ],
        Some((N2, false)),
    ));
    let scrape = obs.metrics.render();
    for want in [
        "hadiag_heartbeat_up{network=\"A\",peer=\"n2\"} 0",
        "hadiag_heartbeat_up{network=\"B\",peer=\"n2\"} 1",
        "hadiag_interface_carrier{device=\"eth1\",network=\"A\"} 1",
        "hadiag_interface_healthy{device=\"eth1\",network=\"A\"} 1",
        "hadiag_reference_reachable{device=\"eth1\",network=\"A\"} 1",
        "hadiag_serial_up{peer=\"n2\"} 0",
        "hadiag_disk_up 1",
    ] {
        assert!(scrape.contains(want), "missing `{want}`:\n{scrape}");
    }
    assert!(
        !scrape.contains("hadiag_reference_reachable{device=\"eth2\",network=\"B\"}"),
        "B's reference is unknown: no series"
    );
    // Back to unknown (the node found it was not running): the judged series go away.
    obs.own_view(&hadiag::core::view::View::default());
    let scrape = obs.metrics.render();
    absent(
        &scrape,
        &[
            "hadiag_interface_healthy",
            "hadiag_reference_reachable",
            "hadiag_heartbeat_up",
            "hadiag_serial_up",
        ],
    );
    let (ok, out) = promtool(&["check", "metrics"], Some(&scrape));
    assert!(ok, "{out}");
}

#[test]
fn metrics_render_at_most_once_per_max_age() {
    let wall = WallMap::new(Instant::ZERO, Utc::now());
    let obs = Observer::new(&two_node(), N1, &[], None, None, wall).unwrap();
    let t0 = std::time::Instant::now();
    let first = obs.api.metrics_body(t0);
    obs.rejected("bad_stamp");
    let count = |b: &bytes::Bytes| {
        String::from_utf8_lossy(b)
            .lines()
            .find(|l| l.starts_with("hadiag_messages_rejected_total{reason=\"bad_stamp\"}"))
            .map(str::to_string)
            .unwrap()
    };
    let again = obs
        .api
        .metrics_body(t0 + hadiag::http::METRICS_MAX_AGE - Duration::from_millis(1));
    assert_eq!(
        again, first,
        "a scrape within the max age gets the cached body"
    );
    let fresh = obs.api.metrics_body(t0 + hadiag::http::METRICS_MAX_AGE);
    assert_ne!(count(&fresh), count(&first));
    assert!(count(&fresh).ends_with(" 1"), "{}", count(&fresh));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_result_in_api_metrics_and_status() {
    let r = start(Some(TOKEN)).await;
    let (_, _, b) = call(r.addr, "GET", "/api/v1/status", Some(TOKEN)).await;
    assert!(json(&b)["reload"].is_null(), "no reload yet: {b}");
    let at = Utc::now();
    r.obs.api.set_reload(hadiag::http::ReloadResult {
        at,
        outcome: "refused".into(),
        error: Some(
            "/etc/hadiag/hadiag.yaml:12:5: timing.heartbeat_interval: expected a duration like 500ms, got \"fast\"".into(),
        ),
        applied: vec![],
        refused: vec!["/etc/hadiag/hadiag.yaml:12:5: timing.heartbeat_interval: expected a duration like 500ms, got \"fast\"".into()],
        applied_total: 0,
        refused_total: 1,
    });
    let (_, _, b) = call(r.addr, "GET", "/api/v1/status", Some(TOKEN)).await;
    let st = json(&b);
    assert_eq!(st["reload"]["outcome"], "refused", "{b}");
    assert!(st["reload"]["error"]
        .as_str()
        .unwrap()
        .contains("hadiag.yaml:12:5: timing.heartbeat_interval"));
    // The cached scrape may predate the reload: render afresh.
    let scrape = r.obs.metrics.render();
    assert!(
        scrape.contains("hadiag_config_last_reload_successful 0"),
        "{scrape}"
    );
    assert!(scrape.contains("hadiag_config_reloads_total{result=\"refused\"} 1"));
    assert!(!series_of(&scrape, "hadiag_config_last_reload_timestamp_seconds").is_empty());
    let snap: hadiag::http::StatusSnapshot = serde_json::from_str(&b).unwrap();
    let text = hadiag::cli::status::render_status(&snap, &hadiag::cli::status::Style::detect(true));
    for want in [
        "last reload: refused at",
        "error: /etc/hadiag/hadiag.yaml:12:5: timing.heartbeat_interval",
        "0 applied, 1 refused since start",
    ] {
        assert!(text.contains(want), "status lacks {want:?}:\n{text}");
    }
    r.stop().await;
}
