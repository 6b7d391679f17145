//! The Prometheus endpoint: off by default; when on, `GET /metrics` is valid exposition text
//! (parsed here) whose values move with the server, including the output-queue histogram,
//! slow-consumer disconnections and the busiest channels.

use std::collections::BTreeMap;

use pubsubd::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{self, process, Raw, TestServer};

/// A parsed exposition: types by metric family, samples by `name{labels}`.
#[derive(Debug, Default)]
struct Exposition {
    types: BTreeMap<String, String>,
    samples: BTreeMap<String, f64>,
}

/// Parses text format 0.0.4 strictly enough to catch malformed output: every sample belongs
/// to a family declared by `# TYPE` before it, label values are quoted, values are numbers.
fn parse(text: &str) -> Exposition {
    let mut e = Exposition::default();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                e.types.insert(name.to_string(), kind.to_string()).is_none(),
                "duplicate TYPE {name}"
            );
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment {line}");
        let (key, value) = line.rsplit_once(' ').expect("sample value");
        let name = key.split('{').next().unwrap();
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{name}"
        );
        if let Some(labels) = key.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
                for pair in labels[1..labels.len() - 1].split("\",") {
                    let (k, v) = pair.split_once('=').expect("label k=v");
                    assert!(!k.is_empty() && v.starts_with('"'), "{line}");
                }
            }
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| e.types.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(
            e.types.contains_key(family),
            "sample before its TYPE: {line}"
        );
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        e.samples.insert(key.to_string(), v);
    }
    e
}

