//! The relay: the limit of pub/sub forwarding on one core, measured beside the real servers.
//!
//! `--relay` starts this binary again as `loadgen --relay-serve --port N`, so it is launched,
//! pinned, measured and killed by PID like any other server. It is the least a server can do to
//! pass the load generator's delivery checks in the fan-out and many-channel scenarios: one
//! thread, level-triggered epoll over non-blocking sockets, and no command parsing beyond
//! finding frame boundaries and the command name. It answers `PING` (`+PONG`), `SUBSCRIBE ch…`
//! (RESP2 confirmations) and `PUBLISH ch msg` (`:<receivers>`), refuses anything else with an
//! error, and closes a connection whose framing it cannot follow.
//!
//! Nothing is encoded. A PUBLISH frame `*3\r\n$7\r\nPUBLISH\r\n$<n>\r\n<ch>\r\n$<m>\r\n
//! <payload>\r\n` ends with exactly the bytes a `message` frame ends with, so the message is the
//! static [`MESSAGE_HEAD`] followed by that tail. Everything one read of a publisher connection
//! holds is handled as one batch: the replies go back to the publisher first (so it can send
//! its next commands while the batch fans out), then each subscriber gets one `writev` (in runs
//! of `UIO_MAXIOV` iovecs) of all its messages from that read. A subscriber whose socket is
//! full is waited for (`poll`), not buffered for: subscribers in these scenarios read as fast
//! as they can, and the relay is an upper bound, not a server.
//!
//! Each message is copied once per channel per read, into a batch of that channel's messages
//! (`batches`), and the batch is what every subscriber of the channel is sent: one
//! iovec per subscriber, not two per delivery. Two iovecs per delivery (the static head and the
//! tail still in the read buffer, copying nothing in user space) was measured first and is far
//! from the limit: the kernel pays per iovec in `_copy_from_iter` (62 % of the relay's samples),
//! and on a 2-vCPU Xeon VM, one pinned core each, it forwarded 14–17M deliveries per CPU-second
//! in `fanout` and `fanout-w1k` against 50–61M for the batch, which left the load generator's
//! one core the bottleneck. (Replying before the fan-out was worth about 15 % with two iovecs per
//! delivery, nothing measurable with batches; it stays as the better pipeline.)
//!
//! As in Redis, a subscribed connection may not PUBLISH (RESP2 subscribe context), so the
//! connection being served is never among its own receivers, and replies to it cannot overtake
//! or fall behind deliveries to it.
//!
//! `unsafe` here is the system calls std has no wrapper for (epoll, `writev` over borrowed
//! iovecs, `poll`); the library's `#![forbid(unsafe_code)]` does not reach benches.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Read as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};

use anyhow::{bail, Context as _, Result};

use crate::patterns::Shape;
use crate::scenario::{Params, Scenario};
use crate::server::{Running, ServerSpec};

/// The first bytes of every RESP2 `message` frame; the rest is the PUBLISH frame's tail.
pub const MESSAGE_HEAD: &[u8] = b"*3\r\n$7\r\nmessage\r\n";
/// epoll token of the listening socket; connections use their slot index.
const LISTENER: u64 = u64::MAX;
/// A connection's first read buffer; buffers this small are released when they run empty, so
/// 10,000 idle subscribers hold none.
const INITIAL_BUF: usize = 4 * 1024;
/// A publisher's read buffer doubles while reads fill it, up to this: more publishes per read
/// means fewer, larger writes per subscriber.
const MAX_READ_BUF: usize = 4 * 1024 * 1024;
/// Largest bulk string or argument count accepted; the load generator's are far smaller.
const MAX_BULK: usize = 1024 * 1024;
const MAX_ARGS: usize = 1024 * 1024;
/// An inline command longer than this is not the readiness probe's PING.
const MAX_INLINE: usize = 1024;
/// Redis's subscribe-context refusal, for a subscribed connection that publishes.
const ERR_CONTEXT: &[u8] = b"-ERR Can't execute 'publish': only (P|S)SUBSCRIBE / \
    (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n";
