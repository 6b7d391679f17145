//! The Prometheus endpoint (`metrics-port`, off by default): a minimal HTTP/1.1 responder on
//! every `bind` address. `GET /metrics` answers the exposition text (format 0.0.4); any other
//! path is 404 and any other method 405. One request per connection (`Connection: close`),
//! heads bounded in size and time, so a stuck scraper costs one small task.
//!
//! Exported: INFO's counters and gauges (`pubsubd_*`, counters ending in `_total`; the Stats
//! section's from `stats::STATS_SECTION`, the rows that name a metric), the
//! distribution of output-queue bytes over connected clients by class (a histogram taken at
//! scrape time), slow-consumer disconnections, and the estimated message counts of the
//! busiest channels (`channel_rates`, sampled on publish, top-K picked here).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;

use crate::state::ServerState;
use crate::stats::{cpu_seconds, Stats, STATS_SECTION};

/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// Time a scraper has to send its request.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Channels listed in `pubsubd_channel_messages_total`.
pub const TOP_CHANNELS: usize = 20;
/// Upper bounds (bytes) of the output-queue histogram's buckets.
const QUEUE_BUCKETS: &[u64] = &[
    0,
    1024,
    16 * 1024,
    256 * 1024,
    1 << 20,
    8 << 20,
    32 << 20,
    128 << 20,
];

/// Binds the metrics port on every `bind` address (as the TCP port is bound).
pub async fn bind(state: &ServerState) -> std::io::Result<Vec<TcpListener>> {
    super::bind_tcp(&state.config, state.config.metrics_port).await
}

