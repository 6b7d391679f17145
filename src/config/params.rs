//! The configuration parameters as CONFIG GET, CONFIG SET and CONFIG REWRITE see them: one row
//! per directive pubsubd honours (its Redis name, how CONFIG GET prints it, whether CONFIG SET
//! may change it), and Redis's keyspace directives that are accepted without effect, with the
//! default CONFIG GET reports for them (the defaults of Redis 7.2, so libraries that check e.g.
//! `maxmemory-policy` or `notify-keyspace-events` read what a fresh Redis says).
//!
//! Parsing and validation stay in `file::apply_directive`, shared by the config file, the
//! command line and CONFIG SET, so every path accepts and rejects the same values with the same
//! words. To register a new parameter: one arm in `apply_directive` and one row in `PARAMS`.

use super::{file, Config};
use crate::glob::stringmatch;

/// How a value is written back by CONFIG REWRITE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Written as CONFIG GET prints it.
    Plain,
    /// A byte count, written with Redis's units (`32mb`).
    Memory,
    /// A string, quoted when needed (`logfile ""`).
    Text,
    /// Several arguments in one value (`bind 127.0.0.1 ::1`), split when set; CONFIG REWRITE
    /// takes the items from `rewrite::list_items`.
    List,
    /// `client-output-buffer-limit`: one line per class.
    OutputLimits,
}

/// One parameter pubsubd honours.
pub struct Param {
    /// Redis's name, lowercase.
    pub name: &'static str,
    /// Whether CONFIG SET may change it while the server runs.
    pub mutable: bool,
    pub kind: Kind,
    /// The value as CONFIG GET returns it.
    pub get: fn(&Config) -> String,
}

fn limits_text(c: &Config) -> String {
    let (n, r, p) = (
        c.normal_output_limit,
        c.replica_output_limit,
        c.pubsub_output_limit,
    );
    format!(
        "normal {} {} {} slave {} {} {} pubsub {} {} {}",
        n.0, n.1, n.2, r.0, r.1, r.2, p.0, p.1, p.2
    )
}

