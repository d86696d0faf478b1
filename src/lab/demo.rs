//! `hadiag lab demo`: brings up two nodes (the topology of docs/fault-matrix.md), walks the public fault
//! matrix printing each node's verdict, fault → verdict and fault → agreement times, shows
//! one full `explain`, and tears everything down — also on Ctrl-C or an error.
//!
//! Must not: leave anything behind (the cluster guard tears down on every exit path).

use crate::lab::cluster::Cluster;
use crate::lab::drill::{self, fmt_duration, DrillOptions, RowResult};
use crate::lab::error::{LabError, Result};
use crate::lab::interrupt;
use crate::lab::layout::LabSpec;
use std::path::Path;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Hold time of the steady rows (1: no fault, 11: 5 % loss).
    pub steady: Duration,
    pub drill: DrillOptions,
    /// Only these rows (docs/fault-matrix.md numbers); empty = all.
    pub rows: Vec<u8>,
    /// The hadiag binary to run as daemon.
    pub exe: std::path::PathBuf,
    /// Where to draw the drill report (`.svg` or `.html`), if anywhere.
    pub report: Option<std::path::PathBuf>,
}

/// Runs the demo; returns the row results (Err on set-up failure or interruption).
pub fn run(
    root: &Path,
    opts: &DemoOptions,
    out: &mut dyn std::io::Write,
) -> Result<Vec<RowResult>> {
    interrupt::install();
    let stop = || interrupt::interrupted();
    let spec = LabSpec::two_node("demo").unique();
    let w = |out: &mut dyn std::io::Write, s: String| {
        let _ = writeln!(out, "{s}");
        let _ = out.flush();
    };
    w(out, format!("hadiag lab demo: building 2 nodes (n1, n2), networks A and B, serial n1–n2 in namespaces {}-*", spec.prefix.clone().unwrap_or_default()));
    let mut cluster = Cluster::build(&spec, root)?;
    for n in &cluster.layout().nodes {
        let addrs: Vec<String> = n
            .interfaces
            .iter()
            .map(|i| format!("{}={}", i.network, i.address))
            .collect();
        w(
            out,
            format!("  {}: namespace {}, {}", n.name, n.ns, addrs.join(" ")),
        );
    }
    for net in &cluster.layout().networks {
        w(
            out,
            format!(
                "  network {}: hub {}, router {} at {}",
                net.name, net.hub_ns, net.router_ns, net.reference
            ),
        );
    }
    cluster.start_daemons(&opts.exe)?;
    w(
        out,
        "starting a daemon per node; waiting until both report healthy…".into(),
    );
    let t = drill::wait_healthy(&cluster, Duration::from_secs(30), &stop).map_err(|e| {
        LabError::Spec(format!(
            "{e}\n  daemon logs: {}",
            cluster
                .layout()
                .nodes
                .iter()
                .map(|n| n.log.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    w(
        out,
        format!("both nodes healthy after {}\n", fmt_duration(Some(t))),
    );
    w(
        out,
        format!(
            "{:<3} {:<36} {:<42} {:<42} {:>9} {:>9} {:>9} {:>9}  {}",
            "#",
            "fault",
            "n1 verdict",
            "n2 verdict",
            "n1 det",
            "n2 det",
            "agreed",
            "isolated",
            "result"
        ),
    );
    let mut results = Vec::new();
    let mut explain_node: Option<String> = None;
    let mut explain_incident: Option<String> = None;
    for row in drill::design_matrix(opts.steady) {
        if !opts.rows.is_empty() && !opts.rows.contains(&row.number) {
            continue;
        }
        if stop() {
            return Err(LabError::Spec("interrupted".into()));
        }
        let r = drill::run_row(&mut cluster, &row, &opts.drill, &stop)?;
        let verdict = |n: &str| {
            r.verdicts
                .get(n)
                .cloned()
                .unwrap_or_else(|| "(down)".into())
        };
        // The daemon's own log timestamp when available (µs), else the polled time.
        let det = |n: &str| match r.detect.get(n) {
            None => "—".into(),
            Some(polled) => fmt_duration(
                polled
                    .and(r.detect_log.get(n).copied().flatten())
                    .or(*polled),
            ),
        };
        w(
            out,
            format!(
                "{:<3} {:<36} {:<42} {:<42} {:>9} {:>9} {:>9} {:>9}  {}",
                r.number,
                r.title,
                verdict("n1"),
                verdict("n2"),
                det("n1"),
                det("n2"),
                fmt_duration(r.agreement),
                fmt_duration(r.isolation.and(r.isolation_log).or(r.isolation)),
                if r.ok() {
                    "ok".to_string()
                } else {
                    format!("FAIL: {}", r.problems.join("; "))
                }
            ),
        );
        if row.number == 9 && r.ok() {
            explain_node = Some("n1".into());
            explain_incident = r.incident.clone();
        }
        results.push(r);
    }
    let healed = results.iter().filter(|r| r.healed.is_some()).count();
    w(
        out,
        format!(
            "\n12  heal after each: {healed}/{} rows back to healthy (incident closed)",
            results.len()
        ),
    );
    // One full explain: the cut-off incident as n1 journaled it (or n1's latest).
    let node = cluster
        .layout()
        .node(explain_node.as_deref().unwrap_or("n1"))?
        .clone();
    let journal = node.state_dir.display().to_string();
    let mut args = vec!["explain", "--no-color", "--journal", journal.as_str()];
    // The cut-off incident by its id: the latest incident is whatever the last row left.
    if let Some(id) = &explain_incident {
        args.push(id.as_str());
    }
    w(out, format!("\n$ hadiag {}\n", args.join(" ")));
    match crate::lab::sys::run_unchecked(&opts.exe.display().to_string(), &args, None) {
        Ok(o) => {
            let _ = out.write_all(&o.stdout);
            let _ = out.write_all(&o.stderr);
        }
        Err(e) => w(out, format!("(explain failed: {e})")),
    }
    if let Some(path) = &opts.report {
        let title = format!(
            "hadiag lab drill: {} of {} rows as expected",
            results.iter().filter(|r| r.ok()).count(),
            results.len()
        );
        match crate::lab::report::write(path, &title, &results) {
            Ok(()) => w(out, format!("\ndrill report: {}", path.display())),
            Err(e) => w(out, format!("\n(drill report not written: {e})")),
        }
    }
    w(out, "\ntearing the lab down…".into());
    let problems = cluster.teardown();
    if problems.is_empty() {
        w(
            out,
            "done: every namespace, link, pty, loop device and process removed.".into(),
        );
    } else {
        w(out, format!("teardown problems: {problems:?}"));
    }
    Ok(results)
}
