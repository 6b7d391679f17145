//! Per-connection outgoing queue, counted in bytes, with Redis's slow-consumer policy.
//!
//! Every frame for a client — replies to its own commands and messages pushed by publishers —
//! goes through its `Outbox`, so their relative order is the order Redis produces. `push` never
//! blocks or awaits: a publisher never waits for a subscriber. When a client in the pubsub class
//! goes over `client-output-buffer-limit pubsub <hard> <soft> <soft-seconds>`, its queue is
//! dropped and the connection is closed with `CloseReason::SlowConsumer`, as Redis does.
//! Clients not subscribed to anything are never disconnected for output: their reader stops
//! reading commands while the queue is above `READ_PAUSE_BYTES` instead (backpressure).
//!
//! Writing: whoever finds frames queued may write them, one at a time (`Queue::writing`).
//! With a `Socket` (a plain socket), `flush` writes from the calling thread without waiting: a
//! publisher that fanned out a batch of messages, or a reader that ran a batch of commands,
//! writes to idle connections itself, as Redis does before it sleeps. What the socket does not
//! take goes back to the front of the queue, so the order of frames never changes, and a writer
//! task is started for it, which waits for the socket and ends once the queue is empty
//! (`Hot::writer`): an idle connection has no writer task. At the connection's end its own
//! task writes what is left (`finish`). Without a socket (TLS) the connection keeps one writer
//! task, which takes batches (`next_batch`) and is woken when frames are queued.
//!
//! Locks: one short `parking_lot::Mutex` around the queue, never held across an await, a
//! socket write or while calling anything else. Publishers may hold a registry lock while
//! calling `push`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::task::AtomicWaker;
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::protocol::RespVersion;
use crate::stats::Stats;

/// The reader of a client stops taking new commands while this many bytes wait to be written.
pub const READ_PAUSE_BYTES: usize = 4 * 1024 * 1024;

/// Frames up to this size are copied into the queue's tail buffer instead of being queued as
/// their own `Bytes`: the writer then gets one contiguous buffer to send, and the frame's
/// memory is freed by the thread that allocated it. A frame freed by a writer on another core
/// makes glibc's allocator take the allocating thread's arena lock, against that thread's own
/// allocations; copying a small frame costs less. Larger frames are queued as they are.
pub const COPY_MAX_FRAME: usize = 1024;

/// A frame fanned out to more receivers than this is shared among them (a reference each)
/// rather than copied into every receiver's tail buffer: the thread that fans out would
/// otherwise pay one copy per receiver before anything is written.
pub const COPY_MAX_RECEIVERS: usize = 4;

/// The tail buffer's first allocation. A tail up to this size is split off for the writer and
/// its space reused; a longer one is handed over whole.
const TAIL_KEEP: usize = 1024;

/// The tail buffer is queued as a frame of its own once it would grow past this, so a queue
/// that grows (a slow reader) is a list of chunks, as Redis's reply list is, and never one
/// buffer copied into a twice larger one.
const TAIL_CHUNK: usize = 16 * 1024;
const _: () = assert!(TAIL_CHUNK <= u16::MAX as usize, "Queue::tail_len is a u16");

/// `client-output-buffer-limit pubsub` values, changeable at run time by CONFIG SET.
#[derive(Debug)]
pub struct OutputLimits {
    pub hard: AtomicU64,
    pub soft: AtomicU64,
    pub soft_seconds: AtomicU64,
    /// The origin of every outbox's `Hot::soft_since`.
    origin: Instant,
}

impl OutputLimits {
    /// Redis's default: `pubsub 32mb 8mb 60`.
    pub const DEFAULT: (u64, u64, u64) = crate::config::DEFAULT_PUBSUB_OUTPUT_LIMIT;

    pub fn new(hard: u64, soft: u64, soft_seconds: u64) -> Self {
        OutputLimits {
            hard: AtomicU64::new(hard),
            soft: AtomicU64::new(soft),
            soft_seconds: AtomicU64::new(soft_seconds),
            origin: Instant::now(),
        }
    }

    pub fn set(&self, hard: u64, soft: u64, soft_seconds: u64) {
        self.hard.store(hard, Ordering::Relaxed);
        self.soft.store(soft, Ordering::Relaxed);
        self.soft_seconds.store(soft_seconds, Ordering::Relaxed);
    }

    pub fn get(&self) -> (u64, u64, u64) {
        (
            self.hard.load(Ordering::Relaxed),
            self.soft.load(Ordering::Relaxed),
            self.soft_seconds.load(Ordering::Relaxed),
        )
    }
}

impl Default for OutputLimits {
    fn default() -> Self {
        let (h, s, t) = Self::DEFAULT;
        Self::new(h, s, t)
    }
}

const OPEN: u8 = 0;
/// Write what is queued, then close (QUIT, protocol error, CLIENT KILL of oneself).
const CLOSING: u8 = 1;
/// Close now, dropping what is queued (slow consumer, CLIENT KILL, peer gone).
const KILLED: u8 = 2;

/// `Queue::held_from` while nothing is held.
const NOT_HELD: u32 = u32::MAX;

/// A queue emptied by a write keeps its allocation for up to this many frames; a larger one
/// (grown by a burst) is given back.
const KEEP_FRAMES: usize = 16;

/// Frames given to one vectored write (Linux's `IOV_MAX` is 1,024).
const IOV_BATCH: usize = 256;

/// Frames up to this size are copied together into one buffer by `Outbox::flush`, which
/// sends it in one piece: the kernel copies one long buffer faster than many short ones.
const COALESCE_MAX: usize = 16 * 1024;

/// A non-blocking stream socket registered with the runtime, which the outbox writes to from
/// any thread without waiting (`Outbox::flush`) and whose writer task waits for it when full.
pub trait Sink: AsFd + Send + Sync + 'static {
    /// Ready once the runtime saw the socket writable since a write through
    /// `send_when_ready` last found it full.
    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// `send` through the runtime's readiness: `WouldBlock` without trying while the socket is
    /// known to be full, and a write that finds it full clears the readiness, so that
    /// `poll_writable` then waits.
    fn send_when_ready(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
}

macro_rules! sink_for {
    ($t:ty) => {
        impl Sink for $t {
            fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.poll_write_ready(cx)
            }
            fn send_when_ready(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                self.try_io(tokio::io::Interest::WRITABLE, || {
                    send_fd(self.as_fd(), bufs)
                })
            }
        }
    };
}
sink_for!(tokio::net::TcpStream);
sink_for!(tokio::net::UnixStream);

/// The socket an outbox writes to; the outbox keeps it open.
pub type Socket = Arc<dyn Sink>;

/// Sends what the socket takes now (`send`, or `sendmsg` for several buffers): a socket
/// write without the file layer's work `write` adds. `WouldBlock` when it takes nothing.
fn send_fd(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    let sock = socket2::SockRef::from(&fd);
    match bufs {
        [one] => sock.send_with_flags(one, libc::MSG_NOSIGNAL),
        _ => sock.send_vectored_with_flags(bufs, libc::MSG_NOSIGNAL),
    }
}

/// How a write reaches the socket: straight (`flush`, which never waits) or through the
/// runtime's readiness (a writer, which waits when the socket is full).
#[derive(Clone, Copy)]
enum Via {
    Straight,
    Ready,
}

impl Via {
    fn send(self, sink: &Socket, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Via::Straight => send_fd(sink.as_fd(), bufs),
            Via::Ready => sink.send_when_ready(bufs),
        }
    }
}

