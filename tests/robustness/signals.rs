//! The binary under signals and SHUTDOWN: SIGTERM during a publishing flood (exit 0, no panic,
//! every subscriber got every message acknowledged before the signal, in order, then a clean
//! close), SIGINT, SIGHUP reopening the log file, SHUTDOWN [NOW], the pidfile, and the health
//! probe.

/// The health probe is binary-only code; it is tested here from its source.
#[path = "../../src/bin/pubsubd/health.rs"]
#[allow(dead_code)]
mod health;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::support::process::{free_port, signal, spawn, wait_exit, wait_for_port};
use crate::support::{encode, process, resp, Raw};

const PUBLISHERS: usize = 3;
const SUBSCRIBERS: usize = 3;

/// Reads a subscriber's stream to EOF and returns, per publisher, the message numbers it got.
async fn drain(mut s: tokio::net::TcpStream) -> Vec<Vec<u64>> {
    let mut buf = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf)).await;
    r.expect("subscriber closed in time")
        .expect("closed cleanly, not reset");
    let mut got = vec![Vec::new(); PUBLISHERS];
    let mut rest = &buf[..];
    while let Some(n) = resp::frame_len(rest) {
        let text = String::from_utf8_lossy(&rest[..n]).into_owned();
        rest = &rest[n..];
        if let Some(payload) = text
            .rsplit("\r\n")
            .nth(1)
            .filter(|_| text.contains("message"))
        {
            if let Some((p, i)) = payload.split_once('-') {
                got[p.parse::<usize>().unwrap()].push(i.parse().unwrap());
            }
        }
    }
    assert!(
        rest.is_empty(),
        "a cut frame at close: {:?}",
        String::from_utf8_lossy(rest)
    );
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_flood_delivers_everything_acknowledged() {
    let port = free_port();
    let p = spawn(&[
        "--port",
        &port.to_string(),
        "--save",
        "",
        "--shutdown-timeout",
        "10",
    ]);
    wait_for_port(port).await;
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut subs = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let mut s = Raw::connect(addr).await;
        s.roundtrip(
            &["SUBSCRIBE", "flood"],
            b"*3\r\n$9\r\nsubscribe\r\n$5\r\nflood\r\n:1\r\n",
        )
        .await;
        subs.push(tokio::spawn(drain(s.stream)));
    }
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..PUBLISHERS).map(|_| AtomicU64::new(0)).collect());
    let mut pubs = Vec::new();
    for id in 0..PUBLISHERS {
        let acked = acked.clone();
        pubs.push(tokio::spawn(async move {
            let Ok(mut c) = tokio::net::TcpStream::connect(addr).await else {
                return;
            };
            use tokio::io::AsyncWriteExt;
            let mut n = 0u64;
            let mut buf = Vec::new();
            loop {
                let mut batch = Vec::new();
                for i in n..n + 50 {
                    batch.extend(encode(&[
                        b"PUBLISH",
                        b"flood",
                        format!("{id}-{i}").as_bytes(),
                    ]));
                }
                if c.write_all(&batch).await.is_err() {
                    return;
                }
                // Count the replies: each acknowledges one message.
                while (buf.len() / 4) < 50 {
                    let mut chunk = [0u8; 4096];
                    match c.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => buf.extend_from_slice(&chunk[..k]),
                    }
                    let done = buf.len() / 4;
                    acked[id].store(n + done.min(50) as u64, Ordering::SeqCst);
                }
                buf.drain(..200);
                n += 50;
            }
        }));
    }
    // Let the flood run, then signal, remembering what had been acknowledged.
    while acked.iter().map(|a| a.load(Ordering::SeqCst)).sum::<u64>() < 3000 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    signal(&p, "TERM");
    let (status, stderr) = wait_exit(p).await;
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for p in pubs {
        p.await.unwrap();
    }
    // Everything acknowledged, including the replies the publishers read after the signal.
    let after: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    for s in subs {
        let got = s.await.unwrap();
        for (id, seq) in got.iter().enumerate() {
            // In order, without gaps, and at least everything acknowledged.
            assert!(
                seq.iter().enumerate().all(|(k, &i)| k as u64 == i),
                "publisher {id}: gap or reorder"
            );
            assert!(after[id] >= before[id]);
            assert!(
                seq.len() as u64 >= after[id],
                "publisher {id}: got {} < acked {} ({} before SIGTERM)",
                seq.len(),
                after[id],
                before[id]
            );
        }
    }
}

