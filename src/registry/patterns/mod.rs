//! The pattern index: every distinct PSUBSCRIBE pattern with its value, and the lookup that
//! finds the patterns matching a published channel without testing every pattern.
//!
//! # Layout
//!
//! Patterns live in a slab (`slots` plus a free list) found through `by_pattern`, so insert and
//! remove cost O(pattern length) and never rebuild anything. Each pattern is tokenised once
//! ([`Compiled`]) and filed in exactly one place, chosen from its shape:
//!
//! - **head trie**: the tokens before the first `*` (`news.` in `news.*`), one edge per token;
//!   `?` and `[...]` are wildcard edges. A pattern without `*` (including `""`) is filed here
//!   as *closed*: it can only match a channel whose walk ends on its node.
//! - **tail trie**: the tokens after the last `*`, reversed (`:123` in `*:123`), walked from the
//!   channel's last byte.
//! - **bigram buckets**: patterns with under two literals at either end but two adjacent
//!   literals somewhere (`*foo*`), filed under the pair whose bucket was smallest when the
//!   pattern arrived. A channel looks up each distinct pair of adjacent bytes it contains.
//! - **scan list**: the rest (`*`, `*?*`), tested against every channel.
//! - nowhere: patterns that Redis's nesting cap makes unmatchable.
//!
//! Of head and tail, the side with more literal tokens wins. Every placement is a condition
//! that any matching channel meets (Redis's matcher only ever matches less than the plain
//! glob), so a lookup collects candidates from the places the channel reaches and confirms
//! them with the compiled matcher, which agrees with [`crate::glob::stringmatch`].
//! Candidates whose trie path proves the match (literals and `?` on one side of a single `*`,
//! as in `news.*` and `*:123`) skip that check.
//!
//! # Cache and locking
//!
//! The index has no lock of its own: the registry keeps it under a `parking_lot::RwLock`,
//! publishers call [`PatternIndex::for_each_match`] under the read guard, and PSUBSCRIBE /
//! PUNSUBSCRIBE mutate under the write guard. Lookups are memoised in a bounded cache
//! (channel → `Arc<[slot]>`) split into `CACHE_STRIPES` `parking_lot::Mutex`es, each held
//! only to compare a few keys and clone an `Arc`. An entry is valid only for the generation it
//! was computed in: adding or removing a distinct pattern bumps the generation, changing a
//! pattern's value does not. Stripes are set-associative and evict round-robin, bounding the
//! cache to `CACHE_STRIPES` × `CACHE_SETS` × `CACHE_WAYS` entries of at most
//! `CACHE_MAX_CHANNEL` bytes and `CACHE_MAX_MATCHES` slots. A channel is admitted on its
//! second lookup since the stripe's doorkeeper bitmap was last cleared, so a stream of unique
//! channels does not pay for allocating and evicting entries it never reuses.
//!
//! `for_each_match` calls back in an order that is deterministic for a given index state (head
//! trie, tail trie, bigrams, scan list), not insertion order. Removing the last pattern
//! releases every internal allocation.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::glob::{Compiled, Token};

/// Number of independently locked cache stripes.
const CACHE_STRIPES: usize = 16;
/// Sets per cache stripe.
const CACHE_SETS: usize = 64;
/// Entries per cache set.
const CACHE_WAYS: usize = 4;
/// Longer channels are looked up every time rather than cached.
const CACHE_MAX_CHANNEL: usize = 256;
/// Channels matching more patterns than this are not cached (the fan-out dominates anyway).
const CACHE_MAX_MATCHES: usize = 256;
/// Doorkeeper bits per stripe; the bitmap is cleared once a quarter of them are set.
const SEEN_BITS: usize = 4096;

type SlotId = u32;
type NodeId = u32;
const NONE: u32 = u32::MAX;
const ROOT: NodeId = 0;
/// Marks a trie entry whose pattern has no `*`: it only matches where the channel ends.
const CLOSED: u32 = 1 << 31;

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(NONE)
}

