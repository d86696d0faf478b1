//! Link probe: carrier/operstate of this node's NIC on every network.
//!
//! Event-driven: a `NETLINK_ROUTE` socket subscribed to `RTMGRP_LINK` delivers `RTM_NEWLINK` /
//! `RTM_DELLINK` as soon as the kernel changes a link, and a `RTM_GETLINK` dump every
//! `refresh` re-reports every watched NIC (keeps the core's evidence fresh, and recovers from a
//! lost event after `ENOBUFS`). Netlink reads the link state of the network namespace the
//! daemon runs in, whatever `/sys` is mounted from.
//!
//! A NIC counts as up when it is administratively up (`IFF_UP`), has carrier (`IFF_LOWER_UP`)
//! and its operstate is `UP` or `UNKNOWN` (drivers without operstate support); a NIC that
//! vanished counts as down.
//!
//! Detection latency: the event arrives within microseconds of the kernel's link change. The
//! kernel itself reports carrier changes through linkwatch: immediately for stacked/virtual
//! devices such as veth, VLANs and bonds, but batched up to ~1 s for physical NICs (linkwatch
//! rate limit). If the netlink socket cannot be opened the probe falls back to polling
//! `/sys/class/net/<dev>/{carrier,operstate}` every `refresh` (latency ≤ `refresh`; note that
//! `/sys` must then be mounted from the daemon's own network namespace, as `ip netns exec`
//! does).
//!
//! Must not: act on links (it only reads), or block the driver.

use crate::core::observation::{Observation, Probe};
use crate::core::topology::NetworkId;
use crate::daemon::clock::Clock;
use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

const RTMGRP_LINK: u32 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const IFLA_IFNAME: u16 = 3;
const IFLA_OPERSTATE: u16 = 16;
const IFF_UP: u32 = 1;
const IFF_LOWER_UP: u32 = 0x1_0000;
const IF_OPER_UNKNOWN: u8 = 0;
const IF_OPER_UP: u8 = 6;
const NLMSG_HDR: usize = 16;
const IFINFO: usize = 16;

/// One link's state as parsed from a netlink message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkMsg {
    pub name: String,
    pub up: bool,
    pub deleted: bool,
    /// Netlink sequence (0 for unsolicited events).
    pub seq: u32,
}

/// Parsed content of one netlink datagram.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub links: Vec<LinkMsg>,
    /// Sequences of dumps that completed (`NLMSG_DONE` or an error).
    pub done: Vec<u32>,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(i..i + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(i..i + 4)?.try_into().ok()?))
}
fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Parses a netlink datagram; malformed parts are skipped, never a panic.
pub fn parse(buf: &[u8]) -> Parsed {
    let mut out = Parsed::default();
    let mut off = 0;
    while off + NLMSG_HDR <= buf.len() {
        let (Some(len), Some(ty), Some(seq)) =
            (u32_at(buf, off), u16_at(buf, off + 4), u32_at(buf, off + 8))
        else {
            break;
        };
        let len = len as usize;
        if len < NLMSG_HDR || off + len > buf.len() {
            break;
        }
        let msg = &buf[off..off + len];
        match ty {
            NLMSG_DONE | NLMSG_ERROR => out.done.push(seq),
            RTM_NEWLINK | RTM_DELLINK => {
                if let Some(l) = parse_link(msg, ty == RTM_DELLINK, seq) {
                    out.links.push(l);
                }
            }
            _ => {}
        }
        off += align4(len);
    }
    out
}

fn parse_link(msg: &[u8], deleted: bool, seq: u32) -> Option<LinkMsg> {
    let flags = u32_at(msg, NLMSG_HDR + 8)?;
    let mut name = None;
    let mut oper = IF_OPER_UNKNOWN;
    let mut a = NLMSG_HDR + IFINFO;
    while a + 4 <= msg.len() {
        let alen = u16_at(msg, a)? as usize;
        let aty = u16_at(msg, a + 2)? & 0x3fff;
        if alen < 4 || a + alen > msg.len() {
            break;
        }
        let data = &msg[a + 4..a + alen];
        match aty {
            IFLA_IFNAME => {
                let end = data.iter().position(|&c| c == 0).unwrap_or(data.len());
                name = Some(String::from_utf8_lossy(&data[..end]).into_owned());
            }
            IFLA_OPERSTATE => oper = *data.first()?,
            _ => {}
        }
        a += align4(alen);
    }
    let up = !deleted
        && flags & IFF_UP != 0
        && flags & IFF_LOWER_UP != 0
        && (oper == IF_OPER_UP || oper == IF_OPER_UNKNOWN);
    Some(LinkMsg {
        name: name?,
        up,
        deleted,
        seq,
    })
}

