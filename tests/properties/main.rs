//! Properties: the codec and the registry checked on generated inputs against independent
//! models, and every input the fuzzers kept replayed through the fuzz harnesses. No network:
//! the library is called directly.
//!
//! - `codec`: requests survive encoding and decoding however the stream is cut; replies and
//!   push frames are well-formed RESP that a separate strict reader parses back.
//! - `registry`: random subscribe, publish and disconnect sequences through the real dispatch
//!   agree with a model of `BTreeMap`s.
//! - `fuzz_replay`: the inputs under `tests/fuzz_regressions/` through the fuzz targets' checks.
//! - `fuzz_harness`: the fuzz targets' checks, shared with `fuzz/fuzz_targets/` (which include
//!   it by path).

#[path = "../support/mod.rs"]
mod support;

mod codec;
mod fuzz_harness;
mod fuzz_replay;
mod registry;
