//! The incident book: folds journal [`Entry`]s into per-incident records.
//!
//! The same fold runs live (the daemon feeds every entry it journals to the API state, which
//! serves `/api/v1/incidents`) and offline (`explain --journal` replays the file), so a live
//! and an offline `explain` of the same incident say the same thing. Pure: no I/O, no clock.
//!
//! An incident's timeline is its own: what happened while it was open, the lines that name
//! it (hooks, hand-back, rejoin — also after it closed), and a lead-up of what changed since
//! the cluster last looked healthy (a healthy verdict, or every node's view healthy) with no
//! incident open. A previous incident's takeover and heal never lead up to the next one.

use super::record::{ActionRecord, AlertRecord, DiagnosisRecord, Entry, EntryKind, ViewRecord};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Incidents kept in memory; older ones remain in the journal files (bounded memory in a
/// long-running daemon).
pub const MAX_INCIDENTS: usize = 256;
/// Timeline lines kept per incident (a flapping link must not grow it without bound).
pub const MAX_TIMELINE: usize = 256;
/// Actions and alerts kept per incident.
pub const MAX_ACTIONS: usize = 64;
/// View changes remembered before an incident opens, to show what led there.
pub const LEAD_UP: usize = 32;

/// One line of an incident's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineItem {
    #[serde(with = "super::record::ts_ms")]
    pub at: DateTime<Utc>,
    /// The node that saw or did it.
    pub node: String,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimedAction {
    #[serde(with = "super::record::ts_ms")]
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub action: ActionRecord,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimedAlert {
    #[serde(with = "super::record::ts_ms")]
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub alert: AlertRecord,
}

/// Everything known about one incident: what `explain` prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentRecord {
    pub id: String,
    pub kind: String,
    pub subjects: Vec<String>,
    pub summary: String,
    #[serde(with = "super::record::ts_ms")]
    pub opened_at: DateTime<Utc>,
    #[serde(default, with = "super::record::opt_ts_ms")]
    pub closed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub close_reason: String,
    /// The node whose journal this record comes from.
    pub recorded_by: String,
    /// The verdict the incident was opened on.
    pub diagnosis: DiagnosisRecord,
    /// The latest verdict attached to the incident (may refine the opening one).
    pub latest: DiagnosisRecord,
    /// The evidence decided on: node name → its view.
    #[serde(default)]
    pub views: BTreeMap<String, ViewRecord>,
    /// Peers that agreed (acked) the verdict.
    #[serde(default)]
    pub agreed_by: Vec<String>,
    #[serde(default)]
    pub actions: Vec<TimedAction>,
    #[serde(default)]
    pub alerts: Vec<TimedAlert>,
    #[serde(default)]
    pub timeline: Vec<TimelineItem>,
}

/// Short form for `/api/v1/incidents`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentListItem {
    pub id: String,
    pub kind: String,
    pub subjects: Vec<String>,
    pub summary: String,
    #[serde(with = "super::record::ts_ms")]
    pub opened_at: DateTime<Utc>,
    #[serde(default, with = "super::record::opt_ts_ms")]
    pub closed_at: Option<DateTime<Utc>>,
}

impl IncidentRecord {
    pub fn list_item(&self) -> IncidentListItem {
        IncidentListItem {
            id: self.id.clone(),
            kind: self.kind.clone(),
            subjects: self.subjects.clone(),
            summary: self.summary.clone(),
            opened_at: self.opened_at,
            closed_at: self.closed_at,
        }
    }

    /// Whether the incident overlaps `[since, ∞)`.
    pub fn active_since(&self, since: DateTime<Utc>) -> bool {
        self.opened_at >= since || self.closed_at.is_none_or(|c| c >= since)
    }

    fn push_timeline(&mut self, at: DateTime<Utc>, node: &str, text: String) {
        if self.timeline.len() < MAX_TIMELINE {
            self.timeline.push(TimelineItem {
                at,
                node: node.to_string(),
                text,
            });
            // Stable: equal times keep their journal order. Bounded by MAX_TIMELINE.
            self.timeline.sort_by_key(|i| i.at);
        }
    }
}

/// The fold over journal entries.
#[derive(Clone, Debug, Default)]
pub struct IncidentBook {
    incidents: BTreeMap<String, IncidentRecord>,
    /// Opening order, to evict the oldest first.
    order: VecDeque<String>,
    lead_up: VecDeque<TimelineItem>,
    latest: Option<DiagnosisRecord>,
    latest_views: BTreeMap<String, ViewRecord>,
    open: Option<String>,
    /// Timeline of an incident just superseded, for the incident that replaces it (bounded
    /// by one incident's timeline).
    carried: Option<(String, Vec<TimelineItem>)>,
}

