//! The built binary (and other servers) as child processes: free loopback ports, waiting for
//! a port or a condition, a fresh scratch directory, a process killed by PID when dropped, and
//! the fault and load tests' `Server` (output in a file, so a chatty server never blocks on a
//! full pipe) with its resident memory and CPU time from /proc and the file descriptor limit.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Ports handed out lately by this test binary, not handed out again: servers a test starts
/// together (and the differential fuzzer's thousands of sessions) could otherwise be given the
/// same port, and the probe of the one that failed to bind would reach the other.
const RECENT_PORTS: usize = 256;

/// Where ports are picked when the system's ephemeral range cannot be read (Linux's default
/// range starts at 32768).
const BELOW_EPHEMERAL: std::ops::Range<u16> = 20000..32768;

/// A port nothing listens on now (checked by binding it; the listener is closed before
/// returning), and not one this binary handed out lately. It is picked outside the system's
/// ephemeral range: a `bind` to port 0 (a server started beside it on "any port") and the local
/// end of an outgoing connection are only ever given ports in that range, so neither can take
/// this one between now and the moment the server it is meant for binds it.
pub fn free_port() -> u16 {
    static RECENT: std::sync::Mutex<std::collections::VecDeque<u16>> =
        std::sync::Mutex::new(std::collections::VecDeque::new());
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let range = outside_ephemeral();
    let span = (range.end - range.start) as u64;
    let mut recent = RECENT.lock().unwrap_or_else(|e| e.into_inner());
    if NEXT.load(Ordering::Relaxed) == 0 {
        // Start somewhere different in every process, so that test binaries run side by side
        // do not walk the same sequence.
        let seed = std::process::id() as u64 * 7919
            + std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos() as u64);
        NEXT.store(seed | 1, Ordering::Relaxed);
    }
    loop {
        // A stride coprime with any span that is not a multiple of 7,919 visits every port.
        let n = NEXT.fetch_add(7919, Ordering::Relaxed);
        let port = range.start + (n % span) as u16;
        if recent.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            if recent.len() == RECENT_PORTS {
                recent.pop_front();
            }
            recent.push_back(port);
            return port;
        }
    }
}

/// The ports below the system's ephemeral range (from 10000), or `BELOW_EPHEMERAL`.
fn outside_ephemeral() -> std::ops::Range<u16> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok());
    match low {
        Some(low) if low > 11000 => 10000..low,
        _ => BELOW_EPHEMERAL,
    }
}

/// Whether something accepts connections on the loopback `port`.
pub async fn port_open(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
}

/// Waits until something listens on the loopback `port` (at most about 6 s).
pub async fn wait_for_port(port: u16) {
    for _ in 0..300 {
        if port_open(port).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("nothing listens on {port}");
}

/// Polls `check` every 20 ms until it returns true; panics with `what` after `limit`.
/// Returns how long it took.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fresh, empty directory under the system temp dir, named after `name`, this process and a
/// sequence number, so that tests sharing a binary never share a directory.
pub fn temp_dir(name: &str) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("pubsubd-{name}-{}-{seq}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A child process, killed and reaped when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the pubsubd binary with `args`, its standard error piped (`wait_exit` returns it).
pub fn spawn(args: &[&str]) -> Proc {
    Proc(
        Command::new(env!("CARGO_BIN_EXE_pubsubd"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pubsubd"),
    )
}

/// Waits for the process to exit (at most 10 s) and returns its status and standard error.
pub async fn wait_exit(mut p: Proc) -> (std::process::ExitStatus, String) {
    tokio::task::spawn_blocking(move || {
        for _ in 0..1000 {
            if let Some(status) = p.0.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = p.0.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                return (status, err);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("pubsubd did not exit");
    })
    .await
    .unwrap()
}

/// Sends `sig` (a name such as `TERM`) to the process with `kill`.
pub fn signal(p: &Proc, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &p.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig}");
}

/// A pubsubd binary on a free loopback port, killed when dropped.
pub struct Server {
    pub proc: Proc,
    pub port: u16,
    pub out: PathBuf,
}

impl Server {
    /// Starts the binary with `args` (after `--port` and `--save ""`) and waits until it listens.
    pub async fn start(name: &str, args: &[&str]) -> Server {
        Self::start_with(name, None, args).await
    }

    /// As `start`, under `prlimit --nofile=N:N` when `nofile` is given.
    pub async fn start_with(name: &str, nofile: Option<u64>, args: &[&str]) -> Server {
        let port = free_port();
        let dir = temp_dir(name);
        let out = dir.join("pubsubd.out");
        let file = std::fs::File::create(&out).unwrap();
        let bin = env!("CARGO_BIN_EXE_pubsubd");
        let mut cmd = match nofile {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg("--").arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.args(["--port", &port.to_string(), "--save", ""])
            .args(args)
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file));
        let proc = Proc(cmd.spawn().expect("spawn pubsubd"));
        wait_for_port(port).await;
        Server { proc, port, out }
    }

    pub fn addr(&self) -> SocketAddr {
        format!("127.0.0.1:{}", self.port).parse().unwrap()
    }

    pub fn pid(&self) -> u32 {
        self.proc.0.id()
    }

    /// Everything the server printed so far (log lines, and a panic if there was one).
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Resident set size in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS")
    }

    /// User plus system CPU time consumed so far, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command name, which is in parentheses and may contain spaces.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
        let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
        ticks as f64 / clock_ticks_per_second()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.proc.0.try_wait().unwrap().is_none()
    }
}

fn clock_ticks_per_second() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output();
    out.ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// A `/proc/PID/status` field given in kB.
pub fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Raises this process's RLIMIT_NOFILE soft limit to its hard limit (children inherit it) and
/// returns the new soft limit.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    lim.rlim_cur
}

/// A `MiB` figure for printing.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
