//! Security: who may connect and what they may do: passwords and users, ACL rules on commands
//! and channels, TLS. Error texts are Redis 7.2's, byte for byte.
//!
//! - `auth`: requirepass, AUTH / HELLO AUTH, NOAUTH, WRONGPASS, disabled users, ACL LOG,
//!   rename-command, maxclients, timeout, unix sockets.
//! - `acl`: ACL users' channel and command permissions, subscribers disconnected when their
//!   permissions shrink, the ACL command family.
//! - `tls`: `tls-port` beside the plain port, `tls-auth-clients`, AUTH over TLS.

#[path = "../support/mod.rs"]
mod support;

mod acl;
mod auth;
mod tls;
