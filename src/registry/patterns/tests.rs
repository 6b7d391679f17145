use super::*;
use crate::glob::stringmatch;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn matches<T: Clone>(idx: &PatternIndex<T>, channel: &[u8]) -> Vec<(Vec<u8>, T)> {
    let mut out = Vec::new();
    idx.for_each_match(channel, |p, v| out.push((p.to_vec(), v.clone())));
    out
}

fn sorted_patterns<T: Clone>(idx: &PatternIndex<T>, channel: &[u8]) -> Vec<Vec<u8>> {
    let mut got: Vec<Vec<u8>> = matches(idx, channel).into_iter().map(|(p, _)| p).collect();
    got.sort();
    got
}

fn add(idx: &mut PatternIndex<u32>, pattern: &[u8], value: u32) {
    *idx.get_or_insert_with(Bytes::copy_from_slice(pattern), || value) = value;
}

impl Trie {
    fn live_nodes(&self) -> usize {
        self.nodes.len() - self.free.len()
    }
}

impl<T> PatternIndex<T> {
    fn place_of(&self, pattern: &[u8]) -> Option<Place> {
        let id = *self.by_pattern.get(pattern)?;
        self.slot(id).map(|s| s.place)
    }

    /// Nothing allocated beyond a fresh index.
    fn holds_nothing(&self) -> bool {
        self.slots.capacity() == 0
            && self.free_slots.capacity() == 0
            && self.by_pattern.capacity() == 0
            && self.bigrams.buckets.capacity() == 0
            && self.bigrams.present.capacity() == 0
            && self.scan.is_empty()
            && self.scan.rest.capacity() == 0
            && [&self.head, &self.tail]
                .iter()
                .all(|t| t.nodes.len() == 1 && t.free.capacity() == 0 && t.nodes[0].is_unused())
            && self.cache.stripes.iter().all(|s| {
                let s = s.lock();
                s.entries.capacity() == 0 && s.tags.capacity() == 0 && s.seen_count == 0
            })
    }
}

#[test]
fn index_can_be_shared_between_publishers() {
    fn shared<T: Send + Sync>() {}
    shared::<PatternIndex<Vec<u64>>>();
}

#[test]
fn cache_stays_bounded_and_serves_repeated_channels() {
    let mut idx = PatternIndex::new();
    add(&mut idx, b"*:1", 1);
    add(&mut idx, b"c*", 2);
    for round in 0..3 {
        for i in 0..20_000u32 {
            let channel = format!("c{i}:{}", i % 3);
            let want = if i % 3 == 1 { 2 } else { 1 };
            assert_eq!(
                matches(&idx, channel.as_bytes()).len(),
                want,
                "round {round}"
            );
        }
    }
    let cached: usize = idx
        .cache
        .stripes
        .iter()
        .map(|s| s.lock().entries.iter().flatten().count())
        .sum();
    assert!(cached > 0 && cached <= CACHE_STRIPES * CACHE_SETS * CACHE_WAYS);
    let long = vec![b'c'; CACHE_MAX_CHANNEL + 1];
    assert_eq!(matches(&idx, &long).len(), 1);
}

#[test]
fn trie_nodes_fill_one_cache_line() {
    assert_eq!(std::mem::size_of::<Node>(), 64);
}

#[test]
fn entries_swap_remove_reports_the_moved_entry() {
    let mut e = Entries::default();
    assert_eq!((e.push(10), e.push(11), e.push(12)), (0, 1, 2));
    assert_eq!(e.swap_remove(0), Some(12));
    assert_eq!(e.iter().collect::<Vec<_>>(), vec![12, 11]);
    assert_eq!(e.swap_remove(1), None);
    assert_eq!(e.swap_remove(0), None);
    assert!(e.is_empty());
}

#[test]
fn get_or_insert_with_inserts_once_and_counts_distinct_patterns() {
    let mut idx = PatternIndex::new();
    assert!(idx.is_empty());
    *idx.get_or_insert_with(Bytes::from_static(b"news.*"), Vec::new) = vec![1];
    idx.get_or_insert_with(Bytes::from_static(b"news.*"), || panic!("already there"))
        .push(2);
    idx.get_or_insert_with(Bytes::from_static(b"*:1"), Vec::new)
        .push(3);
    assert_eq!(idx.len(), 2);
    assert_eq!(idx.get(b"news.*"), Some(&vec![1, 2]));
    assert_eq!(idx.get(b"news"), None);
    if let Some(v) = idx.get_mut(b"*:1") {
        v.push(4);
    }
    let mut all: Vec<_> = idx.iter().map(|(p, v)| (p.to_vec(), v.clone())).collect();
    all.sort();
    assert_eq!(
        all,
        vec![
            (b"*:1".to_vec(), vec![3, 4]),
            (b"news.*".to_vec(), vec![1, 2])
        ]
    );
    assert_eq!(idx.remove(b"news.*"), Some(vec![1, 2]));
    assert_eq!(idx.remove(b"news.*"), None);
    assert_eq!(idx.len(), 1);
    assert_eq!(idx.get(b"news.*"), None);
}

