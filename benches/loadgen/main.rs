//! Load generator: measures pubsubd and redis-server side by side over RESP2 on loopback.
//!
//! Each run starts a fresh server on a free 127.0.0.1 port (or measures an external one given by
//! `--target NAME=host:port[:pid]`), sets up subscribers, drives pipelining publishers, and reads
//! the server's CPU time and RSS from /proc. Servers are interleaved (A, B, A, B …) over the
//! repetitions and every table shows medians, so machine noise hits both alike. Every run checks
//! delivered messages = Σ PUBLISH replies = publishes × subscribed receivers and says so loudly
//! when they differ; the process exits non-zero if any check failed.
//!
//! ```text
//! cargo bench --bench loadgen -- --pubsubd --redis /usr/bin/redis-server \
//!     --scenario fanout,fanout-1k,fanout-4k,channels --reps 3 --duration 3
//! ```
//!
//! A bare `--pubsubd` means the binary cargo built alongside this bench; `--pubsubd PATH` names
//! one. `--server NAME=PATH` adds any other binary (e.g. a second redis-server to gauge noise).
//!
//! Scenarios: `fanout` `fanout-1k` `fanout-4k` `fanout-w1k` `channels` `latency` `conns` `slow`
//! `patterns-0` `patterns-1k` `patterns-10k` `patterns-100k` (or `patterns`) `pattern-churn`, or
//! `all`. `conns` and `channels` hold 10,000+ connections: the load generator raises its own
//! RLIMIT_NOFILE with `prlimit` where the hard limit allows, otherwise run it under
//! `ulimit -n 20000`. `--help` lists the knobs. Given no server at all (as `cargo test
//! --all-targets` and a bare `cargo bench` run it), it runs its self-checks and measures nothing.
//!
//! `--cross-node` runs the scale-out scenarios instead (`crossnode.rs`): pubsubd nodes on a
//! NATS backbone against a three-node Redis Cluster, both started fresh per run.
//!
//! ## Per-core figures: `--pin` and `--relay`
//!
//! ```text
//! cargo bench --bench loadgen -- --pubsubd --redis /usr/bin/redis-server --relay --pin 0:1 \
//!     --scenario fanout,fanout-w1k,channels --window 64 --reps 5 --duration 3
//! ```
//!
//! `--pin SERVER_CPUS:LOADGEN_CPUS` (CPU lists as taskset spells them: `0`, `0,1`, `0-1`) pins
//! the load generator's whole process before its runtime is built, so its worker threads default
//! to one per CPU it was given, and starts every server with its affinity set to SERVER_CPUS
//! (before exec: the PID measured is the server's own, and pubsubd sizes its thread pool by the
//! CPUs it may use). `--target` servers are not pinned. The run header and the summary state the
//! pinning, and the summary states how busy the load generator was: near 100 % of its CPUs,
//! the figures are partly its own limit.
//!
//! `--relay` adds a server named `relay`: this binary again, as `loadgen --relay-serve --port N`
//! (`relay.rs`). One thread, epoll, no command parsing beyond PING, SUBSCRIBE and PUBLISH;
//! `message` frames are a static header plus the PUBLISH frames' own tails, copied once per
//! channel per read, and each subscriber gets one `writev` per read: the limit of pub/sub
//! forwarding on one core. It runs in `fanout`, `fanout-1k`, `fanout-4k`, `fanout-w1k` and
//! `channels` (elsewhere its rows say n/a), passes the same delivery checks, and the tables add
//! the first server ÷ relay beside the first ÷ the second (the targets stay on the latter;
//! `fanout` adds one against the relay: ≥ 0.85× its deliveries per server CPU-second).
//!
//! Pinned to one core each, the relay forwards faster than a load generator on one core can
//! count: in its fan-out runs the load generator is ~95 % busy (the summary says so), so the
//! relay's deliveries/s are the load generator's limit and its deliveries per CPU-second are
//! the figure to compare.
//!
//! Publishes in flight: `fanout`, `fanout-1k`, `fanout-4k` and `channels` keep up to `--window`
//! (default 256) unacknowledged publishes per publisher, written `--batch` (64) at a time, so
//! `--window 64` measures them with 64 in flight; `fanout-w1k` (100 subscribers, 64 B) always
//! keeps 1,024 in flight. Each scenario's description in the output states its window.
//!
//! Figures depend on the machine and on what else runs on it: compare the two servers only
//! within one run, and prefer the per-CPU-second columns on a busy machine.
//!
//! ## Latest figures
//!
//! README.md's Performance section holds the latest table (machine, date, command, both
//! servers' figures, targets) and the profiles behind the targets it misses.

