//! Authentication and the other doors: requirepass, AUTH / HELLO AUTH, NOAUTH before
//! authentication, WRONGPASS, disabled users, INFO and ACL LOG counting failures, RESET,
//! rename-command, maxclients, timeout, unix sockets. Exact bytes as Redis 7.2 sends them.

use pubsubd::config::{Config, Secret};

use crate::support::{self, Raw, TestServer};

const NOAUTH: &[u8] = b"-NOAUTH Authentication required.\r\n";
const WRONGPASS: &[u8] = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n";

fn with_password(pw: &str) -> Config {
    Config {
        requirepass: Secret(pw.into()),
        ..Config::default()
    }
}

fn users(lines: &[&str]) -> Secret<Vec<Vec<String>>> {
    Secret(
        lines
            .iter()
            .map(|l| l.split(' ').map(String::from).collect())
            .collect(),
    )
}

#[tokio::test]
async fn every_command_but_auth_hello_quit_reset_needs_authentication() {
    let s = TestServer::with_config(with_password("sekret")).await;
    let mut c = Raw::connect(s.addr()).await;
    for cmd in [
        &["PING"][..],
        &["PUBLISH", "ch", "m"],
        &["SUBSCRIBE", "ch"],
        &["PSUBSCRIBE", "*"],
        &["ECHO", "x"],
        &["CLIENT", "SETINFO", "LIB-NAME", "x"],
        &["ACL", "WHOAMI"],
        &["INFO"],
    ] {
        c.roundtrip(cmd, NOAUTH).await;
    }
    // Unknown commands and arity errors come before the authentication check, as in Redis.
    c.roundtrip(
        &["NOSUCH"],
        b"-ERR unknown command 'NOSUCH', with args beginning with: \r\n",
    )
    .await;
    c.roundtrip(
        &["PUBLISH", "ch"],
        b"-ERR wrong number of arguments for 'publish' command\r\n",
    )
    .await;
    c.roundtrip(&["HELLO", "3"], b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n").await;
    c.roundtrip(&["RESET"], b"+RESET\r\n").await;
    c.roundtrip(&["AUTH", "sekret"], b"+OK\r\n").await;
    c.roundtrip(&["PING"], b"+PONG\r\n").await;
    c.roundtrip(&["ACL", "WHOAMI"], b"$7\r\ndefault\r\n").await;
    // RESET drops the authentication.
    c.roundtrip(&["RESET"], b"+RESET\r\n").await;
    c.roundtrip(&["PING"], NOAUTH).await;
    c.roundtrip(&["QUIT"], b"+OK\r\n").await;
    c.expect_closed().await;
}

#[tokio::test]
async fn wrong_passwords_get_wrongpass_and_are_counted_and_logged() {
    let s = TestServer::with_config(with_password("sekret")).await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(&["AUTH", "nope"], WRONGPASS).await;
    c.roundtrip(&["AUTH", "default", "nope"], WRONGPASS).await;
    c.roundtrip(&["AUTH", "nosuchuser", "sekret"], WRONGPASS)
        .await;
    c.roundtrip(&["HELLO", "3", "AUTH", "default", "nope"], WRONGPASS)
        .await;
    c.roundtrip(&["AUTH", "a", "b", "c"], b"-ERR syntax error\r\n")
        .await;
    c.roundtrip(&["AUTH", "default", "sekret"], b"+OK\r\n")
        .await;
    c.cmd(&["INFO", "stats"]).await;
    let info = String::from_utf8(c.frame().await).unwrap();
    assert!(info.contains("acl_access_denied_auth:4\r\n"), "{info}");
    assert!(info.contains("acl_access_denied_cmd:0\r\n"), "{info}");
    c.cmd(&["INFO", "errorstats"]).await;
    let info = String::from_utf8(c.frame().await).unwrap();
    assert!(info.contains("errorstat_WRONGPASS:count=4"), "{info}");
    // Grouped by user: default (3 tries, AUTH and HELLO grouped apart) and nosuchuser.
    c.cmd(&["ACL", "LOG"]).await;
    let log = String::from_utf8(c.frame().await).unwrap();
    assert!(log.starts_with("*3\r\n*20\r\n$5\r\ncount\r\n:1\r\n$6\r\nreason\r\n$4\r\nauth\r\n$7\r\ncontext\r\n$8\r\ntoplevel\r\n$6\r\nobject\r\n$5\r\nHELLO\r\n$8\r\nusername\r\n$7\r\ndefault\r\n"), "{log}");
    assert!(
        log.contains("$6\r\nobject\r\n$4\r\nAUTH\r\n$8\r\nusername\r\n$10\r\nnosuchuser\r\n"),
        "{log}"
    );
    assert!(log.contains("$5\r\ncount\r\n:2\r\n"), "{log}");
    assert!(!log.contains("sekret") && !log.contains("nope"), "{log}");
    c.roundtrip(&["ACL", "LOG", "RESET"], b"+OK\r\n").await;
    c.roundtrip(&["ACL", "LOG"], b"*0\r\n").await;
}

#[tokio::test]
async fn hello_auth_authenticates_and_switches_protocol() {
    let s = TestServer::with_config(with_password("sekret")).await;
    let mut c = Raw::connect(s.addr()).await;
    c.cmd(&["HELLO", "3", "AUTH", "default", "sekret", "SETNAME", "n"])
        .await;
    let hello = c.frame().await;
    assert!(hello.starts_with(b"%7\r\n$6\r\nserver\r\n"));
    c.roundtrip(&["CLIENT", "GETNAME"], b"$1\r\nn\r\n").await;
}

#[tokio::test]
async fn acl_users_from_the_config_authenticate_and_disabled_ones_do_not() {
    let cfg = Config {
        users: users(&["alice on >alicepw &* +@all", "bob off >bobpw +@all"]),
        ..Config::default()
    };
    let s = TestServer::with_config(cfg).await;
    let mut c = Raw::connect(s.addr()).await;
    // No requirepass: everyone starts as the default user.
    c.roundtrip(&["ACL", "WHOAMI"], b"$7\r\ndefault\r\n").await;
    c.roundtrip(&["AUTH", "bob", "bobpw"], WRONGPASS).await;
    c.roundtrip(&["AUTH", "alice", "wrong"], WRONGPASS).await;
    c.roundtrip(&["AUTH", "alice", "alicepw"], b"+OK\r\n").await;
    c.roundtrip(&["ACL", "WHOAMI"], b"$5\r\nalice\r\n").await;
    c.cmd(&["CLIENT", "INFO"]).await;
    let info = String::from_utf8(c.frame().await).unwrap();
    assert!(info.contains(" user=alice "), "{info}");
}

#[tokio::test]
async fn unauthenticated_clients_get_redis_smaller_request_limits() {
    let s = TestServer::with_config(with_password("pw")).await;
    let mut c = Raw::connect(s.addr()).await;
    c.send(b"*11\r\n").await;
    c.expect(b"-ERR Protocol error: unauthenticated multibulk length\r\n")
        .await;
    c.expect_closed().await;
    let mut c = Raw::connect(s.addr()).await;
    c.send(b"*2\r\n$4\r\nAUTH\r\n$16385\r\n").await;
    c.expect(b"-ERR Protocol error: unauthenticated bulk length\r\n")
        .await;
    c.expect_closed().await;
}

#[tokio::test]
async fn rename_command_renames_and_disables() {
    let cfg = Config {
        rename_command: vec![
            ("publish".into(), "pub2".into()),
            ("client".into(), String::new()),
        ],
        ..Config::default()
    };
    let s = TestServer::with_config(cfg).await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(
        &["PUBLISH", "ch", "m"],
        b"-ERR unknown command 'PUBLISH', with args beginning with: 'ch' 'm' \r\n",
    )
    .await;
    c.roundtrip(&["PUB2", "ch", "m"], b":0\r\n").await;
    c.roundtrip(
        &["CLIENT", "ID"],
        b"-ERR unknown command 'CLIENT', with args beginning with: 'ID' \r\n",
    )
    .await;
}

#[tokio::test]
async fn maxclients_refuses_with_redis_error() {
    let cfg = Config {
        maxclients: 1,
        ..Config::default()
    };
    let s = TestServer::with_config(cfg).await;
    let mut a = Raw::connect(s.addr()).await;
    a.roundtrip(&["PING"], b"+PONG\r\n").await;
    let mut b = Raw::connect(s.addr()).await;
    b.expect(b"-ERR max number of clients reached\r\n").await;
    b.expect_closed().await;
}

#[tokio::test]
async fn timeout_closes_idle_clients_but_not_subscribers() {
    let cfg = Config {
        timeout: 1,
        ..Config::default()
    };
    let s = TestServer::with_config(cfg).await;
    let mut idle = Raw::connect(s.addr()).await;
    let mut sub = Raw::connect(s.addr()).await;
    sub.roundtrip(
        &["SUBSCRIBE", "ch"],
        b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n",
    )
    .await;
    idle.expect_closed().await;
    let mut p = Raw::connect(s.addr()).await;
    p.roundtrip(&["PUBLISH", "ch", "m"], b":1\r\n").await;
    sub.expect(b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n")
        .await;
}

#[tokio::test]
async fn unix_socket_with_permissions() {
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = std::env::temp_dir().join(format!("pubsubd-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pubsubd.sock");
    let cfg = Config {
        unixsocket: path.display().to_string(),
        unixsocketperm: 0o700,
        requirepass: Secret("pw".into()),
        ..Config::default()
    };
    let s = TestServer::with_config(cfg).await;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let mut u = tokio::net::UnixStream::connect(&path).await.unwrap();
    u.write_all(b"PING\r\nAUTH pw\r\nCLIENT INFO\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    while !got.ends_with(b"\n\r\n") {
        let mut b = [0u8; 4096];
        let n = tokio::time::timeout(support::TIMEOUT, u.read(&mut b))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed: {}", support::show(&got));
        got.extend_from_slice(&b[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("-NOAUTH Authentication required.\r\n+OK\r\n$"),
        "{text}"
    );
    // Redis shows unix clients as `path:0`.
    assert!(
        text.contains(&format!("addr={}:0 ", path.display())),
        "{text}"
    );
    drop(s);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn protected_mode_lets_loopback_clients_in() {
    // Remote clients are refused (unit test in server::listener); loopback ones never are.
    let cfg = Config {
        protected_mode: true,
        bind: vec!["*".into()],
        ..Config::default()
    };
    let s = TestServer::with_config(cfg).await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(&["PING"], b"+PONG\r\n").await;
}

#[test]
fn config_reads_security_directives_and_rejects_users_with_an_aclfile() {
    use pubsubd::config::file::apply_text;
    use pubsubd::server::startup::check;
    let mut c = Config::default();
    apply_text(
        &mut c,
        "requirepass \"p w\"\nuser alice on >x &news.* +@pubsub\nacl-pubsub-default allchannels\nprotected-mode no\nunixsocket /tmp/x.sock\nunixsocketperm 770\nrename-command FLUSHALL \"\"\ntls-port 6380\ntls-auth-clients optional\ntls-protocols \"TLSv1.2 TLSv1.3\"\n",
    )
    .unwrap();
    // FLUSHALL is not a command of this table: the start-up check refuses it, naming the line.
    let e = check(&c).unwrap_err().to_string();
    assert!(
        e.contains(
            "at line 7\n>>> 'rename-command FLUSHALL \"\"'\nNo such command in rename-command"
        ),
        "{e}"
    );
    let mut c = Config::default();
    apply_text(
        &mut c,
        "requirepass \"p w\"\nuser alice on >x &news.* +@pubsub +get\nacl-pubsub-default allchannels\nprotected-mode no\nunixsocket /tmp/x.sock\nunixsocketperm 770\nrename-command PUBSUB \"\"\ntls-port 6380\ntls-auth-clients optional\ntls-protocols \"TLSv1.2 TLSv1.3\"\n",
    )
    .unwrap();
    assert_eq!(c.requirepass.0, "p w");
    assert_eq!(format!("{:?}", c.requirepass), "<redacted>");
    assert_eq!(c.users.0[0][0], "alice");
    assert!(c.acl_pubsub_default_all && !c.protected_mode);
    assert_eq!(c.unixsocketperm, 0o770);
    assert_eq!(c.tls.port, 6380);
    c.aclfile = "/tmp/users.acl".into();
    let e = c.validate().unwrap_err().to_string();
    assert!(
        e.contains("users defined in redis.conf and at the same setting an ACL file"),
        "{e}"
    );
    let mut c = Config::default();
    apply_text(&mut c, "user bob on &a allchannels &b\n").unwrap();
    let e = check(&c).unwrap_err().to_string();
    assert!(
        e.contains("at line 1\n>>> 'user bob on &a allchannels &b'\n"),
        "{e}"
    );
    assert!(e.contains("Error in user declaration '&b': Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid"), "{e}");
}
