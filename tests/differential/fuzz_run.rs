//! Runs one fuzz case (a differential script of `client: commands` and `client: raw` steps)
//! against the reference and pubsubd, and compares what every client receives, step by step.
//!
//! No quiet period: the protocol says when everything is in. Each step's bytes go out in one
//! write followed by `PING mark<N>`, and the client is read until the last whole frame is that
//! PING's reply (or the server closes the connection). Then every other open client is sent a
//! `PING mark<N>` of its own and read the same way: a server queues a PUBLISH's messages
//! before it answers the publisher, so whatever a step delivered to the others is in before
//! their PING's reply. Only a server that never answers meets a limit (10 s), and that is
//! reported as a difference.
//!
//! Client ids are made equal instead of masked: before the case, each server is sent
//! connections (CLIENT ID, then closed) until the next id is [`FIRST_ID`]; the last of them
//! stays open as the control client. Every connection then takes the next id on both servers,
//! so `{id:c2}` (the id of c2's current connection) is the same number on both and CLIENT ID,
//! HELLO, CLIENT LIST and CLIENT KILL ID are compared exactly. After each connect the control
//! client runs `CLIENT LIST ID <id>` until the server lists it: neither server makes a
//! connection a client before it has accepted it, so a step naming a client that connected a
//! moment earlier would otherwise race the accept on both.
//!
//! Substitutions: `{addr:c2}` is c2's address as the server sees it, `{id:c2}` its id,
//! `{laddr}` the server's own address.
//!
//! Commands whose replies need a mask of their own (see `fuzz_masks`: `unsubscribe-order` and
//! `list-order` for replies in hash-table order, `auth-error-after-reply` for an AUTH that is
//! not the first command of its step) are bracketed with `PING seg<N>a` and `PING seg<N>b`
//! when they are not inside a transaction or a CLIENT REPLY OFF/SKIP segment, and only the
//! frames between the two PINGs' replies go through that mask.

use std::collections::{BTreeMap, HashMap};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::fuzz_gen::CLIENTS;
use crate::fuzz_masks::{self, Ctx};
use crate::report::mismatch;
use crate::resp::{self, escape, Frame};
use crate::runner::{payload, Vars};
use crate::script::{Action, Arg, Piece, Step};

/// The id the first client of a case gets on both servers.
pub const FIRST_ID: u64 = 20;
/// How long a server may take to answer a step before it is reported as not answering.
const LIMIT: Duration = Duration::from_secs(10);
/// The most raw bytes of each server printed with a difference.
const SHOW_RAW: usize = 3000;

struct Conn {
    stream: Option<TcpStream>,
    id: u64,
    local: SocketAddr,
}

/// One server's side of a case.
pub struct Side {
    pub label: String,
    addr: SocketAddr,
    conns: BTreeMap<String, Conn>,
    next_id: u64,
    /// Every client port this side has used, by client name (for the `client-address` mask).
    ports: HashMap<u16, String>,
    /// The control client (the last id-alignment connection): INFO once, then only CLIENT LIST.
    control: TcpStream,
}

/// What one client received during a step.
struct Received {
    bytes: Vec<u8>,
    open: bool,
    /// Set when the server neither answered the PING nor closed within the limit.
    stuck: bool,
}

/// Reads into `buf` until `done(buf)`: `Ok(true)`; `Ok(false)` if the server closed the
/// connection first; `Err(())` if [`LIMIT`] passed.
fn read_until(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    done: impl Fn(&[u8]) -> bool,
) -> Result<bool, ()> {
    let deadline = Instant::now() + LIMIT;
    let mut chunk = [0u8; 16 * 1024];
    while !done(buf) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(());
        }
        stream.set_read_timeout(Some(left)).map_err(|_| ())?;
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(())
            }
            Err(_) => return Ok(false),
        }
    }
    Ok(true)
}

/// Whether `frame` is the reply to `PING token` (RESP2 subscribed clients get `pong token`).
fn is_ping_reply(frame: &Frame, token: &[u8]) -> bool {
    match frame {
        Frame::Blob(b'$', Some(t)) => t == token,
        Frame::Aggregate(b'*', Some(items)) if items.len() == 2 => {
            items[0].text() == Some(b"pong") && items[1].text() == Some(token)
        }
        _ => false,
    }
}

fn ends_with_reply(bytes: &[u8], token: &[u8]) -> bool {
    let (frames, rest) = resp::parse_all(bytes);
    rest.is_empty() && frames.last().is_some_and(|f| is_ping_reply(f, token))
}

fn ping(token: &str) -> Vec<u8> {
    resp::command(&[b"PING".to_vec(), token.as_bytes().to_vec()])
}

