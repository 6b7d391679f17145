//! The user table, the ACL log and the aclfile.
//!
//! `Acl` holds every user as an immutable `Arc<User>`; a change builds a new value and swaps it
//! in under the table's write lock, then bumps `epoch`. A connection keeps the `Arc` of the user
//! it authenticated as and re-reads it when the epoch moved, so the per-command check is one
//! atomic load and, for most users, no lookup at all.
//!
//! Locks: `users` (RwLock) and `log` (Mutex) are never held together, and neither is held while
//! calling into the registry or a connection.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};

use super::catalogue::Catalogue;
use super::rules::{has_spaces, RuleError, User};

pub use crate::config::DEFAULT_ACLLOG_MAX_LEN;

/// Entries within this many milliseconds of each other with the same reason, context, object
/// and user are grouped into one (Redis's `ACL_LOG_GROUPING_MAX_TIME_DELTA`).
const LOG_GROUPING_MS: u64 = 60_000;

/// Entries scanned for a group to join (Redis scans 10).
const LOG_GROUPING_SCAN: usize = 10;

/// Why an ACL log entry was written (`reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogReason {
    Auth,
    Command,
    Channel,
}

impl LogReason {
    pub fn name(self) -> &'static str {
        match self {
            LogReason::Auth => "auth",
            LogReason::Command => "command",
            LogReason::Channel => "channel",
        }
    }
}

/// One ACL LOG entry.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub count: u64,
    pub reason: LogReason,
    /// `toplevel` or `multi`.
    pub context: &'static str,
    pub object: Vec<u8>,
    pub username: Vec<u8>,
    pub client_info: String,
    pub entry_id: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// An aclfile that could not be loaded; the text is Redis's.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(pub String);

/// Users, the ACL log, and where they persist.
pub struct Acl {
    /// The commands users' rules are about.
    catalogue: &'static Catalogue,
    users: RwLock<BTreeMap<String, Arc<User>>>,
    epoch: AtomicU64,
    /// Cached `default` user is `nopass` and `on`: connections start authenticated.
    default_open: AtomicBool,
    /// `acl-pubsub-default allchannels`; CONFIG SET changes it for users created afterwards.
    pubsub_default_all: AtomicBool,
    pub file: Option<PathBuf>,
    log: Mutex<VecDeque<LogEntry>>,
    next_log_id: AtomicU64,
    pub log_max_len: AtomicUsize,
}

impl Acl {
    /// The table as the server starts: the default user (with `requirepass` if set), then
    /// `user` directives, then the aclfile.
    pub fn new(
        catalogue: &'static Catalogue,
        requirepass: Option<&[u8]>,
        config_users: &[Vec<String>],
        file: Option<PathBuf>,
        pubsub_default_all: bool,
        log_max_len: usize,
    ) -> Result<Acl, LoadError> {
        let mut default = User::default_user(catalogue, pubsub_default_all);
        if let Some(pw) = requirepass {
            default.apply(b"resetpass", pubsub_default_all).ok();
            let mut rule = b">".to_vec();
            rule.extend_from_slice(pw);
            default.apply(&rule, pubsub_default_all).ok();
        }
        let mut users = BTreeMap::new();
        users.insert("default".to_string(), Arc::new(default));
        for line in config_users {
            let Some((name, rules)) = line.split_first() else {
                continue;
            };
            let mut u = match users.get(name) {
                // Only `default` can already be there: its rules start from `reset`.
                Some(old) => {
                    let mut u: User = (**old).clone();
                    u.apply(b"reset", pubsub_default_all).ok();
                    u
                }
                None => User::new(catalogue, name, pubsub_default_all),
            };
            for r in rules {
                u.apply(r.as_bytes(), pubsub_default_all).map_err(|e| {
                    LoadError(format!(
                        "Error loading ACL rule '{r}' for the user named '{name}': {e}"
                    ))
                })?;
            }
            users.insert(name.clone(), Arc::new(u));
        }
        let acl = Acl {
            catalogue,
            users: RwLock::new(users),
            epoch: AtomicU64::new(0),
            default_open: AtomicBool::new(true),
            pubsub_default_all: AtomicBool::new(pubsub_default_all),
            file,
            log: Mutex::new(VecDeque::new()),
            next_log_id: AtomicU64::new(0),
            log_max_len: AtomicUsize::new(log_max_len),
        };
        if let Some(f) = acl.file.clone() {
            let loaded = acl.parse_file(&f)?;
            acl.replace_all(loaded);
        }
        acl.changed();
        Ok(acl)
    }

    /// The table a configuration describes: `requirepass`, `user` lines, `aclfile`.
    pub fn from_config(
        catalogue: &'static Catalogue,
        c: &crate::config::Config,
    ) -> Result<Acl, LoadError> {
        Acl::new(
            catalogue,
            (!c.requirepass.0.is_empty()).then_some(c.requirepass.0.as_bytes()),
            &c.users.0,
            (!c.aclfile.is_empty()).then(|| PathBuf::from(&c.aclfile)),
            c.acl_pubsub_default_all,
            c.acllog_max_len,
        )
    }