/// Serves scrapes on `listener` until shutdown.
pub async fn serve(listener: TcpListener, state: Arc<ServerState>, tracker: TaskTracker) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = state.shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, _)) => {
                tracker.spawn(respond(stream, state.clone()));
            }
            Err(e) => {
                tracing::warn!("Accepting metrics connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return None;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Some(head)
}

async fn respond(mut stream: TcpStream, state: Arc<ServerState>) {
    let Ok(Some(head)) = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await else {
        return;
    };
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            render(&state),
        ),
        ("GET", _) => (
            "404 Not Found",
            "text/plain",
            "not found: try /metrics\n".into(),
        ),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".into()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Escapes a label value (`\`, `"`, newline), channel names being arbitrary bytes.
fn label(v: &[u8]) -> String {
    let mut s = String::new();
    for c in String::from_utf8_lossy(v).chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn metric(o: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = write!(
        o,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
    );
}

/// The backbone's fields (the table INFO `# Backbone` prints): counters as
/// `pubsubd_backbone_<name>_total`, gauges as `pubsubd_backbone_<name>`, and the text fields as
/// labels of `pubsubd_backbone_info`.
fn backbone(o: &mut String, b: &crate::backbone::Backbone) {
    use crate::backbone::Field;
    let mut labels = Vec::new();
    for (name, v) in b.fields() {
        match v {
            Field::Text(t) => labels.push(format!("{name}=\"{}\"", label(t.as_bytes()))),
            Field::Counter(n) => metric(
                o,
                &format!("pubsubd_backbone_{name}_total"),
                "counter",
                &format!("INFO backbone_{name}."),
                n,
            ),
            Field::Gauge(n) => metric(
                o,
                &format!("pubsubd_backbone_{name}"),
                "gauge",
                &format!("INFO backbone_{name}."),
                n,
            ),
        }
    }
    let _ = write!(
        o,
        "# HELP pubsubd_backbone_info The backbone's state (constant 1).\n# TYPE pubsubd_backbone_info gauge\npubsubd_backbone_info{{{}}} 1\n",
        labels.join(",")
    );
}

/// The exposition text.
pub fn render(s: &ServerState) -> String {
    let st = &s.stats;
    let g = |c: &std::sync::atomic::AtomicU64| Stats::get(c);
    let mut o = String::with_capacity(8 * 1024);
    let _ = write!(
        o,
        "# HELP pubsubd_info Server version (constant 1).\n# TYPE pubsubd_info gauge\npubsubd_info{{version=\"{}\",redis_version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION"),
        crate::REDIS_VERSION
    );
    metric(
        &mut o,
        "pubsubd_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        s.started.elapsed().as_secs(),
    );
    let (mut pubsub_clients, mut by_class) = (
        0u64,
        [
            vec![0u64; QUEUE_BUCKETS.len()],
            vec![0u64; QUEUE_BUCKETS.len()],
        ],
    );
    let mut sums = [0u64; 2];
    let mut counts = [0u64; 2];
    let mut parked = 0u64;
    for c in s.clients.iter() {
        parked += u64::from(c.parked.load(std::sync::atomic::Ordering::Relaxed));
        let m = c.meta.lock();
        let pubsub = m.sub + m.psub + m.ssub > 0;
        drop(m);
        let class = usize::from(pubsub);
        pubsub_clients += class as u64;
        let q = c.outbox.pending() as u64;
        sums[class] += q;
        counts[class] += 1;
        for (i, &b) in QUEUE_BUCKETS.iter().enumerate() {
            if q <= b {
                by_class[class][i] += 1;
            }
        }
    }
    metric(
        &mut o,
        "pubsubd_connected_clients",
        "gauge",
        "Client connections (INFO connected_clients).",
        s.clients.len(),
    );
    metric(
        &mut o,
        "pubsubd_pubsub_clients",
        "gauge",
        "Clients with at least one subscription (INFO pubsub_clients).",
        pubsub_clients,
    );
    metric(
        &mut o,
        "pubsubd_parked_clients",
        "gauge",
        "Idle connections waiting for input without a task of their own.",
        parked,
    );
    metric(
        &mut o,
        "pubsubd_maxclients",
        "gauge",
        "The maxclients setting.",
        s.runtime.maxclients(),
    );
    metric(
        &mut o,
        "pubsubd_used_memory_bytes",
        "gauge",
        "Bytes allocated (INFO used_memory).",
        crate::memory::used(),
    );
    metric(
        &mut o,
        "pubsubd_used_memory_rss_bytes",
        "gauge",
        "Resident set size (INFO used_memory_rss).",
        crate::memory::rss_bytes(),
    );
    metric(
        &mut o,
        "pubsubd_used_memory_peak_bytes",
        "gauge",
        "Peak of used_memory (INFO used_memory_peak).",
        crate::memory::peak(),
    );
    metric(
        &mut o,
        "pubsubd_slowlog_length",
        "gauge",
        "Entries in the slow log.",
        s.ops.slowlog.len(),
    );
    for f in STATS_SECTION {
        if let Some(m) = &f.metric {
            metric(&mut o, m.name, m.kind.name(), m.help, s.stat(f));
        }
    }
    let name = "pubsubd_connections_closed_total";
    let _ = write!(o, "# HELP {name} Connections closed, by the one reason recorded for each close.\n# TYPE {name} counter\n");
    for r in crate::outbox::CloseReason::ALL {
        let _ = writeln!(
            o,
            "{name}{{reason=\"{}\"}} {}",
            r.name(),
            g(&st.closed[r.index()])
        );
    }
    let (user, sys) = cpu_seconds();
    metric(
        &mut o,
        "pubsubd_cpu_user_seconds_total",
        "counter",
        "User CPU time (INFO used_cpu_user).",
        format!("{user:.6}"),
    );
    metric(
        &mut o,
        "pubsubd_cpu_sys_seconds_total",
        "counter",
        "System CPU time (INFO used_cpu_sys).",
        format!("{sys:.6}"),
    );

    if let Some(b) = &s.backbone {
        backbone(&mut o, b);
    }

    let name = "pubsubd_client_output_queue_bytes";
    let _ = write!(o, "# HELP {name} Bytes queued to each connected client, by client class, at scrape time.\n# TYPE {name} histogram\n");
    for (class, label_value) in [(1usize, "pubsub"), (0, "normal")] {
        for (i, &b) in QUEUE_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                o,
                "{name}_bucket{{class=\"{label_value}\",le=\"{b}\"}} {}",
                by_class[class][i]
            );
        }
        let _ = writeln!(
            o,
            "{name}_bucket{{class=\"{label_value}\",le=\"+Inf\"}} {}",
            counts[class]
        );
        let _ = writeln!(o, "{name}_sum{{class=\"{label_value}\"}} {}", sums[class]);
        let _ = writeln!(
            o,
            "{name}_count{{class=\"{label_value}\"}} {}",
            counts[class]
        );
    }

    let name = "pubsubd_channel_messages_total";
    let _ = write!(o, "# HELP {name} Messages published to the busiest channels (estimated from a 1-in-{} sample; at most {TOP_CHANNELS} channels).\n# TYPE {name} counter\n", crate::ops::channel_rates::SAMPLE_EVERY);
    for (shard, ch, n) in s.ops.channel_rates.top(TOP_CHANNELS) {
        let ns = if shard { "shard" } else { "global" };
        let _ = writeln!(
            o,
            "{name}{{namespace=\"{ns}\",channel=\"{}\"}} {n}",
            label(&ch)
        );
    }
    o
}
