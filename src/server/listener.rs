//! Listeners and streams: plain TCP (`port`), TLS (`tls-port`, rustls with the ring provider)
//! and unix sockets (`unixsocket`) become one `Stream` type, split into a `ReadHalf` and a
//! `WriteHalf` that the connection code uses without knowing which it has. A plain socket is
//! shared by both halves and by the client's outbox, which writes to it from whichever thread
//! fans out a message, and waits on it in a writer task only while it is full
//! (`outbox::Sink`); a TLS stream is written by the connection's writer task alone.
//!
//! TLS material is read once, at start: `tls_acceptor` builds the rustls server config from
//! Redis's directives (`tls-cert-file`, `tls-key-file`, `tls-ca-cert-file`/`-dir`,
//! `tls-auth-clients`, `tls-protocols`). The handshake runs in the connection's own task, so a
//! slow or hostile handshake never holds up the accept loop.

use std::io::{self, IoSlice};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::{TlsAuthClients, TlsConfig};
use crate::outbox::Socket;

/// A bound listening socket.
pub enum Listener {
    Tcp(TcpListener),
    Tls(TcpListener, TlsAcceptor),
    Unix(UnixListener, PathBuf),
}

/// Who connected.
#[derive(Clone, Debug)]
pub enum Peer {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl Peer {
    /// As CLIENT LIST shows it: `ip:port`, or `path:0` for a unix socket (as Redis).
    pub fn text(&self) -> String {
        match self {
            Peer::Tcp(a) => a.to_string(),
            Peer::Unix(p) => format!("{}:0", p.display()),
        }
    }

    /// Redis's `connIsLocal`: loopback addresses and unix sockets.
    pub fn is_local(&self) -> bool {
        match self {
            Peer::Unix(_) => true,
            Peer::Tcp(a) => match a.ip() {
                IpAddr::V4(v4) => v4.is_loopback(),
                IpAddr::V6(v6) => {
                    v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
                }
            },
        }
    }
}

/// An accepted socket, before any TLS handshake.
pub struct Accepted {
    pub raw: RawStream,
    pub peer: Peer,
    pub local: String,
    pub tls: Option<TlsAcceptor>,
}

pub enum RawStream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Listener {
    /// The TCP address, for logs and tests (unix sockets have none).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Listener::Tcp(l) | Listener::Tls(l, _) => l.local_addr(),
            Listener::Unix(..) => Err(io::Error::other("unix socket")),
        }
    }

    /// `tcp 127.0.0.1:6379`, `tls 127.0.0.1:6380` or `unix /tmp/redis.sock`.
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => format!("tcp {}", addr_text(l.local_addr())),
            Listener::Tls(l, _) => format!("tls {}", addr_text(l.local_addr())),
            Listener::Unix(_, p) => format!("unix {}", p.display()),
        }
    }

    /// The TCP address it listens on (`None` for a unix socket).
    pub fn tcp_addr(&self) -> Option<std::net::SocketAddr> {
        match self {
            Listener::Tcp(l) | Listener::Tls(l, _) => l.local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Listener::Tls(..))
    }

    pub async fn accept(&self) -> io::Result<Accepted> {
        match self {
            Listener::Tcp(l) | Listener::Tls(l, _) => {
                let (s, peer) = l.accept().await?;
                let local = addr_text(s.local_addr());
                let tls = match self {
                    Listener::Tls(_, a) => Some(a.clone()),
                    _ => None,
                };
                Ok(Accepted {
                    raw: RawStream::Tcp(s),
                    peer: Peer::Tcp(peer),
                    local,
                    tls,
                })
            }
            Listener::Unix(l, path) => {
                let (s, _) = l.accept().await?;
                Ok(Accepted {
                    raw: RawStream::Unix(s),
                    peer: Peer::Unix(path.clone()),
                    local: format!("{}:0", path.display()),
                    tls: None,
                })
            }
        }
    }
}

fn addr_text(a: io::Result<SocketAddr>) -> String {
    a.map(|a| a.to_string()).unwrap_or_default()
}

/// Binds `unixsocket` (replacing a stale socket file) and applies `unixsocketperm`.
pub fn bind_unix(path: &str, perm: u32) -> io::Result<Listener> {
    let p = PathBuf::from(path);
    let _ = std::fs::remove_file(&p);
    let l = UnixListener::bind(&p)?;
    if perm != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(perm))?;
    }
    Ok(Listener::Unix(l, p))
}

