//! Alert delivery: exec alerts and webhook alerts, off the daemon's path.
//!
//! [`Dispatcher::send`] never blocks: events go into a bounded queue; a dispatcher task runs
//! at most `max_concurrent` deliveries at once, each with its own timeout; webhooks retry with
//! exponential backoff. Outcomes come back as [`AlertRecord`]s (journaled by the caller).
//!
//! - exec: the command runs in its own process group with `HADIAG_*` variables and the event
//!   JSON on stdin; after `timeout` the whole group is killed; output is read up to 4 KiB.
//! - webhook: `POST` of the event JSON (or an Alertmanager v2 `/api/v2/alerts` array) through
//!   hyper's client, `http://` or `https://` (rustls; the system trust store or the rule's
//!   `ca_file`), optionally with a bearer token or basic authentication read from a file at
//!   each delivery. Every URL of the rule gets the event (an Alertmanager HA pair); the
//!   delivery counts as done when one accepted it. 2xx is success; others and transport
//!   errors are retried. Response bodies are read (for connection reuse) up to
//!   [`MAX_RESPONSE_BODY`] and dropped.

use super::engine::AlertType;
use crate::config::{AlertAction, WebhookFormat, WebhookOptions};
use crate::journal::record::{ts_ms, AlertRecord};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Semaphore};

/// The alert document: webhook body (JSON format) and exec stdin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub version: u32,
    /// `alert` | `upalert`.
    #[serde(rename = "type")]
    pub alert_type: String,
    /// `first` | `repeat` | `changed` | `recovered`.
    pub trigger: String,
    pub rule: String,
    pub cluster: String,
    pub node: String,
    /// Verdict kind token.
    pub kind: String,
    pub subject: String,
    /// The subject as labels (`component`, `node`, `network`, `peer`), as the Alertmanager
    /// labels and the `hadiag_verdict` metric carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<super::names::SubjectLabels>,
    pub summary: String,
    pub severity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<String>,
    #[serde(with = "ts_ms")]
    pub first_seen: DateTime<Utc>,
    #[serde(with = "ts_ms")]
    pub at: DateTime<Utc>,
    pub confirmations: u32,
    /// Notifications sent for this problem before this one.
    pub sent_before: u32,
    /// After an escalation: the kind the problem had before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_kind: Option<String>,
    /// Where the reporting node explains the problem (its API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
    /// Alertmanager re-send period: a firing alert's `endsAt` is 4 periods ahead, so it
    /// resolves on its own only if hadiag stops sending (Prometheus does the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resend_seconds: Option<u64>,
}

impl AlertEvent {
    pub fn is_upalert(&self) -> bool {
        self.alert_type == AlertType::Upalert.token()
    }

    /// Alertmanager v2 `POST /api/v2/alerts` body. Labels follow the shipped Prometheus rules
    /// (`alertname` from [`super::names::alertname`], `severity`, `cluster`, `kind`, the
    /// subject split into `component`, `node`, `network` and `peer` (empty ones left out, as
    /// Prometheus does), `reporter` = the node that reached the verdict), plus the subject in
    /// words (`subject`). A firing alert's `endsAt` lies 4 re-send periods ahead; a recovery or a
    /// superseded problem ends now; an escalation ends the previous kind's alert and fires
    /// the new one in the same request.
    pub fn alertmanager(&self) -> serde_json::Value {
        let one = |kind: &str, ends: Option<String>, summary: &str| {
            let mut labels = serde_json::Map::new();
            labels.insert("alertname".into(), super::names::alertname(kind).into());
            labels.insert("cluster".into(), self.cluster.clone().into());
            labels.insert("reporter".into(), self.node.clone().into());
            labels.insert("kind".into(), kind.into());
            labels.insert("subject".into(), self.subject.clone().into());
            if let Some(l) = &self.labels {
                for (k, v) in super::names::SubjectLabels::NAMES.iter().zip(l.values()) {
                    if !v.is_empty() {
                        labels.insert((*k).into(), v.into());
                    }
                }
            }
            labels.insert("severity".into(), super::names::severity(kind).into());
            let mut a = serde_json::json!({
                "labels": labels,
                "annotations": {
                    "summary": summary,
                    "description": format!("{summary} (rule {}, seen by {} since {})", self.rule, self.node, ts(&self.first_seen)),
                    "rule": self.rule,
                    "runbook_url": super::names::runbook_anchor(kind),
                },
                "startsAt": ts(&self.first_seen),
            });
            if let Some(e) = ends {
                a["endsAt"] = e.into();
            }
            if let Some(i) = &self.incident {
                a["annotations"]["incident"] = i.clone().into();
            }
            if let Some(g) = &self.generator_url {
                a["generatorURL"] = g.clone().into();
            }
            a
        };
        let now = ts(&self.at);
        let mut out = Vec::new();
        if let Some(prev) = &self.previous_kind {
            out.push(one(
                prev,
                Some(now.clone()),
                &format!("escalated to {}: {}", self.kind, self.summary),
            ));
        }
        let ends = if self.alert_type == AlertType::Alert.token() {
            self.resend_seconds.map(|r| {
                ts(&(self.at
                    + chrono::Duration::seconds(
                        i64::try_from(r.saturating_mul(4)).unwrap_or(i64::MAX / 2),
                    )))
            })
        } else {
            Some(now)
        };
        out.push(one(&self.kind, ends, &self.summary));
        serde_json::Value::Array(out)
    }

