//! Live reload planning: which differences between two validated configurations can be applied
//! to a running daemon, and which need a coordinated restart of every node.
//!
//! Anything every node must agree on to interpret the others' messages and views (cluster,
//! node and network identity and order, addresses, interfaces, serial lines, priorities, key,
//! sockets) is refused; probe cadence, thresholds, monitors, hooks, alerts, journal and policy
//! apply live. Pure comparison; applying the plan is the daemon's job.

use super::{duration, Config};
use std::fmt::Debug;

/// What a reload from `old` to `new` would change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    /// Changes that apply live, one line each (e.g. `timing.heartbeat_interval: 100ms -> 200ms`).
    pub safe: Vec<String>,
    /// Changes that need a coordinated restart of every node. A plan with any is refused whole:
    /// applying half a configuration would leave the node inconsistent with itself.
    pub refused: Vec<String>,
}

impl ReloadPlan {
    /// True when the new configuration may be applied live.
    pub fn acceptable(&self) -> bool {
        self.refused.is_empty()
    }

    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.safe.is_empty() && self.refused.is_empty()
    }
}

fn names<T>(items: &[T], name: impl Fn(&T) -> &str) -> String {
    format!(
        "[{}]",
        items.iter().map(name).collect::<Vec<_>>().join(", ")
    )
}

