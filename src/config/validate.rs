//! Stage 1 (parse) and stage 2b (resolve + validate the whole topology), then assembly of the
//! [`Config`]. Every check records its error and carries on, so one run lists every problem.
//!
//! Reads the key file and the API token file named by the configuration, and looks at the
//! metadata of monitor/hook programs (a missing one is only a warning); nothing else.

use super::index::{join, join_index, PosIndex};
use super::schema::{Ctx, Raw, RawNode};
use super::suggest::nearest;
use super::{
    base_dir, duration, AlertAction, AlertRule, AuthConfig, Config, ConfigError, ConfigErrors,
    HookSpec, Location, DEFAULT_LISTEN, DEFAULT_STATE_DIR, MIN_KEY_BYTES,
};
use crate::core::topology::{
    InterfaceSpec, NetworkId, NetworkSpec, NodeId, NodeSpec, SerialPortSpec, Topology, Transport,
};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Most nodes in one cluster: ids are u16 on the wire, but the heartbeat size bound below and
/// the exhaustive classifier are sized for tens of nodes, not thousands.
pub const MAX_NODES: usize = 64;
/// Most networks per cluster (the heartbeat view has one section per network).
pub const MAX_NETWORKS: usize = 8;
/// Fastest heartbeat accepted: below 10 ms the cost (wakeups, packets, HMACs) buys nothing on
/// real NICs and starves the 2-core boxes these clusters run on.
pub const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(10);
pub use crate::core::topology::FENCE_SLACK;
/// Key and token files larger than this are certainly the wrong file.
const MAX_SECRET_FILE_BYTES: u64 = 4096;

/// Margin required between `self_fence_after` and `fence_deadline`:
/// `2 × heartbeat_interval × detect_multiplier + 1 s`.
///
/// Why: the cut-off node starts its self-fence timer only once it notices it hears nobody
/// (up to one detection time after the cut), while the survivor may notice up to one detection
/// time earlier than that; one detection time for each side, plus [`FENCE_SLACK`] for clock-rate
/// drift, scheduling and hook start-up, guarantees the survivor never takes over while the
/// cut-off node could still be active.
pub fn fence_margin(t: &crate::core::topology::Timing) -> Duration {
    t.detect_time()
        .saturating_mul(2)
        .saturating_add(FENCE_SLACK)
}

/// The longest isolate-hook run `t` leaves room for (zero when none): `fence_deadline −
/// self_fence_after − margin`. `check-config` refuses an isolate hook whose
/// [`isolate_hook_longest`] reaches it; a simulation drawing hook durations "up to their
/// timeouts" draws below it, so it explores exactly the configurations the loader accepts.
pub fn isolate_hook_room(t: &crate::core::topology::Timing) -> Duration {
    t.fence_deadline
        .saturating_sub(t.self_fence_after.saturating_add(fence_margin(t)))
}

/// The longest an isolate hook may run: every attempt to its timeout, with the pauses
/// between them (`timeout × (retries + 1) + retry_backoff × retries`).
///
/// Why it matters: a cut-off node starts its isolate hook once `self_fence_after` has passed,
/// and the services are down only when the hook ends; the peer takes over at
/// `fence_deadline`, so the whole run must fit between the two (after [`fence_margin`]).
pub fn isolate_hook_longest(h: &HookSpec) -> Duration {
    let attempts = h.retries.saturating_add(1);
    // The runner pauses at least 1 ms between attempts (see `daemon::hooks::run_hook`).
    let backoff = h.retry_backoff.max(Duration::from_millis(1));
    h.timeout
        .saturating_mul(attempts)
        .saturating_add(backoff.saturating_mul(h.retries))
}

fn loc_of(e: &serde_yaml::Error) -> Option<Location> {
    e.location().map(|l| Location {
        line: l.line(),
        column: l.column(),
    })
}

/// serde's message without its " at line L column C" (the place goes in front).
fn strip_location(msg: &str) -> String {
    let Some(i) = msg.find(" at line ") else {
        return msg.to_string();
    };
    let rest = &msg[i + " at line ".len()..];
    // Skip "L column C" (digits, " column ", digits).
    let skip = rest
        .split_once(" column ")
        .filter(|(l, _)| l.bytes().all(|b| b.is_ascii_digit()))
        .map(|(l, c)| {
            l.len() + " column ".len() + c.bytes().take_while(u8::is_ascii_digit).count()
        });
    match skip {
        Some(n) => format!("{}{}", &msg[..i], &rest[n..]),
        None => msg.to_string(),
    }
}

