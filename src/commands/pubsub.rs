//! SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, their sharded forms, and PUBSUB.
//!
//! SSUBSCRIBE is `subscribe` with `Namespace::Shard`, not a copy of it. Confirmations carry the
//! client's running count as Redis computes it: channels + patterns for the global namespace,
//! shard channels only for the shard namespace.

use bytes::Bytes;

use super::{CmdResult, CommandError, Ctx};
use crate::protocol::encode;
use crate::protocol::Namespace;

fn kinds(ns: Namespace) -> (&'static [u8], &'static [u8]) {
    match ns {
        Namespace::Global => (b"subscribe", b"unsubscribe"),
        Namespace::Shard => (b"ssubscribe", b"sunsubscribe"),
    }
}

fn count(ctx: &Ctx, ns: Namespace) -> usize {
    match ns {
        Namespace::Global => ctx.client.subscription_count(),
        Namespace::Shard => ctx.client.shard_channels.len(),
    }
}

/// A (un)subscribe confirmation. Redis writes these as pushes (`CLIENT_PUSHING`), so CLIENT
/// REPLY OFF/SKIP does not suppress them.
fn confirmation(ctx: &Ctx, kind: &[u8], name: Option<&[u8]>, count: usize) -> Option<Bytes> {
    Some(encode::confirmation(ctx.client.resp, kind, name, count))
}

fn set_mut<'a>(ctx: &'a mut Ctx, ns: Namespace) -> &'a mut crate::client::SubscriptionSet {
    match ns {
        Namespace::Global => &mut ctx.client.channels,
        Namespace::Shard => &mut ctx.client.shard_channels,
    }
}

pub fn after_change(ctx: &mut Ctx) {
    let pubsub = ctx.client.is_pubsub();
    ctx.outbox().set_pubsub(pubsub);
    let mut meta = ctx.handle.meta.lock();
    meta.sub = ctx.client.channels.len();
    meta.psub = ctx.client.patterns.len();
    meta.ssub = ctx.client.shard_channels.len();
}

/// With a backbone, a subscription that gives this node new interest is confirmed once NATS
/// holds it, so the client receives whatever any node publishes after the confirmation: the
/// connection's output waits behind a gate that its reader opens (`server::connection`).
fn gate_for_backbone(ctx: &mut Ctx) {
    if ctx.server.backbone.is_some() && !ctx.client.output_gated {
        ctx.outbox().gate();
        ctx.client.output_gated = true;
    }
}

fn subscribe_in(ctx: &mut Ctx, ns: Namespace, args: &[Bytes]) -> CmdResult {
    ctx.flush();
    gate_for_backbone(ctx);
    let (kind, _) = kinds(ns);
    for ch in &args[1..] {
        let added = set_mut(ctx, ns).insert(Bytes::copy_from_slice(ch));
        let n = count(ctx, ns);
        let confirm = confirmation(ctx, kind, Some(ch), n);
        ctx.server
            .registry
            .subscribe(ns, ch, ctx.outbox(), added, confirm);
    }
    after_change(ctx);
    Ok(())
}

fn unsubscribe_in(ctx: &mut Ctx, ns: Namespace, args: &[Bytes]) -> CmdResult {
    ctx.flush();
    let (_, kind) = kinds(ns);
    let names: Vec<Bytes> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        set_mut(ctx, ns).iter().cloned().collect()
    };
    if names.is_empty() {
        // Nothing to leave: Redis still replies once, with a null channel.
        let n = count(ctx, ns);
        if let Some(c) = confirmation(ctx, kind, None, n) {
            ctx.outbox().push_own(c);
        }
        return Ok(());
    }
    for ch in &names {
        set_mut(ctx, ns).shift_remove(&ch[..]);
        let n = count(ctx, ns);
        let confirm = confirmation(ctx, kind, Some(ch), n);
        ctx.server
            .registry
            .unsubscribe(ns, ch, ctx.outbox(), confirm);
    }
    after_change(ctx);
    Ok(())
}

/// Unsubscribes the client from the shard channels whose slots this node no longer serves,
/// each with a `sunsubscribe` push (Redis's `removeChannelsInSlot`), so that the client
/// subscribes again at the new owner. Nothing happens until every node sees the same map.
pub fn drop_moved_shard_channels(ctx: &mut Ctx) {
    let Some(cluster) = ctx.server.cluster.as_deref() else {
        return;
    };
    let view = cluster.view();
    if !view.agreed {
        return;
    }
    let mut args = vec![Bytes::from_static(b"sunsubscribe")];
    args.extend(
        ctx.client
            .shard_channels
            .iter()
            .filter(|ch| view.map.owner(crate::cluster::slot::key_slot(ch)) != Some(view.me))
            .cloned(),
    );
    if args.len() > 1 {
        let _ = unsubscribe_in(ctx, Namespace::Shard, &args);
    }
}

