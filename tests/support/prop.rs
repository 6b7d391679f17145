//! The property tests' case counts.

use proptest::prelude::ProptestConfig;

/// `default_cases` cases per property, or `PROPTEST_CASES` from the environment (to run the
/// properties longer by hand).
pub fn config(default_cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_cases);
    ProptestConfig::with_cases(cases)
}
