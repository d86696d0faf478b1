//! Typed message to bytes. Every value is checked against the same rules the decoder applies,
//! so whatever `encode` returns, `decode` accepts and maps back to an equal message
//! (for canonical messages: sorted, duplicate-free incident subjects; whole-millisecond holds).
//!
//! # Fitting the limit
//!
//! A heartbeat is never dropped for its size: when the full message would exceed
//! [`MAX_MESSAGE_BYTES`], the encoder sheds optional detail, one step at a time, in this order,
//! and adds the extension `shed=<step>+<step>…` naming what it left out:
//!
//! 1. `echo` — RTT measurement only; the peers skip one RTT sample.
//! 2. `degraded` — the per-network quality qualifiers; `heard` itself stays.
//! 3. `failing` — the failing monitor names (also shed when more than [`MAX_MONITORS`] fail).
//! 4. `incident` — the sender's current incident (heartbeats only; a proposal's verdict is
//!    never shed). Shed whole, never cut short: a summary with missing subjects would differ
//!    from the real one and mislead agreement; the proposals and acks still carry it.
//!
//! The header, link/reference state, `heard` lists, serial, disk, state and stamp are
//! mandatory: if they alone exceed the limit, encoding fails with `Oversize` (the
//! configuration check computes this worst case and refuses such clusters up front).

use super::error::EncodeError;
use super::stamp::Keyring;
use super::syntax::*;
use super::{Body, Echo, Message, Path, MAX_MESSAGE_BYTES, PROTOCOL};
use crate::core::diagnosis::{Component, IncidentId, IncidentSummary};
use crate::core::topology::{NetworkId, NodeId, Topology};
use crate::core::view::{NetView, View};
use std::collections::BTreeSet;
use std::fmt::Write as _;

type R<T> = Result<T, EncodeError>;

fn node<'t>(t: &'t Topology, field: &str, id: NodeId) -> R<&'t str> {
    let name = node_name(t, id).ok_or_else(|| {
        EncodeError::invalid(field, "node id outside the topology", &id.0.to_string())
    })?;
    if !is_valid_name(name) {
        return Err(EncodeError::invalid(
            field,
            "node name is not 1-32 characters of [A-Za-z0-9_-]",
            name,
        ));
    }
    Ok(name)
}

fn network<'t>(t: &'t Topology, field: &str, id: NetworkId) -> R<&'t str> {
    let name = network_name(t, id).ok_or_else(|| {
        EncodeError::invalid(field, "network id outside the topology", &id.0.to_string())
    })?;
    if !is_valid_network_name(name) {
        return Err(EncodeError::invalid(
            field,
            "network name is not 1-32 characters of [A-Za-z0-9_-] other than `serial`",
            name,
        ));
    }
    Ok(name)
}

/// Writes into a `String`; `fmt::Write` for `String` never fails, so results are ignored.
struct Out {
    s: String,
}

impl Out {
    fn field(&mut self, key: &str) {
        self.s.push(' ');
        self.s.push_str(key);
        self.s.push('=');
    }

    fn nodes(&mut self, t: &Topology, field: &str, set: &BTreeSet<NodeId>) -> R<()> {
        for (i, &id) in set.iter().enumerate() {
            if i > 0 {
                self.s.push('+');
            }
            self.s.push_str(node(t, field, id)?);
        }
        Ok(())
    }

    fn net_view(&mut self, t: &Topology, id: NetworkId, v: &NetView, shed: bool) -> R<()> {
        let name = network(t, "net", id)?;
        self.field(&format!("{NET_PREFIX}{name}"));
        let _ = write!(
            self.s,
            "link:{},ref:{}",
            link_token(v.carrier),
            ref_token(v.reference)
        );
        let field = format!("{NET_PREFIX}{name}");
        if !v.heard.is_empty() {
            self.s.push_str(",heard:");
            self.nodes(t, &field, &v.heard)?;
        }
        if !shed && !v.degraded.is_empty() {
            self.s.push_str(",degraded:");
            self.nodes(t, &field, &v.degraded)?;
        }
        Ok(())
    }

