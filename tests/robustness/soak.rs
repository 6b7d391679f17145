//! Load, over real TCP: ten thousand subscribed connections held and dropped at once (memory
//! measured from /proc and INFO), subscribers that never read under a flood of publishes (the
//! server's memory bounded by the output buffer limit), subscription churn while publishers
//! publish (every delivery accounted for), and publishers that vanish mid-pipeline (every
//! acknowledged message delivered, none invented).
//!
//! The figures are printed:
//! `cargo test --test robustness soak:: -- --nocapture --test-threads 1`.

use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::info::{info_u64, wait_connected};
use crate::support::process::{mib, Server};
use crate::support::{self, encode, info, process, resp, Raw};

/// Reads exactly `want.len()` bytes and asserts they are `want`.
async fn expect_bytes(s: &mut TcpStream, want: &[u8]) {
    let mut got = vec![0u8; want.len()];
    tokio::time::timeout(Duration::from_secs(30), s.read_exact(&mut got))
        .await
        .expect("reply in time")
        .expect("read");
    assert_eq!(support::show(&got), support::show(want));
}

fn push(kind: &str, parts: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n${}\r\n{kind}\r\n", parts.len() + 1, kind.len()).into_bytes();
    for p in parts {
        out.extend(format!("${}\r\n{p}\r\n", p.len()).as_bytes());
    }
    out
}

const CLIENTS: usize = 10_000;
const ROOMS: usize = 100;

/// The room connection `i` listens to.
fn room(i: usize) -> usize {
    (i / 2) % ROOMS
}

/// Connection `i` listens to room `room(i)`: even ones SUBSCRIBE to `room:K`, odd ones
/// PSUBSCRIBE to `r?om:K`, which matches that room alone.
fn subscription(i: usize) -> (&'static str, String) {
    let k = room(i);
    if i % 2 == 0 {
        ("subscribe", format!("room:{k}"))
    } else {
        ("psubscribe", format!("r?om:{k}"))
    }
}

/// One wave: `CLIENTS` connections subscribe, get one message each, and all leave at once.
/// Returns (RSS in KiB, used_memory) while they were connected.
async fn wave(srv: &Server, obs: &mut Raw, n: usize) -> (u64, u64) {
    let addr = srv.addr();
    let started = Instant::now();
    let mut conns: Vec<(usize, TcpStream)> = futures::stream::iter(0..CLIENTS)
        .map(|i| async move {
            let mut s = TcpStream::connect(addr).await.expect("connect");
            let (cmd, name) = subscription(i);
            s.write_all(&encode(&[cmd.as_bytes(), name.as_bytes()]))
                .await
                .unwrap();
            let confirm = format!(
                "*3\r\n${}\r\n{cmd}\r\n${}\r\n{name}\r\n:1\r\n",
                cmd.len(),
                name.len()
            );
            expect_bytes(&mut s, confirm.as_bytes()).await;
            (i, s)
        })
        .buffer_unordered(200)
        .collect()
        .await;
    let connect_time = started.elapsed();
    assert_eq!(info_u64(obs, "connected_clients").await, CLIENTS as u64 + 1);
    obs.roundtrip(&["PUBSUB", "NUMPAT"], format!(":{ROOMS}\r\n").as_bytes())
        .await;
    obs.roundtrip(
        &["PUBSUB", "NUMSUB", "room:7"],
        format!("*2\r\n$6\r\nroom:7\r\n:{}\r\n", CLIENTS / ROOMS / 2).as_bytes(),
    )
    .await;
    obs.cmd(&["PUBSUB", "CHANNELS", "room:*"]).await;
    let channels = obs.frame().await;
    assert!(channels.starts_with(format!("*{ROOMS}\r\n").as_bytes()));

    let mut receivers = 0;
    for k in 0..ROOMS {
        obs.cmd(&["PUBLISH", &format!("room:{k}"), &format!("hello {k}")])
            .await;
        receivers += resp::int_reply(&obs.frame().await);
    }
    assert_eq!(receivers, CLIENTS as i64, "PUBLISH receiver counts");
    conns = futures::stream::iter(conns)
        .map(|(i, mut s)| async move {
            let k = room(i);
            let (room, payload) = (format!("room:{k}"), format!("hello {k}"));
            let want = match subscription(i) {
                ("subscribe", _) => push("message", &[&room, &payload]),
                (_, pattern) => push("pmessage", &[&pattern, &room, &payload]),
            };
            expect_bytes(&mut s, &want).await;
            (i, s)
        })
        .buffer_unordered(500)
        .collect()
        .await;
    let rss = srv.rss_kib();
    let used = info_u64(obs, "used_memory").await;

    let started = Instant::now();
    drop(conns);
    wait_connected(obs, 1).await;
    let drop_time = started.elapsed();
    info::assert_no_subscriptions(obs).await;
    println!(
        "wave {n}: {CLIENTS} subscribed connections ({ROOMS} channels, {ROOMS} patterns) in \
         {connect_time:.1?}, all {receivers} deliveries checked, dropped in {drop_time:.1?}"
    );
    (rss, used)
}

