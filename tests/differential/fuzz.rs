//! The differential fuzzer: random sessions (`fuzz_gen`) sent to the reference and to
//! pubsubd, a fresh pair of servers per session, replies and pushes compared byte for byte
//! (`fuzz_run`) after the named masks (`fuzz_masks`).
//!
//! Deterministic by default: [`DEFAULT_CASES`] sessions from [`DEFAULT_SEED`]. For long runs:
//!
//! - `PUBSUBD_DIFF_FUZZ_CASES=N`: sessions to run;
//! - `PUBSUBD_DIFF_FUZZ_SEED=S`: another seed (`random` for a new one each run, printed);
//! - `PUBSUBD_REFERENCE_SERVER=/path/to/redis-server`: another reference binary;
//! - `PUBSUBD_DIFF_FUZZ_SHOW=1`: print every session (with `-- --nocapture`).
//!
//! A failing session is shrunk (fewer steps, fewer and simpler commands) and printed as a
//! differential script with the step that differs and both servers' bytes. Kept as a file in
//! `tests/fuzz_regressions/differential/`, it is replayed by `fuzz_regressions_replay`.

use std::path::PathBuf;

use proptest::test_runner::{Config, RngSeed, TestError, TestRunner};

use crate::fuzz_gen::{self, Case, Options};
use crate::fuzz_run::{self, Side};
use crate::{script, server};

/// Sessions per run when `PUBSUBD_DIFF_FUZZ_CASES` is not set: enough to cover every
/// generator branch many times, a few seconds in a debug build.
const DEFAULT_CASES: u32 = 200;
/// The seed when `PUBSUBD_DIFF_FUZZ_SEED` is not set.
const DEFAULT_SEED: u64 = 0x7e15_2024;
/// The most steps in one session.
const MAX_STEPS: usize = 16;

fn env<T: std::str::FromStr>(name: &str) -> Option<T> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} does not parse")),
    )
}

/// Starts a fresh reference and pubsubd, runs `steps` and stops them. `Err` is the report.
fn session(steps: &[script::Step], version: &str) -> Result<(), String> {
    let (redis, pubsubd) = std::thread::scope(|s| {
        let redis = s.spawn(|| server::redis(version));
        let pubsubd = s.spawn(server::pubsubd);
        (redis.join(), pubsubd.join())
    });
    let (redis, pubsubd) = match (redis, pubsubd) {
        (Ok(r), Ok(p)) => (r, p),
        (Err(e), _) | (_, Err(e)) => std::panic::resume_unwind(e),
    };
    let ((a, reference_version), (b, _)) = std::thread::scope(|s| {
        let a = s.spawn(|| Side::prepare(&redis.label, redis.addr));
        let b = s.spawn(|| Side::prepare(&pubsubd.label, pubsubd.addr));
        (
            a.join().expect("reference ready"),
            b.join().expect("pubsubd ready"),
        )
    });
    let mut sides = [a, b];
    let reference_70 = reference_version.starts_with("7.0.");
    fuzz_run::run(steps, &mut sides, reference_70)
}

fn run_case(case: &Case, version: &str) -> Result<(), String> {
    let text = case.to_string();
    let steps = script::parse(&text).map_err(|e| format!("generated script: {e}\n{text}"))?;
    session(&steps, version)
}

fn options(version: &str) -> Options {
    Options {
        reference_70: version.starts_with("7.0."),
    }
}

#[test]
fn fuzz_sessions_match_the_reference() {
    let version = server::redis_version();
    let cases = env("PUBSUBD_DIFF_FUZZ_CASES").unwrap_or(DEFAULT_CASES);
    let seed = match std::env::var("PUBSUBD_DIFF_FUZZ_SEED").as_deref() {
        Ok("random") => {
            let mut b = [0u8; 8];
            getrandom::fill(&mut b).expect("random seed");
            u64::from_le_bytes(b)
        }
        _ => env("PUBSUBD_DIFF_FUZZ_SEED").unwrap_or(DEFAULT_SEED),
    };
    eprintln!("differential fuzz: {cases} sessions, seed {seed}, reference redis-server {version}");
    let config = Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let strategy = fuzz_gen::case(options(&version), MAX_STEPS);
    let show = std::env::var_os("PUBSUBD_DIFF_FUZZ_SHOW").is_some();
    let result = runner.run(&strategy, |case| {
        if show {
            eprintln!("--\n{case}");
        }
        run_case(&case, &version).map_err(proptest::test_runner::TestCaseError::fail)
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, case)) => panic!(
            "differential fuzz (seed {seed}, reference {version}) found a difference.\n\
             Minimal session (a differential script; keep it in tests/fuzz_regressions/differential/):\n\n{case}\n{reason}"
        ),
        Err(TestError::Abort(reason)) => panic!("differential fuzz aborted: {reason}"),
    }
}

fn regressions_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions/differential")
}

#[test]
fn fuzz_regressions_replay() {
    let version = server::redis_version();
    let mut files: Vec<PathBuf> = std::fs::read_dir(regressions_dir())
        .expect("tests/fuzz_regressions/differential")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no kept sessions");
    let mut failed = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("readable session");
        let steps = script::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        if let Err(report) = session(&steps, &version) {
            failed.push(format!("{}:\n{report}", f.display()));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
