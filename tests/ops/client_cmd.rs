//! CLIENT LIST / INFO fields, CLIENT KILL filters, CLIENT PAUSE / UNPAUSE (which commands a
//! pause holds back: checked against redis-server 7.0.15), NO-EVICT.

use std::time::Duration;

use crate::support::info::{client_fields, field, text};
use crate::support::{Raw, TestServer};

/// Redis 7.2's CLIENT LIST fields, in its order.
const FIELDS: &[&str] = &[
    "id",
    "addr",
    "laddr",
    "fd",
    "name",
    "age",
    "idle",
    "flags",
    "db",
    "sub",
    "psub",
    "ssub",
    "multi",
    "qbuf",
    "qbuf-free",
    "argv-mem",
    "multi-mem",
    "rbs",
    "rbp",
    "obl",
    "oll",
    "omem",
    "tot-mem",
    "events",
    "cmd",
    "user",
    "redir",
    "resp",
    "lib-name",
    "lib-ver",
];

async fn id(c: &mut Raw) -> u64 {
    c.cmd(&["CLIENT", "ID"]).await;
    let f = c.frame().await;
    String::from_utf8_lossy(&f[1..f.len() - 2]).parse().unwrap()
}

#[tokio::test]
async fn list_and_info_show_redis_fields() {
    let s = TestServer::start().await;
    let mut sub = Raw::connect(s.addr()).await;
    sub.roundtrip(&["CLIENT", "SETNAME", "worker-1"], b"+OK\r\n")
        .await;
    sub.roundtrip(&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"], b"+OK\r\n")
        .await;
    sub.roundtrip(&["CLIENT", "SETINFO", "LIB-VER", "8.1.0"], b"+OK\r\n")
        .await;
    sub.cmd(&["SUBSCRIBE", "a", "b"]).await;
    sub.frame().await;
    sub.frame().await;
    sub.cmd(&["PSUBSCRIBE", "p*"]).await;
    sub.frame().await;
    let sub_id = id(&mut Raw::connect(s.addr()).await).await - 1;

    let mut c = Raw::connect(s.addr()).await;
    let my_id = id(&mut c).await;
    let list = text(&mut c, &["CLIENT", "LIST"]).await;
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    for line in &lines {
        let f = client_fields(line);
        let keys: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, FIELDS);
    }
    let s_line = lines
        .iter()
        .find(|l| l.starts_with(&format!("id={sub_id} ")))
        .unwrap();
    let f = client_fields(s_line);
    assert_eq!(field(&f, "name"), "worker-1");
    assert_eq!(field(&f, "flags"), "P");
    assert_eq!(
        (field(&f, "sub"), field(&f, "psub"), field(&f, "ssub")),
        ("2", "1", "0")
    );
    assert_eq!(field(&f, "cmd"), "psubscribe");
    assert_eq!(field(&f, "user"), "default");
    assert_eq!(field(&f, "resp"), "2");
    assert_eq!(
        (field(&f, "lib-name"), field(&f, "lib-ver")),
        ("redis-py", "8.1.0")
    );
    assert_eq!(field(&f, "laddr"), s.addr().to_string());
    let me = client_fields(
        lines
            .iter()
            .find(|l| l.starts_with(&format!("id={my_id} ")))
            .unwrap(),
    );
    assert_eq!(
        (field(&me, "flags"), field(&me, "cmd")),
        ("N", "client|list")
    );
    assert_eq!(
        field(&me, "addr"),
        c.stream.local_addr().unwrap().to_string()
    );

    let info = text(&mut c, &["CLIENT", "INFO"]).await;
    let f = client_fields(&info);
    assert_eq!(field(&f, "id"), my_id.to_string());
    assert_eq!(field(&f, "cmd"), "client|info");
    assert!(info.ends_with('\n'));

    let only = text(&mut c, &["CLIENT", "LIST", "TYPE", "pubsub"]).await;
    assert!(
        only.starts_with(&format!("id={sub_id} ")) && only.lines().count() == 1,
        "{only}"
    );
    let by_id = text(&mut c, &["CLIENT", "LIST", "ID", &my_id.to_string(), "999"]).await;
    assert!(by_id.starts_with(&format!("id={my_id} ")) && by_id.lines().count() == 1);
}

