//! The binary as the image runs it: PID 1 of its own PID namespace (`unshare --pid --fork
//! --mount-proc`, root as CI is), started through docker/docker-entrypoint.sh with the image's
//! docker/defaults.conf. `docker stop` with a subscriber that never reads ends in exit 0 before
//! Docker's SIGKILL; a loopback-only bind is warned about; the password comes from
//! `REDIS_PASSWORD` or `REDIS_PASSWORD_FILE`, never shows in the log or the command line, and
//! the health probe authenticates with it.

mod common;
mod ops_util;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use common::Raw;
use ops_util::{free_port, temp_dir, wait_for_port, Proc};

/// What `docker stop` and Compose wait between SIGTERM and SIGKILL by default.
const DOCKER_STOP_GRACE: Duration = Duration::from_secs(10);

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// `PATH` with the built binary's directory first, as the image has /usr/local/bin.
fn path_with_binary() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_pubsubd"));
    let dir = bin.parent().unwrap().display().to_string();
    format!("{dir}:{}", std::env::var("PATH").unwrap_or_default())
}

/// The container's command line `ARGS` (as `docker run IMAGE ARGS`), run by the entrypoint as
/// PID 1 of a new PID namespace, with the image's environment plus `env`.
fn container(args: &[&str], env: &[(&str, &str)]) -> Proc {
    let mut c = Command::new("unshare");
    c.args(["--pid", "--fork", "--mount-proc", "--kill-child", "sh"])
        .arg(repo_file("docker/docker-entrypoint.sh"))
        .args(args)
        .env("PATH", path_with_binary())
        .env("PUBSUBD_DEFAULTS", repo_file("docker/defaults.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    Proc(c.spawn().expect("unshare (util-linux) runs as root"))
}

/// The host PID of the namespace's PID 1: `unshare`'s only child.
async fn pid1_of(p: &Proc) -> u32 {
    let id = p.0.id();
    for _ in 0..500 {
        let children =
            std::fs::read_to_string(format!("/proc/{id}/task/{id}/children")).unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next() {
            return pid.parse().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("unshare started no child");
}

fn kill(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

/// As `docker stop`: SIGTERM to PID 1, then SIGKILL if it is still running after the grace
/// period. Returns the exit status and whether SIGKILL was needed.
async fn docker_stop(mut p: Proc, pid1: u32) -> (ExitStatus, bool, String) {
    kill(pid1, "TERM");
    tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + DOCKER_STOP_GRACE;
        let mut killed = false;
        let status = loop {
            if let Some(s) = p.0.try_wait().unwrap() {
                break s;
            }
            if !killed && std::time::Instant::now() >= deadline {
                killed = true;
                let _ = Command::new("kill")
                    .args(["-KILL", &pid1.to_string()])
                    .status();
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        if let Some(mut e) = p.0.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        (status, killed, err)
    })
    .await
    .unwrap()
}

async fn client(port: u16) -> Raw {
    Raw::connect(format!("127.0.0.1:{port}").parse().unwrap()).await
}

async fn read_log(path: &Path) -> String {
    // The line is written before the server accepts; the file is flushed per line.
    tokio::fs::read_to_string(path).await.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_stop_with_a_stuck_subscriber_exits_zero_within_the_grace_period() {
    let port = free_port();
    let p = container(&["--port", &port.to_string()], &[]);
    let pid1 = pid1_of(&p).await;
    wait_for_port(port).await;
    let mut ctl = client(port).await;
    // The image's default is what makes this work: below the grace period.
    ctl.roundtrip(
        &["CONFIG", "GET", "shutdown-timeout"],
        b"*2\r\n$16\r\nshutdown-timeout\r\n$1\r\n5\r\n",
    )
    .await;

    // A subscriber that never reads, with a small receive window.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let stuck = sock
        .connect(format!("127.0.0.1:{port}").parse().unwrap())
        .await
        .unwrap();
    let mut stuck = Raw::from_stream(stuck);
    stuck
        .roundtrip(
            &["SUBSCRIBE", "firehose"],
            b"*3\r\n$9\r\nsubscribe\r\n$8\r\nfirehose\r\n:1\r\n",
        )
        .await;
    let payload = "x".repeat(256 * 1024);
    for _ in 0..96 {
        ctl.roundtrip(&["PUBLISH", "firehose", &payload], b":1\r\n")
            .await;
    }
    // Megabytes are queued for it, far more than the socket buffers hold.
    let list = ops_util::text(&mut ctl, &["CLIENT", "LIST", "TYPE", "pubsub"]).await;
    let omem: u64 = ops_util::field(&ops_util::client_fields(list.trim()), "omem")
        .parse()
        .unwrap();
    assert!(omem > 4 << 20, "omem={omem}: {list}");

    let (status, killed, stderr) = docker_stop(p, pid1).await;
    assert!(!killed, "SIGKILL was needed: {stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
    drop(stuck);
}

/// PID 1 gets no default action for SIGINT or SIGTERM from the kernel: pubsubd must handle
/// both itself, or `docker stop` always waits for SIGKILL.
#[tokio::test]
async fn sigint_as_pid_1_is_a_graceful_shutdown() {
    let port = free_port();
    let p = container(&["--port", &port.to_string()], &[]);
    let pid1 = pid1_of(&p).await;
    wait_for_port(port).await;
    let mut c = client(port).await;
    c.roundtrip(&["PING"], b"+PONG\r\n").await;
    kill(pid1, "INT");
    c.expect_closed().await;
    let (status, stderr) = ops_util::wait_exit(p).await;
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[tokio::test]
async fn a_loopback_only_bind_in_a_container_is_warned_about_once() {
    let dir = temp_dir("container-warn");
    let log = dir.join("pubsubd.log");
    let port = free_port();
    let p = container(
        &[
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--protected-mode",
            "yes",
            "--logfile",
            log.to_str().unwrap(),
        ],
        &[],
    );
    let pid1 = pid1_of(&p).await;
    wait_for_port(port).await;
    let text = read_log(&log).await;
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("listening on loopback only"))
        .collect();
    assert_eq!(warnings.len(), 1, "{text}");
    let w = warnings[0];
    assert!(w.contains(" # WARNING: running in a container"), "{w}");
    assert!(w.contains(&format!("(127.0.0.1:{port})")), "{w}");
    assert!(w.contains("published ports (docker run -p"), "{w}");
    assert!(w.contains("Set `bind * -::*` (or `bind 0.0.0.0`)"), "{w}");
    assert!(w.contains("`protected-mode no`"), "{w}");
    let (status, _, stderr) = docker_stop(p, pid1).await;
    assert_eq!(status.code(), Some(0), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn no_warning_with_the_image_bind_or_outside_a_container() {
    let dir = temp_dir("container-nowarn");
    // The image's own `bind * -::*`: reachable, nothing to say.
    let log = dir.join("image.log");
    let port = free_port();
    let p = container(
        &[
            "--port",
            &port.to_string(),
            "--logfile",
            log.to_str().unwrap(),
        ],
        &[],
    );
    let pid1 = pid1_of(&p).await;
    wait_for_port(port).await;
    let mut c = client(port).await;
    c.roundtrip(&["PING"], b"+PONG\r\n").await;
    let (status, _, stderr) = docker_stop(p, pid1).await;
    assert_eq!(status.code(), Some(0), "{stderr}");
    let text = read_log(&log).await;
    assert!(text.contains("Ready to accept connections"), "{text}");
    assert!(!text.contains("loopback only"), "{text}");

    // Loopback only, but started by another process (a shell, a test): not the container's
    // main process.
    let log = dir.join("child.log");
    let port = free_port();
    let p = ops_util::spawn(&[
        "--port",
        &port.to_string(),
        "--logfile",
        log.to_str().unwrap(),
    ]);
    wait_for_port(port).await;
    ops_util::signal(&p, "TERM");
    let (status, stderr) = ops_util::wait_exit(p).await;
    assert_eq!(status.code(), Some(0), "{stderr}");
    let text = read_log(&log).await;
    assert!(text.contains("Ready to accept connections"), "{text}");
    assert!(!text.contains("loopback only"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