mod crossnode;
mod patterns;
mod pin;
mod publisher;
mod relay;
mod report;
mod resp;
mod run;
mod scenario;
mod server;
mod special;
mod stats;
mod subscriber;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use clap::Parser;

use crate::patterns::Shape;
use crate::pin::Pinning;
use crate::report::{Context, Lineup, ScenarioRuns};
use crate::run::Outcome;
use crate::scenario::{Params, Scenario};
use crate::server::{Launch, Running, ServerSpec};

#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    about = "Pub/sub load generator: pubsubd vs redis-server over RESP"
)]
struct Cli {
    /// pubsubd binary to start for each run; without a path, the one `cargo bench` built.
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = "")]
    pubsubd: Option<String>,
    /// redis-server binary to start for each run.
    #[arg(long)]
    redis: Option<String>,
    /// NAME=PATH of another binary to start (redis-server flags if the file name contains "redis").
    #[arg(long = "server", value_name = "NAME=PATH")]
    servers: Vec<String>,
    /// An externally started server: NAME=host:port[:pid] (the pid enables CPU and RSS figures).
    #[arg(long = "target", value_name = "NAME=HOST:PORT[:PID]")]
    targets: Vec<String>,
    /// Also run `relay`, the limit of pub/sub forwarding on one core (this binary, one thread,
    /// no command parsing), in the fanout and channels scenarios.
    #[arg(long)]
    relay: bool,
    /// Pin every server started to SERVER_CPUS and the load generator to LOADGEN_CPUS (lists
    /// as taskset's: 0, 0,1, 0-1).
    #[arg(long, value_name = "SERVER_CPUS:LOADGEN_CPUS", value_parser = Pinning::parse)]
    pin: Option<Pinning>,
    /// Comma-separated scenarios, `patterns` or `all`.
    #[arg(long, default_value = "fanout")]
    scenario: String,
    /// Repetitions per server; the servers alternate within each.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Seconds of publishing per run.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Unacknowledged commands a publisher keeps in flight.
    #[arg(long, default_value_t = 256)]
    window: u64,
    /// Commands per write.
    #[arg(long, default_value_t = 64)]
    batch: u64,
    /// Keep the full `--window` in the pattern scenarios instead of shrinking it as the pattern
    /// count grows (to compare a server's throughput with and without patterns).
    #[arg(long)]
    pattern_full_window: bool,
    /// In the pattern scenarios, publish to channels that match no pattern: measures the cost
    /// of the pattern lookup alone, without deliveries.
    #[arg(long)]
    pattern_miss: bool,
    /// Patterns the pattern scenarios subscribe: a quarter of each shape, or one shape.
    #[arg(long, value_enum, default_value_t = Shape::Mixed)]
    pattern_shape: Shape,
    /// In `patterns-0`, give every channel published one exact subscriber, so that the
    /// no-pattern baseline delivers as much as a one-shape pattern set does.
    #[arg(long)]
    pattern_exact_baseline: bool,
    /// Publishes per second in the latency scenario.
    #[arg(long, default_value_t = 20_000.0)]
    rate: f64,
    /// Subscribers in the latency scenario.
    #[arg(long, default_value_t = 50)]
    latency_subscribers: usize,
    /// Publisher connections in the channels scenario.
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// Channels (one subscriber connection each) in the channels scenario.
    #[arg(long, default_value_t = 10_000)]
    channels: usize,
    /// Idle subscribed connections in the conns scenario.
    #[arg(long, default_value_t = 10_000)]
    conns: usize,
    /// Healthy subscribers beside the never-reading one in the slow scenario.
    #[arg(long, default_value_t = 4)]
    healthy: usize,
    /// Worker threads of the load generator (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Also write the markdown summary to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Run the cross-node scenarios instead (see crossnode.rs): pubsubd nodes on NATS against
    /// a three-node Redis Cluster; needs --pubsubd and --redis.
    #[arg(long)]
    cross_node: bool,
    /// Only run the built-in self-checks (they also run before every measurement).
    #[arg(long)]
    self_test: bool,
    /// Passed by `cargo bench` to harness = false targets; ignored.
    #[arg(long, hide = true)]
    bench: bool,
    /// Serve as the relay on 127.0.0.1:--port until killed (how `--relay` starts it).
    #[arg(long, hide = true, requires = "port")]
    relay_serve: bool,
    /// The relay's port.
    #[arg(long, hide = true, requires = "relay_serve")]
    port: Option<u16>,
}

