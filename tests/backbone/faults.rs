//! The backbone under faults, with real processes: a NATS server killed under a node (it fails
//! over and its interest follows), all of NATS down (local service goes on, the backbone comes
//! back by itself), a pubsubd node killed and restarted, a stalled NATS server under a burst
//! (publishers never wait, drops are counted, the queue stays within its limit), and bad
//! backbone configuration at start-up.

use std::time::{Duration, Instant};

use pubsubd::registry::Namespace;

use crate::support::nats::{message, subject, wait_interest, wait_until, Nats, Node};
use crate::support::{self, nats, process};

/// Publishes numbered probes on `ch` through `p` every 20 ms until `s` receives one; returns
/// how long that took and the probe number received. Every frame before it must be a probe
/// too (anything else fails the test).
async fn probe_until_received(
    p: &mut support::Raw,
    s: &mut support::Raw,
    ch: &str,
) -> (Duration, u64) {
    let started = Instant::now();
    let mut i = 0u64;
    loop {
        i += 1;
        p.cmd(&["PUBLISH", ch, &format!("probe-{i}")]).await;
        p.frame().await;
        if let Ok(f) = tokio::time::timeout(Duration::from_millis(20), s.frame()).await {
            let text = String::from_utf8_lossy(&f).into_owned();
            let n = text
                .split("probe-")
                .nth(1)
                .and_then(|t| t.trim_end().parse::<u64>().ok())
                .unwrap_or_else(|| panic!("not a probe: {text:?}"));
            return (started.elapsed(), n);
        }
        assert!(started.elapsed() < nats::WAIT, "no probe came through");
    }
}

#[tokio::test]
async fn killing_a_nodes_nats_server_fails_over_and_restores_its_interest() {
    let mut nats = Nats::cluster(3).await;
    // Each node is given its own server only; the others are learnt from the cluster.
    let a = Node::connected(&nats[0].url(), &[]).await;
    let b = Node::connected(&nats[1].url(), &[]).await;
    let c = Node::connected(&nats[2].url(), &[]).await;
    assert_eq!(
        a.field("backbone_server").await,
        format!("127.0.0.1:{} (n1)", nats[0].port)
    );
    let mut sa = a.client().await;
    sa.cmd(&["SUBSCRIBE", "fo"]).await;
    sa.frame().await;
    let mut pa = a.client().await;
    pa.cmd(&["PSUBSCRIBE", "f*"]).await;
    pa.frame().await;
    let mut sc = c.client().await;
    sc.cmd(&["SUBSCRIBE", "fo"]).await;
    sc.frame().await;
    // B's server has learnt A's two subscriptions and C's one over the routes.
    wait_interest(&nats[1], Namespace::Global, b"fo", 3).await;
    let mut pb = b.client().await;
    pb.roundtrip(&["PUBLISH", "fo", "before"], b":0\r\n").await;
    for s in [&mut sa, &mut sc] {
        s.expect(&message(b"message", b"fo", b"before")).await;
    }
    pa.expect(&nats::pmessage(b"f*", b"fo", b"before")).await;

    nats[0].kill();
    let killed = Instant::now();
    // Local delivery on A never stops.
    let mut la = a.client().await;
    la.roundtrip(&["PUBLISH", "fo", "local"], b":2\r\n").await;
    sa.expect(&message(b"message", b"fo", b"local")).await;
    pa.expect(&nats::pmessage(b"f*", b"fo", b"local")).await;
    // Cross-node delivery resumes once A is on another server with its interest restored.
    let (took, n) = probe_until_received(&mut pb, &mut sa, "fo").await;
    eprintln!(
        "failover: first cross-node delivery {} ms after the kill ({} ms of probing)",
        killed.elapsed().as_millis(),
        took.as_millis()
    );
    // The pattern subscriber got the same probe (its subscription was restored too), then
    // both see every later message once.
    let want = format!("probe-{n}");
    loop {
        let f = pa.frame().await;
        if f == nats::pmessage(b"f*", b"fo", want.as_bytes()) {
            break;
        }
    }
    pb.roundtrip(&["PUBLISH", "fo", "after"], b":0\r\n").await;
    sa.expect(&message(b"message", b"fo", b"after")).await;
    pa.expect(&nats::pmessage(b"f*", b"fo", b"after")).await;
    // C never noticed: it has every probe up to the one A got, then "after".
    let mut probes = 0;
    loop {
        let f = sc.frame().await;
        if f == message(b"message", b"fo", b"after") {
            break;
        }
        probes += 1;
    }
    assert!(probes >= 1);
    let info = a.info().await;
    assert_eq!(info["backbone_status"], "connected");
    assert_eq!(info["backbone_reconnects"], "1");
    assert_ne!(
        info["backbone_server"],
        format!("127.0.0.1:{} (n1)", nats[0].port)
    );
    assert!(
        a.log_text()
            .contains("Backbone failed over from 127.0.0.1:"),
        "{}",
        a.log_text()
    );
}

