//! The pattern scenarios: which patterns are subscribed, which channels are published against
//! them, and how many patterns each channel matches (the expected PUBLISH reply).

use anyhow::Result;

use crate::publisher::{Pace, Plan};
use crate::run::{lag_budget, payload, publish_cmd, run_load, throughput_outcome, Load, Outcome};
use crate::scenario::{Params, PATTERNS_PER_CONN};
use crate::server::Running;
use crate::subscriber::SubSpec;

/// Which patterns the pattern scenarios subscribe (`--pattern-shape`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// A quarter of each shape below.
    Mixed,
    /// `news.<i>.*`, a literal head.
    News,
    /// `user:<i>:*`, a literal head.
    User,
    /// `*:<i>`, a literal tail.
    Suffix,
    /// `h?llo.<i>.[a-z]*`, wildcards in the head.
    Glob,
}

impl Shape {
    const SINGLE: [Shape; 4] = [Shape::News, Shape::User, Shape::Suffix, Shape::Glob];

    /// The patterns, for the scenario description.
    pub fn describe(self) -> &'static str {
        match self {
            Shape::Mixed => "news.<i>.* user:<i>:* *:<i> h?llo.<i>.[a-z]*",
            Shape::News => "news.<i>.*",
            Shape::User => "user:<i>:*",
            Shape::Suffix => "*:<i>",
            Shape::Glob => "h?llo.<i>.[a-z]*",
        }
    }

    /// Pattern `i` of the set; mixed, pattern `i` has shape `i % 4` with index `i / 4`.
    fn pattern(self, i: usize) -> String {
        match self {
            Shape::Mixed => Shape::SINGLE[i % 4].pattern(i / 4),
            Shape::News => format!("news.{i}.*"),
            Shape::User => format!("user:{i}:*"),
            Shape::Suffix => format!("*:{i}"),
            Shape::Glob => format!("h?llo.{i}.[a-z]*"),
        }
    }
}

/// The pattern set: `n` distinct patterns of `shape` (the glob shape carries the index too, so
/// that every pattern is distinct).
pub(crate) fn pattern_set(n: usize, shape: Shape) -> Vec<Vec<u8>> {
    (0..n).map(|i| shape.pattern(i).into_bytes()).collect()
}

/// Channels to publish against [`pattern_set`]`(n, shape)`, each with how many patterns it
/// matches. Mixed: `news.<k>.flash` (1), `user:<k>:<m>` (2: `user:<k>:*` and `*:<m>`),
/// `hallo.<k>.world` (1). One shape: one channel per pattern index, matching that pattern only
/// (`news.<k>.flash`, `user:<k>:inbox`, `event.<j>:<k>`, `hallo.<k>.world`).
/// With `miss`, channels `miss.<k>.x` that no pattern of any set matches.
fn pattern_channels(n: usize, shape: Shape, miss: bool) -> Vec<(Vec<u8>, i64)> {
    if miss {
        return (0..3000)
            .map(|j| (format!("miss.{j}.x").into_bytes(), 0))
            .collect();
    }
    if shape != Shape::Mixed {
        let hit = i64::from(n > 0);
        return (0..3000)
            .map(|j| {
                let k = if n > 0 { (j * 7919) % n } else { j };
                let c = match shape {
                    Shape::News => format!("news.{k}.flash"),
                    Shape::User => format!("user:{k}:inbox"),
                    Shape::Suffix => format!("event.{j}:{k}"),
                    _ => format!("hallo.{k}.world"),
                };
                (c.into_bytes(), hit)
            })
            .collect();
    }
    let count = |shape: usize| (n + 3 - shape) / 4;
    let pick = |q: usize, shape: usize| {
        if count(shape) > 0 {
            q % count(shape)
        } else {
            q
        }
    };
    let has = |shape: usize| i64::from(count(shape) > 0);
    (0..3000)
        .map(|j| {
            let q = j / 3;
            match j % 3 {
                0 => (format!("news.{}.flash", pick(q, 0)), has(0)),
                1 => (
                    format!("user:{}:{}", pick(q, 1), pick(q * 7 + 3, 2)),
                    has(1) + has(2),
                ),
                _ => (format!("hallo.{}.world", pick(q, 3)), has(3)),
            }
        })
        .map(|(c, e)| (c.into_bytes(), e))
        .collect()
}

