//! PING, ECHO, QUIT, RESET, HELLO, AUTH, SELECT: the commands clients send around pub/sub.

use bytes::Bytes;

use super::{parse_i64, CmdResult, CommandError, Ctx};
use crate::client::ReplyMode;
use crate::protocol::RespVersion;

/// The Redis version clients see (HELLO `version`, INFO `redis_version`). Clients gate features
/// on it (coredis refuses SPUBLISH below 7.0 and sends CLIENT SETINFO only from 7.2).
pub use crate::REDIS_VERSION;

pub fn ping(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 2 {
        return Err(CommandError::WrongArity("ping"));
    }
    if ctx.client.in_resp2_subscribe_context() {
        // Redis answers a subscribed RESP2 client in the shape of a message: ["pong", arg or ""].
        ctx.reply.array(2);
        ctx.reply.bulk(b"pong");
        ctx.reply.bulk(args.get(1).map_or(&b""[..], |a| &a[..]));
    } else if let Some(msg) = args.get(1) {
        ctx.reply.bulk(msg);
    } else {
        ctx.reply.simple("PONG");
    }
    Ok(())
}

pub fn echo(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.reply.bulk(&args[1]);
    Ok(())
}

pub fn quit(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ctx.reply.ok();
    ctx.client.close_after_reply = true;
    Ok(())
}

/// RESET: leaves every subscription (without confirmations), discards MULTI, returns to RESP2,
/// database 0 and the default user, clears the name and CLIENT REPLY mode. The library name and
/// version stay, as in Redis.
pub fn reset(ctx: &mut Ctx, _: &[Bytes]) -> CmdResult {
    ctx.flush();
    let c = &mut *ctx.client;
    ctx.server.registry.remove_client(
        c.id,
        c.channels.iter(),
        c.shard_channels.iter(),
        c.patterns.iter(),
    );
    c.channels.clear();
    c.patterns.clear();
    c.shard_channels.clear();
    c.multi = None;
    ctx.server.ops.monitors.remove(c.id);
    c.db = 0;
    c.reply_mode = ReplyMode::On;
    c.tracking = crate::client::Tracking::default();
    c.user = crate::client::default_user_name();
    ctx.login.user = None;
    c.authenticated = crate::auth::default_user_authenticated(&ctx.server.acl);
    ctx.handle.meta.lock().user = crate::client::default_user_name();
    set_resp(ctx, RespVersion::Resp2);
    super::pubsub::after_change(ctx);
    {
        let mut meta = ctx.handle.meta.lock();
        meta.db = 0;
        meta.multi = -1;
        meta.multi_mem = 0;
        meta.reply_off = false;
        meta.monitor = false;
        meta.reset_extra();
        meta.no_evict = false;
        meta.no_touch = false;
        meta.user = crate::client::default_user_name();
    }
    ctx.reply.simple("RESET");
    Ok(())
}

/// Switches the protocol of the connection: its replies and the messages pushed to it.
pub fn set_resp(ctx: &mut Ctx, v: RespVersion) {
    ctx.client.resp = v;
    ctx.reply.resp = v;
    ctx.outbox().set_resp(v);
    ctx.handle.meta.lock().resp = v.number() as u8;
}

pub fn hello(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut ver = None;
    let mut next = 1;
    if args.len() >= 2 {
        let v = crate::protocol::decode::string2ll(&args[1]).ok_or_else(|| {
            CommandError::other("ERR Protocol version is not an integer or out of range")
        })?;
        if !(2..=3).contains(&v) {
            return Err(CommandError::other("NOPROTO unsupported protocol version"));
        }
        ver = Some(if v == 3 {
            RespVersion::Resp3
        } else {
            RespVersion::Resp2
        });
        next = 2;
    }
    let mut auth = None;
    let mut name = None;
    let mut j = next;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = &args[j];
        if opt.eq_ignore_ascii_case(b"AUTH") && more >= 2 {
            auth = Some((&args[j + 1], &args[j + 2]));
            j += 3;
        } else if opt.eq_ignore_ascii_case(b"SETNAME") && more >= 1 {
            super::client_cmd::validate_name(&args[j + 1])?;
            name = Some(&args[j + 1]);
            j += 2;
        } else {
            return Err(CommandError::other(format!(
                "ERR Syntax error in HELLO option '{}'",
                super::arg_text(opt, usize::MAX)
            )));
        }
    }
    if let Some((user, pass)) = auth {
        super::acl_check::authenticate(ctx, &args[0], user, pass)?;
    }
    if !ctx.client.authenticated {
        return Err(CommandError::other(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        ));
    }
    if let Some(n) = name {
        super::client_cmd::set_name(ctx, n);
    }
    if let Some(v) = ver {
        set_resp(ctx, v);
    }
    let r = &mut *ctx.reply;
    r.map(7);
    r.bulk(b"server");
    r.bulk(b"redis");
    r.bulk(b"version");
    r.bulk(REDIS_VERSION.as_bytes());
    r.bulk(b"proto");
    r.int(ctx.client.resp.number());
    r.bulk(b"id");
    r.int(ctx.client.id as i64);
    r.bulk(b"mode");
    r.bulk(if ctx.server.cluster.is_some() {
        b"cluster"
    } else {
        b"standalone"
    });
    r.bulk(b"role");
    r.bulk(b"master");
    r.bulk(b"modules");
    r.array(0);
    Ok(())
}

pub fn auth(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(CommandError::Syntax);
    }
    let default = Bytes::from_static(b"default");
    let (user, pass) = if args.len() == 2 {
        if !crate::auth::default_user_has_password(&ctx.server.acl) {
            return Err(CommandError::other("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"));
        }
        (&default, &args[1])
    } else {
        (&args[1], &args[2])
    };
    super::acl_check::authenticate(ctx, &args[0], user, pass)?;
    ctx.reply.ok();
    Ok(())
}

pub fn select(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let id = parse_i64(&args[1])?;
    if id < i32::MIN as i64 || id > i32::MAX as i64 {
        return Err(CommandError::NotInteger);
    }
    if id < 0 || id as u64 >= ctx.server.config.databases {
        return Err(CommandError::other("ERR DB index is out of range"));
    }
    // Pub/sub ignores the database, as in Redis; the number is kept for CLIENT LIST.
    ctx.client.db = id as u64;
    ctx.handle.meta.lock().db = id as u64;
    ctx.reply.ok();
    Ok(())
}