#[tokio::test]
async fn with_all_of_nats_down_nodes_serve_locally_and_recover_by_themselves() {
    let mut nats = Nats::start(&[]).await;
    let url = nats.url();
    let a = Node::connected(&url, &[]).await;
    let b = Node::connected(&url, &[]).await;
    let mut sa = a.client().await;
    sa.cmd(&["SUBSCRIBE", "ch"]).await;
    sa.frame().await;
    wait_interest(&nats, Namespace::Global, b"ch", 1).await;

    nats.kill();
    a.wait_status("disconnected").await;
    b.wait_status("disconnected").await;
    // A serves its own clients.
    let mut la = a.client().await;
    la.roundtrip(&["PUBLISH", "ch", "local"], b":1\r\n").await;
    sa.expect(&message(b"message", b"ch", b"local")).await;
    // B's publishes cannot cross: not delivered later, counted now.
    let mut pb = b.client().await;
    let before = b.counter("backbone_dropped_out").await;
    for i in 0..10 {
        pb.roundtrip(&["PUBLISH", "ch", &format!("lost-{i}")], b":0\r\n")
            .await;
    }
    assert_eq!(b.counter("backbone_dropped_out").await, before + 10);
    assert!(b.log_text().contains("not forwarding local messages"));

    nats.restart().await;
    a.wait_status("connected").await;
    b.wait_status("connected").await;
    // A's interest came back without its client doing anything.
    wait_interest(&nats, Namespace::Global, b"ch", 1).await;
    pb.roundtrip(&["PUBLISH", "ch", "back"], b":0\r\n").await;
    sa.expect(&message(b"message", b"ch", b"back")).await;
    sa.roundtrip(&["PING"], b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        .await;
    assert_eq!(a.counter("backbone_reconnects").await, 1);
}

#[tokio::test]
async fn a_killed_node_restarts_and_the_others_do_not_notice() {
    let nats = Nats::start(&[]).await;
    let url = nats.url();
    let mut a = Node::connected(&url, &[]).await;
    let b = Node::connected(&url, &[]).await;
    let c = Node::connected(&url, &[]).await;
    let mut sb = b.client().await;
    sb.cmd(&["SUBSCRIBE", "r"]).await;
    sb.frame().await;
    let mut sc = c.client().await;
    sc.cmd(&["SUBSCRIBE", "r"]).await;
    sc.frame().await;
    wait_interest(&nats, Namespace::Global, b"r", 2).await;
    let mut pa = a.client().await;
    pa.roundtrip(&["PUBLISH", "r", "1"], b":0\r\n").await;
    for s in [&mut sb, &mut sc] {
        s.expect(&message(b"message", b"r", b"1")).await;
    }
    a.kill();
    // B and C go on between themselves.
    let mut pc = c.client().await;
    pc.roundtrip(&["PUBLISH", "r", "2"], b":1\r\n").await;
    sb.expect(&message(b"message", b"r", b"2")).await;
    sc.expect(&message(b"message", b"r", b"2")).await;
    // A comes back on the same port, a new origin, and its clients reconnect as to a Redis.
    a.restart().await;
    a.wait_status("connected").await;
    let mut sa = a.client().await;
    sa.cmd(&["SUBSCRIBE", "r"]).await;
    sa.frame().await;
    wait_interest(&nats, Namespace::Global, b"r", 3).await;
    let mut pa = a.client().await;
    pa.roundtrip(&["PUBLISH", "r", "3"], b":1\r\n").await;
    pc.roundtrip(&["PUBLISH", "r", "4"], b":1\r\n").await;
    for s in [&mut sa, &mut sb, &mut sc] {
        let mut got = vec![s.frame().await, s.frame().await];
        got.sort();
        let mut want = vec![
            message(b"message", b"r", b"3"),
            message(b"message", b"r", b"4"),
        ];
        want.sort();
        assert_eq!(got, want);
    }
    assert_eq!(b.counter("backbone_reconnects").await, 0);
    assert_eq!(c.counter("backbone_dropped_in").await, 0);
}

#[tokio::test]
async fn a_stalled_backbone_never_blocks_publishers_and_counts_what_it_drops() {
    let nats = Nats::start(&[]).await;
    let url = nats.url();
    // The local subscriber reads as it goes, but on a busy machine the publisher's 64 MiB can
    // get ahead of it: its output limit is not what this test is about.
    let a = Node::connected(
        &url,
        &[
            "--backbone-queue-limit",
            "1mb",
            "--client-output-buffer-limit",
            "pubsub 256mb 128mb 60",
        ],
    )
    .await;
    let b = Node::connected(&url, &[]).await;
    let mut sa = a.client().await;
    sa.cmd(&["SUBSCRIBE", "burst"]).await;
    sa.frame().await;
    let mut sb = b.client().await;
    sb.cmd(&["SUBSCRIBE", "burst"]).await;
    sb.frame().await;
    wait_interest(&nats, Namespace::Global, b"burst", 2).await;
    // The NATS server stops reading: A's socket, the client's queue and then A's own queue
    // fill up.
    signal(nats.pid(), libc::SIGSTOP);
    let payload = vec![b'x'; 64 * 1024];
    let n = 1000; // 64 MiB, far more than the 1 MiB queue and the socket buffers hold.
                  // The local subscriber reads as it goes.
    let want = message(b"message", b"burst", &payload);
    let local = tokio::spawn(async move {
        for _ in 0..n {
            sa.expect(&want).await;
        }
        sa
    });
    let mut pa = a.client().await;
    let mut batch = Vec::new();
    for _ in 0..n {
        batch.extend(support::encode(&[b"PUBLISH", b"burst", &payload]));
    }
    pa.send(&batch).await;
    // Every PUBLISH is answered (publishers never wait for the backbone), and the local
    // subscriber gets every message.
    for _ in 0..n {
        pa.expect(b":1\r\n").await;
    }
    let mut sa = local.await.unwrap();
    let info = a.info().await;
    let dropped: u64 = info["backbone_dropped_out"].parse().unwrap();
    let queued: u64 = info["backbone_queued_out_bytes"].parse().unwrap();
    assert!(dropped > 0, "{info:?}");
    assert!(queued <= 1 << 20, "{info:?}");
    let log = a.log_text();
    assert_eq!(
        log.matches("not forwarding local messages").count(),
        1,
        "{log}"
    );
    eprintln!(
        "stalled NATS: {dropped} of {n} messages of 64 KiB not forwarded, {queued} bytes queued"
    );
    signal(nats.pid(), libc::SIGCONT);
    wait_until("A's queue drains", || async {
        a.counter("backbone_queued_out_bytes").await == 0
    })
    .await;
    a.wait_status("connected").await;
    // B gets some of the burst, whole and without duplicates, then what comes after.
    wait_interest(&nats, Namespace::Global, b"burst", 2).await;
    pa.roundtrip(&["PUBLISH", "burst", "after"], b":1\r\n")
        .await;
    sa.expect(&message(b"message", b"burst", b"after")).await;
    let mut received = 0u64;
    loop {
        let f = sb.frame().await;
        if f == message(b"message", b"burst", b"after") {
            break;
        }
        assert_eq!(f, message(b"message", b"burst", &payload));
        received += 1;
    }
    assert!(received + dropped <= n as u64, "{received} + {dropped}");
}

#[tokio::test]
async fn a_node_that_stops_reading_never_blocks_publishers_elsewhere() {
    // NATS cuts a client off after 1 s of blocked writes (its default is 10 s).
    let conf = process::temp_dir("stalled-node").join("nats.conf");
    std::fs::write(&conf, "write_deadline: \"1s\"\n").unwrap();
    let nats = Nats::start(&["-c".into(), conf.display().to_string()]).await;
    let url = nats.url();
    // A's subscriber reads only once A resumes, while A hands it the backlog it received
    // before it stopped (tens of MiB): this test is about the backbone, so A's output limit
    // is raised above that backlog rather than left to cut a busy test reader off.
    let a = Node::connected(
        &url,
        &["--client-output-buffer-limit", "pubsub 512mb 512mb 0"],
    )
    .await;
    let b = Node::connected(&url, &[]).await;
    let c = Node::connected(&url, &[]).await;
    let mut sa = a.client().await;
    sa.cmd(&["SUBSCRIBE", "flood"]).await;
    sa.frame().await;
    let mut sc = c.client().await;
    sc.cmd(&["SUBSCRIBE", "flood"]).await;
    sc.frame().await;
    wait_interest(&nats, Namespace::Global, b"flood", 2).await;
    // A stops reading anything, NATS included.
    signal(a.pid(), libc::SIGSTOP);
    let n = 2000u32; // 128 MiB of 64 KiB messages: more than NATS buffers for a client.
    let numbered = |i: u32| {
        let mut p = vec![b'z'; 64 * 1024];
        p[..4].copy_from_slice(&i.to_be_bytes());
        p
    };
    let head = b"*3\r\n$7\r\nmessage\r\n$5\r\nflood\r\n$65536\r\n".len();
    let index = move |f: &[u8]| -> Option<u32> {
        if f == message(b"message", b"flood", b"end") {
            return None;
        }
        let i = u32::from_be_bytes(f[head..head + 4].try_into().unwrap());
        assert!(
            f == message(b"message", b"flood", &numbered(i)),
            "frame {i} is whole"
        );
        Some(i)
    };
    // The healthy subscriber reads as it goes, until the end marker.
    let healthy = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(i) = index(&sc.frame().await) {
            got.push(i);
        }
        got
    });
    let mut pb = b.client().await;
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let mut batch = Vec::new();
        for &i in chunk {
            batch.extend(support::encode(&[b"PUBLISH", b"flood", &numbered(i)]));
        }
        pb.send(&batch).await;
        // Every PUBLISH on B is answered while A is stopped.
        for _ in chunk {
            pb.expect(b":0\r\n").await;
        }
    }
    // A's subscriber reads as A catches up with what it had received before it stopped.
    let stopped = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(i) = index(&sa.frame().await) {
            got.push(i);
        }
        got
    });
    signal(a.pid(), libc::SIGCONT);
    a.wait_status("connected").await;
    wait_interest(&nats, Namespace::Global, b"flood", 2).await;
    pb.roundtrip(&["PUBLISH", "flood", "end"], b":0\r\n").await;
    let on_c = healthy.await.unwrap();
    // C: in order, once each; what it missed B counted as not forwarded (NATS held B back
    // while it gave up on A).
    assert!(on_c.windows(2).all(|w| w[0] < w[1]));
    let dropped_b = b.counter("backbone_dropped_out").await;
    assert_eq!(on_c.len() as u64 + dropped_b, n as u64);
    // A: what it received before NATS cut it off, in order and once, then the marker.
    let on_a = stopped.await.unwrap();
    assert!(on_a.windows(2).all(|w| w[0] < w[1]));
    eprintln!(
        "stopped node: C received {} of {n} (B dropped {dropped_b}), A received {} and reconnected {} time(s)",
        on_c.len(),
        on_a.len(),
        a.counter("backbone_reconnects").await
    );
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: sending a signal to a child process we started.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

