//! CLIENT subcommands: ID, SETNAME, GETNAME, SETINFO, INFO, LIST, KILL, REPLY, NO-EVICT,
//! NO-TOUCH, GETREDIR, HELP.

use std::sync::Arc;

use bytes::Bytes;

use super::{arg_text, parse_i64, CmdResult, CommandError, Ctx};
use crate::client::{ClientHandle, ReplyMode};
use crate::ops::pause::PauseMode;
use crate::outbox::CloseReason;

pub fn id(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ctx.reply.int(ctx.client.id as i64);
    Ok(())
}

/// Redis's `validateClientName`: printable ASCII without spaces (`!` to `~`).
fn valid_attr(v: &[u8]) -> bool {
    v.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

pub fn validate_name(name: &[u8]) -> Result<(), CommandError> {
    if valid_attr(name) {
        Ok(())
    } else {
        Err(CommandError::BadClientName)
    }
}

/// Sets (or, with an empty name, clears) the connection name.
pub fn set_name(ctx: &mut Ctx, name: &[u8]) {
    let v = (!name.is_empty()).then(|| Bytes::copy_from_slice(name));
    ctx.handle.meta.lock().extra_mut().name = v;
}

pub fn setname(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    validate_name(&args[2])?;
    set_name(ctx, &args[2]);
    ctx.reply.ok();
    Ok(())
}

pub fn getname(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    let name = ctx.handle.meta.lock().extra().name.clone();
    match &name {
        Some(n) => ctx.reply.bulk(n),
        None => ctx.reply.null(),
    }
    Ok(())
}

/// CLIENT SETINFO (Redis 7.2): LIB-NAME and LIB-VER, shown in CLIENT LIST.
pub fn setinfo(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (attr, val) = (&args[2], &args[3]);
    let is_name = attr.eq_ignore_ascii_case(b"lib-name");
    if !is_name && !attr.eq_ignore_ascii_case(b"lib-ver") {
        return Err(CommandError::other(format!(
            "ERR Unrecognized option '{}'",
            arg_text(attr, usize::MAX)
        )));
    }
    if !valid_attr(val) {
        return Err(CommandError::other(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            arg_text(attr, usize::MAX)
        )));
    }
    let v = (!val.is_empty()).then(|| Bytes::copy_from_slice(val));
    let mut meta = ctx.handle.meta.lock();
    if is_name {
        meta.extra_mut().lib_name = v;
    } else {
        meta.extra_mut().lib_ver = v;
    }
    drop(meta);
    ctx.reply.ok();
    Ok(())
}

fn flags(h: &ClientHandle, m: &crate::client::ClientMeta) -> String {
    let mut f = String::new();
    if m.monitor {
        f.push('O');
    }
    if m.sub + m.psub + m.ssub > 0 {
        f.push('P');
    }
    if m.multi >= 0 {
        f.push('x');
    }
    if let Some((bcast, _)) = m.extra().tracking {
        f.push('t');
        if bcast {
            f.push('B');
        }
    }
    // Redis's `c` (close after the reply: QUIT, a protocol error) and `A` (close as soon as
    // possible: killed, over the output limit, timed out, shutting down, or a deleted user's
    // client until its batch ends), from the one recorded close reason.
    match h.outbox.close_reason() {
        Some(CloseReason::ClientQuit | CloseReason::Protocol) => f.push('c'),
        Some(_) => f.push('A'),
        None if !h.outbox.is_open() || m.close_asap => f.push('A'),
        None => {}
    }
    if m.no_evict {
        f.push('e');
    }
    if m.no_touch {
        f.push('T');
    }
    if f.is_empty() {
        f.push('N');
    }
    f
}