fn open_netlink() -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: plain socket(2); the fd is owned immediately.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor we own.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: zeroed sockaddr_nl is valid; fields set below.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as u16;
    addr.nl_groups = RTMGRP_LINK;
    // SAFETY: addr is a valid sockaddr_nl of the given size.
    let r = unsafe {
        libc::bind(
            owned.as_raw_fd(),
            (&addr as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `owned` is a valid, open descriptor that AsyncFd takes ownership of and that
    // nothing else closes while it is registered.
    unsafe { AsyncFd::register(owned) }.map_err(|e| io::Error::other(e.to_string()))
}

fn send_dump(fd: &OwnedFd, seq: u32) -> io::Result<()> {
    let mut req = [0u8; NLMSG_HDR + IFINFO];
    req[0..4].copy_from_slice(&((NLMSG_HDR + IFINFO) as u32).to_ne_bytes());
    req[4..6].copy_from_slice(&RTM_GETLINK.to_ne_bytes());
    req[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req[8..12].copy_from_slice(&seq.to_ne_bytes());
    req[16] = libc::AF_UNSPEC as u8;
    // SAFETY: req is a valid buffer; the kernel address is implied (unconnected netlink
    // sockets send to the kernel).
    let n = unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads `/sys/class/net/<dev>` (the polling fallback).
pub fn sysfs_up(dev: &str) -> bool {
    let base = std::path::Path::new("/sys/class/net").join(dev);
    let carrier = std::fs::read_to_string(base.join("carrier"))
        .map(|s| s.trim() == "1")
        .unwrap_or(false);
    let oper = std::fs::read_to_string(base.join("operstate")).unwrap_or_default();
    carrier && matches!(oper.trim(), "up" | "unknown")
}

struct Watch {
    by_name: BTreeMap<String, NetworkId>,
    state: BTreeMap<NetworkId, bool>,
    clock: Clock,
    tx: mpsc::Sender<Observation>,
}

impl Watch {
    /// Records a state; reports it when it changed or when `force` (periodic refresh).
    async fn set(&mut self, net: NetworkId, up: bool, force: bool) -> bool {
        let changed = self.state.insert(net, up) != Some(up);
        if changed {
            tracing::info!(network = net.0, up, "link state changed");
        }
        if changed || force {
            let obs = Observation {
                at: self.clock.now(),
                probe: Probe::Carrier { network: net, up },
            };
            return self.tx.send(obs).await.is_ok();
        }
        true
    }
}

/// Watches the given `(network, device)` pairs until the driver goes away.
pub async fn link_task(
    devices: Vec<(NetworkId, String)>,
    refresh: Duration,
    clock: Clock,
    tx: mpsc::Sender<Observation>,
) {
    let mut w = Watch {
        by_name: devices.iter().map(|(n, d)| (d.clone(), *n)).collect(),
        state: BTreeMap::new(),
        clock,
        tx,
    };
    let refresh = refresh.max(Duration::from_millis(10));
    let fd = match open_netlink() {
        Ok(fd) => fd,
        Err(e) => {
            tracing::warn!(error = %e, "netlink unavailable; polling /sys/class/net instead");
            let mut tick = tokio::time::interval(refresh);
            loop {
                tick.tick().await;
                for (net, dev) in &devices {
                    if !w.set(*net, sysfs_up(dev), true).await {
                        return;
                    }
                }
            }
        }
    };
    let mut tick = tokio::time::interval(refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq: u32 = 0;
    // Devices seen in the dump in progress (a watched device missing from a dump is gone).
    let mut seen: BTreeMap<NetworkId, bool> = BTreeMap::new();
    // 64 KiB: a full dump part of a namespace with many links fits in one read.
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            _ = tick.tick() => {
                seq = seq.wrapping_add(1).max(1);
                seen.clear();
                if let Err(e) = send_dump(fd.get_ref(), seq) {
                    tracing::warn!(error = %e, "netlink dump request failed");
                }
            }
            ready = fd.readable() => {
                let mut guard = match ready {
                    Ok(g) => g,
                    Err(e) => { tracing::error!(error = %e, "netlink socket failed"); return; }
                };
                let res = guard.try_io(|inner| {
                    // SAFETY: buf is valid for buf.len() bytes.
                    let n = unsafe { libc::recv(inner.get_ref().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
                    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
                });
                let n = match res {
                    Ok(Ok(n)) => n,
                    Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        // Events were lost: the next dump re-reads everything.
                        tracing::warn!("netlink overrun; state refreshed at the next dump");
                        continue;
                    }
                    Ok(Err(e)) => { tracing::warn!(error = %e, "netlink receive failed"); continue; }
                    Err(_would_block) => continue,
                };
                let parsed = parse(buf.get(..n).unwrap_or(&[]));
                for l in parsed.links {
                    let Some(&net) = w.by_name.get(&l.name) else { continue };
                    if l.seq == seq && l.seq != 0 {
                        seen.insert(net, l.up);
                    } else if !w.set(net, l.up, false).await {
                        return;
                    }
                }
                if parsed.done.contains(&seq) {
                    for (net, _) in &devices {
                        let up = seen.get(net).copied().unwrap_or(false);
                        if !w.set(*net, up, true).await {
                            return;
                        }
                    }
                    seen.clear();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link_msg(ty: u16, seq: u32, flags: u32, name: &str, oper: u8) -> Vec<u8> {
        let mut attrs = Vec::new();
        let mut nm = name.as_bytes().to_vec();
        nm.push(0);
        let alen = 4 + nm.len();
        attrs.extend_from_slice(&(alen as u16).to_ne_bytes());
        attrs.extend_from_slice(&IFLA_IFNAME.to_ne_bytes());
        attrs.extend_from_slice(&nm);
        attrs.resize(align4(attrs.len()), 0);
        attrs.extend_from_slice(&5u16.to_ne_bytes());
        attrs.extend_from_slice(&IFLA_OPERSTATE.to_ne_bytes());
        attrs.push(oper);
        attrs.resize(align4(attrs.len()), 0);
        let len = NLMSG_HDR + IFINFO + attrs.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&[0u8; 8]);
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&attrs);
        m
    }

    #[test]
    fn parses_links_and_done() {
        let mut buf = link_msg(RTM_NEWLINK, 7, IFF_UP | IFF_LOWER_UP, "eth1", IF_OPER_UP);
        buf.extend(link_msg(RTM_NEWLINK, 7, IFF_UP, "eth2", 2));
        buf.extend(link_msg(
            RTM_DELLINK,
            0,
            IFF_UP | IFF_LOWER_UP,
            "eth3",
            IF_OPER_UP,
        ));
        let mut done = vec![0u8; 20];
        done[0..4].copy_from_slice(&20u32.to_ne_bytes());
        done[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        done[8..12].copy_from_slice(&7u32.to_ne_bytes());
        buf.extend(done);
        let p = parse(&buf);
        assert_eq!(p.done, vec![7]);
        let got: Vec<(&str, bool)> = p.links.iter().map(|l| (l.name.as_str(), l.up)).collect();
        assert_eq!(got, vec![("eth1", true), ("eth2", false), ("eth3", false)]);
    }

    #[test]
    fn garbage_never_panics() {
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            let _ = parse(&junk);
        }
        let mut m = link_msg(RTM_NEWLINK, 1, 0, "x", 0);
        m[0] = 200; // length beyond the buffer
        assert!(parse(&m).links.is_empty());
    }

    #[tokio::test]
    async fn loopback_is_reported_up() {
        let (tx, mut rx) = mpsc::channel(8);
        let t = tokio::spawn(link_task(
            vec![
                (NetworkId(0), "lo".into()),
                (NetworkId(1), "nonexistent0".into()),
            ],
            Duration::from_millis(50),
            Clock::new(),
            tx,
        ));
        let mut got = BTreeMap::new();
        while got.len() < 2 {
            if let Some(Observation {
                probe: Probe::Carrier { network, up },
                ..
            }) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("carrier reports")
            {
                got.insert(network, up);
            }
        }
        t.abort();
        assert_eq!(got.get(&NetworkId(0)), Some(&true));
        assert_eq!(got.get(&NetworkId(1)), Some(&false));
    }
}
