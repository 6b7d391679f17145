//! Server-wide counters, named like the INFO fields they feed, and `STATS_SECTION`: the one
//! table, in Redis's order, of INFO's Stats section. INFO renders its Stats section from it, the
//! metrics endpoint exports the rows that name a metric, and CONFIG RESETSTAT zeroes the rows
//! that are counters; a new counter is one field here and one row there. All are relaxed
//! atomics: each is exact, their combination is a snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

/// How many close reasons there are (`outbox::CloseReason::ALL`).
pub const CLOSE_REASONS: usize = 8;

#[derive(Debug, Default)]
pub struct Stats {
    pub total_connections_received: AtomicU64,
    pub total_commands_processed: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub total_net_input_bytes: AtomicU64,
    pub total_net_output_bytes: AtomicU64,
    pub total_error_replies: AtomicU64,
    pub unexpected_error_replies: AtomicU64,
    pub client_output_buffer_limit_disconnections: AtomicU64,
    pub client_query_buffer_limit_disconnections: AtomicU64,
    /// PUBLISH and SPUBLISH commands run.
    pub pubsub_messages_published: AtomicU64,
    /// Message frames queued to receivers (a receiver matched twice counts twice).
    pub pubsub_messages_delivered: AtomicU64,
    /// Failed AUTH / HELLO AUTH attempts (INFO `acl_access_denied_auth`).
    pub acl_access_denied_auth: AtomicU64,
    /// Commands refused by ACL (NOPERM for the command itself).
    pub acl_access_denied_cmd: AtomicU64,
    /// Commands refused by ACL for a channel they name.
    pub acl_access_denied_channel: AtomicU64,
    /// Error replies by their code (`ERR`, `NOPROTO` …), for INFO errorstats.
    errors_by_code: parking_lot::Mutex<std::collections::BTreeMap<String, u64>>,
    /// Connections closed, by reason (indexed by `outbox::CloseReason::index`).
    pub closed: [AtomicU64; CLOSE_REASONS],
    /// Per-command counters for INFO commandstats, indexed by `CommandSpec::index`.
    pub commands: CommandCounters,
}

/// `cmdstat_<name>:calls=…,usec=…,rejected_calls=…,failed_calls=…` for every command.
#[derive(Debug, Default)]
pub struct CommandCounters {
    counters: parking_lot::RwLock<Vec<CommandCounter>>,
}

#[derive(Debug, Default)]
pub struct CommandCounter {
    pub calls: AtomicU64,
    pub nanos: AtomicU64,
    pub rejected_calls: AtomicU64,
    pub failed_calls: AtomicU64,
}

impl CommandCounters {
    /// Runs `f` on the counter of command `index`, creating counters as needed.
    pub fn with(&self, index: usize, f: impl FnOnce(&CommandCounter)) {
        {
            let c = self.counters.read();
            if let Some(counter) = c.get(index) {
                return f(counter);
            }
        }
        let mut c = self.counters.write();
        while c.len() <= index {
            c.push(CommandCounter::default());
        }
        f(&c[index]);
    }

    /// (index, calls, usec, rejected, failed) of every command used so far.
    pub fn snapshot(&self) -> Vec<(usize, u64, u64, u64, u64)> {
        self.counters
            .read()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    i,
                    c.calls.load(Ordering::Relaxed),
                    c.nanos.load(Ordering::Relaxed) / 1000,
                    c.rejected_calls.load(Ordering::Relaxed),
                    c.failed_calls.load(Ordering::Relaxed),
                )
            })
            .filter(|&(_, calls, _, rej, fail)| calls + rej + fail > 0)
            .collect()
    }

    fn reset(&self) {
        self.counters.write().clear();
    }
}

