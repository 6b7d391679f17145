//! What every test binary shares, so that each test reads as the behaviour it checks. A binary
//! includes it with `#[path = "../support/mod.rs"] mod support;` and uses what it needs.
//!
//! - `server`: `TestServer`, the server in the test's own runtime on an ephemeral loopback
//!   port, and `Raw`, a connection speaking RESP by hand that asserts exact bytes; every read
//!   is bounded by `TIMEOUT`, so a bug fails in seconds instead of hanging.
//! - `resp`: the one RESP reader (`parse` into a `Frame`, `frame_len`, `bulks`, `int_reply`),
//!   the request encoder and the frames tests expect.
//! - `info`: text replies read as fields: INFO (the one INFO parser) and CLIENT LIST.
//! - `process`: child processes: the built binary on a free port, waiting for a port or a
//!   condition, scratch directories, signals, /proc figures, the file descriptor limit.
//! - `nats`: nats-server and pubsubd processes for the backbone tests, and nats-server's
//!   monitoring endpoint as a witness.
//! - `prop`: the property tests' case counts (`PROPTEST_CASES` runs them longer).

// Each binary uses part of this module; the rest is compiled but unused there.
#![allow(dead_code, unused_imports)]

pub mod info;
pub mod nats;
pub mod process;
pub mod prop;
pub mod resp;
pub mod server;

pub use resp::{encode, show};
pub use server::{Raw, TestServer, TIMEOUT};