pub(crate) fn load_text(text: &str, source: &Path) -> Result<Config, ConfigErrors> {
    let file = source.to_path_buf();
    let fail = |errors: Vec<ConfigError>| {
        Err(ConfigErrors {
            errors,
            warnings: Vec::new(),
        })
    };
    let whole = |location: Option<Location>, message: String| ConfigError {
        file: file.clone(),
        location,
        path: String::new(),
        message,
    };

    // Stage 1: parse. serde_norway gives the values; the event pass gives positions and every
    // duplicate key (serde would stop at the first).
    let parsed: Result<serde_yaml::Value, _> = serde_yaml::from_str(text);
    let (index, dups) = match PosIndex::build(text) {
        Ok(x) => x,
        Err((at, msg)) => {
            return fail(vec![match &parsed {
                Err(e) => whole(
                    loc_of(e).or(Some(at)),
                    format!("YAML syntax: {}", strip_location(&e.to_string())),
                ),
                Ok(_) => whole(Some(at), format!("YAML syntax: {msg}")),
            }]);
        }
    };
    if !dups.is_empty() {
        let errors = dups
            .iter()
            .map(|d| {
                let parent = d.path.rsplit_once('.').map_or("", |(p, _)| p);
                let what = match parent {
                    "nodes" => format!("node \"{}\" is defined twice", d.key),
                    "networks" => format!("network \"{}\" is defined twice", d.key),
                    _ => format!("duplicate field \"{}\"", d.key),
                };
                ConfigError {
                    file: file.clone(),
                    location: Some(d.at),
                    path: d.path.clone(),
                    message: format!("{what} (first at line {})", d.first.line),
                }
            })
            .collect();
        return fail(errors);
    }
    let mut value = match parsed {
        Ok(v) => v,
        Err(e) => {
            return fail(vec![whole(
                loc_of(&e),
                format!("YAML: {}", strip_location(&e.to_string())),
            )])
        }
    };
    if let Err(e) = value.apply_merge() {
        return fail(vec![whole(
            loc_of(&e),
            format!("YAML merge (<<): {}", strip_location(&e.to_string())),
        )]);
    }

    // Stage 2: schema, then the whole topology.
    let mut cx = Ctx {
        file: source,
        index: &index,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let raw = cx.walk(&value);
    let config = resolve(&mut cx, raw, source);
    let Ctx {
        mut errors,
        mut warnings,
        ..
    } = cx;
    // File order (errors without a place last, in the order found): easier to fix top-down.
    errors.sort_by_key(|e| e.location.map_or((usize::MAX, 0), |l| (l.line, l.column)));
    warnings.sort_by_key(|e| e.location.map_or((usize::MAX, 0), |l| (l.line, l.column)));
    match config {
        Some(mut c) if errors.is_empty() => {
            c.warnings = warnings;
            Ok(c)
        }
        _ => {
            if errors.is_empty() {
                // Defensive: resolve() only declines when it recorded an error.
                errors.push(whole(None, "configuration incomplete".into()));
            }
            Err(ConfigErrors { errors, warnings })
        }
    }
}

fn resolve_path(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        super::normalize(&base.join(p))
    }
}

/// `command[0]` with a `/` in it is a path relative to the config directory; a bare name is
/// looked up in `PATH` when run.
fn resolve_command(cx: &mut Ctx, base: &Path, mut cmd: Vec<String>, path: &str) -> Vec<String> {
    if let Some(first) = cmd.first_mut() {
        if first.contains('/') {
            let full = resolve_path(base, first);
            match std::fs::metadata(&full) {
                Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {}
                Ok(_) => cx.value_warning(
                    &join_index(path, 0),
                    format!(
                        "{} is not an executable file: it will fail when run",
                        full.display()
                    ),
                ),
                Err(e) => cx.value_warning(
                    &join_index(path, 0),
                    format!(
                        "{}: {e}: it will fail when run until it exists",
                        full.display()
                    ),
                ),
            }
            *first = full.to_string_lossy().into_owned();
        }
    }
    cmd
}

/// Reads a secret file (key or token): must exist, be a regular file, be at most 4 KiB and be
/// unreadable by group and others. All problems are reported.
fn read_secret(cx: &mut Ctx, file: &Path, path: &str, what: &str) -> Option<Vec<u8>> {
    let shown = file.display();
    let meta = match std::fs::metadata(file) {
        Ok(m) => m,
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::NotFound && what == "key file" {
                format!(" (create one: head -c 32 /dev/urandom > {shown} && chmod 600 {shown})")
            } else {
                String::new()
            };
            cx.value_error(path, format!("{what} {shown}: {e}{hint}"));
            return None;
        }
    };
    if !meta.is_file() {
        cx.value_error(path, format!("{what} {shown} is not a regular file"));
        return None;
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        cx.value_error(
            path,
            format!("{what} {shown} is readable by group or others (mode {mode:04o}): run chmod 600 {shown}"),
        );
    }
    if meta.len() > MAX_SECRET_FILE_BYTES {
        cx.value_error(path, format!("{what} {shown} is {} bytes; more than {MAX_SECRET_FILE_BYTES} means the wrong file", meta.len()));
        return None;
    }
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            cx.value_error(path, format!("{what} {shown}: {e}"));
            return None;
        }
    };
    // Returned even after a permission error so that the length is checked too (the whole
    // configuration is refused anyway once any error is recorded).
    Some(bytes)
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

