//! Properties of the daemon's untrusted-input paths, each a function of arbitrary bytes that
//! panics only when a property fails. Two drivers run them: the coverage-guided fuzz targets in
//! `fuzz/` (libFuzzer, minutes to hours) and the property tests in `tests/input_props.rs`
//! (proptest, seconds, in every `cargo test`). One body for both, so a fuzz finding turned into
//! a test case checks exactly what the fuzzer checked.
//!
//! - [`wire_script`]: datagrams through the decoder and the replay filter, the filter checked
//!   against a plain model of its rules;
//! - [`config_text`]: the configuration loader;
//! - [`journal_text`]: journal lines through both journal readers and the incident book;
//! - [`http_request`]: raw bytes on an HTTP/1.1 connection of the API server.
#![allow(dead_code)]

use hadiag::config;
use hadiag::core::topology::{NetworkId, NodeId, Topology};
use hadiag::core::view::{DiskHealth, View};
use hadiag::core::wire::{
    decode, encode, parse, Body, DecodeError, EncodeError, Header, Keyring, Message, Path,
    ReplayFilter, ReplayKind, DECODE_REASONS, MAX_MESSAGE_BYTES, REPLAY_WINDOW,
};
use std::collections::{BTreeMap, BTreeSet};

pub const KEY: &[u8] = b"fuzz-key-0123456789abcdef";
pub const KEY_ID: &str = "k1";

pub fn topology() -> Topology {
    Topology::mesh("lab", &["n1", "n2", "db-1"], &["A", "B"])
}

pub fn keys() -> Keyring {
    Keyring::new(KEY_ID, KEY).expect("valid key")
}

/// Bytes taken off the front of the input, zero when it runs out.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte().unwrap_or(0), self.byte().unwrap_or(0)])
    }

    /// A length-prefixed chunk (one length byte, scaled so chunks reach past the size limit).
    fn chunk(&mut self) -> &[u8] {
        let want = usize::from(self.byte().unwrap_or(0)) * 6;
        let (c, rest) = self.0.split_at(want.min(self.0.len()));
        self.0 = rest;
        c
    }
}

/// `bytes` with its stamp (if any) replaced by a valid one over the rest, so mutations reach
/// the resolver and the replay filter instead of stopping at the stamp check.
pub fn restamp(bytes: &[u8], keys: &Keyring) -> Vec<u8> {
    let cut = bytes
        .windows(7)
        .rposition(|w| w == b" stamp=")
        .unwrap_or(bytes.len());
    let mut body = bytes.get(..cut).unwrap_or(bytes).to_vec();
    keys.append_stamp(&mut body);
    body
}

/// A minimal authentic heartbeat.
pub fn heartbeat(sender: NodeId, incarnation: u64, sequence: u64, path: Path) -> Message {
    Message {
        header: Header {
            sender,
            incarnation,
            sequence,
            path,
        },
        body: Body::Heartbeat {
            view: View {
                disk: DiskHealth::Ok,
                ..View::default()
            },
            echo: vec![],
        },
        extensions: vec![],
    }
}

/// The replay rules written out plainly (sets instead of the filter's bit window).
#[derive(Default)]
struct ReplayModel {
    /// Per sender: incarnation, newest sequence, sequences accepted in that incarnation.
    senders: BTreeMap<NodeId, (u64, u64, BTreeSet<u64>)>,
}

impl ReplayModel {
    fn accept(&mut self, h: &Header) -> Result<(), DecodeError> {
        let replay = |why| DecodeError::Replay {
            sender: h.sender,
            incarnation: h.incarnation,
            sequence: h.sequence,
            why,
        };
        match self.senders.get_mut(&h.sender) {
            Some((inc, _, _)) if h.incarnation < *inc => {
                Err(replay(ReplayKind::OldIncarnation { newest: *inc }))
            }
            Some((inc, newest, seen)) if h.incarnation == *inc => {
                if h.sequence > *newest {
                    *newest = h.sequence;
                } else if *newest - h.sequence >= REPLAY_WINDOW {
                    return Err(replay(ReplayKind::TooOld { newest: *newest }));
                } else if seen.contains(&h.sequence) {
                    return Err(replay(ReplayKind::Duplicate));
                }
                seen.insert(h.sequence);
                let floor = newest.saturating_sub(REPLAY_WINDOW);
                seen.retain(|&s| s >= floor);
                Ok(())
            }
            _ => {
                self.senders.insert(
                    h.sender,
                    (h.incarnation, h.sequence, BTreeSet::from([h.sequence])),
                );
                Ok(())
            }
        }
    }
}

