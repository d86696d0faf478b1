//! One naming scheme for alerts, shared by the Alertmanager webhooks and the shipped
//! Prometheus rules (`dashboards/hadiag-rules.yml`): the same problem carries the same
//! `alertname` and severity whichever way it reaches Alertmanager, so one can inhibit the
//! other. A test checks every name here against the rules file.

use crate::core::diagnosis::Component;
use crate::core::topology::{NetworkId, NodeId, Topology};

/// The `alertname` of a verdict kind (token as in `VerdictKind::token`).
pub fn alertname(kind: &str) -> String {
    match kind {
        // The rules name the subject: a node cut off.
        "cut_off" => "HadiagNodeCutOff".to_string(),
        other => {
            let mut out = String::from("Hadiag");
            for part in other.split('_') {
                let mut c = part.chars();
                if let Some(f) = c.next() {
                    out.extend(f.to_uppercase());
                    out.push_str(c.as_str());
                }
            }
            out
        }
    }
}

/// The labels that name what a verdict is about, shared by the `hadiag_verdict` metric, the
/// Prometheus rules and the Alertmanager webhooks: `component` is the class (`node`,
/// `attachment`, `hub`, `upstream`, `serial`, `disk`), `node` and `network` say where, and
/// `peer` is the far end of a serial line. Labels that do not apply are empty (Prometheus
/// treats an empty label as absent).
#[derive(
    Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct SubjectLabels {
    pub component: String,
    pub node: String,
    pub network: String,
    pub peer: String,
}

impl SubjectLabels {
    pub fn of(t: &Topology, c: &Component) -> SubjectLabels {
        let n = |id: NodeId| t.node_name(id).to_string();
        let s = |id: NetworkId| t.network_name(id).to_string();
        let (component, node, network, peer) = match *c {
            Component::Node(a) => ("node", n(a), String::new(), String::new()),
            Component::Attachment(a, net) => ("attachment", n(a), s(net), String::new()),
            Component::Hub(net) => ("hub", String::new(), s(net), String::new()),
            Component::Upstream(net) => ("upstream", String::new(), s(net), String::new()),
            Component::Serial(a, b) => ("serial", n(a), String::new(), n(b)),
            Component::Disk(a) => ("disk", n(a), String::new(), String::new()),
        };
        SubjectLabels {
            component: component.to_string(),
            node,
            network,
            peer,
        }
    }

    /// Label values in the order of [`SubjectLabels::NAMES`].
    pub fn values(&self) -> [&str; 4] {
        [&self.component, &self.node, &self.network, &self.peer]
    }

    pub const NAMES: [&'static str; 4] = ["component", "node", "network", "peer"];
}

/// `critical` for what takes services away, `warning` for lost redundancy, `info` otherwise.
pub fn severity(kind: &str) -> &'static str {
    match kind {
        "node_failed" | "cut_off" | "hub_failed" | "multiple_faults" => "critical",
        "attachment_failed" | "upstream_failed" | "serial_failed" | "disk_failed" => "warning",
        _ => "info",
    }
}

/// Where the runbook entry of a verdict kind lives: `docs/runbook.md` as the package installs
/// it (the Prometheus rules use the same URLs).
pub fn runbook_anchor(kind: &str) -> String {
    format!(
        "file:///usr/share/doc/hadiag/docs/runbook.md#{}",
        kind.replace('_', "-")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::diagnosis::VerdictKind;

    #[test]
    fn every_alerting_kind_has_its_prometheus_rule_with_the_same_severity() {
        let rules = include_str!("../../dashboards/hadiag-rules.yml");
        for k in VerdictKind::ALL {
            let kind = k.token();
            if kind == "healthy" {
                continue;
            }
            let name = alertname(kind);
            let at = rules
                .find(&format!("- alert: {name}\n"))
                .unwrap_or_else(|| panic!("{name} (kind {kind}) missing from hadiag-rules.yml"));
            let rest = &rules[at..];
            let block = &rest[..rest[1..].find("- alert:").map_or(rest.len(), |i| i + 1)];
            assert!(
                block.contains(&format!("severity: {}", severity(kind))),
                "{name}: severity differs from the webhook's {}:\n{block}",
                severity(kind)
            );
            // Every runbook link points at an entry that exists.
            let anchor = runbook_anchor(kind);
            let heading = anchor.rsplit_once('#').map(|(_, a)| a).unwrap_or_default();
            assert!(
                include_str!("../../docs/runbook.md").contains(&format!("\n## {heading}\n")),
                "docs/runbook.md has no entry {heading}"
            );
        }
    }
}