/// Where a pattern is filed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Head(NodeId),
    Tail(NodeId),
    Bigram(u16),
    Scan,
    Never,
}

struct Slot<T> {
    pattern: Bytes,
    value: T,
    compiled: Compiled,
    place: Place,
    /// Index in the [`Entries`] it is filed in.
    pos: u32,
    /// Reaching the trie node proves the match.
    proven: bool,
}

/// The slot ids filed in one place; the first is inline because most places hold one.
#[derive(Default)]
struct Entries {
    first: Option<SlotId>,
    rest: Vec<SlotId>,
}

impl Entries {
    fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    /// Appends `e` and returns its position.
    fn push(&mut self, e: SlotId) -> usize {
        if self.first.is_none() {
            self.first = Some(e);
            0
        } else {
            self.rest.push(e);
            self.rest.len()
        }
    }

    /// Removes position `pos`, moving the last entry there; returns the entry now at `pos`.
    fn swap_remove(&mut self, pos: usize) -> Option<SlotId> {
        if pos == 0 {
            self.first = self.rest.pop();
            return self.first;
        }
        if pos > self.rest.len() {
            return None;
        }
        self.rest.swap_remove(pos - 1);
        self.rest.get(pos - 1).copied()
    }

    fn iter(&self) -> impl Iterator<Item = SlotId> + '_ {
        self.first.into_iter().chain(self.rest.iter().copied())
    }
}

/// A trie node: one cache line, since a lookup in a large index misses the cache per node.
#[repr(align(64))]
struct Node {
    /// The first literal child, inline because most nodes have exactly one child.
    lit0: NodeId,
    lit0_byte: u8,
    /// The edge from the parent: a literal byte, or `None` for the wildcard edge.
    edge: Option<u8>,
    /// Child through `?` or a class.
    wild: NodeId,
    parent: NodeId,
    /// The other literal children, sorted by byte.
    more: Box<[(u8, NodeId)]>,
    /// Patterns whose fixed part ends here, [`CLOSED`] set on those without `*`.
    entries: Entries,
}

impl Node {
    fn new(parent: NodeId, edge: Option<u8>) -> Self {
        Node {
            lit0: NONE,
            lit0_byte: 0,
            edge,
            wild: NONE,
            parent,
            more: Box::new([]),
            entries: Entries::default(),
        }
    }

    fn is_unused(&self) -> bool {
        self.lit0 == NONE && self.wild == NONE && self.entries.is_empty()
    }

    fn child(&self, b: u8) -> NodeId {
        if self.lit0_byte == b && self.lit0 != NONE {
            return self.lit0;
        }
        // A linear scan beats a binary search on the few children a node has.
        self.more
            .iter()
            .find(|&&(c, _)| c == b)
            .map_or(NONE, |&(_, id)| id)
    }

    fn add_child(&mut self, b: u8, id: NodeId) {
        if self.lit0 == NONE {
            (self.lit0_byte, self.lit0) = (b, id);
        } else {
            let mut more = std::mem::take(&mut self.more).into_vec();
            let i = more.partition_point(|&(c, _)| c < b);
            more.insert(i, (b, id));
            self.more = more.into_boxed_slice();
        }
    }

    fn remove_child(&mut self, b: u8) {
        let mut more = std::mem::take(&mut self.more).into_vec();
        if self.lit0 != NONE && self.lit0_byte == b {
            (self.lit0_byte, self.lit0) = if more.is_empty() {
                (0, NONE)
            } else {
                more.remove(0)
            };
        } else {
            more.retain(|&(c, _)| c != b);
        }
        self.more = more.into_boxed_slice();
    }

    /// Entries of patterns that continue with `*`.
    fn open(&self, out: &mut Vec<SlotId>) {
        if !self.entries.is_empty() {
            out.extend(self.entries.iter().filter(|&e| e & CLOSED == 0));
        }
    }

