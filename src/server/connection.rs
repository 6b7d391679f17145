//! One client connection: a reader (this task) that decodes requests, runs commands and, once a
//! batch of them is done, writes their replies and the messages they fanned out to the sockets
//! that take them (`Outbox::flush`). What a full socket did not take is written by a writer
//! task the outbox starts for as long as the socket stays full; a TLS connection has a writer
//! task (`write_loop`) for its whole life instead. A plain connection whose input is rare parks
//! once it has read everything (`park`): its task ends and a waker on its socket starts another
//! when input comes, so idle subscribers hold no task.
//!
//! The reader ends on EOF, an I/O error, QUIT, a protocol error, CLIENT KILL, the idle timeout
//! or shutdown; whatever the reason, the client's subscriptions are removed from the registry as
//! soon as it ends (at shutdown: once every reader has stopped, see `ServerState::flush`), then
//! what is queued is written (`Outbox::finish`, or the TLS writer) when the connection closes
//! by QUIT, a protocol error or shutdown, and dropped otherwise.

use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::backbone::Backbone;
use crate::client::{ClientHandle, ClientState, ReplyMode};
use crate::commands::{dispatch, Ctx, Login};
use crate::outbox::{Batch, CloseReason, Outbox, READ_PAUSE_BYTES};
use crate::protocol::{Decoder, ProtocolError, ReplyBuf, Request};
use crate::state::{Admission, ServerState};

use super::listener::{Accepted, RawStream, ReadHalf, Stream, WriteHalf};

/// A connection whose input comes at least this long after its previous input parks once it
/// has nothing more to read (see `park`); one that sends more often keeps its task.
const PARK_GAP_MS: u64 = 100;

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 16 * 1024;
/// Frames smaller than this are copied into one buffer and written together.
const COALESCE_MAX_FRAME: usize = 16 * 1024;
/// Size at which the coalescing buffer is written out.
const WRITE_BUFFER: usize = 64 * 1024;

/// At most this many publishes to one channel, read together, are delivered as one run
/// (`run_publishes`), and their payloads at most this many bytes (beyond which a run saves
/// nothing).
const MAX_RUN: usize = 1024;
const MAX_RUN_BYTES: usize = 256 * 1024;

/// Time a TLS client has to finish its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Redis's reply to a remote client while protected mode is on and the default user has no
/// password; the connection is closed after it.
pub const PROTECTED_MODE_DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Runs the TLS handshake of a TLS connection (bounded by `TLS_HANDSHAKE_TIMEOUT`); plain
/// connections pass through. `None` when the handshake failed: a plaintext client on the TLS
/// port, a client without the certificate `tls-auth-clients yes` requires, a timeout.
pub async fn handshake(accepted: Accepted) -> Option<Stream> {
    match (accepted.raw, accepted.tls) {
        (RawStream::Tcp(s), None) => Some(Stream::Tcp(s)),
        (RawStream::Unix(s), _) => Some(Stream::Unix(s)),
        (RawStream::Tcp(s), Some(acceptor)) => {
            // Boxed: the handshake's state is large and lives only this long, where the
            // connection's own future lives as long as the client.
            let accept = Box::pin(tokio::time::timeout(
                TLS_HANDSHAKE_TIMEOUT,
                acceptor.accept(s),
            ));
            match accept.await {
                Ok(Ok(tls)) => Some(Stream::Tls(Box::new(tls))),
                Ok(Err(e)) => {
                    tracing::debug!(peer = %accepted.peer.text(), "Error accepting a client connection: {e}");
                    None
                }
                Err(_) => {
                    tracing::debug!(peer = %accepted.peer.text(), "TLS handshake timed out");
                    None
                }
            }
        }
    }
}

