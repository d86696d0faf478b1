//! The local control channel: `hadiag quiesce | resume | leave | rejoin` reach the running
//! daemon over a Unix socket in the state directory (`control-<node>.sock`, mode 0600: only
//! the daemon's user and root may connect).
//!
//! One JSON request line in, one JSON reply line out ([`ControlRequest`], [`ControlReply`]).
//! The accept task only parses and forwards; the driver applies each request to the core
//! with [`apply`] between two core steps, so no lock is ever taken around the core.
//!
//! Maintenance survives a restart: `quiesce` writes `maintenance-<node>.json` next to the
//! socket and the driver re-announces it at start ([`restore`]) before its first heartbeat,
//! so a reboot inside a maintenance window stays a maintenance.
//!
//! Coming back must not look like a failure either: the peers still hold the long silence of
//! the node's absence, and a node that leaves maintenance before they hear it again would be
//! judged on that silence (a transient `node failed` incident, a takeover with a short fence
//! deadline). So `resume` is refused until every peer's fresh view reports hearing this node
//! on every path it shares with it (`--force` overrides), and a plain stop (SIGTERM) or
//! `leave` writes an automatic maintenance that the next start re-announces and ends by
//! itself ([`tick`]) once the peers hear it — or after [`REJOIN_LIMIT_FENCE_DEADLINES`]
//! fence deadlines, so a node whose peers are all gone still comes back into service.
//!
//! Service claims: a node that holds a peer's services (it took them over) refuses `quiesce`
//! and `leave` unless `--force` — nobody would run them — and on SIGTERM it leaves without
//! announcing, so the remaining nodes treat its silence as a failure and take over.
//!
//! Bounds: a request line is at most [`MAX_REQUEST`] bytes and must arrive within
//! [`CLIENT_TIMEOUT`]; connections are served one at a time (operators type these commands);
//! at most [`QUEUE`] requests wait for the driver.
//!
//! Must not: decide anything about the cluster (the core does), or block the driver.

use crate::core::node::{Node, Role};
use crate::core::time::Instant;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

/// Largest request line (a reason of a few hundred characters fits many times).
pub const MAX_REQUEST: usize = 4096;
/// A client must send its request and read the reply within this.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests waiting for the driver.
pub const QUEUE: usize = 8;
/// Longest maintenance reason kept.
pub const MAX_REASON: usize = 512;
/// An automatic maintenance after a planned stop ends at the latest this many fence deadlines
/// after the start, heard or not (peers that are all down cannot hear it).
pub const REJOIN_LIMIT_FENCE_DEADLINES: u32 = 3;

/// The control socket of node `node` under `state_dir`.
pub fn socket_path(state_dir: &Path, node: &str) -> PathBuf {
    state_dir.join(format!("control-{node}.sock"))
}

/// The persisted maintenance window of node `node` under `state_dir`.
pub fn maintenance_path(state_dir: &Path, node: &str) -> PathBuf {
    state_dir.join(format!("maintenance-{node}.json"))
}

/// What an operator asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum ControlRequest {
    /// Announce planned maintenance (persisted until `resume`).
    Quiesce {
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        force: bool,
    },
    /// End the maintenance (refused until every peer hears this node again, unless `force`).
    Resume {
        #[serde(default)]
        force: bool,
    },
    /// Stop the daemon. Without `failover`: announce maintenance first, so peers neither take
    /// over nor fence. With it: stop silently; peers treat the silence as a failure.
    Leave {
        #[serde(default)]
        failover: bool,
        #[serde(default)]
        force: bool,
    },
    /// Leave a manual isolation (`policy.resume_on_heal: false`).
    Rejoin,
    /// Report the role only.
    Status,
}

/// The daemon's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlReply {
    pub ok: bool,
    pub message: String,
    /// `active` | `isolated` | `quiesced`.
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<Maintenance>,
}

/// A maintenance window as persisted and reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintenance {
    #[serde(default)]
    pub reason: Option<String>,
    /// RFC 3339.
    pub since: String,
    /// Written by a planned stop: the next start ends it by itself once the peers hear the
    /// node again.
    #[serde(default)]
    pub auto: bool,
}

/// A request on its way to the driver.
#[derive(Debug)]
pub struct Pending {
    pub request: ControlRequest,
    pub reply: oneshot::Sender<ControlReply>,
}

/// What the driver does after [`apply`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum After {
    Continue,
    /// Stop the daemon (the leave, if announced, is already queued in the core).
    Stop,
}