    /// The `HADIAG_*` environment of an exec alert.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HADIAG_ALERT_TYPE", self.alert_type.clone()),
            ("HADIAG_ALERT_TRIGGER", self.trigger.clone()),
            ("HADIAG_RULE", self.rule.clone()),
            ("HADIAG_CLUSTER", self.cluster.clone()),
            ("HADIAG_NODE", self.node.clone()),
            ("HADIAG_VERDICT", self.kind.clone()),
            ("HADIAG_SUBJECT", self.subject.clone()),
            ("HADIAG_SUMMARY", self.summary.clone()),
            ("HADIAG_REASON", self.summary.clone()),
            ("HADIAG_SEVERITY", self.severity.clone()),
            ("HADIAG_INCIDENT", self.incident.clone().unwrap_or_default()),
            ("HADIAG_FIRST_SEEN", ts(&self.first_seen)),
            ("HADIAG_TIME", ts(&self.at)),
            ("HADIAG_CONFIRMATIONS", self.confirmations.to_string()),
        ]
    }
}

fn ts(t: &DateTime<Utc>) -> String {
    crate::journal::record::fmt_ts(t)
}

pub use super::names::severity;

/// Bounds of the delivery side.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DeliveryLimits {
    /// Deliveries running at once (exec children + HTTP requests).
    pub max_concurrent: usize,
    /// Events waiting for delivery; beyond that new events are dropped (and reported).
    pub queue: usize,
    /// First retry pause of a webhook; doubles per attempt, capped at `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for DeliveryLimits {
    fn default() -> Self {
        DeliveryLimits {
            max_concurrent: 4,
            queue: 256,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// Bytes of exec output kept for the record.
pub const OUTPUT_HEAD: usize = 4096;

struct Job {
    action: AlertAction,
    event: AlertEvent,
}

/// Cloneable, non-blocking front of the delivery task.
#[derive(Clone)]
pub struct Dispatcher {
    tx: mpsc::Sender<Job>,
    reports: mpsc::Sender<AlertRecord>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").finish_non_exhaustive()
    }
}

/// `exec` | `webhook`.
pub fn channel_token(a: &AlertAction) -> &'static str {
    match a {
        AlertAction::Exec { .. } => "exec",
        AlertAction::Webhook { .. } => "webhook",
    }
}

impl Dispatcher {
    /// Spawns the delivery task on the current tokio runtime. Outcomes go to `reports`
    /// (bounded; a full report queue drops reports, never deliveries).
    pub fn spawn(limits: DeliveryLimits, reports: mpsc::Sender<AlertRecord>) -> Dispatcher {
        let (tx, mut rx) = mpsc::channel::<Job>(limits.queue.max(1));
        let sem = Arc::new(Semaphore::new(limits.max_concurrent.max(1)));
        let rep = reports.clone();
        tokio::spawn(async move {
            // The system trust store is read once; a rule with its own CA builds its client
            // at delivery (alerts are rare, and the CA file may have been renewed).
            let client = match https_client(None) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "no system trust store: https webhooks need ca_file");
                    plain_client()
                }
            };
            while let Some(job) = rx.recv().await {
                let Ok(permit) = sem.clone().acquire_owned().await else {
                    break;
                };
                let rep = rep.clone();
                let client = client.clone();
                tokio::spawn(async move {
                    let mut record = deliver(&client, &job, limits).await;
                    record.delivered_at = Some(chrono::Utc::now());
                    // A successful keep-alive re-send is not news: not journaled, not
                    // counted as a notification. A failed one is.
                    if !(record.ok && job.event.trigger == super::engine::Trigger::Resend.token()) {
                        let _ = rep.try_send(record);
                    }
                    drop(permit);
                });
            }
        });
        Dispatcher { tx, reports }
    }

    /// Queues a delivery; never blocks. A full queue yields an immediate failure report.
    pub fn send(&self, action: AlertAction, event: AlertEvent) {
        if let Err(e) = self.tx.try_send(Job { action, event }) {
            let job = match e {
                mpsc::error::TrySendError::Full(j) | mpsc::error::TrySendError::Closed(j) => j,
            };
            let mut rec = record_of(&job);
            rec.detail = "dropped: alert queue full".to_string();
            rec.delivered_at = Some(chrono::Utc::now());
            let _ = self.reports.try_send(rec);
        }
    }
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

