//! The scenarios: names, what each sets up, which figures it reports and which targets apply.
//! How they run is in [`crate::run`].

use std::time::Duration;

use anyhow::{bail, Result};

use crate::patterns::Shape;
use crate::server::ServerOpts;
use crate::stats::Fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// 1 channel, 100 subscribers, 64-byte payloads.
    Fanout,
    /// 1 channel, 1,000 subscribers, 64-byte payloads.
    Fanout1k,
    /// 1 channel, 100 subscribers, 4 KiB payloads.
    Fanout4k,
    /// 1 channel, 100 subscribers, 64-byte payloads, 1,024 publishes in flight whatever
    /// `--window` says.
    FanoutW1k,
    /// 10,000 channels with one subscriber connection each; publishers spread over them.
    Channels,
    /// Fixed publish rate to 50 subscribers; end-to-end latency from a timestamp in the payload.
    Latency,
    /// 10,000 idle subscribed connections: RSS per connection.
    Conns,
    /// One subscriber that never reads while healthy ones keep up with a 1 KiB flood.
    Slow,
    /// Publishes/s with this many pattern subscriptions.
    Patterns(usize),
    /// PSUBSCRIBE/PUNSUBSCRIBE rate with 100,000 patterns subscribed.
    PatternChurn,
}

pub const ALL: &[Scenario] = &[
    Scenario::Fanout,
    Scenario::Fanout1k,
    Scenario::Fanout4k,
    Scenario::FanoutW1k,
    Scenario::Channels,
    Scenario::Latency,
    Scenario::Conns,
    Scenario::Slow,
    Scenario::Patterns(0),
    Scenario::Patterns(1_000),
    Scenario::Patterns(10_000),
    Scenario::Patterns(100_000),
    Scenario::PatternChurn,
];

/// `client-output-buffer-limit pubsub` for the slow-subscriber scenario: Redis's default.
pub const SLOW_OBUF_LIMIT: [&str; 3] = ["32mb", "8mb", "60"];
/// The hard limit above, in MiB, and the allowance the target grants on top of it.
pub const SLOW_HARD_LIMIT_MIB: f64 = 32.0;
pub const SLOW_RSS_ALLOWANCE_MIB: f64 = 16.0;
/// Publishes in flight in `fanout-w1k`.
pub const FANOUT_W1K_WINDOW: u64 = 1024;
/// pubsubd's fan-out against the one-thread relay (`relay.rs`): within 15 % of the limit of
/// forwarding on one core, in deliveries per server CPU-second. Not in deliveries/s: pinned to
/// one core each, the relay outruns a load generator on one core, so its deliveries/s are the
/// load generator's limit rather than its own.
pub const FANOUT_VS_RELAY: f64 = 0.85;

/// Knobs from the command line that scenarios share.
#[derive(Debug, Clone)]
pub struct Params {
    pub duration: Duration,
    /// Unacknowledged commands a pipelining publisher allows.
    pub window: u64,
    /// Commands per write.
    pub batch: u64,
    /// Keep `window` in the pattern scenarios however many patterns there are.
    pub pattern_full_window: bool,
    /// Publish to channels that match no pattern in the pattern scenarios.
    pub pattern_miss: bool,
    /// Which patterns the pattern scenarios subscribe.
    pub pattern_shape: Shape,
    /// In `patterns-0`, give every channel published one exact subscriber.
    pub pattern_exact_baseline: bool,
    /// Publishes per second in the latency scenario.
    pub rate: f64,
    /// Publisher connections in the many-channels scenario.
    pub publishers: usize,
    /// Channels (= subscriber connections) in the many-channels scenario.
    pub channels: usize,
    /// Idle connections in the connections scenario.
    pub conns: usize,
    /// Subscribers in the latency scenario.
    pub latency_subscribers: usize,
    /// Healthy subscribers beside the slow one.
    pub healthy: usize,
}

/// A figure worth a line in the summary, with the target it is held to, if any.
pub struct Headline {
    pub key: &'static str,
    /// Held to the first server ÷ the second (relay aside).
    pub target: Option<Target>,
    /// Held to the first server ÷ the relay, when the relay runs.
    pub vs_relay: Option<Target>,
}

