//! ACL: SETUSER, GETUSER, DELUSER, LIST, USERS, WHOAMI, CAT, LOG, GENPASS, SAVE, LOAD, DRYRUN,
//! HELP, with Redis 7.2's replies and error texts.
//!
//! Changing or deleting a user disconnects its connections the way Redis 7 does: DELUSER and
//! LOAD close every connection of a removed or replaced user; SETUSER closes only subscribers
//! that now hold a channel or pattern the new rules refuse.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;

use super::{arg_text, help_reply, lookup, parse_i64, CmdResult, CommandError, Ctx, Lookup};
use crate::auth::catalogue::CATEGORIES;
use crate::auth::password::{self, GENPASS_DEFAULT_BITS, GENPASS_MAX_BITS};
use crate::auth::rules::{has_spaces, User};

/// ACL LOG's default count.
const LOG_DEFAULT_COUNT: i64 = 10;

const NO_ACLFILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

/// Closes every connection authenticated as `name`, as Redis's ACLFreeUserAndKillClients: each
/// shows user `default` at once and is closed when the current batch of commands is done
/// (`freeClientAsync`, so a PUBLISH later in the batch still counts it); the current
/// connection, if it is one of them, gets its reply first (CLIENT_CLOSE_AFTER_COMMAND).
fn kill_user_clients(ctx: &mut Ctx, name: &str) {
    let me = ctx.client.id;
    let ids: Vec<u64> = ctx
        .server
        .clients
        .iter()
        .filter(|h| *h.meta.lock().user == *name)
        .map(|h| h.id)
        .collect();
    for id in ids {
        if id == me {
            ctx.client.close_after_reply = true;
            ctx.client.authenticated = false;
        } else if let Some(h) = ctx.server.clients.get(&id) {
            let mut meta = h.meta.lock();
            meta.user = crate::client::default_user_name();
            meta.close_asap = true;
            if !ctx.client.close_after_batch.contains(&id) {
                ctx.client.close_after_batch.push(id);
            }
        }
    }
}

/// Closes subscribers of `new.name` holding a subscription the new rules refuse (Redis's
/// `ACLKillPubsubClientsIfNeeded`: only channel permissions count).
fn kill_pubsub_if_needed(ctx: &mut Ctx, old: &User, new: &Arc<User>) {
    if new.keeps_channels_of(old) {
        return;
    }
    let ids: HashSet<u64> = ctx
        .server
        .clients
        .iter()
        .filter(|h| {
            let m = h.meta.lock();
            *m.user == *new.name && m.sub + m.psub + m.ssub > 0
        })
        .map(|h| h.id)
        .collect();
    if ids.is_empty() {
        return;
    }
    let killed = ctx.server.registry.kill_subscribers(
        &ids,
        |ch| new.channel_allowed(ch),
        |p| new.pattern_allowed(p),
    );
    if killed.contains(&ctx.client.id) {
        ctx.client.close_after_reply = true;
    }
    let others: HashSet<u64> = killed
        .iter()
        .copied()
        .filter(|&id| id != ctx.client.id)
        .collect();
    ctx.server.close_clients(&others);
    for id in killed {
        tracing::warn!(
            client_id = id,
            user = %new.name,
            "Disconnecting subscriber: its channel permissions were revoked"
        );
    }
}

pub fn setuser(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = &args[2];
    if has_spaces(name) {
        return Err(CommandError::other(
            "ERR Usernames can't contain spaces or null characters",
        ));
    }
    let name = String::from_utf8_lossy(name).into_owned();
    let rules: Vec<&[u8]> = args[3..].iter().map(|a| &a[..]).collect();
    if let Some(at) = rules.iter().position(|r| r.first() == Some(&b'(')) {
        let closed = rules[at..].iter().any(|r| r.last() == Some(&b')'));
        let text = arg_text(rules[at], usize::MAX);
        return Err(CommandError::other(if closed {
            // Selectors are not supported: refuse them rather than grant less than asked.
            format!("ERR Error in ACL SETUSER modifier '{text}': Syntax error")
        } else {
            format!("ERR Unmatched parenthesis in acl selector starting at '{text}'.")
        }));
    }
    let old = ctx.server.acl.set_user(&name, &rules).map_err(|(r, e)| {
        CommandError::other(format!(
            "ERR Error in ACL SETUSER modifier '{}': {e}",
            arg_text(&r, usize::MAX)
        ))
    })?;
    if let (Some(old), Some(new)) = (old, ctx.server.acl.get(&name)) {
        kill_pubsub_if_needed(ctx, &old, &new);
    }
    ctx.reply.ok();
    Ok(())
}

