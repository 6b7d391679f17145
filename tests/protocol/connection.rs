//! Connection commands: HELLO, AUTH, SELECT, ECHO, PING, RESET, CLIENT, MULTI/EXEC, INFO,
//! COMMAND — the handshake and housekeeping real clients send around pub/sub.

use crate::support::{Raw, TestServer};

#[tokio::test]
async fn hello_switches_protocol_and_reports_a_redis_7_2_server() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(&["CLIENT", "ID"], b"").await;
    let id = c.frame().await;
    let id = std::str::from_utf8(&id[1..id.len() - 2])
        .unwrap()
        .to_string();
    c.cmd(&["HELLO", "3"]).await;
    let expected = format!(
        "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.4\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:{id}\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
    );
    c.expect(expected.as_bytes()).await;
    c.cmd(&["HELLO", "2"]).await;
    let h2 = c.frame().await;
    assert!(h2.starts_with(b"*14\r\n$6\r\nserver\r\n"));
    c.roundtrip(
        &["HELLO", "4"],
        b"-NOPROTO unsupported protocol version\r\n",
    )
    .await;
    c.roundtrip(
        &["HELLO", "x"],
        b"-ERR Protocol version is not an integer or out of range\r\n",
    )
    .await;
    c.roundtrip(
        &["HELLO", "3", "FOO"],
        b"-ERR Syntax error in HELLO option 'FOO'\r\n",
    )
    .await;
    c.roundtrip(
        &["HELLO", "3", "SETNAME", "a b"],
        b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
    )
    .await;
    c.roundtrip(
        &["HELLO", "3", "AUTH", "nobody", "pw"],
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    )
    .await;
    // With no password set, the default user accepts any password.
    c.cmd(&["HELLO", "3", "AUTH", "default", "anything", "SETNAME", "me"])
        .await;
    c.frame().await;
    c.roundtrip(&["CLIENT", "GETNAME"], b"$2\r\nme\r\n").await;
}

#[tokio::test]
async fn auth_without_a_configured_password() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(&["AUTH", "pw"], b"-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n").await;
    c.roundtrip(&["AUTH", "default", "pw"], b"+OK\r\n").await;
    c.roundtrip(
        &["AUTH", "other", "pw"],
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    )
    .await;
    c.roundtrip(&["AUTH", "a", "b", "c"], b"-ERR syntax error\r\n")
        .await;
}

#[tokio::test]
async fn select_accepts_databases_0_to_15() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(&["SELECT", "15"], b"+OK\r\n").await;
    c.roundtrip(&["SELECT", "16"], b"-ERR DB index is out of range\r\n")
        .await;
    c.roundtrip(&["SELECT", "-1"], b"-ERR DB index is out of range\r\n")
        .await;
    c.roundtrip(
        &["SELECT", "x"],
        b"-ERR value is not an integer or out of range\r\n",
    )
    .await;
    // Pub/sub ignores the database.
    let mut sub = Raw::connect(s.addr()).await;
    sub.cmd(&["SUBSCRIBE", "db"]).await;
    sub.frame().await;
    c.roundtrip(&["PUBLISH", "db", "x"], b":1\r\n").await;
}

#[tokio::test]
async fn reset_returns_to_resp2_and_clears_the_name() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.cmd(&["HELLO", "3", "SETNAME", "n"]).await;
    c.frame().await;
    c.roundtrip(&["CLIENT", "SETINFO", "LIB-NAME", "lib"], b"+OK\r\n")
        .await;
    c.roundtrip(&["MULTI"], b"+OK\r\n").await;
    c.roundtrip(&["RESET"], b"+RESET\r\n").await;
    c.roundtrip(&["CLIENT", "GETNAME"], b"$-1\r\n").await;
    c.roundtrip(&["EXEC"], b"-ERR EXEC without MULTI\r\n").await;
    c.cmd(&["CLIENT", "INFO"]).await;
    let info = c.frame().await;
    let info = String::from_utf8_lossy(&info);
    assert!(info.starts_with('$'), "RESP2 bulk, got {info}");
    assert!(info.contains(" resp=2 "), "{info}");
    assert!(
        info.contains(" lib-name=lib "),
        "RESET keeps the library name: {info}"
    );
}

