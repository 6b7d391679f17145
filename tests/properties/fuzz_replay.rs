//! Replays every input kept under `tests/fuzz_regressions/<target>/` (crashes the fuzz targets
//! found, and seeds from their corpora) through the same harness code as the fuzz target, so
//! the normal test suite keeps them fixed without cargo-fuzz.

use std::path::PathBuf;

use crate::fuzz_harness;

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let (_, run) = fuzz_harness::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("known target");
    let files = inputs(target);
    assert!(!files.is_empty(), "no inputs kept for {target}");
    let mut failed = Vec::new();
    for f in &files {
        let data = std::fs::read(f).expect("readable input");
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            failed.push(f.display().to_string());
        }
    }
    assert!(failed.is_empty(), "{target} inputs failing: {failed:#?}");
}

#[test]
fn decode_inputs_pass() {
    replay("decode");
}

#[test]
fn dispatch_inputs_pass() {
    replay("dispatch");
}

#[test]
fn glob_inputs_pass() {
    replay("glob");
}

#[test]
fn config_inputs_pass() {
    replay("config");
}
