//! `pubsubd [/path/to/redis.conf] [--directive value …]`: parse arguments, load the config,
//! set up logging, run the server until SIGINT/SIGTERM or SHUTDOWN.
//!
//! Also `--check-config` (load, report, exit) and `--health-check [[host:]port]` (the
//! container's probe). Signals: SIGTERM/SIGINT start a graceful shutdown (a second SIGINT
//! exits at once, as Redis's "You insist"), SIGHUP reopens the log file.

mod container;
mod counting_alloc;
mod health;

use std::process::ExitCode;

use pubsubd::config::cli::{self, Action};
use pubsubd::config::Config;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOC: counting_alloc::Counting = counting_alloc::Counting;

/// What `--health-check` probes: the port given; else, when PID 1 is this same program (a
/// container whose entrypoint exec'd pubsubd), every TCP port it listens on; else 6379.
fn health_targets(given: Option<String>) -> Vec<String> {
    if let Some(t) = given {
        return vec![t];
    }
    let pid1_is_us = match (std::fs::read_link("/proc/1/exe"), std::env::current_exe()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if pid1_is_us {
        if let Ok(addrs) = health::listening_addrs(1) {
            if !addrs.is_empty() {
                return addrs.iter().map(|a| a.to_string()).collect();
            }
        }
    }
    vec!["6379".to_string()]
}

/// The signals pubsubd handles, registered before it reports itself ready, so a SIGTERM
/// right after start-up is a graceful shutdown rather than the default abrupt exit.
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

fn install_signals() -> std::io::Result<Signals> {
    Ok(Signals {
        term: signal(SignalKind::terminate())?,
        int: signal(SignalKind::interrupt())?,
        hup: signal(SignalKind::hangup())?,
    })
}

async fn watch_signals(mut s: Signals, token: CancellationToken) {
    loop {
        tokio::select! {
            _ = s.int.recv() => {
                if token.is_cancelled() {
                    tracing::warn!("You insist... exiting now.");
                    std::process::exit(1);
                }
                tracing::warn!("Received SIGINT scheduling shutdown...");
                token.cancel();
            }
            _ = s.term.recv() => {
                tracing::warn!("Received SIGTERM scheduling shutdown...");
                token.cancel();
            }
            _ = s.hup.recv() => match pubsubd::logging::reopen() {
                Ok(()) => tracing::info!("Received SIGHUP, reopened the log file"),
                Err(e) => tracing::warn!("Received SIGHUP, could not reopen the log file: {e}"),
            },
        }
    }
}

/// `supervised systemd` (or `auto` under systemd): tells systemd the service state.
fn sd_notify(cfg: &Config, state: &str) {
    let socket = std::env::var_os("NOTIFY_SOCKET");
    let wanted = match cfg.supervised.as_str() {
        "systemd" => true,
        "auto" => socket.is_some(),
        _ => false,
    };
    let Some(path) = socket.filter(|_| wanted) else {
        return;
    };
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let path = path.to_string_lossy().into_owned();
    let addr = match path.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes())
        }
        None => SocketAddr::from_pathname(&path),
    };
    let sent = UnixDatagram::unbound()
        .and_then(|s| addr.and_then(|a| s.send_to_addr(state.as_bytes(), &a)));
    if let Err(e) = sent {
        tracing::warn!("systemd supervision: cannot notify {path}: {e}");
    }
}

/// Why a keyspace directive is ignored, in the one warning logged for it.
const IGNORED_WHY: &str = "no effect in pubsubd (no keyspace, persistence, replication or cluster)";

fn warn_ignored(cfg: &Config) {
    for d in &cfg.ignored {
        tracing::warn!("Ignoring directive '{d}': {IGNORED_WHY}");
    }
    for w in &cfg.warnings {
        tracing::warn!("{w}");
    }
}

/// A container's server listening on loopback only cannot be reached through published ports.
fn warn_if_unreachable(cfg: &Config, listeners: &[pubsubd::server::listener::Listener]) {
    if !container::is_main_process() {
        return;
    }
    let tcp: Vec<_> = listeners.iter().filter_map(|l| l.tcp_addr()).collect();
    let has_password = pubsubd::auth::users::Acl::from_config(pubsubd::commands::catalogue(), cfg)
        .is_ok_and(|acl| !acl.default_user().nopass);
    if let Some(w) = container::loopback_only_warning(&tcp, cfg.protected_mode, has_password) {
        tracing::warn!("{w}");
    }
}

