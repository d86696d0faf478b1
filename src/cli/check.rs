//! `hadiag status --check`: the daemon's verdict as a monitoring-plugin result — one line and
//! a Nagios exit code — for Nagios/Icinga checks, keepalived `vrrp_script`s and
//! corosync-qdevice heuristics (snippets in `docs/integrations.md`).
//!
//! What it must not do: decide anything itself. It only maps the daemon's own verdict, role
//! and incident (as the API serves them) onto exit codes; a snapshot it cannot read is
//! UNKNOWN, never OK.

use crate::http::StatusSnapshot;
use crate::journal::record::FaultRecord;

/// Nagios plugin exit codes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckState {
    /// 0: healthy.
    Ok = 0,
    /// 1: degraded, maintenance, or a failure elsewhere in the cluster.
    Warning = 1,
    /// 2: a failure that involves this node (it is isolated, cut off, or its own NIC, disk or
    /// serial line failed).
    Critical = 2,
    /// 3: no verdict (daemon unreachable, not yet judged, unreadable answer).
    Unknown = 3,
}

impl CheckState {
    pub fn token(self) -> &'static str {
        match self {
            CheckState::Ok => "OK",
            CheckState::Warning => "WARNING",
            CheckState::Critical => "CRITICAL",
            CheckState::Unknown => "UNKNOWN",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

/// The result of one check: state, the one-line summary, and whether this node may hold
/// services (`--serving`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    pub state: CheckState,
    pub line: String,
    /// Active, not isolated, not in maintenance, and no failure involves it.
    pub serving: bool,
}

/// Whether `f` is a fault of node `me`'s own parts.
fn involves(me: &str, f: &FaultRecord) -> bool {
    if f.node.as_deref() == Some(me) {
        return true;
    }
    // Serial components are named `serial a–b`.
    f.class == "serial"
        && f.component
            .trim_start_matches("serial ")
            .split('–')
            .any(|n| n == me)
}

/// Maps a status snapshot onto a check result.
pub fn evaluate(s: &StatusSnapshot) -> CheckResult {
    let me = s.node.as_str();
    let Some(v) = &s.verdict else {
        return CheckResult {
            state: CheckState::Unknown,
            line: format!("HADIAG UNKNOWN - {me}: no verdict yet (daemon starting)"),
            serving: false,
        };
    };
    let incident = v
        .incident
        .as_deref()
        .map(|i| format!(" [incident {i}]"))
        .unwrap_or_default();
    let mine = v.kind != "healthy"
        && v.kind != "degraded"
        && (v.faults.iter().any(|f| involves(me, f))
            || v.subjects.iter().any(|x| {
                x == me || x == &format!("node {me}") || x.starts_with(&format!("{me}."))
            }));
    let (state, what) = if s.isolated {
        (CheckState::Critical, format!("isolated: {}", v.summary))
    } else if mine {
        (CheckState::Critical, v.summary.clone())
    } else if s.quiesced {
        (
            CheckState::Warning,
            "in planned maintenance (quiesced)".to_string(),
        )
    } else if v.kind == "healthy" {
        (CheckState::Ok, v.summary.clone())
    } else {
        (CheckState::Warning, v.summary.clone())
    };
    let maint: Vec<&str> = s
        .peers
        .iter()
        .filter(|p| p.quiesced)
        .map(|p| p.node.as_str())
        .collect();
    let peers = if maint.is_empty() {
        String::new()
    } else {
        format!("; in maintenance: {}", maint.join(", "))
    };
    CheckResult {
        state,
        line: format!("HADIAG {} - {me}: {}{incident}{peers}", state.token(), what),
        serving: !s.isolated && !s.quiesced && !mine,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::record::DiagnosisRecord;

    fn snap(kind: &str, faults: Vec<FaultRecord>) -> StatusSnapshot {
        let mut s: StatusSnapshot = serde_json::from_value(serde_json::json!({
            "node": "n1", "cluster": "c", "version": "0", "at": "2026-01-01T00:00:00Z", "started_at": "2026-01-01T00:00:00Z",
            "isolated": false, "quiesced": false, "networks": [], "serial": [], "disks": [],
            "monitors": [], "peers": [], "verdict": null, "incident": null
        }))
        .expect("snapshot");
        let d: DiagnosisRecord = serde_json::from_value(serde_json::json!({
            "at": "2026-01-01T00:00:00Z", "kind": kind, "subjects": [], "summary": format!("{kind} summary"),
        }))
        .expect("record");
        s.verdict = Some(DiagnosisRecord { faults, ..d });
        s
    }

    fn fault(class: &str, component: &str, node: Option<&str>) -> FaultRecord {
        FaultRecord {
            component: component.into(),
            class: class.into(),
            network: None,
            node: node.map(str::to_string),
            mode: "down".into(),
        }
    }

    #[test]
    fn exit_codes_follow_the_verdict_and_this_nodes_part_in_it() {
        let mut s = snap("healthy", vec![]);
        s.verdict = None;
        assert_eq!(evaluate(&s).state, CheckState::Unknown);
        assert_eq!(evaluate(&snap("healthy", vec![])).state, CheckState::Ok);
        assert_eq!(
            evaluate(&snap("degraded", vec![])).state,
            CheckState::Warning
        );
        let peer = snap("node_failed", vec![fault("node", "node n2", Some("n2"))]);
        let r = evaluate(&peer);
        assert_eq!(r.state, CheckState::Warning, "{r:?}");
        assert!(r.serving);
        let own = snap(
            "attachment_failed",
            vec![fault("attachment", "attachment n1.A", Some("n1"))],
        );
        assert_eq!(evaluate(&own).state, CheckState::Critical);
        assert!(!evaluate(&own).serving);
        let serial = snap("serial_failed", vec![fault("serial", "serial n2–n1", None)]);
        assert_eq!(evaluate(&serial).state, CheckState::Critical);
        let mut iso = snap("healthy", vec![]);
        iso.isolated = true;
        assert_eq!(evaluate(&iso).state, CheckState::Critical);
        let mut q = snap("healthy", vec![]);
        q.quiesced = true;
        let r = evaluate(&q);
        assert_eq!(r.state, CheckState::Warning);
        assert!(!r.serving);
        assert!(r
            .line
            .starts_with("HADIAG WARNING - n1: in planned maintenance"));
    }
}
