//! Fuzz the wire decoder: never a panic; whatever decodes re-encodes to an equal message.
//! Each input is tried as is and behind a valid stamp, so mutations reach the resolver.
#![no_main]

use hadiag::core::topology::Topology;
use hadiag::core::wire::{decode, encode, parse, EncodeError, Keyring};
use libfuzzer_sys::fuzz_target;

fn topology() -> Topology {
    Topology::mesh("lab", &["n1", "n2", "db-1"], &["A", "B"])
}

fn check(bytes: &[u8], t: &Topology, k: &Keyring) {
    if let Ok(raw) = parse(bytes) {
        let _ = raw.resolve(t);
    }
    if let Ok(msg) = decode(bytes, t, k) {
        match encode(&msg, t, k) {
            Ok(again) => assert_eq!(decode(&again, t, k), Ok(msg)),
            Err(EncodeError::Oversize { .. }) => {}
            Err(e) => panic!("decoded message does not re-encode: {e}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let t = topology();
    let k = Keyring::new("k1", b"fuzz-key-0123456789abcdef").expect("valid key");
    check(data, &t, &k);
    let cut = data
        .windows(7)
        .rposition(|w| w == b" stamp=")
        .unwrap_or(data.len());
    let mut signed = data[..cut].to_vec();
    k.append_stamp(&mut signed);
    check(&signed, &t, &k);
});
