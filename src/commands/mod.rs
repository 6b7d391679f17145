//! The command table and dispatch.
//!
//! Every command is one row of `TABLE` (name, Redis arity, flags, ACL categories, docs, handler)
//! and one `fn`. Arity errors, unknown (sub)command errors, the RESP2 subscribe-context check,
//! MULTI queueing and COMMAND COUNT/INFO/DOCS are all derived from the table.
//!
//! Checks run in Redis's `processCommand` order: existence → arity → authentication (NOAUTH,
//! unless the row has `no_auth`) → ACL (NOPERM) → RESP2 subscribe context → MULTI queueing →
//! call. EXEC checks the ACL again for each queued command, as Redis does. A rejected command marks a MULTI in progress as dirty (EXECABORT), and a
//! rejected EXEC aborts the transaction with Redis's `EXECABORT … because of:` text.
//!
//! Handlers are synchronous: they change `ClientState` and the registry and append replies to
//! `Ctx::reply`. Pub/sub handlers first flush that buffer into the outbox, then queue their
//! confirmations through the registry, so replies and confirmations keep the order of commands.

pub mod acl;
mod acl_check;
mod admin;
mod client_cmd;
mod cluster;
mod command_docs;
mod config_cmd;
mod info;
pub mod lookup;
mod multi;
mod pubsub;
mod session;
pub mod table;
mod tracking;

use std::borrow::Cow;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::client::{ClientHandle, ClientState};
use crate::outbox::Outbox;
use crate::protocol::{ReplyBuf, Request};
use crate::state::ServerState;
pub use acl_check::Login;
pub use client_cmd::held_by_pause;
pub use lookup::{catalogue, lookup, Lookup};
pub use pubsub::drop_moved_shard_channels;
pub use table::CommandSpec;
pub use tracking::after_command;

/// An error reply; the connection stays open. Texts are byte-for-byte Redis 7's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(&'static str),
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR Can't execute '{0}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")]
    SubscribeContext(&'static str),
    #[error("ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {cmd} HELP.")]
    SubcommandSyntax { sub: String, cmd: String },
    #[error("ERR Client names cannot contain spaces, newlines or special characters.")]
    BadClientName,
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    #[error("ERR This instance has cluster support disabled")]
    ClusterDisabled,
    /// `-CROSSSLOT` or `-MOVED` for a sharded command (`cluster-enabled yes`).
    #[error("{0}")]
    Cluster(#[from] crate::cluster::Redirect),
    /// Any other text, already complete with its code (`ERR …`, `NOPROTO …`).
    #[error("{0}")]
    Other(Cow<'static, str>),
    /// A text echoing a client's argument, sent as the bytes Redis sends: the argument is not
    /// necessarily UTF-8 (shown lossily where it is printed).
    #[error("{}", String::from_utf8_lossy(.0))]
    Echo(Bytes),
}

impl CommandError {
    pub fn other(s: impl Into<Cow<'static, str>>) -> Self {
        CommandError::Other(s.into())
    }
}

pub type CmdResult = Result<(), CommandError>;
pub type Handler = fn(&mut Ctx, &[Bytes]) -> CmdResult;

/// What a command handler works with.
pub struct Ctx<'a> {
    pub server: &'a ServerState,
    pub client: &'a mut ClientState,
    /// The client's ACL user, for the permission check.
    pub login: &'a mut Login,
    pub handle: &'a ClientHandle,
    pub reply: &'a mut ReplyBuf,
    /// Inside EXEC (Redis's CLIENT_DENY_BLOCKING during a transaction).
    pub in_exec: bool,
    /// Outboxes given a first frame, flushed once the current batch of commands is done.
    pub wakes: &'a mut Vec<Outbox>,
}

impl Ctx<'_> {
    pub fn outbox(&self) -> &Outbox {
        &self.handle.outbox
    }

    /// Moves the replies buffered so far into the outbox, ahead of anything queued directly.
    pub fn flush(&mut self) {
        if !self.reply.is_empty() {
            let b = self.reply.take();
            self.handle.outbox.push_own(b);
        }
    }

    pub fn error(&mut self, e: &CommandError) {
        let text = e.to_string();
        self.server.stats.count_error(&text);
        match e {
            CommandError::Echo(raw) => self.reply.error_bytes(raw),
            _ => self.reply.error(&text),
        }
    }
}

