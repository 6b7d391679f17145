//! Server configuration, built in layers: Redis's defaults → redis.conf → command-line
//! directives → `validate()` → an immutable `Config`. Settings that CONFIG SET may change at run
//! time live in their own shared cells (`outbox::OutputLimits`, the atomics in `Runtime`).

pub mod cli;
pub mod env;
pub mod file;
pub mod params;
pub mod rewrite;
pub mod split;

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering};

pub use file::ConfigError;

/// `proto-max-bulk-len` default (512mb).
pub const DEFAULT_PROTO_MAX_BULK_LEN: usize = 512 * 1024 * 1024;
/// `client-query-buffer-limit` default (1gb).
pub const DEFAULT_CLIENT_QUERY_BUFFER_LIMIT: usize = 1024 * 1024 * 1024;
/// `client-output-buffer-limit pubsub` default: `32mb 8mb 60` (hard, soft, soft seconds).
pub const DEFAULT_PUBSUB_OUTPUT_LIMIT: (u64, u64, u64) = (32 * 1024 * 1024, 8 * 1024 * 1024, 60);
/// `acllog-max-len` default.
pub const DEFAULT_ACLLOG_MAX_LEN: usize = 128;

/// The default `cluster-node-timeout` in milliseconds. Redis's is 15000, tuned for failover
/// votes; here it is only how long the subscribers of a vanished node wait for the slot map to
/// move its slots, so it is shorter.
pub const DEFAULT_CLUSTER_NODE_TIMEOUT_MS: u64 = 5000;

/// `loglevel`, with Redis's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Verbose,
    Notice,
    Warning,
    Nothing,
}

impl LogLevel {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "debug" => LogLevel::Debug,
            "verbose" => LogLevel::Verbose,
            "notice" => LogLevel::Notice,
            "warning" => LogLevel::Warning,
            "nothing" => LogLevel::Nothing,
            _ => return None,
        })
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => LogLevel::Debug,
            1 => LogLevel::Verbose,
            2 => LogLevel::Notice,
            3 => LogLevel::Warning,
            _ => LogLevel::Nothing,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Verbose => "verbose",
            LogLevel::Notice => "notice",
            LogLevel::Warning => "warning",
            LogLevel::Nothing => "nothing",
        }
    }

    /// The `tracing` filter directive for this level.
    pub fn filter(self) -> &'static str {
        match self {
            LogLevel::Debug => "trace",
            // The NATS client logs every event at info; the backbone logs its own lines.
            LogLevel::Verbose => "debug,async_nats=info",
            LogLevel::Notice => "info,async_nats=warn",
            LogLevel::Warning => "warn",
            LogLevel::Nothing => "off",
        }
    }
}

/// A value that must never be printed (passwords, `user` rules): `Debug` shows `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(pub T);

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `tls-auth-clients`: whether TLS clients must present a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsAuthClients {
    Yes,
    No,
    Optional,
}

/// The TLS directives (Redis's names). `tls_port` 0 means no TLS listener.
#[derive(Clone, Debug)]
pub struct TlsConfig {
    pub port: u16,
    pub cert_file: String,
    pub key_file: String,
    pub key_file_pass: Secret<String>,
    pub ca_cert_file: String,
    pub ca_cert_dir: String,
    pub auth_clients: TlsAuthClients,
    /// `tls-protocols`: empty means TLSv1.2 and TLSv1.3.
    pub protocols: Vec<String>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            port: 0,
            cert_file: String::new(),
            key_file: String::new(),
            key_file_pass: Secret::default(),
            ca_cert_file: String::new(),
            ca_cert_dir: String::new(),
            auth_clients: TlsAuthClients::Yes,
            protocols: Vec::new(),
        }
    }
}

