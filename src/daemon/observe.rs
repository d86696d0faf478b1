//! The driver's single integration point with the operators' side (`crate::http`,
//! `crate::journal`, `crate::alert`): metrics, JSON API server, incident journal and alert
//! rules, all behind one [`Operators`] handle.
//!
//! Every call here is synchronous and non-blocking (H7's `Observer` copies under short locks;
//! the journal and alert deliveries run behind bounded queues on their own threads/tasks), so
//! the core's task never waits on an operator. If the operators' side cannot start (listen
//! address taken, state directory unwritable) the daemon logs it and runs without it: probing
//! and isolation matter more than the dashboards.
//!
//! Must not: decide anything, or hold core state.

use crate::config::Config;
use crate::core::node::{Event, Node};
use crate::core::observation::Observation;
use crate::core::time::Instant;
use crate::core::topology::{NodeId, Topology};
use crate::core::wire::Path;
use crate::daemon::hooks::HookReport;
use crate::http::{self, Server};
use crate::journal::record::{ActionRecord, WallMap};
use crate::journal::{for_each_recent, Journal, JournalHandle, Limits, STARTUP_READ_BYTES};
use crate::ops::Observer;
use tokio::sync::oneshot;

fn journal_limits(cfg: &Config) -> Limits {
    Limits {
        max_bytes: cfg.journal.max_bytes,
        keep_files: cfg.journal.keep_files,
    }
}

pub struct Operators {
    obs: Observer,
    /// A verdict changed since the last [`Operators::settle`].
    verdict_changed: bool,
    server: Option<(Server, oneshot::Sender<()>)>,
    /// The journal writer, for live limit changes (the observer holds another handle).
    journal: Option<JournalHandle>,
}

