//! The few nf_tables netlink messages the lab's NIC faults need, sent straight to the kernel
//! (no `nft` binary): a `netdev` table per (device, fault) with an ingress and an egress base
//! chain on the device, each holding at most one rule — `drop`, or `numgen random mod 100 <
//! P drop` for random loss — and the deletion of such a table.
//!
//! Why hand-encoded: the Rust nf_tables crates are either GPL (`rustables`) or bindings to
//! the C libnftnl (`nftnl`, GPL-2.0 and a system library to install). The messages here are
//! five fixed shapes, so they are written out with the layouts of the kernel's UAPI headers
//! (`linux/netfilter/nf_tables.h`, `nfnetlink.h`); the socket is `netlink-sys` (MIT).
//!
//! Must not: be used outside a lab namespace — callers run it through
//! [`crate::lab::netns::Netns::enter`].

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};
use std::io;
use std::time::{Duration, Instant};

// linux/netlink.h
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_APPEND: u16 = 0x800;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 0x2;
const NLA_F_NESTED: u16 = 0x8000;
// linux/netfilter/nfnetlink.h
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
// linux/netfilter.h
const NFPROTO_NETDEV: u8 = 5;
const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
const NF_NETDEV_INGRESS: u32 = 0;
const NF_NETDEV_EGRESS: u32 = 1;
// linux/netfilter/nf_tables.h: message types
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
// attributes
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_HOOK_DEV: u16 = 3;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_NG_DREG: u16 = 1;
const NFTA_NG_MODULUS: u16 = 2;
const NFTA_NG_TYPE: u16 = 3;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFT_REG_VERDICT: u32 = 0;
const NFT_REG_1: u32 = 1;
const NFT_NG_RANDOM: u32 = 1;
const NFT_CMP_LT: u32 = 2;

/// Priority of the fault chains: before anything else on the device.
const PRIORITY: i32 = -500;
/// How long to wait for the kernel's answers to one batch.
const ANSWER_WAIT: Duration = Duration::from_secs(2);

/// What one chain of a fault table does with the frames it sees.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Pass everything (the chain exists, with no rule).
    Pass,
    /// Drop `percent` % at random (100: every frame).
    Drop { percent: u8 },
}

/// A netlink attribute buffer (type-length-value, 4-byte aligned).
#[derive(Default)]
struct Attrs(Vec<u8>);

impl Attrs {
    fn put(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        let len = 4 + value.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        self.0.resize(self.0.len().next_multiple_of(4), 0);
        self
    }
    fn str(&mut self, kind: u16, s: &str) -> &mut Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.put(kind, &v)
    }
    /// nf_tables integers travel in network byte order.
    fn be32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.put(kind, &v.to_be_bytes())
    }
    fn nest(&mut self, kind: u16, inner: &Attrs) -> &mut Self {
        self.put(kind | NLA_F_NESTED, &inner.0)
    }
}

/// One nfnetlink message: netlink header, nfgenmsg, attributes.
fn message(kind: u16, flags: u16, seq: u32, family: u8, attrs: &Attrs) -> Vec<u8> {
    let len = 16 + 4 + attrs.0.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    m.push(family);
    m.push(0); // NFNETLINK_V0
               // res_id: the subsystem for batch messages, 0 otherwise (big endian).
    let res_id = if matches!(kind, NFNL_MSG_BATCH_BEGIN | NFNL_MSG_BATCH_END) {
        NFNL_SUBSYS_NFTABLES
    } else {
        0
    };
    m.extend_from_slice(&res_id.to_be_bytes());
    m.extend_from_slice(&attrs.0);
    m
}

fn nft_type(msg: u16) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | msg
}

fn expr(name: &str, data: &Attrs) -> Attrs {
    let mut e = Attrs::default();
    e.str(NFTA_EXPR_NAME, name).nest(NFTA_EXPR_DATA, data);
    e
}

fn drop_verdict() -> Attrs {
    let mut code = Attrs::default();
    code.be32(NFTA_VERDICT_CODE, NF_DROP);
    let mut verdict = Attrs::default();
    verdict.nest(NFTA_DATA_VERDICT, &code);
    let mut imm = Attrs::default();
    imm.be32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT)
        .nest(NFTA_IMMEDIATE_DATA, &verdict);
    expr("immediate", &imm)
}

/// The expressions of a drop rule: `[numgen random mod 100; cmp < P;] drop`.
fn drop_rule(percent: u8) -> Attrs {
    let mut list = Attrs::default();
    if percent < 100 {
        let mut ng = Attrs::default();
        ng.be32(NFTA_NG_DREG, NFT_REG_1)
            .be32(NFTA_NG_MODULUS, 100)
            .be32(NFTA_NG_TYPE, NFT_NG_RANDOM);
        list.nest(NFTA_LIST_ELEM, &expr("numgen", &ng));
        let mut value = Attrs::default();
        // numgen leaves a host-order u32 in the register and cmp compares bytes: below 256
        // the host-order bytes order the same way as the numbers on either endianness.
        value.put(NFTA_DATA_VALUE, &u32::from(percent).to_ne_bytes());
        let mut cmp = Attrs::default();
        cmp.be32(NFTA_CMP_SREG, NFT_REG_1)
            .be32(NFTA_CMP_OP, NFT_CMP_LT)
            .nest(NFTA_CMP_DATA, &value);
        list.nest(NFTA_LIST_ELEM, &expr("cmp", &cmp));
    }
    list.nest(NFTA_LIST_ELEM, &drop_verdict());
    list
}