thread_local! {
    /// Frames `Outbox::flush` is writing on this thread (kept to save an allocation per flush).
    static FLUSHING: RefCell<VecDeque<Bytes>> = const { RefCell::new(VecDeque::new()) };
    /// Where `Outbox::flush` copies small frames together.
    static COALESCED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Everything a push touches fits one cache line with the lock (see `Line`): a frame into an
/// empty queue is kept in the line itself (`head`), the frames behind it and the tail buffer
/// live behind one pointer, the tail's length is mirrored here, and the soft-limit clock is
/// elsewhere.
struct Queue {
    /// The only frame queued, when it went into an empty queue that had no `more`: most
    /// deliveries to an idle subscriber touch no other allocation. While it is set, nothing is
    /// in `more`; anything queued behind it moves it there first (`spill`).
    head: Option<Bytes>,
    /// Frames in order, then the tail; allocated once frames queue up behind each other.
    more: Option<Box<More>>,
    /// Bytes queued and not yet written (including a batch the writer is writing).
    bytes: usize,
    /// Bytes in the tail (at most `TAIL_CHUNK`, which fits).
    tail_len: u16,
    /// While the client runs a command that delivered messages to itself: the index in
    /// `more.frames` where those messages start (`NOT_HELD` otherwise). The writer takes only
    /// the frames before it, and the command's own replies are inserted there (`push_own`), so
    /// the messages follow the reply, as Redis 7.2 writes them.
    held_from: u32,
    /// Nothing is written while set (`Outbox::gate`): a subscription's confirmation waits for
    /// the backbone to hold the interest.
    gated: bool,
    /// Someone took frames and is writing them (the writer task or a `flush`); nobody else
    /// takes any until they are written (`Outbox::written`) or put back.
    writing: bool,
}

/// What a queue holds beyond its `head`.
#[derive(Default)]
struct More {
    /// Frames in order; the tail follows the last of them.
    frames: VecDeque<Bytes>,
    /// Small frames copied end to end (see `COPY_MAX_FRAME`).
    tail: BytesMut,
}

impl Queue {
    fn is_empty(&self) -> bool {
        self.head.is_none()
            && self.tail_len == 0
            && self.more.as_ref().is_none_or(|m| m.frames.is_empty())
    }

    /// Frames queued as they are (`oll` counts them, plus one for the tail).
    fn frame_count(&self) -> usize {
        usize::from(self.head.is_some()) + self.more.as_ref().map_or(0, |m| m.frames.len())
    }

    /// Whether `take` would take something.
    fn has_takeable(&self) -> bool {
        !self.gated && !self.writing && self.held_from != 0 && !self.is_empty()
    }

    /// Queues `frame` at the end: in `head` if the queue is empty and has no `more`.
    fn push_back(&mut self, frame: Bytes) {
        // A tail lives in `more`: without one, the queue is empty unless `head` is set.
        if self.more.is_none() && self.head.is_none() {
            self.head = Some(frame);
        } else {
            self.spill().frames.push_back(frame);
        }
    }

    /// Moves `head` (if any) to the front of `more`'s frames, for anything that queues behind
    /// it or indexes the frames; returns `more`.
    fn spill(&mut self) -> &mut More {
        let more = self.more.get_or_insert_with(Box::default);
        if let Some(h) = self.head.take() {
            more.frames.push_front(h);
        }
        more
    }

    /// Appends a small frame to the tail buffer.
    fn copy(&mut self, bytes: &[u8]) {
        let len = bytes.len();
        let more = self.spill();
        if more.tail.len() + len > TAIL_CHUNK {
            let full = std::mem::take(&mut more.tail).freeze();
            more.frames.push_back(full);
        }
        if more.tail.capacity() - more.tail.len() < len {
            more.tail.reserve(len.max(TAIL_KEEP));
        }
        more.tail.extend_from_slice(bytes);
        self.tail_len = more.tail.len() as u16;
    }

    /// Queues what the tail holds as a frame. A tail longer than `TAIL_KEEP` is handed over
    /// with its buffer, so no large allocation stays behind; a short one is split off, and its
    /// space comes back once the writer has dropped the chunk.
    #[inline]
    fn flush_tail(&mut self) {
        if self.tail_len == 0 {
            return;
        }
        if let Some(more) = self.more.as_mut() {
            let chunk = if more.tail.len() > TAIL_KEEP {
                std::mem::take(&mut more.tail).freeze()
            } else {
                more.tail.split().freeze()
            };
            more.frames.push_back(chunk);
        }
        self.tail_len = 0;
    }

    /// Moves everything queued, in order, into `out` (empty); false if nothing is queued.
    /// While messages are held, only the frames before them.
    /// While someone else is writing, nothing. Whoever takes frames must call `Outbox::written`
    /// (or put them back with `Queue::put_back`) before anyone takes more.
    fn take(&mut self, out: &mut VecDeque<Bytes>) -> bool {
        if !self.has_takeable() {
            return false;
        }
        if let Some(h) = self.head.take() {
            // Alone in the queue (messages are held only in `more`).
            out.push_back(h);
            self.writing = true;
            return true;
        }
        if self.held_from != NOT_HELD {
            let n = self.held_from as usize;
            if let Some(more) = self.more.as_mut() {
                out.extend(more.frames.drain(..n));
            }
            self.held_from = 0;
            self.writing = true;
            return true;
        }
        self.flush_tail();
        let Some(more) = self.more.as_mut() else {
            return false;
        };
        if more.frames.is_empty() {
            return false;
        }
        if out.capacity() >= more.frames.len() {
            // Keep each side's allocation: the queue's stays sized for this connection, unless
            // a burst grew it, which an idle connection would otherwise keep.
            out.extend(more.frames.drain(..));
        } else {
            std::mem::swap(&mut more.frames, out);
        }
        if more.frames.capacity() > KEEP_FRAMES {
            more.frames = VecDeque::new();
        }
        self.writing = true;
        true
    }

    /// Returns frames a write left unwritten (the first `skip` bytes of them were written) to
    /// the front of the queue, ahead of everything queued since they were taken. Returns how
    /// many frames went back.
    fn put_back(&mut self, rest: &mut VecDeque<Bytes>, mut skip: usize) -> usize {
        while skip > 0 {
            let Some(f) = rest.front_mut() else { break };
            if f.len() <= skip {
                skip -= f.len();
                rest.pop_front();
            } else {
                f.advance(skip);
                skip = 0;
            }
        }
        let n = rest.len();
        if n == 0 {
            return 0;
        }
        let more = self.spill();
        while let Some(f) = rest.pop_back() {
            more.frames.push_front(f);
        }
        if self.held_from != NOT_HELD {
            self.held_from += n as u32;
        }
        n
    }

    fn clear(&mut self) {
        self.held_from = NOT_HELD;
        self.gated = false;
        self.head = None;
        if let Some(more) = self.more.as_mut() {
            more.frames.clear();
            more.tail.clear();
        }
        self.tail_len = 0;
        self.bytes = 0;
    }
}

/// Writes `frames` in order until the socket takes no more: one frame as it is, small frames
/// copied into one buffer, large ones with vectored writes. Returns the bytes written and the
/// error that stopped it, if any (not `WouldBlock`: a full socket is where a writer waits);
/// fewer bytes than the frames hold and no error means the socket is full.
fn write_now(sink: &Socket, frames: &VecDeque<Bytes>, via: Via) -> (usize, Option<io::Error>) {
    let send = |sink: &Socket, bufs: &[IoSlice<'_>]| via.send(sink, bufs);
    let result = |r: io::Result<usize>, want: usize| match r {
        Ok(0) if want > 0 => (0, Some(io::Error::from(io::ErrorKind::WriteZero))),
        Ok(k) => (k, None),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => (0, None),
        Err(e) => (0, Some(e)),
    };
    if frames.len() == 1 {
        return result(send(sink, &[IoSlice::new(&frames[0])]), frames[0].len());
    }
    let total: usize = frames.iter().map(|f| f.len()).sum();
    if total <= COALESCE_MAX {
        return COALESCED.with_borrow_mut(|buf| {
            buf.clear();
            for f in frames {
                buf.extend_from_slice(f);
            }
            result(send(sink, &[IoSlice::new(buf)]), total)
        });
    }
    let mut written = 0;
    let mut first = 0;
    while first < frames.len() {
        let mut iov: [IoSlice<'_>; IOV_BATCH] = [IoSlice::new(&[]); IOV_BATCH];
        let mut n = 0;
        let mut want = 0;
        for (i, f) in frames.iter().skip(first).take(IOV_BATCH).enumerate() {
            iov[i] = IoSlice::new(f);
            want += f.len();
            n += 1;
        }
        match send(sink, &iov[..n]) {
            Ok(0) => return (written, Some(io::Error::from(io::ErrorKind::WriteZero))),
            Ok(k) => {
                written += k;
                if k < want {
                    // The socket is full now; a writer goes on from here.
                    return (written, None);
                }
                first += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (written, None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return (written, Some(e)),
        }
    }
    (written, None)
}

/// A small frame for `Outbox::enqueue_small`.
enum Small<'a> {
    Owned(Bytes),
    Borrowed(&'a Bytes),
}

impl Small<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            Small::Owned(b) => b,
            Small::Borrowed(b) => b,
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Small::Owned(b) => b,
            Small::Borrowed(b) => b.clone(),
        }
    }
}

/// A wake-up for one waiting task that is kept until it is seen (as `Notify::notify_one`'s
/// permit), without the waiter list a `Notify` keeps for each of its waits.
#[derive(Default)]
struct ReaderWake {
    woken: AtomicBool,
    waker: AtomicWaker,
}

impl ReaderWake {
    fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// Keeps a field on a cache line of its own, so that the lines publishers only read are not
/// invalidated by the writer's updates.
#[repr(align(64))]
struct Line<T>(T);

impl<T> std::ops::Deref for Line<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// Why a connection closed. Whoever decides the close records it first (`Outbox::close_for`,
/// the slow-consumer check, the reader when the peer goes); later decisions do not overwrite it.
/// The connection logs it once and counts it (`Stats::closed`), and CLIENT LIST shows a client
/// with a reason as closing (flag `A`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CloseReason {
    /// QUIT, or a client whose user was deleted after its reply.
    ClientQuit = 1,
    /// The peer closed the connection.
    Eof,
    /// A read or write failed.
    Io,
    /// A request that is not RESP: the error is sent, then the connection closes.
    Protocol,
    /// Over `client-output-buffer-limit pubsub` (Redis's "overcoming of output buffer limits").
    SlowConsumer,
    /// CLIENT KILL, ACL changes, a cross-protocol attack.
    Killed,
    /// Idle for longer than `timeout`.
    Timeout,
    /// The server is shutting down.
    Shutdown,
}

impl CloseReason {
    /// Every reason, in the order of their numbers (`reason as usize - 1`).
    pub const ALL: [CloseReason; crate::stats::CLOSE_REASONS] = [
        CloseReason::ClientQuit,
        CloseReason::Eof,
        CloseReason::Io,
        CloseReason::Protocol,
        CloseReason::SlowConsumer,
        CloseReason::Killed,
        CloseReason::Timeout,
        CloseReason::Shutdown,
    ];

    /// The name logs and metrics labels use.
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::ClientQuit => "client_quit",
            CloseReason::Eof => "eof",
            CloseReason::Io => "io",
            CloseReason::Protocol => "protocol",
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::Killed => "killed",
            CloseReason::Timeout => "timeout",
            CloseReason::Shutdown => "shutdown",
        }
    }

    /// The index of its counter in `Stats::closed`.
    pub fn index(self) -> usize {
        self as usize - 1
    }

    fn from_u8(v: u8) -> Option<Self> {
        CloseReason::ALL.get((v as usize).checked_sub(1)?).copied()
    }
}

