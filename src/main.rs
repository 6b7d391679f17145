//! `pubsubd [/path/to/redis.conf] [--directive value …]`: parse arguments, load the config,
//! set up logging, run the server until SIGINT/SIGTERM.

use std::process::ExitCode;

use pubsubd::config::cli::{self, Action};
use pubsubd::config::Config;
use tokio_util::sync::CancellationToken;

fn init_logging(cfg: &Config) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(cfg.loglevel.filter()));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if cfg.logfile.is_empty() {
        builder.init();
    } else {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&cfg.logfile)
            .map_err(|e| anyhow::anyhow!("Can't open the log file {}: {e}", cfg.logfile))?;
        builder
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .init();
    }
    Ok(())
}

async fn wait_for_signal(token: CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot listen for SIGTERM: {e}");
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("Received SIGINT scheduling shutdown..."),
        _ = term.recv() => tracing::info!("Received SIGTERM scheduling shutdown..."),
    }
    token.cancel();
}

fn run(cfg: Config) -> anyhow::Result<()> {
    init_logging(&cfg)?;
    for d in &cfg.ignored {
        tracing::warn!("Ignoring directive '{d}': pubsubd stores no data");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.worker_threads())
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listeners = pubsubd::server::bind(&cfg).await?;
        for l in &listeners {
            tracing::info!("Ready to accept connections {}", l.describe());
        }
        if !cfg.pidfile.is_empty() {
            std::fs::write(&cfg.pidfile, format!("{}\n", std::process::id()))?;
        }
        let pidfile = cfg.pidfile.clone();
        let token = CancellationToken::new();
        tokio::spawn(wait_for_signal(token.clone()));
        pubsubd::server::run(cfg, listeners, token).await;
        if !pidfile.is_empty() {
            let _ = std::fs::remove_file(&pidfile);
        }
        Ok(())
    })
}

fn main() -> ExitCode {
    match cli::parse(std::env::args().skip(1)) {
        Ok(Action::Help(h)) => {
            println!("{h}");
            ExitCode::SUCCESS
        }
        Ok(Action::Version(v)) => {
            println!("{v}");
            ExitCode::SUCCESS
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
