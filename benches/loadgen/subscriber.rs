//! Subscriber connections: subscribe, then count what arrives.
//!
//! The load generator shares two cores with the server it measures, so the hot loop is cheap:
//! one big read per wake-up, frames scanned in place ([`crate::resp::scan`]), counters published
//! to shared atomics once per read rather than once per message, and one clock reading per read
//! for latency (every message in one read arrived at the same moment as far as we can tell).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::resp::{self, ConfirmKind, Frame, RecvBuf};
use crate::stats::Hist;

/// Shared tallies of a group of subscribers.
#[derive(Default)]
pub struct Counters {
    /// `message` and `pmessage` frames received.
    pub delivered: AtomicU64,
    /// Frames that are neither messages nor confirmations.
    pub unexpected: AtomicU64,
    /// Subscribers whose connection ended while they were counting.
    pub disconnected: AtomicU64,
}

/// What one subscriber connection subscribes to.
#[derive(Clone)]
pub struct SubSpec {
    pub names: Vec<Vec<u8>>,
    /// PSUBSCRIBE instead of SUBSCRIBE.
    pub patterns: bool,
    /// Receive buffer size in the load generator (not the kernel's).
    pub buf_size: usize,
}

/// Latency recording for a subscriber: the payload starts with the send time in nanoseconds
/// since `epoch`, little-endian.
#[derive(Clone)]
pub struct LatencyProbe {
    pub epoch: Instant,
    pub hist: Arc<Mutex<Hist>>,
}

/// Arguments per (P)SUBSCRIBE command: large subscriptions go out as several pipelined commands.
const NAMES_PER_COMMAND: usize = 1000;

/// Connects, subscribes, and waits for every confirmation. Returns the stream and the buffer.
pub async fn subscribe(
    addr: std::net::SocketAddr,
    spec: &SubSpec,
    recv_buffer: Option<u32>,
) -> Result<(TcpStream, RecvBuf)> {
    let mut stream = match recv_buffer {
        None => TcpStream::connect(addr).await?,
        Some(bytes) => {
            let sock = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            sock.set_recv_buffer_size(bytes)?;
            sock.connect(addr).await?
        }
    };
    stream.set_nodelay(true)?;
    let verb: &[u8] = if spec.patterns {
        b"PSUBSCRIBE"
    } else {
        b"SUBSCRIBE"
    };
    let mut cmd = Vec::new();
    for chunk in spec.names.chunks(NAMES_PER_COMMAND) {
        resp::encode_verb_many(&mut cmd, verb, chunk);
    }
    stream.write_all(&cmd).await?;
    let mut buf = RecvBuf::new(spec.buf_size);
    let mut confirmed = 0;
    let mut problem = None;
    while confirmed < spec.names.len() {
        if buf.fill(&mut stream).await? == 0 {
            bail!(
                "connection closed after {confirmed} of {} confirmations",
                spec.names.len()
            );
        }
        buf.drain(|b, f| match f {
            Frame::Confirm {
                kind: ConfirmKind::Subscribe | ConfirmKind::PSubscribe,
                ..
            } => confirmed += 1,
            Frame::Error((s, e)) => {
                problem.get_or_insert_with(|| String::from_utf8_lossy(&b[s..e]).into_owned());
            }
            _ => {}
        })?;
        if let Some(p) = problem {
            bail!("{} refused: {p}", String::from_utf8_lossy(verb));
        }
    }
    Ok((stream, buf))
}

/// Counts messages until the connection ends or the task is aborted.
pub async fn count_messages(
    mut stream: TcpStream,
    mut buf: RecvBuf,
    counters: Arc<Counters>,
    probe: Option<LatencyProbe>,
) {
    loop {
        let (mut msgs, mut other) = (0u64, 0u64);
        let ok = {
            // One clock reading and one (uncontended) lock per read, not per message.
            let now = probe
                .as_ref()
                .map_or(0, |p| p.epoch.elapsed().as_nanos() as u64);
            let mut hist = probe.as_ref().map(|p| p.hist.lock());
            buf.drain(|b, f| match f {
                Frame::Message { payload } | Frame::PMessage { payload } => {
                    msgs += 1;
                    if let Some(h) = hist.as_mut() {
                        if payload.1 - payload.0 >= 8 {
                            let mut ts = [0u8; 8];
                            ts.copy_from_slice(&b[payload.0..payload.0 + 8]);
                            h.record(now.saturating_sub(u64::from_le_bytes(ts)));
                        }
                    }
                }
                Frame::Confirm { .. } => {}
                _ => other += 1,
            })
        };
        if msgs > 0 {
            counters.delivered.fetch_add(msgs, Relaxed);
        }
        if other > 0 {
            counters.unexpected.fetch_add(other, Relaxed);
        }
        if ok.is_err() {
            counters.unexpected.fetch_add(1, Relaxed);
            counters.disconnected.fetch_add(1, Relaxed);
            return;
        }
        match buf.fill(&mut stream).await {
            Ok(n) if n > 0 => {}
            _ => {
                counters.disconnected.fetch_add(1, Relaxed);
                return;
            }
        }
    }
}

/// Running subscriber tasks; they stop when aborted (or dropped).
pub struct Subscribers {
    tasks: Vec<JoinHandle<()>>,
    hists: Vec<Arc<Mutex<Hist>>>,
}

impl Subscribers {
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Every subscriber's latencies merged.
    pub fn latency(&self) -> Hist {
        let mut all = Hist::default();
        for h in &self.hists {
            all.merge(&h.lock());
        }
        all
    }
}

impl Drop for Subscribers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Subscribes every spec (at most `concurrency` connection attempts at a time, so the server's
/// accept backlog does not overflow) and starts a counting task for each. With `latency_epoch`,
/// each subscriber also records end-to-end latency from the payload's timestamp.
pub async fn start_subscribers(
    addr: std::net::SocketAddr,
    specs: Vec<SubSpec>,
    counters: Arc<Counters>,
    latency_epoch: Option<Instant>,
    concurrency: usize,
) -> Result<Subscribers> {
    let sem = Arc::new(Semaphore::new(concurrency));
    let mut setup = tokio::task::JoinSet::new();
    for spec in specs {
        let sem = sem.clone();
        setup.spawn(async move {
            let _permit = sem.acquire_owned().await?;
            tokio::time::timeout(Duration::from_secs(60), subscribe(addr, &spec, None))
                .await
                .context("subscribe timed out")?
        });
    }
    let mut subs = Subscribers {
        tasks: Vec::new(),
        hists: Vec::new(),
    };
    while let Some(r) = setup.join_next().await {
        let (stream, buf) = r??;
        let probe = latency_epoch.map(|epoch| LatencyProbe {
            epoch,
            hist: Default::default(),
        });
        if let Some(p) = &probe {
            subs.hists.push(p.hist.clone());
        }
        subs.tasks.push(tokio::spawn(count_messages(
            stream,
            buf,
            counters.clone(),
            probe,
        )));
    }
    Ok(subs)
}