/// Runs one request: checks, then queues (in MULTI) or calls it.
pub fn dispatch(ctx: &mut Ctx, req: Request) {
    let spec = match lookup::lookup_renamed(&req, &ctx.server.renames) {
        Lookup::Found(spec) => spec,
        Lookup::Unknown(err) => {
            ctx.client.last_cmd = "NULL";
            return reject(ctx, None, err);
        }
    };
    // Redis's `lastcmd` (CLIENT LIST `cmd=`) is the last command looked up, queued ones included.
    ctx.client.last_cmd = spec.name;
    if !spec.arity_ok(req.len()) {
        return reject(ctx, Some(spec), CommandError::WrongArity(spec.name));
    }
    if crate::auth::auth_required(&ctx.server.acl, ctx.client.authenticated) && !spec.no_auth() {
        return reject(ctx, Some(spec), CommandError::NoAuth);
    }
    if let Err(e) = acl_check::check(ctx, spec, &req) {
        return reject(ctx, Some(spec), e);
    }
    if let Some(c) = ctx.server.cluster.as_deref() {
        let tls = c.is_tls_connection(&ctx.handle.laddr);
        if let Err(e) = route(c, spec, &req, ctx.client.multi.as_deref(), tls) {
            if spec.name == "exec" {
                // Redis discards the transaction and answers the redirection as it is.
                ctx.client.multi = None;
                ctx.handle.meta.lock().multi = -1;
                count_rejected(ctx, spec);
                return ctx.error(&CommandError::Cluster(e));
            }
            return reject(ctx, Some(spec), CommandError::Cluster(e));
        }
    }
    if ctx.client.in_resp2_subscribe_context() && !spec.subscribe_context {
        return reject(ctx, Some(spec), CommandError::SubscribeContext(spec.name));
    }
    if ctx.client.multi.is_some() && spec.flags.contains(&"no_multi") {
        let e = CommandError::other("ERR Command not allowed inside a transaction");
        return reject(ctx, Some(spec), e);
    }
    if ctx.client.multi.is_some() && !spec.runs_in_multi {
        return multi::queue(ctx, req);
    }
    call(ctx, spec, &req);
}

/// PUBLISH or SPUBLISH with a channel and a message: a request that may start a run
/// `publish_run` takes together.
pub fn is_publish(req: &[Bytes]) -> bool {
    req.len() == 3
        && (req[0].eq_ignore_ascii_case(b"publish") || req[0].eq_ignore_ascii_case(b"spublish"))
}

/// Whether `a` and `b` are the same PUBLISH or SPUBLISH (as spelt) to the same channel: the
/// requests `publish_run` takes together.
pub fn same_publish(a: &[Bytes], b: &[Bytes]) -> bool {
    is_publish(a) && b.len() == 3 && a[1] == b[1] && a[0].eq_ignore_ascii_case(&b[0])
}

