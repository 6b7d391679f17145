//! The network side: listeners, the accept loops, maxclients, and graceful shutdown.
//!
//! `run(config, listeners, shutdown)` is the single entry point. `main` passes a token that
//! SIGINT/SIGTERM cancel; tests pass their own. On cancel the accept loops stop, every connection
//! stops reading and writes what is already queued, and `run` returns once every task is done or
//! `shutdown-timeout` has passed. Every task goes through one `TaskTracker`.

pub mod connection;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::state::ServerState;

/// Pause after an accept error (e.g. out of file descriptors), so it cannot spin the CPU.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Binds every `bind` address on `port`. Addresses prefixed with `-` are optional, as in Redis:
/// failing to bind them is not an error. `*` means every IPv4 address, `::*` every IPv6 one.
pub async fn bind(config: &Config) -> io::Result<Vec<TcpListener>> {
    let mut out = Vec::new();
    for raw in &config.bind {
        let (optional, addr) = match raw.strip_prefix('-') {
            Some(a) => (true, a),
            None => (false, raw.as_str()),
        };
        let host = match addr {
            "*" => "0.0.0.0",
            "::*" => "::",
            a => a,
        };
        let sock: SocketAddr = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, config.port),
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("Invalid bind address '{addr}'"),
                ))
            }
        };
        match TcpListener::bind(sock).await {
            Ok(l) => out.push(l),
            Err(e) if optional => {
                tracing::warn!("Could not create optional listener on {sock}: {e}");
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("Could not create server TCP listening socket {sock}: {e}"),
                ))
            }
        }
    }
    if out.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            "Failed listening on port: no address could be bound",
        ));
    }
    Ok(out)
}

/// Serves clients on `listeners` until `shutdown` is cancelled.
pub async fn run(config: Config, listeners: Vec<TcpListener>, shutdown: CancellationToken) {
    let grace = Duration::from_secs(config.shutdown_timeout);
    let state = ServerState::new(config, shutdown.clone());
    if let Some(addr) = listeners.first().and_then(|l| l.local_addr().ok()) {
        state.tcp_port.store(addr.port() as u64, Ordering::Relaxed);
    }
    let tracker = TaskTracker::new();
    for listener in listeners {
        tracker.spawn(accept_loop(listener, state.clone(), tracker.clone()));
    }
    shutdown.cancelled().await;
    tracing::info!("Received shutdown: closing listeners and flushing clients");
    tracker.close();
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!("Some clients were still writing after the shutdown timeout");
    }
    tracing::info!("pubsubd is now ready to exit, bye bye...");
}

async fn accept_loop(listener: TcpListener, state: Arc<ServerState>, tracker: TaskTracker) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = state.shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                state
                    .stats
                    .total_connections_received
                    .fetch_add(1, Ordering::Relaxed);
                if state.clients.len() as u64 >= state.runtime.maxclients() {
                    state
                        .stats
                        .rejected_connections
                        .fetch_add(1, Ordering::Relaxed);
                    tracker.spawn(reject_max_clients(stream));
                    continue;
                }
                tracker.spawn(connection::serve(
                    stream,
                    peer,
                    state.clone(),
                    tracker.clone(),
                ));
            }
            Err(e) => {
                tracing::warn!("Accepting client connection: {e}");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
            }
        }
    }
}

/// Redis writes this error and closes a connection over `maxclients`.
async fn reject_max_clients(mut stream: TcpStream) {
    let _ = stream
        .write_all(b"-ERR max number of clients reached\r\n")
        .await;
    let _ = stream.shutdown().await;
}
