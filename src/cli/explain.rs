//! `hadiag explain [INCIDENT] [--json] [--journal PATH]`: why a verdict was reached.
//!
//! The verdict and when; the evidence table; the reasoning (the explanation chosen and each
//! rival ruled out, with the observation that rules it out); what each node saw; the actions
//! taken and their outcomes; a timeline. Live from the daemon's API, or offline from the
//! journal — the node that most needs an explanation may be the isolated one.
//!
//! Read-only: it never changes the daemon or the journal.

use super::status::{api_json, ApiArgs, Style, Table};
use crate::journal::book::{IncidentBook, IncidentRecord};
use crate::journal::record::{fmt_ts, parse_incident_ref, DiagnosisRecord, ViewRecord};
use crate::journal::{journal_files, scan_recent, LineProblem, EXPLAIN_READ_BYTES};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug, Clone)]
pub struct ExplainArgs {
    /// Incident id (e.g. `n1-3`); default: the latest incident, else the current verdict.
    pub incident: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Read a journal (state directory or journal file) instead of asking the daemon: its
    /// newest 32 MiB, streamed from the end (an older rotated file reaches further back).
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,
    /// List the incidents known instead of explaining one.
    #[arg(long)]
    pub list: bool,
    #[command(flatten)]
    pub api: ApiArgs,
    /// Never use colour.
    #[arg(long)]
    pub no_color: bool,
}

/// What `explain` shows when there is no incident: the latest verdict and the views.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VerdictOnly {
    pub diagnosis: Option<DiagnosisRecord>,
    #[serde(default)]
    pub views: BTreeMap<String, ViewRecord>,
}

/// Renders one incident for an operator.
pub fn render_incident(r: &IncidentRecord, style: &Style) -> String {
    let mut out = String::new();
    let d = &r.latest;
    out.push_str(&format!(
        "{} {}: {}\n",
        style.bold("incident"),
        style.bold(&r.id),
        style.verdict(&r.kind, &r.diagnosis.summary)
    ));
    out.push_str(&format!(
        "  kind: {}   subjects: {}\n",
        r.kind,
        if r.subjects.is_empty() {
            "-".to_string()
        } else {
            r.subjects.join(", ")
        }
    ));
    out.push_str(&format!(
        "  opened: {} (recorded by {})\n",
        fmt_ts(&r.opened_at),
        r.recorded_by
    ));
    match r.closed_at {
        Some(c) => {
            let dur = (c - r.opened_at).num_milliseconds() as f64 / 1000.0;
            let why = if r.close_reason.is_empty() {
                String::new()
            } else {
                format!(" — {}", r.close_reason)
            };
            out.push_str(&format!("  closed: {} after {dur:.1}s{why}\n", fmt_ts(&c)));
        }
        None => out.push_str(&format!("  closed: {}\n", style.yellow("still open"))),
    }
    if !r.agreed_by.is_empty() {
        out.push_str(&format!("  agreed by: {}\n", r.agreed_by.join(", ")));
    }
    if d.summary != r.diagnosis.summary {
        out.push_str(&format!(
            "  latest verdict: {} (at {})\n",
            style.verdict(&d.kind, &d.summary),
            fmt_ts(&d.at)
        ));
    }
    out.push_str(&render_reasoning(&r.diagnosis, style));
    out.push_str(&render_views(&r.views, style));
    if !r.actions.is_empty() {
        out.push_str(&format!("\n{}\n", style.bold("actions")));
        let mut t = Table::new(&["time", "action", "target", "outcome", "duration", "output"]);
        for a in &r.actions {
            let x = &a.action;
            let outcome = if x.ok {
                "ok".to_string()
            } else if x.timed_out {
                "timed out".to_string()
            } else {
                match x.exit_status {
                    Some(c) => format!("failed (exit {c})"),
                    None => "failed".to_string(),
                }
            };
            let styled = if x.ok {
                style.green(&outcome)
            } else {
                style.red(&outcome)
            };
            let head: String = x
                .output_head
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(60)
                .collect();
            let dur = format!("{:.2}s", x.duration_seconds);
            let target = x.target.clone().unwrap_or_else(|| "self".into());
            t.styled_row(vec![
                (fmt_ts(&a.at), fmt_ts(&a.at)),
                (x.action.clone(), x.action.clone()),
                (target.clone(), target),
                (outcome, styled),
                (dur.clone(), dur),
                (head.clone(), head),
            ]);
        }
        out.push_str(&t.render(style, "  "));
    } else {
        out.push_str(&format!(
            "\n{}\n  none (no isolation, takeover or fence was needed)\n",
            style.bold("actions")
        ));
    }
    if !r.alerts.is_empty() {
        out.push_str(&format!("\n{}\n", style.bold("alerts")));
        let mut t = Table::new(&["time", "rule", "type", "channel", "subject", "result"]);
        for a in &r.alerts {
            let x = &a.alert;
            let res = if x.ok {
                format!("ok ({})", x.detail)
            } else {
                format!("failed after {} attempt(s): {}", x.attempts, x.detail)
            };
            let res: String = res.chars().take(80).collect();
            let styled = if x.ok {
                style.green(&res)
            } else {
                style.red(&res)
            };
            t.styled_row(vec![
                (fmt_ts(&a.at), fmt_ts(&a.at)),
                (x.rule.clone(), x.rule.clone()),
                (x.alert_type.clone(), x.alert_type.clone()),
                (x.channel.clone(), x.channel.clone()),
                (x.subject.clone(), x.subject.clone()),
                (res, styled),
            ]);
        }
        out.push_str(&t.render(style, "  "));
    }
    if !r.timeline.is_empty() {
        out.push_str(&format!("\n{}\n", style.bold("timeline")));
        let mut t = Table::new(&["time", "node", "what"]);
        for i in &r.timeline {
            t.row(vec![fmt_ts(&i.at), i.node.clone(), i.text.clone()]);
        }
        out.push_str(&t.render(style, "  "));
    }
    out
}