    fn incident_id(&mut self, t: &Topology, field: &str, id: &IncidentId) -> R<()> {
        let opener = node(t, field, id.opener)?;
        let _ = write!(self.s, "{opener}:{}", id.number);
        Ok(())
    }

    fn component(&mut self, t: &Topology, field: &str, c: &Component) -> R<()> {
        self.s.push_str(component_prefix(c));
        self.s.push(':');
        match *c {
            Component::Node(n) | Component::Disk(n) => self.s.push_str(node(t, field, n)?),
            Component::Attachment(n, net) => {
                let (n, net) = (node(t, field, n)?, network(t, field, net)?);
                let _ = write!(self.s, "{n}.{net}");
            }
            Component::Hub(net) | Component::Upstream(net) => {
                self.s.push_str(network(t, field, net)?)
            }
            Component::Serial(a, b) => {
                if a == b {
                    return Err(EncodeError::invalid(
                        field,
                        "serial line from a node to itself",
                        "",
                    ));
                }
                let (a, b) = (node(t, field, a)?, node(t, field, b)?);
                let _ = write!(self.s, "{a}-{b}");
            }
        }
        Ok(())
    }

    fn incident(&mut self, t: &Topology, key: &str, i: &IncidentSummary) -> R<()> {
        if i.subjects.len() > MAX_SUBJECTS {
            return Err(EncodeError::invalid(
                key,
                "too many subjects",
                &i.subjects.len().to_string(),
            ));
        }
        self.field(key);
        self.incident_id(t, key, &i.id)?;
        self.s.push(',');
        self.s.push_str(i.kind.token());
        for c in &i.subjects {
            self.s.push(',');
            self.component(t, key, c)?;
        }
        Ok(())
    }

    fn view(&mut self, t: &Topology, v: &View, shed: Shed) -> R<()> {
        for (&id, nv) in &v.nets {
            self.net_view(t, id, nv, shed.degraded)?;
        }
        if !v.serial.is_empty() {
            self.field("serial");
            for (i, (&peer, &heard)) in v.serial.iter().enumerate() {
                if i > 0 {
                    self.s.push(',');
                }
                let _ = write!(
                    self.s,
                    "{}:{}",
                    node(t, "serial", peer)?,
                    serial_token(heard)
                );
            }
        }
        self.field("disk");
        self.s.push_str(disk_token(v.disk));
        if !shed.failing && !v.failing_monitors.is_empty() {
            self.field("failing");
            for (i, m) in v.failing_monitors.iter().enumerate() {
                if !is_valid_monitor_name(m) {
                    return Err(EncodeError::invalid(
                        "failing",
                        "monitor name is not 1-32 characters of [A-Za-z0-9._-]",
                        m,
                    ));
                }
                if i > 0 {
                    self.s.push(',');
                }
                self.s.push_str(m);
            }
        }
        match (v.quiesced, v.isolated) {
            (false, false) => {}
            (true, false) => self.s.push_str(" state=quiesced"),
            (false, true) => self.s.push_str(" state=isolated"),
            (true, true) => self.s.push_str(" state=quiesced,isolated"),
        }
        if let Some(i) = v.incident.as_ref().filter(|_| !shed.incident) {
            self.incident(t, "incident", i)?;
        }
        if !v.holds.is_empty() {
            self.field("holds");
            for (k, (&peer, id)) in v.holds.iter().enumerate() {
                if k > 0 {
                    self.s.push(',');
                }
                self.s.push_str(node(t, "holds", peer)?);
                self.s.push('/');
                self.incident_id(t, "holds", id)?;
            }
        }
        if v.rejoin_ready {
            self.s.push_str(" rejoin=ready");
        }
        Ok(())
    }