const ERR_UNKNOWN: &[u8] =
    b"-ERR the relay knows only PING, SUBSCRIBE channel [channel ...] and PUBLISH channel message\r\n";

/// Serves on 127.0.0.1:`port` until killed.
pub fn serve(port: u16) -> Result<()> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    sock.bind(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    // As deep as Redis's default tcp-backlog allows, so subscribers connecting 256 at a time
    // are not dropped and retried.
    sock.listen(511)?;
    sock.set_nonblocking(true)?;
    let mut relay = Relay::new(sock.into())?;
    relay.run()
}

/// One client connection.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Channel ids this connection subscribed, in order (the confirmation's count).
    channels: Vec<u32>,
}

struct Relay {
    epoll: OwnedFd,
    listener: TcpListener,
    /// Connections by slot; a slot is `None` while free or while its connection is served.
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    ids: HashMap<Vec<u8>, u32, BuildHasherDefault<Fnv>>,
    /// Subscriber slots per channel id.
    subscribers: Vec<Vec<usize>>,
    /// Per channel id: its `message` frames from the current read, back to back.
    batches: Vec<Vec<u8>>,
    /// Channels with something in `batches`, each once.
    batched: Vec<u32>,
    /// Per slot: what it is owed from the current read, as runs `(channel, start, end)` of
    /// `batches`; consecutive messages of one channel make one run.
    pending: Vec<Vec<(u32, u32, u32)>>,
    /// Slots with something in `pending`, each once.
    touched: Vec<usize>,
    /// Replies to the connection being served.
    out: Vec<u8>,
    /// Subscribers whose socket failed during a flush, closed after it.
    dead: Vec<usize>,
    iov: Vec<libc::iovec>,
}