/// The `backbone-*` directives: the NATS servers a node scales out over (see `backbone`).
/// Only a description; the backbone module checks files and connects.
#[derive(Clone, Debug)]
pub struct BackboneConfig {
    /// `backbone URL[,URL…]`: `nats://` or `tls://`, credentials allowed in the URL (so it is
    /// redacted in `Debug`, and shown by CONFIG GET like `requirepass`). Empty: standalone.
    pub urls: Secret<String>,
    /// `backbone-prefix` (default `pubsubd`): the subject namespace of this pubsubd cluster.
    pub prefix: String,
    pub creds_file: String,
    pub tls_ca_cert_file: String,
    pub tls_cert_file: String,
    pub tls_key_file: String,
    /// `backbone-required yes`: refuse to start unless the backbone answers within
    /// `backbone-connect-timeout`. Default no: start, serve local clients, keep retrying.
    pub required: bool,
    /// `backbone-connect-timeout` (milliseconds): one connection attempt, TLS and auth included.
    pub connect_timeout_ms: u64,
    /// `backbone-queue-limit` (bytes): messages waiting to go out to NATS; beyond it local
    /// publishes are not forwarded (counted in INFO `backbone_dropped_out`).
    pub queue_limit: u64,
    /// `backbone-reassembly-limit` (bytes): chunks of partly received large messages.
    pub reassembly_limit: u64,
}

impl Default for BackboneConfig {
    fn default() -> Self {
        BackboneConfig {
            urls: Secret::default(),
            prefix: "pubsubd".to_string(),
            creds_file: String::new(),
            tls_ca_cert_file: String::new(),
            tls_cert_file: String::new(),
            tls_key_file: String::new(),
            required: false,
            connect_timeout_ms: 2000,
            queue_limit: 64 << 20,
            reassembly_limit: 64 << 20,
        }
    }
}

impl BackboneConfig {
    /// Whether a backbone is configured.
    pub fn enabled(&self) -> bool {
        !self.urls.0.trim().is_empty()
    }