/// Ten thousand connections, each subscribed to a channel or a pattern: one PUBLISH per room
/// reaches every one of them, exactly once; dropped all at once, they leave no client and no
/// subscription, and the memory they took is given back. Twice, so that anything kept per
/// client would show as growth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_subscribers_are_served_and_leave_nothing_behind() {
    let nofile = process::raise_nofile();
    assert!(
        nofile >= CLIENTS as u64 + 500,
        "RLIMIT_NOFILE hard limit {nofile} is too low for {CLIENTS} connections"
    );
    let srv = Server::start("tenk", &["--maxclients", "20000"]).await;
    let mut obs = Raw::connect(srv.addr()).await;
    // The figures at rest, after one client has come and gone.
    drop(Raw::connect(srv.addr()).await);
    wait_connected(&mut obs, 1).await;
    let rss_before = srv.rss_kib();
    let used_before = info_u64(&mut obs, "used_memory").await;

    let (rss_peak, used_peak) = wave(&srv, &mut obs, 1).await;
    // The cron trims the allocator within a few of its 100 ms ticks.
    process::wait_until(
        "RSS falls back after the clients left",
        Duration::from_secs(20),
        || async { srv.rss_kib() < rss_before + RSS_MARGIN_KIB },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = srv.rss_kib();
    let used_after = info_u64(&mut obs, "used_memory").await;
    wave(&srv, &mut obs, 2).await;
    process::wait_until(
        "RSS falls back after the second wave",
        Duration::from_secs(20),
        || async { srv.rss_kib() < rss_before + RSS_MARGIN_KIB },
    )
    .await;
    let used_after2 = info_u64(&mut obs, "used_memory").await;
    println!(
        "  RSS before {} / with {CLIENTS} clients {} / 0.5 s after they left {}",
        mib(rss_before),
        mib(rss_peak),
        mib(rss_after)
    );
    println!(
        "  used_memory before {} KiB / with {CLIENTS} clients {} / after {} KiB / after a second wave {} KiB",
        used_before >> 10,
        mib(used_peak >> 10),
        used_after >> 10,
        used_after2 >> 10
    );
    // The allocator's count comes back but for the capacity kept by the client table, the
    // registry's maps and tokio's I/O slab (bounded by the most clients ever connected), and it
    // does not grow from one wave to the next.
    assert!(
        used_after < used_before + USED_MARGIN,
        "used_memory {used_after} after, {used_before} before"
    );
    // A leak of 100 bytes per connection would show as 1 MiB here. (About 25 bytes per
    // connection are seen from this harness, not from a Python client running the same
    // sequence; see docs/ROBUSTNESS.md.)
    assert!(
        used_after2 < used_after + USED_MARGIN,
        "used_memory grew from {used_after} to {used_after2} over a second wave"
    );
    assert!(!srv.output().contains("panicked"), "{}", srv.output());
}

/// What `used_memory` may keep after ten thousand clients left: the capacity of tables sized
/// for them. Measured at about 330 KiB.
const USED_MARGIN: u64 = 1024 * 1024;