/// What every push and flush reads, on a cache line of its own: a delivery to a client touches
/// this line and the queue's, and no other of the outbox's.
struct Hot {
    id: u64,
    /// The socket `flush` writes to, kept open as long as the outbox.
    sink: Option<Socket>,
    resp: AtomicU8,
    pubsub: AtomicBool,
    state: AtomicU8,
    /// When the pending bytes first went over the soft limit, as nanoseconds after the limits'
    /// `origin` plus one; 0 while they are under it.
    soft_since: AtomicU64,
    /// Bytes written to the client (INFO `total_net_output_bytes` sums these).
    written_bytes: AtomicU64,
    /// `client-output-buffer-limit pubsub`, read by every push to a subscriber.
    limits: Arc<OutputLimits>,
    /// With a socket: a writer task runs (or the connection's task finishes the connection)
    /// and writes whatever is queued; `flush` leaves it to it. Changed only under the queue's
    /// lock; a writer that finds nothing left to take clears it under the same lock a `flush`
    /// reads it with, so nothing queued is left without a writer.
    writer: AtomicBool,
}

struct Shared {
    hot: Line<Hot>,
    /// `CloseReason` as a number, 0 while none was decided.
    close_reason: AtomicU8,
    /// Messages the client's running command delivered to itself are held (see
    /// `Queue::held_from`); written and read only by the client's own reader.
    holding: AtomicBool,
    /// Bytes that were queued when it was closed as a slow consumer (for the warning).
    slow_consumer_bytes: AtomicU64,
    // Written by publishers and by the writer.
    queue: Line<Mutex<Queue>>,
    wake: Notify,
    /// Woken (all waiters) when the queue drains below `READ_PAUSE_BYTES` and when the
    /// connection closes: what a reader paused by backpressure and `killed` wait on.
    drained: Notify,
    /// Wakes the client's reader while it waits for input (`poll_reader_woken`), or its parked
    /// connection (`watch_reader`): the connection was killed, or the server wants it to look
    /// at something (`wake_reader`).
    reader: ReaderWake,
    stats: Arc<Stats>,
}

/// A handle to one client's outgoing queue; clones share it.
#[derive(Clone)]
pub struct Outbox(Arc<Shared>);

/// What `Outbox::push_deferred` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued behind frames someone will write.
    Queued,
    /// Queued into an empty queue: the caller must `flush` (or `wake`) it.
    NeedsWake,
    /// Not queued: the client is closing or just went over its limit.
    Dropped,
}

/// What a write of the queue left (`Outbox::write_pass`).
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Pass {
    /// Nothing left to take (or the write failed, and the connection is closed).
    Idle,
    /// The socket took everything taken, and more was queued meanwhile.
    More,
    /// The socket is full.
    Full,
}

