//! Request decoding and reply encoding, in process.
//!
//! `cargo bench --bench codec`
//!
//! - `decode/pipelined_publish`: 1,000 pipelined `PUBLISH channel <64 B>` requests decoded from
//!   one buffer, as a pipelining publisher sends them.
//! - `encode/message`: one `message` push frame (RESP2 `*3`, RESP3 `>3`) for 64 B and 4 KiB
//!   payloads: the frame PUBLISH builds once and shares with every receiver.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pubsubd::protocol::{encode, Decoder, RespVersion};

fn pipelined_publishes(n: usize, payload: usize) -> Vec<u8> {
    let body = vec![b'x'; payload];
    let mut out = Vec::new();
    for i in 0..n {
        let ch = format!("channel:{}", i % 100);
        out.extend_from_slice(format!("*3\r\n$7\r\nPUBLISH\r\n${}\r\n", ch.len()).as_bytes());
        out.extend_from_slice(ch.as_bytes());
        out.extend_from_slice(format!("\r\n${}\r\n", body.len()).as_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn decode(c: &mut Criterion) {
    let input = pipelined_publishes(1000, 64);
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("pipelined_publish", |b| {
        b.iter(|| {
            let mut d = Decoder::default();
            let mut buf = BytesMut::from(&input[..]);
            let mut n = 0;
            while let Ok(Some(req)) = d.decode(&mut buf, false) {
                n += req.len();
            }
            black_box(n)
        })
    });
    g.finish();
}

fn encode_frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    for size in [64usize, 4096] {
        let payload = vec![b'p'; size];
        for (name, v) in [("resp2", RespVersion::Resp2), ("resp3", RespVersion::Resp3)] {
            g.throughput(Throughput::Bytes(size as u64));
            g.bench_with_input(
                BenchmarkId::new(format!("message_{name}"), size),
                &size,
                |b, _| b.iter(|| black_box(encode::message(v, b"message", b"channel:1", &payload))),
            );
        }
    }
    g.finish();
}

criterion_group!(benches, decode, encode_frames);
criterion_main!(benches);
