//! Tables: one per scenario as it finishes, and a markdown summary for README.md at the end.
//!
//! Every figure is the median over repetitions of that server. The ratios are the first server
//! listed ÷ the second (leaving the relay aside; the targets are held to this one), and the
//! first ÷ the relay when `--relay` runs, all from the same interleaved run.

use std::fmt::Write as _;

use crate::run::Outcome;
use crate::scenario::{fmt_of, key, Params, Scenario, Target};
use crate::stats::{format, median, today_utc};

/// Who runs, and whom the first server is compared with.
pub struct Lineup {
    pub names: Vec<String>,
    /// Index of the relay in `names`, if it runs.
    pub relay: Option<usize>,
    /// CPUs the load generator's threads can use at once (its pinning, or the machine's).
    pub client_cpus: usize,
}

impl Lineup {
    /// The server the first is compared with and held to targets against: the next one listed
    /// that is not the relay.
    fn base(&self) -> Option<usize> {
        (1..self.names.len()).find(|&i| Some(i) != self.relay)
    }

    /// The relay, unless it is the first server itself.
    fn relay_vs(&self) -> Option<usize> {
        self.relay.filter(|&r| r != 0)
    }
}

/// A load generator busier than this share of its CPUs may be measuring itself.
const CLIENT_BOUND: f64 = 0.9;

/// All repetitions of one scenario: `runs[server][rep]`.
pub struct ScenarioRuns {
    pub scenario: Scenario,
    pub runs: Vec<Vec<Outcome>>,
}

impl ScenarioRuns {
    fn median(&self, server: usize, k: &str) -> f64 {
        let v: Vec<f64> = self.runs[server].iter().map(|o| o.get(k)).collect();
        median(&v)
    }

    /// The first server ÷ server `other`.
    fn ratio(&self, other: Option<usize>, k: &str) -> f64 {
        match other {
            Some(b) => self.median(0, k) / self.median(b, k),
            None => f64::NAN,
        }
    }

    /// Runs whose checks passed, of those that ran.
    fn checks(&self, server: usize) -> (usize, usize) {
        let ran = self.runs[server].iter().filter(|o| o.skipped.is_none());
        let (mut ok, mut n) = (0, 0);
        for o in ran {
            n += 1;
            ok += usize::from(o.problems.is_empty());
        }
        (ok, n)
    }

    /// The load generator's CPU use over the measured window, as a share of the CPUs it may
    /// use, when this scenario measures one.
    fn client_busy(&self, server: usize, client_cpus: usize) -> f64 {
        let v: Vec<f64> = self.runs[server]
            .iter()
            .map(|o| o.get(key::CLIENT_CPU) / o.get(key::WINDOW_S))
            .collect();
        median(&v) / client_cpus.max(1) as f64
    }

    pub fn all_ok(&self) -> bool {
        self.runs.iter().flatten().all(|o| o.problems.is_empty())
    }
}

fn ratio_text(r: f64) -> String {
    if r.is_finite() {
        format!("{r:.2}×")
    } else {
        "n/a".into()
    }
}

fn checks_text(ok: usize, n: usize) -> String {
    match (ok, n) {
        (_, 0) => "n/a".into(),
        (ok, n) if ok == n => format!("{ok}/{n} ok"),
        (ok, n) => format!("{ok}/{n} ok ✗"),
    }
}

/// One line per finished run, printed as it happens.
pub fn run_line(s: Scenario, rep: usize, reps: usize, server: &str, o: &Outcome) -> String {
    if let Some(why) = &o.skipped {
        return format!(
            "  [{}] rep {}/{reps} {server:<10} n/a: {why}",
            s.name(),
            rep + 1
        );
    }
    let figures: Vec<String> = s
        .columns()
        .iter()
        .map(|k| format!("{k} {}", format(o.get(k), fmt_of(k))))
        .collect();
    let verdict = if o.problems.is_empty() {
        "check ok".to_string()
    } else {
        "CHECK FAILED".into()
    };
    let mut line = format!(
        "  [{}] rep {}/{reps} {server:<10} {} | {} | {verdict}",
        s.name(),
        rep + 1,
        figures.join(", "),
        o.tally
    );
    for p in &o.problems {
        let _ = write!(line, "\n      ✗ {p}");
    }
    line
}

