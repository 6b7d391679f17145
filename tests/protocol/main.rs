//! Protocol and commands: what a client sees on the wire from a server running in the test's
//! own runtime, asserted as exact bytes in RESP2 and RESP3.
//!
//! - `requests`: request parsing: pipelining, partial frames, inline commands, Redis's protocol
//!   errors and where the connection is closed.
//! - `pubsub`: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE, PUBLISH and PUBSUB, their confirmations,
//!   messages and counts.
//! - `connection`: HELLO, AUTH, SELECT, ECHO, PING, RESET, MULTI/EXEC and the other commands
//!   clients send around pub/sub.
//! - `runs`: pipelines of PUBLISH to one channel, delivered together, give exactly what the
//!   same requests give one by one.
//! - `ordering`: one order per channel for every subscriber, and each publisher's order, under
//!   concurrent publishers and subscribers.

#[path = "../support/mod.rs"]
mod support;

mod connection;
mod ordering;
mod pubsub;
mod requests;
mod runs;
