//! Fuzz target: datagrams through the decoder and the replay filter (checked against a model of its rules).
//! The property lives in tests/fuzz_checks (shared with the stable proptests).
#![no_main]

#[path = "../../tests/fuzz_checks/mod.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::wire_script(data));
