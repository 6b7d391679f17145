//! ACL users with channel permissions: enforcement on PUBLISH/SPUBLISH/SUBSCRIBE/SSUBSCRIBE
//! (glob match) and PSUBSCRIBE (literal match), command rules, subscribers disconnected when
//! their permissions shrink or their user goes, and the ACL command family. Error texts are
//! Redis 7.2's (7.0 said "this user has no permissions to …"; 7.2 names the user for commands
//! and says "No permissions to access a channel" for channels).

use pubsubd::config::{Config, Secret};

use crate::support::{Raw, TestServer};

const CHAN_DENIED: &[u8] = b"-NOPERM No permissions to access a channel\r\n";

fn with_users(lines: &[&str]) -> Config {
    Config {
        users: Secret(
            lines
                .iter()
                .map(|l| l.split(' ').map(String::from).collect())
                .collect(),
        ),
        ..Config::default()
    }
}

async fn login(s: &TestServer, user: &str, pw: &str) -> Raw {
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(&["AUTH", user, pw], b"+OK\r\n").await;
    c
}

fn alice() -> Config {
    with_users(&["alice on >pw resetchannels &news.* &chat -@all +@pubsub +@connection"])
}

#[tokio::test]
async fn publish_and_subscribe_are_limited_to_the_users_channels() {
    let s = TestServer::with_config(alice()).await;
    let mut c = login(&s, "alice", "pw").await;
    c.roundtrip(&["PUBLISH", "news.sport", "m"], b":0\r\n")
        .await;
    c.roundtrip(&["PUBLISH", "chat", "m"], b":0\r\n").await;
    c.roundtrip(&["PUBLISH", "other", "m"], CHAN_DENIED).await;
    c.roundtrip(&["SPUBLISH", "other", "m"], CHAN_DENIED).await;
    // One channel outside the rules refuses the whole command; nothing is subscribed.
    c.roundtrip(&["SUBSCRIBE", "news.a", "other"], CHAN_DENIED)
        .await;
    c.roundtrip(&["SSUBSCRIBE", "other"], CHAN_DENIED).await;
    // PSUBSCRIBE needs the pattern itself among the rules.
    c.roundtrip(&["PSUBSCRIBE", "news.a*"], CHAN_DENIED).await;
    c.roundtrip(&["PSUBSCRIBE", "*"], CHAN_DENIED).await;
    c.roundtrip(
        &["PSUBSCRIBE", "news.*"],
        b"*3\r\n$10\r\npsubscribe\r\n$6\r\nnews.*\r\n:1\r\n",
    )
    .await;
    c.roundtrip(
        &["SUBSCRIBE", "news.a"],
        b"*3\r\n$9\r\nsubscribe\r\n$6\r\nnews.a\r\n:2\r\n",
    )
    .await;
    // Unsubscribing is never checked.
    c.roundtrip(
        &["UNSUBSCRIBE", "other"],
        b"*3\r\n$11\r\nunsubscribe\r\n$5\r\nother\r\n:2\r\n",
    )
    .await;
    let mut admin = Raw::connect(s.addr()).await;
    admin.cmd(&["INFO", "stats"]).await;
    let info = String::from_utf8(admin.frame().await).unwrap();
    assert!(info.contains("acl_access_denied_channel:6\r\n"), "{info}");
    admin.cmd(&["ACL", "LOG", "1"]).await;
    let log = String::from_utf8(admin.frame().await).unwrap();
    assert!(log.contains("$6\r\nreason\r\n$7\r\nchannel\r\n$7\r\ncontext\r\n$8\r\ntoplevel\r\n$6\r\nobject\r\n$1\r\n*\r\n$8\r\nusername\r\n$5\r\nalice\r\n"), "{log}");
}