/// Serves one accepted connection, client `id`, until it ends. `_slot` holds its `maxclients`
/// place until then. The connection comes boxed: a task keeps its arguments as long as it
/// runs, and this one runs as long as the client stays.
pub async fn serve(
    accepted: Box<Accepted>,
    id: u64,
    state: Arc<ServerState>,
    tracker: TaskTracker,
    _slot: Admission,
) {
    let peer = accepted.peer.clone();
    let span = tracing::debug_span!("client", client_id = id, peer = %peer.text());
    async move {
        let fd = match &accepted.raw {
            RawStream::Tcp(s) => {
                let _ = s.set_nodelay(true);
                set_keepalive(s, state.runtime.tcp_keepalive());
                s.as_raw_fd() as i64
            }
            RawStream::Unix(s) => s.as_raw_fd() as i64,
        };
        let laddr = accepted.local.clone();
        let Some(stream) = handshake(*accepted).await else {
            return;
        };
        let (rd, mut wr, sink) = stream.into_split();
        if state.runtime.protected_mode.load(Ordering::Relaxed)
            && !peer.is_local()
            && state.acl.default_user().nopass
        {
            tracing::warn!("Denied connection from {}: protected mode", peer.text());
            let _ = wr.write_all(PROTECTED_MODE_DENIED).await;
            let _ = wr.shutdown().await;
            return;
        }
        // A plain socket's outbox writes to it and starts a writer task only while it is full;
        // a TLS stream has a writer task as long as the connection.
        let tls = sink.is_none();
        let outbox = Outbox::with_sink(id, state.limits.clone(), state.stats.clone(), sink);
        let handle = ClientHandle::new(id, peer.text(), laddr, fd, outbox);
        state.clients.insert(id, handle.clone());
        tracing::debug!("accepted");

        let writer = tls.then(|| tracker.spawn(write_loop(wr, handle.clone(), state.clone())));
        let mut client = ClientState::new(id);
        client.authenticated = crate::auth::default_user_authenticated(&state.acl);
        let conn = Box::new(Conn {
            rd,
            handle,
            state,
            client,
            login: Login::default(),
            last_input: None,
            tracker,
            _slot,
        });
        run(conn, writer).await;
    }
    .instrument(span)
    .await
}

/// A connection's reader state between batches of commands, in one allocation: what `run`
/// works with, and all that a parked connection keeps (see `park`).
struct Conn {
    rd: ReadHalf,
    handle: Arc<ClientHandle>,
    state: Arc<ServerState>,
    client: ClientState,
    login: Login,
    /// When input last came (`ClientHandle::touch`'s time), kept across parking.
    last_input: Option<u64>,
    tracker: TaskTracker,
    /// The connection's `maxclients` place, held until it closes.
    _slot: Admission,
}

/// Runs the connection's reader until the connection closes (then closes it) or parks.
async fn run(mut conn: Box<Conn>, writer: Option<JoinHandle<()>>) {
    loop {
        let state = conn.state.clone();
        let reading = state.readers.enter();
        let stop = if state.shutdown.is_cancelled() {
            Stop::Close(CloseReason::Shutdown)
        } else {
            let Conn {
                rd,
                handle,
                client,
                login,
                last_input,
                ..
            } = &mut *conn;
            read_loop(rd, handle, &state, client, login, last_input).await
        };
        match stop {
            Stop::Close(end) => {
                // The one reason for this close: the first decided (a slow consumer or CLIENT
                // KILL decided before the reader saw it).
                let reason = conn.handle.outbox.decide_close(end);
                drop(reading);
                close(conn, reason, writer).await;
                return;
            }
            Stop::Park => {
                drop(reading);
                match park(conn) {
                    Some(awake) => conn = awake,
                    None => return,
                }
            }
        }
    }
}

/// Ends a connection whose reader stopped for `reason`: removes its subscriptions, writes what
/// is queued or drops it, and counts the close.
async fn close(conn: Box<Conn>, reason: CloseReason, writer: Option<JoinHandle<()>>) {
    let Conn {
        handle,
        state,
        client,
        _slot,
        ..
    } = *conn;
    let id = handle.id;
    if reason == CloseReason::Shutdown {
        // Stay subscribed until every reader has stopped: a PUBLISH still running in another
        // connection's pipeline counts this client and must reach it.
        state.flush.cancelled().await;
    }
    match reason {
        // What is queued is written before the connection closes.
        CloseReason::ClientQuit | CloseReason::Protocol | CloseReason::Shutdown => {
            handle.outbox.close_after_flush()
        }
        _ => handle.outbox.kill(),
    }
    state.registry.remove_client(
        id,
        client.channels.iter(),
        client.shard_channels.iter(),
        client.patterns.iter(),
    );
    state.clients.remove(&id);
    state.ops.monitors.remove(id);
    match writer {
        Some(w) => {
            let _ = w.await;
        }
        None => handle.outbox.finish().await,
    }
    // What this connection wrote now counts among the closed connections' bytes.
    state
        .stats
        .total_net_output_bytes
        .fetch_add(handle.outbox.written_bytes(), Ordering::Relaxed);
    state.stats.closed[reason.index()].fetch_add(1, Ordering::Relaxed);
    if reason == CloseReason::SlowConsumer {
        tracing::warn!(
            client_id = handle.id,
            addr = %handle.addr,
            omem = handle.outbox.slow_consumer_bytes(),
            "Client closed for overcoming of output buffer limits"
        );
    } else {
        tracing::debug!(reason = reason.name(), "closed");
    }
}