    /// The commands users' rules are about.
    pub fn catalogue(&self) -> &'static Catalogue {
        self.catalogue
    }

    /// A user as `ACL SETUSER name` creates it.
    pub fn new_user(&self, name: &str) -> User {
        User::new(self.catalogue, name, self.pubsub_default_all())
    }

    /// Whether new users start with `allchannels` (`acl-pubsub-default`).
    pub fn pubsub_default_all(&self) -> bool {
        self.pubsub_default_all.load(Ordering::Relaxed)
    }

    /// CONFIG SET acl-pubsub-default: applies to users created from now on, as in Redis.
    pub fn set_pubsub_default_all(&self, all: bool) {
        self.pubsub_default_all.store(all, Ordering::Relaxed);
    }

    /// CONFIG SET requirepass, as Redis's `ACLUpdateDefaultUserPassword`: the default user's
    /// passwords are reset to this one, or to `nopass` for an empty one. Authenticated
    /// connections stay authenticated.
    pub fn set_requirepass(&self, password: &[u8]) {
        let rule = if password.is_empty() {
            b"nopass".to_vec()
        } else {
            let mut r = b">".to_vec();
            r.extend_from_slice(password);
            r
        };
        let _ = self.set_user("default", &[b"resetpass", &rule]);
    }

    /// Changes since start; a connection re-reads its user when this moved.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn changed(&self) {
        let open = self.get("default").is_some_and(|d| d.nopass && d.enabled);
        self.default_open.store(open, Ordering::Release);
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether the default user is `on` and `nopass`, so no AUTH is needed (Redis's
    /// `authRequired` is false for every client then).
    pub fn default_open(&self) -> bool {
        self.default_open.load(Ordering::Acquire)
    }

    pub fn get(&self, name: &str) -> Option<Arc<User>> {
        self.users.read().get(name).cloned()
    }

    pub fn default_user(&self) -> Arc<User> {
        self.get("default").unwrap_or_else(|| {
            Arc::new(User::default_user(
                self.catalogue,
                self.pubsub_default_all(),
            ))
        })
    }

    /// Every user, sorted by name (Redis's rax order).
    pub fn all(&self) -> Vec<Arc<User>> {
        self.users.read().values().cloned().collect()
    }

    /// Applies rules to a copy of `name` (or a new user) and stores it if they are all valid.
    /// Returns the previous version, for the subscriber check.
    pub fn set_user(
        &self,
        name: &str,
        rules: &[&[u8]],
    ) -> Result<Option<Arc<User>>, (Vec<u8>, RuleError)> {
        let mut users = self.users.write();
        let old = users.get(name).cloned();
        let mut u = match &old {
            Some(o) => (**o).clone(),
            None => User::new(self.catalogue, name, self.pubsub_default_all()),
        };
        for r in rules {
            u.apply(r, self.pubsub_default_all())
                .map_err(|e| (r.to_vec(), e))?;
        }
        users.insert(name.to_string(), Arc::new(u));
        drop(users);
        self.changed();
        Ok(old)
    }

    /// Removes users; returns the names that existed.
    pub fn delete(&self, names: &[String]) -> Vec<String> {
        let mut users = self.users.write();
        let gone: Vec<String> = names
            .iter()
            .filter(|n| users.remove(n.as_str()).is_some())
            .cloned()
            .collect();
        drop(users);
        self.changed();
        gone
    }

    /// Reads and validates an aclfile without applying it. Error texts are Redis's
    /// `ACLLoadFromFile`'s.
    pub fn parse_file(&self, path: &Path) -> Result<BTreeMap<String, Arc<User>>, LoadError> {
        let shown = path.display().to_string();
        let text = std::fs::read(path).map_err(|e| {
            LoadError(format!(
                "Error loading ACLs, opening file '{shown}': {}",
                io_text(&e)
            ))
        })?;
        let mut errors = String::new();
        let mut users: BTreeMap<String, Arc<User>> = BTreeMap::new();
        for (i, raw) in text.split(|b| *b == b'\n').enumerate() {
            let line = raw.trim_ascii();
            let n = i + 1;
            if line.is_empty() {
                continue;
            }
            let argv: Vec<&[u8]> = line
                .split(|b| *b == b' ')
                .filter(|a| !a.is_empty())
                .collect();
            if argv.first() != Some(&&b"user"[..]) || argv.len() < 2 {
                errors.push_str(&format!(
                    "{shown}:{n} should start with user keyword followed by the username. "
                ));
                continue;
            }
            let name = String::from_utf8_lossy(argv[1]).into_owned();
            if has_spaces(argv[1]) {
                errors.push_str(&format!(
                    "'{shown}:{n}: username '{name}' contains invalid characters. "
                ));
                continue;
            }
            if users.contains_key(&name) {
                errors.push_str(&format!(
                    "WARNING: Duplicate user '{name}' found on line {n}. "
                ));
                continue;
            }
            let mut u = User::new(self.catalogue, &name, self.pubsub_default_all());
            for r in &argv[2..] {
                let r = r.trim_ascii();
                if let Err(e) = u.apply(r, self.pubsub_default_all()) {
                    errors.push_str(&format!("{shown}:{n}: {e}. "));
                }
            }
            users.insert(name, Arc::new(u));
        }
        if !errors.is_empty() {
            errors.push_str(
                "WARNING: ACL errors detected, no change to the previously active ACL rules was performed",
            );
            return Err(LoadError(errors));
        }
        if !users.contains_key("default") {
            users.insert(
                "default".into(),
                Arc::new(User::default_user(
                    self.catalogue,
                    self.pubsub_default_all(),
                )),
            );
        }
        Ok(users)
    }

    /// Replaces every user (ACL LOAD); returns the old table.
    pub fn replace_all(&self, users: BTreeMap<String, Arc<User>>) -> BTreeMap<String, Arc<User>> {
        let old = std::mem::replace(&mut *self.users.write(), users);
        self.changed();
        old
    }

    /// Writes every user to the aclfile through a temporary file and a rename, as ACL SAVE.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut text = Vec::new();
        for u in self.all() {
            text.extend_from_slice(b"user ");
            text.extend_from_slice(u.name.as_bytes());
            text.push(b' ');
            text.extend_from_slice(&u.describe());
            text.push(b'\n');
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp-{}-{}", std::process::id(), now_ms()));
        let tmp = PathBuf::from(tmp);
        let r = std::fs::write(&tmp, &text).and_then(|_| std::fs::rename(&tmp, path));
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        r
    }

    /// Adds an ACL log entry, or bumps a recent similar one (Redis's `addACLLogEntry`).
    pub fn log(
        &self,
        reason: LogReason,
        context: &'static str,
        object: &[u8],
        username: &[u8],
        client_info: String,
    ) {
        let now = now_ms();
        let mut log = self.log.lock();
        let hit = log.iter().take(LOG_GROUPING_SCAN).position(|e| {
            e.reason == reason
                && e.context == context
                && now.abs_diff(e.updated_ms) <= LOG_GROUPING_MS
                && e.object == object
                && e.username == username
        });
        if let Some(i) = hit {
            if let Some(mut e) = log.remove(i) {
                e.count += 1;
                e.updated_ms = now;
                e.client_info = client_info;
                log.push_front(e);
            }
            return;
        }
        log.push_front(LogEntry {
            count: 1,
            reason,
            context,
            object: object.to_vec(),
            username: username.to_vec(),
            client_info,
            entry_id: self.next_log_id.fetch_add(1, Ordering::Relaxed),
            created_ms: now,
            updated_ms: now,
        });
        let max = self.log_max_len.load(Ordering::Relaxed);
        log.truncate(max);
    }

    /// The newest `count` log entries.
    pub fn log_entries(&self, count: usize) -> Vec<LogEntry> {
        self.log.lock().iter().take(count).cloned().collect()
    }

    pub fn log_reset(&self) {
        self.log.lock().clear();
    }
}

