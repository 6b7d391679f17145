//! MONITOR, SHUTDOWN and SLOWLOG.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{parse_i64, CmdResult, CommandError, Ctx};

/// MONITOR: from now on this client receives every command the server runs (`monitor`).
/// Inside a transaction it is refused, and a client already monitoring gets no reply at all,
/// both as in Redis.
pub fn monitor(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    if ctx.in_exec {
        return Err(CommandError::other(
            "ERR MONITOR isn't allowed for DENY BLOCKING client",
        ));
    }
    ctx.flush();
    if ctx.server.ops.monitors.add(ctx.outbox()) {
        ctx.handle.meta.lock().monitor = true;
        ctx.reply.ok();
    }
    Ok(())
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]. There is nothing to save, so SAVE and NOSAVE
/// mean the same; NOW closes connections without writing what is still queued to them
/// (otherwise they get up to `shutdown-timeout` seconds, as on SIGTERM); ABORT has no
/// shutdown to cancel, since one that started cannot wait for anything. On success the
/// connection closes without a reply, as in Redis.
pub fn shutdown(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (mut save, mut nosave, mut now, mut abort, mut force) = (false, false, false, false, false);
    for a in &args[1..] {
        let a = a.to_ascii_lowercase();
        match &a[..] {
            b"save" => save = true,
            b"nosave" => nosave = true,
            b"now" => now = true,
            b"force" => force = true,
            b"abort" => abort = true,
            _ => return Err(CommandError::Syntax),
        }
    }
    if (save && nosave) || (abort && (save || nosave || now || force)) {
        return Err(CommandError::Syntax);
    }
    if abort {
        return Err(CommandError::other("ERR No shutdown in progress."));
    }
    tracing::warn!("User requested shutdown...");
    if save {
        tracing::info!("SHUTDOWN SAVE: pubsubd stores nothing, there is nothing to save");
    }
    if now {
        ctx.server.ops.shutdown_now.store(true, Ordering::Relaxed);
    }
    ctx.server.shutdown.cancel();
    ctx.client.close_after_reply = true;
    Ok(())
}

pub fn slowlog_get(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(CommandError::SubcommandSyntax {
            sub: super::arg_text(&args[1], 128),
            cmd: "SLOWLOG".into(),
        });
    }
    let count = match args.get(2) {
        None => Some(10),
        Some(a) => match parse_i64(a) {
            Ok(-1) => None,
            Ok(n) if n >= 0 => Some(n as usize),
            _ => {
                return Err(CommandError::other(
                    "ERR count should be greater than or equal to -1",
                ))
            }
        },
    };
    let entries = ctx.server.ops.slowlog.get(count);
    let r = &mut *ctx.reply;
    r.array(entries.len());
    for e in entries {
        r.array(6);
        r.int(e.id as i64);
        r.int(e.time as i64);
        r.int(e.duration_us as i64);
        r.array(e.args.len());
        for a in &e.args {
            r.bulk(a);
        }
        r.bulk_str(&e.addr);
        r.bulk(&e.name);
    }
    Ok(())
}

pub fn slowlog_len(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ctx.reply.int(ctx.server.ops.slowlog.len() as i64);
    Ok(())
}

pub fn slowlog_reset(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ctx.server.ops.slowlog.reset();
    ctx.reply.ok();
    Ok(())
}

const SLOWLOG_HELP: &[&str] = &[
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Print this help.",
];

pub fn slowlog_help(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    super::help_reply(ctx, SLOWLOG_HELP);
    Ok(())
}
