//! Human-readable rendering of a validated [`Config`]: the networks × nodes table, serial lines,
//! disks, timers with their effective detection deadlines, warnings and one node's own view.
//! Used by `hadiag check-config` (and handy in daemon start-up logs). Pure formatting.

use super::validate::{fence_margin, isolate_hook_longest};
use super::{duration, AlertAction, Config, HookSpec, WebhookFormat};
use crate::core::topology::{NodeId, Transport};
use std::fmt::Write as _;

fn d(x: std::time::Duration) -> String {
    duration::format(x)
}

/// Left-aligned text table; columns sized to their widest cell (in characters).
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::from("  ");
        for (c, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < r.len() {
                let pad = widths[c].saturating_sub(cell.chars().count()) + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn command(c: &[String]) -> String {
    c.iter()
        .map(|a| {
            if a.is_empty() || a.contains(char::is_whitespace) {
                format!("{a:?}")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{}GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{}KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

fn hook(h: &Option<HookSpec>) -> String {
    match h {
        None => "none".to_string(),
        Some(h) => format!(
            "{} (timeout {}, {})",
            command(&h.command),
            d(h.timeout),
            match h.retries {
                0 => "no retry".to_string(),
                1 => format!("1 retry after {}", d(h.retry_backoff)),
                n => format!("{n} retries {} apart", d(h.retry_backoff)),
            }
        ),
    }
}

/// The resolved topology and settings, as printed by `check-config`; with `local`, also that
/// node's own view (what it sends where, what it probes).
pub fn describe(c: &Config, local: Option<NodeId>) -> String {
    let t = &c.topology;
    let mut o = String::new();
    let lines = t.serial_lines();
    let _ = writeln!(
        o,
        "{}: OK: cluster \"{}\", {} nodes, {} networks, {} serial line{}",
        c.source.display(),
        t.cluster,
        t.nodes.len(),
        t.networks.len(),
        lines.len(),
        if lines.len() == 1 { "" } else { "s" }
    );

    // Networks × nodes.
    let _ = writeln!(o, "\nnetworks × nodes (ids follow file order):");
    let mut rows = vec![{
        let mut h = vec![
            "network".to_string(),
            "transport".to_string(),
            "references".to_string(),
        ];
        h.extend(t.nodes.iter().map(|n| n.name.clone()));
        h
    }];
    for (i, net) in t.networks.iter().enumerate() {
        let id = crate::core::topology::NetworkId(i as u16);
        let mut r = vec![
            net.name.clone(),
            match net.transport {
                Transport::Udp => format!("udp:{}", net.port),
                Transport::Ethernet => "ethernet".to_string(),
            },
            if net.references.is_empty() {
                "(none)".to_string()
            } else {
                net.references
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            },
        ];
        for n in &t.nodes {
            r.push(match n.interface(id) {
                Some(i) => match i.address {
                    Some(a) => format!("{} {a}", i.device),
                    None => i.device.clone(),
                },
                None => "-".to_string(),
            });
        }
        rows.push(r);
    }
    o.push_str(&table(&rows));

    let _ = writeln!(o, "\nnodes:");
    let rows: Vec<Vec<String>> = t
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            vec![
                n.name.clone(),
                format!("id {i}"),
                format!("priority {}", n.priority),
                format!("disk {}", n.disk.as_deref().unwrap_or("(none)")),
            ]
        })
        .collect();
    o.push_str(&table(&rows));

    let _ = writeln!(o, "\nserial lines:");
    if lines.is_empty() {
        let _ = writeln!(o, "  (none: a node cut off from every network cannot agree with its peers; see fence_deadline)");
    }
    for (a, b) in &lines {
        let (na, nb) = (t.node(*a), t.node(*b));
        let end = |n: &crate::core::topology::NodeSpec, peer: NodeId| {
            n.serial
                .iter()
                .find(|s| s.peer == peer)
                .map(|s| (s.device.clone(), s.baud))
        };
        match (end(na, *b), end(nb, *a)) {
            (Some((da, baud)), Some((db, _))) => {
                let _ = writeln!(o, "  {} {da} <-> {} {db}  {baud} baud", na.name, nb.name);
            }
            _ => {
                let _ = writeln!(o, "  {} <-> {}", na.name, nb.name);
            }
        }
    }

    let tm = &t.timing;
    let th = &t.thresholds;
    let reference_down = tm
        .reference_interval
        .saturating_mul(th.reference_failures)
        .saturating_add(tm.reference_timeout);
    let margin = fence_margin(tm);
    let _ = writeln!(o, "\ntimers and effective deadlines:");
    let _ = writeln!(
        o,
        "  heartbeat         every {} on each NIC; a peer path is silent after {} ({} × {})",
        d(tm.heartbeat_interval),
        d(tm.detect_time()),
        d(tm.heartbeat_interval),
        tm.detect_multiplier
    );
    let _ = writeln!(
        o,
        "  reference         ping every {}, timeout {}; unreachable after {} ({} failures × {} + {})",
        d(tm.reference_interval),
        d(tm.reference_timeout),
        d(reference_down),
        th.reference_failures,
        d(tm.reference_interval),
        d(tm.reference_timeout)
    );
    let _ = writeln!(
        o,
        "  disk              read every {}; hung after {}; slow above {}",
        d(tm.disk_interval),
        d(tm.disk_timeout),
        d(th.slow_disk)
    );
    let _ = writeln!(
        o,
        "  self-fence        hearing no peer and reaching no reference for {} -> isolate (about {} after a cut, detection included)",
        d(tm.self_fence_after),
        d(tm.detect_time().saturating_add(tm.self_fence_after))
    );
    let isolate_run = c
        .hooks
        .isolate
        .as_ref()
        .map(|h| {
            format!(
                " + isolate hook's longest run {}",
                d(isolate_hook_longest(h))
            )
        })
        .unwrap_or_default();
    let _ = writeln!(
        o,
        "  fence deadline    a node that reaches its references treats a silent peer as gone after {} (must exceed {} + margin {}{isolate_run})",
        d(tm.fence_deadline),
        d(tm.self_fence_after),
        d(margin)
    );
    let _ = writeln!(
        o,
        "  degraded          loss over {} % or RTT over {} (alert only); healed after {} successes",
        th.degraded_loss_ratio * 100.0,
        d(th.degraded_rtt),
        th.heal_successes
    );

    let _ = writeln!(o, "\nservice:");
    let _ = writeln!(
        o,
        "  auth      key id {}, {}-byte key {}",
        c.auth.key_id,
        c.auth.key.len(),
        match &c.auth.key_file {
            Some(p) => format!("from {}", p.display()),
            None => "inline".to_string(),
        }
    );
    let _ = writeln!(
        o,
        "  listen    {} (API token {})",
        c.listen,
        if c.api_token.is_some() {
            "set"
        } else {
            "not set"
        }
    );
    let _ = writeln!(o, "  state     {}", c.state_dir.display());
    let _ = writeln!(
        o,
        "  journal   rotate at {}, keep {} files",
        size(c.journal.max_bytes),
        c.journal.keep_files
    );
    let _ = writeln!(
        o,
        "  policy    isolate on disk failure: {}; resume on heal: {}",
        if c.policy.isolate_on_disk_failure {
            "yes"
        } else {
            "no"
        },
        if c.policy.resume_on_heal { "yes" } else { "no" }
    );
    if let Some(p) = &c.pacemaker {
        let _ = writeln!(
            o,
            "  pacemaker node health via {} (timeout {})",
            command(&p.command),
            d(p.timeout)
        );
    }
    let _ = writeln!(o, "  hooks     isolate: {}", hook(&c.hooks.isolate));
    let _ = writeln!(o, "            takeover: {}", hook(&c.hooks.takeover));
    let _ = writeln!(
        o,
        "            fence: {}",
        match &c.hooks.fence {
            Some(_) => hook(&c.hooks.fence),
            None if lines.is_empty() =>
                "none: without a fence device or serial line a symmetric partition cannot be excluded".to_string(),
            None => "none".to_string(),
        }
    );
    if c.monitors.is_empty() {
        let _ = writeln!(o, "  monitors  (none)");
    }
    for m in &c.monitors {
        let _ = writeln!(
            o,
            "  monitor   {}: {} every {}, timeout {}",
            m.name,
            command(&m.command),
            d(m.interval),
            d(m.timeout)
        );
    }
    for a in &c.alerts {
        let kinds = if a.select.kinds.is_empty() {
            "any non-healthy verdict".to_string()
        } else {
            a.select
                .kinds
                .iter()
                .map(|k| k.token())
                .collect::<Vec<_>>()
                .join(",")
        };
        let subjects = if a.select.subjects.is_empty() {
            String::new()
        } else {
            format!(" about {}", a.select.subjects.join(","))
        };
        let action = match &a.action {
            AlertAction::Exec {
                command: c,
                timeout,
            } => format!("exec {} (timeout {})", command(c), d(*timeout)),
            AlertAction::Webhook {
                format,
                timeout,
                retries,
                options,
                ..
            } => format!(
                "webhook {} ({}, timeout {}, {retries} retries{}{}{})",
                options.urls.join(" "),
                match format {
                    WebhookFormat::Json => "json",
                    WebhookFormat::Alertmanager => "alertmanager",
                },
                d(*timeout),
                options
                    .resend
                    .map(|r| format!(", resend every {}", d(r)))
                    .unwrap_or_default(),
                options
                    .ca_file
                    .as_ref()
                    .map(|f| format!(", CA {}", f.display()))
                    .unwrap_or_default(),
                if options.bearer_token_file.is_some() {
                    ", bearer token"
                } else if options.basic_auth.is_some() {
                    ", basic auth"
                } else {
                    ""
                },
            ),
        };
        let _ = writeln!(
            o,
            "  alert     {}: {kinds}{subjects}, after {}{}{} -> {action}",
            a.name,
            a.after,
            a.every
                .map(|e| format!(", every {}", d(e)))
                .unwrap_or_default(),
            if a.upalert { ", upalert" } else { "" }
        );
    }

    if !c.warnings.is_empty() {
        let _ = writeln!(o, "\nwarnings:");
        for w in &c.warnings {
            let _ = writeln!(o, "  warning: {w}");
        }
    }

    if let Some(me) = local.filter(|id| id.index() < t.nodes.len()) {
        let n = t.node(me);
        let _ = writeln!(o, "\nlocal view of {} (id {}):", n.name, me.0);
        for i in &n.interfaces {
            let net = t.network(i.network);
            let src = i.address.map(|a| format!(" {a}")).unwrap_or_default();
            let peers: Vec<String> = t
                .members(i.network)
                .filter(|&p| p != me)
                .map(|p| {
                    let pn = t.node(p);
                    match (
                        net.transport,
                        pn.interface(i.network).and_then(|x| x.address),
                    ) {
                        (Transport::Udp, Some(a)) => {
                            format!("{} {}", pn.name, std::net::SocketAddr::new(a, net.port))
                        }
                        _ => pn.name.clone(),
                    }
                })
                .collect();
            let _ = writeln!(
                o,
                "  {}: {}{src} -> heartbeats to {}; pings {}",
                net.name,
                i.device,
                if peers.is_empty() {
                    "(no peer)".to_string()
                } else {
                    peers.join(", ")
                },
                if net.references.is_empty() {
                    "(no reference)".to_string()
                } else {
                    net.references
                        .iter()
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
        }
        for s in &n.serial {
            let _ = writeln!(
                o,
                "  serial: {} -> {} at {} baud",
                s.device,
                t.node(s.peer).name,
                s.baud
            );
        }
        if let Some(disk) = &n.disk {
            let _ = writeln!(o, "  disk: reads {disk}");
        }
    }
    o
}