#[tokio::test]
async fn client_setname_getname_setinfo_and_info() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(&["CLIENT", "GETNAME"], b"$-1\r\n").await;
    c.roundtrip(&["CLIENT", "SETNAME", "worker-1"], b"+OK\r\n")
        .await;
    c.roundtrip(&["CLIENT", "GETNAME"], b"$8\r\nworker-1\r\n")
        .await;
    c.roundtrip(
        &["CLIENT", "SETNAME", "bad name"],
        b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
    )
    .await;
    // CLIENT SETINFO is Redis 7.2 (7.0 answers "unknown subcommand").
    c.roundtrip(&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"], b"+OK\r\n")
        .await;
    c.roundtrip(&["CLIENT", "SETINFO", "lib-ver", "8.1.0"], b"+OK\r\n")
        .await;
    c.roundtrip(
        &["CLIENT", "SETINFO", "foo", "x"],
        b"-ERR Unrecognized option 'foo'\r\n",
    )
    .await;
    c.roundtrip(
        &["CLIENT", "SETINFO", "lib-name", "a b"],
        b"-ERR lib-name cannot contain spaces, newlines or special characters.\r\n",
    )
    .await;
    c.roundtrip(
        &[
            "CLIENT",
            "MAINT_NOTIFICATIONS",
            "ON",
            "moving-endpoint-type",
            "internal-ip",
        ],
        b"-ERR unknown subcommand 'MAINT_NOTIFICATIONS'. Try CLIENT HELP.\r\n",
    )
    .await;
    c.cmd(&["CLIENT", "INFO"]).await;
    let info = String::from_utf8(c.frame().await).unwrap();
    for field in [
        " name=worker-1 ",
        " flags=N ",
        " db=0 sub=0 psub=0 ssub=0 multi=-1 ",
        " cmd=client|info user=default redir=-1 resp=2 lib-name=redis-py lib-ver=8.1.0\n",
    ] {
        assert!(info.contains(field), "{field:?} missing from {info}");
    }
}

#[tokio::test]
async fn client_list_and_kill() {
    let s = TestServer::start().await;
    let mut a = Raw::connect(s.addr()).await;
    let mut b = Raw::connect(s.addr()).await;
    b.cmd(&["SUBSCRIBE", "k"]).await;
    b.frame().await;
    a.cmd(&["CLIENT", "LIST", "TYPE", "pubsub"]).await;
    let list = String::from_utf8(a.frame().await).unwrap();
    assert_eq!(list.matches("id=").count(), 1, "{list}");
    assert!(
        list.contains(" flags=P ") && list.contains(" sub=1 "),
        "{list}"
    );
    let id: u64 = list
        .split("id=")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    a.roundtrip(
        &["CLIENT", "LIST", "TYPE", "bogus"],
        b"-ERR Unknown client type 'bogus'\r\n",
    )
    .await;
    a.roundtrip(&["CLIENT", "KILL", "1.2.3.4:5"], b"-ERR No such client\r\n")
        .await;
    a.roundtrip(
        &["CLIENT", "KILL", "ID", "0"],
        b"-ERR client-id should be greater than 0\r\n",
    )
    .await;
    a.roundtrip(&["CLIENT", "KILL", "ID", &id.to_string()], b":1\r\n")
        .await;
    b.expect_closed().await;
    a.roundtrip(&["CLIENT", "KILL", "TYPE", "pubsub"], b":0\r\n")
        .await;
    // SKIPME defaults to yes; with no, the caller kills itself after the reply.
    a.roundtrip(
        &["CLIENT", "KILL", "SKIPME", "no", "TYPE", "normal"],
        b":1\r\n",
    )
    .await;
    a.expect_closed().await;
}

