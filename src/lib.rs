//! # pubsubd
//!
//! A standalone pub/sub broker that speaks the Redis protocol (RESP2 and RESP3) and implements
//! Redis 7.2's pub/sub with the same replies, counts, error texts and ordering: SUBSCRIBE,
//! PSUBSCRIBE, PUBLISH, the sharded SSUBSCRIBE/SPUBLISH, PUBSUB introspection, and the connection
//! commands clients send around them. Messages are fire-and-forget: delivered at most once, in
//! publish order, to whoever is subscribed at that moment, and never stored.
//!
//! ## Architecture
//! Modules are layered; each uses only the layers below it, and `tests/architecture.rs` fails
//! when a `crate::` path points up or sideways (read it next):
//! ```text
//! server      accept loops, connection tasks, listeners (TCP/TLS/unix), /metrics, start-up checks
//!   ↓
//! commands    the command table, lookup and its one numbering, dispatch, handlers, ACL glue
//!   ↓
//! state       ServerState: config, registry, client table, users, ops, counters
//!   ↓
//! auth · registry · ops · (backbone · cluster)
//!   ↓
//! client → outbox → protocol · logging
//!   ↓
//! config · stats · memory
//!   ↓
//! glob
//! ```
//! A connection's reader decodes requests from its read buffer (`protocol::decode`), and
//! `commands::dispatch` checks and runs each one against the client's `ClientState` and the shared
//! `Registry`. Replies and pushed messages go into the client's `Outbox`. When a batch of
//! commands is done, the reader that ran it writes its replies and the messages it fanned out
//! straight to the sockets that take them (`Outbox::flush`); a writer task, started only while a
//! socket is full, writes what it did not take. PUBLISH encodes each message frame once per protocol
//! version and hands every receiver a reference-counted clone; a pipeline of publishes to one
//! channel is encoded into one buffer that every subscriber shares (`Registry::publish_run`). The registry's order stripes (a fixed
//! array of locks, each covering the channels that hash to it) give every subscriber of a
//! channel the same order of messages.
//!
//! `auth` owns users, ACL rules and passwords, and decides on a command catalogue
//! (`auth::catalogue`) that `commands` builds from its table and hands over: names, categories,
//! subcommands and which arguments are channels. Dispatch asks it whether a client must
//! authenticate first (NOAUTH) and whether its user may run a command on its channels (NOPERM).
//! `config` describes settings and knows no subsystem; what only a subsystem can check (ACL
//! rules, command names in `rename-command`, TLS material) is checked by `server::startup`,
//! with Redis's fatal config report naming the file and line. Nothing below `server` knows
//! about sockets, tasks or signals.
//!
//! `backbone` scales a node out over NATS: it is handed to the registry as its `Hook`
//! (interest changes and local publishes, enqueued without blocking) and delivers other nodes'
//! messages through `Registry::deliver`. Without a `backbone` directive it does not exist and
//! the registry's publish path has one untaken branch.
//!
//! ## Operations
//! `config` reads redis.conf and the command line and holds the table CONFIG GET/SET/REWRITE
//! work from (`config::params`); values CONFIG SET may change live in small shared cells
//! (`config::Runtime`, `outbox::OutputLimits`) that connections read where they apply.
//! `ops` holds MONITOR, CLIENT PAUSE, SLOWLOG and the busiest channels (`ops::Ops`, kept in
//! `ServerState::ops`), each costing a command one atomic load while unused. `stats` holds the
//! counters and one table of them (`stats::STATS_SECTION`) from which INFO's Stats section, the
//! metrics endpoint (`server::metrics`) and CONFIG RESETSTAT all work; `memory` reads the
//! allocator's count (the binary installs a counting allocator); `logging` writes Redis-format
//! log lines and follows CONFIG SET loglevel and SIGHUP. The binary (src/bin/pubsubd/) adds
//! argument handling, signals, the counting allocator and the container health probe.

#![forbid(unsafe_code)]

pub mod auth;
pub mod backbone;
pub mod client;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod glob;
pub mod logging;
pub mod memory;
pub mod ops;
pub mod outbox;
pub mod protocol;
pub mod registry;
pub mod server;
pub mod state;
pub mod stats;

/// The Redis version pubsubd reports (HELLO, INFO `redis_version`); its own version is INFO
/// `pubsubd_version`. Clients gate features on this (SPUBLISH needs 7.0, CLIENT SETINFO 7.2).
pub const REDIS_VERSION: &str = "7.2.4";