#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// First server ÷ second server must be at least this.
    RatioAtLeast(f64),
    /// First server ÷ second server must be at most this.
    RatioAtMost(f64),
    /// The first server's value must be at most this, in the metric's unit.
    AtMost(f64),
}

impl Target {
    pub fn describe(&self) -> String {
        // One decimal unless the target has two (0.85).
        let r = |r: f64| {
            if (r * 10.0).fract().abs() < 1e-9 {
                format!("{r:.1}")
            } else {
                format!("{r:.2}")
            }
        };
        match self {
            Target::RatioAtLeast(v) => format!("≥ {}×", r(*v)),
            Target::RatioAtMost(v) => format!("≤ {}×", r(*v)),
            Target::AtMost(v) => format!("≤ {v}"),
        }
    }
}

/// Metric keys, shared by the runs that produce them and the tables that print them.
pub mod key {
    pub const DELIV_S: &str = "deliv/s";
    pub const PUB_S: &str = "pub/s";
    pub const OPS_S: &str = "ops/s";
    pub const SRV_CPU: &str = "srv CPU s";
    pub const DELIV_CPU: &str = "deliv/CPU-s";
    pub const PUB_CPU: &str = "pub/CPU-s";
    pub const OPS_CPU: &str = "ops/CPU-s";
    pub const RSS_PEAK: &str = "RSS peak MiB";
    pub const RSS_BEFORE: &str = "RSS before MiB";
    pub const RSS_AFTER: &str = "RSS after MiB";
    pub const KIB_CONN: &str = "KiB/conn";
    /// The same, once the connections have been idle for `special::SETTLE`.
    pub const KIB_CONN_SETTLED: &str = "KiB/conn settled";
    /// Server CPU time over that idle period, as a share of one CPU.
    pub const IDLE_CPU: &str = "idle CPU %";
    pub const SETUP_S: &str = "setup s";
    pub const P50: &str = "p50 µs";
    pub const P99: &str = "p99 µs";
    pub const P999: &str = "p99.9 µs";
    pub const MAX: &str = "max µs";
    pub const DISCONNECT_MS: &str = "disconnect ms";
    pub const CLIENT_CPU: &str = "client CPU s";
    /// The measured window (not a column): how busy the load generator was.
    pub const WINDOW_S: &str = "window s";
}

/// How each metric prints.
pub fn fmt_of(k: &str) -> Fmt {
    use key::*;
    match k {
        DELIV_S | PUB_S | OPS_S | DELIV_CPU | PUB_CPU | OPS_CPU => Fmt::Si,
        SRV_CPU | SETUP_S | CLIENT_CPU | WINDOW_S => Fmt::Secs,
        RSS_PEAK | RSS_BEFORE | RSS_AFTER => Fmt::MiB,
        KIB_CONN | KIB_CONN_SETTLED => Fmt::KiB,
        P50 | P99 | P999 | MAX => Fmt::Micros,
        DISCONNECT_MS => Fmt::Millis,
        IDLE_CPU => Fmt::Percent,
        _ => Fmt::Plain,
    }
}

impl Scenario {
    pub fn name(&self) -> String {
        match self {
            Scenario::Fanout => "fanout".into(),
            Scenario::Fanout1k => "fanout-1k".into(),
            Scenario::Fanout4k => "fanout-4k".into(),
            Scenario::FanoutW1k => "fanout-w1k".into(),
            Scenario::Channels => "channels".into(),
            Scenario::Latency => "latency".into(),
            Scenario::Conns => "conns".into(),
            Scenario::Slow => "slow".into(),
            Scenario::Patterns(n) => format!("patterns-{}", short_count(*n)),
            Scenario::PatternChurn => "pattern-churn".into(),
        }
    }