/// Response bytes read from a webhook receiver; the rest is dropped unread (the status is
/// all that counts, and a hostile or broken receiver must not make us buffer without end).
pub const MAX_RESPONSE_BODY: usize = 64 * 1024;

fn build(
    connector: hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
) -> HttpClient {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// A client for http:// and https://, trusting `ca_file` (PEM) or else the system store.
fn https_client(ca_file: Option<&std::path::Path>) -> Result<HttpClient, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let config = match ca_file {
        Some(f) => {
            use rustls_pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            let certs = rustls_pki_types::CertificateDer::pem_file_iter(f)
                .map_err(|e| format!("CA file {}: {e}", f.display()))?;
            for c in certs {
                let c = c.map_err(|e| format!("CA file {}: {e}", f.display()))?;
                roots
                    .add(c)
                    .map_err(|e| format!("CA file {}: {e}", f.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("CA file {}: no certificate in it", f.display()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => {
            let mut roots = rustls::RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                return Err("no certificate in the system trust store".into());
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(build(
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .build(),
    ))
}

/// A client without trusted roots (https fails with a clear error; http works).
fn plain_client() -> HttpClient {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
        });
    let connector = match config {
        Ok(c) => hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(c)
            .https_or_http()
            .enable_http1()
            .build(),
        Err(_) => hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            )
            .https_or_http()
            .enable_http1()
            .build(),
    };
    build(connector)
}

/// The `Authorization` header of a webhook, read from its secret file now.
fn authorization(o: &WebhookOptions) -> Result<Option<String>, String> {
    let read = |f: &std::path::Path| {
        std::fs::read_to_string(f)
            .map(|t| t.trim().to_string())
            .map_err(|e| format!("secret file {}: {e}", f.display()))
    };
    if let Some(f) = &o.bearer_token_file {
        return Ok(Some(format!("Bearer {}", read(f)?)));
    }
    if let Some((user, f)) = &o.basic_auth {
        use base64::Engine;
        let pair = format!("{user}:{}", read(f)?);
        return Ok(Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )));
    }
    Ok(None)
}

/// The report of `job` before any attempt: failed, no detail.
fn record_of(job: &Job) -> AlertRecord {
    AlertRecord {
        rule: job.event.rule.clone(),
        alert_type: job.event.alert_type.clone(),
        channel: channel_token(&job.action).to_string(),
        subject: job.event.subject.clone(),
        incident: job.event.incident.clone(),
        ..AlertRecord::default()
    }
}

async fn deliver(client: &HttpClient, job: &Job, limits: DeliveryLimits) -> AlertRecord {
    let mut rec = record_of(job);
    match &job.action {
        AlertAction::Exec { command, timeout } => {
            rec.attempts = 1;
            match run_exec(command, *timeout, &job.event).await {
                Ok((code, out)) => {
                    rec.ok = code == Some(0);
                    rec.detail = match code {
                        Some(c) => format!("exit {c}; {out}"),
                        None => format!("killed by a signal; {out}"),
                    };
                }
                Err(e) => rec.detail = e,
            }
        }
        AlertAction::Webhook {
            url,
            format,
            timeout,
            retries,
            options,
        } => {
            let urls = if options.urls.is_empty() {
                std::slice::from_ref(url)
            } else {
                &options.urls[..]
            };
            let body = match format {
                WebhookFormat::Json => serde_json::to_vec(&job.event),
                WebhookFormat::Alertmanager => serde_json::to_vec(&job.event.alertmanager()),
            };
            let body = match body {
                Ok(b) => Bytes::from(b),
                Err(e) => {
                    rec.detail = format!("encoding failed: {e}");
                    return rec;
                }
            };
            let own;
            let client = match &options.ca_file {
                None => client,
                Some(f) => match https_client(Some(f)) {
                    Ok(c) => {
                        own = c;
                        &own
                    }
                    Err(e) => {
                        rec.attempts = 1;
                        rec.detail = e;
                        return rec;
                    }
                },
            };
            let auth = match authorization(options) {
                Ok(a) => a,
                Err(e) => {
                    rec.attempts = 1;
                    rec.detail = e;
                    return rec;
                }
            };
            // Every receiver concurrently; each with its own retries.
            let sends = urls.iter().map(|url| {
                let (body, auth) = (body.clone(), auth.clone());
                async move {
                    let mut pause = limits.backoff_base;
                    let mut last = (0u32, false, String::new());
                    for attempt in 0..=*retries {
                        last.0 = attempt + 1;
                        match post(client, url, body.clone(), auth.as_deref(), *timeout).await {
                            Ok(status) if (200..300).contains(&status) => {
                                last.1 = true;
                                last.2 = format!("HTTP {status}");
                                break;
                            }
                            Ok(status) => last.2 = format!("HTTP {status}"),
                            Err(e) => last.2 = e,
                        }
                        if attempt < *retries {
                            tokio::time::sleep(pause).await;
                            pause = (pause * 2).min(limits.backoff_max);
                        }
                    }
                    (url.clone(), last)
                }
            });
            let results = futures_join_all(sends).await;
            rec.attempts = results.iter().map(|(_, r)| r.0).max().unwrap_or(0);
            rec.ok = results.iter().any(|(_, r)| r.1);
            rec.detail = if results.len() == 1 {
                results[0].1 .2.clone()
            } else {
                results
                    .iter()
                    .map(|(u, r)| format!("{u}: {}", r.2))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
        }
    }
    rec
}

/// Awaits every future (a handful of receivers; no extra crate for it).
async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out = Vec::with_capacity(set.len());
    // Sequential awaits would serialise the timeouts; poll them together instead.
    let mut pending: Vec<Option<std::pin::Pin<Box<F>>>> = set.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => all = false,
                }
            }
        }
        if all {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(results.into_iter().flatten());
    out
}