    fn all(&self, out: &mut Vec<SlotId>) {
        out.extend(self.entries.iter().map(|e| e & !CLOSED));
    }
}

/// A trie over the fixed tokens at one end of the patterns; nodes in an arena with a free list.
struct Trie {
    nodes: Vec<Node>,
    free: Vec<NodeId>,
}

impl Trie {
    fn new() -> Self {
        Trie {
            nodes: vec![Node::new(NONE, None)],
            free: Vec::new(),
        }
    }

    fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    /// The node at the end of `path`, created as needed.
    fn insert<'a>(&mut self, path: impl Iterator<Item = &'a Token>) -> NodeId {
        let mut at = ROOT;
        for token in path {
            let edge = match *token {
                Token::Literal(b) => Some(b),
                _ => None,
            };
            let node = self.node(at);
            let existing = edge.map_or(node.wild, |b| node.child(b));
            at = if existing != NONE {
                existing
            } else {
                self.add_child(at, edge)
            };
        }
        at
    }

    fn add_child(&mut self, parent: NodeId, edge: Option<u8>) -> NodeId {
        let node = Node::new(parent, edge);
        let id = match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                id
            }
            None => {
                self.nodes.push(node);
                to_u32(self.nodes.len() - 1)
            }
        };
        let parent = &mut self.nodes[parent as usize];
        match edge {
            Some(b) => parent.add_child(b, id),
            None => parent.wild = id,
        }
        id
    }

    /// Frees `id` and its ancestors for as long as they hold nothing.
    fn prune(&mut self, mut id: NodeId) {
        while id != ROOT && self.node(id).is_unused() {
            let Node { parent, edge, .. } =
                std::mem::replace(&mut self.nodes[id as usize], Node::new(NONE, None));
            let p = &mut self.nodes[parent as usize];
            match edge {
                Some(b) => p.remove_child(b),
                None => p.wild = NONE,
            }
            self.free.push(id);
            id = parent;
        }
    }

    /// Appends the entries of every node the bytes of a channel reach: open ones on the way,
    /// all of them where the channel ends.
    fn collect(&self, mut bytes: impl Iterator<Item = u8>, out: &mut Vec<SlotId>) {
        // One active node until a wildcard edge and a literal edge both continue the walk.
        let mut at = ROOT;
        let (lit, wild) = loop {
            let node = self.node(at);
            let Some(b) = bytes.next() else {
                node.all(out);
                return;
            };
            node.open(out);
            match (node.child(b), node.wild) {
                (NONE, NONE) => return,
                (next, NONE) | (NONE, next) => at = next,
                (lit, wild) => break (lit, wild),
            }
        };
        let (mut active, mut next) = (vec![lit, wild], Vec::new());
        loop {
            let Some(b) = bytes.next() else {
                active.iter().for_each(|&id| self.node(id).all(out));
                return;
            };
            for &id in &active {
                let node = self.node(id);
                node.open(out);
                next.extend(
                    [node.child(b), node.wild]
                        .into_iter()
                        .filter(|&c| c != NONE),
                );
            }
            if next.is_empty() {
                return;
            }
            std::mem::swap(&mut active, &mut next);
            next.clear();
        }
    }
}

fn bigram(a: u8, b: u8) -> u16 {
    u16::from(a) << 8 | u16::from(b)
}

/// Patterns filed by a pair of adjacent literal bytes.
#[derive(Default)]
struct Bigrams {
    buckets: HashMap<u16, Entries>,
    /// One bit per pair that has a bucket (allocated with the first bucket), so that a lookup
    /// hashes only the pairs of the channel that can hit.
    present: Vec<u64>,
}

impl Bigrams {
    fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    fn has(&self, key: u16) -> bool {
        let (word, bit) = (usize::from(key) / 64, key % 64);
        self.present.get(word).is_some_and(|w| w & 1 << bit != 0)
    }

