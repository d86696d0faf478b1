//! One ICMP echo request and its reply over a raw socket — the lab's reachability check, so
//! it needs no `ping` binary. Called on a thread inside a lab namespace
//! ([`crate::lab::netns::Netns::enter`]), so the socket lives there.
//!
//! Must not: send anywhere but the one target it is given (the caller checks it is a
//! documentation address).

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// ICMP message types (RFC 792).
const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;
/// Fixed payload: recognisable in a capture, small enough for any MTU.
const PAYLOAD: &[u8] = b"hadiag-lab-probe";

static SEQUENCE: AtomicU16 = AtomicU16::new(1);

/// RFC 1071 one's-complement checksum.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = match chunk {
            [a, b] => u16::from_be_bytes([*a, *b]),
            [a] => u16::from_be_bytes([*a, 0]),
            _ => 0,
        };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The echo request with identifier `id` and sequence `seq`.
pub fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut m = vec![ECHO_REQUEST, 0, 0, 0];
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(PAYLOAD);
    let c = checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

/// Whether `packet` (an IPv4 datagram as a raw socket returns it) is the echo reply from
/// `from` to request (`id`, `seq`).
pub fn is_reply(packet: &[u8], from: Ipv4Addr, id: u16, seq: u16) -> bool {
    let Some(&first) = packet.first() else {
        return false;
    };
    let header_len = usize::from(first & 0x0f) * 4;
    if packet.len() < 20 || packet.len() < header_len + 8 {
        return false;
    }
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let icmp = &packet[header_len..];
    src == from
        && icmp[0] == ECHO_REPLY
        && u16::from_be_bytes([icmp[4], icmp[5]]) == id
        && u16::from_be_bytes([icmp[6], icmp[7]]) == seq
}

/// Sends one echo request to `target` and waits up to `timeout` for its reply.
/// `Ok(false)`: no reply (or the network is unreachable); `Err`: the socket could not be used.
pub fn echo(target: Ipv4Addr, timeout: Duration) -> io::Result<bool> {
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?;
    // The kernel identifies raw ICMP sockets by nothing: our own id tells replies apart
    // from those of parallel probes in the same namespace.
    let id = (std::process::id() as u16) ^ 0x4864;
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let to = SocketAddrV4::new(target, 0);
    match socket.send_to(&echo_request(id, seq), &to.into()) {
        Ok(_) => {}
        // No address or route to the target from here (a NIC set down): unanswered.
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EPERM | libc::ENOBUFS)
            ) =>
        {
            return Ok(false)
        }
        Err(e) => return Err(e),
    }
    let start = Instant::now();
    let mut buf = [MaybeUninit::<u8>::uninit(); 1500];
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Ok(false);
        }
        socket.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        match socket.recv(&mut buf) {
            Ok(n) => {
                // SAFETY: recv initialised the first n bytes.
                let got: Vec<u8> = buf[..n]
                    .iter()
                    .map(|b| unsafe { b.assume_init() })
                    .collect();
                if is_reply(&got, target, id, seq) {
                    return Ok(true);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_checksums_to_zero_and_replies_are_matched_exactly() {
        let req = echo_request(0x1234, 7);
        assert_eq!(checksum(&req), 0, "a valid message sums to zero");
        let mut reply = vec![
            0x45u8, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 192, 0, 2, 254, 192, 0, 2, 1,
        ];
        let mut icmp = req.clone();
        icmp[0] = ECHO_REPLY;
        reply.extend_from_slice(&icmp);
        let from = Ipv4Addr::new(192, 0, 2, 254);
        assert!(is_reply(&reply, from, 0x1234, 7));
        assert!(!is_reply(&reply, from, 0x1234, 8), "other sequence");
        assert!(!is_reply(&reply, Ipv4Addr::new(192, 0, 2, 9), 0x1234, 7));
        assert!(!is_reply(&reply[..22], from, 0x1234, 7), "truncated");
    }
}