pub(crate) fn pattern_subs(n: usize, shape: Shape) -> Vec<SubSpec> {
    pattern_set(n, shape)
        .chunks(PATTERNS_PER_CONN)
        .map(|c| SubSpec {
            names: c.to_vec(),
            patterns: true,
            buf_size: 64 * 1024,
        })
        .collect()
}

/// A publish costs time linear in the patterns for a matcher that scans them all (Redis 7.0
/// does), so a full window at 100k patterns would take seconds and run far past `--duration`.
/// The window shrinks with the pattern count, never below what keeps the server busy.
fn pattern_pace(p: &Params, n: usize) -> Pace {
    let window = if p.pattern_full_window {
        p.window
    } else {
        (p.window * 1000 / n.max(1) as u64).clamp(16, p.window)
    };
    Pace::Closed {
        window,
        batch: p.batch.min(window / 2).max(1),
    }
}

pub(crate) async fn patterns(srv: &Running, p: &Params, n: usize) -> Result<Outcome> {
    let body = payload(64);
    let mut channels = pattern_channels(n, p.pattern_shape, p.pattern_miss);
    let mut subs = pattern_subs(n, p.pattern_shape);
    if n == 0 && p.pattern_exact_baseline {
        // The no-pattern baseline with the same deliveries: every channel published has one
        // exact subscriber, as every channel matches one pattern in the one-shape sets.
        let names: Vec<Vec<u8>> = channels.iter().map(|(c, _)| c.clone()).collect();
        subs = names
            .chunks(PATTERNS_PER_CONN)
            .map(|c| SubSpec {
                names: c.to_vec(),
                patterns: false,
                buf_size: 64 * 1024,
            })
            .collect();
        for (_, e) in &mut channels {
            *e = 1;
        }
    }
    let conns = subs.len().max(1);
    let cmds: Vec<_> = channels
        .into_iter()
        .map(|(c, e)| (publish_cmd(&c, &body), e))
        .collect();
    let load = Load {
        subs,
        plans: vec![Plan::new(&cmds)],
        pace: pattern_pace(p, n),
        max_lag: Some(lag_budget(p, conns, 64)),
        latency_epoch: None,
    };
    Ok(throughput_outcome(run_load(srv, p, load).await?))
}

/// Redis glob for the shapes used here (`*`, `?`, `[a-z]`), to check [`pattern_channels`]'s
/// analytic match counts against.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, _) => s.is_empty(),
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(_), None) => false,
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(b'['), Some(&c)) => match p.iter().position(|&x| x == b']') {
            Some(end) if end == 4 && p[2] == b'-' => {
                (p[1]..=p[3]).contains(&c) && glob(&p[end + 1..], &s[1..])
            }
            _ => false,
        },
        (Some(a), Some(b)) => a == b && glob(&p[1..], &s[1..]),
    }
}

/// Every published channel matches exactly as many patterns as its expected PUBLISH reply says.
/// Runs at start-up (a bench built with `harness = false` runs no `#[test]`).
pub fn self_check() -> Result<()> {
    let shapes = <Shape as clap::ValueEnum>::value_variants();
    for (n, shape) in [0, 1, 2, 3, 5, 40, 1000]
        .into_iter()
        .flat_map(|n| shapes.iter().map(move |&s| (n, s)))
    {
        let pats = pattern_set(n, shape);
        for (ch, want) in pattern_channels(n, shape, false)
            .iter()
            .chain(pattern_channels(n, shape, true).iter())
            .step_by(7)
        {
            let got = pats.iter().filter(|p| glob(p, ch)).count() as i64;
            anyhow::ensure!(
                got == *want,
                "{n} patterns of shape {shape:?}: channel {} matches {got}, expected {want}",
                String::from_utf8_lossy(ch)
            );
        }
    }
    Ok(())
}