impl IncidentBook {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn replay<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Self {
        let mut b = Self::new();
        for e in entries {
            b.apply(e);
        }
        b
    }

    /// The latest verdict seen, with or without an incident.
    pub fn latest_diagnosis(&self) -> Option<&DiagnosisRecord> {
        self.latest.as_ref()
    }

    /// The latest view of each node seen in the entries.
    pub fn latest_views(&self) -> &BTreeMap<String, ViewRecord> {
        &self.latest_views
    }

    pub fn get(&self, id: &str) -> Option<&IncidentRecord> {
        self.incidents.get(id)
    }

    /// The most recently opened incident.
    pub fn last(&self) -> Option<&IncidentRecord> {
        self.order.back().and_then(|id| self.incidents.get(id))
    }

    /// The incident currently open, if any.
    pub fn current(&self) -> Option<&IncidentRecord> {
        self.open.as_ref().and_then(|id| self.incidents.get(id))
    }

    /// Incidents in opening order.
    pub fn all(&self) -> impl Iterator<Item = &IncidentRecord> {
        self.order.iter().filter_map(|id| self.incidents.get(id))
    }

    fn close(&mut self, ts: DateTime<Utc>, node: &str, incident: &str, reason: &str) {
        if let Some(inc) = self.incidents.get_mut(incident) {
            inc.closed_at = Some(ts);
            inc.close_reason = reason.to_string();
            let why = if reason.is_empty() {
                String::new()
            } else {
                format!(": {reason}")
            };
            inc.push_timeline(ts, node, format!("incident {incident} closed{why}"));
        }
        if self.open.as_deref() == Some(incident) {
            self.open = None;
            // What came before the close belongs to the closed incident.
            self.lead_up.clear();
        }
    }

