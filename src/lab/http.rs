//! A tiny HTTP/1.1 GET client that connects from *inside* a lab namespace: the request runs
//! on a short-lived thread that first joins the namespace with setns(CLONE_NEWNET) (which
//! affects only that thread). Used to read each node's JSON API on its own loopback.
//!
//! Must not: follow redirects or talk to anything but the lab node's loopback listener.

use crate::lab::error::{LabError, Result};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Largest response accepted: API documents are small; a bound keeps a confused peer from
/// filling memory.
const MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;

/// GET `path` from `addr` inside namespace `ns`; returns (status, body).
pub fn get_in_ns(
    ns: &str,
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<(u16, String)> {
    let ns_path = std::path::Path::new("/run/netns").join(ns);
    let path = path.to_string();
    let what = format!("GET http://{addr}{path} in {ns}");
    let what2 = what.clone();
    let worker = std::thread::Builder::new()
        .name("lab-http".into())
        .spawn(move || -> Result<(u16, String)> {
            let f = std::fs::File::open(&ns_path).map_err(|e| LabError::io(&ns_path, e))?;
            // SAFETY: setns on a valid namespace fd; it changes only this thread's namespace.
            if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(LabError::io(&ns_path, std::io::Error::last_os_error()));
            }
            let io = |e: std::io::Error| LabError::io(what2.clone(), e);
            let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
            s.set_read_timeout(Some(timeout)).map_err(io)?;
            s.set_write_timeout(Some(timeout)).map_err(io)?;
            write!(
                s,
                "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
            )
            .map_err(io)?;
            let mut raw = Vec::new();
            s.take(MAX_RESPONSE_BYTES).read_to_end(&mut raw).map_err(io)?;
            parse_response(&raw).ok_or_else(|| LabError::Spec(format!("{what2}: malformed HTTP response")))
        })
        .map_err(|e| LabError::io(what.clone(), e))?;
    worker
        .join()
        .map_err(|_| LabError::Spec(format!("{what}: client thread panicked")))?
}

/// Parses status line, headers and (possibly chunked) body.
fn parse_response(raw: &[u8]) -> Option<(u16, String)> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(raw.get(..split)?).ok()?;
    let body = raw.get(split + 4..)?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(b.get(..eol)?).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = b.get(eol + 2..)?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_responses() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_response(plain), Some((200, "{}".into())));
        let chunked = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Some((404, "abcde".into())));
        assert_eq!(parse_response(b"garbage"), None);
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            None
        );
    }
}