    fn len(&self, key: u16) -> usize {
        self.buckets.get(&key).map_or(0, Entries::len)
    }

    fn entries_mut(&mut self, key: u16) -> &mut Entries {
        if self.present.is_empty() {
            self.present = vec![0; (usize::from(u16::MAX) + 1) / 64];
        }
        self.present[usize::from(key) / 64] |= 1 << (key % 64);
        self.buckets.entry(key).or_default()
    }

    fn remove_if_empty(&mut self, key: u16) {
        if self.buckets.get(&key).is_some_and(Entries::is_empty) {
            self.buckets.remove(&key);
            if let Some(word) = self.present.get_mut(usize::from(key) / 64) {
                *word &= !(1 << (key % 64));
            }
        }
    }

    /// The patterns filed under any pair of adjacent bytes of `channel`, each bucket once.
    fn collect(&self, channel: &[u8], out: &mut Vec<SlotId>) {
        if self.is_empty() {
            return;
        }
        let mut keys: Vec<u16> = channel
            .windows(2)
            .map(|w| bigram(w[0], w[1]))
            .filter(|&k| self.has(k))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        for entries in keys.iter().filter_map(|k| self.buckets.get(k)) {
            out.extend(entries.iter());
        }
    }
}

/// A seeded multiply-rotate hash. It only spreads channels over cache sets, so a crafted
/// collision costs cache hits, never correctness or more than `CACHE_WAYS` comparisons.
fn channel_hash(seed: u64, bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(word))
            .wrapping_mul(K)
            .rotate_left(29);
    }
    let mut word = [0; 8];
    word[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h ^ u64::from_le_bytes(word)).wrapping_mul(K);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// A cached lookup result, valid for one generation.
struct CacheEntry {
    generation: u64,
    channel: Bytes,
    slots: Arc<[SlotId]>,
}

/// `CACHE_SETS` sets of `CACHE_WAYS` entries (allocated on first use) and a doorkeeper.
struct CacheStripe {
    /// The hash of each entry, so that a lookup reads one cache line per set.
    tags: Vec<u64>,
    entries: Vec<Option<CacheEntry>>,
    /// Round-robin victim when a set is full of current entries.
    next_victim: usize,
    /// One bit per recently looked-up channel hash.
    seen: [u64; SEEN_BITS / 64],
    seen_count: usize,
}

impl Default for CacheStripe {
    fn default() -> Self {
        CacheStripe {
            tags: Vec::new(),
            entries: Vec::new(),
            next_victim: 0,
            seen: [0; SEEN_BITS / 64],
            seen_count: 0,
        }
    }
}

impl CacheStripe {
    /// Whether `hash` was looked up since the doorkeeper was last cleared; records it.
    fn saw(&mut self, hash: u64) -> bool {
        let bit = (hash >> 20) as usize % SEEN_BITS;
        let (word, mask) = (bit / 64, 1 << (bit % 64));
        if self.seen[word] & mask != 0 {
            return true;
        }
        self.seen[word] |= mask;
        self.seen_count += 1;
        if self.seen_count >= SEEN_BITS / 4 {
            self.seen = [0; SEEN_BITS / 64];
            self.seen_count = 0;
        }
        false
    }
}

/// What the cache says about a channel.
enum Lookup {
    Hit(Arc<[SlotId]>),
    /// Not cached; `admit` says whether to store the result.
    Miss {
        admit: bool,
    },
}

struct MatchCache {
    stripes: Box<[Mutex<CacheStripe>]>,
    seed: u64,
}

impl MatchCache {
    fn new() -> Self {
        MatchCache {
            stripes: (0..CACHE_STRIPES).map(|_| Mutex::default()).collect(),
            seed: RandomState::new().hash_one(0u64),
        }
    }

    fn hash(&self, channel: &[u8]) -> u64 {
        channel_hash(self.seed, channel)
    }