/// Every parameter pubsubd honours, in the order CONFIG GET * lists them.
pub static PARAMS: &[Param] = &[
    Param {
        name: "bind",
        mutable: false,
        kind: Kind::List,
        get: |c| c.bind.join(" "),
    },
    Param {
        name: "port",
        mutable: false,
        kind: Kind::Plain,
        get: |c| c.port.to_string(),
    },
    Param {
        name: "maxclients",
        mutable: true,
        kind: Kind::Plain,
        get: |c| c.maxclients.to_string(),
    },
    Param {
        name: "timeout",
        mutable: true,
        kind: Kind::Plain,
        get: |c| c.timeout.to_string(),
    },
    Param {
        name: "tcp-keepalive",
        mutable: true,
        kind: Kind::Plain,
        get: |c| c.tcp_keepalive.to_string(),
    },
    Param {
        name: "loglevel",
        mutable: true,
        kind: Kind::Plain,
        get: |c| c.loglevel.name().to_string(),
    },
    Param {
        name: "logfile",
        mutable: false,
        kind: Kind::Text,
        get: |c| c.logfile.clone(),
    },
    Param {
        name: "pidfile",
        mutable: false,
        kind: Kind::Text,
        get: |c| c.pidfile.clone(),
    },
    Param {
        name: "daemonize",
        mutable: false,
        kind: Kind::Plain,
        get: |_| "no".to_string(),
    },
    Param {
        name: "databases",
        mutable: false,
        kind: Kind::Plain,
        get: |c| c.databases.to_string(),
    },
    Param {
        name: "client-output-buffer-limit",
        mutable: true,
        kind: Kind::OutputLimits,
        get: limits_text,
    },
    Param {
        name: "proto-max-bulk-len",
        mutable: true,
        kind: Kind::Memory,
        get: |c| c.proto_max_bulk_len.to_string(),
    },
    Param {
        name: "client-query-buffer-limit",
        mutable: true,
        kind: Kind::Memory,
        get: |c| c.client_query_buffer_limit.to_string(),
    },
    Param {
        name: "io-threads",
        mutable: false,
        kind: Kind::Plain,
        get: |c| c.worker_threads().to_string(),
    },
    Param {
        name: "shutdown-timeout",
        mutable: true,
        kind: Kind::Plain,
        get: |c| c.shutdown_timeout.to_string(),
    },
    Param {
        name: "slowlog-log-slower-than",
        mutable: true,
        kind: Kind::Plain,
        get: |c| c.slowlog_log_slower_than.to_string(),
    },
    Param {
        name: "slowlog-max-len",
        mutable: true,
        kind: Kind::Plain,
        get: |c| c.slowlog_max_len.to_string(),
    },
    // Security (auth, ACL, TLS, listeners).
    Param {
        name: "requirepass",
        mutable: true,
        kind: Kind::Text,
        get: |c| c.requirepass.0.clone(),
    },
    Param {
        name: "acl-pubsub-default",
        mutable: true,
        kind: Kind::Plain,
        get: |c| {
            if c.acl_pubsub_default_all {
                "allchannels"
            } else {
                "resetchannels"
            }
            .to_string()
        },
    },
    Param {
        name: "acllog-max-len",
        mutable: true,
        kind: Kind::Plain,
        get: |c| c.acllog_max_len.to_string(),
    },
    Param {
        name: "aclfile",
        mutable: false,
        kind: Kind::Text,
        get: |c| c.aclfile.clone(),
    },
    Param {
        name: "protected-mode",
        mutable: true,
        kind: Kind::Plain,
        get: |c| if c.protected_mode { "yes" } else { "no" }.to_string(),
    },
    Param {
        name: "unixsocket",
        mutable: false,
        kind: Kind::Text,
        get: |c| c.unixsocket.clone(),
    },
    Param {
        name: "unixsocketperm",
        mutable: false,
        kind: Kind::Plain,
        get: |c| format!("{:o}", c.unixsocketperm),
    },
    Param {
        name: "tls-port",
        mutable: false,
        kind: Kind::Plain,
        get: |c| c.tls.port.to_string(),
    },
    Param {
        name: "tls-cert-file",
        mutable: false,
        kind: Kind::Text,
        get: |c| c.tls.cert_file.clone(),
    },
    Param {
        name: "tls-key-file",
        mutable: false,
        kind: Kind::Text,
        get: |c| c.tls.key_file.clone(),
    },
    Param {
        name: "tls-ca-cert-file",
        mutable: false,
        kind: Kind::Text,
        get: |c| c.tls.ca_cert_file.clone(),
    },
    Param {
        name: "tls-ca-cert-dir",
        mutable: false,
        kind: Kind::Text,
        get: |c| c.tls.ca_cert_dir.clone(),
    },
    Param {
        name: "tls-auth-clients",
        mutable: false,
        kind: Kind::Plain,
        get: |c| {
            match c.tls.auth_clients {
                super::TlsAuthClients::Yes => "yes",
                super::TlsAuthClients::No => "no",
                super::TlsAuthClients::Optional => "optional",
            }
            .to_string()
        },
    },
    Param {
        name: "tls-protocols",
        mutable: false,
        kind: Kind::Text,
        get: |c| c.tls.protocols.join(" "),
    },
    Param {
        name: "supervised",
        mutable: false,
        kind: Kind::Plain,
        get: |c| c.supervised.clone(),
    },
    // Cluster (`cluster`): see redis.conf.example.
    Param {
        name: "cluster-enabled",
        mutable: false,
        kind: Kind::Plain,
        get: |c| if c.cluster_enabled { "yes" } else { "no" }.to_string(),
    },
    Param {
        name: "cluster-node-timeout",
        mutable: false,
        kind: Kind::Plain,
        get: |c| c.cluster_node_timeout.to_string(),
    },
    Param {
        name: "cluster-announce-ip",
        mutable: false,
        kind: Kind::Text,
        get: |c| c.cluster_announce_ip.clone(),
    },
    Param {
        name: "cluster-announce-port",
        mutable: false,
        kind: Kind::Plain,
        get: |c| c.cluster_announce_port.to_string(),
    },
    Param {
        name: "cluster-announce-tls-port",
        mutable: false,
        kind: Kind::Plain,
        get: |c| c.cluster_announce_tls_port.to_string(),
    },
    Param {
        name: "cluster-announce-hostname",
        mutable: false,
        kind: Kind::Text,
        get: |c| c.cluster_announce_hostname.clone(),
    },
    Param {
        name: "cluster-config-file",
        mutable: false,
        kind: Kind::Text,
        get: |c| c.cluster_config_file.clone(),
    },
    // Scale-out (backbone).
    Param {
        name: "backbone",
        mutable: false,
        kind: Kind::Text,
        get: |c| c.backbone.urls.0.clone(),
    },
    Param {
        name: "backbone-prefix",
        mutable: false,
        kind: Kind::Text,
        get: |c| c.backbone.prefix.clone(),
    },
    Param {
        name: "backbone-creds-file",
        mutable: false,
        kind: Kind::Text,
        get: |c| c.backbone.creds_file.clone(),
    },
    Param {
        name: "backbone-tls-ca-cert-file",
        mutable: false,
        kind: Kind::Text,
        get: |c| c.backbone.tls_ca_cert_file.clone(),
    },
    Param {
        name: "backbone-tls-cert-file",
        mutable: false,
        kind: Kind::Text,
        get: |c| c.backbone.tls_cert_file.clone(),
    },
    Param {
        name: "backbone-tls-key-file",
        mutable: false,
        kind: Kind::Text,
        get: |c| c.backbone.tls_key_file.clone(),
    },
    Param {
        name: "backbone-required",
        mutable: false,
        kind: Kind::Plain,
        get: |c| if c.backbone.required { "yes" } else { "no" }.to_string(),
    },
    Param {
        name: "backbone-connect-timeout",
        mutable: false,
        kind: Kind::Plain,
        get: |c| c.backbone.connect_timeout_ms.to_string(),
    },
    Param {
        name: "backbone-queue-limit",
        mutable: false,
        kind: Kind::Memory,
        get: |c| c.backbone.queue_limit.to_string(),
    },
    Param {
        name: "backbone-reassembly-limit",
        mutable: false,
        kind: Kind::Memory,
        get: |c| c.backbone.reassembly_limit.to_string(),
    },
    Param {
        name: "metrics-port",
        mutable: false,
        kind: Kind::Plain,
        get: |c| c.metrics_port.to_string(),
    },
];

