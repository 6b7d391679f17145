//! CONFIG GET, SET, RESETSTAT, REWRITE, HELP, on the parameter table of `config::params`.
//!
//! CONFIG SET validates every pair on a copy of the live configuration with the config file's
//! own parser, then makes the copy live (all or nothing, as Redis 7), pushing each value into
//! the run-time cell that running connections read.

use bytes::Bytes;

use super::{CmdResult, CommandError, Ctx};
use crate::config::{params, rewrite};

pub fn get(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let patterns: Vec<&[u8]> = args[2..].iter().map(|a| &a[..]).collect();
    let found = params::get(&ctx.server.ops.live.read(), &patterns);
    ctx.reply.map(found.len());
    for (name, value) in found {
        // Redis 7.2 answers a parameter asked for by its exact name (no `*?[`) under the
        // name as it was written (`CONFIG GET MAXCLIENTS` → `MAXCLIENTS`).
        let exact = patterns.iter().find(|p| {
            p.eq_ignore_ascii_case(name.as_bytes()) && !p.iter().any(|c| b"*?[".contains(c))
        });
        match exact {
            Some(p) => ctx.reply.bulk(p),
            None => ctx.reply.bulk_str(name),
        }
        ctx.reply.bulk_str(&value);
    }
    Ok(())
}

pub fn set(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() % 2 != 0 {
        return Err(CommandError::WrongArity("config|set"));
    }
    let pairs: Vec<(String, String)> = args[2..]
        .chunks(2)
        .map(|p| {
            (
                String::from_utf8_lossy(&p[0]).into_owned(),
                String::from_utf8_lossy(&p[1]).into_owned(),
            )
        })
        .collect();
    // One CONFIG SET at a time, so two cannot both start from the same old configuration.
    let server = ctx.server;
    let mut live = server.ops.live.write();
    let next = params::set(&live, &pairs).map_err(CommandError::other)?;
    for (name, _) in &pairs {
        if params::find(name).is_none() {
            tracing::warn!("CONFIG SET {name}: accepted and ignored, pubsubd stores no data");
        }
    }
    let old = std::mem::replace(&mut *live, next.clone());
    drop(live);
    server.apply_config(&old, next);
    ctx.reply.ok();
    Ok(())
}

pub fn resetstat(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ctx.server.stats.reset();
    crate::memory::reset_peak();
    ctx.reply.ok();
    Ok(())
}

pub fn rewrite(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let cfg = ctx.server.ops.live.read().clone();
    match rewrite::rewrite(&cfg) {
        Ok(()) => {
            tracing::info!("CONFIG REWRITE executed with success.");
            ctx.reply.ok();
            Ok(())
        }
        Err(e) => {
            tracing::warn!("CONFIG REWRITE failed: {e}");
            Err(CommandError::other(e))
        }
    }
}

const CONFIG_HELP: &[&str] = &[
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Print this help.",
];

pub fn help(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    super::help_reply(ctx, CONFIG_HELP);
    Ok(())
}