fn main() {
    let cli = Cli::parse();
    if let (true, Some(port)) = (cli.relay_serve, cli.port) {
        if let Err(e) = relay::serve(port) {
            eprintln!("relay: {e:#}");
        }
        std::process::exit(2);
    }
    // Before the runtime exists, so that its threads inherit the pinning and count by it.
    if let Some(pin) = &cli.pin {
        if let Err(e) = pin.pin_self() {
            eprintln!("loadgen: {e:#}");
            std::process::exit(2);
        }
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = cli.threads {
        rt.worker_threads(n);
    }
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(2);
        }
    };
    let code = rt.block_on(async {
        // On a signal the main future is dropped, and with it every server it started.
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = real_main(cli) => r,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
            _ = term.recv() => bail!("terminated"),
        }
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    match code {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            std::process::exit(2);
        }
    }
}

/// A scratch directory for server logs and working directories, removed at the end.
struct Workdir(PathBuf);

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs everything; `Ok(false)` when some delivery check failed.
async fn real_main(cli: Cli) -> Result<bool> {
    resp::self_check()?;
    stats::self_check()?;
    patterns::self_check()?;
    pin::self_check()?;
    relay::self_check()?;
    let nothing_to_measure = cli.pubsubd.is_none()
        && cli.redis.is_none()
        && cli.servers.is_empty()
        && cli.targets.is_empty()
        && !cli.relay;
    let work = Workdir(std::env::temp_dir().join(format!("loadgen.{}", std::process::id())));
    std::fs::create_dir_all(&work.0).context("creating the scratch directory")?;
    if cli.self_test || nothing_to_measure || (cli.relay && !cli.cross_node) {
        relay::end_to_end_check(&work.0).await?;
    }
    if cli.self_test {
        println!("self-checks passed");
        return Ok(true);
    }
    if cli.cross_node && (cli.relay || cli.pin.is_some()) {
        bail!("--relay and --pin apply to the interleaved runs, not to --cross-node");
    }
    if cli.cross_node {
        let pubsubd = match (cli.pubsubd.as_deref(), option_env!("CARGO_BIN_EXE_pubsubd")) {
            (Some(""), Some(b)) => b.to_string(),
            (Some(p), _) if !p.is_empty() => p.to_string(),
            _ => bail!("--cross-node needs --pubsubd"),
        };
        let redis = cli.redis.clone().context("--cross-node needs --redis")?;
        let p = Params {
            duration: Duration::from_secs_f64(cli.duration),
            pattern_full_window: false,
            pattern_miss: false,
            pattern_shape: cli.pattern_shape,
            pattern_exact_baseline: false,
            window: cli.window.max(1),
            batch: cli.batch.clamp(1, cli.window.max(1)),
            rate: cli.rate,
            publishers: cli.publishers.max(1),
            channels: cli.channels.max(1),
            conns: cli.conns.max(1),
            latency_subscribers: cli.latency_subscribers.max(1),
            healthy: cli.healthy.max(1),
        };
        println!(
            "loadgen: {} | {} reps × {} s",
            command_line(),
            cli.reps,
            cli.duration
        );
        return crossnode::run(&pubsubd, &redis, cli.reps.max(1), &p, &work.0).await;
    }
    // `cargo test --all-targets` and a bare `cargo bench` run every bench target without
    // arguments: check, as criterion's test mode does, and measure nothing.
    if nothing_to_measure {
        println!(
            "loadgen: self-checks passed; nothing to measure (give --pubsubd, --redis, \
             --server NAME=PATH, --target or --relay; --help lists the knobs)"
        );
        return Ok(true);
    }
    let specs = server_specs(&cli)?;
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    // The runtime's default worker count already follows the pinning.
    let allowed = pin::allowed_cpus()?.len();
    let threads = cli.threads.unwrap_or(allowed).max(1);
    let lineup = Lineup {
        names: names.clone(),
        relay: specs.iter().position(ServerSpec::is_relay),
        client_cpus: threads.min(allowed),
    };
    let pinning = match &cli.pin {
        Some(pin) => {
            if specs.iter().any(ServerSpec::is_external) {
                eprintln!("note: --pin does not pin --target servers");
            }
            pin.describe(threads)
        }
        None => format!(
            "none: the servers and the load generator ({threads} worker threads) share the machine's CPUs"
        ),
    };
    let scenarios = scenario::parse_list(&cli.scenario)?;
    if cli.reps == 0 || !(cli.duration > 0.0 && cli.duration <= 600.0) {
        bail!("--reps must be ≥ 1 and --duration in (0, 600] seconds");
    }
    let p = Params {
        duration: Duration::from_secs_f64(cli.duration),
        pattern_full_window: cli.pattern_full_window,
        pattern_miss: cli.pattern_miss,
        pattern_shape: cli.pattern_shape,
        pattern_exact_baseline: cli.pattern_exact_baseline,
        window: cli.window.max(1),
        batch: cli.batch.clamp(1, cli.window.max(1)),
        rate: cli.rate,
        publishers: cli.publishers.max(1),
        channels: cli.channels.max(1),
        conns: cli.conns.max(1),
        latency_subscribers: cli.latency_subscribers.max(1),
        healthy: cli.healthy.max(1),
    };
    let most = scenarios
        .iter()
        .map(|s| s.connections(&p))
        .max()
        .unwrap_or(0);
    // Two descriptors of slack per connection would be generous; a fixed margin is enough.
    server::ensure_nofile(most as u64 + 256)?;
    if specs.iter().any(ServerSpec::is_external) && most > 9_000 {
        eprintln!("note: {most} connections; an external redis-server needs maxclients above that");
    }
    let ctx = Context {
        command: command_line(),
        reps: cli.reps,
        duration_s: cli.duration,
        versions: specs.iter().filter_map(version).collect(),
        loadavg_start: report::loadavg(),
        pinning,
    };
    println!(
        "loadgen: {} | servers {} | {} reps × {} s\npinning: {}",
        ctx.command,
        names.join(", "),
        cli.reps,
        cli.duration,
        ctx.pinning
    );

    let mut all = Vec::new();
    for &s in &scenarios {
        println!("\n-- {}: {}", s.name(), s.describe(&p));
        let mut runs: Vec<Vec<Outcome>> = specs.iter().map(|_| Vec::new()).collect();
        for rep in 0..cli.reps {
            for (i, spec) in specs.iter().enumerate() {
                let o = if spec.is_relay() && !s.relay_applies() {
                    Outcome {
                        skipped: Some(
                            "the relay serves plain SUBSCRIBE/PUBLISH loads only \
                             (fanout, fanout-1k, fanout-4k, fanout-w1k, channels)"
                                .into(),
                        ),
                        ..Default::default()
                    }
                } else {
                    let o = run_once(s, spec, &p, &work.0).await;
                    // Let the freed server's memory and sockets settle before the next one starts.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    o
                };
                println!("{}", report::run_line(s, rep, cli.reps, &spec.name, &o));
                runs[i].push(o);
            }
        }
        let sr = ScenarioRuns { scenario: s, runs };
        print!("{}", report::table(&sr, &lineup, &p));
        all.push(sr);
    }
    let md = report::markdown(&all, &lineup, &ctx, &p);
    println!("\n{md}");
    if let Some(path) = &cli.markdown {
        std::fs::write(path, &md).with_context(|| format!("writing {}", path.display()))?;
    }
    let ok = all.iter().all(ScenarioRuns::all_ok);
    if !ok {
        println!("SOME DELIVERY CHECKS FAILED: see ✗ lines above");
    }
    Ok(ok)
}