    pub fn apply(&mut self, e: &Entry) {
        let node = e.node.as_str();
        match &e.event {
            EntryKind::Started { version, .. } => {
                // An incident still open at a start was left open by a daemon that stopped or
                // crashed: the new run cannot know it continued, so it ends here.
                if let Some(id) = self.open.clone() {
                    self.close(
                        e.ts,
                        node,
                        &id,
                        "the daemon restarted while it was open (no close was recorded)",
                    );
                }
                self.lead_push(e.ts, node, format!("daemon started (hadiag {version})"));
            }
            EntryKind::ViewChanged { of, view, changes } => {
                self.latest_views.insert(of.clone(), view.clone());
                for c in changes {
                    let text = if of == node {
                        c.clone()
                    } else {
                        format!("{of} reports: {c}")
                    };
                    self.file_line(e.ts, node, None, text);
                }
                // Every node's view looks healthy again (a heal still arriving after its
                // incident closed): nothing so far leads to a next incident.
                if self.open.is_none() && self.latest_views.values().all(|v| v.looks_healthy()) {
                    self.lead_up.clear();
                }
            }
            EntryKind::DiagnosisChanged { diagnosis, views } => {
                self.latest = Some(diagnosis.clone());
                for (k, v) in views {
                    self.latest_views.insert(k.clone(), v.clone());
                }
                let text = format!("verdict: {}", diagnosis.summary);
                let target = diagnosis.incident.clone().or_else(|| self.open.clone());
                match target.and_then(|id| self.incidents.get_mut(&id)) {
                    Some(inc) => {
                        inc.latest = diagnosis.clone();
                        inc.push_timeline(e.ts, node, text);
                    }
                    // All healthy with no incident open: nothing before leads to the next one.
                    None if diagnosis.kind == "healthy" => self.lead_up.clear(),
                    None => self.lead_push(e.ts, node, text),
                }
            }
            EntryKind::IncidentOpened {
                incident,
                diagnosis,
                views,
            } => {
                self.latest = Some(diagnosis.clone());
                let mut timeline: Vec<TimelineItem> = self.lead_up.drain(..).collect();
                // Adopting a peer's id for the same verdict: what led to the incident is in
                // the timeline of the one it replaced.
                if let Some((_, before)) = self.carried.take().filter(|(next, _)| next == incident)
                {
                    timeline.extend(before);
                }
                for s in &diagnosis.support {
                    if let Some(at) = s.at {
                        let who = if s.node.is_empty() {
                            node.to_string()
                        } else {
                            s.node.clone()
                        };
                        timeline.push(TimelineItem {
                            at,
                            node: who,
                            text: s.text.clone(),
                        });
                    }
                }
                timeline.push(TimelineItem {
                    at: e.ts,
                    node: node.to_string(),
                    text: format!("incident {incident} opened: {}", diagnosis.summary),
                });
                timeline.sort_by_key(|a| a.at);
                // The same observation can come from the lead-up, the replaced incident and
                // the support: keep its first mention.
                let mut seen = std::collections::BTreeSet::new();
                timeline.retain(|i| seen.insert((i.at, i.node.clone(), i.text.clone())));
                let excess = timeline.len().saturating_sub(MAX_TIMELINE);
                timeline.drain(..excess);
                let rec = IncidentRecord {
                    id: incident.clone(),
                    kind: diagnosis.kind.clone(),
                    subjects: diagnosis.subjects.clone(),
                    summary: diagnosis.summary.clone(),
                    opened_at: e.ts,
                    closed_at: None,
                    close_reason: String::new(),
                    recorded_by: node.to_string(),
                    diagnosis: diagnosis.clone(),
                    latest: diagnosis.clone(),
                    views: if views.is_empty() {
                        self.latest_views.clone()
                    } else {
                        views.clone()
                    },
                    agreed_by: Vec::new(),
                    actions: Vec::new(),
                    alerts: Vec::new(),
                    timeline,
                };
                if self.incidents.insert(incident.clone(), rec).is_none() {
                    self.order.push_back(incident.clone());
                }
                while self.order.len() > MAX_INCIDENTS {
                    if let Some(old) = self.order.pop_front() {
                        self.incidents.remove(&old);
                    }
                }
                self.open = Some(incident.clone());
            }
            EntryKind::IncidentAgreed { incident, peer } => {
                if let Some(inc) = self.incidents.get_mut(incident) {
                    if !inc.agreed_by.contains(peer) {
                        inc.agreed_by.push(peer.clone());
                    }
                    inc.push_timeline(e.ts, node, format!("{peer} agreed on incident {incident}"));
                }
            }
            EntryKind::IncidentClosed {
                incident,
                reason,
                superseded_by,
            } => {
                self.close(e.ts, node, incident, reason);
                self.carried = match (superseded_by, self.incidents.get(incident)) {
                    (Some(next), Some(old)) => Some((next.clone(), old.timeline.clone())),
                    _ => None,
                };
            }
            EntryKind::Action { incident, action } => {
                let target = incident.clone().or_else(|| self.open.clone());
                if let Some(inc) = target.and_then(|id| self.incidents.get_mut(&id)) {
                    let outcome = if action.ok {
                        "succeeded".to_string()
                    } else if action.timed_out {
                        "timed out".to_string()
                    } else {
                        match action.exit_status {
                            Some(c) => format!("failed (exit {c})"),
                            None => "failed".to_string(),
                        }
                    };
                    let on = action
                        .target
                        .as_deref()
                        .map(|t| format!(" {t}"))
                        .unwrap_or_default();
                    inc.push_timeline(e.ts, node, format!("{}{on} {outcome}", action.action));
                    if inc.actions.len() < MAX_ACTIONS {
                        inc.actions.push(TimedAction {
                            at: e.ts,
                            action: action.clone(),
                        });
                    }
                }
            }
            EntryKind::Alert { incident, alert } => {
                let target = incident.clone().or_else(|| self.open.clone());
                if let Some(inc) = target.and_then(|id| self.incidents.get_mut(&id)) {
                    if inc.alerts.len() < MAX_ACTIONS {
                        inc.alerts.push(TimedAlert {
                            at: alert.delivered_at.unwrap_or(e.ts),
                            alert: alert.clone(),
                        });
                    }
                }
            }
            EntryKind::JournalRecovered { file, torn_bytes } => {
                self.lead_push(
                    e.ts,
                    node,
                    format!("journal {file}: skipped a torn line of {torn_bytes} bytes"),
                );
            }
            EntryKind::Note { text } => {
                let named = named_incident(text).filter(|id| self.incidents.contains_key(*id));
                let named = named.map(str::to_string);
                self.file_line(e.ts, node, named, text.clone());
            }
        }
    }

    /// Files a line under `incident` (when it names one), else under the open incident, else
    /// in the lead-up of the next one.
    fn file_line(&mut self, at: DateTime<Utc>, node: &str, incident: Option<String>, text: String) {
        match incident
            .or_else(|| self.open.clone())
            .and_then(|id| self.incidents.get_mut(&id))
        {
            Some(inc) => inc.push_timeline(at, node, text),
            None => self.lead_push(at, node, text),
        }
    }

    fn lead_push(&mut self, at: DateTime<Utc>, node: &str, text: String) {
        if self.lead_up.len() == LEAD_UP {
            self.lead_up.pop_front();
        }
        self.lead_up.push_back(TimelineItem {
            at,
            node: node.to_string(),
            text,
        });
    }
}

/// The incident id a note names (`… for incident n1-3`, `… (incident n1-3)`), if any.
fn named_incident(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once("incident ")?;
    let id = rest
        .split(|c: char| c.is_whitespace() || matches!(c, ':' | ',' | ')' | ';'))
        .next()?;
    super::record::parse_incident_ref(id).map(|_| id)
}