#[tokio::test]
async fn client_reply_off_skip_on() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.send(b"CLIENT REPLY OFF\r\nPING\r\nECHO x\r\nCLIENT REPLY ON\r\nPING\r\n")
        .await;
    c.expect(b"+OK\r\n+PONG\r\n").await;
    c.send(b"CLIENT REPLY SKIP\r\nECHO skipped\r\nECHO shown\r\n")
        .await;
    c.expect(b"$5\r\nshown\r\n").await;
    c.roundtrip(&["CLIENT", "REPLY", "maybe"], b"-ERR syntax error\r\n")
        .await;
}

#[tokio::test]
async fn multi_exec_discard() {
    let s = TestServer::start().await;
    let mut sub = Raw::connect(s.addr()).await;
    sub.cmd(&["SUBSCRIBE", "t"]).await;
    sub.frame().await;
    let mut c = Raw::connect(s.addr()).await;
    c.send(b"MULTI\r\nPUBLISH t 1\r\nPUBLISH t 2\r\nMULTI\r\nEXEC\r\n")
        .await;
    c.expect(
        b"+OK\r\n+QUEUED\r\n+QUEUED\r\n-ERR MULTI calls can not be nested\r\n*2\r\n:1\r\n:1\r\n",
    )
    .await;
    sub.expect(b"*3\r\n$7\r\nmessage\r\n$1\r\nt\r\n$1\r\n1\r\n*3\r\n$7\r\nmessage\r\n$1\r\nt\r\n$1\r\n2\r\n")
        .await;
    c.send(b"MULTI\r\nPUBLISH t\r\nPING\r\nEXEC\r\n").await;
    c.expect(b"+OK\r\n-ERR wrong number of arguments for 'publish' command\r\n+QUEUED\r\n-EXECABORT Transaction discarded because of previous errors.\r\n")
        .await;
    c.send(b"MULTI\r\nPUBLISH t 3\r\nDISCARD\r\nDISCARD\r\nEXEC\r\n")
        .await;
    c.expect(b"+OK\r\n+QUEUED\r\n+OK\r\n-ERR DISCARD without MULTI\r\n-ERR EXEC without MULTI\r\n")
        .await;
    c.send(b"MULTI\r\nEXEC x\r\n").await;
    c.expect(b"+OK\r\n-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n")
        .await;
    sub.expect_silence(50).await;
}

#[tokio::test]
async fn info_reports_pubsub_counters() {
    let s = TestServer::start().await;
    let mut sub = Raw::connect(s.addr()).await;
    sub.cmd(&["SUBSCRIBE", "i1", "i2"]).await;
    sub.frame().await;
    sub.frame().await;
    sub.cmd(&["PSUBSCRIBE", "i*"]).await;
    sub.frame().await;
    sub.cmd(&["SSUBSCRIBE", "s"]).await;
    sub.frame().await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(&["PUBLISH", "i1", "x"], b":2\r\n").await;
    c.cmd(&["INFO"]).await;
    let info = String::from_utf8(c.frame().await).unwrap();
    for field in [
        "# Server\r\nredis_version:7.2.4\r\n",
        "\r\nredis_mode:standalone\r\n",
        "\r\nloading:0\r\n",
        "\r\nconnected_clients:2\r\n",
        "\r\npubsub_clients:1\r\n",
        "\r\npubsub_channels:2\r\n",
        "\r\npubsub_patterns:1\r\n",
        "\r\npubsubshard_channels:1\r\n",
        "\r\npubsub_shardchannels:1\r\n",
        "\r\npubsub_messages_published:1\r\n",
        "\r\npubsub_messages_delivered:2\r\n",
        "\r\npubsubd_version:",
        "\r\n\r\n# Keyspace\r\n",
    ] {
        assert!(info.contains(field), "{field:?} missing from {info}");
    }
    c.cmd(&["INFO", "clients"]).await;
    let clients = String::from_utf8(c.frame().await).unwrap();
    assert!(clients.contains("# Clients\r\n") && !clients.contains("# Server"));
    c.roundtrip(&["INFO", "nosuchsection"], b"$0\r\n\r\n").await;
}

