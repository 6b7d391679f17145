//! The redis.conf reader: Redis's syntax (one directive per line, `sdssplitargs` quoting,
//! `#` comments, `include`, repeated directives, memory units) applied to a `Config`. Errors
//! carry the line number and the offending line, and print like Redis's fatal config report.

use std::path::Path;

use super::split::split_args;
use super::{parse_memory, Config, LogLevel};

/// A configuration that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("\n*** FATAL CONFIG FILE ERROR (pubsubd {version}) ***\nReading the configuration file, at line {line}{}\n>>> '{text}'\n{reason}", in_source(file))]
    Directive {
        version: &'static str,
        /// The file (or "the command line", "stdin") the line came from.
        file: String,
        line: usize,
        text: String,
        reason: String,
    },
    #[error("Fatal error, can't open config file '{path}': {err}")]
    Open { path: String, err: std::io::Error },
    /// A configuration whose directives parse but cannot be used together or loaded.
    #[error("{reason}")]
    Fatal { reason: String },
}

/// Redis names only the line; pubsubd also names the file, which matters with `include`.
fn in_source(source: &str) -> String {
    if source.is_empty() {
        String::new()
    } else {
        format!(" of {source}")
    }
}

/// Nested `include`s deeper than this are refused (Redis loops forever on an include cycle).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Directives of a Redis keyspace server that pub/sub has no use for: accepted with a warning, so
/// an existing redis.conf starts unchanged.
const IGNORED: &[&str] = &[
    "save",
    "appendonly",
    "appendfilename",
    "appendfsync",
    "appenddirname",
    "auto-aof-rewrite-percentage",
    "auto-aof-rewrite-min-size",
    "aof-load-truncated",
    "aof-use-rdb-preamble",
    "aof-timestamp-enabled",
    "aof-rewrite-incremental-fsync",
    "no-appendfsync-on-rewrite",
    "dbfilename",
    "dir",
    "rdbcompression",
    "rdbchecksum",
    "rdb-del-sync-files",
    "rdb-save-incremental-fsync",
    "stop-writes-on-bgsave-error",
    "sanitize-dump-payload",
    "maxmemory",
    "maxmemory-policy",
    "maxmemory-samples",
    "maxmemory-eviction-tenacity",
    "lazyfree-lazy-eviction",
    "lazyfree-lazy-expire",
    "lazyfree-lazy-server-del",
    "lazyfree-lazy-user-del",
    "lazyfree-lazy-user-flush",
    "replica-lazy-flush",
    "replica-serve-stale-data",
    "replica-read-only",
    "replica-priority",
    "repl-diskless-sync",
    "repl-diskless-sync-delay",
    "repl-diskless-sync-max-replicas",
    "repl-diskless-load",
    "repl-disable-tcp-nodelay",
    "active-expire-effort",
    "activerehashing",
    "activedefrag",
    "hash-max-listpack-entries",
    "hash-max-listpack-value",
    "hash-max-ziplist-entries",
    "hash-max-ziplist-value",
    "list-max-listpack-size",
    "list-max-ziplist-size",
    "list-compress-depth",
    "set-max-intset-entries",
    "set-max-listpack-entries",
    "set-max-listpack-value",
    "zset-max-listpack-entries",
    "zset-max-listpack-value",
    "zset-max-ziplist-entries",
    "zset-max-ziplist-value",
    "hll-sparse-max-bytes",
    "stream-node-max-bytes",
    "stream-node-max-entries",
    "jemalloc-bg-thread",
    "lua-time-limit",
    "busy-reply-threshold",
    "latency-monitor-threshold",
    "notify-keyspace-events",
    "dynamic-hz",
    "hz",
    "always-show-logo",
    "set-proc-title",
    "proc-title-template",
    "locale-collate",
    "oom-score-adj",
    "oom-score-adj-values",
    "disable-thp",
    "crash-log-enabled",
    "crash-memcheck-enabled",
    "syslog-enabled",
    "syslog-ident",
    "syslog-facility",
    "enable-protected-configs",
    "enable-debug-command",
    "enable-module-command",
    "tcp-backlog",
    "io-threads-do-reads",
    "lfu-log-factor",
    "lfu-decay-time",
    "tracking-table-max-keys",
    "tls-replication",
    "tls-cluster",
    "tls-ciphers",
    "tls-ciphersuites",
    "tls-prefer-server-ciphers",
    "tls-session-caching",
    "tls-session-cache-size",
    "tls-session-cache-timeout",
    "tls-dh-params-file",
    "tls-client-cert-file",
    "tls-client-key-file",
    "tls-client-key-file-pass",
    "masterauth",
    "masteruser",
];

