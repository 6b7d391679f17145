//! `decode`: see `tests/properties/fuzz_harness/decode.rs` for the input format and the checks.
//! The harness is shared with `tests/properties/fuzz_replay.rs`, which replays the kept inputs
//! in `cargo test`.

#![no_main]

#[path = "../../tests/properties/fuzz_harness/mod.rs"]
mod fuzz_harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::decode::run(data));
