//! Scenarios that are not a plain publish/deliver load: idle connections, the slow subscriber
//! and pattern churn.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::patterns::pattern_subs;
use crate::publisher::{self, Flow, Plan, PubState, Stop};
use crate::run::{
    closed, lag_budget, payload, publish_cmd, publisher_problems, subscriber_problems,
    wait_delivered, Meter, Outcome, CONNECT_CONCURRENCY, MIB,
};
use crate::scenario::{key, Params};
use crate::server::Running;
use crate::subscriber::{self, Counters, SubSpec};

/// Runs one publisher connection to completion and folds its problems into `problems`.
async fn publish_all(
    srv: &Running,
    plan: Plan,
    p: &Params,
    stop: Stop,
    flow: Option<Arc<Flow>>,
    problems: &mut Vec<String>,
) -> (Arc<PubState>, Instant) {
    let state = Arc::new(PubState::default());
    let mut last_ack = Instant::now();
    match publisher::publish(
        srv.addr,
        Arc::new(plan),
        closed(p),
        stop,
        flow,
        state.clone(),
    )
    .await
    {
        Ok(r) => {
            last_ack = r.last_ack;
            if r.unacked > 0 {
                problems.push(format!("{} commands never acknowledged", r.unacked));
            }
        }
        Err(e) => problems.push(format!("publisher failed: {e:#}")),
    }
    (state, last_ack)
}

fn stop_at(deadline: Instant, max_commands: Option<u64>) -> Stop {
    Stop {
        deadline,
        max_commands,
        flag: Arc::new(AtomicBool::new(false)),
    }
}

/// How long `conns` leaves the connections idle before its second reading. Redis frees an idle
/// client's query buffer after 2 s and shrinks its reply buffer once the 5 s window of its peak
/// use has passed; its allocator (jemalloc) gives the freed pages back to the system over the
/// following ~10 s: its RSS per connection stops falling after 12-16 s.
pub const SETTLE: Duration = Duration::from_secs(20);

/// Idle subscribed connections: server RSS before and after, per connection, read 0.5 s after
/// they are set up and again once they have been idle for `SETTLE`, and the server's CPU use
/// over that idle period. Afterwards one message per
/// channel proves every connection is really subscribed.
pub async fn conns(srv: &Running, p: &Params) -> Result<Outcome> {
    let n = p.conns;
    let name = |i: usize| format!("idle:{i}").into_bytes();
    let before = srv.rss_kib().unwrap_or(0) as f64;
    let meter = Meter::start(srv);
    let counters = Arc::new(Counters::default());
    let specs = (0..n).map(|i| SubSpec {
        names: vec![name(i)],
        patterns: false,
        buf_size: 4096,
    });
    let subs = subscriber::start_subscribers(
        srv.addr,
        specs.collect(),
        counters.clone(),
        None,
        CONNECT_CONCURRENCY,
    )
    .await?;
    let setup = meter.t0.elapsed().as_secs_f64();
    // Let the server finish whatever it does after accepting before reading its memory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = srv.rss_kib().unwrap_or(0) as f64;
    let measured = meter.finish(srv);
    let idle_cpu0 = srv.cpu_seconds();
    tokio::time::sleep(SETTLE).await;
    let idle_cpu = match (idle_cpu0, srv.cpu_seconds()) {
        (Some(a), Some(b)) => 100.0 * (b - a) / SETTLE.as_secs_f64(),
        _ => f64::NAN,
    };
    let settled = srv.rss_kib().unwrap_or(0) as f64;

    let mut problems = Vec::new();
    let cmds: Vec<_> = (0..n)
        .map(|i| (publish_cmd(&name(i), b"ping"), 1))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (state, _) = publish_all(
        srv,
        Plan::new(&cmds),
        p,
        stop_at(deadline, Some(n as u64)),
        None,
        &mut problems,
    )
    .await;
    publisher_problems(&state, &mut problems);
    let owed = state.reply_sum.load(Relaxed);
    wait_delivered(&counters, owed).await;
    let delivered = counters.delivered.load(Relaxed);
    subscriber_problems(&counters, delivered, owed, &mut problems);
    if subs.len() != n {
        problems.push(format!("only {} of {n} subscribers connected", subs.len()));
    }
    let mut o = Outcome {
        problems,
        ..Default::default()
    };
    let known = srv.pid.is_some();
    let nan_unless = |v: f64| if known { v } else { f64::NAN };
    o.put(key::RSS_BEFORE, nan_unless(before / MIB));
    o.put(key::RSS_AFTER, nan_unless(after / MIB));
    o.put(key::KIB_CONN, nan_unless((after - before) / n as f64));
    o.put(
        key::KIB_CONN_SETTLED,
        nan_unless((settled - before) / n as f64),
    );
    o.put(key::IDLE_CPU, idle_cpu);
    o.put(key::SETUP_S, setup);
    o.put(key::SRV_CPU, measured.srv_cpu);
    o.put(key::CLIENT_CPU, measured.self_cpu);
    o.tally = format!(
        "{} connections, one message each: delivered {delivered} of {owed}",
        subs.len()
    );
    Ok(o)
}