/// Connects, sends CLIENT ID and returns the connection and the id.
fn client_id(addr: SocketAddr) -> (TcpStream, u64) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.write_all(&resp::command(&[b"CLIENT".to_vec(), b"ID".to_vec()]))
        .expect("write CLIENT ID");
    let mut buf = Vec::new();
    read_until(&mut s, &mut buf, |b| b.ends_with(b"\r\n")).expect("CLIENT ID reply");
    let id = std::str::from_utf8(&buf[1..buf.len() - 2])
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("CLIENT ID reply {}", escape(&buf)));
    (s, id)
}

/// Sends one command on the control connection and returns its whole reply; `None` if the
/// server closed the connection (a step's CLIENT KILL may close it).
fn control(s: &mut TcpStream, args: &[&str]) -> Option<Frame> {
    let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
    let _ = s.write_all(&resp::command(&args));
    let mut buf = Vec::new();
    match read_until(s, &mut buf, |b| resp::parse(b).is_some()) {
        Ok(true) => resp::parse(&buf).map(|(f, _)| f),
        Ok(false) => None,
        Err(()) => panic!("no reply to {args:?} on the control connection"),
    }
}

impl Side {
    /// Prepares a fresh server for a case: ids aligned to [`FIRST_ID`], nothing but the control
    /// client connected. Returns the side and the server's `redis_version`.
    pub fn prepare(label: &str, addr: SocketAddr) -> (Side, String) {
        let (mut ctl, id) = loop {
            let (s, id) = client_id(addr);
            if id + 1 >= FIRST_ID {
                break (s, id);
            }
            let _ = s.shutdown(Shutdown::Both);
        };
        assert_eq!(
            id + 1,
            FIRST_ID,
            "{label} had already used more than {FIRST_ID} ids"
        );
        let info = control(&mut ctl, &["INFO", "server"]).expect("INFO");
        let text = String::from_utf8_lossy(info.text().unwrap_or_default()).into_owned();
        let version = text
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or_else(|| panic!("{label}: no redis_version in INFO"))
            .to_string();
        // The alignment connections are closed; wait until the server has seen every close.
        let deadline = Instant::now() + LIMIT;
        loop {
            let list = control(&mut ctl, &["CLIENT", "LIST"]).expect("CLIENT LIST");
            if list
                .text()
                .is_some_and(|t| t.iter().filter(|&&b| b == b'\n').count() == 1)
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{label}: closed clients still listed"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let port = ctl.local_addr().expect("control address").port();
        let side = Side {
            label: label.to_string(),
            addr,
            conns: BTreeMap::new(),
            next_id: FIRST_ID,
            ports: HashMap::from([(port, "control".to_string())]),
            control: ctl,
        };
        (side, version)
    }

    fn open(&self, client: &str) -> bool {
        self.conns.get(client).is_some_and(|c| c.stream.is_some())
    }

    fn connect(&mut self, client: &str) -> Result<(), String> {
        let stream = TcpStream::connect(self.addr)
            .map_err(|e| format!("{}: cannot connect {client}: {e}", self.label))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let local = stream.local_addr().map_err(|e| e.to_string())?;
        self.ports.insert(local.port(), client.to_string());
        let id = self.next_id;
        self.next_id += 1;
        // Neither server makes a connection a client before it has accepted it, and a client
        // another one names (CLIENT KILL ID, TRACKING REDIRECT) must exist on both.
        let deadline = Instant::now() + LIMIT;
        let id_text = id.to_string();
        loop {
            match control(&mut self.control, &["CLIENT", "LIST", "ID", &id_text]) {
                Some(list) if list.text().is_some_and(|t| !t.is_empty()) => break,
                Some(_) => std::thread::sleep(Duration::from_micros(200)),
                None => self.reconnect_control()?,
            }
            if Instant::now() > deadline {
                return Err(format!("{}: {client} (id {id}) never listed", self.label));
            }
        }
        self.conns.insert(
            client.to_string(),
            Conn {
                stream: Some(stream),
                id,
                local,
            },
        );
        Ok(())
    }

    /// Replaces a control connection that a step killed. The new one takes the next id, on
    /// both servers alike (a kill of one server's control only is a difference of that step).
    fn reconnect_control(&mut self) -> Result<(), String> {
        let stream = TcpStream::connect(self.addr)
            .map_err(|e| format!("{}: cannot reconnect the control client: {e}", self.label))?;
        let port = stream.local_addr().map_err(|e| e.to_string())?.port();
        self.ports.insert(port, "control".to_string());
        self.next_id += 1;
        self.control = stream;
        Ok(())
    }

    /// Writes `data` to the client and reads until the reply to `PING token` or the close.
    fn exchange(&mut self, client: &str, data: &[u8], token: &str) -> Received {
        let conn = self.conns.get_mut(client).expect("connected");
        let Some(stream) = conn.stream.as_mut() else {
            return Received {
                bytes: Vec::new(),
                open: false,
                stuck: false,
            };
        };
        // A failed write means the server has closed; reading shows what it sent first.
        let _ = stream.write_all(data);
        let mut bytes = Vec::new();
        let outcome = read_until(stream, &mut bytes, |b| ends_with_reply(b, token.as_bytes()));
        let open = outcome == Ok(true);
        if !open {
            if let Some(s) = conn.stream.take() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        Received {
            bytes,
            open,
            stuck: outcome.is_err(),
        }
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            ports: &self.ports,
            server_port: self.addr.port(),
        }
    }
}

impl Vars for Side {
    fn var(&self, name: &str) -> Result<Vec<u8>, String> {
        if name == "laddr" {
            return Ok(self.addr.to_string().into_bytes());
        }
        let (kind, client) = name
            .split_once(':')
            .ok_or_else(|| format!("unknown {{{name}}}"))?;
        let conn = self
            .conns
            .get(client)
            .ok_or_else(|| format!("{{{name}}}: no client {client}"))?;
        match kind {
            "addr" => Ok(conn.local.to_string().into_bytes()),
            "id" => Ok(conn.id.to_string().into_bytes()),
            _ => Err(format!("unknown {{{name}}}")),
        }
    }
}

/// A bracketed command: the tokens of the PINGs around it and the mask its replies go through.
struct Bracket {
    open: String,
    close: String,
    mask: &'static str,
}

/// The bracketed mask a command's replies need, if any: replies in hash-table order, and a
/// failed AUTH after other replies of the step (`first`: the step's first command).
fn bracketed_mask(args: &[Vec<u8>], first: bool) -> Option<&'static str> {
    let word = |i: usize| args.get(i).map(|a| a.to_ascii_lowercase());
    match (word(0).as_deref(), args.len()) {
        (Some(b"unsubscribe" | b"punsubscribe" | b"sunsubscribe"), 1) => Some("unsubscribe-order"),
        (Some(b"pubsub"), 2 | 3) => {
            matches!(word(1).as_deref(), Some(b"channels" | b"shardchannels"))
                .then_some("list-order")
        }
        (Some(b"acl"), 3) => (word(1).as_deref() == Some(b"cat")).then_some("list-order"),
        (Some(b"auth"), _) if !first => Some("auth-error-after-reply"),
        (Some(b"hello"), _) if !first && args.iter().any(|a| a.eq_ignore_ascii_case(b"auth")) => {
            Some("auth-error-after-reply")
        }
        _ => None,
    }
}