pub fn deluser(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args[2..].iter().any(|a| &a[..] == b"default") {
        return Err(CommandError::other(
            "ERR The 'default' user cannot be removed",
        ));
    }
    let names: Vec<String> = args[2..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let gone = ctx.server.acl.delete(&names);
    for n in &gone {
        kill_user_clients(ctx, n);
    }
    ctx.reply.int(gone.len() as i64);
    Ok(())
}

pub fn getuser(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = String::from_utf8_lossy(&args[2]);
    let Some(u) = ctx.server.acl.get(&name) else {
        ctx.reply.null();
        return Ok(());
    };
    let r = &mut *ctx.reply;
    r.map(6);
    r.bulk(b"flags");
    let flags = u.flags();
    r.set(flags.len());
    for f in flags {
        r.bulk(f.as_bytes());
    }
    r.bulk(b"passwords");
    r.array(u.passwords.len());
    for p in &u.passwords {
        r.bulk(p.as_bytes());
    }
    r.bulk(b"commands");
    r.bulk(u.commands_text().as_bytes());
    r.bulk(b"keys");
    r.bulk(u.keys_text().as_bytes());
    r.bulk(b"channels");
    r.bulk(&u.channels_text());
    r.bulk(b"selectors");
    r.array(0);
    Ok(())
}

fn list_in(ctx: &mut Ctx, names_only: bool) {
    let users = ctx.server.acl.all();
    ctx.reply.array(users.len());
    for u in users {
        if names_only {
            ctx.reply.bulk(u.name.as_bytes());
        } else {
            let mut line = format!("user {} ", u.name).into_bytes();
            line.extend_from_slice(&u.describe());
            ctx.reply.bulk(&line);
        }
    }
}

pub fn list(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    list_in(ctx, false);
    Ok(())
}

pub fn users(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    list_in(ctx, true);
    Ok(())
}

pub fn whoami(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let name = ctx.client.user.clone();
    ctx.reply.bulk(name.as_bytes());
    Ok(())
}

pub fn cat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(CommandError::SubcommandSyntax {
            sub: arg_text(&args[1], 128),
            cmd: "ACL".into(),
        });
    }
    let Some(want) = args.get(2) else {
        ctx.reply.array(CATEGORIES.len());
        for c in CATEGORIES {
            ctx.reply.bulk(c.as_bytes());
        }
        return Ok(());
    };
    let lower = String::from_utf8_lossy(want).to_ascii_lowercase();
    let Some(cat) = CATEGORIES.iter().position(|c| *c == lower) else {
        return Err(CommandError::other(format!(
            "ERR Unknown category '{}'",
            arg_text(want, 128)
        )));
    };
    let names: Vec<&str> = ctx.server.acl.catalogue().in_category(cat).collect();
    ctx.reply.array(names.len());
    for n in names {
        ctx.reply.bulk(n.as_bytes());
    }
    Ok(())
}

pub fn genpass(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(CommandError::SubcommandSyntax {
            sub: arg_text(&args[1], 128),
            cmd: "ACL".into(),
        });
    }
    let bits = match args.get(2) {
        Some(a) => parse_i64(a)?,
        None => GENPASS_DEFAULT_BITS as i64,
    };
    if bits <= 0 || bits as u64 > GENPASS_MAX_BITS {
        return Err(CommandError::other(format!("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to {GENPASS_MAX_BITS}")));
    }
    let pass = password::genpass(bits as u64)
        .map_err(|e| CommandError::other(format!("ERR failed to get random bytes: {e}")))?;
    ctx.reply.bulk(pass.as_bytes());
    Ok(())
}

