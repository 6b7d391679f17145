//! Redis Cluster's client protocol on one node, asserted as exact bytes: CLUSTER with
//! `cluster-enabled no` (standalone Redis's error) and `yes` (a one-node cluster owning every
//! slot), READONLY/READWRITE/ASKING, the CROSSSLOT rule of sharded commands, INFO and HELLO.

use pubsubd::config::Config;

use crate::support::{self, Raw, TestServer};

const DISABLED: &[u8] = b"-ERR This instance has cluster support disabled\r\n";
const CROSSSLOT: &[u8] = b"-CROSSSLOT Keys in request don't hash to the same slot\r\n";

fn cluster_config() -> Config {
    Config {
        cluster_enabled: true,
        cluster_config_file: String::new(),
        ..Config::default()
    }
}

fn bulk(s: &str) -> Vec<u8> {
    format!("${}\r\n{s}\r\n", s.len()).into_bytes()
}

/// The node id, read with CLUSTER MYID.
async fn my_id(c: &mut Raw) -> String {
    c.cmd(&["CLUSTER", "MYID"]).await;
    let f = c.frame().await;
    assert_eq!(&f[..5], b"$40\r\n", "{}", support::show(&f));
    let id = String::from_utf8(f[5..45].to_vec()).unwrap();
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    id
}

#[tokio::test]
async fn disabled_cluster_answers_like_standalone_redis() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    for cmd in [
        &["CLUSTER", "INFO"][..],
        &["CLUSTER", "SLOTS"],
        &["CLUSTER", "SHARDS"],
        &["CLUSTER", "NODES"],
        &["CLUSTER", "HELP"],
        &["CLUSTER", "KEYSLOT", "a"],
        &["CLUSTER", "MEET", "127.0.0.1", "7000"],
        &["READONLY"],
        &["READWRITE"],
        &["ASKING"],
    ] {
        c.roundtrip(cmd, DISABLED).await;
    }
    // The command table still checks the subcommand and its arity first.
    c.roundtrip(
        &["CLUSTER", "FOO"],
        b"-ERR unknown subcommand 'FOO'. Try CLUSTER HELP.\r\n",
    )
    .await;
    c.roundtrip(
        &["CLUSTER", "INFO", "x"],
        b"-ERR wrong number of arguments for 'cluster|info' command\r\n",
    )
    .await;
    c.roundtrip(
        &["INFO", "cluster"],
        b"$30\r\n# Cluster\r\ncluster_enabled:0\r\n\r\n",
    )
    .await;
    // No slot rule without cluster mode.
    c.cmd(&["SSUBSCRIBE", "a", "b"]).await;
    c.expect(b"*3\r\n$10\r\nssubscribe\r\n$1\r\na\r\n:1\r\n")
        .await;
    c.expect(b"*3\r\n$10\r\nssubscribe\r\n$1\r\nb\r\n:2\r\n")
        .await;
}

