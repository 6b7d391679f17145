//! The channel registry: who is subscribed to what, and the fan-out of PUBLISH.
//!
//! Two namespaces of exact channels (`Namespace::Global` for SUBSCRIBE/PUBLISH and
//! `Namespace::Shard` for SSUBSCRIBE/SPUBLISH, which never see each other's messages) and one
//! index of patterns (PSUBSCRIBE, global namespace only, as in Redis).
//!
//! ## Ordering
//! Each namespace's channel map is split into `SHARDS` mutex-protected maps chosen by the
//! channel's hash. A shard's mutex is also the channel's *order stripe*: PUBLISH holds it for the
//! whole fan-out (exact subscribers, then pattern subscribers), and SUBSCRIBE/UNSUBSCRIBE change
//! the map and queue their confirmation while holding it. So every subscriber of a channel sees
//! one order of its messages, no message overtakes a subscribe confirmation, and none follows an
//! unsubscribe confirmation. The stripe is taken even when the channel has no exact subscriber,
//! because pattern subscribers need the same order. (A separate stripe array beside a `DashMap`
//! would take two locks per publish for the same guarantee; one sharded map takes one.)
//!
//! PSUBSCRIBE/PUNSUBSCRIBE change the pattern index and queue their confirmation under its write
//! lock; publishers hold it for reading while they fan out to pattern subscribers.
//!
//! ## Lock order
//! channel shard (order stripe) → pattern index. Nothing here awaits, and the only call out of
//! the registry while a lock is held is an `Outbox` push (`push`, `push_own` for a client's
//! own confirmation, `push_held` for a message to the publisher itself), which never blocks.
//!
//! ## Hook
//! A scale-out layer (the backbone) is handed to `Registry::with_hook` and told, through the
//! `Hook` trait, when a channel gains its first or loses its last subscriber (per namespace),
//! when a pattern does, and of every local PUBLISH/SPUBLISH. It is called inside the stripe (or
//! the pattern index's write lock), so the transitions it sees are in the registry's order; it
//! must only enqueue, never block. Messages that come back from other nodes enter through
//! `Registry::deliver`, which fans out exactly as `publish` does but is not reported to the hook.
//! Without a hook, `publish` pays one predictable branch.
//!
//! Entries are removed with their last subscriber, so churning through unique channel names
//! leaves nothing behind. Names are copied when stored, never kept as slices of a connection's
//! read buffer.
//!
//! ## Layout
//! A delivery to a channel of 10,000 with one subscriber each is bound by memory latency, not
//! instructions: every pointer it follows to a line no recent delivery touched is a cache miss.
//! So a channel's entry holds its name (up to 24 bytes) and its subscriber (when it has only
//! one) in the table's own slot, and the name is hashed once for both the stripe and the slot:
//! finding a channel's subscriber touches the table and nothing else.

pub mod patterns;

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::HashTable;
use parking_lot::{Mutex, MutexGuard, RwLock};
use smallvec::SmallVec;

use crate::outbox::{Outbox, Pushed};
pub use crate::protocol::Namespace;
use crate::protocol::{encode, RespVersion};
use crate::stats::Stats;
use patterns::PatternIndex;

/// The publisher id of a PUBLISH no client runs (client ids start at 1).
pub const NO_PUBLISHER: u64 = 0;

/// Number of order stripes (channel map shards) per namespace.
const SHARDS: usize = 64;

/// What the registry reports to a scale-out layer (see the module doc). Every method is called
/// with a registry lock held: enqueue and return, never block or call back into the registry.
pub trait Hook: Send + Sync {
    /// `channel` in `ns` got its first subscriber (`subscribed`) or lost its last one.
    fn channel_interest(&self, ns: Namespace, channel: &[u8], subscribed: bool);
    /// `pattern` got its first subscriber or lost its last one.
    fn pattern_interest(&self, pattern: &[u8], subscribed: bool);
    /// A local client published `payload` on `channel`.
    fn published(&self, ns: Namespace, channel: &[u8], payload: &[u8]);
}

/// Subscribers of one pattern, in subscription order (the order Redis delivers in).
type Subscribers = Vec<Outbox>;

