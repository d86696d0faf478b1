//! Reading what the lab's daemons think: each node's verdict and isolation state from its
//! JSON API (`/api/v1/status`, falling back to `/api/v1/diagnosis`), the state of its daemon
//! process, and the marker files its hooks wrote.
//!
//! JSON is read loosely (serde_json::Value, known field names) so the lab keeps working while
//! the API grows. Must not: change anything in the lab.

use crate::lab::config;
use crate::lab::error::Result;
use crate::lab::http;
use crate::lab::layout::{Layout, NodeLayout};
use crate::lab::state::LabState;
use crate::lab::sys;
use serde_json::Value;
use std::time::Duration;

/// Per-request timeout of API reads (loopback; a frozen daemon must not stall the caller long).
pub const API_TIMEOUT: Duration = Duration::from_millis(500);

/// What a daemon process is doing.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum DaemonState {
    NotStarted,
    Running,
    /// SIGSTOPped.
    Frozen,
    Dead,
}

impl DaemonState {
    pub fn token(self) -> &'static str {
        match self {
            DaemonState::NotStarted => "not started",
            DaemonState::Running => "running",
            DaemonState::Frozen => "frozen",
            DaemonState::Dead => "dead",
        }
    }
}

/// One node's current verdict as its API reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeVerdict {
    /// Verdict kind token (`healthy`, `attachment_failed`, …); empty when none yet.
    pub kind: String,
    pub subjects: Vec<String>,
    pub summary: String,
    pub incident: Option<String>,
    pub isolated: bool,
    /// Read from the JSON API (true) or from the once-a-second status file (false).
    pub from_api: bool,
}

impl NodeVerdict {
    /// `kind` equals and every `needle` occurs in some subject.
    pub fn matches(&self, kind: &str, needles: &[&str]) -> bool {
        self.kind == kind
            && needles
                .iter()
                .all(|n| self.subjects.iter().any(|s| s.contains(n)))
    }

    pub fn short(&self) -> String {
        if self.kind.is_empty() {
            return "(no verdict yet)".into();
        }
        let mut s = if self.subjects.is_empty() {
            self.kind.clone()
        } else {
            format!("{} [{}]", self.kind, self.subjects.join(", "))
        };
        if self.isolated {
            s.push_str(" ISOLATED");
        }
        s
    }
}

pub fn daemon_state(state: &LabState, node: &str) -> DaemonState {
    match state.processes.get(&format!("daemon:{node}")) {
        None => DaemonState::NotStarted,
        Some(r) if !r.is_alive() => DaemonState::Dead,
        Some(r) => match sys::process_state(r.pid) {
            Some('T' | 't') => DaemonState::Frozen,
            _ => DaemonState::Running,
        },
    }
}