/// What the server's resident size may keep after its clients are gone: freed memory below the
/// cron's trim threshold (8 MiB) and glibc's fragmentation. Measured 0.5 s after they left at
/// about 1.5 MiB above idle on a 2-core machine.
const RSS_MARGIN_KIB: u64 = 16 * 1024;

/// Figures from one slow-consumer flood.
struct Flood {
    published: u64,
    rss_before: u64,
    rss_peak: u64,
}

/// A subscriber that never reads (a 4 KiB receive buffer) and a healthy one share a channel
/// while a publisher floods it with messages of `size` bytes, keeping within a few thousand
/// messages of the healthy subscriber. Returns once the slow one was disconnected and the healthy one got
/// every message, in order; the server's RSS is sampled every 10 ms throughout.
async fn flood_a_slow_consumer(srv: &Server, size: usize) -> Flood {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    let addr = srv.addr();
    let mut obs = Raw::connect(addr).await;
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut slow = Raw::from_stream(sock.connect(addr).await.unwrap());
    slow.roundtrip(
        &["SUBSCRIBE", "flood"],
        b"*3\r\n$9\r\nsubscribe\r\n$5\r\nflood\r\n:1\r\n",
    )
    .await;
    let mut healthy = Raw::connect(addr).await;
    healthy
        .roundtrip(
            &["SUBSCRIBE", "flood"],
            b"*3\r\n$9\r\nsubscribe\r\n$5\r\nflood\r\n:1\r\n",
        )
        .await;
    let seen = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let rss_before = srv.rss_kib();
    let pid = srv.pid();
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(process::proc_status_kib(pid, "VmRSS"));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            peak
        })
    };
    let reader = {
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                let f = resp::bulks(&healthy.frame().await);
                if f[2] == b"end" {
                    return n;
                }
                let seq: u64 = std::str::from_utf8(&f[2][..10]).unwrap().parse().unwrap();
                assert_eq!(seq, n, "healthy subscriber: lost or reordered");
                n += 1;
                seen.store(n, Ordering::Relaxed);
            }
        })
    };
    const BATCH: u64 = 100;
    let pad = vec![b'x'; size - 10];
    let mut p = Raw::connect(addr).await;
    let mut published = 0u64;
    let mut after_drop = None;
    loop {
        while seen.load(Ordering::Relaxed) + 3000 < published {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut batch = Vec::new();
        for i in published..published + BATCH {
            let mut m = format!("{i:010}").into_bytes();
            m.extend_from_slice(&pad);
            batch.extend(encode(&[b"PUBLISH", b"flood", &m]));
        }
        p.send(&batch).await;
        for _ in 0..BATCH {
            let n = resp::int_reply(&p.frame().await);
            if n == 1 && after_drop.is_none() {
                after_drop = Some(0);
            }
        }
        published += BATCH;
        if let Some(k) = after_drop.as_mut() {
            *k += 1;
            if *k == 10 {
                break;
            }
        }
        assert!(
            published < 500_000,
            "the slow subscriber was never disconnected"
        );
    }
    p.roundtrip(&["PUBLISH", "flood", "end"], b":1\r\n").await;
    assert_eq!(reader.await.unwrap(), published);
    stop.store(true, Ordering::Relaxed);
    let rss_peak = sampler.await.unwrap();
    assert_eq!(
        info_u64(&mut obs, "client_output_buffer_limit_disconnections").await,
        1
    );
    // The slow subscriber finds its connection closed once it reads what reached it.
    let mut drained = 0usize;
    loop {
        let mut buf = vec![0u8; 1 << 16];
        match tokio::time::timeout(Duration::from_secs(20), slow.stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => drained += n,
            Err(_) => panic!("slow subscriber still connected after {drained} bytes"),
        }
    }
    assert!(srv
        .output()
        .contains("Client closed for overcoming of output buffer limits"));
    Flood {
        published,
        rss_before,
        rss_peak,
    }
}

