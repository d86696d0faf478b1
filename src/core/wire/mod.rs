//! The ASCII wire format (docs/wire-format.md): typed messages, codec, authentication stamp and replay
//! filter. Pure: bytes in, bytes out. No sockets, no clock, no randomness — the driver owns
//! transports, incarnation numbers and sequence counters.
//!
//! # Format
//!
//! One message per datagram or serial frame, printable ASCII only (`0x20`–`0x7e`), at most
//! [`MAX_MESSAGE_BYTES`]. Tokens are separated by single spaces: first the protocol and
//! version `HADIAG/1`, then `key=value` fields, and last the stamp. A 2-node heartbeat
//! (one line on the wire, wrapped here; key `k1` = `lab-key-0123456789abcdef`, the unit
//! tests check this exact datagram):
//!
//! ```text
//! HADIAG/1 cluster=lab sender=n1 incarnation=1764121800123 sequence=4711 path=A type=heartbeat
//!   net.A=link:up,ref:ok,heard:n2 net.B=link:up,ref:fail,heard:n2,degraded:n2 serial=n2:up
//!   disk=ok incident=n1:3,upstream_failed,upstream:B echo=n2:5120:12
//!   stamp=k1:3e86018442f391019431d71380f495053e7ba1b2228c950cfd74d750d09b0e7a
//! ```
//!
//! | field | value |
//! |---|---|
//! | `cluster` | cluster name, `[A-Za-z0-9._-]{1,64}`; checked before anything is resolved |
//! | `sender` | node name (all names: `[A-Za-z0-9_-]{1,32}`, resolved against the topology) |
//! | `incarnation` | `u64`, changes (increases) on every start of the sender |
//! | `sequence` | `u64`, increasing per (sender, incarnation) across all paths |
//! | `path` | network name, or `serial` (so no network may be called `serial`) |
//! | `type` | `heartbeat`, `proposal`, `ack`, `isolated`, `quiesce`, `resume` |
//! | `verdict` | proposal/ack: incident summary (below); isolated: incident id only |
//! | `net.<NET>` | `link:up\|down\|unknown,ref:ok\|fail\|unknown[,heard:<n>+<n>…][,degraded:<n>+…]` |
//! | `serial` | `<peer>:up\|down,…` — serial peers and whether they are heard |
//! | `disk` | `ok`, `slow`, `failing`, `hung`, `none` (no probe), `unknown` |
//! | `failing` | failing monitor names, `,`-separated, at most 32 |
//! | `state` | `quiesced`, `isolated` or `quiesced,isolated` |
//! | `incident` | the sender's current incident: `<opener>:<number>,<kind>[,<subject>…]` |
//! | `holds` | service claims: `<peer>/<opener>:<number>,…` — peers whose services the sender took over, with the incident |
//! | `rejoin` | `ready`: the sender is isolated and waits only for its services to be handed back |
//! | `echo` | heartbeat only: `<peer>:<their sequence>:<held ms>,…` for RTT measurement |
//! | anything else | extension: kept in [`Message::extensions`] and otherwise ignored |
//! | `stamp` | last: `<key id>:<64 hex>` = HMAC-SHA256 over every byte before ` stamp=` |
//!
//! Subjects: `node:n2`, `attachment:n2.A`, `hub:A`, `upstream:A`, `serial:n1-n2`,
//! `disk:n2`; kinds are [`crate::core::diagnosis::VerdictKind::token`]s. View fields
//! (`net.*`, `serial`, `disk`, `failing`, `state`, `incident`) appear only in heartbeats and
//! proposals; empty sets and false flags are omitted. Field order is free on decode (the
//! encoder uses the order above); each known key appears at most once; numbers are decimal
//! without leading zeros; unknown items inside a known field are malformed (new information
//! goes into new top-level keys, which old versions ignore).
//!
//! # Layers
//!
//! [`parse`] gives the bytes view [`RawMessage`] (size, version, charset, field syntax);
//! [`RawMessage::check_cluster`], [`RawMessage::verify`] (constant-time HMAC) and
//! [`RawMessage::resolve`] (values and names) give a [`Message`]. [`decode`] runs all four in
//! that order; [`ReplayFilter::accept`] then drops replays of authentic messages. Every
//! failure is a [`DecodeError`] whose [`DecodeError::reason`] is a stable metrics label.

mod encode;
mod error;
mod message;
mod raw;
mod replay;
mod resolve;
mod stamp;
mod syntax;

pub use encode::{encode, encode_fitted, fitted_len, Shed, SHED_KEY};
pub use error::{DecodeError, EncodeError, KeyError, ReplayKind, DECODE_REASONS};
pub use message::*;
pub use raw::{parse, RawMessage, RawStamp};
pub use replay::{ReplayFilter, REPLAY_WINDOW};
pub use stamp::{Keyring, MAX_KEYS, MIN_KEY_BYTES};
pub use syntax::{
    is_valid_cluster_name, is_valid_key_id, is_valid_monitor_name, is_valid_name,
    is_valid_network_name, MAX_CLUSTER_BYTES, MAX_KEY_ID_BYTES, MAX_MONITORS, MAX_NAME_BYTES,
    MAX_SUBJECTS, SERIAL_PATH,
};

use crate::core::topology::Topology;

/// Bytes to an authenticated, validated message: [`parse`], cluster check, stamp check,
/// name resolution. Does not filter replays (that needs state: [`ReplayFilter`]).
pub fn decode(bytes: &[u8], topology: &Topology, keys: &Keyring) -> Result<Message, DecodeError> {
    let raw = parse(bytes)?;
    raw.check_cluster(topology)?;
    raw.verify(keys)?;
    raw.resolve(topology)
}

#[cfg(test)]
mod tests;