/// One scenario, once, against one server, bounded in time; failures become problems.
async fn run_once(s: Scenario, spec: &ServerSpec, p: &Params, work: &std::path::Path) -> Outcome {
    // Setup (100k patterns into redis-server, 10k connections) takes a while; nothing takes this long.
    let limit = p.duration + Duration::from_secs(180);
    let mut srv = match Running::start(spec, &s.server_opts(p), work).await {
        Ok(srv) => srv,
        Err(e) => return failed(format!("server start failed: {e:#}")),
    };
    let result = tokio::time::timeout(limit, run::run(s, &srv, p)).await;
    let out = match result {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => failed(format!("run failed: {e:#}\n{}", srv.log_tail())),
        Err(_) => failed(format!("run did not finish within {limit:?}")),
    };
    srv.stop();
    out
}

fn failed(why: String) -> Outcome {
    Outcome {
        problems: vec![why],
        ..Default::default()
    }
}

fn server_specs(cli: &Cli) -> Result<Vec<ServerSpec>> {
    let mut specs = Vec::new();
    if let Some(p) = &cli.pubsubd {
        // Cargo sets this when it builds a bench target of the package that owns the binary.
        let built = option_env!("CARGO_BIN_EXE_pubsubd");
        let path = match (p.as_str(), built) {
            ("", Some(b)) => b,
            ("", None) => bail!("--pubsubd needs a path outside `cargo bench`"),
            (p, _) => p,
        };
        specs.push(ServerSpec::binary("pubsubd", path)?);
    }
    if let Some(p) = &cli.redis {
        specs.push(ServerSpec::binary("redis", p)?);
    }
    for s in &cli.servers {
        let (name, path) = s.split_once('=').context("--server wants NAME=PATH")?;
        specs.push(ServerSpec::binary(name, path)?);
    }
    for t in &cli.targets {
        specs.push(ServerSpec::parse_target(t)?);
    }
    // Last, so that the first server is still compared with the second as before.
    if cli.relay {
        specs.push(ServerSpec::relay()?);
    }
    if specs.is_empty() {
        bail!(
            "nothing to measure: give --pubsubd, --redis, --server NAME=PATH, --target or --relay"
        );
    }
    if let Some(pin) = &cli.pin {
        for s in specs.iter_mut().filter(|s| !s.is_external()) {
            s.cpus = Some(pin.servers.clone());
        }
    }
    let mut names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        bail!("server names must differ: {names:?}");
    }
    Ok(specs)
}