pub fn subscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    subscribe_in(ctx, Namespace::Global, args)
}

pub fn ssubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.in_exec {
        // Redis allows SUBSCRIBE and PSUBSCRIBE in a transaction for backward compatibility,
        // but not SSUBSCRIBE.
        return Err(CommandError::other(
            "ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client",
        ));
    }
    subscribe_in(ctx, Namespace::Shard, args)
}

pub fn unsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    unsubscribe_in(ctx, Namespace::Global, args)
}

pub fn sunsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    unsubscribe_in(ctx, Namespace::Shard, args)
}

pub fn psubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.flush();
    gate_for_backbone(ctx);
    for pat in &args[1..] {
        let added = ctx.client.patterns.insert(Bytes::copy_from_slice(pat));
        let n = ctx.client.subscription_count();
        let confirm = confirmation(ctx, b"psubscribe", Some(pat), n);
        ctx.server
            .registry
            .psubscribe(pat, ctx.outbox(), added, confirm);
    }
    after_change(ctx);
    Ok(())
}

pub fn punsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.flush();
    let names: Vec<Bytes> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        ctx.client.patterns.iter().cloned().collect()
    };
    if names.is_empty() {
        let n = ctx.client.subscription_count();
        if let Some(c) = confirmation(ctx, b"punsubscribe", None, n) {
            ctx.outbox().push_own(c);
        }
        return Ok(());
    }
    for pat in &names {
        ctx.client.patterns.shift_remove(&pat[..]);
        let n = ctx.client.subscription_count();
        let confirm = confirmation(ctx, b"punsubscribe", Some(pat), n);
        ctx.server.registry.punsubscribe(pat, ctx.outbox(), confirm);
    }
    after_change(ctx);
    Ok(())
}

fn publish_in(ctx: &mut Ctx, ns: Namespace, args: &[Bytes]) -> CmdResult {
    // A message to the publisher itself is held until this command's reply is queued
    // (Redis 7.2: pushes to the executing client follow its reply, the whole EXEC reply in a
    // transaction); the dispatcher releases it.
    let n = ctx
        .server
        .registry
        .publish_from(ctx.client.id, ns, &args[1], &args[2], ctx.wakes);
    ctx.server
        .stats
        .pubsub_messages_published
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ctx.server.ops.channel_rates.observe(ns, &args[1]);
    ctx.reply.int(n as i64);
    Ok(())
}

pub fn publish(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    publish_in(ctx, Namespace::Global, args)
}

pub fn spublish(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    publish_in(ctx, Namespace::Shard, args)
}

/// PUBSUB CHANNELS and SHARDCHANNELS take at most one pattern; Redis answers more with its
/// generic subcommand syntax error.
fn channels_in(ctx: &mut Ctx, ns: Namespace, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(CommandError::SubcommandSyntax {
            sub: super::arg_text(&args[1], 128),
            cmd: "PUBSUB".into(),
        });
    }
    let list = ctx
        .server
        .registry
        .channels(ns, args.get(2).map(|p| &p[..]));
    ctx.reply.array(list.len());
    for ch in &list {
        ctx.reply.bulk(ch);
    }
    Ok(())
}

fn numsub_in(ctx: &mut Ctx, ns: Namespace, args: &[Bytes]) -> CmdResult {
    // A flat array of channel, count pairs, also in RESP3 (clients depend on it).
    ctx.reply.array((args.len() - 2) * 2);
    for ch in &args[2..] {
        ctx.reply.bulk(ch);
        ctx.reply.int(ctx.server.registry.numsub(ns, ch) as i64);
    }
    Ok(())
}

pub fn pubsub_channels(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    channels_in(ctx, Namespace::Global, args)
}

pub fn pubsub_shardchannels(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    channels_in(ctx, Namespace::Shard, args)
}

pub fn pubsub_numsub(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    numsub_in(ctx, Namespace::Global, args)
}

pub fn pubsub_shardnumsub(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    numsub_in(ctx, Namespace::Shard, args)
}

pub fn pubsub_numpat(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ctx.reply.int(ctx.server.registry.numpat() as i64);
    Ok(())
}

const PUBSUB_HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Print this help.",
];

pub fn pubsub_help(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    super::help_reply(ctx, PUBSUB_HELP);
    Ok(())
}