const BAD_DIRECTIVE: &str = "Bad directive or wrong number of arguments";

/// Loads a config file into `cfg`.
pub fn load_file(cfg: &mut Config, path: &Path) -> Result<(), ConfigError> {
    load_nested(cfg, path, 0)
}

fn load_nested(cfg: &mut Config, path: &Path, depth: usize) -> Result<(), ConfigError> {
    let text = std::fs::read(path).map_err(|err| ConfigError::Open {
        path: path.display().to_string(),
        err,
    })?;
    apply_source(
        cfg,
        &String::from_utf8_lossy(&text),
        &path.display().to_string(),
        depth,
    )
}

/// Applies config text (a file's content, or command-line directives turned into lines).
pub fn apply_text(cfg: &mut Config, text: &str) -> Result<(), ConfigError> {
    apply_source(cfg, text, "", 0)
}

/// The files an `include` names: the path itself, or, when its file name has glob characters
/// (`include /etc/redis/conf.d/*.conf`, Redis 7), the matching files in name order.
fn include_paths(path: &str) -> Vec<std::path::PathBuf> {
    let p = Path::new(path);
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
    let Some(name) = name.filter(|n| n.contains(['*', '?', '['])) else {
        return vec![p.to_path_buf()];
    };
    let dir = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            crate::glob::stringmatch(
                name.as_bytes(),
                e.file_name().to_string_lossy().as_bytes(),
                false,
            )
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Applies config text read from `source` (a file name, or "" for the command line).
pub fn apply_source(
    cfg: &mut Config,
    text: &str,
    source: &str,
    depth: usize,
) -> Result<(), ConfigError> {
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fail = |reason: &str| ConfigError::Directive {
            version: env!("CARGO_PKG_VERSION"),
            file: source.to_string(),
            line: i + 1,
            text: redact_line(line),
            reason: reason.to_string(),
        };
        let Some(args) = split_args(line.as_bytes()) else {
            return Err(fail("Unbalanced quotes in configuration line"));
        };
        if args.is_empty() {
            continue;
        }
        let args: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let name = args[0].to_ascii_lowercase();
        if name == "include" {
            let path = one(&args[1..]).map_err(|r| fail(&r))?;
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(fail("Too many nested include directives"));
            }
            for file in include_paths(path) {
                load_nested(cfg, &file, depth + 1)?;
            }
            continue;
        }
        apply_directive(cfg, &name, &args[1..]).map_err(|r| fail(&r))?;
        if name == "user" || name == "rename-command" {
            let mut args = args;
            args[0] = name;
            cfg.lines_to_check.0.push(super::SourceLine {
                args,
                file: source.to_string(),
                line: i + 1,
                text: line.to_string(),
                acl_pubsub_default_all: cfg.acl_pubsub_default_all,
            });
        }
    }
    Ok(())
}

fn cfg_urls(urls: &str) -> impl Iterator<Item = &str> {
    urls.split([',', ' '])
        .map(str::trim)
        .filter(|u| !u.is_empty())
}

