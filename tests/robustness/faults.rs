//! Faults, over real TCP: clients that vanish mid-request, mid-pipeline or with a full outbox,
//! peers that reset, garbage and byte-at-a-time requests next to a healthy subscriber,
//! `maxclients` under a burst of connections, and running out of file descriptors.

use std::time::Duration;

use pubsubd::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::info::{info_u64, wait_connected};
use crate::support::{self, info, process, resp, Raw, TestServer, TIMEOUT};

const MAXCLIENTS_ERR: &[u8] = b"-ERR max number of clients reached\r\n";

/// Whether the server turned the connection away: `Some(stream)` if it was accepted (it
/// answers PING), `None` if it got the maxclients error and was closed.
async fn admitted(mut c: TcpStream) -> Option<TcpStream> {
    let mut buf = Vec::new();
    // A rejection is written at accept time; give it a moment to arrive before writing.
    let early = tokio::time::timeout(Duration::from_millis(300), c.read_buf(&mut buf)).await;
    if early.is_err() {
        c.write_all(b"PING\r\n").await.unwrap();
    }
    loop {
        if buf == b"+PONG\r\n" {
            return Some(c);
        }
        if buf.len() >= MAXCLIENTS_ERR.len() {
            assert_eq!(support::show(&buf), support::show(MAXCLIENTS_ERR));
            let n = tokio::time::timeout(TIMEOUT, c.read_buf(&mut buf))
                .await
                .expect("rejected connection closed")
                .unwrap_or(0);
            assert_eq!(n, 0, "bytes after the maxclients error");
            return None;
        }
        let n = tokio::time::timeout(TIMEOUT, c.read_buf(&mut buf))
            .await
            .expect("a reply")
            .expect("read");
        assert!(n > 0, "closed without a reply: {}", support::show(&buf));
    }
}

async fn burst(addr: std::net::SocketAddr, n: usize) -> (Vec<TcpStream>, usize) {
    let conns = futures::future::join_all((0..n).map(|_| TcpStream::connect(addr))).await;
    let outcomes =
        futures::future::join_all(conns.into_iter().map(|c| admitted(c.expect("connect")))).await;
    let rejected = outcomes.iter().filter(|o| o.is_none()).count();
    (outcomes.into_iter().flatten().collect(), rejected)
}

/// Redis checks `maxclients` when it accepts, so a burst of connections arriving together can
/// not get past it before any of them is registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxclients_holds_under_a_burst_and_frees_slots_on_close() {
    const MAX: usize = 20;
    let s = TestServer::with_config(Config {
        maxclients: MAX as u64,
        ..Config::default()
    })
    .await;
    let (mut kept, rejected) = burst(s.addr(), 3 * MAX).await;
    assert_eq!((kept.len(), rejected), (MAX, 2 * MAX), "admitted, rejected");
    let mut obs = Raw::from_stream(kept.pop().unwrap());
    assert_eq!(
        info_u64(&mut obs, "rejected_connections").await,
        2 * MAX as u64
    );
    assert_eq!(info_u64(&mut obs, "connected_clients").await, MAX as u64);
    // Five leave: exactly five new ones get in.
    kept.truncate(kept.len() - 5);
    wait_connected(&mut obs, MAX as u64 - 5).await;
    let (more, rejected) = burst(s.addr(), 8).await;
    assert_eq!((more.len(), rejected), (5, 3));
    assert_eq!(
        info_u64(&mut obs, "rejected_connections").await,
        2 * MAX as u64 + 3
    );
    drop(more);
    drop(kept);
    wait_connected(&mut obs, 1).await;
}