pub fn log(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(CommandError::SubcommandSyntax {
            sub: arg_text(&args[1], 128),
            cmd: "ACL".into(),
        });
    }
    let mut count = LOG_DEFAULT_COUNT;
    if let Some(a) = args.get(2) {
        if a.eq_ignore_ascii_case(b"reset") {
            ctx.server.acl.log_reset();
            ctx.reply.ok();
            return Ok(());
        }
        count = parse_i64(a)?.max(0);
    }
    let entries = ctx.server.acl.log_entries(count as usize);
    let now = crate::auth::users::now_ms();
    let r = &mut *ctx.reply;
    r.array(entries.len());
    for e in entries {
        r.map(10);
        r.bulk(b"count");
        r.int(e.count as i64);
        r.bulk(b"reason");
        r.bulk(e.reason.name().as_bytes());
        r.bulk(b"context");
        r.bulk(e.context.as_bytes());
        r.bulk(b"object");
        r.bulk(&e.object);
        r.bulk(b"username");
        r.bulk(&e.username);
        r.bulk(b"age-seconds");
        let age = now.saturating_sub(e.updated_ms) as f64 / 1000.0;
        if r.is_resp3() {
            r.raw(format!(",{age}\r\n").as_bytes());
        } else {
            r.bulk(age.to_string().as_bytes());
        }
        r.bulk(b"client-info");
        r.bulk(e.client_info.as_bytes());
        r.bulk(b"entry-id");
        r.int(e.entry_id as i64);
        r.bulk(b"timestamp-created");
        r.int(e.created_ms as i64);
        r.bulk(b"timestamp-last-updated");
        r.int(e.updated_ms as i64);
    }
    Ok(())
}

pub fn save(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let Some(path) = ctx.server.acl.file.clone() else {
        return Err(CommandError::other(NO_ACLFILE));
    };
    if let Err(e) = ctx.server.acl.save(&path) {
        tracing::warn!("Writing ACL file for ACL SAVE: {e}");
        return Err(CommandError::other("ERR There was an error trying to save the ACLs. Please check the server logs for more information"));
    }
    ctx.reply.ok();
    Ok(())
}

pub fn load(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let Some(path) = ctx.server.acl.file.clone() else {
        return Err(CommandError::other(NO_ACLFILE));
    };
    let users = ctx
        .server
        .acl
        .parse_file(&path)
        .map_err(|e| CommandError::other(format!("ERR {}", e.0)))?;
    let old = ctx.server.acl.replace_all(users);
    // The default user keeps its connections (Redis copies the new rules into it); every
    // other user of the old table is freed with its connections.
    for name in old.keys().filter(|n| *n != "default") {
        kill_user_clients(ctx, name);
    }
    ctx.reply.ok();
    Ok(())
}

pub fn dryrun(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(u) = ctx.server.acl.get(&String::from_utf8_lossy(&args[2])) else {
        return Err(CommandError::other(format!(
            "ERR User '{}' not found",
            arg_text(&args[2], usize::MAX)
        )));
    };
    let cmd = &args[3..];
    let spec = match lookup(cmd) {
        Lookup::Found(s) => s,
        Lookup::Unknown(_) => {
            return Err(CommandError::other(format!(
                "ERR Command '{}' not found",
                arg_text(&args[3], usize::MAX)
            )))
        }
    };
    if !spec.arity_ok(cmd.len()) {
        return Err(CommandError::WrongArity(spec.name));
    }
    match u.check(spec.index(), cmd) {
        Ok(()) => ctx.reply.ok(),
        Err(d) => {
            let text = super::acl_check::dryrun_text(&u, spec, cmd, d);
            ctx.reply.bulk(text.as_bytes());
        }
    }
    Ok(())
}

const ACL_HELP: &[&str] = &[
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Print this help.",
];

pub fn help(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    help_reply(ctx, ACL_HELP);
    Ok(())
}