fn literal(arg: &Arg) -> Vec<u8> {
    match arg {
        Arg::Literal(b) => b.clone(),
        Arg::Template(t) => t.as_bytes().to_vec(),
    }
}

/// Inserts the bracketing PINGs into a step's commands; `seq` numbers the brackets.
fn bracket(pieces: &[Piece], seq: &mut u64) -> (Vec<Piece>, Vec<Bracket>) {
    let (mut out, mut brackets) = (Vec::new(), Vec::new());
    let (mut in_multi, mut reply_off) = (false, false);
    let ping_piece = |token: &str| Piece::Command {
        args: vec![
            Arg::Literal(b"PING".to_vec()),
            Arg::Literal(token.as_bytes().to_vec()),
        ],
        count: 1,
    };
    for (i, piece) in pieces.iter().enumerate() {
        let args: Vec<Vec<u8>> = match piece {
            Piece::Command { args, .. } => args.iter().map(literal).collect(),
            Piece::Raw(_) => Vec::new(),
        };
        let lower: Vec<Vec<u8>> = args.iter().map(|a| a.to_ascii_lowercase()).collect();
        let mask = bracketed_mask(&args, i == 0).filter(|_| !in_multi && !reply_off);
        match mask {
            Some(mask) => {
                *seq += 1;
                let (open, close) = (format!("seg{seq}a"), format!("seg{seq}b"));
                out.push(ping_piece(&open));
                out.push(clone_piece(piece));
                out.push(ping_piece(&close));
                brackets.push(Bracket { open, close, mask });
            }
            None => out.push(clone_piece(piece)),
        }
        match lower.iter().map(Vec::as_slice).collect::<Vec<_>>()[..] {
            [b"multi"] => in_multi = true,
            [b"exec" | b"discard", ..] => in_multi = false,
            [b"client", b"reply", b"on"] => reply_off = false,
            [b"client", b"reply", b"off" | b"skip"] => reply_off = true,
            _ => {}
        }
    }
    (out, brackets)
}

fn clone_piece(p: &Piece) -> Piece {
    match p {
        Piece::Raw(parts) => Piece::Raw(parts.clone()),
        Piece::Command { args, count } => Piece::Command {
            args: args.clone(),
            count: *count,
        },
    }
}

