//! From fields to a typed [`Message`]: every value validated, every name resolved against the
//! [`Topology`]. An unknown node or network is `Malformed` naming the field.

use super::error::DecodeError;
use super::raw::RawMessage;
use super::syntax::*;
use super::{Body, Echo, Header, Message, Path};
use crate::core::diagnosis::{Component, IncidentId, IncidentSummary, VerdictKind};
use crate::core::topology::{NetworkId, NodeId, Topology};
use crate::core::view::{NetView, View};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

type R<T> = Result<T, DecodeError>;

fn bad(field: &str, reason: &'static str, value: &str) -> DecodeError {
    DecodeError::malformed(field, reason, value)
}

/// Decimal `u64`: digits only, no sign, no leading zero (one spelling per number).
fn parse_u64(field: &str, s: &str) -> R<u64> {
    let canonical = !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s.len() == 1 || !s.starts_with('0'));
    if !canonical {
        return Err(bad(
            field,
            "expected a decimal number without leading zeros",
            s,
        ));
    }
    s.parse::<u64>()
        .map_err(|_| bad(field, "number out of range", s))
}

fn parse_u32(field: &str, s: &str) -> R<u32> {
    u32::try_from(parse_u64(field, s)?).map_err(|_| bad(field, "number out of range", s))
}

fn node(t: &Topology, field: &str, name: &str) -> R<NodeId> {
    t.node_by_name(name)
        .ok_or_else(|| bad(field, "unknown node", name))
}

fn network(t: &Topology, field: &str, name: &str) -> R<NetworkId> {
    t.network_by_name(name)
        .ok_or_else(|| bad(field, "unknown network", name))
}

/// Comma-separated, non-empty items.
fn items<'a>(field: &str, value: &'a str) -> R<impl Iterator<Item = &'a str>> {
    if value.is_empty() || value.split(',').any(str::is_empty) {
        return Err(bad(field, "empty value or empty list item", value));
    }
    Ok(value.split(','))
}

fn node_set(t: &Topology, field: &str, list: &str) -> R<BTreeSet<NodeId>> {
    let mut set = BTreeSet::new();
    for name in list.split('+') {
        if !set.insert(node(t, field, name)?) {
            return Err(bad(field, "node listed twice", name));
        }
    }
    Ok(set)
}

/// `link:up,ref:ok,heard:n2+n3,degraded:n3`
fn net_view(t: &Topology, field: &str, value: &str) -> R<NetView> {
    let mut v = NetView::default();
    let mut seen = BTreeSet::new();
    for item in items(field, value)? {
        let (k, x) = item.split_once(':').ok_or_else(|| {
            bad(
                field,
                "expected link:, ref:, heard: or degraded: item",
                item,
            )
        })?;
        if !seen.insert(k) {
            return Err(bad(field, "item given twice", item));
        }
        match k {
            "link" => {
                v.carrier = link_from_token(x)
                    .ok_or_else(|| bad(field, "link is not up, down or unknown", x))?
            }
            "ref" => {
                v.reference = ref_from_token(x)
                    .ok_or_else(|| bad(field, "ref is not ok, fail or unknown", x))?
            }
            "heard" => v.heard = node_set(t, field, x)?,
            "degraded" => v.degraded = node_set(t, field, x)?,
            _ => return Err(bad(field, "unknown item", item)),
        }
    }
    Ok(v)
}

fn incident_id(t: &Topology, field: &str, s: &str) -> R<IncidentId> {
    let (opener, number) = s
        .split_once(':')
        .ok_or_else(|| bad(field, "incident id is not <opener>:<number>", s))?;
    Ok(IncidentId {
        opener: node(t, field, opener)?,
        number: parse_u32(field, number)?,
    })
}

/// `serial:a-b`: node names may contain `-`, so try every split; exactly one must resolve.
fn serial_pair(t: &Topology, field: &str, s: &str) -> R<(NodeId, NodeId)> {
    let mut found = None;
    for (i, _) in s.match_indices('-') {
        let (Some(a), Some(b)) = (s.get(..i), s.get(i + 1..)) else {
            continue;
        };
        if let (Some(a), Some(b)) = (t.node_by_name(a), t.node_by_name(b)) {
            if found.replace((a, b)).is_some() {
                return Err(bad(field, "ambiguous serial line", s));
            }
        }
    }
    let (a, b) = found.ok_or_else(|| bad(field, "serial line between unknown nodes", s))?;
    if a == b {
        return Err(bad(field, "serial line from a node to itself", s));
    }
    Ok((a.min(b), a.max(b)))
}

