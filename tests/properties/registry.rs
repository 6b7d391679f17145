//! The registry against a naive model. Random sequences of SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE,
//! PUNSUBSCRIBE, SSUBSCRIBE, SUNSUBSCRIBE, PUBLISH, SPUBLISH and disconnects, over a few clients
//! (one of them RESP3) and a small alphabet of channels and patterns so that they collide, run
//! through the real command dispatch (`fuzz_harness::world`) and on a model of `BTreeMap`s
//! that matches patterns with the reference glob. After every step they must agree on:
//! the confirmations and their counts, PUBLISH's receiver count and the frames each client got,
//! PUBSUB CHANNELS / NUMSUB / NUMPAT / SHARDCHANNELS / SHARDNUMSUB, and the registry holding no
//! entry without a subscriber (including once every client has gone).
//!
//! Case counts are modest so `cargo test` stays fast; set `PROPTEST_CASES` for a longer run.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use proptest::prelude::*;
use pubsubd::glob::stringmatch;
use pubsubd::registry::Namespace;

use crate::fuzz_harness::resp::Value;
use crate::fuzz_harness::world::World;
use crate::support::prop::config;

/// Subscribing clients; slot `SUBSCRIBERS` is the publisher, which never subscribes.
const SUBSCRIBERS: usize = 3;
const PUBLISHER: usize = SUBSCRIBERS;
/// Slot 1 speaks RESP3, the others RESP2.
const RESP3_SLOT: usize = 1;

const CHANNELS: &[&[u8]] = &[b"a", b"b", b"ab", b"a.b", b"", b"*"];
const PATTERNS: &[&[u8]] = &[b"a*", b"*", b"?", b"a?", b"[ab]*", b"b", b"\\*", b""];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Channel,
    Pattern,
    Shard,
}

#[derive(Debug, Clone)]
enum Op {
    /// (Un)subscribe `who` to names; an empty list unsubscribes from everything of the kind.
    Subscribe(usize, Kind, Vec<Vec<u8>>),
    Unsubscribe(usize, Kind, Vec<Vec<u8>>),
    Publish(Namespace, Vec<u8>),
    Disconnect(usize),
}

fn names(kind: Kind, min: usize) -> impl Strategy<Value = Vec<Vec<u8>>> {
    let alphabet = if kind == Kind::Pattern {
        PATTERNS
    } else {
        CHANNELS
    };
    prop::collection::vec(
        prop::sample::select(alphabet).prop_map(<[u8]>::to_vec),
        min..4,
    )
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::Channel), Just(Kind::Pattern), Just(Kind::Shard)]
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..SUBSCRIBERS;
    prop_oneof![
        4 => (who.clone(), kind()).prop_flat_map(|(w, k)| names(k, 1)
            .prop_map(move |n| Op::Subscribe(w, k, n))),
        3 => (who.clone(), kind()).prop_flat_map(|(w, k)| names(k, 0)
            .prop_map(move |n| Op::Unsubscribe(w, k, n))),
        3 => (
            prop_oneof![Just(Namespace::Global), Just(Namespace::Shard)],
            prop::sample::select(CHANNELS).prop_map(<[u8]>::to_vec),
        )
            .prop_map(|(ns, ch)| Op::Publish(ns, ch)),
        1 => who.prop_map(Op::Disconnect),
    ]
}

/// Who holds what: per kind, name → subscribing slots.
#[derive(Default)]
struct Model {
    subs: BTreeMap<(u8, Vec<u8>), BTreeSet<usize>>,
}

fn tag(k: Kind) -> u8 {
    k as u8
}

impl Model {
    fn has(&self, k: Kind, name: &[u8], who: usize) -> bool {
        self.subs
            .get(&(tag(k), name.to_vec()))
            .is_some_and(|s| s.contains(&who))
    }

    fn of(&self, k: Kind, who: usize) -> usize {
        self.subs
            .iter()
            .filter(|((t, _), s)| *t == tag(k) && s.contains(&who))
            .count()
    }

    /// The count a confirmation carries: channels + patterns, or shard channels.
    fn count(&self, k: Kind, who: usize) -> i64 {
        match k {
            Kind::Shard => self.of(Kind::Shard, who) as i64,
            _ => (self.of(Kind::Channel, who) + self.of(Kind::Pattern, who)) as i64,
        }
    }

    fn set(&mut self, k: Kind, name: &[u8], who: usize, on: bool) {
        let key = (tag(k), name.to_vec());
        let set = self.subs.entry(key.clone()).or_default();
        if on {
            set.insert(who);
        } else {
            set.remove(&who);
        }
        if set.is_empty() {
            self.subs.remove(&key);
        }
    }