/// What the server's RSS may exceed its idle level by, beyond the hard limit: the healthy
/// subscriber's and the publisher's buffers, the frames' overhead (a `Bytes` header and a
/// queue slot per 1 KiB message, about 8%; small messages are copied into 16 KiB chunks
/// instead) and the allocator's slack. Measured at under 1 MiB
/// above the 4 MiB limit and under 5 MiB above the 32 MiB one on a 2-core machine.
const FLOOD_SLACK_KIB: u64 = 8 * 1024;

/// The output buffer limit bounds the server's memory whatever a subscriber that stopped
/// reading is sent: over `client-output-buffer-limit pubsub` (4mb here, then Redis's default
/// 32mb), it is disconnected and counted, while a healthy subscriber of the same channel gets
/// every message in order. With 1 KiB messages (queued as shared frames) and 100-byte ones
/// (copied into the connection's buffer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_to_a_subscriber_that_never_reads_stays_within_the_hard_limit() {
    for (limit, hard_mib, size) in [
        (Some("4mb"), 4u64, 1024),
        (None, 32, 1024),
        (Some("4mb"), 4, 100),
        (None, 32, 100),
    ] {
        let args: Vec<&str> = match limit {
            Some(h) => vec!["--client-output-buffer-limit", "pubsub", h, "2mb", "60"],
            None => vec![],
        };
        let srv = Server::start("flood", &args).await;
        let f = flood_a_slow_consumer(&srv, size).await;
        let over = f.rss_peak.saturating_sub(f.rss_before);
        println!(
            "slow consumer, pubsub hard limit {hard_mib} MiB: disconnected after {} x {size} B \
             messages; RSS {} idle, {} peak (+{}: {} over the limit)",
            f.published,
            mib(f.rss_before),
            mib(f.rss_peak),
            mib(over),
            mib(over.saturating_sub(hard_mib * 1024))
        );
        assert!(
            over <= hard_mib * 1024 + FLOOD_SLACK_KIB,
            "RSS rose {over} KiB with a {hard_mib} MiB limit and {size} B messages"
        );
    }
}

/// Over the soft limit for longer than its seconds, a subscriber is disconnected even though
/// it never reaches the hard limit (here 0: none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_over_the_soft_limit_for_its_seconds_is_disconnected() {
    let srv = Server::start(
        "soft",
        &["--client-output-buffer-limit", "pubsub", "0", "256kb", "1"],
    )
    .await;
    let addr = srv.addr();
    let mut obs = Raw::connect(addr).await;
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let mut slow = Raw::from_stream(sock.connect(addr).await.unwrap());
    slow.cmd(&["CLIENT", "ID"]).await;
    let id = format!("id={} ", resp::int_reply(&slow.frame().await));
    slow.roundtrip(
        &["SUBSCRIBE", "soft"],
        b"*3\r\n$9\r\nsubscribe\r\n$4\r\nsoft\r\n:1\r\n",
    )
    .await;
    let started = Instant::now();
    let payload = vec![b'y'; 1024];
    let mut batch = Vec::new();
    for _ in 0..50 {
        batch.extend(encode(&[b"PUBLISH", b"soft", &payload]));
    }
    // Flood until its queue is over the soft limit…
    loop {
        obs.send(&batch).await;
        for _ in 0..50 {
            assert_eq!(obs.frame().await, b":1\r\n");
        }
        let list = info::text(&mut obs, &["CLIENT", "LIST"]).await;
        let line = list.lines().find(|l| l.starts_with(&id)).unwrap();
        let omem: u64 = info::field(&info::client_fields(line), "omem")
            .parse()
            .unwrap();
        if omem >= 256 * 1024 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "omem stays at {omem}"
        );
    }
    // …then keep it there with a trickle until the server gives up on it.
    let over = Instant::now();
    loop {
        obs.cmd(&["PUBLISH", "soft", "trickle"]).await;
        if resp::int_reply(&obs.frame().await) == 0 {
            break;
        }
        assert!(
            over.elapsed() < Duration::from_secs(20),
            "never disconnected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();
    println!("soft limit 256kb for 1 s: disconnected {elapsed:.1?} after the flood began");
    assert!(
        elapsed >= Duration::from_secs(1),
        "disconnected before its soft seconds"
    );
    assert_eq!(
        info_u64(&mut obs, "client_output_buffer_limit_disconnections").await,
        1
    );
    wait_connected(&mut obs, 1).await;
}

const CHURN_PUBLISHERS: usize = 3;
const CHURN_PER_PUBLISHER: usize = 3000;
const CHURN_CHANNELS: usize = 4;
const CHURNERS: usize = 12;
const CHURN_PATTERNS: [&str; 3] = ["churn:*", "churn:[01]", "ch?rn:2"];

/// A subscription a message arrived through.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum Via {
    Channel(Vec<u8>),
    Pattern(Vec<u8>),
}