fn component(t: &Topology, field: &str, s: &str) -> R<Component> {
    let (kind, arg) = s
        .split_once(':')
        .ok_or_else(|| bad(field, "subject is not <kind>:<name>", s))?;
    Ok(match kind {
        "node" => Component::Node(node(t, field, arg)?),
        "attachment" => {
            let (n, net) = arg
                .split_once('.')
                .ok_or_else(|| bad(field, "attachment is not <node>.<network>", arg))?;
            Component::Attachment(node(t, field, n)?, network(t, field, net)?)
        }
        "hub" => Component::Hub(network(t, field, arg)?),
        "upstream" => Component::Upstream(network(t, field, arg)?),
        "serial" => {
            let (a, b) = serial_pair(t, field, arg)?;
            Component::Serial(a, b)
        }
        "disk" => Component::Disk(node(t, field, arg)?),
        _ => return Err(bad(field, "unknown subject kind", kind)),
    })
}

/// `<opener>:<number>,<kind>[,<subject>...]`; subjects are returned in canonical order.
fn incident(t: &Topology, field: &str, value: &str) -> R<IncidentSummary> {
    let mut it = items(field, value)?;
    let id = incident_id(t, field, it.next().unwrap_or(""))?;
    let kind_token = it.next().unwrap_or("");
    let kind = VerdictKind::from_token(kind_token)
        .ok_or_else(|| bad(field, "unknown verdict kind", kind_token))?;
    let mut subjects = BTreeSet::new();
    for s in it {
        if subjects.len() >= MAX_SUBJECTS {
            return Err(bad(field, "too many subjects", s));
        }
        subjects.insert(component(t, field, s)?);
    }
    Ok(IncidentSummary {
        id,
        kind,
        subjects: subjects.into_iter().collect(),
    })
}

/// `<peer>:<sequence>:<held_ms>,...`
fn echo(t: &Topology, value: &str) -> R<Vec<Echo>> {
    let mut out = Vec::new();
    let mut peers = BTreeSet::new();
    for item in items(ECHO_KEY, value)? {
        let mut parts = item.split(':');
        let (Some(p), Some(q), Some(h), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad(
                ECHO_KEY,
                "item is not <peer>:<sequence>:<held_ms>",
                item,
            ));
        };
        let peer = node(t, ECHO_KEY, p)?;
        if !peers.insert(peer) {
            return Err(bad(ECHO_KEY, "peer listed twice", p));
        }
        out.push(Echo {
            peer,
            sequence: parse_u64(ECHO_KEY, q)?,
            held: Duration::from_millis(parse_u64(ECHO_KEY, h)?),
        });
    }
    Ok(out)
}

/// The fields of one message, sorted by meaning. Every known key at most once.
#[derive(Default)]
struct Fields<'a> {
    header: [Option<&'a str>; 6],
    view: [Option<&'a str>; 7],
    nets: BTreeMap<&'a str, &'a str>,
    echo: Option<&'a str>,
    verdict: Option<&'a str>,
    extensions: Vec<(String, String)>,
}

fn put<'a>(slot: &mut Option<&'a str>, key: &str, value: &'a str) -> R<()> {
    if slot.replace(value).is_some() {
        return Err(bad(key, "field given twice", value));
    }
    Ok(())
}