/// Redis 7.2's keyspace, persistence, replication and cluster directives, with the default
/// CONFIG GET reports: accepted in a config file and by CONFIG SET, logged as ignored, no
/// effect. (`save` and `dir` report an empty value: nothing is ever written to disk.)
pub static KEYSPACE: &[(&str, &str)] = &[
    ("active-defrag-cycle-max", "25"),
    ("active-defrag-cycle-min", "1"),
    ("active-defrag-ignore-bytes", "104857600"),
    ("active-defrag-max-scan-fields", "1000"),
    ("active-defrag-threshold-lower", "10"),
    ("active-defrag-threshold-upper", "100"),
    ("active-expire-effort", "1"),
    ("activedefrag", "no"),
    ("activerehashing", "yes"),
    ("always-show-logo", "no"),
    ("aof-disable-auto-gc", "no"),
    ("aof-load-truncated", "yes"),
    ("aof-rewrite-incremental-fsync", "yes"),
    ("aof-timestamp-enabled", "no"),
    ("aof-use-rdb-preamble", "yes"),
    ("aof_rewrite_cpulist", ""),
    ("appenddirname", "appendonlydir"),
    ("appendfilename", "appendonly.aof"),
    ("appendfsync", "everysec"),
    ("appendonly", "no"),
    ("auto-aof-rewrite-min-size", "67108864"),
    ("auto-aof-rewrite-percentage", "100"),
    ("bgsave_cpulist", ""),
    ("bind-source-addr", ""),
    ("bio_cpulist", ""),
    ("busy-reply-threshold", "5000"),
    ("cluster-allow-pubsubshard-when-down", "yes"),
    ("cluster-allow-reads-when-down", "no"),
    ("cluster-allow-replica-migration", "yes"),
    ("cluster-announce-bus-port", "0"),
    ("cluster-announce-human-nodename", ""),
    ("cluster-link-sendbuf-limit", "0"),
    ("cluster-migration-barrier", "1"),
    ("cluster-port", "0"),
    ("cluster-preferred-endpoint-type", "ip"),
    ("cluster-replica-no-failover", "no"),
    ("cluster-replica-validity-factor", "10"),
    ("cluster-require-full-coverage", "yes"),
    ("cluster-slave-no-failover", "no"),
    ("cluster-slave-validity-factor", "10"),
    ("crash-log-enabled", "yes"),
    ("crash-memcheck-enabled", "yes"),
    ("dbfilename", "dump.rdb"),
    ("dir", ""),
    ("disable-thp", "yes"),
    ("dynamic-hz", "yes"),
    ("enable-debug-command", "no"),
    ("enable-module-command", "no"),
    ("enable-protected-configs", "no"),
    ("hash-max-listpack-entries", "512"),
    ("hash-max-listpack-value", "64"),
    ("hash-max-ziplist-entries", "512"),
    ("hash-max-ziplist-value", "64"),
    ("hll-sparse-max-bytes", "3000"),
    ("hz", "10"),
    ("ignore-warnings", ""),
    ("io-threads-do-reads", "no"),
    ("jemalloc-bg-thread", "yes"),
    ("latency-monitor-threshold", "0"),
    ("latency-tracking", "yes"),
    ("latency-tracking-info-percentiles", "50 99 99.9"),
    ("lazyfree-lazy-eviction", "no"),
    ("lazyfree-lazy-expire", "no"),
    ("lazyfree-lazy-server-del", "no"),
    ("lazyfree-lazy-user-del", "no"),
    ("lazyfree-lazy-user-flush", "no"),
    ("lfu-decay-time", "1"),
    ("lfu-log-factor", "10"),
    ("list-compress-depth", "0"),
    ("list-max-listpack-size", "-2"),
    ("list-max-ziplist-size", "-2"),
    ("locale-collate", ""),
    ("lua-time-limit", "5000"),
    ("maxmemory", "0"),
    ("maxmemory-clients", "0"),
    ("maxmemory-eviction-tenacity", "10"),
    ("maxmemory-policy", "noeviction"),
    ("maxmemory-samples", "5"),
    ("min-replicas-max-lag", "10"),
    ("min-replicas-to-write", "0"),
    ("min-slaves-max-lag", "10"),
    ("min-slaves-to-write", "0"),
    ("no-appendfsync-on-rewrite", "no"),
    ("notify-keyspace-events", ""),
    ("oom-score-adj", "no"),
    ("oom-score-adj-values", "0 200 800"),
    ("proc-title-template", "{title} {listen-addr} {server-mode}"),
    ("propagation-error-behavior", "ignore"),
    ("rdb-del-sync-files", "no"),
    ("rdb-save-incremental-fsync", "yes"),
    ("rdbchecksum", "yes"),
    ("rdbcompression", "yes"),
    ("repl-backlog-size", "1048576"),
    ("repl-backlog-ttl", "3600"),
    ("repl-disable-tcp-nodelay", "no"),
    ("repl-diskless-load", "disabled"),
    ("repl-diskless-sync", "yes"),
    ("repl-diskless-sync-delay", "5"),
    ("repl-diskless-sync-max-replicas", "0"),
    ("repl-ping-replica-period", "10"),
    ("repl-ping-slave-period", "10"),
    ("repl-timeout", "60"),
    ("replica-announce-ip", ""),
    ("replica-announce-port", "0"),
    ("replica-announced", "yes"),
    ("replica-ignore-disk-write-errors", "no"),
    ("replica-ignore-maxmemory", "yes"),
    ("replica-lazy-flush", "no"),
    ("replica-priority", "100"),
    ("replica-read-only", "yes"),
    ("replica-serve-stale-data", "yes"),
    ("replicaof", ""),
    ("sanitize-dump-payload", "no"),
    ("save", ""),
    ("server_cpulist", ""),
    ("set-max-intset-entries", "512"),
    ("set-max-listpack-entries", "128"),
    ("set-max-listpack-value", "64"),
    ("set-proc-title", "yes"),
    ("shutdown-on-sigint", "default"),
    ("shutdown-on-sigterm", "default"),
    ("slave-announce-ip", ""),
    ("slave-announce-port", "0"),
    ("slave-ignore-maxmemory", "yes"),
    ("slave-lazy-flush", "no"),
    ("slave-priority", "100"),
    ("slave-read-only", "yes"),
    ("slave-serve-stale-data", "yes"),
    ("slaveof", ""),
    ("socket-mark-id", "0"),
    ("stop-writes-on-bgsave-error", "yes"),
    ("stream-node-max-bytes", "4096"),
    ("stream-node-max-entries", "100"),
    ("syslog-enabled", "no"),
    ("syslog-facility", "local0"),
    ("syslog-ident", "redis"),
    ("tcp-backlog", "511"),
    ("tracking-table-max-keys", "1000000"),
    ("zset-max-listpack-entries", "128"),
    ("zset-max-listpack-value", "64"),
    ("zset-max-ziplist-entries", "128"),
    ("zset-max-ziplist-value", "64"),
];