#[test]
fn only_distinct_pattern_changes_bump_the_generation() {
    let mut idx = PatternIndex::new();
    add(&mut idx, b"a*", 1);
    let g = idx.generation;
    add(&mut idx, b"a*", 2);
    if let Some(v) = idx.get_mut(b"a*") {
        *v = 3;
    }
    assert_eq!(idx.generation, g);
    assert_eq!(matches(&idx, b"ab"), vec![(b"a*".to_vec(), 3)]);
    // The cached lookup still reads the live value.
    if let Some(v) = idx.get_mut(b"a*") {
        *v = 4;
    }
    assert_eq!(matches(&idx, b"ab"), vec![(b"a*".to_vec(), 4)]);
    add(&mut idx, b"?b", 5);
    assert!(idx.generation > g);
    assert_eq!(
        sorted_patterns(&idx, b"ab"),
        vec![b"?b".to_vec(), b"a*".to_vec()]
    );
    idx.remove(b"a*");
    assert_eq!(sorted_patterns(&idx, b"ab"), vec![b"?b".to_vec()]);
}

#[test]
fn patterns_are_filed_by_shape() {
    let mut idx = PatternIndex::new();
    for p in [
        &b"news.1.*"[..],
        b"*:123",
        b"*foo*",
        b"*",
        b"*?*",
        b"h?llo.[a-z]*",
        b"",
        b"x",
    ] {
        add(&mut idx, p, 0);
    }
    let never = b"*a".repeat(MAX_NESTING_PLUS_TWO);
    add(&mut idx, &never, 0);
    assert!(matches!(idx.place_of(b"news.1.*"), Some(Place::Head(_))));
    assert!(matches!(
        idx.place_of(b"h?llo.[a-z]*"),
        Some(Place::Head(_))
    ));
    assert!(matches!(idx.place_of(b""), Some(Place::Head(ROOT))));
    assert!(matches!(idx.place_of(b"*:123"), Some(Place::Tail(_))));
    assert_eq!(
        idx.place_of(b"*foo*"),
        Some(Place::Bigram(bigram(b'f', b'o')))
    );
    assert_eq!(idx.place_of(b"*"), Some(Place::Scan));
    assert_eq!(idx.place_of(b"*?*"), Some(Place::Scan));
    assert_eq!(idx.place_of(&never), Some(Place::Never));
}

const MAX_NESTING_PLUS_TWO: usize = crate::glob::MAX_NESTING + 2;

#[test]
fn issue_shapes_match_only_their_channels() {
    let mut idx = PatternIndex::new();
    for i in 0..100u32 {
        add(&mut idx, format!("news.{i}.*").as_bytes(), i);
        add(&mut idx, format!("user:{i}:*").as_bytes(), i);
        add(&mut idx, format!("*:{i}").as_bytes(), i);
        add(&mut idx, format!("h?llo.{i}.[a-z]*").as_bytes(), i);
    }
    assert_eq!(
        sorted_patterns(&idx, b"news.7.sport"),
        vec![b"news.7.*".to_vec()]
    );
    assert_eq!(
        sorted_patterns(&idx, b"user:12:7"),
        vec![b"*:7".to_vec(), b"user:12:*".to_vec()]
    );
    assert_eq!(
        sorted_patterns(&idx, b"hallo.3.x"),
        vec![b"h?llo.3.[a-z]*".to_vec()]
    );
    assert!(sorted_patterns(&idx, b"hallo.3.X").is_empty());
    assert!(sorted_patterns(&idx, b"news.7").is_empty());
    assert!(sorted_patterns(&idx, b"").is_empty());
}

#[test]
fn empty_channel_matches_only_the_empty_pattern() {
    let mut idx = PatternIndex::new();
    add(&mut idx, b"*", 1);
    assert!(matches(&idx, b"").is_empty());
    add(&mut idx, b"", 2);
    assert_eq!(matches(&idx, b""), vec![(Vec::new(), 2)]);
    assert_eq!(matches(&idx, b"a"), vec![(b"*".to_vec(), 1)]);
}

#[test]
fn removing_a_pattern_prunes_its_trie_nodes() {
    let mut idx = PatternIndex::new();
    add(&mut idx, b"news.2.*", 0);
    add(&mut idx, b"*:2", 0);
    let (head, tail) = (idx.head.live_nodes(), idx.tail.live_nodes());
    add(&mut idx, b"news.1.*", 0);
    add(&mut idx, b"news.1xyz", 0);
    add(&mut idx, b"*:12345", 0);
    idx.remove(b"news.1.*");
    idx.remove(b"news.1xyz");
    idx.remove(b"*:12345");
    assert_eq!((idx.head.live_nodes(), idx.tail.live_nodes()), (head, tail));
}

