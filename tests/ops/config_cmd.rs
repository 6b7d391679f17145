//! CONFIG GET/SET/RESETSTAT/REWRITE/HELP on a running server: Redis's names, value formats and
//! error texts (checked against redis-server 7.0.15), and settings changed by CONFIG SET taking
//! effect on connections that are already open.

use pubsubd::config::Config;

use crate::support::info::{info_field, text};
use crate::support::{encode, process, Raw, TestServer};

#[tokio::test]
async fn get_returns_redis_names_and_formats() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(
        &["CONFIG", "GET", "client-output-buffer-limit"],
        b"*2\r\n$26\r\nclient-output-buffer-limit\r\n$67\r\nnormal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60\r\n",
    )
    .await;
    c.roundtrip(
        // Asked for by its exact name: answered under the name as written (Redis 7.0 and 7.2).
        &["CONFIG", "GET", "MaxClients"],
        b"*2\r\n$10\r\nMaxClients\r\n$5\r\n10000\r\n",
    )
    .await;
    c.roundtrip(&["CONFIG", "GET", "nosuch"], b"*0\r\n").await;
    // Several patterns (7.0+), each parameter once, keyspace ones with Redis's defaults.
    c.roundtrip(
        &["CONFIG", "GET", "timeout", "time*", "maxmemory-policy"],
        b"*4\r\n$7\r\ntimeout\r\n$1\r\n0\r\n$16\r\nmaxmemory-policy\r\n$10\r\nnoeviction\r\n",
    )
    .await;
    c.roundtrip(
        &["CONFIG", "GET", "proto-max-bulk-len"],
        b"*2\r\n$18\r\nproto-max-bulk-len\r\n$9\r\n536870912\r\n",
    )
    .await;
    c.roundtrip(
        &["CONFIG", "GET", "appendonly"],
        b"*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n",
    )
    .await;
    c.roundtrip(
        &["CONFIG", "GET", "save"],
        b"*2\r\n$4\r\nsave\r\n$0\r\n\r\n",
    )
    .await;
    // Everything, as exporters ask for it.
    c.cmd(&["CONFIG", "GET", "*"]).await;
    let all = String::from_utf8_lossy(&c.frame().await).into_owned();
    for name in [
        "bind",
        "port",
        "maxclients",
        "loglevel",
        "slowlog-max-len",
        "metrics-port",
        "notify-keyspace-events",
        "databases",
    ] {
        assert!(all.contains(&format!("\r\n{name}\r\n")), "{name} missing");
    }
    // RESP3: a map.
    c.cmd(&["HELLO", "3"]).await;
    c.frame().await;
    c.roundtrip(
        &["CONFIG", "GET", "timeout"],
        b"%1\r\n$7\r\ntimeout\r\n$1\r\n0\r\n",
    )
    .await;
}

#[tokio::test]
async fn set_errors_are_redis_texts_and_change_nothing() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    for (args, reply) in [
        (vec!["CONFIG", "SET", "nosuch", "1"], "-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\r\n"),
        (vec!["CONFIG", "SET", "maxclients", "abc"], "-ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer\r\n"),
        (vec!["CONFIG", "SET", "maxclients", "0"], "-ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 4294967295 inclusive\r\n"),
        (vec!["CONFIG", "SET", "timeout", "5", "timeout", "6"], "-ERR CONFIG SET failed (possibly related to argument 'timeout') - duplicate parameter\r\n"),
        (vec!["CONFIG", "SET", "maxclients", "100", "timeout", "x"], "-ERR CONFIG SET failed (possibly related to argument 'timeout') - argument couldn't be parsed into an integer\r\n"),
        (vec!["CONFIG", "SET", "client-output-buffer-limit", "foo 1 1 1"], "-ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - Invalid client class specified in buffer limit configuration.\r\n"),
        (vec!["CONFIG", "SET", "client-output-buffer-limit", "pubsub 1 1"], "-ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - Wrong number of arguments in buffer limit configuration.\r\n"),
        (vec!["CONFIG", "SET", "port", "7000"], "-ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config\r\n"),
        (vec!["CONFIG", "SET", "timeout"], "-ERR wrong number of arguments for 'config|set' command\r\n"),
        (vec!["CONFIG", "SET", "timeout", "1", "maxclients"], "-ERR wrong number of arguments for 'config|set' command\r\n"),
        (vec!["CONFIG", "GET"], "-ERR wrong number of arguments for 'config|get' command\r\n"),
        (vec!["CONFIG"], "-ERR wrong number of arguments for 'config' command\r\n"),
        (vec!["CONFIG", "REWRITE"], "-ERR The server is running without a config file\r\n"),
    ] {
        c.roundtrip(&args, reply.as_bytes()).await;
    }
    // The failed multi-parameter SET applied neither.
    c.roundtrip(
        &["CONFIG", "GET", "maxclients"],
        b"*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n",
    )
    .await;
}

