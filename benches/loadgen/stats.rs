//! Numbers: a log-linear latency histogram, medians, and how figures are printed.

/// Sub-buckets per power of two: quantiles come out within 1/128 (< 0.8 %) of the true value.
const SUB_BITS: u32 = 8;
const SUB: u64 = 1 << SUB_BITS;

/// Latency histogram in nanoseconds with bounded relative error and fixed memory (~115 KiB).
#[derive(Clone)]
pub struct Hist {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Hist {
    fn default() -> Self {
        Self {
            counts: vec![0; ((64 - SUB_BITS as usize) + 1) * SUB as usize],
            total: 0,
            max: 0,
        }
    }
}

impl Hist {
    fn index(v: u64) -> usize {
        if v < SUB {
            return v as usize;
        }
        let exp = 63 - v.leading_zeros(); // >= SUB_BITS
        let shift = exp - (SUB_BITS - 1);
        let mantissa = v >> shift; // in [SUB/2, SUB)
        ((shift as u64) * (SUB / 2) + mantissa) as usize
    }

    /// The smallest value that falls into bucket `i`.
    fn lower_bound(i: usize) -> u64 {
        let i = i as u64;
        if i < SUB {
            return i;
        }
        let shift = (i - SUB / 2) / (SUB / 2);
        let mantissa = i - shift * (SUB / 2);
        mantissa << shift
    }

    pub fn record(&mut self, v: u64) {
        self.counts[Self::index(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    pub fn merge(&mut self, other: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// Value at quantile `q` (0..=1), reported as its bucket's lower bound.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::lower_bound(i).min(self.max);
            }
        }
        self.max
    }
}

/// Median of the finite values; NaN when there are none.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// How a metric is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fmt {
    /// Events per second or counts, with k/M suffixes.
    Si,
    /// Seconds with two decimals.
    Secs,
    /// Mebibytes with one decimal (value in MiB).
    MiB,
    /// Kibibytes with two decimals (value in KiB).
    KiB,
    /// Microseconds (value in µs).
    Micros,
    /// Milliseconds (value in ms).
    Millis,
    /// A percentage with two decimals (value in %).
    Percent,
    /// A plain number.
    Plain,
}

pub fn format(v: f64, fmt: Fmt) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    match fmt {
        Fmt::Si => {
            let a = v.abs();
            if a >= 1e6 {
                format!("{:.2}M", v / 1e6)
            } else if a >= 1e4 {
                format!("{:.1}k", v / 1e3)
            } else {
                format!("{v:.0}")
            }
        }
        Fmt::Secs => format!("{v:.2}"),
        Fmt::MiB => format!("{v:.1}"),
        Fmt::KiB => format!("{v:.2}"),
        Fmt::Micros => format!("{v:.0}"),
        Fmt::Millis => format!("{v:.0}"),
        Fmt::Percent => format!("{v:.2}"),
        Fmt::Plain => format!("{v}"),
    }
}

/// Civil date (UTC) of now, as YYYY-MM-DD, without a date crate.
pub fn today_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // Howard Hinnant's days-to-civil algorithm.
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Quantiles within 1 %, bucket bounds that bracket their values, medians that skip gaps.
/// Runs at start-up (a bench built with `harness = false` runs no `#[test]`).
pub fn self_check() -> anyhow::Result<()> {
    let mut h = Hist::default();
    for v in 1..=100_000u64 {
        h.record(v * 1000);
    }
    for (q, want) in [(0.5, 50e6), (0.99, 99e6), (0.999, 99.9e6)] {
        let got = h.quantile(q) as f64;
        anyhow::ensure!(
            (got - want).abs() / want < 0.01,
            "histogram q{q}: {got} vs {want}"
        );
    }
    anyhow::ensure!(h.max() == 100_000_000, "histogram max");
    for v in [
        0u64,
        1,
        255,
        256,
        257,
        511,
        512,
        1000,
        123_456_789,
        u64::MAX / 3,
    ] {
        let i = Hist::index(v);
        anyhow::ensure!(
            Hist::lower_bound(i) <= v && Hist::lower_bound(i + 1) > v,
            "histogram bucket bounds around {v}"
        );
    }
    anyhow::ensure!(median(&[3.0, f64::NAN, 1.0, 2.0]) == 2.0, "median");
    anyhow::ensure!(median(&[]).is_nan(), "median of nothing");
    Ok(())
}
