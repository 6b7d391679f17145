//! `ServerState`: what every connection and command shares — configuration, the registry, the
//! client table and the counters. Built once by `server::run`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use dashmap::DashMap;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::auth::users::Acl;
use crate::client::ClientHandle;
use crate::commands::table::Renames;
use crate::config::{Config, Runtime};
use crate::outbox::OutputLimits;
use crate::registry::Registry;
use crate::stats::Stats;

pub struct ServerState {
    pub config: Config,
    pub runtime: Runtime,
    pub limits: Arc<OutputLimits>,
    pub stats: Arc<Stats>,
    pub registry: Registry,
    /// Connected clients by id.
    pub clients: DashMap<u64, Arc<ClientHandle>>,
    next_client_id: AtomicU64,
    pub started: Instant,
    pub started_unix: u64,
    pub run_id: String,
    /// The TCP port actually listened on (the configured one, or the one the OS chose for 0).
    pub tcp_port: AtomicU64,
    /// Cancelled to shut the server down.
    pub shutdown: CancellationToken,
    /// Users, the ACL log and the aclfile.
    pub acl: Acl,
    /// `rename-command`.
    pub renames: Renames,
}

impl ServerState {
    pub fn new(config: Config, shutdown: CancellationToken) -> Arc<Self> {
        let stats = Arc::new(Stats::default());
        let (h, s, t) = config.pubsub_output_limit;
        // `Config::validate` has already refused a bad aclfile; if it changed since, start
        // with the configured users and say so.
        let acl = Acl::from_config(&config).unwrap_or_else(|e| {
            tracing::warn!("{e}");
            let mut c = config.clone();
            c.aclfile.clear();
            Acl::from_config(&c).unwrap_or_else(|_| {
                Acl::new(None, &[], None, c.acl_pubsub_default_all, c.acllog_max_len)
                    .expect("the default user always loads")
            })
        });
        Arc::new(ServerState {
            runtime: Runtime::new(&config),
            limits: Arc::new(OutputLimits::new(h, s, t)),
            registry: Registry::new(stats.clone()),
            stats,
            clients: DashMap::new(),
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
        })
    }

    /// A new client id: increasing, never reused (as Redis's).
    pub fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
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
