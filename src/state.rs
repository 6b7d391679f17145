//! `ServerState`: what every connection and command shares — configuration, the registry, the
//! client table and the counters. Built once by `server::run`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use dashmap::DashMap;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::auth::catalogue::Catalogue;
use crate::auth::users::Acl;
use crate::client::ClientHandle;
use crate::config::{Config, Runtime};
use crate::ops::Ops;
use crate::outbox::OutputLimits;
use crate::protocol::Namespace;
use crate::registry::Registry;
use crate::stats::{Field, Live, Stats};

pub struct ServerState {
    pub config: Config,
    pub runtime: Runtime,
    pub limits: Arc<OutputLimits>,
    pub stats: Arc<Stats>,
    pub registry: Registry,
    /// Connected clients by id.
    pub clients: DashMap<u64, Arc<ClientHandle>>,
    /// Connections counted against `maxclients`: from accept (before any TLS handshake) to
    /// close, as Redis counts a client from `acceptCommonHandler`. `clients` only holds them
    /// once their task has started, so a burst of connections accepted together would all pass
    /// a check against it.
    connections: AtomicU64,
    next_client_id: AtomicU64,
    pub started: Instant,
    pub started_unix: u64,
    pub run_id: String,
    /// The TCP port actually listened on (the configured one, or the one the OS chose for 0).
    pub tcp_port: AtomicU64,
    /// Cancelled to shut the server down: readers stop taking commands.
    pub shutdown: CancellationToken,
    /// Cancelled once every reader has stopped after `shutdown` (or the grace time ran out):
    /// writers then write what is queued and close. Flushing any earlier could close a
    /// subscriber while a publisher's pipeline is still being run, losing messages whose
    /// PUBLISH was then acknowledged.
    pub flush: CancellationToken,
    /// Connections whose reader may still run commands (see `Readers`).
    pub readers: Readers,
    /// Users, the ACL log and the aclfile.
    pub acl: Acl,
    /// `rename-command`.
    pub renames: Renames,
    /// Operations: the configuration as CONFIG GET/SET/REWRITE see it (the start-up one,
    /// changed by CONFIG SET; hot paths read the cells in `runtime` and `limits` instead),
    /// MONITOR, CLIENT PAUSE, SLOWLOG, per-channel rates, and SHUTDOWN NOW.
    pub ops: Ops,
    /// `cluster-enabled yes`: membership, slot map and the CLUSTER commands' state.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// The NATS backbone (`backbone` directive); `None` for a standalone node.
    pub backbone: Option<Arc<crate::backbone::Backbone>>,
}

impl ServerState {
    /// The state of a server run with `config`, whose users' rules are about `catalogue`.
    pub fn new(
        config: Config,
        catalogue: &'static Catalogue,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let stats = Arc::new(Stats::default());
        let (h, s, t) = config.pubsub_output_limit;
        // `server::startup::check` has already refused a bad aclfile; if it changed since, start
        // with the configured users and say so.
        let acl = Acl::from_config(catalogue, &config).unwrap_or_else(|e| {
            tracing::warn!("{e}");
            let mut c = config.clone();
            c.aclfile.clear();
            Acl::from_config(catalogue, &c).unwrap_or_else(|_| {
                Acl::new(
                    catalogue,
                    None,
                    &[],
                    None,
                    c.acl_pubsub_default_all,
                    c.acllog_max_len,
                )
                .expect("the default user always loads")
            })
        });
        let ops = Ops::new(config.clone(), config.metrics_port != 0);
        let cluster = config.cluster_enabled.then(|| {
            // `server::startup::check` has already opened the node file; if it cannot be opened now,
            // run with an identity kept in memory only, and say so.
            let c = crate::cluster::Cluster::open(&config, config.port).unwrap_or_else(|e| {
                tracing::warn!("{e}; the node id will not survive a restart");
                let mut c = config.clone();
                c.cluster_config_file.clear();
                crate::cluster::Cluster::open(&c, config.port)
                    .expect("an in-memory node id needs no file")
            });
            Arc::new(c)
        });
        let backbone = config
            .backbone
            .enabled()
            .then(|| Arc::new(crate::backbone::Backbone::new(&config.backbone)));
        let registry = match &backbone {
            Some(b) => Registry::with_hook(stats.clone(), b.clone()),
            None => Registry::new(stats.clone()),
        };
        Arc::new(ServerState {
            runtime: Runtime::new(&config),
            limits: Arc::new(OutputLimits::new(h, s, t)),
            registry,
            backbone,
            stats,
            clients: DashMap::new(),
            connections: AtomicU64::new(0),
            next_client_id: AtomicU64::new(1),
            started: Instant::now(),
            started_unix: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            run_id: run_id(),
            tcp_port: AtomicU64::new(config.port as u64),
            acl,
            renames: Renames::new(&config.rename_command),
            config,
            shutdown,
            flush: CancellationToken::new(),
            readers: Readers::default(),
            ops,
            cluster,
        })
    }

    /// Makes a configuration changed by CONFIG SET the live one: every run-time cell takes its
    /// value, so running connections see it at once.
    pub fn apply_config(&self, old: &Config, next: Config) {
        self.runtime.apply(&next);
        if next.requirepass != old.requirepass {
            self.acl.set_requirepass(next.requirepass.0.as_bytes());
        }
        self.acl.set_pubsub_default_all(next.acl_pubsub_default_all);
        self.acl
            .log_max_len
            .store(next.acllog_max_len, Ordering::Relaxed);
        let (h, s, t) = next.pubsub_output_limit;
        self.limits.set(h, s, t);
        self.ops.slowlog.trim(next.slowlog_max_len);
        crate::logging::set_level(next.loglevel);
        *self.ops.live.write() = next;
    }