async fn post(
    client: &HttpClient,
    url: &str,
    body: Bytes,
    auth: Option<&str>,
    timeout: Duration,
) -> Result<u16, String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("bad webhook url {url:?}: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(format!(
            "webhook url {url:?}: only http:// and https:// are supported"
        ));
    }
    let mut req = hyper::Request::post(uri)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("hadiag/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(a) = auth {
        req = req.header(hyper::header::AUTHORIZATION, a);
    }
    let req = req
        .body(Full::new(body))
        .map_err(|e| format!("request: {e}"))?;
    let fut = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| format!("POST {url}: {}", error_chain(&e)))?;
        let status = resp.status().as_u16();
        // Drain a bounded head (so the connection can be reused); a longer body is dropped
        // with the connection.
        let _ = http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE_BODY)
            .collect()
            .await;
        Ok::<u16, String>(status)
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(format!("POST {url}: timed out after {timeout:?}")),
    }
}

/// An error with its causes (hyper's top-level message alone is "client error (Connect)").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// Runs an exec alert; returns (exit code, output head).
async fn run_exec(
    command: &[String],
    timeout: Duration,
    event: &AlertEvent,
) -> Result<(Option<i32>, String), String> {
    let Some((prog, args)) = command.split_first() else {
        return Err("empty alert command".to_string());
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    for (k, v) in event.env() {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {prog:?}: {e}"))?;
    let pid = child.id();
    let input = serde_json::to_vec(event).unwrap_or_default();
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let work = async {
        if let Some(mut s) = stdin.take() {
            // A command that ignores stdin may close it early: not an error.
            let _ = s.write_all(&input).await;
            let _ = s.shutdown().await;
        }
        let mut head = Vec::new();
        if let Some(out) = stdout.as_mut() {
            let _ = out.take(OUTPUT_HEAD as u64).read_to_end(&mut head).await;
            // Keep draining so the child never blocks on a full pipe.
            let _ = tokio::io::copy(out, &mut tokio::io::sink()).await;
        }
        let status = child.wait().await.map_err(|e| format!("wait: {e}"))?;
        Ok::<_, String>((
            status.code(),
            String::from_utf8_lossy(&head).trim().to_string(),
        ))
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => {
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                // SAFETY: plain syscall; the group was created for this child.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
            }
            Err(format!("timed out after {timeout:?}; process group killed"))
        }
    }
}