/// Evidence and reasoning of one verdict.
pub fn render_reasoning(d: &DiagnosisRecord, style: &Style) -> String {
    let mut out = String::new();
    out.push_str(&format!("\n{}\n", style.bold("evidence")));
    if d.support.is_empty() {
        out.push_str("  (no supporting observations recorded)\n");
    } else {
        let mut t = Table::new(&["time", "seen by", "observation"]);
        for s in &d.support {
            let at = s.at.as_ref().map(fmt_ts).unwrap_or_else(|| "-".into());
            t.row(vec![at, s.node.clone(), s.text.clone()]);
        }
        out.push_str(&t.render(style, "  "));
    }
    out.push_str(&format!("\n{}\n", style.bold("reasoning")));
    let chosen = if d.faults.is_empty() {
        d.summary.clone()
    } else {
        d.faults
            .iter()
            .map(|f| format!("{} {}", f.component, f.mode))
            .collect::<Vec<_>>()
            .join(" + ")
    };
    out.push_str(&format!(
        "  chosen: {} — the smallest set of failures consistent with every observation\n",
        style.verdict(&d.kind, &chosen)
    ));
    if !d.degradations.is_empty() {
        let list: Vec<String> = d
            .degradations
            .iter()
            .map(|f| format!("{} {}", f.component, f.mode))
            .collect();
        out.push_str(&format!("  also degraded: {}\n", list.join(", ")));
    }
    if d.rivals.is_empty() {
        out.push_str("  rivals: none of equal or next size\n");
    }
    for r in &d.rivals {
        match &r.ruled_out_by {
            Some(e) => {
                let when =
                    e.at.as_ref()
                        .map(|t| format!(" (at {}", fmt_ts(t)))
                        .unwrap_or_default();
                let who = if e.node.is_empty() {
                    String::new()
                } else if when.is_empty() {
                    format!(" (seen by {})", e.node)
                } else {
                    format!(", seen by {}", e.node)
                };
                let close = if when.is_empty() { "" } else { ")" };
                out.push_str(&format!(
                    "  ruled out: {} — {}{when}{who}{close}\n",
                    r.explanation, e.text
                ));
            }
            None => out.push_str(&format!(
                "  not ruled out: {}\n",
                style.yellow(&r.explanation)
            )),
        }
    }
    if d.ambiguous {
        out.push_str(&format!(
            "  {}\n",
            style.yellow("AMBIGUOUS: equally small explanations remain")
        ));
        for a in &d.alternatives {
            out.push_str(&format!("    - {a}\n"));
        }
    }
    if let Some(h) = &d.settle_hint {
        out.push_str(&format!("  to settle it: {h}\n"));
    }
    for n in &d.notes {
        out.push_str(&format!("  note: {n}\n"));
    }
    out
}