#[tokio::test]
async fn kill_filters_select_the_right_clients() {
    let s = TestServer::start().await;
    let mut admin = Raw::connect(s.addr()).await;
    let mut sub = Raw::connect(s.addr()).await;
    sub.cmd(&["SUBSCRIBE", "x"]).await;
    sub.frame().await;
    let mut normal = Raw::connect(s.addr()).await;
    let normal_id = id(&mut normal).await;
    let mut by_addr = Raw::connect(s.addr()).await;
    by_addr.roundtrip(&["PING"], b"+PONG\r\n").await;
    let addr = by_addr.stream.local_addr().unwrap().to_string();

    // TYPE pubsub: only the subscriber.
    admin
        .roundtrip(&["CLIENT", "KILL", "TYPE", "pubsub"], b":1\r\n")
        .await;
    sub.expect_closed().await;
    // ID.
    admin
        .roundtrip(&["CLIENT", "KILL", "ID", &normal_id.to_string()], b":1\r\n")
        .await;
    normal.expect_closed().await;
    admin
        .roundtrip(&["CLIENT", "KILL", "ID", "9999"], b":0\r\n")
        .await;
    // ADDR, old form and new.
    admin
        .roundtrip(
            &["CLIENT", "KILL", "127.0.0.1:1"],
            b"-ERR No such client\r\n",
        )
        .await;
    admin
        .roundtrip(&["CLIENT", "KILL", &addr], b"+OK\r\n")
        .await;
    by_addr.expect_closed().await;

    // LADDR and USER match everyone else; SKIPME (default yes) spares the caller.
    let mut x = Raw::connect(s.addr()).await;
    x.roundtrip(&["PING"], b"+PONG\r\n").await;
    admin
        .roundtrip(
            &[
                "CLIENT",
                "KILL",
                "LADDR",
                &s.addr().to_string(),
                "USER",
                "default",
            ],
            b":1\r\n",
        )
        .await;
    x.expect_closed().await;
    admin
        .roundtrip(
            &["CLIENT", "KILL", "USER", "nobody"],
            b"-ERR No such user 'nobody'\r\n",
        )
        .await;
    // MAXAGE is a Redis 7.4 filter; 7.2.4 answers it with a syntax error.
    admin
        .roundtrip(
            &["CLIENT", "KILL", "MAXAGE", "100"],
            b"-ERR syntax error\r\n",
        )
        .await;
    // USER works for any existing user (Redis 7.2.4: the number killed, 0 for none).
    admin
        .roundtrip(
            &["ACL", "SETUSER", "u", "on", "nopass", "+@all", "&*"],
            b"+OK\r\n",
        )
        .await;
    admin
        .roundtrip(&["CLIENT", "KILL", "USER", "u"], b":0\r\n")
        .await;
    let mut y = Raw::connect(s.addr()).await;
    y.roundtrip(&["AUTH", "u", "x"], b"+OK\r\n").await;
    let mut z = Raw::connect(s.addr()).await;
    z.roundtrip(&["AUTH", "u", "x"], b"+OK\r\n").await;
    admin
        .roundtrip(&["CLIENT", "KILL", "USER", "u"], b":2\r\n")
        .await;
    y.expect_closed().await;
    z.expect_closed().await;
    // Errors.
    admin
        .roundtrip(
            &["CLIENT", "KILL", "TYPE", "bogus"],
            b"-ERR Unknown client type 'bogus'\r\n",
        )
        .await;
    admin
        .roundtrip(
            &["CLIENT", "KILL", "ID", "0"],
            b"-ERR client-id should be greater than 0\r\n",
        )
        .await;
    admin
        .roundtrip(
            &["CLIENT", "KILL", "SKIPME", "maybe"],
            b"-ERR syntax error\r\n",
        )
        .await;
    // SKIPME no: the caller itself, after its reply.
    let me = id(&mut admin).await.to_string();
    admin
        .roundtrip(&["CLIENT", "KILL", "ID", &me, "SKIPME", "no"], b":1\r\n")
        .await;
    admin.expect_closed().await;
}

