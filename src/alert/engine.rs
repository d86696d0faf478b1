//! The alert rule state machine (mon semantics), pure and clock-free: `now` comes in,
//! notifications come out.
//!
//! - A rule selects verdict kinds and subjects ([`crate::config::AlertSelect`]).
//! - `after N`: a problem alerts only once it has been confirmed by N consecutive
//!   evaluations: its first sighting and then one per periodic evaluation (about once a
//!   second). The driver also evaluates on every verdict change, which pages `after: 1`
//!   problems and recoveries at once but confirms nothing twice.
//! - `every D`: while the problem persists the alert repeats every D; it repeats at once
//!   when the problem's summary changes.
//! - `upalert`: when an alerted problem disappears, one recovery notification.
//! - Dependency suppression: a hub or upstream problem on network s suppresses the per-NIC
//!   (attachment) and per-peer (degraded path) problems on s — the operator gets the cause,
//!   not its symptoms. A suppressed problem neither alerts nor upalerts while suppressed.
//!
//! - Escalation: a problem is tracked per (rule, component), so the same component changing
//!   kind (a lossy NIC now down, degraded → attachment failed) is one problem escalating
//!   ([`Trigger::Escalated`], sent at once) — never a recovery. A per-NIC or per-peer problem
//!   that disappears into a hub or upstream failure of its network is [`AlertType::Superseded`]
//!   (also not a recovery).
//! - `resend` (Alertmanager webhooks, default 60 s): a firing alert is re-sent until it
//!   resolves, so Alertmanager never resolves an ongoing problem by its `resolve_timeout`; a
//!   resolve is always sent for Alertmanager rules, `upalert` or not.
//!
//! Bounded by rules × topology components.

use crate::config::AlertRule;
use crate::core::classify::{describe_fault, headline, Diagnosis};
use crate::core::diagnosis::{Component, VerdictKind};
use crate::core::time::Instant;
use crate::core::topology::{NetworkId, Topology};
use crate::journal::record::kind_of_component;
use std::collections::{BTreeMap, BTreeSet};

/// One problem an alert can be about: a verdict kind on one component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertItem {
    pub kind: VerdictKind,
    pub component: Component,
    /// Operator-facing subject, e.g. `attachment n2.A`.
    pub subject: String,
    /// The subject as labels (`component`, `node`, `network`, `peer`).
    pub labels: super::names::SubjectLabels,
    /// One line: what is wrong, e.g. `attachment n2.A down (carrier lost)`.
    pub summary: String,
    pub incident: Option<String>,
}

impl AlertItem {
    /// The network the item belongs to, for dependency suppression.
    pub fn network(&self) -> Option<NetworkId> {
        match self.component {
            Component::Attachment(_, s) | Component::Hub(s) | Component::Upstream(s) => Some(s),
            _ => None,
        }
    }
}

/// Splits a verdict into per-component problems. A single-kind verdict yields one item per
/// subject; `multiple_faults` one per fault with the kind of its component; degradations
/// yield `degraded` items (also next to a failure).
pub fn items_from_diagnosis(t: &Topology, d: &Diagnosis, incident: Option<&str>) -> Vec<AlertItem> {
    let mut out: Vec<AlertItem> = Vec::new();
    let mut push = |kind: VerdictKind, component: Component, summary: String| {
        if !out
            .iter()
            .any(|i| i.kind == kind && i.component == component)
        {
            out.push(AlertItem {
                kind,
                component,
                subject: component.describe(t),
                labels: super::names::SubjectLabels::of(t, &component),
                summary,
                incident: incident.map(str::to_string),
            });
        }
    };
    match d.kind {
        VerdictKind::Healthy => {}
        VerdictKind::Degraded => {}
        VerdictKind::MultipleFaults => {
            for f in &d.faults {
                push(
                    kind_of_component(&f.component),
                    f.component,
                    describe_fault(t, f),
                );
            }
        }
        kind => {
            let head = headline(t, d);
            for c in &d.subjects {
                // The fault's own description carries its mode, so a NIC going from `down`
                // to `silent` counts as a summary change.
                let summary = d
                    .faults
                    .iter()
                    .find(|f| f.component == *c)
                    .map_or_else(|| head.clone(), |f| describe_fault(t, f));
                push(kind, *c, summary);
            }
            if d.subjects.is_empty() {
                for f in &d.faults {
                    push(kind, f.component, describe_fault(t, f));
                }
            }
        }
    }
    for f in &d.degradations {
        push(VerdictKind::Degraded, f.component, describe_fault(t, f));
    }
    out
}

/// Recovery or problem.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertType {
    Alert,
    Upalert,
    /// The problem became part of a larger one (a NIC problem inside a hub failure): it ends
    /// without recovering.
    Superseded,
}