/// Everything after the schema walk. Returns the config when nothing blocked assembling it
/// (the caller still discards it when any error was recorded).
fn resolve(cx: &mut Ctx, raw: Raw, source: &Path) -> Option<Config> {
    let base = base_dir(source);

    // Networks (ids in file order).
    if raw.networks.len() > MAX_NETWORKS {
        cx.key_error(
            "networks",
            format!(
                "{} networks; at most {MAX_NETWORKS} are supported",
                raw.networks.len()
            ),
        );
    }
    let net_ids: HashMap<&str, NetworkId> = raw
        .networks
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), NetworkId(i as u16)))
        .collect();
    let node_names: Vec<&str> = raw.nodes.iter().map(|n| n.name.as_str()).collect();
    let node_ids: HashMap<&str, NodeId> = node_names
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, NodeId(i as u16)))
        .collect();
    if raw.nodes.len() < 2 && !cx.index_has("nodes") {
        // Missing `nodes` was already reported by the schema walk.
    } else if raw.nodes.len() < 2 {
        cx.key_error(
            "nodes",
            format!(
                "{} node(s) defined: a cluster needs at least 2",
                raw.nodes.len()
            ),
        );
    } else if raw.nodes.len() > MAX_NODES {
        cx.key_error(
            "nodes",
            format!(
                "{} nodes; at most {MAX_NODES} are supported",
                raw.nodes.len()
            ),
        );
    }
    if raw.networks.is_empty() && cx.index_has("networks") {
        cx.key_error(
            "networks",
            "no network defined: a cluster needs at least one",
        );
    }

    // Interfaces: networks defined, one device per network, addresses unique and consistent.
    let mut addr_owner: HashMap<IpAddr, String> = HashMap::new();
    // network → (family, path of the first address)
    let mut net_family: HashMap<&str, (&'static str, String)> = HashMap::new();
    let mut nodes_out = Vec::new();
    for node in &raw.nodes {
        let np = join("nodes", &node.name);
        let mut ifaces = Vec::new();
        let mut devices: HashMap<&str, &str> = HashMap::new();
        for iface in &node.interfaces {
            let ip = join(&join(&np, "interfaces"), &iface.network);
            let Some(&net_id) = net_ids.get(iface.network.as_str()) else {
                cx.key_error(&ip, format!("network \"{}\" is not defined", iface.network));
                continue;
            };
            let net = &raw.networks[net_id.index()];
            if let Some(dev) = iface.device.as_deref() {
                if let Some(other) = devices.insert(dev, iface.network.as_str()) {
                    cx.value_error(
                        &join(&ip, "device"),
                        format!("device \"{dev}\" is already this node's interface on network {other}: each network needs its own NIC, or one NIC fault would look like two"),
                    );
                }
            }
            match iface.address {
                Some(addr) => {
                    let ap = join(&ip, "address");
                    if let Some(first) = addr_owner.get(&addr) {
                        cx.value_error(&ap, format!("address {addr} is already used by {first}"));
                    } else {
                        addr_owner.insert(addr, ip.clone());
                    }
                    match net_family.get(iface.network.as_str()) {
                        Some((fam, first)) if *fam != family(&addr) => cx.value_error(
                            &ap,
                            format!("address family differs on network {}: {addr} is {} but {first} is {fam}", iface.network, family(&addr)),
                        ),
                        Some(_) => {}
                        None => {
                            net_family.insert(net.name.as_str(), (family(&addr), ap.clone()));
                        }
                    }
                }
                None if !iface.address_written && net.transport == Transport::Udp => cx.key_error(
                    &ip,
                    format!(
                        "missing field \"address\": network {} carries heartbeats over udp",
                        iface.network
                    ),
                ),
                None => {}
            }
            if let Some(device) = iface.device.clone() {
                ifaces.push(InterfaceSpec {
                    network: net_id,
                    device,
                    address: iface.address,
                });
            }
        }
        ifaces.sort_by_key(|i| i.network);
        if node.interfaces.is_empty() {
            let msg = format!(
                "node \"{}\" is attached to no network: give it an interface on at least one network{}",
                node.name,
                if node.interfaces_written { "" } else { " (missing field \"interfaces\")" }
            );
            cx.key_error(&np, msg);
        }
        nodes_out.push(ifaces);
    }

    // References: valid, unique, not a node's own address, same family as the nodes.
    let mut networks_out = Vec::new();
    for net in &raw.networks {
        let np = join("networks", &net.name);
        let refs = net.references.clone().unwrap_or_default();
        if net.references_empty {
            cx.value_warning(
                &join(&np, "references"),
                format!("no reference target: an upstream failure of {} (router or uplink down) will go unseen", net.name),
            );
        }
        let mut seen: Vec<IpAddr> = Vec::new();
        for (ip, rp) in &refs {
            if seen.contains(ip) {
                cx.value_error(rp, format!("reference {ip} is listed twice"));
            }
            seen.push(*ip);
            if let Some(owner) = addr_owner.get(ip) {
                cx.value_error(rp, format!("reference {ip} is the address of {owner}: a reference must be a router or switch outside the cluster"));
            }
            if let Some((fam, first)) = net_family.get(net.name.as_str()) {
                if *fam != family(ip) {
                    cx.value_error(rp, format!("reference {ip} is {} but the nodes' addresses on {} are {fam} (e.g. {first})", family(ip), net.name));
                }
            }
        }
        let members: Vec<&str> = raw
            .nodes
            .iter()
            .filter(|n| n.interfaces.iter().any(|i| i.network == net.name))
            .map(|n| n.name.as_str())
            .collect();
        if !refs.is_empty() {
            for n in &raw.nodes {
                if let Some(i) = n
                    .interfaces
                    .iter()
                    .find(|i| i.network == net.name && i.address.is_none() && !i.address_written)
                {
                    let _ = i;
                    if net.transport == Transport::Ethernet {
                        cx.key_error(
                            &join(&join(&join("nodes", &n.name), "interfaces"), &net.name),
                            format!("network {} has references to ping but this interface has no address", net.name),
                        );
                    }
                }
            }
        }
        match members.len() {
            0 => cx.key_warning(&np, format!("no node is attached to network {}", net.name)),
            1 => cx.key_warning(
                &np,
                format!("only node {} is attached to network {}: no heartbeats cross it, only its references are probed", members[0], net.name),
            ),
            _ => {}
        }
        networks_out.push(NetworkSpec {
            name: net.name.clone(),
            references: refs.iter().map(|(ip, _)| *ip).collect(),
            transport: net.transport,
            port: net.port,
        });
    }

    // Serial lines: peer defined, not self, one line per pair, reciprocal, same baud.
    let mut serial_out: Vec<Vec<SerialPortSpec>> = Vec::new();
    for node in &raw.nodes {
        let sp = join(&join("nodes", &node.name), "serial");
        let mut lines = Vec::new();
        let mut peers: Vec<&str> = Vec::new();
        let mut devices: Vec<&str> = Vec::new();
        for (i, line) in node.serial.iter().enumerate() {
            let lp = join_index(&sp, i);
            if let Some(dev) = line.device.as_deref() {
                if devices.contains(&dev) {
                    cx.value_error(
                        &join(&lp, "device"),
                        format!("device {dev} is used by another serial line of this node"),
                    );
                }
                devices.push(dev);
            }
            let Some(peer) = line.peer.as_deref() else {
                continue;
            };
            let pp = join(&lp, "peer");
            let Some(&peer_id) = node_ids.get(peer) else {
                let hint = nearest(peer, node_names.iter().copied())
                    .map(|s| format!("; did you mean \"{s}\"?"))
                    .unwrap_or_default();
                cx.value_error(&pp, format!("peer \"{peer}\" is not a defined node{hint}"));
                continue;
            };
            if peer == node.name {
                cx.value_error(&pp, "a serial line cannot lead back to its own node");
                continue;
            }
            if peers.contains(&peer) {
                cx.value_error(&pp, format!("a second serial line to {peer}: only one line per pair of nodes is supported"));
                continue;
            }
            peers.push(peer);
            let other: &RawNode = &raw.nodes[peer_id.index()];
            match other.serial.iter().enumerate().find(|(_, l)| l.peer.as_deref() == Some(node.name.as_str())) {
                None => cx.value_error(
                    &lp,
                    format!(
                        "serial line to {peer} is not reciprocal: nodes.{peer}.serial has no line with peer {}",
                        node.name
                    ),
                ),
                Some((j, back)) if back.baud != line.baud && node.name.as_str() < peer => cx.value_error(
                    &join(&lp, "baud"),
                    format!(
                        "baud {} differs from the other end (nodes.{peer}.serial[{j}] runs at {})",
                        line.baud, back.baud
                    ),
                ),
                Some(_) => {}
            }
            if let Some(device) = line.device.clone() {
                lines.push(SerialPortSpec {
                    peer: peer_id,
                    device,
                    baud: line.baud,
                });
            }
        }
        serial_out.push(lines);
    }

    // Priorities: equal ones fall back to file order in the partition tie-break.
    let mut first_with: BTreeMap<u32, &str> = BTreeMap::new();
    for node in &raw.nodes {
        if let Some(other) = first_with
            .get(&node.priority)
            .filter(|_| node.priority_written)
        {
            cx.key_warning(
                &join(&join("nodes", &node.name), "priority"),
                format!("same priority as {other} ({}): the partition tie-break falls back to file order", node.priority),
            );
        } else {
            first_with.insert(node.priority, &node.name);
        }
    }

    // Timing.
    let t = &raw.timing;
    let where_timing = |field: &'static str| -> String {
        if raw.timing_written.contains(&field) {
            join("timing", field)
        } else {
            "timing".to_string()
        }
    };
    if t.heartbeat_interval < MIN_HEARTBEAT_INTERVAL {
        cx.value_error(
            &where_timing("heartbeat_interval"),
            format!(
                "heartbeat_interval {} is below the minimum of {}",
                duration::format(t.heartbeat_interval),
                duration::format(MIN_HEARTBEAT_INTERVAL)
            ),
        );
    }
    let margin = fence_margin(t);
    if t.fence_deadline <= t.self_fence_after.saturating_add(margin) {
        let place = if raw.timing_written.contains(&"fence_deadline") {
            "timing.fence_deadline".to_string()
        } else {
            where_timing("self_fence_after")
        };
        cx.value_error(
            &place,
            format!(
                "fence_deadline ({}) must be greater than self_fence_after ({}) + margin {} = {}; the margin is 2 × heartbeat_interval × detect_multiplier + 1s: one detection time for each side to notice the partition, plus 1s for clock drift and scheduling, so the survivor never takes over while the cut-off node may still be active",
                duration::format(t.fence_deadline),
                duration::format(t.self_fence_after),
                duration::format(margin),
                duration::format(t.self_fence_after.saturating_add(margin)),
            ),
        );
    } else if let Some(h) = &raw.hooks.isolate {
        check_isolate_hook_margin(cx, &raw, h, margin);
    }

    // Auth: the signing key, then the further accepted keys (rotation).
    let key_path = raw.auth.key_file.as_ref().map(|f| resolve_path(&base, f));
    let key = resolve_key(cx, &base, "auth", &raw.auth);
    let mut accept = Vec::new();
    let mut ids: HashMap<String, String> = HashMap::new();
    if let Some(id) = &raw.auth.key_id {
        ids.insert(id.clone(), "auth.key_id".to_string());
    }
    if raw.auth.accept.len() + 1 > crate::core::wire::MAX_KEYS {
        cx.key_error(
            "auth.accept",
            format!(
                "{} accepted keys besides the signing key; at most {} (rotation needs one)",
                raw.auth.accept.len(),
                crate::core::wire::MAX_KEYS - 1
            ),
        );
    }
    for (i, k) in raw.auth.accept.iter().enumerate() {
        let path = join_index("auth.accept", i);
        let bytes = resolve_key(cx, &base, &path, k);
        if let Some(id) = &k.key_id {
            if let Some(first) = ids.insert(id.clone(), join(&path, "key_id")) {
                cx.value_error(
                    &join(&path, "key_id"),
                    format!("key id \"{id}\" is already used by {first}"),
                );
            }
            if let Some(b) = bytes {
                accept.push((id.clone(), b));
            }
        }
    }

    // Listen address and API token.
    let listen = raw.listen.unwrap_or_else(|| {
        DEFAULT_LISTEN
            .parse()
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9617)))
    });
    let api_token = match &raw.api_token_file {
        Some(f) => {
            let p = resolve_path(&base, f);
            read_secret(cx, &p, "api_token_file", "API token file").and_then(|b| {
                match String::from_utf8(b) {
                    Ok(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
                    _ => {
                        cx.value_error(
                            "api_token_file",
                            format!(
                                "API token file {} must hold a non-empty text token",
                                p.display()
                            ),
                        );
                        None
                    }
                }
            })
        }
        None => None,
    };
    if !listen.ip().is_loopback() && raw.api_token_file.is_none() {
        cx.value_warning(
            "listen",
            format!("the API listens on {listen}, beyond loopback, without api_token_file: anyone who reaches it can call the mutating endpoints"),
        );
    }

    // Monitors, hooks, alerts.
    let mut monitor_names: HashMap<String, usize> = HashMap::new();
    let mut monitors = Vec::new();
    if raw.monitors.len() > crate::core::wire::MAX_MONITORS {
        cx.key_error(
            "monitors",
            format!(
                "{} monitors configured; at most {} (a heartbeat lists the failing ones by name)",
                raw.monitors.len(),
                crate::core::wire::MAX_MONITORS
            ),
        );
    }
    for (i, m) in raw.monitors.into_iter().enumerate() {
        let mp = join_index("monitors", i);
        if let Some(j) = monitor_names.insert(m.name.clone(), i) {
            cx.value_error(
                &join(&mp, "name"),
                format!(
                    "monitor name \"{}\" is already used by monitors[{j}]",
                    m.name
                ),
            );
        }
        if m.timeout > m.interval {
            cx.value_warning(
                &join(&mp, "timeout"),
                format!(
                    "timeout {} is longer than the interval {}: a slow run delays the next one",
                    duration::format(m.timeout),
                    duration::format(m.interval)
                ),
            );
        }
        let command = resolve_command(cx, &base, m.command, &join(&mp, "command"));
        monitors.push(super::MonitorSpec { command, ..m });
    }
    let mut hooks = raw.hooks;
    for (name, slot) in [
        ("isolate", &mut hooks.isolate),
        ("takeover", &mut hooks.takeover),
        ("fence", &mut hooks.fence),
    ] {
        if let Some(h) = slot.take() {
            let command = resolve_command(cx, &base, h.command, &format!("hooks.{name}.command"));
            *slot = Some(HookSpec { command, ..h });
        }
    }
    let mut alerts = Vec::new();
    let mut alert_names: HashMap<String, usize> = HashMap::new();
    let net_names: Vec<&str> = raw.networks.iter().map(|n| n.name.as_str()).collect();
    for (i, a) in raw.alerts.into_iter().enumerate() {
        let ap = join_index("alerts", i);
        if let Some(j) = alert_names.insert(a.name.clone(), i) {
            cx.value_error(
                &join(&ap, "name"),
                format!("alert name \"{}\" is already used by alerts[{j}]", a.name),
            );
        }
        for (k, s) in a.select.subjects.iter().enumerate() {
            let known = node_ids.contains_key(s.as_str())
                || net_ids.contains_key(s.as_str())
                || s.split_once('.')
                    .is_some_and(|(n, w)| node_ids.contains_key(n) && net_ids.contains_key(w));
            if !known {
                let all = node_names.iter().chain(net_names.iter()).copied();
                let hint = nearest(s, all)
                    .map(|x| format!("; did you mean \"{x}\"?"))
                    .unwrap_or_default();
                cx.value_error(
                    &join_index(&join(&ap, "select.subjects"), k),
                    format!(
                        "unknown subject \"{s}\": name a node, a network or NODE.NETWORK{hint}"
                    ),
                );
            }
        }
        let action = match a.action {
            Some(AlertAction::Exec { command, timeout }) => Some(AlertAction::Exec {
                command: resolve_command(cx, &base, command, &join(&ap, "exec.command")),
                timeout,
            }),
            Some(AlertAction::Webhook {
                url,
                format,
                timeout,
                retries,
                mut options,
            }) => {
                let rel = |p: Option<PathBuf>| p.map(|p| resolve_path(&base, &p.to_string_lossy()));
                options.ca_file = rel(options.ca_file);
                options.bearer_token_file = rel(options.bearer_token_file);
                options.basic_auth = options
                    .basic_auth
                    .map(|(u, f)| (u, resolve_path(&base, &f.to_string_lossy())));
                Some(AlertAction::Webhook {
                    url,
                    format,
                    timeout,
                    retries,
                    options,
                })
            }
            other => other,
        };
        if let Some(action) = action {
            alerts.push(AlertRule {
                name: a.name,
                select: a.select,
                after: a.after,
                every: a.every,
                upalert: a.upalert,
                action,
            });
        }
    }

    // Disks: relative paths resolve against the config directory.
    let disks: Vec<Option<String>> = raw
        .nodes
        .iter()
        .map(|n| {
            n.disk
                .as_ref()
                .map(|d| resolve_path(&base, d).to_string_lossy().into_owned())
        })
        .collect();

    let state_dir = resolve_path(&base, raw.state_dir.as_deref().unwrap_or(DEFAULT_STATE_DIR));

    // Assemble (only meaningful when no error was recorded).
    let nodes: Vec<NodeSpec> = raw
        .nodes
        .iter()
        .zip(nodes_out)
        .zip(serial_out)
        .zip(disks)
        .map(|(((n, interfaces), serial), disk)| NodeSpec {
            name: n.name.clone(),
            priority: n.priority,
            interfaces,
            serial,
            disk,
        })
        .collect();
    let fence_deadline = raw.timing.fence_deadline;
    let topology = Topology {
        cluster: raw.cluster?,
        nodes,
        networks: networks_out,
        timing: raw.timing,
        thresholds: raw.thresholds,
    };
    let key_id = raw.auth.key_id?;
    if cx.errors.is_empty() {
        check_heartbeat_size(cx, &topology, &key_id, &monitors);
    }
    Some(Config {
        source: source.to_path_buf(),
        topology,
        auth: AuthConfig {
            key_id,
            accept,
            key_file: key_path,
            key: key?,
        },
        listen,
        api_token,
        state_dir,
        monitors,
        hooks,
        alerts,
        journal: raw.journal,
        policy: raw.policy,
        // The start-up sync waits until every verdict about the start has settled.
        pacemaker: raw.pacemaker.map(|mut p| {
            p.initial_sync_after = fence_deadline;
            p
        }),
        warnings: Vec::new(),
    })
}