/// A connected client stream of any kind.
pub enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Unix(UnixStream),
}

impl Stream {
    /// The halves, and the sink an outbox may write to directly (plain sockets only).
    pub fn into_split(self) -> (ReadHalf, WriteHalf, Option<Socket>) {
        match self {
            Stream::Tcp(s) => {
                let s = Arc::new(s);
                let sink: Socket = s.clone();
                (ReadHalf::Tcp(s.clone()), WriteHalf::Tcp(s), Some(sink))
            }
            Stream::Unix(s) => {
                let s = Arc::new(s);
                let sink: Socket = s.clone();
                (ReadHalf::Unix(s.clone()), WriteHalf::Unix(s), Some(sink))
            }
            Stream::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (ReadHalf::Tls(r), WriteHalf::Tls(w), None)
            }
        }
    }
}

pub enum ReadHalf {
    Tcp(Arc<TcpStream>),
    Unix(Arc<UnixStream>),
    Tls(tokio::io::ReadHalf<TlsStream<TcpStream>>),
}

impl ReadHalf {
    /// Waits for input and reads what is there into `buf`. Plain sockets wait for readability
    /// before reserving, so an idle connection holds no buffer; a TLS stream needs room to
    /// decrypt into, so it reserves `chunk` first. Polled in place: waiting keeps no future's
    /// state, only the socket's registration.
    pub async fn read_some(&mut self, buf: &mut BytesMut, chunk: usize) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_read_some(cx, buf, chunk)).await
    }

    /// Whether the connection may wait for input without a task (`connection::park`): plain
    /// sockets, whose readiness wakes whatever waker is registered; not TLS, whose writer
    /// task lives as long as the connection.
    pub fn parkable(&self) -> bool {
        !matches!(self, ReadHalf::Tls(_))
    }

    /// Has `cx` woken once the socket is readable (input, EOF or an error), without reading;
    /// ready if it is already. Always ready for TLS (never parked).
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            ReadHalf::Tcp(s) => s.poll_read_ready(cx).map(|_| ()),
            ReadHalf::Unix(s) => s.poll_read_ready(cx).map(|_| ()),
            ReadHalf::Tls(_) => Poll::Ready(()),
        }
    }

    /// `read_some`, polled by hand beside other wake-ups.
    pub fn poll_read_some(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        chunk: usize,
    ) -> Poll<io::Result<usize>> {
        macro_rules! plain {
            ($rd:expr) => {
                loop {
                    std::task::ready!($rd.poll_read_ready(cx))?;
                    if buf.capacity() - buf.len() < chunk / 4 {
                        buf.reserve(chunk);
                    }
                    // `try_read_buf` clears the readiness when it finds nothing, so the next
                    // `poll_read_ready` waits.
                    match $rd.try_read_buf(buf) {
                        Ok(n) => return Poll::Ready(Ok(n)),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            // The readiness was stale (it stays set until a read finds nothing):
                            // give the buffer back rather than hold it while the client idles.
                            if buf.is_empty() {
                                *buf = BytesMut::new();
                            }
                        }
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                }
            };
        }
        match self {
            ReadHalf::Tcp(rd) => plain!(rd),
            ReadHalf::Unix(rd) => plain!(rd),
            ReadHalf::Tls(rd) => {
                if buf.capacity() - buf.len() < chunk / 4 {
                    buf.reserve(chunk);
                }
                tokio_util::io::poll_read_buf(Pin::new(rd), cx, buf)
            }
        }
    }
}

pub enum WriteHalf {
    Tcp(Arc<TcpStream>),
    Unix(Arc<UnixStream>),
    Tls(tokio::io::WriteHalf<TlsStream<TcpStream>>),
}

