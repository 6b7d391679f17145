//! The pattern scenarios: which patterns are subscribed, which channels are published against
//! them, and how many patterns each channel matches (the expected PUBLISH reply).

use anyhow::Result;

use crate::publisher::{Pace, Plan};
use crate::run::{lag_budget, payload, publish_cmd, run_load, throughput_outcome, Load, Outcome};
use crate::scenario::{Params, PATTERNS_PER_CONN};
use crate::server::Running;
use crate::subscriber::SubSpec;

/// The pattern set: `n` distinct patterns in four shapes, pattern `i` of shape `i % 4`.
/// The fourth shape carries the index too (`h?llo.<i>.[a-z]*`) so that every pattern is distinct.
pub(crate) fn pattern_set(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let j = i / 4;
            match i % 4 {
                0 => format!("news.{j}.*"),
                1 => format!("user:{j}:*"),
                2 => format!("*:{j}"),
                _ => format!("h?llo.{j}.[a-z]*"),
            }
            .into_bytes()
        })
        .collect()
}

/// Channels to publish against [`pattern_set`]`(n)`, each with how many patterns it matches:
/// `news.<k>.flash` (1), `user:<k>:<m>` (2: `user:<k>:*` and `*:<m>`), `hallo.<k>.world` (1).
/// With `miss`, channels `miss.<k>.x` that no pattern of the set matches.
fn pattern_channels(n: usize, miss: bool) -> Vec<(Vec<u8>, i64)> {
    if miss {
        return (0..3000)
            .map(|j| (format!("miss.{j}.x").into_bytes(), 0))
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

pub(crate) fn pattern_subs(n: usize) -> Vec<SubSpec> {
    pattern_set(n)
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
    let cmds: Vec<_> = pattern_channels(n, p.pattern_miss)
        .into_iter()
        .map(|(c, e)| (publish_cmd(&c, &body), e))
        .collect();
    let load = Load {
        subs: pattern_subs(n),
        plans: vec![Plan::new(&cmds)],
        pace: pattern_pace(p, n),
        max_lag: Some(lag_budget(p, n.div_ceil(PATTERNS_PER_CONN).max(1), 64)),
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
    for n in [0, 1, 2, 3, 5, 40, 1000] {
        let pats = pattern_set(n);
        for (ch, want) in pattern_channels(n, false)
            .iter()
            .chain(pattern_channels(n, true).iter())
            .step_by(7)
        {
            let got = pats.iter().filter(|p| glob(p, ch)).count() as i64;
            anyhow::ensure!(
                got == *want,
                "{n} patterns: channel {} matches {got}, expected {want}",
                String::from_utf8_lossy(ch)
            );
        }
    }
    Ok(())
}
