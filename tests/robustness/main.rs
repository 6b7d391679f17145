//! Robustness and faults: the server keeps serving, frees what a client held, and stops cleanly
//! whatever its clients, its network, its limits and its signals do. Most tests run the built
//! binary as a child process and stop it by PID; the figures they print are described in
//! docs/ROBUSTNESS.md.
//!
//! - `faults`: clients that vanish or reset in every awkward state, garbage next to a healthy
//!   subscriber, `maxclients` under a burst, running out of file descriptors.
//! - `slow_consumer`: `client-output-buffer-limit pubsub` disconnects a subscriber that stopped
//!   reading; the others and the publisher carry on.
//! - `half_open`: a subscriber that vanishes without a FIN or RST is dropped by keepalive.
//! - `signals`: SIGTERM during a flood, SIGINT, SIGHUP, SHUTDOWN, the pidfile, the health
//!   probe.
//! - `container`: the binary as the image runs it, PID 1 of its own PID namespace.
//! - `soak`: ten thousand connections, floods, churn, publishers that vanish mid-pipeline.
//!
//! These tests share one process without depending on it: the namespaces (`unshare`, `ip
//! netns`) and the file descriptor limits under test (`prlimit`) belong to child processes;
//! `soak` raises this process's own descriptor limit to its hard limit, which only gives the
//! other tests more room.

#[path = "../support/mod.rs"]
mod support;

mod container;
mod faults;
mod half_open;
mod signals;
mod slow_consumer;
mod soak;