impl Relay {
    fn new(listener: TcpListener) -> Result<Self> {
        // SAFETY: epoll_create1 returns a new descriptor or -1; the OwnedFd then owns it.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            return Err(io::Error::last_os_error()).context("epoll_create1");
        }
        let epoll = unsafe { OwnedFd::from_raw_fd(epfd) };
        epoll_add(epoll.as_raw_fd(), listener.as_raw_fd(), LISTENER)?;
        Ok(Self {
            epoll,
            listener,
            conns: Vec::new(),
            free: Vec::new(),
            ids: HashMap::default(),
            subscribers: Vec::new(),
            batches: Vec::new(),
            batched: Vec::new(),
            pending: Vec::new(),
            touched: Vec::new(),
            out: Vec::new(),
            dead: Vec::new(),
            iov: Vec::new(),
        })
    }

    fn run(&mut self) -> Result<()> {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
        loop {
            // SAFETY: `events` has room for the count passed.
            let n = unsafe {
                libc::epoll_wait(
                    self.epoll.as_raw_fd(),
                    events.as_mut_ptr(),
                    events.len() as libc::c_int,
                    -1,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e).context("epoll_wait");
            }
            for ev in &events[..n as usize] {
                let token = ev.u64;
                if token == LISTENER {
                    self.accept()?;
                } else {
                    self.serve(token as usize);
                }
            }
        }
    }

    fn accept(&mut self) -> Result<()> {
        loop {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(e).context("accept"),
            };
            stream.set_nonblocking(true)?;
            stream.set_nodelay(true)?;
            let fd = stream.as_raw_fd();
            let conn = Conn {
                stream,
                buf: Vec::new(),
                start: 0,
                end: 0,
                channels: Vec::new(),
            };
            let slot = match self.free.pop() {
                Some(i) => {
                    self.conns[i] = Some(conn);
                    i
                }
                None => {
                    self.conns.push(Some(conn));
                    self.pending.push(Vec::new());
                    self.conns.len() - 1
                }
            };
            epoll_add(self.epoll.as_raw_fd(), fd, slot as u64)?;
        }
    }

    /// Reads once from a readable connection and acts on every complete command in its buffer.
    fn serve(&mut self, slot: usize) {
        // A stale event for a slot closed earlier in the same batch finds nothing (or, if the
        // slot was reused, a read that would block).
        let Some(mut c) = self.conns.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let keep = self.read_and_handle(slot, &mut c);
        if keep {
            self.conns[slot] = Some(c);
        } else {
            self.close(slot, c);
        }
        while let Some(d) = self.dead.pop() {
            if let Some(c) = self.conns[d].take() {
                self.close(d, c);
            }
        }
    }

    /// Returns whether the connection stays open.
    fn read_and_handle(&mut self, slot: usize, c: &mut Conn) -> bool {
        let cap = c.buf.len();
        if c.end + cap / 4 >= cap {
            // Keep the tail roomy: move the partial command (usually small) to the front.
            if c.start > 0 {
                c.buf.copy_within(c.start..c.end, 0);
                c.end -= c.start;
                c.start = 0;
            }
            if c.end + cap / 4 >= cap {
                c.buf.resize((cap * 2).max(INITIAL_BUF), 0);
            }
        }
        let room = c.buf.len() - c.end;
        let n = match (&c.stream).read(&mut c.buf[c.end..]) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                return true
            }
            Err(_) => return false,
        };
        c.end += n;
        let mut keep = true;
        loop {
            match parse(&c.buf[..c.end], c.start) {
                Ok(Some(cmd)) => {
                    self.handle(slot, &c.buf, &mut c.channels, &cmd);
                    c.start = cmd.end;
                }
                Ok(None) => break,
                Err(why) => {
                    self.out.extend_from_slice(b"-ERR Protocol error: ");
                    self.out.extend_from_slice(why.as_bytes());
                    self.out.extend_from_slice(b"\r\n");
                    keep = false;
                    break;
                }
            }
        }
        if !self.out.is_empty() {
            let mut iov = [iovec(&self.out)];
            if write_all_iov(c.stream.as_raw_fd(), &mut iov).is_err() {
                keep = false;
            }
            self.out.clear();
        }
        self.flush_deliveries();
        if c.start == c.end {
            c.start = 0;
            c.end = 0;
        }
        if n == room && c.buf.len() < MAX_READ_BUF {
            // The read filled the buffer: the next one may take more at once.
            c.buf.resize(c.buf.len() * 2, 0);
        } else if c.end == 0 && c.buf.len() <= INITIAL_BUF {
            c.buf = Vec::new();
        }
        keep
    }

    /// Acts on one command: messages go to `batches` and `pending`, replies to `out`.
    fn handle(&mut self, slot: usize, buf: &[u8], channels: &mut Vec<u32>, cmd: &Command) {
        let name = &buf[cmd.name.0..cmd.name.1];
        if cmd.argc == 3 && name.eq_ignore_ascii_case(b"PUBLISH") {
            if !channels.is_empty() {
                self.out.extend_from_slice(ERR_CONTEXT);
                return;
            }
            let Ok(Some((cs, ce, _))) = bulk(buf, cmd.args) else {
                self.out.extend_from_slice(ERR_UNKNOWN);
                return;
            };
            let receivers = match self.ids.get(&buf[cs..ce]) {
                Some(&id) if !self.subscribers[id as usize].is_empty() => {
                    let batch = &mut self.batches[id as usize];
                    if batch.is_empty() {
                        self.batched.push(id);
                    }
                    let start = batch.len() as u32;
                    batch.extend_from_slice(MESSAGE_HEAD);
                    batch.extend_from_slice(&buf[cmd.args..cmd.end]);
                    let end = batch.len() as u32;
                    let subs = &self.subscribers[id as usize];
                    for &s in subs {
                        let owed = &mut self.pending[s];
                        match owed.last_mut() {
                            Some(run) if run.0 == id && run.2 == start => run.2 = end,
                            last => {
                                if last.is_none() {
                                    self.touched.push(s);
                                }
                                owed.push((id, start, end));
                            }
                        }
                    }
                    subs.len()
                }
                Some(_) => 0,
                None => 0,
            };
            self.out.push(b':');
            self.out
                .extend_from_slice(itoa::Buffer::new().format(receivers).as_bytes());
            self.out.extend_from_slice(b"\r\n");
        } else if cmd.argc >= 2 && name.eq_ignore_ascii_case(b"SUBSCRIBE") {
            let mut p = cmd.args;
            while p < cmd.end {
                let Ok(Some((s, e, next))) = bulk(buf, p) else {
                    break;
                };
                let ch = &buf[s..e];
                let id = match self.ids.get(ch) {
                    Some(&id) => id,
                    None => {
                        let id = self.subscribers.len() as u32;
                        self.ids.insert(ch.to_vec(), id);
                        self.subscribers.push(Vec::new());
                        self.batches.push(Vec::new());
                        id
                    }
                };
                if !channels.contains(&id) {
                    channels.push(id);
                    self.subscribers[id as usize].push(slot);
                }
                let mut ib = itoa::Buffer::new();
                self.out.extend_from_slice(b"*3\r\n$9\r\nsubscribe\r\n$");
                self.out.extend_from_slice(ib.format(ch.len()).as_bytes());
                self.out.extend_from_slice(b"\r\n");
                self.out.extend_from_slice(ch);
                self.out.extend_from_slice(b"\r\n:");
                self.out
                    .extend_from_slice(ib.format(channels.len()).as_bytes());
                self.out.extend_from_slice(b"\r\n");
                p = next;
            }
        } else if cmd.argc == 1 && name.eq_ignore_ascii_case(b"PING") {
            self.out.extend_from_slice(if channels.is_empty() {
                b"+PONG\r\n"
            } else {
                b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"
            });
        } else {
            self.out.extend_from_slice(ERR_UNKNOWN);
        }
    }

    /// Writes every subscriber's share of the current read: one `writev` per subscriber.
    fn flush_deliveries(&mut self) {
        for &s in &self.touched {
            let owed = &mut self.pending[s];
            if let Some(Some(sub)) = self.conns.get(s) {
                self.iov.clear();
                for &(ch, a, b) in owed.iter() {
                    self.iov
                        .push(iovec(&self.batches[ch as usize][a as usize..b as usize]));
                }
                if write_all_iov(sub.stream.as_raw_fd(), &mut self.iov).is_err() {
                    self.dead.push(s);
                }
            }
            owed.clear();
        }
        self.iov.clear();
        self.touched.clear();
        for &ch in &self.batched {
            self.batches[ch as usize].clear();
        }
        self.batched.clear();
    }

    fn close(&mut self, slot: usize, c: Conn) {
        for &ch in &c.channels {
            self.subscribers[ch as usize].retain(|&s| s != slot);
        }
        // Closing the socket also takes it out of the epoll set.
        drop(c);
        self.pending[slot].clear();
        self.free.push(slot);
    }
}

