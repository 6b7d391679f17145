//! The network side: listeners, the accept loops, maxclients, and graceful shutdown.
//!
//! `run(config, listeners, shutdown)` is the single entry point. `main` passes a token that
//! SIGINT/SIGTERM cancel; tests pass their own. On cancel the accept loops stop and every
//! connection stops reading; once the last reader has stopped (so no PUBLISH is still fanning
//! out), `ServerState::flush` tells the writers to write what is queued and close, and `run`
//! returns once every task is done or `shutdown-timeout` has passed. Every task goes through one
//! `TaskTracker`.

pub mod cluster;
pub mod connection;
pub mod listener;
pub mod metrics;
pub mod startup;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::state::ServerState;
pub use listener::Listener;

/// Pause after an accept error (e.g. out of file descriptors), so it cannot spin the CPU.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);
/// Period of the housekeeping task (Redis's `hz` 10): samples the memory peak.
const CRON_PERIOD: Duration = Duration::from_millis(100);
/// Housekeeping ticks between two checks of the idle clients (`timeout`): once a second, as
/// Redis's `clientsCron` visits every client once a second.
const TIMEOUT_CHECK_TICKS: u32 = 10;
/// Housekeeping ticks between two visits that make empty outboxes give back what a burst
/// left allocated (`Outbox::release_idle`): once a minute. A visit costs about 1 µs per
/// client (each one's outbox is cold); every 10 s it showed in an idle server's CPU use with
/// 10,000 connections (0.25 % against 0.15 %).
const RELEASE_TICKS: u32 = 600;

/// Binds everything the config asks for: every `bind` address on `port` (plain TCP, unless
/// `port 0`) and on `tls-port` (TLS, when set), and `unixsocket`.
pub async fn bind(config: &Config) -> io::Result<Vec<Listener>> {
    let mut out = Vec::new();
    if config.port != 0 {
        out.extend(
            bind_tcp(config, config.port)
                .await?
                .into_iter()
                .map(Listener::Tcp),
        );
    }
    if config.tls.port != 0 {
        let acceptor = listener::tls_acceptor(&config.tls)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        for l in bind_tcp(config, config.tls.port).await? {
            out.push(Listener::Tls(l, acceptor.clone()));
        }
    }
    if !config.unixsocket.is_empty() {
        out.push(
            listener::bind_unix(&config.unixsocket, config.unixsocketperm).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("Failed opening Unix socket {}: {e}", config.unixsocket),
                )
            })?,
        );
    }
    if out.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "Configured to not listen anywhere, exiting.",
        ));
    }
    Ok(out)
}

