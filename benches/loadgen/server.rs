//! The servers under test: starting them on free loopback ports, stopping them by PID, and
//! reading their CPU time and memory from /proc.
//!
//! A server the load generator starts itself runs in a scratch directory (so a redis-server never
//! drops a dump.rdb into the caller's tree), logs there, and is killed by its PID when the
//! [`Running`] handle drops. Externally started servers (`--target`) are only measured. With
//! `--pin`, a started server's affinity is set between fork and exec, so the PID recorded is
//! still the server's own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::pin::CpuList;

/// How to get a server to test.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub name: String,
    pub launch: Launch,
    /// CPUs a started server is pinned to (`--pin`); external targets are left alone.
    pub cpus: Option<CpuList>,
}

#[derive(Debug, Clone)]
pub enum Launch {
    /// A binary started fresh for every measured run.
    Binary { path: PathBuf, flavour: Flavour },
    /// A server someone else started; `pid` enables CPU and RSS readings.
    External { addr: SocketAddr, pid: Option<u32> },
}

/// Which command-line dialect a binary gets. Both take redis.conf-style `--directive value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// redis-server: persistence is switched off so nothing touches the disk.
    Redis,
    /// pubsubd: has no persistence directives to switch off.
    Pubsubd,
    /// This load generator's own binary in `--relay-serve` mode (see `relay.rs`).
    Relay,
}

impl ServerSpec {
    /// Parses `NAME=host:port[:pid]` from `--target`.
    pub fn parse_target(s: &str) -> Result<Self> {
        let (name, rest) = s
            .split_once('=')
            .context("--target wants NAME=host:port[:pid]")?;
        let parts: Vec<&str> = rest.split(':').collect();
        let (addr, pid) = match parts.as_slice() {
            [h, p] => (format!("{h}:{p}"), None),
            [h, p, pid] => (format!("{h}:{p}"), Some(pid.parse().context("bad pid")?)),
            _ => bail!("--target wants NAME=host:port[:pid], got {s:?}"),
        };
        let addr: SocketAddr = addr
            .parse()
            .with_context(|| format!("bad address in {s:?}"))?;
        if !addr.ip().is_loopback() {
            bail!("--target {s:?}: only loopback addresses are allowed");
        }
        Ok(Self {
            name: name.to_string(),
            launch: Launch::External { addr, pid },
            cpus: None,
        })
    }

    /// A binary to start; the dialect follows the file name. The path is made absolute because
    /// servers run in a scratch directory, but symlinks stay: Debian's redis-server is a link to
    /// a multi-call binary that picks its role from the name it was started by.
    pub fn binary(name: &str, path: &str) -> Result<Self> {
        let path = std::path::absolute(path).with_context(|| format!("server binary {path:?}"))?;
        if !path.is_file() {
            bail!("server binary {} does not exist", path.display());
        }
        let flavour = if path
            .file_name()
            .is_some_and(|f| f.to_string_lossy().contains("redis"))
        {
            Flavour::Redis
        } else {
            Flavour::Pubsubd
        };
        Ok(Self {
            name: name.to_string(),
            launch: Launch::Binary { path, flavour },
            cpus: None,
        })
    }

    /// The relay: this very binary, started again in its serving mode.
    pub fn relay() -> Result<Self> {
        let path = std::env::current_exe().context("locating the load generator's binary")?;
        Ok(Self {
            name: "relay".to_string(),
            launch: Launch::Binary {
                path,
                flavour: Flavour::Relay,
            },
            cpus: None,
        })
    }

    pub fn is_external(&self) -> bool {
        matches!(self.launch, Launch::External { .. })
    }

    pub fn is_relay(&self) -> bool {
        matches!(
            self.launch,
            Launch::Binary {
                flavour: Flavour::Relay,
                ..
            }
        )
    }
}

/// Per-scenario server settings beyond port and bind address.
#[derive(Debug, Clone, Default)]
pub struct ServerOpts {
    /// Redis's `maxclients` default is 10000, one short of 10k subscribers plus a publisher.
    pub maxclients: Option<usize>,
    /// `client-output-buffer-limit pubsub …`, spelled as Redis's directive arguments.
    pub pubsub_obuf_limit: Option<[&'static str; 3]>,
}

/// A server being measured.
pub struct Running {
    pub addr: SocketAddr,
    pub pid: Option<u32>,
    child: Option<Child>,
    log: Option<PathBuf>,
}

impl Running {
    /// Starts (or, for an external target, checks) a server and waits until it answers PING.
    pub async fn start(spec: &ServerSpec, opts: &ServerOpts, workdir: &Path) -> Result<Self> {
        match &spec.launch {
            Launch::External { addr, pid } => {
                wait_ready(*addr, None, Duration::from_secs(5)).await?;
                Ok(Self {
                    addr: *addr,
                    pid: *pid,
                    child: None,
                    log: None,
                })
            }
            Launch::Binary { path, flavour } => {
                let mut last_err = anyhow!("no attempt");
                // A free port can be taken between probing and binding: retry a few times.
                for _ in 0..3 {
                    match start_binary(spec, path, *flavour, opts, workdir).await {
                        Ok(r) => return Ok(r),
                        Err(e) => last_err = e,
                    }
                }
                Err(last_err)
            }
        }
    }

    /// Server CPU seconds (user + system) so far, if its PID is known.
    pub fn cpu_seconds(&self) -> Option<f64> {
        self.pid.and_then(|p| cpu_seconds(&p.to_string()).ok())
    }

    /// Resident set size in KiB, if its PID is known.
    pub fn rss_kib(&self) -> Option<u64> {
        self.pid.and_then(|p| status_kib(p, "VmRSS:").ok())
    }