#[tokio::test]
async fn pause_write_holds_publish_only() {
    let s = TestServer::start().await;
    let mut admin = Raw::connect(s.addr()).await;
    let mut publisher = Raw::connect(s.addr()).await;
    let mut other = Raw::connect(s.addr()).await;
    admin
        .roundtrip(&["CLIENT", "PAUSE", "60000", "WRITE"], b"+OK\r\n")
        .await;
    publisher.cmd(&["PUBLISH", "ch", "held"]).await;
    publisher.expect_silence(100).await;
    // Not writes in Redis 7: SPUBLISH, SUBSCRIBE, PING, INFO.
    other.roundtrip(&["SPUBLISH", "s", "m"], b":0\r\n").await;
    other.roundtrip(&["PING"], b"+PONG\r\n").await;
    other
        .roundtrip(
            &["SUBSCRIBE", "ch"],
            b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n",
        )
        .await;
    admin.roundtrip(&["CLIENT", "UNPAUSE"], b"+OK\r\n").await;
    // The held PUBLISH runs after the pause, so the new subscriber gets it.
    publisher.expect(b":1\r\n").await;
    other
        .expect(b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$4\r\nheld\r\n")
        .await;
}

// was: with the idle timeout checked by the housekeeping task, a client whose PUBLISH waited
// for CLIENT PAUSE was closed as idle; Redis does not time out a postponed client
#[tokio::test]
async fn a_client_held_by_pause_is_not_closed_as_idle() {
    let s = TestServer::start().await;
    let mut admin = Raw::connect(s.addr()).await;
    let mut publisher = Raw::connect(s.addr()).await;
    let mut idle = Raw::connect(s.addr()).await;
    admin
        .roundtrip(&["CONFIG", "SET", "timeout", "1"], b"+OK\r\n")
        .await;
    admin
        .roundtrip(&["CLIENT", "PAUSE", "60000", "WRITE"], b"+OK\r\n")
        .await;
    publisher.cmd(&["PUBLISH", "ch", "held"]).await;
    // The clients that sent nothing since are closed; the one whose PUBLISH is held stays.
    idle.expect_closed().await;
    admin.expect_closed().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut admin = Raw::connect(s.addr()).await;
    admin.roundtrip(&["CLIENT", "UNPAUSE"], b"+OK\r\n").await;
    publisher.expect(b":0\r\n").await;
    publisher.roundtrip(&["PING"], b"+PONG\r\n").await;
}

#[tokio::test]
async fn pause_all_holds_everything_until_it_ends() {
    let s = TestServer::start().await;
    let mut admin = Raw::connect(s.addr()).await;
    let mut c = Raw::connect(s.addr()).await;
    admin
        .roundtrip(&["CLIENT", "PAUSE", "300"], b"+OK\r\n")
        .await;
    // Pipelined: nothing answers until the pause ends, then all in order.
    c.send(b"PING\r\nECHO x\r\n").await;
    c.expect_silence(100).await;
    c.expect(b"+PONG\r\n$1\r\nx\r\n").await;
    // Errors, as redis-server 7.0.15 words them.
    for (args, reply) in [
        (vec!["CLIENT", "PAUSE", "1000", "foo"], "-ERR CLIENT PAUSE mode must be WRITE or ALL\r\n"),
        (vec!["CLIENT", "PAUSE", "-1"], "-ERR timeout is negative\r\n"),
        (vec!["CLIENT", "PAUSE", "abc"], "-ERR timeout is not an integer or out of range\r\n"),
        (vec!["CLIENT", "UNPAUSE", "x"], "-ERR wrong number of arguments for 'client|unpause' command\r\n"),
        (vec!["CLIENT", "PAUSE", "100", "write", "x"], "-ERR unknown subcommand or wrong number of arguments for 'PAUSE'. Try CLIENT HELP.\r\n"),
    ] {
        admin.roundtrip(&args, reply.as_bytes()).await;
    }
}

#[tokio::test]
async fn pause_write_holds_an_exec_that_publishes() {
    let s = TestServer::start().await;
    let mut admin = Raw::connect(s.addr()).await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(&["MULTI"], b"+OK\r\n").await;
    c.roundtrip(&["ECHO", "a"], b"+QUEUED\r\n").await;
    admin
        .roundtrip(&["CLIENT", "PAUSE", "250", "WRITE"], b"+OK\r\n")
        .await;
    // Queueing a PUBLISH is held (Redis checks before queueing), and so is the EXEC after it.
    c.send(b"PUBLISH ch m\r\nEXEC\r\n").await;
    c.expect_silence(100).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.expect(b"+QUEUED\r\n*2\r\n$1\r\na\r\n:0\r\n").await;
}

#[tokio::test]
async fn no_evict_and_reply_are_accepted() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(&["CLIENT", "NO-EVICT", "on"], b"+OK\r\n").await;
    c.roundtrip(&["CLIENT", "NO-EVICT", "maybe"], b"-ERR syntax error\r\n")
        .await;
    c.cmd(&["CLIENT", "REPLY", "OFF"]).await;
    c.cmd(&["PING"]).await;
    c.roundtrip(&["CLIENT", "REPLY", "ON"], b"+OK\r\n").await;
}

