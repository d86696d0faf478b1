//! `fence_hadiag`: a fence-agent *gate* that asks the local hadiag daemon whether this node
//! may fence its peer — the decision and the standard fence-agent protocol, without I/O
//! (the `hadiag fence-agent` subcommand does the reading, the HTTP calls and the waiting).
//!
//! # Where it goes and why it works
//!
//! Pacemaker runs a fencing topology level by level: the devices of a level run in order;
//! if one fails, the rest of that level is skipped and the next level is tried; a level
//! whose devices all succeed ends the operation as fenced. So `fence_hadiag` is placed
//! *before the real device on the same level* (`devices="hadiag,ipmi-n2"`), like
//! fence-agents' `fence_heuristics_ping`:
//!
//! - **proceed** (exit 0): the peer is the cut-off or failed one — the real device after it
//!   runs at once;
//! - **refuse**: *this* node is the cut-off one — the agent holds for `hold` seconds
//!   (re-asking every second; if the verdict turns, it proceeds) and then fails, so the real
//!   device on that level never runs. With no further level the whole fence attempt fails
//!   and the cut-off node never shoots its peer; with a fallback level holding the real
//!   device alone, the refusal becomes a head start of `hold` seconds for the healthy
//!   peer, which fences the cut-off node first;
//! - **fail safe**: no answer from the daemon, or no verdict about either node within
//!   `settle` seconds — proceed, and say so: the ordinary delay logic (`pcmk_delay_base`,
//!   `priority-fencing-delay`) decides, exactly as without hadiag.
//!
//! `fence_hadiag` never powers anything off: alone on a level its success would tell
//! Pacemaker a node is down that is not. Its metadata says so.
//!
//! Must not: do I/O (no network, no clock): the caller passes what the daemon said.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Default wait for a verdict that names either node (hadiag usually decides well before
/// Corosync's token timeout; this covers a slower configuration).
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(10);
/// Default hold of a refusal (must stay below the device's `pcmk_off_timeout`, 60 s by
/// default, so the refusal ends as a failure, not as a timeout).
pub const DEFAULT_HOLD: Duration = Duration::from_secs(40);
/// Default daemon API address.
pub const DEFAULT_URL: &str = "http://127.0.0.1:9617";
/// Largest stdin read from the fencer (a handful of `name=value` lines).
pub const MAX_STDIN: u64 = 64 * 1024;
/// Longest `hold`/`settle` accepted (Pacemaker's own operation timeouts are minutes).
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// Fence-agent actions.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Off,
    On,
    Reboot,
    Monitor,
    Status,
    List,
    Metadata,
    ValidateAll,
}

impl Action {
    pub fn token(self) -> &'static str {
        match self {
            Action::Off => "off",
            Action::On => "on",
            Action::Reboot => "reboot",
            Action::Monitor => "monitor",
            Action::Status => "status",
            Action::List => "list",
            Action::Metadata => "metadata",
            Action::ValidateAll => "validate-all",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Some(match s.trim() {
            "off" | "disable" => Action::Off,
            "on" | "enable" => Action::On,
            "reboot" => Action::Reboot,
            "monitor" => Action::Monitor,
            "status" => Action::Status,
            "list" => Action::List,
            "metadata" => Action::Metadata,
            "validate-all" => Action::ValidateAll,
            _ => return None,
        })
    }
}

/// A parsed request (from stdin `name=value` lines, or the command line).
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub action: Action,
    /// The node to fence (`plug`, `port` or `nodename`).
    pub target: Option<String>,
    /// Daemon API base URL (`url`); default: from `config`, else [`DEFAULT_URL`].
    pub url: Option<String>,
    /// hadiag configuration file to read the API address and token from (`config`).
    pub config: Option<String>,
    /// File holding the API bearer token (`token_file`).
    pub token_file: Option<String>,
    pub settle: Duration,
    pub hold: Duration,
    /// Append one line per decision here (`log_file`), besides stderr.
    pub log_file: Option<String>,
    /// Parameters this agent does not know (the fencer passes its own; they are ignored).
    pub ignored: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FenceError {
    #[error("parameter {name}: {cause}")]
    Param { name: String, cause: String },
    #[error(
        "no action given (expected action=off|on|reboot|monitor|status|metadata|validate-all)"
    )]
    NoAction,
}