/// Subscribers of one channel, in subscription order. Most channels have one, kept in the
/// channel's entry itself: a delivery reads no separate list.
type ChannelSubscribers = SmallVec<[Outbox; 1]>;

/// A channel's name, kept in its entry when short (most are), so that a lookup compares it
/// without following a pointer to another allocation.
type Name = SmallVec<[u8; 24]>;

struct Entry {
    name: Name,
    subs: ChannelSubscribers,
}

type Table = HashTable<Entry>;

struct ChannelMap {
    shards: Box<[Mutex<Table>]>,
    hasher: RandomState,
    /// Channels with at least one subscriber (`pubsub_channels` in INFO).
    count: AtomicUsize,
}

impl ChannelMap {
    fn new() -> Self {
        ChannelMap {
            shards: (0..SHARDS).map(|_| Mutex::new(HashTable::new())).collect(),
            hasher: RandomState::new(),
            count: AtomicUsize::new(0),
        }
    }

    /// Locks `channel`'s stripe. The name is hashed once: the shard is chosen by bits of the
    /// hash the table does not use for its own placement (low bits pick a bucket, the top seven
    /// are its tag).
    fn lock<'a>(&'a self, channel: &'a [u8]) -> Stripe<'a> {
        let hash = self.hasher.hash_one(channel);
        let table = self.shards[(hash >> 40) as usize % SHARDS].lock();
        Stripe {
            table,
            hash,
            channel,
            hasher: &self.hasher,
        }
    }
}

/// A channel's stripe, locked (`ChannelMap::lock`), and its entry in it.
struct Stripe<'a> {
    table: MutexGuard<'a, Table>,
    hash: u64,
    channel: &'a [u8],
    hasher: &'a RandomState,
}

impl Stripe<'_> {
    fn subs(&self) -> Option<&ChannelSubscribers> {
        let channel = self.channel;
        self.table
            .find(self.hash, |e| e.name[..] == *channel)
            .map(|e| &e.subs)
    }

    fn subs_mut(&mut self) -> Option<&mut ChannelSubscribers> {
        let channel = self.channel;
        self.table
            .find_mut(self.hash, |e| e.name[..] == *channel)
            .map(|e| &mut e.subs)
    }

    /// Adds the channel's entry (it has none).
    fn insert(&mut self, subs: ChannelSubscribers) {
        let hasher = self.hasher;
        let entry = Entry {
            name: Name::from_slice(self.channel),
            subs,
        };
        self.table
            .insert_unique(self.hash, entry, |e| hasher.hash_one(&e.name[..]));
    }

    fn remove(&mut self) {
        let channel = self.channel;
        if let Ok(e) = self.table.find_entry(self.hash, |e| e.name[..] == *channel) {
            e.remove();
        }
    }
}

/// Frames for one PUBLISH, built on first use per protocol version and shared by every receiver.
struct PushFrames<'a> {
    kind: &'static [u8],
    channel: &'a [u8],
    payload: &'a [u8],
    msg: [Option<Bytes>; 2],
}

impl<'a> PushFrames<'a> {
    fn new(kind: &'static [u8], channel: &'a [u8], payload: &'a [u8]) -> Self {
        PushFrames {
            kind,
            channel,
            payload,
            msg: [None, None],
        }
    }

    fn message(&mut self, v: RespVersion) -> &Bytes {
        let (kind, channel, payload) = (self.kind, self.channel, self.payload);
        self.msg[v as usize].get_or_insert_with(|| encode::message(v, kind, channel, payload))
    }
}

/// All subscriptions of the server.
pub struct Registry {
    global: ChannelMap,
    shard: ChannelMap,
    patterns: RwLock<PatternIndex<Subscribers>>,
    stats: Arc<Stats>,
    hook: Option<Arc<dyn Hook>>,
}

impl Registry {
    pub fn new(stats: Arc<Stats>) -> Self {
        Registry {
            global: ChannelMap::new(),
            shard: ChannelMap::new(),
            patterns: RwLock::new(PatternIndex::new()),
            stats,
            hook: None,
        }
    }

    /// A registry that reports interest changes and local publishes to `hook`.
    pub fn with_hook(stats: Arc<Stats>, hook: Arc<dyn Hook>) -> Self {
        Registry {
            hook: Some(hook),
            ..Registry::new(stats)
        }
    }

