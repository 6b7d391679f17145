//! Several in-process nodes on one loopback membership bus, over real TCP: the slot map they
//! agree on, `-MOVED` to the owner of a shard channel's slot, SUNSUBSCRIBE served where the
//! subscription is, and a node that shuts down leaving the map at once.

use std::time::Duration;

use pubsubd::cluster::membership::LoopbackBus;
use pubsubd::config::Config;
use pubsubd::server::cluster::Membership;

use crate::support::info::cluster_nodes;
use crate::support::{Raw, TestServer};

async fn node(bus: &LoopbackBus) -> TestServer {
    let (t, inbox) = bus.join();
    let config = Config {
        cluster_enabled: true,
        cluster_config_file: String::new(),
        cluster_node_timeout: 1000,
        ..Config::default()
    };
    TestServer::with_membership(
        config,
        Some(Membership {
            transport: std::sync::Arc::new(t),
            inbox,
            reconnected: None,
        }),
    )
    .await
}

/// Polls CLUSTER NODES on every node until each sees `n` members, all the same map.
async fn converged(conns: &mut [Raw], n: usize) -> Vec<(u16, u16, u16)> {
    let wait = async {
        loop {
            let mut maps = Vec::new();
            for c in conns.iter_mut() {
                maps.push(cluster_nodes(c).await);
            }
            if maps.iter().all(|m| m.len() == n && *m == maps[0]) {
                return maps.swap_remove(0);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("the nodes never agreed on the map")
}

#[tokio::test]
async fn nodes_agree_and_redirect_to_the_slot_owner() {
    let bus = LoopbackBus::default();
    let servers = vec![node(&bus).await, node(&bus).await, node(&bus).await];
    let mut conns = Vec::new();
    for s in &servers {
        conns.push(Raw::connect(s.addr()).await);
    }
    let map = converged(&mut conns, 3).await;
    assert_eq!(
        map.iter().map(|n| (n.1, n.2)).collect::<Vec<_>>(),
        [(0, 5460), (5461, 10921), (10922, 16383)]
    );
    // The CLUSTER SLOTS replies are the same bytes on every node.
    let mut slots = Vec::new();
    for c in conns.iter_mut() {
        c.cmd(&["CLUSTER", "SLOTS"]).await;
        slots.push(c.frame().await);
    }
    assert!(slots.iter().all(|s| *s == slots[0]));

    // "news" is slot 5161: the first range.
    let owner = map[0].0;
    let mut at_owner = None;
    for (s, c) in servers.iter().zip(conns.iter_mut()) {
        if s.addr().port() == owner {
            c.roundtrip(&["SPUBLISH", "news", "x"], b":0\r\n").await;
            at_owner = Some(s.addr());
        } else {
            let moved = format!("-MOVED 5161 127.0.0.1:{owner}\r\n");
            c.roundtrip(&["SPUBLISH", "news", "x"], moved.as_bytes())
                .await;
            c.roundtrip(&["SSUBSCRIBE", "news"], moved.as_bytes()).await;
            // SUNSUBSCRIBE drops this connection's own subscriptions: never redirected.
            c.roundtrip(
                &["SUNSUBSCRIBE", "news"],
                b"*3\r\n$12\r\nsunsubscribe\r\n$4\r\nnews\r\n:0\r\n",
            )
            .await;
        }
    }
    let mut sub = Raw::connect(at_owner.unwrap()).await;
    sub.roundtrip(
        &["SSUBSCRIBE", "news"],
        b"*3\r\n$10\r\nssubscribe\r\n$4\r\nnews\r\n:1\r\n",
    )
    .await;
}

#[tokio::test]
async fn a_node_that_shuts_down_leaves_the_map() {
    let bus = LoopbackBus::default();
    let a = node(&bus).await;
    let b = node(&bus).await;
    let c = node(&bus).await;
    let mut conns = vec![Raw::connect(a.addr()).await, Raw::connect(b.addr()).await];
    converged(&mut conns, 3).await;
    c.stop().await;
    let map = converged(&mut conns, 2).await;
    assert_eq!(
        map.iter().map(|n| (n.1, n.2)).collect::<Vec<_>>(),
        [(0, 8191), (8192, 16383)]
    );
    let mut info = Raw::connect(a.addr()).await;
    info.cmd(&["CLUSTER", "INFO"]).await;
    let text = String::from_utf8(info.frame().await).unwrap();
    assert!(text.contains("cluster_known_nodes:2\r\n"), "{text}");
    assert!(text.contains("cluster_state:ok\r\n"), "{text}");
}

/// A push frame of three elements: `[kind, channel, count]` (RESP2).
fn push(kind: &str, ch: &str, n: usize) -> Vec<u8> {
    format!(
        "*3\r\n${}\r\n{kind}\r\n${}\r\n{ch}\r\n:{n}\r\n",
        kind.len(),
        ch.len()
    )
    .into_bytes()
}

fn owner(map: &[(u16, u16, u16)], ch: &str) -> u16 {
    let slot = pubsubd::cluster::slot::key_slot(ch.as_bytes());
    map.iter().find(|n| n.1 <= slot && slot <= n.2).unwrap().0
}

#[tokio::test]
async fn subscribers_of_slots_that_move_away_are_told_with_sunsubscribe() {
    let bus = LoopbackBus::default();
    let servers = vec![node(&bus).await, node(&bus).await];
    let mut probes = Vec::new();
    for s in &servers {
        probes.push(Raw::connect(s.addr()).await);
    }
    let before = converged(&mut probes, 2).await;
    // Two channels in each sixteenth of the slot space, each subscribed at its owner.
    let mut channels = Vec::new();
    for part in 0..16u16 {
        let mut found = 0;
        for i in 0.. {
            let ch = format!("rehome:{part}:{i}");
            if pubsubd::cluster::slot::key_slot(ch.as_bytes()) / 1024 == part {
                channels.push(ch);
                found += 1;
                if found == 2 {
                    break;
                }
            }
        }
    }
    let mut subs = Vec::new();
    let mut held: Vec<Vec<String>> = Vec::new();
    for s in &servers {
        subs.push(Raw::connect(s.addr()).await);
        held.push(Vec::new());
    }
    for ch in &channels {
        let i = servers
            .iter()
            .position(|s| s.addr().port() == owner(&before, ch))
            .unwrap();
        held[i].push(ch.clone());
        let n = held[i].len();
        subs[i]
            .roundtrip(&["SSUBSCRIBE", ch], &push("ssubscribe", ch, n))
            .await;
    }
    // A third node joins: slots move, and each node tells its subscribers of the slots it lost.
    let third = node(&bus).await;
    probes.push(Raw::connect(third.addr()).await);
    let after = converged(&mut probes, 3).await;
    let mut moved_total = 0;
    for (i, s) in servers.iter().enumerate() {
        let port = s.addr().port();
        let mut left = held[i].len();
        for ch in &held[i] {
            if owner(&after, ch) != port {
                left -= 1;
                subs[i].expect(&push("sunsubscribe", ch, left)).await;
                moved_total += 1;
            }
        }
        // Nothing else was pushed: the next frame is PING's reply.
        subs[i]
            .roundtrip(&["PING"], b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
            .await;
    }
    assert!(moved_total > 0, "no slot moved: {before:?} -> {after:?}");
}