    fn echo(&mut self, t: &Topology, echo: &[Echo]) -> R<()> {
        if echo.is_empty() {
            return Ok(());
        }
        self.field(ECHO_KEY);
        let mut peers = BTreeSet::new();
        for (i, e) in echo.iter().enumerate() {
            let peer = node(t, ECHO_KEY, e.peer)?;
            if !peers.insert(e.peer) {
                return Err(EncodeError::invalid(ECHO_KEY, "peer listed twice", peer));
            }
            if i > 0 {
                self.s.push(',');
            }
            // Millisecond resolution (documented on `Echo::held`); saturate absurd holds.
            let held_ms = u64::try_from(e.held.as_millis()).unwrap_or(u64::MAX);
            let _ = write!(self.s, "{peer}:{}:{held_ms}", e.sequence);
        }
        Ok(())
    }
}

/// What the encoder left out of a message to fit [`MAX_MESSAGE_BYTES`] (see the module docs
/// for the order). All false: the message went out whole.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Shed {
    pub echo: bool,
    pub degraded: bool,
    pub failing: bool,
    pub incident: bool,
}

/// Extension key naming the shed steps (an extension, so older receivers simply ignore it).
pub const SHED_KEY: &str = "shed";

impl Shed {
    /// The shedding steps, in order: each one sheds everything the previous one did.
    pub const STEPS: [Shed; 5] = [
        Shed {
            echo: false,
            degraded: false,
            failing: false,
            incident: false,
        },
        Shed {
            echo: true,
            degraded: false,
            failing: false,
            incident: false,
        },
        Shed {
            echo: true,
            degraded: true,
            failing: false,
            incident: false,
        },
        Shed {
            echo: true,
            degraded: true,
            failing: true,
            incident: false,
        },
        Shed {
            echo: true,
            degraded: true,
            failing: true,
            incident: true,
        },
    ];

    pub fn any(self) -> bool {
        self != Shed::default()
    }

    /// The message a receiver decodes when `msg` went out with these steps shed: what
    /// [`encode_fitted`] promises (tests and the simulator compare against it).
    pub fn apply(self, msg: &Message) -> Message {
        let mut m = msg.clone();
        if !self.any() {
            return m;
        }
        match &mut m.body {
            Body::Heartbeat { view, echo } => {
                if self.echo {
                    echo.clear();
                }
                self.apply_view(view, true);
            }
            Body::Proposal { view, .. } => self.apply_view(view, false),
            _ => {}
        }
        m.extensions.retain(|(k, _)| k != SHED_KEY);
        m.extensions.push((SHED_KEY.to_string(), self.token()));
        m
    }

    fn apply_view(self, view: &mut View, heartbeat: bool) {
        if self.degraded {
            for nv in view.nets.values_mut() {
                nv.degraded.clear();
            }
        }
        if self.failing {
            view.failing_monitors.clear();
        }
        if self.incident && heartbeat {
            view.incident = None;
        }
    }

    /// `echo+degraded+…`, the value of the `shed=` extension ("" when nothing was shed).
    pub fn token(self) -> String {
        [
            (self.echo, "echo"),
            (self.degraded, "degraded"),
            (self.failing, "failing"),
            (self.incident, "incident"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, t)| *t)
        .collect::<Vec<_>>()
        .join("+")
    }
}

/// Encode `msg` as one signed datagram for `topology`'s cluster, stamped with the current key
/// of `keys`. Sheds optional detail to fit (module docs); fails with `Oversize` when even the
/// mandatory part exceeds [`MAX_MESSAGE_BYTES`] and `Invalid` for values the wire cannot carry.
pub fn encode(msg: &Message, topology: &Topology, keys: &Keyring) -> Result<Vec<u8>, EncodeError> {
    encode_fitted(msg, topology, keys).map(|(b, _)| b)
}

