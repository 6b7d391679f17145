//! Authentication. Without a password configured the `default` user is `nopass`: every
//! connection starts authenticated, and `AUTH default <anything>` succeeds as in Redis.

use bytes::Bytes;

use crate::commands::{CommandError, Ctx};
use crate::state::ServerState;

/// Redis's reply to a failed AUTH.
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Whether the default user has a password (requirepass set).
pub fn default_user_has_password(_server: &ServerState) -> bool {
    false
}

/// Whether a new connection starts authenticated as `default`.
pub fn default_user_authenticated(server: &ServerState) -> bool {
    !default_user_has_password(server)
}

/// Checks a username/password pair and logs the client in as that user.
pub fn authenticate(ctx: &mut Ctx, user: &Bytes, _pass: &Bytes) -> Result<(), CommandError> {
    if &user[..] == b"default" && !default_user_has_password(ctx.server) {
        ctx.client.authenticated = true;
        ctx.client.user = "default".to_string();
        return Ok(());
    }
    tracing::warn!(client_id = ctx.client.id, "authentication failed");
    Err(CommandError::other(WRONGPASS))
}