impl Stats {
    pub fn incr(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Counts an error reply under its code (the text up to the first space).
    pub fn count_error(&self, text: &str) {
        self.total_error_replies.fetch_add(1, Ordering::Relaxed);
        let code = text.split(' ').next().unwrap_or("ERR");
        *self
            .errors_by_code
            .lock()
            .entry(code.to_string())
            .or_insert(0) += 1;
    }

    /// Error counts by code, sorted by code.
    pub fn error_codes(&self) -> Vec<(String, u64)> {
        self.errors_by_code
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// `CONFIG RESETSTAT`: every counter of `STATS_SECTION`, errorstats and commandstats.
    pub fn reset(&self) {
        for f in STATS_SECTION {
            if let Some(counter) = f.source.counter() {
                counter(self).store(0, Ordering::Relaxed);
            }
        }
        self.errors_by_code.lock().clear();
        self.commands.reset();
    }
}

/// A `Stats` counter, as a table row names it.
pub type CounterRef = fn(&Stats) -> &AtomicU64;

/// A figure of INFO's Stats section that `Stats` does not hold: whoever renders reads it from
/// the registry or the client table (`ServerState::live`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Live {
    /// Channels with subscribers.
    PubsubChannels,
    /// Patterns with subscribers.
    PubsubPatterns,
    /// Shard channels with subscribers.
    PubsubShardChannels,
    /// Bytes written to connected clients; each client's count joins `total_net_output_bytes`
    /// when it closes.
    ConnectedNetOutput,
    /// Distinct BCAST prefixes over all tracking clients (Redis's `tracking_total_prefixes`).
    TrackingPrefixes,
}

/// Where a row's value comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// A counter of `Stats`, zeroed by CONFIG RESETSTAT.
    Counter(CounterRef),
    /// A counter plus a live figure not yet folded into it.
    CounterPlus(CounterRef, Live),
    /// A live figure.
    Live(Live),
    /// A field Redis has and pubsubd has nothing to count for (keys, evictions): always 0.
    Zero,
}

impl Source {
    /// The counter behind the row, if any.
    pub fn counter(self) -> Option<CounterRef> {
        match self {
            Source::Counter(c) | Source::CounterPlus(c, _) => Some(c),
            Source::Live(_) | Source::Zero => None,
        }
    }
}

/// A Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    /// The name `# TYPE` gives it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// How the metrics endpoint exports a row.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
}

/// One row of INFO's Stats section.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The INFO field, Redis's spelling.
    pub info: &'static str,
    pub source: Source,
    /// Exported by the metrics endpoint under this name, if at all.
    pub metric: Option<Metric>,
}

impl Field {
    /// The row's value, `live` supplying the figures `Stats` does not hold.
    pub fn value(&self, stats: &Stats, live: impl Fn(Live) -> u64) -> u64 {
        match self.source {
            Source::Counter(c) => Stats::get(c(stats)),
            Source::CounterPlus(c, l) => Stats::get(c(stats)) + live(l),
            Source::Live(l) => live(l),
            Source::Zero => 0,
        }
    }
}

const fn row(info: &'static str, source: Source) -> Field {
    Field {
        info,
        source,
        metric: None,
    }
}

const fn exported(
    info: &'static str,
    source: Source,
    name: &'static str,
    kind: Kind,
    help: &'static str,
) -> Field {
    Field {
        info,
        source,
        metric: Some(Metric { name, kind, help }),
    }
}