/// An I/O error as C's `strerror` words it.
fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "No such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "Permission denied".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::rules::tests::CATALOGUE;

    fn acl() -> Acl {
        Acl::new(&CATALOGUE, None, &[], None, false, DEFAULT_ACLLOG_MAX_LEN).unwrap()
    }

    #[test]
    fn requirepass_closes_the_default_user() {
        let a = Acl::new(&CATALOGUE, Some(b"pw"), &[], None, false, 128).unwrap();
        assert!(!a.default_open());
        assert!(a.default_user().password_ok(b"pw"));
        assert!(acl().default_open());
    }

    #[test]
    fn log_groups_similar_entries() {
        let a = acl();
        a.log(LogReason::Auth, "toplevel", b"AUTH", b"bob", "c1".into());
        a.log(LogReason::Auth, "toplevel", b"AUTH", b"bob", "c2".into());
        a.log(LogReason::Auth, "toplevel", b"AUTH", b"eve", "c3".into());
        let l = a.log_entries(10);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].username, b"eve");
        assert_eq!(l[1].count, 2);
        assert_eq!(l[1].client_info, "c2");
        assert_eq!((l[0].entry_id, l[1].entry_id), (1, 0));
    }

    #[test]
    fn aclfile_errors_are_collected_and_nothing_applies() {
        let dir = std::env::temp_dir().join(format!("pubsubd-acl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("users.acl");
        std::fs::write(
            &f,
            "user a on >x &c +@all\n# comment\nuser a off\nuser b +nosuch\n",
        )
        .unwrap();
        let e = acl().parse_file(&f).unwrap_err().0;
        let p = f.display();
        assert_eq!(
            e,
            format!("{p}:2 should start with user keyword followed by the username. WARNING: Duplicate user 'a' found on line 3. {p}:4: Unknown command or category name in ACL. WARNING: ACL errors detected, no change to the previously active ACL rules was performed")
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