fn run(cfg: Config) -> anyhow::Result<()> {
    pubsubd::memory::set_allocated_source(counting_alloc::allocated);
    pubsubd::memory::set_trim(counting_alloc::trim);
    pubsubd::logging::init(&cfg).map_err(|e| anyhow::anyhow!(e))?;
    warn_ignored(&cfg);
    if cfg.supervised == "upstart" {
        tracing::warn!("supervised upstart is not supported; running unsupervised");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.worker_threads())
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let signals = install_signals()?;
        if cfg.backbone.enabled() {
            backbone_preflight(&cfg).await?;
        }
        let listeners = pubsubd::server::bind(&cfg).await?;
        for l in &listeners {
            tracing::info!("Ready to accept connections {}", l.describe());
        }
        warn_if_unreachable(&cfg, &listeners);
        if !cfg.pidfile.is_empty() {
            std::fs::write(&cfg.pidfile, format!("{}\n", std::process::id()))?;
        }
        sd_notify(&cfg, "READY=1");
        let notify = cfg.clone();
        let pidfile = cfg.pidfile.clone();
        let token = CancellationToken::new();
        tokio::spawn(watch_signals(signals, token.clone()));
        pubsubd::server::run(cfg, listeners, token).await;
        sd_notify(&notify, "STOPPING=1");
        if !pidfile.is_empty() {
            let _ = std::fs::remove_file(&pidfile);
        }
        Ok(())
    })
}

/// One connection attempt to the backbone before listening: logged either way; fatal only with
/// `backbone-required yes` (see `pubsubd::backbone`).
async fn backbone_preflight(cfg: &Config) -> anyhow::Result<()> {
    let b = &cfg.backbone;
    match pubsubd::backbone::preflight(b).await {
        Ok(server) => tracing::info!("Backbone reachable at {server}"),
        Err(e) if b.required => {
            tracing::warn!("Backbone unreachable and backbone-required is yes, exiting: {e}");
            anyhow::bail!("Backbone unreachable: {e}");
        }
        Err(e) => tracing::warn!(
            "Backbone unreachable: {e}. Starting standalone: serving local clients and retrying in the background"
        ),
    }
    Ok(())
}

/// `--check-config`: what would start, and what would be ignored.
fn check_config(cfg: &Config) -> ExitCode {
    for d in &cfg.ignored {
        eprintln!("warning: ignoring directive '{d}': {IGNORED_WHY}");
    }
    for w in &cfg.warnings {
        eprintln!("warning: {w}");
    }
    let source = if cfg.config_file.is_empty() {
        "defaults and command line".to_string()
    } else {
        cfg.config_file.clone()
    };
    println!(
        "Configuration OK ({source}): port {} bind {}",
        cfg.port,
        cfg.bind.join(" ")
    );
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    // Cross-checks that need the server's subsystems (ACL rules, command names, TLS material).
    let parsed = cli::parse(std::env::args().skip(1)).and_then(|a| match a {
        Action::Run(cfg) => pubsubd::server::startup::check(&cfg).map(|()| Action::Run(cfg)),
        Action::CheckConfig(cfg) => {
            pubsubd::server::startup::check(&cfg).map(|()| Action::CheckConfig(cfg))
        }
        other => Ok(other),
    });
    match parsed {
        Ok(Action::Help(h)) => {
            println!("{h}");
            ExitCode::SUCCESS
        }
        Ok(Action::Version(v)) => {
            println!("{v}");
            ExitCode::SUCCESS
        }
        Ok(Action::CheckConfig(cfg)) => check_config(&cfg),
        Ok(Action::HealthCheck(target)) => {
            let password = match pubsubd::config::env::password(|k| std::env::var_os(k)) {
                Ok(pw) => pw.map(|p| p.0),
                Err(e) => {
                    eprintln!("unhealthy: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match health::probe_any(&health_targets(target), password.as_deref()) {
                Ok(reply) => {
                    println!("{reply}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("unhealthy: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Ok(Action::Run(cfg)) => match run(cfg) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
