//! Lexical rules and tokens shared by the encoder and the decoder, so both sides agree on
//! exactly one spelling of every value.

use crate::core::diagnosis::Component;
use crate::core::topology::{NetworkId, NodeId, Topology};
use crate::core::view::{DiskHealth, Reach};

/// Longest node, network or monitor name on the wire. Names are short identifiers; the bound
/// keeps a 16-node heartbeat inside one datagram.
pub const MAX_NAME_BYTES: usize = 32;
/// Longest cluster name.
pub const MAX_CLUSTER_BYTES: usize = 64;
/// Longest key id in a stamp.
pub const MAX_KEY_ID_BYTES: usize = 16;
/// Longest key of a `key=value` field (known or extension).
pub const MAX_FIELD_KEY_BYTES: usize = 32;
/// Most failing monitors one view may list (each costs bytes in every heartbeat).
pub const MAX_MONITORS: usize = 32;
/// Most subjects one incident may name.
pub const MAX_SUBJECTS: usize = 64;
/// Bytes of the hex HMAC-SHA256 in a stamp.
pub const MAC_HEX_BYTES: usize = 64;

/// `path=` token of the serial line; therefore no network may be called `serial`.
pub const SERIAL_PATH: &str = "serial";

fn is_ident(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || extra.contains(&b))
}

/// Whether `name` can be a node or network name on the wire: 1 to 32 characters of
/// `[A-Za-z0-9_-]` (no `.`, `:`, `,`, `+`: they separate tokens). The configuration should
/// enforce this, plus [`is_valid_network_name`] for networks.
pub fn is_valid_name(name: &str) -> bool {
    is_ident(name, MAX_NAME_BYTES, b"")
}

/// A valid name that is not the reserved path token `serial`.
pub fn is_valid_network_name(name: &str) -> bool {
    is_valid_name(name) && name != SERIAL_PATH
}

/// Cluster names: 1 to 64 characters of `[A-Za-z0-9._-]`.
pub fn is_valid_cluster_name(name: &str) -> bool {
    is_ident(name, MAX_CLUSTER_BYTES, b".")
}

/// Key ids: 1 to 16 characters of `[A-Za-z0-9._-]` (e.g. `k1`, `2026-11`).
pub fn is_valid_key_id(id: &str) -> bool {
    is_ident(id, MAX_KEY_ID_BYTES, b".")
}

/// Monitor names: 1 to 32 characters of `[A-Za-z0-9._-]`.
pub fn is_valid_monitor_name(name: &str) -> bool {
    is_ident(name, MAX_NAME_BYTES, b".")
}

/// Field keys: 1 to 32 characters of `[A-Za-z0-9._-]`.
pub fn is_valid_field_key(key: &str) -> bool {
    is_ident(key, MAX_FIELD_KEY_BYTES, b".")
}

/// Field values: printable ASCII without space (`!` to `~`).
pub fn is_valid_field_value(value: &str) -> bool {
    value.bytes().all(|b| b.is_ascii_graphic())
}

/// Keys the codec understands; anything else is an extension (kept, ignored).
pub const HEADER_KEYS: [&str; 6] = [
    "cluster",
    "sender",
    "incarnation",
    "sequence",
    "path",
    "type",
];
/// View keys besides the `net.<NAME>` family.
pub const VIEW_KEYS: [&str; 7] = [
    "serial", "disk", "failing", "state", "incident", "holds", "rejoin",
];
pub const NET_PREFIX: &str = "net.";
pub const ECHO_KEY: &str = "echo";
pub const VERDICT_KEY: &str = "verdict";
pub const STAMP_KEY: &str = "stamp";

/// Whether `key` has a meaning in this protocol version (so it cannot be an extension).
pub fn is_known_key(key: &str) -> bool {
    HEADER_KEYS.contains(&key)
        || VIEW_KEYS.contains(&key)
        || key.starts_with(NET_PREFIX)
        || key == ECHO_KEY
        || key == VERDICT_KEY
        || key == STAMP_KEY
}

pub fn link_token(r: Reach) -> &'static str {
    match r {
        Reach::Unknown => "unknown",
        Reach::Yes => "up",
        Reach::No => "down",
    }
}

pub fn link_from_token(s: &str) -> Option<Reach> {
    [Reach::Unknown, Reach::Yes, Reach::No]
        .into_iter()
        .find(|&r| link_token(r) == s)
}

pub fn ref_token(r: Reach) -> &'static str {
    match r {
        Reach::Unknown => "unknown",
        Reach::Yes => "ok",
        Reach::No => "fail",
    }
}

pub fn ref_from_token(s: &str) -> Option<Reach> {
    [Reach::Unknown, Reach::Yes, Reach::No]
        .into_iter()
        .find(|&r| ref_token(r) == s)
}

const DISKS: [DiskHealth; 6] = [
    DiskHealth::Unknown,
    DiskHealth::None,
    DiskHealth::Ok,
    DiskHealth::Slow,
    DiskHealth::Failing,
    DiskHealth::Hung,
];

pub fn disk_token(d: DiskHealth) -> &'static str {
    d.token()
}

pub fn disk_from_token(s: &str) -> Option<DiskHealth> {
    DISKS.into_iter().find(|&d| disk_token(d) == s)
}

pub fn serial_token(heard: bool) -> &'static str {
    if heard {
        "up"
    } else {
        "down"
    }
}

pub fn serial_from_token(s: &str) -> Option<bool> {
    match s {
        "up" => Some(true),
        "down" => Some(false),
        _ => None,
    }
}

/// Name of a node id, if the id is inside the topology.
pub fn node_name(t: &Topology, id: NodeId) -> Option<&str> {
    t.nodes.get(id.index()).map(|n| n.name.as_str())
}

/// Name of a network id, if the id is inside the topology.
pub fn network_name(t: &Topology, id: NetworkId) -> Option<&str> {
    t.networks.get(id.index()).map(|n| n.name.as_str())
}

/// Prefix token of a component subject (`node:n2`, `attachment:n2.A`, …).
pub fn component_prefix(c: &Component) -> &'static str {
    match c {
        Component::Node(_) => "node",
        Component::Attachment(..) => "attachment",
        Component::Hub(_) => "hub",
        Component::Upstream(_) => "upstream",
        Component::Serial(..) => "serial",
        Component::Disk(_) => "disk",
    }
}
