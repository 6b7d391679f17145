//! `client-output-buffer-limit pubsub`: a subscriber that stops reading is disconnected once its
//! queue passes the hard limit, counted in INFO, while healthy subscribers of the same channel
//! get every message in order and the publisher never waits.

use pubsubd::config::Config;

use crate::support::{self, encode, resp, Raw, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_is_disconnected_and_others_lose_nothing() {
    let cfg = Config {
        pubsub_output_limit: (1024 * 1024, 0, 0),
        ..Config::default()
    };
    let s = TestServer::with_config(cfg).await;

    let mut slow = Raw::connect(s.addr()).await;
    slow.cmd(&["SUBSCRIBE", "flood"]).await;
    slow.frame().await;
    let mut healthy = Raw::connect(s.addr()).await;
    healthy.cmd(&["SUBSCRIBE", "flood"]).await;
    healthy.frame().await;

    const N: usize = 30_000;
    const BATCH: usize = 100;
    let payload = vec![b'x'; 1024];
    let addr = s.addr();
    // The healthy subscriber keeps up: the publisher never gets more than 200 KiB ahead of it.
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen_by_publisher = seen.clone();
    let publisher = tokio::spawn(async move {
        let mut p = Raw::connect(addr).await;
        let mut counts = 0;
        for chunk in 0..N / BATCH {
            while seen_by_publisher.load(std::sync::atomic::Ordering::Relaxed) + 2 * BATCH
                < chunk * BATCH
            {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            let mut batch = Vec::new();
            for i in 0..BATCH {
                let mut m = format!("{:08}", chunk * BATCH + i).into_bytes();
                m.extend_from_slice(&payload);
                batch.extend(encode(&[b"PUBLISH", b"flood", &m]));
            }
            p.send(&batch).await;
            for _ in 0..BATCH {
                let f = p.frame().await;
                counts += std::str::from_utf8(&f[1..f.len() - 2])
                    .unwrap()
                    .parse::<usize>()
                    .unwrap();
            }
        }
        (p, counts)
    });

    for i in 0..N {
        let f = healthy.frame().await;
        let want = format!("{i:08}");
        assert!(
            f.windows(8).any(|w| w == want.as_bytes()),
            "message {i} missing or out of order"
        );
        seen.store(i + 1, std::sync::atomic::Ordering::Relaxed);
    }
    let (mut p, counts) = publisher.await.unwrap();
    // Every PUBLISH counted both subscribers until the slow one was dropped.
    assert!(counts > N && counts < 2 * N, "counts {counts}");
    // The slow subscriber's connection was closed by the server: draining it ends in EOF.
    let mut drained = 0usize;
    loop {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 1 << 16];
        match tokio::time::timeout(support::TIMEOUT, slow.stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => drained += n,
            Err(_) => panic!("slow subscriber still connected after {drained} bytes"),
        }
    }
    p.cmd(&["INFO", "stats"]).await;
    let info = String::from_utf8(p.frame().await).unwrap();
    assert!(
        info.contains("\r\nclient_output_buffer_limit_disconnections:1\r\n"),
        "{info}"
    );
    p.roundtrip(
        &["PUBSUB", "NUMSUB", "flood"],
        b"*2\r\n$5\r\nflood\r\n:1\r\n",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_is_not_subscribed_is_throttled_not_disconnected() {
    let cfg = Config {
        pubsub_output_limit: (64 * 1024, 0, 0),
        ..Config::default()
    };
    let s = TestServer::with_config(cfg).await;
    let c = Raw::connect(s.addr()).await;
    // Far more reply bytes than the pub/sub limit, sent before reading anything.
    let big = vec![b'y'; 64 * 1024];
    let mut batch = Vec::new();
    for _ in 0..200 {
        batch.extend(encode(&[b"ECHO", &big]));
    }
    let (mut r, mut w) = c.stream.into_split();
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        w.write_all(&batch).await.unwrap();
        w
    });
    use tokio::io::AsyncReadExt;
    let mut buf = bytes::BytesMut::new();
    let mut frames = 0;
    while frames < 200 {
        match resp::frame_len(&buf) {
            Some(n) => {
                assert_eq!(n, 64 * 1024 + 10);
                resp::advance(&mut buf, n);
                frames += 1;
            }
            None => {
                let n = tokio::time::timeout(support::TIMEOUT, r.read_buf(&mut buf))
                    .await
                    .expect("reply in time")
                    .unwrap();
                assert!(n > 0, "connection closed after {frames} replies");
            }
        }
    }
    writer.await.unwrap();
}
