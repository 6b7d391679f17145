//! Per-channel message counts for the metrics endpoint's busiest channels, kept off the
//! publish path's cost: nothing at all unless `metrics-port` is set, and then a thread-local
//! random-number step per PUBLISH, with one in `SAMPLE_EVERY` publishes (on average) recorded in a sharded,
//! bounded table (the space-saving algorithm: a full shard gives its least-counted channel's
//! slot to the newcomer, which inherits that count). The busiest channels are picked at scrape
//! time. Counts are estimates: sampled publishes × `SAMPLE_EVERY`.
//!
//! Locks: one short mutex per shard, taken by one publish in `SAMPLE_EVERY` and by a scrape.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::protocol::Namespace;

/// One publish in this many is recorded.
pub const SAMPLE_EVERY: u64 = 16;
const SHARDS: usize = 16;
/// Channels tracked per shard (so at most 4096 in all).
const MAX_PER_SHARD: usize = 256;

thread_local! {
    /// xorshift64 state: sampling at random points, so a publisher with a period that divides
    /// `SAMPLE_EVERY` is not always (or never) the one sampled.
    static RNG: Cell<u64> = const { Cell::new(0x9E37_79B9_7F4A_7C15) };
}

type Key = (bool, Bytes);

pub struct ChannelRates {
    enabled: AtomicBool,
    shards: Box<[Mutex<HashMap<Key, u64>>]>,
    hasher: RandomState,
}

impl Default for ChannelRates {
    fn default() -> Self {
        ChannelRates {
            enabled: AtomicBool::new(false),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl ChannelRates {
    /// Turns counting on (when the metrics endpoint is configured).
    pub fn enable(&self) {
        self.enabled.store(true, Ordering::Relaxed);
    }

    /// Called for every PUBLISH/SPUBLISH.
    #[inline]
    pub fn observe(&self, ns: Namespace, channel: &[u8]) {
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        let sampled = RNG.with(|r| {
            let mut x = r.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            r.set(x);
            x % SAMPLE_EVERY == 0
        });
        if sampled {
            self.record(ns == Namespace::Shard, channel);
        }
    }

    fn record(&self, shard_ns: bool, channel: &[u8]) {
        let h = self.hasher.hash_one(channel) as usize;
        let mut map = self.shards[h % SHARDS].lock();
        let key = (shard_ns, Bytes::copy_from_slice(channel));
        if let Some(c) = map.get_mut(&key) {
            *c += 1;
            return;
        }
        let mut start = 1;
        if map.len() >= MAX_PER_SHARD {
            if let Some((k, c)) = map
                .iter()
                .min_by_key(|(_, c)| **c)
                .map(|(k, c)| (k.clone(), *c))
            {
                map.remove(&k);
                start = c + 1;
            }
        }
        map.insert(key, start);
    }

    /// The `k` busiest channels: (is a shard channel, name, estimated messages), busiest first.
    pub fn top(&self, k: usize) -> Vec<(bool, Bytes, u64)> {
        let mut all: Vec<(bool, Bytes, u64)> = Vec::new();
        for s in self.shards.iter() {
            all.extend(
                s.lock()
                    .iter()
                    .map(|((ns, ch), c)| (*ns, ch.clone(), c * SAMPLE_EVERY)),
            );
        }
        all.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.1.cmp(&b.1)));
        all.truncate(k);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_until_enabled_then_finds_the_busiest() {
        let r = ChannelRates::default();
        for _ in 0..1000 {
            r.observe(Namespace::Global, b"quiet");
        }
        assert!(r.top(5).is_empty());
        r.enable();
        for i in 0..32_000u32 {
            let ch: &[u8] = if i % 4 == 0 { b"quiet" } else { b"busy" };
            r.observe(Namespace::Global, ch);
        }
        let top = r.top(2);
        assert_eq!(&top[0].1[..], b"busy");
        assert_eq!(&top[1].1[..], b"quiet");
        assert!(top[0].2 > top[1].2);
    }

    #[test]
    fn table_stays_bounded() {
        let r = ChannelRates::default();
        r.enable();
        for i in 0..(SAMPLE_EVERY as usize * 20_000) {
            r.observe(
                Namespace::Global,
                format!("c{}", i / SAMPLE_EVERY as usize).as_bytes(),
            );
        }
        let n: usize = r.shards.iter().map(|s| s.lock().len()).sum();
        assert!(n <= SHARDS * MAX_PER_SHARD);
    }
}