/// Healthy subscribers beside one that never reads, while a publisher floods 1 KiB messages at
/// the pace the healthy ones keep up with. The never-reading subscriber's kernel receive buffer
/// is made small so that the server, not the kernel, has to hold the backlog.
pub async fn slow(srv: &Running, p: &Params) -> Result<Outcome> {
    const SIZE: usize = 1024;
    let healthy = p.healthy;
    let counters = Arc::new(Counters::default());
    let spec = SubSpec {
        names: vec![b"slow".to_vec()],
        patterns: false,
        buf_size: 256 * 1024,
    };
    let _subs = subscriber::start_subscribers(
        srv.addr,
        vec![spec.clone(); healthy],
        counters.clone(),
        None,
        64,
    )
    .await?;
    let (mut sleeper, _) = subscriber::subscribe(srv.addr, &spec, Some(4096)).await?;
    let rss_before = srv.rss_kib().map_or(f64::NAN, |k| k as f64 / MIB);

    let meter = Meter::start(srv);
    let t0 = meter.t0;
    let flow = Arc::new(Flow {
        owed: AtomicU64::new(0),
        counters: counters.clone(),
        max_lag: lag_budget(p, healthy, SIZE),
        per_ack: Some(healthy as u64),
    });
    let cap = p.duration.max(Duration::from_secs(5));
    let stop = stop_at(t0 + cap, None);
    let flag = stop.flag.clone();
    let plan = Plan::new(&[(publish_cmd(b"slow", &payload(SIZE)), healthy as i64 + 1)]);
    let state = Arc::new(PubState::default());
    let task = tokio::spawn(publisher::publish(
        srv.addr,
        Arc::new(plan),
        closed(p),
        stop,
        Some(flow),
        state.clone(),
    ));
    // The first reply one receiver short marks the disconnect; keep flooding a second longer to
    // show the healthy subscribers carry on.
    while !task.is_finished() {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let m = state.first_mismatch_ns.load(Relaxed);
        if m != u64::MAX && t0.elapsed() > Duration::from_nanos(m) + Duration::from_secs(1) {
            flag.store(true, Relaxed);
        }
    }
    let mut problems = Vec::new();
    let last_ack = match task.await? {
        Ok(r) => {
            if r.unacked > 0 {
                problems.push(format!("{} publishes never acknowledged", r.unacked));
            }
            r.last_ack
        }
        Err(e) => {
            problems.push(format!("publisher failed: {e:#}"));
            Instant::now()
        }
    };
    let acked = state.acked.load(Relaxed);
    let owed = acked * healthy as u64;
    let delivered_at = wait_delivered(&counters, owed).await;
    let measured = meter.finish(srv);
    let delivered = counters.delivered.load(Relaxed);

    // Replies one short of healthy+1 are the expected effect of the disconnect; anything else
    // (errors, other counts) is a problem.
    let (mism, reply_sum, exp_sum) = (
        state.mismatches.load(Relaxed),
        state.reply_sum.load(Relaxed),
        state.expected_sum.load(Relaxed),
    );
    state.mismatches.store(0, Relaxed);
    publisher_problems(&state, &mut problems);
    if reply_sum + mism != exp_sum {
        problems.push(format!(
            "replies sum {reply_sum}, expected {exp_sum} less {mism} after the disconnect"
        ));
    }
    subscriber_problems(&counters, delivered, owed, &mut problems);
    let first = state.first_mismatch_ns.load(Relaxed);
    if first == u64::MAX {
        problems.push(format!(
            "the never-reading subscriber was not disconnected within {cap:?}"
        ));
    } else if !closed_by_server(&mut sleeper).await {
        problems.push(
            "PUBLISH stopped counting the never-reading subscriber but its connection stayed open"
                .into(),
        );
    }
    let mut o = Outcome {
        problems,
        ..Default::default()
    };
    o.put(key::RSS_BEFORE, rss_before);
    o.put(key::RSS_PEAK, measured.rss_peak_mib);
    o.put(
        key::DISCONNECT_MS,
        if first == u64::MAX {
            f64::NAN
        } else {
            first as f64 / 1e6
        },
    );
    o.put(
        key::DELIV_S,
        delivered as f64 / (delivered_at.max(last_ack) - t0).as_secs_f64(),
    );
    o.put(key::PUB_S, acked as f64 / (last_ack - t0).as_secs_f64());
    o.put(key::SRV_CPU, measured.srv_cpu);
    o.put(key::CLIENT_CPU, measured.self_cpu);
    o.tally = format!(
        "published {acked}, {healthy} healthy subscribers got {delivered} of {owed}, {mism} publishes after the disconnect"
    );
    Ok(o)
}

