//! YAML configuration: parsed, resolved and validated into a [`Topology`] plus everything the
//! daemon and the operator side need (auth key, listen address, monitors, hooks, alerts, journal,
//! policy).
//!
//! Two stages, both collecting *every* problem rather than stopping at the first:
//! 1. **parse**: the file is read through the serde_yaml API (`serde_norway`) into a value tree;
//!    a second, event-level pass (`saphyr-parser`) builds a path → line:column index and finds
//!    duplicate keys (duplicate node or network names).
//! 2. **resolve + validate**: the value tree is walked against the schema (unknown fields with a
//!    suggestion, types, durations, addresses) and then the whole topology is checked (undefined
//!    networks, reciprocal serial lines, timer margins, key file, wire size bound, ...).
//!
//! Every error names `file:line:column: field.path: cause`. Node and network ids follow file
//! order, so every node that loads the same file agrees on them.
//!
//! This module reads the configuration file, the key file and the API token file; it must not
//! touch the network, spawn anything or read any other state.

use crate::core::diagnosis::{Component, VerdictKind};
use crate::core::topology::{NodeId, Topology};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod duration;
mod index;
mod reload;
pub mod render;
mod schema;
mod suggest;
mod validate;
mod wire_size;
pub use validate::{
    fence_margin, isolate_hook_longest, isolate_hook_room, MAX_NETWORKS, MAX_NODES,
};
pub use wire_size::{worst_heartbeats, HeartbeatSize};

pub use reload::{reload_plan, ReloadPlan};
pub use suggest::nearest;

/// Default metrics/API listen address: loopback only (exposing it is an explicit choice).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9617";
/// Default state directory (journal, incarnation counter).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/hadiag";
/// Minimum authentication key length in bytes (128 bits).
pub const MIN_KEY_BYTES: usize = 16;

/// A validated configuration. Built only by [`load`] (or [`load_str`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The configuration file as given to [`load`].
    pub source: PathBuf,
    pub topology: Topology,
    pub auth: AuthConfig,
    /// Metrics + JSON API listen address; default [`DEFAULT_LISTEN`].
    pub listen: SocketAddr,
    /// Bearer token required by mutating API calls, read from `api_token_file` (trimmed).
    pub api_token: Option<String>,
    pub state_dir: PathBuf,
    pub monitors: Vec<MonitorSpec>,
    pub hooks: Hooks,
    pub alerts: Vec<AlertRule>,
    pub journal: JournalSpec,
    pub policy: Policy,
    /// Pacemaker node-health integration (`pacemaker:` section), off when absent.
    pub pacemaker: Option<crate::integration::pacemaker::PacemakerSpec>,
    /// Non-fatal findings (e.g. `references: []`, inline key); printed by check-config and
    /// logged by the daemon at start.
    pub warnings: Vec<ConfigError>,
}

/// Message authentication (HMAC-SHA256) key.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// Sent in every stamp so keys can rotate.
    pub key_id: String,
    /// The key file, resolved against the config directory; `None` when the key is inline
    /// (`auth.key`, hex — accepted with a warning, meant for labs and examples).
    pub key_file: Option<PathBuf>,
    /// Raw key bytes (file content as is; inline hex decoded). At least [`MIN_KEY_BYTES`].
    pub key: Vec<u8>,
    /// Further keys accepted on receipt, by id (`auth.accept`): during a rotation, the key
    /// being introduced or the one being retired. Only `key_id` signs.
    pub accept: Vec<(String, Vec<u8>)>,
}

