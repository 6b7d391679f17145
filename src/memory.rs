//! Memory figures for INFO and the metrics endpoint.
//!
//! `used_memory` is what the allocator has handed out, as in Redis (whose zmalloc keeps one
//! atomic counter of allocated bytes). The library forbids `unsafe`, so it cannot wrap the
//! global allocator itself: the binary installs a counting allocator and registers a function
//! reading its counter with `set_allocated_source`. Without one (tests, embedding), the
//! resident set size stands in. `used_memory_peak` is sampled by the server's cron and by
//! every reading, as Redis samples it in `serverCron`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static SOURCE: OnceLock<fn() -> u64> = OnceLock::new();
static PEAK: AtomicU64 = AtomicU64::new(0);

/// Registers the function that reads the allocator's count of bytes in use. First call wins.
pub fn set_allocated_source(f: fn() -> u64) {
    let _ = SOURCE.set(f);
}

/// Whether `used_memory` comes from the allocator (INFO `mem_allocator`).
pub fn counting_allocator() -> bool {
    SOURCE.get().is_some()
}

/// Resident set size in bytes, from /proc/self/statm (0 where that is not available).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Bytes in use (`used_memory`); also updates the peak.
pub fn used() -> u64 {
    let n = match SOURCE.get() {
        Some(f) => f(),
        None => rss_bytes(),
    };
    PEAK.fetch_max(n, Ordering::Relaxed);
    n
}

/// The highest `used()` seen (`used_memory_peak`).
pub fn peak() -> u64 {
    PEAK.load(Ordering::Relaxed)
}

/// Samples the current use so the peak stays accurate between INFO calls.
pub fn sample() {
    let _ = used();
}

/// CONFIG RESETSTAT: the peak starts again from the current use.
pub fn reset_peak() {
    PEAK.store(0, Ordering::Relaxed);
    sample();
}
