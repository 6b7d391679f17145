//! Server-wide counters, named like the INFO fields they feed. INFO renders them; nothing here
//! has logic of its own. All are relaxed atomics: each is exact, their combination is a snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

/// How many close reasons there are (`outbox::CloseReason::ALL`).
pub const CLOSE_REASONS: usize = 8;

#[derive(Debug, Default)]
pub struct Stats {
    pub total_connections_received: AtomicU64,
    pub total_commands_processed: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub total_net_input_bytes: AtomicU64,
    pub total_net_output_bytes: AtomicU64,
    pub total_error_replies: AtomicU64,
    pub unexpected_error_replies: AtomicU64,
    pub client_output_buffer_limit_disconnections: AtomicU64,
    pub client_query_buffer_limit_disconnections: AtomicU64,
    /// PUBLISH and SPUBLISH commands run.
    pub pubsub_messages_published: AtomicU64,
    /// Message frames queued to receivers (a receiver matched twice counts twice).
    pub pubsub_messages_delivered: AtomicU64,
    /// Failed AUTH / HELLO AUTH attempts (INFO `acl_access_denied_auth`).
    pub acl_access_denied_auth: AtomicU64,
    /// Commands refused by ACL (NOPERM for the command itself).
    pub acl_access_denied_cmd: AtomicU64,
    /// Commands refused by ACL for a channel they name.
    pub acl_access_denied_channel: AtomicU64,
    /// Error replies by their code (`ERR`, `NOPROTO` …), for INFO errorstats.
    errors_by_code: parking_lot::Mutex<std::collections::BTreeMap<String, u64>>,
    /// Connections closed, by reason (indexed by `outbox::CloseReason::index`).
    pub closed: [AtomicU64; CLOSE_REASONS],
    /// Per-command counters for INFO commandstats, indexed by `CommandSpec::index`.
    pub commands: CommandCounters,
}

/// `cmdstat_<name>:calls=…,usec=…,rejected_calls=…,failed_calls=…` for every command.
#[derive(Debug, Default)]
pub struct CommandCounters {
    counters: parking_lot::RwLock<Vec<CommandCounter>>,
}

#[derive(Debug, Default)]
pub struct CommandCounter {
    pub calls: AtomicU64,
    pub nanos: AtomicU64,
    pub rejected_calls: AtomicU64,
    pub failed_calls: AtomicU64,
}

impl CommandCounters {
    /// Runs `f` on the counter of command `index`, creating counters as needed.
    pub fn with(&self, index: usize, f: impl FnOnce(&CommandCounter)) {
        {
            let c = self.counters.read();
            if let Some(counter) = c.get(index) {
                return f(counter);
            }
        }
        let mut c = self.counters.write();
        while c.len() <= index {
            c.push(CommandCounter::default());
        }
        f(&c[index]);
    }

    /// (index, calls, usec, rejected, failed) of every command used so far.
    pub fn snapshot(&self) -> Vec<(usize, u64, u64, u64, u64)> {
        self.counters
            .read()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    i,
                    c.calls.load(Ordering::Relaxed),
                    c.nanos.load(Ordering::Relaxed) / 1000,
                    c.rejected_calls.load(Ordering::Relaxed),
                    c.failed_calls.load(Ordering::Relaxed),
                )
            })
            .filter(|&(_, calls, _, rej, fail)| calls + rej + fail > 0)
            .collect()
    }

    fn reset(&self) {
        self.counters.write().clear();
    }
}

impl Stats {
    pub fn incr(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Counts an error reply under its code (the text up to the first space).
    pub fn count_error(&self, text: &str) {
        self.total_error_replies.fetch_add(1, Ordering::Relaxed);
        let code = text.split(' ').next().unwrap_or("ERR");
        *self
            .errors_by_code
            .lock()
            .entry(code.to_string())
            .or_insert(0) += 1;
    }

    /// Error counts by code, sorted by code.
    pub fn error_codes(&self) -> Vec<(String, u64)> {
        self.errors_by_code
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// `CONFIG RESETSTAT`.
    pub fn reset(&self) {
        for c in [
            &self.total_connections_received,
            &self.total_commands_processed,
            &self.rejected_connections,
            &self.total_net_input_bytes,
            &self.total_net_output_bytes,
            &self.total_error_replies,
            &self.unexpected_error_replies,
            &self.client_output_buffer_limit_disconnections,
            &self.client_query_buffer_limit_disconnections,
            &self.pubsub_messages_published,
            &self.pubsub_messages_delivered,
            &self.acl_access_denied_auth,
            &self.acl_access_denied_cmd,
            &self.acl_access_denied_channel,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        self.errors_by_code.lock().clear();
        self.commands.reset();
    }
}
