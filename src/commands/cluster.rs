//! CLUSTER, READONLY, READWRITE and ASKING. With `cluster-enabled no` every one of them answers
//! `-ERR This instance has cluster support disabled`, as a standalone Redis does. With it, the
//! read-only subcommands answer from the node's `cluster::View` in Redis 7.2's shapes
//! (`cluster::reply`), and the subcommands that change a Redis Cluster's topology are refused:
//! here the slot map follows the live nodes, it is not assigned by hand.

use bytes::Bytes;

use super::{CmdResult, CommandError, Ctx};
use crate::cluster::{reply, slot, Cluster};

fn enabled<'a>(ctx: &Ctx<'a>) -> Result<&'a Cluster, CommandError> {
    ctx.server
        .cluster
        .as_deref()
        .ok_or(CommandError::ClusterDisabled)
}

fn ok_if_enabled(ctx: &mut Ctx) -> CmdResult {
    enabled(ctx)?;
    ctx.reply.ok();
    Ok(())
}

pub fn asking(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ok_if_enabled(ctx)
}

/// READONLY and READWRITE: every node is a master serving its slots, so the mode changes
/// nothing.
pub fn readonly(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ok_if_enabled(ctx)
}

pub fn readwrite(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ok_if_enabled(ctx)
}

pub fn info(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let c = enabled(ctx)?;
    let text = reply::info(c, &c.view());
    ctx.reply.verbatim(text.as_bytes());
    Ok(())
}

pub fn myid(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let c = enabled(ctx)?;
    ctx.reply.bulk(c.myself().id.as_bytes());
    Ok(())
}

pub fn myshardid(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let c = enabled(ctx)?;
    ctx.reply.bulk(c.myself().shard_id.as_bytes());
    Ok(())
}

/// Whether the client came in over TLS (it is given TLS ports, as Redis does).
fn tls(ctx: &Ctx, c: &Cluster) -> bool {
    c.is_tls_connection(&ctx.handle.laddr)
}

pub fn nodes(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let c = enabled(ctx)?;
    let text = reply::nodes(&c.view(), tls(ctx, c));
    ctx.reply.verbatim(text.as_bytes());
    Ok(())
}

pub fn slots(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let c = enabled(ctx)?;
    let tls = tls(ctx, c);
    reply::slots(ctx.reply, &c.view(), tls);
    Ok(())
}

pub fn shards(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let c = enabled(ctx)?;
    reply::shards(ctx.reply, &c.view());
    Ok(())
}

pub fn links(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    // Nodes talk over the backbone, not over cluster-bus links.
    enabled(ctx)?;
    ctx.reply.array(0);
    Ok(())
}

pub fn keyslot(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    enabled(ctx)?;
    ctx.reply.int(slot::key_slot(&args[2]) as i64);
    Ok(())
}

pub fn countkeysinslot(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    enabled(ctx)?;
    let s = super::parse_i64(&args[2])?;
    if !(0..slot::SLOTS as i64).contains(&s) {
        return Err(CommandError::other("ERR Invalid slot"));
    }
    // No keys are ever stored.
    ctx.reply.int(0);
    Ok(())
}

pub fn getkeysinslot(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    enabled(ctx)?;
    let s = super::parse_i64(&args[2])?;
    let count = super::parse_i64(&args[3])?;
    if !(0..slot::SLOTS as i64).contains(&s) || count < 0 {
        return Err(CommandError::other("ERR Invalid slot or number of keys"));
    }
    ctx.reply.array(0);
    Ok(())
}

/// The node a `<node-id>` argument names, or Redis's `Unknown node` error.
fn known(c: &Cluster, id: &[u8]) -> Result<(), CommandError> {
    if c.view().nodes.iter().any(|n| n.id.as_bytes() == id) {
        Ok(())
    } else {
        let mut e = b"ERR Unknown node ".to_vec();
        e.extend_from_slice(id);
        Err(CommandError::Echo(e.into()))
    }
}

/// CLUSTER REPLICAS / SLAVES: no node has replicas.
pub fn replicas(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let c = enabled(ctx)?;
    known(c, &args[2])?;
    ctx.reply.array(0);
    Ok(())
}

/// No node reports another as failing: a silent node simply leaves the map.
pub fn count_failure_reports(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let c = enabled(ctx)?;
    known(c, &args[2])?;
    ctx.reply.int(0);
    Ok(())
}

/// The node file is written at start and holds nothing that changes later.
pub fn saveconfig(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ok_if_enabled(ctx)
}

/// MEET, ADDSLOTS, ADDSLOTSRANGE, DELSLOTS, DELSLOTSRANGE, FLUSHSLOTS, SETSLOT, FORGET,
/// REPLICATE, FAILOVER, RESET, SET-CONFIG-EPOCH, BUMPEPOCH.
pub fn topology(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    enabled(ctx)?;
    let sub = super::arg_text(&args[1], 128).to_ascii_uppercase();
    Err(CommandError::other(format!(
        "ERR CLUSTER {sub} is not supported: the slot map follows the nodes that announce themselves over the backbone"
    )))
}

const HELP: &[&str] = &[
    "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ADDSLOTS <slot> [<slot> ...]",
    "    Assign slots to current node.",
    "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Assign slots which are between <start-slot> and <end-slot> to current node.",
    "BUMPEPOCH",
    "    Advance the cluster config epoch.",
    "COUNT-FAILURE-REPORTS <node-id>",
    "    Return number of failure reports for <node-id>.",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "DELSLOTS <slot> [<slot> ...]",
    "    Delete slots information from current node.",
    "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
    "FAILOVER [FORCE|TAKEOVER]",
    "    Promote current replica node to being a master.",
    "FORGET <node-id>",
    "    Remove a node from the cluster.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "FLUSHSLOTS",
    "    Delete current node own slots information.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MEET <ip> <port> [<bus-port>]",
    "    Connect nodes into a working cluster.",
    "MYID",
    "    Return the node id.",
    "MYSHARDID",
    "    Return the node's shard id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port@bus-port[,hostname]> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "REPLICATE <node-id>",
    "    Configure current node as replica to <node-id>.",
    "RESET [HARD|SOFT]",
    "    Reset current node (default: soft).",
    "SET-CONFIG-EPOCH <epoch>",
    "    Set config epoch of current node.",
    "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
    "    Set slot state.",
    "REPLICAS <node-id>",
    "    Return <node-id> replicas.",
    "SAVECONFIG",
    "    Force saving cluster configuration on disk.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "LINKS",
    "    Return information about all network links between this node and its peers.",
    "    Output format is an array where each array element is a map containing attributes of a link",
    "HELP",
    "    Print this help.",
];

pub fn help(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    enabled(ctx)?;
    super::help_reply(ctx, HELP);
    Ok(())
}