/// CLIENT TRACKING / TRACKINGINFO / GETREDIR / CACHING, with Redis 7.2.4's replies and its
/// validation order (options parsed first, then the ON checks).
#[tokio::test]
async fn tracking_validates_like_redis_and_reports_its_state() {
    let s = TestServer::start().await;
    let mut a = Raw::connect(s.addr()).await;
    let mut b = Raw::connect(s.addr()).await;
    b.cmd(&["CLIENT", "ID"]).await;
    let bid = String::from_utf8(b.frame().await).unwrap();
    let bid = bid.trim_start_matches(':').trim_end().to_string();
    let off = b"*6\r\n$5\r\nflags\r\n*1\r\n$3\r\noff\r\n$8\r\nredirect\r\n:-1\r\n$8\r\nprefixes\r\n*0\r\n";
    a.roundtrip(&["CLIENT", "TRACKINGINFO"], off).await;
    a.roundtrip(&["CLIENT", "GETREDIR"], b":-1\r\n").await;
    for (args, reply) in [
        (&["CLIENT", "TRACKING"][..], &b"-ERR wrong number of arguments for 'client|tracking' command\r\n"[..]),
        (&["CLIENT", "TRACKING", "maybe"], b"-ERR syntax error\r\n"),
        (&["CLIENT", "TRACKING", "ON", "REDIRECT"], b"-ERR syntax error\r\n"),
        (&["CLIENT", "TRACKING", "ON", "REDIRECT", "abc"], b"-ERR value is not an integer or out of range\r\n"),
        (&["CLIENT", "TRACKING", "ON", "REDIRECT", "0"], b"-ERR The client ID you want redirect to does not exist\r\n"),
        (&["CLIENT", "TRACKING", "ON", "REDIRECT", &bid, "REDIRECT", &bid], b"-ERR A client can only redirect to a single other client\r\n"),
        (&["CLIENT", "TRACKING", "ON", "PREFIX", "foo"], b"-ERR PREFIX option requires BCAST mode to be enabled\r\n"),
        (&["CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"], b"-ERR OPTIN and OPTOUT are not compatible with BCAST\r\n"),
        (&["CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"], b"-ERR You can't specify both OPTIN mode and OPTOUT mode\r\n"),
        (&["CLIENT", "CACHING", "yes"], b"-ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled\r\n"),
        (&["CLIENT", "TRACKINGINFO", "x"], b"-ERR wrong number of arguments for 'client|trackinginfo' command\r\n"),
        // Two given prefixes that overlap: the error only (7.2.4 also enables tracking and
        // replies twice when the overlap is found past the first prefix; see tracking.rs).
        (&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "p", "PREFIX", "q", "PREFIX", "qr"], b"-ERR Prefix 'q' overlaps with another provided prefix 'qr'. Prefixes for a single client must not overlap.\r\n"),
    ] {
        a.roundtrip(args, reply).await;
    }
    a.roundtrip(&["CLIENT", "TRACKINGINFO"], off).await;
    // OPTIN: CACHING yes lasts over CLIENT subcommands, until another command runs.
    a.roundtrip(&["CLIENT", "TRACKING", "ON", "OPTIN"], b"+OK\r\n")
        .await;
    a.roundtrip(&["CLIENT", "CACHING", "yes"], b"+OK\r\n").await;
    let caching = b"*6\r\n$5\r\nflags\r\n*3\r\n$2\r\non\r\n$5\r\noptin\r\n$11\r\ncaching-yes\r\n$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*0\r\n";
    a.roundtrip(&["CLIENT", "TRACKINGINFO"], caching).await;
    a.roundtrip(&["CLIENT", "TRACKINGINFO"], caching).await;
    a.roundtrip(&["PING"], b"+PONG\r\n").await;
    a.roundtrip(&["CLIENT", "TRACKINGINFO"], b"*6\r\n$5\r\nflags\r\n*2\r\n$2\r\non\r\n$5\r\noptin\r\n$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*0\r\n").await;
    a.roundtrip(
        &["CLIENT", "CACHING", "no"],
        b"-ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.\r\n",
    )
    .await;
    a.roundtrip(&["CLIENT", "TRACKING", "ON", "OPTOUT"], b"-ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.\r\n").await;
    a.roundtrip(&["CLIENT", "TRACKING", "ON", "BCAST"], b"-ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.\r\n").await;
    a.roundtrip(&["CLIENT", "TRACKING", "OFF"], b"+OK\r\n")
        .await;
    // BCAST without PREFIX tracks the empty prefix; prefixes must not overlap.
    a.roundtrip(
        &["CLIENT", "TRACKING", "on", "bcast", "prefix", "m", "noloop"],
        b"+OK\r\n",
    )
    .await;
    a.roundtrip(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "ma"], b"-ERR Prefix 'ma' overlaps with an existing prefix 'm'. Prefixes for a single client must not overlap.\r\n").await;
    a.roundtrip(&["CLIENT", "TRACKINGINFO"], b"*6\r\n$5\r\nflags\r\n*3\r\n$2\r\non\r\n$5\r\nbcast\r\n$6\r\nnoloop\r\n$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*1\r\n$1\r\nm\r\n").await;
    a.cmd(&["CLIENT", "INFO"]).await;
    let info = String::from_utf8(a.frame().await).unwrap();
    assert!(
        info.contains(" flags=tB ") && info.contains(" redir=0 "),
        "{info}"
    );
    a.cmd(&["INFO"]).await;
    let info = String::from_utf8(a.frame().await).unwrap();
    assert!(info.contains("\r\ntracking_clients:1\r\n"), "{info}");
    assert!(info.contains("\r\ntracking_total_prefixes:1\r\n"), "{info}");
    // REDIRECT to another client; RESET turns tracking off.
    a.roundtrip(&["CLIENT", "TRACKING", "OFF"], b"+OK\r\n")
        .await;
    a.roundtrip(&["CLIENT", "TRACKING", "ON", "REDIRECT", &bid], b"+OK\r\n")
        .await;
    a.roundtrip(&["CLIENT", "GETREDIR"], format!(":{bid}\r\n").as_bytes())
        .await;
    a.roundtrip(&["RESET"], b"+RESET\r\n").await;
    a.roundtrip(&["CLIENT", "TRACKINGINFO"], off).await;
    // RESP3: a map whose flags are a set.
    a.cmd(&["HELLO", "3"]).await;
    a.frame().await;
    a.roundtrip(&["CLIENT", "TRACKINGINFO"], b"%3\r\n$5\r\nflags\r\n~1\r\n$3\r\noff\r\n$8\r\nredirect\r\n:-1\r\n$8\r\nprefixes\r\n*0\r\n").await;
    a.roundtrip(
        &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "NOLOOP"],
        b"+OK\r\n",
    )
    .await;
    a.roundtrip(&["CLIENT", "TRACKINGINFO"], b"%3\r\n$5\r\nflags\r\n~3\r\n$2\r\non\r\n$5\r\nbcast\r\n$6\r\nnoloop\r\n$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*1\r\n$1\r\na\r\n").await;
}