impl<'a> Fields<'a> {
    fn sort(raw: &RawMessage<'a>) -> R<Fields<'a>> {
        let mut f = Fields::default();
        for &(k, v) in &raw.fields {
            if let Some(i) = HEADER_KEYS.iter().position(|&h| h == k) {
                put(
                    f.header.get_mut(i).ok_or_else(|| bad(k, "internal", v))?,
                    k,
                    v,
                )?;
            } else if let Some(i) = VIEW_KEYS.iter().position(|&h| h == k) {
                put(
                    f.view.get_mut(i).ok_or_else(|| bad(k, "internal", v))?,
                    k,
                    v,
                )?;
            } else if let Some(net) = k.strip_prefix(NET_PREFIX) {
                if f.nets.insert(net, v).is_some() {
                    return Err(bad(k, "field given twice", v));
                }
            } else if k == ECHO_KEY {
                put(&mut f.echo, k, v)?;
            } else if k == VERDICT_KEY {
                put(&mut f.verdict, k, v)?;
            } else {
                if !is_valid_field_value(v) {
                    return Err(bad(k, "extension value is not printable ASCII", v));
                }
                f.extensions.push((k.to_string(), v.to_string()));
            }
        }
        Ok(f)
    }

    fn header(&self, key: &'static str) -> R<&'a str> {
        HEADER_KEYS
            .iter()
            .position(|&h| h == key)
            .and_then(|i| self.header.get(i).copied().flatten())
            .ok_or_else(|| bad(key, "missing", ""))
    }

    fn view_field(&self, key: &'static str) -> Option<&'a str> {
        VIEW_KEYS
            .iter()
            .position(|&h| h == key)
            .and_then(|i| self.view.get(i).copied().flatten())
    }

    fn has_view(&self) -> bool {
        !self.nets.is_empty() || self.view.iter().any(Option::is_some)
    }

    fn view(&self, t: &Topology) -> R<View> {
        let mut v = View::default();
        for (&name, &value) in &self.nets {
            let field = format!("{NET_PREFIX}{name}");
            let id = network(t, &field, name)?;
            v.nets.insert(id, net_view(t, &field, value)?);
        }
        if let Some(s) = self.view_field("serial") {
            for item in items("serial", s)? {
                let (peer, state) = item
                    .split_once(':')
                    .ok_or_else(|| bad("serial", "item is not <peer>:up|down", item))?;
                let peer = node(t, "serial", peer)?;
                let heard = serial_from_token(state)
                    .ok_or_else(|| bad("serial", "state is not up or down", state))?;
                if v.serial.insert(peer, heard).is_some() {
                    return Err(bad("serial", "peer listed twice", item));
                }
            }
        }
        if let Some(d) = self.view_field("disk") {
            v.disk = disk_from_token(d)
                .ok_or_else(|| bad("disk", "not ok, slow, failing, hung, none or unknown", d))?;
        }
        if let Some(m) = self.view_field("failing") {
            for name in items("failing", m)? {
                if !is_valid_monitor_name(name) {
                    return Err(bad("failing", "invalid monitor name", name));
                }
                if v.failing_monitors.len() >= MAX_MONITORS {
                    return Err(bad("failing", "too many monitors", name));
                }
                if !v.failing_monitors.insert(name.to_string()) {
                    return Err(bad("failing", "monitor listed twice", name));
                }
            }
        }
        if let Some(s) = self.view_field("state") {
            for flag in items("state", s)? {
                let slot = match flag {
                    "quiesced" => &mut v.quiesced,
                    "isolated" => &mut v.isolated,
                    _ => return Err(bad("state", "not quiesced or isolated", flag)),
                };
                if std::mem::replace(slot, true) {
                    return Err(bad("state", "flag given twice", flag));
                }
            }
        }
        if let Some(i) = self.view_field("incident") {
            v.incident = Some(incident(t, "incident", i)?);
        }
        if let Some(h) = self.view_field("holds") {
            for item in items("holds", h)? {
                let (peer, id) = item
                    .split_once('/')
                    .ok_or_else(|| bad("holds", "item is not <peer>/<opener>:<number>", item))?;
                let peer = node(t, "holds", peer)?;
                if v.holds.insert(peer, incident_id(t, "holds", id)?).is_some() {
                    return Err(bad("holds", "peer listed twice", item));
                }
            }
        }
        if let Some(r) = self.view_field("rejoin") {
            if r != "ready" {
                return Err(bad("rejoin", "not ready", r));
            }
            v.rejoin_ready = true;
        }
        Ok(v)
    }
}

impl RawMessage<'_> {
    /// Validate every field and resolve names against `topology`. Checks the cluster first.
    /// Does not check the stamp: call [`RawMessage::verify`] (or use [`super::decode`]).
    pub fn resolve(&self, topology: &Topology) -> Result<Message, DecodeError> {
        let t = topology;
        self.check_cluster(t)?;
        let f = Fields::sort(self)?;
        let header = Header {
            sender: node(t, "sender", f.header("sender")?)?,
            incarnation: parse_u64("incarnation", f.header("incarnation")?)?,
            sequence: parse_u64("sequence", f.header("sequence")?)?,
            path: match f.header("path")? {
                SERIAL_PATH => Path::Serial,
                name => Path::Network(network(t, "path", name)?),
            },
        };
        let ty = f.header("type")?;
        let carries_view = matches!(ty, "heartbeat" | "proposal");
        if !carries_view && f.has_view() {
            return Err(bad("type", "message type carries no view fields", ty));
        }
        if ty != "heartbeat" && f.echo.is_some() {
            return Err(bad(ECHO_KEY, "only heartbeats carry echo", ty));
        }
        let verdict = || f.verdict.ok_or_else(|| bad(VERDICT_KEY, "missing", ""));
        let body = match ty {
            "heartbeat" => {
                if let Some(v) = f.verdict {
                    return Err(bad(VERDICT_KEY, "heartbeats carry no verdict", v));
                }
                let echo = match f.echo {
                    Some(e) => echo(t, e)?,
                    None => Vec::new(),
                };
                Body::Heartbeat {
                    view: f.view(t)?,
                    echo,
                }
            }
            "proposal" => Body::Proposal {
                incident: incident(t, VERDICT_KEY, verdict()?)?,
                view: f.view(t)?,
            },
            "ack" => Body::Ack {
                incident: incident(t, VERDICT_KEY, verdict()?)?,
            },
            "isolated" => Body::Isolated {
                incident: incident_id(t, VERDICT_KEY, verdict()?)?,
            },
            "quiesce" | "resume" => {
                if let Some(v) = f.verdict {
                    return Err(bad(VERDICT_KEY, "message type carries no verdict", v));
                }
                if ty == "quiesce" {
                    Body::Quiesce
                } else {
                    Body::Resume
                }
            }
            _ => return Err(bad("type", "unknown message type", ty)),
        };
        Ok(Message {
            header,
            body,
            extensions: f.extensions,
        })
    }
}