/// What the writer gets from `Outbox::next_batch`.
#[derive(Debug, PartialEq, Eq)]
pub enum Batch {
    /// Frames were moved into the caller's buffer.
    Frames,
    /// Nothing is left and the connection should close after what was written.
    Closing,
    /// The connection must close now.
    Killed,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("id", &self.0.hot.id)
            .field("pending", &self.pending())
            .finish()
    }
}

impl Outbox {
    pub fn new(id: u64, limits: Arc<OutputLimits>, stats: Arc<Stats>) -> Self {
        Self::with_sink(id, limits, stats, None)
    }

    /// An outbox that `flush` may write to `sink` directly.
    pub fn with_sink(
        id: u64,
        limits: Arc<OutputLimits>,
        stats: Arc<Stats>,
        sink: Option<Socket>,
    ) -> Self {
        Outbox(Arc::new(Shared {
            hot: Line(Hot {
                id,
                sink,
                resp: AtomicU8::new(RespVersion::Resp2 as u8),
                pubsub: AtomicBool::new(false),
                state: AtomicU8::new(OPEN),
                soft_since: AtomicU64::new(0),
                written_bytes: AtomicU64::new(0),
                writer: AtomicBool::new(false),
                limits,
            }),
            holding: AtomicBool::new(false),
            close_reason: AtomicU8::new(0),
            slow_consumer_bytes: AtomicU64::new(0),
            queue: Line(Mutex::new(Queue {
                head: None,
                more: None,
                bytes: 0,
                tail_len: 0,
                held_from: NOT_HELD,
                gated: false,
                writing: false,
            })),
            wake: Notify::new(),
            drained: Notify::new(),
            reader: ReaderWake::default(),
            stats,
        }))
    }

    /// The id of the client this outbox belongs to.
    pub fn id(&self) -> u64 {
        self.0.hot.id
    }

    /// The protocol its client speaks now (publishers encode for it).
    pub fn resp(&self) -> RespVersion {
        RespVersion::from_u8(self.0.hot.resp.load(Ordering::Relaxed))
    }

    pub fn set_resp(&self, v: RespVersion) {
        self.0.hot.resp.store(v as u8, Ordering::Relaxed);
    }

    /// Whether the client has subscriptions (`set_pubsub`).
    pub fn is_pubsub(&self) -> bool {
        self.0.hot.pubsub.load(Ordering::Relaxed)
    }

    /// Puts the client in (or out of) the pubsub class, whose output is limited.
    pub fn set_pubsub(&self, on: bool) {
        self.0.hot.pubsub.store(on, Ordering::Relaxed);
    }

    /// Bytes queued and not yet written (`omem` in CLIENT LIST).
    pub fn pending(&self) -> usize {
        self.0.queue.0.lock().bytes
    }

    /// Buffers queued (`oll` in CLIENT LIST): frames queued as they are, plus one for the
    /// small frames copied together (Redis, too, counts reply blocks rather than replies).
    pub fn queued_frames(&self) -> usize {
        let q = self.0.queue.0.lock();
        q.frame_count() + usize::from(q.tail_len > 0)
    }

    pub fn is_open(&self) -> bool {
        self.0.hot.state.load(Ordering::Acquire) == OPEN
    }

    pub fn is_killed(&self) -> bool {
        self.0.hot.state.load(Ordering::Acquire) == KILLED
    }

    /// Why the connection closes, once someone decided it.
    pub fn close_reason(&self) -> Option<CloseReason> {
        CloseReason::from_u8(self.0.close_reason.load(Ordering::Acquire))
    }

    /// Records why the connection closes, unless a reason was recorded already. Returns the
    /// reason that stands.
    pub fn decide_close(&self, reason: CloseReason) -> CloseReason {
        match self.0.close_reason.compare_exchange(
            0,
            reason as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => reason,
            Err(earlier) => CloseReason::from_u8(earlier).unwrap_or(reason),
        }
    }

    /// Whether it was closed for going over the output buffer limit.
    pub fn was_slow_consumer(&self) -> bool {
        self.close_reason() == Some(CloseReason::SlowConsumer)
    }

    /// The bytes queued when it was closed for going over the output buffer limit.
    pub fn slow_consumer_bytes(&self) -> u64 {
        self.0.slow_consumer_bytes.load(Ordering::Relaxed)
    }

    /// Queues a frame and wakes the writer. Never blocks. Returns false if the client is closed
    /// or was just closed for going over its output limit.
    pub fn push(&self, frame: Bytes) -> bool {
        match self.push_deferred(frame) {
            Pushed::NeedsWake => {
                self.wake();
                true
            }
            Pushed::Queued => true,
            Pushed::Dropped => false,
        }
    }

    /// Makes sure what is queued gets written, without writing from this thread: wakes the
    /// writer task, or, with a socket, starts one unless one runs (after `push` found the queue
    /// empty, where writing here could mean a socket write under a lock the caller holds).
    pub fn wake(&self) {
        let s = &*self.0;
        if s.hot.sink.is_none() {
            s.wake.notify_one();
            return;
        }
        let q = s.queue.0.lock();
        if s.hot.writer.load(Ordering::Relaxed)
            || !q.has_takeable()
            || s.hot.state.load(Ordering::Acquire) != OPEN
        {
            return;
        }
        s.hot.writer.store(true, Ordering::Relaxed);
        drop(q);
        self.start_writer();
    }

    /// Writes what is queued from this thread, as much as the socket takes without waiting,
    /// and starts a writer task for the rest (after `push_deferred` said a write is due).
    /// Without a socket the writer task does it all; while a writer task runs, it writes this
    /// too; once the connection closes, its own task writes what is left (`finish`).
    pub fn flush(&self) {
        let s = &*self.0;
        let Some(sink) = &s.hot.sink else {
            s.wake.notify_one();
            return;
        };
        if s.hot.state.load(Ordering::Acquire) != OPEN {
            return;
        }
        let q = s.queue.0.lock();
        if s.hot.writer.load(Ordering::Relaxed) {
            return;
        }
        if self.write_pass(q, sink, Via::Straight, false) != Pass::Idle {
            self.start_writer();
        }
    }

    /// Takes what is queued (with the lock the caller took) and writes what the socket takes.
    /// With frames left and `as_writer` false, the writer's role is taken (`Hot::writer`) for
    /// a writer task the caller starts; a writer (`as_writer`) that finds nothing left gives
    /// its role up, under the same lock a `flush` checks it with.
    fn write_pass(
        &self,
        mut q: MutexGuard<'_, Queue>,
        sink: &Socket,
        via: Via,
        as_writer: bool,
    ) -> Pass {
        let s = &*self.0;
        FLUSHING.with_borrow_mut(|frames| {
            if !q.take(frames) {
                if as_writer {
                    s.hot.writer.store(false, Ordering::Relaxed);
                    drop(q);
                    s.wake.notify_one();
                }
                return Pass::Idle;
            }
            drop(q);
            let (n, err) = write_now(sink, frames, via);
            let mut q = s.queue.0.lock();
            let open = s.hot.state.load(Ordering::Acquire);
            // Frames left unwritten without an error: the socket is full.
            let full = err.is_none() && open != KILLED && q.put_back(frames, n) > 0;
            q.writing = false;
            let pass = if err.is_some() {
                Pass::Idle
            } else if full {
                Pass::Full
            } else if q.has_takeable() {
                Pass::More
            } else {
                Pass::Idle
            };
            let gave_up = as_writer && pass == Pass::Idle;
            if gave_up {
                s.hot.writer.store(false, Ordering::Relaxed);
            } else if pass != Pass::Idle {
                s.hot.writer.store(true, Ordering::Relaxed);
            }
            self.account(q, n);
            frames.clear();
            if gave_up {
                s.wake.notify_one();
            }
            if let Some(e) = err {
                tracing::debug!(client_id = s.hot.id, "write failed: {e}");
                self.close_for(CloseReason::Io);
            }
            pass
        })
    }

