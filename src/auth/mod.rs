//! Authentication and ACL decisions.
//!
//! - `catalogue`: the commands rules are about, handed in by the layer that owns the commands;
//! - `users`: the user table (`Acl`), the ACL log and the aclfile;
//! - `rules`: the user model and Redis's rule language;
//! - `password`: hashing, constant-time comparison, GENPASS;
//! - `redis_commands`: Redis's command names, so aclfiles written for Redis load.
//!
//! A connection starts as the `default` user, authenticated if that user is `on` and `nopass`
//! (no `requirepass`). Dispatch asks `auth_required` (NOAUTH) and then `User::check` (NOPERM) in
//! Redis's `processCommand` order, and logs and counts a denial itself. Secrets never reach a
//! log line or a reply: users keep only SHA-256 hashes, and failures log the user name and
//! client, never the password.

pub mod catalogue;
pub mod password;
mod redis_commands;
pub mod rules;
pub mod users;

use users::Acl;

/// Redis's reply to a failed AUTH.
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Whether the default user has a password (AUTH with one argument is allowed).
pub fn default_user_has_password(acl: &Acl) -> bool {
    !acl.default_user().nopass
}

/// Whether a new connection starts authenticated as `default` (Redis's `createClient`).
pub fn default_user_authenticated(acl: &Acl) -> bool {
    let d = acl.default_user();
    d.nopass && d.enabled
}

/// Redis's `authRequired`: the default user needs a password (or is off) and this client has
/// not authenticated.
pub fn auth_required(acl: &Acl, authenticated: bool) -> bool {
    !authenticated && !acl.default_open()
}
