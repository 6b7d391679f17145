//! MULTI, EXEC, DISCARD. Queued commands were checked when queued (a rejected one makes EXEC
//! answer EXECABORT); EXEC calls them in order inside one array reply, as Redis does, including
//! SUBSCRIBE and PSUBSCRIBE (allowed in a transaction for backward compatibility).

use bytes::Bytes;

use super::{call, CmdResult, CommandError, Ctx, Lookup};
use crate::client::Transaction;

fn set_meta(ctx: &mut Ctx) {
    ctx.handle.meta.lock().multi = ctx
        .client
        .multi
        .as_ref()
        .map_or(-1, |t| t.queued.len() as i64);
}

pub fn multi(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CommandError::other("ERR MULTI calls can not be nested"));
    }
    ctx.client.multi = Some(Transaction::default());
    set_meta(ctx);
    ctx.reply.ok();
    Ok(())
}

pub fn discard(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    if ctx.client.multi.take().is_none() {
        return Err(CommandError::other("ERR DISCARD without MULTI"));
    }
    set_meta(ctx);
    ctx.reply.ok();
    Ok(())
}

pub fn exec(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let Some(tx) = ctx.client.multi.take() else {
        return Err(CommandError::other("ERR EXEC without MULTI"));
    };
    set_meta(ctx);
    if tx.dirty {
        return Err(CommandError::other(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
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
    Ok(())
}