/// CLIENT UNBLOCK: nobody is ever blocked here, so 0, after Redis 7.2.4's checks (the reason
/// before the id).
#[tokio::test]
async fn unblock_answers_zero_after_checking_its_arguments() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(&["CLIENT", "UNBLOCK", "1"], b":0\r\n").await;
    c.roundtrip(&["CLIENT", "UNBLOCK", "999999", "TIMEOUT"], b":0\r\n")
        .await;
    c.roundtrip(&["CLIENT", "UNBLOCK", "1", "error"], b":0\r\n")
        .await;
    c.roundtrip(
        &["CLIENT", "UNBLOCK", "abc", "bogus"],
        b"-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n",
    )
    .await;
    c.roundtrip(
        &["CLIENT", "UNBLOCK", "abc"],
        b"-ERR value is not an integer or out of range\r\n",
    )
    .await;
    c.roundtrip(
        &["CLIENT", "UNBLOCK"],
        b"-ERR wrong number of arguments for 'client|unblock' command\r\n",
    )
    .await;
    c.roundtrip(
        &["CLIENT", "UNBLOCK", "1", "TIMEOUT", "x"],
        b"-ERR unknown subcommand or wrong number of arguments for 'UNBLOCK'. Try CLIENT HELP.\r\n",
    )
    .await;
}

