//! Serving the operators' view of a running node: Prometheus metrics and the JSON API over
//! one hyper 1 server. The event stream that fills them (and the journal and alerts) is
//! [`crate::ops::Observer`]; this module only keeps the metrics registry and the API snapshot
//! and serves them.
//!
//! What it must not do: decide anything (the core judges), block the daemon (handlers copy
//! out of [`ApiState`] under short std locks), or know about alerts and the journal's writer.
//!
//! # How the daemon driver feeds it (through `crate::ops`)
//!
//! ```ignore
//! use hadiag::{alert, http, ops::Observer, journal::{self, Journal, JournalHandle}};
//! use hadiag::journal::record::{ActionRecord, WallMap};
//!
//! // start-up (inside the tokio runtime); `cfg: hadiag::config::Config`
//! let limits = journal::Limits { max_bytes: cfg.journal.max_bytes, keep_files: cfg.journal.keep_files };
//! let j = Journal::open(&cfg.state_dir, limits)?;          // tolerates a torn last line
//! let torn = j.recovered().cloned();
//! let wall = WallMap::new(core_now, chrono::Utc::now());   // core Instant -> UTC
//! let monitors: Vec<String> = cfg.monitors.iter().map(|m| m.name.clone()).collect();
//! let mut obs = Observer::new(&cfg.topology, me, &monitors, cfg.api_token.clone(),
//!                             Some(JournalHandle::spawn(j)?), wall)?;
//! obs.start(torn);                                          // journals `started` (+ recovery)
//! obs.set_alerts(alert::AlertPipeline::new(&cfg.topology, cfg.alerts.clone(),
//!     alert::DeliveryLimits::default(), Some(obs.metrics.clone()), wall));
//! let server = http::serve(cfg.listen, obs.api.clone(), shutdown_future).await?;
//!
//! // in the driver loop
//! obs.observe(&observation);                    // every probe Observation (before the core eats it)
//! obs.own_view(&node.own_view(now));            // after each core step (journals what changed)
//! obs.peer_view(peer, &view, Some(age));        // each peer's latest View, on receipt
//! obs.link(peer, network, loss_ratio, rtt);     // heartbeat path stats (evidence window)
//! obs.received(msg.header.path, msg.body.token());
//! obs.rejected(reason_token);                   // e.g. "bad_stamp", "replay", "malformed"
//! while let Some(ev) = node.poll_event() {
//!     obs.event(&ev);                           // verdicts, incidents, alerts, isolation notes
//!     /* run hooks for IsolateSelf / TakeOver / Fence as before, then: */
//!     obs.action(Some(&incident_ref), ActionRecord { action: "isolate".into(), ok, exit_status,
//!                duration_seconds, timed_out, output_head, target: None });
//! }
//! obs.tick(now);                                // ~1/s: alert after/every/upalert + reports
//! // SIGHUP: obs.alerts_mut().map(|a| a.set_rules(new_cfg.alerts.clone()));
//! // shutdown: drop(obs) flushes the journal thread (or journal_handle.flush()).
//! ```
//!
//! Everything above is synchronous and non-blocking. The JSON records (`DiagnosisRecord`,
//! `ViewRecord`, `Entry`, …) live in [`crate::journal::record`]; the journal reader and the
//! incident fold in [`crate::journal`]; rules and delivery in [`crate::alert`].
//!
//! # Routes
//! - `GET /metrics` — Prometheus text format (never behind the token, like node_exporter);
//!   rendered at most once a second, scrapes in between get the same body.
//! - `GET /healthz` — `ok`.
//! - `GET /api/v1/status` — [`StatusSnapshot`].
//! - `GET /api/v1/diagnosis` — `{diagnosis, views}`: the latest verdict with its reasons.
//! - `GET /api/v1/incidents?since=<RFC 3339 | 30m>` — `{incidents: [...]}`.
//! - `GET /api/v1/incidents/{id}` — one [`crate::journal::IncidentRecord`] (what `explain` shows).
//!
//! `/api/*` requires `Authorization: Bearer <token>` when a token is configured (401
//! otherwise); unknown routes 404, wrong methods 405, bad query values 400 — all with a JSON
//! `{"error": …}` message.

pub mod metrics;
pub mod server;
pub mod state;

pub use metrics::Metrics;
pub use server::{serve, Server};
pub use state::{ApiState, Liveness, ReloadResult, StatusSnapshot, METRICS_MAX_AGE};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Default metrics/API address: loopback only (exposing it is an explicit choice).
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9617);

/// The API's base URL as others should use it: an unspecified listen address (`0.0.0.0`)
/// becomes the host name.
pub fn api_base(listen: SocketAddr) -> String {
    if listen.ip().is_unspecified() {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        if !host.is_empty() {
            return format!("http://{host}:{}", listen.port());
        }
    }
    format!("http://{listen}")
}
