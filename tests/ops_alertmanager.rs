//! The Alertmanager lifecycle against a real Alertmanager (Debian's `prometheus-alertmanager`,
//! installed by `.ci/run`), started by the test on loopback and stopped by PID (Drop guard).
//!
//! - plain http, two receivers of which one is dead: the alert appears under the name the
//!   Prometheus rules use, with `generatorURL`; it is still firing well after Alertmanager's
//!   `resolve_timeout` (hadiag re-sends it); it resolves when the fault heals.
//! - https with a private CA (`ca_file`) and basic authentication (Alertmanager's own web
//!   config): the alert arrives; a wrong password is refused and reported.
//!
//! Timing: Alertmanager's `resolve_timeout` is 2 s and hadiag re-sends every 1 s; the test
//! waits for events with generous deadlines and asserts no durations.

mod obs_common;

use chrono::Utc;
use hadiag::alert::{AlertPipeline, DeliveryLimits};
use hadiag::config::{AlertAction, AlertRule, AlertSelect, WebhookFormat, WebhookOptions};
use hadiag::core::diagnosis::VerdictKind;
use hadiag::core::time::Instant;
use hadiag::journal::record::{AlertRecord, WallMap};
use obs_common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const AM: &str = "/usr/bin/prometheus-alertmanager";
/// bcrypt of `hadiag-test` (cost 4), for Alertmanager's `basic_auth_users`.
const PASSWORD_HASH: &str = "$2b$04$jtBL6uPFyFKNQswlC6TJx.LgHt/ldz3oOop3phcLIXZXjR1ECex0G";

/// A running Alertmanager; Drop kills it by PID and waits for it.
struct Alertmanager {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    tls: bool,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn sh(cmd: &str, dir: &Path) {
    let out = Command::new("/bin/sh")
        .args(["-c", cmd])
        .current_dir(dir)
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Alertmanager {
    fn start(tls: bool) -> Alertmanager {
        assert!(
            Path::new(AM).exists(),
            "{AM} missing: apt-get install prometheus-alertmanager (.ci/run does)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::write(
            d.join("am.yml"),
            "global:\n  resolve_timeout: 2s\nroute:\n  receiver: blackhole\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: blackhole\n",
        )
        .expect("am.yml");
        let mut args = vec![
            format!("--config.file={}", d.join("am.yml").display()),
            format!("--storage.path={}", d.join("data").display()),
            "--cluster.listen-address=".to_string(),
            "--log.level=warn".to_string(),
        ];
        if tls {
            // A private CA and a leaf for 127.0.0.1 signed by it.
            sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=hadiag-test-ca -keyout ca.key -out ca.pem 2>/dev/null", d);
            sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 -keyout leaf.key -out leaf.csr 2>/dev/null", d);
            std::fs::write(
                d.join("ext"),
                "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
            )
            .expect("ext");
            sh("openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext -out leaf.pem 2>/dev/null", d);
            std::fs::write(
                d.join("web.yml"),
                format!("tls_server_config:\n  cert_file: {0}/leaf.pem\n  key_file: {0}/leaf.key\nbasic_auth_users:\n  hadiag: '{PASSWORD_HASH}'\n", d.display()),
            )
            .expect("web.yml");
            std::fs::write(d.join("password"), "hadiag-test\n").expect("password");
            std::fs::write(d.join("wrong"), "not-it\n").expect("wrong");
            args.push(format!("--web.config.file={}", d.join("web.yml").display()));
        }
        // The port is picked free just before; a lost race shows as a failed start below.
        let port = free_port();
        args.push(format!("--web.listen-address=127.0.0.1:{port}"));
        let child = Command::new(AM)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(d.join("am.log")).expect("log"),
            ))
            .spawn()
            .expect("start alertmanager");
        let am = Alertmanager {
            child,
            port,
            dir,
            tls,
        };
        am.wait("Alertmanager ready", |am| {
            am.curl("/-/ready").is_some_and(|b| b.contains("OK"))
        });
        am
    }

