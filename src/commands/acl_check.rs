//! Request-time ACL glue: the client's login (which user, as of which ACL epoch), AUTH, and the
//! permission check dispatch runs before each command, with its ACL LOG entry and counters.
//! The decisions themselves are `auth`'s, made on the catalogue the table hands it.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::table::CommandSpec;
use super::{CommandError, Ctx};
use crate::auth::rules::{Denied, User};
use crate::auth::users::LogReason;
use crate::auth::WRONGPASS;

/// Who a connection is logged in as, for the ACL check: the user `ClientState::user` names,
/// as of `epoch` (re-read when the ACL changes).
#[derive(Debug, Default)]
pub struct Login {
    pub user: Option<Arc<User>>,
    pub epoch: u64,
}

/// Re-reads the client's user when the ACL changed since its last command. A client whose
/// user was deleted (and that was not already disconnected for it) is closed after this reply.
pub fn refresh_user(ctx: &mut Ctx) {
    let epoch = ctx.server.acl.epoch();
    if ctx.login.epoch == epoch && ctx.login.user.is_some() {
        return;
    }
    ctx.login.epoch = epoch;
    match ctx.server.acl.get(&ctx.client.user) {
        Some(u) => ctx.login.user = Some(u),
        None => {
            // Deleted between AUTH and now: Redis frees such clients.
            ctx.client.close_after_reply = true;
            ctx.client.authenticated = false;
            ctx.login.user = Some(Arc::new(User::new(
                ctx.server.acl.catalogue(),
                &ctx.client.user,
                false,
            )));
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
            let _ = crate::auth::password::matches_any(pass, &[]);
            false
        }
    };
    match found {
        Some(u) if u.enabled && pass_ok => {
            ctx.client.authenticated = true;
            ctx.client.user = Arc::from(u.name.as_str());
            ctx.login.user = Some(u);
            ctx.login.epoch = ctx.server.acl.epoch();
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
    let mut line = super::client_info_line(ctx);
    if line.ends_with('\n') {
        line.pop();
    }
    line
}

/// Whether the client may run `spec` with `args`, without logging or counting anything.
pub fn permitted(ctx: &mut Ctx, spec: &'static CommandSpec, args: &[Bytes]) -> bool {
    refresh_user(ctx);
    let id = spec.index();
    !matches!(
        ctx.login.user.as_deref().map(|u| u.check(id, args)),
        Some(Err(_))
    )
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
    let id = spec.index();
    let denied = match ctx.login.user.as_deref().map(|u| u.check(id, args)) {
        Some(Err(d)) => d,
        _ => return Ok(()),
    };
    let Some(user) = ctx.login.user.clone() else {
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