    /// The configured URLs.
    pub fn url_list(&self) -> Vec<String> {
        self.urls
            .0
            .split([',', ' '])
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// The whole configuration. Defaults are Redis 7's, except `bind` (loopback only, which is what
/// Redis's shipped redis.conf sets).
#[derive(Clone, Debug)]
pub struct Config {
    pub bind: Vec<String>,
    pub port: u16,
    pub maxclients: u64,
    /// Idle seconds before a client is closed (0: never). Pub/sub clients are exempt, as in Redis.
    pub timeout: u64,
    pub tcp_keepalive: u64,
    pub loglevel: LogLevel,
    pub logfile: String,
    pub pidfile: String,
    pub databases: u64,
    /// `client-output-buffer-limit pubsub <hard> <soft> <seconds>`.
    pub pubsub_output_limit: (u64, u64, u64),
    /// The `normal` and `replica` classes: accepted, reported by CONFIG GET, without effect
    /// (clients that are not subscribed are held back by backpressure instead).
    pub normal_output_limit: (u64, u64, u64),
    pub replica_output_limit: (u64, u64, u64),
    /// `metrics-port`: the Prometheus endpoint's port on every `bind` address (0: off).
    pub metrics_port: u16,
    /// `slowlog-log-slower-than` (microseconds; negative: off, 0: every command).
    pub slowlog_log_slower_than: i64,
    pub slowlog_max_len: u64,
    /// `supervised`: `systemd` (or `auto` under systemd) sends READY=1/STOPPING=1 to
    /// `$NOTIFY_SOCKET`, for `Type=notify` units such as Debian's redis-server.service.
    pub supervised: String,
    /// `daemonize yes` is accepted while parsing (Debian's redis.conf has it and its unit
    /// overrides it with `--daemonize no`) and refused at start if it is still set.
    pub daemonize: bool,
    /// The config file the server was started with, as an absolute path ("" for none or
    /// stdin): INFO `config_file`, and the file CONFIG REWRITE rewrites.
    pub config_file: String,
    pub proto_max_bulk_len: usize,
    pub client_query_buffer_limit: usize,
    /// Worker threads (`io-threads`); 0 means one per CPU.
    pub io_threads: usize,
    /// Seconds SIGTERM waits for queued output to be written before closing connections.
    pub shutdown_timeout: u64,
    /// Directives accepted for compatibility but without effect, with the line they came from.
    pub ignored: Vec<String>,
    /// Other things start-up should warn about, found while loading (logged once).
    pub warnings: Vec<String>,
    /// `requirepass`: the default user's password (empty: none).
    pub requirepass: Secret<String>,
    /// `user <name> <rules…>` lines, name first.
    pub users: Secret<Vec<Vec<String>>>,
    /// `aclfile` (empty: none).
    pub aclfile: String,
    /// `acl-pubsub-default allchannels` (true) or `resetchannels` (false, Redis 7's default).
    pub acl_pubsub_default_all: bool,
    pub acllog_max_len: usize,
    pub protected_mode: bool,
    /// `unixsocket` path (empty: none) and `unixsocketperm` (octal mode, 0: leave as created).
    pub unixsocket: String,
    pub unixsocketperm: u32,
    /// `rename-command <from> <to>` pairs, lowercase; an empty `to` removes the command.
    pub rename_command: Vec<(String, String)>,
    pub tls: TlsConfig,
    /// `user` and `rename-command` lines as read, for the checks that need to know the commands
    /// (`server::startup`), which report them with their file and line.
    pub lines_to_check: Secret<Vec<SourceLine>>,
    /// `cluster-enabled`: answer as a Redis Cluster node (CLUSTER, slot checks, INFO).
    pub cluster_enabled: bool,
    /// `cluster-node-timeout` in milliseconds: a peer silent this long leaves the slot map.
    pub cluster_node_timeout: u64,
    /// `cluster-announce-*`: the address other nodes and clients are given for this node
    /// (empty / 0: derived from `bind`, `port` and `tls-port`).
    pub cluster_announce_ip: String,
    pub cluster_announce_port: u16,
    pub cluster_announce_tls_port: u16,
    pub cluster_announce_hostname: String,
    /// `cluster-config-file`: where the node id is kept across restarts ("": not kept).
    pub cluster_config_file: String,
    pub backbone: BackboneConfig,
}

/// A directive line as read from a file or the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLine {
    /// The directive, lowercase, and its arguments.
    pub args: Vec<String>,
    /// The file (or "the command line"), as the fatal config report names it.
    pub file: String,
    pub line: usize,
    pub text: String,
    /// `acl-pubsub-default` as of this line: Redis checks a `user` line's rules as it reads it.
    pub acl_pubsub_default_all: bool,
}

impl SourceLine {
    /// Redis's fatal config report for this line.
    pub fn error(&self, reason: String) -> ConfigError {
        ConfigError::Directive {
            version: env!("CARGO_PKG_VERSION"),
            file: self.file.clone(),
            line: self.line,
            text: self.text.clone(),
            reason,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: vec!["127.0.0.1".to_string()],
            port: 6379,
            maxclients: 10000,
            timeout: 0,
            tcp_keepalive: 300,
            loglevel: LogLevel::Notice,
            logfile: String::new(),
            pidfile: String::new(),
            databases: 16,
            pubsub_output_limit: DEFAULT_PUBSUB_OUTPUT_LIMIT,
            normal_output_limit: (0, 0, 0),
            replica_output_limit: (256 << 20, 64 << 20, 60),
            metrics_port: 0,
            slowlog_log_slower_than: 10_000,
            slowlog_max_len: 128,
            supervised: "no".to_string(),
            daemonize: false,
            config_file: String::new(),
            proto_max_bulk_len: DEFAULT_PROTO_MAX_BULK_LEN,
            client_query_buffer_limit: DEFAULT_CLIENT_QUERY_BUFFER_LIMIT,
            io_threads: 0,
            shutdown_timeout: 10,
            ignored: Vec::new(),
            warnings: Vec::new(),
            requirepass: Secret::default(),
            users: Secret::default(),
            aclfile: String::new(),
            acl_pubsub_default_all: false,
            acllog_max_len: DEFAULT_ACLLOG_MAX_LEN,
            protected_mode: true,
            unixsocket: String::new(),
            unixsocketperm: 0,
            rename_command: Vec::new(),
            lines_to_check: Secret::default(),
            tls: TlsConfig::default(),
            cluster_enabled: false,
            cluster_node_timeout: DEFAULT_CLUSTER_NODE_TIMEOUT_MS,
            cluster_announce_ip: String::new(),
            cluster_announce_port: 0,
            cluster_announce_tls_port: 0,
            cluster_announce_hostname: String::new(),
            cluster_config_file: "nodes.conf".to_string(),
            backbone: BackboneConfig::default(),
        }
    }
}

impl Config {
    /// Checks what can only be checked once every directive is in: users in redis.conf and an
    /// aclfile together. Checks that need a subsystem (ACL rules, command names, TLS material)
    /// run where the server is assembled (`server::startup::check`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.aclfile.is_empty() && !self.users.0.is_empty() {
            return Err(ConfigError::Fatal { reason: "Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into() });
        }
        Ok(())
    }