/// Binds every `bind` address on `port`. Addresses prefixed with `-` are optional, as in Redis:
/// failing to bind them is not an error. `*` means every IPv4 address, `::*` every IPv6 one.
pub async fn bind_tcp(config: &Config, port: u16) -> io::Result<Vec<TcpListener>> {
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
            Ok(ip) => SocketAddr::new(ip, port),
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("Invalid bind address '{addr}'"),
                ))
            }
        };
        match listen(sock) {
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

/// Redis's default `tcp-backlog`.
const TCP_BACKLOG: i32 = 511;

/// A listening socket as Redis makes one: `SO_REUSEADDR`, and IPv6 sockets `IPV6_V6ONLY`, so
/// `bind * -::*` (the container default) can listen on both 0.0.0.0 and :: on one port.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(TCP_BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// Serves clients on `listeners` until `shutdown` is cancelled.
pub async fn run(config: Config, listeners: Vec<Listener>, shutdown: CancellationToken) {
    run_with(config, listeners, shutdown, None).await
}

/// `run`, for a node with `cluster-enabled yes` that learns its peers over `membership`.
pub async fn run_with(
    config: Config,
    listeners: Vec<Listener>,
    shutdown: CancellationToken,
    membership: Option<cluster::Membership>,
) {
    let state = ServerState::new(config, crate::commands::catalogue(), shutdown.clone());
    let first_tcp = listeners
        .iter()
        .find(|l| matches!(l, Listener::Tcp(_)))
        .and_then(|l| l.local_addr().ok());
    state
        .tcp_port
        .store(first_tcp.map_or(0, |a| a.port() as u64), Ordering::Relaxed);
    if let (Some(c), Some(a)) = (&state.cluster, first_tcp) {
        c.use_listening_port(a.port());
    }
    let tracker = TaskTracker::new();
    for listener in listeners {
        tracker.spawn(accept_loop(listener, state.clone(), tracker.clone()));
    }
    start_operations(&state, &tracker).await;
    if let Some(b) = &state.backbone {
        tracker.spawn(crate::backbone::run(
            b.clone(),
            state.clone(),
            state.flush.clone(),
            tracker.clone(),
        ));
    }
    if let Some(c) = &state.cluster {
        // A transport given by the caller (tests) or the backbone's control subjects; with
        // neither, the node is a one-node cluster and needs no task.
        let membership = membership.or_else(|| {
            state
                .backbone
                .as_ref()
                .and_then(|b| cluster::over_backbone(b, &tracker))
        });
        if let Some(m) = membership {
            tracker.spawn(cluster::run(state.clone(), c.clone(), m));
        }
    }
    shutdown.cancelled().await;
    // Readers waiting for input stop now (a reader that has not started waiting yet sees
    // `shutdown` first, or finds this wake-up stored).
    for c in state.clients.iter() {
        c.outbox.wake_reader();
    }
    // The goodbye goes into the backbone's queue now, before the backbone is told to flush and
    // stop (which, with no clients to wait for, is at once).
    if let Some(c) = &state.cluster {
        c.leave();
    }
    // Read now: CONFIG SET shutdown-timeout applies, and SHUTDOWN NOW waits for nothing.
    let grace = if state.ops.shutdown_now.load(Ordering::Relaxed) {
        Duration::ZERO
    } else {
        Duration::from_secs(state.runtime.shutdown_timeout())
    };
    tracing::info!("Received shutdown: closing listeners and flushing clients");
    let deadline = tokio::time::Instant::now() + grace;
    // Readers stop at their next await; only then is everything that will ever be queued
    // queued, and the writers may flush it and close.
    let _ = tokio::time::timeout_at(deadline, state.readers.stopped()).await;
    state.flush.cancel();
    tracker.close();
    if tokio::time::timeout_at(deadline, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("Some clients were still writing after the shutdown timeout");
    }
    tracing::info!("pubsubd is now ready to exit, bye bye...");
}

/// The housekeeping task and, if `metrics-port` is set, the metrics endpoint.
async fn start_operations(state: &Arc<ServerState>, tracker: &TaskTracker) {
    let cron_state = state.clone();
    tracker.spawn(async move {
        let mut tick = tokio::time::interval(CRON_PERIOD);
        for n in 1u32.. {
            tokio::select! {
                _ = tick.tick() => crate::memory::sample(),
                _ = cron_state.shutdown.cancelled() => return,
            }
            if n % TIMEOUT_CHECK_TICKS == 0 {
                close_idle_clients(&cron_state);
            }
            if n % RELEASE_TICKS == 0 {
                for c in cron_state.clients.iter() {
                    c.outbox.release_idle();
                }
            }
        }
    });
    if state.config.metrics_port == 0 {
        return;
    }
    match metrics::bind(state).await {
        Ok(listeners) => {
            for l in listeners {
                if let Ok(a) = l.local_addr() {
                    tracing::info!("Serving Prometheus metrics on http://{a}/metrics");
                }
                tracker.spawn(metrics::serve(l, state.clone(), tracker.clone()));
            }
        }
        Err(e) => tracing::warn!("Metrics endpoint disabled: {e}"),
    }
}

/// `timeout`: closes the clients with no interaction for longer, except pub/sub clients and
/// clients whose request waits for CLIENT PAUSE (Redis's `clientsCronHandleTimeout`). As in
/// Redis, output written to a client counts as interaction (a MONITOR client that is sent
/// lines is not idle): a client that was written to since the last check is touched here.
/// Checked here rather than by a timer in every connection, so an idle connection holds no
/// timer, and its writes no clock.
fn close_idle_clients(state: &ServerState) {
    let timeout = state.runtime.timeout();
    if timeout == 0 {
        return;
    }
    for c in state.clients.iter() {
        let written = c.outbox.written_bytes();
        if c.written_seen.swap(written, Ordering::Relaxed) != written {
            c.touch();
            continue;
        }
        let exempt = c.outbox.is_pubsub() || c.postponed.load(Ordering::Relaxed);
        if !exempt && c.idle_millis() > timeout * 1000 {
            tracing::debug!(client_id = c.id, "closing idle client");
            c.outbox.close_for(crate::outbox::CloseReason::Timeout);
        }
    }
}

async fn accept_loop(listener: Listener, state: Arc<ServerState>, tracker: TaskTracker) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = state.shutdown.cancelled() => return,
        };
        match accepted {
            Ok(accepted) => {
                state
                    .stats
                    .total_connections_received
                    .fetch_add(1, Ordering::Relaxed);
                let Some(slot) = state.admit() else {
                    state
                        .stats
                        .rejected_connections
                        .fetch_add(1, Ordering::Relaxed);
                    tracker.spawn(reject_max_clients(accepted));
                    continue;
                };
                // The id is taken here, in accept order, not when the connection's task first
                // runs: Redis's ids grow with the order connections were established (CLIENT
                // ID's documented guarantee), and tasks may start in any order.
                let id = state.next_client_id();
                tracker.spawn(connection::serve(
                    Box::new(accepted),
                    id,
                    state.clone(),
                    tracker.clone(),
                    slot,
                ));
            }
            Err(e) => {
                tracing::warn!("Accepting client connection: {e}");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
            }
        }
    }
}

/// Redis writes this error and closes a connection over `maxclients` (over TLS once the
/// handshake is done, so the client can read it).
async fn reject_max_clients(accepted: listener::Accepted) {
    let Some(stream) = connection::handshake(accepted).await else {
        return;
    };
    let (_, mut wr, _) = stream.into_split();
    let _ = wr
        .write_all(b"-ERR max number of clients reached\r\n")
        .await;
    let _ = wr.shutdown().await;
}