/// The key bytes of one `key_id` + `key_file`/`key` entry under `path` (None after an error).
/// The isolate hook must have ended before the peer takes over: `fence_deadline >
/// self_fence_after + margin + the hook's longest run` (see [`isolate_hook_longest`]).
fn check_isolate_hook_margin(cx: &mut Ctx, raw: &Raw, h: &HookSpec, margin: Duration) {
    let t = &raw.timing;
    let longest = isolate_hook_longest(h);
    let room = isolate_hook_room(t);
    if longest < room {
        return;
    }
    let needed = t
        .self_fence_after
        .saturating_add(margin)
        .saturating_add(longest);
    let run = if h.retries == 0 {
        format!("timeout {}", duration::format(h.timeout))
    } else {
        format!(
            "timeout {} × {} attempts + retry_backoff {} × {}",
            duration::format(h.timeout),
            h.retries + 1,
            duration::format(h.retry_backoff),
            h.retries
        )
    };
    let shorten = if room.is_zero() {
        String::new()
    } else {
        format!(
            ", or make the isolate hook end within {} (timeout × attempts + pauses)",
            duration::format(room)
        )
    };
    let place = if raw.timing_written.contains(&"fence_deadline") {
        "timing.fence_deadline".to_string()
    } else if cx.index_has("hooks.isolate.timeout") {
        "hooks.isolate.timeout".to_string()
    } else {
        "hooks.isolate".to_string()
    };
    cx.value_error(
        &place,
        format!(
            "fence_deadline ({}) must be greater than self_fence_after ({}) + margin {} + the isolate hook's longest run {} ({run}) = {}: a cut-off node starts its isolate hook after self_fence_after and its services are down only when the hook ends, so with these values the peer may take over while they still run; raise fence_deadline above {}{shorten}",
            duration::format(t.fence_deadline),
            duration::format(t.self_fence_after),
            duration::format(margin),
            duration::format(longest),
            duration::format(needed),
            duration::format(needed),
        ),
    );
}

