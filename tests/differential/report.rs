//! Formatting of failure reports: which script line, which client, and both servers' bytes,
//! escaped so that `\r\n` and binary bytes are visible.

use crate::resp::escape;
use crate::runner::Failure;
use crate::script::Step;

/// The longest reply excerpt printed in a report.
const SHOW: usize = 1200;
/// How many bytes from the first difference on are shown side by side.
const DIVERGE: usize = 32;

/// Formats two byte strings for a report, cut around their first difference.
pub fn mismatch(client: &str, la: &str, a: &[u8], lb: &str, b: &[u8], what: &str) -> String {
    let first = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let from = first.saturating_sub(SHOW / 2);
    let cut = |s: &[u8]| {
        let end = s.len().min(from + SHOW);
        let (pre, post) = (
            if from > 0 { "…" } else { "" },
            if end < s.len() { "…" } else { "" },
        );
        format!(
            "{pre}{}{post} ({} bytes)",
            escape(&s[from.min(s.len())..end]),
            s.len()
        )
    };
    let next = |s: &[u8]| escape(&s[first.min(s.len())..s.len().min(first + DIVERGE)]);
    let width = la.len().max(lb.len());
    format!(
        "client {client} {what}, first difference at byte {first}:\n      {la:<width$}: {}\n      {lb:<width$}: {}\n      from byte {first}: {la} sends {}, {lb} sends {}",
        cut(a),
        cut(b),
        next(a),
        next(b)
    )
}

/// Formats the failures of one script run.
pub fn report(script: &str, steps: &[Step], failures: &[Failure]) -> String {
    let mut out = format!("{} difference(s) in {script}:\n", failures.len());
    for f in failures.iter().take(40) {
        let step = &steps[f.step];
        let context: Vec<&Step> = steps[f.step.saturating_sub(3)..f.step].iter().collect();
        out.push_str(&format!("\n  {script}:{}\n", step.line));
        for c in context {
            out.push_str(&format!("      {:>4} | {}\n", c.line, c.text));
        }
        out.push_str(&format!(
            "    > {:>4} | {}\n    {}\n",
            step.line, step.text, f.message
        ));
    }
    if failures.len() > 40 {
        out.push_str(&format!("\n  … and {} more\n", failures.len() - 40));
    }
    out
}
