//! Publisher connections: pre-encoded commands written in pipelined batches (or at a fixed
//! rate), replies read by a second task that sums receiver counts and checks each against what
//! the command should get.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::resp::{self, Frame, RecvBuf};
use crate::subscriber::Counters;

/// Pre-encoded commands a publisher cycles through, with the reply each should get.
pub struct Plan {
    buf: Vec<u8>,
    /// Start offset of each command, plus the end of the last.
    offs: Vec<usize>,
    /// Expected reply of each command (receiver count, or a confirmation's count).
    expected: Vec<i64>,
    /// Offset within a command of an 8-byte timestamp to patch in (rate mode).
    ts_at: Option<usize>,
}

/// The smallest cycle worth pipelining from without issuing tiny writes.
const MIN_PLAN_COMMANDS: usize = 1024;

impl Plan {
    /// Builds a plan from commands, repeating them until the cycle is long enough.
    pub fn new(cmds: &[(Vec<Vec<u8>>, i64)]) -> Self {
        let mut plan = Self {
            buf: Vec::new(),
            offs: vec![0],
            expected: Vec::new(),
            ts_at: None,
        };
        if cmds.is_empty() {
            return plan;
        }
        while plan.expected.len() < MIN_PLAN_COMMANDS {
            for (args, exp) in cmds {
                let a: Vec<&[u8]> = args.iter().map(|x| x.as_slice()).collect();
                resp::encode_command(&mut plan.buf, &a);
                plan.offs.push(plan.buf.len());
                plan.expected.push(*exp);
            }
        }
        plan
    }

    /// One `PUBLISH channel payload` whose payload starts with a send timestamp.
    pub fn timestamped(channel: &[u8], payload_len: usize, expected: i64) -> Self {
        let payload = vec![b'x'; payload_len.max(8)];
        let mut buf = Vec::new();
        resp::encode_command(&mut buf, &[b"PUBLISH", channel, &payload]);
        let ts_at = buf.len() - 2 - payload.len();
        Self {
            offs: vec![0, buf.len()],
            buf,
            expected: vec![expected],
            ts_at: Some(ts_at),
        }
    }

    fn len(&self) -> usize {
        self.expected.len()
    }
}

/// Most timestamped commands written at once when a rate-paced publisher runs behind.
const MAX_RATE_BURST: u64 = 4096;

/// How a publisher paces itself.
#[derive(Clone, Copy)]
pub enum Pace {
    /// As fast as the window allows: `window` unacknowledged commands, written `batch` at a time.
    Closed { window: u64, batch: u64 },
    /// A fixed number of commands per second, stamped with their send time.
    Rate { per_sec: f64, epoch: Instant },
}

/// Back-pressure from the receivers: a publisher waits while more than `max_lag` deliveries are
/// owed, so a client slower than the server measures its own limit instead of growing the
/// server's output buffers until they hit `client-output-buffer-limit`.
pub struct Flow {
    pub owed: AtomicU64,
    pub counters: Arc<Counters>,
    pub max_lag: u64,
    /// Deliveries owed per acknowledged command; `None` means the reply's receiver count.
    pub per_ack: Option<u64>,
}

impl Flow {
    fn lagging(&self) -> bool {
        self.owed.load(Relaxed) > self.counters.delivered.load(Relaxed) + self.max_lag
    }
}

/// When to stop writing.
pub struct Stop {
    pub deadline: Instant,
    pub max_commands: Option<u64>,
    pub flag: Arc<AtomicBool>,
}

/// A publisher's tallies, updated live so the reply counts can be watched during a run.
pub struct PubState {
    pub written: AtomicU64,
    pub acked: AtomicU64,
    pub reply_sum: AtomicU64,
    pub expected_sum: AtomicU64,
    pub errors: AtomicU64,
    pub unexpected: AtomicU64,
    /// Replies that differ from what the command should get (e.g. a receiver went missing).
    pub mismatches: AtomicU64,
    /// Nanoseconds after the start at which the first mismatching reply arrived; `u64::MAX`
    /// while there was none.
    pub first_mismatch_ns: AtomicU64,
    pub first_error: Mutex<Option<String>>,
    writer_done: AtomicBool,
    notify: Notify,
}

impl Default for PubState {
    fn default() -> Self {
        Self {
            written: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            reply_sum: AtomicU64::new(0),
            expected_sum: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            unexpected: AtomicU64::new(0),
            mismatches: AtomicU64::new(0),
            first_mismatch_ns: AtomicU64::new(u64::MAX),
            first_error: Mutex::new(None),
            writer_done: AtomicBool::new(false),
            notify: Notify::new(),
        }
    }
}

/// How a publisher run ended.
pub struct PubReport {
    pub last_ack: Instant,
    /// Commands written but never acknowledged within the drain limit.
    pub unacked: u64,
}

/// How long a publisher waits for outstanding replies after it stops writing.
const DRAIN_LIMIT: Duration = Duration::from_secs(15);

/// Runs one publisher connection to completion: writes per `pace` until `stop`, then waits for
/// every reply.
pub async fn publish(
    addr: std::net::SocketAddr,
    plan: Arc<Plan>,
    pace: Pace,
    stop: Stop,
    flow: Option<Arc<Flow>>,
    state: Arc<PubState>,
) -> Result<PubReport> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut rd, mut wr) = stream.into_split();
    let start = Instant::now();
    let reader = {
        let (plan, state, flow) = (plan.clone(), state.clone(), flow.clone());
        tokio::spawn(
            async move { read_replies(&mut rd, &plan, &state, flow.as_deref(), start).await },
        )
    };
    let write = write_commands(&mut wr, &plan, pace, &stop, flow.as_deref(), &state).await;
    state.writer_done.store(true, Relaxed);
    state.notify.notify_one();
    let last_ack = reader.await??;
    write?;
    let unacked = state.written.load(Relaxed) - state.acked.load(Relaxed);
    Ok(PubReport { last_ack, unacked })
}

