//! INFO's numbers move as clients connect, subscribe and publish; sections follow Redis
//! (`default`, `all`, `everything`); `used_memory` comes from the allocator in the binary.

use crate::support::info::{info_field, info_map, text};
use crate::support::{process, Raw, TestServer};

#[tokio::test]
async fn counters_move_with_clients_subscriptions_and_messages() {
    let s = TestServer::start().await;
    let mut i = Raw::connect(s.addr()).await;
    let stats = info_map(&text(&mut i, &["INFO", "stats"]).await);
    let (in0, out0): (u64, u64) = (
        stats["total_net_input_bytes"].parse().unwrap(),
        stats["total_net_output_bytes"].parse().unwrap(),
    );
    assert_eq!(
        info_field(&mut i, "clients", "connected_clients").await,
        "1"
    );
    assert_eq!(info_field(&mut i, "clients", "pubsub_clients").await, "0");

    let mut a = Raw::connect(s.addr()).await;
    a.cmd(&["SUBSCRIBE", "x", "y"]).await;
    a.frame().await;
    a.frame().await;
    let mut b = Raw::connect(s.addr()).await;
    b.cmd(&["PSUBSCRIBE", "x*"]).await;
    b.frame().await;
    let mut c = Raw::connect(s.addr()).await;
    c.cmd(&["SSUBSCRIBE", "s"]).await;
    c.frame().await;

    let clients = info_map(&text(&mut i, &["INFO", "clients"]).await);
    assert_eq!(clients["connected_clients"], "4");
    assert_eq!(clients["pubsub_clients"], "3");
    let stats = info_map(&text(&mut i, &["INFO", "stats"]).await);
    assert_eq!(stats["pubsub_channels"], "2");
    assert_eq!(stats["pubsub_patterns"], "1");
    assert_eq!(stats["pubsubshard_channels"], "1");

    i.roundtrip(&["PUBLISH", "x", "m"], b":2\r\n").await;
    i.roundtrip(&["PUBLISH", "nobody", "m"], b":0\r\n").await;
    i.roundtrip(&["SPUBLISH", "s", "m"], b":1\r\n").await;
    let stats = info_map(&text(&mut i, &["INFO", "stats"]).await);
    assert_eq!(stats["pubsub_messages_published"], "3");
    assert_eq!(stats["pubsub_messages_delivered"], "3");
    assert!(stats["total_net_input_bytes"].parse::<u64>().unwrap() > in0);
    assert!(stats["total_net_output_bytes"].parse::<u64>().unwrap() > out0);
    assert_eq!(stats["total_connections_received"], "4");

    drop(a);
    for _ in 0..100 {
        if info_field(&mut i, "stats", "pubsub_channels").await == "0" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        info_field(&mut i, "clients", "connected_clients").await,
        "3"
    );
    assert_eq!(info_field(&mut i, "clients", "pubsub_clients").await, "2");
}

fn sections(info: &str) -> Vec<String> {
    info.lines()
        .filter_map(|l| l.strip_prefix("# "))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn sections_follow_redis() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    let default = [
        "Server",
        "Clients",
        "Memory",
        "Persistence",
        "Stats",
        "Replication",
        "CPU",
        "Modules",
        "Errorstats",
        "Cluster",
        "Keyspace",
    ];
    assert_eq!(sections(&text(&mut c, &["INFO"]).await), default);
    assert_eq!(sections(&text(&mut c, &["INFO", "default"]).await), default);
    let all = [
        "Server",
        "Clients",
        "Memory",
        "Persistence",
        "Stats",
        "Replication",
        "CPU",
        "Modules",
        "Commandstats",
        "Errorstats",
        "Latencystats",
        "Cluster",
        "Keyspace",
    ];
    assert_eq!(sections(&text(&mut c, &["INFO", "all"]).await), all);
    assert_eq!(sections(&text(&mut c, &["INFO", "everything"]).await), all);
    assert_eq!(
        sections(&text(&mut c, &["INFO", "cpu", "MEMORY"]).await),
        ["Memory", "CPU"]
    );
    c.roundtrip(&["INFO", "keyspace"], b"$12\r\n# Keyspace\r\n\r\n")
        .await;
    let server = info_map(&text(&mut c, &["INFO", "server"]).await);
    assert_eq!(server["redis_version"], "7.2.4");
    assert_eq!(server["tcp_port"], s.addr().port().to_string());
    assert_eq!(server["config_file"], "");
    let memory = info_map(&text(&mut c, &["INFO", "memory"]).await);
    for f in [
        "used_memory",
        "used_memory_rss",
        "used_memory_peak",
        "mem_clients_normal",
    ] {
        assert!(memory[f].parse::<u64>().is_ok(), "{f}: {memory:?}");
    }
    assert_eq!(memory["mem_allocator"], "libc");
    let cpu = info_map(&text(&mut c, &["INFO", "cpu"]).await);
    assert!(cpu["used_cpu_user"].parse::<f64>().is_ok());
}

/// The binary counts allocations: used_memory is what is allocated, not the RSS, and it
/// follows the registry's growth and shrinkage.
#[tokio::test]
async fn used_memory_comes_from_the_allocator() {
    let port = process::free_port();
    let _p = process::spawn(&["--port", &port.to_string(), "--save", ""]);
    process::wait_for_port(port).await;
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut c = Raw::connect(addr).await;
    let before = info_map(&text(&mut c, &["INFO", "memory"]).await);
    let used0: u64 = before["used_memory"].parse().unwrap();
    let rss: u64 = before["used_memory_rss"].parse().unwrap();
    assert!(used0 > 0 && used0 < rss, "{before:?}");

    let mut sub = Raw::connect(addr).await;
    let mut cmd: Vec<String> = vec!["SUBSCRIBE".into()];
    cmd.extend((0..20_000).map(|i| format!("channel-with-a-longish-name-{i}")));
    let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
    sub.cmd(&args).await;
    for _ in 0..20_000 {
        sub.frame().await;
    }
    let used1: u64 = info_field(&mut c, "memory", "used_memory")
        .await
        .parse()
        .unwrap();
    assert!(
        used1 > used0 + 1_000_000,
        "20k channels cost more than 1 MB: {used0} → {used1}"
    );
    drop(sub);
    let mut used2 = used1;
    for _ in 0..100 {
        used2 = info_field(&mut c, "memory", "used_memory")
            .await
            .parse()
            .unwrap();
        if used2 < used1 - 1_000_000 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        used2 < used1 - 1_000_000,
        "freed after the subscriber left: {used1} → {used2}"
    );
    let peak: u64 = info_field(&mut c, "memory", "used_memory_peak")
        .await
        .parse()
        .unwrap();
    assert!(peak >= used1);
}