/// Parses the fencer's stdin (`name=value` lines, `#` comments) and fence-agent style
/// options (`-o ACTION`, `--action=ACTION`, `-n NODE`, `--plug=NODE`, `--name=value` for
/// any other parameter); an option overrides the same parameter on stdin.
pub fn parse(stdin: &str, args: &[String]) -> Result<Request, FenceError> {
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    {
        for line in stdin.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once('=') {
                Some((k, v)) => params.insert(k.trim().to_string(), v.trim().to_string()),
                None => params.insert(line.to_string(), "1".to_string()),
            };
        }
    }
    {
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (key, inline) = match a.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (a.clone(), None),
            };
            let name = match key.as_str() {
                "-o" | "--action" => "action".to_string(),
                "-n" | "--plug" | "--port" => "plug".to_string(),
                "-N" | "--nodename" => "nodename".to_string(),
                k if k.starts_with("--") => k[2..].replace('-', "_"),
                other => {
                    return Err(FenceError::Param {
                        name: other.to_string(),
                        cause: "unknown option (use --name=value)".into(),
                    })
                }
            };
            let value = match inline {
                Some(v) => v,
                None => it.next().cloned().ok_or_else(|| FenceError::Param {
                    name: name.clone(),
                    cause: "missing value".into(),
                })?,
            };
            params.insert(name, value);
        }
    }
    let action_text = params
        .remove("action")
        .or_else(|| params.remove("option"))
        .ok_or(FenceError::NoAction)?;
    let action = Action::parse(&action_text).ok_or_else(|| FenceError::Param {
        name: "action".into(),
        cause: format!("{action_text:?} is not one of off, on, reboot, monitor, status, list, metadata, validate-all"),
    })?;
    let seconds =
        |params: &mut BTreeMap<String, String>, name: &str, default: Duration| match params
            .remove(name)
        {
            None => Ok(default),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0 && *s <= MAX_WAIT.as_secs_f64())
                .map(Duration::from_secs_f64)
                .ok_or_else(|| FenceError::Param {
                    name: name.to_string(),
                    cause: format!(
                        "{v:?} is not a number of seconds between 0 and {}",
                        MAX_WAIT.as_secs()
                    ),
                }),
        };
    let settle = seconds(&mut params, "settle", DEFAULT_SETTLE)?;
    let hold = seconds(&mut params, "hold", DEFAULT_HOLD)?;
    let target = ["plug", "port", "nodename", "target"]
        .iter()
        .find_map(|k| params.get(*k).filter(|v| !v.is_empty()).cloned());
    for k in ["plug", "port", "nodename", "target"] {
        params.remove(k);
    }
    let url = params.remove("url").filter(|v| !v.is_empty());
    let config = params.remove("config").filter(|v| !v.is_empty());
    let token_file = params.remove("token_file").filter(|v| !v.is_empty());
    let log_file = params.remove("log_file").filter(|v| !v.is_empty());
    Ok(Request {
        action,
        target,
        url,
        config,
        token_file,
        settle,
        hold,
        log_file,
        ignored: params.into_keys().collect(),
    })
}

/// The part of the daemon's `/api/v1/status` the agent reads. Its own small type, so the
/// agent keeps working while the status grows (unknown fields are ignored).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct DaemonView {
    /// This node's name.
    pub node: String,
    #[serde(default)]
    pub isolated: bool,
    #[serde(default)]
    pub verdict: Option<VerdictView>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct VerdictView {
    pub kind: String,
    #[serde(default)]
    pub subjects: Vec<String>,
    #[serde(default)]
    pub summary: String,
}