/// Finds an honoured parameter by (case-insensitive) name.
pub fn find(name: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// Redis's default for an accepted-but-ignored directive, if `name` is one.
pub fn keyspace_default(name: &str) -> Option<&'static str> {
    KEYSPACE
        .binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .map(|i| KEYSPACE[i].1)
        .or_else(|| HIDDEN.iter().find(|(n, _)| *n == name).map(|(_, v)| *v))
}

/// Redis 7.2's hidden configs (debug and loading knobs, none with an effect here) with their
/// defaults: CONFIG GET returns one asked for by its exact name, never one a pattern matches.
const HIDDEN: &[(&str, &str)] = &[
    ("aof-disable-auto-gc", "no"),
    ("cluster-ping-interval", "0"),
    ("key-load-delay", "0"),
    ("loading-process-events-interval-bytes", "2097152"),
    ("rdb-key-save-delay", "0"),
    ("use-exit-on-panic", "no"),
    ("watchdog-period", "0"),
];

/// Records an ignored directive in `cfg.ignored` as `name args…`, once per name: a repeated
/// directive replaces the earlier entry, except `save`, whose lines add up as in Redis
/// (`save ""` clears them).
pub fn record_ignored(cfg: &mut Config, name: &str, args: &[String]) {
    let prefix = format!("{name} ");
    let previous = cfg
        .ignored
        .iter()
        .position(|l| l.starts_with(&prefix) || l == name);
    let value = args.join(" ");
    let line = match (name, previous) {
        ("save", Some(i)) if value != "\"\"" && !value.is_empty() => {
            let old = cfg.ignored.remove(i);
            format!("{old} {value}")
        }
        (_, Some(i)) => {
            cfg.ignored.remove(i);
            format!("{name} {value}")
        }
        _ => format!("{name} {value}"),
    };
    cfg.ignored.push(line.trim_end().to_string());
}