/// What each node saw.
pub fn render_views(views: &BTreeMap<String, ViewRecord>, style: &Style) -> String {
    let mut out = String::new();
    if views.is_empty() {
        return out;
    }
    out.push_str(&format!("\n{}\n", style.bold("what each node saw")));
    let mut t = Table::new(&[
        "node",
        "network",
        "carrier",
        "reference",
        "hears",
        "degraded",
    ]);
    for (node, v) in views {
        for (net, nv) in &v.nets {
            let hears = if nv.heard.is_empty() {
                "nobody".to_string()
            } else {
                nv.heard.join(",")
            };
            let hears_styled = if nv.heard.is_empty() {
                style.red(&hears)
            } else {
                hears.clone()
            };
            let deg = if nv.degraded.is_empty() {
                "-".to_string()
            } else {
                nv.degraded.join(",")
            };
            t.styled_row(vec![
                (node.clone(), node.clone()),
                (net.clone(), net.clone()),
                (nv.carrier.clone(), style.state(&nv.carrier)),
                (nv.reference.clone(), style.state(&nv.reference)),
                (hears, hears_styled),
                (deg.clone(), deg),
            ]);
        }
    }
    out.push_str(&t.render(style, "  "));
    let mut t = Table::new(&["node", "serial", "disk", "failing monitors", "state"]);
    for (node, v) in views {
        let serial = if v.serial.is_empty() {
            "-".to_string()
        } else {
            v.serial
                .iter()
                .map(|(p, h)| format!("{p}:{}", if *h { "heard" } else { "silent" }))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mons = if v.failing_monitors.is_empty() {
            "-".to_string()
        } else {
            v.failing_monitors.join(",")
        };
        let state = if v.isolated {
            "isolated"
        } else if v.quiesced {
            "maintenance"
        } else {
            "active"
        }
        .to_string();
        let state_styled = if v.isolated {
            style.red(&state)
        } else {
            state.clone()
        };
        t.styled_row(vec![
            (node.clone(), node.clone()),
            (serial.clone(), serial),
            (v.disk.clone(), style.state(&v.disk)),
            (mons.clone(), mons),
            (state, state_styled),
        ]);
    }
    out.push_str(&t.render(style, "  "));
    out
}

/// The current verdict when there is no incident.
pub fn render_verdict_only(v: &VerdictOnly, style: &Style) -> String {
    let mut out = String::new();
    match &v.diagnosis {
        Some(d) => {
            out.push_str(&format!(
                "{} {} (at {})\n",
                style.bold("verdict:"),
                style.verdict(&d.kind, &d.summary),
                fmt_ts(&d.at)
            ));
            out.push_str("  no incident recorded\n");
            out.push_str(&render_reasoning(d, style));
        }
        None => out.push_str("no verdict recorded yet\n"),
    }
    out.push_str(&render_views(&v.views, style));
    out
}

/// Unreadable journal lines reported one by one; more are counted.
const MAX_PROBLEMS: usize = 20;

enum Found {
    Incident(Box<IncidentRecord>),
    Verdict(Box<VerdictOnly>),
    List(Vec<crate::journal::IncidentListItem>),
}

fn offline(
    args: &ExplainArgs,
    path: &std::path::Path,
) -> Result<(Found, Vec<LineProblem>), (u8, String)> {
    let files = journal_files(path);
    if files.is_empty() {
        let what = if path.is_dir() {
            "no journal in this directory"
        } else {
            "no such journal file"
        };
        return Err((1, format!("{}: {what}", path.display())));
    }
    // Streamed from the end into the book: bounded time and memory whatever the journal's size.
    let mut book = IncidentBook::new();
    let mut problems = Vec::new();
    let mut more_problems = 0usize;
    let rep = scan_recent(
        &files,
        EXPLAIN_READ_BYTES,
        |e| book.apply(&e),
        |p| {
            if problems.len() < MAX_PROBLEMS {
                problems.push(p);
            } else {
                more_problems += 1;
            }
        },
    )
    .map_err(|e| (1, e.to_string()))?;
    if more_problems > 0 {
        eprintln!("warning: {more_problems} more unreadable line(s) skipped");
    }
    let older = if rep.truncated {
        format!(
            "; only the newest {} MiB were read — for older history pass an older rotated file (e.g. {})",
            EXPLAIN_READ_BYTES >> 20,
            files.last().map_or_else(String::new, |f| f.display().to_string())
        )
    } else {
        String::new()
    };
    if args.list {
        if rep.truncated {
            eprintln!("note: {}", older.trim_start_matches("; "));
        }
        return Ok((
            Found::List(book.all().map(|r| r.list_item()).collect()),
            problems,
        ));
    }
    let found = match &args.incident {
        Some(id) => match book.get(id) {
            Some(r) => Found::Incident(Box::new(r.clone())),
            None => {
                let known: Vec<String> = book.all().map(|r| r.id.clone()).collect();
                let hint = if known.is_empty() {
                    "the journal holds no incidents".to_string()
                } else {
                    format!("known: {}", known.join(", "))
                };
                return Err((
                    1,
                    format!("no incident {id} in {} ({hint}{older})", path.display()),
                ));
            }
        },
        None => match book.last() {
            Some(r) => Found::Incident(Box::new(r.clone())),
            None => Found::Verdict(Box::new(VerdictOnly {
                diagnosis: book.latest_diagnosis().cloned(),
                views: book.latest_views().clone(),
            })),
        },
    };
    Ok((found, problems))
}

fn live(args: &ExplainArgs) -> Result<Found, (u8, String)> {
    let ep = args.api.endpoint().map_err(|e| (2, format!("{e:#}")))?;
    let list = |ep| -> Result<Vec<crate::journal::IncidentListItem>, (u8, String)> {
        #[derive(Deserialize)]
        struct L {
            incidents: Vec<crate::journal::IncidentListItem>,
        }
        api_json::<L>(ep, "/api/v1/incidents")
            .map(|l| l.incidents)
            .map_err(|e| (1, format!("{e:#}")))
    };
    if args.list {
        return Ok(Found::List(list(&ep)?));
    }
    let id = match &args.incident {
        Some(id) => Some(id.clone()),
        None => list(&ep)?.last().map(|i| i.id.clone()),
    };
    match id {
        Some(id) => {
            let r: IncidentRecord = api_json(&ep, &format!("/api/v1/incidents/{id}"))
                .map_err(|e| (1, format!("{e:#}")))?;
            Ok(Found::Incident(Box::new(r)))
        }
        None => {
            let v: VerdictOnly =
                api_json(&ep, "/api/v1/diagnosis").map_err(|e| (1, format!("{e:#}")))?;
            Ok(Found::Verdict(Box::new(v)))
        }
    }
}

pub fn run(args: ExplainArgs) -> ExitCode {
    if let Some(id) = &args.incident {
        if parse_incident_ref(id).is_none() {
            eprintln!(
                "hadiag explain: bad incident id {id:?}: expected <node>-<number>, e.g. n1-3"
            );
            return ExitCode::from(2);
        }
    }
    let style = Style::detect(args.no_color || args.json);
    let (found, problems) = match &args.journal {
        Some(p) => match offline(&args, p) {
            Ok(x) => x,
            Err((code, msg)) => {
                eprintln!("hadiag explain: {msg}");
                return ExitCode::from(code);
            }
        },
        None => match live(&args) {
            Ok(f) => (f, Vec::new()),
            Err((code, msg)) => {
                eprintln!("hadiag explain: {msg}");
                if args.journal.is_none() && code == 1 {
                    eprintln!("hint: offline, read the journal instead: hadiag explain --journal /var/lib/hadiag");
                }
                return ExitCode::from(code);
            }
        },
    };
    for p in &problems {
        eprintln!("warning: {p}");
    }
    let text = if args.json {
        let v = match &found {
            Found::Incident(r) => serde_json::to_value(r),
            Found::Verdict(v) => serde_json::to_value(v),
            Found::List(l) => serde_json::to_value(serde_json::json!({ "incidents": l })),
        };
        match v.and_then(|v| serde_json::to_string_pretty(&v)) {
            Ok(s) => s + "\n",
            Err(e) => {
                eprintln!("hadiag explain: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        match &found {
            Found::Incident(r) => render_incident(r, &style),
            Found::Verdict(v) => render_verdict_only(v, &style),
            Found::List(l) => {
                let mut t = Table::new(&["incident", "opened", "closed", "verdict"]);
                for i in l {
                    let closed = i
                        .closed_at
                        .as_ref()
                        .map(fmt_ts)
                        .unwrap_or_else(|| "open".into());
                    t.row(vec![
                        i.id.clone(),
                        fmt_ts(&i.opened_at),
                        closed,
                        i.summary.clone(),
                    ]);
                }
                t.render(&style, "")
            }
        }
    };
    print!("{text}");
    ExitCode::SUCCESS
}