#[tokio::test]
async fn bad_backbone_config_at_start_up() {
    let dead = format!("nats://127.0.0.1:{}", process::free_port());
    // Unreachable, by default: the node starts, serves local clients, says why, keeps trying.
    let a = Node::start(&dead, &["--backbone-connect-timeout", "300"]).await;
    let mut c = a.client().await;
    c.roundtrip(&["PING"], b"+PONG\r\n").await;
    assert_eq!(a.field("backbone_status").await, "connecting");
    let log = a.log_text();
    assert!(log.contains("Backbone unreachable:"), "{log}");
    assert!(log.contains("Starting standalone"), "{log}");
    c.roundtrip(&["PUBLISH", "x", "y"], b":0\r\n").await;
    assert_eq!(a.counter("backbone_dropped_out").await, 1);

    // With backbone-required yes: a clear line and exit status 1, within the connect timeout.
    let (status, out) = run_to_exit(&[
        "--backbone",
        &dead,
        "--backbone-required",
        "yes",
        "--backbone-connect-timeout",
        "300",
    ]);
    assert_eq!(status.code(), Some(1), "{out}");
    assert!(out.contains("Backbone unreachable"), "{out}");

    // Malformed settings are fatal config errors, named.
    let (status, out) = run_to_exit(&["--backbone", "http://127.0.0.1:4222"]);
    assert_eq!(status.code(), Some(1));
    assert!(
        out.contains("Invalid backbone URL 'http://127.0.0.1:4222'"),
        "{out}"
    );
    let (status, out) = run_to_exit(&[
        "--backbone",
        &dead,
        "--backbone-creds-file",
        "/nonexistent/x.creds",
    ]);
    assert_eq!(status.code(), Some(1));
    assert!(
        out.contains("cannot read backbone-creds-file '/nonexistent/x.creds'"),
        "{out}"
    );
    let (status, out) = run_to_exit(&["--backbone", &dead, "--backbone-prefix", "a.>"]);
    assert_eq!(status.code(), Some(1));
    assert!(out.contains("backbone-prefix must be"), "{out}");
    // A URL's password never reaches the log.
    let (_, out) = run_to_exit(&["--backbone", "http://u:s3cret@127.0.0.1:1"]);
    assert!(!out.contains("s3cret"), "{out}");
    assert!(out.contains("http://***@127.0.0.1:1"), "{out}");
    drop(a);
    let _ = subject(Namespace::Global, b"");
}

/// Runs the binary with `args` until it exits (bounded), returning its status and output.
fn run_to_exit(args: &[&str]) -> (std::process::ExitStatus, String) {
    let port = process::free_port().to_string();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_pubsubd"));
    cmd.args(["--port", &port]).args(args);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pubsubd did not exit: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, text)
}
