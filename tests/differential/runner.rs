//! Runs one script against the reference server and pubsubd at the same time and compares
//! what every client receives, step by step.
//!
//! Both servers get each step's bytes, then the runner reads every connection of both until
//! no byte has arrived for the quiet period. If a byte-compared client has received different
//! amounts from the two servers (for a normalized reply: a different number of whole RESP
//! frames), or one server closed it and the other did not, it waits a little longer for the
//! slower server to catch up before comparing; a real difference only costs that extra wait.

use std::collections::{BTreeMap, HashMap};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::normalize;
use crate::report::mismatch;
use crate::resp::{self, escape, Frame};
use crate::script::{Action, Arg, Mods, Piece, Step};

/// How long no byte may arrive before a step's replies are taken as complete. Loopback
/// replies take microseconds; the margin is for a busy machine. `DIFF_QUIET_MS` overrides it.
const QUIET: Duration = Duration::from_millis(25);
/// How much longer to wait for a server that is behind the other one before reporting.
const CATCH_UP: Duration = Duration::from_millis(500);
/// Upper bound for one step, against a server that never stops sending.
const STEP_LIMIT: Duration = Duration::from_secs(10);
/// How long `expect-closed` waits for the server to close a connection.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

fn quiet() -> Duration {
    std::env::var("DIFF_QUIET_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(QUIET)
}

/// A server under test: where it listens and what to call it in reports.
pub struct Target {
    pub label: String,
    pub addr: SocketAddr,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    Open,
    /// The server closed the connection (EOF or reset).
    ClosedByServer,
    /// The script closed it.
    ClosedByUs,
}

struct Conn {
    stream: Option<TcpStream>,
    local: SocketAddr,
    state: State,
    /// Bytes received during the current step.
    got: Vec<u8>,
    /// Whether the connection was open when the current step began.
    was_open: bool,
}

impl Conn {
    /// Reads whatever is available; returns whether anything happened.
    fn poll(&mut self) -> bool {
        let Some(stream) = self.stream.as_mut() else {
            return false;
        };
        let mut buf = [0u8; 64 * 1024];
        let mut active = false;
        loop {
            match stream.read(&mut buf) {
                Ok(0) => {
                    self.state = State::ClosedByServer;
                    self.stream = None;
                    return true;
                }
                Ok(n) => {
                    self.got.extend_from_slice(&buf[..n]);
                    active = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return active,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    self.state = State::ClosedByServer;
                    self.stream = None;
                    return true;
                }
            }
        }
    }
}

struct Side<'a> {
    target: &'a Target,
    conns: BTreeMap<String, Conn>,
    captures: HashMap<String, Vec<u8>>,
}

impl Side<'_> {
    fn poll(&mut self) -> bool {
        self.conns.values_mut().fold(false, |any, c| c.poll() | any)
    }

    fn connect(&mut self, client: &str) -> Result<(), String> {
        let stream = TcpStream::connect_timeout(&self.target.addr, Duration::from_secs(5))
            .map_err(|e| format!("{}: cannot connect {client}: {e}", self.target.label))?;
        stream
            .set_nodelay(true)
            .and_then(|_| stream.set_nonblocking(true))
            .map_err(|e| e.to_string())?;
        let local = stream.local_addr().map_err(|e| e.to_string())?;
        self.conns.insert(
            client.to_string(),
            Conn {
                stream: Some(stream),
                local,
                state: State::Open,
                got: Vec::new(),
                was_open: false,
            },
        );
        Ok(())
    }

    /// Writes all of `data`, reading replies meanwhile so that a server that stops reading
    /// while its replies are unread cannot deadlock the harness.
    fn send(&mut self, client: &str, data: &[u8]) {
        let deadline = Instant::now() + STEP_LIMIT;
        let mut at = 0;
        while at < data.len() && Instant::now() < deadline {
            let Some(stream) = self.conns.get_mut(client).and_then(|c| c.stream.as_mut()) else {
                return;
            };
            match stream.write(&data[at..]) {
                Ok(n) => at += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.poll();
                    sleep(Duration::from_micros(500));
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // The server closed the connection; reading will show it.
                Err(_) => return,
            }
        }
    }

    fn state(&self, client: &str) -> Option<State> {
        self.conns.get(client).map(|c| c.state)
    }

    fn got(&self, client: &str) -> &[u8] {
        self.conns.get(client).map_or(&[], |c| &c.got)
    }
}

impl Vars for Side<'_> {
    /// `{addr:client}` is that client's address as the server sees it, `{name}` a capture.
    fn var(&self, name: &str) -> Result<Vec<u8>, String> {
        if let Some(client) = name.strip_prefix("addr:") {
            let conn = self
                .conns
                .get(client)
                .ok_or_else(|| format!("{{{name}}}: {client} never connected"))?;
            return Ok(conn.local.to_string().into_bytes());
        }
        self.captures
            .get(name)
            .cloned()
            .ok_or_else(|| format!("{{{name}}} was never captured"))
    }
}

/// What a script's `{…}` substitutions stand for on one server.
pub trait Vars {
    /// The bytes `{name}` stands for (`{rep:N:text}` is expanded before asking).
    fn var(&self, name: &str) -> Result<Vec<u8>, String>;
}

