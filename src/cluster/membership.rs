//! Membership: who is alive, learnt from announcements, with no consensus of its own.
//!
//! Every node broadcasts an `Announcement` (its id, the address clients should use, its start
//! time and a digest of the member set it currently sees) every `cluster-node-timeout / 5`, at
//! once when its view changes, and in answer to a newcomer's `Hello`. A peer that has not
//! announced for `cluster-node-timeout` is dropped; a peer that shuts down says `Bye` and is
//! dropped at once. The slot map is then a pure function of the live set (`map::SlotMap`).
//!
//! The digests tell a node whether the others already see what it sees (`Members::agreed`):
//! redirections (`-MOVED`) and the `sunsubscribe` pushes that re-home subscribers are only
//! issued once every live node announces the same member set, so two nodes never send a client
//! back and forth while their views differ.
//!
//! Messages travel over a `MembershipTransport`: the backbone's control subjects in a
//! deployment, `LoopbackBus` in tests. This module holds no sockets, tasks or timers: the
//! caller passes the time in.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::time::Instant;

/// How a node is reached and who it is: what CLUSTER NODES/SLOTS/SHARDS report for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// 40 lowercase hex characters, as Redis's node names.
    pub id: String,
    pub shard_id: String,
    /// `cluster-announce-ip` (or the address derived from `bind`); may be empty, as a Redis node
    /// that has not learnt its address reports it (clients then use the address they dialled).
    pub ip: String,
    pub port: u16,
    pub tls_port: u16,
    pub hostname: String,
    /// Start time, milliseconds since the epoch: a restarted node (same id) is a new incarnation.
    pub started_ms: u64,
}

/// One control message between nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// "I am alive, and this is the member set I see" (`view` is its digest).
    Announce { node: NodeInfo, view: u64 },
    /// A node that just started: everyone announces now, so it learns the members at once.
    Hello { node: NodeInfo, view: u64 },
    /// A node shutting down: drop it now rather than after the timeout.
    Bye { id: String },
}

/// Marks the format, so a message from an incompatible version is ignored, not misread.
const MAGIC: &str = "pubsubd-cluster/1";

