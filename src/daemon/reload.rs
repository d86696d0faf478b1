//! SIGHUP reload rules: which configuration changes apply live and which are refused.
//!
//! Applied live: timers and thresholds (`Node::update_timing`; probes restart with the new
//! intervals), the disk probe target, exec monitors, hooks and the policy they imply (a fence
//! hook added or removed changes the core's fence policy, `Node::update_options`), alert
//! rules, the journal limits, the API token, and the keys (signing key id and accepted keys:
//! the key id travels in every stamp, so keys rotate live).
//! Refused — the daemon keeps running on the old configuration and logs one line per change:
//! the cluster name, node identity (names, order, priorities), networks (names, transport,
//! port, references), interfaces and addresses, serial lines, the listen address and the state
//! directory. These change what every node must agree on (ids,
//! addresses, agreement rules) or what is bound at start, so they need a coordinated restart.
//!
//! [`crate::config::reload_plan`] (config module) is consulted first; when it refuses nothing,
//! the checks here are a second, independent guard over the fields the driver cannot change
//! live (so a gap in either list never applies a topology change half-way).

use crate::config::{reload_plan, Config};

fn differs<T: PartialEq>(a: &T, b: &T) -> bool {
    a != b
}

/// Why a refused change is refused, as the status and the API say it.
pub const REFUSED_CAUSE: &str = "needs a coordinated restart of the cluster";

/// Changes that cannot be applied live (empty = the new config may be applied), each naming
/// its place (field and old → new value) and the cause ([`REFUSED_CAUSE`]).
pub fn refused_changes(old: &Config, new: &Config, me: &str) -> Vec<String> {
    refused_fields(old, new, me)
        .into_iter()
        .map(|c| format!("{c}: {REFUSED_CAUSE}"))
        .collect()
}

fn refused_fields(old: &Config, new: &Config, me: &str) -> Vec<String> {
    let planned = reload_plan(old, new).refused;
    if !planned.is_empty() {
        return planned;
    }
    let mut out: Vec<String> = Vec::new();
    let (a, b) = (&old.topology, &new.topology);
    let mut push = |cond: bool, what: String| {
        if cond && !out.contains(&what) {
            out.push(what);
        }
    };
    push(
        differs(&a.cluster, &b.cluster),
        format!("cluster name {:?} → {:?}", a.cluster, b.cluster),
    );
    let names = |t: &crate::core::topology::Topology| {
        t.nodes.iter().map(|n| n.name.clone()).collect::<Vec<_>>()
    };
    push(
        differs(&names(a), &names(b)),
        format!("nodes {:?} → {:?}", names(a), names(b)),
    );
    if b.node_by_name(me).is_none() {
        push(true, format!("this node {me:?} is no longer defined"));
    }
    if names(a) == names(b) {
        for (x, y) in a.nodes.iter().zip(&b.nodes) {
            push(
                x.priority != y.priority,
                format!("nodes.{}.priority {} → {}", x.name, x.priority, y.priority),
            );
            push(
                differs(&x.interfaces, &y.interfaces),
                format!("nodes.{}.interfaces (devices/addresses) changed", x.name),
            );
            push(
                differs(&x.serial, &y.serial),
                format!("nodes.{}.serial changed", x.name),
            );
        }
    }
    let nets = |t: &crate::core::topology::Topology| {
        t.networks
            .iter()
            .map(|n| n.name.clone())
            .collect::<Vec<_>>()
    };
    push(
        differs(&nets(a), &nets(b)),
        format!("networks {:?} → {:?}", nets(a), nets(b)),
    );
    if nets(a) == nets(b) {
        for (x, y) in a.networks.iter().zip(&b.networks) {
            push(
                differs(x, y),
                format!("networks.{} (references/transport/port) changed", x.name),
            );
        }
    }
    push(
        old.listen != new.listen,
        format!("listen {} → {}", old.listen, new.listen),
    );
    push(
        old.state_dir != new.state_dir,
        "state_dir changed".to_string(),
    );
    out
}

/// Human-readable list of the live changes (for the log and the status file).
pub fn safe_changes(old: &Config, new: &Config) -> Vec<String> {
    let planned = reload_plan(old, new).safe;
    if !planned.is_empty() {
        return planned;
    }
    let mut out = Vec::new();
    let (a, b) = (&old.topology, &new.topology);
    let mut push = |cond: bool, what: String| {
        if cond && !out.contains(&what) {
            out.push(what);
        }
    };
    let (ta, tb) = (&a.timing, &b.timing);
    push(
        ta.heartbeat_interval != tb.heartbeat_interval,
        format!(
            "timing.heartbeat_interval {:?} → {:?}",
            ta.heartbeat_interval, tb.heartbeat_interval
        ),
    );
    push(
        ta.detect_multiplier != tb.detect_multiplier,
        format!(
            "timing.detect_multiplier {} → {}",
            ta.detect_multiplier, tb.detect_multiplier
        ),
    );
    push(
        ta.reference_interval != tb.reference_interval,
        format!(
            "timing.reference_interval {:?} → {:?}",
            ta.reference_interval, tb.reference_interval
        ),
    );
    push(
        ta.reference_timeout != tb.reference_timeout,
        format!(
            "timing.reference_timeout {:?} → {:?}",
            ta.reference_timeout, tb.reference_timeout
        ),
    );
    push(
        ta.disk_interval != tb.disk_interval || ta.disk_timeout != tb.disk_timeout,
        "timing.disk_* changed".to_string(),
    );
    push(
        ta.self_fence_after != tb.self_fence_after || ta.fence_deadline != tb.fence_deadline,
        "timing fence deadlines changed".to_string(),
    );
    push(
        a.thresholds != b.thresholds,
        "thresholds changed".to_string(),
    );
    let disks = |t: &crate::core::topology::Topology| {
        t.nodes.iter().map(|n| n.disk.clone()).collect::<Vec<_>>()
    };
    push(
        disks(a) != disks(b),
        "disk probe targets changed".to_string(),
    );
    push(
        old.monitors != new.monitors,
        format!("monitors ({} → {})", old.monitors.len(), new.monitors.len()),
    );
    push(old.hooks != new.hooks, "hooks changed".to_string());
    push(old.alerts != new.alerts, "alerts changed".to_string());
    push(
        old.journal != new.journal,
        "journal limits changed".to_string(),
    );
    push(
        old.auth != new.auth,
        "authentication key changed".to_string(),
    );
    out
}
