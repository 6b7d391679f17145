//! The `redis` crate as Rust users drive it: sync and async pub/sub, RESP2 and RESP3.

use std::time::Duration;

use futures::StreamExt;
use redis::{AsyncCommands, Commands};

use crate::support::TestServer;

const PAYLOADS: &[&[u8]] = &[b"", b"\x00", b"a\r\nb", b"\xff\xfe", "ünïcødé".as_bytes()];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_pubsub_resp2_and_resp3() {
    let s = TestServer::start().await;
    for url in [s.url(), s.url3()] {
        let url2 = url.clone();
        tokio::task::spawn_blocking(move || {
            let client = redis::Client::open(url2.as_str()).unwrap();
            let mut sub_con = client.get_connection().unwrap();
            let mut publ = client.get_connection().unwrap();
            let mut ps = sub_con.as_pubsub();
            ps.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            ps.subscribe("sync-ch").unwrap();
            ps.psubscribe("sync-*").unwrap();
            for p in PAYLOADS {
                let n: i64 = publ.publish("sync-ch", *p).unwrap();
                assert_eq!(n, 2, "channel and pattern both count ({url2})");
                let m = ps.get_message().unwrap();
                assert_eq!(m.get_channel_name(), "sync-ch");
                assert_eq!(m.get_payload_bytes(), *p);
                assert!(!m.from_pattern());
                let m = ps.get_message().unwrap();
                assert_eq!(m.get_pattern::<String>().unwrap(), "sync-*");
                assert_eq!(m.get_payload_bytes(), *p);
            }
            let numsub: Vec<(String, i64)> = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg("sync-ch")
                .query(&mut publ)
                .unwrap();
            assert_eq!(numsub, vec![("sync-ch".to_string(), 1)]);
            let numpat: i64 = redis::cmd("PUBSUB").arg("NUMPAT").query(&mut publ).unwrap();
            assert_eq!(numpat, 1);
        })
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_payloads_and_non_ascii_channel_names() {
    let s = TestServer::start().await;
    for url in [s.url(), s.url3()] {
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut ps = client.get_async_pubsub().await.unwrap();
        let channel = "канал·通道·🚀";
        ps.subscribe(channel).await.unwrap();
        ps.psubscribe("канал*").await.unwrap();
        let mut publ = client.get_multiplexed_async_connection().await.unwrap();
        let big: Vec<u8> = (0..1024 * 1024).map(|i| (i % 256) as u8).collect();
        let n: i64 = publ.publish(channel, &big).await.unwrap();
        assert_eq!(n, 2);
        let mut stream = ps.on_message();
        for _ in 0..2 {
            let m = tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .expect("message in time")
                .expect("stream open");
            assert_eq!(m.get_channel_name(), channel);
            assert_eq!(m.get_payload_bytes(), &big[..]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_pubsub_receives_in_publish_order() {
    let s = TestServer::start().await;
    for url in [s.url(), s.url3()] {
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut ps = client.get_async_pubsub().await.unwrap();
        ps.subscribe("async-ch").await.unwrap();
        let mut publ = client.get_multiplexed_async_connection().await.unwrap();
        for i in 0..500 {
            let n: i64 = publ.publish("async-ch", i.to_string()).await.unwrap();
            assert_eq!(n, 1);
        }
        let mut stream = ps.on_message();
        for i in 0..500 {
            let m = tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .expect("message in time")
                .expect("stream open");
            assert_eq!(m.get_payload::<String>().unwrap(), i.to_string());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp3_push_messages_on_a_multiplexed_connection() {
    let s = TestServer::start().await;
    let client = redis::Client::open(s.url3().as_str()).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let config = redis::AsyncConnectionConfig::new().set_push_sender(tx);
    let mut con = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap();
    con.subscribe("push-ch").await.unwrap();
    // In RESP3 a subscribed connection still runs ordinary commands.
    let pong: String = redis::cmd("PING").query_async(&mut con).await.unwrap();
    assert_eq!(pong, "PONG");
    let mut publ = client.get_multiplexed_async_connection().await.unwrap();
    let n: i64 = publ.publish("push-ch", "hello").await.unwrap();
    assert_eq!(n, 1);
    loop {
        let push = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        if push.kind == redis::PushKind::Message {
            assert_eq!(
                push.data,
                vec![
                    redis::Value::BulkString(b"push-ch".to_vec()),
                    redis::Value::BulkString(b"hello".to_vec())
                ]
            );
            break;
        }
    }
}