/// Compares two validated configurations.
pub fn reload_plan(old: &Config, new: &Config) -> ReloadPlan {
    let mut p = ReloadPlan::default();
    let (a, b) = (&old.topology, &new.topology);
    let refuse = |p: &mut ReloadPlan, what: String| {
        p.refused
            .push(format!("{what} (needs a restart of every node)"))
    };

    if a.cluster != b.cluster {
        refuse(&mut p, format!("cluster: {} -> {}", a.cluster, b.cluster));
    }
    let net_names = |t: &crate::core::topology::Topology| names(&t.networks, |n| n.name.as_str());
    let node_names = |t: &crate::core::topology::Topology| names(&t.nodes, |n| n.name.as_str());
    if net_names(a) != net_names(b) {
        refuse(
            &mut p,
            format!("networks: {} -> {}", net_names(a), net_names(b)),
        );
    } else {
        for (x, y) in a.networks.iter().zip(&b.networks) {
            if x != y {
                refuse(
                    &mut p,
                    format!("networks.{}: references, transport or port changed", x.name),
                );
            }
        }
    }
    if node_names(a) != node_names(b) {
        refuse(
            &mut p,
            format!("nodes: {} -> {}", node_names(a), node_names(b)),
        );
    } else {
        for (x, y) in a.nodes.iter().zip(&b.nodes) {
            if x.priority != y.priority {
                refuse(
                    &mut p,
                    format!(
                        "nodes.{}.priority: {} -> {}",
                        x.name, x.priority, y.priority
                    ),
                );
            }
            if x.interfaces != y.interfaces {
                refuse(
                    &mut p,
                    format!("nodes.{}.interfaces: devices or addresses changed", x.name),
                );
            }
            if x.serial != y.serial {
                refuse(
                    &mut p,
                    format!("nodes.{}.serial: serial lines changed", x.name),
                );
            }
            if x.disk != y.disk {
                p.safe.push(format!(
                    "nodes.{}.disk: {} -> {}",
                    x.name,
                    x.disk.as_deref().unwrap_or("(none)"),
                    y.disk.as_deref().unwrap_or("(none)")
                ));
            }
        }
    }
    // Keys rotate live (the key id travels in every stamp; see the rotation in the README).
    if old.auth.key_id != new.auth.key_id {
        p.safe.push(format!(
            "auth.key_id (signing): {} -> {}",
            old.auth.key_id, new.auth.key_id
        ));
    } else if old.auth.key != new.auth.key {
        p.safe
            .push(format!("auth: key material of {} changed", new.auth.key_id));
    }
    let accepted = |c: &Config| {
        let mut ids: Vec<&str> = c.auth.accept.iter().map(|(i, _)| i.as_str()).collect();
        ids.sort_unstable();
        ids.join(", ")
    };
    if accepted(old) != accepted(new) {
        p.safe.push(format!(
            "auth.accept: [{}] -> [{}]",
            accepted(old),
            accepted(new)
        ));
    } else if old.auth.accept != new.auth.accept {
        p.safe.push("auth.accept: key material changed".to_string());
    }
    if old.listen != new.listen {
        refuse(&mut p, format!("listen: {} -> {}", old.listen, new.listen));
    }
    if old.pacemaker != new.pacemaker {
        refuse(&mut p, "pacemaker: section changed".to_string());
    }
    if old.state_dir != new.state_dir {
        refuse(
            &mut p,
            format!(
                "state_dir: {} -> {}",
                old.state_dir.display(),
                new.state_dir.display()
            ),
        );
    }

    let (ta, tb) = (&a.timing, &b.timing);
    let durations = [
        (
            "heartbeat_interval",
            ta.heartbeat_interval,
            tb.heartbeat_interval,
        ),
        (
            "reference_interval",
            ta.reference_interval,
            tb.reference_interval,
        ),
        (
            "reference_timeout",
            ta.reference_timeout,
            tb.reference_timeout,
        ),
        ("disk_interval", ta.disk_interval, tb.disk_interval),
        ("disk_timeout", ta.disk_timeout, tb.disk_timeout),
        ("self_fence_after", ta.self_fence_after, tb.self_fence_after),
        ("fence_deadline", ta.fence_deadline, tb.fence_deadline),
    ];
    for (name, x, y) in durations {
        if x != y {
            p.safe.push(format!(
                "timing.{name}: {} -> {}",
                duration::format(x),
                duration::format(y)
            ));
        }
    }
    if ta.detect_multiplier != tb.detect_multiplier {
        p.safe.push(format!(
            "timing.detect_multiplier: {} -> {}",
            ta.detect_multiplier, tb.detect_multiplier
        ));
    }
    let (ha, hb) = (&a.thresholds, &b.thresholds);
    if ha.degraded_loss_ratio != hb.degraded_loss_ratio {
        p.safe.push(format!(
            "thresholds.degraded_loss_ratio: {} -> {}",
            ha.degraded_loss_ratio, hb.degraded_loss_ratio
        ));
    }
    if ha.false_silence_probability != hb.false_silence_probability {
        p.safe.push(format!(
            "thresholds.false_silence_probability: {} -> {}",
            ha.false_silence_probability, hb.false_silence_probability
        ));
    }
    for (name, x, y) in [
        ("degraded_rtt", ha.degraded_rtt, hb.degraded_rtt),
        ("slow_disk", ha.slow_disk, hb.slow_disk),
    ] {
        if x != y {
            p.safe.push(format!(
                "thresholds.{name}: {} -> {}",
                duration::format(x),
                duration::format(y)
            ));
        }
    }
    for (name, x, y) in [
        (
            "reference_failures",
            ha.reference_failures,
            hb.reference_failures,
        ),
        ("heal_successes", ha.heal_successes, hb.heal_successes),
    ] {
        if x != y {
            p.safe.push(format!("thresholds.{name}: {x} -> {y}"));
        }
    }

    diff_named(&mut p, "monitors", &old.monitors, &new.monitors, |m| {
        m.name.as_str()
    });
    diff_named(&mut p, "alerts", &old.alerts, &new.alerts, |a| {
        a.name.as_str()
    });
    for (name, x, y) in [
        ("isolate", &old.hooks.isolate, &new.hooks.isolate),
        ("takeover", &old.hooks.takeover, &new.hooks.takeover),
        ("fence", &old.hooks.fence, &new.hooks.fence),
    ] {
        if x != y {
            p.safe.push(format!("hooks.{name} changed"));
        }
    }
    if old.journal != new.journal {
        p.safe.push("journal changed".to_string());
    }
    if old.policy != new.policy {
        p.safe.push("policy changed".to_string());
    }
    if old.api_token != new.api_token {
        // Never print the token itself.
        p.safe.push("api token changed".to_string());
    }
    p
}

fn diff_named<T: PartialEq + Debug>(
    p: &mut ReloadPlan,
    what: &str,
    old: &[T],
    new: &[T],
    name: impl Fn(&T) -> &str,
) {
    for x in old {
        match new.iter().find(|y| name(y) == name(x)) {
            None => p.safe.push(format!("{what}: {} removed", name(x))),
            Some(y) if y != x => p.safe.push(format!("{what}: {} changed", name(x))),
            Some(_) => {}
        }
    }
    for y in new {
        if !old.iter().any(|x| name(x) == name(y)) {
            p.safe.push(format!("{what}: {} added", name(y)));
        }
    }
}
