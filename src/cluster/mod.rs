//! Redis Cluster's client protocol over pubsubd's own membership, so that cluster-aware clients
//! (ioredis `Redis.Cluster`, node-redis `createCluster`, redis-py `RedisCluster`, `redis-cli -c`)
//! work unchanged against one pubsubd node or several.
//!
//! - `slot`: CRC16 and hash tags (`CLUSTER KEYSLOT`).
//! - `map`: the slot map, a pure function of the live member set.
//! - `membership`: who is alive, from announcements over a `MembershipTransport`.
//! - `nodefile`: the node id kept in `cluster-config-file` across restarts.
//! - `reply`: CLUSTER INFO/NODES/SLOTS/SHARDS in Redis 7.2's shapes.
//!
//! `Cluster` holds the current `View` (members, map, whether the others see the same) behind a
//! lock taken only to clone an `Arc`, so a sharded command's slot check costs one CRC16 and one
//! read lock. Without a transport the node is a one-node cluster owning all 16,384 slots.
//!
//! Routing (`Cluster::route`) follows Redis Cluster's `getNodeByQuery` for SSUBSCRIBE, SPUBLISH
//! and SUNSUBSCRIBE: `-CROSSSLOT` when the channels of one command (or one transaction) hash to
//! different slots, `-MOVED slot host:port` when another node owns the slot. Two differences,
//! both so that no client is left deaf by a map that is changing: a node redirects only once
//! every live node announces the same member set (until then it serves the command itself; the
//! backbone delivers across nodes either way), and SUNSUBSCRIBE is never redirected (it only
//! drops this connection's own subscriptions, which live here whoever owns the slot now).

pub mod map;
pub mod membership;
pub mod nodefile;
pub mod reply;
pub mod slot;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::{Mutex, RwLock};
use tokio::time::Instant;

use crate::config::Config;
use map::SlotMap;
use membership::{Members, MembershipTransport, Message, NodeInfo};
pub use nodefile::NodeFileError;

pub use crate::config::DEFAULT_CLUSTER_NODE_TIMEOUT_MS as DEFAULT_NODE_TIMEOUT_MS;

/// How often a node announces itself: five times per `cluster-node-timeout`, so one or two lost
/// announcements never expire a live node.
pub fn announce_interval(node_timeout: Duration) -> Duration {
    (node_timeout / 5).max(Duration::from_millis(20))
}

/// What this node sees: the live members ordered by id, the slot map over them, and whether
/// every member announced the same set.
#[derive(Debug)]
pub struct View {
    pub nodes: Vec<NodeInfo>,
    /// CLUSTER NODES `pong-recv` of each node (0 for this node, as Redis prints for `myself`).
    pub last_seen_ms: Vec<u64>,
    pub map: SlotMap,
    /// This node's index in `nodes`.
    pub me: usize,
    pub digest: u64,
    pub agreed: bool,
}

impl View {
    fn build(members: &Members) -> View {
        let nodes = members.live();
        let me = nodes
            .iter()
            .position(|n| n.id == members.me.id)
            .unwrap_or(0);
        let last_seen_ms = nodes
            .iter()
            .map(|n| members.peer(&n.id).map_or(0, |p| p.last_seen_ms))
            .collect();
        let digest = membership::digest(&nodes);
        View {
            map: SlotMap::new(nodes.len()),
            agreed: members.agreed(digest),
            last_seen_ms,
            nodes,
            me,
            digest,
        }
    }

    /// A node's config epoch: its position in the id order, counted from 1. Every node that
    /// sees the same members reports the same epochs, and no two nodes share one.
    pub fn epoch(&self, i: usize) -> usize {
        i + 1
    }

    pub fn owner(&self, slot: u16) -> Option<&NodeInfo> {
        self.map.owner(slot).map(|i| &self.nodes[i])
    }
}

/// Why a sharded command is not run here (`clusterRedirectClient`'s texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Redirect {
    #[error("CROSSSLOT Keys in request don't hash to the same slot")]
    CrossSlot,
    #[error("MOVED {slot} {endpoint}")]
    Moved { slot: u16, endpoint: String },
}

/// How a command's channels are routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// SSUBSCRIBE, SPUBLISH: served by the slot's owner.
    Owner,
    /// SUNSUBSCRIBE: same-slot rule only, served wherever the subscription is.
    Local,
}