    fn names(&self, k: Kind) -> BTreeSet<Vec<u8>> {
        self.subs
            .keys()
            .filter(|(t, _)| *t == tag(k))
            .map(|(_, n)| n.clone())
            .collect()
    }

    fn numsub(&self, k: Kind, name: &[u8]) -> usize {
        self.subs
            .get(&(tag(k), name.to_vec()))
            .map_or(0, BTreeSet::len)
    }

    /// Frames each slot must receive for a publish to `channel`, sorted, and the receiver count.
    fn publish(&self, ns: Namespace, channel: &[u8]) -> (Vec<Vec<Vec<Vec<u8>>>>, i64) {
        let mut frames = vec![Vec::new(); SUBSCRIBERS + 1];
        let mut receivers = 0;
        let exact = if ns == Namespace::Shard {
            Kind::Shard
        } else {
            Kind::Channel
        };
        let kind: &[u8] = if ns == Namespace::Shard {
            b"smessage"
        } else {
            b"message"
        };
        if let Some(who) = self.subs.get(&(tag(exact), channel.to_vec())) {
            for &w in who {
                frames[w].push(vec![kind.to_vec(), channel.to_vec(), b"m".to_vec()]);
                receivers += 1;
            }
        }
        if ns == Namespace::Global {
            for ((t, p), who) in &self.subs {
                if *t == tag(Kind::Pattern) && stringmatch(p, channel, false) {
                    for &w in who {
                        let f = vec![
                            b"pmessage".to_vec(),
                            p.clone(),
                            channel.to_vec(),
                            b"m".to_vec(),
                        ];
                        frames[w].push(f);
                        receivers += 1;
                    }
                }
            }
        }
        frames.iter_mut().for_each(|f| f.sort());
        (frames, receivers)
    }
}

fn cmd(parts: &[&[u8]]) -> Vec<Bytes> {
    parts.iter().map(|p| Bytes::copy_from_slice(p)).collect()
}

fn strings(v: &Value) -> Vec<Vec<u8>> {
    v.items()
        .expect("an array")
        .iter()
        .map(|i| i.bytes().expect("a string").to_vec())
        .collect()
}

/// A push frame's elements as (strings, the trailing integer if any).
fn frame(v: &Value) -> (Vec<Vec<u8>>, Option<i64>) {
    let items = v.items().expect("a frame");
    let mut text = Vec::new();
    let mut n = None;
    for i in items {
        match i {
            Value::Int(x) => n = Some(*x),
            Value::NullBulk | Value::Null => text.push(b"(nil)".to_vec()),
            other => text.push(other.bytes().expect("a string").to_vec()),
        }
    }
    (text, n)
}

fn verbs(k: Kind) -> (&'static [u8], &'static [u8]) {
    match k {
        Kind::Channel => (b"subscribe", b"unsubscribe"),
        Kind::Pattern => (b"psubscribe", b"punsubscribe"),
        Kind::Shard => (b"ssubscribe", b"sunsubscribe"),
    }
}

