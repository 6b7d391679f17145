//! `--cross-node`: pubsubd nodes on a NATS backbone against a Redis Cluster, both of three
//! nodes on this machine (issue 13's point 9). Each run starts the whole set fresh:
//!
//! - `pubsubd`: nats-server (`$NATS_SERVER` or the one on PATH / in /usr/sbin) and three
//!   pubsubd nodes with `--backbone`;
//! - `redis`: three `redis-server --cluster-enabled yes` joined by
//!   `redis-cli --cluster create … --cluster-replicas 0 --cluster-yes`;
//! - `standalone`: one pubsubd without a backbone (the `attached` scenario's baseline).
//!
//! Scenarios (publisher on node A, subscribers on node B unless said):
//! - `cross-fanout`: 1 publisher, 100 subscribers of one channel, 64 B; deliveries/s and
//!   deliveries per CPU-second of every server process (pubsubd nodes + nats-server, or every
//!   Redis node);
//! - `cross-channels`: 10,000 channels with one subscriber connection each, 4 publishers;
//! - `cross-routing`: one subscriber on B, 10,000 publishes on A; the backbone messages per
//!   publish each node received (pubsubd: nats-server's `/connz` out_msgs of each node's
//!   connection; Redis: `CLUSTER INFO` cluster_stats_messages_publish_received);
//! - `attached`: the fanout of `cross-fanout` with publisher and subscribers on node A: a node
//!   with a backbone against a standalone pubsubd.
//!
//! Before measuring, probes are published until every subscriber has received one, so interest
//! propagation is never measured. PUBLISH replies count the publishing node's receivers (0
//! here), so the owed deliveries per publish are the known subscriber count.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::publisher::{self, Flow, Plan, PubState, Stop};
use crate::run::{closed, lag_budget, payload, publish_cmd, CONNECT_CONCURRENCY};
use crate::scenario::Params;
use crate::server::{cpu_seconds, ensure_nofile};
use crate::stats::median;
use crate::subscriber::{self, Counters, SubSpec};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Pubsubd,
    Redis,
    Standalone,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Pubsubd => "pubsubd+nats",
            Kind::Redis => "redis-cluster",
            Kind::Standalone => "pubsubd-standalone",
        }
    }
}