/// `redis-server --version`, for the summary; pubsubd is identified by its path.
fn version(spec: &ServerSpec) -> Option<String> {
    let Launch::Binary { path, flavour } = &spec.launch else {
        return None;
    };
    if *flavour == server::Flavour::Relay {
        return Some(format!(
            "{}: this load generator's binary, --relay-serve",
            spec.name
        ));
    }
    if *flavour != server::Flavour::Redis {
        let cwd = std::env::current_dir().unwrap_or_default();
        let shown = path.strip_prefix(&cwd).unwrap_or(path);
        return Some(format!("{}: {}", spec.name, shown.display()));
    }
    let out = std::process::Command::new(path)
        .arg("--version")
        .output()
        .ok()?;
    let v = String::from_utf8_lossy(&out.stdout);
    Some(format!(
        "{}: {}",
        spec.name,
        v.split(" sha=").next().unwrap_or(&v).trim()
    ))
}

/// The command as a person would type it: under `cargo bench` the binary is a hashed file in
/// target/*/deps, so it is shown as the cargo command instead.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().collect();
    let rest: Vec<String> = args
        .iter()
        .skip(1)
        .filter(|a| *a != "--bench")
        .map(|a| shell_quote(a))
        .collect();
    let exe = PathBuf::from(&args[0]);
    let hashed = exe
        .file_name()
        .is_some_and(|f| f.to_string_lossy().starts_with("loadgen-"));
    if hashed {
        format!("cargo bench --bench loadgen -- {}", rest.join(" "))
    } else {
        format!("{} {}", args[0], rest.join(" "))
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
