//! Running one scenario once against one server: set up subscribers, publish, drain, measure,
//! and check that every acknowledged receiver got its message.
//!
//! The measured window starts after every subscription is confirmed and ends when the last
//! owed delivery arrived (or the drain limit passed), so a server that acknowledges quickly but
//! delivers late is charged for it. Server CPU and RSS come from /proc over that window.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::task::JoinHandle;

use crate::publisher::{self, Flow, Pace, Plan, PubState, Stop};
use crate::scenario::{key, Params, Scenario, FANOUT_W1K_WINDOW};
use crate::server::{self, Running};
use crate::stats::Hist;
use crate::subscriber::{self, Counters, SubSpec};

/// One run's figures and everything that did not add up.
#[derive(Default)]
pub struct Outcome {
    pub metrics: Vec<(&'static str, f64)>,
    /// Empty when every check passed.
    pub problems: Vec<String>,
    /// A one-line account of the counts behind the check.
    pub tally: String,
    /// Why this server did not run this scenario (the relay outside its scenarios).
    pub skipped: Option<String>,
}

impl Outcome {
    pub(crate) fn put(&mut self, k: &'static str, v: f64) {
        self.metrics.push((k, v));
    }

    pub fn get(&self, k: &str) -> f64 {
        self.metrics
            .iter()
            .find(|(m, _)| *m == k)
            .map_or(f64::NAN, |(_, v)| *v)
    }
}

pub(crate) const MIB: f64 = 1024.0;
/// How long deliveries may trail the last acknowledged publish before they count as lost.
const DELIVERY_DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// Concurrent connection attempts while subscribing, below Redis's default tcp-backlog (511).
pub(crate) const CONNECT_CONCURRENCY: usize = 256;

pub async fn run(s: Scenario, srv: &Running, p: &Params) -> Result<Outcome> {
    match s {
        Scenario::Fanout => fanout(srv, p, 100, 64).await,
        Scenario::Fanout1k => fanout(srv, p, 1_000, 64).await,
        Scenario::Fanout4k => fanout(srv, p, 100, 4096).await,
        Scenario::FanoutW1k => {
            let w = FANOUT_W1K_WINDOW;
            let p = Params {
                window: w,
                batch: p.batch.min(w),
                ..p.clone()
            };
            fanout(srv, &p, 100, 64).await
        }
        Scenario::Channels => channels(srv, p).await,
        Scenario::Latency => latency(srv, p).await,
        Scenario::Conns => conns(srv, p).await,
        Scenario::Slow => slow(srv, p).await,
        Scenario::Patterns(n) => patterns(srv, p, n).await,
        Scenario::PatternChurn => churn(srv, p).await,
    }
}

/// CPU and memory readings over a measured window.
pub(crate) struct Meter {
    pub t0: Instant,
    srv_cpu0: Option<f64>,
    self_cpu0: f64,
    rss_max: Arc<AtomicU64>,
    sampler: JoinHandle<()>,
}

pub(crate) struct Measured {
    pub srv_cpu: f64,
    pub self_cpu: f64,
    pub rss_peak_mib: f64,
}

impl Meter {
    pub(crate) fn start(srv: &Running) -> Self {
        let rss_max = Arc::new(AtomicU64::new(srv.rss_kib().unwrap_or(0)));
        let sampler = {
            let (rss_max, pid) = (rss_max.clone(), srv.pid);
            tokio::spawn(async move {
                let Some(pid) = pid else { return };
                let mut tick = tokio::time::interval(Duration::from_millis(10));
                loop {
                    tick.tick().await;
                    if let Some(kib) = server::rss_kib_of(pid) {
                        rss_max.fetch_max(kib, Relaxed);
                    }
                }
            })
        };
        Self {
            t0: Instant::now(),
            srv_cpu0: srv.cpu_seconds(),
            self_cpu0: server::cpu_seconds("self").unwrap_or(f64::NAN),
            rss_max,
            sampler,
        }
    }

