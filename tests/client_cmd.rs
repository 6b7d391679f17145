//! CLIENT LIST / INFO fields, CLIENT KILL filters, CLIENT PAUSE / UNPAUSE (which commands a
//! pause holds back: checked against redis-server 7.0.15), NO-EVICT.

mod common;
mod ops_util;

use std::time::Duration;

use common::{Raw, TestServer};
use ops_util::{client_fields, field, text};

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
    // MAXAGE: nobody is 100 s old; everyone is at least 0 s old.
    let mut y = Raw::connect(s.addr()).await;
    y.roundtrip(&["PING"], b"+PONG\r\n").await;
    admin
        .roundtrip(&["CLIENT", "KILL", "MAXAGE", "100"], b":0\r\n")
        .await;
    admin
        .roundtrip(&["CLIENT", "KILL", "MAXAGE", "0"], b":1\r\n")
        .await;
    y.expect_closed().await;
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