/// Every decode error is one of the documented kinds, says something, and names its field
/// when it is a malformed one.
pub fn check_error(e: &DecodeError) {
    assert!(DECODE_REASONS.contains(&e.reason()), "undocumented {e:?}");
    let text = e.to_string();
    assert!(!text.is_empty());
    if let DecodeError::Malformed { field, reason, .. } = e {
        assert!(!field.is_empty() && !reason.is_empty(), "{e:?}");
        assert!(
            text.contains(field.as_str()),
            "`{text}` does not name {field}"
        );
    }
}

/// Whatever decodes re-encodes (or is refused as oversize) to bytes that decode to the same
/// message; whatever does not decode fails with a well-formed error. Returns the message.
pub fn check_decoded(bytes: &[u8], t: &Topology, k: &Keyring) -> Option<Message> {
    if let Ok(raw) = parse(bytes) {
        let _ = raw.resolve(t);
    }
    match decode(bytes, t, k) {
        Ok(msg) => {
            match encode(&msg, t, k) {
                Ok(again) => assert_eq!(decode(&again, t, k).as_ref(), Ok(&msg)),
                Err(EncodeError::Oversize { len }) => assert!(len > MAX_MESSAGE_BYTES),
                Err(e) => panic!("decoded message does not re-encode: {e}"),
            }
            Some(msg)
        }
        Err(e) => {
            check_error(&e);
            None
        }
    }
}

/// Reads `data` as a script of datagrams — raw bytes, raw bytes behind a valid stamp,
/// authentic heartbeats with chosen sender/incarnation/sequence, or the previous datagram
/// again — and sends each through the decoder and the replay filter. The filter must agree
/// with [`ReplayModel`] on every authentic message, errors included.
pub fn wire_script(data: &[u8]) {
    let (t, k) = (topology(), keys());
    let mut filter = ReplayFilter::new(&t);
    let mut model = ReplayModel::default();
    let mut r = Reader(data);
    let mut last = Vec::new();
    for _ in 0..64 {
        let Some(op) = r.byte() else { break };
        let bytes = match op % 4 {
            0 => r.chunk().to_vec(),
            1 => {
                let mut framed = b"HADIAG/1 ".to_vec();
                framed.extend_from_slice(r.chunk());
                restamp(&framed, &k)
            }
            2 => {
                let sender = NodeId(u16::from(r.byte().unwrap_or(0) % 3));
                let incarnation = u64::from(r.byte().unwrap_or(0) % 4);
                let s = r.u16();
                // Now and then the far end of the range, where window arithmetic overflows.
                let sequence = if op & 0x80 != 0 {
                    u64::MAX - u64::from(s % 512)
                } else {
                    u64::from(s)
                };
                let path = match (op >> 2) % 3 {
                    0 => Path::Serial,
                    n => Path::Network(NetworkId(u16::from(n - 1))),
                };
                encode(&heartbeat(sender, incarnation, sequence, path), &t, &k)
                    .expect("a minimal heartbeat fits")
            }
            _ => last.clone(),
        };
        if let Some(msg) = check_decoded(&bytes, &t, &k) {
            let got = filter.accept(&msg.header);
            if let Err(e) = &got {
                check_error(e);
            }
            assert_eq!(got, model.accept(&msg.header), "{:?}", msg.header);
        }
        last = bytes;
    }
}

/// Loads `data` as configuration text. A refusal lists at least one error, each naming this
/// file, saying what is wrong, and pointing inside the text when it has a place.
pub fn config_text(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    // Relative key and token files resolve into a directory that does not exist.
    let source = std::path::Path::new("/nonexistent-hadiag-fuzz/cluster.yaml");
    // Lines as YAML counts them: LF, CRLF and a lone CR each end one.
    let lines = text
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .lines()
        .count()
        .max(1);
    match config::load_str(&text, source) {
        Ok(cfg) => assert!(!cfg.topology.nodes.is_empty()),
        Err(errs) => {
            assert!(!errs.errors.is_empty(), "refused without an error");
            for e in errs.errors.iter().chain(&errs.warnings) {
                assert_eq!(e.file, source);
                assert!(!e.message.trim().is_empty(), "{e:?}");
                if let Some(l) = e.location {
                    assert!(
                        l.line >= 1 && l.line <= lines + 1,
                        "{e} (text has {lines} lines)"
                    );
                }
                assert!(e.to_string().starts_with(source.to_str().unwrap_or("")));
            }
        }
    }
}

