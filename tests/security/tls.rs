//! TLS: `tls-port` beside the plain port, rustls with certificates generated here (rcgen),
//! `tls-auth-clients yes|no|optional`, AUTH over TLS, a plaintext client on the TLS port.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pubsubd::config::{Config, Secret, TlsAuthClients, TlsConfig};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

use crate::support::{self, Raw, TestServer, TIMEOUT};

/// A CA, a server certificate for 127.0.0.1/localhost and a client certificate, as PEM files
/// in their own directory.
struct Pki {
    dir: PathBuf,
    ca: CertificateDer<'static>,
    client_cert: CertificateDer<'static>,
    client_key: Vec<u8>,
}

impl Pki {
    fn new(tag: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("pubsubd-tls-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "pubsubd test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |names: Vec<String>| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap();
            (cert, key)
        };
        let (srv, srv_key) = leaf(vec!["localhost".into(), "127.0.0.1".into()]);
        let (cli, cli_key) = leaf(vec!["client".into()]);
        std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
        std::fs::write(dir.join("redis.crt"), srv.pem()).unwrap();
        std::fs::write(dir.join("redis.key"), srv_key.serialize_pem()).unwrap();
        std::fs::write(dir.join("client.crt"), cli.pem()).unwrap();
        std::fs::write(dir.join("client.key"), cli_key.serialize_pem()).unwrap();
        Pki {
            ca: ca.der().clone(),
            client_cert: cli.der().clone(),
            client_key: cli_key.serialize_der(),
            dir,
        }
    }

    fn path(&self, f: &str) -> String {
        self.dir.join(f).display().to_string()
    }

    fn config(&self, auth: TlsAuthClients) -> Config {
        Config {
            tls: TlsConfig {
                port: 1, // any non-zero value: TestServer picks an ephemeral port
                cert_file: self.path("redis.crt"),
                key_file: self.path("redis.key"),
                ca_cert_file: self.path("ca.crt"),
                auth_clients: auth,
                ..TlsConfig::default()
            },
            ..Config::default()
        }
    }

    fn connector(&self, with_cert: bool) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let cfg = if with_cert {
            b.with_client_auth_cert(
                vec![self.client_cert.clone()],
                PrivateKeyDer::try_from(self.client_key.clone()).unwrap(),
            )
            .unwrap()
        } else {
            b.with_no_client_auth()
        };
        TlsConnector::from(Arc::new(cfg))
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends `req` over TLS and reads until `expect.len()` bytes arrived (or the server closed).
async fn tls_exchange(
    pki: &Pki,
    addr: SocketAddr,
    with_cert: bool,
    req: &[u8],
    expect_len: usize,
) -> std::io::Result<Vec<u8>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut s = tokio::time::timeout(TIMEOUT, pki.connector(with_cert).connect(name, tcp))
        .await
        .expect("handshake timed out")?;
    s.write_all(req).await?;
    let mut got = Vec::new();
    while got.len() < expect_len {
        let mut b = [0u8; 4096];
        let n = tokio::time::timeout(TIMEOUT, s.read(&mut b))
            .await
            .expect("read timed out")?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&b[..n]);
    }
    Ok(got)
}

