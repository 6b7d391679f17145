//! Memory figures for INFO and the metrics endpoint.
//!
//! `used_memory` is what the allocator has handed out, as in Redis (whose zmalloc keeps one
//! atomic counter of allocated bytes). The library forbids `unsafe`, so it cannot wrap the
//! global allocator itself: the binary installs a counting allocator and registers a function
//! reading its counter with `set_allocated_source`. Without one (tests, embedding), the
//! resident set size stands in. `used_memory_peak` is sampled by the server's cron and by
//! every reading, as Redis samples it in `serverCron`.
//!
//! glibc's malloc keeps freed memory mapped: after ten thousand clients leave, `used_memory`
//! falls back but the resident size stays at its peak. The binary registers `malloc_trim` with
//! `set_trim`, and the cron calls it when the bytes in use have fallen well below their
//! high-water mark since the last trim (`TRIM_MIN_DROP`), which is rare and cheap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static SOURCE: OnceLock<fn() -> u64> = OnceLock::new();
static PEAK: AtomicU64 = AtomicU64::new(0);
static TRIM: OnceLock<fn()> = OnceLock::new();
/// The most bytes in use since the allocator was last trimmed.
static HIGH_WATER: AtomicU64 = AtomicU64::new(0);

/// How far the bytes in use must fall below their high-water mark (and by at least a quarter)
/// before the cron gives freed memory back to the kernel.
pub const TRIM_MIN_DROP: u64 = 8 * 1024 * 1024;

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

/// Registers the function that returns freed memory to the kernel. First call wins.
pub fn set_trim(f: fn()) {
    let _ = TRIM.set(f);
}

/// Samples the current use so the peak stays accurate between INFO calls, and trims the
/// allocator after a large drop.
pub fn sample() {
    let n = used();
    if let Some(trim) = TRIM.get() {
        if should_trim(&HIGH_WATER, n) {
            trim();
        }
    }
}

/// Whether `now` is far enough below the high-water mark to trim; if so the mark restarts
/// from `now`.
fn should_trim(high_water: &AtomicU64, now: u64) -> bool {
    let high = high_water.fetch_max(now, Ordering::Relaxed).max(now);
    if high - now >= TRIM_MIN_DROP && now < high / 4 * 3 {
        high_water.store(now, Ordering::Relaxed);
        return true;
    }
    false
}

/// CONFIG RESETSTAT: the peak starts again from the current use.
pub fn reset_peak() {
    PEAK.store(0, Ordering::Relaxed);
    sample();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_after_a_large_drop_only() {
        let mb = 1024 * 1024;
        let h = AtomicU64::new(0);
        assert!(!should_trim(&h, 10 * mb));
        assert!(!should_trim(&h, 100 * mb));
        assert!(!should_trim(&h, 80 * mb), "a fifth less");
        assert!(should_trim(&h, 60 * mb));
        assert!(!should_trim(&h, 55 * mb), "the mark restarted at 60 MiB");
        assert!(should_trim(&h, 2 * mb));
        assert!(
            !should_trim(&h, 0),
            "less than TRIM_MIN_DROP below the mark"
        );
    }
}
