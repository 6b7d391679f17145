//! The backbone against a nats-server that requires authentication or TLS: user and password
//! or a token in the URL, mutual TLS with `backbone-tls-*` files (certificates made here with
//! rcgen); the wrong credentials or a missing client certificate leave the node serving
//! locally, saying why, never connected.

use std::path::PathBuf;

use pubsubd::registry::Namespace;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use crate::support::nats::{message, wait_interest, wait_until, Nats, Node};
use crate::support::process::{self, temp_dir};

/// Two nodes on `url` exchange a message.
async fn exchange(nats: &Nats, url: &str, extra: &[&str]) {
    let a = Node::connected(url, extra).await;
    let b = Node::connected(url, extra).await;
    let mut sa = a.client().await;
    sa.cmd(&["SUBSCRIBE", "secure"]).await;
    sa.frame().await;
    wait_interest(nats, Namespace::Global, b"secure", 1).await;
    let mut pb = b.client().await;
    pb.roundtrip(&["PUBLISH", "secure", "hi"], b":0\r\n").await;
    sa.expect(&message(b"message", b"secure", b"hi")).await;
}

/// A node that keeps trying and is never let in; its log says why (without the secret).
async fn refused(url: &str, extra: &[&str], why: &str, secret: &str) {
    let n = Node::start(url, extra).await;
    wait_until("the reason is logged", || async {
        n.log_text().contains(why)
    })
    .await;
    let log = n.log_text();
    assert!(!secret.is_empty() && !log.contains(secret), "{log}");
    assert_ne!(n.field("backbone_status").await, "connected");
    n.client()
        .await
        .roundtrip(&["PUBLISH", "x", "y"], b":0\r\n")
        .await;
}

#[tokio::test]
async fn user_and_password_in_the_url() {
    let nats = Nats::start(&[
        "--user".into(),
        "pub".into(),
        "--pass".into(),
        "s3cret-pw".into(),
    ])
    .await;
    exchange(
        &nats,
        &format!("nats://pub:s3cret-pw@127.0.0.1:{}", nats.port),
        &[],
    )
    .await;
    refused(
        &format!("nats://pub:wrong-pw@127.0.0.1:{}", nats.port),
        &["--backbone-connect-timeout", "500"],
        "uthorization",
        "wrong-pw",
    )
    .await;
}

#[tokio::test]
async fn token_in_the_url() {
    let nats = Nats::start(&["--auth".into(), "t0ken-abc".into()]).await;
    exchange(
        &nats,
        &format!("nats://t0ken-abc@127.0.0.1:{}", nats.port),
        &[],
    )
    .await;
    refused(
        &format!("nats://bad-t0ken@127.0.0.1:{}", nats.port),
        &["--backbone-connect-timeout", "500"],
        "uthorization",
        "bad-t0ken",
    )
    .await;
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files.
fn pki() -> PathBuf {
    let dir = temp_dir("pki");
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "pubsubd backbone test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    for (name, sans) in [
        (
            "server",
            vec!["localhost".to_string(), "127.0.0.1".to_string()],
        ),
        ("client", vec!["pubsubd-node".to_string()]),
    ] {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(sans)
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    dir
}

#[tokio::test]
async fn mutual_tls() {
    let dir = pki();
    let p = |f: &str| dir.join(f).display().to_string();
    let conf = dir.join("nats.conf");
    std::fs::write(
        &conf,
        format!(
            "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: true\n  timeout: 2\n}}\n",
            p("server.crt"),
            p("server.key"),
            p("ca.crt")
        ),
    )
    .unwrap();
    let nats = Nats::start(&["-c".into(), conf.display().to_string()]).await;
    let url = format!("tls://127.0.0.1:{}", nats.port);
    let (ca, cert, key) = (p("ca.crt"), p("client.crt"), p("client.key"));
    let tls = [
        "--backbone-tls-ca-cert-file",
        ca.as_str(),
        "--backbone-tls-cert-file",
        cert.as_str(),
        "--backbone-tls-key-file",
        key.as_str(),
    ];
    exchange(&nats, &url, &tls).await;
    // Without a client certificate the server refuses the handshake.
    let n = Node::start(
        &url,
        &[
            "--backbone-tls-ca-cert-file",
            ca.as_str(),
            "--backbone-connect-timeout",
            "500",
        ],
    )
    .await;
    wait_until("the refusal is logged", || async {
        n.log_text().contains("Backbone unreachable")
    })
    .await;
    assert_ne!(n.field("backbone_status").await, "connected");
    // Without the CA the server's certificate is not trusted.
    let n = Node::start(&url, &["--backbone-connect-timeout", "500"]).await;
    wait_until("the refusal is logged", || async {
        n.log_text().contains("Backbone unreachable")
    })
    .await;
    assert_ne!(n.field("backbone_status").await, "connected");
    // Plain NATS against a TLS server, with backbone-required: exit 1, not a hang.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pubsubd"))
        .args([
            "--port",
            &process::free_port().to_string(),
            "--backbone",
            &url,
            "--backbone-required",
            "yes",
            "--backbone-connect-timeout",
            "500",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// A NATS JWT signed by `signer` (nats-jwt v2 claims).
fn jwt(signer: &nkeys::KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "jti": format!("{:X}", now ^ name.len() as u64),
        "iat": now,
        "iss": signer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let head = b64(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = b64(claims.to_string().as_bytes());
    let sig = signer.sign(format!("{head}.{body}").as_bytes()).unwrap();
    format!("{head}.{body}.{}", b64(&sig))
}

#[tokio::test]
async fn credentials_file() {
    // An operator, an account and a user, as `nsc` would make them; the server trusts the
    // operator and knows the account; the node holds the user's JWT and seed.
    let operator = nkeys::KeyPair::new_operator();
    let account = nkeys::KeyPair::new_account();
    let user = nkeys::KeyPair::new_user();
    let op_jwt = jwt(
        &operator,
        &operator.public_key(),
        "op",
        serde_json::json!({"type": "operator", "version": 2}),
    );
    let acc_jwt = jwt(
        &operator,
        &account.public_key(),
        "acc",
        serde_json::json!({
            "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                       "wildcards": true, "conn": -1, "leaf": -1},
            "default_permissions": {"pub": {}, "sub": {}},
            "type": "account", "version": 2,
        }),
    );
    let user_jwt = jwt(
        &account,
        &user.public_key(),
        "node",
        serde_json::json!({"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                           "type": "user", "version": 2}),
    );
    let dir = temp_dir("creds");
    let conf = dir.join("nats.conf");
    std::fs::write(
        &conf,
        format!(
            "operator: \"{op_jwt}\"\nresolver: MEMORY\nresolver_preload: {{\n  {}: \"{acc_jwt}\"\n}}\n",
            account.public_key()
        ),
    )
    .unwrap();
    let creds = dir.join("node.creds");
    let seed = user.seed().unwrap();
    std::fs::write(
        &creds,
        format!(
            "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
             ************************* IMPORTANT *************************\n\
             NKEY Seed printed below can be used to sign and prove identity.\n\n\
             -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
        ),
    )
    .unwrap();
    let mut nats = Nats::start(&["-c".into(), conf.display().to_string()]).await;
    nats.account = Some(account.public_key());
    let creds = creds.display().to_string();
    exchange(
        &nats,
        &nats.url(),
        &["--backbone-creds-file", creds.as_str()],
    )
    .await;
    // Without the credentials the server refuses the node.
    refused(
        &nats.url(),
        &["--backbone-connect-timeout", "500"],
        "uthorization",
        &seed,
    )
    .await;
}