/// With fewer file descriptors than `maxclients` needs, accept fails with EMFILE: the server
/// keeps serving the clients it has, backs off instead of retrying accept in a tight loop, and
/// accepts the waiting connections once descriptors are free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_file_descriptors_neither_spins_nor_stops_the_server() {
    const NOFILE: u64 = 64;
    let srv = process::Server::start_with("emfile", Some(NOFILE), &["--maxclients", "1000"]).await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", srv.pid())).unwrap();
    assert!(
        limits
            .lines()
            .any(|l| l.starts_with("Max open files") && l.split_whitespace().nth(3) == Some("64")),
        "{limits}"
    );
    let mut served = Vec::new();
    let mut waiting = Vec::new();
    while waiting.is_empty() {
        assert!(
            served.len() < 2 * NOFILE as usize,
            "never ran out of descriptors"
        );
        let mut c = Raw::connect(srv.addr()).await;
        c.send(b"PING\r\n").await;
        let mut pong = [0u8; 7];
        match tokio::time::timeout(Duration::from_millis(500), c.stream.read_exact(&mut pong)).await
        {
            Ok(r) => {
                r.expect("PONG");
                assert_eq!(&pong, b"+PONG\r\n");
                served.push(c);
            }
            Err(_) => waiting.push(c),
        }
    }
    // A few more wait in the listen backlog.
    for _ in 0..4 {
        let mut c = Raw::connect(srv.addr()).await;
        c.send(b"PING\r\n").await;
        waiting.push(c);
    }
    process::wait_until("accept reports EMFILE", Duration::from_secs(20), || async {
        srv.output().contains("Too many open files")
    })
    .await;
    let before = srv.cpu_seconds();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cpu = srv.cpu_seconds() - before;
    println!(
        "fd exhaustion: RLIMIT_NOFILE {NOFILE}, {} clients served, {} waiting, {cpu:.2} s CPU in 2 s",
        served.len(),
        waiting.len()
    );
    // A loop retrying accept without pause burns a whole core: about 2 s in 2 s.
    assert!(
        cpu < 0.5,
        "{cpu:.2} s of CPU in 2 s while out of descriptors"
    );
    // The clients it has are still served.
    served[0].roundtrip(&["PING"], b"+PONG\r\n").await;
    served[1]
        .roundtrip(
            &["SUBSCRIBE", "c"],
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n",
        )
        .await;
    served[0].roundtrip(&["PUBLISH", "c", "m"], b":1\r\n").await;
    served[1]
        .expect(b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n")
        .await;
    // Ten leave; every waiting connection is accepted and answered.
    served.truncate(served.len() - 10);
    for c in &mut waiting {
        let mut pong = [0u8; 7];
        tokio::time::timeout(Duration::from_secs(20), c.stream.read_exact(&mut pong))
            .await
            .expect("accepted once descriptors were freed")
            .unwrap();
        assert_eq!(&pong, b"+PONG\r\n");
    }
    let mut obs = waiting.pop().unwrap();
    let connected = info_u64(&mut obs, "connected_clients").await;
    assert_eq!(connected as usize, served.len() + waiting.len() + 1);
    assert!(!srv.output().contains("panicked"), "{}", srv.output());
}

/// How a test client goes away.
#[derive(Clone, Copy, Debug)]
enum Close {
    /// close(): FIN, then RST if the server writes to it.
    Fin,
    /// SO_LINGER 0 then close(): RST at once.
    Reset,
}

fn close(c: TcpStream, how: Close) {
    if let Close::Reset = how {
        c.set_zero_linger().unwrap();
    }
    drop(c);
}

/// The sequence numbers of the `message` frames `watch` reads up to the message `mark`.
async fn read_until_mark(watch: &mut Raw, mark: &str) -> Vec<u64> {
    let mut seqs = Vec::new();
    loop {
        let f = resp::bulks(&watch.frame().await);
        assert_eq!(f[0], b"message");
        let payload = String::from_utf8(f[2].clone()).unwrap();
        if payload == mark {
            return seqs;
        }
        seqs.push(payload.parse().unwrap());
    }
}