/// INFO's Stats section, in Redis 7.2's order, then pubsubd's own fields.
pub const STATS_SECTION: &[Field] = &[
    exported(
        "total_connections_received",
        Source::Counter(|s| &s.total_connections_received),
        "pubsubd_connections_received_total",
        Kind::Counter,
        "Connections accepted (INFO total_connections_received).",
    ),
    exported(
        "total_commands_processed",
        Source::Counter(|s| &s.total_commands_processed),
        "pubsubd_commands_processed_total",
        Kind::Counter,
        "Commands run (INFO total_commands_processed).",
    ),
    row("instantaneous_ops_per_sec", Source::Zero),
    exported(
        "total_net_input_bytes",
        Source::Counter(|s| &s.total_net_input_bytes),
        "pubsubd_net_input_bytes_total",
        Kind::Counter,
        "Bytes read from clients (INFO total_net_input_bytes).",
    ),
    exported(
        "total_net_output_bytes",
        Source::CounterPlus(|s| &s.total_net_output_bytes, Live::ConnectedNetOutput),
        "pubsubd_net_output_bytes_total",
        Kind::Counter,
        "Bytes written to clients (INFO total_net_output_bytes).",
    ),
    exported(
        "rejected_connections",
        Source::Counter(|s| &s.rejected_connections),
        "pubsubd_rejected_connections_total",
        Kind::Counter,
        "Connections refused for maxclients (INFO rejected_connections).",
    ),
    row("expired_keys", Source::Zero),
    row("evicted_keys", Source::Zero),
    row("evicted_clients", Source::Zero),
    row("keyspace_hits", Source::Zero),
    row("keyspace_misses", Source::Zero),
    exported(
        "pubsub_channels",
        Source::Live(Live::PubsubChannels),
        "pubsubd_pubsub_channels",
        Kind::Gauge,
        "Channels with subscribers (INFO pubsub_channels).",
    ),
    exported(
        "pubsub_patterns",
        Source::Live(Live::PubsubPatterns),
        "pubsubd_pubsub_patterns",
        Kind::Gauge,
        "Patterns with subscribers (INFO pubsub_patterns).",
    ),
    exported(
        "pubsubshard_channels",
        Source::Live(Live::PubsubShardChannels),
        "pubsubd_pubsub_shard_channels",
        Kind::Gauge,
        "Shard channels with subscribers (INFO pubsubshard_channels).",
    ),
    row("tracking_total_keys", Source::Zero),
    row("tracking_total_items", Source::Zero),
    row(
        "tracking_total_prefixes",
        Source::Live(Live::TrackingPrefixes),
    ),
    row(
        "unexpected_error_replies",
        Source::Counter(|s| &s.unexpected_error_replies),
    ),
    exported(
        "total_error_replies",
        Source::Counter(|s| &s.total_error_replies),
        "pubsubd_error_replies_total",
        Kind::Counter,
        "Error replies sent (INFO total_error_replies).",
    ),
    exported(
        "client_query_buffer_limit_disconnections",
        Source::Counter(|s| &s.client_query_buffer_limit_disconnections),
        "pubsubd_query_buffer_disconnections_total",
        Kind::Counter,
        "Clients disconnected for going over client-query-buffer-limit (INFO client_query_buffer_limit_disconnections).",
    ),
    exported(
        "client_output_buffer_limit_disconnections",
        Source::Counter(|s| &s.client_output_buffer_limit_disconnections),
        "pubsubd_slow_consumer_disconnections_total",
        Kind::Counter,
        "Subscribers disconnected for going over client-output-buffer-limit pubsub (INFO client_output_buffer_limit_disconnections).",
    ),
    // pubsubd's own fields.
    row(
        "pubsub_shardchannels",
        Source::Live(Live::PubsubShardChannels),
    ),
    row(
        "acl_access_denied_auth",
        Source::Counter(|s| &s.acl_access_denied_auth),
    ),
    row(
        "acl_access_denied_cmd",
        Source::Counter(|s| &s.acl_access_denied_cmd),
    ),
    row("acl_access_denied_key", Source::Zero),
    row(
        "acl_access_denied_channel",
        Source::Counter(|s| &s.acl_access_denied_channel),
    ),
    exported(
        "pubsub_messages_published",
        Source::Counter(|s| &s.pubsub_messages_published),
        "pubsubd_messages_published_total",
        Kind::Counter,
        "PUBLISH and SPUBLISH commands run (INFO pubsub_messages_published).",
    ),
    exported(
        "pubsub_messages_delivered",
        Source::Counter(|s| &s.pubsub_messages_delivered),
        "pubsubd_messages_delivered_total",
        Kind::Counter,
        "Messages queued to subscribers (INFO pubsub_messages_delivered).",
    ),
];

/// User and system CPU seconds of this process, from /proc/self/stat (INFO `used_cpu_user`,
/// `used_cpu_sys`): counters the kernel keeps for us.
pub fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    // After the command name: state is field 0, utime field 11, stime field 12.
    (ticks(11), ticks(12))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_row_has_its_own_counter_and_reset_zeroes_them() {
        let stats = Stats::default();
        let counters: Vec<CounterRef> = STATS_SECTION
            .iter()
            .filter_map(|f| f.source.counter())
            .collect();
        for (i, c) in counters.iter().enumerate() {
            c(&stats).store(i as u64 + 1, Ordering::Relaxed);
        }
        for (i, c) in counters.iter().enumerate() {
            assert_eq!(
                Stats::get(c(&stats)),
                i as u64 + 1,
                "two rows share a counter"
            );
        }
        stats.reset();
        assert!(counters.iter().all(|c| Stats::get(c(&stats)) == 0));
    }

    #[test]
    fn names_are_unique_and_counters_end_in_total() {
        let mut info: Vec<&str> = STATS_SECTION.iter().map(|f| f.info).collect();
        info.sort_unstable();
        info.dedup();
        assert_eq!(info.len(), STATS_SECTION.len());
        let metrics: Vec<Metric> = STATS_SECTION.iter().filter_map(|f| f.metric).collect();
        let mut names: Vec<&str> = metrics.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), metrics.len());
        for m in &metrics {
            assert!(m.name.starts_with("pubsubd_"), "{}", m.name);
            assert_eq!(
                m.kind == Kind::Counter,
                m.name.ends_with("_total"),
                "{}",
                m.name
            );
        }
    }
}