    /// Peak resident set size in KiB over the process's life (meaningful for fresh servers).
    pub fn hwm_kib(&self) -> Option<u64> {
        self.pid.and_then(|p| status_kib(p, "VmHWM:").ok())
    }

    /// Whether this server was started for this run, so its lifetime peak RSS is this run's.
    pub fn is_fresh(&self) -> bool {
        self.child.is_some()
    }

    /// The last lines of the server's log, for error reports.
    pub fn log_tail(&self) -> String {
        self.log.as_deref().map(log_tail).unwrap_or_default()
    }

    /// Kills a server this process started, by its PID, and reaps it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn start_binary(
    spec: &ServerSpec,
    path: &Path,
    flavour: Flavour,
    opts: &ServerOpts,
    workdir: &Path,
) -> Result<Running> {
    let port = free_port()?;
    let mut args: Vec<String> = match flavour {
        // The relay binds 127.0.0.1 and has no limits to configure.
        Flavour::Relay => vec!["--relay-serve".into(), "--port".into(), port.to_string()],
        Flavour::Redis | Flavour::Pubsubd => vec![
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
        ],
    };
    if flavour == Flavour::Redis {
        args.extend(["--save", "", "--appendonly", "no"].map(String::from));
    }
    if flavour != Flavour::Relay {
        if let Some(n) = opts.maxclients {
            args.extend(["--maxclients".to_string(), n.to_string()]);
        }
        if let Some([hard, soft, secs]) = opts.pubsub_obuf_limit {
            args.extend(
                ["--client-output-buffer-limit", "pubsub", hard, soft, secs].map(String::from),
            );
        }
    }
    let log = workdir.join(format!("{}-{port}.log", spec.name));
    let logf = std::fs::File::create(&log)?;
    let mut cmd = Command::new(path);
    cmd.args(&args)
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(logf.try_clone()?)
        .stderr(logf);
    if let Some(cpus) = &spec.cpus {
        cpus.pin_command(&mut cmd);
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {}", path.display()))?;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut running = Running {
        addr,
        pid: Some(child.id()),
        child: Some(child),
        log: Some(log),
    };
    let ready = wait_ready(addr, running.child.as_mut(), Duration::from_secs(10)).await;
    if let Err(e) = ready {
        let tail = running.log_tail();
        running.stop();
        bail!(
            "{} {} did not come up: {e:#}\n{tail}",
            path.display(),
            args.join(" ")
        );
    }
    Ok(running)
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Waits until `addr` answers `PING` with `+PONG`, noticing an early exit of `child`.
async fn wait_ready(
    addr: SocketAddr,
    mut child: Option<&mut Child>,
    limit: Duration,
) -> Result<()> {
    let t0 = Instant::now();
    loop {
        if let Some(c) = child.as_deref_mut() {
            if let Some(status) = c.try_wait()? {
                bail!("exited with {status}");
            }
        }
        if let Ok(Ok(mut s)) =
            tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await
        {
            let mut buf = [0u8; 64];
            let pong = async {
                s.write_all(b"PING\r\n").await?;
                let n = s.read(&mut buf).await?;
                anyhow::Ok(buf[..n].starts_with(b"+PONG"))
            };
            if let Ok(Ok(true)) = tokio::time::timeout(Duration::from_secs(2), pong).await {
                return Ok(());
            }
        }
        if t0.elapsed() > limit {
            bail!("no +PONG from {addr} within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Clock ticks per second for /proc/PID/stat times, from `getconf CLK_TCK` (100 if unknown).
fn clk_tck() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// utime + stime of `/proc/<pid>/stat` in seconds; `pid` may be `self`.
pub fn cpu_seconds(pid: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name is parenthesised and may contain spaces: fields count from the last ')'.
    let rest = &stat[stat.rfind(')').context("malformed stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name, state is field 3 of stat(5); utime and stime are fields 14 and 15.
    let utime: f64 = f.get(11).context("short stat")?.parse()?;
    let stime: f64 = f.get(12).context("short stat")?.parse()?;
    Ok((utime + stime) / clk_tck())
}

/// VmRSS of any process, in KiB.
pub fn rss_kib_of(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:").ok()
}

fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .context("no such field")?;
    Ok(line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?)
}

/// Soft and hard RLIMIT_NOFILE of this process, from /proc/self/limits.
pub fn nofile_limits() -> Result<(u64, u64)> {
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .context("no limit")?;
    let f: Vec<&str> = line["Max open files".len()..].split_whitespace().collect();
    let parse = |s: &str| {
        if s == "unlimited" {
            Ok(u64::MAX)
        } else {
            s.parse::<u64>()
        }
    };
    Ok((parse(f[0])?, parse(f[1])?))
}

/// Makes sure this process (and the servers it starts, which inherit it) may open `needed` files.
///
/// Without the libc crate there is no setrlimit: util-linux `prlimit --pid` does it from outside.
/// The soft limit can always be raised to the hard one; above that needs root.
pub fn ensure_nofile(needed: u64) -> Result<()> {
    let (soft, hard) = nofile_limits()?;
    if soft >= needed {
        return Ok(());
    }
    let target = needed.max(hard.min(1 << 20));
    let new_hard = hard.max(target);
    let pid = std::process::id().to_string();
    let _ = Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={target}:{new_hard}")])
        .stderr(Stdio::null())
        .status();
    let (soft, hard) = nofile_limits()?;
    if soft < needed {
        bail!(
            "this scenario needs {needed} open files but RLIMIT_NOFILE is {soft} (hard {hard}) and \
             prlimit could not raise it: run under `ulimit -n {needed}` (raising the hard limit needs root)"
        );
    }
    Ok(())
}