/// Redis 7.2.4: `CLIENT LIST ID 0` lists nothing (only a non-number is an error); NO-EVICT
/// and NO-TOUCH show as flags `e` and `T`, and RESET clears them.
#[tokio::test]
async fn list_id_zero_is_empty_and_no_evict_no_touch_are_flags() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(&["CLIENT", "LIST", "ID", "0"], b"$0\r\n\r\n")
        .await;
    c.roundtrip(
        &["CLIENT", "LIST", "ID", "abc"],
        b"-ERR Invalid client ID\r\n",
    )
    .await;
    c.roundtrip(&["CLIENT", "NO-EVICT", "on"], b"+OK\r\n").await;
    c.roundtrip(&["CLIENT", "NO-TOUCH", "on"], b"+OK\r\n").await;
    c.cmd(&["CLIENT", "INFO"]).await;
    let info = String::from_utf8(c.frame().await).unwrap();
    assert!(info.contains(" flags=eT "), "{info}");
    c.roundtrip(&["RESET"], b"+RESET\r\n").await;
    c.cmd(&["CLIENT", "INFO"]).await;
    let info = String::from_utf8(c.frame().await).unwrap();
    assert!(info.contains(" flags=N "), "{info}");
}

/// CLIENT HELP is 7.2.4's text, byte for byte.
#[tokio::test]
async fn help_is_redis_7_2_text() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(&["CLIENT", "HELP"], b"*54\r\n+CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n+CACHING (YES|NO)\r\n+    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.\r\n+GETREDIR\r\n+    Return the client ID we are redirecting to when tracking is enabled.\r\n+GETNAME\r\n+    Return the name of the current connection.\r\n+ID\r\n+    Return the ID of the current connection.\r\n+INFO\r\n+    Return information about the current client connection.\r\n+KILL <ip:port>\r\n+    Kill connection made from <ip:port>.\r\n+KILL <option> <value> [<option> <value> [...]]\r\n+    Kill connections. Options are:\r\n+    * ADDR (<ip:port>|<unixsocket>:0)\r\n+      Kill connections made from the specified address\r\n+    * LADDR (<ip:port>|<unixsocket>:0)\r\n+      Kill connections made to specified local address\r\n+    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)\r\n+      Kill connections by type.\r\n+    * USER <username>\r\n+      Kill connections authenticated by <username>.\r\n+    * SKIPME (YES|NO)\r\n+      Skip killing current connection (default: yes).\r\n+LIST [options ...]\r\n+    Return information about client connections. Options:\r\n+    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)\r\n+      Return clients of specified type.\r\n+UNPAUSE\r\n+    Stop the current client pause, resuming traffic.\r\n+PAUSE <timeout> [WRITE|ALL]\r\n+    Suspend all, or just write, clients for <timeout> milliseconds.\r\n+REPLY (ON|OFF|SKIP)\r\n+    Control the replies sent to the current connection.\r\n+SETNAME <name>\r\n+    Assign the name <name> to the current connection.\r\n+SETINFO <option> <value>\r\n+    Set client meta attr. Options are:\r\n+    * LIB-NAME: the client lib name.\r\n+    * LIB-VER: the client lib version.\r\n+UNBLOCK <clientid> [TIMEOUT|ERROR]\r\n+    Unblock the specified blocked client.\r\n+TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]\r\n+         [OPTIN] [OPTOUT] [NOLOOP]\r\n+    Control server assisted client side caching.\r\n+TRACKINGINFO\r\n+    Report tracking status for the current connection.\r\n+NO-EVICT (ON|OFF)\r\n+    Protect current client connection from eviction.\r\n+NO-TOUCH (ON|OFF)\r\n+    Will not touch LRU/LFU stats when this mode is on.\r\n+HELP\r\n+    Print this help.\r\n").await;
}

