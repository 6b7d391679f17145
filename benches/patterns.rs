//! Pattern lookup per published channel: `PatternIndex::for_each_match` against a naive scan of
//! every pattern with `glob::stringmatch` (what Redis does on every PUBLISH), plus PSUBSCRIBE /
//! PUNSUBSCRIBE churn on a large index.
//!
//! Patterns come in four shapes, a quarter each: `news.<i>.*`, `user:<i>:*`, `*:<i>`,
//! `h?llo.<i>.[a-z]*`. Channel `k` is `news.<j>.sports<k>`, `user:<j>:inbox<k>`, `event<k>:<j>`
//! or `hello.<j>.x<k>`, with `j` spread over twice the pattern range, so each matches at most
//! one pattern and half match none. `hot` cycles through 1,024 distinct channels (served by the
//! match cache); `cold` through 100,000 (beyond the cache, so the trie walks and the
//! verification are measured).
//!
//! Run: `cargo bench --bench patterns -- --warm-up-time 1 --measurement-time 3`
//!
//! Latest figures, time per published channel (criterion's point estimate), 2026-11-23, on
//! a 2-core AMD EPYC VM shared with other jobs (load average 4-6 during the run, so absolute
//! figures wander by up to 2x between runs; compare within a row):
//!
//! | patterns | naive scan | index, hot | index, cold | naive / cold |
//! |---------:|-----------:|-----------:|------------:|-------------:|
//! |        0 |     5.9 ns |     3.7 ns |      5.5 ns |            - |
//! |    1,000 |    55.8 µs |    71.9 ns |      214 ns |         260x |
//! |   10,000 |     554 µs |    87.0 ns |      354 ns |       1,560x |
//! |  100,000 |    6.67 ms |    90.2 ns |     1.23 µs |       5,440x |
//!
//! Insert + remove of one pattern in an index of 100,000: 2.07 µs.
//!
//! For scale, redis-server 7.0.15 on the same machine the same day (`redis-benchmark -c 4 -P 16
//! PUBLISH news.5.sports hello`, the same four shapes subscribed by one client): 327k
//! publishes/s with no pattern, 17.2k/s with 1,000, 0.71k/s with 10,000.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pubsubd::glob::stringmatch;
use pubsubd::registry::patterns::PatternIndex;

const SIZES: [usize; 4] = [0, 1_000, 10_000, 100_000];

fn patterns(n: usize) -> Vec<Bytes> {
    (0..n)
        .map(|k| {
            let i = k / 4;
            let p = match k % 4 {
                0 => format!("news.{i}.*"),
                1 => format!("user:{i}:*"),
                2 => format!("*:{i}"),
                _ => format!("h?llo.{i}.[a-z]*"),
            };
            Bytes::from(p)
        })
        .collect()
}

fn channels(n: usize, count: usize) -> Vec<Bytes> {
    let range = (n / 4).max(1) * 2;
    (0..count)
        .map(|k| {
            let j = (k / 4).wrapping_mul(7919) % range;
            let c = match k % 4 {
                0 => format!("news.{j}.sports{k}"),
                1 => format!("user:{j}:inbox{k}"),
                2 => format!("event{k}:{j}"),
                _ => format!("hello.{j}.x{k}"),
            };
            Bytes::from(c)
        })
        .collect()
}

fn index(n: usize) -> PatternIndex<u64> {
    let mut idx = PatternIndex::new();
    for (v, p) in patterns(n).into_iter().enumerate() {
        idx.get_or_insert_with(p, || v as u64);
    }
    idx
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("match_per_channel");
    group.throughput(Throughput::Elements(1));
    for n in SIZES {
        let idx = index(n);
        for (name, count) in [("hot", 1_024), ("cold", 100_000)] {
            let chans = channels(n, count);
            let mut k = 0;
            group.bench_function(BenchmarkId::new(format!("index_{name}"), n), |b| {
                b.iter(|| {
                    k = (k + 1) % chans.len();
                    let mut sum = 0u64;
                    idx.for_each_match(&chans[k], |_, v| sum += *v);
                    black_box(sum)
                })
            });
        }
        let naive: Vec<(Bytes, u64)> = patterns(n).into_iter().zip(0..).collect();
        let chans = channels(n, 1_024);
        let mut k = 0;
        group.bench_function(BenchmarkId::new("naive_scan", n), |b| {
            b.iter(|| {
                k = (k + 1) % chans.len();
                let mut sum = 0u64;
                for (p, v) in &naive {
                    if stringmatch(p, &chans[k], false) {
                        sum += *v;
                    }
                }
                black_box(sum)
            })
        });
    }
    group.finish();
}

fn churn(c: &mut Criterion) {
    let mut group = c.benchmark_group("psubscribe_punsubscribe");
    group.throughput(Throughput::Elements(1));
    let mut idx = index(100_000);
    let fresh: Vec<Bytes> = (0..4096)
        .map(|i| Bytes::from(format!("churn.{i}.*")))
        .collect();
    let mut k = 0;
    group.bench_function(BenchmarkId::new("insert_remove", 100_000), |b| {
        b.iter(|| {
            k = (k + 1) % fresh.len();
            idx.get_or_insert_with(fresh[k].clone(), || 0);
            black_box(idx.remove(&fresh[k]))
        })
    });
    group.finish();
}

criterion_group!(benches, lookup, churn);
criterion_main!(benches);