#[tokio::test]
async fn command_introspection() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.cmd(&["COMMAND", "COUNT"]).await;
    let n = c.frame().await;
    assert!(n.starts_with(b":"));
    c.roundtrip(
        &["COMMAND", "INFO", "publish", "nosuch"],
        b"*2\r\n*10\r\n$7\r\npublish\r\n:3\r\n*4\r\n+pubsub\r\n+loading\r\n+stale\r\n+fast\r\n:0\r\n:0\r\n:0\r\n*2\r\n+@pubsub\r\n+@fast\r\n*0\r\n*0\r\n*0\r\n$-1\r\n",
    )
    .await;
    c.cmd(&["HELLO", "3"]).await;
    c.frame().await;
    c.roundtrip(
        &["COMMAND", "DOCS", "ping"],
        b"%1\r\n$4\r\nping\r\n%5\r\n$7\r\nsummary\r\n$41\r\nReturns the server's liveliness response.\r\n$5\r\nsince\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$10\r\nconnection\r\n$10\r\ncomplexity\r\n$4\r\nO(1)\r\n$9\r\narguments\r\n*1\r\n%4\r\n$4\r\nname\r\n$7\r\nmessage\r\n$4\r\ntype\r\n$6\r\nstring\r\n$12\r\ndisplay_text\r\n$7\r\nmessage\r\n$5\r\nflags\r\n~1\r\n+optional\r\n",
    )
    .await;
    // redis-cli's interactive start asks for every command's docs.
    c.cmd(&["COMMAND", "DOCS"]).await;
    let all = c.frame().await;
    assert!(all.starts_with(b"%"));
    // Redis 7.2.4: a shard channel's key spec is flagged not_key, which GETKEYS skips, and
    // "has keys" is checked before the arity; GETKEYS takes arity -3.
    for args in [
        &["COMMAND", "GETKEYS", "spublish", "ch", "m"][..],
        &["COMMAND", "GETKEYSANDFLAGS", "ssubscribe", "a", "b"],
        &["COMMAND", "GETKEYS", "sunsubscribe"],
        &["COMMAND", "GETKEYS", "publish"],
        &["COMMAND", "GETKEYSANDFLAGS", "ping"],
    ] {
        c.roundtrip(args, b"-ERR The command has no key arguments\r\n")
            .await;
    }
    c.roundtrip(
        &["COMMAND", "GETKEYS", "nosuch", "a"],
        b"-ERR Invalid command specified\r\n",
    )
    .await;
    // QUIT is deprecated since 7.2; shard channels are documented as strings.
    c.roundtrip(
        &["COMMAND", "DOCS", "quit"],
        b"%1\r\n$4\r\nquit\r\n%7\r\n$7\r\nsummary\r\n$22\r\nCloses the connection.\r\n$5\r\nsince\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$10\r\nconnection\r\n$10\r\ncomplexity\r\n$4\r\nO(1)\r\n$9\r\ndoc_flags\r\n~1\r\n+deprecated\r\n$16\r\ndeprecated_since\r\n$5\r\n7.2.0\r\n$11\r\nreplaced_by\r\n$27\r\njust closing the connection\r\n",
    )
    .await;
    c.roundtrip(
        &["COMMAND", "DOCS", "spublish"],
        b"%1\r\n$8\r\nspublish\r\n%5\r\n$7\r\nsummary\r\n$33\r\nPost a message to a shard channel\r\n$5\r\nsince\r\n$5\r\n7.0.0\r\n$5\r\ngroup\r\n$6\r\npubsub\r\n$10\r\ncomplexity\r\n$80\r\nO(N) where N is the number of clients subscribed to the receiving shard channel.\r\n$9\r\narguments\r\n*2\r\n%3\r\n$4\r\nname\r\n$12\r\nshardchannel\r\n$4\r\ntype\r\n$6\r\nstring\r\n$12\r\ndisplay_text\r\n$12\r\nshardchannel\r\n%3\r\n$4\r\nname\r\n$7\r\nmessage\r\n$4\r\ntype\r\n$6\r\nstring\r\n$12\r\ndisplay_text\r\n$7\r\nmessage\r\n",
    )
    .await;
    c.roundtrip(
        &["COMMAND", "GETKEYS", "ping", "x"],
        b"-ERR The command has no key arguments\r\n",
    )
    .await;
}