/// The per-scenario table for a terminal.
pub fn table(sr: &ScenarioRuns, lineup: &Lineup, p: &Params) -> String {
    let names = &lineup.names;
    let s = sr.scenario;
    let cols = s.columns();
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut head = vec!["server".to_string()];
    head.extend(cols.iter().map(|c| c.to_string()));
    head.push("checks".into());
    rows.push(head);
    for (i, name) in names.iter().enumerate() {
        let mut r = vec![name.clone()];
        r.extend(cols.iter().map(|k| format(sr.median(i, k), fmt_of(k))));
        let (ok, n) = sr.checks(i);
        r.push(checks_text(ok, n));
        rows.push(r);
    }
    for other in [lineup.base(), lineup.relay_vs()].into_iter().flatten() {
        let mut r = vec![format!("{}÷{}", names[0], names[other])];
        r.extend(cols.iter().map(|k| {
            if *k == key::CLIENT_CPU {
                String::new()
            } else {
                ratio_text(sr.ratio(Some(other), k))
            }
        }));
        r.push(String::new());
        rows.push(r);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = format!("\n== {}: {}\n", s.name(), s.describe(p));
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, v)| {
                let pad = widths[c] - v.chars().count();
                if c == 0 {
                    format!("{v}{}", " ".repeat(pad))
                } else {
                    format!("{}{v}", " ".repeat(pad))
                }
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  "));
    }
    for (i, name) in names.iter().enumerate() {
        let busy = sr.client_busy(i, lineup.client_cpus);
        if busy >= CLIENT_BOUND {
            let _ = writeln!(
                out,
                "note: the load generator was busy {:.0} % of its {} CPU(s) in {name}'s runs: \
                 those figures may be its own limit rather than the server's",
                busy * 100.0,
                lineup.client_cpus
            );
        }
    }
    out
}

/// Facts about the run that the summary states.
pub struct Context {
    pub command: String,
    pub reps: usize,
    pub duration_s: f64,
    pub versions: Vec<String>,
    pub loadavg_start: String,
    /// How the load generator and the servers were pinned to CPUs, in words.
    pub pinning: String,
}