/// The value CONFIG GET reports for an ignored directive: the last one set, else the default.
pub fn ignored_value(cfg: &Config, name: &str) -> Option<String> {
    let default = keyspace_default(name)?;
    let prefix = format!("{name} ");
    let set = cfg
        .ignored
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix(&prefix).or((l == name).then_some("")));
    Some(match set {
        Some("\"\"") | Some("''") => String::new(),
        Some(v) => v.to_string(),
        None if name == "dir" => std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
        None => default.to_string(),
    })
}

/// CONFIG GET: every parameter matching any of `patterns` (Redis's glob, case-insensitive),
/// each once, with its value. A pattern without glob characters is a plain name.
pub fn get(cfg: &Config, patterns: &[&[u8]]) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    let names = PARAMS
        .iter()
        .map(|p| p.name)
        .chain(KEYSPACE.iter().map(|(n, _)| *n));
    for name in names {
        if out.iter().any(|(n, _)| *n == name) {
            continue;
        }
        if patterns
            .iter()
            .any(|p| stringmatch(p, name.as_bytes(), true))
        {
            let value = match find(name) {
                Some(p) => (p.get)(cfg),
                None => ignored_value(cfg, name).unwrap_or_default(),
            };
            out.push((name, value));
        }
    }
    for (name, _) in HIDDEN {
        let asked = patterns
            .iter()
            .any(|p| p.eq_ignore_ascii_case(name.as_bytes()));
        if asked && !out.iter().any(|(n, _)| n == name) {
            out.push((name, ignored_value(cfg, name).unwrap_or_default()));
        }
    }
    out
}