/// The accept task; dropping it stops accepting and removes the socket file.
#[derive(Debug)]
pub struct ControlServer {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("control socket {path}: {source}")]
pub struct ControlError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Binds the socket (replacing a stale one left by a crash) and starts accepting.
pub fn bind(path: PathBuf) -> Result<(ControlServer, mpsc::Receiver<Pending>), ControlError> {
    let err = |source| ControlError {
        path: path.clone(),
        source,
    };
    match std::fs::symlink_metadata(&path) {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {
            std::fs::remove_file(&path).map_err(err)?
        }
        Ok(_) => {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists and is not a socket; not replacing it",
            )))
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(&path).map_err(err)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let _ = tokio::time::timeout(CLIENT_TIMEOUT, serve(stream, &tx)).await;
        }
    });
    Ok((ControlServer { path, task }, rx))
}

async fn serve(stream: tokio::net::UnixStream, tx: &mpsc::Sender<Pending>) {
    let (r, mut w) = stream.into_split();
    let mut line = Vec::new();
    let mut reader = BufReader::new(r.take(MAX_REQUEST as u64 + 1));
    let reply = match reader.read_until(b'\n', &mut line).await {
        Err(e) => refusal(format!("reading the request: {e}")),
        Ok(_) if line.len() > MAX_REQUEST => {
            refusal(format!("request longer than {MAX_REQUEST} bytes"))
        }
        Ok(_) => match serde_json::from_slice::<ControlRequest>(&line) {
            Err(e) => refusal(format!("bad request: {e}")),
            Ok(request) => {
                let (rtx, rrx) = oneshot::channel();
                match tx.try_send(Pending {
                    request,
                    reply: rtx,
                }) {
                    Err(_) => refusal("daemon busy: too many control requests".into()),
                    Ok(()) => rrx
                        .await
                        .unwrap_or_else(|_| refusal("daemon stopping".into())),
                }
            }
        },
    };
    let mut out = serde_json::to_vec(&reply).unwrap_or_default();
    out.push(b'\n');
    let _ = w.write_all(&out).await;
    let _ = w.shutdown().await;
}

fn refusal(message: String) -> ControlReply {
    ControlReply {
        ok: false,
        message,
        role: String::new(),
        maintenance: None,
    }
}

pub fn role_token(r: Role) -> &'static str {
    match r {
        Role::Active => "active",
        Role::Isolated => "isolated",
        Role::Quiesced => "quiesced",
    }
}

fn load(path: &Path) -> Option<Maintenance> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str(&text) {
        Ok(m) => Some(m),
        Err(e) => {
            // A maintenance file we cannot read still means the operator asked for one.
            tracing::warn!(file = %path.display(), error = %e, "maintenance file unreadable; staying in maintenance");
            Some(Maintenance {
                reason: None,
                since: String::new(),
                auto: false,
            })
        }
    }
}

/// At start, before the first heartbeat: re-announce a persisted maintenance.
pub fn restore(node: &mut Node, now: Instant, file: &Path) -> Option<Maintenance> {
    let m = load(file)?;
    tracing::info!(reason = m.reason.as_deref().unwrap_or(""), since = %m.since, "resuming planned maintenance from before the restart (hadiag resume ends it)");
    node.quiesce(now);
    Some(m)
}

/// Names of the peers whose services this node holds.
fn held(node: &Node) -> Vec<String> {
    node.held_peers()
        .keys()
        .map(|p| node.topology().node_name(*p).to_string())
        .collect()
}

/// SIGTERM/SIGINT: announce a leave (maintenance for the rest of this run) unless this node
/// holds peers' services, which others must then take over. Returns the log line.
pub fn announce_leave(node: &mut Node, now: Instant, file: &Path) -> String {
    let h = held(node);
    if h.is_empty() {
        node.quiesce(now);
        let persisted = persist_leave(file);
        format!("announcing a planned leave: peers record maintenance, not a failure{persisted}")
    } else {
        format!(
            "holding the services of {}: leaving without a maintenance announcement, so the remaining nodes take over",
            h.join(", ")
        )
    }
}

/// Writes the automatic maintenance of a planned stop, unless an operator's maintenance is
/// already there (it wins). Returns a note for the log.
fn persist_leave(file: &Path) -> String {
    if load(file).is_some() {
        return String::new();
    }
    let m = Maintenance {
        reason: Some("planned stop (leave)".into()),
        since: crate::journal::record::fmt_ts(&chrono::Utc::now()),
        auto: true,
    };
    match write_file(file, &m) {
        Ok(()) => "; the next start rejoins once the peers hear it".to_string(),
        Err(e) => format!("; cannot persist the leave to {}: {e}", file.display()),
    }
}