fn text(b: &Option<Bytes>) -> String {
    b.as_ref()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// One CLIENT LIST line, with Redis 7.2's fields in Redis's order. `current` is the command
/// the client is running and its `argv-mem` (the sum of its argument lengths), for the client
/// asking; others show their last command and 0, as Redis shows clients between commands.
pub fn client_line(h: &ClientHandle, current: Option<(&str, usize)>) -> String {
    let m = h.meta.lock().clone();
    let (current_cmd, argv_mem) = match current {
        Some((c, a)) => (Some(c), a),
        None => (None, 0),
    };
    let omem = h.outbox.pending();
    let oll = h.outbox.queued_frames();
    let cmd = current_cmd.unwrap_or(m.last_cmd);
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem={} multi-mem={} rbs={} rbp={} obl={} oll={} omem={} tot-mem={} events={} cmd={} user={} redir={} resp={} lib-name={} lib-ver={}\n",
        h.id,
        h.addr,
        h.laddr,
        h.fd,
        text(&m.extra().name),
        h.age_secs(),
        h.idle_secs(),
        flags(h, &m),
        m.db,
        m.sub,
        m.psub,
        m.ssub,
        m.multi,
        m.qbuf,
        0,
        argv_mem,
        m.multi_mem,
        16384,
        0,
        0,
        oll,
        omem,
        omem + m.qbuf + 16384,
        if omem > 0 { "rw" } else { "r" },
        cmd,
        m.user,
        m.extra().tracking.map_or(-1, |(_, r)| r as i64),
        m.resp.max(2),
        text(&m.extra().lib_name),
        text(&m.extra().lib_ver),
    )
}

pub fn info(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    // `cmd=` is the command last looked up: client|info, or exec inside a transaction.
    let line = client_line(ctx.handle, Some((ctx.client.last_cmd, ctx.client.argv_mem)));
    ctx.reply.verbatim(line.as_bytes());
    Ok(())
}

/// Client types of CLIENT LIST/KILL TYPE.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    Pubsub,
    /// MASTER / REPLICA: a pub/sub broker has none.
    Replication,
}

fn parse_type(t: &[u8]) -> Result<ClientType, CommandError> {
    let lower = t.to_ascii_lowercase();
    match &lower[..] {
        b"normal" => Ok(ClientType::Normal),
        b"pubsub" => Ok(ClientType::Pubsub),
        b"master" | b"replica" | b"slave" => Ok(ClientType::Replication),
        _ => Err(CommandError::other(format!(
            "ERR Unknown client type '{}'",
            arg_text(t, usize::MAX)
        ))),
    }
}

fn type_of(h: &ClientHandle) -> ClientType {
    let m = h.meta.lock();
    if m.sub + m.psub + m.ssub > 0 {
        ClientType::Pubsub
    } else {
        ClientType::Normal
    }
}

fn sorted_clients(ctx: &Ctx) -> Vec<Arc<ClientHandle>> {
    let mut all: Vec<_> = ctx
        .server
        .clients
        .iter()
        .map(|e| e.value().clone())
        .collect();
    all.sort_by_key(|h| h.id);
    all
}

pub fn list(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut want_type = None;
    let mut want_ids: Option<Vec<u64>> = None;
    let mut i = 2;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"type") && i + 1 < args.len() {
            want_type = Some(parse_type(&args[i + 1])?);
            i += 2;
        } else if args[i].eq_ignore_ascii_case(b"id") && i + 1 < args.len() {
            let mut ids = Vec::new();
            for a in &args[i + 1..] {
                // Redis 7.2 rejects only what is not a number: `ID 0` (or a negative id)
                // matches no client and lists nothing.
                match parse_i64(a) {
                    Ok(n) => ids.push(n.max(0) as u64),
                    Err(_) => return Err(CommandError::other("ERR Invalid client ID")),
                }
            }
            want_ids = Some(ids);
            i = args.len();
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let mut out = String::new();
    for h in sorted_clients(ctx) {
        // A client another one killed (CLIENT KILL, ACL changes) is gone for Redis, which frees
        // it at once; here its connection task may not have removed it from the table yet.
        if h.outbox.is_killed() && h.id != ctx.client.id {
            continue;
        }
        if want_type.is_some_and(|t| t != type_of(&h)) {
            continue;
        }
        if want_ids.as_ref().is_some_and(|ids| !ids.contains(&h.id)) {
            continue;
        }
        let current = (h.id == ctx.client.id).then_some((ctx.client.last_cmd, ctx.client.argv_mem));
        out.push_str(&client_line(&h, current));
    }
    ctx.reply.verbatim(out.as_bytes());
    Ok(())
}

