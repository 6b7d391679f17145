//! COMMAND and its subcommands, all derived from the command table.

use bytes::Bytes;

use super::table::{Arg, CommandSpec, Keys, TABLE};
use super::{lookup, CmdResult, CommandError, Ctx, Lookup};

fn write_info(ctx: &mut Ctx, c: &CommandSpec) {
    let r = &mut *ctx.reply;
    r.array(10);
    r.bulk_str(c.name);
    r.int(c.arity);
    r.set(c.flags.len());
    for f in c.flags {
        r.simple(f);
    }
    let (first, last, step) = match c.keys {
        Keys::None => (0, 0, 0),
        // The legacy range counts from the start (SPUBLISH: 1 1 1); the key spec's lastkey is
        // relative to the first key (SPUBLISH: 0).
        Keys::ShardChannels { last } => (1, if last == 0 { 1 } else { last }, 1),
    };
    r.int(first);
    r.int(last);
    r.int(step);
    r.set(c.acl.len());
    for a in c.acl {
        r.simple(a);
    }
    r.set(c.tips.len());
    for t in c.tips {
        r.bulk_str(t);
    }
    match c.keys {
        Keys::None => r.set(0),
        Keys::ShardChannels { last } => {
            r.set(1);
            r.map(3);
            r.bulk_str("flags");
            r.set(1);
            r.simple("not_key");
            r.bulk_str("begin_search");
            r.map(2);
            r.bulk_str("type");
            r.bulk_str("index");
            r.bulk_str("spec");
            r.map(1);
            r.bulk_str("index");
            r.int(1);
            r.bulk_str("find_keys");
            r.map(2);
            r.bulk_str("type");
            r.bulk_str("range");
            r.bulk_str("spec");
            r.map(3);
            r.bulk_str("lastkey");
            r.int(last);
            r.bulk_str("keystep");
            r.int(1);
            r.bulk_str("limit");
            r.int(0);
        }
    }
    if c.subcommands.is_empty() {
        ctx.reply.set(0);
    } else {
        ctx.reply.array(c.subcommands.len());
        for s in c.subcommands {
            write_info(ctx, s);
        }
    }
}

/// Redis's `addReplyCommandArgList`: every argument but a oneof or block shows a
/// `display_text` (its name unless told otherwise).
fn write_arg(ctx: &mut Ctx, a: &Arg) {
    let display = !matches!(a.kind, "oneof" | "block");
    let has_flags = a.optional || a.multiple || a.multiple_token;
    let n = 2
        + display as usize
        + a.token.is_some() as usize
        + a.since.is_some() as usize
        + a.deprecated_since.is_some() as usize
        + has_flags as usize
        + !a.arguments.is_empty() as usize;
    let r = &mut *ctx.reply;
    r.map(n);
    r.bulk_str("name");
    r.bulk_str(a.name);
    r.bulk_str("type");
    r.bulk_str(a.kind);
    if display {
        r.bulk_str("display_text");
        r.bulk_str(a.display.unwrap_or(a.name));
    }
    if let Some(t) = a.token {
        r.bulk_str("token");
        r.bulk_str(t);
    }
    if let Some(v) = a.since {
        r.bulk_str("since");
        r.bulk_str(v);
    }
    if let Some(v) = a.deprecated_since {
        r.bulk_str("deprecated_since");
        r.bulk_str(v);
    }
    if has_flags {
        r.bulk_str("flags");
        r.set(a.optional as usize + a.multiple as usize + a.multiple_token as usize);
        if a.optional {
            r.simple("optional");
        }
        if a.multiple {
            r.simple("multiple");
        }
        if a.multiple_token {
            r.simple("multiple_token");
        }
    }
    if !a.arguments.is_empty() {
        ctx.reply.bulk_str("arguments");
        ctx.reply.array(a.arguments.len());
        for sub in a.arguments {
            write_arg(ctx, sub);
        }
    }
}