/// What the daemon's answer means for fencing `target` from this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judgement {
    /// Let the real device run.
    Proceed(String),
    /// This node is the cut-off one: hold, then fail.
    Refuse(String),
    /// No verdict about either node (yet).
    Undecided(String),
}

/// Node names a verdict declares down (crashed, frozen or cut off): its `node X` subjects.
fn nodes_down(s: &DaemonView) -> (Vec<String>, &str) {
    let Some(v) = &s.verdict else {
        return (Vec::new(), "none");
    };
    let down = match v.kind.as_str() {
        "cut_off" | "node_failed" | "multiple_faults" => v
            .subjects
            .iter()
            .filter_map(|s| s.strip_prefix("node "))
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    (down, v.kind.as_str())
}

/// Judges a request to fence `target`, given this node's daemon status.
pub fn judge(s: &DaemonView, target: &str) -> Judgement {
    let me = s.node.as_str();
    let (down, kind) = nodes_down(s);
    let summary = s
        .verdict
        .as_ref()
        .map_or_else(|| "no verdict".to_string(), |v| v.summary.clone());
    if target == me {
        return Judgement::Proceed(format!(
            "{me} is asked to fence itself: not hadiag's to stop"
        ));
    }
    if s.isolated {
        return Judgement::Refuse(format!(
            "{me} has isolated itself ({summary}): it must not fence {target}"
        ));
    }
    if down.iter().any(|n| n == me) {
        return Judgement::Refuse(format!(
            "hadiag on {me} says {me} is the node cut off ({kind}: {summary}): it must not fence {target}"
        ));
    }
    if down.iter().any(|n| n == target) {
        return Judgement::Proceed(format!(
            "hadiag on {me} says {target} is down ({kind}: {summary})"
        ));
    }
    Judgement::Undecided(format!(
        "hadiag on {me} has no verdict about {me} or {target} ({kind}: {summary})"
    ))
}

/// The agent's metadata (fence-agents' `resource-agent` format).
pub fn metadata() -> String {
    let param = |name: &str, required: bool, kind: &str, default: Option<&str>, short: &str| {
        let default = default.map_or(String::new(), |d| format!(" default=\"{d}\""));
        format!(
            "\t<parameter name=\"{name}\" unique=\"0\" required=\"{}\">\n\t\t<getopt mixed=\"--{}=[value]\" />\n\t\t<content type=\"{kind}\"{default} />\n\t\t<shortdesc lang=\"en\">{short}</shortdesc>\n\t</parameter>\n",
            u8::from(required),
            name.replace('_', "-")
        )
    };
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" ?>\n");
    x.push_str("<resource-agent name=\"fence_hadiag\" shortdesc=\"Fencing gate driven by the hadiag failure classifier\" >\n");
    x.push_str("<longdesc>fence_hadiag asks the local hadiag daemon which node is cut off before the real fence device on the same fencing level runs. \
It is not a fence device by itself and never powers anything off: put it first on a level, before the real device (devices=\"hadiag,ipmi\"). \
If hadiag says this node is the cut-off one, the agent holds for 'hold' seconds and then fails, so the real device on that level does not run and the healthy peer wins the fence race. \
If hadiag says the target is cut off or failed, it succeeds at once. Without an answer from hadiag, or without a verdict about either node within 'settle' seconds, it succeeds and logs that the ordinary delay logic decides.</longdesc>\n");
    x.push_str("<vendor-url></vendor-url>\n<parameters>\n");
    x.push_str(&param(
        "action",
        true,
        "string",
        Some("reboot"),
        "Fencing action",
    ));
    x.push_str(&param(
        "plug",
        false,
        "string",
        None,
        "Node to fence (set by the fencer)",
    ));
    x.push_str(&param(
        "url",
        false,
        "string",
        Some(DEFAULT_URL),
        "Base URL of the local hadiag API (default: from config, else 127.0.0.1:9617)",
    ));
    x.push_str(&param(
        "config",
        false,
        "string",
        None,
        "hadiag configuration file to read the API address and token from",
    ));
    x.push_str(&param(
        "token_file",
        false,
        "string",
        None,
        "File with the hadiag API bearer token",
    ));
    x.push_str(&param(
        "settle",
        false,
        "second",
        Some("10"),
        "Seconds to wait for a verdict about either node before letting fencing proceed",
    ));
    x.push_str(&param(
        "hold",
        false,
        "second",
        Some("40"),
        "Seconds a refusal holds before failing (keep below pcmk_off_timeout)",
    ));
    x.push_str(&param(
        "log_file",
        false,
        "string",
        None,
        "Append one line per decision to this file",
    ));
    x.push_str("</parameters>\n<actions>\n");
    for a in [
        "on\" automatic=\"0",
        "off",
        "reboot",
        "status",
        "monitor",
        "metadata",
        "validate-all",
    ] {
        x.push_str(&format!("\t<action name=\"{a}\" />\n"));
    }
    x.push_str("</actions>\n</resource-agent>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(me: &str, kind: &str, subjects: &[&str], isolated: bool) -> DaemonView {
        let v = serde_json::json!({
            "node": me, "cluster": "c", "isolated": isolated, "networks": [],
            "verdict": { "at": "2026-01-01T00:00:00.000Z", "kind": kind, "subjects": subjects, "summary": "s" }
        });
        serde_json::from_value(v).expect("snapshot")
    }

    #[test]
    fn cut_off_self_refuses_and_cut_off_peer_proceeds() {
        let on_n2 = snapshot("n2", "cut_off", &["node n2"], false);
        assert!(matches!(judge(&on_n2, "n1"), Judgement::Refuse(_)));
        let on_n1 = snapshot("n1", "cut_off", &["node n2"], false);
        assert!(matches!(judge(&on_n1, "n2"), Judgement::Proceed(_)));
        let failed = snapshot("n1", "node_failed", &["node n2"], false);
        assert!(matches!(judge(&failed, "n2"), Judgement::Proceed(_)));
    }

    #[test]
    fn no_verdict_about_either_node_is_undecided_and_isolation_refuses() {
        let healthy = snapshot("n1", "healthy", &[], false);
        assert!(matches!(judge(&healthy, "n2"), Judgement::Undecided(_)));
        let nic = snapshot("n1", "attachment_failed", &["attachment n2.A"], false);
        assert!(matches!(judge(&nic, "n2"), Judgement::Undecided(_)));
        let isolated = snapshot("n2", "healthy", &[], true);
        assert!(matches!(judge(&isolated, "n1"), Judgement::Refuse(_)));
    }

    #[test]
    fn stdin_and_command_line_parse_alike() {
        let r = parse(
            "action=off\nport=n2\nnodename=n2\nhold=5\nurl=http://127.0.0.1:9405\npcmk_x=1\n",
            &[],
        )
        .unwrap();
        assert_eq!(r.action, Action::Off);
        assert_eq!(r.target.as_deref(), Some("n2"));
        assert_eq!(r.hold, Duration::from_secs(5));
        assert_eq!(r.ignored, vec!["pcmk_x".to_string()]);
        let args: Vec<String> = ["-o", "reboot", "--plug=n2", "--settle=2.5"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let c = parse("", &args).unwrap();
        assert_eq!(
            (c.action, c.target.as_deref(), c.settle),
            (Action::Reboot, Some("n2"), Duration::from_millis(2500))
        );
        assert_eq!(parse("port=n2\n", &[]), Err(FenceError::NoAction));
        assert!(matches!(
            parse("action=explode\n", &[]),
            Err(FenceError::Param { .. })
        ));
        assert!(matches!(
            parse("action=off\nhold=-1\n", &[]),
            Err(FenceError::Param { .. })
        ));
    }

    #[test]
    fn metadata_names_every_action() {
        let m = metadata();
        for a in [
            "off",
            "reboot",
            "monitor",
            "status",
            "metadata",
            "validate-all",
        ] {
            assert!(m.contains(&format!("<action name=\"{a}\"")), "{a}");
        }
    }
}
