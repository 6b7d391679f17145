//! Cluster mode over the NATS backbone, with real processes: three pubsubd nodes on one
//! nats-server learn each other from their announcements and agree on one slot map, redirect
//! sharded commands to the owner, carry classic pub/sub across nodes, and follow the live set:
//! a killed node leaves the map after `cluster-node-timeout`, a stopped one at once, and a
//! restarted one rejoins with the node id kept in its `cluster-config-file`.

use crate::support::info::cluster_nodes;
use crate::support::nats::{message, wait_until, Nats, Node};
use crate::support::process::temp_dir;

/// A node of a cluster on `nats`, with its own node file, agreeing within a second.
async fn cluster_node(nats: &Nats) -> Node {
    let file = temp_dir("cluster").join("nodes.conf");
    let file = file.display().to_string();
    Node::connected(
        &nats.url(),
        &[
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            &file,
            "--cluster-node-timeout",
            "1000",
        ],
    )
    .await
}

/// CLUSTER NODES read on `node`.
async fn map_of(node: &Node) -> Vec<(u16, u16, u16)> {
    cluster_nodes(&mut node.client().await).await
}

/// Waits until every node in `nodes` reports the same map of `n` members, and returns it.
async fn agreed(nodes: &[&Node], n: usize) -> Vec<(u16, u16, u16)> {
    wait_until(
        &format!("{} nodes agree on {n} members", nodes.len()),
        || async {
            let mut maps = Vec::new();
            for node in nodes {
                maps.push(map_of(node).await);
            }
            maps.iter().all(|m| m.len() == n && *m == maps[0])
        },
    )
    .await;
    map_of(nodes[0]).await
}

async fn myid(node: &Node) -> Vec<u8> {
    let mut c = node.client().await;
    c.cmd(&["CLUSTER", "MYID"]).await;
    c.frame().await
}

fn ranges(map: &[(u16, u16, u16)]) -> Vec<(u16, u16)> {
    map.iter().map(|n| (n.1, n.2)).collect()
}

#[tokio::test]
async fn three_nodes_agree_redirect_and_carry_messages_across() {
    let nats = Nats::start(&[]).await;
    let a = cluster_node(&nats).await;
    let b = cluster_node(&nats).await;
    let c = cluster_node(&nats).await;
    let nodes = [&a, &b, &c];
    let map = agreed(&nodes, 3).await;
    assert_eq!(ranges(&map), [(0, 5460), (5461, 10921), (10922, 16383)]);
    let mut slots = Vec::new();
    for n in nodes {
        let mut cl = n.client().await;
        cl.cmd(&["CLUSTER", "SLOTS"]).await;
        slots.push(cl.frame().await);
        cl.cmd(&["CLUSTER", "INFO"]).await;
        let info = String::from_utf8(cl.frame().await).unwrap();
        assert!(info.contains("cluster_state:ok\r\n"), "{info}");
        assert!(info.contains("cluster_known_nodes:3\r\n"), "{info}");
        assert!(info.contains("cluster_slots_assigned:16384\r\n"), "{info}");
    }
    assert!(
        slots.iter().all(|s| *s == slots[0]),
        "CLUSTER SLOTS differs"
    );

    // "news" is slot 5161, in the first range: the others redirect there.
    let owner_port = map[0].0;
    let moved = format!("-MOVED 5161 127.0.0.1:{owner_port}\r\n");
    let owner = nodes.iter().find(|n| n.port == owner_port).unwrap();
    for n in nodes.iter().filter(|n| n.port != owner_port) {
        let mut cl = n.client().await;
        cl.roundtrip(&["SSUBSCRIBE", "news"], moved.as_bytes())
            .await;
        cl.roundtrip(&["SPUBLISH", "news", "x"], moved.as_bytes())
            .await;
    }
    let mut sub = owner.client().await;
    sub.roundtrip(
        &["SSUBSCRIBE", "news"],
        b"*3\r\n$10\r\nssubscribe\r\n$4\r\nnews\r\n:1\r\n",
    )
    .await;
    owner
        .client()
        .await
        .roundtrip(&["SPUBLISH", "news", "hi"], b":1\r\n")
        .await;
    sub.expect(&message(b"smessage", b"news", b"hi")).await;

    // Classic pub/sub has no slots: a PUBLISH on any node reaches every node's subscribers.
    let mut subs = Vec::new();
    for n in nodes {
        let mut s = n.client().await;
        s.roundtrip(
            &["SUBSCRIBE", "updates"],
            b"*3\r\n$9\r\nsubscribe\r\n$7\r\nupdates\r\n:1\r\n",
        )
        .await;
        subs.push(s);
    }
    // A subscriber told "subscribed" receives what any node publishes next: no probing.
    let mut publisher = c.client().await;
    publisher
        .roundtrip(&["PUBLISH", "updates", "v2"], b":1\r\n")
        .await;
    for s in subs.iter_mut() {
        s.expect(&message(b"message", b"updates", b"v2")).await;
    }
}

#[tokio::test]
async fn a_killed_node_leaves_after_the_timeout_and_rejoins_with_its_id() {
    let nats = Nats::start(&[]).await;
    let a = cluster_node(&nats).await;
    let b = cluster_node(&nats).await;
    let mut c = cluster_node(&nats).await;
    agreed(&[&a, &b, &c], 3).await;
    let id = myid(&c).await;

    // SIGKILL: no goodbye; the others drop it after cluster-node-timeout (1 s).
    c.kill();
    let map = agreed(&[&a, &b], 2).await;
    assert_eq!(ranges(&map), [(0, 8191), (8192, 16383)]);
    assert!(!map.iter().any(|n| n.0 == c.port));

    // Restarted from the same node file: the same id, and the map of three again.
    c.restart().await;
    c.wait_status("connected").await;
    assert_eq!(myid(&c).await, id, "a restarted node keeps its id");
    let map = agreed(&[&a, &b, &c], 3).await;
    assert!(map.iter().any(|n| n.0 == c.port));
}

#[tokio::test]
async fn a_stopped_node_says_goodbye_and_leaves_at_once() {
    let nats = Nats::start(&[]).await;
    // A timeout far longer than the test: only the goodbye can take a node out of the map.
    let patient = |nats: &Nats| {
        let file = temp_dir("cluster").join("nodes.conf").display().to_string();
        let url = nats.url();
        async move {
            Node::connected(
                &url,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &file,
                    "--cluster-node-timeout",
                    "600000",
                ],
            )
            .await
        }
    };
    let a = patient(&nats).await;
    let b = patient(&nats).await;
    let mut c = patient(&nats).await;
    agreed(&[&a, &b, &c], 3).await;
    c.terminate();
    let map = agreed(&[&a, &b], 2).await;
    assert_eq!(ranges(&map), [(0, 8191), (8192, 16383)]);
}