#[test]
fn removing_the_last_pattern_leaves_no_memory_behind() {
    let mut idx = PatternIndex::new();
    let mut patterns: Vec<Vec<u8>> = (0..50u32)
        .flat_map(|i| {
            let scanned = "*?".repeat(i as usize % 3 + 1) + "*";
            [
                format!("news.{i}.*"),
                format!("*:{i}"),
                format!("*foo{i}*"),
                scanned,
                format!("x{i}"),
            ]
        })
        .map(String::into_bytes)
        .collect();
    patterns.sort();
    patterns.dedup();
    for (i, p) in patterns.iter().enumerate() {
        add(&mut idx, p, i as u32);
    }
    for channel in [&b"news.1.x"[..], b"a:1", b"xfoo1y", b"x3", b"zz"] {
        assert!(!matches(&idx, channel).is_empty());
    }
    for p in &patterns {
        assert!(idx.remove(p).is_some());
    }
    assert!(idx.is_empty());
    assert!(idx.holds_nothing());
    assert!(matches(&idx, b"news.1.x").is_empty());
}

#[test]
fn pathological_pattern_in_the_index_finishes() {
    let mut idx = PatternIndex::new();
    add(&mut idx, b"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", 0);
    let mut long = b"*a".repeat(512);
    long.push(b'b');
    add(&mut idx, &long, 1);
    assert!(matches(&idx, &vec![b'a'; 4096]).is_empty());
}

/// Pattern bytes biased towards metacharacters, brackets and escapes, over a small alphabet.
fn pattern() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => Just(&b"a"[..]),
        3 => Just(&b"b"[..]),
        4 => Just(&b"*"[..]),
        2 => Just(&b"?"[..]),
        1 => Just(&b"["[..]),
        1 => Just(&b"]"[..]),
        1 => Just(&b"^"[..]),
        1 => Just(&b"-"[..]),
        1 => Just(&b"\\"[..]),
        1 => Just(&b"\xff"[..]),
        1 => Just(&b"\x00"[..]),
        1 => Just(&b"[ab]"[..]),
        1 => Just(&b"[^a]"[..]),
        1 => Just(&b"[a-b]"[..]),
        1 => Just(&b"[b-a"[..]),
        1 => Just(&b"\\*"[..]),
        1 => Just(&b"ab"[..]),
    ];
    proptest::collection::vec(piece, 0..7).prop_map(|ps| ps.concat())
}

fn channel() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        6 => Just(b'a'),
        4 => Just(b'b'),
        1 => prop::sample::select(&b"-]^\\*[?\xff\x00"[..]),
    ];
    proptest::collection::vec(byte, 0..7)
}

#[derive(Debug, Clone)]
enum Op {
    Insert(Vec<u8>),
    Remove(usize),
    Publish(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => pattern().prop_map(Op::Insert),
        1 => any::<usize>().prop_map(Op::Remove),
        4 => any::<usize>().prop_map(Op::Publish),
    ]
}

fn check_publish(
    idx: &PatternIndex<u32>,
    model: &BTreeMap<Vec<u8>, u32>,
    channel: &[u8],
) -> Result<(), TestCaseError> {
    // Computed, computed and admitted to the cache, then served from it.
    let got = matches(idx, channel);
    for _ in 0..2 {
        prop_assert_eq!(&got, &matches(idx, channel), "same state, same order");
    }
    let mut got_sorted = got.clone();
    got_sorted.sort();
    let want: Vec<(Vec<u8>, u32)> = model
        .iter()
        .filter(|(p, _)| stringmatch(p, channel, false))
        .map(|(p, v)| (p.clone(), *v))
        .collect();
    prop_assert_eq!(
        got_sorted,
        want,
        "channel {:?}",
        channel.escape_ascii().to_string()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn for_each_match_is_exactly_the_matching_patterns(
        patterns in proptest::collection::vec(pattern(), 0..40),
        channels in proptest::collection::vec(channel(), 1..40),
    ) {
        let mut idx = PatternIndex::new();
        let mut model = BTreeMap::new();
        for (i, p) in patterns.iter().enumerate() {
            add(&mut idx, p, i as u32);
            model.insert(p.clone(), i as u32);
        }
        prop_assert_eq!(idx.len(), model.len());
        for c in &channels {
            check_publish(&idx, &model, c)?;
        }
    }

    #[test]
    fn interleaved_inserts_and_removes_keep_lookups_exact(
        channels in proptest::collection::vec(channel(), 1..6),
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let mut idx = PatternIndex::new();
        let mut model = BTreeMap::new();
        for (n, op) in ops.into_iter().enumerate() {
            match op {
                Op::Insert(p) => {
                    let v = *model.entry(p.clone()).or_insert(n as u32);
                    prop_assert_eq!(*idx.get_or_insert_with(Bytes::from(p), || n as u32), v);
                }
                Op::Remove(i) => {
                    let key = model.keys().nth(i % model.len().max(1)).cloned();
                    if let Some(key) = key {
                        prop_assert_eq!(idx.remove(&key), model.remove(&key));
                    }
                }
                Op::Publish(i) => check_publish(&idx, &model, &channels[i % channels.len()])?,
            }
            prop_assert_eq!(idx.len(), model.len());
        }
        for c in &channels {
            check_publish(&idx, &model, c)?;
        }
        let keys: Vec<Vec<u8>> = model.keys().cloned().collect();
        for k in keys {
            prop_assert_eq!(idx.remove(&k), model.remove(&k));
        }
        prop_assert!(idx.holds_nothing());
    }
}
