//! Faults, over real TCP: clients that vanish mid-request, mid-pipeline or with a full outbox,
//! peers that reset, garbage and byte-at-a-time requests next to a healthy subscriber,
//! `maxclients` under a burst of connections, and running out of file descriptors.

mod common;
mod load_util;
mod ops_util;

use std::time::Duration;

use common::{Raw, TestServer, TIMEOUT};
use load_util::{info_u64, wait_connected};
use pubsubd::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MAXCLIENTS_ERR: &[u8] = b"-ERR max number of clients reached\r\n";

/// Whether the server turned the connection away: `Some(stream)` if it was accepted (it
/// answers PING), `None` if it got the maxclients error and was closed.
async fn admitted(mut c: TcpStream) -> Option<TcpStream> {
    let mut buf = Vec::new();
    // A rejection is written at accept time; give it a moment to arrive before writing.
    let early = tokio::time::timeout(Duration::from_millis(300), c.read_buf(&mut buf)).await;
    if early.is_err() {
        c.write_all(b"PING\r\n").await.unwrap();
    }
    loop {
        if buf == b"+PONG\r\n" {
            return Some(c);
        }
        if buf.len() >= MAXCLIENTS_ERR.len() {
            assert_eq!(common::show(&buf), common::show(MAXCLIENTS_ERR));
            let n = tokio::time::timeout(TIMEOUT, c.read_buf(&mut buf))
                .await
                .expect("rejected connection closed")
                .unwrap_or(0);
            assert_eq!(n, 0, "bytes after the maxclients error");
            return None;
        }
        let n = tokio::time::timeout(TIMEOUT, c.read_buf(&mut buf))
            .await
            .expect("a reply")
            .expect("read");
        assert!(n > 0, "closed without a reply: {}", common::show(&buf));
    }
}

async fn burst(addr: std::net::SocketAddr, n: usize) -> (Vec<TcpStream>, usize) {
    let conns = futures::future::join_all((0..n).map(|_| TcpStream::connect(addr))).await;
    let outcomes =
        futures::future::join_all(conns.into_iter().map(|c| admitted(c.expect("connect")))).await;
    let rejected = outcomes.iter().filter(|o| o.is_none()).count();
    (outcomes.into_iter().flatten().collect(), rejected)
}

/// Redis checks `maxclients` when it accepts, so a burst of connections arriving together can
/// not get past it before any of them is registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxclients_holds_under_a_burst_and_frees_slots_on_close() {
    const MAX: usize = 20;
    let s = TestServer::with_config(Config {
        maxclients: MAX as u64,
        ..Config::default()
    })
    .await;
    let (mut kept, rejected) = burst(s.addr(), 3 * MAX).await;
    assert_eq!((kept.len(), rejected), (MAX, 2 * MAX), "admitted, rejected");
    let mut obs = Raw::from_stream(kept.pop().unwrap());
    assert_eq!(
        info_u64(&mut obs, "rejected_connections").await,
        2 * MAX as u64
    );
    assert_eq!(info_u64(&mut obs, "connected_clients").await, MAX as u64);
    // Five leave: exactly five new ones get in.
    kept.truncate(kept.len() - 5);
    wait_connected(&mut obs, MAX as u64 - 5).await;
    let (more, rejected) = burst(s.addr(), 8).await;
    assert_eq!((more.len(), rejected), (5, 3));
    assert_eq!(
        info_u64(&mut obs, "rejected_connections").await,
        2 * MAX as u64 + 3
    );
    drop(more);
    drop(kept);
    wait_connected(&mut obs, 1).await;
}