/// FNV-1a: channel names are short, and SipHash's resistance to chosen keys buys a relay
/// nothing.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

fn epoll_add(epoll: RawFd, fd: RawFd, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLRDHUP) as u32,
        u64: token,
    };
    // SAFETY: both descriptors are open; `ev` is a valid event for the call's duration.
    if unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn iovec(b: &[u8]) -> libc::iovec {
    libc::iovec {
        iov_base: b.as_ptr() as *mut libc::c_void,
        iov_len: b.len(),
    }
}

/// Writes every byte `iov` points to, `UIO_MAXIOV` iovecs per `writev`, waiting for the
/// socket to take more when it is full. The slices must outlive the call.
pub fn write_all_iov(fd: RawFd, iov: &mut [libc::iovec]) -> io::Result<()> {
    let max = libc::UIO_MAXIOV as usize;
    let mut i = 0;
    while i < iov.len() {
        let count = (iov.len() - i).min(max);
        // SAFETY: `iov[i..i + count]` describe live slices (the caller's promise). One slice
        // goes through write(2), which skips importing an iovec array.
        let rc = unsafe {
            if count == 1 {
                libc::write(fd, iov[i].iov_base, iov[i].iov_len)
            } else {
                libc::writev(fd, iov[i..].as_ptr(), count as libc::c_int)
            }
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => wait_writable(fd)?,
                io::ErrorKind::Interrupted => {}
                _ => return Err(e),
            }
            continue;
        }
        if rc == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let mut written = rc as usize;
        while written > 0 {
            let len = iov[i].iov_len;
            if written >= len {
                written -= len;
                i += 1;
            } else {
                // SAFETY: `written` < the iovec's length, so the new base is inside its slice.
                iov[i].iov_base = unsafe { (iov[i].iov_base as *mut u8).add(written) }.cast();
                iov[i].iov_len -= written;
                written = 0;
            }
        }
    }
    Ok(())
}