#[tokio::test]
async fn tls_port_beside_plain_port_with_a_password() {
    let pki = Pki::new("plain");
    let mut cfg = pki.config(TlsAuthClients::No);
    cfg.requirepass = Secret("sekret".into());
    let s = TestServer::with_config(cfg).await;
    let expected = b"-NOAUTH Authentication required.\r\n+OK\r\n+PONG\r\n";
    let got = tls_exchange(
        &pki,
        s.tls_addr(),
        false,
        b"PING\r\nAUTH sekret\r\nPING\r\n",
        expected.len(),
    )
    .await
    .unwrap();
    assert_eq!(support::show(&got), support::show(expected));
    // The plain port still works, and messages cross between the two.
    let mut plain = Raw::connect(s.addr()).await;
    plain.roundtrip(&["AUTH", "sekret"], b"+OK\r\n").await;
    plain
        .roundtrip(
            &["SUBSCRIBE", "c"],
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n",
        )
        .await;
    let got = tls_exchange(
        &pki,
        s.tls_addr(),
        false,
        b"AUTH sekret\r\nPUBLISH c hi\r\n",
        9,
    )
    .await
    .unwrap();
    assert_eq!(got, b"+OK\r\n:1\r\n");
    plain
        .expect(b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n")
        .await;
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_a_certificate() {
    let pki = Pki::new("mtls");
    let s = TestServer::with_config(pki.config(TlsAuthClients::Yes)).await;
    let ok = tls_exchange(&pki, s.tls_addr(), true, b"PING\r\n", 7)
        .await
        .unwrap();
    assert_eq!(ok, b"+PONG\r\n");
    // TLS 1.3 finishes the client's side of the handshake before the server has checked the
    // certificate: the refusal shows as an error or a close on first read, never a reply.
    if let Ok(got) = tls_exchange(&pki, s.tls_addr(), false, b"PING\r\n", 7).await {
        assert!(got.is_empty(), "{}", support::show(&got));
    }
}

#[tokio::test]
async fn optional_client_certificates() {
    let pki = Pki::new("optional");
    let s = TestServer::with_config(pki.config(TlsAuthClients::Optional)).await;
    for with_cert in [true, false] {
        let got = tls_exchange(&pki, s.tls_addr(), with_cert, b"PING\r\n", 7)
            .await
            .unwrap();
        assert_eq!(got, b"+PONG\r\n");
    }
}

#[tokio::test]
async fn a_plaintext_client_on_the_tls_port_gets_no_reply() {
    let pki = Pki::new("plaintext");
    let s = TestServer::with_config(pki.config(TlsAuthClients::No)).await;
    let mut c = Raw::connect(s.tls_addr()).await;
    c.send(b"*1\r\n$4\r\nPING\r\n").await;
    let mut buf = Vec::new();
    let r = tokio::time::timeout(TIMEOUT, c.stream.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "connection left open");
    assert!(
        !buf.windows(5).any(|w| w == b"+PONG"),
        "{}",
        support::show(&buf)
    );
}

#[tokio::test]
async fn tls_config_errors_name_the_problem() {
    let pki = Pki::new("errors");
    let mut cfg = pki.config(TlsAuthClients::Yes);
    cfg.tls.ca_cert_file.clear();
    let e = pubsubd::server::listener::tls_acceptor(&cfg.tls)
        .err()
        .unwrap();
    assert_eq!(e, "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, tls-replication or tls-auth-clients are enabled!");
    // A CA directory works as well as a CA file.
    cfg.tls.ca_cert_dir = pki.dir.display().to_string();
    assert!(pubsubd::server::listener::tls_acceptor(&cfg.tls).is_ok());
    cfg.tls.key_file = pki.path("client.key");
    let e = pubsubd::server::listener::tls_acceptor(&cfg.tls)
        .err()
        .unwrap();
    assert!(e.starts_with("Certificate and key do not match"), "{e}");
    assert!(Path::new(&pki.path("ca.crt")).exists());
}

#[tokio::test]
async fn port_0_disables_plain_tcp() {
    let pki = Pki::new("port0");
    let mut cfg = pki.config(TlsAuthClients::No);
    cfg.port = 0;
    cfg.tls.port = 0;
    let e = pubsubd::server::bind(&cfg).await.err().unwrap();
    assert_eq!(e.to_string(), "Configured to not listen anywhere, exiting.");
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    cfg.tls.port = free.local_addr().unwrap().port();
    drop(free);
    cfg.bind = vec!["127.0.0.1".into()];
    let listeners = pubsubd::server::bind(&cfg).await.unwrap();
    assert_eq!(listeners.len(), 1);
    assert!(listeners[0].is_tls());
}

#[tokio::test]
async fn cluster_nodes_give_tls_clients_the_tls_port() {
    let pki = Pki::new("cluster");
    let mut cfg = pki.config(TlsAuthClients::No);
    cfg.cluster_enabled = true;
    cfg.cluster_config_file = String::new();
    let s = TestServer::with_config(cfg).await;
    let (plain_port, tls_port) = (s.addr().port(), s.tls_addr().port());
    // CLUSTER SLOTS' node entry: ip, port, id (40 bytes), metadata.
    let entry = |port: u16| format!("*4\r\n$9\r\n127.0.0.1\r\n:{port}\r\n$40\r\n");
    let mut plain = Raw::connect(s.addr()).await;
    plain.cmd(&["CLUSTER", "SLOTS"]).await;
    let got = String::from_utf8(plain.frame().await).unwrap();
    assert!(got.contains(&entry(plain_port)), "{got}");
    let req = b"CLUSTER SLOTS\r\nSPUBLISH a b\r\n";
    let got = tls_exchange(&pki, s.tls_addr(), false, req, 100)
        .await
        .unwrap();
    let got = String::from_utf8(got).unwrap();
    assert!(got.contains(&entry(tls_port)), "{got}");
}