/// Parks an idle connection: its task ends, and what it keeps (`Conn`, a few hundred bytes
/// instead of a task of more than a kilobyte) waits in a `Parked` whose waker is registered
/// for the socket's readability and for `Outbox::wake_reader` (kills, shutdown, moved slots).
/// The first of them spawns a new task that goes on where this one stopped. Messages to a
/// parked subscriber need no task: publishers write to its socket (`Outbox::flush`), and a
/// writer task is started while the socket is full.
///
/// A connection parks when it has nothing more to read after a batch whose input came at
/// least `PARK_GAP_MS` after the input before it (or was the first since its task started):
/// a subscriber after its SUBSCRIBE, a client that sends a command now and then. A client
/// that keeps sending keeps its task, and pays no spawn per request. TLS connections, whose
/// writer task lives as long as they do, never park. Returns the connection when it may not
/// park (a wake-up came meanwhile): the caller goes on reading.
fn park(conn: Box<Conn>) -> Option<Box<Conn>> {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return Some(conn);
    };
    let parked = Arc::new(Parked {
        slot: parking_lot::Mutex::new(ParkSlot::Parking),
        rt,
    });
    let waker = Waker::from(parked.clone());
    conn.handle.parked.store(true, Ordering::Relaxed);
    let woken = conn.handle.outbox.watch_reader(&waker);
    let readable = conn
        .rd
        .poll_readable(&mut Context::from_waker(&waker))
        .is_ready();
    let mut slot = parked.slot.lock();
    if woken || readable || matches!(*slot, ParkSlot::Woken) {
        *slot = ParkSlot::Woken;
        drop(slot);
        conn.handle.parked.store(false, Ordering::Relaxed);
        return Some(conn);
    }
    // Shutdown waits for it as for a task.
    let token = conn.tracker.token();
    *slot = ParkSlot::Parked(conn, token);
    None
}

/// A parked connection and the waker that resumes it (see `park`).
struct Parked {
    slot: parking_lot::Mutex<ParkSlot>,
    rt: tokio::runtime::Handle,
}

enum ParkSlot {
    /// `park` is registering the waker.
    Parking,
    Parked(Box<Conn>, TaskTrackerToken),
    /// Resumed, or woken while parking.
    Woken,
}

impl Wake for Parked {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let was = std::mem::replace(&mut *self.slot.lock(), ParkSlot::Woken);
        if let ParkSlot::Parked(conn, _token) = was {
            conn.handle.parked.store(false, Ordering::Relaxed);
            let span = tracing::debug_span!("client", client_id = conn.handle.id, peer = %conn.handle.addr);
            let tracker = conn.tracker.clone();
            self.rt
                .spawn(tracker.track_future(run(conn, None).instrument(span)));
        }
    }
}

/// Probes Redis sends before it considers a silent peer gone (`anetKeepAlive`'s TCP_KEEPCNT).
const KEEPALIVE_PROBES: u32 = 3;

/// `tcp-keepalive <secs>` as Redis's `anetKeepAlive` applies it on Linux: the first probe after
/// `secs` of silence (TCP_KEEPIDLE), then one every `secs / 3` (at least 1, TCP_KEEPINTVL),
/// and the connection fails after `KEEPALIVE_PROBES` unanswered ones (TCP_KEEPCNT), so a
/// half-open peer is dropped about `2 * secs` after it went silent. Without TCP_KEEPCNT the
/// kernel's default of 9 probes would apply and a peer would take three times longer to drop.
fn set_keepalive(stream: &TcpStream, secs: u64) {
    if secs == 0 {
        return;
    }
    let ka = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(secs))
        .with_interval(Duration::from_secs((secs / 3).max(1)))
        .with_retries(KEEPALIVE_PROBES);
    let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&ka);
}