/// Expands the `{…}` substitutions of an unquoted argument: `{rep:N:text}` (text repeated
/// N times) here, every other name through `vars`.
pub fn expand(arg: &Arg, vars: &dyn Vars) -> Result<Vec<u8>, String> {
    let template = match arg {
        Arg::Literal(bytes) => return Ok(bytes.clone()),
        Arg::Template(t) => t,
    };
    let mut out = Vec::new();
    let mut rest = template.as_str();
    while let Some(open) = rest.find('{') {
        out.extend_from_slice(&rest.as_bytes()[..open]);
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("unclosed {{ in {template}"))?
            + open;
        let name = &rest[open + 1..close];
        if let Some(spec) = name.strip_prefix("rep:") {
            let (n, text) = spec.split_once(':').ok_or("{rep:N:text}")?;
            out.extend_from_slice(
                text.repeat(n.parse().map_err(|_| "{rep:N:text}: bad N")?)
                    .as_bytes(),
            );
        } else {
            out.extend(vars.var(name)?);
        }
        rest = &rest[close + 1..];
    }
    out.extend_from_slice(rest.as_bytes());
    Ok(out)
}

/// The bytes of a step's pieces: raw pieces as written, commands as RESP multibulk requests.
pub fn payload(pieces: &[Piece], vars: &dyn Vars) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Raw(parts) => {
                for part in parts {
                    out.extend(expand(part, vars)?);
                }
            }
            Piece::Command { args, count } => {
                let args = args
                    .iter()
                    .map(|a| expand(a, vars))
                    .collect::<Result<Vec<_>, _>>()?;
                let encoded = resp::command(&args);
                (0..*count).for_each(|_| out.extend_from_slice(&encoded));
            }
        }
    }
    Ok(out)
}

/// One reason a script failed.
pub struct Failure {
    pub step: usize,
    pub message: String,
}