/// Redis 7.2.4's `qbuf` is the query buffer while the batch runs: the current command, what
/// came before it in the same read and what is pipelined after it (tests "CLIENT LIST" and
/// "CLIENT INFO" of unit/introspection match `qbuf=26`); `argv-mem` is the sum of the current
/// command's argument lengths.
#[tokio::test]
async fn qbuf_and_argv_mem_describe_the_command_being_run() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    let fields = |line: &[u8]| {
        let t = String::from_utf8_lossy(line).into_owned();
        let get = |k: &str| {
            t.split(' ')
                .find_map(|w| w.strip_prefix(&format!("{k}=")).map(str::to_string))
                .unwrap()
        };
        (get("qbuf"), get("argv-mem"))
    };
    c.cmd(&["CLIENT", "LIST"]).await;
    assert_eq!(fields(&c.frame().await), ("26".into(), "10".into()));
    c.send(b"CLIENT INFO\r\n").await;
    assert_eq!(fields(&c.frame().await), ("13".into(), "10".into()));
    c.send(b"*2\r\n$6\r\nCLIENT\r\n$4\r\nINFO\r\n*1\r\n$4\r\nPING\r\n")
        .await;
    assert_eq!(fields(&c.frame().await), ("40".into(), "10".into()));
    c.expect(b"+PONG\r\n").await;
    c.send(b"*1\r\n$4\r\nPING\r\n*2\r\n$6\r\nCLIENT\r\n$4\r\nINFO\r\n")
        .await;
    c.expect(b"+PONG\r\n").await;
    assert_eq!(fields(&c.frame().await), ("40".into(), "10".into()));
    c.cmd(&["CLIENT", "LIST", "ID", "1", "22"]).await;
    assert_eq!(fields(&c.frame().await), ("49".into(), "15".into()));
}

/// Redis 7.2.4 gives ids in the order connections were established ("if the ID is greater
/// than another, the client connected later", CLIENT ID's documented guarantee): connections
/// opened one after the other, before any of them has sent anything, answer CLIENT ID with
/// consecutive numbers in that order. (was: the id was taken when the connection's task first
/// ran, so on a multi-threaded runtime a later connection could get the smaller id)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn client_ids_follow_the_order_of_connection() {
    let s = TestServer::start().await;
    let mut conns = Vec::new();
    for _ in 0..64 {
        conns.push(Raw::connect(s.addr()).await);
    }
    let first = id(&mut conns[0]).await;
    for (i, c) in conns.iter_mut().enumerate().skip(1) {
        c.roundtrip(
            &["CLIENT", "ID"],
            format!(":{}\r\n", first + i as u64).as_bytes(),
        )
        .await;
    }
}

