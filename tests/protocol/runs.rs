//! Pipelines of PUBLISH to one channel: the server delivers the publishes of a run read
//! together in one pass over the subscribers. What a client sees must be exactly what the
//! same requests give one by one: every reply, every message in the publisher's order, the
//! commands' statistics, and the one-by-one behaviour wherever a request needs it
//! (transactions, CLIENT REPLY, ACL denials, a publisher subscribed to its own channel).

use crate::support::info::info_u64;
use crate::support::resp::{encode, frame, push3};
use crate::support::{Raw, TestServer};

fn msg2(ch: &[u8], payload: &[u8]) -> Vec<u8> {
    frame(b'*', &[b"message", ch, payload], None)
}

fn publishes(cmd: &str, ch: &str, payloads: impl IntoIterator<Item = String>) -> Vec<u8> {
    let mut out = Vec::new();
    for p in payloads {
        out.extend(encode(&[cmd.as_bytes(), ch.as_bytes(), p.as_bytes()]));
    }
    out
}

#[tokio::test]
async fn a_pipeline_reaches_every_kind_of_subscriber_in_order() {
    let s = TestServer::start().await;
    let mut r2 = Raw::connect(s.addr()).await;
    r2.roundtrip(
        &["SUBSCRIBE", "news"],
        &frame(b'*', &[b"subscribe", b"news"], Some(1)),
    )
    .await;
    let mut r3 = Raw::connect(s.addr()).await;
    r3.cmd(&["HELLO", "3"]).await;
    r3.frame().await;
    r3.roundtrip(
        &["SUBSCRIBE", "news"],
        &frame(b'>', &[b"subscribe", b"news"], Some(1)),
    )
    .await;
    let mut pat = Raw::connect(s.addr()).await;
    pat.roundtrip(
        &["PSUBSCRIBE", "n*"],
        &frame(b'*', &[b"psubscribe", b"n*"], Some(1)),
    )
    .await;

    let mut publ = Raw::connect(s.addr()).await;
    let mut pipeline = publishes("PUBLISH", "news", (0..50).map(|i| format!("m{i}")));
    pipeline.extend(encode(&[b"PUBLISH", b"other", b"x"]));
    // Spelt otherwise, still the same command.
    pipeline.extend(publishes(
        "publish",
        "news",
        (50..60).map(|i| format!("m{i}")),
    ));
    publ.send(&pipeline).await;
    let mut want = b":3\r\n".repeat(50);
    want.extend_from_slice(b":0\r\n");
    want.extend(b":3\r\n".repeat(10));
    publ.expect(&want).await;

    for i in 0..60 {
        let p = format!("m{i}");
        r2.expect(&msg2(b"news", p.as_bytes())).await;
        r3.expect(&push3(&[b"message", b"news", p.as_bytes()]))
            .await;
        pat.expect(&frame(
            b'*',
            &[b"pmessage", b"n*", b"news", p.as_bytes()],
            None,
        ))
        .await;
    }
    for c in [&mut r2, &mut r3, &mut pat] {
        c.expect_silence(50).await;
    }
    assert_eq!(info_u64(&mut publ, "pubsub_messages_published").await, 61);
}

#[tokio::test]
async fn a_client_of_several_channels_gets_the_publishers_order() {
    let s = TestServer::start().await;
    let mut sub = Raw::connect(s.addr()).await;
    sub.cmd(&["SUBSCRIBE", "a", "b"]).await;
    sub.expect(&frame(b'*', &[b"subscribe", b"a"], Some(1)))
        .await;
    sub.expect(&frame(b'*', &[b"subscribe", b"b"], Some(2)))
        .await;
    let order: &[(&[u8], &[u8])] = &[
        (b"a", b"1"),
        (b"a", b"2"),
        (b"b", b"3"),
        (b"a", b"4"),
        (b"b", b"5"),
        (b"b", b"6"),
        (b"a", b"7"),
    ];
    let mut publ = Raw::connect(s.addr()).await;
    let mut pipeline = Vec::new();
    for (ch, p) in order {
        pipeline.extend(encode(&[b"PUBLISH", ch, p]));
    }
    publ.send(&pipeline).await;
    publ.expect(&b":1\r\n".repeat(order.len())).await;
    for (ch, p) in order {
        sub.expect(&msg2(ch, p)).await;
    }
}

#[tokio::test]
async fn sharded_pipelines_are_delivered_as_smessages() {
    let s = TestServer::start().await;
    let mut sub = Raw::connect(s.addr()).await;
    sub.roundtrip(
        &["SSUBSCRIBE", "s"],
        &frame(b'*', &[b"ssubscribe", b"s"], Some(1)),
    )
    .await;
    let mut publ = Raw::connect(s.addr()).await;
    publ.send(&publishes("SPUBLISH", "s", (0..20).map(|i| i.to_string())))
        .await;
    publ.expect(&b":1\r\n".repeat(20)).await;
    for i in 0..20 {
        sub.expect(&frame(
            b'*',
            &[b"smessage", b"s", i.to_string().as_bytes()],
            None,
        ))
        .await;
    }
}

