//! Alert delivery: exec alerts and webhook alerts, off the daemon's path.
//!
//! [`Dispatcher::send`] never blocks: events go into a bounded queue; a dispatcher task runs
//! at most `max_concurrent` deliveries at once, each with its own timeout; webhooks retry with
//! exponential backoff. Outcomes come back as [`AlertRecord`]s (journaled by the caller).
//!
//! - exec: the command runs in its own process group with `HADIAG_*` variables and the event
//!   JSON on stdin; after `timeout` the whole group is killed; output is read up to 4 KiB.
//! - webhook: `POST` of the event JSON (or an Alertmanager v2 `/api/v2/alerts` array) through
//!   hyper's client; 2xx is success; others and transport errors are retried.

use super::engine::AlertType;
use crate::config::{AlertAction, WebhookFormat};
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
}

impl AlertEvent {
    pub fn is_upalert(&self) -> bool {
        self.alert_type == AlertType::Upalert.token()
    }

    /// Alertmanager v2 `POST /api/v2/alerts` body: an array of one alert. A recovery sets
    /// `endsAt`, which resolves it.
    pub fn alertmanager(&self) -> serde_json::Value {
        let mut labels = serde_json::Map::new();
        labels.insert("alertname".into(), format!("hadiag_{}", self.kind).into());
        labels.insert("rule".into(), self.rule.clone().into());
        labels.insert("cluster".into(), self.cluster.clone().into());
        labels.insert("node".into(), self.node.clone().into());
        labels.insert("kind".into(), self.kind.clone().into());
        labels.insert("subject".into(), self.subject.clone().into());
        labels.insert("severity".into(), self.severity.clone().into());
        let mut a = serde_json::json!({
            "labels": labels,
            "annotations": {
                "summary": self.summary,
                "description": format!("{} (rule {}, seen by {} since {})", self.summary, self.rule, self.node, ts(&self.first_seen)),
            },
            "startsAt": ts(&self.first_seen),
        });
        if self.is_upalert() {
            a["endsAt"] = ts(&self.at).into();
        }
        if let Some(i) = &self.incident {
            a["annotations"]["incident"] = i.clone().into();
        }
        serde_json::Value::Array(vec![a])
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

/// `critical` for what takes services away, `warning` for lost redundancy, `info` otherwise.
pub fn severity(kind: &str) -> &'static str {
    match kind {
        "node_failed" | "cut_off" | "hub_failed" | "multiple_faults" => "critical",
        "attachment_failed" | "upstream_failed" | "serial_failed" | "disk_failed" => "warning",
        _ => "info",
    }
}

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
            let client =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(30))
                    .build_http::<Full<Bytes>>();
            while let Some(job) = rx.recv().await {
                let Ok(permit) = sem.clone().acquire_owned().await else {
                    break;
                };
                let rep = rep.clone();
                let client = client.clone();
                tokio::spawn(async move {
                    let mut record = deliver(&client, &job, limits).await;
                    record.delivered_at = Some(chrono::Utc::now());
                    let _ = rep.try_send(record);
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
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

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
        } => {
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
            let mut pause = limits.backoff_base;
            for attempt in 0..=*retries {
                rec.attempts = attempt + 1;
                match post(client, url, body.clone(), *timeout).await {
                    Ok(status) if (200..300).contains(&status) => {
                        rec.ok = true;
                        rec.detail = format!("HTTP {status}");
                        break;
                    }
                    Ok(status) => rec.detail = format!("HTTP {status}"),
                    Err(e) => rec.detail = e,
                }
                if attempt < *retries {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(limits.backoff_max);
                }
            }
        }
    }
    rec
}

async fn post(
    client: &HttpClient,
    url: &str,
    body: Bytes,
    timeout: Duration,
) -> Result<u16, String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("bad webhook url {url:?}: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("webhook url {url:?}: only http:// is supported"));
    }
    let req = hyper::Request::post(uri)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("hadiag/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(body))
        .map_err(|e| format!("request: {e}"))?;
    let fut = async {
        let resp = client
            .request(req)
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        let status = resp.status().as_u16();
        // Drain (bounded by the timeout) so the connection can be reused.
        let _ = resp.into_body().collect().await;
        Ok::<u16, String>(status)
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err(format!("POST {url}: timed out after {timeout:?}")),
    }
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
