//! Alert hooks with mon semantics.
//!
//! Two halves:
//! - [`engine`]: the pure, clock-free rule state machine (`after`, `every`, `upalert`,
//!   dependency suppression). `now` comes in; [`engine::Notification`]s come out.
//! - [`deliver`]: exec and webhook delivery on tokio tasks, bounded and never blocking.
//!
//! [`AlertPipeline`] joins them for the daemon: feed it verdicts, tick it about once a second,
//! journal the delivery reports it returns.

pub mod deliver;
pub mod engine;
pub mod names;

pub use deliver::{AlertEvent, DeliveryLimits, Dispatcher};
pub use engine::{items_from_diagnosis, AlertEngine, AlertItem, AlertType, Notification, Trigger};

use crate::config::AlertRule;
use crate::core::classify::Diagnosis;
use crate::core::time::Instant;
use crate::core::topology::Topology;
use crate::http::Metrics;
use crate::journal::record::{AlertRecord, WallMap};
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

/// Delivery reports buffered between ticks.
const REPORT_QUEUE: usize = 256;

/// Engine + dispatcher. Create inside a tokio runtime.
pub struct AlertPipeline {
    engine: AlertEngine,
    dispatcher: Dispatcher,
    reports: mpsc::Receiver<AlertRecord>,
    metrics: Option<Metrics>,
    wall: WallMap,
    /// The reporting node's API base (`http://host:port`), for `generatorURL`.
    api_base: Option<String>,
}

impl std::fmt::Debug for AlertPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertPipeline")
            .field("rules", &self.engine.rules().len())
            .finish_non_exhaustive()
    }
}

impl AlertPipeline {
    pub fn new(
        topo: &Topology,
        rules: Vec<AlertRule>,
        limits: DeliveryLimits,
        metrics: Option<Metrics>,
        wall: WallMap,
    ) -> Self {
        let (tx, rx) = mpsc::channel(REPORT_QUEUE);
        if let Some(m) = &metrics {
            let names: Vec<(String, &'static str)> = rules
                .iter()
                .map(|r| (r.name.clone(), deliver::channel_token(&r.action)))
                .collect();
            m.register_alert_rules(&names);
        }
        AlertPipeline {
            engine: AlertEngine::new(topo, rules),
            dispatcher: Dispatcher::spawn(limits, tx),
            reports: rx,
            metrics,
            wall,
            api_base: None,
        }
    }

    /// Links each alert to this node's API (`generatorURL`): the incident, else the verdict.
    pub fn with_api_base(mut self, base: String) -> Self {
        self.api_base = Some(base.trim_end_matches('/').to_string());
        self
    }

    pub fn engine(&self) -> &AlertEngine {
        &self.engine
    }

    /// Config reload.
    pub fn set_rules(&mut self, rules: Vec<AlertRule>) {
        if let Some(m) = &self.metrics {
            let names: Vec<(String, &'static str)> = rules
                .iter()
                .map(|r| (r.name.clone(), deliver::channel_token(&r.action)))
                .collect();
            m.register_alert_rules(&names);
        }
        self.engine.set_rules(rules);
    }

    /// The latest verdict (and its incident, if one is open).
    pub fn set_diagnosis(&mut self, d: &Diagnosis, incident: Option<&str>) {
        self.engine.set_diagnosis(d, incident);
    }

    /// The incident opened (or closed, `None`) for the latest verdict.
    pub fn set_incident(&mut self, incident: Option<&str>) {
        self.engine.set_incident(incident);
    }

    /// The periodic evaluation (about once a second): decides notifications and queues their
    /// delivery; returns the delivery reports that arrived since the last call.
    pub fn tick(
        &mut self,
        now: Instant,
        wall_now: DateTime<Utc>,
        node: &str,
        cluster: &str,
    ) -> Vec<AlertRecord> {
        let notes = self.engine.evaluate(now);
        self.dispatch(notes, wall_now, node, cluster)
    }

    /// The evaluation right after a verdict change ([`AlertEngine::evaluate_on_change`]).
    pub fn verdict_changed(
        &mut self,
        now: Instant,
        wall_now: DateTime<Utc>,
        node: &str,
        cluster: &str,
    ) -> Vec<AlertRecord> {
        let notes = self.engine.evaluate_on_change(now);
        self.dispatch(notes, wall_now, node, cluster)
    }

    fn dispatch(
        &mut self,
        notes: Vec<Notification>,
        wall_now: DateTime<Utc>,
        node: &str,
        cluster: &str,
    ) -> Vec<AlertRecord> {
        for n in notes {
            let Some(rule) = self.engine.rules().get(n.rule) else {
                continue;
            };
            let event = AlertEvent {
                version: 1,
                alert_type: n.alert_type.token().to_string(),
                trigger: n.trigger.token().to_string(),
                rule: n.rule_name.clone(),
                cluster: cluster.to_string(),
                node: node.to_string(),
                kind: n.item.kind.token().to_string(),
                subject: n.item.subject.clone(),
                labels: Some(n.item.labels.clone()),
                summary: n.item.summary.clone(),
                severity: deliver::severity(n.item.kind.token()).to_string(),
                incident: n.item.incident.clone(),
                first_seen: self.wall.wall(n.first_seen),
                at: wall_now,
                confirmations: n.confirmations,
                sent_before: n.sent_before,
                previous_kind: n.previous_kind.map(|k| k.token().to_string()),
                generator_url: self.api_base.as_ref().map(|b| match &n.item.incident {
                    Some(i) => format!("{b}/api/v1/incidents/{i}"),
                    None => format!("{b}/api/v1/diagnosis"),
                }),
                resend_seconds: engine::resend_of(rule).map(|d| d.as_secs().max(1)),
            };
            self.dispatcher.send(rule.action.clone(), event);
        }
        let mut out = Vec::new();
        while let Ok(r) = self.reports.try_recv() {
            if let Some(m) = &self.metrics {
                m.alert_delivered(&r.rule, &r.channel, &r.alert_type, r.ok);
            }
            out.push(r);
        }
        out
    }
}
