//! Client state. `ClientState` is owned by the connection's reader and changed only by the
//! commands that client runs. `ClientHandle` is the part other connections may see or act on
//! (CLIENT LIST, CLIENT KILL, INFO), kept in the server's client table.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use indexmap::IndexSet;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::outbox::Outbox;
use crate::protocol::{Request, RespVersion};

/// `CLIENT REPLY` mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReplyMode {
    #[default]
    On,
    Off,
    /// Skip the reply of the command after the current one (`CLIENT REPLY SKIP`).
    SkipNext,
    /// Skip the reply of the current command.
    Skip,
}

/// A MULTI in progress.
#[derive(Debug, Default)]
pub struct Transaction {
    pub queued: Vec<Request>,
    /// A command was rejected while queueing: EXEC will answer EXECABORT.
    pub dirty: bool,
    /// CLIENT LIST `multi-mem`: Redis's `mstate.argv_len_sums`, for each queued command its
    /// argument bytes plus one pointer per argument.
    pub argv_len_sums: usize,
}

/// CLIENT TRACKING state (see `commands::tracking`; nothing is ever invalidated here).
#[derive(Debug, Default, Clone)]
pub struct Tracking {
    pub on: bool,
    /// REDIRECT target id, 0 for none.
    pub redirect: u64,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// CLIENT CACHING YES/NO given for the next command.
    pub caching: bool,
    /// BCAST prefixes, sorted bytewise (Redis keeps them in a radix tree).
    pub prefixes: Vec<Bytes>,
}

/// Command counters of one connection, added to the server's once per batch of commands so
/// that connections running the same command do not contend on shared counters.
#[derive(Debug, Default)]
pub struct CallStats {
    /// (command index, calls, nanoseconds, failed calls)
    entries: Vec<(usize, u64, u64, u64)>,
}

impl CallStats {
    /// Records `calls` successful calls that took `nanos` together.
    pub fn record_many(&mut self, index: usize, calls: u64, nanos: u64) {
        match self.entries.iter_mut().find(|e| e.0 == index) {
            Some(e) => {
                e.1 += calls;
                e.2 += nanos;
            }
            None => self.entries.push((index, calls, nanos, 0)),
        }
    }

    pub fn record(&mut self, index: usize, nanos: u64, failed: bool) {
        match self.entries.iter_mut().find(|e| e.0 == index) {
            Some(e) => {
                e.1 += 1;
                e.2 += nanos;
                e.3 += failed as u64;
            }
            None => self.entries.push((index, 1, nanos, failed as u64)),
        }
    }

    /// Adds the counts to the server's and starts over, keeping no allocation: a connection
    /// that goes idle holds none.
    pub fn flush(&mut self, stats: &crate::stats::Stats) {
        use std::sync::atomic::Ordering::Relaxed;
        let mut total = 0;
        for (index, calls, nanos, failed) in std::mem::take(&mut self.entries) {
            total += calls;
            stats.commands.with(index, |c| {
                c.calls.fetch_add(calls, Relaxed);
                c.nanos.fetch_add(nanos, Relaxed);
                if failed > 0 {
                    c.failed_calls.fetch_add(failed, Relaxed);
                }
            });
        }
        if total > 0 {
            stats.total_commands_processed.fetch_add(total, Relaxed);
        }
    }
}

/// The name of the user `default`, shared by every client logged in as it (most of them).
pub fn default_user_name() -> Arc<str> {
    static NAME: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from("default"));
    NAME.clone()
}

/// Subscriptions of one kind (channels, patterns or shard channels) in the order they were
/// made: a plain list while short (most clients hold a few, and an idle subscriber's one
/// costs a 32-byte allocation), an indexed set beyond `SubscriptionSet::LIST_MAX`, so that a
/// client with thousands still finds one at once.
#[derive(Debug)]
pub enum SubscriptionSet {
    List(Vec<Bytes>),
    Indexed(Box<IndexSet<Bytes>>),
}

impl Default for SubscriptionSet {
    fn default() -> Self {
        SubscriptionSet::List(Vec::new())
    }
}

impl SubscriptionSet {
    const LIST_MAX: usize = 16;

    /// Adds `name` at the end; false if it is there already.
    pub fn insert(&mut self, name: Bytes) -> bool {
        match self {
            SubscriptionSet::List(v) => {
                if v.contains(&name) {
                    return false;
                }
                if v.len() < Self::LIST_MAX {
                    if v.capacity() == 0 {
                        v.reserve_exact(1);
                    }
                    v.push(name);
                } else {
                    let mut set: IndexSet<Bytes> = v.drain(..).collect();
                    set.insert(name);
                    *self = SubscriptionSet::Indexed(Box::new(set));
                }
                true
            }
            SubscriptionSet::Indexed(set) => set.insert(name),
        }
    }