/// Writes `data` as a journal file and reads it with both readers (`explain`'s whole-file
/// reader and the daemon's bounded start-up reader): they agree on how many entries and bad
/// lines it holds, every bad line is named by file and line number, every entry re-reads to
/// itself, and the incident book and `explain` take whatever was read.
pub fn journal_text(data: &[u8]) {
    use hadiag::journal::{self, book::IncidentBook, record::Entry};
    thread_local! {
        // One directory per thread, rewritten for each input (a fresh one costs more than
        // the check).
        static DIR: tempfile::TempDir = tempfile::tempdir().expect("temp dir");
    }
    let dir = DIR.with(|d| d.path().to_path_buf());
    let file = dir.join(journal::FILE_NAME);
    std::fs::write(&file, data).expect("write journal");
    let all = journal::read_journal(&dir).expect("journal readable");
    let mut streamed = Vec::new();
    let recent = journal::for_each_recent(&dir, u64::MAX, |e| streamed.push(e)).expect("readable");
    assert_eq!(
        all.entries.len() as u64,
        recent.entries,
        "readers disagree on entries"
    );
    assert_eq!(
        all.problems.len() as u64,
        recent.skipped,
        "readers disagree on bad lines"
    );
    assert_eq!(all.entries, streamed);
    let lines = data.split(|&b| b == b'\n').count();
    for p in &all.problems {
        assert_eq!(p.file, file);
        let line = p
            .line
            .unwrap_or_else(|| panic!("a whole-file read numbers its lines: {p}"));
        assert!(line >= 1 && line <= lines, "{p}");
        assert!(!p.error.is_empty());
        assert!(p.to_string().contains(&format!(":{line}:")), "{p}");
    }
    for e in &all.entries {
        let once = serde_json::to_string(e).expect("entry serializes");
        let back: Entry = serde_json::from_str(&once).expect("written entry re-reads");
        assert_eq!(serde_json::to_string(&back).expect("serializes"), once);
    }
    let book = IncidentBook::replay(&all.entries);
    let style = hadiag::cli::status::Style { color: false };
    for r in book.all() {
        let _ = hadiag::cli::explain::render_incident(r, &style);
    }
    if let Some(d) = book.latest_diagnosis() {
        let _ = hadiag::cli::explain::render_reasoning(d, &style);
    }
    let _ = hadiag::cli::explain::render_views(book.latest_views(), &style);
}

/// Sends `data` as the raw bytes of one HTTP/1.1 connection to the API's request router
/// (hyper's parser, then [`hadiag::http::server::route`]) over an in-memory pipe. Whatever arrives,
/// the server answers with well-formed responses and never with a 5xx.
pub fn http_request(data: &[u8]) {
    let out = http_exchange(data);
    // Every response hyper wrote starts with a status line (in the request's HTTP version);
    // none is a server error.
    let text = String::from_utf8_lossy(&out);
    // (Bodies are JSON or metrics text: none of their lines starts like a status line.)
    for line in text.split('\n').filter(|l| l.starts_with("HTTP/1.")) {
        if let Some(code) = line.get(9..12).and_then(|c| c.parse::<u16>().ok()) {
            assert!(
                !(500..600).contains(&code),
                "server error {code} for {data:?}"
            );
        }
    }
    if !out.is_empty() {
        assert!(
            out.starts_with(b"HTTP/1.1 ") || out.starts_with(b"HTTP/1.0 "),
            "not a response: {text:?}"
        );
    }
}

/// The bytes the API server answers to `data` sent on one connection (token `fuzz-token`).
pub fn http_exchange(data: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    thread_local! {
        static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        static STATE: hadiag::http::ApiState = {
            let t = topology();
            let metrics = hadiag::http::Metrics::new(&t, NodeId(0), &["httpd".to_string()])
                .expect("metrics");
            hadiag::http::ApiState::new(&t, NodeId(0), metrics, Some("fuzz-token".into()))
        };
    }
    let state = STATE.with(|s| s.clone());
    RT.with(|rt| {
        rt.block_on(async move {
            let (client, server) = tokio::io::duplex(64 * 1024);
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(hadiag::http::server::route(&state, &req))
                }
            });
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(hadiag::http::server::HEADER_TIMEOUT)
                .max_buf_size(64 * 1024)
                // The server's settings, except that the end of the request bytes (our write
                // half closing) still lets the pending responses out, so they can be checked.
                .half_close(true);
            let conn = b.serve_connection(hyper_util::rt::TokioIo::new(server), svc);
            let (mut rd, mut wr) = tokio::io::split(client);
            let send = async move {
                let _ = wr.write_all(data).await;
                let _ = wr.shutdown().await;
            };
            let recv = async move {
                let mut out = Vec::new();
                let _ = rd.read_to_end(&mut out).await;
                out
            };
            let (_, _, out) = tokio::join!(send, conn, recv);
            out
        })
    })
}