/// After a client vanished: only the observer and the watcher are connected, only the
/// watcher's channel is left, and a message still reaches the watcher (returned: the sequence
/// numbers it got before it).
async fn settled(obs: &mut Raw, watch: &mut Raw, mark: &str) -> Vec<u64> {
    wait_connected(obs, 2).await;
    obs.roundtrip(&["PUBSUB", "CHANNELS"], b"*1\r\n$5\r\nwatch\r\n")
        .await;
    obs.roundtrip(&["PUBSUB", "NUMPAT"], b":0\r\n").await;
    obs.roundtrip(
        &["PUBSUB", "NUMSUB", "watch"],
        b"*2\r\n$5\r\nwatch\r\n:1\r\n",
    )
    .await;
    obs.roundtrip(&["PUBLISH", "watch", mark], b":1\r\n").await;
    read_until_mark(watch, mark).await
}

async fn subscribed(addr: std::net::SocketAddr) -> TcpStream {
    let mut c = Raw::connect(addr).await;
    c.send(b"SUBSCRIBE gone1 gone2\r\nPSUBSCRIBE gone* g?ne\r\n")
        .await;
    for _ in 0..4 {
        c.frame().await;
    }
    c.stream
}

/// Clients that vanish in every awkward state leave nothing behind, and the server goes on
/// serving the others: killed in the middle of a request, in the middle of a pipeline of
/// PUBLISH whose replies were never read, while a large backlog of messages is queued for them,
/// and by a reset instead of a clean close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanishing_clients_leave_nothing_behind() {
    let srv = process::Server::start("vanish", &[]).await;
    let addr = srv.addr();
    let mut obs = Raw::connect(addr).await;
    let mut watch = Raw::connect(addr).await;
    watch
        .roundtrip(
            &["SUBSCRIBE", "watch"],
            b"*3\r\n$9\r\nsubscribe\r\n$5\r\nwatch\r\n:1\r\n",
        )
        .await;
    let baseline = info_u64(&mut obs, "used_memory").await;
    let mut marks = 0;
    let mut mark = || {
        marks += 1;
        format!("mark-{marks}")
    };

    for how in [Close::Fin, Close::Reset] {
        // Half a multibulk, after subscribing.
        let mut c = subscribed(addr).await;
        c.write_all(b"*3\r\n$7\r\nPUBLISH\r\n$5\r\nwatch\r\n$100\r\nhalf")
            .await
            .unwrap();
        close(c, how);
        assert_eq!(
            settled(&mut obs, &mut watch, &mark()).await,
            Vec::<u64>::new()
        );

        // Half a line.
        let mut c = subscribed(addr).await;
        c.write_all(b"*3\r\n$7\r\nPUB").await.unwrap();
        close(c, how);
        assert_eq!(
            settled(&mut obs, &mut watch, &mark()).await,
            Vec::<u64>::new()
        );

        // A pipeline of PUBLISH, closed before reading any reply. Whatever prefix of it ran was
        // delivered to the watcher, in order, and nothing else.
        let mut c = TcpStream::connect(addr).await.unwrap();
        let mut pipeline = Vec::new();
        for i in 0..20_000u64 {
            pipeline.extend(support::encode(&[
                b"PUBLISH",
                b"watch",
                i.to_string().as_bytes(),
            ]));
        }
        c.write_all(&pipeline).await.unwrap();
        close(c, how);
        let got = settled(&mut obs, &mut watch, &mark()).await;
        assert!(
            got.iter().enumerate().all(|(k, &i)| k as u64 == i),
            "{how:?}: the watcher got a gap or a reorder"
        );
        println!(
            "pipeline closed ({how:?}): {} of 20000 PUBLISH ran",
            got.len()
        );
    }

    // A subscriber that stopped reading with megabytes queued for it.
    for how in [Close::Fin, Close::Reset] {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        let mut big = Raw::from_stream(sock.connect(addr).await.unwrap());
        big.cmd(&["CLIENT", "ID"]).await;
        let id = format!("id={}", resp::int_reply(&big.frame().await));
        big.roundtrip(
            &["SUBSCRIBE", "big"],
            b"*3\r\n$9\r\nsubscribe\r\n$3\r\nbig\r\n:1\r\n",
        )
        .await;
        let payload = vec![b'x'; 64 * 1024];
        let mut batch = Vec::new();
        for _ in 0..160 {
            batch.extend(support::encode(&[b"PUBLISH", b"big", &payload]));
        }
        obs.send(&batch).await;
        for _ in 0..160 {
            assert_eq!(obs.frame().await, b":1\r\n");
        }
        let list = info::text(&mut obs, &["CLIENT", "LIST"]).await;
        let omem: u64 = list
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .map(|l| {
                info::field(&info::client_fields(l), "omem")
                    .parse()
                    .unwrap()
            })
            .expect("the big subscriber");
        let queued = info_u64(&mut obs, "used_memory").await;
        assert!(omem > 4 << 20, "only {omem} bytes queued");
        close(big.stream, how);
        settled(&mut obs, &mut watch, &mark()).await;
        let after = info_u64(&mut obs, "used_memory").await;
        println!(
            "outbox dropped ({how:?}): omem {} KiB, used_memory {} KiB -> {} KiB -> {} KiB",
            omem >> 10,
            baseline >> 10,
            queued >> 10,
            after >> 10
        );
        assert!(
            after < baseline + (1 << 20),
            "used_memory {after} after, {baseline} before"
        );
    }

    // Fifty subscribed clients reset at once.
    let mut many = Vec::new();
    for _ in 0..50 {
        many.push(subscribed(addr).await);
    }
    for c in many {
        close(c, Close::Reset);
    }
    settled(&mut obs, &mut watch, &mark()).await;
    let after = info_u64(&mut obs, "used_memory").await;
    assert!(
        after < baseline + (1 << 20),
        "used_memory {after} after, {baseline} before"
    );
    assert!(!srv.output().contains("panicked"), "{}", srv.output());
}

