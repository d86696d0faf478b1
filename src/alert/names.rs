//! One naming scheme for alerts, shared by the Alertmanager webhooks and the shipped
//! Prometheus rules (`dashboards/hadiag-rules.yml`): the same problem carries the same
//! `alertname` and severity whichever way it reaches Alertmanager, so one can inhibit the
//! other. A test checks every name here against the rules file.

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