#[tokio::test]
async fn command_rules_refuse_with_the_user_and_command_named() {
    let s = TestServer::with_config(with_users(&[
        "pub on >pw allchannels -@all +publish +auth",
        "sub on >pw allchannels +@all -publish -client|kill",
    ]))
    .await;
    let mut p = login(&s, "pub", "pw").await;
    p.roundtrip(&["PUBLISH", "c", "m"], b":0\r\n").await;
    p.roundtrip(
        &["SUBSCRIBE", "c"],
        b"-NOPERM User pub has no permissions to run the 'subscribe' command\r\n",
    )
    .await;
    p.roundtrip(
        &["CLIENT", "ID"],
        b"-NOPERM User pub has no permissions to run the 'client|id' command\r\n",
    )
    .await;
    // AUTH, HELLO, QUIT, RESET (no_auth commands) are never refused by command rules.
    p.roundtrip(&["AUTH", "pub", "pw"], b"+OK\r\n").await;
    let mut q = login(&s, "sub", "pw").await;
    q.roundtrip(
        &["PUBLISH", "c", "m"],
        b"-NOPERM User sub has no permissions to run the 'publish' command\r\n",
    )
    .await;
    q.roundtrip(
        &["CLIENT", "KILL", "ID", "1"],
        b"-NOPERM User sub has no permissions to run the 'client|kill' command\r\n",
    )
    .await;
    q.cmd(&["CLIENT", "ID"]).await;
    assert!(q.frame().await.starts_with(b":"));
    // A refused command inside MULTI aborts the transaction.
    q.roundtrip(&["MULTI"], b"+OK\r\n").await;
    q.roundtrip(
        &["PUBLISH", "c", "m"],
        b"-NOPERM User sub has no permissions to run the 'publish' command\r\n",
    )
    .await;
    q.roundtrip(
        &["EXEC"],
        b"-EXECABORT Transaction discarded because of previous errors.\r\n",
    )
    .await;
}

#[tokio::test]
async fn exec_checks_permissions_again() {
    let s = TestServer::with_config(with_users(&["u on >pw &* +@all"])).await;
    let mut c = login(&s, "u", "pw").await;
    let mut admin = Raw::connect(s.addr()).await;
    c.roundtrip(&["MULTI"], b"+OK\r\n").await;
    c.roundtrip(&["PUBLISH", "a", "m"], b"+QUEUED\r\n").await;
    c.roundtrip(&["PING"], b"+QUEUED\r\n").await;
    admin
        .roundtrip(&["ACL", "SETUSER", "u", "-publish"], b"+OK\r\n")
        .await;
    c.roundtrip(
        &["EXEC"],
        b"*2\r\n-NOPERM User u has no permissions to run the 'publish' command\r\n+PONG\r\n",
    )
    .await;
    admin.cmd(&["ACL", "LOG", "1"]).await;
    let log = String::from_utf8(admin.frame().await).unwrap();
    assert!(log.contains("$7\r\ncontext\r\n$5\r\nmulti\r\n"), "{log}");
}

