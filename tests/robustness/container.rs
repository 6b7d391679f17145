//! The binary as the image runs it: PID 1 of its own PID namespace (`unshare --pid --fork
//! --mount-proc`, root as CI is), started through docker/docker-entrypoint.sh with the image's
//! docker/defaults.conf. `docker stop` with a subscriber that never reads ends in exit 0 before
//! Docker's SIGKILL; a loopback-only bind is warned about; the password comes from
//! `REDIS_PASSWORD` or `REDIS_PASSWORD_FILE`, never shows in the log or the command line, and
//! the health probe authenticates with it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::support::process::{free_port, temp_dir, wait_for_port, Proc};
use crate::support::{info, process, Raw};

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
    let list = info::text(&mut ctl, &["CLIENT", "LIST", "TYPE", "pubsub"]).await;
    let omem: u64 = info::field(&info::client_fields(list.trim()), "omem")
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
    let (status, stderr) = process::wait_exit(p).await;
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
    let p = process::spawn(&[
        "--port",
        &port.to_string(),
        "--logfile",
        log.to_str().unwrap(),
    ]);
    wait_for_port(port).await;
    process::signal(&p, "TERM");
    let (status, stderr) = process::wait_exit(p).await;
    assert_eq!(status.code(), Some(0), "{stderr}");
    let text = read_log(&log).await;
    assert!(text.contains("Ready to accept connections"), "{text}");
    assert!(!text.contains("loopback only"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `pubsubd --health-check ARGS` with `env`, as `docker exec` runs the HEALTHCHECK: inside
/// the container's PID and mount namespaces (so /proc/1 is the server), with its environment.
fn health_check_in(pid1: u32, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new("nsenter");
    c.args(["--target", &pid1.to_string(), "--pid", "--mount", "--"])
        .arg(env!("CARGO_BIN_EXE_pubsubd"))
        .arg("--health-check")
        .args(args)
        .env_remove("REDIS_PASSWORD")
        .env_remove("REDIS_PASSWORD_FILE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("nsenter (util-linux)")
}

async fn health(pid1: u32, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        health_check_in(pid1, &args, &env)
    })
    .await
    .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim_end().to_string(),
        String::from_utf8_lossy(&out.stderr).trim_end().to_string(),
    )
}

/// A password no log line, error or command line could contain by chance.
fn secret(tag: &str) -> String {
    format!("s3cret-{tag}-{}", std::process::id())
}

fn cmdline(pid: u32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap()).into_owned()
}