/// What the server does with one malformed input.
enum Then {
    /// Replies exactly this, then closes.
    Close(&'static [u8]),
    /// Replies exactly this and keeps the connection.
    Reply(&'static [u8]),
    /// Closes without a reply.
    Drop,
    /// Waits for more bytes: no reply, still open.
    Wait,
}

/// Malformed requests and what Redis 7 does with each (checked against redis-server 7.0.15).
/// tests/protocol/requests.rs has the plainer cases; these are the hostile ones.
const GARBAGE: &[(&[u8], Then)] = &[
    (
        b"*1\r\n$2147483648\r\n",
        Then::Close(b"-ERR Protocol error: invalid bulk length\r\n"),
    ),
    (
        b"*3\r\n$7\r\nPUBLISH\r\n$2147483648\r\n",
        Then::Close(b"-ERR Protocol error: invalid bulk length\r\n"),
    ),
    (
        b"*1\r\n$-2\r\n",
        Then::Close(b"-ERR Protocol error: invalid bulk length\r\n"),
    ),
    (
        b"*1\r\n$-1\r\nPING\r\n",
        Then::Close(b"-ERR Protocol error: invalid bulk length\r\n"),
    ),
    (
        b"*1\r\n$+4\r\nPING\r\n",
        Then::Close(b"-ERR Protocol error: invalid bulk length\r\n"),
    ),
    (
        b"*1\r\n$04\r\nPING\r\n",
        Then::Close(b"-ERR Protocol error: invalid bulk length\r\n"),
    ),
    (
        b"*1\r\n*1\r\n",
        Then::Close(b"-ERR Protocol error: expected '$', got '*'\r\n"),
    ),
    (
        b"*2\r\n$4\r\nPING\r\n*1\r\n",
        Then::Close(b"-ERR Protocol error: expected '$', got '*'\r\n"),
    ),
    (
        b"*2147483648\r\n",
        Then::Close(b"-ERR Protocol error: invalid multibulk length\r\n"),
    ),
    (
        b"*01\r\n$4\r\nPING\r\n",
        Then::Close(b"-ERR Protocol error: invalid multibulk length\r\n"),
    ),
    (
        b"*1 \r\n$4\r\nPING\r\n",
        Then::Close(b"-ERR Protocol error: invalid multibulk length\r\n"),
    ),
    (
        b"*1\n$4\r\nPING\r\n",
        Then::Close(b"-ERR Protocol error: invalid multibulk length\r\n"),
    ),
    (
        b"PING 'x\r\n",
        Then::Close(b"-ERR Protocol error: unbalanced quotes in request\r\n"),
    ),
    (
        b"PING \"a\"b\r\n",
        Then::Close(b"-ERR Protocol error: unbalanced quotes in request\r\n"),
    ),
    // A negative count is an empty request.
    (b"*-5\r\nPING\r\n", Then::Reply(b"+PONG\r\n")),
    (
        b"*1\r\n$0\r\n\r\nPING\r\n",
        Then::Reply(b"-ERR unknown command '', with args beginning with: \r\n+PONG\r\n"),
    ),
    // The two bytes after a bulk are skipped unread.
    (
        b"*1\r\n$4\r\nPINGxxPING\r\n",
        Then::Reply(b"+PONG\r\n+PONG\r\n"),
    ),
    (b"\r\n\r\n\n*1\r\n$4\r\nPING\r\n", Then::Reply(b"+PONG\r\n")),
    (
        b"$4\r\nPING\r\n",
        Then::Reply(b"-ERR unknown command '$4', with args beginning with: \r\n+PONG\r\n"),
    ),
    // Raw bytes are echoed as they are, not as UTF-8 replacement characters.
    (
        b"\xff\xfe\xfd\r\nPING\r\n",
        Then::Reply(
            b"-ERR unknown command '\xff\xfe\xfd', with args beginning with: \r\n+PONG\r\n",
        ),
    ),
    (b"PUBLISH \xc3\x28 \"\\xff\"\r\n", Then::Reply(b":0\r\n")),
    // A NUL before the newline hides the line, as Redis's strchr does.
    (b"\x00\x01\x02\xff\xfe\r\n", Then::Wait),
    // A TLS ClientHello on the plain port.
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", Then::Wait),
    // Cross-protocol scripting: "POST" or "Host:" ends the connection, dropping replies.
    (b"POST / HTTP/1.1\r\nHost: x\r\n\r\n", Then::Drop),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", Then::Drop),
    (b"PING\r\nhOsT: x\r\n", Then::Drop),
];

/// A subscriber reading `health` while a publisher publishes 0, 1, 2, … until `stop`; returns
/// how many were published, after checking the subscriber got each once, in order.
struct Healthy {
    stop: std::sync::Arc<tokio::sync::Notify>,
    publisher: tokio::task::JoinHandle<u64>,
    subscriber: tokio::task::JoinHandle<Vec<u64>>,
}

impl Healthy {
    async fn start(addr: std::net::SocketAddr) -> Healthy {
        let mut sub = Raw::connect(addr).await;
        sub.roundtrip(
            &["SUBSCRIBE", "health"],
            b"*3\r\n$9\r\nsubscribe\r\n$6\r\nhealth\r\n:1\r\n",
        )
        .await;
        let stop = std::sync::Arc::new(tokio::sync::Notify::new());
        let stopped = stop.clone();
        let publisher = tokio::spawn(async move {
            let mut p = Raw::connect(addr).await;
            let mut n = 0u64;
            let stopped = stopped.notified();
            tokio::pin!(stopped);
            loop {
                let mut batch = Vec::new();
                for i in n..n + 10 {
                    batch.extend(support::encode(&[
                        b"PUBLISH",
                        b"health",
                        i.to_string().as_bytes(),
                    ]));
                }
                p.send(&batch).await;
                for _ in 0..10 {
                    assert_eq!(p.frame().await, b":1\r\n");
                }
                n += 10;
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tokio::time::sleep(Duration::from_millis(2)) => {}
                }
            }
            p.roundtrip(&["PUBLISH", "health", "end"], b":1\r\n").await;
            n
        });
        let subscriber = tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let f = resp::bulks(&sub.frame().await);
                let payload = String::from_utf8(f[2].clone()).unwrap();
                if payload == "end" {
                    return got;
                }
                got.push(payload.parse().unwrap());
            }
        });
        Healthy {
            stop,
            publisher,
            subscriber,
        }
    }

    async fn finish(self) -> u64 {
        self.stop.notify_one();
        let n = self.publisher.await.unwrap();
        let got = self.subscriber.await.unwrap();
        assert_eq!(got.len() as u64, n, "messages lost or repeated");
        assert!(
            got.iter().enumerate().all(|(k, &i)| k as u64 == i),
            "reordered"
        );
        n
    }
}