/// A pub/sub stream read by a subscriber that checks every frame against the subscriptions it
/// has had confirmed: a message only arrives through a subscription confirmed and not yet
/// cancelled, and within one subscription the messages of each publisher on each channel are
/// consecutive (none missed, none repeated).
struct Checked {
    raw: Raw,
    vias: std::collections::HashSet<Via>,
    /// (via, publisher, channel) → the last message number seen during the current
    /// subscription.
    last: std::collections::HashMap<(Via, usize, usize), u64>,
    received: u64,
}

impl Checked {
    fn new(raw: Raw) -> Self {
        Checked {
            raw,
            vias: Default::default(),
            last: Default::default(),
            received: 0,
        }
    }

    /// Reads frames until `confirmations` (un)subscribe confirmations have arrived.
    async fn read(&mut self, mut confirmations: usize) {
        while confirmations > 0 {
            let f = resp::bulks(&self.raw.frame().await);
            match &f[0][..] {
                b"subscribe" | b"psubscribe" => {
                    let via = if f[0] == b"subscribe" {
                        Via::Channel(f[1].clone())
                    } else {
                        Via::Pattern(f[1].clone())
                    };
                    // A new subscription (not a repeat) starts a new run of messages.
                    if self.vias.insert(via.clone()) {
                        self.last.retain(|(v, _, _), _| *v != via);
                    }
                    confirmations -= 1;
                }
                b"unsubscribe" | b"punsubscribe" => {
                    let via = if f[0] == b"unsubscribe" {
                        Via::Channel(f[1].clone())
                    } else {
                        Via::Pattern(f[1].clone())
                    };
                    self.vias.remove(&via);
                    confirmations -= 1;
                }
                b"message" => self.message(Via::Channel(f[1].clone()), &f[2]),
                b"pmessage" => self.message(Via::Pattern(f[1].clone()), &f[3]),
                other => panic!("unexpected {}", String::from_utf8_lossy(other)),
            }
        }
    }

    fn message(&mut self, via: Via, payload: &[u8]) {
        assert!(
            self.vias.contains(&via),
            "a message through {via:?}, which is not subscribed"
        );
        let text = std::str::from_utf8(payload).unwrap();
        let mut it = text.split(':').map(|n| n.parse::<u64>().unwrap());
        let (p, c, k) = (
            it.next().unwrap() as usize,
            it.next().unwrap() as usize,
            it.next().unwrap(),
        );
        let last = self.last.insert((via.clone(), p, c), k);
        if let Some(l) = last {
            assert_eq!(
                k,
                l + 1,
                "through {via:?}: publisher {p} channel {c} skipped or repeated"
            );
        }
        self.received += 1;
    }
}

