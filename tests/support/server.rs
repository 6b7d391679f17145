//! An in-process server on an ephemeral port, and a raw RESP connection that asserts exact
//! bytes. Every read is bounded by a timeout so a bug fails fast.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use pubsubd::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::resp::{encode, frame_len, show};

pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A server running in the test's runtime; stopped when dropped.
pub struct TestServer {
    addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    token: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with_config(Config::default()).await
    }

    /// A server on an ephemeral loopback port, plus a TLS port when `config.tls.port` is
    /// non-zero (any value: an ephemeral port is used) and the unix socket if configured.
    pub async fn with_config(config: Config) -> Self {
        Self::with_membership(config, None).await
    }

    /// `with_config` for a `cluster-enabled` node that learns its peers over `membership`.
    pub async fn with_membership(
        mut config: Config,
        membership: Option<pubsubd::server::cluster::Membership>,
    ) -> Self {
        use pubsubd::server::{listener, Listener};
        config.bind = vec!["127.0.0.1".into()];
        config.shutdown_timeout = 2;
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = tcp.local_addr().unwrap();
        config.port = addr.port();
        let mut listeners = vec![Listener::Tcp(tcp)];
        let mut tls_addr = None;
        if config.tls.port != 0 {
            let acceptor = listener::tls_acceptor(&config.tls).expect("TLS config");
            let l = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tls_addr = Some(l.local_addr().unwrap());
            config.tls.port = l.local_addr().unwrap().port();
            listeners.push(Listener::Tls(l, acceptor));
        }
        if !config.unixsocket.is_empty() {
            listeners.push(
                listener::bind_unix(&config.unixsocket, config.unixsocketperm).expect("unix"),
            );
        }
        let token = CancellationToken::new();
        let task = tokio::spawn(pubsubd::server::run_with(
            config,
            listeners,
            token.clone(),
            membership,
        ));
        TestServer {
            addr,
            tls_addr,
            token,
            task: Some(task),
        }
    }

    /// The TLS port's address (servers started with `config.tls.port` set).
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls_addr.expect("no TLS listener")
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    pub fn url3(&self) -> String {
        format!("redis://{}/?protocol=resp3", self.addr)
    }

    pub async fn stop(mut self) {
        self.token.cancel();
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(TIMEOUT, t).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// A raw connection speaking RESP by hand.
pub struct Raw {
    pub stream: TcpStream,
    buf: BytesMut,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = tokio::time::timeout(TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect");
        stream.set_nodelay(true).unwrap();
        Raw {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Wraps a stream connected by other means.
    pub fn from_stream(stream: TcpStream) -> Self {
        Raw {
            stream,
            buf: BytesMut::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Sends a command given as string arguments.
    pub async fn cmd(&mut self, args: &[&str]) {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.send(&encode(&a)).await;
    }

    pub async fn cmd_bytes(&mut self, args: &[&[u8]]) {
        self.send(&encode(args)).await;
    }

    async fn fill(&mut self) -> usize {
        let n = tokio::time::timeout(TIMEOUT, self.stream.read_buf(&mut self.buf))
            .await
            .unwrap_or_else(|_| panic!("timed out; have {}", show(&self.buf)))
            .expect("read");
        n
    }

    /// Reads exactly `expected.len()` bytes and asserts they are `expected`.
    pub async fn expect(&mut self, expected: &[u8]) {
        while self.buf.len() < expected.len() {
            if self.fill().await == 0 {
                panic!(
                    "connection closed; expected {}, got {}",
                    show(expected),
                    show(&self.buf)
                );
            }
        }
        let got = self.buf.split_to(expected.len());
        assert_eq!(show(&got), show(expected));
    }

    /// Sends a command and asserts the exact reply.
    pub async fn roundtrip(&mut self, args: &[&str], expected: &[u8]) {
        self.cmd(args).await;
        self.expect(expected).await;
    }

    /// Reads one complete RESP frame (any type, RESP2 or RESP3) and returns its bytes.
    pub async fn frame(&mut self) -> Vec<u8> {
        loop {
            if let Some(n) = frame_len(&self.buf) {
                return self.buf.split_to(n).to_vec();
            }
            if self.fill().await == 0 {
                panic!("connection closed mid-frame: {}", show(&self.buf));
            }
        }
    }

    /// Asserts the server closes the connection (after any bytes already expected).
    pub async fn expect_closed(&mut self) {
        loop {
            match tokio::time::timeout(TIMEOUT, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    assert!(
                        self.buf.is_empty(),
                        "unread bytes before close: {}",
                        show(&self.buf)
                    );
                    return;
                }
                Ok(Ok(_)) => continue,
                Err(_) => panic!("connection still open; got {}", show(&self.buf)),
            }
        }
    }

    /// Asserts nothing arrives for `ms` milliseconds.
    pub async fn expect_silence(&mut self, ms: u64) {
        if !self.buf.is_empty() {
            panic!("unexpected bytes: {}", show(&self.buf));
        }
        if let Ok(r) = tokio::time::timeout(
            Duration::from_millis(ms),
            self.stream.read_buf(&mut self.buf),
        )
        .await
        {
            let n = r.expect("read");
            panic!("unexpected {} bytes: {}", n, show(&self.buf));
        }
    }
}