    fn map(&self, ns: Namespace) -> &ChannelMap {
        match ns {
            Namespace::Global => &self.global,
            Namespace::Shard => &self.shard,
        }
    }

    /// Delivers `payload` to every subscriber of `channel` (and, in the global namespace, to every
    /// subscriber of a matching pattern) and returns Redis's receiver count: every matching
    /// subscription, so a client subscribed to the channel and to a matching pattern counts twice.
    ///
    /// Nothing is written here: outboxes that were given a first frame are appended to `wakes`,
    /// and the caller flushes them (`Outbox::flush`) once its batch of commands is done.
    pub fn publish(
        &self,
        ns: Namespace,
        channel: &[u8],
        payload: &[u8],
        wakes: &mut Vec<Outbox>,
    ) -> usize {
        self.publish_from(NO_PUBLISHER, ns, channel, payload, wakes)
    }

    /// `publish` by the client `publisher`: a message it delivers to itself is held until its
    /// command's reply is queued (`Outbox::push_held`), as Redis 7.2 writes it after the reply.
    pub fn publish_from(
        &self,
        publisher: u64,
        ns: Namespace,
        channel: &[u8],
        payload: &[u8],
        wakes: &mut Vec<Outbox>,
    ) -> usize {
        self.fan_out(publisher, ns, channel, payload, wakes, true)
    }

    /// Delivers several messages the client `publisher` published to one channel in a row (a
    /// pipeline of PUBLISH or SPUBLISH to one channel), as many `publish_from` calls would, in
    /// one pass over the subscribers: each receives the run's frames as one buffer, shared by
    /// all of them. One stripe is held throughout, so the receiver count, returned, is the same
    /// for every message. `None` when the publisher receives the channel's messages itself
    /// (each must follow its own command's reply) or a client receives them through more than
    /// one subscription (its copies of each message come together): nothing was delivered,
    /// and the caller publishes the messages one by one.
    pub fn publish_run(
        &self,
        publisher: u64,
        ns: Namespace,
        channel: &[u8],
        payloads: &[&[u8]],
        wakes: &mut Vec<Outbox>,
    ) -> Option<usize> {
        let map = self.map(ns);
        let stripe = map.lock(channel);
        let subs = stripe.subs();
        let mine = |subs: &[Outbox]| subs.iter().any(|s| s.id() == publisher);
        if subs.is_some_and(|s| mine(s)) {
            return None;
        }
        let patterns = match ns {
            Namespace::Global => Some(self.patterns.read()).filter(|p| !p.is_empty()),
            Namespace::Shard => None,
        };
        if let Some(p) = &patterns {
            // A client that receives the channel's messages more than once (subscribed to the
            // channel and a matching pattern, or to two matching patterns) gets each message's
            // copies one after the other, which one buffer per subscription cannot give.
            let mut ids: Vec<u64> = subs.map_or(Vec::new(), |s| s.iter().map(|o| o.id()).collect());
            let mut found = false;
            p.for_each_match(channel, |_, subs| {
                found |= mine(subs);
                ids.extend(subs.iter().map(|o| o.id()));
            });
            let n = ids.len();
            ids.sort_unstable();
            ids.dedup();
            if found || ids.len() != n {
                return None;
            }
        }
        let mut receivers = 0;
        if let Some(subs) = subs {
            let mut runs: [Option<Bytes>; 2] = [None, None];
            for s in subs {
                let v = s.resp();
                let run = runs[v as usize].get_or_insert_with(|| {
                    encode::message_run(v, ns.message_kind(), channel, payloads)
                });
                if s.push_shared_deferred(run, subs.len()) == Pushed::NeedsWake {
                    wakes.push(s.clone());
                }
            }
            receivers += subs.len();
        }
        if let Some(p) = &patterns {
            p.for_each_match(channel, |pattern, subs| {
                let mut runs: [Option<Bytes>; 2] = [None, None];
                for s in subs {
                    let v = s.resp();
                    let run = runs[v as usize]
                        .get_or_insert_with(|| encode::pmessage_run(v, pattern, channel, payloads));
                    if s.push_shared_deferred(run, subs.len()) == Pushed::NeedsWake {
                        wakes.push(s.clone());
                    }
                }
                receivers += subs.len();
            });
        }
        if let Some(h) = &self.hook {
            for p in payloads {
                h.published(ns, channel, p);
            }
        }
        drop(patterns);
        drop(stripe);
        self.stats
            .pubsub_messages_delivered
            .fetch_add((receivers * payloads.len()) as u64, Ordering::Relaxed);
        Some(receivers)
    }

