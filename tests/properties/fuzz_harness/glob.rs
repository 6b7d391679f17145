//! The `glob` target: the compiled matcher and the pattern index against `stringmatch`, the
//! line-by-line port of Redis's `stringmatchlen`.
//!
//! Input: the first byte says how many patterns come first (1 to 8); then items, each a length
//! byte and that many bytes (the last one takes what is left), patterns first, then channels.
//! Checks, for every pattern and channel: `Compiled::is_match` answers what `stringmatch`
//! answers; the index returns exactly the patterns `stringmatch` accepts, each once, on a first
//! and on a repeated (cacheable) lookup, and again after every other pattern was removed; and
//! the case-insensitive matcher does not panic.

use std::collections::BTreeSet;

use bytes::Bytes;
use pubsubd::glob::{stringmatch, Compiled};
use pubsubd::registry::patterns::PatternIndex;

/// Splits the input into (patterns, channels).
pub fn items(data: &[u8]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let Some((&first, mut rest)) = data.split_first() else {
        return (Vec::new(), Vec::new());
    };
    let npatterns = usize::from(first % 8) + 1;
    let mut all = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        all.push(tail[..n].to_vec());
        rest = &tail[n..];
    }
    let channels = all.split_off(npatterns.min(all.len()));
    (all, channels)
}

fn lookup(idx: &PatternIndex<usize>, channel: &[u8]) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    idx.for_each_match(channel, |p, _| found.push(p.to_vec()));
    found
}

fn check_index(idx: &PatternIndex<usize>, patterns: &BTreeSet<Vec<u8>>, channels: &[Vec<u8>]) {
    for ch in channels {
        let expected: BTreeSet<Vec<u8>> = patterns
            .iter()
            .filter(|p| stringmatch(p, ch, false))
            .cloned()
            .collect();
        // The second lookup of a channel may be admitted to the cache, the third served from it.
        for _ in 0..3 {
            let got = lookup(idx, ch);
            let set: BTreeSet<Vec<u8>> = got.iter().cloned().collect();
            assert_eq!(set.len(), got.len(), "a pattern was returned twice");
            assert_eq!(set, expected, "index and stringmatch disagree on {ch:?}");
        }
    }
}

pub fn run(data: &[u8]) {
    let (patterns, channels) = items(data);
    for p in &patterns {
        let compiled = Compiled::new(p);
        for ch in &channels {
            assert_eq!(
                compiled.is_match(ch),
                stringmatch(p, ch, false),
                "Compiled and stringmatch disagree: pattern {p:?}, channel {ch:?}"
            );
            stringmatch(p, ch, true);
        }
    }
    let mut idx = PatternIndex::new();
    let mut present = BTreeSet::new();
    for (i, p) in patterns.iter().enumerate() {
        *idx.get_or_insert_with(Bytes::copy_from_slice(p), || 0) += i;
        present.insert(p.clone());
    }
    assert_eq!(idx.len(), present.len());
    check_index(&idx, &present, &channels);
    for p in patterns.iter().step_by(2) {
        let had = present.remove(p);
        assert_eq!(idx.remove(p).is_some(), had);
    }
    assert_eq!(idx.len(), present.len());
    check_index(&idx, &present, &channels);
}
