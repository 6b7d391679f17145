//! Starts the two servers as child processes on free loopback ports and kills them (by
//! PID, through `Child`) when the guard is dropped, including when a test panics.
//!
//! The reference is `redis-server` from PATH, or the binary `PUBSUBD_REFERENCE_SERVER` names
//! (to compare with another Redis build, e.g. a local 7.2.4).

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::support::process::free_port;

/// How long a server may take to accept its first connection.
const STARTUP: Duration = Duration::from_secs(10);
/// Attempts to start a server, in case another process takes the free port first.
const ATTEMPTS: usize = 3;

/// A running server process; dropping it kills the process and removes its log.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub label: String,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The reference binary: `PUBSUBD_REFERENCE_SERVER`, or `redis-server` from PATH.
pub fn reference_binary() -> String {
    std::env::var("PUBSUBD_REFERENCE_SERVER").unwrap_or_else(|_| "redis-server".to_string())
}

/// The version the reference reports, e.g. "7.0.15". Panics with the install hint if
/// redis-server is not on PATH: the differential test cannot run without it.
pub fn redis_version() -> String {
    let binary = reference_binary();
    let output = Command::new(&binary).arg("--version").output().unwrap_or_else(|e| {
        panic!("the differential test needs {binary} ({e}); run `apt-get install redis-server` or set PUBSUBD_REFERENCE_SERVER")
    });
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text.split_whitespace().find_map(|w| w.strip_prefix("v="));
    version
        .unwrap_or_else(|| panic!("cannot read the version from `redis-server --version`: {text}"))
        .to_string()
}

/// Starts the reference redis-server.
pub fn redis(version: &str) -> Server {
    start(&format!("redis-server {version}"), |port, dir| {
        let mut cmd = Command::new(reference_binary());
        cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]);
        cmd.arg("--dir").arg(dir);
        cmd
    })
}

/// Starts the pubsubd binary built by Cargo for this test.
pub fn pubsubd() -> Server {
    start("pubsubd", |port, _| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pubsubd"));
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"]);
        cmd
    })
}

fn start(label: &str, command: impl Fn(u16, &std::path::Path) -> Command) -> Server {
    let dir = std::env::temp_dir();
    let mut last_log = String::new();
    for _ in 0..ATTEMPTS {
        let port = free_port();
        let log = dir.join(format!(
            "pubsubd-differential-{}-{port}.log",
            std::process::id()
        ));
        let out = File::create(&log).expect("create server log");
        let err = out.try_clone().expect("clone log handle");
        let child = command(port, &dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {label}: {e}"));
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            label: label.to_string(),
            log,
        };
        if wait_until_accepting(&mut server) {
            return server;
        }
        last_log = std::fs::read_to_string(&server.log).unwrap_or_default();
    }
    panic!("{label} did not start accepting connections; its last output:\n{last_log}");
}

/// Waits for the server to accept a connection; false if the process exits or times out.
fn wait_until_accepting(server: &mut Server) -> bool {
    let deadline = Instant::now() + STARTUP;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = server.child.try_wait() {
            return false;
        }
        if TcpStream::connect_timeout(&server.addr, Duration::from_millis(200)).is_ok() {
            // Give the server a moment to forget the probe before the script's clients come.
            sleep(Duration::from_millis(20));
            return true;
        }
        sleep(Duration::from_millis(5));
    }
    false
}
