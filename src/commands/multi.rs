//! MULTI, EXEC, DISCARD. Queued commands were checked when queued (a rejected one makes EXEC
//! answer EXECABORT); EXEC calls them in order inside one array reply, as Redis does, including
//! SUBSCRIBE and PSUBSCRIBE (allowed in a transaction for backward compatibility).

use bytes::Bytes;

use super::{call, CmdResult, CommandError, Ctx, Lookup};

/// `sizeof(robj *)` in a 64-bit Redis: `multi-mem` counts one per queued argument.
const POINTER_BYTES: usize = 8;

/// Shows the client's transaction to CLIENT LIST: `multi=` (commands queued, -1 outside a
/// transaction), `multi-mem=` and flag `x`.
pub fn show_transaction(ctx: &mut Ctx) {
    let (count, mem) = ctx
        .client
        .multi
        .as_ref()
        .map_or((-1, 0), |t| (t.queued.len() as i64, t.argv_len_sums));
    let mut meta = ctx.handle.meta.lock();
    meta.multi = count;
    meta.multi_mem = mem;
}

/// Queues a command of an open transaction, as Redis's `queueMultiCommand`: once the
/// transaction is doomed (a command was rejected) nothing more is queued, though each command
/// is still answered QUEUED.
pub fn queue(ctx: &mut Ctx, req: crate::protocol::Request) {
    if let Some(tx) = ctx.client.multi.as_mut().filter(|t| !t.dirty) {
        tx.argv_len_sums += req.iter().map(|a| a.len()).sum::<usize>() + POINTER_BYTES * req.len();
        tx.queued.push(req);
    }
    show_transaction(ctx);
    ctx.reply.simple("QUEUED");
}

pub fn multi(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CommandError::other("ERR MULTI calls can not be nested"));
    }
    ctx.client.multi = Some(Box::default());
    show_transaction(ctx);
    ctx.reply.ok();
    Ok(())
}

pub fn discard(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    if ctx.client.multi.take().is_none() {
        return Err(CommandError::other("ERR DISCARD without MULTI"));
    }
    show_transaction(ctx);
    ctx.reply.ok();
    Ok(())
}

pub fn exec(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let Some(tx) = ctx.client.multi.take() else {
        return Err(CommandError::other("ERR EXEC without MULTI"));
    };
    if tx.dirty {
        show_transaction(ctx);
        return Err(CommandError::other(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    // While the commands run, CLIENT LIST/INFO still show the transaction (flag x, multi=,
    // multi-mem=) and `cmd=exec`, as Redis discards it only after the last one.
    ctx.reply.array(tx.queued.len());
    ctx.in_exec = true;
    for req in &tx.queued {
        match super::lookup::lookup_renamed(req, &ctx.server.renames) {
            // ACL rules may have changed since the command was queued.
            Lookup::Found(spec) => match super::acl_check::check(ctx, spec, req) {
                Ok(()) => call(ctx, spec, req),
                Err(e) => ctx.error(&e),
            },
            Lookup::Unknown(e) => ctx.error(&e),
        }
    }
    ctx.in_exec = false;
    show_transaction(ctx);
    Ok(())
}