    /// Delivers a message that came from another node: the same fan-out as `publish`, under the
    /// same stripe (so local subscribers see one order), without reporting it to the hook.
    pub fn deliver(
        &self,
        ns: Namespace,
        channel: &[u8],
        payload: &[u8],
        wakes: &mut Vec<Outbox>,
    ) -> usize {
        self.fan_out(NO_PUBLISHER, ns, channel, payload, wakes, false)
    }

    fn fan_out(
        &self,
        publisher: u64,
        ns: Namespace,
        channel: &[u8],
        payload: &[u8],
        wakes: &mut Vec<Outbox>,
        local: bool,
    ) -> usize {
        let map = self.map(ns);
        let mut frames = PushFrames::new(ns.message_kind(), channel, payload);
        let mut receivers = 0;
        let stripe = map.lock(channel);
        if let Some(subs) = stripe.subs() {
            for s in subs {
                let f = frames.message(s.resp());
                if s.id() == publisher {
                    s.push_held(f);
                } else if s.push_shared_deferred(f, subs.len()) == Pushed::NeedsWake {
                    wakes.push(s.clone());
                }
            }
            receivers += subs.len();
        }
        if ns == Namespace::Global {
            let patterns = self.patterns.read();
            if !patterns.is_empty() {
                patterns.for_each_match(channel, |pattern, subs| {
                    let mut pm: [Option<Bytes>; 2] = [None, None];
                    for s in subs {
                        let v = s.resp();
                        let f = pm[v as usize]
                            .get_or_insert_with(|| encode::pmessage(v, pattern, channel, payload));
                        if s.id() == publisher {
                            s.push_held(f);
                        } else if s.push_shared_deferred(f, subs.len()) == Pushed::NeedsWake {
                            wakes.push(s.clone());
                        }
                    }
                    receivers += subs.len();
                });
            }
        }
        if local {
            if let Some(h) = &self.hook {
                h.published(ns, channel, payload);
            }
        }
        drop(stripe);
        self.stats
            .pubsub_messages_delivered
            .fetch_add(receivers as u64, Ordering::Relaxed);
        receivers
    }

    /// Adds `who` to `channel` if `add`, then queues `confirm` to it, atomically with respect to
    /// publishers of that channel.
    pub fn subscribe(
        &self,
        ns: Namespace,
        channel: &[u8],
        who: &Outbox,
        add: bool,
        confirm: Option<Bytes>,
    ) {
        let map = self.map(ns);
        let mut stripe = map.lock(channel);
        if add {
            match stripe.subs_mut() {
                Some(subs) => subs.push(who.clone()),
                None => {
                    stripe.insert(smallvec::smallvec![who.clone()]);
                    map.count.fetch_add(1, Ordering::Relaxed);
                    if let Some(h) = &self.hook {
                        h.channel_interest(ns, channel, true);
                    }
                }
            }
        }
        if let Some(c) = confirm {
            who.push_own(c);
        }
    }

    /// Removes `who` from `channel` and queues `confirm` (if any) to it, atomically with respect
    /// to publishers of that channel. The entry goes with its last subscriber.
    pub fn unsubscribe(&self, ns: Namespace, channel: &[u8], who: &Outbox, confirm: Option<Bytes>) {
        let map = self.map(ns);
        if remove_subscriber(&mut map.lock(channel), who.id(), &map.count) {
            self.lost_channel(ns, channel);
        }
        if let Some(c) = confirm {
            who.push_own(c);
        }
    }

