//! Untrusted input on the stable toolchain: the fuzz targets' properties (tests/fuzz_checks,
//! shared with `fuzz/`) driven by proptest for a few seconds, plus properties that pin the
//! exact error each kind of bad input gets — the decoder's `DecodeError` variant, the config
//! error's field and line, the journal problem's line, the API's 4xx naming the value.

#[path = "fuzz_checks/mod.rs"]
mod fuzz_checks;

use fuzz_checks::*;
use hadiag::config;
use hadiag::core::topology::{NetworkId, NodeId};
use hadiag::core::wire::{
    decode, encode, DecodeError, Keyring, Path, ReplayFilter, ReplayKind, MAX_MESSAGE_BYTES,
    REPLAY_WINDOW,
};
use proptest::prelude::*;

const TWO: &str = "config/two-node.yaml";

fn datagram(seq: u64) -> Vec<u8> {
    encode(
        &heartbeat(NodeId(1), 7, seq, Path::Network(NetworkId(0))),
        &topology(),
        &keys(),
    )
    .expect("fits")
}

/// Request lines and headers the API knows, for near-valid HTTP input.
const HTTP_SOUP: &[&str] = &[
    "GET ",
    "HEAD ",
    "POST ",
    "DELETE ",
    "/metrics",
    "/healthz",
    "/",
    "/api/v1/status",
    "/api/v1/diagnosis",
    "/api/v1/incidents",
    "/api/v1/incidents/n1-3",
    "/api/v1/incidents/%zz",
    "?since=",
    "30m",
    "2026-11-26T02:00:00Z",
    "99999999999999999999d",
    "&x=1",
    " HTTP/1.1\r\n",
    " HTTP/1.0\r\n",
    "Host: x\r\n",
    "Authorization: Bearer fuzz-token\r\n",
    "Authorization: Bearer nope\r\n",
    "Content-Length: 5\r\n",
    "Transfer-Encoding: chunked\r\n",
    "Connection: close\r\n",
    "\r\n",
    "hello",
    "0\r\n\r\n",
    "%",
    "\u{e9}",
];

