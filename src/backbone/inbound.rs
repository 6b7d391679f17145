//! What a node does with received backbone messages before delivering them: drop the second
//! copy of a message that matched two of its NATS subscriptions (`Dedup`, shared by the
//! subscriptions' forwarders under one mutex, so each message's fate — forwarded, or dropped
//! for overload — is decided once, by its first copy), and join the chunks of a large one
//! (`Reassembly`, owned by the backbone task alone).

use std::collections::{HashMap, VecDeque};

use bytes::{Bytes, BytesMut};

/// Messages remembered per origin node: a copy that arrives more than this many messages after
/// a newer one from the same origin is dropped and counted, whether or not it was a duplicate.
pub const DEDUP_WINDOW: u64 = 65_536;
/// Origin nodes remembered; the least recently heard one is forgotten beyond this. A node that
/// restarts is a new origin.
pub const MAX_ORIGINS: usize = 256;

const WORDS: usize = (DEDUP_WINDOW / 64) as usize;

/// The verdict on one received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The first copy: deliver it.
    First,
    /// A copy already delivered.
    Duplicate,
    /// Older than the window: not delivered.
    TooOld,
}

struct Window {
    high: u64,
    bits: [u64; WORDS],
    last_heard: u64,
}

impl Window {
    fn bit(seq: u64) -> (usize, u64) {
        let i = seq % DEDUP_WINDOW;
        ((i / 64) as usize, 1 << (i % 64))
    }

    fn test(&self, seq: u64) -> Seen {
        if seq > self.high {
            return Seen::First;
        }
        if self.high - seq >= DEDUP_WINDOW {
            return Seen::TooOld;
        }
        let (w, m) = Self::bit(seq);
        if self.bits[w] & m != 0 {
            Seen::Duplicate
        } else {
            Seen::First
        }
    }

    fn mark(&mut self, seq: u64) {
        if seq > self.high {
            if seq - self.high >= DEDUP_WINDOW {
                self.bits = [0; WORDS];
            } else {
                for s in self.high + 1..seq {
                    let (w, m) = Self::bit(s);
                    self.bits[w] &= !m;
                }
            }
            self.high = seq;
        }
        let (w, m) = Self::bit(seq);
        self.bits[w] |= m;
    }
}

/// Per-origin sliding windows of the sequence numbers seen: first copy wins.
#[derive(Default)]
pub struct Dedup {
    origins: HashMap<u64, Window>,
    clock: u64,
}

impl Dedup {
    /// What `seq` from `origin` is, without recording it.
    pub fn peek(&self, origin: u64, seq: u64) -> Seen {
        self.origins
            .get(&origin)
            .map_or(Seen::First, |w| w.test(seq))
    }

    /// What `seq` from `origin` is; a first copy is recorded.
    pub fn check(&mut self, origin: u64, seq: u64) -> Seen {
        self.clock += 1;
        if !self.origins.contains_key(&origin) && self.origins.len() >= MAX_ORIGINS {
            if let Some(oldest) = self
                .origins
                .iter()
                .min_by_key(|(_, w)| w.last_heard)
                .map(|(o, _)| *o)
            {
                self.origins.remove(&oldest);
            }
        }
        let clock = self.clock;
        let w = self.origins.entry(origin).or_insert_with(|| Window {
            high: seq.saturating_sub(1),
            bits: [0; WORDS],
            last_heard: clock,
        });
        w.last_heard = clock;
        let seen = w.test(seq);
        if seen == Seen::First {
            w.mark(seq);
        }
        seen
    }
}

/// The result of adding one chunk.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    /// Every chunk is in: the whole data.
    Complete(Bytes),
    /// Waiting for more chunks.
    Partial,
    /// This chunk was already there.
    Repeated,
}

struct Partial {
    parts: Vec<Option<Bytes>>,
    have: usize,
    bytes: usize,
    channel_len: Option<u32>,
}

/// Chunks of messages not yet complete, at most `limit` bytes of them (`backbone-reassembly-
/// limit`); beyond it the oldest partial messages are dropped (and counted by the caller).
pub struct Reassembly {
    partial: HashMap<(u64, u64), Partial>,
    order: VecDeque<(u64, u64)>,
    bytes: usize,
    limit: usize,
}

impl Reassembly {
    pub fn new(limit: usize) -> Self {
        Reassembly {
            partial: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            limit,
        }
    }