fn wait_writable(fd: RawFd) -> io::Result<()> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    if unsafe { libc::poll(&mut p, 1, -1) } < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// A complete command in a read buffer, by offsets.
#[derive(Debug, PartialEq, Eq)]
struct Command {
    argc: usize,
    /// The command name.
    name: (usize, usize),
    /// Where the second argument's `$` header starts (`end` if there is none).
    args: usize,
    /// Just past the command.
    end: usize,
}

/// Finds the command at `buf[pos..]`: `Ok(None)` until it is complete. A multibulk of bulk
/// strings, or an inline line (the readiness probe's `PING`).
fn parse(buf: &[u8], pos: usize) -> Result<Option<Command>, &'static str> {
    let Some(&first) = buf.get(pos) else {
        return Ok(None);
    };
    if first != b'*' {
        let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) else {
            return if buf.len() - pos > MAX_INLINE {
                Err("too big inline request")
            } else {
                Ok(None)
            };
        };
        let end = pos + nl + 1;
        let mut e = pos + nl;
        if e > pos && buf[e - 1] == b'\r' {
            e -= 1;
        }
        return Ok(Some(Command {
            argc: 1,
            name: (pos, e),
            args: end,
            end,
        }));
    }
    let Some((argc, mut p)) = number(buf, pos + 1)? else {
        return Ok(None);
    };
    if argc == 0 || argc > MAX_ARGS {
        return Err("invalid multibulk length");
    }
    let (mut name, mut args) = ((0, 0), 0);
    for i in 0..argc {
        if i == 1 {
            args = p;
        }
        let Some((s, e, next)) = bulk(buf, p)? else {
            return Ok(None);
        };
        if i == 0 {
            name = (s, e);
        }
        p = next;
    }
    if argc == 1 {
        args = p;
    }
    Ok(Some(Command {
        argc,
        name,
        args,
        end: p,
    }))
}

/// The bulk string at `p`: its content range and the offset past it.
fn bulk(buf: &[u8], p: usize) -> Result<Option<(usize, usize, usize)>, &'static str> {
    let Some(&tag) = buf.get(p) else {
        return Ok(None);
    };
    if tag != b'$' {
        return Err("expected '$'");
    }
    let Some((len, s)) = number(buf, p + 1)? else {
        return Ok(None);
    };
    if len > MAX_BULK {
        return Err("invalid bulk length");
    }
    let e = s + len;
    if buf.len() < e + 2 {
        return Ok(None);
    }
    if &buf[e..e + 2] != b"\r\n" {
        return Err("expected CRLF after a bulk string");
    }
    Ok(Some((s, e, e + 2)))
}

/// A decimal terminated by CRLF at `p`: the value and the offset past the CRLF.
fn number(buf: &[u8], p: usize) -> Result<Option<(usize, usize)>, &'static str> {
    let mut v = 0usize;
    let mut q = p;
    loop {
        match buf.get(q) {
            None => return Ok(None),
            Some(&c @ b'0'..=b'9') if q - p < 12 => v = v * 10 + (c - b'0') as usize,
            Some(b'\r') if q > p => break,
            Some(_) => return Err("bad length in a header"),
        }
        q += 1;
    }
    match buf.get(q + 1) {
        None => Ok(None),
        Some(b'\n') => Ok(Some((v, q + 2))),
        Some(_) => Err("bad line ending in a header"),
    }
}

