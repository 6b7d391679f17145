//! MONITOR: Redis's line format, commands fed after they run (EXEC after its commands), admin
//! commands and refused commands not shown, AUTH/HELLO passwords redacted, RESET ends it.
//! Line texts checked against redis-server 7.0.15.

use crate::support::{info, Raw, TestServer};

/// Reads one monitor line and returns it without its timestamp: `[db addr] "ARG" …`.
async fn line(m: &mut Raw) -> String {
    let f = m.frame().await;
    let s = String::from_utf8_lossy(&f).into_owned();
    let s = s
        .strip_prefix('+')
        .expect("a status line")
        .trim_end()
        .to_string();
    let (ts, rest) = s.split_once(' ').unwrap();
    let (secs, micros) = ts.split_once('.').unwrap();
    assert!(secs.parse::<u64>().unwrap() > 1_600_000_000);
    assert_eq!(micros.len(), 6);
    rest.to_string()
}

#[tokio::test]
async fn monitors_see_commands_in_redis_format() {
    let s = TestServer::start().await;
    let mut m = Raw::connect(s.addr()).await;
    m.roundtrip(&["MONITOR"], b"+OK\r\n").await;
    let mut c = Raw::connect(s.addr()).await;
    let who = format!("[0 {}]", c.stream.local_addr().unwrap());

    c.cmd_bytes(&[b"PUBLISH", b"ch", b"m\"s g\n\x01\xff\\"])
        .await;
    c.frame().await;
    assert_eq!(
        line(&mut m).await,
        format!(r#"{who} "PUBLISH" "ch" "m\"s g\n\x01\xff\\""#)
    );

    c.cmd(&["AUTH", "pw"]).await;
    c.frame().await;
    assert_eq!(line(&mut m).await, format!(r#"{who} "AUTH" "(redacted)""#));
    c.cmd(&["HELLO", "2", "AUTH", "default", "x", "SETNAME", "n"])
        .await;
    c.frame().await;
    assert_eq!(
        line(&mut m).await,
        format!(r#"{who} "HELLO" "2" "AUTH" "(redacted)" "(redacted)" "SETNAME" "n""#)
    );
    // Admin commands, unknown commands and wrong arities are not shown.
    for args in [
        &["CLIENT", "LIST"][..],
        &["CONFIG", "GET", "x"],
        &["NOSUCH"],
        &["PUBLISH", "a"],
    ] {
        c.cmd(args).await;
        c.frame().await;
    }
    // Fed after running: SELECT already shows the new database.
    c.roundtrip(&["SELECT", "3"], b"+OK\r\n").await;
    let who3 = who.replacen("[0 ", "[3 ", 1);
    assert_eq!(line(&mut m).await, format!(r#"{who3} "SELECT" "3""#));
    // MULTI is shown, queued commands when EXEC runs them, EXEC after them.
    c.roundtrip(&["MULTI"], b"+OK\r\n").await;
    c.roundtrip(&["PUBLISH", "a", "b"], b"+QUEUED\r\n").await;
    c.roundtrip(&["EXEC"], b"*1\r\n:0\r\n").await;
    assert_eq!(line(&mut m).await, format!(r#"{who3} "MULTI""#));
    assert_eq!(line(&mut m).await, format!(r#"{who3} "PUBLISH" "a" "b""#));
    assert_eq!(line(&mut m).await, format!(r#"{who3} "EXEC""#));
    // Inline commands too; the monitor's own commands as well.
    c.send(b"PING inline\r\n").await;
    c.frame().await;
    assert_eq!(line(&mut m).await, format!(r#"{who3} "PING" "inline""#));
    m.cmd(&["PING"]).await;
    assert_eq!(m.frame().await, b"+PONG\r\n");
    let mine = format!("[0 {}]", m.stream.local_addr().unwrap());
    assert_eq!(line(&mut m).await, format!(r#"{mine} "PING""#));
    m.expect_silence(50).await;
}

#[tokio::test]
async fn monitor_flag_again_and_reset() {
    let s = TestServer::start().await;
    let mut m = Raw::connect(s.addr()).await;
    m.roundtrip(&["MONITOR"], b"+OK\r\n").await;
    // A second MONITOR gets no reply at all, as in Redis.
    m.cmd(&["MONITOR"]).await;
    m.expect_silence(50).await;
    let mut c = Raw::connect(s.addr()).await;
    let list = info::text(&mut c, &["CLIENT", "LIST"]).await;
    assert!(list.lines().next().unwrap().contains(" flags=O "), "{list}");
    m.roundtrip(&["RESET"], b"+RESET\r\n").await;
    c.roundtrip(&["PING"], b"+PONG\r\n").await;
    m.expect_silence(50).await;
    // In a transaction it is refused when EXEC runs it.
    m.roundtrip(&["MULTI"], b"+OK\r\n").await;
    m.roundtrip(&["MONITOR"], b"+QUEUED\r\n").await;
    m.roundtrip(
        &["EXEC"],
        b"*1\r\n-ERR MONITOR isn't allowed for DENY BLOCKING client\r\n",
    )
    .await;
}

#[tokio::test]
async fn a_closed_monitor_is_forgotten() {
    let s = TestServer::start().await;
    let mut m = Raw::connect(s.addr()).await;
    m.roundtrip(&["MONITOR"], b"+OK\r\n").await;
    drop(m);
    let mut c = Raw::connect(s.addr()).await;
    for _ in 0..100 {
        c.roundtrip(&["PUBLISH", "x", "y"], b":0\r\n").await;
    }
    let list = info::text(&mut c, &["CLIENT", "LIST"]).await;
    assert_eq!(list.lines().count(), 1);
}

// was: with the idle timeout counting only input, a MONITOR client that was being sent lines was
// closed as idle; Redis counts output written to a client as interaction too
#[tokio::test]
async fn a_monitor_that_is_sent_lines_is_not_idle() {
    let s = TestServer::start().await;
    let mut m = Raw::connect(s.addr()).await;
    m.roundtrip(&["MONITOR"], b"+OK\r\n").await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(&["CONFIG", "SET", "timeout", "1"], b"+OK\r\n")
        .await;
    // 3 s in which the monitor sends nothing but is sent a line every 300 ms.
    for _ in 0..10 {
        c.roundtrip(&["PING"], b"+PONG\r\n").await;
        assert!(line(&mut m).await.ends_with(r#""PING""#));
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    // Once nothing is written to it either, it is idle.
    m.expect_closed().await;
}