fn yes_no(v: &[u8]) -> Result<bool, CommandError> {
    if v.eq_ignore_ascii_case(b"yes") {
        Ok(true)
    } else if v.eq_ignore_ascii_case(b"no") {
        Ok(false)
    } else {
        Err(CommandError::Syntax)
    }
}

/// CLIENT KILL addr:port (old form, +OK or "No such client") or CLIENT KILL with filters
/// (ID, TYPE, USER, ADDR, LADDR, SKIPME, MAXAGE; the number of clients killed).
pub fn kill(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut addr = None;
    let mut laddr = None;
    let mut id = None;
    let mut ty = None;
    let mut user = None;
    let mut skipme = true;
    let old_form = args.len() == 3;
    if old_form {
        addr = Some(args[2].clone());
        skipme = false;
    } else {
        if args.len() % 2 != 0 {
            return Err(CommandError::Syntax);
        }
        for pair in args[2..].chunks(2) {
            let (k, v) = (&pair[0], &pair[1]);
            let k = k.to_ascii_lowercase();
            match &k[..] {
                b"id" => match parse_i64(v) {
                    Ok(n) if n > 0 => id = Some(n as u64),
                    _ => {
                        return Err(CommandError::other(
                            "ERR client-id should be greater than 0",
                        ))
                    }
                },
                b"type" => ty = Some(parse_type(v)?),
                b"addr" => addr = Some(v.clone()),
                b"laddr" => laddr = Some(v.clone()),
                b"user" => {
                    let known =
                        std::str::from_utf8(v).is_ok_and(|u| ctx.server.acl.get(u).is_some());
                    if !known {
                        return Err(CommandError::other(format!(
                            "ERR No such user '{}'",
                            arg_text(v, usize::MAX)
                        )));
                    }
                    user = Some(v.clone());
                }
                b"skipme" => skipme = yes_no(v)?,
                // MAXAGE is a Redis 7.4 filter: 7.2 answers it with a syntax error.
                _ => return Err(CommandError::Syntax),
            }
        }
    }
    let mut killed = 0;
    let mut kill_self = false;
    let mut others = std::collections::HashSet::new();
    for h in sorted_clients(ctx) {
        let me = h.id == ctx.client.id;
        let matches = addr.as_ref().is_none_or(|a| h.addr.as_bytes() == &a[..])
            && laddr.as_ref().is_none_or(|a| h.laddr.as_bytes() == &a[..])
            && id.is_none_or(|i| h.id == i)
            && ty.is_none_or(|t| type_of(&h) == t)
            && user
                .as_ref()
                .is_none_or(|u| h.meta.lock().user.as_bytes() == &u[..])
            && !(me && skipme);
        if !matches {
            continue;
        }
        killed += 1;
        if me {
            kill_self = true;
        } else {
            others.insert(h.id);
        }
    }
    ctx.server.close_clients(&others);
    if old_form {
        if killed == 0 {
            return Err(CommandError::other("ERR No such client"));
        }
        ctx.reply.ok();
    } else {
        ctx.reply.int(killed);
    }
    if kill_self {
        ctx.client.close_after_reply = true;
    }
    Ok(())
}