fn resolve_key(
    cx: &mut Ctx,
    base: &Path,
    path: &str,
    raw: &super::schema::RawAuth,
) -> Option<Vec<u8>> {
    let key_path = raw.key_file.as_ref().map(|f| resolve_path(base, f));
    match (&key_path, &raw.key_hex) {
        (Some(p), None) => {
            let bytes = read_secret(cx, p, &join(path, "key_file"), "key file");
            match bytes {
                Some(b) if b.len() < MIN_KEY_BYTES => {
                    cx.value_error(
                        &join(path, "key_file"),
                        format!("key file {} holds {} bytes; at least {MIN_KEY_BYTES} random bytes are needed", p.display(), b.len()),
                    );
                    None
                }
                other => other,
            }
        }
        (None, Some(hex)) => match decode_hex(hex) {
            None => {
                cx.value_error(&join(path, "key"), "the inline key must be hexadecimal (e.g. from: head -c 32 /dev/urandom | xxd -p -c 64)");
                None
            }
            Some(b) if b.len() < MIN_KEY_BYTES => {
                cx.value_error(&join(path, "key"), format!("the inline key is {} bytes; at least {MIN_KEY_BYTES} are needed ({} hex digits)", b.len(), MIN_KEY_BYTES * 2));
                None
            }
            Some(b) => {
                cx.value_warning(
                    &join(path, "key"),
                    "the key is written in the configuration itself: fine for a lab or an example, but in production use key_file with mode 0600 so the configuration can be shared without the key",
                );
                Some(b)
            }
        },
        // Neither, or both: already reported by the schema walk.
        _ => None,
    }
}