/// The cluster state of a node started with `cluster-enabled yes`.
pub struct Cluster {
    node_timeout: Duration,
    /// `cluster-announce-port` was set: the listening port is not announced.
    port_announced: bool,
    /// `tls-port`: connections arriving on it are TLS clients (read on every sharded command,
    /// so kept outside the members' lock).
    tls_port: u16,
    members: Mutex<Members>,
    view: RwLock<Arc<View>>,
    transport: RwLock<Option<Arc<dyn MembershipTransport>>>,
    /// Membership messages sent and received (CLUSTER INFO `cluster_stats_messages_*`).
    pub messages_sent: AtomicU64,
    pub messages_received: AtomicU64,
    /// Another process announced our id (logged once).
    warned_twin: std::sync::atomic::AtomicBool,
    /// Set by `leave`: a node that said goodbye sends nothing more.
    left: std::sync::atomic::AtomicBool,
    _file: Option<nodefile::NodeFile>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The address clients are told to use: `cluster-announce-ip`, else the first `bind` address
/// that names one interface, else empty (as a Redis node that has not learnt its address; the
/// clients then use the address they connected to).
pub fn announce_ip(cfg: &Config) -> String {
    if !cfg.cluster_announce_ip.is_empty() {
        return cfg.cluster_announce_ip.clone();
    }
    cfg.bind
        .iter()
        .map(|b| b.trim_start_matches('-'))
        .find(|b| {
            b.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| !ip.is_unspecified())
        })
        .unwrap_or("")
        .to_string()
}

impl Cluster {
    /// The cluster state for `cfg`, reading or creating the node id in `cluster-config-file`
    /// (an empty file name keeps the id in memory only). `port` is the TCP port clients reach
    /// this node on when `cluster-announce-port` is 0.
    pub fn open(cfg: &Config, port: u16) -> Result<Cluster, NodeFileError> {
        let ip = announce_ip(cfg);
        let port = if cfg.cluster_announce_port != 0 {
            cfg.cluster_announce_port
        } else {
            port
        };
        let (id, shard_id, file) = if cfg.cluster_config_file.is_empty() {
            (nodefile::random_id(), nodefile::random_id(), None)
        } else {
            let f = nodefile::NodeFile::open(&cfg.cluster_config_file, &format!("{ip}:{port}"))?;
            (f.id.clone(), f.shard_id.clone(), Some(f))
        };
        let me = NodeInfo {
            id,
            shard_id,
            ip,
            port,
            tls_port: if cfg.cluster_announce_tls_port != 0 {
                cfg.cluster_announce_tls_port
            } else {
                cfg.tls.port
            },
            hostname: cfg.cluster_announce_hostname.clone(),
            started_ms: now_ms(),
        };
        let members = Members::new(me);
        let view = View::build(&members);
        Ok(Cluster {
            node_timeout: Duration::from_millis(cfg.cluster_node_timeout),
            port_announced: cfg.cluster_announce_port != 0,
            tls_port: cfg.tls.port,
            members: Mutex::new(members),
            view: RwLock::new(Arc::new(view)),
            transport: RwLock::new(None),
            messages_sent: AtomicU64::new(0),
            messages_received: AtomicU64::new(0),
            warned_twin: std::sync::atomic::AtomicBool::new(false),
            left: std::sync::atomic::AtomicBool::new(false),
            _file: file,
        })
    }