fn step(w: &mut World, m: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    match op {
        Op::Subscribe(who, k, list) => {
            let verb = verbs(*k).0;
            let mut args = vec![verb];
            args.extend(list.iter().map(Vec::as_slice));
            let out = w.run(*who, cmd(&args));
            let mut want = Vec::new();
            for n in list {
                m.set(*k, n, *who, true);
                want.push((vec![verb.to_vec(), n.clone()], Some(m.count(*k, *who))));
            }
            let got: Vec<_> = out[*who].iter().map(frame).collect();
            prop_assert_eq!(got, want);
        }
        Op::Unsubscribe(who, k, list) => {
            let verb = verbs(*k).1;
            let mut args = vec![verb];
            args.extend(list.iter().map(Vec::as_slice));
            let held: Vec<Vec<u8>> = m
                .names(*k)
                .into_iter()
                .filter(|n| m.has(*k, n, *who))
                .collect();
            let out = w.run(*who, cmd(&args));
            let got: Vec<_> = out[*who].iter().map(frame).collect();
            if list.is_empty() {
                held.iter().for_each(|n| m.set(*k, n, *who, false));
                prop_assert_eq!(got.len(), held.len().max(1));
                let left: BTreeSet<Vec<u8>> = got.iter().map(|(t, _)| t[1].clone()).collect();
                let want: BTreeSet<Vec<u8>> = if held.is_empty() {
                    [b"(nil)".to_vec()].into()
                } else {
                    held.into_iter().collect()
                };
                prop_assert_eq!(left, want);
                prop_assert_eq!(got.last().and_then(|f| f.1), Some(m.count(*k, *who)));
            } else {
                let mut want = Vec::new();
                for n in list {
                    m.set(*k, n, *who, false);
                    want.push((vec![verb.to_vec(), n.clone()], Some(m.count(*k, *who))));
                }
                prop_assert_eq!(got, want);
            }
        }
        Op::Publish(ns, ch) => {
            let verb: &[u8] = if *ns == Namespace::Shard {
                b"spublish"
            } else {
                b"publish"
            };
            let out = w.run(PUBLISHER, cmd(&[verb, ch, b"m"]));
            let (frames, receivers) = m.publish(*ns, ch);
            prop_assert_eq!(&out[PUBLISHER], &vec![Value::Int(receivers)]);
            for who in 0..SUBSCRIBERS {
                let mut got: Vec<Vec<Vec<u8>>> = out[who].iter().map(|f| frame(f).0).collect();
                got.sort();
                prop_assert_eq!(&got, &frames[who], "frames of client {}", who);
            }
        }
        Op::Disconnect(who) => {
            for (k, n) in m.subs.keys().cloned().collect::<Vec<_>>() {
                let kind = [Kind::Channel, Kind::Pattern, Kind::Shard][usize::from(k)];
                m.set(kind, &n, *who, false);
            }
            w.disconnect(*who);
            if *who == RESP3_SLOT {
                w.run(RESP3_SLOT, cmd(&[b"hello", b"3"]));
            }
        }
    }
    Ok(())
}

/// PUBSUB's answers, and the registry's, agree with the model.
fn introspect(w: &mut World, m: &Model) -> Result<(), TestCaseError> {
    let r = &w.server.registry;
    for (ns, k) in [
        (Namespace::Global, Kind::Channel),
        (Namespace::Shard, Kind::Shard),
    ] {
        let listed: BTreeSet<Vec<u8>> = r.channels(ns, None).iter().map(|c| c.to_vec()).collect();
        prop_assert_eq!(&listed, &m.names(k));
        prop_assert_eq!(r.channel_count(ns), m.names(k).len());
        for ch in CHANNELS {
            prop_assert_eq!(r.numsub(ns, ch), m.numsub(k, ch));
        }
    }
    prop_assert_eq!(r.numpat(), m.names(Kind::Pattern).len());

    let pubsub = |w: &mut World, args: &[&[u8]]| {
        let mut full: Vec<&[u8]> = vec![b"pubsub"];
        full.extend_from_slice(args);
        w.run(PUBLISHER, cmd(&full)).swap_remove(PUBLISHER)
    };
    for (sub, k) in [
        (&b"channels"[..], Kind::Channel),
        (b"shardchannels", Kind::Shard),
    ] {
        let out = pubsub(w, &[sub]);
        let listed: BTreeSet<Vec<u8>> = strings(&out[0]).into_iter().collect();
        prop_assert_eq!(listed, m.names(k));
    }
    for (sub, k) in [
        (&b"numsub"[..], Kind::Channel),
        (b"shardnumsub", Kind::Shard),
    ] {
        let mut args = vec![sub];
        args.extend_from_slice(CHANNELS);
        let out = pubsub(w, &args);
        let items = out[0].items().expect("an array");
        prop_assert_eq!(items.len(), CHANNELS.len() * 2);
        for (pair, ch) in items.chunks(2).zip(CHANNELS) {
            prop_assert_eq!(pair[0].bytes(), Some(*ch));
            prop_assert_eq!(&pair[1], &Value::Int(m.numsub(k, ch) as i64));
        }
    }
    let out = pubsub(w, &[b"numpat"]);
    prop_assert_eq!(&out[0], &Value::Int(m.names(Kind::Pattern).len() as i64));
    Ok(())
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn registry_agrees_with_the_model(ops in prop::collection::vec(op(), 1..40)) {
        let mut w = World::new(SUBSCRIBERS + 1);
        w.run(RESP3_SLOT, cmd(&[b"hello", b"3"]));
        let mut m = Model::default();
        for op in &ops {
            step(&mut w, &mut m, op)?;
            w.check();
            introspect(&mut w, &m)?;
        }
        w.disconnect_all();
        w.check();
        prop_assert_eq!(w.server.registry.snapshot(), Default::default());
        prop_assert_eq!(w.server.registry.channel_count(Namespace::Global), 0);
        prop_assert_eq!(w.server.registry.channel_count(Namespace::Shard), 0);
        prop_assert_eq!(w.server.registry.numpat(), 0);
    }
}