#[tokio::test]
async fn a_subscriber_losing_permission_mid_stream_is_disconnected() {
    let s = TestServer::with_config(alice()).await;
    let mut lose = login(&s, "alice", "pw").await;
    let mut keep = login(&s, "alice", "pw").await;
    let mut pat = login(&s, "alice", "pw").await;
    lose.roundtrip(
        &["SUBSCRIBE", "chat"],
        b"*3\r\n$9\r\nsubscribe\r\n$4\r\nchat\r\n:1\r\n",
    )
    .await;
    keep.roundtrip(
        &["SUBSCRIBE", "news.x"],
        b"*3\r\n$9\r\nsubscribe\r\n$6\r\nnews.x\r\n:1\r\n",
    )
    .await;
    pat.roundtrip(
        &["PSUBSCRIBE", "news.*"],
        b"*3\r\n$10\r\npsubscribe\r\n$6\r\nnews.*\r\n:1\r\n",
    )
    .await;
    let mut admin = Raw::connect(s.addr()).await;
    admin
        .roundtrip(&["PUBLISH", "chat", "before"], b":1\r\n")
        .await;
    lose.expect(b"*3\r\n$7\r\nmessage\r\n$4\r\nchat\r\n$6\r\nbefore\r\n")
        .await;
    // `news.*` becomes `news.x`: the pattern subscriber loses its literal rule, the chat
    // subscriber its channel; the news.x subscriber keeps what it has.
    admin
        .roundtrip(
            &["ACL", "SETUSER", "alice", "resetchannels", "&news.x"],
            b"+OK\r\n",
        )
        .await;
    admin
        .roundtrip(&["PUBLISH", "chat", "after"], b":0\r\n")
        .await;
    lose.expect_closed().await;
    pat.expect_closed().await;
    admin
        .roundtrip(&["PUBLISH", "news.x", "still"], b":1\r\n")
        .await;
    keep.expect(b"*3\r\n$7\r\nmessage\r\n$6\r\nnews.x\r\n$5\r\nstill\r\n")
        .await;
    // Adding permissions disconnects no one.
    admin
        .roundtrip(&["ACL", "SETUSER", "alice", "&more"], b"+OK\r\n")
        .await;
    keep.roundtrip(&["PING"], b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        .await;
}

#[tokio::test]
async fn deleting_a_user_disconnects_its_clients() {
    let s = TestServer::with_config(with_users(&["u on >pw &* +@all"])).await;
    let mut a = login(&s, "u", "pw").await;
    let mut b = login(&s, "u", "pw").await;
    let mut other = Raw::connect(s.addr()).await;
    a.roundtrip(
        &["SUBSCRIBE", "c"],
        b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n",
    )
    .await;
    other
        .roundtrip(&["ACL", "DELUSER", "u", "nobody"], b":1\r\n")
        .await;
    a.expect_closed().await;
    b.expect_closed().await;
    other.roundtrip(&["PING"], b"+PONG\r\n").await;
    other
        .roundtrip(
            &["ACL", "DELUSER", "default"],
            b"-ERR The 'default' user cannot be removed\r\n",
        )
        .await;
    // A user deleting itself gets its reply, then is disconnected.
    other
        .roundtrip(
            &["ACL", "SETUSER", "me", "on", "nopass", "+@all"],
            b"+OK\r\n",
        )
        .await;
    let mut me = login(&s, "me", "x").await;
    me.roundtrip(&["ACL", "DELUSER", "me"], b":1\r\n").await;
    me.expect_closed().await;
}

#[tokio::test]
async fn setuser_getuser_list_users_and_errors() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(&["ACL", "SETUSER", "carol"], b"+OK\r\n").await;
    c.roundtrip(
        &["ACL", "LIST"],
        // Redis 7.2 shows `sanitize-payload` on every user.
        b"*2\r\n$51\r\nuser carol off sanitize-payload resetchannels -@all\r\n$51\r\nuser default on nopass sanitize-payload ~* &* +@all\r\n",
    )
    .await;
    c.roundtrip(
        &[
            "ACL",
            "SETUSER",
            "carol",
            "on",
            ">foobar",
            "&x*",
            "+@pubsub",
            "-psubscribe",
            "+get",
        ],
        b"+OK\r\n",
    )
    .await;
    c.roundtrip(&["ACL", "GETUSER", "carol"], b"*12\r\n$5\r\nflags\r\n*2\r\n$2\r\non\r\n$16\r\nsanitize-payload\r\n$9\r\npasswords\r\n*1\r\n$64\r\nc3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2\r\n$8\r\ncommands\r\n$31\r\n-@all +@pubsub -psubscribe +get\r\n$4\r\nkeys\r\n$0\r\n\r\n$8\r\nchannels\r\n$3\r\n&x*\r\n$9\r\nselectors\r\n*0\r\n").await;
    c.roundtrip(&["ACL", "GETUSER", "nobody"], b"$-1\r\n").await;
    c.roundtrip(&["ACL", "USERS"], b"*2\r\n$5\r\ncarol\r\n$7\r\ndefault\r\n")
        .await;
    for (rule, why) in [
        ("+nosuch", "Unknown command or category name in ACL"),
        ("+@nosuch", "Unknown command or category name in ACL"),
        ("#abc", "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"),
        ("<zz", "The password you are trying to remove from the user does not exist"),
        ("bogus", "Syntax error"),
    ] {
        let exp = format!("-ERR Error in ACL SETUSER modifier '{rule}': {why}\r\n");
        c.roundtrip(&["ACL", "SETUSER", "carol", rule], exp.as_bytes())
            .await;
    }
    c.roundtrip(
        &["ACL", "SETUSER", "carol", "allchannels", "&z"],
        b"-ERR Error in ACL SETUSER modifier '&z': Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels\r\n",
    )
    .await;
    // A failed SETUSER changes nothing (allchannels above was not applied).
    c.cmd(&["ACL", "GETUSER", "carol"]).await;
    assert!(c
        .frame()
        .await
        .ends_with(b"$8\r\nchannels\r\n$3\r\n&x*\r\n$9\r\nselectors\r\n*0\r\n"));
    c.roundtrip(
        &["ACL", "SETUSER", "a b"],
        b"-ERR Usernames can't contain spaces or null characters\r\n",
    )
    .await;
    c.roundtrip(
        &["ACL", "SETUSER", "carol", "(", "+get"],
        b"-ERR Unmatched parenthesis in acl selector starting at '('.\r\n",
    )
    .await;
    c.roundtrip(&["ACL", "WHOAMI"], b"$7\r\ndefault\r\n").await;
    c.roundtrip(
        &["ACL", "FOO"],
        b"-ERR unknown subcommand 'FOO'. Try ACL HELP.\r\n",
    )
    .await;
}

