//! # pubsubd
//!
//! A standalone pub/sub broker that speaks the Redis protocol (RESP2 and RESP3) and implements
//! Redis 7.2's pub/sub with the same replies, counts, error texts and ordering: SUBSCRIBE,
//! PSUBSCRIBE, PUBLISH, the sharded SSUBSCRIBE/SPUBLISH, PUBSUB introspection, and the connection
//! commands clients send around them. Messages are fire-and-forget: delivered at most once, in
//! publish order, to whoever is subscribed at that moment, and never stored.
//!
//! ## Architecture
//! ```text
//! server (accept, connection tasks) → commands (table, dispatch, handlers)
//!        → registry (channels, patterns, fan-out) → outbox (per-client byte-counted queues)
//!                                                 → protocol (decode requests, encode replies)
//! ```
//! A connection's reader decodes requests from its read buffer (`protocol::decode`), and
//! `commands::dispatch` checks and runs each one against the client's `ClientState` and the shared
//! `Registry`. Replies and pushed messages go into the client's `Outbox`, which its writer task
//! drains to the socket in batches. PUBLISH encodes each message frame once per protocol version
//! and hands every receiver a reference-counted clone. The registry's locking (one order stripe per
//! channel) gives every subscriber of a channel the same order of messages.
//!
//! `auth` owns users, ACL rules and passwords: dispatch asks it whether a client must
//! authenticate first (NOAUTH) and whether its user may run a command on its channels (NOPERM).
//! `server::listener` turns TCP, TLS (rustls) and unix sockets into one stream type.
//!
//! `client`, `config` and `stats` are leaves any layer may use; nothing below `server` knows about
//! sockets, tasks or signals.
//!
//! ## Operations
//! `config` reads redis.conf and the command line and holds the table CONFIG GET/SET/REWRITE
//! work from (`config::params`); values CONFIG SET may change live in small shared cells
//! (`config::Runtime`, `outbox::OutputLimits`) that connections read where they apply.
//! `monitor` (MONITOR), `pause` (CLIENT PAUSE), `slowlog` (SLOWLOG) and `channel_rates`
//! (busiest channels) are leaves kept in `ServerState::ops`, each costing a command one atomic
//! load while unused. `memory` reads the allocator's count (the binary installs a counting
//! allocator), `logging` writes Redis-format log lines and follows CONFIG SET loglevel and
//! SIGHUP, `health` is the container probe, and `server::metrics` the Prometheus endpoint.

#![forbid(unsafe_code)]

pub mod auth;
pub mod channel_rates;
pub mod client;
pub mod commands;
pub mod config;
pub mod health;
pub mod logging;
pub mod memory;
pub mod monitor;
pub mod outbox;
pub mod pause;
pub mod protocol;
pub mod registry;
pub mod server;
pub mod slowlog;
pub mod state;
pub mod stats;

/// The Redis version pubsubd reports (HELLO, INFO `redis_version`); its own version is INFO
/// `pubsubd_version`. Clients gate features on this (SPUBLISH needs 7.0, CLIENT SETINFO 7.2).
pub const REDIS_VERSION: &str = "7.2.4";