/// Clients subscribing and unsubscribing to shared channels and patterns as fast as they can
/// while publishers publish: subscribers that stay throughout get every message, in order;
/// the churning ones get messages only between their confirmations, without gaps within a
/// subscription; and the receiver counts PUBLISH returned add up to the messages delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churning_subscriptions_account_for_every_message() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let s = support::TestServer::start().await;
    let addr = s.addr();
    let channel = |c: usize| format!("churn:{c}");

    let mut stable_exact = Checked::new(Raw::connect(addr).await);
    let all: Vec<String> = (0..CHURN_CHANNELS).map(channel).collect();
    let mut cmd = vec!["SUBSCRIBE"];
    cmd.extend(all.iter().map(String::as_str));
    stable_exact.raw.cmd(&cmd).await;
    stable_exact.read(CHURN_CHANNELS).await;
    let mut stable_pattern = Checked::new(Raw::connect(addr).await);
    stable_pattern.raw.cmd(&["PSUBSCRIBE", "churn:*"]).await;
    stable_pattern.read(1).await;

    let done = Arc::new(AtomicBool::new(false));
    let mut churners = Vec::new();
    for n in 0..CHURNERS {
        let done = done.clone();
        churners.push(tokio::spawn(async move {
            let mut c = Checked::new(Raw::connect(addr).await);
            let mut x = 0x2545_f491_4f6c_dd1du64 ^ ((n as u64 + 1) * 0x9e37_79b9);
            let mut rounds = 0u64;
            while !done.load(Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let ch = format!("churn:{}", x % CHURN_CHANNELS as u64);
                let other = format!("churn:{}", (x >> 8) % CHURN_CHANNELS as u64);
                let pat = CHURN_PATTERNS[((x >> 16) % 3) as usize];
                match (x >> 24) % 4 {
                    0 => c.raw.cmd(&["SUBSCRIBE", &ch, &other]).await,
                    1 => c.raw.cmd(&["UNSUBSCRIBE", &ch, &other]).await,
                    2 => c.raw.cmd(&["PSUBSCRIBE", pat]).await,
                    _ => c.raw.cmd(&["PUNSUBSCRIBE", pat]).await,
                }
                c.read(if (x >> 24) % 4 < 2 { 2 } else { 1 }).await;
                rounds += 1;
            }
            // Leave everything, reading what arrives until the last confirmation.
            let mut cmd = vec!["UNSUBSCRIBE".to_string()];
            cmd.extend((0..CHURN_CHANNELS).map(|c| format!("churn:{c}")));
            c.raw
                .cmd(&cmd.iter().map(String::as_str).collect::<Vec<_>>())
                .await;
            c.read(CHURN_CHANNELS).await;
            let mut cmd = vec!["PUNSUBSCRIBE"];
            cmd.extend(CHURN_PATTERNS);
            c.raw.cmd(&cmd).await;
            c.read(CHURN_PATTERNS.len()).await;
            assert!(c.vias.is_empty());
            c.raw.expect_silence(20).await;
            (c.received, rounds)
        }));
    }

    let mut publishers = Vec::new();
    for p in 0..CHURN_PUBLISHERS {
        publishers.push(tokio::spawn(async move {
            let mut c = Raw::connect(addr).await;
            let mut next = [0u64; CHURN_CHANNELS];
            let mut receivers = 0i64;
            for chunk in 0..CHURN_PER_PUBLISHER / 50 {
                let mut batch = Vec::new();
                for i in 0..50 {
                    let ch = (chunk * 50 + i) % CHURN_CHANNELS;
                    let payload = format!("{p}:{ch}:{}", next[ch]);
                    next[ch] += 1;
                    batch.extend(encode(&[
                        b"PUBLISH",
                        format!("churn:{ch}").as_bytes(),
                        payload.as_bytes(),
                    ]));
                }
                c.send(&batch).await;
                for _ in 0..50 {
                    receivers += resp::int_reply(&c.frame().await);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            receivers
        }));
    }
    let mut counted = 0i64;
    for p in publishers {
        counted += p.await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let total = (CHURN_PUBLISHERS * CHURN_PER_PUBLISHER) as u64;
    let mut delivered = 0u64;
    for st in [&mut stable_exact, &mut stable_pattern] {
        while st.received < total {
            let f = resp::bulks(&st.raw.frame().await);
            let (via, payload) = match &f[0][..] {
                b"message" => (Via::Channel(f[1].clone()), f[2].clone()),
                _ => (Via::Pattern(f[1].clone()), f[3].clone()),
            };
            st.message(via, &payload);
        }
        st.raw.expect_silence(20).await;
        // Every run started at message 0 and, being consecutive, ended at the last one.
        assert!(st
            .last
            .values()
            .all(|&k| k + 1 == (CHURN_PER_PUBLISHER / CHURN_CHANNELS) as u64));
        delivered += st.received;
    }
    let mut churn_received = 0;
    let mut rounds = 0;
    for c in churners {
        let (got, r) = c.await.unwrap();
        churn_received += got;
        rounds += r;
    }
    delivered += churn_received;
    println!(
        "churn: {total} messages from {CHURN_PUBLISHERS} publishers; {rounds} (un)subscribe \
         rounds by {CHURNERS} clients, who got {churn_received} messages; {delivered} \
         deliveries = the sum of PUBLISH replies"
    );
    assert_eq!(
        delivered as i64, counted,
        "deliveries vs PUBLISH receiver counts"
    );
    drop((stable_exact, stable_pattern));
    let mut obs = Raw::connect(addr).await;
    wait_connected(&mut obs, 1).await;
    info::assert_no_subscriptions(&mut obs).await;
}

/// `cmdstat_publish` calls so far.
async fn publish_calls(obs: &mut Raw) -> u64 {
    let stats = info::text(obs, &["INFO", "commandstats"]).await;
    stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_publish:calls="))
        .map_or(0, |v| v.split(',').next().unwrap().parse().unwrap())
}

/// A publisher pipelines PUBLISH commands and vanishes partway, by a reset or a close, after
/// reading some of the replies: every subscriber got exactly the messages whose PUBLISH ran
/// (counted by INFO commandstats), in order, so every acknowledged one and none that did not
/// run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_vanishing_mid_pipeline_delivers_exactly_what_ran() {
    const N: u64 = 30_000;
    let s = support::TestServer::start().await;
    let addr = s.addr();
    let mut obs = Raw::connect(addr).await;
    let mut subs = Vec::new();
    for cmd in ["SUBSCRIBE", "SUBSCRIBE", "PSUBSCRIBE"] {
        let mut c = Raw::connect(addr).await;
        c.cmd(&[cmd, if cmd == "SUBSCRIBE" { "seq" } else { "s?q" }])
            .await;
        c.frame().await;
        subs.push(c);
    }
    let mut pipeline = Vec::new();
    for i in 0..N {
        pipeline.extend(encode(&[b"PUBLISH", b"seq", i.to_string().as_bytes()]));
    }
    // (bytes of the pipeline written, replies read, reset or close)
    let rounds = [
        (pipeline.len() / 2 + 3, 0, true),
        (pipeline.len() / 3, 1000, true),
        (pipeline.len() * 2 / 3 + 1, 10_000, true),
        (pipeline.len() - 5, 100, false),
        (pipeline.len(), 0, false),
    ];
    for (round, (cut, read, reset)) in rounds.into_iter().enumerate() {
        let before = publish_calls(&mut obs).await;
        let mut p = Raw::connect(addr).await;
        p.send(&pipeline[..cut]).await;
        for _ in 0..read {
            assert_eq!(p.frame().await, b":3\r\n");
        }
        if reset {
            p.stream.set_zero_linger().unwrap();
        }
        drop(p);
        wait_connected(&mut obs, 4).await;
        let ran = publish_calls(&mut obs).await - before;
        let mark = format!("end {round}");
        obs.roundtrip(&["PUBLISH", "seq", &mark], b":3\r\n").await;
        for sub in subs.iter_mut() {
            let mut got = 0u64;
            loop {
                let f = resp::bulks(&sub.frame().await);
                let payload = std::str::from_utf8(f.last().unwrap()).unwrap().to_string();
                if payload == mark {
                    break;
                }
                assert_eq!(payload, got.to_string(), "round {round}: gap or reorder");
                got += 1;
            }
            assert_eq!(
                got, ran,
                "round {round}: delivered vs PUBLISH calls that ran"
            );
        }
        assert!(
            ran >= read as u64,
            "round {round}: {ran} ran, {read} acknowledged"
        );
        println!(
            "publisher gone (round {round}, {}): {cut} bytes sent, {read} replies read, {ran} \
             PUBLISH ran and were delivered to all 3 subscribers",
            if reset { "reset" } else { "close" }
        );
    }
}