#[tokio::test]
async fn cat_genpass_dryrun() {
    let s = TestServer::with_config(with_users(&["u on nopass &x* -@all +publish"])).await;
    let mut c = Raw::connect(s.addr()).await;
    c.cmd(&["ACL", "CAT"]).await;
    let cats = c.frame().await;
    assert!(cats.starts_with(b"*21\r\n$8\r\nkeyspace\r\n$4\r\nread\r\n"));
    c.cmd(&["ACL", "CAT", "pubsub"]).await;
    let pubsub = String::from_utf8(c.frame().await).unwrap();
    assert!(pubsub.starts_with("*13\r\n"), "{pubsub}");
    assert!(pubsub.contains("$7\r\npublish\r\n") && pubsub.contains("$13\r\npubsub|numsub\r\n"));
    c.roundtrip(
        &["ACL", "CAT", "nosuch"],
        b"-ERR Unknown category 'nosuch'\r\n",
    )
    .await;
    c.cmd(&["ACL", "GENPASS"]).await;
    let p = c.frame().await;
    assert_eq!(&p[..5], b"$64\r\n");
    assert!(p[5..69].iter().all(|b| b.is_ascii_hexdigit()));
    c.cmd(&["ACL", "GENPASS", "5"]).await;
    assert_eq!(c.frame().await.len(), "$2\r\nxx\r\n".len());
    c.roundtrip(&["ACL", "GENPASS", "0"], b"-ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096\r\n").await;
    c.roundtrip(&["ACL", "DRYRUN", "u", "PUBLISH", "x1", "m"], b"+OK\r\n")
        .await;
    c.roundtrip(
        &["ACL", "DRYRUN", "u", "PUBLISH", "y1", "m"],
        b"$52\r\nUser u has no permissions to access the 'y1' channel\r\n",
    )
    .await;
    c.roundtrip(
        &["ACL", "DRYRUN", "u", "SUBSCRIBE", "x1"],
        b"$56\r\nUser u has no permissions to run the 'subscribe' command\r\n",
    )
    .await;
    c.roundtrip(
        &["ACL", "DRYRUN", "nobody", "PING"],
        b"-ERR User 'nobody' not found\r\n",
    )
    .await;
    c.roundtrip(
        &["ACL", "DRYRUN", "u", "NOSUCH"],
        b"-ERR Command 'NOSUCH' not found\r\n",
    )
    .await;
    c.roundtrip(
        &["ACL", "DRYRUN", "u", "PUBLISH", "x"],
        b"-ERR wrong number of arguments for 'publish' command\r\n",
    )
    .await;
}