    /// Worker threads to run: `io-threads` if set, else one per CPU.
    pub fn worker_threads(&self) -> usize {
        if self.io_threads > 0 {
            self.io_threads
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
    }
}

/// Settings that may change while the server runs (CONFIG SET), read where they apply.
#[derive(Debug)]
pub struct Runtime {
    pub maxclients: AtomicU64,
    pub timeout: AtomicU64,
    pub tcp_keepalive: AtomicU64,
    pub shutdown_timeout: AtomicU64,
    pub proto_max_bulk_len: AtomicUsize,
    pub client_query_buffer_limit: AtomicUsize,
    pub slowlog_log_slower_than: AtomicI64,
    pub slowlog_max_len: AtomicU64,
    pub protected_mode: std::sync::atomic::AtomicBool,
    loglevel: AtomicU8,
}

impl Runtime {
    pub fn new(cfg: &Config) -> Self {
        let r = Runtime {
            maxclients: AtomicU64::new(0),
            timeout: AtomicU64::new(0),
            tcp_keepalive: AtomicU64::new(0),
            shutdown_timeout: AtomicU64::new(0),
            proto_max_bulk_len: AtomicUsize::new(0),
            client_query_buffer_limit: AtomicUsize::new(0),
            slowlog_log_slower_than: AtomicI64::new(0),
            slowlog_max_len: AtomicU64::new(0),
            protected_mode: std::sync::atomic::AtomicBool::new(true),
            loglevel: AtomicU8::new(0),
        };
        r.apply(cfg);
        r
    }

    /// Takes every run-time setting from `cfg` (at start and after CONFIG SET).
    pub fn apply(&self, cfg: &Config) {
        let r = Ordering::Relaxed;
        self.maxclients.store(cfg.maxclients, r);
        self.timeout.store(cfg.timeout, r);
        self.tcp_keepalive.store(cfg.tcp_keepalive, r);
        self.shutdown_timeout.store(cfg.shutdown_timeout, r);
        self.proto_max_bulk_len.store(cfg.proto_max_bulk_len, r);
        self.client_query_buffer_limit
            .store(cfg.client_query_buffer_limit, r);
        self.slowlog_log_slower_than
            .store(cfg.slowlog_log_slower_than, r);
        self.slowlog_max_len.store(cfg.slowlog_max_len, r);
        self.protected_mode.store(cfg.protected_mode, r);
        self.loglevel.store(cfg.loglevel as u8, r);
    }

    pub fn loglevel(&self) -> LogLevel {
        LogLevel::from_u8(self.loglevel.load(Ordering::Relaxed))
    }

    pub fn tcp_keepalive(&self) -> u64 {
        self.tcp_keepalive.load(Ordering::Relaxed)
    }

    pub fn shutdown_timeout(&self) -> u64 {
        self.shutdown_timeout.load(Ordering::Relaxed)
    }

    pub fn maxclients(&self) -> u64 {
        self.maxclients.load(Ordering::Relaxed)
    }

    pub fn timeout(&self) -> u64 {
        self.timeout.load(Ordering::Relaxed)
    }
}

/// Redis's `memtoll`: `1k` = 1000, `1kb` = 1024, likewise m/mb and g/gb, case-insensitive.
pub fn parse_memory(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let (num, mul) = [
        ("gb", 1u64 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 1_000_000_000),
        ("m", 1_000_000),
        ("k", 1_000),
        ("b", 1),
    ]
    .iter()
    .find_map(|(suf, mul)| lower.strip_suffix(suf).map(|n| (n.to_string(), *mul)))
    .unwrap_or((lower.clone(), 1));
    let n: u64 = num.parse().ok()?;
    n.checked_mul(mul)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units_like_redis() {
        assert_eq!(parse_memory("32mb"), Some(32 << 20));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1GB"), Some(1 << 30));
        assert_eq!(parse_memory("100"), Some(100));
        assert_eq!(parse_memory("x"), None);
    }
}