/// The frame finder, cut at every byte, finds the same commands, and a PUBLISH's tail behind
/// [`MESSAGE_HEAD`] is the `message` frame a subscriber expects; `write_all_iov` delivers more
/// iovecs than one `writev` takes, through partial writes on a small socket buffer, intact.
pub fn self_check() -> Result<()> {
    let mut wire = b"PING\r\n".to_vec();
    crate::resp::encode_command(&mut wire, &[b"SUBSCRIBE", b"a", b"bc"]);
    crate::resp::encode_command(&mut wire, &[b"PUBLISH", b"chan", b"hello"]);
    crate::resp::encode_command(&mut wire, &[b"publish", b"", b""]);
    let mut message = Vec::new();
    crate::resp::encode_command(&mut message, &[b"message", b"chan", b"hello"]);
    for cut in 0..=wire.len() {
        let mut cmds = Vec::new();
        let mut pos = 0;
        for buf in [&wire[..cut], &wire[..]] {
            while let Some(c) = parse(buf, pos).map_err(anyhow::Error::msg)? {
                pos = c.end;
                cmds.push(c);
            }
        }
        let names: Vec<&[u8]> = cmds.iter().map(|c| &wire[c.name.0..c.name.1]).collect();
        let ok = pos == wire.len()
            && names == [&b"PING"[..], b"SUBSCRIBE", b"PUBLISH", b"publish"]
            && cmds.iter().map(|c| c.argc).eq([1, 3, 3, 3])
            && [MESSAGE_HEAD, &wire[cmds[2].args..cmds[2].end]].concat() == message;
        if !ok {
            bail!("relay frame finder self-check failed when the input is cut at byte {cut}: {cmds:?}");
        }
    }
    for bad in [&b"*1\r\n+PING\r\n"[..], b"*x\r\n", b"*1\r\n$4\r\nPINGxx"] {
        if parse(bad, 0).is_ok() {
            bail!(
                "relay frame finder accepted {:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    let (tx, mut rx) = std::os::unix::net::UnixStream::pair()?;
    tx.set_nonblocking(true)?;
    socket2::SockRef::from(&tx).set_send_buffer_size(4096)?;
    let chunks: Vec<Vec<u8>> = (0..3000u32)
        .map(|i| i.to_string().repeat(1 + i as usize % 7).into_bytes())
        .collect();
    let want: Vec<u8> = chunks.concat();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        rx.read_to_end(&mut got).map(|_| got)
    });
    let mut iov: Vec<libc::iovec> = chunks.iter().map(|c| iovec(c)).collect();
    write_all_iov(tx.as_raw_fd(), &mut iov)?;
    drop(tx);
    let got = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))??;
    if got != want {
        bail!(
            "relay writev self-check: {} bytes arrived, {} sent, equal prefix {}",
            got.len(),
            want.len(),
            got.iter().zip(&want).take_while(|(a, b)| a == b).count()
        );
    }
    Ok(())
}

/// The relay, started as `--relay` starts it, passes the load generator's own delivery checks
/// in a short `fanout` with 1,024 publishes in flight (so that reads hold many publishes for
/// each writev) and a short `channels` run over 200 channels.
pub async fn end_to_end_check(work: &std::path::Path) -> Result<()> {
    let spec = ServerSpec::relay()?;
    let p = Params {
        duration: std::time::Duration::from_millis(300),
        window: 1024,
        batch: 64,
        pattern_full_window: false,
        pattern_miss: false,
        pattern_shape: Shape::Mixed,
        pattern_exact_baseline: false,
        rate: 1000.0,
        publishers: 2,
        channels: 200,
        conns: 1,
        latency_subscribers: 1,
        healthy: 1,
    };
    for s in [Scenario::Fanout, Scenario::Channels] {
        let srv = Running::start(&spec, &s.server_opts(&p), work).await?;
        let limit = std::time::Duration::from_secs(60);
        let o = tokio::time::timeout(limit, crate::run::run(s, &srv, &p))
            .await
            .with_context(|| format!("relay self-check ({}) timed out", s.name()))??;
        if !o.problems.is_empty() {
            bail!(
                "relay self-check ({}) failed: {}\n{}",
                s.name(),
                o.problems.join("; "),
                o.tally
            );
        }
    }
    Ok(())
}
