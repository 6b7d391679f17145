//! Authentication and ACL enforcement.
//!
//! - `users`: the user table (`Acl`), the ACL log and the aclfile;
//! - `rules`: the user model and Redis's rule language;
//! - `password`: hashing, constant-time comparison, GENPASS.
//!
//! A connection starts as the `default` user, authenticated if that user is `on` and `nopass`
//! (no `requirepass`). `commands::dispatch` calls `auth_required` (NOAUTH) and then `check`
//! (NOPERM) in Redis's `processCommand` order. Secrets never reach a log line or a reply: users
//! keep only SHA-256 hashes, and failures log the user name and client, never the password.

pub mod password;
pub mod rules;
pub mod users;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use crate::commands::table::CommandSpec;
use crate::commands::{CommandError, Ctx};
use crate::state::ServerState;
use rules::{Denied, User};
use users::LogReason;

/// Redis's reply to a failed AUTH.
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Whether the default user has a password (AUTH with one argument is allowed).
pub fn default_user_has_password(server: &ServerState) -> bool {
    !server.acl.default_user().nopass
}

/// Whether a new connection starts authenticated as `default` (Redis's `createClient`).
pub fn default_user_authenticated(server: &ServerState) -> bool {
    let d = server.acl.default_user();
    d.nopass && d.enabled
}

/// Redis's `authRequired`: the default user needs a password (or is off) and this client has
/// not authenticated.
pub fn auth_required(server: &ServerState, authenticated: bool) -> bool {
    !authenticated && !server.acl.default_open()
}

/// Re-reads the client's user when the ACL changed since its last command. A client whose
/// user was deleted (and that was not already disconnected for it) is closed after this reply.
pub fn refresh_user(ctx: &mut Ctx) {
    let epoch = ctx.server.acl.epoch();
    if ctx.client.acl_epoch == epoch && ctx.client.acl.is_some() {
        return;
    }
    ctx.client.acl_epoch = epoch;
    match ctx.server.acl.get(&ctx.client.user) {
        Some(u) => ctx.client.acl = Some(u),
        None => {
            // Deleted between AUTH and now: Redis frees such clients.
            ctx.client.close_after_reply = true;
            ctx.client.authenticated = false;
            ctx.client.acl = Some(Arc::new(User::new(&ctx.client.user, false)));
        }
    }
}

/// Checks a username/password pair and logs the client in as that user (Redis's
/// `ACLAuthenticateUser`). `cmd` is the command as sent (`AUTH`, `HELLO`), for the ACL log.
pub fn authenticate(
    ctx: &mut Ctx,
    cmd: &[u8],
    user: &Bytes,
    pass: &Bytes,
) -> Result<(), CommandError> {
    let name = String::from_utf8_lossy(user);
    let found = ctx.server.acl.get(&name);
    // Hash and compare even for unknown users, so timing does not tell which users exist.
    let pass_ok = match &found {
        Some(u) => u.password_ok(pass),
        None => {
            let _ = password::matches_any(pass, &[]);
            false
        }
    };
    match found {
        Some(u) if u.enabled && pass_ok => {
            ctx.client.authenticated = true;
            ctx.client.user = u.name.clone();
            ctx.client.acl = Some(u);
            ctx.client.acl_epoch = ctx.server.acl.epoch();
            ctx.handle.meta.lock().user = ctx.client.user.clone();
            Ok(())
        }
        _ => {
            ctx.server
                .stats
                .acl_access_denied_auth
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                client_id = ctx.client.id,
                addr = %ctx.handle.addr,
                user = %name,
                "Authentication failed"
            );
            let info = client_info(ctx);
            ctx.server
                .acl
                .log(LogReason::Auth, log_context(ctx), cmd, user, info);
            Err(CommandError::other(WRONGPASS))
        }
    }
}

fn log_context(ctx: &Ctx) -> &'static str {
    if ctx.client.multi.is_some() || ctx.in_exec {
        "multi"
    } else {
        "toplevel"
    }
}

fn client_info(ctx: &Ctx) -> String {
    let mut line = crate::commands::client_info_line(ctx);
    if line.ends_with('\n') {
        line.pop();
    }
    line
}

/// Checks the client's permission to run `spec` with `args` (Redis's `ACLCheckAllPerm`),
/// logging and counting a denial. The error is Redis 7.2's wording.
pub fn check(
    ctx: &mut Ctx,
    spec: &'static CommandSpec,
    args: &[Bytes],
) -> Result<(), CommandError> {
    refresh_user(ctx);
    // The common case borrows the user: no reference count is touched per command.
    let denied = match ctx.client.acl.as_deref().map(|u| u.check(spec, args)) {
        Some(Err(d)) => d,
        _ => return Ok(()),
    };
    let Some(user) = ctx.client.acl.clone() else {
        return Ok(());
    };
    let stats = &ctx.server.stats;
    let context = log_context(ctx);
    let info = client_info(ctx);
    let (reason, object, err) = match denied {
        Denied::Command => {
            stats.acl_access_denied_cmd.fetch_add(1, Ordering::Relaxed);
            (
                LogReason::Command,
                spec.name.as_bytes().to_vec(),
                format!(
                    "NOPERM User {} has no permissions to run the '{}' command",
                    user.name, spec.name
                ),
            )
        }
        Denied::Channel(i) => {
            stats
                .acl_access_denied_channel
                .fetch_add(1, Ordering::Relaxed);
            (
                LogReason::Channel,
                args[i].to_vec(),
                "NOPERM No permissions to access a channel".to_string(),
            )
        }
    };
    ctx.server
        .acl
        .log(reason, context, &object, user.name.as_bytes(), info);
    Err(CommandError::other(err))
}

/// The reply of ACL DRYRUN for a denial (the verbose wording).
pub fn dryrun_text(user: &User, spec: &CommandSpec, args: &[Bytes], d: Denied) -> String {
    match d {
        Denied::Command => format!(
            "User {} has no permissions to run the '{}' command",
            user.name, spec.name
        ),
        Denied::Channel(i) => format!(
            "User {} has no permissions to access the '{}' channel",
            user.name,
            String::from_utf8_lossy(&args[i])
        ),
    }
}
