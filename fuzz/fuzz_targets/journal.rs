//! Fuzz target: a journal file through both journal readers, the incident book and explain.
//! The property lives in tests/fuzz_checks (shared with the stable proptests).
#![no_main]

#[path = "../../tests/fuzz_checks/mod.rs"]
mod fuzz_checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_checks::journal_text(data));