/// Hostile input on some connections never disturbs the others: each malformed request gets
/// Redis's exact error (and close) or is waited on, random binary garbage ends in errors or a
/// close, hundreds of clients dribbling requests a byte at a time are served, and meanwhile a
/// subscriber receives every message of a steady stream, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_slowloris_do_not_disturb_a_healthy_subscriber() {
    let s = TestServer::start().await;
    let addr = s.addr();
    let healthy = Healthy::start(addr).await;

    for (input, then) in GARBAGE {
        let mut c = Raw::connect(addr).await;
        c.send(input).await;
        match then {
            Then::Close(reply) => {
                c.expect(reply).await;
                c.expect_closed().await;
            }
            Then::Reply(reply) => {
                c.expect(reply).await;
                c.roundtrip(&["PING"], b"+PONG\r\n").await;
            }
            Then::Drop => c.expect_closed().await,
            Then::Wait => c.expect_silence(200).await,
        }
    }

    // Random bytes: only error replies, then (usually) a close.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut garbage = Vec::new();
    for _ in 0..16 {
        let mut bytes = vec![0u8; 64 * 1024];
        for b in bytes.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        garbage.push(tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            let _ = c.write_all(&bytes).await;
            let mut out = Vec::new();
            let _ = tokio::time::timeout(Duration::from_millis(500), c.read_to_end(&mut out)).await;
            let mut rest = &out[..];
            while let Some(n) = resp::frame_len(rest) {
                assert_eq!(rest[0], b'-', "not an error: {}", support::show(&rest[..n]));
                rest = &rest[n..];
            }
        }));
    }
    for g in garbage {
        g.await.unwrap();
    }

    // Slowloris: 200 clients each send SUBSCRIBE one byte per write, taking turns.
    const SLOW: usize = 200;
    let mut slow = Vec::new();
    for _ in 0..SLOW {
        slow.push(Raw::connect(addr).await);
    }
    let req = support::encode(&[b"SUBSCRIBE", b"slow"]);
    for &b in &req {
        for c in slow.iter_mut() {
            c.send(&[b]).await;
        }
        tokio::task::yield_now().await;
    }
    for c in slow.iter_mut() {
        c.expect(b"*3\r\n$9\r\nsubscribe\r\n$4\r\nslow\r\n:1\r\n")
            .await;
    }
    let mut p = Raw::connect(addr).await;
    for &b in &support::encode(&[b"PUBLISH", b"slow", b"dribbled"]) {
        p.send(&[b]).await;
    }
    p.expect(format!(":{SLOW}\r\n").as_bytes()).await;
    for c in slow.iter_mut() {
        c.expect(b"*3\r\n$7\r\nmessage\r\n$4\r\nslow\r\n$8\r\ndribbled\r\n")
            .await;
    }
    drop((slow, p));

    let n = healthy.finish().await;
    println!("garbage: {} malformed inputs, 16 x 64 KiB random, {SLOW} slowloris clients; healthy subscriber got all {n} messages in order", GARBAGE.len());
    let mut obs = Raw::connect(addr).await;
    wait_connected(&mut obs, 1).await;
    info::assert_no_subscriptions(&mut obs).await;
}