#[tokio::test]
async fn one_node_cluster_owns_every_slot_in_redis_shapes() {
    let s = TestServer::with_config(cluster_config()).await;
    let port = s.addr().port();
    let mut c = Raw::connect(s.addr()).await;
    let id = my_id(&mut c).await;

    let mut slots =
        format!("*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:{port}\r\n").into_bytes();
    slots.extend(bulk(&id));
    let mut slots2 = slots.clone();
    slots2.extend_from_slice(b"*0\r\n");
    c.roundtrip(&["CLUSTER", "SLOTS"], &slots2).await;

    let nodes = format!("{id} 127.0.0.1:{port}@0 myself,master - 0 0 1 connected 0-16383\n");
    c.roundtrip(&["CLUSTER", "NODES"], &bulk(&nodes)).await;

    let info = "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:1\r\ncluster_size:1\r\ncluster_current_epoch:1\r\ncluster_my_epoch:1\r\ncluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n";
    c.roundtrip(&["CLUSTER", "INFO"], &bulk(info)).await;

    let mut shards = b"*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n*14\r\n$2\r\nid\r\n".to_vec();
    shards.extend(bulk(&id));
    shards.extend(format!("$4\r\nport\r\n:{port}\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n").into_bytes());
    c.roundtrip(&["CLUSTER", "SHARDS"], &shards).await;

    c.roundtrip(&["CLUSTER", "KEYSLOT", "foo{bar}"], b":5061\r\n")
        .await;
    c.roundtrip(&["CLUSTER", "KEYSLOT", "{}x"], b":10595\r\n")
        .await;
    c.roundtrip(&["CLUSTER", "COUNTKEYSINSLOT", "100"], b":0\r\n")
        .await;
    c.roundtrip(
        &["CLUSTER", "COUNTKEYSINSLOT", "16384"],
        b"-ERR Invalid slot\r\n",
    )
    .await;
    c.roundtrip(
        &["CLUSTER", "COUNTKEYSINSLOT", "x"],
        b"-ERR value is not an integer or out of range\r\n",
    )
    .await;
    c.roundtrip(&["CLUSTER", "GETKEYSINSLOT", "1", "10"], b"*0\r\n")
        .await;
    c.roundtrip(
        &["CLUSTER", "GETKEYSINSLOT", "1", "-1"],
        b"-ERR Invalid slot or number of keys\r\n",
    )
    .await;
    c.roundtrip(&["CLUSTER", "LINKS"], b"*0\r\n").await;
    c.roundtrip(&["CLUSTER", "REPLICAS", &id], b"*0\r\n").await;
    c.roundtrip(&["CLUSTER", "REPLICAS", "x"], b"-ERR Unknown node x\r\n")
        .await;
    c.roundtrip(&["CLUSTER", "COUNT-FAILURE-REPORTS", &id], b":0\r\n")
        .await;
    for cmd in ["READONLY", "READWRITE", "ASKING"] {
        c.roundtrip(&[cmd], b"+OK\r\n").await;
    }
    c.roundtrip(
        &["CLUSTER", "ADDSLOTS", "1"],
        b"-ERR CLUSTER ADDSLOTS is not supported: the slot map follows the nodes that announce themselves over the backbone\r\n",
    )
    .await;
    c.cmd(&["CLUSTER", "HELP"]).await;
    let help = c.frame().await;
    assert!(help.starts_with(
        b"*58\r\n+CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n"
    ));

    // RESP3: maps and verbatim strings.
    c.cmd(&["HELLO", "3"]).await;
    let hello = c.frame().await;
    assert!(
        hello
            .windows(23)
            .any(|w| w == b"$4\r\nmode\r\n$7\r\ncluster\r\n"),
        "{}",
        support::show(&hello)
    );
    slots.extend_from_slice(b"%0\r\n");
    c.roundtrip(&["CLUSTER", "SLOTS"], &slots).await;
    let mut verbatim = format!("={}\r\ntxt:", nodes.len() + 4).into_bytes();
    verbatim.extend_from_slice(nodes.as_bytes());
    verbatim.extend_from_slice(b"\r\n");
    c.roundtrip(&["CLUSTER", "NODES"], &verbatim).await;
    let shards3: Vec<u8> = String::from_utf8(shards)
        .unwrap()
        .replacen("*1\r\n*4\r\n$5\r\nslots", "*1\r\n%2\r\n$5\r\nslots", 1)
        .replacen("*1\r\n*14\r\n$2\r\nid", "*1\r\n%7\r\n$2\r\nid", 1)
        .into_bytes();
    c.roundtrip(&["CLUSTER", "SHARDS"], &shards3).await;
}

