//! CLIENT TRACKING, CACHING, TRACKINGINFO, GETREDIR and UNBLOCK, with Redis 7.2.4's replies and
//! validation order (networking.c `clientCommand`, tracking.c).
//!
//! A server without keys never invalidates anything, so tracking is only state: the options a
//! client chose, shown by TRACKINGINFO, GETREDIR, CLIENT LIST (`t`/`B` flags, `redir=`) and INFO
//! (`tracking_clients`, `tracking_total_prefixes`). No `invalidate` or `tracking-redir-broken`
//! push is ever sent, and `broken_redirect` never shows: exactly what 7.2.4 does while no key is
//! written. Nobody is ever blocked either, so CLIENT UNBLOCK always answers 0.

use bytes::Bytes;

use super::{arg_text, parse_i64, CmdResult, CommandError, Ctx};
use crate::client::Tracking;

fn syntax() -> CommandError {
    CommandError::Syntax
}

/// Redis's `stringCheckPrefix`: one is a prefix of the other.
fn overlaps(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

fn overlap_error(kind: &str, a: &[u8], b: &[u8]) -> CommandError {
    CommandError::other(format!(
        "ERR Prefix '{}' overlaps with {kind} prefix '{}'. Prefixes for a single client must not overlap.",
        arg_text(a, usize::MAX),
        arg_text(b, usize::MAX)
    ))
}

/// Redis's `checkPrefixCollisionsOrReply`. Redis 7.2.4 has a bug here: an overlap among the
/// given prefixes found at index 1 or later is reported *and* tracking is still enabled, so the
/// client gets two replies (an error, then `+OK`). pubsubd answers the error only and leaves
/// tracking as it was, as 7.2.4 does for an overlap found at index 0.
fn check_prefixes(current: &[Bytes], given: &[Bytes]) -> CmdResult {
    for (i, p) in given.iter().enumerate() {
        if let Some(c) = current.iter().find(|c| overlaps(c, p)) {
            return Err(overlap_error("an existing", p, c));
        }
        if let Some(q) = given[i + 1..].iter().find(|q| overlaps(p, q)) {
            return Err(overlap_error("another provided", p, q));
        }
    }
    Ok(())
}

pub fn tracking(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut redirect: i64 = 0;
    let (mut bcast, mut optin, mut optout, mut noloop) = (false, false, false, false);
    let mut prefixes: Vec<Bytes> = Vec::new();
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let a = &args[j];
        if a.eq_ignore_ascii_case(b"redirect") && more {
            j += 1;
            if redirect != 0 {
                return Err(CommandError::other(
                    "ERR A client can only redirect to a single other client",
                ));
            }
            redirect = parse_i64(&args[j])?;
            let exists = redirect > 0 && ctx.server.clients.contains_key(&(redirect as u64));
            if !exists {
                return Err(CommandError::other(
                    "ERR The client ID you want redirect to does not exist",
                ));
            }
        } else if a.eq_ignore_ascii_case(b"bcast") {
            bcast = true;
        } else if a.eq_ignore_ascii_case(b"optin") {
            optin = true;
        } else if a.eq_ignore_ascii_case(b"optout") {
            optout = true;
        } else if a.eq_ignore_ascii_case(b"noloop") {
            noloop = true;
        } else if a.eq_ignore_ascii_case(b"prefix") && more {
            j += 1;
            prefixes.push(args[j].clone());
        } else {
            return Err(syntax());
        }
        j += 1;
    }
    if args[2].eq_ignore_ascii_case(b"off") {
        ctx.client.tracking = Tracking::default();
        publish_meta(ctx);
        ctx.reply.ok();
        return Ok(());
    }
    if !args[2].eq_ignore_ascii_case(b"on") {
        return Err(syntax());
    }
    let t = &ctx.client.tracking;
    if !bcast && !prefixes.is_empty() {
        return Err(CommandError::other(
            "ERR PREFIX option requires BCAST mode to be enabled",
        ));
    }
    if t.on && t.bcast != bcast {
        return Err(CommandError::other("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."));
    }
    if bcast && (optin || optout) {
        return Err(CommandError::other(
            "ERR OPTIN and OPTOUT are not compatible with BCAST",
        ));
    }
    if optin && optout {
        return Err(CommandError::other(
            "ERR You can't specify both OPTIN mode and OPTOUT mode",
        ));
    }
    if (optin && t.optout) || (optout && t.optin) {
        return Err(CommandError::other("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."));
    }
    if bcast {
        check_prefixes(&t.prefixes, &prefixes)?;
    }
    // Redis's `enableTracking`: the mode flags and the redirect are replaced, BCAST prefixes
    // are added (the empty prefix when none is given), CACHING is kept.
    let t = &mut ctx.client.tracking;
    t.on = true;
    t.redirect = redirect as u64;
    t.bcast = bcast;
    t.optin = optin;
    t.optout = optout;
    t.noloop = noloop;
    if bcast {
        if prefixes.is_empty() {
            prefixes.push(Bytes::new());
        }
        for p in prefixes {
            if let Err(at) = t.prefixes.binary_search(&p) {
                t.prefixes.insert(at, p);
            }
        }
    }
    publish_meta(ctx);
    ctx.reply.ok();
    Ok(())
}

