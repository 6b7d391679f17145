//! Scale-out over NATS, with real nats-server and pubsubd processes on free loopback ports,
//! stopped by PID; nats-server's monitoring endpoint is the independent witness of interest
//! and traffic.
//!
//! - `delivery`: a message published on one node reaches the subscribers of every other node
//!   once, in order, and only nodes with subscribers receive anything.
//! - `faults`: NATS servers killed or stalled, a node killed and restarted, bad backbone
//!   configuration at start-up.
//! - `security`: a nats-server requiring a password, a token or mutual TLS.

#[path = "../support/mod.rs"]
mod support;

mod delivery;
mod faults;
mod security;
