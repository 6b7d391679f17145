//! The registry in process: fan-out of one PUBLISH and subscription churn.
//!
//! `cargo bench --bench registry`
//!
//! - `publish/subscribers/N`: one PUBLISH to a channel with N subscribers (1, 100, 10,000): the
//!   frame is encoded once and queued to every subscriber's outbox. Outboxes are drained after
//!   each iteration so queues stay short, as they do with writers keeping up.
//! - `churn/subscribe_unsubscribe`: SUBSCRIBE then UNSUBSCRIBE of a channel name never used
//!   before, the pattern of clients with per-request reply channels; the entry goes with its
//!   last subscriber, so the registry stays empty.

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pubsubd::outbox::{Outbox, OutputLimits};
use pubsubd::registry::{Namespace, Registry};
use pubsubd::stats::Stats;

fn outbox(id: u64, stats: &Arc<Stats>) -> Outbox {
    Outbox::new(id, Arc::new(OutputLimits::new(0, 0, 0)), stats.clone())
}

fn publish(c: &mut Criterion) {
    let mut g = c.benchmark_group("publish");
    for n in [1usize, 100, 10_000] {
        let stats = Arc::new(Stats::default());
        let reg = Registry::new(stats.clone());
        let subs: Vec<Outbox> = (0..n as u64).map(|i| outbox(i, &stats)).collect();
        for s in &subs {
            reg.subscribe(Namespace::Global, b"news", s, true, None);
        }
        let payload = vec![b'x'; 64];
        let mut wakes = Vec::new();
        let mut drained = VecDeque::new();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("subscribers", n), &n, |b, _| {
            b.iter(|| {
                let r = reg.publish(Namespace::Global, b"news", &payload, &mut wakes);
                wakes.clear();
                for s in &subs {
                    if s.try_batch(&mut drained) {
                        let bytes: usize = drained.iter().map(|f| f.len()).sum();
                        drained.clear();
                        s.written(bytes);
                    }
                }
                black_box(r)
            })
        });
    }
    g.finish();
}

fn churn(c: &mut Criterion) {
    let stats = Arc::new(Stats::default());
    let reg = Registry::new(stats.clone());
    let me = outbox(1, &stats);
    let mut i = 0u64;
    let mut drained = VecDeque::new();
    c.bench_function("churn/subscribe_unsubscribe", |b| {
        b.iter(|| {
            i += 1;
            let ch = format!("reply:{i}");
            reg.subscribe(Namespace::Global, ch.as_bytes(), &me, true, None);
            reg.unsubscribe(Namespace::Global, ch.as_bytes(), &me, None);
            if me.try_batch(&mut drained) {
                drained.clear();
            }
        })
    });
    assert_eq!(reg.channel_count(Namespace::Global), 0);
}

criterion_group!(benches, publish, churn);
criterion_main!(benches);