#[tokio::test]
async fn acl_pubsub_default_allchannels_gives_new_users_every_channel() {
    let cfg = Config {
        acl_pubsub_default_all: true,
        ..Config::default()
    };
    let s = TestServer::with_config(cfg).await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(
        &["ACL", "SETUSER", "n", "on", "nopass", "+@all"],
        b"+OK\r\n",
    )
    .await;
    c.roundtrip(
        &["ACL", "LIST"],
        b"*2\r\n$51\r\nuser default on nopass sanitize-payload ~* &* +@all\r\n$42\r\nuser n on nopass sanitize-payload &* +@all\r\n",
    )
    .await;
}

#[tokio::test]
async fn aclfile_load_and_save() {
    let dir = std::env::temp_dir().join(format!("pubsubd-aclfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("users.acl");
    // As written by a Redis deployment: key patterns and data commands pubsubd has not.
    std::fs::write(
        &file,
        "user default on nopass ~* &* +@all\nuser app on #c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2 ~app:* resetchannels &app.* -@all +@read +get +publish +subscribe\n",
    )
    .unwrap();
    let cfg = Config {
        aclfile: file.display().to_string(),
        ..Config::default()
    };
    pubsubd::server::startup::check(&cfg).unwrap();
    let s = TestServer::with_config(cfg).await;
    let mut app = login(&s, "app", "foobar").await;
    app.roundtrip(&["PUBLISH", "app.x", "m"], b":0\r\n").await;
    app.roundtrip(&["PUBLISH", "x", "m"], CHAN_DENIED).await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(&["ACL", "SETUSER", "extra", "on", ">p"], b"+OK\r\n")
        .await;
    c.roundtrip(&["ACL", "SAVE"], b"+OK\r\n").await;
    let saved = std::fs::read_to_string(&file).unwrap();
    assert_eq!(saved, "user app on sanitize-payload #c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2 ~app:* resetchannels &app.* -@all +@read +get +publish +subscribe\nuser default on nopass sanitize-payload ~* &* +@all\nuser extra off #c8a8c1e0b9a5f2d1b1e0f3d70a8c0a5c1e6f1b2e7e0e5fd0e2f7f2d6b1bb6dd5 resetchannels -@all\n".replace("user extra off #c8a8c1e0b9a5f2d1b1e0f3d70a8c0a5c1e6f1b2e7e0e5fd0e2f7f2d6b1bb6dd5", &format!("user extra on sanitize-payload #{}", pubsubd::auth::password::hash(b"p"))));
    // A broken file changes nothing; a good one replaces every user and disconnects the
    // clients of the users it replaced.
    std::fs::write(&file, "user app on nopass +nosuch\n").unwrap();
    c.cmd(&["ACL", "LOAD"]).await;
    let e = String::from_utf8(c.frame().await).unwrap();
    assert_eq!(e, format!("-ERR {}:1: Unknown command or category name in ACL. WARNING: ACL errors detected, no change to the previously active ACL rules was performed\r\n", file.display()));
    app.roundtrip(&["PUBLISH", "app.x", "m"], b":0\r\n").await;
    std::fs::write(&file, "user app on nopass &* +@all\n").unwrap();
    c.roundtrip(&["ACL", "LOAD"], b"+OK\r\n").await;
    app.expect_closed().await;
    c.roundtrip(&["ACL", "USERS"], b"*2\r\n$3\r\napp\r\n$7\r\ndefault\r\n")
        .await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn load_and_save_need_an_aclfile() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    let e = b"-ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.\r\n";
    c.roundtrip(&["ACL", "SAVE"], e).await;
    c.roundtrip(&["ACL", "LOAD"], e).await;
}

/// Redis 7.2.4: every user shows `sanitize-payload` (or `skip-sanitize-payload` when given),
/// after `on|off` and `nopass`; command rules are kept in the order given, a rule about a whole
/// command replaces earlier rules about its subcommands (tests "ACL GETUSER provides correct
/// results", "ACLs set can include subcommands, if already full command exists").
#[tokio::test]
async fn getuser_and_list_show_sanitize_payload_and_rules_in_order() {
    let s = TestServer::start().await;
    let mut c = Raw::connect(s.addr()).await;
    c.roundtrip(
        &[
            "ACL",
            "SETUSER",
            "bob",
            "on",
            ">p1",
            "&*",
            "-@all",
            "+@pubsub",
            "+@connection",
            "-publish",
        ],
        b"+OK\r\n",
    )
    .await;
    let hash = pubsubd::auth::password::hash(b"p1");
    c.roundtrip(
        &["ACL", "LIST"],
        format!("*2\r\n$134\r\nuser bob on sanitize-payload #{hash} &* -@all +@pubsub +@connection -publish\r\n$51\r\nuser default on nopass sanitize-payload ~* &* +@all\r\n").as_bytes(),
    )
    .await;
    let getuser = |flags: &str, n: usize| {
        format!("{flags}{n}\r\n$2\r\non\r\n$16\r\nsanitize-payload\r\n$9\r\npasswords\r\n*1\r\n$64\r\n{hash}\r\n$8\r\ncommands\r\n$36\r\n-@all +@pubsub +@connection -publish\r\n$4\r\nkeys\r\n$0\r\n\r\n$8\r\nchannels\r\n$2\r\n&*\r\n$9\r\nselectors\r\n*0\r\n")
    };
    c.roundtrip(
        &["ACL", "GETUSER", "bob"],
        format!("*12\r\n$5\r\nflags\r\n{}", getuser("*", 2)).as_bytes(),
    )
    .await;
    c.cmd(&["HELLO", "3"]).await;
    c.frame().await;
    c.roundtrip(
        &["ACL", "GETUSER", "bob"],
        format!("%6\r\n$5\r\nflags\r\n{}", getuser("~", 2)).as_bytes(),
    )
    .await;
    c.roundtrip(&["HELLO", "2"], b"").await;
    c.frame().await;
    c.roundtrip(
        &["ACL", "SETUSER", "c2", "skip-sanitize-payload"],
        b"+OK\r\n",
    )
    .await;
    c.roundtrip(
        &["ACL", "GETUSER", "c2"],
        b"*12\r\n$5\r\nflags\r\n*2\r\n$3\r\noff\r\n$21\r\nskip-sanitize-payload\r\n$9\r\npasswords\r\n*0\r\n$8\r\ncommands\r\n$5\r\n-@all\r\n$4\r\nkeys\r\n$0\r\n\r\n$8\r\nchannels\r\n$0\r\n\r\n$9\r\nselectors\r\n*0\r\n",
    )
    .await;
    for (i, (rules, text)) in [
        (
            &["+@all", "-@slow", "-@hash", "+hget"][..],
            &b"$25\r\n+@all -@slow -@hash +hget\r\n"[..],
        ),
        (&["+memory|doctor", "+memory"], b"$13\r\n-@all +memory\r\n"),
        (&["+config|get", "-config"], b"$13\r\n-@all -config\r\n"),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("u{i}");
        let mut args = vec!["ACL", "SETUSER", &name];
        args.extend_from_slice(rules);
        c.roundtrip(&args, b"+OK\r\n").await;
        c.cmd(&["ACL", "GETUSER", &name]).await;
        let reply = c.frame().await;
        let commands = reply.windows(text.len()).any(|w| w == text);
        assert!(commands, "{rules:?}: {}", String::from_utf8_lossy(&reply));
    }
}

/// A subscriber killed because its user lost the channel is gone from CLIENT LIST in the reply
/// right after ACL SETUSER, as in Redis (which frees it at once; test "Subscribers are killed
/// when revoked of channel permission").
#[tokio::test]
async fn killed_subscribers_leave_client_list_at_once() {
    let s = TestServer::start().await;
    let mut admin = Raw::connect(s.addr()).await;
    admin
        .roundtrip(
            &[
                "ACL",
                "SETUSER",
                "ps",
                "on",
                "nopass",
                "+@all",
                "resetchannels",
                "&foo",
            ],
            b"+OK\r\n",
        )
        .await;
    for _ in 0..20 {
        let mut sub = Raw::connect(s.addr()).await;
        sub.roundtrip(&["AUTH", "ps", "x"], b"+OK\r\n").await;
        sub.roundtrip(&["CLIENT", "SETNAME", "deathrow"], b"+OK\r\n")
            .await;
        sub.cmd(&["SUBSCRIBE", "foo"]).await;
        sub.frame().await;
        admin
            .roundtrip(&["ACL", "SETUSER", "ps", "resetchannels"], b"+OK\r\n")
            .await;
        admin.cmd(&["CLIENT", "LIST"]).await;
        let list = admin.frame().await;
        assert!(!String::from_utf8_lossy(&list).contains("deathrow"));
        sub.expect_closed().await;
        admin
            .roundtrip(&["ACL", "SETUSER", "ps", "&foo"], b"+OK\r\n")
            .await;
    }
}

/// Redis 7.2.4 frees a subscriber whose channels an ACL SETUSER revokes at once (a PUBLISH
/// right after does not count it), but frees the clients of a deleted user only when its
/// event loop iteration ends (`freeClientAsync`): a PUBLISH in the same write as ACL DELUSER
/// still counts them and lists them with flag `A` as user `default`, the next write does not.
/// (was: both depended on when the subscriber's own task noticed)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoked_subscribers_go_at_once_deleted_users_after_the_batch() {
    let s = TestServer::start().await;
    let mut admin = Raw::connect(s.addr()).await;
    let setuser = crate::support::encode(&[
        b"ACL", b"SETUSER", b"alice", b"on", b"nopass", b"&*", b"+@all",
    ]);
    for _ in 0..20 {
        admin.send(&setuser).await;
        admin.expect(b"+OK\r\n").await;
        let mut sub = Raw::connect(s.addr()).await;
        sub.roundtrip(&["AUTH", "alice", "x"], b"+OK\r\n").await;
        sub.roundtrip(
            &["SUBSCRIBE", "a"],
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n",
        )
        .await;
        let revoke = [
            crate::support::encode(&[b"ACL", b"SETUSER", b"alice", b"resetchannels"]),
            crate::support::encode(&[b"PUBLISH", b"a", b"x"]),
        ];
        admin.send(&revoke.concat()).await;
        admin.expect(b"+OK\r\n:0\r\n").await;

        admin
            .send(&crate::support::encode(&[
                b"ACL", b"SETUSER", b"alice", b"&*",
            ]))
            .await;
        admin.expect(b"+OK\r\n").await;
        let mut sub = Raw::connect(s.addr()).await;
        sub.roundtrip(&["AUTH", "alice", "x"], b"+OK\r\n").await;
        sub.cmd(&["CLIENT", "ID"]).await;
        let sid = String::from_utf8(sub.frame().await).unwrap();
        let sid = sid.trim_start_matches(':').trim_end();
        sub.roundtrip(
            &["SUBSCRIBE", "a"],
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n",
        )
        .await;
        let delete = [
            crate::support::encode(&[b"ACL", b"DELUSER", b"alice"]),
            crate::support::encode(&[b"PUBLISH", b"a", b"x"]),
            crate::support::encode(&[b"CLIENT", b"LIST", b"ID", sid.as_bytes()]),
        ];
        admin.send(&delete.concat()).await;
        admin.expect(b":1\r\n:1\r\n").await;
        // Until then it is listed as Redis lists a CLIENT_CLOSE_ASAP client of the default user.
        let line = String::from_utf8(admin.frame().await).unwrap();
        assert!(
            line.contains(" flags=PA ") && line.contains(" user=default "),
            "{line}"
        );
        admin.roundtrip(&["PUBLISH", "a", "x"], b":0\r\n").await;
    }
}