/// Why `read_loop` returned.
enum Stop {
    Close(CloseReason),
    /// Nothing to read, and input is rare (see `park`).
    Park,
}

/// What the reader's wait for input ended with.
enum Input {
    Read(std::io::Result<usize>),
    /// `Outbox::wake_reader`, or a kill.
    Woken,
    /// Nothing to read now.
    Idle,
}

async fn read_loop(
    rd: &mut ReadHalf,
    handle: &Arc<ClientHandle>,
    state: &Arc<ServerState>,
    client: &mut ClientState,
    login: &mut Login,
    last_input: &mut Option<u64>,
) -> Stop {
    // Idle connections hold no read buffer: it is allocated when the socket is readable and
    // released once everything in it was processed.
    let mut buf = BytesMut::new();
    let mut decoder = Decoder::new(
        state.config.proto_max_bulk_len,
        state.config.client_query_buffer_limit,
    );
    let mut reply = ReplyBuf::new(client.resp);
    let mut wakes = Vec::new();
    // Whether the last input came long after the input before it: then the connection parks
    // once it has nothing more to read (see `park`).
    let mut rare = true;
    loop {
        if state.shutdown.is_cancelled() {
            // Even with more of a pipeline readable: shutdown waits for readers to stop.
            return Stop::Close(CloseReason::Shutdown);
        }
        if handle.outbox.pending() >= READ_PAUSE_BYTES {
            // Backpressure: take no new commands until the client reads what it was sent.
            if let Some(end) = Box::pin(drained(handle, state)).await {
                return Stop::Close(end);
            }
        }
        if buf.is_empty() && !decoder.in_progress() {
            buf = BytesMut::new();
            reply.release();
        }
        // Killed, shutdown (seen at the top of the loop) or moved slots: one wake-up for all,
        // so an idle connection waits on little besides its socket. With rare input and
        // nothing to read, the connection parks instead of waiting (see `park`).
        let park_now = rare && rd.parkable() && buf.is_empty() && !decoder.in_progress();
        let input = std::future::poll_fn(|cx| {
            if handle.outbox.poll_reader_woken(cx).is_ready() {
                return std::task::Poll::Ready(Input::Woken);
            }
            match rd.poll_read_some(cx, &mut buf, READ_CHUNK) {
                std::task::Poll::Pending if park_now => std::task::Poll::Ready(Input::Idle),
                r => r.map(Input::Read),
            }
        })
        .await;
        let read = match input {
            Input::Read(r) => r,
            Input::Idle => return Stop::Park,
            Input::Woken => {
                if handle.outbox.is_killed() {
                    return Stop::Close(CloseReason::Killed);
                }
                if !client.shard_channels.is_empty() {
                    drop_moved_shard_channels(handle, state, client, login, &mut reply, &mut wakes);
                }
                continue;
            }
        };
        match read {
            Ok(0) => return Stop::Close(CloseReason::Eof),
            Ok(n) => {
                state
                    .stats
                    .total_net_input_bytes
                    .fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(_) => return Stop::Close(CloseReason::Io),
        }
        let now = handle.touch();
        rare = last_input.is_none_or(|t| now.saturating_sub(t) >= PARK_GAP_MS);
        *last_input = Some(now);
        // CONFIG SET proto-max-bulk-len / client-query-buffer-limit apply to running clients.
        decoder.proto_max_bulk_len = state.runtime.proto_max_bulk_len.load(Ordering::Relaxed);
        decoder.query_buffer_limit = state
            .runtime
            .client_query_buffer_limit
            .load(Ordering::Relaxed);
        // CLIENT INFO/LIST of this client while the batch runs (Redis's `qbuf`).
        handle.meta.lock().qbuf = buf.len() + decoder.pending_bytes();
        let mut parked = None;
        if state.backbone.is_some() {
            Backbone::take_interest_ticket();
        }
        let mut end = process(
            &mut buf,
            &mut decoder,
            handle,
            state,
            client,
            login,
            &mut reply,
            &mut wakes,
            &mut parked,
        );
        interest_settled(handle, state, client).await;
        // A request CLIENT PAUSE holds back: reply to what ran before it, wait, run it, go on.
        while let Some(req) = parked.take() {
            // Before the batch's replies can be read: whoever reads them finds these clients gone.
            if !client.close_after_batch.is_empty() {
                state.close_clients(
                    &std::mem::take(&mut client.close_after_batch)
                        .into_iter()
                        .collect(),
                );
            }
            flush_batch(handle, &mut reply, &mut wakes);
            handle.postponed.store(true, Ordering::Relaxed);
            while crate::commands::held_by_pause(state, client, &req) {
                if let Some(end) = Box::pin(pause_changed(handle, state)).await {
                    return Stop::Close(end);
                }
            }
            handle.postponed.store(false, Ordering::Relaxed);
            handle.touch();
            run_one(req, handle, state, client, login, &mut reply, &mut wakes);
            interest_settled(handle, state, client).await;
            end = if client.close_after_reply {
                Some(CloseReason::ClientQuit)
            } else {
                process(
                    &mut buf,
                    &mut decoder,
                    handle,
                    state,
                    client,
                    login,
                    &mut reply,
                    &mut wakes,
                    &mut parked,
                )
            };
            interest_settled(handle, state, client).await;
        }
        // Before the batch's replies can be read: whoever reads them finds these clients gone.
        if !client.close_after_batch.is_empty() {
            state.close_clients(
                &std::mem::take(&mut client.close_after_batch)
                    .into_iter()
                    .collect(),
            );
        }
        flush_batch(handle, &mut reply, &mut wakes);
        client.call_stats.flush(&state.stats);
        {
            let mut meta = handle.meta.lock();
            meta.last_cmd = client.last_cmd;
            meta.qbuf = buf.len() + decoder.pending_bytes();
        }
        if let Some(reason) = end {
            handle.outbox.close_after_flush();
            return Stop::Close(reason);
        }
    }
}

// The reader's rare waits are boxed where they are awaited: the reader's future keeps room
// for its largest wait as long as the client is connected, and should only need the room of
// the wait for input.

/// Waits until the client has read enough of its output to take commands again; the reason
/// to close instead, if the connection must.
async fn drained(handle: &ClientHandle, state: &ServerState) -> Option<CloseReason> {
    tokio::select! {
        // Also once the connection is closing or killed.
        _ = handle.outbox.wait_below_watermark() => {
            handle.outbox.is_killed().then_some(CloseReason::Killed)
        }
        _ = state.shutdown.cancelled() => Some(CloseReason::Shutdown),
    }
}

/// Waits until CLIENT PAUSE changes; the reason to close instead, if the connection must.
async fn pause_changed(handle: &ClientHandle, state: &ServerState) -> Option<CloseReason> {
    tokio::select! {
        _ = state.ops.pause.changed() => None,
        _ = handle.outbox.killed() => Some(CloseReason::Killed),
        _ = state.shutdown.cancelled() => Some(CloseReason::Shutdown),
    }
}

/// Once a batch of commands ran: writes its replies, then the messages it queued to other
/// clients, from this thread where the sockets take them (`Outbox::flush`). Replies first, as
/// Redis writes the client that ran the commands first: a pipelining publisher can send its
/// next batch while the messages of this one are written.
fn flush_batch(handle: &ClientHandle, reply: &mut ReplyBuf, wakes: &mut Vec<Outbox>) {
    if !reply.is_empty() {
        handle.outbox.push_deferred(reply.take());
    }
    // Also what the commands queued to this client directly (`Outbox::push_own`).
    handle.outbox.flush();
    for o in wakes.drain(..) {
        o.flush();
    }
}

/// With a backbone, a SUBSCRIBE, PSUBSCRIBE or SSUBSCRIBE gates the connection's output
/// (`commands::pubsub`). Once the requests just run are done: if they gave this node new
/// interest (a first local subscriber of a channel or pattern), wait until NATS holds it, so a
/// client told "subscribed" receives what any node publishes from then on; then open the gate.
async fn interest_settled(handle: &ClientHandle, state: &ServerState, client: &mut ClientState) {
    let Some(b) = &state.backbone else {
        return;
    };
    let ticket = Backbone::take_interest_ticket();
    if !std::mem::take(&mut client.output_gated) {
        return;
    }
    if ticket != 0 {
        // Boxed: rare, and the reader's future would otherwise keep room for it while idle.
        Box::pin(b.interest_settled(ticket)).await;
    }
    handle.outbox.open_gate();
}

/// Runs every complete request in `buf`, stopping at one CLIENT PAUSE holds back (left in
/// `parked`). Returns a reason when the connection must close after what was replied (QUIT, a
/// protocol error).
#[allow(clippy::too_many_arguments)]
fn process(
    buf: &mut BytesMut,
    decoder: &mut Decoder,
    handle: &Arc<ClientHandle>,
    state: &Arc<ServerState>,
    client: &mut ClientState,
    login: &mut Login,
    reply: &mut ReplyBuf,
    wakes: &mut Vec<Outbox>,
    parked: &mut Option<Vec<Bytes>>,
) -> Option<CloseReason> {
    // A request decoded while looking for more of a run of publishes, run next.
    let mut next: Option<Result<Option<Request>, ProtocolError>> = None;
    loop {
        let auth_required = crate::auth::auth_required(&state.acl, client.authenticated);
        let decoded = match next.take() {
            Some(d) => d,
            None => decoder.decode(buf, auth_required),
        };
        match decoded {
            Ok(Some(req)) => {
                if cross_protocol_attack(&req) {
                    security_warning(handle);
                    // Redis frees the client at once: replies not yet written are dropped too.
                    handle.outbox.kill();
                    return Some(CloseReason::Killed);
                }
                if crate::commands::held_by_pause(state, client, &req) {
                    *parked = Some(req);
                    return None;
                }
                if crate::commands::is_publish(&req) {
                    // A pipeline of messages to one channel: take the ones already read
                    // together, so each subscriber gets them in one buffer.
                    let mut run = Vec::new();
                    let mut bytes = 0;
                    while run.len() < MAX_RUN && bytes < MAX_RUN_BYTES {
                        match decoder.decode(buf, auth_required) {
                            Ok(Some(r)) if crate::commands::same_publish(&req, &r) => {
                                bytes += r[2].len();
                                run.push(r);
                            }
                            Ok(None) => break,
                            other => {
                                next = Some(other);
                                break;
                            }
                        }
                    }
                    if run.is_empty() {
                        run_one(req, handle, state, client, login, reply, wakes);
                    } else {
                        run.insert(0, req);
                        run_publishes(run, handle, state, client, login, reply, wakes);
                    }
                } else {
                    run_one(req, handle, state, client, login, reply, wakes);
                }
                if client.close_after_reply {
                    return Some(CloseReason::ClientQuit);
                }
                if !handle.outbox.is_open() {
                    return Some(CloseReason::Killed);
                }
            }
            Ok(None) => return None,
            Err(e) => {
                protocol_error(&e, handle, state, reply);
                return Some(CloseReason::Protocol);
            }
        }
    }
}

/// Redis's guard against cross-protocol scripting (`processCommand`): a request named `POST`
/// or `Host:` (any case) is an HTTP request smuggled to the server, and the connection is
/// closed without a reply, before authentication, MULTI or anything else looks at it.
fn cross_protocol_attack(req: &[Bytes]) -> bool {
    req.first()
        .is_some_and(|n| n.eq_ignore_ascii_case(b"post") || n.eq_ignore_ascii_case(b"host:"))
}

/// Seconds between two security warnings, as Redis's `securityWarningCommand` limits them.
const SECURITY_WARNING_PERIOD: Duration = Duration::from_secs(60);

fn security_warning(handle: &ClientHandle) {
    static LAST: parking_lot::Mutex<Option<std::time::Instant>> = parking_lot::Mutex::new(None);
    let now = std::time::Instant::now();
    let mut last = LAST.lock();
    if last.is_some_and(|t| now.duration_since(t) <= SECURITY_WARNING_PERIOD) {
        return;
    }
    *last = Some(now);
    tracing::warn!(
        "Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: commands to Redis. This is likely due to an attacker attempting to use Cross Protocol Scripting to compromise your Redis instance. Connection from {} aborted.",
        handle.addr
    );
}

/// The slot map moved slots away from this node: unsubscribe the client from its shard
/// channels there, with `sunsubscribe` pushes, as Redis does when a slot leaves a node.
fn drop_moved_shard_channels(
    handle: &Arc<ClientHandle>,
    state: &Arc<ServerState>,
    client: &mut ClientState,
    login: &mut Login,
    reply: &mut ReplyBuf,
    wakes: &mut Vec<Outbox>,
) {
    let mut ctx = command_ctx(state, client, login, handle, reply, wakes);
    crate::commands::drop_moved_shard_channels(&mut ctx);
    flush_batch(handle, reply, wakes);
}

#[allow(clippy::too_many_arguments)]
/// The context the connection's commands run in.
fn command_ctx<'a>(
    state: &'a ServerState,
    client: &'a mut ClientState,
    login: &'a mut Login,
    handle: &'a ClientHandle,
    reply: &'a mut ReplyBuf,
    wakes: &'a mut Vec<Outbox>,
) -> Ctx<'a> {
    Ctx {
        server: state,
        client,
        login,
        handle,
        reply,
        in_exec: false,
        wakes,
    }
}