async fn write_commands(
    wr: &mut tokio::net::tcp::OwnedWriteHalf,
    plan: &Plan,
    pace: Pace,
    stop: &Stop,
    flow: Option<&Flow>,
    state: &PubState,
) -> Result<()> {
    let n = plan.len() as u64;
    let mut written = 0u64;
    let mut scratch = Vec::new();
    let rate_start = Instant::now();
    loop {
        let now = Instant::now();
        if now >= stop.deadline || stop.flag.load(Relaxed) {
            return Ok(());
        }
        let budget = stop.max_commands.map_or(u64::MAX, |m| m - written);
        if budget == 0 {
            return Ok(());
        }
        if flow.is_some_and(|f| f.lagging()) {
            tokio::time::sleep(Duration::from_micros(200)).await;
            continue;
        }
        let count = match pace {
            Pace::Closed { window, batch } => {
                let inflight = written - state.acked.load(Relaxed);
                if inflight + batch > window && inflight > 0 {
                    // notify_one keeps a permit, so a reply landing before this await still wakes us.
                    let _ =
                        tokio::time::timeout(Duration::from_millis(50), state.notify.notified())
                            .await;
                    continue;
                }
                let i = written % n;
                batch.min(n - i).min(budget)
            }
            Pace::Rate { per_sec, .. } => {
                let due = (rate_start.elapsed().as_secs_f64() * per_sec) as u64;
                if due <= written {
                    tokio::time::sleep(Duration::from_micros(500)).await;
                    continue;
                }
                // After a stall, catch up in bounded writes; falling behind shows in pub/s.
                (due - written).min(budget).min(MAX_RATE_BURST)
            }
        };
        let mut exp = 0i64;
        match pace {
            Pace::Closed { .. } => {
                let i = (written % n) as usize;
                let j = i + count as usize;
                exp = plan.expected[i..j].iter().sum();
                wr.write_all(&plan.buf[plan.offs[i]..plan.offs[j]]).await?;
            }
            Pace::Rate { epoch, .. } => {
                let ts_at = plan.ts_at.context("rate pacing needs a timestamped plan")?;
                scratch.clear();
                let ts = epoch.elapsed().as_nanos() as u64;
                for _ in 0..count {
                    let at = scratch.len() + ts_at;
                    scratch.extend_from_slice(&plan.buf);
                    scratch[at..at + 8].copy_from_slice(&ts.to_le_bytes());
                    exp += plan.expected[0];
                }
                wr.write_all(&scratch).await?;
            }
        }
        written += count;
        state.expected_sum.fetch_add(exp as u64, Relaxed);
        state.written.store(written, Relaxed);
    }
}

async fn read_replies(
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    plan: &Plan,
    state: &PubState,
    flow: Option<&Flow>,
    start: Instant,
) -> Result<Instant> {
    let mut buf = RecvBuf::new(64 * 1024);
    let n = plan.len() as u64;
    let mut acked = 0u64;
    let mut last_ack = start;
    let mut drain_since: Option<Instant> = None;
    loop {
        let (mut sum, mut got, mut errors, mut unexpected, mut mism) = (0i64, 0u64, 0, 0, 0);
        let mut first_err = None;
        buf.drain(|b, f| {
            let v = match f {
                Frame::Int(v) => v,
                Frame::Confirm { count, .. } => count,
                Frame::Error((s, e)) => {
                    errors += 1;
                    first_err.get_or_insert_with(|| String::from_utf8_lossy(&b[s..e]).into_owned());
                    i64::MIN
                }
                _ => {
                    unexpected += 1;
                    return;
                }
            };
            if v != plan.expected[((acked + got) % n) as usize] {
                mism += 1;
            }
            if v != i64::MIN {
                sum += v;
            }
            got += 1;
        })?;
        if got > 0 {
            acked += got;
            last_ack = Instant::now();
            state.reply_sum.fetch_add(sum as u64, Relaxed);
            if let Some(f) = flow {
                f.owed
                    .fetch_add(f.per_ack.map_or(sum as u64, |k| k * got), Relaxed);
            }
            if mism > 0 {
                state.mismatches.fetch_add(mism, Relaxed);
                let ns = start.elapsed().as_nanos() as u64;
                let _ = state
                    .first_mismatch_ns
                    .compare_exchange(u64::MAX, ns, Relaxed, Relaxed);
            }
            state.acked.store(acked, Relaxed);
            state.notify.notify_one();
        }
        if errors > 0 {
            state.errors.fetch_add(errors, Relaxed);
            let mut fe = state.first_error.lock();
            if fe.is_none() {
                *fe = first_err;
            }
        }
        if unexpected > 0 {
            state.unexpected.fetch_add(unexpected, Relaxed);
        }
        if state.writer_done.load(Relaxed) {
            if acked >= state.written.load(Relaxed) {
                return Ok(last_ack);
            }
            if drain_since.get_or_insert_with(Instant::now).elapsed() > DRAIN_LIMIT {
                return Ok(last_ack);
            }
        }
        match tokio::time::timeout(Duration::from_millis(100), buf.fill(rd)).await {
            Ok(Ok(0)) => bail!("server closed the publisher's connection"),
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(e)) => return Err(e.into()),
        }
    }
}