    /// Bytes held in partial messages.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds chunk `index` of `count` of message (`origin`, `seq`). Returns what happened and
    /// how many partial messages were dropped to stay within the limit (a message that could
    /// never fit is itself dropped). The channel length (from chunk 0) is returned with the
    /// completed data.
    pub fn add(
        &mut self,
        key: (u64, u64),
        (index, count): (u32, u32),
        channel_len: Option<u32>,
        data: Bytes,
    ) -> (Added, Option<u32>, usize) {
        let mut dropped = 0;
        if !self.partial.contains_key(&key) {
            self.order.push_back(key);
            self.partial.insert(
                key,
                Partial {
                    parts: vec![None; count as usize],
                    have: 0,
                    bytes: 0,
                    channel_len: None,
                },
            );
        }
        let Some(p) = self.partial.get_mut(&key) else {
            return (Added::Partial, None, dropped);
        };
        let same_count = p.parts.len() == count as usize;
        let slot = match p.parts.get_mut(index as usize) {
            Some(s) if same_count => s,
            // A chunk that disagrees with the others about the count: ignore it.
            _ => return (Added::Repeated, None, dropped),
        };
        if slot.is_some() {
            return (Added::Repeated, None, dropped);
        }
        let n = data.len();
        *slot = Some(data);
        p.have += 1;
        p.bytes += n;
        if channel_len.is_some() {
            p.channel_len = channel_len;
        }
        self.bytes += n;
        if p.have == p.parts.len() {
            let p = self.partial.remove(&key).expect("present");
            self.order.retain(|k| *k != key);
            self.bytes -= p.bytes;
            let mut whole = BytesMut::with_capacity(p.bytes);
            for part in p.parts.into_iter().flatten() {
                whole.extend_from_slice(&part);
            }
            return (Added::Complete(whole.freeze()), p.channel_len, dropped);
        }
        while self.bytes > self.limit {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(p) = self.partial.remove(&oldest) {
                self.bytes -= p.bytes;
                dropped += 1;
            }
        }
        (Added::Partial, None, dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_copy_wins_and_old_copies_are_refused() {
        let mut d = Dedup::default();
        assert_eq!(d.check(1, 1), Seen::First);
        assert_eq!(d.check(1, 1), Seen::Duplicate);
        assert_eq!(d.check(2, 1), Seen::First);
        assert_eq!(d.check(1, 3), Seen::First);
        assert_eq!(d.check(1, 2), Seen::First);
        assert_eq!(d.check(1, 2), Seen::Duplicate);
        assert_eq!(d.check(1, 3 + DEDUP_WINDOW), Seen::First);
        assert_eq!(d.check(1, 3), Seen::TooOld);
        assert_eq!(d.check(1, 4), Seen::First);
        assert_eq!(d.peek(1, 4), Seen::Duplicate);
        assert_eq!(d.peek(1, 5), Seen::First);
        // A jump past the window forgets everything before it.
        assert_eq!(d.check(1, 10 * DEDUP_WINDOW), Seen::First);
        assert_eq!(d.check(1, 10 * DEDUP_WINDOW - 1), Seen::First);
    }

    #[test]
    fn origins_are_bounded() {
        let mut d = Dedup::default();
        for o in 0..(MAX_ORIGINS as u64 + 10) {
            d.check(o, 1);
        }
        assert_eq!(d.origins.len(), MAX_ORIGINS);
        // The most recent ones are kept.
        assert_eq!(d.peek(MAX_ORIGINS as u64 + 9, 1), Seen::Duplicate);
    }

    #[test]
    fn chunks_join_in_index_order_whatever_order_they_come_in() {
        let mut r = Reassembly::new(1 << 20);
        let k = (1, 5);
        assert_eq!(
            r.add(k, (2, 3), None, Bytes::from_static(b"c")).0,
            Added::Partial
        );
        assert_eq!(
            r.add(k, (0, 3), Some(1), Bytes::from_static(b"a")).0,
            Added::Partial
        );
        assert_eq!(
            r.add(k, (0, 3), Some(1), Bytes::from_static(b"a")).0,
            Added::Repeated
        );
        let (added, chl, dropped) = r.add(k, (1, 3), None, Bytes::from_static(b"b"));
        assert_eq!(added, Added::Complete(Bytes::from_static(b"abc")));
        assert_eq!((chl, dropped), (Some(1), 0));
        assert_eq!(r.bytes(), 0);
    }

    #[test]
    fn partial_messages_stay_within_the_limit() {
        let mut r = Reassembly::new(10);
        let chunk = Bytes::from_static(b"123456");
        assert_eq!(r.add((1, 1), (0, 2), None, chunk.clone()).2, 0);
        // The second message pushes the total over: the oldest goes.
        assert_eq!(r.add((1, 2), (0, 2), None, chunk.clone()).2, 1);
        assert_eq!(r.bytes(), 6);
        // A message that can never fit drops itself.
        assert_eq!(r.add((1, 3), (0, 3), None, Bytes::from(vec![0u8; 11])).2, 2);
        assert_eq!(r.bytes(), 0);
    }
}