/// Runs requests `same_publish` grouped (a pipeline of messages to one channel) as
/// `dispatch` would run them one after the other, with one pass over the channel's
/// subscribers (`Registry::publish_run`). Every check `dispatch` makes gives the same answer
/// for each of them, so it is made once; whenever anything would treat them one by one (a
/// check fails, a transaction, CLIENT REPLY, MONITOR, a publisher that receives its own
/// messages), nothing is run and false is returned: the caller dispatches them one by one.
pub fn publish_run(ctx: &mut Ctx, reqs: &[Request]) -> bool {
    let first = &reqs[0];
    let Lookup::Found(spec) = lookup::lookup_renamed(first, &ctx.server.renames) else {
        return false;
    };
    let ns = match spec.name {
        "publish" => crate::registry::Namespace::Global,
        "spublish" => crate::registry::Namespace::Shard,
        _ => return false,
    };
    let server = ctx.server;
    if !spec.arity_ok(first.len())
        || crate::auth::auth_required(&server.acl, ctx.client.authenticated)
        || ctx.client.in_resp2_subscribe_context()
        || ctx.client.multi.is_some()
        || ctx.client.reply_mode != crate::client::ReplyMode::On
        || server.ops.monitors.active()
        || !acl_check::permitted(ctx, spec, first)
    {
        return false;
    }
    if let Some(c) = server.cluster.as_deref() {
        let tls = c.is_tls_connection(&ctx.handle.laddr);
        if route(c, spec, first, None, tls).is_err() {
            return false;
        }
    }
    let start = std::time::Instant::now();
    let payloads: Vec<&[u8]> = reqs.iter().map(|r| &r[2][..]).collect();
    let Some(n) = server
        .registry
        .publish_run(ctx.client.id, ns, &first[1], &payloads, ctx.wakes)
    else {
        return false;
    };
    let k = reqs.len() as u64;
    server
        .stats
        .pubsub_messages_published
        .fetch_add(k, Ordering::Relaxed);
    for _ in reqs {
        server.ops.channel_rates.observe(ns, &first[1]);
        ctx.reply.int(n as i64);
    }
    ctx.client.last_cmd = spec.name;
    let nanos = start.elapsed().as_nanos() as u64;
    ctx.client.call_stats.record_many(spec.index(), k, nanos);
    for r in reqs {
        after_call(ctx, spec, r, nanos / k / 1000);
    }
    true
}

/// Calls a command that passed its checks.
pub fn call(ctx: &mut Ctx, spec: &'static CommandSpec, args: &[Bytes]) {
    let start = std::time::Instant::now();
    let result = (spec.handler)(ctx, args);
    let nanos = start.elapsed().as_nanos() as u64;
    let failed = result.is_err();
    if let Err(e) = result {
        ctx.error(&e);
    }
    ctx.client.call_stats.record(spec.index(), nanos, failed);
    after_call(ctx, spec, args, nanos / 1000);
}

/// What Redis's `call()` does after a command ran: SLOWLOG and MONITOR. Each costs one
/// relaxed atomic load when unused.
fn after_call(ctx: &mut Ctx, spec: &'static CommandSpec, args: &[Bytes], usec: u64) {
    let server = ctx.server;
    let threshold = server
        .runtime
        .slowlog_log_slower_than
        .load(Ordering::Relaxed);
    if threshold >= 0 && usec as i64 >= threshold && !spec.flags.contains(&"skip_slowlog") {
        let name = ctx.handle.meta.lock().extra().name.clone();
        server.ops.slowlog.record(
            threshold,
            server.runtime.slowlog_max_len.load(Ordering::Relaxed),
            usec,
            args,
            &ctx.handle.addr,
            name.as_ref(),
        );
    }
    if server.ops.monitors.active() && !spec.flags.contains(&"admin") {
        if ctx.handle.meta.lock().monitor {
            // A monitor sees its own command after its reply, as in Redis.
            ctx.flush();
        }
        let redacted = redacted_args(spec, args);
        server
            .ops
            .monitors
            .feed(ctx.client.db, &ctx.handle.addr, args, &redacted, ctx.wakes);
    }
}