fn str_field(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn verdict_from(d: &Value) -> NodeVerdict {
    NodeVerdict {
        kind: str_field(d, "kind"),
        subjects: d
            .get("subjects")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
        summary: str_field(d, "summary"),
        incident: d.get("incident").and_then(Value::as_str).map(String::from),
        isolated: false,
        from_api: false,
    }
}

/// GETs a JSON document from `node`'s API inside its namespace.
pub fn api_get(node: &NodeLayout, path: &str) -> Result<Value> {
    let (status, body) = http::get_in_ns(&node.ns, node.listen, path, API_TIMEOUT)?;
    if status != 200 {
        return Err(crate::lab::LabError::Spec(format!(
            "{} {path}: HTTP {status}: {}",
            node.name,
            body.chars().take(200).collect::<String>()
        )));
    }
    serde_json::from_str(&body)
        .map_err(|e| crate::lab::LabError::Spec(format!("{} {path}: bad JSON: {e}", node.name)))
}

/// A status file older than this is not believed (the daemon rewrites it every second).
pub const STATUS_FILE_MAX_AGE: Duration = Duration::from_secs(3);

/// The node's verdict and isolation flag: from its JSON API, or — when the API does not
/// answer — from the status file the daemon rewrites every second
/// (`<state_dir>/status-<node>.json`; coarser timing).
pub fn node_verdict(node: &NodeLayout) -> Result<NodeVerdict> {
    match node_verdict_api(node) {
        Ok(v) => Ok(v),
        Err(api_err) => node_verdict_file(node).map_err(|file_err| {
            crate::lab::LabError::Spec(format!("{api_err}; status file: {file_err}"))
        }),
    }
}

/// The verdict from the daemon's status file.
pub fn node_verdict_file(node: &NodeLayout) -> Result<NodeVerdict> {
    let path = node.state_dir.join(format!("status-{}.json", node.name));
    let meta = std::fs::metadata(&path).map_err(|e| crate::lab::LabError::io(&path, e))?;
    let age = meta
        .modified()
        .ok()
        .and_then(|m| m.elapsed().ok())
        .unwrap_or_default();
    if age > STATUS_FILE_MAX_AGE {
        return Err(crate::lab::LabError::Spec(format!(
            "{}: stale ({age:?} old)",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(&path).map_err(|e| crate::lab::LabError::io(&path, e))?;
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| crate::lab::LabError::Spec(format!("{}: bad JSON: {e}", path.display())))?;
    let mut v = verdict_from(&doc);
    v.kind = str_field(&doc, "verdict");
    v.isolated = str_field(&doc, "role") == "isolated";
    v.from_api = false;
    Ok(v)
}

/// The verdict from the daemon's JSON API.
pub fn node_verdict_api(node: &NodeLayout) -> Result<NodeVerdict> {
    let status = api_get(node, "/api/v1/status")?;
    let isolated = status
        .get("isolated")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut v = match status.get("verdict") {
        Some(d) if d.is_object() => verdict_from(d),
        _ => {
            let doc = api_get(node, "/api/v1/diagnosis")?;
            doc.get("diagnosis")
                .filter(|d| d.is_object())
                .map(verdict_from)
                .unwrap_or_default()
        }
    };
    if v.incident.is_none() {
        v.incident = status
            .get("incident")
            .and_then(|i| i.get("id"))
            .and_then(Value::as_str)
            .map(String::from);
    }
    v.isolated = isolated;
    v.from_api = true;
    Ok(v)
}

/// Every node's verdict (Err text for nodes whose API does not answer).
pub fn all_verdicts(layout: &Layout) -> Vec<(String, std::result::Result<NodeVerdict, String>)> {
    layout
        .nodes
        .iter()
        .map(|n| (n.name.clone(), node_verdict(n).map_err(|e| e.to_string())))
        .collect()
}

/// Lines the node's hook scripts appended to a marker (`config::ISOLATE_MARKER`, …).
pub fn marker_lines(node: &NodeLayout, marker: &str) -> Vec<String> {
    std::fs::read_to_string(node.dir.join(marker))
        .map(|s| s.lines().map(String::from).collect())
        .unwrap_or_default()
}

pub fn isolate_calls(node: &NodeLayout) -> Vec<String> {
    marker_lines(node, config::ISOLATE_MARKER)
}

pub fn takeover_calls(node: &NodeLayout) -> Vec<String> {
    marker_lines(node, config::TAKEOVER_MARKER)
}

/// One line of a daemon's log (tracing fmt: `<RFC 3339 UTC> <LEVEL> <message> k=v …`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEvent {
    pub at: std::time::SystemTime,
    /// Message and fields, ANSI colours removed.
    pub text: String,
}

/// Current length of `node`'s daemon log (read events after this offset later).
pub fn log_offset(node: &NodeLayout) -> u64 {
    std::fs::metadata(&node.log).map_or(0, |m| m.len())
}

/// Largest log slice read at once: a drill row produces a few KiB; the bound keeps a runaway
/// log from being read whole.
const MAX_LOG_READ_BYTES: u64 = 16 * 1024 * 1024;

/// Log lines written after `offset`, with their timestamps (lines that do not parse are
/// skipped: the log is read for timing only, verdicts come from the API).
pub fn log_events_since(node: &NodeLayout, offset: u64) -> Vec<LogEvent> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(&node.log) else {
        return Vec::new();
    };
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return Vec::new();
    }
    let mut raw = Vec::new();
    if f.take(MAX_LOG_READ_BYTES).read_to_end(&mut raw).is_err() {
        return Vec::new();
    }
    String::from_utf8_lossy(&raw)
        .lines()
        .filter_map(parse_log_line)
        .collect()
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ params final-byte(@..~)
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn parse_log_line(line: &str) -> Option<LogEvent> {
    let line = strip_ansi(line);
    let rest = line.trim_start();
    let (ts, rest) = rest.split_once(char::is_whitespace)?;
    let at = chrono::DateTime::parse_from_rfc3339(ts).ok()?;
    let (_level, rest) = rest.trim_start().split_once(char::is_whitespace)?;
    // Debug-formatted fields are quoted (`verdict="healthy"`): drop quotes for matching.
    let text = rest.trim_start().replace('"', "");
    let at: std::time::SystemTime = at.with_timezone(&chrono::Utc).into();
    Some(LogEvent { at, text })
}

/// First "diagnosis changed" to `kind` whose subjects contain every needle.
pub fn first_diagnosis<'a>(
    events: &'a [LogEvent],
    kind: &str,
    needles: &[&str],
) -> Option<&'a LogEvent> {
    let want = format!("verdict={kind} ");
    events.iter().find(|e| {
        e.text.starts_with("diagnosis changed")
            && (e.text.contains(&want) || e.text.ends_with(&format!("verdict={kind}")))
            && needles.iter().all(|n| {
                let subj = e.text.split("subjects=").nth(1).unwrap_or_default();
                let subj = subj.split(" previous=").next().unwrap_or_default();
                subj.contains(n)
            })
    })
}

/// First event whose message starts with `message` (e.g. `isolating this node`).
pub fn first_message<'a>(events: &'a [LogEvent], message: &str) -> Option<&'a LogEvent> {
    events.iter().find(|e| e.text.starts_with(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_daemon_log_lines() {
        let l = "\u{1b}[2m2026-11-26T02:28:11.428691Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m diagnosis changed \u{1b}[3mverdict\u{1b}[0m\u{1b}[2m=\u{1b}[0m\"attachment_failed\" \u{1b}[3msubjects\u{1b}[0m\u{1b}[2m=\u{1b}[0mattachment n2.A \u{1b}[3mprevious\u{1b}[0m\u{1b}[2m=\u{1b}[0mhealthy";
        let e = parse_log_line(l).expect("parses");
        assert!(
            e.text.starts_with(
                "diagnosis changed verdict=attachment_failed subjects=attachment n2.A"
            ),
            "{}",
            e.text
        );
        let evs = vec![e];
        assert!(first_diagnosis(&evs, "attachment_failed", &["n2.A"]).is_some());
        assert!(first_diagnosis(&evs, "attachment_failed", &["n1.A"]).is_none());
        assert!(first_diagnosis(&evs, "healthy", &[]).is_none());
        assert!(parse_log_line("not a log line").is_none());
    }
}
