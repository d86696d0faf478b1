//! Stage 2a: walks the serde value tree against the schema into raw, still unresolved structures
//! (names instead of ids), reporting every unknown field, missing field and malformed value with
//! its path and place. Cross-field and topology checks happen afterwards in `validate`.

use super::duration;
use super::index::{join, join_index, PosIndex};
use super::suggest::nearest;
use super::{
    AlertAction, AlertSelect, ConfigError, HookSpec, Hooks, JournalSpec, Location, MonitorSpec,
    Policy, WebhookFormat,
};
use crate::core::diagnosis::VerdictKind;
use crate::core::topology::{Thresholds, Timing, Transport};
use serde_yaml::Value;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Error and warning sink with the position index.
pub(crate) struct Ctx<'a> {
    pub file: &'a Path,
    pub index: &'a PosIndex,
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<ConfigError>,
}

impl Ctx<'_> {
    fn make(&self, location: Option<Location>, path: &str, message: String) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            location,
            path: path.to_string(),
            message,
        }
    }
    /// Error placed at the key that names `path` (unknown field, undefined name, ...).
    pub fn key_error(&mut self, path: &str, message: impl Into<String>) {
        let e = self.make(self.index.key(path), path, message.into());
        self.errors.push(e);
    }
    /// Error placed at the value of `path` (bad duration, bad address, ...).
    pub fn value_error(&mut self, path: &str, message: impl Into<String>) {
        let e = self.make(self.index.value(path), path, message.into());
        self.errors.push(e);
    }
    /// Whether `path` itself appears in the file.
    pub fn index_has(&self, path: &str) -> bool {
        self.index.has(path)
    }
    pub fn key_warning(&mut self, path: &str, message: impl Into<String>) {
        let e = self.make(self.index.key(path), path, message.into());
        self.warnings.push(e);
    }
    pub fn value_warning(&mut self, path: &str, message: impl Into<String>) {
        let e = self.make(self.index.value(path), path, message.into());
        self.warnings.push(e);
    }
}

/// A mapping whose keys were checked against the allowed field names.
struct Obj<'v> {
    path: String,
    fields: Vec<(String, &'v Value)>,
}