    pub fn describe(&self, p: &Params) -> String {
        match self {
            Scenario::Fanout => format!(
                "1 channel × 100 subscribers, 64 B payloads, 1 pipelining publisher, {}",
                in_flight(p.window, p.batch)
            ),
            Scenario::Fanout1k => format!(
                "1 channel × 1,000 subscribers, 64 B payloads, 1 pipelining publisher, {}",
                in_flight(p.window, p.batch)
            ),
            Scenario::Fanout4k => format!(
                "1 channel × 100 subscribers, 4 KiB payloads, 1 pipelining publisher, {}",
                in_flight(p.window, p.batch)
            ),
            Scenario::FanoutW1k => format!(
                "1 channel × 100 subscribers, 64 B payloads, 1 pipelining publisher, {}",
                in_flight(FANOUT_W1K_WINDOW, p.batch.min(FANOUT_W1K_WINDOW))
            ),
            Scenario::Channels => format!(
                "{} channels × 1 subscriber connection each, {} publishers spread over them, 64 B, \
                 {} each",
                p.channels,
                p.publishers,
                in_flight(p.window, p.batch)
            ),
            Scenario::Latency => format!(
                "{} publishes/s to 1 channel × {} subscribers, 64 B, timestamp in payload",
                p.rate, p.latency_subscribers
            ),
            Scenario::Conns => format!(
                "{} idle connections, each subscribed to its own channel",
                p.conns
            ),
            Scenario::Slow => format!(
                "1 subscriber never reads + {} healthy on the same channel, 1 KiB flood, \
                 client-output-buffer-limit pubsub {}",
                p.healthy,
                SLOW_OBUF_LIMIT.join(" ")
            ),
            Scenario::Patterns(n) => {
                let matches = if p.pattern_miss {
                    "none"
                } else if p.pattern_shape == Shape::Mixed {
                    "0–2"
                } else {
                    "1"
                };
                let exact = if *n == 0 && p.pattern_exact_baseline {
                    ", each channel published has 1 exact subscriber"
                } else {
                    ""
                };
                format!(
                    "{n} patterns ({}), each channel published matches {matches}{exact}, \
                     1 pipelining publisher, 64 B",
                    p.pattern_shape.describe()
                )
            }
            Scenario::PatternChurn => format!(
                "PSUBSCRIBE+PUNSUBSCRIBE pairs, pipelined, with 100,000 patterns ({}) subscribed",
                p.pattern_shape.describe()
            ),
        }
    }

    /// Client connections this scenario holds open at once.
    pub fn connections(&self, p: &Params) -> usize {
        match self {
            Scenario::Fanout | Scenario::Fanout4k | Scenario::FanoutW1k => 101,
            Scenario::Fanout1k => 1_001,
            Scenario::Channels => p.channels + p.publishers,
            Scenario::Latency => p.latency_subscribers + 1,
            Scenario::Conns => p.conns + 1,
            Scenario::Slow => p.healthy + 2,
            Scenario::Patterns(n) => n.div_ceil(PATTERNS_PER_CONN).max(3) + 1,
            Scenario::PatternChurn => 100_000 / PATTERNS_PER_CONN + 2,
        }
    }

    pub fn server_opts(&self, p: &Params) -> ServerOpts {
        let conns = self.connections(p);
        ServerOpts {
            // Only raised when needed, so most runs use each server's defaults.
            maxclients: (conns + 16 > 10_000).then_some(conns + 64),
            pubsub_obuf_limit: (*self == Scenario::Slow).then_some(SLOW_OBUF_LIMIT),
        }
    }

    /// Whether the relay (`relay.rs`) can serve this scenario: plain SUBSCRIBE and PUBLISH
    /// loads only. Latency, idle connections, the slow subscriber and patterns need a server.
    pub fn relay_applies(&self) -> bool {
        matches!(
            self,
            Scenario::Fanout
                | Scenario::Fanout1k
                | Scenario::Fanout4k
                | Scenario::FanoutW1k
                | Scenario::Channels
        )
    }

