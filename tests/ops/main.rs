//! Operating the server: how it is configured (redis.conf, the command line, CONFIG), watched
//! (INFO, CLIENT LIST, MONITOR, the Prometheus endpoint) and managed (CLIENT KILL and PAUSE),
//! and the built binary as an operator starts it.
//!
//! - `config_file`: redis.conf and the command line: directives, units, quoting, `include`,
//!   errors with file and line, `--check-config`.
//! - `config_example`: redis.conf.example loads as shipped.
//! - `config_cmd`: CONFIG GET/SET/RESETSTAT/REWRITE/HELP on a running server.
//! - `info`: INFO's sections and how its numbers move.
//! - `client_cmd`: CLIENT LIST/INFO fields, CLIENT KILL filters, CLIENT PAUSE/UNPAUSE.
//! - `monitor`: MONITOR's lines, what it shows and what it hides.
//! - `metrics`: the Prometheus endpoint's exposition text and its values.
//! - `binary`: the pubsubd binary with redis-server-style arguments, a config file, config
//!   errors, and SIGTERM with clients connected.

#[path = "../support/mod.rs"]
mod support;

mod binary;
mod client_cmd;
mod config_cmd;
mod config_example;
mod config_file;
mod info;
mod metrics;
mod monitor;