/// What CLIENT LIST and INFO show of this client's tracking.
fn publish_meta(ctx: &mut Ctx) {
    let t = &ctx.client.tracking;
    let mut meta = ctx.handle.meta.lock();
    if t.on || meta.extra().tracking.is_some() {
        let extra = meta.extra_mut();
        extra.tracking = t.on.then_some((t.bcast, t.redirect));
        extra.tracking_prefixes = t.prefixes.clone();
    }
}

pub fn caching(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let t = &mut ctx.client.tracking;
    if !t.on {
        return Err(CommandError::other("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"));
    }
    let opt = &args[2];
    if opt.eq_ignore_ascii_case(b"yes") {
        if !t.optin {
            return Err(CommandError::other(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if opt.eq_ignore_ascii_case(b"no") {
        if !t.optout {
            return Err(CommandError::other(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(syntax());
    }
    t.caching = true;
    ctx.reply.ok();
    Ok(())
}

/// A map in RESP3 (flags a set), a flat array in RESP2.
pub fn trackinginfo(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let t = &ctx.client.tracking;
    let mut flags: Vec<&str> = Vec::new();
    if !t.on {
        flags.push("off");
    } else {
        flags.push("on");
        if t.bcast {
            flags.push("bcast");
        }
        if t.optin {
            flags.push("optin");
            if t.caching {
                flags.push("caching-yes");
            }
        }
        if t.optout {
            flags.push("optout");
            if t.caching {
                flags.push("caching-no");
            }
        }
        if t.noloop {
            flags.push("noloop");
        }
    }
    let redirect = if t.on { t.redirect as i64 } else { -1 };
    let prefixes = t.prefixes.clone();
    let r = &mut *ctx.reply;
    r.map(3);
    r.bulk(b"flags");
    r.set(flags.len());
    for f in flags {
        r.bulk(f.as_bytes());
    }
    r.bulk(b"redirect");
    r.int(redirect);
    r.bulk(b"prefixes");
    r.array(prefixes.len());
    for p in &prefixes {
        r.bulk(p);
    }
    Ok(())
}

pub fn getredir(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let t = &ctx.client.tracking;
    ctx.reply.int(if t.on { t.redirect as i64 } else { -1 });
    Ok(())
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: the reason is checked before the id, as in Redis.
pub fn unblock(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 4 {
        return Err(CommandError::SubcommandSyntax {
            sub: arg_text(&args[1], 128),
            cmd: "CLIENT".into(),
        });
    }
    if let Some(r) = args.get(3) {
        if !r.eq_ignore_ascii_case(b"timeout") && !r.eq_ignore_ascii_case(b"error") {
            return Err(CommandError::other(
                "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ));
        }
    }
    parse_i64(&args[2])?;
    ctx.reply.int(0);
    Ok(())
}

/// Redis's `resetClient`: CLIENT CACHING lasts until a command that is not a CLIENT
/// subcommand runs outside MULTI (a whole transaction keeps it, EXEC clears it).
pub fn after_command(client: &mut crate::client::ClientState) {
    if client.tracking.caching
        && client.multi.is_none()
        && client.last_cmd != "client"
        && !client.last_cmd.starts_with("client|")
    {
        client.tracking.caching = false;
    }
}