/// Runs publishes to one channel read together (`commands::publish_run`), or one by one when
/// anything needs them so.
fn run_publishes(
    run: Vec<Request>,
    handle: &Arc<ClientHandle>,
    state: &Arc<ServerState>,
    client: &mut ClientState,
    login: &mut Login,
    reply: &mut ReplyBuf,
    wakes: &mut Vec<Outbox>,
) {
    client.argv_mem = run[run.len() - 1].iter().map(|a| a.len()).sum();
    let mut ctx = command_ctx(state, client, login, handle, reply, wakes);
    if crate::commands::publish_run(&mut ctx, &run) {
        crate::commands::after_command(client);
        return;
    }
    for req in run {
        run_one(req, handle, state, client, login, reply, wakes);
        if client.close_after_reply || !handle.outbox.is_open() {
            return;
        }
    }
}

fn run_one(
    req: Vec<Bytes>,
    handle: &Arc<ClientHandle>,
    state: &Arc<ServerState>,
    client: &mut ClientState,
    login: &mut Login,
    reply: &mut ReplyBuf,
    wakes: &mut Vec<Outbox>,
) {
    let mark = reply.len();
    let taken = reply.taken;
    client.argv_mem = req.iter().map(|a| a.len()).sum();
    let mut ctx = command_ctx(state, client, login, handle, reply, wakes);
    dispatch(&mut ctx, req);
    crate::commands::after_command(client);
    if matches!(client.reply_mode, ReplyMode::Off | ReplyMode::Skip) {
        // CLIENT REPLY OFF/SKIP: this command's replies are dropped.
        if reply.taken != taken {
            reply.buf.clear();
        } else {
            reply.buf.truncate(mark);
        }
    }
    client.reply_mode = match client.reply_mode {
        ReplyMode::Skip => ReplyMode::On,
        ReplyMode::SkipNext => ReplyMode::Skip,
        m => m,
    };
    if handle.outbox.is_holding() {
        // The command delivered messages to this client: its reply goes first (Redis 7.2).
        if !reply.is_empty() {
            handle.outbox.push_own(reply.take());
        }
        handle.outbox.release_held();
    }
}