#[tokio::test]
async fn set_changes_what_get_reports() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(
        &[
            "CONFIG",
            "SET",
            "timeout",
            "5",
            "loglevel",
            "WARNING",
            "maxmemory-policy",
            "allkeys-lru",
        ],
        b"+OK\r\n",
    )
    .await;
    c.roundtrip(
        &["CONFIG", "GET", "timeout", "loglevel", "maxmemory-policy"],
        b"*6\r\n$7\r\ntimeout\r\n$1\r\n5\r\n$8\r\nloglevel\r\n$7\r\nwarning\r\n$16\r\nmaxmemory-policy\r\n$11\r\nallkeys-lru\r\n",
    )
    .await;
    c.roundtrip(
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 1mb 1 1",
        ],
        b"+OK\r\n",
    )
    .await;
    c.roundtrip(
        &["CONFIG", "GET", "client-output-buffer-limit"],
        b"*2\r\n$26\r\nclient-output-buffer-limit\r\n$59\r\nnormal 0 0 0 slave 268435456 67108864 60 pubsub 1048576 1 1\r\n",
    )
    .await;
}

#[tokio::test]
async fn output_limit_applies_to_subscribers_already_connected() {
    let s = TestServer::start().await;
    let mut sub = Raw::connect(s.addr()).await;
    sub.roundtrip(
        &["SUBSCRIBE", "big"],
        b"*3\r\n$9\r\nsubscribe\r\n$3\r\nbig\r\n:1\r\n",
    )
    .await;
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
    // The subscriber does not read; one message over the new hard limit disconnects it.
    let payload = "x".repeat(4096);
    admin.cmd(&["PUBLISH", "big", &payload]).await;
    assert_eq!(admin.frame().await, b":1\r\n");
    for _ in 0..100 {
        if info_field(
            &mut admin,
            "stats",
            "client_output_buffer_limit_disconnections",
        )
        .await
            == "1"
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        info_field(
            &mut admin,
            "stats",
            "client_output_buffer_limit_disconnections"
        )
        .await,
        "1"
    );
    assert_eq!(
        info_field(&mut admin, "clients", "connected_clients").await,
        "1"
    );
}

#[tokio::test]
async fn maxclients_and_timeout_apply_at_once() {
    let s = TestServer::start().await;
    let mut admin = Raw::connect(s.addr()).await;
    let mut idle = Raw::connect(s.addr()).await;
    idle.roundtrip(&["PING"], b"+PONG\r\n").await;
    admin
        .roundtrip(&["CONFIG", "SET", "maxclients", "2"], b"+OK\r\n")
        .await;
    let mut third = Raw::connect(s.addr()).await;
    third
        .expect(b"-ERR max number of clients reached\r\n")
        .await;
    third.expect_closed().await;
    assert_eq!(
        info_field(&mut admin, "stats", "rejected_connections").await,
        "1"
    );
    // The idle client was waiting with no timeout; the new one closes it.
    admin
        .roundtrip(&["CONFIG", "SET", "timeout", "1"], b"+OK\r\n")
        .await;
    idle.expect_closed().await;
}

#[tokio::test]
async fn proto_max_bulk_len_applies_to_open_connections() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(&["CONFIG", "SET", "proto-max-bulk-len", "1mb"], b"+OK\r\n")
        .await;
    c.send(b"*2\r\n$4\r\nECHO\r\n$2000000\r\n").await;
    c.expect(b"-ERR Protocol error: invalid bulk length\r\n")
        .await;
    c.expect_closed().await;
}

#[tokio::test]
async fn resetstat_zeroes_the_counters() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(&["PUBLISH", "a", "b"], b":0\r\n").await;
    c.roundtrip(
        &["NOSUCH"],
        b"-ERR unknown command 'NOSUCH', with args beginning with: \r\n",
    )
    .await;
    assert_eq!(
        info_field(&mut c, "stats", "pubsub_messages_published").await,
        "1"
    );
    c.roundtrip(&["CONFIG", "RESETSTAT"], b"+OK\r\n").await;
    assert_eq!(
        info_field(&mut c, "stats", "pubsub_messages_published").await,
        "0"
    );
    assert_eq!(
        info_field(&mut c, "stats", "total_error_replies").await,
        "0"
    );
    assert_eq!(
        info_field(&mut c, "stats", "total_connections_received").await,
        "0"
    );
}