/// `poll_write` on a shared plain socket: wait until it is writable, then write what it takes.
macro_rules! poll_plain {
    ($s:expr, $cx:expr, $write:expr) => {
        loop {
            std::task::ready!($s.poll_write_ready($cx))?;
            match $write {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    };
}

impl AsyncWrite for WriteHalf {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Tcp(s) => poll_plain!(s, cx, s.try_write(b)),
            WriteHalf::Unix(s) => poll_plain!(s, cx, s.try_write(b)),
            WriteHalf::Tls(w) => Pin::new(w).poll_write(cx, b),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Tcp(s) => poll_plain!(s, cx, s.try_write_vectored(bufs)),
            WriteHalf::Unix(s) => poll_plain!(s, cx, s.try_write_vectored(bufs)),
            WriteHalf::Tls(w) => Pin::new(w).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        !matches!(self, WriteHalf::Tls(_))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Tcp(_) | WriteHalf::Unix(_) => Poll::Ready(Ok(())),
            WriteHalf::Tls(w) => Pin::new(w).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let how = std::net::Shutdown::Write;
        match self.get_mut() {
            WriteHalf::Tcp(s) => Poll::Ready(socket2::SockRef::from(&**s).shutdown(how)),
            WriteHalf::Unix(s) => Poll::Ready(socket2::SockRef::from(&**s).shutdown(how)),
            WriteHalf::Tls(w) => Pin::new(w).poll_shutdown(cx),
        }
    }
}

impl AsyncRead for RawStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            RawStream::Tcp(s) => Pin::new(s).poll_read(cx, b),
            RawStream::Unix(s) => Pin::new(s).poll_read(cx, b),
        }
    }
}

fn certs_from(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("Failed to load certificate: {}: {e}", path.display()))
}

/// Builds the TLS acceptor from Redis's directives; the error says which file or setting failed.
pub fn tls_acceptor(cfg: &TlsConfig) -> Result<TlsAcceptor, String> {
    if cfg.cert_file.is_empty() || cfg.key_file.is_empty() {
        return Err("tls-cert-file and tls-key-file must be set when tls-port is used".into());
    }
    if !cfg.key_file_pass.0.is_empty() {
        return Err("encrypted private keys (tls-key-file-pass) are not supported: use an unencrypted PEM key".into());
    }
    let certs = certs_from(Path::new(&cfg.cert_file))?;
    let key = PrivateKeyDer::from_pem_file(&cfg.key_file)
        .map_err(|e| format!("Failed to load private key: {}: {e}", cfg.key_file))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = if cfg.protocols.is_empty() {
        vec![&rustls::version::TLS12, &rustls::version::TLS13]
    } else {
        cfg.protocols
            .iter()
            .map(|p| {
                if p == "tlsv1.2" {
                    &rustls::version::TLS12
                } else {
                    &rustls::version::TLS13
                }
            })
            .collect()
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| e.to_string())?;
    let builder = if cfg.auth_clients == TlsAuthClients::No {
        builder.with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        let mut files = Vec::new();
        if !cfg.ca_cert_file.is_empty() {
            files.push(PathBuf::from(&cfg.ca_cert_file));
        }
        if !cfg.ca_cert_dir.is_empty() {
            let dir = std::fs::read_dir(&cfg.ca_cert_dir)
                .map_err(|e| format!("Failed to read tls-ca-cert-dir {}: {e}", cfg.ca_cert_dir))?;
            files.extend(dir.flatten().map(|e| e.path()).filter(|p| p.is_file()));
        }
        if files.is_empty() {
            return Err("Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, tls-replication or tls-auth-clients are enabled!".into());
        }
        for f in &files {
            // A CA directory may hold other files (hash links, CRLs): only certificates count.
            let Ok(certs) = certs_from(f) else { continue };
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| format!("Bad CA certificate in {}: {e}", f.display()))?;
            }
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let verifier = if cfg.auth_clients == TlsAuthClients::Optional {
            verifier.allow_unauthenticated()
        } else {
            verifier
        };
        builder.with_client_cert_verifier(verifier.build().map_err(|e| e.to_string())?)
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("Certificate and key do not match or are invalid: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_unix_peers_are_local() {
        let p = |s: &str| Peer::Tcp(s.parse().unwrap());
        assert!(p("127.0.0.1:1").is_local());
        assert!(p("127.9.9.9:1").is_local());
        assert!(p("[::1]:1").is_local());
        assert!(p("[::ffff:127.0.0.1]:1").is_local());
        assert!(Peer::Unix("/tmp/x".into()).is_local());
        assert!(!p("10.1.2.3:1").is_local());
        assert!(!p("[2001:db8::1]:1").is_local());
        assert!(!p("[::ffff:192.168.1.1]:1").is_local());
    }

    #[test]
    fn tls_needs_a_ca_to_verify_clients() {
        let cfg = TlsConfig {
            cert_file: "/nonexistent.crt".into(),
            key_file: "/nonexistent.key".into(),
            ..TlsConfig::default()
        };
        let e = tls_acceptor(&cfg).err().unwrap();
        assert!(e.contains("/nonexistent.crt"), "{e}");
    }
}
