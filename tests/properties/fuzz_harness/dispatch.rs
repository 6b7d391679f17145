//! The `dispatch` target: arbitrary commands from a few clients through the real command
//! dispatch, against one in-process server (see `world`).
//!
//! Input: one command per line, `<client> <command> <args…>`, split with Redis's inline rules
//! (`"…"` with `\xHH` escapes, so any byte can be an argument). The first byte of `<client>`
//! picks the client; `DISCONNECT` ends that client's connection and connects a new one in its
//! place. Lines that do not split are skipped.
//!
//! Checks, after every command: every client's output is well-formed RESP of its protocol, and
//! the registry holds exactly the clients' subscriptions (`World::check`); once every client
//! has gone, nothing is left in the registry.
//!
//! Commands that reach outside the process are skipped, not run: SHUTDOWN (stops the server;
//! a real one would exit), CONFIG REWRITE (writes the config file), ACL SAVE and ACL LOAD
//! (write and read the aclfile). Skipping them here keeps the server's behaviour unchanged; with
//! no config file or aclfile configured they would only answer errors anyway.

use bytes::Bytes;
use pubsubd::protocol::decode::split_args;

use super::world::World;

/// Clients taking turns.
pub const CLIENTS: usize = 3;
/// Commands run per input, so one input stays fast.
const MAX_COMMANDS: usize = 64;

/// Whether the harness must not run `args` (see the module doc).
pub fn skipped(args: &[Bytes]) -> bool {
    let word = |i: usize| args.get(i).map(|a| a.to_ascii_lowercase());
    match word(0).as_deref() {
        Some(b"shutdown") => true,
        Some(b"config") => word(1).as_deref() == Some(b"rewrite"),
        Some(b"acl") => matches!(word(1).as_deref(), Some(b"save" | b"load")),
        _ => false,
    }
}

/// The commands of an input: (client slot, arguments; empty means disconnect).
pub fn commands(data: &[u8]) -> Vec<(usize, Vec<Bytes>)> {
    let mut out = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        let Some(words) = split_args(line) else {
            continue;
        };
        let Some((who, args)) = words.split_first() else {
            continue;
        };
        if args.is_empty() {
            continue;
        }
        let slot = usize::from(who.first().copied().unwrap_or(0)) % CLIENTS;
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        if args.len() == 1 && args[0].eq_ignore_ascii_case(b"disconnect") {
            out.push((slot, Vec::new()));
        } else if !skipped(&args) {
            out.push((slot, args));
        }
        if out.len() == MAX_COMMANDS {
            break;
        }
    }
    out
}

pub fn run(data: &[u8]) {
    let mut w = World::new(CLIENTS);
    for (slot, args) in commands(data) {
        if args.is_empty() {
            w.disconnect(slot);
        } else {
            w.run(slot, args);
        }
        w.check();
    }
    w.disconnect_all();
    w.check();
    let snap = w.server.registry.snapshot();
    assert_eq!(
        snap,
        Default::default(),
        "subscriptions outlived their clients"
    );
}
