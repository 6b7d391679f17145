//! INFO, in Redis's format and section names: one function per section. Numbers come from
//! `Stats` (the Stats section from its table, `stats::STATS_SECTION`), the registry and /proc;
//! this module only renders them.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{CmdResult, Ctx};
use crate::state::ServerState;
use crate::stats::{cpu_seconds, STATS_SECTION};

/// Sections of a plain `INFO` (and of `default`), in Redis's order.
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
    "backbone",
];

/// Writes one section, its title line included.
type Section = fn(&ServerState, &mut String);

/// Every section in Redis's order, with the function that writes it.
const SECTIONS: &[(&str, Section)] = &[
    ("server", server),
    ("clients", clients),
    ("memory", memory),
    ("persistence", persistence),
    ("stats", stats),
    ("replication", replication),
    ("cpu", cpu),
    ("modules", |_, o| writeln_all(o, "Modules", &[])),
    ("commandstats", commandstats),
    ("errorstats", errorstats),
    // Per-command latency percentiles are not tracked: the section is empty, as in Redis with
    // `latency-tracking no`.
    ("latencystats", |_, o| writeln_all(o, "Latencystats", &[])),
    ("cluster", |s, o| {
        let on = if s.cluster.is_some() { "1" } else { "0" };
        writeln_all(o, "Cluster", &[("cluster_enabled", on.into())])
    }),
    ("keyspace", |_, o| writeln_all(o, "Keyspace", &[])),
    ("backbone", backbone),
];

pub fn info(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut wanted: Vec<String> = Vec::new();
    for a in &args[1..] {
        let s = String::from_utf8_lossy(a).to_ascii_lowercase();
        match s.as_str() {
            "default" => wanted.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string())),
            "all" | "everything" => {
                wanted.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string()));
                wanted.extend(EXTRA_SECTIONS.iter().map(|s| s.to_string()));
            }
            _ => wanted.push(s),
        }
    }
    if wanted.is_empty() {
        wanted.extend(DEFAULT_SECTIONS.iter().map(|s| s.to_string()));
    }
    let text = render(ctx.server, &wanted);
    ctx.reply.verbatim(text.as_bytes());
    Ok(())
}

/// Sections only `all`/`everything` (or their own name) include.
const EXTRA_SECTIONS: &[&str] = &["commandstats", "latencystats"];

/// Renders the named sections (unknown names contribute nothing, as in Redis).
pub fn render(s: &ServerState, wanted: &[String]) -> String {
    let mut out = String::new();
    for (name, write) in SECTIONS {
        if !wanted.iter().any(|w| w == name) || (*name == "backbone" && s.backbone.is_none()) {
            continue;
        }
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        write(s, &mut out);
    }
    out
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b < 1024.0 {
        format!("{bytes}B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2}K", b / 1024.0)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", b / (1024.0 * 1024.0))
    } else {
        format!("{:.2}G", b / (1024.0 * 1024.0 * 1024.0))
    }
}

fn os_line() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{} {} {}",
        if cfg!(target_os = "linux") {
            "Linux"
        } else {
            std::env::consts::OS
        },
        release.trim(),
        std::env::consts::ARCH
    )
}