    /// The stripe and the range of its entries that form the set for `hash`.
    fn set(hash: u64) -> (usize, Range<usize>) {
        let set = (hash >> 8) as usize % CACHE_SETS * CACHE_WAYS;
        (hash as usize % CACHE_STRIPES, set..set + CACHE_WAYS)
    }

    fn lookup(&self, hash: u64, channel: &[u8], generation: u64) -> Lookup {
        let (stripe, set) = Self::set(hash);
        let mut stripe = self.stripes[stripe].lock();
        let seen = stripe.saw(hash);
        for way in set.clone() {
            if stripe.tags.get(way) != Some(&hash) {
                continue;
            }
            if let Some(e) = &stripe.entries[way] {
                if e.generation == generation && e.channel == channel {
                    return Lookup::Hit(e.slots.clone());
                }
            }
        }
        Lookup::Miss { admit: seen }
    }

    fn store(&self, hash: u64, channel: &[u8], generation: u64, slots: Arc<[SlotId]>) {
        let entry = CacheEntry {
            generation,
            channel: Bytes::copy_from_slice(channel),
            slots,
        };
        let (stripe, set) = Self::set(hash);
        let evicted = {
            let mut stripe = self.stripes[stripe].lock();
            if stripe.entries.is_empty() {
                stripe.tags.resize(CACHE_SETS * CACHE_WAYS, 0);
                stripe.entries.resize_with(CACHE_SETS * CACHE_WAYS, || None);
            }
            // Reuse the channel's own entry (another publisher may have stored it meanwhile),
            // else an empty or outdated one, else the round-robin victim.
            let ways = stripe.tags[set.clone()]
                .iter()
                .zip(&stripe.entries[set.clone()]);
            let own = ways.clone().position(|(&tag, e)| {
                tag == hash && e.as_ref().is_some_and(|e| e.channel == channel)
            });
            let reuse = own.or_else(|| {
                ways.clone()
                    .position(|(_, e)| !matches!(e, Some(e) if e.generation == generation))
            });
            let way = set.start
                + reuse.unwrap_or_else(|| {
                    stripe.next_victim = (stripe.next_victim + 1) % CACHE_WAYS;
                    stripe.next_victim
                });
            stripe.tags[way] = hash;
            stripe.entries[way].replace(entry)
        };
        // Free the evicted entry outside the lock.
        drop(evicted);
    }

    fn clear(&mut self) {
        for stripe in self.stripes.iter_mut() {
            *stripe.get_mut() = CacheStripe::default();
        }
    }
}

/// Every distinct pattern with its value, indexed for matching published channels.
pub struct PatternIndex<T> {
    slots: Vec<Option<Slot<T>>>,
    free_slots: Vec<SlotId>,
    by_pattern: HashMap<Bytes, SlotId>,
    head: Trie,
    tail: Trie,
    bigrams: Bigrams,
    scan: Entries,
    /// Bumped whenever a distinct pattern is added or removed.
    generation: u64,
    cache: MatchCache,
}

impl<T> Default for PatternIndex<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> PatternIndex<T> {
    /// An empty index.
    pub fn new() -> Self {
        PatternIndex {
            slots: Vec::new(),
            free_slots: Vec::new(),
            by_pattern: HashMap::new(),
            head: Trie::new(),
            tail: Trie::new(),
            bigrams: Bigrams::default(),
            scan: Entries::default(),
            generation: 0,
            cache: MatchCache::new(),
        }
    }

    /// Number of distinct patterns.
    pub fn len(&self) -> usize {
        self.by_pattern.len()
    }