impl<'v> Obj<'v> {
    /// The field's value; an explicit `null` counts as absent.
    fn get(&self, name: &str) -> Option<&'v Value> {
        self.fields
            .iter()
            .find(|(k, v)| k == name && !v.is_null())
            .map(|(_, v)| *v)
    }
    fn has(&self, name: &str) -> bool {
        self.fields.iter().any(|(k, _)| k == name)
    }
    fn path(&self, name: &str) -> String {
        join(&self.path, name)
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Scalar text of a key or value: strings as is, numbers and booleans as written by serde.
/// How a found value is quoted in messages: strings in quotes, other scalars as written.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{s}\""),
        other => scalar_text(other).unwrap_or_else(|| describe(other).to_string()),
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Whether `name` is a valid node/network/cluster/monitor/alert name: `[A-Za-z0-9_-]{1,32}`.
/// Names travel on the wire and become metric label values, hence the strict alphabet.
/// The wire codec owns the rule: one definition keeps config and wire from drifting apart.
pub(crate) fn valid_name(name: &str) -> bool {
    crate::core::wire::is_valid_name(name)
}

pub(crate) const NAME_RULE: &str =
    "names use only letters, digits, '_' and '-', 1 to 32 characters";

impl<'a> Ctx<'a> {
    /// Checks that `v` is a mapping with only `allowed` keys.
    fn obj<'v>(&mut self, v: &'v Value, path: &str, allowed: &[&str]) -> Option<Obj<'v>> {
        let Value::Mapping(m) = v else {
            self.value_error(
                path,
                format!(
                    "expected a mapping with fields {}, found {}",
                    allowed.join(", "),
                    describe(v)
                ),
            );
            return None;
        };
        let mut fields = Vec::new();
        for (k, val) in m {
            let Some(key) = scalar_text(k) else {
                self.value_error(
                    path,
                    format!("field names must be plain words, found {}", describe(k)),
                );
                continue;
            };
            let kp = join(path, &key);
            if allowed.contains(&key.as_str()) {
                fields.push((key, val));
            } else {
                let hint = match nearest(&key, allowed.iter().copied()) {
                    Some(s) => format!("did you mean \"{s}\"?"),
                    None => format!("valid fields: {}", allowed.join(", ")),
                };
                self.key_error(&kp, format!("unknown field \"{key}\"; {hint}"));
            }
        }
        Some(Obj {
            path: path.to_string(),
            fields,
        })
    }

    /// A mapping keyed by user-chosen names (networks, nodes, interfaces), in file order.
    fn named<'v>(&mut self, v: &'v Value, path: &str, what: &str) -> Vec<(String, &'v Value)> {
        let Value::Mapping(m) = v else {
            self.value_error(
                path,
                format!("expected a mapping of {what} names, found {}", describe(v)),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, val) in m {
            let Some(key) = scalar_text(k) else {
                self.value_error(
                    path,
                    format!("{what} names must be plain words, found {}", describe(k)),
                );
                continue;
            };
            out.push((key, val));
        }
        out
    }

    fn required<'v>(&mut self, o: &Obj<'v>, name: &str) -> Option<&'v Value> {
        let v = o.get(name);
        if v.is_none() {
            if o.has(name) {
                self.key_error(&o.path(name), "missing value");
            } else {
                self.key_error(&o.path, format!("missing field \"{name}\""));
            }
        }
        v
    }

    fn reject_tag(&mut self, v: &Value, path: &str) -> bool {
        if let Value::Tagged(t) = v {
            self.value_error(
                path,
                format!("YAML tags ({}) are not supported here", t.tag),
            );
            return true;
        }
        false
    }

    fn text(&mut self, v: &Value, path: &str) -> Option<String> {
        if self.reject_tag(v, path) {
            return None;
        }
        let t = scalar_text(v);
        if t.is_none() {
            self.value_error(path, format!("expected a string, found {}", describe(v)));
        }
        t
    }

    fn nonempty_text(&mut self, v: &Value, path: &str) -> Option<String> {
        let t = self.text(v, path)?;
        if t.trim().is_empty() {
            self.value_error(path, "must not be empty");
            return None;
        }
        Some(t)
    }

    fn name(&mut self, v: &Value, path: &str) -> Option<String> {
        let t = self.text(v, path)?;
        if !valid_name(&t) {
            self.value_error(path, format!("invalid name \"{t}\": {NAME_RULE}"));
            return None;
        }
        Some(t)
    }

    fn uint(&mut self, v: &Value, path: &str, min: u64, max: u64) -> Option<u64> {
        if self.reject_tag(v, path) {
            return None;
        }
        let n = match v {
            Value::Number(n) => n.as_u64(),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                self.value_error(path, format!("{n} is out of range: allowed {min} to {max}"));
                None
            }
            None => {
                self.value_error(
                    path,
                    format!(
                        "expected a whole number from {min} to {max}, found {}",
                        shown(v)
                    ),
                );
                None
            }
        }
    }

    fn ratio(&mut self, v: &Value, path: &str) -> Option<f64> {
        let f = match v {
            Value::Number(n) => n.as_f64(),
            _ => None,
        };
        match f {
            Some(f) if f > 0.0 && f < 1.0 => Some(f),
            _ => {
                self.value_error(
                    path,
                    format!(
                        "expected a ratio between 0 and 1 (e.g. 0.02 for 2 %), found {}",
                        shown(v)
                    ),
                );
                None
            }
        }
    }

    fn boolean(&mut self, v: &Value, path: &str) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            _ => {
                self.value_error(path, format!("expected true or false, found {}", shown(v)));
                None
            }
        }
    }

    fn duration(&mut self, v: &Value, path: &str) -> Option<Duration> {
        if self.reject_tag(v, path) {
            return None;
        }
        let Some(t) = scalar_text(v) else {
            self.value_error(
                path,
                format!(
                    "expected a duration such as \"200ms\" or \"3s\", found {}",
                    describe(v)
                ),
            );
            return None;
        };
        match duration::parse(&t) {
            Ok(d) => Some(d),
            Err(e) => {
                self.value_error(path, e);
                None
            }
        }
    }

    /// A duration that must be greater than zero.
    fn positive_duration(&mut self, v: &Value, path: &str) -> Option<Duration> {
        let d = self.duration(v, path)?;
        if d.is_zero() {
            self.value_error(path, "must be greater than 0");
            return None;
        }
        Some(d)
    }

    fn ip(&mut self, v: &Value, path: &str) -> Option<IpAddr> {
        let t = self.text(v, path)?;
        match t.trim().parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.value_error(path, format!("\"{t}\" is not an IP address"));
                None
            }
        }
    }

    fn list<'v>(&mut self, v: &'v Value, path: &str, what: &str) -> Option<&'v [Value]> {
        match v {
            Value::Sequence(s) => Some(s.as_slice()),
            _ => {
                self.value_error(
                    path,
                    format!("expected a list of {what}, found {}", describe(v)),
                );
                None
            }
        }
    }

    /// argv: a non-empty list of scalars. A single string is refused: splitting it like a shell
    /// would be guesswork, and a wrong split runs the wrong program.
    fn command(&mut self, v: &Value, path: &str) -> Option<Vec<String>> {
        let Value::Sequence(items) = v else {
            self.value_error(
                path,
                format!("expected the command as a list of arguments, e.g. [probes/check.sh, \"80\"], found {}", describe(v)),
            );
            return None;
        };
        if items.is_empty() {
            self.value_error(path, "the command must not be empty");
            return None;
        }
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.text(item, &join_index(path, i)) {
                Some(t) => out.push(t),
                None => ok = false,
            }
        }
        if out.first().is_some_and(|c| c.trim().is_empty()) {
            self.value_error(&join_index(path, 0), "the program name must not be empty");
            return None;
        }
        ok.then_some(out)
    }

    /// A byte size: a whole number of bytes or `64KiB`, `16MiB`, `1GiB` (also kB/MB/GB).
    fn size(&mut self, v: &Value, path: &str) -> Option<u64> {
        if let Value::Number(n) = v {
            if let Some(n) = n.as_u64() {
                return Some(n);
            }
        }
        let t = scalar_text(v).unwrap_or_default();
        let t = t.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let mult: Option<u64> = match unit.trim() {
            "" | "B" => Some(1),
            "KiB" => Some(1 << 10),
            "MiB" => Some(1 << 20),
            "GiB" => Some(1 << 30),
            "kB" | "KB" => Some(1000),
            "MB" => Some(1_000_000),
            "GB" => Some(1_000_000_000),
            _ => None,
        };
        match (num.parse::<u64>().ok(), mult) {
            (Some(n), Some(m)) if n.checked_mul(m).is_some() => n.checked_mul(m),
            _ => {
                self.value_error(
                    path,
                    format!("\"{t}\" is not a size: write bytes or e.g. \"16MiB\""),
                );
                None
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw structures: what the file says, names not yet resolved to ids.

#[derive(Debug, Default)]
pub(crate) struct RawAuth {
    pub key_id: Option<String>,
    pub key_file: Option<String>,
    pub key_hex: Option<String>,
    /// Further keys accepted on receipt (`auth.accept`), for live rotation.
    pub accept: Vec<RawAuth>,
}

#[derive(Debug)]
pub(crate) struct RawNetwork {
    pub name: String,
    /// `None`: field missing (an error unless parsing failed elsewhere).
    pub references: Option<Vec<(IpAddr, String)>>,
    /// `references: []` written explicitly (the accepted, warned-about opt-out).
    pub references_empty: bool,
    pub transport: Transport,
    pub port: u16,
}

#[derive(Debug)]
pub(crate) struct RawInterface {
    pub network: String,
    pub device: Option<String>,
    pub address: Option<IpAddr>,
    /// Whether an address was written (even a malformed one), to avoid a second error.
    pub address_written: bool,
}

#[derive(Debug)]
pub(crate) struct RawSerial {
    pub device: Option<String>,
    pub baud: u32,
    pub peer: Option<String>,
}

#[derive(Debug)]
pub(crate) struct RawNode {
    pub name: String,
    pub priority: u32,
    pub priority_written: bool,
    pub interfaces: Vec<RawInterface>,
    /// Whether `interfaces` was written at all.
    pub interfaces_written: bool,
    pub serial: Vec<RawSerial>,
    pub disk: Option<String>,
}

#[derive(Debug)]
pub(crate) struct RawAlert {
    pub name: String,
    pub select: AlertSelect,
    pub after: u32,
    pub every: Option<Duration>,
    pub upalert: bool,
    pub action: Option<AlertAction>,
}

#[derive(Debug, Default)]
pub(crate) struct Raw {
    pub cluster: Option<String>,
    pub auth: RawAuth,
    pub listen: Option<SocketAddr>,
    pub api_token_file: Option<String>,
    pub state_dir: Option<String>,
    pub networks: Vec<RawNetwork>,
    pub nodes: Vec<RawNode>,
    pub timing: Timing,
    /// Timing fields written in the file (others are defaults): errors about a default value
    /// must say so rather than point at a line.
    pub timing_written: Vec<&'static str>,
    pub thresholds: Thresholds,
    pub monitors: Vec<MonitorSpec>,
    pub hooks: Hooks,
    pub alerts: Vec<RawAlert>,
    pub journal: JournalSpec,
    pub policy: Policy,
    pub pacemaker: Option<crate::integration::pacemaker::PacemakerSpec>,
}

const TOP: &[&str] = &[
    "cluster",
    "auth",
    "listen",
    "api_token_file",
    "state_dir",
    "networks",
    "nodes",
    "timing",
    "thresholds",
    "monitors",
    "hooks",
    "alerts",
    "journal",
    "policy",
    "pacemaker",
];
const AUTH: &[&str] = &["key_id", "key_file", "key", "accept"];
const ACCEPTED_KEY: &[&str] = &["key_id", "key_file", "key"];
const NETWORK: &[&str] = &["references", "transport", "port"];
const NODE: &[&str] = &["priority", "interfaces", "serial", "disk"];
const INTERFACE: &[&str] = &["device", "address"];
const SERIAL: &[&str] = &["device", "baud", "peer"];
pub(crate) const TIMING: &[&str] = &[
    "heartbeat_interval",
    "detect_multiplier",
    "reference_interval",
    "reference_timeout",
    "disk_interval",
    "disk_timeout",
    "self_fence_after",
    "fence_deadline",
];
const THRESHOLDS: &[&str] = &[
    "degraded_loss_ratio",
    "degraded_rtt",
    "slow_disk",
    "reference_failures",
    "heal_successes",
    "false_silence_probability",
];
const MONITOR: &[&str] = &["name", "command", "interval", "timeout"];
const HOOKS: &[&str] = &["isolate", "takeover", "fence"];
const HOOK: &[&str] = &["command", "timeout", "retries", "retry_backoff"];
const ALERT: &[&str] = &[
    "name", "select", "after", "every", "upalert", "exec", "webhook",
];
const SELECT: &[&str] = &["kinds", "subjects"];
const EXEC: &[&str] = &["command", "timeout"];
const WEBHOOK: &[&str] = &[
    "url",
    "urls",
    "format",
    "timeout",
    "retries",
    "resend",
    "ca_file",
    "bearer_token_file",
    "basic_auth",
];
const BASIC_AUTH: &[&str] = &["username", "password_file"];
/// Receivers of one webhook (an Alertmanager HA cluster has two or three members).
const MAX_WEBHOOK_URLS: usize = 8;
/// Default re-send period of firing Alertmanager alerts (Prometheus' own default is 1 min).
const ALERTMANAGER_RESEND: Duration = Duration::from_secs(60);
const JOURNAL: &[&str] = &["max_bytes", "keep_files"];
const POLICY: &[&str] = &["isolate_on_disk_failure", "resume_on_heal"];
const PACEMAKER: &[&str] = &["command", "timeout"];

/// Default exec monitor interval and timeout (mon's customary minute-scale checks).
const MONITOR_INTERVAL: Duration = Duration::from_secs(30);
const MONITOR_TIMEOUT: Duration = Duration::from_secs(10);
const HOOK_TIMEOUT: Duration = Duration::from_secs(30);
const HOOK_BACKOFF: Duration = Duration::from_secs(1);
const ALERT_TIMEOUT: Duration = Duration::from_secs(10);
const WEBHOOK_RETRIES: u32 = 2;
/// Bounds on retries: a hook retried forever would hold isolation or takeover hostage.
const MAX_RETRIES: u64 = 10;
/// Default heartbeat UDP port.
pub(crate) const DEFAULT_PORT: u16 = 7946;

impl Ctx<'_> {
    /// Walks the whole document.
    pub(crate) fn walk(&mut self, root: &Value) -> Raw {
        let mut raw = Raw::default();
        if root.is_null() {
            self.errors.push(ConfigError {
                file: self.file.to_path_buf(),
                location: None,
                path: String::new(),
                message: "the file is empty: expected cluster, auth, networks and nodes".into(),
            });
            return raw;
        }
        let Some(top) = self.obj(root, "", TOP) else {
            return raw;
        };
        if let Some(v) = self.required(&top, "cluster") {
            raw.cluster = self.name(v, "cluster");
        }
        if let Some(v) = self.required(&top, "auth") {
            self.auth(v, &mut raw.auth);
        }
        if let Some(v) = top.get("listen") {
            if let Some(t) = self.text(v, "listen") {
                match t.trim().parse::<SocketAddr>() {
                    Ok(a) => raw.listen = Some(a),
                    Err(_) => self.value_error(
                        "listen",
                        format!("\"{t}\" is not an address:port, e.g. \"127.0.0.1:9617\" or \"[::1]:9617\""),
                    ),
                }
            }
        }
        if let Some(v) = top.get("api_token_file") {
            raw.api_token_file = self.nonempty_text(v, "api_token_file");
        }
        if let Some(v) = top.get("state_dir") {
            raw.state_dir = self.nonempty_text(v, "state_dir");
        }
        if let Some(v) = self.required(&top, "networks") {
            for (name, nv) in self.named(v, "networks", "network") {
                if let Some(n) = self.network(&name, nv) {
                    raw.networks.push(n);
                }
            }
        }
        if let Some(v) = self.required(&top, "nodes") {
            for (name, nv) in self.named(v, "nodes", "node") {
                if let Some(n) = self.node(&name, nv) {
                    raw.nodes.push(n);
                }
            }
        }
        if let Some(v) = top.get("timing") {
            self.timing(v, &mut raw);
        }
        if let Some(v) = top.get("thresholds") {
            self.thresholds(v, &mut raw.thresholds);
        }
        if let Some(v) = top.get("monitors") {
            if let Some(items) = self.list(v, "monitors", "monitors") {
                for (i, m) in items.iter().enumerate() {
                    if let Some(m) = self.monitor(m, &join_index("monitors", i)) {
                        raw.monitors.push(m);
                    }
                }
            }
        }
        if let Some(v) = top.get("hooks") {
            if let Some(o) = self.obj(v, "hooks", HOOKS) {
                raw.hooks.isolate = o.get("isolate").and_then(|h| self.hook(h, "hooks.isolate"));
                raw.hooks.takeover = o
                    .get("takeover")
                    .and_then(|h| self.hook(h, "hooks.takeover"));
                raw.hooks.fence = o.get("fence").and_then(|h| self.hook(h, "hooks.fence"));
            }
        }
        if let Some(v) = top.get("alerts") {
            if let Some(items) = self.list(v, "alerts", "alert rules") {
                for (i, a) in items.iter().enumerate() {
                    if let Some(a) = self.alert(a, &join_index("alerts", i)) {
                        raw.alerts.push(a);
                    }
                }
            }
        }
        if let Some(v) = top.get("journal") {
            if let Some(o) = self.obj(v, "journal", JOURNAL) {
                if let Some(v) = o.get("max_bytes") {
                    match self.size(v, "journal.max_bytes") {
                        // Below 4 KiB a single incident record could not fit one file.
                        Some(n) if n < 4096 => {
                            self.value_error("journal.max_bytes", "must be at least 4KiB")
                        }
                        Some(n) => raw.journal.max_bytes = n,
                        None => {}
                    }
                }
                if let Some(v) = o.get("keep_files") {
                    if let Some(n) = self.uint(v, "journal.keep_files", 0, 1000) {
                        raw.journal.keep_files = n as u32;
                    }
                }
            }
        }
        if let Some(v) = top.get("policy") {
            if let Some(o) = self.obj(v, "policy", POLICY) {
                if let Some(b) = o
                    .get("isolate_on_disk_failure")
                    .and_then(|v| self.boolean(v, "policy.isolate_on_disk_failure"))
                {
                    raw.policy.isolate_on_disk_failure = b;
                }
                if let Some(b) = o
                    .get("resume_on_heal")
                    .and_then(|v| self.boolean(v, "policy.resume_on_heal"))
                {
                    raw.policy.resume_on_heal = b;
                }
            }
        }
        if let Some(v) = top.get("pacemaker") {
            raw.pacemaker = self.pacemaker(v);
        }
        raw
    }

    /// `pacemaker:` (present = enabled; `pacemaker: {}` takes every default).
    fn pacemaker(&mut self, v: &Value) -> Option<crate::integration::pacemaker::PacemakerSpec> {
        use crate::integration::pacemaker as pm;
        let mut spec = pm::PacemakerSpec::with_defaults(Duration::ZERO);
        let o = self.obj(v, "pacemaker", PACEMAKER)?;
        if let Some(v) = o.get("command") {
            spec.command = self.command(v, "pacemaker.command")?;
        }
        if let Some(v) = o.get("timeout") {
            spec.timeout = self.positive_duration(v, "pacemaker.timeout")?;
        }
        Some(spec)
    }

    fn auth(&mut self, v: &Value, out: &mut RawAuth) {
        let Some(o) = self.obj(v, "auth", AUTH) else {
            return;
        };
        self.key_entry(&o, "auth", out);
        if let Some(v) = o.get("accept") {
            if let Some(items) = self.list(v, "auth.accept", "accepted keys") {
                for (i, item) in items.iter().enumerate() {
                    let path = join_index("auth.accept", i);
                    let Some(e) = self.obj(item, &path, ACCEPTED_KEY) else {
                        continue;
                    };
                    let mut k = RawAuth::default();
                    self.key_entry(&e, &path, &mut k);
                    out.accept.push(k);
                }
            }
        }
    }

    /// `key_id` plus exactly one of `key_file` / `key`, under `path`.
    fn key_entry(&mut self, o: &Obj<'_>, path: &str, out: &mut RawAuth) {
        let id_path = join(path, "key_id");
        if let Some(v) = self.required(o, "key_id") {
            out.key_id = self.text(v, &id_path);
            if let Some(id) = out.key_id.as_deref() {
                if !crate::core::wire::is_valid_key_id(id) {
                    self.value_error(
                        &id_path,
                        format!(
                            "invalid key id \"{id}\": 1 to {} characters of letters, digits, '.', '_' and '-'",
                            crate::core::wire::MAX_KEY_ID_BYTES
                        ),
                    );
                    out.key_id = None;
                }
            }
        }
        out.key_file = o
            .get("key_file")
            .and_then(|v| self.nonempty_text(v, &join(path, "key_file")));
        out.key_hex = o.get("key").and_then(|v| self.text(v, &join(path, "key")));
        match (o.has("key_file"), o.has("key")) {
            (true, true) => self.key_error(&join(path, "key"), "give either key_file or key, not both"),
            (false, false) => self.key_error(
                path,
                "missing field \"key_file\": name a file holding at least 16 random bytes, mode 0600 (or, for a lab, an inline hex \"key\")",
            ),
            _ => {}
        }
    }

    fn network(&mut self, name: &str, v: &Value) -> Option<RawNetwork> {
        let path = join("networks", name);
        if !valid_name(name) {
            self.key_error(
                &path,
                format!("invalid network name \"{name}\": {NAME_RULE}"),
            );
        } else if !crate::core::wire::is_valid_network_name(name) {
            self.key_error(
                &path,
                format!(
                    "network name \"{name}\" is reserved: the wire uses path={} for serial lines",
                    crate::core::wire::SERIAL_PATH
                ),
            );
        }
        let o = self.obj(v, &path, NETWORK)?;
        let mut net = RawNetwork {
            name: name.to_string(),
            references: None,
            references_empty: matches!(o.get("references"), Some(Value::Sequence(s)) if s.is_empty()),
            transport: Transport::Udp,
            port: DEFAULT_PORT,
        };
        match o.get("references") {
            Some(rv) => {
                let rp = o.path("references");
                if let Some(items) = self.list(rv, &rp, "reference addresses") {
                    let mut refs = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        let ip_path = join_index(&rp, i);
                        if let Some(ip) = self.ip(item, &ip_path) {
                            refs.push((ip, ip_path));
                        }
                    }
                    net.references = Some(refs);
                } else {
                    net.references = Some(Vec::new());
                }
            }
            None => {
                net.references = Some(Vec::new());
                self.key_error(
                    &path,
                    "missing field \"references\": name the router/switch to ping through this network, \
                     or write references: [] to accept that upstream failures go unseen",
                );
            }
        }
        if let Some(tv) = o.get("transport") {
            let tp = o.path("transport");
            match self.text(tv, &tp).as_deref() {
                Some("udp") => net.transport = Transport::Udp,
                Some("ethernet") => net.transport = Transport::Ethernet,
                Some(other) => {
                    let hint = nearest(other, ["udp", "ethernet"])
                        .map(|s| format!("; did you mean \"{s}\"?"))
                        .unwrap_or_default();
                    self.value_error(
                        &tp,
                        format!("unknown transport \"{other}\": use udp or ethernet{hint}"),
                    );
                }
                None => {}
            }
        }
        if let Some(pv) = o.get("port") {
            if let Some(p) = self.uint(pv, &o.path("port"), 1, 65535) {
                net.port = p as u16;
            }
        }
        Some(net)
    }

    fn node(&mut self, name: &str, v: &Value) -> Option<RawNode> {
        let path = join("nodes", name);
        if !valid_name(name) {
            self.key_error(&path, format!("invalid node name \"{name}\": {NAME_RULE}"));
        }
        let o = self.obj(v, &path, NODE)?;
        let mut node = RawNode {
            name: name.to_string(),
            priority: 0,
            priority_written: o.get("priority").is_some(),
            interfaces: Vec::new(),
            interfaces_written: o.get("interfaces").is_some(),
            serial: Vec::new(),
            disk: None,
        };
        if let Some(pv) = o.get("priority") {
            if let Some(p) = self.uint(pv, &o.path("priority"), 0, u32::MAX as u64) {
                node.priority = p as u32;
            }
        }
        if let Some(iv) = o.get("interfaces") {
            let ip = o.path("interfaces");
            for (net, val) in self.named(iv, &ip, "network") {
                let p = join(&ip, &net);
                let mut iface = RawInterface {
                    network: net,
                    device: None,
                    address: None,
                    address_written: false,
                };
                if let Some(io) = self.obj(val, &p, INTERFACE) {
                    if let Some(d) = self.required(&io, "device") {
                        iface.device = self.nonempty_text(d, &io.path("device"));
                    }
                    if let Some(a) = io.get("address") {
                        iface.address_written = true;
                        iface.address = self.ip(a, &io.path("address"));
                    }
                }
                node.interfaces.push(iface);
            }
        }
        if let Some(sv) = o.get("serial") {
            let sp = o.path("serial");
            if let Some(items) = self.list(sv, &sp, "serial lines") {
                for (i, item) in items.iter().enumerate() {
                    let p = join_index(&sp, i);
                    let Some(so) = self.obj(item, &p, SERIAL) else {
                        continue;
                    };
                    let mut line = RawSerial {
                        device: None,
                        baud: 115_200,
                        peer: None,
                    };
                    if let Some(d) = self.required(&so, "device") {
                        line.device = self.nonempty_text(d, &so.path("device"));
                    }
                    if let Some(b) = so.get("baud") {
                        if let Some(b) = self.uint(b, &so.path("baud"), 50, 4_000_000) {
                            line.baud = b as u32;
                        }
                    }
                    if let Some(peer) = self.required(&so, "peer") {
                        line.peer = self.text(peer, &so.path("peer"));
                    }
                    node.serial.push(line);
                }
            }
        }
        if let Some(dv) = o.get("disk") {
            node.disk = self.nonempty_text(dv, &o.path("disk"));
        }
        Some(node)
    }

    fn timing(&mut self, v: &Value, raw: &mut Raw) {
        let Some(o) = self.obj(v, "timing", TIMING) else {
            return;
        };
        let t = &mut raw.timing;
        for &field in TIMING {
            let Some(fv) = o.get(field) else { continue };
            let p = o.path(field);
            if field == "detect_multiplier" {
                if let Some(n) = self.uint(fv, &p, 0, 1000) {
                    if n < 2 {
                        self.value_error(
                            &p,
                            format!("detect_multiplier is {n}; it must be at least 2, or a single lost heartbeat would declare a peer silent"),
                        );
                    } else {
                        t.detect_multiplier = n as u32;
                        raw.timing_written.push(field);
                    }
                }
                continue;
            }
            let Some(d) = self.positive_duration(fv, &p) else {
                continue;
            };
            let slot = match field {
                "heartbeat_interval" => &mut t.heartbeat_interval,
                "reference_interval" => &mut t.reference_interval,
                "reference_timeout" => &mut t.reference_timeout,
                "disk_interval" => &mut t.disk_interval,
                "disk_timeout" => &mut t.disk_timeout,
                "self_fence_after" => &mut t.self_fence_after,
                _ => &mut t.fence_deadline,
            };
            *slot = d;
            raw.timing_written.push(field);
        }
    }

    fn thresholds(&mut self, v: &Value, t: &mut Thresholds) {
        let Some(o) = self.obj(v, "thresholds", THRESHOLDS) else {
            return;
        };
        if let Some(v) = o.get("degraded_loss_ratio") {
            if let Some(r) = self.ratio(v, "thresholds.degraded_loss_ratio") {
                t.degraded_loss_ratio = r;
            }
        }
        if let Some(d) = o
            .get("degraded_rtt")
            .and_then(|v| self.positive_duration(v, "thresholds.degraded_rtt"))
        {
            t.degraded_rtt = d;
        }
        if let Some(d) = o
            .get("slow_disk")
            .and_then(|v| self.positive_duration(v, "thresholds.slow_disk"))
        {
            t.slow_disk = d;
        }
        if let Some(n) = o
            .get("reference_failures")
            .and_then(|v| self.uint(v, "thresholds.reference_failures", 1, 1000))
        {
            t.reference_failures = n as u32;
        }
        if let Some(n) = o
            .get("heal_successes")
            .and_then(|v| self.uint(v, "thresholds.heal_successes", 1, 1000))
        {
            t.heal_successes = n as u32;
        }
        if let Some(v) = o.get("false_silence_probability") {
            if let Some(r) = self.ratio(v, "thresholds.false_silence_probability") {
                t.false_silence_probability = r;
            }
        }
    }

    fn monitor(&mut self, v: &Value, path: &str) -> Option<MonitorSpec> {
        let o = self.obj(v, path, MONITOR)?;
        let name = self
            .required(&o, "name")
            .and_then(|v| self.name(v, &o.path("name")));
        let command = self
            .required(&o, "command")
            .and_then(|v| self.command(v, &o.path("command")));
        let interval = match o.get("interval") {
            Some(v) => self.positive_duration(v, &o.path("interval")),
            None => Some(MONITOR_INTERVAL),
        };
        let timeout = match o.get("timeout") {
            Some(v) => self.positive_duration(v, &o.path("timeout")),
            None => Some(MONITOR_TIMEOUT.min(interval.unwrap_or(MONITOR_TIMEOUT))),
        };
        Some(MonitorSpec {
            name: name?,
            command: command?,
            interval: interval?,
            timeout: timeout?,
        })
    }

    fn hook(&mut self, v: &Value, path: &str) -> Option<HookSpec> {
        let o = self.obj(v, path, HOOK)?;
        let command = self
            .required(&o, "command")
            .and_then(|v| self.command(v, &o.path("command")));
        let timeout = match o.get("timeout") {
            Some(v) => self.positive_duration(v, &o.path("timeout")),
            None => Some(HOOK_TIMEOUT),
        };
        let retries = match o.get("retries") {
            Some(v) => self.uint(v, &o.path("retries"), 0, MAX_RETRIES),
            None => Some(0),
        };
        let retry_backoff = match o.get("retry_backoff") {
            Some(v) => self.duration(v, &o.path("retry_backoff")),
            None => Some(HOOK_BACKOFF),
        };
        Some(HookSpec {
            command: command?,
            timeout: timeout?,
            retries: retries? as u32,
            retry_backoff: retry_backoff?,
        })
    }

    fn alert(&mut self, v: &Value, path: &str) -> Option<RawAlert> {
        let o = self.obj(v, path, ALERT)?;
        let name = self
            .required(&o, "name")
            .and_then(|v| self.name(v, &o.path("name")));
        let mut select = AlertSelect::default();
        let mut ok = true;
        if let Some(sv) = o.get("select") {
            let sp = o.path("select");
            if let Some(so) = self.obj(sv, &sp, SELECT) {
                if let Some(kv) = so.get("kinds") {
                    let kp = so.path("kinds");
                    if let Some(items) = self.list(kv, &kp, "verdict kinds") {
                        for (i, item) in items.iter().enumerate() {
                            let ip = join_index(&kp, i);
                            let Some(t) = self.text(item, &ip) else {
                                ok = false;
                                continue;
                            };
                            match VerdictKind::from_token(&t) {
                                Some(k) => select.kinds.push(k),
                                None => {
                                    ok = false;
                                    let tokens = VerdictKind::ALL.map(|k| k.token());
                                    let hint = match nearest(&t, tokens) {
                                        Some(s) => format!("did you mean \"{s}\"?"),
                                        None => format!("known kinds: {}", tokens.join(", ")),
                                    };
                                    self.value_error(
                                        &ip,
                                        format!("unknown verdict kind \"{t}\"; {hint}"),
                                    );
                                }
                            }
                        }
                    }
                }
                if let Some(sv) = so.get("subjects") {
                    let sp2 = so.path("subjects");
                    if let Some(items) = self.list(sv, &sp2, "subject names") {
                        for (i, item) in items.iter().enumerate() {
                            match self.text(item, &join_index(&sp2, i)) {
                                Some(t) => select.subjects.push(t),
                                None => ok = false,
                            }
                        }
                    }
                }
            }
        }
        let after = match o.get("after") {
            Some(v) => self.uint(v, &o.path("after"), 1, 1000).map(|n| n as u32),
            None => Some(1),
        };
        let every = match o.get("every") {
            Some(v) => self.positive_duration(v, &o.path("every")).map(Some),
            None => Some(None),
        };
        let upalert = match o.get("upalert") {
            Some(v) => self.boolean(v, &o.path("upalert")),
            None => Some(false),
        };
        let action = match (o.get("exec"), o.get("webhook")) {
            (Some(_), Some(_)) => {
                self.key_error(
                    &o.path("webhook"),
                    "give either exec or webhook, not both (write two rules)",
                );
                None
            }
            (None, None) => {
                self.key_error(
                    path,
                    "missing action: add exec: { command: [...] } or webhook: { url: ... }",
                );
                None
            }
            (Some(ev), None) => self.exec_action(ev, &o.path("exec")),
            (None, Some(wv)) => self.webhook_action(wv, &o.path("webhook")),
        };
        let _ = ok;
        Some(RawAlert {
            name: name?,
            select,
            after: after?,
            every: every?,
            upalert: upalert?,
            action,
        })
    }

    fn exec_action(&mut self, v: &Value, path: &str) -> Option<AlertAction> {
        let o = self.obj(v, path, EXEC)?;
        let command = self
            .required(&o, "command")
            .and_then(|v| self.command(v, &o.path("command")));
        let timeout = match o.get("timeout") {
            Some(v) => self.positive_duration(v, &o.path("timeout")),
            None => Some(ALERT_TIMEOUT),
        };
        Some(AlertAction::Exec {
            command: command?,
            timeout: timeout?,
        })
    }

    fn webhook_url(&mut self, v: &Value, path: &str) -> Option<String> {
        let u = self.text(v, path)?;
        match u.parse::<hyper::Uri>() {
            Ok(uri)
                if matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some() =>
            {
                Some(u)
            }
            _ => {
                self.value_error(path, format!("\"{u}\" is not an http:// or https:// URL"));
                None
            }
        }
    }

    fn webhook_action(&mut self, v: &Value, path: &str) -> Option<AlertAction> {
        let o = self.obj(v, path, WEBHOOK)?;
        let urls: Option<Vec<String>> = match (o.get("url"), o.get("urls")) {
            (Some(_), Some(_)) => {
                self.key_error(&o.path("urls"), "give url or urls, not both");
                None
            }
            (None, None) => {
                self.key_error(path, "missing url: add url: http://… (or urls: [...])");
                None
            }
            (Some(u), None) => self.webhook_url(u, &o.path("url")).map(|u| vec![u]),
            (None, Some(list)) => {
                let lp = o.path("urls");
                let items = self.list(list, &lp, "URLs")?;
                if items.is_empty() || items.len() > MAX_WEBHOOK_URLS {
                    self.value_error(
                        &lp,
                        format!("give 1 to {MAX_WEBHOOK_URLS} URLs, not {}", items.len()),
                    );
                    return None;
                }
                let mut out = Vec::new();
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    match self.webhook_url(item, &join_index(&lp, i)) {
                        Some(u) => out.push(u),
                        None => ok = false,
                    }
                }
                ok.then_some(out)
            }
        };
        let resend = match o.get("resend") {
            Some(v) => self.positive_duration(v, &o.path("resend")).map(Some),
            None => Some(None),
        };
        let path_of = |s: &mut Self, key: &str| match o.get(key) {
            Some(v) => s
                .nonempty_text(v, &o.path(key))
                .map(|t| Some(PathBuf::from(t))),
            None => Some(None),
        };
        let ca_file = path_of(self, "ca_file");
        let bearer = path_of(self, "bearer_token_file");
        let basic = match o.get("basic_auth") {
            Some(bv) => {
                let bp = o.path("basic_auth");
                self.obj(bv, &bp, BASIC_AUTH).and_then(|b| {
                    let user = self
                        .required(&b, "username")
                        .and_then(|v| self.nonempty_text(v, &b.path("username")));
                    let file = self
                        .required(&b, "password_file")
                        .and_then(|v| self.nonempty_text(v, &b.path("password_file")));
                    Some(Some((user?, PathBuf::from(file?))))
                })
            }
            None => Some(None),
        };
        let url = urls.as_ref().and_then(|u| u.first().cloned());
        let format = match o.get("format") {
            Some(fv) => {
                let fp = o.path("format");
                match self.text(fv, &fp).as_deref() {
                    Some("json") => Some(WebhookFormat::Json),
                    Some("alertmanager") => Some(WebhookFormat::Alertmanager),
                    Some(other) => {
                        let hint = nearest(other, ["json", "alertmanager"])
                            .map(|s| format!("; did you mean \"{s}\"?"))
                            .unwrap_or_default();
                        self.value_error(&fp, format!("unknown webhook format \"{other}\": use json or alertmanager{hint}"));
                        None
                    }
                    None => None,
                }
            }
            None => Some(WebhookFormat::Json),
        };
        let timeout = match o.get("timeout") {
            Some(v) => self.positive_duration(v, &o.path("timeout")),
            None => Some(ALERT_TIMEOUT),
        };
        let retries = match o.get("retries") {
            Some(v) => self
                .uint(v, &o.path("retries"), 0, MAX_RETRIES)
                .map(|n| n as u32),
            None => Some(WEBHOOK_RETRIES),
        };
        let format = format?;
        let bearer = bearer?;
        let basic = basic?;
        if bearer.is_some() && basic.is_some() {
            self.key_error(
                &o.path("basic_auth"),
                "give bearer_token_file or basic_auth, not both",
            );
            return None;
        }
        Some(AlertAction::Webhook {
            url: url?,
            format,
            timeout: timeout?,
            retries: retries?,
            options: crate::config::WebhookOptions {
                urls: urls?,
                resend: resend?
                    .or((format == WebhookFormat::Alertmanager).then_some(ALERTMANAGER_RESEND)),
                ca_file: ca_file?,
                bearer_token_file: bearer,
                basic_auth: basic,
            },
        })
    }
}