/// [`encode`], also saying what was shed.
pub fn encode_fitted(
    msg: &Message,
    topology: &Topology,
    keys: &Keyring,
) -> Result<(Vec<u8>, Shed), EncodeError> {
    let heartbeat = matches!(msg.body, Body::Heartbeat { .. });
    let has_view = matches!(msg.body, Body::Heartbeat { .. } | Body::Proposal { .. });
    let too_many_monitors = match &msg.body {
        Body::Heartbeat { view, .. } | Body::Proposal { view, .. } => {
            view.failing_monitors.len() > MAX_MONITORS
        }
        _ => false,
    };
    let mut last = None;
    for shed in Shed::STEPS {
        if shed.any() && !has_view {
            break;
        }
        if shed.incident && !heartbeat {
            break;
        }
        if too_many_monitors && !shed.failing {
            continue;
        }
        let text = render(msg, topology, shed)?;
        let len = text.len() + keys.stamp_len();
        if len <= MAX_MESSAGE_BYTES {
            let mut bytes = text.into_bytes();
            keys.append_stamp(&mut bytes);
            return Ok((bytes, shed));
        }
        last = Some(len);
    }
    Err(EncodeError::Oversize {
        len: last.unwrap_or(usize::MAX),
    })
}

/// The message without its stamp, with the `shed` steps left out.
fn render(msg: &Message, topology: &Topology, shed: Shed) -> R<String> {
    let t = topology;
    if !is_valid_cluster_name(&t.cluster) {
        return Err(EncodeError::invalid(
            "cluster",
            "cluster name is not 1-64 characters of [A-Za-z0-9._-]",
            &t.cluster,
        ));
    }
    let h = &msg.header;
    let mut o = Out {
        s: String::with_capacity(MAX_MESSAGE_BYTES),
    };
    o.s.push_str(PROTOCOL);
    let sender = node(t, "sender", h.sender)?;
    let path = match h.path {
        Path::Serial => SERIAL_PATH,
        Path::Network(id) => network(t, "path", id)?,
    };
    let _ = write!(
        o.s,
        " cluster={} sender={sender} incarnation={} sequence={} path={path} type={}",
        t.cluster,
        h.incarnation,
        h.sequence,
        msg.body.token()
    );
    match &msg.body {
        Body::Heartbeat { view, echo } => {
            o.view(t, view, shed)?;
            if !shed.echo {
                o.echo(t, echo)?;
            }
        }
        Body::Proposal { incident, view } => {
            o.incident(t, VERDICT_KEY, incident)?;
            o.view(t, view, shed)?;
        }
        Body::Ack { incident } => o.incident(t, VERDICT_KEY, incident)?,
        Body::Isolated { incident } => {
            o.field(VERDICT_KEY);
            o.incident_id(t, VERDICT_KEY, incident)?;
        }
        Body::Quiesce | Body::Resume => {}
    }
    for (k, v) in &msg.extensions {
        if !is_valid_field_key(k) || is_known_key(k) {
            return Err(EncodeError::invalid(
                k,
                "extension key is not 1-32 characters of [A-Za-z0-9._-] or is a known key",
                k,
            ));
        }
        if !is_valid_field_value(v) {
            return Err(EncodeError::invalid(
                k,
                "extension value is not printable ASCII without space",
                v,
            ));
        }
        if shed.any() && k == SHED_KEY {
            continue;
        }
        o.field(k);
        o.s.push_str(v);
    }
    if shed.any() {
        o.field(SHED_KEY);
        o.s.push_str(&shed.token());
    }
    Ok(o.s)
}

/// Length of `msg` signed by `keys` with the `shed` steps left out, limit not applied: how the
/// configuration check sizes the worst case.
pub fn fitted_len(msg: &Message, topology: &Topology, keys: &Keyring, shed: Shed) -> R<usize> {
    Ok(render(msg, topology, shed)?.len() + keys.stamp_len())
}
