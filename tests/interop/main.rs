//! Interop: real client libraries as their users drive them. Under `cargo test`, the Rust
//! `redis` crate against a server in the test's own runtime; the other libraries (redis-py,
//! ioredis, node-redis, Socket.IO, redis-cli) run from `run.sh` here, against redis-server as
//! a control and then against pubsubd (see README.md).
//!
//! - `redis_crate`: sync and async pub/sub, RESP2 and RESP3.

#[path = "../support/mod.rs"]
mod support;

mod redis_crate;