/// Why peers would still judge this node's silence: the paths on which a peer's fresh view
/// does not report hearing it. Empty when every peer hears it everywhere.
pub fn unheard_paths(node: &Node, now: Instant) -> Vec<String> {
    let t = node.topology();
    let me = node.me();
    let cv = node.cluster_view(now);
    let mut missing = Vec::new();
    let mut check = |peer, heard: Option<bool>, path: String| match heard {
        Some(true) => {}
        Some(false) => missing.push(format!("{} does not hear it on {path}", t.node_name(peer))),
        None => missing.push(format!("no fresh view from {}", t.node_name(peer))),
    };
    for net in t.network_ids() {
        if t.node(me).interface(net).is_none() {
            continue;
        }
        for peer in t.members(net).filter(|&p| p != me) {
            let heard = cv
                .reports
                .get(&peer)
                .map(|r| r.view.nets.get(&net).is_some_and(|v| v.heard.contains(&me)));
            check(peer, heard, t.network_name(net).to_string());
        }
    }
    for s in &t.node(me).serial {
        let heard = cv
            .reports
            .get(&s.peer)
            .map(|r| r.view.serial.get(&me).copied().unwrap_or(false));
        check(s.peer, heard, "the serial line".to_string());
    }
    // And this node must hear them: its own view travels in its heartbeats and the peers
    // classify with it (a serial line not yet heard after a restart reads as a fault).
    let own = node.own_view(now);
    for net in t.network_ids() {
        if t.node(me).interface(net).is_none() {
            continue;
        }
        for peer in t.members(net).filter(|&p| p != me) {
            if !own.nets.get(&net).is_some_and(|v| v.heard.contains(&peer)) {
                missing.push(format!(
                    "this node does not hear {} on {} yet",
                    t.node_name(peer),
                    t.network_name(net)
                ));
            }
        }
    }
    for s in &t.node(me).serial {
        if own.serial.get(&s.peer) != Some(&true) {
            missing.push(format!(
                "this node does not hear {} on the serial line yet",
                t.node_name(s.peer)
            ));
        }
    }
    missing.dedup();
    missing
}

/// Housekeeping (about once a second): ends the automatic maintenance of a planned stop once
/// every peer hears this node again, or [`REJOIN_LIMIT_FENCE_DEADLINES`] fence deadlines
/// after the start.
pub fn tick(node: &mut Node, now: Instant, file: &Path, uptime: Duration) {
    if node.role() != Role::Quiesced {
        return;
    }
    let Some(m) = load(file).filter(|m| m.auto) else {
        return;
    };
    let limit = node.topology().timing.fence_deadline * REJOIN_LIMIT_FENCE_DEADLINES;
    let unheard = unheard_paths(node, now);
    if !unheard.is_empty() && uptime < limit {
        return;
    }
    if let Err(e) = std::fs::remove_file(file) {
        tracing::warn!(file = %file.display(), error = %e, "cannot remove the maintenance file");
        return;
    }
    node.resume(now);
    if unheard.is_empty() {
        tracing::info!(since = %m.since, "rejoined after a planned stop: every peer hears this node again");
    } else {
        tracing::warn!(since = %m.since, unheard = %unheard.join("; "), "rejoined after a planned stop without hearing every peer ({REJOIN_LIMIT_FENCE_DEADLINES} fence deadlines passed)");
    }
}

/// Applies one control request to the core.
pub fn apply(node: &mut Node, now: Instant, file: &Path, req: Pending) -> After {
    let (reply, after) = decide(node, now, file, req.request);
    match &reply {
        r if r.ok => tracing::info!(role = %r.role, "control: {}", r.message),
        r => tracing::warn!("control request refused: {}", r.message),
    }
    let _ = req.reply.send(reply);
    after
}