fn server(s: &ServerState, o: &mut String) {
    let now_us = unix_micros();
    let uptime = s.started.elapsed().as_secs();
    writeln_all(
        o,
        "Server",
        &[
            ("redis_version", crate::REDIS_VERSION.to_string()),
            ("redis_git_sha1", "00000000".into()),
            ("redis_git_dirty", "0".into()),
            ("redis_build_id", "0".into()),
            (
                "redis_mode",
                if s.cluster.is_some() {
                    "cluster"
                } else {
                    "standalone"
                }
                .into(),
            ),
            ("os", os_line()),
            ("arch_bits", "64".into()),
            ("monotonic_clock", "POSIX clock_gettime".into()),
            ("multiplexing_api", "epoll".into()),
            ("atomicvar_api", "c11-builtin".into()),
            ("gcc_version", "0.0.0".into()),
            ("process_id", std::process::id().to_string()),
            ("process_supervised", "no".into()),
            ("run_id", s.run_id.clone()),
            ("tcp_port", s.tcp_port.load(Ordering::Relaxed).to_string()),
            ("server_time_usec", now_us.to_string()),
            ("uptime_in_seconds", uptime.to_string()),
            ("uptime_in_days", (uptime / 86400).to_string()),
            ("hz", "10".into()),
            ("configured_hz", "10".into()),
            (
                "lru_clock",
                ((now_us / 1_000_000) as u64 & ((1 << 24) - 1)).to_string(),
            ),
            (
                "executable",
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            ("config_file", s.ops.live.read().config_file.clone()),
            ("io_threads_active", "0".into()),
            ("pubsubd_version", env!("CARGO_PKG_VERSION").into()),
            (
                "pubsubd_worker_threads",
                s.config.worker_threads().to_string(),
            ),
        ],
    );
}

fn unix_micros() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

fn clients(s: &ServerState, o: &mut String) {
    let pubsub_clients = s
        .clients
        .iter()
        .filter(|c| {
            let m = c.meta.lock();
            m.sub + m.psub + m.ssub > 0
        })
        .count();
    let tracking_clients = s
        .clients
        .iter()
        .filter(|c| c.meta.lock().extra().tracking.is_some())
        .count();
    writeln_all(
        o,
        "Clients",
        &[
            ("connected_clients", s.clients.len().to_string()),
            ("cluster_connections", "0".into()),
            ("maxclients", s.runtime.maxclients().to_string()),
            ("client_recent_max_input_buffer", "0".into()),
            ("client_recent_max_output_buffer", "0".into()),
            ("blocked_clients", "0".into()),
            ("tracking_clients", tracking_clients.to_string()),
            ("pubsub_clients", pubsub_clients.to_string()),
            ("clients_in_timeout_table", "0".into()),
            ("total_blocking_keys", "0".into()),
            ("total_blocking_keys_on_nokey", "0".into()),
        ],
    );
}

fn memory(s: &ServerState, o: &mut String) {
    let used = crate::memory::used();
    let rss = crate::memory::rss_bytes();
    let peak = crate::memory::peak().max(used);
    let (mut normal, mut pubsub) = (0usize, 0usize);
    for c in s.clients.iter() {
        let m = c.meta.lock();
        let is_pubsub = m.sub + m.psub + m.ssub > 0;
        let n = c.outbox.pending() + m.qbuf;
        drop(m);
        if is_pubsub {
            pubsub += n;
        } else {
            normal += n;
        }
    }
    let frag = if used > 0 {
        rss as f64 / used as f64
    } else {
        0.0
    };
    writeln_all(
        o,
        "Memory",
        &[
            ("used_memory", used.to_string()),
            ("used_memory_human", human(used)),
            ("used_memory_rss", rss.to_string()),
            ("used_memory_rss_human", human(rss)),
            ("used_memory_peak", peak.to_string()),
            ("used_memory_peak_human", human(peak)),
            (
                "used_memory_peak_perc",
                format!("{:.2}%", used as f64 * 100.0 / peak.max(1) as f64),
            ),
            ("used_memory_dataset", "0".into()),
            ("maxmemory", "0".into()),
            ("maxmemory_human", "0B".into()),
            ("maxmemory_policy", "noeviction".into()),
            ("mem_fragmentation_ratio", format!("{frag:.2}")),
            ("mem_clients_slaves", "0".into()),
            // Redis counts subscribers as normal clients here.
            ("mem_clients_normal", (normal + pubsub).to_string()),
            // pubsubd's own field: the subscribers' share of the above.
            ("mem_clients_pubsub", pubsub.to_string()),
            ("mem_allocator", "libc".into()),
        ],
    );
}

fn persistence(s: &ServerState, o: &mut String) {
    writeln_all(
        o,
        "Persistence",
        &[
            ("loading", "0".into()),
            ("async_loading", "0".into()),
            ("current_cow_peak", "0".into()),
            ("current_cow_size", "0".into()),
            ("current_fork_perc", "0.00".into()),
            ("current_save_keys_processed", "0".into()),
            ("current_save_keys_total", "0".into()),
            ("rdb_changes_since_last_save", "0".into()),
            ("rdb_bgsave_in_progress", "0".into()),
            ("rdb_last_save_time", s.started_unix.to_string()),
            ("rdb_last_bgsave_status", "ok".into()),
            ("rdb_last_bgsave_time_sec", "-1".into()),
            ("rdb_current_bgsave_time_sec", "-1".into()),
            ("aof_enabled", "0".into()),
            ("aof_rewrite_in_progress", "0".into()),
            ("aof_rewrite_scheduled", "0".into()),
            ("aof_last_rewrite_time_sec", "-1".into()),
            ("aof_current_rewrite_time_sec", "-1".into()),
            ("aof_last_bgrewrite_status", "ok".into()),
            ("aof_last_write_status", "ok".into()),
            ("module_fork_in_progress", "0".into()),
            ("module_fork_last_cow_size", "0".into()),
        ],
    );
}

/// Rendered from `stats::STATS_SECTION`, as the metrics endpoint is.
fn stats(s: &ServerState, o: &mut String) {
    let fields: Vec<(&str, String)> = STATS_SECTION
        .iter()
        .map(|f| (f.info, s.stat(f).to_string()))
        .collect();
    writeln_all(o, "Stats", &fields);
}

fn replication(s: &ServerState, o: &mut String) {
    writeln_all(
        o,
        "Replication",
        &[
            ("role", "master".into()),
            ("connected_slaves", "0".into()),
            ("master_failover_state", "no-failover".into()),
            ("master_replid", s.run_id.clone()),
            ("master_replid2", "0".repeat(40)),
            ("master_repl_offset", "0".into()),
            ("second_repl_offset", "-1".into()),
            ("repl_backlog_active", "0".into()),
            ("repl_backlog_size", "1048576".into()),
            ("repl_backlog_first_byte_offset", "0".into()),
            ("repl_backlog_histlen", "0".into()),
        ],
    );
}

fn cpu(_: &ServerState, o: &mut String) {
    let (user, sys) = cpu_seconds();
    writeln_all(
        o,
        "CPU",
        &[
            ("used_cpu_sys", format!("{sys:.6}")),
            ("used_cpu_user", format!("{user:.6}")),
            ("used_cpu_sys_children", "0.000000".into()),
            ("used_cpu_user_children", "0.000000".into()),
        ],
    );
}

fn errorstats(s: &ServerState, o: &mut String) {
    let list = s.stats.error_codes();
    let lines: Vec<(String, String)> = list
        .into_iter()
        .map(|(code, n)| (format!("errorstat_{code}"), format!("count={n}")))
        .collect();
    let refs: Vec<(&str, String)> = lines.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    writeln_all(o, "Errorstats", &refs);
}

fn commandstats(s: &ServerState, o: &mut String) {
    let all = &*crate::commands::lookup::ALL;
    let lines: Vec<(String, String)> = s
        .stats
        .commands
        .snapshot()
        .into_iter()
        .filter_map(|(i, calls, usec, rejected, failed)| {
            let per_call = if calls > 0 { usec as f64 / calls as f64 } else { 0.0 };
            Some((
                format!("cmdstat_{}", all.get(i)?.name),
                format!("calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={rejected},failed_calls={failed}"),
            ))
        })
        .collect();
    let refs: Vec<(&str, String)> = lines.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    writeln_all(o, "Commandstats", &refs);
}

/// pubsubd's own section, present when a backbone is configured.
fn backbone(s: &ServerState, o: &mut String) {
    let fields: Vec<(String, String)> = s
        .backbone
        .as_ref()
        .map(|b| b.fields())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                crate::backbone::Field::Text(t) => t,
                crate::backbone::Field::Counter(n) | crate::backbone::Field::Gauge(n) => {
                    n.to_string()
                }
            };
            (format!("backbone_{k}"), v)
        })
        .collect();
    let refs: Vec<(&str, String)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    writeln_all(o, "Backbone", &refs);
}

fn writeln_all(o: &mut String, title: &str, fields: &[(&str, String)]) {
    let _ = write!(o, "# {title}\r\n");
    for (k, v) in fields {
        let _ = write!(o, "{k}:{v}\r\n");
    }
}