/// Redis 7.2.4 shows a transaction in CLIENT LIST/INFO while EXEC runs its commands (flag `x`,
/// `multi=` the commands queued, `cmd=exec`) and counts `multi-mem` as the queued commands'
/// argument bytes plus 8 per argument; once a command is rejected nothing more is queued
/// (QUEUED is still answered), and an EXEC rejected for its arity discards the transaction.
/// (was: inside EXEC the line showed `flags=N multi=-1 cmd=client|info`, multi-mem was always
/// 0 and a doomed transaction kept counting)
#[tokio::test]
async fn transactions_show_in_client_list_as_redis_7_2() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    let mut o = Raw::connect(s.addr()).await;
    let cid = id(&mut c).await.to_string();
    let pick = |line: &str| {
        let f = client_fields(line);
        ["flags", "multi", "argv-mem", "multi-mem", "cmd"]
            .map(|k| format!("{k}={}", field(&f, k)))
            .join(" ")
    };
    c.send(&crate::support::encode(&[b"MULTI"])).await;
    c.send(&crate::support::encode(&[b"CLIENT", b"INFO"])).await;
    c.send(&crate::support::encode(&[b"PING", b"x"])).await;
    c.send(&crate::support::encode(&[b"EXEC"])).await;
    c.expect(b"+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n").await;
    let info = crate::support::info::bulk_text(&c.frame().await);
    assert_eq!(
        pick(&info),
        "flags=x multi=2 argv-mem=4 multi-mem=47 cmd=exec"
    );
    c.expect(b"$1\r\nx\r\n").await;

    c.roundtrip(&["MULTI"], b"+OK\r\n").await;
    c.roundtrip(&["PUBLISH", "a", "b"], b"+QUEUED\r\n").await;
    let list = text(&mut o, &["CLIENT", "LIST", "ID", &cid]).await;
    assert_eq!(
        pick(&list),
        "flags=x multi=1 argv-mem=0 multi-mem=33 cmd=publish"
    );
    c.roundtrip(
        &["NOSUCH"],
        b"-ERR unknown command 'NOSUCH', with args beginning with: \r\n",
    )
    .await;
    c.roundtrip(&["PING"], b"+QUEUED\r\n").await;
    let list = text(&mut o, &["CLIENT", "LIST", "ID", &cid]).await;
    assert_eq!(
        pick(&list),
        "flags=x multi=1 argv-mem=0 multi-mem=33 cmd=ping"
    );
    c.roundtrip(
        &["EXEC", "x"],
        b"-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n",
    )
    .await;
    let list = text(&mut o, &["CLIENT", "LIST", "ID", &cid]).await;
    assert_eq!(
        pick(&list),
        "flags=N multi=-1 argv-mem=0 multi-mem=0 cmd=exec"
    );
}

/// Redis 7.2.4 frees a client another one kills at once: the killer's next commands, in the
/// same write, no longer count it anywhere (PUBLISH, SPUBLISH, pattern matches, NUMSUB, NUMPAT,
/// CHANNELS, SHARDCHANNELS, CLIENT KILL TYPE, CLIENT LIST). (was: the killed subscriber stayed
/// in the registry and the client table until its own task noticed, so these counted it
/// depending on timing)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_client_is_gone_for_the_next_command() {
    let s = TestServer::start().await;
    let mut admin = Raw::connect(s.addr()).await;
    for _ in 0..20 {
        let mut sub = Raw::connect(s.addr()).await;
        let sid = id(&mut sub).await.to_string();
        sub.cmd(&["SUBSCRIBE", "a"]).await;
        sub.cmd(&["PSUBSCRIBE", "p*"]).await;
        sub.cmd(&["SSUBSCRIBE", "s"]).await;
        for _ in 0..3 {
            sub.frame().await;
        }
        let batch: Vec<Vec<u8>> = [
            &["CLIENT", "KILL", "ID", sid.as_str()][..],
            &["PUBLISH", "a", "x"],
            &["SPUBLISH", "s", "x"],
            &["PUBLISH", "px", "x"],
            &["PUBSUB", "NUMSUB", "a"],
            &["PUBSUB", "NUMPAT"],
            &["PUBSUB", "CHANNELS"],
            &["PUBSUB", "SHARDCHANNELS"],
            &["CLIENT", "KILL", "TYPE", "pubsub"],
            &["CLIENT", "LIST", "TYPE", "pubsub"],
        ]
        .iter()
        .map(|a| crate::support::encode(&a.iter().map(|w| w.as_bytes()).collect::<Vec<_>>()))
        .collect();
        admin.send(&batch.concat()).await;
        admin
            .expect(b":1\r\n:0\r\n:0\r\n:0\r\n*2\r\n$1\r\na\r\n:0\r\n:0\r\n*0\r\n*0\r\n:0\r\n$0\r\n\r\n")
            .await;
    }
}