#[tokio::test]
async fn a_pipeline_in_a_transaction_is_queued_one_by_one() {
    let s = TestServer::start().await;
    let mut sub = Raw::connect(s.addr()).await;
    sub.roundtrip(
        &["SUBSCRIBE", "t"],
        &frame(b'*', &[b"subscribe", b"t"], Some(1)),
    )
    .await;
    let mut publ = Raw::connect(s.addr()).await;
    let mut pipeline = encode(&[b"MULTI"]);
    pipeline.extend(publishes("PUBLISH", "t", (0..3).map(|i| i.to_string())));
    pipeline.extend(encode(&[b"EXEC"]));
    publ.send(&pipeline).await;
    publ.expect(b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n:1\r\n:1\r\n:1\r\n")
        .await;
    for i in 0..3 {
        sub.expect(&msg2(b"t", i.to_string().as_bytes())).await;
    }
}

#[tokio::test]
async fn client_reply_off_drops_every_reply_of_a_pipeline() {
    let s = TestServer::start().await;
    let mut sub = Raw::connect(s.addr()).await;
    sub.roundtrip(
        &["SUBSCRIBE", "q"],
        &frame(b'*', &[b"subscribe", b"q"], Some(1)),
    )
    .await;
    let mut publ = Raw::connect(s.addr()).await;
    let mut pipeline = encode(&[b"CLIENT", b"REPLY", b"OFF"]);
    pipeline.extend(publishes("PUBLISH", "q", (0..5).map(|i| i.to_string())));
    pipeline.extend(encode(&[b"CLIENT", b"REPLY", b"ON"]));
    publ.send(&pipeline).await;
    publ.expect(b"+OK\r\n").await;
    publ.expect_silence(50).await;
    for i in 0..5 {
        sub.expect(&msg2(b"q", i.to_string().as_bytes())).await;
    }
}

#[tokio::test]
async fn a_denied_pipeline_is_denied_and_counted_request_by_request() {
    let s = TestServer::start().await;
    let mut admin = Raw::connect(s.addr()).await;
    admin
        .roundtrip(
            &["ACL", "SETUSER", "u", "on", ">pw", "+@all", "&open*"],
            b"+OK\r\n",
        )
        .await;
    let mut publ = Raw::connect(s.addr()).await;
    publ.roundtrip(&["AUTH", "u", "pw"], b"+OK\r\n").await;
    publ.send(&publishes(
        "PUBLISH",
        "secret",
        (0..5).map(|i| i.to_string()),
    ))
    .await;
    let denied = b"-NOPERM No permissions to access a channel\r\n";
    publ.expect(&denied.repeat(5)).await;
    assert_eq!(info_u64(&mut admin, "acl_access_denied_channel").await, 5);
    // A permitted channel in the same pipeline as denied ones: each gets its own answer.
    let mut pipeline = publishes("PUBLISH", "open1", (0..2).map(|i| i.to_string()));
    pipeline.extend(publishes(
        "PUBLISH",
        "secret",
        (0..2).map(|i| i.to_string()),
    ));
    publ.send(&pipeline).await;
    let mut want = b":0\r\n:0\r\n".to_vec();
    want.extend(denied.repeat(2));
    publ.expect(&want).await;
}

#[tokio::test]
async fn a_publisher_subscribed_to_its_channel_gets_each_reply_before_its_message() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.cmd(&["HELLO", "3"]).await;
    c.frame().await;
    c.roundtrip(
        &["SUBSCRIBE", "me"],
        &frame(b'>', &[b"subscribe", b"me"], Some(1)),
    )
    .await;
    c.send(&publishes("PUBLISH", "me", (0..4).map(|i| i.to_string())))
        .await;
    for i in 0..4 {
        c.expect(b":1\r\n").await;
        c.expect(&push3(&[b"message", b"me", i.to_string().as_bytes()]))
            .await;
    }
    c.expect_silence(50).await;
}

#[tokio::test]
async fn command_statistics_count_every_request_of_a_run() {
    let s = TestServer::start().await;
    let mut publ = Raw::connect(s.addr()).await;
    publ.send(&publishes(
        "PUBLISH",
        "nobody",
        (0..40).map(|i| i.to_string()),
    ))
    .await;
    publ.expect(&b":0\r\n".repeat(40)).await;
    publ.cmd(&["INFO", "commandstats"]).await;
    let info = crate::support::info::bulk_text(&publ.frame().await);
    assert!(
        info.contains("cmdstat_publish:calls=40,"),
        "INFO commandstats: {info}"
    );
}

#[tokio::test]
async fn a_client_subscribed_twice_gets_each_messages_copies_together() {
    let s = TestServer::start().await;
    let mut sub = Raw::connect(s.addr()).await;
    sub.cmd(&["SUBSCRIBE", "p1"]).await;
    sub.expect(&frame(b'*', &[b"subscribe", b"p1"], Some(1)))
        .await;
    sub.cmd(&["PSUBSCRIBE", "p*", "?1"]).await;
    sub.expect(&frame(b'*', &[b"psubscribe", b"p*"], Some(2)))
        .await;
    sub.expect(&frame(b'*', &[b"psubscribe", b"?1"], Some(3)))
        .await;
    let mut other = Raw::connect(s.addr()).await;
    other
        .roundtrip(
            &["SUBSCRIBE", "p1"],
            &frame(b'*', &[b"subscribe", b"p1"], Some(1)),
        )
        .await;
    let mut publ = Raw::connect(s.addr()).await;
    publ.send(&publishes("PUBLISH", "p1", (0..10).map(|i| i.to_string())))
        .await;
    publ.expect(&b":4\r\n".repeat(10)).await;
    for i in 0..10 {
        let p = i.to_string();
        let p = p.as_bytes();
        sub.expect(&msg2(b"p1", p)).await;
        sub.expect(&frame(b'*', &[b"pmessage", b"p*", b"p1", p], None))
            .await;
        sub.expect(&frame(b'*', &[b"pmessage", b"?1", b"p1", p], None))
            .await;
        other.expect(&msg2(b"p1", p)).await;
    }
}