/// The processes of one set of nodes.
struct Nodes {
    kind: Kind,
    addrs: Vec<SocketAddr>,
    children: Vec<Child>,
    /// nats-server's monitoring port (pubsubd only).
    monitor: Option<u16>,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Nodes {
    fn cpu(&self) -> f64 {
        self.children
            .iter()
            .filter_map(|c| cpu_seconds(&c.id().to_string()).ok())
            .sum()
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn spawn(bin: &str, args: &[String], log: &Path) -> Result<Child> {
    let f = std::fs::File::create(log)?;
    Command::new(bin)
        .args(args)
        .stdout(Stdio::from(f.try_clone()?))
        .stderr(Stdio::from(f))
        .spawn()
        .with_context(|| format!("starting {bin}"))
}

/// Sends one command and returns its reply as text (bulk, simple or integer replies).
async fn query(addr: SocketAddr, args: &[&str]) -> Result<String> {
    let mut s = TcpStream::connect(addr).await?;
    let mut cmd = Vec::new();
    let a: Vec<&[u8]> = args.iter().map(|x| x.as_bytes()).collect();
    crate::resp::encode_command(&mut cmd, &a);
    s.write_all(&cmd).await?;
    let mut buf = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut chunk = [0u8; 16384];
        let n = tokio::time::timeout_at(deadline.into(), s.read(&mut chunk))
            .await
            .context("reply timed out")??;
        if n == 0 {
            bail!("connection closed");
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[1..eol]).into_owned();
        match buf[0] {
            b'$' | b'=' => {
                let len: usize = head.parse()?;
                if buf.len() >= eol + 2 + len {
                    return Ok(String::from_utf8_lossy(&buf[eol + 2..eol + 2 + len]).into_owned());
                }
            }
            _ => return Ok(head),
        }
    }
}

fn field(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim_end().strip_prefix(&format!("{name}:")))
        .map(str::to_string)
}

async fn until(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> bool) -> Result<()> {
    let t = Instant::now();
    while !f().await {
        if t.elapsed() > limit {
            bail!("timed out waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn nats_bin() -> String {
    std::env::var("NATS_SERVER").unwrap_or_else(|_| {
        [
            "/usr/bin/nats-server",
            "/usr/sbin/nats-server",
            "/usr/local/bin/nats-server",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("nats-server")
        .to_string()
    })
}

async fn start(kind: Kind, pubsubd: &str, redis: &str, work: &Path) -> Result<Nodes> {
    let mut nodes = Nodes {
        kind,
        addrs: Vec::new(),
        children: Vec::new(),
        monitor: None,
    };
    match kind {
        Kind::Pubsubd | Kind::Standalone => {
            let mut backbone = Vec::new();
            if kind == Kind::Pubsubd {
                let (np, nm) = (free_port()?, free_port()?);
                let args: Vec<String> = [
                    "-a",
                    "127.0.0.1",
                    "-p",
                    &np.to_string(),
                    "-m",
                    &nm.to_string(),
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                nodes
                    .children
                    .push(spawn(&nats_bin(), &args, &work.join("nats.log"))?);
                nodes.monitor = Some(nm);
                backbone = vec!["--backbone".to_string(), format!("nats://127.0.0.1:{np}")];
                let a: SocketAddr = ([127, 0, 0, 1], np).into();
                until("nats-server listens", Duration::from_secs(10), async || {
                    TcpStream::connect(a).await.is_ok()
                })
                .await?;
            }
            let count = if kind == Kind::Pubsubd { 3 } else { 1 };
            for i in 0..count {
                let port = free_port()?;
                let mut args: Vec<String> = [
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--maxclients",
                    "20000",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                args.extend(backbone.iter().cloned());
                nodes.children.push(spawn(
                    pubsubd,
                    &args,
                    &work.join(format!("pubsubd-{i}.log")),
                )?);
                nodes.addrs.push(([127, 0, 0, 1], port).into());
            }
            for &a in &nodes.addrs {
                until(
                    "pubsubd is ready",
                    Duration::from_secs(10),
                    async || match query(a, &["INFO", "backbone"]).await {
                        Ok(t) => {
                            kind == Kind::Standalone
                                || field(&t, "backbone_status").as_deref() == Some("connected")
                        }
                        Err(_) => false,
                    },
                )
                .await?;
            }
        }
        Kind::Redis => {
            for i in 0..3 {
                let port = free_port()?;
                let dir = work.join(format!("redis-{i}"));
                std::fs::create_dir_all(&dir)?;
                let args: Vec<String> = [
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--maxclients",
                    "20000",
                    "--dir",
                    &dir.display().to_string(),
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                nodes
                    .children
                    .push(spawn(redis, &args, &work.join(format!("redis-{i}.log")))?);
                nodes.addrs.push(([127, 0, 0, 1], port).into());
            }
            for &a in &nodes.addrs {
                until(
                    "redis-server answers",
                    Duration::from_secs(10),
                    async || query(a, &["PING"]).await.is_ok(),
                )
                .await?;
            }
            let mut args = vec!["--cluster".to_string(), "create".to_string()];
            args.extend(nodes.addrs.iter().map(|a| a.to_string()));
            args.extend(["--cluster-replicas", "0", "--cluster-yes"].map(String::from));
            let out = Command::new("redis-cli")
                .args(&args)
                .output()
                .context("redis-cli")?;
            if !out.status.success() {
                bail!(
                    "redis-cli --cluster create failed: {}",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
            for &a in &nodes.addrs {
                until("the cluster is ok", Duration::from_secs(20), async || {
                    query(a, &["CLUSTER", "INFO"])
                        .await
                        .is_ok_and(|t| field(&t, "cluster_state").as_deref() == Some("ok"))
                })
                .await?;
            }
        }
    }
    Ok(nodes)
}

/// Subscribers on `sub`, publishers on `publ`: probes until every subscriber got one, then
/// `p.duration` of closed-loop publishing; returns (deliveries/s, deliveries per server
/// CPU-second, problems).
async fn measure(
    nodes: &Nodes,
    publ: SocketAddr,
    sub: SocketAddr,
    specs: Vec<SubSpec>,
    plans: Vec<Plan>,
    per_publish: u64,
    p: &Params,
) -> Result<(f64, f64, Vec<String>)> {
    let counters = Arc::new(Counters::default());
    // One probe per distinct channel: each subscriber (one channel each) receives one.
    let mut channels: Vec<Vec<u8>> = specs.iter().flat_map(|s| s.names.clone()).collect();
    channels.sort();
    channels.dedup();
    let n = specs.len() as u64;
    let _subs =
        subscriber::start_subscribers(sub, specs, counters.clone(), None, CONNECT_CONCURRENCY)
            .await?;
    // Interest has reached every node once a round of probes reaches every subscriber.
    let mut probe = TcpStream::connect(publ).await?;
    let t = Instant::now();
    loop {
        counters.delivered.store(0, Relaxed);
        let mut buf = Vec::new();
        for ch in &channels {
            crate::resp::encode_command(&mut buf, &[b"PUBLISH", ch, b"probe"]);
        }
        probe.write_all(&buf).await?;
        let mut sink = vec![0u8; 1 << 16];
        // Until the count has not moved for 300 ms: late probes of a round land in that round.
        let (mut last, mut since) = (u64::MAX, Instant::now());
        while since.elapsed() < Duration::from_millis(300) {
            let _ = tokio::time::timeout(Duration::from_millis(5), probe.read(&mut sink)).await;
            let now = counters.delivered.load(Relaxed);
            if now != last {
                (last, since) = (now, Instant::now());
            }
        }
        if counters.delivered.load(Relaxed) == n {
            break;
        }
        if t.elapsed() > Duration::from_secs(60) {
            bail!("subscribers never all received a probe");
        }
    }
    drop(probe);
    counters.delivered.store(0, Relaxed);
    let flow = Arc::new(Flow {
        owed: AtomicU64::new(0),
        counters: counters.clone(),
        max_lag: lag_budget(p, per_publish.max(1) as usize * 10, 64),
        per_ack: Some(per_publish),
    });
    let cpu0 = nodes.cpu();
    let t0 = Instant::now();
    let deadline = t0 + p.duration;
    let mut pubs = Vec::new();
    for plan in plans {
        let state = Arc::new(PubState::default());
        let stop = Stop {
            deadline,
            max_commands: None,
            flag: Arc::new(AtomicBool::new(false)),
        };
        pubs.push((
            tokio::spawn(publisher::publish(
                publ,
                Arc::new(plan),
                closed(p),
                stop,
                Some(flow.clone()),
                state.clone(),
            )),
            state,
        ));
    }
    let mut problems = Vec::new();
    let mut acked = 0;
    for (task, state) in pubs {
        if let Err(e) = task.await? {
            problems.push(format!("publisher failed: {e:#}"));
        }
        acked += state.acked.load(Relaxed);
    }
    let owed = acked * per_publish;
    let done = crate::run::wait_delivered(&counters, owed).await;
    let delivered = counters.delivered.load(Relaxed);
    let cpu = nodes.cpu() - cpu0;
    if delivered != owed {
        let mut why = String::new();
        if nodes.kind == Kind::Pubsubd {
            for (label, a) in [("A", publ), ("B", sub)] {
                let t = query(a, &["INFO", "backbone"]).await.unwrap_or_default();
                for f in ["backbone_dropped_out", "backbone_dropped_in"] {
                    why.push_str(&format!(
                        " {label} {f}={}",
                        field(&t, f).unwrap_or_default()
                    ));
                }
            }
        }
        problems.push(format!("delivered {delivered} of {owed};{why}"));
    }
    let secs = (done - t0).as_secs_f64();
    Ok((delivered as f64 / secs, delivered as f64 / cpu, problems))
}

async fn cross_fanout(nodes: &Nodes, p: &Params, local: bool) -> Result<(f64, f64, Vec<String>)> {
    let spec = SubSpec {
        names: vec![b"fanout".to_vec()],
        patterns: false,
        buf_size: 64 * 1024,
    };
    let publ = nodes.addrs[0];
    let sub = if local {
        nodes.addrs[0]
    } else {
        nodes.addrs[1 % nodes.addrs.len()]
    };
    // Local subscribers make PUBLISH reply 100; remote ones 0.
    let reply = if local { 100 } else { 0 };
    let plan = Plan::new(&[(publish_cmd(b"fanout", &payload(64)), reply)]);
    measure(nodes, publ, sub, vec![spec; 100], vec![plan], 100, p).await
}

async fn cross_channels(nodes: &Nodes, p: &Params) -> Result<(f64, f64, Vec<String>)> {
    let name = |i: usize| format!("ch:{i}").into_bytes();
    let specs = (0..p.channels)
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
                .map(|i| (publish_cmd(&name(i), &body), 0))
                .collect();
            Plan::new(&cmds)
        })
        .collect();
    measure(nodes, nodes.addrs[0], nodes.addrs[1], specs, plans, 1, p).await
}

/// Backbone messages each node received per publish: (to B, to C).
async fn cross_routing(nodes: &Nodes) -> Result<(f64, f64)> {
    let (a, b, c) = (nodes.addrs[0], nodes.addrs[1], nodes.addrs[2]);
    let counters = Arc::new(Counters::default());
    let spec = SubSpec {
        names: vec![b"routed".to_vec()],
        patterns: false,
        buf_size: 64 * 1024,
    };
    let _subs = subscriber::start_subscribers(b, vec![spec], counters.clone(), None, 1).await?;
    let received = async |who: SocketAddr| -> Result<u64> {
        match nodes.kind {
            Kind::Redis => {
                let t = query(who, &["CLUSTER", "INFO"]).await?;
                Ok(field(&t, "cluster_stats_messages_publish_received")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0))
            }
            _ => {
                let id = field(
                    &query(who, &["INFO", "backbone"]).await?,
                    "backbone_node_id",
                )
                .context("node id")?;
                let body = http_get(nodes.monitor.context("monitor")?, "/connz?limit=1024").await?;
                let v: serde_json::Value = serde_json::from_str(&body)?;
                Ok(v["connections"]
                    .as_array()
                    .and_then(|cs| {
                        cs.iter()
                            .find(|c| c["name"].as_str().is_some_and(|n| n.contains(&id)))
                    })
                    .and_then(|c| c["out_msgs"].as_u64())
                    .unwrap_or(0))
            }
        }
    };
    // Wait until B's interest is in place, with probes that are not counted.
    let mut probe = TcpStream::connect(a).await?;
    until("B receives", Duration::from_secs(20), async || {
        let mut cmd = Vec::new();
        crate::resp::encode_command(&mut cmd, &[b"PUBLISH", b"routed", b"probe"]);
        let _ = probe.write_all(&cmd).await;
        let mut sink = [0u8; 64];
        let _ = tokio::time::timeout(Duration::from_millis(50), probe.read(&mut sink)).await;
        counters.delivered.load(Relaxed) > 0
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (b0, c0) = (received(b).await?, received(c).await?);
    let before = counters.delivered.load(Relaxed);
    let n = 10_000u64;
    let mut cmds = Vec::new();
    for _ in 0..n {
        crate::resp::encode_command(&mut cmds, &[b"PUBLISH", b"routed", b"x"]);
    }
    probe.write_all(&cmds).await?;
    until(
        "B received every publish",
        Duration::from_secs(30),
        async || counters.delivered.load(Relaxed) >= before + n,
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (b1, c1) = (received(b).await?, received(c).await?);
    Ok(((b1 - b0) as f64 / n as f64, (c1 - c0) as f64 / n as f64))
}

async fn http_get(port: u16, path: &str) -> Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await??;
    let text = String::from_utf8_lossy(&buf).into_owned();
    Ok(text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}

/// Runs every cross-node scenario `reps` times per set of nodes (alternating) and prints the
/// medians as a markdown table. `Ok(false)` if a delivery check failed.
pub async fn run(pubsubd: &str, redis: &str, reps: usize, p: &Params, work: &Path) -> Result<bool> {
    ensure_nofile(p.channels as u64 + 512)?;
    let mut ok = true;
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    let fmt = |v: f64| {
        if v >= 1e6 {
            format!("{:.2}M", v / 1e6)
        } else if v >= 1e3 {
            format!("{:.1}k", v / 1e3)
        } else {
            format!("{v:.2}")
        }
    };
    type Job = (&'static str, &'static str, [Kind; 2]);
    let jobs: [Job; 3] = [
        (
            "cross-fanout",
            "1 pub on A → 100 subs on B, 64 B",
            [Kind::Pubsubd, Kind::Redis],
        ),
        (
            "cross-channels",
            "10,000 channels × 1 sub on B, 4 pubs on A",
            [Kind::Pubsubd, Kind::Redis],
        ),
        (
            "attached",
            "1 pub → 100 subs, all on node A",
            [Kind::Pubsubd, Kind::Standalone],
        ),
    ];
    for (name, what, kinds) in jobs {
        let mut figs: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
        for rep in 0..reps {
            for (k, &kind) in kinds.iter().enumerate() {
                let dir = work.join(format!("{name}-{rep}-{}", kind.name()));
                std::fs::create_dir_all(&dir)?;
                let nodes = start(kind, pubsubd, redis, &dir).await?;
                let r = match name {
                    "cross-channels" => cross_channels(&nodes, p).await?,
                    "attached" => cross_fanout(&nodes, p, true).await?,
                    _ => cross_fanout(&nodes, p, false).await?,
                };
                println!(
                    "{name} rep {} {}: {} deliveries/s, {} per CPU-s {}",
                    rep + 1,
                    kind.name(),
                    fmt(r.0),
                    fmt(r.1),
                    if r.2.is_empty() {
                        "✓".to_string()
                    } else {
                        format!("✗ {:?}", r.2)
                    }
                );
                ok &= r.2.is_empty();
                figs[k].push((r.0, r.1));
                drop(nodes);
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
        let med = |v: &[(f64, f64)], i: usize| {
            median(
                &v.iter()
                    .map(|x| if i == 0 { x.0 } else { x.1 })
                    .collect::<Vec<_>>(),
            )
        };
        for (i, metric) in ["deliveries/s", "deliveries per server CPU-s"]
            .iter()
            .enumerate()
        {
            let (x, y) = (med(&figs[0], i), med(&figs[1], i));
            rows.push((
                format!("{name}: {what}"),
                metric.to_string(),
                format!("{} | {} {}", fmt(x), kinds[1].name(), fmt(y)),
                format!("{:.2}×", x / y),
            ));
        }
    }
    for kind in [Kind::Pubsubd, Kind::Redis] {
        let dir = work.join(format!("routing-{}", kind.name()));
        std::fs::create_dir_all(&dir)?;
        let nodes = start(kind, pubsubd, redis, &dir).await?;
        let (to_b, to_c) = cross_routing(&nodes).await?;
        println!(
            "cross-routing {}: per publish {to_b:.2} to B (subscribed), {to_c:.2} to C",
            kind.name()
        );
        rows.push((
            format!("cross-routing ({}): subscribers on B only", kind.name()),
            "backbone messages per publish to B / to C".into(),
            format!("{to_b:.2} / {to_c:.2} |"),
            String::new(),
        ));
    }
    println!("\n| scenario | figure | pubsubd | other | ratio |\n|---|---|--:|--:|--:|");
    for (s, m, v, r) in rows {
        println!("| {s} | {m} | {v} | {r} |");
    }
    Ok(ok)
}
