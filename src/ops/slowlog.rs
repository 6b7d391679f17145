//! SLOWLOG: the last `slowlog-max-len` commands that ran for at least
//! `slowlog-log-slower-than` microseconds, as Redis keeps them (slowlog.c): at most 32
//! arguments (the last one saying how many more there were), each cut at 128 bytes, with the
//! client's address and name. The duration is the one INFO commandstats already measures, so
//! keeping the log costs a comparison per command; the mutex is taken only for slow ones.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

/// Redis's `SLOWLOG_ENTRY_MAX_ARGC`.
pub const ENTRY_MAX_ARGC: usize = 32;
/// Redis's `SLOWLOG_ENTRY_MAX_STRING`.
pub const ENTRY_MAX_STRING: usize = 128;

#[derive(Clone, Debug)]
pub struct Entry {
    pub id: u64,
    pub time: u64,
    pub duration_us: u64,
    pub args: Vec<Bytes>,
    pub addr: String,
    pub name: Bytes,
}

#[derive(Default)]
pub struct SlowLog {
    next_id: AtomicU64,
    entries: Mutex<VecDeque<Entry>>,
}

impl SlowLog {
    /// Records a command that took `duration_us`, if the thresholds say so.
    pub fn record(
        &self,
        threshold_us: i64,
        max_len: u64,
        duration_us: u64,
        args: &[Bytes],
        addr: &str,
        name: Option<&Bytes>,
    ) {
        if threshold_us < 0 || max_len == 0 || (duration_us as i64) < threshold_us {
            return;
        }
        let argc = args.len().min(ENTRY_MAX_ARGC);
        let mut kept: Vec<Bytes> = Vec::with_capacity(argc);
        for (i, a) in args.iter().take(argc).enumerate() {
            if argc != args.len() && i == argc - 1 {
                kept.push(Bytes::from(format!(
                    "... ({} more arguments)",
                    args.len() - argc + 1
                )));
            } else if a.len() > ENTRY_MAX_STRING {
                let mut s = a[..ENTRY_MAX_STRING].to_vec();
                s.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - ENTRY_MAX_STRING).as_bytes(),
                );
                kept.push(Bytes::from(s));
            } else {
                kept.push(a.clone());
            }
        }
        let entry = Entry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            duration_us,
            args: kept,
            addr: addr.to_string(),
            name: name.cloned().unwrap_or_default(),
        };
        let mut e = self.entries.lock();
        e.push_front(entry);
        e.truncate(max_len as usize);
    }

    /// The newest `count` entries (all of them for `None`), newest first.
    pub fn get(&self, count: Option<usize>) -> Vec<Entry> {
        let e = self.entries.lock();
        e.iter()
            .take(count.unwrap_or(usize::MAX))
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn reset(&self) {
        self.entries.lock().clear();
    }

    /// Applies a smaller `slowlog-max-len` at once (CONFIG SET).
    pub fn trim(&self, max_len: u64) {
        self.entries.lock().truncate(max_len as usize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_arguments_like_redis() {
        let log = SlowLog::default();
        let mut args: Vec<Bytes> = (0..40).map(|i| Bytes::from(i.to_string())).collect();
        args[1] = Bytes::from(vec![b'x'; 130]);
        log.record(0, 128, 5, &args, "a:1", None);
        let e = &log.get(None)[0];
        assert_eq!(e.args.len(), 32);
        assert_eq!(&e.args[31][..], b"... (9 more arguments)");
        assert!(e.args[1].ends_with(b"... (2 more bytes)"));
        log.record(-1, 128, 5, &args, "a:1", None);
        log.record(10, 128, 5, &args, "a:1", None);
        assert_eq!(log.len(), 1);
    }
}
