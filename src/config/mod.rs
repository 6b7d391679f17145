//! Server configuration, built in layers: Redis's defaults → redis.conf → command-line
//! directives → `validate()` → an immutable `Config`. Settings that CONFIG SET may change at run
//! time live in their own shared cells (`outbox::OutputLimits`, the atomics in `Runtime`).

pub mod cli;
pub mod file;

use std::sync::atomic::{AtomicU64, Ordering};

pub use file::ConfigError;

use crate::protocol::decode::{DEFAULT_CLIENT_QUERY_BUFFER_LIMIT, DEFAULT_PROTO_MAX_BULK_LEN};

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
            LogLevel::Debug => "debug",
            LogLevel::Verbose => "debug",
            LogLevel::Notice => "info",
            LogLevel::Warning => "warn",
            LogLevel::Nothing => "off",
        }
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
    pub proto_max_bulk_len: usize,
    pub client_query_buffer_limit: usize,
    /// Worker threads (`io-threads`); 0 means one per CPU.
    pub io_threads: usize,
    /// Seconds SIGTERM waits for queued output to be written before closing connections.
    pub shutdown_timeout: u64,
    /// Directives accepted for compatibility but without effect, with the line they came from.
    pub ignored: Vec<String>,
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
            pubsub_output_limit: crate::outbox::OutputLimits::DEFAULT,
            proto_max_bulk_len: DEFAULT_PROTO_MAX_BULK_LEN,
            client_query_buffer_limit: DEFAULT_CLIENT_QUERY_BUFFER_LIMIT,
            io_threads: 0,
            shutdown_timeout: 10,
            ignored: Vec::new(),
        }
    }
}

impl Config {
    /// Worker threads to run: `io-threads` if set, else one per CPU.
    pub fn worker_threads(&self) -> usize {
        if self.io_threads > 0 {
            self.io_threads
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
    }
}

/// Settings that may change while the server runs.
#[derive(Debug)]
pub struct Runtime {
    pub maxclients: AtomicU64,
    pub timeout: AtomicU64,
}

impl Runtime {
    pub fn new(cfg: &Config) -> Self {
        Runtime {
            maxclients: AtomicU64::new(cfg.maxclients),
            timeout: AtomicU64::new(cfg.timeout),
        }
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