/// The batch that creates table `table` with chains `in` (ingress) and `out` (egress) on
/// `dev`, each doing its action. Returns the batch and how many answers it asks for.
pub fn create_batch(table: &str, dev: &str, ingress: Action, egress: Action) -> (Vec<u8>, u32) {
    let mut seq = 0u32;
    let mut next = || {
        seq += 1;
        seq
    };
    let ack = NLM_F_REQUEST | NLM_F_ACK;
    let mut b = message(
        NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        next(),
        0,
        &Attrs::default(),
    );
    let mut t = Attrs::default();
    t.str(NFTA_TABLE_NAME, table);
    b.extend(message(
        nft_type(NFT_MSG_NEWTABLE),
        ack | NLM_F_CREATE,
        next(),
        NFPROTO_NETDEV,
        &t,
    ));
    let mut acks = 1;
    for (chain, hook, action) in [
        ("in", NF_NETDEV_INGRESS, ingress),
        ("out", NF_NETDEV_EGRESS, egress),
    ] {
        let mut h = Attrs::default();
        h.be32(NFTA_HOOK_HOOKNUM, hook)
            .be32(NFTA_HOOK_PRIORITY, PRIORITY as u32)
            .str(NFTA_HOOK_DEV, dev);
        let mut c = Attrs::default();
        c.str(NFTA_CHAIN_TABLE, table)
            .str(NFTA_CHAIN_NAME, chain)
            .nest(NFTA_CHAIN_HOOK, &h)
            .be32(NFTA_CHAIN_POLICY, NF_ACCEPT)
            .str(NFTA_CHAIN_TYPE, "filter");
        b.extend(message(
            nft_type(NFT_MSG_NEWCHAIN),
            ack | NLM_F_CREATE,
            next(),
            NFPROTO_NETDEV,
            &c,
        ));
        acks += 1;
        if let Action::Drop { percent } = action {
            let mut r = Attrs::default();
            r.str(NFTA_RULE_TABLE, table)
                .str(NFTA_RULE_CHAIN, chain)
                .nest(NFTA_RULE_EXPRESSIONS, &drop_rule(percent));
            b.extend(message(
                nft_type(NFT_MSG_NEWRULE),
                ack | NLM_F_CREATE | NLM_F_APPEND,
                next(),
                NFPROTO_NETDEV,
                &r,
            ));
            acks += 1;
        }
    }
    b.extend(message(
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        next(),
        0,
        &Attrs::default(),
    ));
    (b, acks)
}

/// The batch that deletes netdev table `table`.
pub fn delete_batch(table: &str) -> (Vec<u8>, u32) {
    let mut t = Attrs::default();
    t.str(NFTA_TABLE_NAME, table);
    let mut b = message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 1, 0, &Attrs::default());
    b.extend(message(
        nft_type(NFT_MSG_DELTABLE),
        NLM_F_REQUEST | NLM_F_ACK,
        2,
        NFPROTO_NETDEV,
        &t,
    ));
    b.extend(message(
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        3,
        0,
        &Attrs::default(),
    ));
    (b, 1)
}

/// Sends a batch on a fresh NETLINK_NETFILTER socket (in the calling thread's namespace)
/// and waits for its `acks` answers. Err carries the kernel's errno (e.g. ENOENT for a
/// table that does not exist).
pub fn send_batch(batch: &[u8], acks: u32) -> io::Result<()> {
    let mut socket = Socket::new(NETLINK_NETFILTER)?;
    socket.bind_auto()?;
    socket.set_non_blocking(true)?;
    socket.send(batch, 0)?;
    let start = Instant::now();
    let mut answered = 0;
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    while answered < acks {
        buf.clear();
        match socket.recv(&mut buf, 0) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if start.elapsed() > ANSWER_WAIT {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("nf_tables answered {answered} of {acks} messages"),
                    ));
                }
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            Err(e) => return Err(e),
        }
        let mut rest = &buf[..];
        while rest.len() >= 16 {
            let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let kind = u16::from_ne_bytes([rest[4], rest[5]]);
            if len < 16 || len > rest.len() {
                break;
            }
            if kind == NLMSG_ERROR && len >= 20 {
                let errno = i32::from_ne_bytes([rest[16], rest[17], rest[18], rest[19]]);
                if errno != 0 {
                    return Err(io::Error::from_raw_os_error(-errno));
                }
                answered += 1;
            }
            rest = &rest[len.next_multiple_of(4).min(rest.len())..];
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], i: usize) -> u16 {
        u16::from_ne_bytes([b[i], b[i + 1]])
    }

    #[test]
    fn batches_are_framed_and_aligned() {
        let (b, acks) = create_batch(
            "hdg_eth0_lossy",
            "eth0",
            Action::Drop { percent: 5 },
            Action::Pass,
        );
        assert_eq!(acks, 4, "table, two chains, one rule");
        // Walk the messages: every length is 4-aligned and they add up to the batch.
        let mut i = 0;
        let mut kinds = Vec::new();
        while i < b.len() {
            let len = u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize;
            assert_eq!(len % 4, 0);
            kinds.push(u16_at(&b, i + 4));
            i += len;
        }
        assert_eq!(i, b.len());
        assert_eq!(
            kinds,
            vec![
                NFNL_MSG_BATCH_BEGIN,
                nft_type(NFT_MSG_NEWTABLE),
                nft_type(NFT_MSG_NEWCHAIN),
                nft_type(NFT_MSG_NEWRULE),
                nft_type(NFT_MSG_NEWCHAIN),
                NFNL_MSG_BATCH_END
            ]
        );
        let text = String::from_utf8_lossy(&b);
        assert!(text.contains("numgen") && text.contains("immediate") && text.contains("eth0"));
        let (d, acks) = delete_batch("t");
        assert_eq!(acks, 1);
        assert_eq!(d.len() % 4, 0);
    }
}
