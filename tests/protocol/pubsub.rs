//! Pub/sub behaviour over real TCP, asserted as exact bytes (RESP2 and RESP3).

use crate::support::resp::{frame, push3};
use crate::support::{Raw, TestServer};

fn conf2(kind: &str, ch: &str, n: i64) -> Vec<u8> {
    frame(b'*', &[kind.as_bytes(), ch.as_bytes()], Some(n))
}

fn msg2(ch: &[u8], payload: &[u8]) -> Vec<u8> {
    frame(b'*', &[b"message", ch, payload], None)
}

#[tokio::test]
async fn subscribe_confirms_each_channel_with_running_count() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.cmd(&["SUBSCRIBE", "a", "b", "a"]).await;
    c.expect(&conf2("subscribe", "a", 1)).await;
    c.expect(&conf2("subscribe", "b", 2)).await;
    c.expect(&conf2("subscribe", "a", 2)).await;
    c.cmd(&["PSUBSCRIBE", "p*"]).await;
    c.expect(&conf2("psubscribe", "p*", 3)).await;
    // Shard channels are counted on their own.
    c.cmd(&["SSUBSCRIBE", "s1"]).await;
    c.expect(&conf2("ssubscribe", "s1", 1)).await;
}

#[tokio::test]
async fn publish_counts_channel_and_pattern_match_twice() {
    let s = TestServer::start().await;
    let mut sub = Raw::connect(s.addr()).await;
    sub.cmd(&["SUBSCRIBE", "news"]).await;
    sub.expect(&conf2("subscribe", "news", 1)).await;
    sub.cmd(&["PSUBSCRIBE", "n*"]).await;
    sub.expect(&conf2("psubscribe", "n*", 2)).await;
    let mut publ = Raw::connect(s.addr()).await;
    publ.roundtrip(&["PUBLISH", "news", "hi"], b":2\r\n").await;
    // Channel subscribers first, then pattern subscribers.
    sub.expect(&msg2(b"news", b"hi")).await;
    sub.expect(&frame(b'*', &[b"pmessage", b"n*", b"news", b"hi"], None))
        .await;
    publ.roundtrip(&["PUBLISH", "nobody", "x"], b":1\r\n").await;
    publ.roundtrip(&["PUBLISH", "zzz", "x"], b":0\r\n").await;
}

#[tokio::test]
async fn unsubscribe_without_arguments_when_nothing_subscribed_replies_once_with_null() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(
        &["UNSUBSCRIBE"],
        b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n",
    )
    .await;
    c.roundtrip(
        &["PUNSUBSCRIBE"],
        b"*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n",
    )
    .await;
    c.roundtrip(
        &["SUNSUBSCRIBE"],
        b"*3\r\n$12\r\nsunsubscribe\r\n$-1\r\n:0\r\n",
    )
    .await;
    c.roundtrip(&["HELLO", "3"], b"").await;
    let _hello = c.frame().await;
    c.roundtrip(&["UNSUBSCRIBE"], b">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n")
        .await;
}

#[tokio::test]
async fn unsubscribe_without_arguments_leaves_every_channel_in_order() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.cmd(&["SUBSCRIBE", "a", "b"]).await;
    c.cmd(&["PSUBSCRIBE", "x*"]).await;
    c.expect(&conf2("subscribe", "a", 1)).await;
    c.expect(&conf2("subscribe", "b", 2)).await;
    c.expect(&conf2("psubscribe", "x*", 3)).await;
    c.cmd(&["UNSUBSCRIBE"]).await;
    c.expect(&conf2("unsubscribe", "a", 2)).await;
    c.expect(&conf2("unsubscribe", "b", 1)).await;
    c.cmd(&["UNSUBSCRIBE", "never"]).await;
    c.expect(&conf2("unsubscribe", "never", 1)).await;
    c.cmd(&["PUNSUBSCRIBE"]).await;
    c.expect(&conf2("punsubscribe", "x*", 0)).await;
    // Out of subscribe mode: a normal command works again.
    c.roundtrip(&["PING"], b"+PONG\r\n").await;
}

#[tokio::test]
async fn ping_in_resp2_subscribe_mode_answers_like_a_message() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.cmd(&["SUBSCRIBE", "a"]).await;
    c.expect(&conf2("subscribe", "a", 1)).await;
    c.roundtrip(&["PING"], b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        .await;
    c.roundtrip(
        &["PING", "redis-py-health-check"],
        b"*2\r\n$4\r\npong\r\n$21\r\nredis-py-health-check\r\n",
    )
    .await;
}