impl AlertType {
    pub fn token(self) -> &'static str {
        match self {
            AlertType::Alert => "alert",
            AlertType::Upalert => "upalert",
            AlertType::Superseded => "superseded",
        }
    }
}

/// Why a notification goes out.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// First alert after `after` confirmations.
    First,
    /// `every` elapsed while the problem persists.
    Repeat,
    /// The summary changed while the problem persists.
    Changed,
    /// The problem went away.
    Recovered,
    /// The same component's problem changed kind (see `previous_kind`), or it was absorbed
    /// into a hub/upstream failure.
    Escalated,
    /// `resend` elapsed (Alertmanager keep-alive).
    Resend,
}

impl Trigger {
    pub fn token(self) -> &'static str {
        match self {
            Trigger::First => "first",
            Trigger::Repeat => "repeat",
            Trigger::Changed => "changed",
            Trigger::Recovered => "recovered",
            Trigger::Escalated => "escalated",
            Trigger::Resend => "resend",
        }
    }
}

/// Whether `rule` posts to Alertmanager (which needs resends and resolves).
pub fn is_alertmanager(rule: &AlertRule) -> bool {
    matches!(
        rule.action,
        crate::config::AlertAction::Webhook {
            format: crate::config::WebhookFormat::Alertmanager,
            ..
        }
    )
}

/// The re-send period of `rule`, if it has one.
pub fn resend_of(rule: &AlertRule) -> Option<std::time::Duration> {
    match &rule.action {
        crate::config::AlertAction::Webhook {
            format: crate::config::WebhookFormat::Alertmanager,
            options,
            ..
        } => options.resend,
        _ => None,
    }
}

/// A notification to deliver, decided by the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// Index into the engine's rules.
    pub rule: usize,
    pub rule_name: String,
    pub alert_type: AlertType,
    pub trigger: Trigger,
    pub item: AlertItem,
    pub first_seen: Instant,
    /// Consecutive confirmations so far.
    pub confirmations: u32,
    /// Notifications sent for this problem before this one.
    pub sent_before: u32,
    /// The kind this problem had before an escalation ([`Trigger::Escalated`]).
    pub previous_kind: Option<VerdictKind>,
}

#[derive(Clone, Debug)]
struct KeyState {
    first_seen: Instant,
    consecutive: u32,
    alerted: bool,
    last_alert: Option<Instant>,
    last_summary: String,
    sent: u32,
    item: AlertItem,
}

type Key = (String, Component);

/// The rule engine. See the module docs.
#[derive(Clone, Debug)]
pub struct AlertEngine {
    topo: Topology,
    rules: Vec<AlertRule>,
    items: Vec<AlertItem>,
    state: BTreeMap<Key, KeyState>,
}

impl AlertEngine {
    pub fn new(topo: &Topology, rules: Vec<AlertRule>) -> Self {
        AlertEngine {
            topo: topo.clone(),
            rules,
            items: Vec::new(),
            state: BTreeMap::new(),
        }
    }

    pub fn rules(&self) -> &[AlertRule] {
        &self.rules
    }

    /// Replaces the rules (config reload). Problems of rules that keep their name keep their
    /// state, so a reload neither re-alerts nor forgets an ongoing alert.
    pub fn set_rules(&mut self, rules: Vec<AlertRule>) {
        let names: BTreeSet<String> = rules.iter().map(|r| r.name.clone()).collect();
        self.state.retain(|k, _| names.contains(&k.0));
        self.rules = rules;
    }

    /// The current problems (from the latest verdict). Takes effect at the next evaluation.
    pub fn set_items(&mut self, items: Vec<AlertItem>) {
        self.items = items;
    }

    /// Convenience: [`items_from_diagnosis`] + [`AlertEngine::set_items`].
    pub fn set_diagnosis(&mut self, d: &Diagnosis, incident: Option<&str>) {
        let items = items_from_diagnosis(&self.topo, d, incident);
        self.set_items(items);
    }

    /// The incident the current problems belong to: the core opens it just after the verdict
    /// that asks for it, so the verdict's items learn their incident here.
    pub fn set_incident(&mut self, incident: Option<&str>) {
        for i in &mut self.items {
            i.incident = incident.map(str::to_string);
        }
    }