/// A config line with the credentials of any URL in it hidden (`backbone nats://u:p@h`).
fn redact_line(line: &str) -> String {
    if !line.contains("://") {
        return line.to_string();
    }
    line.split(' ')
        .map(|w| {
            let (q, inner) = match w.strip_prefix('"') {
                Some(rest) => ("\"", rest),
                None => ("", w),
            };
            format!("{q}{}", redact_url(inner))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A URL with any `user:password@` or `token@` part replaced by `***@`, for messages and logs.
pub fn redact_url(u: &str) -> String {
    match (u.find("://"), u.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &u[..s + 3], &u[at..]),
        _ => u.to_string(),
    }
}

fn one(args: &[String]) -> Result<&str, String> {
    match args {
        [a] => Ok(a),
        _ => Err(BAD_DIRECTIVE.to_string()),
    }
}

fn number(args: &[String], min: u64, max: u64) -> Result<u64, String> {
    let s = one(args)?;
    match parse_memory(s) {
        Some(n) if n >= min && n <= max => Ok(n),
        Some(_) => Err(format!(
            "argument must be between {min} and {max} inclusive"
        )),
        None => Err("argument couldn't be parsed into an integer".to_string()),
    }
}

/// A memory directive (`32mb`): Redis's MEMORY_CONFIG error text.
fn memory(args: &[String], min: u64, max: u64) -> Result<u64, String> {
    match number(args, min, max) {
        Err(e) if e.starts_with("argument couldn't") => {
            Err("argument must be a memory value".to_string())
        }
        r => r,
    }
}

/// A signed integer directive (`slowlog-log-slower-than -1`).
fn signed(args: &[String], min: i64, max: i64) -> Result<i64, String> {
    match one(args)?.parse::<i64>() {
        Ok(n) if n >= min && n <= max => Ok(n),
        Ok(_) => Err(format!(
            "argument must be between {min} and {max} inclusive"
        )),
        Err(_) => Err("argument couldn't be parsed into an integer".to_string()),
    }
}

fn yes_no(args: &[String]) -> Result<bool, String> {
    match one(args)?.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("argument must be 'yes' or 'no'".to_string()),
    }
}

/// Applies one directive (`name` lowercased); `Err` holds Redis's reason text.
pub fn apply_directive(cfg: &mut Config, name: &str, args: &[String]) -> Result<(), String> {
    match name {
        "bind" => {
            if args.is_empty() {
                return Err(BAD_DIRECTIVE.to_string());
            }
            cfg.bind = args.to_vec();
        }
        "port" => cfg.port = number(args, 0, 65535)? as u16,
        "maxclients" => cfg.maxclients = number(args, 1, u32::MAX as u64)?,
        "timeout" => cfg.timeout = number(args, 0, i32::MAX as u64)?,
        "tcp-keepalive" => cfg.tcp_keepalive = number(args, 0, i32::MAX as u64)?,
        "databases" => cfg.databases = number(args, 1, i32::MAX as u64)?,
        "io-threads" => cfg.io_threads = number(args, 1, 128)? as usize,
        "shutdown-timeout" => cfg.shutdown_timeout = number(args, 0, i32::MAX as u64)?,
        "metrics-port" => cfg.metrics_port = number(args, 0, 65535)? as u16,
        "slowlog-log-slower-than" => cfg.slowlog_log_slower_than = signed(args, -1, i64::MAX)?,
        "slowlog-max-len" => cfg.slowlog_max_len = number(args, 0, i64::MAX as u64)?,
        "supervised" => {
            let v = one(args)?.to_ascii_lowercase();
            if !["upstart", "systemd", "auto", "no"].contains(&v.as_str()) {
                return Err(
                    "argument(s) must be one of the following: upstart, systemd, auto, no"
                        .to_string(),
                );
            }
            cfg.supervised = v;
        }
        "loadmodule" => {
            return Err("Modules are not supported: pubsubd cannot load Redis modules".to_string())
        }
        "proto-max-bulk-len" => {
            cfg.proto_max_bulk_len = memory(args, 1024 * 1024, i64::MAX as u64)? as usize
        }
        "client-query-buffer-limit" => {
            cfg.client_query_buffer_limit = memory(args, 1024 * 1024, i64::MAX as u64)? as usize
        }
        "loglevel" => cfg.loglevel = LogLevel::parse(one(args)?).ok_or(
            "argument(s) must be one of the following: debug, verbose, notice, warning, nothing",
        )?,
        "logfile" => cfg.logfile = one(args)?.to_string(),
        "pidfile" => cfg.pidfile = one(args)?.to_string(),
        "daemonize" => cfg.daemonize = yes_no(args)?,
        "client-output-buffer-limit" => {
            if args.is_empty() || args.len() % 4 != 0 {
                return Err("Wrong number of arguments in buffer limit configuration.".to_string());
            }
            for class in args.chunks(4) {
                let limits = (
                    parse_memory(&class[1]),
                    parse_memory(&class[2]),
                    class[3].parse::<u64>().ok(),
                );
                let (Some(h), Some(s), Some(t)) = limits else {
                    return Err("Error in hard, soft or soft_seconds setting in buffer limit configuration.".to_string());
                };
                match class[0].to_ascii_lowercase().as_str() {
                    "pubsub" => cfg.pubsub_output_limit = (h, s, t),
                    "normal" => cfg.normal_output_limit = (h, s, t),
                    "replica" | "slave" => cfg.replica_output_limit = (h, s, t),
                    _ => {
                        return Err(
                            "Invalid client class specified in buffer limit configuration."
                                .to_string(),
                        )
                    }
                }
            }
        }
        "requirepass" => cfg.requirepass = super::Secret(one(args)?.to_string()),
        "user" => {
            if args.is_empty() {
                return Err(BAD_DIRECTIVE.to_string());
            }
            if cfg.users.0.iter().any(|u| u[0] == args[0]) {
                return Err(format!("Error in user declaration '{}': Duplicate user found. A user can only be defined once in config files", args[0]));
            }
            cfg.users.0.push(args.to_vec());
        }
        "aclfile" => cfg.aclfile = one(args)?.to_string(),
        "acl-pubsub-default" => {
            cfg.acl_pubsub_default_all = match one(args)?.to_ascii_lowercase().as_str() {
                "allchannels" => true,
                "resetchannels" => false,
                _ => {
                    return Err(
                        "argument(s) must be one of the following: allchannels, resetchannels"
                            .to_string(),
                    )
                }
            }
        }
        "acllog-max-len" => cfg.acllog_max_len = number(args, 0, i64::MAX as u64)? as usize,
        "protected-mode" => cfg.protected_mode = yes_no(args)?,
        "unixsocket" => cfg.unixsocket = one(args)?.to_string(),
        "unixsocketperm" => {
            cfg.unixsocketperm = u32::from_str_radix(one(args)?, 8)
                .ok()
                .filter(|m| *m <= 0o777)
                .ok_or("Invalid socket file permissions")?
        }
        "rename-command" => {
            let [from, to] = args else {
                return Err(BAD_DIRECTIVE.to_string());
            };
            let from = from.to_ascii_lowercase();
            cfg.rename_command.push((from, to.to_ascii_lowercase()));
        }
        "tls-port" => cfg.tls.port = number(args, 0, 65535)? as u16,
        "tls-cert-file" => cfg.tls.cert_file = one(args)?.to_string(),
        "tls-key-file" => cfg.tls.key_file = one(args)?.to_string(),
        "tls-key-file-pass" => cfg.tls.key_file_pass = super::Secret(one(args)?.to_string()),
        "tls-ca-cert-file" => cfg.tls.ca_cert_file = one(args)?.to_string(),
        "tls-ca-cert-dir" => cfg.tls.ca_cert_dir = one(args)?.to_string(),
        "tls-auth-clients" => {
            cfg.tls.auth_clients = match one(args)?.to_ascii_lowercase().as_str() {
                "yes" => super::TlsAuthClients::Yes,
                "no" => super::TlsAuthClients::No,
                "optional" => super::TlsAuthClients::Optional,
                _ => {
                    return Err(
                        "argument(s) must be one of the following: no, yes, optional".to_string(),
                    )
                }
            }
        }
        "tls-protocols" => {
            let mut list = Vec::new();
            for p in one(args)?.split_whitespace() {
                match p.to_ascii_lowercase().as_str() {
                    "tlsv1.2" | "tlsv1.3" => list.push(p.to_ascii_lowercase()),
                    "tlsv1" | "tlsv1.1" => {
                        return Err(format!(
                            "{p} is not supported: pubsubd speaks TLSv1.2 and TLSv1.3"
                        ))
                    }
                    _ => return Err(format!("Invalid tls-protocols specified: {p}")),
                }
            }
            cfg.tls.protocols = list;
        }
        "cluster-enabled" => cfg.cluster_enabled = yes_no(args)?,
        "cluster-node-timeout" => cfg.cluster_node_timeout = number(args, 0, i64::MAX as u64)?,
        "cluster-announce-ip" => cfg.cluster_announce_ip = one(args)?.to_string(),
        "cluster-announce-port" => cfg.cluster_announce_port = number(args, 0, 65535)? as u16,
        "cluster-announce-tls-port" => {
            cfg.cluster_announce_tls_port = number(args, 0, 65535)? as u16
        }
        "cluster-announce-hostname" => {
            let h = one(args)?;
            // Redis's rule (`isValidAnnouncedHostname`).
            if h.len() >= 256
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                return Err("Hostnames must be less than 256 characters and only contain alphanumeric characters, '-' or '.'".to_string());
            }
            cfg.cluster_announce_hostname = h.to_string();
        }
        "cluster-config-file" => cfg.cluster_config_file = one(args)?.to_string(),
        "backbone" => {
            let urls = args.join(",");
            for u in cfg_urls(&urls) {
                if !(u.starts_with("nats://") || u.starts_with("tls://")) {
                    return Err(format!(
                        "Invalid backbone URL '{}': it must start with nats:// or tls://",
                        redact_url(u)
                    ));
                }
            }
            cfg.backbone.urls = super::Secret(urls);
        }
        // Checked by the backbone at start-up (`server::startup`).
        "backbone-prefix" => cfg.backbone.prefix = one(args)?.to_string(),
        "backbone-creds-file" => cfg.backbone.creds_file = one(args)?.to_string(),
        "backbone-tls-ca-cert-file" => cfg.backbone.tls_ca_cert_file = one(args)?.to_string(),
        "backbone-tls-cert-file" => cfg.backbone.tls_cert_file = one(args)?.to_string(),
        "backbone-tls-key-file" => cfg.backbone.tls_key_file = one(args)?.to_string(),
        "backbone-required" => cfg.backbone.required = yes_no(args)?,
        "backbone-connect-timeout" => cfg.backbone.connect_timeout_ms = number(args, 100, 600_000)?,
        "backbone-queue-limit" => {
            cfg.backbone.queue_limit = number(args, 1 << 20, i64::MAX as u64)?
        }
        "backbone-reassembly-limit" => {
            cfg.backbone.reassembly_limit = number(args, 1 << 20, i64::MAX as u64)?
        }
        "include" => {
            let path = one(args)?;
            let mut inner = std::mem::take(cfg);
            load_file(&mut inner, Path::new(path)).map_err(|e| e.to_string())?;
            *cfg = inner;
        }
        _ if IGNORED.contains(&name) || super::params::keyspace_default(name).is_some() => {
            super::params::record_ignored(cfg, name, args);
        }
        _ => return Err(BAD_DIRECTIVE.to_string()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_directives_quotes_and_units() {
        let mut c = Config::default();
        apply_text(
            &mut c,
            "# comment\nport 7000\nbind 127.0.0.1 ::1\nclient-output-buffer-limit normal 0 0 0 pubsub 64mb 16mb 30\nlogfile \"\"\nsave 900 1\n",
        )
        .unwrap();
        assert_eq!(c.port, 7000);
        assert_eq!(c.bind, vec!["127.0.0.1", "::1"]);
        assert_eq!(c.pubsub_output_limit, (64 << 20, 16 << 20, 30));
        assert_eq!(c.logfile, "");
        assert_eq!(c.ignored, vec!["save 900 1"]);
    }

    #[test]
    fn bad_directive_names_the_line() {
        let mut c = Config::default();
        let e = apply_text(&mut c, "port 1\nprot 7000\n").unwrap_err();
        let s = e.to_string();
        assert!(s.contains("at line 2"), "{s}");
        assert!(s.contains(">>> 'prot 7000'"), "{s}");
        assert!(
            s.contains("Bad directive or wrong number of arguments"),
            "{s}"
        );
    }

    #[test]
    fn out_of_range_port_is_rejected() {
        let mut c = Config::default();
        assert!(apply_text(&mut c, "port 70000").is_err());
    }
}