/// Arguments MONITOR shows as `(redacted)`: AUTH's, and HELLO's after AUTH (Redis 7).
fn redacted_args(spec: &CommandSpec, args: &[Bytes]) -> Vec<usize> {
    match spec.name {
        "auth" => (1..args.len()).collect(),
        "hello" => match args.iter().position(|a| a.eq_ignore_ascii_case(b"auth")) {
            Some(i) => vec![i + 1, i + 2],
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// The shard channels a command names, for its slot check (SSUBSCRIBE, SUNSUBSCRIBE: all its
/// arguments; SPUBLISH: the first).
fn shard_channels<'r>(spec: &CommandSpec, args: &'r [Bytes]) -> &'r [Bytes] {
    match spec.keys {
        table::Keys::ShardChannels { last: -1 } => &args[1..],
        table::Keys::ShardChannels { .. } => &args[1..2.min(args.len())],
        table::Keys::None => &[],
    }
}

/// Redis Cluster's redirection check (`getNodeByQuery`): the command's channels, or for EXEC
/// those of every queued command, must share a slot this node serves.
fn route(
    c: &crate::cluster::Cluster,
    spec: &CommandSpec,
    args: &[Bytes],
    multi: Option<&crate::client::Transaction>,
    tls: bool,
) -> Result<(), crate::cluster::Redirect> {
    use crate::cluster::Routing;
    let routing = |s: &CommandSpec| match s.name {
        "sunsubscribe" => Routing::Local,
        _ => Routing::Owner,
    };
    if spec.name == "exec" {
        let Some(tx) = multi else { return Ok(()) };
        let queued: Vec<(&'static CommandSpec, &Request)> = tx
            .queued
            .iter()
            .filter_map(|r| match lookup::lookup(r) {
                Lookup::Found(s) if s.keys != table::Keys::None => Some((s, r)),
                _ => None,
            })
            .collect();
        let owner = queued.iter().any(|(s, _)| routing(s) == Routing::Owner);
        let channels = queued
            .iter()
            .flat_map(|(s, r)| shard_channels(s, r).iter().map(|b| &b[..]));
        let routing = if owner {
            Routing::Owner
        } else {
            Routing::Local
        };
        return c.route(routing, channels, tls);
    }
    if spec.keys == table::Keys::None {
        return Ok(());
    }
    c.route(
        routing(spec),
        shard_channels(spec, args).iter().map(|b| &b[..]),
        tls,
    )
}

fn count_rejected(ctx: &Ctx, spec: &'static CommandSpec) {
    ctx.server.stats.commands.with(spec.index(), |c| {
        c.rejected_calls.fetch_add(1, Ordering::Relaxed);
    });
}

fn reject(ctx: &mut Ctx, spec: Option<&'static CommandSpec>, err: CommandError) {
    if let Some(tx) = ctx.client.multi.as_mut() {
        tx.dirty = true;
    }
    if let Some(s) = spec {
        count_rejected(ctx, s);
    }
    if spec.is_some_and(|s| s.name == "exec") {
        ctx.client.multi = None;
        multi::show_transaction(ctx);
        let text = err.to_string();
        let text = text.strip_prefix("ERR ").unwrap_or(&text);
        let abort = format!("EXECABORT Transaction discarded because of: {text}");
        return ctx.error(&CommandError::other(abort));
    }
    ctx.error(&err);
}

/// The CLIENT LIST line of the current client, ending in its newline (ACL LOG's `client-info`
/// drops it).
pub fn client_info_line(ctx: &Ctx) -> String {
    client_cmd::client_line(ctx.handle, Some((ctx.client.last_cmd, ctx.client.argv_mem)))
}

/// Parses an integer argument with Redis's `string2ll` rules.
pub fn parse_i64(arg: &[u8]) -> Result<i64, CommandError> {
    crate::protocol::decode::string2ll(arg).ok_or(CommandError::NotInteger)
}

/// An argument as C's `%.<max>s` prints it: up to `max` bytes, cut at a NUL.
pub fn arg_bytes(arg: &[u8], max: usize) -> &[u8] {
    let end = memchr::memchr(0, arg).unwrap_or(arg.len()).min(max);
    &arg[..end]
}

/// Lossy text of an argument, for error messages: `arg_bytes` as UTF-8.
pub fn arg_text(arg: &[u8], max: usize) -> String {
    String::from_utf8_lossy(arg_bytes(arg, max)).into_owned()
}

/// A HELP reply: one status line per text line, as Redis's `addReplyHelp`.
pub fn help_reply(ctx: &mut Ctx, lines: &[&str]) {
    ctx.reply.array(lines.len());
    for l in lines {
        ctx.reply.simple(l);
    }
}