#[tokio::test]
async fn sigint_exits_zero_and_removes_the_pidfile() {
    let dir = process::temp_dir("sigint");
    let pidfile = dir.join("pubsubd.pid");
    let port = free_port();
    let p = spawn(&[
        "--port",
        &port.to_string(),
        "--pidfile",
        pidfile.to_str().unwrap(),
    ]);
    wait_for_port(port).await;
    // The pidfile is written once the server listens (as Redis does), so an open port does not
    // mean it is there yet: wait until it holds a pid, then check that pid is the child's.
    let read_pid = || {
        std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
    };
    process::wait_until(
        "the pidfile holds a pid",
        Duration::from_secs(10),
        || async { read_pid().is_some() },
    )
    .await;
    assert_eq!(read_pid(), Some(p.0.id()));
    signal(&p, "INT");
    let (status, _) = wait_exit(p).await;
    assert_eq!(status.code(), Some(0));
    assert!(!pidfile.exists());
}

#[tokio::test]
async fn sighup_reopens_the_log_file() {
    let dir = process::temp_dir("sighup");
    let log = dir.join("pubsubd.log");
    let port = free_port();
    let p = spawn(&[
        "--port",
        &port.to_string(),
        "--logfile",
        log.to_str().unwrap(),
    ]);
    wait_for_port(port).await;
    std::fs::rename(&log, dir.join("pubsubd.log.1")).unwrap();
    signal(&p, "HUP");
    for _ in 0..200 {
        if std::fs::read_to_string(&log).is_ok_and(|t| t.contains("reopened the log file")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let new = std::fs::read_to_string(&log).expect("a new log file");
    assert!(
        new.contains("* Received SIGHUP, reopened the log file"),
        "{new}"
    );
    let old = std::fs::read_to_string(dir.join("pubsubd.log.1")).unwrap();
    // Redis's line format: pid:M date time.ms mark message.
    let ready = old
        .lines()
        .find(|l| l.contains("Ready to accept connections"))
        .unwrap();
    let (pid, rest) = ready.split_once(":M ").unwrap();
    assert_eq!(pid, p.0.id().to_string());
    assert_eq!(rest.split(' ').nth(4), Some("*"), "{ready}");
    signal(&p, "TERM");
    let (status, _) = wait_exit(p).await;
    assert_eq!(status.code(), Some(0));
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("Received SIGTERM scheduling shutdown..."));
}

#[tokio::test]
async fn shutdown_command_flushes_then_exits_zero() {
    let port = free_port();
    let p = spawn(&["--port", &port.to_string()]);
    wait_for_port(port).await;
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut sub = Raw::connect(addr).await;
    sub.roundtrip(
        &["SUBSCRIBE", "c"],
        b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n",
    )
    .await;
    let mut c = Raw::connect(addr).await;
    c.roundtrip(&["SHUTDOWN", "ABORT"], b"-ERR No shutdown in progress.\r\n")
        .await;
    c.roundtrip(&["SHUTDOWN", "SAVE", "NOSAVE"], b"-ERR syntax error\r\n")
        .await;
    c.roundtrip(&["MULTI"], b"+OK\r\n").await;
    c.roundtrip(
        &["SHUTDOWN"],
        b"-ERR Command not allowed inside a transaction\r\n",
    )
    .await;
    c.roundtrip(&["DISCARD"], b"+OK\r\n").await;
    c.roundtrip(&["PUBLISH", "c", "last"], b":1\r\n").await;
    // Redis closes the connection without a reply.
    c.cmd(&["SHUTDOWN", "NOSAVE"]).await;
    c.expect_closed().await;
    sub.expect(b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$4\r\nlast\r\n")
        .await;
    sub.expect_closed().await;
    let (status, _) = wait_exit(p).await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn shutdown_now_exits_zero() {
    let port = free_port();
    let p = spawn(&["--port", &port.to_string()]);
    wait_for_port(port).await;
    let mut c = Raw::connect(format!("127.0.0.1:{port}").parse().unwrap()).await;
    c.cmd(&["SHUTDOWN", "NOW", "FORCE"]).await;
    c.expect_closed().await;
    let (status, _) = wait_exit(p).await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn health_check_probe() {
    let port = free_port();
    let p = spawn(&["--port", &port.to_string()]);
    wait_for_port(port).await;
    let probe = |target: String| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pubsubd"))
            .args(["--health-check", &target])
            .output()
            .unwrap()
    };
    let ok = tokio::task::spawn_blocking(move || probe(port.to_string()))
        .await
        .unwrap();
    assert!(ok.status.success());
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "+PONG");
    signal(&p, "TERM");
    wait_exit(p).await;
    let down = tokio::task::spawn_blocking(move || probe(format!("127.0.0.1:{port}")))
        .await
        .unwrap();
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).starts_with("unhealthy: "));
}