/// The markdown summary: headline figures with their targets.
pub fn markdown(all: &[ScenarioRuns], lineup: &Lineup, ctx: &Context, p: &Params) -> String {
    let names = &lineup.names;
    let (base, relay) = (lineup.base(), lineup.relay_vs());
    let mut out = String::new();
    let _ = writeln!(out, "### Load generator: {}\n", names.join(" vs "));
    let _ = writeln!(
        out,
        "- machine: {}, {} CPUs, Linux {}",
        cpu_model(),
        nproc(),
        kernel()
    );
    let _ = writeln!(out, "- date: {} (UTC)", today_utc());
    let _ = writeln!(
        out,
        "- load average (1 min) at start / end: {} / {} (other jobs share the machine)",
        ctx.loadavg_start,
        loadavg()
    );
    if !ctx.versions.is_empty() {
        let _ = writeln!(out, "- servers: {}", ctx.versions.join("; "));
    }
    let _ = writeln!(out, "- command: `{}`", ctx.command);
    let _ = writeln!(out, "- pinning: {}", ctx.pinning);
    if lineup.relay.is_some() {
        let _ = writeln!(
            out,
            "- relay: the limit of pub/sub forwarding on one core, not a server: this load \
             generator's own binary in `--relay-serve` mode, one thread, epoll, no command parsing \
             beyond PING, SUBSCRIBE and PUBLISH; `message` frames are a static header plus the \
             PUBLISH frames' own tails, copied once per channel per read, and each subscriber gets \
             one writev per read. Runs only where a plain SUBSCRIBE/PUBLISH load applies (n/a \
             elsewhere)"
        );
    }
    let _ = writeln!(
        out,
        "- method: every run starts the server fresh on 127.0.0.1; servers interleaved ({} …) over {} \
         repetitions of {} s; medians. Server CPU = utime+stime from /proc/PID/stat over the measured \
         window; RSS from /proc/PID/status. Every run checks delivered = Σ PUBLISH replies = \
         publishes × subscribed receivers.\n",
        names.join(", "),
        ctx.reps,
        ctx.duration_s
    );
    let mut head = vec!["scenario".to_string(), "figure".into()];
    head.extend(names.iter().cloned());
    let others: Vec<usize> = [base, relay].into_iter().flatten().collect();
    for &o in &others {
        head.push(format!("{} ÷ {}", names[0], names[o]));
    }
    head.extend(["target".into(), "met".into(), "checks".into()]);
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let numeric = 2..2 + names.len() + others.len();
    let align: Vec<&str> = (0..head.len())
        .map(|i| if numeric.contains(&i) { "--:" } else { "---" })
        .collect();
    let _ = writeln!(out, "|{}|", align.join("|"));
    for sr in all {
        let (ok, n) = (0..names.len())
            .map(|i| sr.checks(i))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        let checks = if ok == n {
            format!("{ok}/{n} ok")
        } else {
            format!("**{ok}/{n} ok**")
        };
        for h in sr.scenario.headlines() {
            let mut row = vec![sr.scenario.name(), h.key.to_string()];
            row.extend((0..names.len()).map(|i| format(sr.median(i, h.key), fmt_of(h.key))));
            row.extend(others.iter().map(|&o| ratio_text(sr.ratio(Some(o), h.key))));
            let first = sr.median(0, h.key);
            let mut targets = Vec::new();
            let mut met = Vec::new();
            if let Some(t) = h.target {
                targets.push(t.describe());
                met.push(verdict(t, sr.ratio(base, h.key), first));
            }
            if let (Some(t), Some(_)) = (h.vs_relay, relay) {
                targets.push(format!("{} relay", t.describe()));
                met.push(verdict(t, sr.ratio(relay, h.key), first));
            }
            row.extend([targets.join("; "), met.join("; "), checks.clone()]);
            let _ = writeln!(out, "| {} |", row.join(" | "));
        }
    }
    let busy: Vec<String> = all
        .iter()
        .filter_map(|sr| {
            let per: Vec<String> = (0..names.len())
                .filter_map(|i| {
                    let b = sr.client_busy(i, lineup.client_cpus);
                    b.is_finite().then(|| {
                        let flag = if b >= CLIENT_BOUND {
                            " (client-bound?)"
                        } else {
                            ""
                        };
                        format!("{} {:.0} %{flag}", names[i], b * 100.0)
                    })
                })
                .collect();
            (!per.is_empty()).then(|| format!("{}: {}", sr.scenario.name(), per.join(", ")))
        })
        .collect();
    if !busy.is_empty() {
        let _ = writeln!(
            out,
            "\nLoad generator CPU use over the measured window, as a share of its {} CPU(s) \
             (medians; near 100 % the figures are partly its own limit): {}.",
            lineup.client_cpus,
            busy.join("; ")
        );
    }
    let _ = writeln!(out, "\nScenarios:");
    for sr in all {
        let _ = writeln!(
            out,
            "- `{}`: {}",
            sr.scenario.name(),
            sr.scenario.describe(p)
        );
    }
    out
}

fn verdict(t: Target, ratio: f64, first: f64) -> String {
    let met = match t {
        Target::RatioAtLeast(r) => ratio.is_finite().then_some(ratio >= r),
        Target::RatioAtMost(r) => ratio.is_finite().then_some(ratio <= r),
        Target::AtMost(v) => first.is_finite().then_some(first <= v),
    };
    match met {
        Some(true) => "yes".into(),
        Some(false) => "**no**".into(),
        None => "n/a".into(),
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// CPUs the machine has online (not the ones this process is pinned to).
fn nproc() -> usize {
    std::fs::read_to_string("/proc/cpuinfo").map_or(0, |s| {
        s.lines().filter(|l| l.starts_with("processor")).count()
    })
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "?".into(), |s| s.trim().into())
}

/// The 1-minute load average, to judge how much other work competed for the cores.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(String::from))
        .unwrap_or_else(|| "?".into())
}