async fn scrape(port: u16, path: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(support::TIMEOUT, s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

async fn server_with_metrics() -> (TestServer, u16) {
    let port = process::free_port();
    let s = TestServer::with_config(Config {
        metrics_port: port,
        ..Config::default()
    })
    .await;
    process::wait_for_port(port).await;
    (s, port)
}

#[tokio::test]
async fn off_by_default() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(
        &["CONFIG", "GET", "metrics-port"],
        b"*2\r\n$12\r\nmetrics-port\r\n$1\r\n0\r\n",
    )
    .await;
}

#[tokio::test]
async fn exposition_parses_and_values_move() {
    let (s, port) = server_with_metrics().await;
    let (head, body) = scrape(port, "/metrics").await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    let before = parse(&body);
    assert_eq!(before.types["pubsubd_messages_published_total"], "counter");
    assert_eq!(before.types["pubsubd_connected_clients"], "gauge");
    assert_eq!(
        before.types["pubsubd_client_output_queue_bytes"],
        "histogram"
    );
    assert_eq!(before.samples["pubsubd_connected_clients"], 0.0);
    assert!(before.samples["pubsubd_used_memory_bytes"] > 0.0);

    let mut sub = Raw::connect(s.addr()).await;
    sub.cmd(&["SUBSCRIBE", "hot", "cold"]).await;
    sub.frame().await;
    sub.frame().await;
    let mut p = Raw::connect(s.addr()).await;
    let mut batch = Vec::new();
    for i in 0..2000 {
        let ch: &[u8] = if i % 10 == 0 { b"cold" } else { b"hot" };
        batch.extend(support::encode(&[b"PUBLISH", ch, b"m"]));
    }
    p.send(&batch).await;
    for _ in 0..2000 {
        assert_eq!(p.frame().await, b":1\r\n");
    }
    let after = parse(&scrape(port, "/metrics").await.1);
    let v = |k: &str| {
        after
            .samples
            .get(k)
            .copied()
            .unwrap_or_else(|| panic!("no {k}"))
    };
    assert_eq!(v("pubsubd_connected_clients"), 2.0);
    assert_eq!(v("pubsubd_pubsub_clients"), 1.0);
    assert_eq!(v("pubsubd_pubsub_channels"), 2.0);
    assert_eq!(v("pubsubd_messages_published_total"), 2000.0);
    assert_eq!(v("pubsubd_messages_delivered_total"), 2000.0);
    assert!(v("pubsubd_net_input_bytes_total") > before.samples["pubsubd_net_input_bytes_total"]);
    assert_eq!(
        v("pubsubd_client_output_queue_bytes_count{class=\"pubsub\"}"),
        1.0
    );
    assert_eq!(
        v("pubsubd_client_output_queue_bytes_bucket{class=\"pubsub\",le=\"+Inf\"}"),
        1.0
    );
    assert_eq!(
        v("pubsubd_client_output_queue_bytes_count{class=\"normal\"}"),
        1.0
    );
    assert_eq!(v("pubsubd_slow_consumer_disconnections_total"), 0.0);
    // Busiest channels: estimated from a sample, busiest first.
    let hot = v("pubsubd_channel_messages_total{namespace=\"global\",channel=\"hot\"}");
    assert!(hot > 900.0 && hot < 3000.0, "estimate of 1800: {hot}");
    let cold = after
        .samples
        .get("pubsubd_channel_messages_total{namespace=\"global\",channel=\"cold\"}")
        .copied()
        .unwrap_or(0.0);
    assert!(hot > cold);
}

#[tokio::test]
async fn slow_consumer_disconnects_are_counted() {
    let (s, port) = server_with_metrics().await;
    let mut admin = Raw::connect(s.addr()).await;
    admin
        .roundtrip(
            &[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "pubsub 1kb 0 0",
            ],
            b"+OK\r\n",
        )
        .await;
    let mut sub = Raw::connect(s.addr()).await;
    sub.cmd(&["SUBSCRIBE", "big"]).await;
    sub.frame().await;
    admin
        .roundtrip(&["PUBLISH", "big", &"x".repeat(2000)], b":1\r\n")
        .await;
    let mut n = 0.0;
    for _ in 0..100 {
        n = parse(&scrape(port, "/metrics").await.1).samples
            ["pubsubd_slow_consumer_disconnections_total"];
        if n == 1.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(n, 1.0);
}

#[tokio::test]
async fn other_paths_and_methods() {
    let (_s, port) = server_with_metrics().await;
    assert!(scrape(port, "/nope")
        .await
        .0
        .starts_with("HTTP/1.1 404 Not Found"));
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(b"POST /metrics HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 405"), "{out}");
}

#[test]
fn channel_names_are_escaped_as_label_values() {
    let text = "# TYPE x counter\nx{channel=\"a\\\"b\\\\c\\nd\"} 1\n";
    assert_eq!(parse(text).samples.len(), 1);
}

/// Waits until at least `n` connections are parked, by the gauge.
async fn await_parked(port: u16, n: f64) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(8);
    loop {
        let parked = parse(&scrape(port, "/metrics").await.1).samples["pubsubd_parked_clients"];
        if parked >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{parked} parked, waited for {n}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

// A connection whose input is rare gives up its task once it has read everything; messages,
// its own commands, CLIENT KILL and shutdown all still reach it, and it keeps its state. One
// that keeps sending keeps its task.
#[tokio::test]
async fn idle_connections_park_and_keep_working() {
    let (s, port) = server_with_metrics().await;
    let mut sub = Raw::connect(s.addr()).await;
    sub.roundtrip(
        &["SUBSCRIBE", "ch"],
        b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n",
    )
    .await;
    let mut idle = Raw::connect(s.addr()).await;
    idle.roundtrip(&["CLIENT", "SETNAME", "idle"], b"+OK\r\n")
        .await;
    let mut busy = Raw::connect(s.addr()).await;
    for _ in 0..20 {
        busy.roundtrip(&["PING"], b"+PONG\r\n").await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    idle.cmd(&["CLIENT", "ID"]).await;
    let id = String::from_utf8(idle.frame().await).unwrap();
    let id = id.trim_start_matches(':').trim_end();
    await_parked(port, 2.0).await;
    // The busy one, whose commands came close together, was not parked.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        parse(&scrape(port, "/metrics").await.1).samples["pubsubd_parked_clients"],
        2.0
    );

    // Publishers write to a parked subscriber's socket; nothing needs its task.
    let mut p = Raw::connect(s.addr()).await;
    p.roundtrip(&["PUBLISH", "ch", "m"], b":1\r\n").await;
    sub.expect(b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n")
        .await;
    // Input wakes a parked connection, which goes on with what it had.
    idle.roundtrip(&["CLIENT", "GETNAME"], b"$4\r\nidle\r\n")
        .await;
    sub.roundtrip(&["PING"], b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        .await;

    // Parked again: CLIENT KILL closes it at once, and shutdown closes the others.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    await_parked(port, 3.0).await;
    p.roundtrip(&["CLIENT", "KILL", "ID", id], b":1\r\n").await;
    idle.expect_closed().await;
    p.roundtrip(&["PUBLISH", "ch", "n"], b":1\r\n").await;
    sub.expect(b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nn\r\n")
        .await;
    await_parked(port, 1.0).await;
    s.stop().await;
    sub.expect_closed().await;
}