pub fn reply(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mode = &args[2];
    if mode.eq_ignore_ascii_case(b"on") {
        ctx.client.reply_mode = ReplyMode::On;
        ctx.reply.ok();
    } else if mode.eq_ignore_ascii_case(b"off") {
        ctx.client.reply_mode = ReplyMode::Off;
    } else if mode.eq_ignore_ascii_case(b"skip") {
        if ctx.client.reply_mode != ReplyMode::Off {
            ctx.client.reply_mode = ReplyMode::SkipNext;
        }
    } else {
        return Err(CommandError::Syntax);
    }
    ctx.handle.meta.lock().reply_off = ctx.client.reply_mode == ReplyMode::Off;
    Ok(())
}

/// CLIENT PAUSE timeout [WRITE|ALL] (see `crate::ops::pause`).
pub fn pause(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let ms = match parse_i64(&args[2]) {
        Ok(n) if n < 0 => return Err(CommandError::other("ERR timeout is negative")),
        Ok(n) => n as u64,
        Err(_) => {
            return Err(CommandError::other(
                "ERR timeout is not an integer or out of range",
            ))
        }
    };
    let mode = match args.get(3) {
        None => PauseMode::All,
        Some(m) if m.eq_ignore_ascii_case(b"write") => PauseMode::Write,
        Some(m) if m.eq_ignore_ascii_case(b"all") => PauseMode::All,
        Some(_) => {
            return Err(CommandError::other(
                "ERR CLIENT PAUSE mode must be WRITE or ALL",
            ))
        }
    };
    if args.len() > 4 {
        return Err(CommandError::SubcommandSyntax {
            sub: arg_text(&args[1], 128),
            cmd: "CLIENT".into(),
        });
    }
    let until = tokio::time::Instant::now() + std::time::Duration::from_millis(ms);
    ctx.server.ops.pause.pause(mode, until);
    ctx.reply.ok();
    Ok(())
}

pub fn unpause(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ctx.server.ops.pause.unpause();
    ctx.reply.ok();
    Ok(())
}

/// Whether CLIENT PAUSE holds this request back now: every command under `ALL`; under
/// `WRITE`, PUBLISH (Redis 7 flags it `may_replicate`; SPUBLISH it does not) and an EXEC whose
/// transaction would run one.
pub fn held_by_pause(
    server: &crate::state::ServerState,
    client: &crate::client::ClientState,
    req: &[Bytes],
) -> bool {
    let pause = &server.ops.pause;
    if pause.current().is_none() {
        return false;
    }
    let is_publish = |r: &[Bytes]| {
        r.first()
            .is_some_and(|n| n.eq_ignore_ascii_case(b"publish"))
    };
    let writes = is_publish(req)
        || (req.first().is_some_and(|n| n.eq_ignore_ascii_case(b"exec"))
            && client
                .multi
                .as_ref()
                .is_some_and(|tx| tx.queued.iter().any(|q| is_publish(q))));
    pause.holds(writes)
}

/// NO-EVICT and NO-TOUCH: a broker that stores nothing has no eviction or LRU, so they only
/// set the `e` and `T` flags CLIENT LIST shows.
fn on_off(args: &[Bytes]) -> Result<bool, CommandError> {
    if args[2].eq_ignore_ascii_case(b"on") {
        Ok(true)
    } else if args[2].eq_ignore_ascii_case(b"off") {
        Ok(false)
    } else {
        Err(CommandError::Syntax)
    }
}

pub fn no_evict(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.handle.meta.lock().no_evict = on_off(args)?;
    ctx.reply.ok();
    Ok(())
}

pub fn no_touch(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.handle.meta.lock().no_touch = on_off(args)?;
    ctx.reply.ok();
    Ok(())
}

/// Redis 7.2.4's text (7.4 added KILL ID/MAXAGE and LIST ID lines and said "Prints").
const CLIENT_HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "NO-TOUCH (ON|OFF)",
    "    Will not touch LRU/LFU stats when this mode is on.",
    "HELP",
    "    Print this help.",
];

pub fn help(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    super::help_reply(ctx, CLIENT_HELP);
    Ok(())
}
