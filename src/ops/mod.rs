//! The operators' side: the one event stream of a node — probe outcomes, views, verdicts,
//! incidents, hook runs — turned into everything an operator reads: Prometheus metrics and
//! the API snapshot ([`crate::http`] serves both), the incident journal ([`crate::journal`])
//! and alert rules ([`crate::alert`]). The daemon driver feeds it through
//! `crate::daemon::observe`; tests feed it directly.
//!
//! What it must not do: decide anything (the core judges), or block the daemon: every call is
//! synchronous and non-blocking (short std locks; the journal writer and alert deliveries run
//! behind bounded queues on their own thread/tasks).

use crate::alert::{AlertPipeline, DeliveryLimits};
use crate::config::AlertRule;
use crate::core::classify::Diagnosis;
use crate::core::diagnosis::{IncidentId, IncidentSummary};
use crate::core::node::Event;
use crate::core::observation::Observation;
use crate::core::time::Instant;
use crate::core::topology::{NetworkId, NodeId, Topology};
use crate::core::view::View;
use crate::core::wire::Path;
use crate::http::{ApiState, Metrics};
use crate::journal::record::{
    incident_ref, ActionRecord, DiagnosisRecord, Entry, EntryKind, ViewRecord, WallMap,
};
use crate::journal::JournalHandle;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::Duration;

/// One handle for everything observable about this node: metrics, API state, journal and
/// alerts. See the module docs for how the driver uses it.
pub struct Observer {
    pub metrics: Metrics,
    pub api: ApiState,
    journal: Option<JournalHandle>,
    alerts: Option<AlertPipeline>,
    topo: Topology,
    me: NodeId,
    node_name: String,
    wall: WallMap,
    last_views: BTreeMap<NodeId, ViewRecord>,
    last_diagnosis: Option<DiagnosisRecord>,
    /// The verdict in force, for an alert pipeline started by a reload.
    last_verdict: Option<Diagnosis>,
    open_incident: Option<String>,
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer")
            .field("node", &self.node_name)
            .finish_non_exhaustive()
    }
}

impl Observer {
    pub fn new(
        topo: &Topology,
        me: NodeId,
        monitors: &[String],
        api_token: Option<String>,
        journal: Option<JournalHandle>,
        wall: WallMap,
    ) -> prometheus::Result<Observer> {
        let metrics = Metrics::new(topo, me, monitors)?;
        let mut api = ApiState::new(topo, me, metrics.clone(), api_token);
        if let Some(j) = &journal {
            api = api.with_journal_stats(j.stats());
        }
        Ok(Observer {
            metrics,
            api,
            journal,
            alerts: None,
            topo: topo.clone(),
            me,
            node_name: topo.node_name(me).to_string(),
            wall,
            last_views: BTreeMap::new(),
            last_diagnosis: None,
            last_verdict: None,
            open_incident: None,
        })
    }

