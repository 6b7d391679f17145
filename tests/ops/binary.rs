//! The built `pubsubd` binary as operators run it: redis-server-style arguments, a config file,
//! config errors, and SIGTERM while clients are connected (exit 0, queued messages written).

use std::process::Command;

use crate::support::process::{free_port, spawn, temp_dir, wait_exit, wait_for_port};
use crate::support::{self, Raw};

#[tokio::test]
async fn sigterm_flushes_subscribers_and_exits_zero() {
    let port = free_port();
    let p = spawn(&["--port", &port.to_string(), "--bind", "127.0.0.1"]);
    wait_for_port(port).await;
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut sub = Raw::connect(addr).await;
    sub.cmd(&["SUBSCRIBE", "bye"]).await;
    sub.frame().await;
    let mut publ = Raw::connect(addr).await;
    let mut batch = Vec::new();
    for i in 0..1000 {
        batch.extend(support::encode(&[
            b"PUBLISH",
            b"bye",
            i.to_string().as_bytes(),
        ]));
    }
    publ.send(&batch).await;
    for _ in 0..1000 {
        assert_eq!(publ.frame().await, b":1\r\n");
    }
    let status = Command::new("kill")
        .args(["-TERM", &p.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Every acknowledged message reaches the subscriber before the connection closes.
    for i in 0..1000 {
        let f = sub.frame().await;
        assert!(f.ends_with(format!("\r\n{i}\r\n").as_bytes()));
    }
    sub.expect_closed().await;
    let (status, _) = wait_exit(p).await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn reads_a_config_file_and_flags_override_it() {
    let dir = temp_dir("conf");
    let port = free_port();
    let file = dir.join("redis.conf");
    std::fs::write(
        &file,
        "# a redis.conf\nport 1\nbind 127.0.0.1\nsave 900 1\nappendonly no\ntimeout 0\nclient-output-buffer-limit pubsub 32mb 8mb 60\n",
    )
    .unwrap();
    let _p = spawn(&[file.to_str().unwrap(), "--port", &port.to_string()]);
    wait_for_port(port).await;
    let mut c = Raw::connect(format!("127.0.0.1:{port}").parse().unwrap()).await;
    c.roundtrip(&["PING"], b"+PONG\r\n").await;
}

#[test]
fn a_bad_directive_stops_start_up_naming_the_line() {
    let dir = temp_dir("bad");
    let file = dir.join("bad.conf");
    std::fs::write(&file, "port 7000\nprot 7001\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pubsubd"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("*** FATAL CONFIG FILE ERROR"), "{err}");
    assert!(err.contains("at line 2"), "{err}");
    assert!(err.contains(">>> 'prot 7001'"), "{err}");
    assert!(
        err.contains("Bad directive or wrong number of arguments"),
        "{err}"
    );
}

#[test]
fn version_and_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_pubsubd"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("pubsubd v="));
    let out = Command::new(env!("CARGO_BIN_EXE_pubsubd"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("redis.conf"));
}
