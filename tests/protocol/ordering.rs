//! Ordering under concurrency: publishers and subscribers on different threads. Every subscriber
//! of a channel (exact or through a pattern) sees one order of its messages, and each
//! publisher's messages arrive in the order it published them. PUBLISH's counts add up to the
//! deliveries.

use std::collections::HashMap;

use bytes::Bytes;

use crate::support::resp::bulks;
use crate::support::{encode, Raw, TestServer};

const PUBLISHERS: usize = 4;
const PER_PUBLISHER: usize = 2000;
const CHANNELS: usize = 3;

/// Reads `n` pub/sub frames and returns (channel, payload) in arrival order.
async fn collect(c: &mut Raw, n: usize) -> Vec<(Bytes, Bytes)> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let f = c.frame().await;
        let parts: Vec<Bytes> = bulks(&f).into_iter().map(Bytes::from).collect();
        match parts[0].as_ref() {
            b"message" => out.push((parts[1].clone(), parts[2].clone())),
            b"pmessage" => out.push((parts[2].clone(), parts[3].clone())),
            other => panic!("unexpected frame {:?}", String::from_utf8_lossy(other)),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_subscriber_sees_one_order_and_publishers_keep_theirs() {
    let s = TestServer::start().await;
    let mut subs = Vec::new();
    for i in 0..4 {
        let mut c = Raw::connect(s.addr()).await;
        if i % 2 == 0 {
            c.cmd(&["SUBSCRIBE", "ord0", "ord1", "ord2"]).await;
            for _ in 0..CHANNELS {
                c.frame().await;
            }
        } else {
            c.cmd(&["PSUBSCRIBE", "ord*"]).await;
            c.frame().await;
        }
        subs.push(c);
    }
    let addr = s.addr();
    let mut tasks = Vec::new();
    for p in 0..PUBLISHERS {
        tasks.push(tokio::spawn(async move {
            let mut c = Raw::connect(addr).await;
            let mut batch = Vec::new();
            for seq in 0..PER_PUBLISHER {
                let ch = format!("ord{}", seq % CHANNELS);
                let payload = format!("{p}:{seq}");
                batch.extend(encode(&[b"PUBLISH", ch.as_bytes(), payload.as_bytes()]));
            }
            c.send(&batch).await;
            let mut total = 0;
            for _ in 0..PER_PUBLISHER {
                let f = c.frame().await;
                total += std::str::from_utf8(&f[1..f.len() - 2])
                    .unwrap()
                    .parse::<usize>()
                    .unwrap();
            }
            total
        }));
    }
    let mut acknowledged = 0;
    for t in tasks {
        acknowledged += t.await.unwrap();
    }
    let expected = PUBLISHERS * PER_PUBLISHER;
    assert_eq!(acknowledged, expected * subs.len(), "receiver counts");
    let mut per_channel: Vec<HashMap<Bytes, Vec<Bytes>>> = Vec::new();
    for c in subs.iter_mut() {
        let got = collect(c, expected).await;
        c.expect_silence(50).await;
        let mut last_seq = [None::<usize>; PUBLISHERS];
        let mut by_channel: HashMap<Bytes, Vec<Bytes>> = HashMap::new();
        for (ch, payload) in got {
            let text = String::from_utf8(payload.to_vec()).unwrap();
            let (p, seq) = text.split_once(':').unwrap();
            let (p, seq): (usize, usize) = (p.parse().unwrap(), seq.parse().unwrap());
            assert!(
                last_seq[p].is_none_or(|l| l < seq),
                "publisher {p} reordered"
            );
            last_seq[p] = Some(seq);
            by_channel.entry(ch).or_default().push(payload);
        }
        per_channel.push(by_channel);
    }
    for other in &per_channel[1..] {
        assert!(
            other == &per_channel[0],
            "subscribers disagree on a channel's order"
        );
    }
}