#[tokio::test]
async fn rewrite_keeps_comments_and_writes_changes() {
    let dir = process::temp_dir("rewrite");
    let path = dir.join("redis.conf");
    let original = "# production settings\nport 6379\nsave 900 1\nmaxclients 100\n# tuned\ntimeout 0\nclient-output-buffer-limit pubsub 32mb 8mb 60\nmaxclients 200\n";
    std::fs::write(&path, original).unwrap();
    let mut cfg = Config::default();
    pubsubd::config::file::load_file(&mut cfg, &path).unwrap();
    cfg.config_file = path.display().to_string();
    let s = TestServer::with_config(cfg).await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(
        &[
            "CONFIG",
            "SET",
            "maxclients",
            "300",
            "client-output-buffer-limit",
            "pubsub 64mb 16mb 30",
            "slowlog-max-len",
            "64",
        ],
        b"+OK\r\n",
    )
    .await;
    c.roundtrip(&["CONFIG", "REWRITE"], b"+OK\r\n").await;
    // TestServer's port and shutdown-timeout 2 are its live values too.
    let port_line = format!("port {}", s.addr().port());
    let rewritten = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        rewritten,
        format!("# production settings\n{port_line}\nsave 900 1\nmaxclients 300\n# tuned\ntimeout 0\nclient-output-buffer-limit pubsub 64mb 16mb 30\n# Generated by CONFIG REWRITE\nshutdown-timeout 2\nslowlog-max-len 64\n")
    );
    // The rewritten file loads back to the same values.
    let mut back = Config::default();
    pubsubd::config::file::load_file(&mut back, &path).unwrap();
    assert_eq!(back.maxclients, 300);
    assert_eq!(back.pubsub_output_limit, (64 << 20, 16 << 20, 30));
    assert_eq!(back.slowlog_max_len, 64);
    let info = text(&mut c, &["INFO", "server"]).await;
    assert!(
        info.contains(&format!("config_file:{}\r\n", path.display())),
        "{info}"
    );
}

#[tokio::test]
async fn help_lists_the_subcommands() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.cmd(&["CONFIG", "HELP"]).await;
    let help = c.frame().await;
    assert!(help.starts_with(
        b"*11\r\n+CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n"
    ));
    let _ = encode(&[]);
}

#[tokio::test]
async fn requirepass_acl_pubsub_default_and_protected_mode_are_settable() {
    let s = TestServer::start().await;
    let mut admin = Raw::connect(s.addr()).await;
    admin
        .roundtrip(&["CONFIG", "SET", "requirepass", "s3cret"], b"+OK\r\n")
        .await;
    // Already-authenticated connections stay so, as in Redis; new ones must AUTH.
    admin.roundtrip(&["PING"], b"+PONG\r\n").await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(&["PING"], b"-NOAUTH Authentication required.\r\n")
        .await;
    c.roundtrip(&["AUTH", "s3cret"], b"+OK\r\n").await;
    admin
        .roundtrip(
            &["CONFIG", "GET", "requirepass"],
            b"*2\r\n$11\r\nrequirepass\r\n$6\r\ns3cret\r\n",
        )
        .await;
    admin
        .roundtrip(&["CONFIG", "SET", "requirepass", ""], b"+OK\r\n")
        .await;
    let mut d = Raw::connect(s.addr()).await;
    d.roundtrip(&["PING"], b"+PONG\r\n").await;

    admin
        .roundtrip(&["ACL", "SETUSER", "before"], b"+OK\r\n")
        .await;
    admin
        .roundtrip(
            &["CONFIG", "SET", "acl-pubsub-default", "allchannels"],
            b"+OK\r\n",
        )
        .await;
    admin
        .roundtrip(&["ACL", "SETUSER", "after"], b"+OK\r\n")
        .await;
    let list = {
        admin.cmd(&["ACL", "LIST"]).await;
        String::from_utf8_lossy(&admin.frame().await).into_owned()
    };
    let line = |name: &str| {
        list.lines()
            .find(|l| l.starts_with(&format!("user {name} ")))
            .unwrap()
            .to_string()
    };
    assert!(line("after").contains("&*"), "{list}");
    assert!(!line("before").contains("&*"), "{list}");
    admin.roundtrip(
        &["CONFIG", "SET", "acl-pubsub-default", "some"],
        b"-ERR CONFIG SET failed (possibly related to argument 'acl-pubsub-default') - argument(s) must be one of the following: allchannels, resetchannels\r\n",
    )
    .await;
    admin
        .roundtrip(&["CONFIG", "SET", "protected-mode", "no"], b"+OK\r\n")
        .await;
    admin
        .roundtrip(
            &["CONFIG", "GET", "protected-mode"],
            b"*2\r\n$14\r\nprotected-mode\r\n$2\r\nno\r\n",
        )
        .await;
}

