//! A server without sockets: a `ServerState` and a few clients whose commands go through the
//! real `commands::dispatch`, as a connection's reader runs them. After each command the replies
//! are moved into the client's outbox (as the reader does), every outbox is drained and parsed
//! with the strict reader, and clients that were closed (QUIT, CLIENT KILL, an ACL change) are
//! disconnected the way a connection ends: their subscriptions leave the registry.
//!
//! [`World::check`] holds the registry to the clients' own view of their subscriptions.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use pubsubd::client::{ClientHandle, ClientState};
use pubsubd::commands::{dispatch, Ctx, Login};
use pubsubd::config::Config;
use pubsubd::outbox::Outbox;
use pubsubd::protocol::{ReplyBuf, RespVersion};
use pubsubd::registry::Namespace;
use pubsubd::state::ServerState;
use tokio_util::sync::CancellationToken;

use super::resp::{self, Value};

/// One connected client.
pub struct Conn {
    pub state: ClientState,
    pub handle: Arc<ClientHandle>,
    reply: ReplyBuf,
    login: Login,
}

/// A server and its clients, indexed by slot (a disconnected slot gets a new client).
pub struct World {
    pub server: Arc<ServerState>,
    pub conns: Vec<Conn>,
}

impl World {
    /// A server with Redis's defaults and `n` connected clients.
    pub fn new(n: usize) -> Self {
        let server = ServerState::new(
            Config::default(),
            pubsubd::commands::catalogue(),
            CancellationToken::new(),
        );
        let mut w = World {
            server,
            conns: Vec::new(),
        };
        for _ in 0..n {
            let c = w.connect();
            w.conns.push(c);
        }
        w
    }

    fn connect(&self) -> Conn {
        let s = &self.server;
        let id = s.next_client_id();
        let outbox = Outbox::new(id, s.limits.clone(), s.stats.clone());
        let addr = format!("127.0.0.1:{}", 40000 + id);
        let handle = ClientHandle::new(id, addr, "127.0.0.1:6379".into(), id as i64, outbox);
        s.clients.insert(id, handle.clone());
        let mut state = ClientState::new(id);
        state.authenticated = pubsubd::auth::default_user_authenticated(&s.acl);
        Conn {
            login: Login::default(),
            reply: ReplyBuf::new(state.resp),
            state,
            handle,
        }
    }

    /// Runs `args` as client `slot`'s next command and returns what every client received,
    /// parsed. Panics if any output is not well-formed RESP of its client's protocol.
    pub fn run(&mut self, slot: usize, args: Vec<Bytes>) -> Vec<Vec<Value>> {
        let mut wakes = Vec::new();
        let conn = &mut self.conns[slot];
        let before = conn.state.resp;
        let is_exec = args
            .first()
            .is_some_and(|a| a.eq_ignore_ascii_case(b"exec"));
        let mut ctx = Ctx {
            server: &self.server,
            client: &mut conn.state,
            login: &mut conn.login,
            handle: &conn.handle,
            reply: &mut conn.reply,
            in_exec: false,
            wakes: &mut wakes,
        };
        dispatch(&mut ctx, args);
        if !conn.reply.is_empty() {
            conn.handle.outbox.push(conn.reply.take());
        }
        for o in wakes.drain(..) {
            o.wake();
        }
        let closed = std::mem::take(&mut conn.state.close_after_batch);
        self.server.close_clients(&closed.into_iter().collect());
        conn.state.call_stats.flush(&self.server.stats);
        conn.handle.meta.lock().last_cmd = conn.state.last_cmd;
        // A command that switched protocols (HELLO, RESET, or either inside EXEC) may write
        // replies of both; hold the others to their protocol strictly.
        let mixed = before != conn.state.resp || is_exec;
        let out = (0..self.conns.len())
            .map(|i| self.drain(i, mixed && i == slot))
            .collect();
        if self.conns[slot].state.close_after_reply {
            self.disconnect(slot);
        }
        for i in 0..self.conns.len() {
            if !self.conns[i].handle.outbox.is_open() {
                self.disconnect(i);
            }
        }
        out
    }

    /// Everything queued to client `slot`, parsed in its protocol (either, if `lenient`).
    fn drain(&self, slot: usize, lenient: bool) -> Vec<Value> {
        let conn = &self.conns[slot];
        let mut frames = VecDeque::new();
        let mut bytes = Vec::new();
        while conn.handle.outbox.try_batch(&mut frames) {
            for f in frames.drain(..) {
                bytes.extend_from_slice(&f);
                conn.handle.outbox.written(f.len());
            }
        }
        let proto = if lenient {
            RespVersion::Resp3
        } else {
            conn.state.resp
        };
        match resp::parse_all(&bytes, proto) {
            Ok(v) => v,
            Err(e) => panic!(
                "client {} ({proto:?}) got malformed output: {e}\n{:?}",
                conn.state.id,
                String::from_utf8_lossy(&bytes)
            ),
        }
    }

    /// Ends client `slot`'s connection as the server does, and puts a new client in its slot.
    pub fn disconnect(&mut self, slot: usize) {
        let fresh = self.connect();
        let old = std::mem::replace(&mut self.conns[slot], fresh);
        self.close(old);
    }

    /// Disconnects every client, leaving the server with none.
    pub fn disconnect_all(&mut self) {
        for c in std::mem::take(&mut self.conns) {
            self.close(c);
        }
    }

    /// What the server does when a connection ends: its queue closed, its subscriptions and
    /// its entries in the client and monitor lists gone.
    fn close(&self, c: Conn) {
        let (s, id) = (&c.state, c.state.id);
        c.handle.outbox.kill();
        self.server.registry.remove_client(
            id,
            s.channels.iter(),
            s.shard_channels.iter(),
            s.patterns.iter(),
        );
        self.server.clients.remove(&id);
        self.server.ops.monitors.remove(id);
    }

    /// The registry holds exactly the subscriptions the clients hold, each subscriber once, no
    /// entry without a subscriber, and its counters agree.
    pub fn check(&self) {
        type Subs = BTreeMap<Bytes, Vec<u64>>;
        let (mut ch, mut sh, mut pat) = (Subs::new(), Subs::new(), Subs::new());
        for c in &self.conns {
            let s = &c.state;
            for (set, map) in [
                (&s.channels, &mut ch),
                (&s.shard_channels, &mut sh),
                (&s.patterns, &mut pat),
            ] {
                for name in set.iter() {
                    map.entry(name.clone()).or_default().push(s.id);
                }
            }
            let meta = c.handle.meta.lock();
            assert_eq!(
                (meta.sub, meta.psub, meta.ssub),
                (s.channels.len(), s.patterns.len(), s.shard_channels.len()),
                "CLIENT LIST counts of client {}",
                s.id
            );
        }
        let mut snap = self.server.registry.snapshot();
        for m in [
            &mut snap.channels,
            &mut snap.shard_channels,
            &mut snap.patterns,
            &mut ch,
            &mut sh,
            &mut pat,
        ] {
            m.values_mut().for_each(|ids| ids.sort_unstable());
        }
        assert_eq!(snap.channels, ch, "channels");
        assert_eq!(snap.shard_channels, sh, "shard channels");
        assert_eq!(snap.patterns, pat, "patterns");
        let r = &self.server.registry;
        assert_eq!(r.channel_count(Namespace::Global), ch.len());
        assert_eq!(r.channel_count(Namespace::Shard), sh.len());
        assert_eq!(r.numpat(), pat.len());
        assert_eq!(self.server.clients.len(), self.conns.len());
    }
}