/// Why CONFIG SET refused: Redis's whole error text.
fn set_failed(name: &str, reason: &str) -> String {
    format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}")
}

/// CONFIG SET of several parameters at once: all of them or none, validated by the same code
/// as the config file. Returns the new configuration, or Redis's error text.
pub fn set(cfg: &Config, pairs: &[(String, String)]) -> Result<Config, String> {
    // Redis 7.2's `configSetCommand`: first every name is checked in argument order (unknown,
    // immutable, duplicate), then the values are set in argument order; the first failure is
    // the reply.
    let mut seen: Vec<String> = Vec::new();
    for (raw_name, _) in pairs {
        let name = raw_name.to_ascii_lowercase();
        let param = find(&name);
        if param.is_none() && keyspace_default(&name).is_none() {
            return Err(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{raw_name}'"
            ));
        }
        if param.is_some_and(|p| !p.mutable) {
            return Err(set_failed(raw_name, "can't set immutable config"));
        }
        if seen.contains(&name) {
            return Err(set_failed(raw_name, "duplicate parameter"));
        }
        seen.push(name);
    }
    let mut next = cfg.clone();
    for (raw_name, value) in pairs {
        let name = raw_name.to_ascii_lowercase();
        let param = find(&name);
        let args: Vec<String> = match param {
            Some(p) if matches!(p.kind, Kind::List | Kind::OutputLimits) => {
                match super::split::split_args(value.as_bytes()) {
                    Some(a) => a
                        .into_iter()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .collect(),
                    None => return Err(set_failed(raw_name, "Unbalanced quotes")),
                }
            }
            _ => vec![value.clone()],
        };
        if param.is_none() {
            let value = keyspace_value(&name, value).map_err(|r| set_failed(raw_name, r))?;
            record_ignored(&mut next, &name, &[value]);
            continue;
        }
        file::apply_directive(&mut next, &name, &args).map_err(|r| set_failed(raw_name, &r))?;
    }
    Ok(next)
}

