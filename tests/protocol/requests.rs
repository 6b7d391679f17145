//! Request parsing over TCP: pipelining, partial frames, inline commands, Redis's protocol
//! errors and where the connection is closed.

use crate::support::{encode, Raw, TestServer};

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    let mut batch = Vec::new();
    for i in 0..1000 {
        batch.extend(encode(&[b"ECHO", format!("{i}").as_bytes()]));
    }
    c.send(&batch).await;
    for i in 0..1000 {
        let v = format!("{i}");
        c.expect(format!("${}\r\n{}\r\n", v.len(), v).as_bytes())
            .await;
    }
}

#[tokio::test]
async fn a_request_split_into_single_bytes_is_parsed() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    let req = encode(&[b"ECHO", b"split\r\nacross"]);
    for b in &req {
        c.send(&[*b]).await;
    }
    c.expect(b"$13\r\nsplit\r\nacross\r\n").await;
    for b in b"PING\r\n" {
        c.send(&[*b]).await;
    }
    c.expect(b"+PONG\r\n").await;
}

#[tokio::test]
async fn inline_commands_with_quotes_and_escapes() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.send(b"ECHO \"a b\\x41\\n\"\r\nECHO 'it\\'s'\nPING\r\n\r\n   \r\nSUBSCRIBE x y\r\n")
        .await;
    c.expect(b"$5\r\na bA\n\r\n$4\r\nit's\r\n+PONG\r\n").await;
    c.expect(
        b"*3\r\n$9\r\nsubscribe\r\n$1\r\nx\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\ny\r\n:2\r\n",
    )
    .await;
}

async fn error_then_close(input: &[u8], expected: &[u8]) {
    let s = TestServer::start().await;
    let mut bystander = Raw::connect(s.addr()).await;
    let mut c = Raw::connect(s.addr()).await;
    c.send(input).await;
    c.expect(expected).await;
    c.expect_closed().await;
    bystander.roundtrip(&["PING"], b"+PONG\r\n").await;
}

#[tokio::test]
async fn protocol_errors_reply_then_close() {
    error_then_close(
        b"*x\r\n",
        b"-ERR Protocol error: invalid multibulk length\r\n",
    )
    .await;
    error_then_close(
        b"*1\r\n+foo\r\n",
        b"-ERR Protocol error: expected '$', got '+'\r\n",
    )
    .await;
    error_then_close(
        b"*1\r\n$-5\r\n",
        b"-ERR Protocol error: invalid bulk length\r\n",
    )
    .await;
    error_then_close(
        b"*1\r\n$536870913\r\n",
        b"-ERR Protocol error: invalid bulk length\r\n",
    )
    .await;
    error_then_close(
        b"*3000000000\r\n",
        b"-ERR Protocol error: invalid multibulk length\r\n",
    )
    .await;
    error_then_close(
        b"ECHO \"unbalanced\r\n",
        b"-ERR Protocol error: unbalanced quotes in request\r\n",
    )
    .await;
}

#[tokio::test]
async fn commands_before_a_protocol_error_are_answered() {
    error_then_close(
        b"PING\r\n*1\r\n$4\r\nPING\r\n*1\r\n!x\r\n",
        b"+PONG\r\n+PONG\r\n-ERR Protocol error: expected '$', got '!'\r\n",
    )
    .await;
}

#[tokio::test]
async fn too_long_lines_are_protocol_errors() {
    let mut inline = vec![b'a'; 70 * 1024];
    inline.extend_from_slice(b"x");
    error_then_close(&inline, b"-ERR Protocol error: too big inline request\r\n").await;
    let mut mbulk = b"*1".to_vec();
    mbulk.extend(vec![b'1'; 70 * 1024]);
    error_then_close(
        &mbulk,
        b"-ERR Protocol error: too big mbulk count string\r\n",
    )
    .await;
}

#[tokio::test]
async fn empty_multibulk_is_ignored() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.send(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n").await;
    c.expect(b"+PONG\r\n").await;
}

#[tokio::test]
async fn quit_replies_ok_then_closes() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.send(b"PING\r\nQUIT\r\nPING\r\n").await;
    c.expect(b"+PONG\r\n+OK\r\n").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn unknown_commands_and_wrong_arity_get_redis_errors() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(
        &["FOO", "a", "b"],
        b"-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n",
    )
    .await;
    c.roundtrip(
        &["GET", "k"],
        b"-ERR unknown command 'GET', with args beginning with: 'k' \r\n",
    )
    .await;
    c.roundtrip(
        &["PUBLISH", "a"],
        b"-ERR wrong number of arguments for 'publish' command\r\n",
    )
    .await;
    c.roundtrip(
        &["PING", "a", "b"],
        b"-ERR wrong number of arguments for 'ping' command\r\n",
    )
    .await;
    c.roundtrip(
        &["CLIENT"],
        b"-ERR wrong number of arguments for 'client' command\r\n",
    )
    .await;
    c.roundtrip(
        &["CLIENT", "SETNAME"],
        b"-ERR wrong number of arguments for 'client|setname' command\r\n",
    )
    .await;
    c.cmd_bytes(&[b"X\r\nY", b"a\nb"]).await;
    c.expect(b"-ERR unknown command 'X  Y', with args beginning with: 'a b' \r\n")
        .await;
}