/// Runs `steps` against both targets; returns every failure.
pub fn run(
    steps: &[Step],
    reference: &Target,
    subject: &Target,
    reference_is_72: bool,
) -> Vec<Failure> {
    let mut sides = [
        Side {
            target: reference,
            conns: BTreeMap::new(),
            captures: HashMap::new(),
        },
        Side {
            target: subject,
            conns: BTreeMap::new(),
            captures: HashMap::new(),
        },
    ];
    let mut failures = Vec::new();
    let trace = std::env::var_os("DIFF_TRACE").is_some();
    for (index, step) in steps.iter().enumerate() {
        let mut fail = |message: String| {
            failures.push(Failure {
                step: index,
                message,
            })
        };
        for side in sides.iter_mut() {
            side.conns.values_mut().for_each(|c| {
                c.got.clear();
                c.was_open = c.state == State::Open;
            });
        }
        if let Err(e) = perform(&mut sides, step) {
            fail(format!("script error: {e}"));
            break;
        }
        collect(&mut sides, step);
        if let Action::ExpectClosed(clients) | Action::ExpectOpen(clients) = &step.action {
            let want_closed = matches!(step.action, Action::ExpectClosed(_));
            if want_closed {
                wait_for_close(&mut sides, clients);
            }
            for side in &sides {
                for client in clients {
                    let state = side.state(client);
                    if (state == Some(State::ClosedByServer)) != want_closed {
                        let what = if want_closed { "closed" } else { "open" };
                        fail(format!(
                            "{}: expected {client} to be {what} by the server, it is {state:?}",
                            side.target.label
                        ));
                    }
                }
            }
        }
        if trace {
            trace_step(&sides, step);
        }
        compare(&sides, step, reference_is_72)
            .into_iter()
            .for_each(&mut fail);
        for (client, name) in step
            .mods
            .iter()
            .filter_map(|(c, m)| Some((c, m.capture.as_ref()?)))
        {
            for side in sides.iter_mut() {
                let value = match resp::parse(side.got(client)) {
                    Some((Frame::Line(b':', n), _)) => n,
                    Some((frame, _)) => frame.text().map(<[u8]>::to_vec).unwrap_or_default(),
                    None => Vec::new(),
                };
                side.captures.insert(name.clone(), value);
            }
        }
    }
    for side in sides.iter_mut() {
        for conn in side.conns.values_mut() {
            if let Some(stream) = conn.stream.take() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
    failures
}

fn perform(sides: &mut [Side; 2], step: &Step) -> Result<(), String> {
    for side in sides.iter_mut() {
        match &step.action {
            Action::Send { client, pieces } => {
                match side.state(client) {
                    None => side.connect(client)?,
                    Some(State::ClosedByUs) => {
                        return Err(format!("{client} was closed; use `{client}: connect`"))
                    }
                    _ => {}
                }
                let data = payload(pieces, side)?;
                side.send(client, &data);
            }
            Action::Connect(client) => {
                if side.state(client) == Some(State::Open) {
                    return Err(format!("{client} is already connected"));
                }
                side.connect(client)?;
            }
            Action::Close(client) => {
                let conn = side
                    .conns
                    .get_mut(client)
                    .ok_or_else(|| format!("{client} never connected"))?;
                if let Some(stream) = conn.stream.take() {
                    let _ = stream.shutdown(Shutdown::Both);
                }
                conn.state = State::ClosedByUs;
            }
            Action::ExpectClosed(clients) | Action::ExpectOpen(clients) => {
                if let Some(c) = clients.iter().find(|c| side.state(c).is_none()) {
                    return Err(format!("{c} never connected"));
                }
            }
            Action::Sleep(_) => {}
        }
    }
    if let Action::Sleep(ms) = step.action {
        sleep(Duration::from_millis(ms));
    }
    Ok(())
}

/// Reads both servers' connections until they are quiet and, for byte-compared clients,
/// level with each other.
fn collect(sides: &mut [Side; 2], step: &Step) {
    let quiet = quiet();
    let start = Instant::now();
    let mut last = start;
    let clients: Vec<String> = sides[0]
        .conns
        .keys()
        .chain(sides[1].conns.keys())
        .cloned()
        .collect();
    loop {
        let now = Instant::now();
        let [a, b] = &mut *sides;
        if a.poll() | b.poll() {
            last = now;
        }
        let idle = now - last;
        if idle >= quiet {
            let level = clients.iter().all(|c| {
                let mods = step.mods(c);
                if mods.exact() {
                    return a.got(c).len() == b.got(c).len() && a.state(c) == b.state(c);
                }
                // Normalized replies differ in length; wait for whole frames instead.
                match &mods.pubsubd {
                    Some(p) => frames(b.got(c)) >= frames(p) && frames(a.got(c)).is_some(),
                    None => frames(a.got(c)) == frames(b.got(c)) && a.state(c) == b.state(c),
                }
            });
            if level || idle >= CATCH_UP {
                return;
            }
        }
        if now - start > STEP_LIMIT {
            return;
        }
        sleep(Duration::from_micros(500));
    }
}

/// With `DIFF_TRACE` set, prints what every client received in this step from each server
/// (handy for writing `~pubsubd` expectations).
fn trace_step(sides: &[Side; 2], step: &Step) {
    let mut out = format!("{:>4} | {}\n", step.line, step.text);
    for side in sides {
        for (client, conn) in &side.conns {
            if !conn.got.is_empty() || (conn.was_open && conn.state == State::ClosedByServer) {
                out.push_str(&format!(
                    "       {} {client} {:?}: {}\n",
                    side.target.label,
                    conn.state,
                    escape(&conn.got)
                ));
            }
        }
    }
    eprint!("{out}");
}

/// The number of whole RESP frames in `bytes`, or `None` if a frame is incomplete.
fn frames(bytes: &[u8]) -> Option<usize> {
    let (frames, rest) = resp::parse_all(bytes);
    rest.is_empty().then_some(frames.len())
}

fn wait_for_close(sides: &mut [Side; 2], clients: &[String]) {
    let deadline = Instant::now() + CLOSE_WAIT;
    while Instant::now() < deadline {
        let open = sides
            .iter()
            .any(|s| clients.iter().any(|c| s.state(c) == Some(State::Open)));
        if !open {
            return;
        }
        sides.iter_mut().for_each(|s| {
            s.poll();
        });
        sleep(Duration::from_millis(1));
    }
}

fn compare(sides: &[Side; 2], step: &Step, reference_is_72: bool) -> Vec<String> {
    let [a, b] = sides;
    let (ra, rb) = (&a.target.label, &b.target.label);
    let mut out = Vec::new();
    let clients: std::collections::BTreeSet<&String> =
        a.conns.keys().chain(b.conns.keys()).collect();
    for client in clients {
        let (sa, sb) = (a.state(client), b.state(client));
        if sa != sb {
            out.push(format!(
                "client {client}: connection is {sa:?} on {ra} but {sb:?} on {rb}"
            ));
        }
        let (ga, gb) = (a.got(client), b.got(client));
        let m: &Mods = step.mods(client);
        if m.ignore.is_some() {
            continue;
        }
        let (na, nb) = (
            normalize::apply(&m.norms, ga),
            normalize::apply(&m.norms, gb),
        );
        let what = if m.norms.is_empty() {
            "received"
        } else {
            "received (normalized)"
        };
        if let Some(expected) = &m.pubsubd {
            if nb != *expected {
                out.push(mismatch(
                    client,
                    "expected for pubsubd",
                    expected,
                    rb,
                    &nb,
                    what,
                ));
            }
            if m.differs_72.is_some() && reference_is_72 && na != *expected {
                out.push(mismatch(
                    client,
                    "expected for Redis 7.2",
                    expected,
                    ra,
                    &na,
                    what,
                ));
            }
            continue;
        }
        if m.differs.is_some() {
            continue;
        }
        if na != nb {
            out.push(mismatch(client, ra, &na, rb, &nb, what));
        }
        if let Some(expected) = &m.expect {
            for (label, got) in [(ra, &na), (rb, &nb)] {
                if got != expected {
                    out.push(mismatch(client, "expected", expected, label, got, what));
                }
            }
        }
    }
    out
}