#[tokio::test]
async fn redis_password_from_the_environment_authenticates_and_never_shows() {
    let pw = secret("env");
    let dir = temp_dir("container-envpw");
    let log = dir.join("pubsubd.log");
    let port = free_port();
    let p = container(
        &[
            "--port",
            &port.to_string(),
            "--logfile",
            log.to_str().unwrap(),
        ],
        &[("REDIS_PASSWORD", &pw)],
    );
    let pid1 = pid1_of(&p).await;
    wait_for_port(port).await;
    let mut c = client(port).await;
    c.roundtrip(&["PING"], b"-NOAUTH Authentication required.\r\n")
        .await;
    c.roundtrip(
        &["AUTH", "not-it"],
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    )
    .await;
    c.roundtrip(&["AUTH", &pw], b"+OK\r\n").await;
    c.roundtrip(&["PUBLISH", "ch", "hi"], b":0\r\n").await;
    assert!(!cmdline(pid1).contains(&pw), "{}", cmdline(pid1));
    assert!(!cmdline(p.0.id()).contains(&pw));

    // The HEALTHCHECK as Docker runs it, with the container's environment: PONG, not NOAUTH.
    let (code, out, err) = health(pid1, &[], &[("REDIS_PASSWORD", &pw)]).await;
    assert_eq!((code, out.as_str()), (Some(0), "+PONG"), "{err}");
    // Without the password it still knows the server is up.
    let (code, out, err) = health(pid1, &[], &[]).await;
    assert_eq!(
        (code, out.as_str()),
        (Some(0), "-NOAUTH Authentication required."),
        "{err}"
    );
    // A password the server refuses is unhealthy: clients given it would be refused too.
    let (code, out, err) = health(pid1, &[], &[("REDIS_PASSWORD", "not-it")]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        err.starts_with("unhealthy: ") && err.contains("AUTH refused: -WRONGPASS"),
        "{err}"
    );
    assert!(!err.contains("not-it"), "{err}");

    let (status, _, stderr) = docker_stop(p, pid1).await;
    assert_eq!(status.code(), Some(0), "{stderr}");
    let text = read_log(&log).await;
    assert!(text.contains("Ready to accept connections"), "{text}");
    assert!(!text.contains(&pw), "the log shows the password:\n{text}");
    assert!(
        !text.contains("not-it"),
        "the log shows a tried password:\n{text}"
    );
    assert!(!stderr.contains(&pw));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn redis_password_file_as_a_docker_secret() {
    let pw = secret("file");
    let dir = temp_dir("container-pwfile");
    let file = dir.join("redis_password");
    // As `echo "$pw" | docker secret create` leaves it: with a final newline.
    std::fs::write(&file, format!("{pw}\n")).unwrap();
    let file = file.to_str().unwrap().to_string();
    let log = dir.join("pubsubd.log");
    let port = free_port();
    let p = container(
        &[
            "--port",
            &port.to_string(),
            "--logfile",
            log.to_str().unwrap(),
        ],
        &[("REDIS_PASSWORD_FILE", &file)],
    );
    let pid1 = pid1_of(&p).await;
    wait_for_port(port).await;
    let mut c = client(port).await;
    c.roundtrip(&["PING"], b"-NOAUTH Authentication required.\r\n")
        .await;
    c.roundtrip(&["AUTH", &pw], b"+OK\r\n").await;
    let (code, out, err) = health(pid1, &[], &[("REDIS_PASSWORD_FILE", &file)]).await;
    assert_eq!((code, out.as_str()), (Some(0), "+PONG"), "{err}");
    // An explicit port, as a probe from outside the container would give it.
    let (code, out, err) = health(
        pid1,
        &[&format!("127.0.0.1:{port}")],
        &[("REDIS_PASSWORD_FILE", &file)],
    )
    .await;
    assert_eq!((code, out.as_str()), (Some(0), "+PONG"), "{err}");
    let (status, _, stderr) = docker_stop(p, pid1).await;
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!read_log(&log).await.contains(&pw));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The environment's password is a default: `requirepass` from redis.conf or a flag wins, and
/// start-up says so.
#[tokio::test]
async fn requirepass_overrides_the_environment_with_a_warning() {
    let env_pw = secret("from-env");
    let flag_pw = secret("from-flag");
    let dir = temp_dir("container-pwoverride");
    let log = dir.join("pubsubd.log");
    let port = free_port();
    let p = container(
        &[
            "--port",
            &port.to_string(),
            "--requirepass",
            &flag_pw,
            "--logfile",
            log.to_str().unwrap(),
        ],
        &[("REDIS_PASSWORD", &env_pw)],
    );
    let pid1 = pid1_of(&p).await;
    wait_for_port(port).await;
    let mut c = client(port).await;
    c.roundtrip(
        &["AUTH", &env_pw],
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    )
    .await;
    c.roundtrip(&["AUTH", &flag_pw], b"+OK\r\n").await;
    let (status, _, stderr) = docker_stop(p, pid1).await;
    assert_eq!(status.code(), Some(0), "{stderr}");
    let text = read_log(&log).await;
    assert!(
        text.contains(
            " # requirepass from the configuration overrides the password from REDIS_PASSWORD or REDIS_PASSWORD_FILE"
        ),
        "{text}"
    );
    assert!(
        !text.contains(&env_pw) && !text.contains(&flag_pw),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn both_password_variables_set_stops_start_up_without_showing_either() {
    let pw = secret("both");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_pubsubd"))
            .args(["--port", &free_port().to_string()])
            .env("REDIS_PASSWORD", &pw)
            .env("REDIS_PASSWORD_FILE", "/run/secrets/redis_password")
            .output()
            .map(|o| (o, pw))
    })
    .await
    .unwrap()
    .unwrap();
    let (out, pw) = out;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end(),
        "Both REDIS_PASSWORD and REDIS_PASSWORD_FILE are set: set one of them"
    );
    assert!(!err.contains(&pw) && !String::from_utf8_lossy(&out.stdout).contains(&pw));
}