fn field(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

fn unfield(s: &str) -> String {
    if s == "-" {
        String::new()
    } else {
        s.to_string()
    }
}

impl Message {
    /// One line of space-separated fields (ids, addresses and hostnames never hold spaces).
    pub fn encode(&self) -> Bytes {
        let line = match self {
            Message::Announce { node, view } | Message::Hello { node, view } => {
                let kind = if matches!(self, Message::Hello { .. }) {
                    "hello"
                } else {
                    "announce"
                };
                format!(
                    "{MAGIC} {kind} {} {} {} {} {} {} {} {view:016x}",
                    node.id,
                    node.shard_id,
                    field(&node.ip),
                    node.port,
                    node.tls_port,
                    field(&node.hostname),
                    node.started_ms,
                )
            }
            Message::Bye { id } => format!("{MAGIC} bye {id}"),
        };
        Bytes::from(line)
    }

    /// Reads a message; `None` for anything malformed or from another format version.
    pub fn decode(b: &[u8]) -> Option<Message> {
        let s = std::str::from_utf8(b).ok()?;
        let f: Vec<&str> = s.split(' ').collect();
        if f.first() != Some(&MAGIC) {
            return None;
        }
        match (f.get(1).copied()?, f.len()) {
            ("bye", 3) => valid_id(f[2]).then(|| Message::Bye {
                id: f[2].to_string(),
            }),
            (kind @ ("announce" | "hello"), 10) => {
                let node = NodeInfo {
                    id: f[2].to_string(),
                    shard_id: f[3].to_string(),
                    ip: unfield(f[4]),
                    port: f[5].parse().ok()?,
                    tls_port: f[6].parse().ok()?,
                    hostname: unfield(f[7]),
                    started_ms: f[8].parse().ok()?,
                };
                if !valid_id(&node.id) || !valid_id(&node.shard_id) {
                    return None;
                }
                let view = u64::from_str_radix(f[9], 16).ok()?;
                Some(if kind == "hello" {
                    Message::Hello { node, view }
                } else {
                    Message::Announce { node, view }
                })
            }
            _ => None,
        }
    }
}

/// A node id: 40 lowercase hex characters.
pub fn valid_id(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Carries membership messages to every other node (the backbone's control subjects, or a
/// loopback in tests). Sending never blocks; a message may be lost, as announcements repeat.
pub trait MembershipTransport: Send + Sync {
    fn broadcast(&self, msg: Bytes);
}

/// A peer as last announced.
#[derive(Clone, Debug)]
pub struct Peer {
    pub info: NodeInfo,
    pub last_seen: Instant,
    /// Milliseconds since the epoch of the last announcement (CLUSTER NODES `pong-recv`).
    pub last_seen_ms: u64,
    /// The digest of the member set the peer sees.
    pub view: u64,
}

/// What a received message or a tick asks the caller to do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The live set changed: recompute the view and announce it.
    pub changed: bool,
    /// A newcomer asked for announcements.
    pub announce_now: bool,
}

/// The live set as seen by one node: itself plus the peers heard from within the timeout.
#[derive(Debug)]
pub struct Members {
    pub me: NodeInfo,
    peers: BTreeMap<String, Peer>,
}

impl Members {
    pub fn new(me: NodeInfo) -> Self {
        Members {
            me,
            peers: BTreeMap::new(),
        }
    }

    /// Applies one message received at `now` (`now_ms` since the epoch).
    pub fn receive(&mut self, msg: Message, now: Instant, now_ms: u64) -> Outcome {
        match msg {
            Message::Bye { id } => Outcome {
                changed: self.peers.remove(&id).is_some(),
                announce_now: false,
            },
            Message::Announce { node, view } | Message::Hello { node, view }
                if node.id == self.me.id =>
            {
                // Our own message coming back (a transport that echoes), or another process
                // with our id (`Cluster::receive` logs that): ignored either way.
                let _ = view;
                Outcome::default()
            }
            Message::Announce { node, view } => self.upsert(node, view, now, now_ms, false),
            Message::Hello { node, view } => self.upsert(node, view, now, now_ms, true),
        }
    }

    fn upsert(
        &mut self,
        node: NodeInfo,
        view: u64,
        now: Instant,
        now_ms: u64,
        hello: bool,
    ) -> Outcome {
        let changed = match self.peers.get(&node.id) {
            None => true,
            // A changed address is a changed map for clients, even with the same members.
            Some(p) => p.info != node,
        };
        let view_changed = self.peers.get(&node.id).map(|p| p.view) != Some(view);
        self.peers.insert(
            node.id.clone(),
            Peer {
                info: node,
                last_seen: now,
                last_seen_ms: now_ms,
                view,
            },
        );
        // A peer that now sees another member set than this node does is told at once what
        // this node sees (once per change of its view), so a lost announcement delays
        // agreement by a round trip, not by an announce interval.
        let differs = view_changed && view != digest(&self.live());
        Outcome {
            changed,
            announce_now: hello || differs,
        }
    }

    /// Drops peers silent for longer than `timeout`; true if any was dropped.
    pub fn expire(&mut self, now: Instant, timeout: Duration) -> bool {
        let before = self.peers.len();
        self.peers
            .retain(|_, p| now.saturating_duration_since(p.last_seen) <= timeout);
        self.peers.len() != before
    }

    /// Every live node, this one included, ordered by node id.
    pub fn live(&self) -> Vec<NodeInfo> {
        let mut all: Vec<NodeInfo> = self.peers.values().map(|p| p.info.clone()).collect();
        all.push(self.me.clone());
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    pub fn peer(&self, id: &str) -> Option<&Peer> {
        self.peers.get(id)
    }

    /// True when every live peer announced the member set whose digest is `view`.
    pub fn agreed(&self, view: u64) -> bool {
        self.peers.values().all(|p| p.view == view)
    }
}

/// The digest of a member set: FNV-1a over the sorted ids and addresses. Equal sets give equal
/// digests on every node.
pub fn digest(live: &[NodeInfo]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: &[u8]| {
        for &x in b {
            h ^= x as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    for n in live {
        eat(n.id.as_bytes());
        eat(n.ip.as_bytes());
        eat(&n.port.to_be_bytes());
        eat(&n.tls_port.to_be_bytes());
        eat(n.hostname.as_bytes());
    }
    h
}

/// An in-process bus: every transport joined to it delivers each broadcast to every other
/// member. For tests, and for a node with no backbone (where it has no other member).
type Inbox = tokio::sync::mpsc::UnboundedSender<Bytes>;

#[derive(Clone, Default)]
pub struct LoopbackBus {
    members: Arc<Mutex<Vec<(usize, Inbox)>>>,
    joined: Arc<std::sync::atomic::AtomicUsize>,
}

/// One node's end of a `LoopbackBus`.
pub struct LoopbackTransport {
    bus: LoopbackBus,
    me: usize,
}

impl LoopbackBus {
    /// Joins the bus: the transport to send with, and the receiver of everyone else's messages.
    pub fn join(
        &self,
    ) -> (
        LoopbackTransport,
        tokio::sync::mpsc::UnboundedReceiver<Bytes>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let me = self
            .joined
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.members.lock().push((me, tx));
        (
            LoopbackTransport {
                bus: self.clone(),
                me,
            },
            rx,
        )
    }
}

impl MembershipTransport for LoopbackTransport {
    fn broadcast(&self, msg: Bytes) {
        for (i, tx) in self.bus.members.lock().iter() {
            if *i != self.me {
                let _ = tx.send(msg.clone());
            }
        }
    }
}

impl Drop for LoopbackTransport {
    fn drop(&mut self) {
        self.bus.members.lock().retain(|(i, _)| *i != self.me);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(c: char, port: u16) -> NodeInfo {
        NodeInfo {
            id: c.to_string().repeat(40),
            shard_id: "f".repeat(40),
            ip: "127.0.0.1".into(),
            port,
            tls_port: 0,
            hostname: String::new(),
            started_ms: 1,
        }
    }

    #[test]
    fn messages_round_trip() {
        let mut n = node('a', 7000);
        n.hostname = "node-a.example".into();
        for m in [
            Message::Announce {
                node: n.clone(),
                view: 42,
            },
            Message::Hello {
                node: NodeInfo {
                    ip: String::new(),
                    ..n.clone()
                },
                view: u64::MAX,
            },
            Message::Bye { id: n.id.clone() },
        ] {
            assert_eq!(Message::decode(&m.encode()), Some(m));
        }
        assert_eq!(Message::decode(b"pubsubd-cluster/2 bye x"), None);
        assert_eq!(Message::decode(b"\xff"), None);
        assert_eq!(Message::decode(b"pubsubd-cluster/1 announce short"), None);
    }

    #[test]
    fn peers_join_expire_and_leave() {
        let t0 = Instant::now();
        let mut m = Members::new(node('b', 7001));
        let a = node('a', 7000);
        let out = m.receive(
            Message::Announce {
                node: a.clone(),
                view: 1,
            },
            t0,
            0,
        );
        assert!(out.changed);
        assert_eq!(
            m.live().iter().map(|n| n.port).collect::<Vec<_>>(),
            [7000, 7001]
        );
        // Hearing it again changes nothing; a hello asks for an announcement.
        let again = m.receive(
            Message::Hello {
                node: a.clone(),
                view: 1,
            },
            t0,
            0,
        );
        assert_eq!(
            again,
            Outcome {
                changed: false,
                announce_now: true
            }
        );
        let timeout = Duration::from_millis(5000);
        assert!(!m.expire(t0 + timeout, timeout));
        assert!(m.expire(t0 + timeout + Duration::from_millis(1), timeout));
        assert_eq!(m.live().len(), 1);
        m.receive(Message::Announce { node: a, view: 1 }, t0, 0);
        let bye = m.receive(Message::Bye { id: "a".repeat(40) }, t0, 0);
        assert!(bye.changed);
        assert_eq!(m.live().len(), 1);
    }

    #[test]
    fn a_peer_that_sees_another_member_set_is_answered_once_per_change() {
        let t0 = Instant::now();
        let mut m = Members::new(node('b', 7001));
        let a = node('a', 7000);
        let both = digest(&[a.clone(), node('b', 7001)]);
        // a still sees only itself: answer, so it learns of b.
        let lonely = digest(std::slice::from_ref(&a));
        let first = m.receive(
            Message::Announce {
                node: a.clone(),
                view: lonely,
            },
            t0,
            1,
        );
        assert!(first.changed && first.announce_now);
        // The same view again: no answer (one per change, no storm).
        let again = m.receive(
            Message::Announce {
                node: a.clone(),
                view: lonely,
            },
            t0,
            2,
        );
        assert!(!again.changed && !again.announce_now);
        // a now sees what b sees: nothing to tell it.
        let agreed = m.receive(
            Message::Announce {
                node: a,
                view: both,
            },
            t0,
            3,
        );
        assert!(!agreed.announce_now);
        assert!(m.agreed(both));
    }

    #[test]
    fn agreement_needs_every_peer_on_the_same_view() {
        let t0 = Instant::now();
        let mut m = Members::new(node('b', 7001));
        m.receive(
            Message::Announce {
                node: node('a', 7000),
                view: 7,
            },
            t0,
            0,
        );
        let mine = digest(&m.live());
        assert!(!m.agreed(mine));
        m.receive(
            Message::Announce {
                node: node('a', 7000),
                view: mine,
            },
            t0,
            0,
        );
        assert!(m.agreed(mine));
    }

    #[tokio::test]
    async fn loopback_bus_delivers_to_every_other_member() {
        let bus = LoopbackBus::default();
        let (a, mut ra) = bus.join();
        let (_b, mut rb) = bus.join();
        let (_c, mut rc) = bus.join();
        a.broadcast(Bytes::from_static(b"x"));
        assert_eq!(rb.recv().await.unwrap(), "x");
        assert_eq!(rc.recv().await.unwrap(), "x");
        assert!(ra.try_recv().is_err());
    }
}