    fn base(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// GET with curl (TLS and basic auth as configured); None on any failure.
    fn curl(&self, path: &str) -> Option<String> {
        let mut c = Command::new("curl");
        c.args(["-sS", "--max-time", "5", "--fail"]);
        if self.tls {
            c.arg("--cacert")
                .arg(self.dir.path().join("ca.pem"))
                .args(["-u", "hadiag:hadiag-test"]);
        }
        let out = c.arg(format!("{}{path}", self.base())).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Active (firing) alerts as Alertmanager lists them.
    fn alerts(&self) -> Vec<serde_json::Value> {
        self.curl("/api/v2/alerts?active=true&silenced=false&inhibited=false&unprocessed=true")
            .and_then(|b| serde_json::from_str::<Vec<serde_json::Value>>(&b).ok())
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a["status"]["state"] != "suppressed")
            .collect()
    }

    fn wait(&self, what: &str, mut ok: impl FnMut(&Self) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if ok(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let log = std::fs::read_to_string(self.dir.path().join("am.log")).unwrap_or_default();
        panic!(
            "waited 30 s for {what}; alerts now {:?}\nalertmanager log:\n{log}",
            self.alerts()
        );
    }
}

fn am_rule(urls: Vec<String>, options: WebhookOptions) -> AlertRule {
    AlertRule {
        name: "am".into(),
        select: AlertSelect {
            kinds: vec![VerdictKind::NodeFailed],
            subjects: vec![],
        },
        after: 1,
        every: None,
        upalert: false, // Alertmanager rules resolve regardless
        action: AlertAction::Webhook {
            url: urls[0].clone(),
            format: WebhookFormat::Alertmanager,
            timeout: Duration::from_secs(3),
            retries: 0,
            options: WebhookOptions {
                urls,
                resend: Some(Duration::from_secs(1)),
                ..options
            },
        },
    }
}

/// Drives a pipeline in real time: ticks every 200 ms for `ticks` ticks, collecting reports.
struct Driver {
    rt: tokio::runtime::Runtime,
    pipeline: AlertPipeline,
    start: std::time::Instant,
    reports: Vec<AlertRecord>,
}

impl Driver {
    fn new(rule: AlertRule) -> Driver {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let pipeline = rt.block_on(async {
            AlertPipeline::new(
                &two_node(),
                vec![rule],
                DeliveryLimits::default(),
                None,
                WallMap::new(Instant::ZERO, Utc::now()),
            )
            .with_api_base("http://127.0.0.1:9617".into())
        });
        Driver {
            rt,
            pipeline,
            start: std::time::Instant::now(),
            reports: Vec::new(),
        }
    }

    fn now(&self) -> Instant {
        Instant::from_millis(self.start.elapsed().as_millis() as u64)
    }

    fn tick(&mut self) {
        let now = self.now();
        let p = &mut self.pipeline;
        let r = self.rt.block_on(async {
            let r = p.tick(now, Utc::now(), "n1", "lab");
            tokio::time::sleep(Duration::from_millis(200)).await;
            r
        });
        self.reports.extend(r);
    }

    fn verdict(&mut self, d: &hadiag::core::classify::Diagnosis) {
        let now = self.now();
        self.pipeline.set_diagnosis(d, Some("n1-1"));
        let p = &mut self.pipeline;
        let r = self
            .rt
            .block_on(async { p.verdict_changed(now, Utc::now(), "n1", "lab") });
        self.reports.extend(r);
    }

    /// Ticks until `ok` holds (30 s at most).
    fn until(&mut self, am: &Alertmanager, what: &str, ok: impl Fn(&[serde_json::Value]) -> bool) {
        for _ in 0..150 {
            self.tick();
            if ok(&am.alerts()) {
                return;
            }
        }
        panic!(
            "waited 30 s for {what}; alertmanager lists {:?}; reports {:?}",
            am.alerts(),
            self.reports
        );
    }
}

fn is_ours(a: &serde_json::Value) -> bool {
    a["labels"]["alertname"] == "HadiagNodeFailed" && a["labels"]["subject"] == "node n2"
}

#[test]
fn alert_fires_stays_firing_past_resolve_timeout_and_resolves_on_heal() {
    let am = Alertmanager::start(false);
    // A dead receiver first: one accepting member of an HA pair is enough.
    let dead = format!("http://127.0.0.1:{}/api/v2/alerts", free_port());
    let live = format!("{}/api/v2/alerts", am.base());
    let mut d = Driver::new(am_rule(vec![dead, live], WebhookOptions::default()));
    d.verdict(&node_failed(0));
    d.until(&am, "the alert to appear", |a| a.iter().any(is_ours));
    let a = am.alerts().into_iter().find(is_ours).expect("alert");
    assert_eq!(a["labels"]["severity"], "critical", "{a}");
    assert_eq!(a["labels"]["cluster"], "lab", "{a}");
    // The subject split into labels as the Prometheus rules carry it; who saw it: reporter.
    assert_eq!(a["labels"]["reporter"], "n1", "{a}");
    assert_eq!(a["labels"]["node"], "n2", "{a}");
    assert_eq!(a["labels"]["component"], "node", "{a}");
    assert!(a["labels"].get("network").is_none(), "{a}");
    assert_eq!(
        a["generatorURL"], "http://127.0.0.1:9617/api/v1/incidents/n1-1",
        "{a}"
    );
    assert!(a["annotations"]["runbook_url"]
        .as_str()
        .is_some_and(|u| u.contains("docs/runbook.md#node-failed")));
    // 5 × resolve_timeout of re-sending: still firing.
    for _ in 0..50 {
        d.tick();
    }
    assert!(
        am.alerts().iter().any(is_ours),
        "the alert expired while the fault went on: {:?}; reports {:?}",
        am.alerts(),
        d.reports
    );
    // The delivery reports name the dead receiver and the live one; each counts as done.
    assert!(
        d.reports.iter().all(|r| r.ok) && d.reports.iter().any(|r| r.detail.contains("HTTP 200")),
        "{:?}",
        d.reports
    );
    // Heal: resolved at once (not by expiry).
    d.verdict(&healthy(0));
    d.until(&am, "the alert to resolve", |a| !a.iter().any(is_ours));
    // The delivery report comes back with a later tick.
    for _ in 0..50 {
        if d.reports.iter().any(|r| r.alert_type == "upalert") {
            break;
        }
        d.tick();
    }
    assert!(
        d.reports.iter().any(|r| r.alert_type == "upalert" && r.ok),
        "no resolve delivered: {:?}",
        d.reports
    );
}

#[test]
fn https_with_a_private_ca_and_basic_auth() {
    let am = Alertmanager::start(true);
    let url = format!("{}/api/v2/alerts", am.base());
    let dir = am.dir.path().to_path_buf();
    let opts = |password: &str| WebhookOptions {
        ca_file: Some(dir.join("ca.pem")),
        basic_auth: Some(("hadiag".into(), dir.join(password))),
        ..Default::default()
    };
    // Wrong password: refused, and the report says so.
    let mut bad = Driver::new(am_rule(vec![url.clone()], opts("wrong")));
    bad.verdict(&node_failed(0));
    for _ in 0..15 {
        bad.tick();
        if !bad.reports.is_empty() {
            break;
        }
    }
    assert!(
        bad.reports
            .iter()
            .any(|r| !r.ok && r.detail.contains("401")),
        "{:?}",
        bad.reports
    );
    // Without the CA: the certificate is not trusted.
    let mut untrusted = Driver::new(am_rule(
        vec![url.clone()],
        WebhookOptions {
            ca_file: Some(PathBuf::from("/nonexistent/ca.pem")),
            ..Default::default()
        },
    ));
    untrusted.verdict(&node_failed(0));
    for _ in 0..15 {
        untrusted.tick();
        if !untrusted.reports.is_empty() {
            break;
        }
    }
    assert!(
        untrusted
            .reports
            .iter()
            .any(|r| !r.ok && r.detail.contains("/nonexistent/ca.pem")),
        "{:?}",
        untrusted.reports
    );
    // Right CA and password: the alert arrives.
    let mut good = Driver::new(am_rule(vec![url], opts("password")));
    good.verdict(&node_failed(0));
    good.until(&am, "the alert over https", |a| a.iter().any(is_ours));
    good.verdict(&healthy(0));
    good.until(&am, "the resolve over https", |a| !a.iter().any(is_ours));
}
