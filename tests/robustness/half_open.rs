//! Half-open connections: a subscriber in a network namespace, connected over a veth pair,
//! vanishes without a FIN or a RST reaching the server (its link goes down, then its process is
//! killed). With `tcp-keepalive 1` the server's keepalive probes go unanswered and it drops the
//! connection after Redis's 1 + 3 × 1 seconds, removing its subscriptions.
//!
//! Needs root and iproute2 (`ip netns`), as CI has: without them the test fails and says so.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::info::info_u64;
use crate::support::process::Server;
use crate::support::{info, process, Raw};

/// Runs `ip ARGS`, panicking with its error output if it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip` (install iproute2): {e}"));
    assert!(
        out.status.success(),
        "`ip {}` failed (this test needs root and iproute2): {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace joined to this one by a veth pair, `host` ↔ `peer`; removed on drop.
struct Netns {
    name: String,
    host_if: String,
    peer_if: String,
    host_ip: String,
    peer_ip: String,
}

impl Netns {
    fn create() -> Netns {
        let id = std::process::id();
        let net = id % 250 + 1;
        let ns = Netns {
            name: format!("pubsubd-ho-{id}"),
            host_if: format!("psdh{}", id % 100_000),
            peer_if: format!("psdn{}", id % 100_000),
            host_ip: format!("10.231.{net}.1"),
            peer_ip: format!("10.231.{net}.2"),
        };
        ns.cleanup();
        ip(&["netns", "add", &ns.name]);
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &ns.peer_if,
        ]);
        ip(&["link", "set", &ns.peer_if, "netns", &ns.name]);
        ip(&[
            "addr",
            "add",
            &format!("{}/30", ns.host_ip),
            "dev",
            &ns.host_if,
        ]);
        ip(&["link", "set", &ns.host_if, "up"]);
        ns.exec_ip(&[
            "addr",
            "add",
            &format!("{}/30", ns.peer_ip),
            "dev",
            &ns.peer_if,
        ]);
        ns.exec_ip(&["link", "set", &ns.peer_if, "up"]);
        ns.exec_ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Runs `ip ARGS` inside the namespace.
    fn exec_ip(&self, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.name, "ip"];
        all.extend_from_slice(args);
        ip(&all);
    }

    fn cleanup(&self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Subscribes to `channel` at HOST PORT, prints "subscribed", then waits forever.
const CLIENT: &str = r#"
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
s.sendall(b"SUBSCRIBE halfopen\r\n")
want = b"*3\r\n$9\r\nsubscribe\r\n$8\r\nhalfopen\r\n:1\r\n"
got = b""
while len(got) < len(want):
    got += s.recv(100)
assert got == want, got
print("subscribed", flush=True)
time.sleep(3600)
"#;

/// The CLIENT LIST line of the client connected from `ip`, if there is one.
async fn client_from(obs: &mut Raw, ip: &str) -> Option<String> {
    let list = info::text(obs, &["CLIENT", "LIST"]).await;
    let prefix = format!("addr={ip}:");
    list.lines()
        .find(|l| l.split(' ').any(|kv| kv.starts_with(&prefix)))
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_subscriber_is_dropped_by_keepalive() {
    let ns = Netns::create();
    let srv = Server::start(
        "halfopen",
        &[
            "--bind",
            "127.0.0.1",
            &ns.host_ip,
            "--protected-mode",
            "no",
            "--tcp-keepalive",
            "1",
        ],
    )
    .await;
    let mut obs = Raw::connect(srv.addr()).await;
    let mut client = process::Proc(
        Command::new("ip")
            .args(["netns", "exec", &ns.name, "python3", "-c", CLIENT])
            .args([&ns.host_ip, &srv.port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run python3 in the namespace"),
    );
    let stdout = client.0.stdout.take().unwrap();
    let line = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).unwrap();
            line
        }),
    )
    .await
    .expect("the namespaced client subscribed in time")
    .unwrap();
    assert_eq!(line.trim(), "subscribed");
    let line = client_from(&mut obs, &ns.peer_ip)
        .await
        .expect("the namespaced client in CLIENT LIST");
    assert!(line.contains(" sub=1 "), "{line}");
    assert_eq!(info_u64(&mut obs, "connected_clients").await, 2);

    // Nothing reaches the server any more: no FIN, no RST, no answer to its probes.
    let cut = Instant::now();
    ns.exec_ip(&["link", "set", &ns.peer_if, "down"]);
    drop(client);

    while client_from(&mut obs, &ns.peer_ip).await.is_some() {
        assert!(
            cut.elapsed() < Duration::from_secs(20),
            "the half-open client is still connected 20 s after its link went down"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let since_cut = cut.elapsed();
    println!(
        "half-open subscriber dropped {since_cut:.1?} after its link went down \
         (tcp-keepalive 1: idle 1 s, then 3 probes 1 s apart)"
    );
    assert_eq!(info_u64(&mut obs, "connected_clients").await, 1);
    obs.roundtrip(
        &["PUBSUB", "NUMSUB", "halfopen"],
        b"*2\r\n$8\r\nhalfopen\r\n:0\r\n",
    )
    .await;
    obs.roundtrip(&["PUBSUB", "CHANNELS"], b"*0\r\n").await;
}