#[tokio::test]
async fn sharded_commands_keep_to_one_slot() {
    let s = TestServer::with_config(cluster_config()).await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(&["SSUBSCRIBE", "a", "b"], CROSSSLOT).await;
    c.roundtrip(&["SUNSUBSCRIBE", "a", "b"], CROSSSLOT).await;
    c.cmd(&["SSUBSCRIBE", "{a}1", "{a}2"]).await;
    c.expect(b"*3\r\n$10\r\nssubscribe\r\n$4\r\n{a}1\r\n:1\r\n")
        .await;
    c.expect(b"*3\r\n$10\r\nssubscribe\r\n$4\r\n{a}2\r\n:2\r\n")
        .await;
    let mut p = Raw::connect(s.addr()).await;
    p.roundtrip(&["SPUBLISH", "{a}2", "hi"], b":1\r\n").await;
    c.expect(b"*3\r\n$8\r\nsmessage\r\n$4\r\n{a}2\r\n$2\r\nhi\r\n")
        .await;
    // A transaction's sharded commands must share a slot too; Redis then discards it.
    p.roundtrip(&["MULTI"], b"+OK\r\n").await;
    p.roundtrip(&["SPUBLISH", "a", "x"], b"+QUEUED\r\n").await;
    p.roundtrip(&["SPUBLISH", "b", "x"], b"+QUEUED\r\n").await;
    p.roundtrip(&["EXEC"], CROSSSLOT).await;
    p.roundtrip(&["EXEC"], b"-ERR EXEC without MULTI\r\n").await;
    p.roundtrip(&["MULTI"], b"+OK\r\n").await;
    p.roundtrip(&["SPUBLISH", "{a}1", "x"], b"+QUEUED\r\n")
        .await;
    p.roundtrip(&["PUBLISH", "b", "x"], b"+QUEUED\r\n").await;
    p.roundtrip(&["EXEC"], b"*2\r\n:1\r\n:0\r\n").await;
    c.expect(b"*3\r\n$8\r\nsmessage\r\n$4\r\n{a}1\r\n$1\r\nx\r\n")
        .await;
}

#[tokio::test]
async fn info_and_config_report_cluster_mode() {
    let s = TestServer::with_config(cluster_config()).await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(
        &["INFO", "cluster"],
        b"$30\r\n# Cluster\r\ncluster_enabled:1\r\n\r\n",
    )
    .await;
    c.cmd(&["INFO", "server"]).await;
    let info = String::from_utf8(c.frame().await).unwrap();
    assert!(info.contains("\r\nredis_mode:cluster\r\n"), "{info}");
    c.roundtrip(
        &["CONFIG", "GET", "cluster-enabled"],
        b"*2\r\n$15\r\ncluster-enabled\r\n$3\r\nyes\r\n",
    )
    .await;
    c.roundtrip(
        &["CONFIG", "GET", "cluster-node-timeout"],
        b"*2\r\n$20\r\ncluster-node-timeout\r\n$4\r\n5000\r\n",
    )
    .await;
    c.roundtrip(
        &["CONFIG", "SET", "cluster-enabled", "no"],
        b"-ERR CONFIG SET failed (possibly related to argument 'cluster-enabled') - can't set immutable config\r\n",
    )
    .await;
    c.roundtrip(
        &["COMMAND", "INFO", "readonly"],
        b"*1\r\n*10\r\n$8\r\nreadonly\r\n:1\r\n*3\r\n+loading\r\n+stale\r\n+fast\r\n:0\r\n:0\r\n:0\r\n*2\r\n+@fast\r\n+@connection\r\n*0\r\n*0\r\n*0\r\n",
    )
    .await;
}

#[tokio::test]
async fn node_id_survives_a_restart() {
    let path = std::env::temp_dir().join(format!("pubsubd-test-nodes-{}.conf", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let config = Config {
        cluster_config_file: path.display().to_string(),
        ..cluster_config()
    };
    let s = TestServer::with_config(config.clone()).await;
    let first = my_id(&mut Raw::connect(s.addr()).await).await;
    s.stop().await;
    let s = TestServer::with_config(config).await;
    let again = my_id(&mut Raw::connect(s.addr()).await).await;
    assert_eq!(first, again);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with(&format!("{first} ")), "{text}");
    assert!(text.contains(" myself,master "), "{text}");
    s.stop().await;
    let _ = std::fs::remove_file(&path);
}

#[test]
fn an_unusable_cluster_config_file_stops_start_up() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pubsubd"))
        .args([
            "--port",
            "0",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "/nonexistent-dir/nodes.conf",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Can't open the cluster configuration file /nonexistent-dir/nodes.conf"),
        "{err}"
    );
}