/// What `--health-check` without a port probes in a container (where the server is PID 1):
/// the TCP ports that process listens on, found through /proc, wildcards as loopback.
#[tokio::test]
async fn health_check_finds_the_ports_a_server_listens_on() {
    let port = free_port();
    let p = spawn(&["--port", &port.to_string(), "--bind", "0.0.0.0"]);
    wait_for_port(port).await;
    let addrs = health::listening_addrs(p.0.id()).unwrap();
    let want: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert_eq!(addrs, vec![want], "0.0.0.0 is probed on loopback");
    let targets: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    let reply = tokio::task::spawn_blocking(move || health::probe_any(&targets, None))
        .await
        .unwrap();
    assert_eq!(reply, Ok("+PONG".to_string()));
    signal(&p, "TERM");
    wait_exit(p).await;
}

/// `supervised systemd`: READY=1 once listening and STOPPING=1 at shutdown, on $NOTIFY_SOCKET,
/// so Debian's `Type=notify` redis-server unit can start pubsubd.
#[tokio::test]
async fn supervised_systemd_notifies_ready_and_stopping() {
    let dir = process::temp_dir("notify");
    let path = dir.join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let port = free_port();
    let p = process::Proc(
        std::process::Command::new(env!("CARGO_BIN_EXE_pubsubd"))
            .args(["--port", &port.to_string(), "--supervised", "systemd"])
            .env("NOTIFY_SOCKET", &path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let recv = move |sock: std::os::unix::net::UnixDatagram| {
        let mut buf = [0u8; 64];
        let n = sock.recv(&mut buf).expect("a notification");
        (String::from_utf8_lossy(&buf[..n]).into_owned(), sock)
    };
    let (ready, sock) = tokio::task::spawn_blocking(move || recv(sock))
        .await
        .unwrap();
    assert_eq!(ready, "READY=1");
    wait_for_port(port).await;
    signal(&p, "TERM");
    let (stopping, _) = tokio::task::spawn_blocking(move || recv(sock))
        .await
        .unwrap();
    assert_eq!(stopping, "STOPPING=1");
    let (status, _) = wait_exit(p).await;
    assert_eq!(status.code(), Some(0));
}

/// The container default `bind * -::*` listens on IPv4 and IPv6 on one port (IPV6_V6ONLY, as
/// Redis sets it), instead of the IPv6 socket colliding with the IPv4 one.
#[tokio::test]
async fn wildcard_ipv4_and_ipv6_bind_together() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        return; // no IPv6 on this machine
    }
    let port = free_port();
    let p = spawn(&["--bind", "*", "::*", "--port", &port.to_string()]);
    wait_for_port(port).await;
    let mut v6 = Raw::connect(format!("[::1]:{port}").parse().unwrap()).await;
    v6.roundtrip(&["PING"], b"+PONG\r\n").await;
    signal(&p, "TERM");
    let (status, stderr) = wait_exit(p).await;
    assert_eq!(status.code(), Some(0), "{stderr}");
}
