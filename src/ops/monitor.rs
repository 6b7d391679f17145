//! MONITOR: clients that receive every command the server runs, as Redis's
//! `replicationFeedMonitors` formats it:
//! `+1700000000.123456 [0 127.0.0.1:1234] "PUBLISH" "ch" "msg"`.
//!
//! Commands are fed after they run (Redis 7), never admin commands (CONFIG, CLIENT LIST, …),
//! and never commands refused before running (unknown, wrong arity, queued in MULTI: EXEC
//! feeds them as it runs them). Passwords of AUTH and HELLO … AUTH are shown as
//! `(redacted)`. When nobody monitors, the cost to a command is one relaxed atomic load.
//!
//! Lock: one mutex around the list of monitors, taken only while some monitor is connected;
//! pushes to an outbox never block.

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

use crate::outbox::{Outbox, Pushed};

/// The connected monitors.
#[derive(Default)]
pub struct Monitors {
    count: AtomicUsize,
    list: Mutex<Vec<Outbox>>,
}

impl Monitors {
    /// Whether anyone monitors (the one check on every command).
    #[inline]
    pub fn active(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// Adds a monitor; false if it already was one.
    pub fn add(&self, who: &Outbox) -> bool {
        let mut list = self.list.lock();
        if list.iter().any(|o| o.id() == who.id()) {
            return false;
        }
        list.push(who.clone());
        self.count.store(list.len(), Ordering::Relaxed);
        true
    }

    /// Removes a client from the monitors (RESET, disconnect); false if it was not one.
    pub fn remove(&self, id: u64) -> bool {
        if !self.active() {
            return false;
        }
        let mut list = self.list.lock();
        let before = list.len();
        list.retain(|o| o.id() != id);
        self.count.store(list.len(), Ordering::Relaxed);
        before != list.len()
    }

    pub fn is_monitor(&self, id: u64) -> bool {
        self.active() && self.list.lock().iter().any(|o| o.id() == id)
    }

    /// Queues one command line to every monitor; those whose queue was empty go into `wakes`,
    /// for the reader that ran the command to write once its batch is done (as it writes the
    /// messages it fanned out).
    pub fn feed(
        &self,
        db: u64,
        addr: &str,
        args: &[Bytes],
        redacted: &[usize],
        wakes: &mut Vec<Outbox>,
    ) {
        let line = format_line(std::time::SystemTime::now(), db, addr, args, redacted);
        for o in self.list.lock().iter() {
            if o.push_deferred(line.clone()) == Pushed::NeedsWake {
                wakes.push(o.clone());
            }
        }
    }
}

/// Redis's `sdscatrepr`: a double-quoted string with `\n \r \t \a \b \\ \"` and `\xHH`
/// escapes for the other non-printable bytes.
pub fn repr(out: &mut BytesMut, s: &[u8]) {
    out.extend_from_slice(b"\"");
    for &b in s {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.extend_from_slice(&[b]),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.extend_from_slice(b"\"");
}

/// One monitor line; the arguments at the `redacted` positions show as `"(redacted)"`.
pub fn format_line(
    now: std::time::SystemTime,
    db: u64,
    addr: &str,
    args: &[Bytes],
    redacted: &[usize],
) -> Bytes {
    let t = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let mut out = BytesMut::with_capacity(64 + args.iter().map(|a| a.len() + 3).sum::<usize>());
    out.extend_from_slice(
        format!("+{}.{:06} [{db} {addr}]", t.as_secs(), t.subsec_micros()).as_bytes(),
    );
    for (i, a) in args.iter().enumerate() {
        out.extend_from_slice(b" ");
        if redacted.contains(&i) {
            out.extend_from_slice(b"\"(redacted)\"");
        } else {
            repr(&mut out, a);
        }
    }
    out.extend_from_slice(b"\r\n");
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format_matches_redis() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_micros(1_700_000_000_123_456);
        let args = [
            Bytes::from_static(b"PUBLISH"),
            Bytes::from_static(b"ch"),
            Bytes::from_static(b"m\"s g\n\x01\xff\\"),
        ];
        let line = format_line(t, 0, "127.0.0.1:1234", &args, &[]);
        assert_eq!(
            &line[..],
            &b"+1700000000.123456 [0 127.0.0.1:1234] \"PUBLISH\" \"ch\" \"m\\\"s g\\n\\x01\\xff\\\\\"\r\n"[..]
        );
        let auth = [Bytes::from_static(b"AUTH"), Bytes::from_static(b"pw")];
        let line = format_line(t, 3, "a:1", &auth, &[1]);
        assert_eq!(
            &line[..],
            b"+1700000000.123456 [3 a:1] \"AUTH\" \"(redacted)\"\r\n"
        );
    }
}
