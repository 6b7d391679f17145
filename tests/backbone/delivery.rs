//! Scale-out over NATS, with real processes: messages published on one pubsubd node reach the
//! subscribers of every other node once, in the publishing node's order, whatever the channel
//! name or payload size; and only nodes with subscribers receive anything (nats-server's
//! monitoring endpoint is the witness).

use pubsubd::registry::Namespace;

use crate::support::nats::{message, pmessage, wait_interest, wait_until, Nats, Node};
use crate::support::resp::push3;
use crate::support::{self, nats, process};

/// Reads as many frames as `want` holds and checks they are those, in any order.
async fn expect_any_order(c: &mut support::Raw, mut want: Vec<Vec<u8>>) {
    for _ in 0..want.len() {
        let f = c.frame().await;
        let i = want
            .iter()
            .position(|w| *w == f)
            .unwrap_or_else(|| panic!("unexpected {}", support::show(&f)));
        want.remove(i);
    }
}

/// Three nodes on one nats-server.
async fn three_nodes(nats: &Nats) -> (Node, Node, Node) {
    let url = nats.url();
    (
        Node::connected(&url, &[]).await,
        Node::connected(&url, &[]).await,
        Node::connected(&url, &[]).await,
    )
}

#[tokio::test]
async fn subscribe_psubscribe_and_ssubscribe_receive_from_other_nodes_once() {
    let nats = Nats::start(&[]).await;
    let (a, b, c) = three_nodes(&nats).await;

    // A: RESP2, a channel, a narrow pattern (news.>) and a shard channel.
    let mut sa = a.client().await;
    sa.cmd(&["SUBSCRIBE", "news.sports"]).await;
    sa.expect(b"*3\r\n$9\r\nsubscribe\r\n$11\r\nnews.sports\r\n:1\r\n")
        .await;
    sa.cmd(&["PSUBSCRIBE", "news.*"]).await;
    sa.expect(b"*3\r\n$10\r\npsubscribe\r\n$6\r\nnews.*\r\n:2\r\n")
        .await;
    sa.cmd(&["SSUBSCRIBE", "orders{1}"]).await;
    sa.expect(b"*3\r\n$10\r\nssubscribe\r\n$9\r\norders{1}\r\n:1\r\n")
        .await;
    // B: RESP3, the channel and a broad pattern (every global message).
    let mut sb = b.client().await;
    sb.cmd(&["HELLO", "3"]).await;
    sb.frame().await;
    sb.cmd(&["SUBSCRIBE", "news.sports"]).await;
    sb.expect(b">3\r\n$9\r\nsubscribe\r\n$11\r\nnews.sports\r\n:1\r\n")
        .await;
    sb.cmd(&["PSUBSCRIBE", "n?ws*"]).await;
    sb.expect(b">3\r\n$10\r\npsubscribe\r\n$5\r\nn?ws*\r\n:2\r\n")
        .await;
    sb.cmd(&["SSUBSCRIBE", "orders{1}"]).await;
    sb.expect(b">3\r\n$10\r\nssubscribe\r\n$9\r\norders{1}\r\n:1\r\n")
        .await;

    // A holds news.sports and news.>, B news.sports and the broad pubsubd.g.>.
    wait_interest(&nats, Namespace::Global, b"news.sports", 4).await;
    wait_interest(&nats, Namespace::Shard, b"orders{1}", 2).await;

    let mut pc = c.client().await;
    for i in 0..2 {
        let payload = format!("m{i}");
        // PUBLISH counts this node's receivers only, as Redis Cluster does.
        pc.roundtrip(&["PUBLISH", "news.sports", &payload], b":0\r\n")
            .await;
        let p = payload.as_bytes();
        sa.expect(&message(b"message", b"news.sports", p)).await;
        sa.expect(&pmessage(b"news.*", b"news.sports", p)).await;
        sb.expect(&push3(&[b"message", b"news.sports", p])).await;
        sb.expect(&push3(&[b"pmessage", b"n?ws*", b"news.sports", p]))
            .await;
    }
    // Shard and global namespaces stay apart: a SPUBLISH reaches shard subscribers only.
    pc.roundtrip(&["SPUBLISH", "orders{1}", "s1"], b":0\r\n")
        .await;
    pc.roundtrip(&["PUBLISH", "news.weather", "w1"], b":0\r\n")
        .await;
    // Two channels, two NATS subscriptions: their relative order may differ (see the README).
    expect_any_order(
        &mut sa,
        vec![
            message(b"smessage", b"orders{1}", b"s1"),
            pmessage(b"news.*", b"news.weather", b"w1"),
        ],
    )
    .await;
    expect_any_order(
        &mut sb,
        vec![
            push3(&[b"smessage", b"orders{1}", b"s1"]),
            push3(&[b"pmessage", b"n?ws*", b"news.weather", b"w1"]),
        ],
    )
    .await;
    // Nothing else arrives: each message matched two NATS subscriptions on A and on B, and the
    // second copy was suppressed there (counted), not delivered.
    sa.roundtrip(&["PING"], b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        .await;
    sb.roundtrip(&["PING"], b"+PONG\r\n").await;
    for n in [&a, &b] {
        wait_until("the second copies of m0 and m1 are counted", || async {
            n.counter("backbone_duplicates").await == 2
        })
        .await;
    }
    // PUBSUB reports each node's own subscribers.
    pc.roundtrip(
        &["PUBSUB", "NUMSUB", "news.sports"],
        b"*2\r\n$11\r\nnews.sports\r\n:0\r\n",
    )
    .await;
    let mut qa = a.client().await;
    qa.roundtrip(
        &["PUBSUB", "NUMSUB", "news.sports"],
        b"*2\r\n$11\r\nnews.sports\r\n:1\r\n",
    )
    .await;
    qa.roundtrip(&["PUBLISH", "news.sports", "local"], b":2\r\n")
        .await;
}

#[tokio::test]
async fn awkward_channel_names_and_binary_payloads_cross_nodes() {
    let nats = Nats::start(&[]).await;
    let url = nats.url();
    let (a, b) = (
        Node::connected(&url, &[]).await,
        Node::connected(&url, &[]).await,
    );
    let mut long = b"news.".to_vec();
    long.extend((0..64 * 1024).map(|i| b"ab .*>\r\n\0\xff"[i % 10]));
    let mut longer = vec![b'x'; 100 * 1024];
    longer.extend(b".tail");
    let channels: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b" ".to_vec(),
        b"a b".to_vec(),
        b"*".to_vec(),
        b">".to_vec(),
        b".".to_vec(),
        b"..".to_vec(),
        b".lead".to_vec(),
        b"trail.".to_vec(),
        b"\r\n".to_vec(),
        b"\0".to_vec(),
        b"\xff\xfe\x80".to_vec(),
        "caf\u{e9}.\u{2603}".as_bytes().to_vec(),
        b"~7E".to_vec(),
        long.clone(),
        longer,
    ];
    let mut sa = a.client().await;
    for (i, ch) in channels.iter().enumerate() {
        sa.cmd_bytes(&[b"SUBSCRIBE", ch]).await;
        let mut want = support::encode(&[b"subscribe", ch]);
        want[1] = b'3';
        want.extend(format!(":{}\r\n", i + 1).as_bytes());
        sa.expect(&want).await;
    }
    // A narrow pattern still sees a 64 KiB name under it (its subject is hashed but keeps the
    // leading `news` token).
    let mut pa = a.client().await;
    pa.cmd(&["PSUBSCRIBE", "news.*"]).await;
    pa.frame().await;
    for ch in &channels {
        wait_interest(&nats, Namespace::Global, ch, 1).await;
    }
    wait_interest(&nats, Namespace::Global, &long, 2).await;

    let binary: Vec<u8> = (0..=255u8).collect();
    let mut pb = b.client().await;
    for ch in &channels {
        for payload in [&b""[..], &binary, b"\r\n$5\r\nhello\r\n"] {
            pb.cmd_bytes(&[b"PUBLISH", ch, payload]).await;
            pb.expect(b":0\r\n").await;
            sa.expect(&message(b"message", ch, payload)).await;
            if ch == &long {
                pa.expect(&pmessage(b"news.*", ch, payload)).await;
            }
        }
    }
    sa.roundtrip(&["PING"], b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        .await;
    pa.roundtrip(&["PING"], b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        .await;
}

#[tokio::test]
async fn payloads_of_1_and_10_mib_arrive_whole_and_in_order() {
    // A default nats-server: max_payload 1 MiB, so both are split and joined again.
    let nats = Nats::start(&[]).await;
    let url = nats.url();
    let (a, b) = (
        Node::connected(&url, &[]).await,
        Node::connected(&url, &[]).await,
    );
    let mut sa = a.client().await;
    sa.cmd(&["SUBSCRIBE", "big"]).await;
    sa.frame().await;
    wait_interest(&nats, Namespace::Global, b"big", 1).await;
    let mut pb = b.client().await;
    let sizes = [1 << 20, 10 << 20, 5, (1 << 20) - 10];
    let payloads: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(k, &n)| (0..n).map(|i| (i * 31 + k * 7 + i / 251) as u8).collect())
        .collect();
    for p in &payloads {
        pb.cmd_bytes(&[b"PUBLISH", b"big", p]).await;
        pb.expect(b":0\r\n").await;
    }
    for p in &payloads {
        let f = sa.frame().await;
        assert!(
            f == message(b"message", b"big", p),
            "frame of {} bytes",
            f.len()
        );
    }
    // 11 MiB and more went out as chunks of at most 1 MiB.
    assert!(b.counter("backbone_messages_out").await >= 13);
    assert_eq!(a.counter("backbone_partial_bytes").await, 0);
}

#[tokio::test]
async fn one_nodes_messages_arrive_in_its_order() {
    let nats = Nats::start(&[]).await;
    let url = nats.url();
    let (a, b) = (
        Node::connected(&url, &[]).await,
        Node::connected(&url, &[]).await,
    );
    let mut sa = a.client().await;
    sa.cmd(&["SUBSCRIBE", "seq"]).await;
    sa.frame().await;
    let mut pa = a.client().await;
    pa.cmd(&["PSUBSCRIBE", "s*"]).await;
    pa.frame().await;
    wait_interest(&nats, Namespace::Global, b"seq", 2).await;
    // Three publisher connections on B, pipelined: B's order is what its registry saw; each
    // connection's messages keep their order everywhere, with every message exactly once.
    let n = 1500;
    let mut pubs = Vec::new();
    for k in 0..3 {
        let mut p = b.client().await;
        let mut batch = Vec::new();
        for i in 0..n {
            batch.extend(support::encode(&[
                b"PUBLISH",
                b"seq",
                format!("{k}:{i}").as_bytes(),
            ]));
        }
        p.send(&batch).await;
        pubs.push(p);
    }
    for c in [&mut sa, &mut pa] {
        let mut next = [0usize; 3];
        for _ in 0..3 * n {
            let f = String::from_utf8_lossy(&c.frame().await).into_owned();
            let body = f.rsplit("\r\n").nth(1).unwrap().to_string();
            let (k, i) = body.split_once(':').unwrap();
            let (k, i): (usize, usize) = (k.parse().unwrap(), i.parse().unwrap());
            assert_eq!(i, next[k], "publisher {k} out of order");
            next[k] += 1;
        }
    }
    sa.roundtrip(&["PING"], b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        .await;
}

#[tokio::test]
async fn only_nodes_with_subscribers_receive_backbone_messages() {
    let nats = Nats::start(&[]).await;
    let (a, b, c) = three_nodes(&nats).await;
    let (ida, idb, idc) = (a.node_id().await, b.node_id().await, c.node_id().await);
    // Two subscribers of one channel on A: one NATS subscription.
    let mut s1 = a.client().await;
    let mut s2 = a.client().await;
    for s in [&mut s1, &mut s2] {
        s.cmd(&["SUBSCRIBE", "orders.1"]).await;
        s.frame().await;
    }
    wait_interest(&nats, Namespace::Global, b"orders.1", 1).await;
    assert_eq!(
        nats.interest(&nats::subject(Namespace::Global, b"orders.1"))
            .await,
        1
    );
    let mut pb = b.client().await;
    let mut batch = Vec::new();
    for i in 0..100 {
        batch.extend(support::encode(&[
            b"PUBLISH",
            b"orders.1",
            format!("{i}").as_bytes(),
        ]));
        batch.extend(support::encode(&[b"PUBLISH", b"orders.2", b"nobody"]));
    }
    pb.send(&batch).await;
    for _ in 0..200 {
        pb.expect(b":0\r\n").await;
    }
    for i in 0..100 {
        let p = format!("{i}");
        s1.expect(&message(b"message", b"orders.1", p.as_bytes()))
            .await;
        s2.expect(&message(b"message", b"orders.1", p.as_bytes()))
            .await;
    }
    // nats-server's own count: one message per publish to A, none to B or C.
    wait_until("NATS sent A its 100 messages", || async {
        nats.out_msgs(&ida).await == Some(100)
    })
    .await;
    assert_eq!(nats.out_msgs(&idb).await, Some(0));
    assert_eq!(nats.out_msgs(&idc).await, Some(0));
    assert_eq!(c.counter("backbone_messages_in").await, 0);
    assert_eq!(a.counter("backbone_messages_in").await, 100);
    assert_eq!(a.counter("backbone_subjects").await, 1);
    // The NATS subscription goes with the last local subscriber.
    s1.cmd(&["UNSUBSCRIBE"]).await;
    s1.frame().await;
    assert_eq!(a.counter("backbone_subjects").await, 1);
    s2.cmd(&["UNSUBSCRIBE"]).await;
    s2.frame().await;
    let s = nats::subject(Namespace::Global, b"orders.1");
    wait_until("A's interest is gone from NATS", || async {
        nats.interest(&s).await == 0
    })
    .await;
    assert_eq!(a.counter("backbone_subjects").await, 0);
}

#[tokio::test]
async fn info_and_metrics_show_the_backbone() {
    let nats = Nats::start(&[]).await;
    let mport = process::free_port().to_string();
    let a = Node::connected(&nats.url(), &["--metrics-port", &mport]).await;
    let info = a.info().await;
    assert_eq!(info["backbone_status"], "connected");
    assert_eq!(info["backbone_server"], format!("127.0.0.1:{}", nats.port));
    assert_eq!(info["backbone_prefix"], "pubsubd");
    assert_eq!(info["backbone_reconnects"], "0");
    let mut c = a.client().await;
    c.cmd(&["CONFIG", "GET", "backbone*"]).await;
    let f = String::from_utf8_lossy(&c.frame().await).into_owned();
    assert!(
        f.contains(&format!(
            "$8\r\nbackbone\r\n${}\r\n{}\r\n",
            nats.url().len(),
            nats.url()
        )),
        "{f}"
    );
    assert!(f.contains("backbone-prefix\r\n$7\r\npubsubd\r\n"), "{f}");
    // The default INFO lists the section too when a backbone is configured.
    c.cmd(&["INFO"]).await;
    let f = String::from_utf8_lossy(&c.frame().await).into_owned();
    assert!(
        f.contains("# Backbone\r\nbackbone_status:connected\r\n"),
        "{f}"
    );
    let port: u16 = mport.parse().unwrap();
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await.unwrap();
    let mut body = String::new();
    tokio::time::timeout(support::TIMEOUT, s.read_to_string(&mut body))
        .await
        .unwrap()
        .unwrap();
    assert!(body.contains("\npubsubd_backbone_connected 1\n"), "{body}");
    assert!(body.contains("\npubsubd_backbone_dropped_out_total 0\n"));
    assert!(body.contains("pubsubd_backbone_info{status=\"connected\""));
}

/// The control API other subsystems (cluster membership) use: bytes published on a control
/// name by one node reach the subscribers of every other node, in order, never the sender.
#[tokio::test]
async fn control_messages_reach_the_other_nodes_and_not_the_sender() {
    use pubsubd::backbone::Status;
    use pubsubd::config::{Config, Secret};
    use pubsubd::state::ServerState;
    use tokio_util::sync::CancellationToken;
    use tokio_util::task::TaskTracker;

    let nats = Nats::start(&[]).await;
    let tracker = TaskTracker::new();
    let node = || {
        let mut cfg = Config::default();
        cfg.backbone.urls = Secret(nats.url());
        let s = ServerState::new(
            cfg,
            pubsubd::commands::catalogue(),
            CancellationToken::new(),
        );
        tracker.spawn(pubsubd::backbone::run(
            s.backbone.clone().unwrap(),
            s.clone(),
            s.flush.clone(),
            tracker.clone(),
        ));
        s
    };
    let (a, b) = (node(), node());
    let (ba, bb) = (a.backbone.clone().unwrap(), b.backbone.clone().unwrap());
    wait_until("both backbones are connected", || async {
        ba.status() == Status::Connected && bb.status() == Status::Connected
    })
    .await;
    let mut on_a = ba.subscribe_control("members.>").unwrap();
    let mut on_b = bb.subscribe_control("members.>").unwrap();
    wait_until("both control subscriptions reached NATS", || async {
        nats.interest("pubsubd.c.members.join").await == 2
    })
    .await;
    for i in 0..100u32 {
        ba.publish_control("members.join", bytes::Bytes::from(i.to_be_bytes().to_vec()))
            .unwrap();
    }
    bb.publish_control("members.leave", bytes::Bytes::from_static(b"b"))
        .unwrap();
    for i in 0..100u32 {
        let m = tokio::time::timeout(support::TIMEOUT, on_b.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.name, "members.join");
        assert_eq!(m.origin, ba.node_id());
        assert_eq!(&m.payload[..], &i.to_be_bytes());
    }
    // A gets B's message and none of its own (the connection is no_echo).
    let m = tokio::time::timeout(support::TIMEOUT, on_a.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((m.name.as_str(), m.origin), ("members.leave", bb.node_id()));
    assert!(on_a.try_recv().is_err());
    assert!(ba.subscribe_control("bad name").is_err());
    a.flush.cancel();
    b.flush.cancel();
    tracker.close();
    tokio::time::timeout(support::TIMEOUT, tracker.wait())
        .await
        .unwrap();
}

/// A SUBSCRIBE (or PSUBSCRIBE, SSUBSCRIBE) that gives a node new interest is replied to once
/// NATS holds the subscription: a message another node publishes right after the reply
/// arrives, every time, with no waiting in between.
#[tokio::test]
async fn confirmed_subscriptions_receive_the_next_message_from_another_node() {
    let nats = Nats::start(&[]).await;
    let url = nats.url();
    let (a, b) = (
        Node::connected(&url, &[]).await,
        Node::connected(&url, &[]).await,
    );
    let mut sub = a.client().await;
    let mut publisher = b.client().await;
    for i in 0..50 {
        let (kind, reply_kind, channel, publish) = match i % 3 {
            0 => ("SUBSCRIBE", "subscribe", format!("fresh.{i}"), "PUBLISH"),
            1 => (
                "PSUBSCRIBE",
                "psubscribe",
                format!("fresh.{i}.*"),
                "PUBLISH",
            ),
            _ => (
                "SSUBSCRIBE",
                "ssubscribe",
                format!("fresh{{{i}}}"),
                "SPUBLISH",
            ),
        };
        sub.cmd(&[kind, &channel]).await;
        let f = sub.frame().await;
        assert!(
            f.windows(reply_kind.len())
                .any(|w| w == reply_kind.as_bytes()),
            "{}",
            support::show(&f)
        );
        let target = if i % 3 == 1 {
            format!("fresh.{i}.x")
        } else {
            channel.clone()
        };
        publisher.cmd(&[publish, &target, "now"]).await;
        publisher.expect(b":0\r\n").await;
        let want = match i % 3 {
            0 => message(b"message", target.as_bytes(), b"now"),
            1 => pmessage(channel.as_bytes(), target.as_bytes(), b"now"),
            _ => message(b"smessage", target.as_bytes(), b"now"),
        };
        sub.expect(&want).await;
    }
}