    pub(crate) fn finish(self, srv: &Running) -> Measured {
        self.sampler.abort();
        let mut peak = self.rss_max.load(Relaxed);
        if srv.is_fresh() {
            // VmHWM also catches a peak between two samples.
            peak = peak.max(srv.hwm_kib().unwrap_or(0));
        }
        Measured {
            srv_cpu: match (self.srv_cpu0, srv.cpu_seconds()) {
                (Some(a), Some(b)) => b - a,
                _ => f64::NAN,
            },
            self_cpu: server::cpu_seconds("self").unwrap_or(f64::NAN) - self.self_cpu0,
            rss_peak_mib: if srv.pid.is_some() {
                peak as f64 / MIB
            } else {
                f64::NAN
            },
        }
    }
}

/// A publish/deliver load: who subscribes, who publishes, and how.
pub(crate) struct Load {
    pub subs: Vec<SubSpec>,
    pub plans: Vec<Plan>,
    pub pace: Pace,
    /// Back-pressure budget in owed deliveries; `None` publishes open-loop.
    pub max_lag: Option<u64>,
    pub latency_epoch: Option<Instant>,
}

/// What a load run counted.
pub(crate) struct LoadResult {
    delivered: u64,
    acked: u64,
    reply_sum: u64,
    pub_elapsed: f64,
    deliver_elapsed: f64,
    measured: Measured,
    latency: Option<Hist>,
    problems: Vec<String>,
}

pub(crate) async fn run_load(srv: &Running, p: &Params, load: Load) -> Result<LoadResult> {
    let counters = Arc::new(Counters::default());
    let subs = subscriber::start_subscribers(
        srv.addr,
        load.subs,
        counters.clone(),
        load.latency_epoch,
        CONNECT_CONCURRENCY,
    )
    .await?;
    let flow = load.max_lag.map(|max_lag| {
        Arc::new(Flow {
            owed: AtomicU64::new(0),
            counters: counters.clone(),
            max_lag,
            per_ack: None,
        })
    });
    let meter = Meter::start(srv);
    let t0 = meter.t0;
    let deadline = t0 + p.duration;
    let mut pubs = Vec::new();
    for plan in load.plans {
        let state = Arc::new(PubState::default());
        let stop = Stop {
            deadline,
            max_commands: None,
            flag: Arc::new(AtomicBool::new(false)),
        };
        let task = tokio::spawn(publisher::publish(
            srv.addr,
            Arc::new(plan),
            load.pace,
            stop,
            flow.clone(),
            state.clone(),
        ));
        pubs.push((task, state));
    }
    let mut problems = Vec::new();
    let mut last_ack = meter.t0;
    for (task, state) in &mut pubs {
        match task.await? {
            Ok(r) => {
                last_ack = last_ack.max(r.last_ack);
                if r.unacked > 0 {
                    problems.push(format!("{} publishes never acknowledged", r.unacked));
                }
            }
            Err(e) => problems.push(format!("publisher failed: {e:#}")),
        }
        publisher_problems(state, &mut problems);
    }
    let reply_sum: u64 = pubs.iter().map(|(_, s)| s.reply_sum.load(Relaxed)).sum();
    let acked: u64 = pubs.iter().map(|(_, s)| s.acked.load(Relaxed)).sum();
    let delivered_at = wait_delivered(&counters, reply_sum).await;
    let measured = meter.finish(srv);
    let delivered = counters.delivered.load(Relaxed);
    subscriber_problems(&counters, delivered, reply_sum, &mut problems);
    Ok(LoadResult {
        delivered,
        acked,
        reply_sum,
        pub_elapsed: (last_ack - t0).as_secs_f64(),
        deliver_elapsed: (delivered_at.max(last_ack) - t0).as_secs_f64(),
        measured,
        latency: load.latency_epoch.map(|_| subs.latency()),
        problems,
    })
}

/// Waits until `owed` messages have been counted; returns when the last one arrived.
pub(crate) async fn wait_delivered(counters: &Counters, owed: u64) -> Instant {
    let t = Instant::now();
    let (mut last, mut last_change) = (counters.delivered.load(Relaxed), Instant::now());
    loop {
        let now_count = counters.delivered.load(Relaxed);
        if now_count != last {
            (last, last_change) = (now_count, Instant::now());
        }
        // Two quiet seconds after the last arrival means nothing more is coming.
        if now_count >= owed
            || t.elapsed() > DELIVERY_DRAIN_LIMIT
            || last_change.elapsed().as_secs() >= 2
        {
            return if now_count >= owed {
                Instant::now()
            } else {
                last_change
            };
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

pub(crate) fn publisher_problems(s: &PubState, problems: &mut Vec<String>) {
    let errors = s.errors.load(Relaxed);
    if errors > 0 {
        let first = s.first_error.lock().clone().unwrap_or_default();
        problems.push(format!("{errors} error replies, first: {first}"));
    }
    let mism = s.mismatches.load(Relaxed);
    if mism > 0 {
        problems.push(format!(
            "{mism} replies differ from the subscribed receiver count (replies sum {} vs expected {})",
            s.reply_sum.load(Relaxed),
            s.expected_sum.load(Relaxed)
        ));
    }
    let unexpected = s.unexpected.load(Relaxed);
    if unexpected > 0 {
        problems.push(format!("{unexpected} unexpected frames on a publisher"));
    }
}

pub(crate) fn subscriber_problems(
    c: &Counters,
    delivered: u64,
    owed: u64,
    problems: &mut Vec<String>,
) {
    if delivered < owed {
        problems.push(format!(
            "LOSS: delivered {delivered} < acknowledged {owed} (−{})",
            owed - delivered
        ));
    } else if delivered > owed {
        problems.push(format!(
            "delivered {delivered} > acknowledged {owed} (+{})",
            delivered - owed
        ));
    }
    let d = c.disconnected.load(Relaxed);
    if d > 0 {
        problems.push(format!("{d} subscribers were disconnected"));
    }
    let u = c.unexpected.load(Relaxed);
    if u > 0 {
        problems.push(format!("{u} unexpected frames on subscribers"));
    }
}

pub(crate) fn throughput_outcome(r: LoadResult) -> Outcome {
    let mut o = Outcome {
        problems: r.problems,
        ..Default::default()
    };
    let cpu = r.measured.srv_cpu;
    o.put(key::DELIV_S, r.delivered as f64 / r.deliver_elapsed);
    o.put(key::PUB_S, r.acked as f64 / r.pub_elapsed);
    o.put(key::SRV_CPU, cpu);
    o.put(key::DELIV_CPU, r.delivered as f64 / cpu);
    o.put(key::PUB_CPU, r.acked as f64 / cpu);
    o.put(key::RSS_PEAK, r.measured.rss_peak_mib);
    o.put(key::CLIENT_CPU, r.measured.self_cpu);
    o.put(key::WINDOW_S, r.deliver_elapsed);
    o.tally = format!(
        "published {} acked-receivers {} delivered {}",
        r.acked, r.reply_sum, r.delivered
    );
    if let Some(h) = &r.latency {
        for (k, q) in [(key::P50, 0.5), (key::P99, 0.99), (key::P999, 0.999)] {
            o.put(k, h.quantile(q) as f64 / 1e3);
        }
        o.put(key::MAX, h.max() as f64 / 1e3);
        o.tally += &format!(" latency samples {}", h.count());
    }
    o
}

pub(crate) fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

pub(crate) fn publish_cmd(channel: &[u8], payload: &[u8]) -> Vec<Vec<u8>> {
    vec![b"PUBLISH".to_vec(), channel.to_vec(), payload.to_vec()]
}

/// Owed deliveries a publisher may run ahead by: enough to keep every receiver's pipe full,
/// little enough (≈128 KiB per receiver) that server output buffers stay far below their limits.
pub(crate) fn lag_budget(p: &Params, receivers: usize, payload: usize) -> u64 {
    let per = (128 * 1024 / (payload + 48)).max(2 * p.window as usize);
    (receivers * per) as u64
}

pub(crate) fn closed(p: &Params) -> Pace {
    Pace::Closed {
        window: p.window,
        batch: p.batch,
    }
}

async fn fanout(srv: &Running, p: &Params, subs: usize, size: usize) -> Result<Outcome> {
    let spec = SubSpec {
        names: vec![b"fanout".to_vec()],
        patterns: false,
        buf_size: 64 * 1024,
    };
    let load = Load {
        subs: vec![spec; subs],
        plans: vec![Plan::new(&[(
            publish_cmd(b"fanout", &payload(size)),
            subs as i64,
        )])],
        pace: closed(p),
        max_lag: Some(lag_budget(p, subs, size)),
        latency_epoch: None,
    };
    Ok(throughput_outcome(run_load(srv, p, load).await?))
}

async fn channels(srv: &Running, p: &Params) -> Result<Outcome> {
    let name = |i: usize| format!("ch:{i}").into_bytes();
    let subs = (0..p.channels)
        .map(|i| SubSpec {
            names: vec![name(i)],
            patterns: false,
            buf_size: 16 * 1024,
        })
        .collect();
    let body = payload(64);
    let plans = (0..p.publishers)
        .map(|k| {
            let cmds: Vec<_> = (k..p.channels)
                .step_by(p.publishers)
                .map(|i| (publish_cmd(&name(i), &body), 1))
                .collect();
            Plan::new(&cmds)
        })
        .collect();
    let load = Load {
        subs,
        plans,
        pace: closed(p),
        max_lag: Some(lag_budget(p, p.channels.min(1000), 64)),
        latency_epoch: None,
    };
    Ok(throughput_outcome(run_load(srv, p, load).await?))
}

async fn latency(srv: &Running, p: &Params) -> Result<Outcome> {
    let subs = p.latency_subscribers;
    let spec = SubSpec {
        names: vec![b"latency".to_vec()],
        patterns: false,
        buf_size: 64 * 1024,
    };
    let epoch = Instant::now();
    let load = Load {
        subs: vec![spec; subs],
        plans: vec![Plan::timestamped(b"latency", 64, subs as i64)],
        pace: Pace::Rate {
            per_sec: p.rate,
            epoch,
        },
        max_lag: None,
        latency_epoch: Some(epoch),
    };
    Ok(throughput_outcome(run_load(srv, p, load).await?))
}

use crate::patterns::patterns;
use crate::special::{churn, conns, slow};
