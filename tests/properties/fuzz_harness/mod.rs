//! The fuzz harnesses, shared by the cargo-fuzz targets (`fuzz/fuzz_targets/`, which include
//! this module by path) and by the property tests: `fuzz_replay` runs every kept input through
//! the same code, `codec` and `registry` use its strict reader and its world. Each target module
//! has a `run(&[u8])` that panics when a check fails.
//!
//! Only the library's public API is used, and nothing here opens a socket or a file.

// Each fuzz target uses one harness; the others are compiled but unused there.
#![allow(dead_code)]

pub mod config;
pub mod decode;
pub mod dispatch;
pub mod glob;
pub mod resp;
pub mod world;

/// A target's entry point: panics when a check fails.
pub type Run = fn(&[u8]);

/// The targets, by the name of their fuzz target and regression directory.
pub const TARGETS: &[(&str, Run)] = &[
    ("decode", decode::run),
    ("dispatch", dispatch::run),
    ("glob", glob::run),
    ("config", config::run),
];