/// Redis's `keyspaceEventsStringToFlags` and `keyspaceEventsFlagsToString`: the canonical
/// form CONFIG GET shows (`KA` reads back `AK`), or None for an unknown class character.
pub fn notify_keyspace_events(value: &str) -> Option<String> {
    // g $ l s h z x e t d n, then K E m; A is every one of the first group but n.
    const CLASSES: &[u8] = b"g$lshzxetdn";
    const ALL: &[u8] = b"g$lshzxetd";
    let mut set = std::collections::HashSet::new();
    for c in value.bytes() {
        match c {
            b'A' => set.extend(ALL.iter().copied()),
            b'g' | b'$' | b'l' | b's' | b'h' | b'z' | b'x' | b'e' | b'K' | b'E' | b't' | b'm'
            | b'd' | b'n' => {
                set.insert(c);
            }
            _ => return None,
        }
    }
    let mut out = String::new();
    if ALL.iter().all(|c| set.contains(c)) {
        out.push('A');
    } else {
        out.extend(
            CLASSES
                .iter()
                .filter(|c| set.contains(c))
                .map(|&c| c as char),
        );
    }
    out.extend(
        b"KEm"
            .iter()
            .filter(|c| set.contains(c))
            .map(|&c| c as char),
    );
    Some(out)
}

/// Checks and normalises a value of a keyspace directive pubsubd accepts without effect, as
/// Redis 7.2 would (so CONFIG GET reads back what Redis would show).
fn keyspace_value(name: &str, value: &str) -> Result<String, &'static str> {
    match name {
        "notify-keyspace-events" => notify_keyspace_events(value)
            .ok_or("Invalid event class character. Use 'Ag$lshzxeKEtmdn'."),
        "maxmemory" => super::parse_memory(value)
            .map(|_| value.to_string())
            .ok_or("argument must be a memory value"),
        "maxmemory-clients" => {
            if let Some(p) = value.strip_suffix('%').filter(|_| value.len() > 1) {
                return match p.parse::<i64>() {
                    Ok(n) if n > 100 => Err("percentage argument must be less or equal to 100"),
                    Ok(n) if n >= 0 => Ok(value.to_string()),
                    _ => Err("argument must be a memory or percent value"),
                };
            }
            super::parse_memory(value)
                .map(|_| value.to_string())
                .ok_or("argument must be a memory or percent value")
        }
        _ => Ok(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyspace_table_is_sorted_for_binary_search() {
        assert!(KEYSPACE.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(keyspace_default("maxmemory-policy"), Some("noeviction"));
        assert_eq!(keyspace_default("port"), None);
    }

    #[test]
    fn get_matches_globs_case_insensitively_once_each() {
        let c = Config::default();
        let got = get(&c, &[b"MAXCLIENTS", b"max*"]);
        assert_eq!(got[0], ("maxclients", "10000".to_string()));
        assert_eq!(got.iter().filter(|(n, _)| *n == "maxclients").count(), 1);
        assert!(got
            .iter()
            .any(|(n, v)| *n == "maxmemory-policy" && v == "noeviction"));
    }

    #[test]
    fn output_limits_print_like_redis() {
        let c = Config::default();
        assert_eq!(
            get(&c, &[b"client-output-buffer-limit"])[0].1,
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
    }

    #[test]
    fn set_is_all_or_nothing() {
        let c = Config::default();
        let e = set(
            &c,
            &[
                ("timeout".into(), "5".into()),
                ("maxclients".into(), "x".into()),
            ],
        )
        .unwrap_err();
        assert_eq!(e, "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer");
        let n = set(&c, &[("timeout".into(), "5".into())]).unwrap();
        assert_eq!(n.timeout, 5);
    }

    #[test]
    fn ignored_directives_report_what_was_set() {
        let mut c = Config::default();
        record_ignored(&mut c, "save", &["900".into(), "1".into()]);
        record_ignored(&mut c, "save", &["300".into(), "10".into()]);
        record_ignored(&mut c, "maxmemory", &["1gb".into()]);
        record_ignored(&mut c, "maxmemory", &["2gb".into()]);
        assert_eq!(c.ignored, vec!["save 900 1 300 10", "maxmemory 2gb"]);
        assert_eq!(ignored_value(&c, "save").unwrap(), "900 1 300 10");
        assert_eq!(ignored_value(&c, "appendonly").unwrap(), "no");
    }
}