impl Operators {
    /// Opens the journal, builds metrics/API state and alerts, and binds the HTTP server.
    pub async fn start(
        cfg: &Config,
        topo: &Topology,
        me: NodeId,
        now: Instant,
    ) -> Option<Operators> {
        let journal = match Journal::open(&cfg.state_dir, journal_limits(cfg)) {
            Ok(j) => {
                let torn = j.recovered().cloned();
                match JournalHandle::spawn(j) {
                    Ok(h) => Some((h, torn)),
                    Err(e) => {
                        tracing::error!(error = %e, "journal thread cannot start; running without a journal");
                        None
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "journal cannot be opened; running without a journal");
                None
            }
        };
        let (journal, torn) = match journal {
            Some((h, t)) => (Some(h), t),
            None => (None, None),
        };
        let wall = WallMap::new(now, chrono::Utc::now());
        let monitors: Vec<String> = cfg.monitors.iter().map(|m| m.name.clone()).collect();
        let journal_handle = journal.clone();
        let mut obs = match Observer::new(topo, me, &monitors, cfg.api_token.clone(), journal, wall)
        {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(error = %e, "metrics cannot be registered; running without metrics/API");
                return None;
            }
        };
        // The newest STARTUP_READ_BYTES of history, streamed entry by entry into the incident
        // book: start-up time and memory do not grow with the journal.
        let started = std::time::Instant::now();
        match for_each_recent(&cfg.state_dir, STARTUP_READ_BYTES, |e| obs.restore([&e])) {
            Ok(r) => tracing::info!(
                entries = r.entries,
                skipped = r.skipped,
                bytes = r.bytes,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "incident history read back from the journal"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "previous journal unreadable; incidents before this start are not served")
            }
        }
        obs.start(torn);
        obs.set_alert_rules(cfg.alerts.clone(), Some(http::api_base(cfg.listen)));
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = match http::serve(cfg.listen, obs.api.clone(), async move {
            let _ = stop_rx.await;
        })
        .await
        {
            Ok(s) => {
                tracing::info!(listen = %s.local_addr, "metrics and API listening");
                Some((s, stop_tx))
            }
            Err(e) => {
                tracing::error!(listen = %cfg.listen, error = %e, "metrics/API server cannot listen; continuing without it");
                None
            }
        };
        Some(Operators {
            obs,
            verdict_changed: false,
            server,
            journal: journal_handle,
        })
    }

    /// The heartbeat loop's liveness behind `/healthz`.
    pub fn liveness(&self) -> std::sync::Arc<http::Liveness> {
        self.obs.api.liveness()
    }

    pub fn observe(&self, o: &Observation) {
        self.obs.observe(o);
    }

    pub fn received(&self, path: Path, body_token: &str) {
        self.obs.received(path, body_token);
    }

    pub fn rejected(&self, reason: &str) {
        self.obs.rejected(reason);
    }

    /// The verdict the node starts with, so the API and metrics never show "no verdict".
    pub fn first_verdict(&mut self, now: Instant, node: &Node) {
        self.refresh_views(now, node);
        self.obs.diagnosis(node.diagnosis());
    }

    pub fn event(&mut self, now: Instant, node: &Node, ev: &Event) {
        if matches!(
            ev,
            Event::DiagnosisChanged { .. } | Event::IncidentOpened { .. }
        ) {
            // The journal keeps these with "what each node saw": it must be the views the
            // verdict was decided on, not the ones from the last once-a-second tick.
            self.refresh_views(now, node);
        }
        self.obs.event(ev);
        if matches!(ev, Event::DiagnosisChanged { .. }) {
            self.verdict_changed = true;
        }
    }

    /// After the core's events of one step are drained: alert rules are evaluated on every
    /// verdict change as well as once a second, so `after: 1` pages at once. Not per event —
    /// the incident a verdict opens is the next event, and the page must name it.
    pub fn settle(&mut self, now: Instant) {
        if std::mem::take(&mut self.verdict_changed) {
            self.obs.verdict_changed(now);
        }
    }

    fn refresh_views(&mut self, now: Instant, node: &Node) {
        let cv = node.cluster_view(now);
        let me = node.me();
        for (&id, rep) in &cv.reports {
            if id == me {
                self.obs.own_view(&rep.view);
            } else {
                self.obs.peer_view(id, &rep.view, cv.age(id));
            }
        }
    }

    pub fn hook_finished(&self, report: &HookReport, target: Option<String>) {
        let last = report.attempts.last();
        let a = ActionRecord {
            action: report.request.hook.to_string(),
            target,
            ok: report.success,
            exit_status: last.and_then(|r| r.exit_code),
            duration_seconds: report
                .attempts
                .iter()
                .map(|r| r.duration.as_secs_f64())
                .sum(),
            timed_out: last.is_some_and(|r| r.timed_out),
            output_head: last.map(HookReport::output_head).unwrap_or_default(),
        };
        self.obs.action(Some(&report.request.incident), a);
    }

    /// About once a second: own and peer views, heartbeat path statistics, alert ticks.
    pub fn tick(&mut self, now: Instant, node: &Node) {
        self.refresh_views(now, node);
        let topo = node.topology().clone();
        let me = node.me();
        let ev = node.evidence();
        for net in topo.network_ids() {
            if topo.node(me).interface(net).is_none() {
                continue;
            }
            for peer in topo.members(net).filter(|&p| p != me) {
                let path = Path::Network(net);
                if let Some(loss) = ev.loss_ratio(now, peer, path) {
                    self.obs.link(peer, net, loss, ev.rtt(peer, path));
                }
            }
        }
        self.obs.metrics.set_incident_agreed(node.incident_agreed());
        self.obs.tick(now);
    }

    /// Applies the live parts of a reload that live here: alert rules, the API token, the
    /// journal limits.
    pub fn reload(&mut self, cfg: &Config) {
        // Rules added where the start had none start a pipeline now.
        self.obs
            .set_alert_rules(cfg.alerts.clone(), Some(http::api_base(cfg.listen)));
        self.obs.api.set_token(cfg.api_token.clone());
        if let Some(j) = &self.journal {
            j.set_limits(journal_limits(cfg));
        }
    }

    /// The result of a SIGHUP reload, applied or refused: API, `hadiag status` and metrics.
    pub fn reload_result(&self, r: http::ReloadResult) {
        self.obs.api.set_reload(r);
    }

    pub async fn stop(self) {
        self.obs.flush_journal();
        if let Some((server, stop)) = self.server {
            let _ = stop.send(());
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), server.handle).await;
        }
    }
}