    /// Whether there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.by_pattern.is_empty()
    }

    fn slot(&self, id: SlotId) -> Option<&Slot<T>> {
        self.slots.get(id as usize).and_then(Option::as_ref)
    }

    fn slot_mut(&mut self, id: SlotId) -> Option<&mut Slot<T>> {
        self.slots.get_mut(id as usize).and_then(Option::as_mut)
    }

    /// The value of `pattern`, if present.
    pub fn get(&self, pattern: &[u8]) -> Option<&T> {
        let id = *self.by_pattern.get(pattern)?;
        self.slot(id).map(|s| &s.value)
    }

    /// The value of `pattern`, mutably. Changing it does not invalidate cached lookups.
    pub fn get_mut(&mut self, pattern: &[u8]) -> Option<&mut T> {
        let id = *self.by_pattern.get(pattern)?;
        self.slot_mut(id).map(|s| &mut s.value)
    }

    /// The value of `pattern`, inserting `f()` first if the pattern is new.
    pub fn get_or_insert_with(&mut self, pattern: Bytes, f: impl FnOnce() -> T) -> &mut T {
        let id = match self.by_pattern.get(&pattern) {
            Some(&id) => id,
            None => self.insert(pattern, f()),
        };
        match self.slot_mut(id) {
            Some(slot) => &mut slot.value,
            None => unreachable!("by_pattern points at a vacant slot"),
        }
    }

    fn insert(&mut self, pattern: Bytes, value: T) -> SlotId {
        let id = self.free_slots.pop().unwrap_or_else(|| {
            self.slots.push(None);
            to_u32(self.slots.len() - 1)
        });
        let compiled = Compiled::new(&pattern);
        let (place, closed, proven) = self.file(&compiled);
        let entry = if closed { id | CLOSED } else { id };
        let pos = self.entries_mut(place).map_or(0, |l| to_u32(l.push(entry)));
        self.by_pattern.insert(pattern.clone(), id);
        self.slots[id as usize] = Some(Slot {
            pattern,
            value,
            compiled,
            place,
            pos,
            proven,
        });
        self.generation += 1;
        id
    }

    /// Chooses where a pattern goes, creating trie nodes; returns (place, closed, proven).
    fn file(&mut self, compiled: &Compiled) -> (Place, bool, bool) {
        if !compiled.can_match() {
            return (Place::Never, false, false);
        }
        let tokens = compiled.tokens();
        let simple = |ts: &[Token]| {
            ts.iter()
                .all(|t| matches!(t, Token::Literal(_) | Token::Any))
        };
        let Some(first_star) = tokens.iter().position(|t| *t == Token::Star) else {
            return (
                Place::Head(self.head.insert(tokens.iter())),
                true,
                simple(tokens),
            );
        };
        let last_star = tokens
            .iter()
            .rposition(|t| *t == Token::Star)
            .unwrap_or(first_star);
        let (head, tail) = (&tokens[..first_star], &tokens[last_star + 1..]);
        let single_star = first_star == last_star;
        let literals = |ts: &[Token]| ts.iter().filter(|t| matches!(t, Token::Literal(_))).count();
        let (head_lits, tail_lits) = (literals(head), literals(tail));
        let use_head = if head_lits.max(tail_lits) >= 2 {
            head_lits >= tail_lits
        } else if let Some(key) = self.best_bigram(tokens) {
            return (Place::Bigram(key), false, false);
        } else if head.is_empty() && tail.is_empty() {
            return (Place::Scan, false, false);
        } else {
            tail.is_empty() || (!head.is_empty() && head_lits >= tail_lits)
        };
        if use_head {
            let proven = single_star && tail.is_empty() && simple(head);
            (Place::Head(self.head.insert(head.iter())), false, proven)
        } else {
            let proven = single_star && head.is_empty() && simple(tail);
            (
                Place::Tail(self.tail.insert(tail.iter().rev())),
                false,
                proven,
            )
        }
    }

    /// The pair of adjacent literal tokens with the smallest bucket.
    fn best_bigram(&self, tokens: &[Token]) -> Option<u16> {
        tokens
            .windows(2)
            .filter_map(|w| match w {
                [Token::Literal(a), Token::Literal(b)] => Some(bigram(*a, *b)),
                _ => None,
            })
            .min_by_key(|&k| self.bigrams.len(k))
    }

    fn entries_mut(&mut self, place: Place) -> Option<&mut Entries> {
        match place {
            Place::Head(n) => Some(&mut self.head.nodes[n as usize].entries),
            Place::Tail(n) => Some(&mut self.tail.nodes[n as usize].entries),
            Place::Bigram(k) => Some(self.bigrams.entries_mut(k)),
            Place::Scan => Some(&mut self.scan),
            Place::Never => None,
        }
    }

    /// Removes `pattern`, returning its value.
    pub fn remove(&mut self, pattern: &[u8]) -> Option<T> {
        let id = self.by_pattern.remove(pattern)?;
        let slot = self.slots.get_mut(id as usize)?.take()?;
        let moved = self
            .entries_mut(slot.place)
            .and_then(|l| l.swap_remove(slot.pos as usize));
        if let Some(m) = moved.and_then(|m| self.slot_mut(m & !CLOSED)) {
            m.pos = slot.pos;
        }
        match slot.place {
            Place::Head(n) => self.head.prune(n),
            Place::Tail(n) => self.tail.prune(n),
            Place::Bigram(k) => self.bigrams.remove_if_empty(k),
            _ => {}
        }
        self.free_slots.push(id);
        self.generation += 1;
        if self.by_pattern.is_empty() {
            self.release();
        }
        Some(slot.value)
    }

    /// Drops every allocation once the last pattern is gone.
    fn release(&mut self) {
        self.slots = Vec::new();
        self.free_slots = Vec::new();
        self.by_pattern = HashMap::new();
        self.head = Trie::new();
        self.tail = Trie::new();
        self.bigrams = Bigrams::default();
        self.scan = Entries::default();
        self.cache.clear();
    }

    /// Calls `f` once for each distinct pattern that matches `channel` (Redis semantics,
    /// case-sensitive), in an order that is deterministic for a given index state.
    pub fn for_each_match(&self, channel: &[u8], mut f: impl FnMut(&Bytes, &T)) {
        let mut emit = |id: SlotId| {
            if let Some(slot) = self.slot(id) {
                f(&slot.pattern, &slot.value);
            }
        };
        if self.is_empty() {
            return;
        }
        if channel.is_empty() {
            // Redis: a non-empty pattern never matches the empty string.
            if let Some(&id) = self.by_pattern.get(&b""[..]) {
                emit(id);
            }
            return;
        }
        let mut admit = None;
        if channel.len() <= CACHE_MAX_CHANNEL {
            let hash = self.cache.hash(channel);
            match self.cache.lookup(hash, channel, self.generation) {
                Lookup::Hit(slots) => {
                    slots.iter().for_each(|&id| emit(id));
                    return;
                }
                Lookup::Miss { admit: true } => admit = Some(hash),
                Lookup::Miss { admit: false } => {}
            }
        }
        let mut ids = Vec::new();
        self.candidates(channel, &mut ids);
        ids.retain(|&id| {
            self.slot(id)
                .is_some_and(|s| s.proven || s.compiled.is_match(channel))
        });
        if let Some(hash) = admit.filter(|_| ids.len() <= CACHE_MAX_MATCHES) {
            self.cache
                .store(hash, channel, self.generation, Arc::from(ids.as_slice()));
        }
        ids.into_iter().for_each(emit);
    }

    /// Every pattern filed where `channel` reaches, unverified.
    fn candidates(&self, channel: &[u8], out: &mut Vec<SlotId>) {
        self.head.collect(channel.iter().copied(), out);
        self.tail.collect(channel.iter().rev().copied(), out);
        self.bigrams.collect(channel, out);
        out.extend(self.scan.iter());
    }

    /// Every pattern and its value, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &T)> {
        self.slots.iter().flatten().map(|s| (&s.pattern, &s.value))
    }
}

#[cfg(test)]
mod tests;