fn journal_lines() -> Vec<String> {
    let entries = [
        r#"{"ts":"2026-11-26T02:09:05.123Z","node":"n1","type":"started","version":"0.1.0","cluster":"lab"}"#,
        r#"{"ts":"2026-11-26T02:09:06.000Z","node":"n1","type":"started","version":"0.1.0"}"#,
    ];
    entries.iter().map(|s| s.to_string()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    // --- The fuzz targets' properties, driven by proptest. ---

    #[test]
    fn wire_script_holds(data in proptest::collection::vec(any::<u8>(), 0..1600)) {
        wire_script(&data);
    }

    #[test]
    fn wire_script_of_heartbeats_holds(
        ops in proptest::collection::vec((any::<u8>(), 0u8..3, 0u8..4, any::<u16>()), 1..40)
    ) {
        // Mostly authentic heartbeats and repeats: the replay filter's ground.
        let mut data = Vec::new();
        for (op, sender, inc, seq) in ops {
            if op % 3 == 0 {
                data.push(3);
            } else {
                data.extend([(op & 0xfc) | 2, sender, inc]);
                data.extend((seq % 600).to_be_bytes());
            }
        }
        wire_script(&data);
    }

    #[test]
    fn config_text_holds(op in any::<u8>(), at in any::<usize>(), byte in any::<u8>()) {
        let text = std::fs::read(TWO).expect("example");
        let mut m = text.clone();
        match op % 3 {
            0 => { let i = at % m.len(); m.truncate(i); }
            1 => { let i = at % m.len(); m[i] = byte; }
            _ => { let i = at % m.len(); m.insert(i, byte); }
        }
        config_text(&m);
    }

    #[test]
    fn config_arbitrary_text_holds(s in "[a-z_:\\-\\[\\]{}, \n0-9.\"'&*!|>#?<]{0,300}") {
        config_text(s.as_bytes());
    }

    #[test]
    fn journal_text_holds(
        picks in proptest::collection::vec((0usize..2, any::<u8>(), any::<usize>()), 0..6),
        torn in any::<bool>(),
    ) {
        let lines = journal_lines();
        let mut text = Vec::new();
        for (which, byte, at) in picks {
            let mut l = lines[which].clone().into_bytes();
            if byte % 2 == 0 {
                let i = at % l.len();
                l[i] = byte;
            }
            text.extend(l);
            text.push(b'\n');
        }
        if torn {
            text.pop();
        }
        journal_text(&text);
    }

    #[test]
    fn journal_arbitrary_bytes_hold(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        journal_text(&data);
    }

    #[test]
    fn http_request_holds(parts in proptest::collection::vec(proptest::sample::select(HTTP_SOUP), 0..24)) {
        http_request(parts.concat().as_bytes());
    }

    #[test]
    fn http_arbitrary_bytes_hold(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        http_request(&data);
    }

    // --- Each kind of bad datagram gets its own error. ---

    #[test]
    fn oversize_is_refused_by_length(extra in 1usize..4000) {
        let mut b = datagram(1);
        b.resize(MAX_MESSAGE_BYTES + extra, b'x');
        prop_assert_eq!(decode(&b, &topology(), &keys()), Err(DecodeError::Oversize { len: MAX_MESSAGE_BYTES + extra }));
    }

    #[test]
    fn a_control_byte_is_named_by_its_position(at in any::<usize>(), byte in prop_oneof![0u8..0x20, 0x7fu8..=0xff]) {
        let mut b = datagram(1);
        // After the version token: a byte inside it is a version problem instead.
        let pos = 9 + at % (b.len() - 9);
        b.insert(pos, byte);
        prop_assert_eq!(
            decode(&b, &topology(), &keys()),
            Err(DecodeError::Malformed { field: "message".into(), reason: "byte outside printable ASCII", value: format!("byte {pos}") })
        );
    }

    #[test]
    fn another_version_is_a_version_error(v in "[0-9A-Za-z.]{1,8}") {
        prop_assume!(v != "1");
        let b = datagram(1);
        let other = [format!("HADIAG/{v}").as_bytes(), &b[8..]].concat();
        prop_assert_eq!(decode(&other, &topology(), &keys()), Err(DecodeError::UnsupportedVersion(format!("HADIAG/{v}"))));
    }

    #[test]
    fn any_edit_of_the_mac_is_a_bad_stamp(at in 0usize..64, digit in proptest::sample::select(b"0123456789abcdef".to_vec())) {
        let mut b = datagram(1);
        let i = b.len() - 64 + at;
        prop_assume!(b[i] != digit);
        b[i] = digit;
        prop_assert_eq!(decode(&b, &topology(), &keys()), Err(DecodeError::BadStamp));
    }

    #[test]
    fn any_edit_of_a_signed_number_is_a_bad_stamp(seq in 0u64..1_000_000, other in 0u64..1_000_000) {
        prop_assume!(seq != other);
        let b = String::from_utf8(datagram(seq)).unwrap();
        let forged = b.replacen(&format!(" sequence={seq} "), &format!(" sequence={other} "), 1);
        prop_assert_eq!(decode(forged.as_bytes(), &topology(), &keys()), Err(DecodeError::BadStamp));
    }

    #[test]
    fn a_key_id_not_held_is_named(id in "[A-Za-z0-9._-]{1,16}") {
        prop_assume!(id != KEY_ID);
        let other = Keyring::new(&id, KEY).unwrap();
        let b = encode(&heartbeat(NodeId(1), 7, 1, Path::Serial), &topology(), &other).unwrap();
        prop_assert_eq!(decode(&b, &topology(), &keys()), Err(DecodeError::UnknownKeyId(id)));
    }

    #[test]
    fn another_cluster_is_named_even_unsigned(name in "[A-Za-z0-9._-]{1,64}", signed in any::<bool>()) {
        prop_assume!(name != "lab");
        let b = String::from_utf8(datagram(1)).unwrap().replacen("cluster=lab ", &format!("cluster={name} "), 1);
        let b = if signed { restamp(b.as_bytes(), &keys()) } else { b.into_bytes() };
        // Errors keep a bounded excerpt of untrusted input (48 bytes).
        let shown = if name.len() > 48 { format!("{}…", &name[..48]) } else { name };
        prop_assert_eq!(decode(&b, &topology(), &keys()), Err(DecodeError::WrongCluster(shown)));
    }

    #[test]
    fn a_cut_inside_the_stamp_is_a_stamp_error(cut in 1usize..71) {
        let b = datagram(1);
        let e = decode(&b[..b.len() - cut], &topology(), &keys()).unwrap_err();
        prop_assert!(matches!(&e, DecodeError::Malformed { field, .. } if field == "stamp"), "{e:?}");
    }

    #[test]
    fn a_missing_header_field_is_named(which in proptest::sample::select(vec!["sender", "incarnation", "sequence", "path", "type", "cluster"])) {
        let b = String::from_utf8(datagram(1)).unwrap();
        let start = b.find(&format!(" {which}=")).unwrap();
        let end = b[start + 1..].find(' ').unwrap() + start + 1;
        let cut = format!("{}{}", &b[..start], &b[end..]);
        let e = decode(&restamp(cut.as_bytes(), &keys()), &topology(), &keys()).unwrap_err();
        prop_assert_eq!(e, DecodeError::Malformed { field: which.to_string(), reason: "missing", value: String::new() });
    }

    #[test]
    fn replays_get_their_kind(seqs in proptest::collection::vec(0u64..(3 * REPLAY_WINDOW), 1..60)) {
        // Against the rule, not the bit window: duplicate, too old, or accepted.
        let t = topology();
        let mut f = ReplayFilter::new(&t);
        let mut seen = std::collections::BTreeSet::new();
        let mut newest: Option<u64> = None;
        for s in seqs {
            let msg = decode(&datagram(s), &t, &keys()).unwrap();
            let got = f.accept(&msg.header);
            let want = match newest {
                Some(n) if s + REPLAY_WINDOW <= n => Err(ReplayKind::TooOld { newest: n }),
                _ if seen.contains(&s) => Err(ReplayKind::Duplicate),
                _ => Ok(()),
            };
            match (got, want) {
                (Ok(()), Ok(())) => {
                    seen.insert(s);
                    newest = Some(newest.map_or(s, |n| n.max(s)));
                }
                (Err(DecodeError::Replay { why, sender, sequence, incarnation }), Err(w)) => {
                    prop_assert_eq!((why, sender, sequence, incarnation), (w, NodeId(1), s, 7));
                }
                (g, w) => prop_assert!(false, "sequence {}: got {:?}, want {:?}", s, g, w),
            }
        }
    }

    // --- The API's refusals say what was wrong. ---

    #[test]
    fn a_bad_request_gets_a_4xx_naming_what_was_wrong(
        value in "[A-Za-z0-9:._-]{1,24}",
        which in 0usize..4,
    ) {
        let (target, auth, status, needle) = match which {
            0 => (format!("/api/v1/incidents?since={value}"), true, 400, format!("bad 'since' value {value:?}")),
            1 => (format!("/api/v1/incidents?{value}=1"), true, 400, format!("unknown query parameter {value:?}")),
            2 => (format!("/api/v1/incidents/{value}"), true, 400, format!("bad incident id {value:?}")),
            _ => (format!("/api/v1/{value}"), false, 401, "missing or wrong bearer token".to_string()),
        };
        // Values that happen to be valid (a span like `5m`, an id like `n1-3`) are not refusals.
        let valid = match which {
            0 => hadiag::http::server::parse_since(&value, chrono::Utc::now()).is_ok(),
            1 => value == "since",
            2 => hadiag::journal::record::parse_incident_ref(&value).is_some(),
            _ => false,
        };
        let auth = if auth { "Authorization: Bearer fuzz-token\r\n" } else { "" };
        let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n");
        let out = String::from_utf8(http_exchange(req.as_bytes())).unwrap();
        if !valid {
            prop_assert!(out.starts_with(&format!("HTTP/1.1 {status} ")), "{}", out);
            let body = &out[out.find("\r\n\r\n").unwrap() + 4..];
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            let msg = v["error"].as_str().unwrap();
            prop_assert!(msg.contains(&needle), "{} lacks {}", msg, needle);
        }
    }

    // --- Configuration errors name the field and the line. ---

    #[test]
    fn a_bad_value_is_named_by_field_and_line(
        target in 0usize..4,
        junk in proptest::sample::select(vec!["fast", "12", "-5ms", "1e9h", "[1]", "{}", "ten seconds"]),
    ) {
        let (needle, field) = [
            ("heartbeat_interval: 100ms", "timing.heartbeat_interval"),
            ("port: 7946 }", "networks.A.port"),
            ("priority: 100", "nodes.n1.priority"),
            ("address: 198.51.100.1 }", "nodes.n1.interfaces.A.address"),
        ][target];
        let text = std::fs::read_to_string(TWO).unwrap();
        let line = text.lines().position(|l| l.contains(needle)).unwrap() + 1;
        let (key, _) = needle.split_once(": ").unwrap();
        let bad_value = if needle.ends_with('}') { format!("{key}: {junk} }}") } else { format!("{key}: {junk}") };
        // Only the first occurrence (n1's lines come before n2's).
        let broken = text.replacen(needle, &bad_value, 1);
        // Some junk is still a valid value of a loose field (a port of 12): then no error.
        if let Err(errs) = config::load_str(&broken, std::path::Path::new(TWO)) {
            let hit = errs.errors.iter().find(|e| e.path == field);
            prop_assert!(hit.is_some(), "no error names {}: {}", field, errs);
            let hit = hit.unwrap();
            prop_assert_eq!(hit.location.map(|l| l.line), Some(line), "{}", hit);
        }
    }
}

/// A journal line broken in the middle of a file costs that line only, and the problem names
/// the file and its line number.
#[test]
fn a_bad_journal_line_is_named_by_its_line() {
    let good = &journal_lines()[0];
    let text = format!("{good}\n{good}\n{{\"ts\":\"2026\n{good}\n");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(hadiag::journal::FILE_NAME);
    std::fs::write(&file, &text).unwrap();
    let r = hadiag::journal::read_journal(dir.path()).unwrap();
    assert_eq!(r.entries.len(), 3);
    assert_eq!(r.problems.len(), 1);
    let p = &r.problems[0];
    assert_eq!((p.line, p.torn), (Some(3), false));
    assert!(
        p.to_string()
            .starts_with(&format!("{}:3: unreadable line", file.display())),
        "{p}"
    );
    journal_text(text.as_bytes());
}

/// Fuzz findings in the properties themselves, kept as cases: YAML ends a line at a lone CR
/// too (so an error's line may lie past what `str::lines` counts), and an HTTP/1.0 request
/// gets an HTTP/1.0 response.
#[test]
fn fuzz_findings_stay_fixed() {
    config_text(b"cluster: demo\r\r\r\r\rnetworks: { A: [\r\r\r");
    let req = b"GET /api/v1/incidents/n1-3 HTTP/1.0\r\nAuthorization: Bearer fuzz-token\r\n\r\n";
    http_request(req);
    assert!(http_exchange(req).starts_with(b"HTTP/1.0 404 "));
}