impl fmt::Debug for AuthConfig {
    // Never print key material (Debug output ends up in logs).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("key_id", &self.key_id)
            .field("key_file", &self.key_file)
            .field("key", &format_args!("<{} bytes>", self.key.len()))
            .field(
                "accept",
                &self.accept.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A mon-compatible exec monitor: exit 0 = OK, first stdout line = summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitorSpec {
    pub name: String,
    /// argv; `command[0]` containing a `/` is resolved against the config directory.
    pub command: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
}

/// An external command run on isolation, takeover or fencing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookSpec {
    /// argv; `command[0]` containing a `/` is resolved against the config directory.
    pub command: Vec<String>,
    /// Per attempt; default 30 s.
    pub timeout: Duration,
    /// Extra attempts after a failure; default 0.
    pub retries: u32,
    /// Pause between attempts; default 1 s.
    pub retry_backoff: Duration,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hooks {
    pub isolate: Option<HookSpec>,
    pub takeover: Option<HookSpec>,
    /// STONITH-style fence (IPMI, cloud API) run before taking over from a silent peer.
    pub fence: Option<HookSpec>,
}

/// Which verdicts an alert rule fires on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertSelect {
    /// Verdict kinds; empty = every kind except `healthy`.
    pub kinds: Vec<VerdictKind>,
    /// Subject names: a node (`n2`), a network (`A`) or an attachment (`n2.A`); empty = any.
    /// A node name matches the node, its attachments, its disk and its serial lines; a network
    /// name matches its hub, its upstream and the attachments on it.
    pub subjects: Vec<String>,
}

impl AlertSelect {
    /// Whether a verdict of `kind` about `subjects` is selected.
    pub fn matches(&self, kind: VerdictKind, subjects: &[Component], topology: &Topology) -> bool {
        let kind_ok = if self.kinds.is_empty() {
            kind != VerdictKind::Healthy
        } else {
            self.kinds.contains(&kind)
        };
        if !kind_ok {
            return false;
        }
        if self.subjects.is_empty() {
            return true;
        }
        subjects.iter().any(|c| {
            self.subjects
                .iter()
                .any(|s| subject_matches(s, c, topology))
        })
    }
}

fn subject_matches(selector: &str, c: &Component, t: &Topology) -> bool {
    let node = |id: NodeId| t.nodes.get(id.index()).map(|n| n.name.as_str());
    let net =
        |id: crate::core::topology::NetworkId| t.networks.get(id.index()).map(|n| n.name.as_str());
    let is = |name: Option<&str>| name == Some(selector);
    match *c {
        Component::Node(a) | Component::Disk(a) => is(node(a)),
        Component::Attachment(a, s) => {
            is(node(a))
                || is(net(s))
                || matches!((node(a), net(s)), (Some(n), Some(w)) if selector.split_once('.') == Some((n, w)))
        }
        Component::Hub(s) | Component::Upstream(s) => is(net(s)),
        Component::Serial(a, b) => is(node(a)) || is(node(b)),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRule {
    pub name: String,
    pub select: AlertSelect,
    /// Fire only once the same incident has been seen this many consecutive evaluations
    /// (≥ 1; default 1).
    pub after: u32,
    /// Repeat while the incident stays open; `None` = fire once.
    pub every: Option<Duration>,
    /// Also fire when the incident closes (mon's "upalert").
    pub upalert: bool,
    pub action: AlertAction,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum WebhookFormat {
    /// hadiag's own JSON event document.
    Json,
    /// Alertmanager v2 `POST /api/v2/alerts` array.
    Alertmanager,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlertAction {
    Exec {
        command: Vec<String>,
        /// Default 10 s.
        timeout: Duration,
    },
    Webhook {
        /// `http://` or `https://`; the first of [`WebhookOptions::urls`].
        url: String,
        format: WebhookFormat,
        /// Default 10 s.
        timeout: Duration,
        /// Default 2.
        retries: u32,
        /// Further receivers, TLS, authentication, Alertmanager re-sending.
        options: WebhookOptions,
    },
}

/// The less common parts of a webhook. Paths are resolved against the configuration's
/// directory; secret files are read at each delivery, so they can be rotated in place.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebhookOptions {
    /// Every receiver, `url` first (an Alertmanager HA pair gets each alert on every member).
    pub urls: Vec<String>,
    /// Alertmanager format: re-send firing alerts this often until they resolve (default
    /// 60 s), so Alertmanager never resolves an ongoing problem after its `resolve_timeout`.
    pub resend: Option<Duration>,
    /// PEM bundle of CAs trusted for `https://` (default: the system's trust store).
    pub ca_file: Option<PathBuf>,
    /// File holding a bearer token (`Authorization: Bearer …`).
    pub bearer_token_file: Option<PathBuf>,
    /// HTTP basic authentication: user name and a file holding the password.
    pub basic_auth: Option<(String, PathBuf)>,
}

/// Incident journal (JSONL) rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalSpec {
    /// Rotate when the current file exceeds this size; default 16 MiB.
    pub max_bytes: u64,
    /// Rotated files kept; default 5. Bounds disk use to about `max_bytes × (keep_files + 1)`.
    pub keep_files: u32,
}

impl Default for JournalSpec {
    fn default() -> Self {
        JournalSpec {
            max_bytes: 16 * 1024 * 1024,
            keep_files: 5,
        }
    }
}

/// What verdicts lead to isolation beyond the fixed rules of docs/isolation-rules.md.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Isolate a node whose disk is diagnosed failing or hung (fault matrix #10); default false
    /// (alert only).
    pub isolate_on_disk_failure: bool,
    /// After a heal, leave the isolated state (and let services resume) automatically; default
    /// true. When false an operator must resume the node.
    pub resume_on_heal: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            isolate_on_disk_failure: false,
            resume_on_heal: true,
        }
    }
}