    /// A figure of INFO's Stats section that `Stats` does not hold.
    pub fn live(&self, figure: Live) -> u64 {
        match figure {
            Live::PubsubChannels => self.registry.channel_count(Namespace::Global) as u64,
            Live::PubsubPatterns => self.registry.numpat() as u64,
            Live::PubsubShardChannels => self.registry.channel_count(Namespace::Shard) as u64,
            Live::ConnectedNetOutput => self.clients.iter().map(|c| c.outbox.written_bytes()).sum(),
            Live::TrackingPrefixes => {
                let mut all = std::collections::HashSet::new();
                for c in self.clients.iter() {
                    all.extend(c.meta.lock().extra().tracking_prefixes.iter().cloned());
                }
                all.len() as u64
            }
        }
    }

    /// The value of a row of `stats::STATS_SECTION` (INFO and /metrics both read it here).
    pub fn stat(&self, field: &Field) -> u64 {
        field.value(&self.stats, |l| self.live(l))
    }

    /// Takes a `maxclients` slot for a connection just accepted; `None` when all are taken.
    pub fn admit(self: &Arc<Self>) -> Option<Admission> {
        let max = self.runtime.maxclients();
        if self.connections.fetch_add(1, Ordering::AcqRel) >= max {
            self.connections.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Admission(self.clone()))
    }

    /// Closes other clients now (CLIENT KILL, ACL DELUSER, revoked channels), as Redis frees a
    /// client another one kills: from the next command on nothing counts them, not CLIENT
    /// LIST/KILL, TRACKING REDIRECT or INFO, and not PUBLISH or PUBSUB. Their tasks still close
    /// the sockets; what they find left to remove is already gone. Walks every subscription
    /// (`Registry::drop_clients`), so it is for rare administrative changes.
    pub fn close_clients(&self, ids: &HashSet<u64>) {
        for id in ids {
            if let Some((_, h)) = self.clients.remove(id) {
                h.kill();
            }
            self.ops.monitors.remove(*id);
        }
        self.registry.drop_clients(ids);
    }

    /// A new client id: increasing, never reused (as Redis's).
    pub fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// `rename-command`: names that now reach a command, and original names that no longer do.
/// Names are lowercase; `server::startup::check` has refused names of no command.
#[derive(Debug, Default)]
pub struct Renames {
    /// New name → the command's own name.
    pub to: HashMap<String, String>,
    /// Commands no longer reachable by their own name.
    pub hidden: HashSet<String>,
}

impl Renames {
    /// From `(from, to)` pairs (lowercase); an empty `to` only hides the command.
    pub fn new(pairs: &[(String, String)]) -> Self {
        let mut r = Renames::default();
        for (from, to) in pairs {
            r.hidden.insert(from.clone());
            if !to.is_empty() {
                r.to.insert(to.clone(), from.clone());
            }
        }
        r
    }

    pub fn is_empty(&self) -> bool {
        self.hidden.is_empty()
    }
}

/// The backbone hears of interest changes and local publishes from the registry.
impl crate::registry::Hook for crate::backbone::Backbone {
    fn channel_interest(&self, ns: crate::registry::Namespace, channel: &[u8], subscribed: bool) {
        crate::backbone::Backbone::channel_interest(self, ns, channel, subscribed)
    }
    fn pattern_interest(&self, pattern: &[u8], subscribed: bool) {
        crate::backbone::Backbone::pattern_interest(self, pattern, subscribed)
    }
    fn published(&self, ns: crate::registry::Namespace, channel: &[u8], payload: &[u8]) {
        crate::backbone::Backbone::published(self, ns, channel, payload)
    }
}

/// Other nodes' messages enter through the registry, like a local PUBLISH that is not sent on.
impl crate::backbone::Sink for ServerState {
    fn deliver(
        &self,
        ns: crate::registry::Namespace,
        channel: &[u8],
        payload: &[u8],
        wakes: &mut Vec<crate::outbox::Outbox>,
    ) {
        self.registry.deliver(ns, channel, payload, wakes);
    }
}

/// A connection's `maxclients` slot, given back when dropped.
pub struct Admission(Arc<ServerState>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts the connections whose reader may still run a command, so that shutdown can wait for
/// the last PUBLISH to be fanned out before the writers flush and close.
#[derive(Default)]
pub struct Readers {
    active: AtomicUsize,
    idle: tokio::sync::Notify,
}

/// A reader counted in `Readers`, until dropped.
pub struct Reading<'a>(&'a Readers);

impl Readers {
    /// Counts a reader in. The caller checks `shutdown` *after* this: either shutdown sees this
    /// reader and waits for it, or the reader sees shutdown and runs nothing.
    pub fn enter(&self) -> Reading<'_> {
        self.active.fetch_add(1, Ordering::SeqCst);
        Reading(self)
    }

    /// Resolves once no reader is running.
    pub async fn stopped(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.active.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// 40 hex characters, different for every start (INFO `run_id`).
fn run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::with_capacity(40);
    let mut i = 0u64;
    while out.len() < 40 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u128(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        out.push_str(&format!("{:016x}", h.finish()));
        i += 1;
    }
    out.truncate(40);
    out
}