    /// Networks whose hub or upstream is a current problem.
    fn suppressing_networks(&self) -> BTreeSet<NetworkId> {
        self.items
            .iter()
            .filter_map(|i| match i.component {
                Component::Hub(s) | Component::Upstream(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    /// Whether `item` is a symptom of a hub/upstream problem currently present.
    pub fn is_suppressed(&self, item: &AlertItem) -> bool {
        let nets = self.suppressing_networks();
        !matches!(item.component, Component::Hub(_) | Component::Upstream(_))
            && item.network().is_some_and(|s| nets.contains(&s))
    }

    /// One periodic evaluation (one confirmation of every current problem) at `now`.
    pub fn evaluate(&mut self, now: Instant) -> Vec<Notification> {
        self.run(now, true)
    }

    /// An evaluation right after a verdict change: a new problem counts its first sighting,
    /// but nothing already seen gains a confirmation — `after N` means N periodic evaluations
    /// (about N seconds), not N verdict flips a few ms apart. Recoveries, repeats on a changed
    /// summary and `after: 1` pages go out at once.
    pub fn evaluate_on_change(&mut self, now: Instant) -> Vec<Notification> {
        self.run(now, false)
    }

    fn run(&mut self, now: Instant, periodic: bool) -> Vec<Notification> {
        let suppress = self.suppressing_networks();
        let mut out = Vec::new();
        let mut present: BTreeSet<Key> = BTreeSet::new();
        for (ri, rule) in self.rules.iter().enumerate() {
            let resend = resend_of(rule);
            for item in &self.items {
                if !rule
                    .select
                    .matches(item.kind, &[item.component], &self.topo)
                {
                    continue;
                }
                let key: Key = (rule.name.clone(), item.component);
                // One problem per component: the first (most severe) item wins.
                if !present.insert(key.clone()) {
                    continue;
                }
                let suppressed =
                    !matches!(item.component, Component::Hub(_) | Component::Upstream(_))
                        && item.network().is_some_and(|s| suppress.contains(&s));
                let st = self.state.entry(key).or_insert_with(|| KeyState {
                    first_seen: now,
                    consecutive: 0,
                    alerted: false,
                    last_alert: None,
                    last_summary: item.summary.clone(),
                    sent: 0,
                    item: item.clone(),
                });
                let previous_kind = (st.item.kind != item.kind).then_some(st.item.kind);
                let escalated = previous_kind.is_some() && st.alerted;
                if !st.alerted {
                    st.item = item.clone();
                }
                if suppressed {
                    continue;
                }
                if periodic || st.consecutive == 0 {
                    st.consecutive = st.consecutive.saturating_add(1);
                }
                let due = |period: Option<std::time::Duration>| {
                    period.is_some_and(|e| {
                        st.last_alert
                            .is_none_or(|l| now.saturating_duration_since(l) >= e)
                    })
                };
                let trigger = if !st.alerted {
                    (st.consecutive >= rule.after.max(1)).then_some(Trigger::First)
                } else if escalated {
                    Some(Trigger::Escalated)
                } else if st.last_summary != item.summary {
                    Some(Trigger::Changed)
                } else if due(rule.every) {
                    Some(Trigger::Repeat)
                } else if due(resend) {
                    Some(Trigger::Resend)
                } else {
                    None
                };
                if let Some(trigger) = trigger {
                    out.push(Notification {
                        rule: ri,
                        rule_name: rule.name.clone(),
                        alert_type: AlertType::Alert,
                        trigger,
                        item: item.clone(),
                        first_seen: st.first_seen,
                        confirmations: st.consecutive,
                        sent_before: st.sent,
                        previous_kind: if escalated { previous_kind } else { None },
                    });
                    st.alerted = true;
                    st.last_alert = Some(now);
                    st.last_summary = item.summary.clone();
                    st.item = item.clone();
                    st.sent = st.sent.saturating_add(1);
                }
            }
        }
        // Gone problems: end the alerted ones (rule permitting) and forget them all. One that
        // disappeared into a hub/upstream failure of its network is superseded, not recovered.
        let gone: Vec<Key> = self
            .state
            .keys()
            .filter(|k| !present.contains(*k))
            .cloned()
            .collect();
        for key in gone {
            let Some(st) = self.state.remove(&key) else {
                continue;
            };
            let Some((ri, rule)) = self.rules.iter().enumerate().find(|(_, r)| r.name == key.0)
            else {
                continue;
            };
            if !st.alerted || !(rule.upalert || is_alertmanager(rule)) {
                continue;
            }
            let absorbed = !matches!(key.1, Component::Hub(_) | Component::Upstream(_))
                && st.item.network().is_some_and(|s| suppress.contains(&s));
            let mut item = st.item.clone();
            let (alert_type, trigger) = if absorbed {
                item.summary = format!("now part of a larger failure: {}", st.last_summary);
                (AlertType::Superseded, Trigger::Escalated)
            } else {
                item.summary = format!("recovered: {}", st.last_summary);
                (AlertType::Upalert, Trigger::Recovered)
            };
            out.push(Notification {
                rule: ri,
                rule_name: rule.name.clone(),
                alert_type,
                trigger,
                item,
                first_seen: st.first_seen,
                confirmations: st.consecutive,
                sent_before: st.sent,
                previous_kind: None,
            });
        }
        out
    }
}
