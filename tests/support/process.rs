//! Helpers for the fault and load tests: the built binary as a child process (its output in a
//! file, so a chatty server never blocks on a full pipe), its resident memory and CPU time from
//! /proc, the file descriptor limit, INFO fields, and waiting for a condition with a generous
//! bound.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::Raw;
use crate::ops_util::{self, Proc};

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
        let port = ops_util::free_port();
        let dir = ops_util::temp_dir(name);
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
        ops_util::wait_for_port(port).await;
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

/// INFO (all default sections) as a map.
pub async fn info(c: &mut Raw) -> BTreeMap<String, String> {
    ops_util::info_map(&ops_util::text(c, &["INFO"]).await)
}

/// One numeric INFO field.
pub async fn info_u64(c: &mut Raw, field: &str) -> u64 {
    let i = info(c).await;
    i.get(field)
        .unwrap_or_else(|| panic!("INFO has no {field}"))
        .parse()
        .unwrap()
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

/// Polls INFO until `connected_clients` is `n`.
pub async fn wait_connected(c: &mut Raw, n: u64) {
    let mut last = 0;
    let limit = Duration::from_secs(30);
    let start = Instant::now();
    loop {
        let now = info_u64(c, "connected_clients").await;
        if now == n {
            return;
        }
        if now != last {
            last = now;
        }
        assert!(
            start.elapsed() < limit,
            "connected_clients stayed {last}, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts PUBSUB shows no channel, shard channel or pattern left.
pub async fn assert_no_subscriptions(c: &mut Raw) {
    c.roundtrip(&["PUBSUB", "CHANNELS"], b"*0\r\n").await;
    c.roundtrip(&["PUBSUB", "SHARDCHANNELS"], b"*0\r\n").await;
    c.roundtrip(&["PUBSUB", "NUMPAT"], b":0\r\n").await;
}

/// The integer of a `:N` reply frame.
pub fn int_reply(f: &[u8]) -> i64 {
    assert_eq!(f[0], b':', "not an integer: {}", crate::common::show(f));
    std::str::from_utf8(&f[1..f.len() - 2])
        .unwrap()
        .parse()
        .unwrap()
}

/// The bulk strings of an array (or push) frame of bulk strings, e.g. a pub/sub message.
pub fn bulks(f: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = f.iter().position(|&b| b == b'\n').unwrap() + 1;
    while i < f.len() {
        let nl = i + f[i..].iter().position(|&b| b == b'\n').unwrap();
        if f[i] == b':' {
            out.push(f[i + 1..nl - 1].to_vec());
            i = nl + 1;
            continue;
        }
        let len: usize = std::str::from_utf8(&f[i + 1..nl - 1])
            .unwrap()
            .parse()
            .unwrap();
        out.push(f[nl + 1..nl + 1 + len].to_vec());
        i = nl + 1 + len + 2;
    }
    out
}

/// A `MiB` figure for printing.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
