//! The replies of CLUSTER INFO, NODES, SLOTS and SHARDS, in Redis 7.2's shapes
//! (`genClusterInfoString`, `clusterGenNodeDescription`, `clusterReplyMultiBulkSlots`,
//! `clusterReplyShards`), built from a `View`. Every node is a master with no replicas, its own
//! shard, one contiguous slot range, and no cluster bus (bus port 0, no links).

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::{endpoint, Cluster, View};
use crate::protocol::ReplyBuf;

/// The port a client is given for a node: the TLS port to a client connected over TLS, as
/// Redis's `getNodeClientPort` (or whichever port the node has).
pub fn client_port(n: &super::NodeInfo, tls: bool) -> u16 {
    if (tls && n.tls_port != 0) || n.port == 0 {
        n.tls_port
    } else {
        n.port
    }
}

/// CLUSTER INFO's text. Membership messages are counted as Redis counts its `ping`s.
pub fn info(c: &Cluster, v: &View) -> String {
    let n = v.nodes.len();
    let mut o = String::new();
    let _ = write!(
        o,
        "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:{n}\r\ncluster_size:{n}\r\ncluster_current_epoch:{n}\r\ncluster_my_epoch:{}\r\n",
        v.epoch(v.me)
    );
    let sent = c.messages_sent.load(Ordering::Relaxed);
    let received = c.messages_received.load(Ordering::Relaxed);
    if sent > 0 {
        let _ = write!(o, "cluster_stats_messages_ping_sent:{sent}\r\n");
    }
    let _ = write!(o, "cluster_stats_messages_sent:{sent}\r\n");
    if received > 0 {
        let _ = write!(o, "cluster_stats_messages_ping_received:{received}\r\n");
    }
    let _ = write!(
        o,
        "cluster_stats_messages_received:{received}\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n"
    );
    o
}

/// CLUSTER NODES: one line per node,
/// `<id> <ip:port@bus-port[,hostname]> <flags> <master> <ping-sent> <pong-recv> <epoch> <link> <slots>`.
pub fn nodes(v: &View, tls: bool) -> String {
    let mut o = String::new();
    for (i, n) in v.nodes.iter().enumerate() {
        let _ = write!(o, "{} {}:{}@0", n.id, n.ip, client_port(n, tls));
        if !n.hostname.is_empty() {
            let _ = write!(o, ",{}", n.hostname);
        }
        let flags = if i == v.me { "myself,master" } else { "master" };
        let _ = write!(
            o,
            " {flags} - 0 {} {} connected",
            v.last_seen_ms[i],
            v.epoch(i)
        );
        if let Some((first, last)) = v.map.range(i) {
            if first == last {
                let _ = write!(o, " {first}");
            } else {
                let _ = write!(o, " {first}-{last}");
            }
        }
        o.push('\n');
    }
    o
}

/// CLUSTER SLOTS: `[[start, end, [ip, port, id, {hostname?}]] …]` in slot order.
pub fn slots(r: &mut ReplyBuf, v: &View, tls: bool) {
    r.array(v.map.members());
    for (first, last, i) in v.map.ranges() {
        let n = &v.nodes[i];
        r.array(3);
        r.int(first as i64);
        r.int(last as i64);
        r.array(4);
        r.bulk(endpoint(n).as_bytes());
        r.int(client_port(n, tls) as i64);
        r.bulk(n.id.as_bytes());
        if n.hostname.is_empty() {
            r.map(0);
        } else {
            r.map(1);
            r.bulk(b"hostname");
            r.bulk(n.hostname.as_bytes());
        }
    }
}

/// CLUSTER SHARDS: one shard per node, `{slots: [start, end], nodes: [{id, port, …}]}`.
pub fn shards(r: &mut ReplyBuf, v: &View) {
    r.array(v.nodes.len());
    for (i, n) in v.nodes.iter().enumerate() {
        r.map(2);
        r.bulk(b"slots");
        match v.map.range(i) {
            Some((first, last)) => {
                r.array(2);
                r.int(first as i64);
                r.int(last as i64);
            }
            None => r.array(0),
        }
        r.bulk(b"nodes");
        r.array(1);
        let fields = 6
            + usize::from(n.port != 0)
            + usize::from(n.tls_port != 0)
            + usize::from(!n.hostname.is_empty());
        r.map(fields);
        r.bulk(b"id");
        r.bulk(n.id.as_bytes());
        if n.port != 0 {
            r.bulk(b"port");
            r.int(n.port as i64);
        }
        if n.tls_port != 0 {
            r.bulk(b"tls-port");
            r.int(n.tls_port as i64);
        }
        r.bulk(b"ip");
        r.bulk(n.ip.as_bytes());
        r.bulk(b"endpoint");
        r.bulk(endpoint(n).as_bytes());
        if !n.hostname.is_empty() {
            r.bulk(b"hostname");
            r.bulk(n.hostname.as_bytes());
        }
        r.bulk(b"role");
        r.bulk(b"master");
        r.bulk(b"replication-offset");
        r.int(0);
        r.bulk(b"health");
        r.bulk(b"online");
    }
}