/// Sizes every node's worst-case heartbeat with the real encoder: an error (with the numbers)
/// when even its mandatory part exceeds one datagram, a warning when the full worst case needs
/// shedding (see the wire encoder's documented order).
fn check_heartbeat_size(cx: &mut Ctx, t: &Topology, key_id: &str, monitors: &[super::MonitorSpec]) {
    use crate::core::wire::MAX_MESSAGE_BYTES;
    let names: Vec<String> = monitors.iter().map(|m| m.name.clone()).collect();
    let Ok(sizes) = super::wire_size::worst_heartbeats(t, key_id, &names) else {
        return; // names the wire cannot carry are reported by their own checks
    };
    let Some(worst) = sizes.iter().max_by_key(|s| (s.mandatory, s.full)) else {
        return;
    };
    let path = join("nodes", &worst.node);
    if worst.mandatory > MAX_MESSAGE_BYTES {
        cx.key_error(
            &path,
            format!(
                "heartbeat too large: node {}'s heartbeat needs {} bytes even with all optional detail shed (header, link and reference state, every peer heard on each of its {} network(s), serial, disk, state, stamp), over the {MAX_MESSAGE_BYTES}-byte datagram limit: use shorter node or network names, or fewer nodes per network",
                worst.node,
                worst.mandatory,
                t.nodes.iter().find(|n| n.name == worst.node).map_or(0, |n| n.interfaces.len()),
            ),
        );
        return;
    }
    if let Some(w) = sizes
        .iter()
        .max_by_key(|s| s.full)
        .filter(|s| s.full > MAX_MESSAGE_BYTES)
    {
        cx.key_warning(
            &join("nodes", &w.node),
            format!(
                "node {}'s worst-case heartbeat (every list full, every monitor failing, an open incident) is {} bytes, over the {MAX_MESSAGE_BYTES}-byte limit: heartbeats then shed optional detail (echo, degraded lists, failing monitor names, incident) to fit; mandatory part {} bytes",
                w.node, w.full, w.mandatory
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::topology::Timing;

    #[test]
    fn fence_margin_is_two_detection_times_plus_slack() {
        // Defaults: 2 × 100ms × 3 + 1s.
        assert_eq!(
            fence_margin(&Timing::default()),
            Duration::from_millis(1600)
        );
        let t = Timing {
            heartbeat_interval: Duration::from_millis(250),
            detect_multiplier: 4,
            ..Timing::default()
        };
        assert_eq!(fence_margin(&t), Duration::from_millis(3000));
        // The defaults satisfy their own rule.
        let d = Timing::default();
        assert!(d.fence_deadline > d.self_fence_after + fence_margin(&d));
    }

    /// The isolate hook's whole run must end before the peer takes over: accepted just
    /// inside the bound, refused on it, with the numbers and both ways out.
    #[test]
    fn isolate_hook_must_end_before_the_peer_takes_over() {
        let h = HookSpec {
            command: vec!["true".into()],
            timeout: Duration::from_secs(2),
            retries: 2,
            retry_backoff: Duration::from_millis(250),
        };
        assert_eq!(isolate_hook_longest(&h), Duration::from_millis(6500));
        let no_pause = HookSpec {
            retry_backoff: Duration::ZERO,
            ..h.clone()
        };
        assert_eq!(isolate_hook_longest(&no_pause), Duration::from_millis(6002));
        assert_eq!(
            isolate_hook_room(&Timing::default()),
            Duration::from_millis(1400)
        );
        // Defaults: self_fence_after 2s + margin 1.6s; a 1.3s hook fits 5s, a 1.4s one not.
        let text = |timeout: &str| {
            format!(
                "cluster: c\nauth: {{ key_id: k, key: 00112233445566778899aabbccddeeff }}\n\
                 networks:\n  A: {{ references: [198.51.100.254] }}\nnodes:\n  \
                 n1: {{ interfaces: {{ A: {{ device: e1, address: 198.51.100.1 }} }} }}\n  \
                 n2: {{ interfaces: {{ A: {{ device: e1, address: 198.51.100.2 }} }} }}\n\
                 hooks:\n  isolate: {{ command: [x], timeout: {timeout} }}\n"
            )
        };
        assert!(load_text(&text("1300ms"), Path::new("c.yaml")).is_ok());
        let e = load_text(&text("1400ms"), Path::new("c.yaml")).unwrap_err();
        assert_eq!(e.errors.len(), 1, "{e}");
        let err = &e.errors[0];
        assert_eq!(err.path, "hooks.isolate.timeout");
        for needle in ["= 5s", "raise fence_deadline above 5s", "end within 1.4s"] {
            assert!(
                err.message.contains(needle),
                "{needle:?} in {}",
                err.message
            );
        }
    }

    #[test]
    fn serde_locations_are_moved_to_the_front() {
        assert_eq!(
            strip_location("bad thing at line 4 column 9, while parsing x"),
            "bad thing, while parsing x"
        );
        assert_eq!(strip_location("bad thing at line 4 column 9"), "bad thing");
        assert_eq!(strip_location("no place"), "no place");
        assert_eq!(strip_location("at line x"), "at line x");
    }

    #[test]
    fn hex_keys() {
        assert_eq!(decode_hex("00ff 10"), Some(vec![0, 255, 16]));
        assert_eq!(decode_hex("0"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex("é1"), None);
    }
}