fn protocol_error(
    e: &ProtocolError,
    handle: &Arc<ClientHandle>,
    state: &Arc<ServerState>,
    reply: &mut ReplyBuf,
) {
    if e.has_reply() {
        let text = format!("ERR {e}");
        state.stats.count_error(&text);
        reply.error(&text);
        tracing::debug!(client_id = handle.id, "Protocol error ({e}) from client");
    } else {
        state
            .stats
            .client_query_buffer_limit_disconnections
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            client_id = handle.id,
            addr = %handle.addr,
            "Closing client that reached max query buffer length"
        );
    }
}

async fn write_loop(mut wr: WriteHalf, handle: Arc<ClientHandle>, state: Arc<ServerState>) {
    let mut batch = VecDeque::new();
    // Allocated for a batch of small frames, released when the queue runs empty.
    let mut buf = BytesMut::new();
    let outbox = &handle.outbox;
    loop {
        let next = tokio::select! {
            biased;
            // A kill ends this wait too (`Batch::Killed`).
            b = outbox.next_batch(&mut batch) => b,
            _ = state.flush.cancelled() => {
                // Every reader has stopped: write what is already queued, then close (after a
                // write another thread started, which is short: it never waits).
                while outbox.is_writing() {
                    tokio::task::yield_now().await;
                }
                while outbox.try_batch(&mut batch) {
                    match write_batch(&mut wr, &mut batch, &mut buf).await {
                        Ok(n) => {
                            written(&handle, n);
                        }
                        Err(_) => break,
                    }
                }
                let _ = wr.shutdown().await;
                break;
            }
        };
        match next {
            Batch::Frames => {
                let r = tokio::select! {
                    r = write_batch(&mut wr, &mut batch, &mut buf) => r,
                    _ = outbox.killed() => break,
                };
                match r {
                    Ok(n) => {
                        if written(&handle, n) == 0 {
                            // Idle again: give the coalescing buffer back.
                            buf = BytesMut::new();
                            if batch.capacity() > 64 {
                                batch = VecDeque::new();
                            }
                        }
                    }
                    Err(_) => {
                        outbox.decide_close(CloseReason::Io);
                        break;
                    }
                }
            }
            Batch::Closing => {
                let _ = wr.shutdown().await;
                break;
            }
            Batch::Killed => break,
        }
    }
    // The reader must stop too, whatever ended the writer.
    handle.outbox.kill();
}