    /// Starts a writer task for the role the caller took (`Hot::writer`).
    fn start_writer(&self) {
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(self.clone().write_rest());
            }
            Err(_) => {
                let _q = self.0.queue.0.lock();
                self.0.hot.writer.store(false, Ordering::Relaxed);
            }
        }
    }

    /// A writer task: writes what is queued, waiting for the socket whenever it is full, and
    /// ends once nothing is left (or the connection is closing: `finish` takes over).
    async fn write_rest(self) {
        let s = &*self.0;
        let Some(sink) = s.hot.sink.clone() else {
            return;
        };
        loop {
            let q = s.queue.0.lock();
            if s.hot.state.load(Ordering::Acquire) != OPEN {
                self.give_up_writer(q);
                return;
            }
            match self.write_pass(q, &sink, Via::Ready, true) {
                Pass::Idle => {
                    if s.hot.state.load(Ordering::Acquire) != OPEN {
                        // Failed, or killed while writing: the role goes back for `finish`.
                        self.give_up_writer(s.queue.0.lock());
                    }
                    return;
                }
                Pass::More => tokio::task::yield_now().await,
                Pass::Full => {
                    let ready = tokio::select! {
                        r = std::future::poll_fn(|cx| sink.poll_writable(cx)) => r,
                        _ = self.killed() => Ok(()),
                    };
                    if let Err(e) = ready {
                        tracing::debug!(client_id = s.hot.id, "write failed: {e}");
                        self.close_for(CloseReason::Io);
                    }
                }
            }
        }
    }

    fn give_up_writer(&self, q: MutexGuard<'_, Queue>) {
        self.0.hot.writer.store(false, Ordering::Relaxed);
        drop(q);
        self.0.wake.notify_one();
    }

    /// Called by the connection's task once its reader stopped: waits for a running writer
    /// task to end, then writes what is left unless the connection was killed, waiting for the
    /// socket as long as it takes, and shuts the socket's sending side if the connection was
    /// closing (QUIT, a protocol error, shutdown). Without a socket the writer task does this.
    pub async fn finish(&self) {
        let s = &*self.0;
        let Some(sink) = s.hot.sink.clone() else {
            return;
        };
        loop {
            let woken = s.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            {
                let _q = s.queue.0.lock();
                if !s.hot.writer.load(Ordering::Relaxed) {
                    s.hot.writer.store(true, Ordering::Relaxed);
                    break;
                }
            }
            woken.await;
        }
        loop {
            if s.hot.state.load(Ordering::Acquire) == KILLED {
                return;
            }
            // As the writer, but never giving the role up: nobody starts another now.
            match self.write_pass(s.queue.0.lock(), &sink, Via::Ready, false) {
                Pass::Idle => break,
                Pass::More => {}
                Pass::Full => {
                    let ready = tokio::select! {
                        r = std::future::poll_fn(|cx| sink.poll_writable(cx)) => r,
                        _ = self.killed() => return,
                    };
                    if ready.is_err() {
                        self.close_for(CloseReason::Io);
                        return;
                    }
                }
            }
        }
        if s.hot.state.load(Ordering::Acquire) == CLOSING {
            let _ = socket2::SockRef::from(&sink.as_fd()).shutdown(std::net::Shutdown::Write);
        }
    }

    /// Queues a frame without writing it. When the queue was empty the caller must `flush` it
    /// later: a reader that fans out a pipeline of PUBLISH commands flushes each subscriber
    /// once per batch, so the batch goes out in one write.
    pub fn push_deferred(&self, frame: Bytes) -> Pushed {
        if frame.len() <= COPY_MAX_FRAME {
            self.enqueue_small(Small::Owned(frame))
        } else {
            self.enqueue_frame(frame)
        }
    }

    /// `push_deferred` for a frame fanned out to `receivers` clients: copied when it is small
    /// and has few receivers, shared (cloned) otherwise.
    #[inline]
    pub fn push_shared_deferred(&self, frame: &Bytes, receivers: usize) -> Pushed {
        if receivers <= COPY_MAX_RECEIVERS && frame.len() <= COPY_MAX_FRAME {
            self.enqueue_small(Small::Borrowed(frame))
        } else {
            self.enqueue_frame(frame.clone())
        }
    }

    /// Queues a message the client's own running command delivers to itself (a PUBLISH to a
    /// channel it is subscribed to). Redis 7.2 writes such pushes after the command's reply
    /// (after the whole EXEC reply in a transaction): the message is held, with everything
    /// queued behind it, until `release_held`, and the command's replies (`push_own`) go before
    /// it. Frames other publishers queue meanwhile stay behind it, so every subscriber still
    /// sees one order of a channel's messages. Called only by the client's own reader.
    pub fn push_held(&self, frame: &Bytes) -> Pushed {
        let s = &*self.0;
        if s.hot.state.load(Ordering::Acquire) != OPEN {
            return Pushed::Dropped;
        }
        let mut q = s.queue.0.lock();
        q.flush_tail();
        let at = q.frame_count() as u32;
        q.spill().frames.push_back(frame.clone());
        if q.held_from == NOT_HELD {
            q.held_from = at;
            s.holding.store(true, Ordering::Relaxed);
        }
        // The writer is woken by `release_held`.
        self.queued(q, frame.len(), false)
    }

    /// Queues a reply (or subscribe confirmation) of the client's own command: ahead of the
    /// messages it holds, if any (see `push_held`), otherwise as `push_deferred`. Called only by
    /// the client's own reader, which flushes its outbox once the batch of commands is done.
    pub fn push_own(&self, frame: Bytes) -> bool {
        let s = &*self.0;
        if !s.holding.load(Ordering::Relaxed) {
            return self.push_deferred(frame) != Pushed::Dropped;
        }
        if s.hot.state.load(Ordering::Acquire) != OPEN {
            return false;
        }
        let len = frame.len();
        let mut q = s.queue.0.lock();
        if q.held_from == NOT_HELD {
            drop(q);
            return self.push_deferred(frame) != Pushed::Dropped;
        }
        let at = q.held_from as usize;
        q.spill().frames.insert(at, frame);
        q.held_from += 1;
        self.queued(q, len, at == 0) != Pushed::Dropped
    }

    /// Holds back everything queued, from now on, until `open_gate`: the client's own reader
    /// closes it around a SUBSCRIBE whose confirmation must wait (see `server::connection`).
    pub fn gate(&self) {
        self.0.queue.0.lock().gated = true;
    }

    /// Lets the writer go on with everything queued, in order (written at the reader's next
    /// flush).
    pub fn open_gate(&self) {
        self.0.queue.0.lock().gated = false;
    }

    /// Whether the running command held messages to itself (`push_held`).
    pub fn is_holding(&self) -> bool {
        self.0.holding.load(Ordering::Relaxed)
    }

    /// Lets the held messages go, after the command's reply (written at the reader's next
    /// flush).
    pub fn release_held(&self) {
        let s = &*self.0;
        s.holding.store(false, Ordering::Relaxed);
        s.queue.0.lock().held_from = NOT_HELD;
    }

    fn enqueue_frame(&self, frame: Bytes) -> Pushed {
        let s = &*self.0;
        if s.hot.state.load(Ordering::Acquire) != OPEN {
            return Pushed::Dropped;
        }
        let len = frame.len();
        let mut q = s.queue.0.lock();
        let was_empty = q.is_empty();
        q.flush_tail();
        q.push_back(frame);
        self.queued(q, len, was_empty)
    }

    /// A small frame is copied into the tail buffer, except the first one into an empty queue
    /// of a connection that has no `more` yet, which is kept in the queue's line: a connection
    /// only gets a tail buffer once frames queue up behind each other, so idle ones (a
    /// subscription's confirmation, a rare message) keep no buffer.
    fn enqueue_small(&self, frame: Small<'_>) -> Pushed {
        let s = &*self.0;
        if s.hot.state.load(Ordering::Acquire) != OPEN {
            return Pushed::Dropped;
        }
        let len = frame.as_slice().len();
        let mut q = s.queue.0.lock();
        let was_empty = q.is_empty();
        if was_empty && q.more.is_none() {
            // Into the queue's own line: most connections never have more queued.
            q.head = Some(frame.into_bytes());
        } else {
            q.copy(frame.as_slice());
        }
        self.queued(q, len, was_empty)
    }

    /// Counts `len` more bytes queued, applies the output limit, and says whether to wake.
    #[inline]
    fn queued(&self, mut q: MutexGuard<'_, Queue>, len: usize, was_empty: bool) -> Pushed {
        q.bytes += len;
        let pending = q.bytes;
        if self.0.hot.pubsub.load(Ordering::Relaxed) && self.over_limit(pending as u64) {
            q.clear();
            drop(q);
            self.kill_slow_consumer(pending);
            return Pushed::Dropped;
        }
        drop(q);
        if was_empty {
            Pushed::NeedsWake
        } else {
            Pushed::Queued
        }
    }

    /// Redis's `checkClientOutputBufferLimits`: over the hard limit, or over the soft limit for
    /// longer than the soft seconds (measured from the first push that went over it).
    /// Called under the queue's lock, which orders the updates of `soft_since`.
    fn over_limit(&self, pending: u64) -> bool {
        let s = &*self.0;
        let (hard, soft, soft_secs) = s.hot.limits.get();
        if hard > 0 && pending >= hard {
            return true;
        }
        if soft > 0 && pending >= soft {
            let now = Instant::now();
            match s.hot.soft_since.load(Ordering::Relaxed) {
                0 => {
                    let since = now.duration_since(s.hot.limits.origin).as_nanos() as u64 + 1;
                    s.hot.soft_since.store(since, Ordering::Relaxed);
                }
                since => {
                    let t = s.hot.limits.origin + Duration::from_nanos(since - 1);
                    if now.duration_since(t).as_secs() > soft_secs {
                        return true;
                    }
                }
            }
        } else if s.hot.soft_since.load(Ordering::Relaxed) != 0 {
            s.hot.soft_since.store(0, Ordering::Relaxed);
        }
        false
    }

    fn kill_slow_consumer(&self, pending: usize) {
        let s = &*self.0;
        if s.hot.state.swap(KILLED, Ordering::AcqRel) == KILLED {
            return;
        }
        s.slow_consumer_bytes
            .store(pending as u64, Ordering::Relaxed);
        self.decide_close(CloseReason::SlowConsumer);
        s.stats
            .client_output_buffer_limit_disconnections
            .fetch_add(1, Ordering::Relaxed);
        // The writer logs the one warning line for it, with the client's address.
        tracing::debug!(
            client_id = s.hot.id,
            pending_bytes = pending,
            "client scheduled to be closed ASAP for overcoming of output buffer limits"
        );
        s.reader.wake();
        s.wake.notify_one();
        s.drained.notify_waiters();
    }

    /// Resolves once the connection must close now (killed, slow consumer, peer gone): writers
    /// race their socket waits against it, so a kill takes effect even while a write to a
    /// stalled peer is pending.
    pub async fn killed(&self) {
        loop {
            let woken = self.0.drained.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.is_killed() {
                return;
            }
            woken.await;
        }
    }

    /// Wakes the client's reader if it waits for input, or the next time it does.
    pub fn wake_reader(&self) {
        self.0.reader.wake();
    }

    /// What the reader waits on beside its socket: a kill, or `wake_reader` (each wake-up is
    /// seen once; one that came while the reader was busy is seen at its next wait).
    pub fn poll_reader_woken(&self, cx: &mut Context<'_>) -> Poll<()> {
        let r = &self.0.reader;
        r.waker.register(cx.waker());
        if r.woken.swap(false, Ordering::AcqRel) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Has `waker` woken by the next `wake_reader` (or kill) instead of the reader, which is
    /// not waiting: true if a wake-up came already (it stays to be seen by the reader).
    pub fn watch_reader(&self, waker: &Waker) -> bool {
        let r = &self.0.reader;
        r.waker.register(waker);
        r.woken.load(Ordering::Acquire)
    }

    /// Closes the connection once everything queued so far is written.
    pub fn close_after_flush(&self) {
        let _ =
            self.0
                .hot
                .state
                .compare_exchange(OPEN, CLOSING, Ordering::AcqRel, Ordering::Acquire);
        self.0.wake.notify_one();
        self.0.drained.notify_waiters();
    }

    /// Closes the connection now, dropping what is queued (`CloseReason::Killed`, unless
    /// another reason was decided first).
    pub fn kill(&self) {
        self.close_for(CloseReason::Killed);
    }

    /// Closes the connection now for `reason`, dropping what is queued.
    pub fn close_for(&self, reason: CloseReason) {
        self.decide_close(reason);
        if self.0.hot.state.swap(KILLED, Ordering::AcqRel) != KILLED {
            self.0.queue.0.lock().clear();
        }
        self.0.reader.wake();
        self.0.wake.notify_one();
        self.0.drained.notify_waiters();
    }

    /// Moves every queued frame into `out` (the writer's batch); waits if there are none.
    pub async fn next_batch(&self, out: &mut VecDeque<Bytes>) -> Batch {
        let s = &*self.0;
        loop {
            let notified = s.wake.notified();
            {
                let state = s.hot.state.load(Ordering::Acquire);
                if state == KILLED {
                    return Batch::Killed;
                }
                let mut q = s.queue.0.lock();
                if q.take(out) {
                    return Batch::Frames;
                }
                // While a `flush` writes, wait for it: it wakes the writer when it is done.
                if state == CLOSING && !q.writing {
                    return Batch::Closing;
                }
            }
            notified.await;
        }
    }

    /// Takes whatever is queued without waiting (used to flush at shutdown).
    /// Whether a `flush` (or the writer) is writing frames it took.
    pub fn is_writing(&self) -> bool {
        self.0.queue.0.lock().writing
    }

    pub fn try_batch(&self, out: &mut VecDeque<Bytes>) -> bool {
        if self.is_killed() {
            return false;
        }
        self.0.queue.0.lock().take(out)
    }

    /// The writer task wrote `n` bytes of the frames it took (all of them): others may take
    /// frames again, and a reader paused by backpressure is woken when the queue drains below
    /// `READ_PAUSE_BYTES`. Returns the bytes still queued.
    pub fn written(&self, n: usize) -> usize {
        let mut q = self.0.queue.0.lock();
        q.writing = false;
        self.account(q, n)
    }

    /// Counts `n` bytes written and releases the queue's lock; returns the bytes still queued.
    fn account(&self, mut q: MutexGuard<'_, Queue>, n: usize) -> usize {
        let before = q.bytes;
        let after = before.saturating_sub(n);
        q.bytes = after;
        drop(q);
        // Per connection, summed by INFO: writers on different cores share no counter.
        self.0
            .hot
            .written_bytes
            .fetch_add(n as u64, Ordering::Relaxed);
        if before >= READ_PAUSE_BYTES && after < READ_PAUSE_BYTES {
            self.0.drained.notify_waiters();
        }
        after
    }

    /// Gives back the queue's allocations if nothing is queued: the housekeeping task calls it
    /// once a minute for every client, as Redis's `clientsCron` shrinks the buffers of idle
    /// clients, so a connection that queued up frames once (the tail buffer) holds nothing
    /// while it idles, and a busy one keeps them between its writes.
    pub fn release_idle(&self) {
        let mut q = self.0.queue.0.lock();
        if q.is_empty() && !q.writing {
            q.more = None;
        }
    }

    /// Bytes written to the client so far.
    pub fn written_bytes(&self) -> u64 {
        self.0.hot.written_bytes.load(Ordering::Relaxed)
    }

    /// Waits until the queue is below the read-pause watermark (or the client is closing).
    pub async fn wait_below_watermark(&self) {
        loop {
            let notified = self.0.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.pending() < READ_PAUSE_BYTES || !self.is_open() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(h: u64, s: u64, secs: u64) -> Outbox {
        Outbox::new(
            1,
            Arc::new(OutputLimits::new(h, s, secs)),
            Arc::new(Stats::default()),
        )
    }

    #[tokio::test]
    async fn frames_come_out_in_order() {
        let o = outbox(0, 0, 0);
        o.push(Bytes::from_static(b"a"));
        o.push(Bytes::from_static(b"b"));
        assert_eq!(o.pending(), 2);
        assert_eq!(drain(&o).await, b"ab");
        assert_eq!(o.pending(), 0);
    }

    #[tokio::test]
    async fn hard_limit_kills_pubsub_clients_only() {
        let o = outbox(10, 0, 0);
        assert!(
            o.push(Bytes::from(vec![0u8; 20])),
            "normal clients are not limited"
        );
        let o = outbox(10, 0, 0);
        o.set_pubsub(true);
        assert!(o.push(Bytes::from(vec![0u8; 5])));
        assert!(!o.push(Bytes::from(vec![0u8; 5])));
        assert!(o.was_slow_consumer());
        let mut out = VecDeque::new();
        assert_eq!(o.next_batch(&mut out).await, Batch::Killed);
    }

    #[tokio::test(start_paused = true)]
    async fn soft_limit_needs_to_last() {
        let o = outbox(0, 10, 2);
        o.set_pubsub(true);
        assert!(o.push(Bytes::from(vec![0u8; 12])));
        tokio::time::advance(std::time::Duration::from_secs(2)).await;
        assert!(
            o.push(Bytes::from(vec![0u8; 1])),
            "2s is not longer than 2s"
        );
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        assert!(!o.push(Bytes::from(vec![0u8; 1])));
    }

    #[tokio::test(start_paused = true)]
    async fn soft_timer_resets_below_the_limit() {
        let o = outbox(0, 10, 2);
        o.set_pubsub(true);
        assert!(o.push(Bytes::from(vec![0u8; 12])));
        let mut out = VecDeque::new();
        o.next_batch(&mut out).await;
        o.written(12);
        assert!(o.push(Bytes::from(vec![0u8; 1])));
        tokio::time::advance(std::time::Duration::from_secs(5)).await;
        assert!(o.push(Bytes::from(vec![0u8; 12])));
    }

    async fn drain(o: &Outbox) -> Vec<u8> {
        let mut out = VecDeque::new();
        assert_eq!(o.next_batch(&mut out).await, Batch::Frames);
        let mut all = Vec::new();
        for f in out {
            all.extend_from_slice(&f);
        }
        o.written(all.len());
        all
    }

    #[tokio::test]
    async fn copied_and_shared_frames_keep_their_order() {
        let o = outbox(0, 0, 0);
        let big = Bytes::from(vec![b'L'; COPY_MAX_FRAME + 1]);
        let fanned = Bytes::from_static(b"F");
        let mut want = Vec::new();
        for (i, f) in [
            Bytes::from_static(b"a"),
            big.clone(),
            Bytes::from_static(b"b"),
        ]
        .into_iter()
        .enumerate()
        {
            want.extend_from_slice(&f);
            if i == 1 {
                o.push_shared_deferred(&f, 1);
            } else {
                o.push(f);
            }
        }
        o.push_shared_deferred(&fanned, COPY_MAX_RECEIVERS + 1);
        o.push_shared_deferred(&fanned, 1);
        want.extend_from_slice(b"FF");
        assert_eq!(o.pending(), want.len());
        assert_eq!(
            o.queued_frames(),
            5,
            "a | big | b | F (shared) | F (the tail)"
        );
        assert_eq!(drain(&o).await, want);
        assert_eq!(o.pending(), 0);
        // The tail is reused and still in order after a drain.
        o.push(Bytes::from_static(b"c"));
        assert_eq!(drain(&o).await, b"c");
    }

    #[tokio::test]
    async fn a_growing_queue_is_kept_in_bounded_chunks() {
        let o = outbox(0, 0, 0);
        let mut want = Vec::new();
        for i in 0..100u8 {
            let f = Bytes::from(vec![i; 1000]);
            want.extend_from_slice(&f);
            o.push(f);
        }
        let mut out = VecDeque::new();
        assert_eq!(o.next_batch(&mut out).await, Batch::Frames);
        assert!(out.len() >= want.len() / TAIL_CHUNK);
        assert!(out.iter().all(|c| c.len() <= TAIL_CHUNK));
        let got: Vec<u8> = out.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn a_lone_frame_allocates_no_tail_buffer() {
        let o = outbox(0, 0, 0);
        o.push(Bytes::from_static(b"confirmation"));
        {
            let q = o.0.queue.0.lock();
            assert!(
                q.head.is_some() && q.more.is_none(),
                "kept in the queue's line"
            );
        }
        assert_eq!(drain(&o).await, b"confirmation");
        o.push(Bytes::from_static(b"1"));
        o.push(Bytes::from_static(b"2"));
        assert!(
            o.0.queue
                .0
                .lock()
                .more
                .as_ref()
                .is_some_and(|m| !m.tail.is_empty()),
            "frames queued up: copied"
        );
        assert_eq!(drain(&o).await, b"12");
    }

    #[test]
    fn a_push_touches_one_cache_line() {
        assert!(std::mem::size_of::<Mutex<Queue>>() <= 64);
        assert_eq!(std::mem::align_of::<Line<Mutex<Queue>>>(), 64);
    }

    #[tokio::test]
    async fn held_frames_follow_own_replies_and_keep_later_pushes_behind() {
        let o = outbox(0, 0, 0);
        o.push(Bytes::from_static(b"a"));
        o.push_held(&Bytes::from_static(b"H"));
        o.push(Bytes::from_static(b"o"));
        let mut out = VecDeque::new();
        assert_eq!(o.next_batch(&mut out).await, Batch::Frames);
        assert_eq!(
            out.iter().flat_map(|f| f.to_vec()).collect::<Vec<_>>(),
            b"a"
        );
        o.written(1);
        o.push_own(Bytes::from_static(b"r1"));
        o.push_own(Bytes::from_static(b"r2"));
        assert_eq!(drain(&o).await, b"r1r2");
        o.release_held();
        assert!(!o.is_holding());
        assert_eq!(drain(&o).await, b"Ho");
    }

    #[tokio::test]
    async fn kill_drops_copied_frames_too() {
        let o = outbox(0, 0, 0);
        o.push(Bytes::from_static(b"x"));
        o.kill();
        assert_eq!(o.pending(), 0);
        assert_eq!(o.queued_frames(), 0);
        let mut out = VecDeque::new();
        assert_eq!(o.next_batch(&mut out).await, Batch::Killed);
    }

    /// An outbox whose sink is one end of a socket pair; the other end is returned.
    fn with_socket() -> (Outbox, std::os::unix::net::UnixStream) {
        let (ours, peer) = std::os::unix::net::UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let ours = tokio::net::UnixStream::from_std(ours).unwrap();
        let o = Outbox::with_sink(
            1,
            Arc::new(OutputLimits::new(0, 0, 0)),
            Arc::new(Stats::default()),
            Some(Arc::new(ours) as Socket),
        );
        (o, peer)
    }

    /// `with_socket`, with a send buffer small enough that a test fills it.
    fn with_small_socket() -> (Outbox, std::os::unix::net::UnixStream) {
        let (o, peer) = with_socket();
        let sink = o.0.hot.sink.clone().unwrap();
        socket2::SockRef::from(&sink.as_fd())
            .set_send_buffer_size(4096)
            .unwrap();
        (o, peer)
    }

    /// Reads from the peer until `len` bytes came (what a writer task writes meanwhile).
    async fn read_until(peer: &mut std::os::unix::net::UnixStream, len: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while got.len() < len {
            assert!(
                std::time::Instant::now() < deadline,
                "only {} of {len} bytes came",
                got.len()
            );
            got.extend(read_now(peer));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        got
    }

    fn has_writer(o: &Outbox) -> bool {
        o.0.hot.writer.load(Ordering::Relaxed)
    }

    /// What the peer can read now, without waiting.
    fn read_now(peer: &mut std::os::unix::net::UnixStream) -> Vec<u8> {
        use std::io::Read;
        peer.set_nonblocking(true).unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0; 1 << 16];
        loop {
            match peer.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        got
    }

    #[tokio::test]
    async fn flush_writes_from_the_calling_thread() {
        let (o, mut peer) = with_socket();
        for f in [&b"one"[..], b"two", b"three"] {
            o.push_deferred(Bytes::copy_from_slice(f));
        }
        o.flush();
        assert_eq!(read_now(&mut peer), b"onetwothree");
        assert_eq!(o.pending(), 0);
        assert_eq!(o.written_bytes(), 11);
        assert!(!o.is_writing());
    }

    #[tokio::test]
    async fn what_the_socket_does_not_take_goes_to_the_writer_first() {
        let (o, mut peer) = with_small_socket();
        // More than the socket's small buffer holds, in frames of every size.
        let mut want = Vec::new();
        for i in 0..24u8 {
            let f = if i % 8 == 0 {
                Bytes::from(vec![i; COALESCE_MAX + 1])
            } else {
                Bytes::from(vec![i; 50 * i as usize + 1])
            };
            want.extend_from_slice(&f);
            o.push_deferred(f);
        }
        o.flush();
        let mut got = read_now(&mut peer);
        assert!(got.len() < want.len(), "the socket took everything");
        assert_eq!(o.pending(), want.len() - got.len());
        assert!(has_writer(&o), "a writer task took over what is left");
        o.push_deferred(Bytes::from_static(b"later"));
        want.extend_from_slice(b"later");
        // Left to the writer task, which writes everything in order as the peer reads.
        o.flush();
        let rest = want.len() - got.len();
        got.extend(read_until(&mut peer, rest).await);
        assert_eq!(got, want);
        assert_eq!(o.pending(), 0);
        // Once nothing is left, the writer task ends; the next flush writes from here again.
        while has_writer(&o) {
            tokio::task::yield_now().await;
        }
        o.push_deferred(Bytes::from_static(b"again"));
        o.flush();
        assert_eq!(read_now(&mut peer), b"again");
        assert!(!has_writer(&o));
    }

    #[tokio::test]
    async fn a_push_from_elsewhere_starts_a_writer_task_that_ends_when_done() {
        let (o, mut peer) = with_socket();
        assert!(o.push(Bytes::from_static(b"monitor line")));
        assert!(has_writer(&o));
        assert_eq!(read_until(&mut peer, 12).await, b"monitor line");
        while has_writer(&o) {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn finish_writes_what_is_left_then_shuts_the_socket() {
        use std::io::Read;
        let (o, mut peer) = with_small_socket();
        let big = Bytes::from(vec![7u8; 256 * 1024]);
        o.push_deferred(big.clone());
        o.push_deferred(Bytes::from_static(b"bye"));
        o.flush();
        o.close_after_flush();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            peer.set_nonblocking(false).unwrap();
            peer.read_to_end(&mut all).unwrap();
            all
        });
        o.finish().await;
        let all = reader.join().unwrap();
        assert_eq!(all.len(), big.len() + 3, "everything, then end of stream");
        assert!(all.ends_with(b"bye"));
    }

    #[tokio::test]
    async fn an_empty_queue_gives_its_allocations_back() {
        let o = outbox(0, 0, 0);
        for _ in 0..3 {
            o.push(Bytes::from_static(b"m"));
        }
        o.release_idle();
        assert_eq!(o.queued_frames(), 2, "a queue with frames keeps everything");
        assert_eq!(drain(&o).await, b"mmm");
        assert!(
            o.0.queue.0.lock().more.is_some(),
            "the tail buffer stays allocated"
        );
        o.release_idle();
        let q = o.0.queue.0.lock();
        assert!(q.head.is_none() && q.more.is_none());
    }

    #[tokio::test]
    async fn finish_after_a_kill_writes_nothing() {
        let (o, mut peer) = with_small_socket();
        o.push_deferred(Bytes::from(vec![1u8; 256 * 1024]));
        o.flush();
        let before = read_now(&mut peer).len();
        o.kill();
        o.finish().await;
        assert!(before < 256 * 1024);
        assert_eq!(o.pending(), 0);
    }

    #[tokio::test]
    async fn a_failed_write_closes_the_connection() {
        let (o, peer) = with_socket();
        drop(peer);
        o.push_deferred(Bytes::from_static(b"x"));
        o.flush();
        assert_eq!(o.close_reason(), Some(CloseReason::Io));
        let mut out = VecDeque::new();
        assert_eq!(o.next_batch(&mut out).await, Batch::Killed);
    }

    #[tokio::test]
    async fn closing_flushes_first() {
        let o = outbox(0, 0, 0);
        o.push(Bytes::from_static(b"x"));
        o.close_after_flush();
        assert!(!o.push(Bytes::from_static(b"y")));
        let mut out = VecDeque::new();
        assert_eq!(o.next_batch(&mut out).await, Batch::Frames);
        out.clear();
        o.written(1);
        assert_eq!(o.next_batch(&mut out).await, Batch::Closing);
    }
}