/// Redis 7.2.4's CONFIG SET checks: notify-keyspace-events read back in its canonical form and
/// refused with an unknown class; memory and percent values; names checked (unknown,
/// immutable, duplicate) before any value, then values in argument order (tests
/// "Keyspace notifications: test CONFIG GET/SET of event flags", "CONFIG SET rollback on set
/// error").
#[tokio::test]
async fn config_set_validates_and_normalises_like_redis_7_2() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    for (set, get) in [
        ("KA", "AK"),
        ("EA", "AE"),
        ("gxKEAtmdn", "AKEm"),
        ("$lshzxeKE", "$lshzxeKE"),
        ("", ""),
    ] {
        c.roundtrip(
            &["CONFIG", "SET", "notify-keyspace-events", set],
            b"+OK\r\n",
        )
        .await;
        c.roundtrip(
            &["CONFIG", "GET", "notify-keyspace-events"],
            format!(
                "*2\r\n$22\r\nnotify-keyspace-events\r\n${}\r\n{get}\r\n",
                get.len()
            )
            .as_bytes(),
        )
        .await;
    }
    let failed = |name: &str, why: &str| {
        format!("-ERR CONFIG SET failed (possibly related to argument '{name}') - {why}\r\n")
    };
    for (args, reply) in [
        (
            &["notify-keyspace-events", "Q"][..],
            failed(
                "notify-keyspace-events",
                "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.",
            ),
        ),
        (
            &["maxmemory-clients", "200%"],
            failed(
                "maxmemory-clients",
                "percentage argument must be less or equal to 100",
            ),
        ),
        (
            &["maxmemory-clients", "abc"],
            failed(
                "maxmemory-clients",
                "argument must be a memory or percent value",
            ),
        ),
        (
            &["maxmemory", "abc"],
            failed("maxmemory", "argument must be a memory value"),
        ),
        (
            &["client-query-buffer-limit", "invalid"],
            failed(
                "client-query-buffer-limit",
                "argument must be a memory value",
            ),
        ),
        (
            &[
                "maxmemory",
                "10000001",
                "maxmemory-clients",
                "200%",
                "client-query-buffer-limit",
                "invalid",
            ],
            failed(
                "maxmemory-clients",
                "percentage argument must be less or equal to 100",
            ),
        ),
        (
            &["timeout", "abc", "daemonize", "yes"],
            failed("daemonize", "can't set immutable config"),
        ),
        (
            &["timeout", "abc", "timeout", "1"],
            failed("timeout", "duplicate parameter"),
        ),
    ] {
        let mut cmd = vec!["CONFIG", "SET"];
        cmd.extend_from_slice(args);
        c.roundtrip(&cmd, reply.as_bytes()).await;
    }
    c.roundtrip(&["CONFIG", "SET", "maxmemory-clients", "10%"], b"+OK\r\n")
        .await;
    c.roundtrip(
        &["CONFIG", "GET", "maxmemory-clients"],
        b"*2\r\n$17\r\nmaxmemory-clients\r\n$3\r\n10%\r\n",
    )
    .await;
}

/// Redis 7.2's hidden configs: CONFIG GET returns one named exactly, never through a pattern
/// (test "CONFIG GET hidden configs").
#[tokio::test]
async fn hidden_configs_answer_only_by_exact_name() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(
        &["CONFIG", "GET", "key-load-delay"],
        b"*2\r\n$14\r\nkey-load-delay\r\n$1\r\n0\r\n",
    )
    .await;
    c.roundtrip(&["CONFIG", "GET", "key-load-*"], b"*0\r\n")
        .await;
    c.cmd(&["CONFIG", "GET", "*"]).await;
    let all = c.frame().await;
    assert!(!String::from_utf8_lossy(&all).contains("key-load-delay"));
    c.roundtrip(&["CONFIG", "SET", "key-load-delay", "5"], b"+OK\r\n")
        .await;
    // A parameter asked for by its exact name comes back under the name as written.
    c.roundtrip(
        &["CONFIG", "GET", "KEY-LOAD-DELAY"],
        b"*2\r\n$14\r\nKEY-LOAD-DELAY\r\n$1\r\n5\r\n",
    )
    .await;
    c.roundtrip(
        &["CONFIG", "GET", "MaxClients"],
        b"*2\r\n$10\r\nMaxClients\r\n$5\r\n10000\r\n",
    )
    .await;
}