/// Records a write; returns the bytes still queued.
fn written(handle: &ClientHandle, n: usize) -> usize {
    handle.outbox.written(n)
}

/// Writes every frame of the batch: small frames are coalesced into one buffer, so a batch of
/// many messages costs a few syscalls, not one each.
async fn write_batch(
    wr: &mut WriteHalf,
    batch: &mut VecDeque<Bytes>,
    buf: &mut BytesMut,
) -> std::io::Result<usize> {
    if batch.len() == 1 {
        // One frame: write it as it is, no copy.
        let frame = batch.pop_front().unwrap_or_default();
        wr.write_all(&frame).await?;
        return Ok(frame.len());
    }
    let small: usize = batch
        .iter()
        .map(|f| f.len())
        .filter(|&n| n < COALESCE_MAX_FRAME)
        .sum();
    buf.reserve(small.min(WRITE_BUFFER));
    let mut total = 0;
    while let Some(frame) = batch.pop_front() {
        total += frame.len();
        if frame.len() >= COALESCE_MAX_FRAME {
            if !buf.is_empty() {
                wr.write_all(buf).await?;
                buf.clear();
            }
            wr.write_all(&frame).await?;
        } else {
            buf.extend_from_slice(&frame);
            if buf.len() >= WRITE_BUFFER {
                wr.write_all(buf).await?;
                buf.clear();
            }
        }
    }
    if !buf.is_empty() {
        wr.write_all(buf).await?;
        buf.clear();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn keepalive_of(secs: u64) -> (bool, Duration, Duration, u32) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let _c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        set_keepalive(&s, secs);
        let r = socket2::SockRef::from(&s);
        (
            r.keepalive().unwrap(),
            r.tcp_keepalive_time().unwrap(),
            r.tcp_keepalive_interval().unwrap(),
            r.tcp_keepalive_retries().unwrap(),
        )
    }

    // was: TCP_KEEPCNT left at the kernel's 9, so half-open peers took 3x as long to drop
    #[tokio::test]
    async fn keepalive_settings_are_redis_anet_keepalive() {
        let s = Duration::from_secs;
        assert_eq!(keepalive_of(300).await, (true, s(300), s(100), 3));
        assert_eq!(keepalive_of(1).await, (true, s(1), s(1), 3));
        assert_eq!(keepalive_of(7).await, (true, s(7), s(2), 3));
        assert!(!keepalive_of(0).await.0, "tcp-keepalive 0 leaves it off");
    }
}