fn write_docs(ctx: &mut Ctx, c: &CommandSpec) {
    // Redis 7.2.4 documents MONITOR without a complexity.
    let complexity = (!c.complexity.is_empty()).then_some(c.complexity);
    let n = 3
        + complexity.is_some() as usize
        + 3 * c.deprecated.is_some() as usize
        + !c.history.is_empty() as usize
        + !c.args.is_empty() as usize
        + !c.subcommands.is_empty() as usize;
    let r = &mut *ctx.reply;
    r.map(n);
    for (k, v) in [
        ("summary", Some(c.summary)),
        ("since", Some(c.since)),
        ("group", Some(c.group)),
        ("complexity", complexity),
    ] {
        if let Some(v) = v {
            r.bulk_str(k);
            r.bulk_str(v);
        }
    }
    if let Some((since, by)) = c.deprecated {
        r.bulk_str("doc_flags");
        r.set(1);
        r.simple("deprecated");
        r.bulk_str("deprecated_since");
        r.bulk_str(since);
        r.bulk_str("replaced_by");
        r.bulk_str(by);
    }
    if !c.history.is_empty() {
        r.bulk_str("history");
        r.array(c.history.len());
        for (v, what) in c.history {
            r.array(2);
            r.bulk_str(v);
            r.bulk_str(what);
        }
    }
    if !c.args.is_empty() {
        ctx.reply.bulk_str("arguments");
        ctx.reply.array(c.args.len());
        for a in c.args {
            write_arg(ctx, a);
        }
    }
    if !c.subcommands.is_empty() {
        ctx.reply.bulk_str("subcommands");
        ctx.reply.map(c.subcommands.len());
        for s in c.subcommands {
            ctx.reply.bulk_str(s.name);
            write_docs(ctx, s);
        }
    }
}

/// Top-level command a name refers to (`client|id` style names included).
fn named(name: &[u8]) -> Option<&'static CommandSpec> {
    let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
    let (top, sub) = match lower.split_once('|') {
        Some((t, s)) => (t.to_string(), Some(s.to_string())),
        None => (lower, None),
    };
    let c = super::lookup::find(&top)?;
    match sub {
        None => Some(c),
        Some(s) => c.subcommands.iter().find(|x| x.short_name() == s),
    }
}

pub fn command(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ctx.reply.array(TABLE.len());
    for c in TABLE {
        write_info(ctx, c);
    }
    Ok(())
}

pub fn command_count(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ctx.reply.int(TABLE.len() as i64);
    Ok(())
}

pub fn command_info(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() == 2 {
        return command(ctx, args);
    }
    ctx.reply.array(args.len() - 2);
    for a in &args[2..] {
        match named(a) {
            Some(c) => write_info(ctx, c),
            None => ctx.reply.null(),
        }
    }
    Ok(())
}

pub fn command_docs(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let list: Vec<&CommandSpec> = if args.len() == 2 {
        TABLE.iter().collect()
    } else {
        args[2..].iter().filter_map(|a| named(a)).collect()
    };
    ctx.reply.map(list.len());
    for c in list {
        ctx.reply.bulk_str(c.name);
        write_docs(ctx, c);
    }
    Ok(())
}

fn all_names() -> Vec<&'static CommandSpec> {
    let mut out = Vec::new();
    for c in TABLE {
        out.push(c);
        out.extend(c.subcommands.iter());
    }
    out
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern].
pub fn command_list(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut list = all_names();
    match args.len() {
        2 => {}
        5 if args[2].eq_ignore_ascii_case(b"filterby") => {
            let (kind, value) = (&args[3], &args[4]);
            if kind.eq_ignore_ascii_case(b"module") {
                list.clear();
            } else if kind.eq_ignore_ascii_case(b"aclcat") {
                let cat = format!("@{}", String::from_utf8_lossy(value).to_ascii_lowercase());
                list.retain(|c| c.acl.contains(&cat.as_str()));
            } else if kind.eq_ignore_ascii_case(b"pattern") {
                list.retain(|c| crate::glob::stringmatch(value, c.name.as_bytes(), true));
            } else {
                return Err(CommandError::Syntax);
            }
        }
        _ => return Err(CommandError::Syntax),
    }
    ctx.reply.array(list.len());
    for c in list {
        ctx.reply.bulk_str(c.name);
    }
    Ok(())
}

pub fn command_getkeys(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    getkeys(ctx, args, false)
}

/// Like GETKEYS, with each key's flags (shard channels are `not_key`).
pub fn command_getkeysandflags(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    getkeys(ctx, args, true)
}

/// Redis 7.2.4 checks "has keys" before the arity, and a shard channel's key spec is flagged
/// `not_key`, which COMMAND GETKEYS skips: no command pubsubd implements has key arguments.
fn getkeys(_ctx: &mut Ctx, args: &[Bytes], _with_flags: bool) -> CmdResult {
    match lookup(&args[2..]) {
        Lookup::Found(_) => Err(CommandError::other("ERR The command has no key arguments")),
        Lookup::Unknown(_) => Err(CommandError::other("ERR Invalid command specified")),
    }
}

const COMMAND_HELP: &[&str] = &[
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Print this help.",
];

pub fn command_help(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    super::help_reply(ctx, COMMAND_HELP);
    Ok(())
}