    /// Columns of this scenario's table, in order.
    pub fn columns(&self) -> &'static [&'static str] {
        use key::*;
        match self {
            Scenario::Latency => &[
                P50, P99, P999, MAX, PUB_S, DELIV_S, SRV_CPU, RSS_PEAK, CLIENT_CPU,
            ],
            Scenario::Conns => &[
                RSS_BEFORE,
                RSS_AFTER,
                KIB_CONN,
                KIB_CONN_SETTLED,
                IDLE_CPU,
                SETUP_S,
                SRV_CPU,
                CLIENT_CPU,
            ],
            Scenario::Slow => &[
                RSS_BEFORE,
                RSS_PEAK,
                DISCONNECT_MS,
                DELIV_S,
                PUB_S,
                SRV_CPU,
                CLIENT_CPU,
            ],
            Scenario::PatternChurn => &[OPS_S, SRV_CPU, OPS_CPU, RSS_PEAK, CLIENT_CPU],
            Scenario::Patterns(_) => &[
                PUB_S, DELIV_S, SRV_CPU, PUB_CPU, DELIV_CPU, RSS_PEAK, CLIENT_CPU,
            ],
            _ => &[DELIV_S, PUB_S, SRV_CPU, DELIV_CPU, RSS_PEAK, CLIENT_CPU],
        }
    }

    /// The figures that go into the summary, with the targets.
    pub fn headlines(&self) -> Vec<Headline> {
        use key::*;
        let h = |key, target| Headline {
            key,
            target,
            vs_relay: None,
        };
        match self {
            Scenario::Fanout => vec![
                h(DELIV_S, Some(Target::RatioAtLeast(2.0))),
                Headline {
                    key: DELIV_CPU,
                    target: Some(Target::RatioAtLeast(1.5)),
                    vs_relay: Some(Target::RatioAtLeast(FANOUT_VS_RELAY)),
                },
            ],
            Scenario::Fanout1k | Scenario::Fanout4k => vec![
                h(DELIV_S, Some(Target::RatioAtLeast(2.0))),
                h(DELIV_CPU, Some(Target::RatioAtLeast(1.5))),
            ],
            Scenario::FanoutW1k => vec![h(DELIV_S, None), h(DELIV_CPU, None)],
            Scenario::Channels => {
                vec![
                    h(DELIV_S, Some(Target::RatioAtLeast(1.5))),
                    h(DELIV_CPU, None),
                ]
            }
            Scenario::Latency => {
                vec![
                    h(P50, None),
                    h(P99, Some(Target::RatioAtMost(1.0))),
                    h(P999, None),
                ]
            }
            Scenario::Conns => vec![
                h(KIB_CONN, Some(Target::RatioAtMost(0.6))),
                h(KIB_CONN_SETTLED, Some(Target::RatioAtMost(0.6))),
                h(IDLE_CPU, None),
            ],
            Scenario::Slow => vec![
                h(
                    RSS_PEAK,
                    Some(Target::AtMost(SLOW_HARD_LIMIT_MIB + SLOW_RSS_ALLOWANCE_MIB)),
                ),
                h(DISCONNECT_MS, None),
            ],
            Scenario::Patterns(_) => vec![h(PUB_S, None), h(PUB_CPU, None)],
            Scenario::PatternChurn => vec![h(OPS_S, None), h(OPS_CPU, None)],
        }
    }
}

/// Patterns per subscriber connection: large pattern sets are spread over connections, as
/// real deployments do, and Redis 7.0 checks a client's own patterns linearly on PSUBSCRIBE.
pub const PATTERNS_PER_CONN: usize = 1_000;

/// How a closed-loop publisher paces itself, in words.
fn in_flight(window: u64, batch: u64) -> String {
    format!("≤ {window} publishes in flight, {batch} per write")
}

fn short_count(n: usize) -> String {
    match n {
        0 => "0".into(),
        n if n % 1000 == 0 => format!("{}k", n / 1000),
        n => n.to_string(),
    }
}

/// Parses `--scenario`: a comma-separated list of names, `patterns` (all four pattern counts)
/// or `all`.
pub fn parse_list(s: &str) -> Result<Vec<Scenario>> {
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let found: Vec<Scenario> = match name {
            "all" => ALL.to_vec(),
            "patterns" => ALL
                .iter()
                .copied()
                .filter(|s| matches!(s, Scenario::Patterns(_)))
                .collect(),
            _ => ALL.iter().copied().filter(|s| s.name() == name).collect(),
        };
        if found.is_empty() {
            let names: Vec<String> = ALL.iter().map(|s| s.name()).collect();
            bail!(
                "unknown scenario {name:?}; known: {}, patterns, all",
                names.join(", ")
            );
        }
        for f in found {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    Ok(out)
}