    /// Removes `name`, keeping the others' order; false if it was not there.
    pub fn shift_remove(&mut self, name: &[u8]) -> bool {
        let removed = match self {
            SubscriptionSet::List(v) => match v.iter().position(|n| n[..] == *name) {
                Some(i) => {
                    v.remove(i);
                    true
                }
                None => false,
            },
            SubscriptionSet::Indexed(set) => set.shift_remove(name),
        };
        if removed && self.is_empty() {
            self.clear();
        }
        removed
    }

    pub fn len(&self) -> usize {
        match self {
            SubscriptionSet::List(v) => v.len(),
            SubscriptionSet::Indexed(set) => set.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// In subscription order.
    pub fn iter(&self) -> impl Iterator<Item = &Bytes> {
        let (list, set) = match self {
            SubscriptionSet::List(v) => (&v[..], None),
            SubscriptionSet::Indexed(set) => (&[][..], Some(set.iter())),
        };
        list.iter().chain(set.into_iter().flatten())
    }

    /// Empties it, giving its allocations back.
    pub fn clear(&mut self) {
        *self = SubscriptionSet::default();
    }
}

/// Everything a connection's commands read and change.
#[derive(Debug)]
pub struct ClientState {
    pub id: u64,
    pub resp: RespVersion,
    pub db: u64,
    /// Subscriptions in the order they were made (UNSUBSCRIBE without arguments follows it).
    pub channels: SubscriptionSet,
    pub patterns: SubscriptionSet,
    pub shard_channels: SubscriptionSet,
    /// Boxed: most clients never use one, and this state lives as long as the connection.
    pub multi: Option<Box<Transaction>>,
    pub reply_mode: ReplyMode,
    pub authenticated: bool,
    pub user: Arc<str>,
    /// Set by QUIT: stop reading, write what is queued, close.
    pub close_after_reply: bool,
    /// Other clients this one's commands closed the way Redis frees them only when its event
    /// loop iteration ends (`freeClientAsync`: ACL DELUSER): closed when the batch of commands
    /// read together is done, so the rest of the batch still sees them.
    pub close_after_batch: Vec<u64>,
    /// The last command run (`cmd` in CLIENT LIST).
    pub last_cmd: &'static str,
    pub call_stats: CallStats,
    pub tracking: Tracking,
    /// The sum of the current command's argument lengths (`argv-mem` in CLIENT INFO).
    pub argv_mem: usize,
    /// A subscription closed the outbox's gate in the running batch (`Outbox::gate`); the
    /// reader opens it once the backbone holds the interest.
    pub output_gated: bool,
}

impl ClientState {
    pub fn new(id: u64) -> Self {
        ClientState {
            id,
            resp: RespVersion::Resp2,
            db: 0,
            channels: SubscriptionSet::default(),
            patterns: SubscriptionSet::default(),
            shard_channels: SubscriptionSet::default(),
            multi: None,
            reply_mode: ReplyMode::On,
            authenticated: true,
            user: default_user_name(),
            close_after_reply: false,
            close_after_batch: Default::default(),
            last_cmd: "NULL",
            call_stats: CallStats::default(),
            tracking: Tracking::default(),
            argv_mem: 0,
            output_gated: false,
        }
    }

    /// Channels plus patterns: the count SUBSCRIBE/PSUBSCRIBE confirmations carry.
    pub fn subscription_count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Whether the client is in the pubsub class (any subscription at all).
    pub fn is_pubsub(&self) -> bool {
        !(self.channels.is_empty() && self.patterns.is_empty() && self.shard_channels.is_empty())
    }

    /// RESP2 clients with subscriptions may run only a few commands (Redis's "subscribe context").
    pub fn in_resp2_subscribe_context(&self) -> bool {
        self.resp == RespVersion::Resp2 && self.is_pubsub()
    }
}

/// What others may read of a client (refreshed by its reader after each command).
#[derive(Debug, Clone, Default)]
pub struct ClientMeta {
    /// The name, library and tracking settings, which most clients never set: out of line.
    extra: Option<Box<MetaExtra>>,
    pub db: u64,
    pub resp: u8,
    pub sub: usize,
    pub psub: usize,
    pub ssub: usize,
    /// Commands queued in MULTI, or -1.
    pub multi: i64,
    /// `multi-mem`: see `Transaction::argv_len_sums`.
    pub multi_mem: usize,
    pub last_cmd: &'static str,
    pub user: Arc<str>,
    pub reply_off: bool,
    /// Bytes in the query buffer: while a batch of commands runs, all it was read with (the
    /// current command, what came before it in the same read and what is pipelined after
    /// it, as Redis trims its query buffer only after the batch); between batches, the part
    /// of a request not yet complete.
    pub qbuf: usize,
    /// In MONITOR mode (flag `O`).
    pub monitor: bool,
    /// CLIENT NO-EVICT on (flag `e`).
    pub no_evict: bool,
    /// CLIENT NO-TOUCH on (flag `T`).
    pub no_touch: bool,
    /// To be closed when another client's batch ends (flag `A`, Redis's CLIENT_CLOSE_ASAP).
    pub close_asap: bool,
}

/// The part of `ClientMeta` a client has only once it sets it.
#[derive(Debug, Clone, Default)]
pub struct MetaExtra {
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    /// Tracking on: (BCAST, redirect id) — flags `t`/`B` and `redir=`.
    pub tracking: Option<(bool, u64)>,
    /// BCAST tracking prefixes (INFO `tracking_total_prefixes` counts the distinct ones).
    pub tracking_prefixes: Vec<Bytes>,
}

static NO_EXTRA: MetaExtra = MetaExtra {
    name: None,
    lib_name: None,
    lib_ver: None,
    tracking: None,
    tracking_prefixes: Vec::new(),
};

impl ClientMeta {
    /// The name, library and tracking settings (all unset unless the client set some).
    pub fn extra(&self) -> &MetaExtra {
        self.extra.as_deref().unwrap_or(&NO_EXTRA)
    }

    /// The same, to change.
    pub fn extra_mut(&mut self) -> &mut MetaExtra {
        self.extra.get_or_insert_default()
    }

    /// RESET: no name and no tracking (the library name and version stay, as in Redis).
    pub fn reset_extra(&mut self) {
        if let Some(e) = self.extra.as_deref_mut() {
            e.name = None;
            e.tracking = None;
            e.tracking_prefixes = Vec::new();
            if e.lib_name.is_none() && e.lib_ver.is_none() {
                self.extra = None;
            }
        }
    }
}

/// The shared face of a connected client.
#[derive(Debug)]
pub struct ClientHandle {
    pub id: u64,
    pub addr: String,
    pub laddr: String,
    pub fd: i64,
    pub created: Instant,
    /// Milliseconds since `created` at the last command (for `idle`).
    last_interaction_ms: AtomicU64,
    /// A request of this client waits for CLIENT PAUSE to end: not idle (Redis does not time
    /// out a client whose command it postponed).
    pub postponed: AtomicBool,
    /// The outbox's `written_bytes` when the idle check last looked (see `server::mod`).
    pub written_seen: AtomicU64,
    /// The connection waits for input without a task (see `server::connection::park`).
    pub parked: AtomicBool,
    pub outbox: Outbox,
    pub meta: Mutex<ClientMeta>,
}

impl ClientHandle {
    pub fn new(id: u64, addr: String, laddr: String, fd: i64, outbox: Outbox) -> Arc<Self> {
        Arc::new(ClientHandle {
            id,
            addr,
            laddr,
            fd,
            created: Instant::now(),
            last_interaction_ms: AtomicU64::new(0),
            postponed: AtomicBool::new(false),
            written_seen: AtomicU64::new(0),
            parked: AtomicBool::new(false),
            outbox,
            meta: Mutex::new(ClientMeta {
                multi: -1,
                last_cmd: "NULL",
                user: default_user_name(),
                ..ClientMeta::default()
            }),
        })
    }

    /// Records an interaction now; returns its time (milliseconds since `created`).
    pub fn touch(&self) -> u64 {
        let now = self.created.elapsed().as_millis() as u64;
        self.last_interaction_ms.store(now, Ordering::Relaxed);
        now
    }

    /// Seconds since the last command.
    pub fn idle_secs(&self) -> u64 {
        self.idle_millis() / 1000
    }

    /// Milliseconds since the last input.
    pub fn idle_millis(&self) -> u64 {
        let now = self.created.elapsed().as_millis() as u64;
        now.saturating_sub(self.last_interaction_ms.load(Ordering::Relaxed))
    }

    pub fn age_secs(&self) -> u64 {
        self.created.elapsed().as_secs()
    }

    /// Closes the connection now (CLIENT KILL of another client).
    pub fn kill(&self) {
        self.outbox.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::SubscriptionSet;
    use bytes::Bytes;

    fn names(s: &SubscriptionSet) -> Vec<String> {
        s.iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn subscription_set_keeps_order_through_both_forms() {
        let mut s = SubscriptionSet::default();
        assert!(s.is_empty());
        for i in 0..40 {
            assert!(s.insert(Bytes::from(format!("c{i}"))));
            assert!(!s.insert(Bytes::from(format!("c{i}"))), "no duplicates");
            assert_eq!(s.len(), i + 1);
        }
        assert!(matches!(s, SubscriptionSet::Indexed(_)));
        let want: Vec<String> = (0..40).map(|i| format!("c{i}")).collect();
        assert_eq!(names(&s), want);
        assert!(s.shift_remove(b"c3"));
        assert!(!s.shift_remove(b"c3"));
        assert_eq!(names(&s)[3], "c4", "order kept after a removal");
        for i in 0..40 {
            s.shift_remove(format!("c{i}").as_bytes());
        }
        assert!(s.is_empty());
        assert!(matches!(&s, SubscriptionSet::List(v) if v.capacity() == 0));

        let mut small = SubscriptionSet::default();
        small.insert(Bytes::from_static(b"a"));
        small.insert(Bytes::from_static(b"b"));
        small.insert(Bytes::from_static(b"c"));
        assert!(small.shift_remove(b"b"));
        assert_eq!(names(&small), ["a", "c"]);
        small.clear();
        assert_eq!(small.len(), 0);
    }
}