    /// Adds `who` to `pattern` if `add`, then queues `confirm` to it.
    pub fn psubscribe(&self, pattern: &[u8], who: &Outbox, add: bool, confirm: Option<Bytes>) {
        let mut idx = self.patterns.write();
        if add {
            let first = self.hook.is_some() && idx.get_mut(pattern).is_none();
            idx.get_or_insert_with(Bytes::copy_from_slice(pattern), Vec::new)
                .push(who.clone());
            if first {
                self.pattern_changed(pattern, true);
            }
        }
        if let Some(c) = confirm {
            who.push_own(c);
        }
    }

    /// Removes `who` from `pattern` and queues `confirm` (if any) to it.
    pub fn punsubscribe(&self, pattern: &[u8], who: &Outbox, confirm: Option<Bytes>) {
        let mut idx = self.patterns.write();
        let empty = match idx.get_mut(pattern) {
            Some(subs) => {
                if let Some(i) = subs.iter().position(|s| s.id() == who.id()) {
                    subs.remove(i);
                }
                subs.is_empty()
            }
            None => false,
        };
        if empty {
            idx.remove(pattern);
            self.pattern_changed(pattern, false);
        }
        if let Some(c) = confirm {
            who.push_own(c);
        }
    }

    /// Drops every subscription of a client that is going away (no confirmations).
    pub fn remove_client<'a>(
        &self,
        id: u64,
        channels: impl IntoIterator<Item = &'a Bytes>,
        shard_channels: impl IntoIterator<Item = &'a Bytes>,
        patterns: impl IntoIterator<Item = &'a Bytes>,
    ) {
        for (ns, list) in [
            (Namespace::Global, channels.into_iter().collect::<Vec<_>>()),
            (Namespace::Shard, shard_channels.into_iter().collect()),
        ] {
            let map = self.map(ns);
            for ch in list {
                if remove_subscriber(&mut map.lock(ch), id, &map.count) {
                    self.lost_channel(ns, ch);
                }
            }
        }
        let mut pats = patterns.into_iter().peekable();
        if pats.peek().is_some() {
            let mut idx = self.patterns.write();
            for p in pats {
                let empty = match idx.get_mut(p) {
                    Some(subs) => {
                        subs.retain(|s| s.id() != id);
                        subs.is_empty()
                    }
                    None => false,
                };
                if empty {
                    idx.remove(p);
                    self.pattern_changed(p, false);
                }
            }
        }
    }

    fn lost_channel(&self, ns: Namespace, channel: &[u8]) {
        if let Some(h) = &self.hook {
            h.channel_interest(ns, channel, false);
        }
    }

    fn pattern_changed(&self, pattern: &[u8], subscribed: bool) {
        if let Some(h) = &self.hook {
            h.pattern_interest(pattern, subscribed);
        }
    }

    /// Kills every subscriber among `ids` that holds a channel `channel_ok` refuses or a pattern
    /// `pattern_ok` refuses, and returns their ids. Used when ACL rules narrow a user's channels
    /// (Redis's `ACLKillPubsubClientsIfNeeded`); it walks every subscription, so it is for rare
    /// administrative changes, never the publish path. Takes each stripe, then the pattern index,
    /// one at a time.
    pub fn kill_subscribers(
        &self,
        ids: &std::collections::HashSet<u64>,
        channel_ok: impl Fn(&[u8]) -> bool,
        pattern_ok: impl Fn(&[u8]) -> bool,
    ) -> Vec<u64> {
        let mut killed = Vec::new();
        let mut kill = |o: &Outbox| {
            if ids.contains(&o.id()) && !killed.contains(&o.id()) {
                o.kill();
                killed.push(o.id());
            }
        };
        for map in [&self.global, &self.shard] {
            for shard in map.shards.iter() {
                for e in shard.lock().iter() {
                    if !channel_ok(&e.name) {
                        e.subs.iter().for_each(&mut kill);
                    }
                }
            }
        }
        for (p, subs) in self.patterns.read().iter() {
            if !pattern_ok(p) {
                subs.iter().for_each(&mut kill);
            }
        }
        killed
    }

    /// Drops every subscription of the clients `ids`, wherever they are, without confirmations:
    /// for clients another one closes, which Redis frees at once (a PUBLISH right after must not
    /// count them). Their own `remove_client` later finds nothing left. It walks every
    /// subscription, so it is for rare administrative changes, never the publish path; takes
    /// each stripe, then the pattern index, one at a time.
    pub fn drop_clients(&self, ids: &std::collections::HashSet<u64>) {
        if ids.is_empty() {
            return;
        }
        for (ns, map) in [
            (Namespace::Global, &self.global),
            (Namespace::Shard, &self.shard),
        ] {
            for shard in map.shards.iter() {
                let mut emptied = Vec::new();
                let mut shard = shard.lock();
                shard.retain(|e| {
                    e.subs.retain(|s| !ids.contains(&s.id()));
                    if e.subs.is_empty() {
                        emptied.push(std::mem::take(&mut e.name));
                    }
                    !e.subs.is_empty()
                });
                for ch in emptied {
                    map.count.fetch_sub(1, Ordering::Relaxed);
                    self.lost_channel(ns, &ch);
                }
            }
        }
        let mut idx = self.patterns.write();
        let held: Vec<Bytes> = idx
            .iter()
            .filter(|(_, subs)| subs.iter().any(|s| ids.contains(&s.id())))
            .map(|(p, _)| p.clone())
            .collect();
        for p in held {
            let empty = idx.get_mut(&p).is_some_and(|subs| {
                subs.retain(|s| !ids.contains(&s.id()));
                subs.is_empty()
            });
            if empty {
                idx.remove(&p);
                self.pattern_changed(&p, false);
            }
        }
    }

    /// Number of subscribers of `channel`, patterns not counted (PUBSUB NUMSUB).
    pub fn numsub(&self, ns: Namespace, channel: &[u8]) -> usize {
        self.map(ns)
            .lock(channel)
            .subs()
            .map_or(0, |subs| subs.len())
    }

    /// Distinct patterns with at least one subscriber (PUBSUB NUMPAT).
    pub fn numpat(&self) -> usize {
        self.patterns.read().len()
    }

    /// Channels with at least one subscriber.
    pub fn channel_count(&self, ns: Namespace) -> usize {
        self.map(ns).count.load(Ordering::Relaxed)
    }

    /// Active channels, optionally filtered by a glob (PUBSUB CHANNELS / SHARDCHANNELS).
    pub fn channels(&self, ns: Namespace, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let mut out = Vec::new();
        for shard in self.map(ns).shards.iter() {
            let shard = shard.lock();
            for e in shard.iter() {
                if pattern.is_none_or(|p| crate::glob::stringmatch(p, &e.name, false)) {
                    out.push(Bytes::copy_from_slice(&e.name));
                }
            }
        }
        out
    }

    /// Who is subscribed to what: every channel, shard channel and pattern with the ids of its
    /// subscribers in subscription order. For consistency checks in tests and fuzzing, never a
    /// serving path: it takes each stripe, then the pattern index, one at a time, so the picture
    /// is only consistent while nothing else changes the registry.
    pub fn snapshot(&self) -> Snapshot {
        let ids = |subs: &[Outbox]| subs.iter().map(Outbox::id).collect::<Vec<_>>();
        let map = |m: &ChannelMap| {
            let mut out = BTreeMap::new();
            for shard in m.shards.iter() {
                for e in shard.lock().iter() {
                    out.insert(Bytes::copy_from_slice(&e.name), ids(&e.subs));
                }
            }
            out
        };
        Snapshot {
            channels: map(&self.global),
            shard_channels: map(&self.shard),
            patterns: self
                .patterns
                .read()
                .iter()
                .map(|(p, subs)| (p.clone(), ids(subs)))
                .collect(),
        }
    }
}