#[tokio::test]
async fn resp2_subscribe_context_rejects_other_commands() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.cmd(&["SSUBSCRIBE", "a"]).await;
    c.expect(&conf2("ssubscribe", "a", 1)).await;
    c.roundtrip(
        &["PUBLISH", "a", "b"],
        b"-ERR Can't execute 'publish': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    )
    .await;
    c.roundtrip(
        &["CLIENT", "ID"],
        b"-ERR Can't execute 'client|id': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    )
    .await;
    c.roundtrip(&["RESET"], b"+RESET\r\n").await;
    c.roundtrip(&["PUBLISH", "a", "b"], b":0\r\n").await;
}

#[tokio::test]
async fn resp3_subscribed_client_may_run_any_command_and_gets_push_frames() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.cmd(&["HELLO", "3"]).await;
    let hello = c.frame().await;
    assert!(hello.starts_with(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"));
    c.cmd(&["SUBSCRIBE", "a"]).await;
    c.expect(b">3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n")
        .await;
    c.roundtrip(&["PING"], b"+PONG\r\n").await;
    c.roundtrip(&["PING", "x"], b"$1\r\nx\r\n").await;
    // Redis 7.2: the count first, then the message to the publisher itself.
    c.roundtrip(&["PUBLISH", "a", "self"], b":1\r\n").await;
    c.expect(b">3\r\n$7\r\nmessage\r\n$1\r\na\r\n$4\r\nself\r\n")
        .await;
    c.roundtrip(&["ECHO", "e"], b"$1\r\ne\r\n").await;
}

#[tokio::test]
async fn mixed_protocols_receive_their_own_encoding_of_one_publish() {
    let s = TestServer::start().await;
    let mut r2 = Raw::connect(s.addr()).await;
    let mut r3 = Raw::connect(s.addr()).await;
    r3.cmd(&["HELLO", "3"]).await;
    r3.frame().await;
    for c in [&mut r2, &mut r3] {
        c.cmd(&["SUBSCRIBE", "ch"]).await;
        c.frame().await;
    }
    let mut p = Raw::connect(s.addr()).await;
    p.roundtrip(&["PUBLISH", "ch", "m"], b":2\r\n").await;
    r2.expect(b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n")
        .await;
    r3.expect(b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n")
        .await;
}

#[tokio::test]
async fn shard_channels_are_a_separate_namespace() {
    let s = TestServer::start().await;
    let mut sub = Raw::connect(s.addr()).await;
    sub.cmd(&["SSUBSCRIBE", "x"]).await;
    sub.expect(&conf2("ssubscribe", "x", 1)).await;
    let mut p = Raw::connect(s.addr()).await;
    p.roundtrip(&["PUBLISH", "x", "global"], b":0\r\n").await;
    p.roundtrip(&["SPUBLISH", "x", "shard"], b":1\r\n").await;
    sub.expect(&frame(b'*', &[b"smessage", b"x", b"shard"], None))
        .await;
    p.roundtrip(&["PUBSUB", "CHANNELS"], b"*0\r\n").await;
    p.roundtrip(&["PUBSUB", "SHARDCHANNELS"], b"*1\r\n$1\r\nx\r\n")
        .await;
    p.roundtrip(
        &["PUBSUB", "SHARDNUMSUB", "x", "y"],
        b"*4\r\n$1\r\nx\r\n:1\r\n$1\r\ny\r\n:0\r\n",
    )
    .await;
    // Patterns never see shard messages.
    let mut ps = Raw::connect(s.addr()).await;
    ps.cmd(&["PSUBSCRIBE", "*"]).await;
    ps.frame().await;
    p.roundtrip(&["SPUBLISH", "x", "again"], b":1\r\n").await;
    ps.expect_silence(100).await;
}

#[tokio::test]
async fn pubsub_introspection() {
    let s = TestServer::start().await;
    let mut a = Raw::connect(s.addr()).await;
    let mut b = Raw::connect(s.addr()).await;
    a.cmd(&["SUBSCRIBE", "news.1", "other"]).await;
    a.frame().await;
    a.frame().await;
    b.cmd(&["SUBSCRIBE", "news.1"]).await;
    b.frame().await;
    for c in [&mut a, &mut b] {
        c.cmd(&["PSUBSCRIBE", "news.*"]).await;
        c.frame().await;
    }
    let mut q = Raw::connect(s.addr()).await;
    q.roundtrip(
        &["PUBSUB", "NUMSUB", "news.1", "other", "none"],
        b"*6\r\n$6\r\nnews.1\r\n:2\r\n$5\r\nother\r\n:1\r\n$4\r\nnone\r\n:0\r\n",
    )
    .await;
    q.roundtrip(&["PUBSUB", "NUMSUB"], b"*0\r\n").await;
    // Patterns are counted once however many clients use them.
    q.roundtrip(&["PUBSUB", "NUMPAT"], b":1\r\n").await;
    q.roundtrip(&["PUBSUB", "CHANNELS", "news.*"], b"*1\r\n$6\r\nnews.1\r\n")
        .await;
    q.roundtrip(
        &["PUBSUB", "CHANNELS", "a", "b"],
        b"-ERR unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP.\r\n",
    )
    .await;
    q.roundtrip(
        &["PUBSUB", "FOO"],
        b"-ERR unknown subcommand 'FOO'. Try PUBSUB HELP.\r\n",
    )
    .await;
    q.roundtrip(
        &["PUBSUB"],
        b"-ERR wrong number of arguments for 'pubsub' command\r\n",
    )
    .await;
    q.cmd(&["PUBSUB", "HELP"]).await;
    let help = q.frame().await;
    assert!(help.starts_with(b"*14\r\n+PUBSUB <subcommand>"));
    // NUMSUB stays a flat array in RESP3, as clients expect.
    q.cmd(&["HELLO", "3"]).await;
    q.frame().await;
    q.roundtrip(
        &["PUBSUB", "NUMSUB", "other"],
        b"*2\r\n$5\r\nother\r\n:1\r\n",
    )
    .await;
}

#[tokio::test]
async fn channels_disappear_with_their_last_subscriber_and_on_disconnect() {
    let s = TestServer::start().await;
    let mut q = Raw::connect(s.addr()).await;
    {
        let mut a = Raw::connect(s.addr()).await;
        a.cmd(&["SUBSCRIBE", "gone"]).await;
        a.frame().await;
        a.cmd(&["PSUBSCRIBE", "g*"]).await;
        a.frame().await;
        q.roundtrip(&["PUBSUB", "NUMSUB", "gone"], b"*2\r\n$4\r\ngone\r\n:1\r\n")
            .await;
    }
    // The close is seen asynchronously; poll briefly until the server notices it.
    for _ in 0..100 {
        q.cmd(&["PUBLISH", "gone", "x"]).await;
        if q.frame().await == b":0\r\n" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    q.roundtrip(&["PUBSUB", "CHANNELS"], b"*0\r\n").await;
    q.roundtrip(&["PUBSUB", "NUMPAT"], b":0\r\n").await;
}

#[tokio::test]
async fn binary_channels_and_payloads_are_delivered_byte_for_byte() {
    let s = TestServer::start().await;
    let mut sub = Raw::connect(s.addr()).await;
    let ch: &[u8] = b"c\x00h\r\n\xff";
    sub.cmd_bytes(&[b"SUBSCRIBE", ch]).await;
    sub.expect(&frame(b'*', &[b"subscribe", ch], Some(1))).await;
    let mut p = Raw::connect(s.addr()).await;
    for payload in [&b""[..], b"\x00", b"\r\n", b"\xc3\x28\xff"] {
        p.cmd_bytes(&[b"PUBLISH", ch, payload]).await;
        p.expect(b":1\r\n").await;
        sub.expect(&msg2(ch, payload)).await;
    }
}

#[tokio::test]
async fn payload_of_many_mebibytes_is_delivered_whole() {
    let s = TestServer::start().await;
    let mut sub = Raw::connect(s.addr()).await;
    sub.cmd(&["SUBSCRIBE", "big"]).await;
    sub.frame().await;
    let payload: Vec<u8> = (0..6 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut p = Raw::connect(s.addr()).await;
    p.cmd_bytes(&[b"PUBLISH", b"big", &payload]).await;
    p.expect(b":1\r\n").await;
    sub.expect(&msg2(b"big", &payload)).await;
}

#[tokio::test]
async fn subscription_is_visible_to_others_once_confirmed() {
    let s = TestServer::start().await;
    let mut p = Raw::connect(s.addr()).await;
    for i in 0..50 {
        let ch = format!("vis{i}");
        let mut sub = Raw::connect(s.addr()).await;
        sub.cmd(&["SUBSCRIBE", &ch]).await;
        sub.expect(&conf2("subscribe", &ch, 1)).await;
        p.roundtrip(&["PUBLISH", &ch, "x"], b":1\r\n").await;
        sub.cmd(&["UNSUBSCRIBE", &ch]).await;
        sub.expect(&msg2(ch.as_bytes(), b"x")).await;
        sub.expect(&conf2("unsubscribe", &ch, 0)).await;
        p.roundtrip(&["PUBLISH", &ch, "y"], b":0\r\n").await;
    }
}

#[tokio::test]
async fn reset_leaves_every_subscription() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.cmd(&["SUBSCRIBE", "a"]).await;
    c.frame().await;
    c.cmd(&["PSUBSCRIBE", "b*"]).await;
    c.frame().await;
    c.cmd(&["SSUBSCRIBE", "c"]).await;
    c.frame().await;
    c.roundtrip(&["RESET"], b"+RESET\r\n").await;
    let mut p = Raw::connect(s.addr()).await;
    p.roundtrip(&["PUBLISH", "a", "x"], b":0\r\n").await;
    p.roundtrip(&["PUBLISH", "bb", "x"], b":0\r\n").await;
    p.roundtrip(&["SPUBLISH", "c", "x"], b":0\r\n").await;
    c.expect_silence(50).await;
}

#[tokio::test]
async fn subscribe_inside_multi_is_allowed_but_ssubscribe_is_not() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.send(b"MULTI\r\nSUBSCRIBE x\r\nSSUBSCRIBE y\r\nPUBLISH x 1\r\nEXEC\r\n")
        .await;
    c.expect(b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n")
        .await;
    c.expect(&conf2("subscribe", "x", 1)).await;
    c.expect(b"-ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client\r\n")
        .await;
    // Redis 7.2 writes the client's own message after the whole EXEC reply (7.0 wrote it
    // inside the array, before the count).
    c.expect(b":1\r\n").await;
    c.expect(&msg2(b"x", b"1")).await;
}

#[tokio::test]
async fn pattern_matching_follows_redis_glob() {
    let s = TestServer::start().await;
    let mut sub = Raw::connect(s.addr()).await;
    for (i, p) in ["h?llo", "h[^e]llo", "h[a-b]llo", "h\\*llo", "[z-a]x"]
        .iter()
        .enumerate()
    {
        sub.cmd(&["PSUBSCRIBE", p]).await;
        sub.expect(&conf2("psubscribe", p, i as i64 + 1)).await;
    }
    let mut p = Raw::connect(s.addr()).await;
    for (ch, n) in [
        ("hello", 1),
        ("hallo", 3),
        ("hxllo", 2),
        ("h*llo", 3),
        ("hllo", 0),
        ("mx", 1),
    ] {
        p.roundtrip(&["PUBLISH", ch, "m"], format!(":{n}\r\n").as_bytes())
            .await;
        for _ in 0..n {
            sub.frame().await;
        }
    }
}

/// Redis 7.2 ("publish to self inside multi"): messages a transaction delivers to the client
/// running it are written after the whole EXEC reply, in delivery order.
#[tokio::test]
async fn resp3_messages_to_self_follow_the_exec_reply() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.cmd(&["HELLO", "3"]).await;
    c.frame().await;
    c.roundtrip(
        &["SUBSCRIBE", "foo"],
        &frame(b'>', &[b"subscribe", b"foo"], Some(1)),
    )
    .await;
    c.send(b"MULTI\r\nPING abc\r\nPUBLISH foo bar\r\nPUBLISH foo vaz\r\nPING def\r\nEXEC\r\n")
        .await;
    c.expect(b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n")
        .await;
    c.expect(b"*4\r\n$3\r\nabc\r\n:1\r\n:1\r\n$3\r\ndef\r\n")
        .await;
    c.expect(&push3(&[b"message", b"foo", b"bar"])).await;
    c.expect(&push3(&[b"message", b"foo", b"vaz"])).await;
    // A subscribe confirmation is the command's own reply: it stays inside the array.
    c.send(b"MULTI\r\nPSUBSCRIBE p*\r\nPUBLISH pq 1\r\nEXEC\r\n")
        .await;
    c.expect(b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n").await;
    c.expect(&frame(b'>', &[b"psubscribe", b"p*"], Some(2)))
        .await;
    c.expect(b":1\r\n").await;
    c.expect(&frame(b'>', &[b"pmessage", b"p*", b"pq", b"1"], None))
        .await;
    c.expect_silence(50).await;
}

/// Redis 7.2 ("unsubscribe inside multi, and publish to self"): the unsubscribe confirmation
/// stays in the EXEC array; outside MULTI, PUBLISH's count comes before the message the
/// publisher receives itself, then the pattern message.
#[tokio::test]
async fn resp3_publish_to_self_replies_before_the_message() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.cmd(&["HELLO", "3"]).await;
    c.frame().await;
    c.cmd(&["SUBSCRIBE", "foo", "bar"]).await;
    c.expect(&frame(b'>', &[b"subscribe", b"foo"], Some(1)))
        .await;
    c.expect(&frame(b'>', &[b"subscribe", b"bar"], Some(2)))
        .await;
    c.send(b"MULTI\r\nPING abc\r\nUNSUBSCRIBE bar\r\nPUBLISH foo bar\r\nEXEC\r\n")
        .await;
    c.expect(b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n$3\r\nabc\r\n")
        .await;
    c.expect(&frame(b'>', &[b"unsubscribe", b"bar"], Some(1)))
        .await;
    c.expect(b":1\r\n").await;
    c.expect(&push3(&[b"message", b"foo", b"bar"])).await;
    c.roundtrip(&["PUBLISH", "foo", "vaz"], b":1\r\n").await;
    c.expect(&push3(&[b"message", b"foo", b"vaz"])).await;
    c.roundtrip(
        &["PSUBSCRIBE", "f*"],
        &frame(b'>', &[b"psubscribe", b"f*"], Some(2)),
    )
    .await;
    // Pipelined: the count, both messages, then the next command's reply.
    c.send(b"PUBLISH foo two\r\nPING\r\n").await;
    c.expect(b":2\r\n").await;
    c.expect(&push3(&[b"message", b"foo", b"two"])).await;
    c.expect(&frame(b'>', &[b"pmessage", b"f*", b"foo", b"two"], None))
        .await;
    c.expect(b"+PONG\r\n").await;
    c.roundtrip(
        &["SSUBSCRIBE", "sf"],
        &frame(b'>', &[b"ssubscribe", b"sf"], Some(1)),
    )
    .await;
    c.roundtrip(&["SPUBLISH", "sf", "x"], b":1\r\n").await;
    c.expect(&push3(&[b"smessage", b"sf", b"x"])).await;
    c.expect_silence(50).await;
}

/// Messages another client publishes while a client holds its own stay behind them, so every
/// subscriber sees the same order.
#[tokio::test]
async fn messages_held_for_the_publisher_keep_the_channel_order() {
    let s = TestServer::start().await;
    let mut a = Raw::connect(s.addr()).await;
    a.cmd(&["HELLO", "3"]).await;
    a.frame().await;
    a.roundtrip(
        &["SUBSCRIBE", "ch"],
        &frame(b'>', &[b"subscribe", b"ch"], Some(1)),
    )
    .await;
    let mut b = Raw::connect(s.addr()).await;
    let mut pipeline = Vec::new();
    for i in 0..200 {
        pipeline.extend_from_slice(format!("PUBLISH ch b{i}\r\n").as_bytes());
    }
    b.send(&pipeline).await;
    a.send(b"PUBLISH ch a\r\n").await;
    let mut got = Vec::new();
    let mut replies = 0;
    while got.len() < 201 || replies < 1 {
        let f = a.frame().await;
        if f == b":1\r\n" {
            replies += 1;
            assert!(!got.contains(&"a".to_string()), "reply before own message");
            continue;
        }
        let text = String::from_utf8(f).unwrap();
        got.push(text.rsplit("\r\n").nth(1).unwrap().to_string());
    }
    let bs: Vec<_> = got.iter().filter(|m| m.starts_with('b')).cloned().collect();
    let want: Vec<_> = (0..200).map(|i| format!("b{i}")).collect();
    assert_eq!(bs, want);
}
