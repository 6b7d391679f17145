//! CPU pinning for per-core figures: `--pin SERVER_CPUS:LOADGEN_CPUS`.
//!
//! The load generator pins its own process before its runtime is built, so that the runtime's
//! default worker count (one per allowed CPU) follows the pinning; every server it starts gets
//! its affinity set between fork and exec, so the PID it records (for /proc CPU time and RSS)
//! is the server's own, and a server that sizes its thread pool by the CPUs it may use (pubsubd
//! does) sees only its share.
//!
//! `sched_setaffinity` has no safe wrapper in std, hence the `unsafe` blocks; the library's
//! `#![forbid(unsafe_code)]` does not reach benches.

use std::fmt;
use std::io;
use std::os::unix::process::CommandExt as _;
use std::process::Command;

use anyhow::{bail, Context as _, Result};

/// A set of CPU numbers, as taskset's `-c` spells them: `0`, `0,1`, `0-3,6`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(Vec<usize>);

/// CPUs the load generator and the servers it starts are pinned to.
#[derive(Debug, Clone)]
pub struct Pinning {
    pub servers: CpuList,
    pub loadgen: CpuList,
}

impl CpuList {
    pub fn parse(s: &str) -> Result<Self> {
        let mut cpus = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (a.trim(), b.trim()),
                None => (part, part),
            };
            let lo: usize = lo.parse().with_context(|| format!("bad CPU list {s:?}"))?;
            let hi: usize = hi.parse().with_context(|| format!("bad CPU list {s:?}"))?;
            if lo > hi || hi >= libc::CPU_SETSIZE as usize {
                bail!("bad CPU range {part:?} in {s:?}");
            }
            cpus.extend(lo..=hi);
        }
        cpus.sort_unstable();
        cpus.dedup();
        Ok(Self(cpus))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Makes `cmd`'s process start on these CPUs.
    pub fn pin_command(&self, cmd: &mut Command) {
        let set = self.cpu_set();
        // SAFETY: the closure runs in the forked child before exec and only makes one system
        // call, which is async-signal-safe; it allocates nothing and takes no lock.
        unsafe {
            cmd.pre_exec(move || set_affinity(&set));
        }
    }

    fn overlaps(&self, other: &CpuList) -> bool {
        self.0.iter().any(|c| other.0.contains(c))
    }

    fn cpu_set(&self) -> libc::cpu_set_t {
        // SAFETY: cpu_set_t is a plain bit array, all zeroes is the empty set, and every CPU
        // number was checked against CPU_SETSIZE when the list was parsed.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            for &c in &self.0 {
                libc::CPU_SET(c, &mut set);
            }
            set
        }
    }
}

impl fmt::Display for CpuList {
    /// Runs of consecutive CPUs as ranges, as taskset prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let mut i = 0;
        while i < self.0.len() {
            let mut j = i;
            while j + 1 < self.0.len() && self.0[j + 1] == self.0[j] + 1 {
                j += 1;
            }
            parts.push(if i == j {
                self.0[i].to_string()
            } else {
                format!("{}-{}", self.0[i], self.0[j])
            });
            i = j + 1;
        }
        f.write_str(&parts.join(","))
    }
}

impl Pinning {
    /// Parses `SERVER_CPUS:LOADGEN_CPUS` and checks both lists against the CPUs this process
    /// may run on.
    pub fn parse(s: &str) -> Result<Self> {
        let (srv, lg) = s
            .split_once(':')
            .context("--pin wants SERVER_CPUS:LOADGEN_CPUS, e.g. 0:1")?;
        let pin = Self {
            servers: CpuList::parse(srv)?,
            loadgen: CpuList::parse(lg)?,
        };
        let allowed = allowed_cpus()?;
        for (what, l) in [("server", &pin.servers), ("load generator", &pin.loadgen)] {
            if let Some(c) = l.0.iter().find(|c| !allowed.0.contains(c)) {
                bail!(
                    "--pin: {what} CPU {c} is not among the CPUs this process may use ({allowed})"
                );
            }
        }
        Ok(pin)
    }

    /// Pins the calling thread, and so every thread it creates afterwards: call it before any
    /// other thread exists.
    pub fn pin_self(&self) -> Result<()> {
        set_affinity(&self.loadgen.cpu_set()).context("pinning the load generator")
    }

    /// How the summary states it.
    pub fn describe(&self, loadgen_threads: usize) -> String {
        let cpus = |l: &CpuList| {
            if l.len() == 1 {
                format!("CPU {l}")
            } else {
                format!("CPUs {l}")
            }
        };
        let shared = if self.servers.overlaps(&self.loadgen) {
            " (the two share CPUs)"
        } else {
            ""
        };
        format!(
            "each server on {} (affinity set before exec), the load generator on {} \
             ({loadgen_threads} worker thread{}){shared}",
            cpus(&self.servers),
            cpus(&self.loadgen),
            if loadgen_threads == 1 { "" } else { "s" }
        )
    }
}

fn set_affinity(set: &libc::cpu_set_t) -> io::Result<()> {
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The CPUs the calling thread may run on now.
pub fn allowed_cpus() -> Result<CpuList> {
    // SAFETY: as in `cpu_set`; sched_getaffinity fills at most the size passed, and CPU_ISSET
    // reads bits below CPU_SETSIZE only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(io::Error::last_os_error()).context("sched_getaffinity");
        }
        let cpus = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect();
        Ok(CpuList(cpus))
    }
}

/// CPU lists parse as taskset reads them and print back in the same form.
pub fn self_check() -> Result<()> {
    for (input, want, shown) in [
        ("0", vec![0], "0"),
        ("0,1", vec![0, 1], "0-1"),
        ("0-1", vec![0, 1], "0-1"),
        ("3,0-1,1", vec![0, 1, 3], "0-1,3"),
        (" 2 - 4 ,7", vec![2, 3, 4, 7], "2-4,7"),
    ] {
        let l = CpuList::parse(input)?;
        anyhow::ensure!(l.0 == want, "CPU list {input:?} parsed as {:?}", l.0);
        anyhow::ensure!(l.to_string() == shown, "CPU list {input:?} shown as {l}");
    }
    for bad in ["", "a", "1-0", "-1", "0,,1", "99999"] {
        anyhow::ensure!(
            CpuList::parse(bad).is_err(),
            "CPU list {bad:?} should not parse"
        );
    }
    anyhow::ensure!(
        Pinning::parse("0").is_err(),
        "--pin without ':' should not parse"
    );
    Ok(())
}