/// A copy of the registry's subscriptions (`Registry::snapshot`): name → subscriber ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub channels: BTreeMap<Bytes, Vec<u64>>,
    pub shard_channels: BTreeMap<Bytes, Vec<u64>>,
    pub patterns: BTreeMap<Bytes, Vec<u64>>,
}

/// Removes subscriber `id` from the stripe's channel; true if that removed the channel's entry.
fn remove_subscriber(stripe: &mut Stripe<'_>, id: u64, count: &AtomicUsize) -> bool {
    let Some(subs) = stripe.subs_mut() else {
        return false;
    };
    if let Some(i) = subs.iter().position(|s| s.id() == id) {
        subs.remove(i);
        if subs.len() == 1 && subs.spilled() {
            // Back to one subscriber: back into the entry, and the list's allocation goes.
            subs.shrink_to_fit();
        }
    }
    if subs.is_empty() {
        stripe.remove();
        count.fetch_sub(1, Ordering::Relaxed);
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::OutputLimits;
    use std::collections::VecDeque;

    fn client(id: u64) -> Outbox {
        Outbox::new(
            id,
            Arc::new(OutputLimits::default()),
            Arc::new(Stats::default()),
        )
    }

    /// Everything queued to `o`, as its writer would send it.
    fn drain(o: &Outbox) -> Vec<u8> {
        let mut out = VecDeque::new();
        o.try_batch(&mut out);
        out.iter().flat_map(|f| f.iter().copied()).collect()
    }

    #[test]
    fn channel_and_pattern_count_twice() {
        let r = Registry::new(Arc::new(Stats::default()));
        let a = client(1);
        r.subscribe(Namespace::Global, b"news", &a, true, None);
        r.psubscribe(b"n*", &a, true, None);
        assert_eq!(
            r.publish(Namespace::Global, b"news", b"hi", &mut Vec::new()),
            2
        );
        assert_eq!(
            drain(&a),
            b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n\
              *4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        );
    }

    #[test]
    fn drop_clients_leaves_nothing_of_them_and_reports_lost_interest() {
        let rec = Arc::new(Recorder::default());
        let r = Registry::with_hook(Arc::new(Stats::default()), rec.clone());
        let (a, b) = (client(1), client(2));
        r.subscribe(Namespace::Global, b"c", &a, true, None);
        r.subscribe(Namespace::Global, b"c", &b, true, None);
        r.subscribe(Namespace::Global, b"only-a", &a, true, None);
        r.subscribe(Namespace::Shard, b"s", &a, true, None);
        r.psubscribe(b"p*", &a, true, None);
        rec.0.lock().clear();
        r.drop_clients(&std::collections::HashSet::from([1]));
        assert_eq!(r.numsub(Namespace::Global, b"c"), 1);
        assert_eq!(r.channel_count(Namespace::Global), 1);
        assert_eq!(r.channel_count(Namespace::Shard), 0);
        assert_eq!(r.numpat(), 0);
        assert_eq!(
            r.publish(Namespace::Global, b"pc", b"m", &mut Vec::new()),
            0
        );
        let mut seen = rec.0.lock().clone();
        seen.sort();
        assert_eq!(
            seen,
            [
                "Global only-a false",
                "Shard s false",
                "pattern p* false",
                "publish Global pc m"
            ]
        );
        // The client's own clean-up later finds nothing to remove.
        r.remove_client(1, [&Bytes::from_static(b"c")], [], []);
        assert_eq!(r.numsub(Namespace::Global, b"c"), 1);
    }

    #[test]
    fn names_of_any_length_and_subscriber_lists_that_grow_and_shrink() {
        let r = Registry::new(Arc::new(Stats::default()));
        let (a, b, c) = (client(1), client(2), client(3));
        let long = [b'x'; 100];
        for name in [&b"short"[..], &long[..], &[][..]] {
            r.subscribe(Namespace::Global, name, &a, true, None);
            r.subscribe(Namespace::Global, name, &b, true, None);
            r.subscribe(Namespace::Global, name, &c, true, None);
            r.unsubscribe(Namespace::Global, name, &b, None);
            r.unsubscribe(Namespace::Global, name, &a, None);
            // Back to one subscriber (kept in the entry again), who still gets the messages.
            assert_eq!(r.numsub(Namespace::Global, name), 1);
            assert_eq!(r.publish(Namespace::Global, name, b"m", &mut Vec::new()), 1);
            let got = drain(&c);
            assert!(got.ends_with(b"$1\r\nm\r\n"), "{got:?}");
            c.written(got.len());
            assert!(drain(&a).is_empty() && drain(&b).is_empty());
            r.unsubscribe(Namespace::Global, name, &c, None);
            assert_eq!(r.numsub(Namespace::Global, name), 0);
        }
        assert_eq!(r.channel_count(Namespace::Global), 0);
        assert!(r.channels(Namespace::Global, None).is_empty());
    }

    #[test]
    fn shard_namespace_is_separate() {
        let r = Registry::new(Arc::new(Stats::default()));
        let a = client(1);
        r.subscribe(Namespace::Shard, b"x", &a, true, None);
        assert_eq!(r.publish(Namespace::Global, b"x", b"m", &mut Vec::new()), 0);
        assert_eq!(r.publish(Namespace::Shard, b"x", b"m", &mut Vec::new()), 1);
        assert_eq!(r.channel_count(Namespace::Global), 0);
        assert_eq!(r.channel_count(Namespace::Shard), 1);
    }

    /// Records what the registry reports, in order.
    #[derive(Default)]
    struct Recorder(parking_lot::Mutex<Vec<String>>);

    impl Hook for Recorder {
        fn channel_interest(&self, ns: Namespace, channel: &[u8], subscribed: bool) {
            let c = String::from_utf8_lossy(channel);
            self.0.lock().push(format!("{ns:?} {c} {subscribed}"));
        }
        fn pattern_interest(&self, pattern: &[u8], subscribed: bool) {
            let p = String::from_utf8_lossy(pattern);
            self.0.lock().push(format!("pattern {p} {subscribed}"));
        }
        fn published(&self, ns: Namespace, channel: &[u8], payload: &[u8]) {
            let (c, p) = (
                String::from_utf8_lossy(channel),
                String::from_utf8_lossy(payload),
            );
            self.0.lock().push(format!("publish {ns:?} {c} {p}"));
        }
    }

    #[test]
    fn the_hook_sees_first_and_last_subscribers_and_local_publishes_only() {
        let rec = Arc::new(Recorder::default());
        let r = Registry::with_hook(Arc::new(Stats::default()), rec.clone());
        let (a, b) = (client(1), client(2));
        r.subscribe(Namespace::Global, b"c", &a, true, None);
        r.subscribe(Namespace::Global, b"c", &b, true, None);
        r.subscribe(Namespace::Shard, b"c", &a, true, None);
        r.psubscribe(b"p*", &a, true, None);
        r.psubscribe(b"p*", &b, true, None);
        // A repeated subscription of the same client adds nothing.
        r.psubscribe(b"p*", &b, false, None);
        assert_eq!(
            r.publish(Namespace::Global, b"c", b"local", &mut Vec::new()),
            2
        );
        assert_eq!(
            r.deliver(Namespace::Global, b"c", b"remote", &mut Vec::new()),
            2
        );
        r.unsubscribe(Namespace::Global, b"c", &a, None);
        r.punsubscribe(b"p*", &a, None);
        let c = Bytes::from_static(b"c");
        let p = Bytes::from_static(b"p*");
        r.remove_client(2, [&c], [], [&p]);
        r.remove_client(1, [], [&c], []);
        assert_eq!(
            *rec.0.lock(),
            [
                "Global c true",
                "Shard c true",
                "pattern p* true",
                "publish Global c local",
                "Global c false",
                "pattern p* false",
                "Shard c false",
            ]
        );
    }

    #[test]
    fn last_unsubscribe_removes_the_entry() {
        let r = Registry::new(Arc::new(Stats::default()));
        let (a, b) = (client(1), client(2));
        for o in [&a, &b] {
            r.subscribe(Namespace::Global, b"c", o, true, None);
            r.psubscribe(b"p*", o, true, None);
        }
        assert_eq!(r.numsub(Namespace::Global, b"c"), 2);
        assert_eq!(r.numpat(), 1);
        r.unsubscribe(Namespace::Global, b"c", &a, None);
        r.punsubscribe(b"p*", &a, None);
        let c = Bytes::from_static(b"c");
        let p = Bytes::from_static(b"p*");
        r.remove_client(2, [&c], [], [&p]);
        assert_eq!(r.channel_count(Namespace::Global), 0);
        assert!(r.channels(Namespace::Global, None).is_empty());
        assert_eq!(r.numpat(), 0);
        assert_eq!(r.snapshot(), Snapshot::default());
    }
}