fn decide(
    node: &mut Node,
    now: Instant,
    file: &Path,
    request: ControlRequest,
) -> (ControlReply, After) {
    let reply = |node: &Node, ok: bool, message: String| ControlReply {
        ok,
        message,
        role: role_token(node.role()).to_string(),
        maintenance: if node.role() == Role::Quiesced {
            load(file)
        } else {
            None
        },
    };
    let held = held(node);
    match request {
        ControlRequest::Status => (reply(node, true, "ok".into()), After::Continue),
        ControlRequest::Quiesce { reason, force } => {
            if node.role() == Role::Isolated {
                let m = "this node is isolated; `hadiag rejoin` (or the automatic rejoin) first";
                return (reply(node, false, m.into()), After::Continue);
            }
            if !held.is_empty() && !force {
                let m = format!("this node runs the services of {} (taken over); quiescing it leaves nobody to run them — move them first, or use --force", held.join(", "));
                return (reply(node, false, m), After::Continue);
            }
            let reason = reason.map(|r| r.chars().take(MAX_REASON).collect::<String>());
            let m = Maintenance {
                reason: reason.clone(),
                since: crate::journal::record::fmt_ts(&chrono::Utc::now()),
                auto: false,
            };
            if let Err(e) = write_file(file, &m) {
                let m = format!("cannot persist the maintenance to {}: {e}", file.display());
                return (reply(node, false, m), After::Continue);
            }
            node.quiesce(now);
            let text = match reason {
                Some(r) => format!("planned maintenance announced: {r}"),
                None => "planned maintenance announced".to_string(),
            };
            (reply(node, true, text), After::Continue)
        }
        ControlRequest::Resume { force } => {
            if node.role() != Role::Quiesced {
                let m = format!(
                    "not in maintenance (role {}){}",
                    role_token(node.role()),
                    if node.role() == Role::Isolated {
                        "; to leave a manual isolation use `hadiag rejoin`"
                    } else {
                        ""
                    }
                );
                return (reply(node, false, m), After::Continue);
            }
            let unheard = unheard_paths(node, now);
            if !unheard.is_empty() && !force {
                let m = format!("the peers do not hear this node again yet ({}); resuming now would make them judge its absence as a failure — retry in a few seconds, or use --force", unheard.join("; "));
                return (reply(node, false, m), After::Continue);
            }
            if !force {
                // Hand over to the housekeeping tick: it resumes at its next pass if the peers
                // still hear this node then (a condition met once, right after a restart, may
                // not have settled in every peer's evidence yet).
                let mut m = load(file).unwrap_or(Maintenance {
                    reason: None,
                    since: crate::journal::record::fmt_ts(&chrono::Utc::now()),
                    auto: true,
                });
                m.auto = true;
                if let Err(e) = write_file(file, &m) {
                    let m = format!("cannot update {}: {e}", file.display());
                    return (reply(node, false, m), After::Continue);
                }
                return (
                    reply(
                        node,
                        true,
                        "maintenance ends within a second, once the peers still hear this node"
                            .into(),
                    ),
                    After::Continue,
                );
            }
            if let Err(e) = std::fs::remove_file(file) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    let m = format!("cannot remove {}: {e}", file.display());
                    return (reply(node, false, m), After::Continue);
                }
            }
            node.resume(now);
            (
                reply(node, true, "planned maintenance ended".into()),
                After::Continue,
            )
        }
        ControlRequest::Rejoin => {
            if node.role() != Role::Isolated {
                let m = format!("not isolated (role {})", role_token(node.role()));
                return (reply(node, false, m), After::Continue);
            }
            node.resume(now);
            let ok = node.role() != Role::Isolated;
            (
                reply(
                    node,
                    ok,
                    if ok {
                        "left isolation".into()
                    } else {
                        "still isolated".into()
                    },
                ),
                After::Continue,
            )
        }
        ControlRequest::Leave { failover, force } => {
            if !held.is_empty() && !failover && !force {
                let m = format!("this node runs the services of {} (taken over); a planned leave would leave nobody to run them — use --failover so the others take over, or --force", held.join(", "));
                return (reply(node, false, m), After::Continue);
            }
            if failover {
                (
                    reply(
                        node,
                        true,
                        "stopping without announcement: peers will treat the silence as a failure and take over".into(),
                    ),
                    After::Stop,
                )
            } else {
                node.quiesce(now);
                let persisted = persist_leave(file);
                (
                    reply(
                        node,
                        true,
                        format!("stopping; leave announced (peers record maintenance){persisted}"),
                    ),
                    After::Stop,
                )
            }
        }
    }
}

/// Writes `m` atomically (temp file + rename), mode 0600.
fn write_file(path: &Path, m: &Maintenance) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&serde_json::to_vec(m).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The client side (the CLI): one request, one reply. Blocking, bounded by
/// [`CLIENT_TIMEOUT`].
pub fn request(socket: &Path, req: &ControlRequest) -> std::io::Result<ControlReply> {
    use std::io::{BufRead, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket)?;
    s.set_read_timeout(Some(CLIENT_TIMEOUT * 2))?;
    s.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut line = serde_json::to_vec(req).map_err(std::io::Error::other)?;
    line.push(b'\n');
    s.write_all(&line)?;
    let mut out = String::new();
    // A reply is a few hundred bytes; never read more than 64 KiB.
    std::io::BufReader::new(std::io::Read::take(s, 64 * 1024)).read_line(&mut out)?;
    serde_json::from_str(&out).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("bad reply {out:?}: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_bad_ones_are_named() {
        let r: ControlRequest =
            serde_json::from_str(r#"{"command":"quiesce","reason":"kernel update"}"#).unwrap();
        assert_eq!(
            r,
            ControlRequest::Quiesce {
                reason: Some("kernel update".into()),
                force: false
            }
        );
        let e = serde_json::from_str::<ControlRequest>(r#"{"command":"reboot"}"#).unwrap_err();
        assert!(e.to_string().contains("reboot"), "{e}");
    }
}