    /// Folds a previous run's journal into the API's incident book (without journaling it
    /// again), so `/api/v1/incidents` and a live `explain` still know what happened before a
    /// restart — the incident that took a node out is the one asked about after it.
    pub fn restore<'a>(&self, entries: impl IntoIterator<Item = &'a Entry>) {
        for e in entries {
            self.api.apply(e);
        }
    }

    /// Journals `started`, and the torn line [`crate::journal::Journal::recovered`] found.
    pub fn start(&self, torn: Option<crate::journal::TornTail>) {
        self.record_now(EntryKind::Started {
            version: env!("CARGO_PKG_VERSION").to_string(),
            cluster: self.topo.cluster.clone(),
        });
        if let Some(t) = torn {
            self.record_now(EntryKind::JournalRecovered {
                file: t.file.display().to_string(),
                torn_bytes: t.bytes,
            });
        }
    }

    /// Waits until every journal entry so far is on disk (blocking; shutdown and tests).
    pub fn flush_journal(&self) {
        if let Some(j) = &self.journal {
            j.flush();
        }
    }

    /// Installs (or replaces, on reload) the alert pipeline.
    pub fn set_alerts(&mut self, alerts: AlertPipeline) {
        self.alerts = Some(alerts);
    }

    /// Installs the alert rules of a loaded or reloaded configuration: the running pipeline
    /// takes the new rules; without one (the daemon started with no rules) a pipeline starts
    /// now, fed the verdict in force, so a problem already going on is alerted too.
    /// `api_base` links each alert to this node's API (`generatorURL`). Call inside a tokio
    /// runtime (deliveries run on its tasks).
    pub fn set_alert_rules(&mut self, rules: Vec<AlertRule>, api_base: Option<String>) {
        if let Some(a) = self.alerts.as_mut() {
            a.set_rules(rules);
            return;
        }
        if rules.is_empty() {
            return;
        }
        let mut p = AlertPipeline::new(
            &self.topo,
            rules,
            DeliveryLimits::default(),
            Some(self.metrics.clone()),
            self.wall,
        );
        if let Some(b) = api_base {
            p = p.with_api_base(b);
        }
        if let Some(d) = &self.last_verdict {
            p.set_diagnosis(d, self.open_incident.as_deref());
        }
        self.alerts = Some(p);
    }

    pub fn alerts_mut(&mut self) -> Option<&mut AlertPipeline> {
        self.alerts.as_mut()
    }

    /// Core instant → UTC wall time.
    pub fn wall(&self, at: Instant) -> DateTime<Utc> {
        self.wall.wall(at)
    }

    pub fn topology(&self) -> &Topology {
        &self.topo
    }

    /// Journals an entry and folds it into the API's incident book.
    pub fn record(&self, e: Entry) {
        self.api.apply(&e);
        if let Some(j) = &self.journal {
            j.record(e);
        }
    }

    fn record_now(&self, event: EntryKind) {
        self.record(Entry::new(Utc::now(), self.node_name.clone(), event));
    }

    pub fn observe(&self, o: &Observation) {
        self.metrics.observe(o);
        self.api.observe(o);
    }

    fn view_changed(&mut self, of: NodeId, v: &View) {
        let rec = ViewRecord::from_view(&self.topo, v);
        let before = self.last_views.get(&of).cloned();
        if before.as_ref() != Some(&rec) {
            let changes = match &before {
                Some(b) => rec.changes_from(b),
                None => rec.first_sight(),
            };
            self.last_views.insert(of, rec.clone());
            if !changes.is_empty() {
                let name = self.topo.node_name(of).to_string();
                self.record_now(EntryKind::ViewChanged {
                    of: name,
                    view: rec,
                    changes,
                });
            }
        }
    }

    /// This node's own view after a core step; journals what changed.
    pub fn own_view(&mut self, v: &View) {
        self.metrics.set_view(v);
        self.api.set_own_view(v);
        self.view_changed(self.me, v);
    }

    /// A peer's latest view (as carried by its heartbeats) and its age.
    pub fn peer_view(&mut self, peer: NodeId, v: &View, age: Option<Duration>) {
        self.metrics.set_peer(peer, v, age);
        self.api.set_peer_view(peer, v, age);
        self.view_changed(peer, v);
    }

    /// Heartbeat path statistics to `peer` on `network`.
    pub fn link(&self, peer: NodeId, network: NetworkId, loss_ratio: f64, rtt: Option<Duration>) {
        self.metrics.heartbeat(peer, network, loss_ratio, rtt);
        self.api.set_link(peer, network, loss_ratio, rtt);
    }

    pub fn received(&self, path: Path, body_token: &str) {
        self.metrics.message_received(path, body_token);
    }

    pub fn rejected(&self, reason: &str) {
        self.metrics.message_rejected(reason);
    }

    /// The views of all nodes by name, as last reported (the evidence of a decision).
    pub fn views(&self) -> BTreeMap<String, ViewRecord> {
        self.api.views()
    }

    /// A new verdict (core `DiagnosisChanged`). Journals it with the evidence it was decided
    /// on (every node's latest view) and feeds the alert rules. Returns the record.
    pub fn diagnosis(&mut self, d: &Diagnosis) -> DiagnosisRecord {
        let mut rec = DiagnosisRecord::from_diagnosis(&self.topo, d, &self.wall);
        rec.incident = self.open_incident.clone();
        self.metrics.set_diagnosis(&rec, &d.subjects);
        self.api.set_diagnosis(&rec);
        if let Some(a) = self.alerts.as_mut() {
            a.set_diagnosis(d, self.open_incident.as_deref());
        }
        self.last_diagnosis = Some(rec.clone());
        self.last_verdict = Some(d.clone());
        let views = self.views();
        self.record_now(EntryKind::DiagnosisChanged {
            diagnosis: rec.clone(),
            views,
        });
        rec
    }

    /// An incident opened (core `IncidentOpened`), on the latest verdict.
    pub fn incident_opened(&mut self, incident: &IncidentSummary) {
        let id = incident_ref(&self.topo, incident.id);
        self.open_incident = Some(id.clone());
        if let Some(a) = self.alerts.as_mut() {
            a.set_incident(Some(&id));
        }
        let mut d = match &self.last_diagnosis {
            Some(d) => d.clone(),
            None => DiagnosisRecord::new(&self.topo, Utc::now(), incident.kind, &[]),
        };
        if d.kind != incident.kind.token() {
            // The incident's verdict is authoritative for its kind and subjects.
            d.kind = incident.kind.token().to_string();
            d.subjects = incident
                .subjects
                .iter()
                .map(|c| c.describe(&self.topo))
                .collect();
        }
        d.incident = Some(id.clone());
        self.api.set_diagnosis(&d);
        self.last_diagnosis = Some(d.clone());
        self.metrics.incident_opened(&d.kind);
        self.metrics.set_incident(Some((
            &id,
            &d.kind,
            Utc::now().timestamp_millis() as f64 / 1000.0,
        )));
        let views = self.views();
        self.record_now(EntryKind::IncidentOpened {
            incident: id,
            diagnosis: d,
            views,
        });
    }

    /// An incident closed (core `IncidentClosed`).
    pub fn incident_closed(
        &mut self,
        incident: &IncidentSummary,
        open_for: Duration,
        superseded_by: Option<IncidentId>,
    ) {
        let id = incident_ref(&self.topo, incident.id);
        if self.open_incident.as_deref() == Some(id.as_str()) {
            self.open_incident = None;
            if let Some(a) = self.alerts.as_mut() {
                a.set_incident(None);
            }
        }
        let superseded_by = superseded_by.map(|other| incident_ref(&self.topo, other));
        let reason = match &superseded_by {
            Some(other) => format!("superseded by {other}"),
            None => format!("evidence healed after {:.1}s", open_for.as_secs_f64()),
        };
        self.metrics.incident_closed();
        self.record_now(EntryKind::IncidentClosed {
            incident: id,
            reason,
            superseded_by,
        });
    }

    /// Feeds one core event: verdicts, incidents, alerts and state changes are recorded here;
    /// hooks (IsolateSelf, TakeOver, Fence) stay the driver's job — report their outcome
    /// with [`Observer::action`].
    pub fn event(&mut self, ev: &Event) {
        match ev {
            Event::DiagnosisChanged { diagnosis, .. } => {
                self.diagnosis(diagnosis);
            }
            Event::IncidentOpened { incident } => self.incident_opened(incident),
            Event::IncidentClosed {
                incident,
                open_for,
                superseded_by,
            } => self.incident_closed(incident, *open_for, *superseded_by),
            Event::IsolateSelf {
                incident, reason, ..
            } => {
                let id = incident_ref(&self.topo, *incident);
                self.record_now(EntryKind::Note {
                    text: format!("isolating this node for incident {id}: {reason}"),
                });
            }
            Event::TakeOver { peer, incident } => {
                let id = incident_ref(&self.topo, *incident);
                self.record_now(EntryKind::Note {
                    text: format!("taking over from {} for incident {id}", self.node(*peer)),
                });
            }
            Event::Fence { peer, incident } => {
                let id = incident_ref(&self.topo, *incident);
                self.record_now(EntryKind::Note {
                    text: format!("fencing {} for incident {id}", self.node(*peer)),
                });
            }
            // The incident is named so `explain` files the line under it, not under the
            // next incident's lead-up.
            Event::HandBack { peer, incident } => {
                self.record_now(EntryKind::Note {
                    text: format!(
                        "{} is back; its services may return{}",
                        self.node(*peer),
                        self.of_incident(*incident)
                    ),
                });
            }
            Event::Rejoined { incident } => {
                self.metrics.set_isolated(false);
                self.record_now(EntryKind::Note {
                    text: format!(
                        "left isolation; services may run again{}",
                        self.of_incident(*incident)
                    ),
                });
            }
            // A verdict change raises an alert with the verdict's own headline: the journal
            // already has it as the verdict line.
            Event::Alert(a)
                if self
                    .last_diagnosis
                    .as_ref()
                    .is_some_and(|d| d.summary == a.text) => {}
            Event::Alert(a) => {
                self.record_now(EntryKind::Note {
                    text: format!("{}: {}", format!("{:?}", a.severity).to_lowercase(), a.text),
                });
            }
        }
    }

    fn node(&self, n: NodeId) -> String {
        self.topo.node_name(n).to_string()
    }

    /// ` (incident n1-3)`, or nothing.
    fn of_incident(&self, incident: Option<IncidentId>) -> String {
        incident
            .map(|i| format!(" (incident {})", incident_ref(&self.topo, i)))
            .unwrap_or_default()
    }

    pub fn incident_agreed(&self, incident: &str, peer: &str) {
        if self.open_incident.as_deref() == Some(incident) {
            self.metrics.set_incident_agreed(true);
        }
        self.record_now(EntryKind::IncidentAgreed {
            incident: incident.to_string(),
            peer: peer.to_string(),
        });
    }

    /// A hook run (isolate, takeover, fence) finished.
    pub fn action(&self, incident: Option<&str>, a: ActionRecord) {
        self.metrics.hook_run(
            &a.action,
            a.ok,
            Duration::from_secs_f64(a.duration_seconds.max(0.0)),
        );
        if a.action == "isolate" && a.ok {
            self.metrics.set_isolated(true);
        }
        self.record_now(EntryKind::Action {
            incident: incident.map(str::to_string),
            action: a,
        });
    }

    /// Periodic tick (about once a second): alert confirmations, repeats and delivery
    /// reports (journaled).
    pub fn tick(&mut self, now: Instant) {
        self.alerts_at(now, true);
    }

    /// Right after a verdict change: pages what needs no further confirmation.
    pub fn verdict_changed(&mut self, now: Instant) {
        self.alerts_at(now, false);
    }

    fn alerts_at(&mut self, now: Instant, periodic: bool) {
        let wall = self.wall(now);
        let incident = self.open_incident.clone();
        let (node, cluster) = (&self.node_name, &self.topo.cluster);
        let reports = match self.alerts.as_mut() {
            Some(a) if periodic => a.tick(now, wall, node, cluster),
            Some(a) => a.verdict_changed(now, wall, node, cluster),
            None => return,
        };
        for r in reports {
            self.record_now(EntryKind::Alert {
                // The page's own incident: an upalert is delivered after its incident closed.
                incident: r.incident.clone().or_else(|| incident.clone()),
                alert: r,
            });
        }
    }
}