    /// Whether a connection on local address `laddr` came in on this node's TLS port.
    pub fn is_tls_connection(&self, laddr: &str) -> bool {
        self.tls_port != 0
            && laddr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok()) == Some(self.tls_port)
    }

    /// Announces the port actually listened on (the OS's choice for `port 0`), unless
    /// `cluster-announce-port` names another.
    pub fn use_listening_port(&self, port: u16) {
        if self.port_announced {
            return;
        }
        let mut members = self.members.lock();
        members.me.port = port;
        self.rebuild(&members, true);
    }

    /// The current view (cheap: an `Arc` clone).
    pub fn view(&self) -> Arc<View> {
        self.view.read().clone()
    }

    pub fn myself(&self) -> NodeInfo {
        self.members.lock().me.clone()
    }

    pub fn node_timeout(&self) -> Duration {
        self.node_timeout
    }

    /// Where a command naming `channels` runs: here (`Ok`), or the error to answer with.
    /// `tls`: the client is connected over TLS (it is sent TLS ports).
    pub fn route<'a>(
        &self,
        routing: Routing,
        channels: impl IntoIterator<Item = &'a [u8]>,
        tls: bool,
    ) -> Result<(), Redirect> {
        let mut slot = None;
        for ch in channels {
            let s = slot::key_slot(ch);
            match slot {
                None => slot = Some(s),
                Some(first) if first != s => return Err(Redirect::CrossSlot),
                Some(_) => {}
            }
        }
        let (Some(slot), Routing::Owner) = (slot, routing) else {
            return Ok(());
        };
        let view = self.view();
        if !view.agreed {
            return Ok(());
        }
        match view.map.owner(slot) {
            Some(i) if i != view.me => {
                let n = &view.nodes[i];
                let port = reply::client_port(n, tls);
                Err(Redirect::Moved {
                    slot,
                    endpoint: format!("{}:{port}", endpoint(n)),
                })
            }
            _ => Ok(()),
        }
    }

    /// Starts announcing over `transport` (the backbone's control subjects).
    pub fn attach(&self, transport: Arc<dyn MembershipTransport>) {
        *self.transport.write() = Some(transport);
        self.hello();
    }

    /// Asks every node to announce itself now: at start, and whenever the transport has
    /// reconnected (what was sent while it was down is lost).
    pub fn hello(&self) {
        let view = self.view().digest;
        let me = self.myself();
        self.send(Message::Hello { node: me, view });
    }

    fn send(&self, msg: Message) {
        if self.left.load(Ordering::Relaxed) {
            return;
        }
        if let Some(t) = self.transport.read().as_ref() {
            t.broadcast(msg.encode());
            self.messages_sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Announces this node and the member set it sees.
    pub fn announce(&self) {
        let view = self.view().digest;
        let me = self.myself();
        self.send(Message::Announce { node: me, view });
    }

    /// Tells the others this node is leaving (at shutdown), so they drop it at once.
    pub fn leave(&self) {
        let id = self.myself().id;
        self.send(Message::Bye { id });
        self.left.store(true, Ordering::Relaxed);
    }

    /// Applies a message from another node; returns true if the view changed.
    pub fn receive(&self, msg: &[u8], now: Instant) -> bool {
        let Some(msg) = Message::decode(msg) else {
            return false;
        };
        self.messages_received.fetch_add(1, Ordering::Relaxed);
        let mut members = self.members.lock();
        if let Message::Announce { node, .. } | Message::Hello { node, .. } = &msg {
            if node.id == members.me.id
                && node.started_ms != members.me.started_ms
                && !self.warned_twin.swap(true, Ordering::Relaxed)
            {
                tracing::warn!(
                    "Another node announces this node's id {} (at {}:{}): do two nodes share a cluster-config-file?",
                    node.id,
                    node.ip,
                    node.port
                );
            }
        }
        let out = members.receive(msg, now, now_ms());
        let changed = self.rebuild(&members, out.changed);
        drop(members);
        if out.changed || out.announce_now {
            self.announce();
        }
        changed
    }

    /// Expires silent peers; returns true if the view changed. Called every announce interval.
    pub fn tick(&self, now: Instant) -> bool {
        let mut members = self.members.lock();
        let expired = members.expire(now, self.node_timeout);
        let changed = self.rebuild(&members, expired);
        drop(members);
        if expired {
            self.announce();
        }
        changed
    }

    /// Recomputes the view after a change of members or of a peer's announced view.
    fn rebuild(&self, members: &Members, members_changed: bool) -> bool {
        let next = View::build(members);
        let mut cur = self.view.write();
        let changed = members_changed || next.agreed != cur.agreed || next.nodes != cur.nodes;
        // Refresh even when unchanged: `last_seen_ms` moves with every announcement.
        *cur = Arc::new(next);
        changed
    }
}

/// The endpoint a client is sent to (Redis's `cluster-preferred-endpoint-type ip`).
pub fn endpoint(n: &NodeInfo) -> &str {
    &n.ip
}

#[cfg(test)]
mod tests {
    use super::membership::LoopbackBus;
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;

    fn config(port: u16) -> Config {
        Config {
            cluster_enabled: true,
            cluster_config_file: String::new(),
            port,
            ..Config::default()
        }
    }

    #[test]
    fn a_lone_node_owns_every_slot_and_never_redirects() {
        let c = Cluster::open(&config(7000), 7000).unwrap();
        let v = c.view();
        assert_eq!(v.nodes.len(), 1);
        assert_eq!(v.map.range(0), Some((0, 16383)));
        assert!(v.agreed);
        assert_eq!(c.route(Routing::Owner, [&b"a"[..]], false), Ok(()));
        assert_eq!(
            c.route(Routing::Owner, [&b"a"[..], &b"b"[..]], false),
            Err(Redirect::CrossSlot)
        );
        assert_eq!(
            c.route(Routing::Local, [&b"a"[..], &b"b"[..]], false),
            Err(Redirect::CrossSlot)
        );
        assert_eq!(
            c.route(Routing::Owner, [&b"{a}1"[..], &b"{a}2"[..]], false),
            Ok(())
        );
        assert_eq!(c.route(Routing::Owner, std::iter::empty(), false), Ok(()));
    }

    /// Three nodes on a loopback bus, messages pumped by hand.
    struct Trio {
        nodes: Vec<Cluster>,
        rx: Vec<tokio::sync::mpsc::UnboundedReceiver<Bytes>>,
    }

    impl Trio {
        fn new() -> Trio {
            let bus = LoopbackBus::default();
            let mut nodes = Vec::new();
            let mut rx = Vec::new();
            for port in [7000, 7001, 7002] {
                let c = Cluster::open(&config(port), port).unwrap();
                let (t, r) = bus.join();
                nodes.push(c);
                rx.push(r);
                nodes.last().unwrap().attach(Arc::new(t));
            }
            Trio { nodes, rx }
        }

        fn pump(&mut self, now: Instant) {
            loop {
                let mut any = false;
                for (i, r) in self.rx.iter_mut().enumerate() {
                    while let Ok(m) = r.try_recv() {
                        self.nodes[i].receive(&m, now);
                        any = true;
                    }
                }
                if !any {
                    return;
                }
            }
        }
    }

    #[tokio::test]
    async fn three_nodes_agree_on_one_map_and_redirect_to_the_owner() {
        let mut t = Trio::new();
        let now = Instant::now();
        t.pump(now);
        let views: Vec<_> = t.nodes.iter().map(|c| c.view()).collect();
        for v in &views {
            assert_eq!(v.nodes.len(), 3);
            assert!(v.agreed);
            assert_eq!(v.digest, views[0].digest);
        }
        let slot = slot::key_slot(b"news");
        let owner = views[0].owner(slot).unwrap().port;
        for c in &t.nodes {
            let r = c.route(Routing::Owner, [&b"news"[..]], false);
            if c.myself().port == owner {
                assert_eq!(r, Ok(()));
            } else {
                assert_eq!(
                    r,
                    Err(Redirect::Moved {
                        slot,
                        endpoint: format!("127.0.0.1:{owner}")
                    })
                );
            }
            // SUNSUBSCRIBE is served where the subscription is.
            assert_eq!(c.route(Routing::Local, [&b"news"[..]], false), Ok(()));
        }
    }

    #[tokio::test]
    async fn a_silent_node_expires_and_a_leaving_node_goes_at_once() {
        let mut t = Trio::new();
        let now = Instant::now();
        t.pump(now);
        let timeout = t.nodes[0].node_timeout();
        // Nodes 0 and 1 keep announcing; node 2 falls silent.
        let later = now + timeout + Duration::from_millis(1);
        t.nodes[0].announce();
        t.nodes[1].announce();
        let silent = t.rx.remove(2);
        let gone = t.nodes.remove(2);
        t.pump(later);
        for c in &t.nodes {
            assert!(c.tick(later));
            assert_eq!(c.view().nodes.len(), 2);
        }
        t.pump(later);
        assert!(t.nodes.iter().all(|c| c.view().agreed));
        drop((silent, gone));
        t.nodes[1].leave();
        t.pump(later);
        assert_eq!(t.nodes[0].view().nodes.len(), 1);
    }

    #[tokio::test]
    async fn no_redirect_while_views_differ() {
        let mut t = Trio::new();
        let now = Instant::now();
        t.pump(now);
        // A fourth node announces to node 0 only: node 0's view differs from the others'.
        let newcomer = Cluster::open(&config(7003), 7003).unwrap();
        let hello = Message::Announce {
            node: newcomer.myself(),
            view: 0,
        };
        t.nodes[0].receive(&hello.encode(), now);
        assert!(!t.nodes[0].view().agreed);
        for ch in ["a", "b", "c", "d", "e", "f"] {
            assert_eq!(
                t.nodes[0].route(Routing::Owner, [ch.as_bytes()], false),
                Ok(())
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Any live set of node ids gives every slot exactly one owner, and every node of the
        /// set computes the same owner for it.
        #[test]
        fn any_live_set_gives_every_slot_one_owner(ids in proptest::collection::btree_set("[0-9a-f]{40}", 1..12)) {
            let mut views = Vec::new();
            for me in &ids {
                let mut m = Members::new(NodeInfo {
                    id: me.clone(), shard_id: "0".repeat(40), ip: "127.0.0.1".into(),
                    port: 1, tls_port: 0, hostname: String::new(), started_ms: 0,
                });
                for other in ids.iter().filter(|o| *o != me) {
                    m.receive(Message::Announce {
                        node: NodeInfo {
                            id: other.clone(), shard_id: "0".repeat(40), ip: "127.0.0.1".into(),
                            port: 1, tls_port: 0, hostname: String::new(), started_ms: 0,
                        },
                        view: 0,
                    }, Instant::now(), 0);
                }
                views.push(View::build(&m));
            }
            for s in 0..slot::SLOTS {
                let owner = views[0].owner(s).map(|n| n.id.as_str());
                prop_assert!(owner.is_some());
                for v in &views[1..] {
                    prop_assert_eq!(v.owner(s).map(|n| n.id.as_str()), owner);
                }
            }
        }
    }
}