/// A 1-based line and column in the configuration file.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// One problem in a configuration: `file:line:column: path: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// Where in the file, when the problem has a place.
    pub location: Option<Location>,
    /// Field path such as `nodes.n2.interfaces.C` or `monitors[0].interval`; empty for
    /// whole-file problems.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.location {
            write!(f, ":{}:{}", l.line, l.column)?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Every error found in a configuration, in file order, plus the warnings found so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads and validates the configuration at `path` (and the key and token files it names).
/// Relative paths inside resolve against the file's directory.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let err = |message: String| ConfigErrors {
        errors: vec![ConfigError {
            file: path.to_path_buf(),
            location: None,
            path: String::new(),
            message,
        }],
        warnings: Vec::new(),
    };
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(err(format!(
            "file is {} bytes; the limit is {MAX_FILE_BYTES}",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| err(format!("not valid UTF-8: {e}")))?;
    load_str(&text, path)
}

/// Largest configuration file accepted: a 64-node cluster fits comfortably; a bound keeps a
/// wrong path (a disk image, /dev/zero) from being read whole.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Validates configuration text as if read from `source` (used for positions in errors and
/// to resolve relative paths; key and token files are read from disk).
pub fn load_str(text: &str, source: &Path) -> Result<Config, ConfigErrors> {
    validate::load_text(text, source)
}

impl Config {
    /// The local node: `name` when given, else the node whose name equals this host's name
    /// (or its first label).
    pub fn local_node(&self, name: Option<&str>) -> Result<NodeId, ConfigError> {
        let names: Vec<&str> = self
            .topology
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect();
        let make = |message: String| ConfigError {
            file: self.source.clone(),
            location: None,
            path: "nodes".to_string(),
            message,
        };
        match name {
            Some(n) => self.topology.node_by_name(n).ok_or_else(|| {
                let hint = nearest(n, names.iter().copied())
                    .map(|s| format!("; did you mean \"{s}\"?"))
                    .unwrap_or_default();
                make(format!(
                    "node \"{n}\" is not defined (nodes: {}){hint}",
                    names.join(", ")
                ))
            }),
            None => {
                let host = hostname().unwrap_or_default();
                let short = host.split('.').next().unwrap_or_default();
                self.topology
                    .node_by_name(&host)
                    .or_else(|| self.topology.node_by_name(short))
                    .ok_or_else(|| {
                        make(format!(
                            "this host's name \"{host}\" is not a node name (nodes: {}); pass --node NAME",
                            names.join(", ")
                        ))
                    })
            }
        }
    }

    /// Directory of the configuration file (base of relative paths).
    pub fn base_dir(&self) -> PathBuf {
        base_dir(&self.source)
    }
}

/// Absolute directory of the configuration file: relative paths inside it resolve against
/// this, and stay valid whatever the daemon's working directory later is.
pub(crate) fn base_dir(source: &Path) -> PathBuf {
    let parent = match source.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::canonicalize(&parent).unwrap_or_else(|_| match std::env::current_dir() {
        Ok(cwd) => normalize(&cwd.join(&parent)),
        Err(_) => parent,
    })
}

/// Removes `.` and resolves `..` lexically (`/etc/hadiag/../probes` → `/etc/probes`).
pub(crate) fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn hostname() -> Option<String> {
    // /proc is Linux-only, as is hadiag (network namespaces, SO_BINDTODEVICE).
    let s = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}