#[tokio::test]
async fn maxclients_rejects_with_redis_error() {
    let cfg = pubsubd::config::Config {
        maxclients: 2,
        ..pubsubd::config::Config::default()
    };
    let s = TestServer::with_config(cfg).await;
    let mut a = Raw::connect(s.addr()).await;
    let mut b = Raw::connect(s.addr()).await;
    a.roundtrip(&["PING"], b"+PONG\r\n").await;
    b.roundtrip(&["PING"], b"+PONG\r\n").await;
    let mut c = Raw::connect(s.addr()).await;
    c.expect(b"-ERR max number of clients reached\r\n").await;
    c.expect_closed().await;
}

/// Redis 7.2's HELP replies end with `HELP` / `    Print this help.` (its shared help
/// footer; 7.0 said "Prints this help."): PUBSUB, COMMAND, CONFIG and SLOWLOG HELP, byte for
/// byte as redis-server 7.2.4 sends them.
#[tokio::test]
async fn help_replies_are_redis_7_2_text() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(
        &["PUBSUB", "HELP"],
        b"*14\r\n+PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n+CHANNELS [<pattern>]\r\n+    Return the currently active channels matching a <pattern> (default: '*').\r\n+NUMPAT\r\n+    Return number of subscriptions to patterns.\r\n+NUMSUB [<channel> ...]\r\n+    Return the number of subscribers for the specified channels, excluding\r\n+    pattern subscriptions(default: no channels).\r\n+SHARDCHANNELS [<pattern>]\r\n+    Return the currently active shard level channels matching a <pattern> (default: '*').\r\n+SHARDNUMSUB [<shardchannel> ...]\r\n+    Return the number of subscribers for the specified shard level channel(s)\r\n+HELP\r\n+    Print this help.\r\n",
    )
    .await;
    c.roundtrip(
        &["COMMAND", "HELP"],
        b"*21\r\n+COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n+(no subcommand)\r\n+    Return details about all Redis commands.\r\n+COUNT\r\n+    Return the total number of commands in this Redis server.\r\n+LIST\r\n+    Return a list of all commands in this Redis server.\r\n+INFO [<command-name> ...]\r\n+    Return details about multiple Redis commands.\r\n+    If no command names are given, documentation details for all\r\n+    commands are returned.\r\n+DOCS [<command-name> ...]\r\n+    Return documentation details about multiple Redis commands.\r\n+    If no command names are given, documentation details for all\r\n+    commands are returned.\r\n+GETKEYS <full-command>\r\n+    Return the keys from a full Redis command.\r\n+GETKEYSANDFLAGS <full-command>\r\n+    Return the keys and the access flags from a full Redis command.\r\n+HELP\r\n+    Print this help.\r\n",
    )
    .await;
    c.roundtrip(
        &["CONFIG", "HELP"],
        b"*11\r\n+CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n+GET <pattern>\r\n+    Return parameters matching the glob-like <pattern> and their values.\r\n+SET <directive> <value>\r\n+    Set the configuration <directive> to <value>.\r\n+RESETSTAT\r\n+    Reset statistics reported by the INFO command.\r\n+REWRITE\r\n+    Rewrite the configuration file.\r\n+HELP\r\n+    Print this help.\r\n",
    )
    .await;
    c.roundtrip(
        &["SLOWLOG", "HELP"],
        b"*12\r\n+SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n+GET [<count>]\r\n+    Return top <count> entries from the slowlog (default: 10, -1 mean all).\r\n+    Entries are made of:\r\n+    id, timestamp, time in microseconds, arguments array, client IP and port,\r\n+    client name\r\n+LEN\r\n+    Return the length of the slowlog.\r\n+RESET\r\n+    Reset the slowlog.\r\n+HELP\r\n+    Print this help.\r\n",
    )
    .await;
}