/// A client's bytes after the bracketed sorts and the masks.
fn normalize(bytes: &[u8], brackets: &[Bracket], ctx: &Ctx, reference_70: bool) -> Vec<u8> {
    let bytes = fuzz_masks::apply_bytes(bytes, reference_70);
    let (mut frames, rest) = resp::parse_all(&bytes);
    for b in brackets {
        let at = |token: &str| {
            frames
                .iter()
                .position(|f| is_ping_reply(f, token.as_bytes()))
        };
        if let (Some(i), Some(j)) = (at(&b.open), at(&b.close)) {
            if i < j {
                let inner: Vec<Frame> = frames.drain(i + 1..j).collect();
                let masked = fuzz_masks::bracketed(b.mask)(inner);
                frames.splice(i + 1..i + 1, masked);
            }
        }
    }
    let frames = fuzz_masks::apply(frames, ctx, reference_70);
    let mut out = Vec::new();
    frames.iter().for_each(|f| resp::encode(f, &mut out));
    out.extend_from_slice(rest);
    out
}

fn raw_excerpt(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(SHOW_RAW)];
    let more = if bytes.len() > SHOW_RAW { "…" } else { "" };
    format!("{}{more} ({} bytes)", escape(cut), bytes.len())
}

/// Runs `steps` against both sides; the first step where any client's masked bytes or
/// connection state differ ends the run with a report of that step.
pub fn run(steps: &[Step], sides: &mut [Side; 2], reference_70: bool) -> Result<(), String> {
    for client in CLIENTS {
        for side in sides.iter_mut() {
            side.connect(client)?;
        }
    }
    let (mut seq, mut marks) = (0u64, 0u64);
    for (index, step) in steps.iter().enumerate() {
        let Action::Send { client, pieces } = &step.action else {
            return Err(format!(
                "line {}: only `client: …` steps are run",
                step.line
            ));
        };
        let (pieces, brackets) = bracket(pieces, &mut seq);
        marks += 1;
        let token = format!("mark{marks}");
        let mut got: Vec<BTreeMap<String, Received>> = vec![BTreeMap::new(), BTreeMap::new()];
        for (side, got) in sides.iter_mut().zip(got.iter_mut()) {
            if !side.open(client) {
                side.connect(client)?;
            }
            let mut data = payload(&pieces, side)?;
            data.extend(ping(&token));
            got.insert(client.clone(), side.exchange(client, &data, &token));
        }
        for other in CLIENTS.iter().filter(|c| *c != client) {
            marks += 1;
            let token = format!("mark{marks}");
            for (side, got) in sides.iter_mut().zip(got.iter_mut()) {
                if side.open(other) {
                    got.insert(
                        other.to_string(),
                        side.exchange(other, &ping(&token), &token),
                    );
                }
            }
        }
        let mut diffs = Vec::new();
        for c in CLIENTS {
            let (a, b) = (got[0].get(c), got[1].get(c));
            let (Some(a), Some(b)) = (a, b) else {
                if a.is_some() != b.is_some() {
                    diffs.push(format!("client {c} is open on one server only"));
                }
                continue;
            };
            let own = if c == client { &brackets[..] } else { &[] };
            let na = normalize(&a.bytes, own, &sides[0].ctx(), reference_70);
            let nb = normalize(&b.bytes, own, &sides[1].ctx(), reference_70);
            let (la, lb) = (&sides[0].label, &sides[1].label);
            let mut this = Vec::new();
            if na != nb {
                this.push(mismatch(c, la, &na, lb, &nb, "received (masked)"));
            }
            for (label, r) in [(la, a), (lb, b)] {
                if r.stuck {
                    this.push(format!(
                        "client {c}: {label} neither answered nor closed within {LIMIT:?}"
                    ));
                }
            }
            if a.open != b.open {
                this.push(format!(
                    "client {c}: connection open on {la}: {}, on {lb}: {}",
                    a.open, b.open
                ));
            }
            if !this.is_empty() {
                this.push(format!(
                    "client {c} raw bytes:\n      {la}: {}\n      {lb}: {}",
                    raw_excerpt(&a.bytes),
                    raw_excerpt(&b.bytes)
                ));
                diffs.extend(this);
            }
        }
        if !diffs.is_empty() {
            let shown: Vec<String> = steps[..=index]
                .iter()
                .map(|s| {
                    format!(
                        "  {}{}",
                        if s.line == step.line { "> " } else { "  " },
                        s.text
                    )
                })
                .collect();
            return Err(format!(
                "step {} of {} differs:\n{}\n\n{}",
                index + 1,
                steps.len(),
                shown.join("\n"),
                diffs.join("\n")
            ));
        }
    }
    Ok(())
}