/// Reads what the kernel still holds for a connection; true if it ends (EOF or reset) in time.
async fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = vec![0u8; 256 * 1024];
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

/// PSUBSCRIBE/PUNSUBSCRIBE pairs, pipelined, on top of 100,000 subscribed patterns.
pub async fn churn(srv: &Running, p: &Params) -> Result<Outcome> {
    let counters = Arc::new(Counters::default());
    let _subs = subscriber::start_subscribers(
        srv.addr,
        pattern_subs(100_000, p.pattern_shape),
        counters,
        None,
        CONNECT_CONCURRENCY,
    )
    .await?;
    let cmds: Vec<_> = (0..4096)
        .flat_map(|c| {
            let pat = format!("churn.{c}.*").into_bytes();
            [
                (vec![b"PSUBSCRIBE".to_vec(), pat.clone()], 1),
                (vec![b"PUNSUBSCRIBE".to_vec(), pat], 0),
            ]
        })
        .collect();
    let meter = Meter::start(srv);
    let t0 = meter.t0;
    let mut problems = Vec::new();
    let (state, last_ack) = publish_all(
        srv,
        Plan::new(&cmds),
        p,
        stop_at(t0 + p.duration, None),
        None,
        &mut problems,
    )
    .await;
    let measured = meter.finish(srv);
    publisher_problems(&state, &mut problems);
    let ops = state.acked.load(Relaxed);
    let mut o = Outcome {
        problems,
        ..Default::default()
    };
    o.put(key::OPS_S, ops as f64 / (last_ack - t0).as_secs_f64());
    o.put(key::SRV_CPU, measured.srv_cpu);
    o.put(key::OPS_CPU, ops as f64 / measured.srv_cpu);
    o.put(key::RSS_PEAK, measured.rss_peak_mib);
    o.put(key::CLIENT_CPU, measured.self_cpu);
    o.tally = format!("{ops} confirmed PSUBSCRIBE/PUNSUBSCRIBE with 100000 patterns held");
    Ok(o)
}
