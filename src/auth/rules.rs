//! ACL rules: the user model and Redis's rule language (`on`, `>pass`, `&chan`, `+@pubsub`, …).
//!
//! A `User` is an immutable value once built: ACL SETUSER applies rules to a copy and swaps it in,
//! so a connection that holds an `Arc<User>` always sees one consistent set of permissions.
//!
//! Command permissions are a bitmap over the command table (every command and subcommand gets an
//! id from `CommandIndex`). Categories come from the table's `acl` field, so a new command is one
//! table row. Rules that name Redis commands pubsubd does not implement (`+get`, `-flushall`,
//! `+config|get` …) are accepted, so an aclfile copied from a Redis deployment loads unchanged,
//! and kept verbatim so ACL LIST and ACL SAVE give them back; they grant nothing here.
//!
//! Selectors (`(…)`, Redis 7's secondary permission sets) are not supported: a rule starting with
//! `(` is a syntax error.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use super::catalogue::{Catalogue, ChannelArgs, CATEGORIES, MAX_COMMANDS};
use super::password;
use crate::glob::stringmatch;

const WORDS: usize = MAX_COMMANDS / 64;

/// Why a rule was refused; the texts are Redis's `ACLSetUserStringError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("Unknown command or category name in ACL")]
    UnknownCommand,
    #[error("Syntax error")]
    Syntax,
    #[error("Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns")]
    KeyAfterAll,
    #[error("Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels")]
    ChannelAfterAll,
    #[error("The password you are trying to remove from the user does not exist")]
    NoSuchPassword,
    #[error("The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters")]
    BadHash,
    #[error("Allowing first-arg of a subcommand is not supported")]
    FirstArgOfSubcommand,
}

/// One ACL user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The commands this user's bitmap is over.
    catalogue: &'static Catalogue,
    pub name: String,
    pub enabled: bool,
    pub nopass: bool,
    /// `skip-sanitize-payload` (Some(true)) / `sanitize-payload` (Some(false)); no effect here.
    pub sanitize_skip: Option<bool>,
    /// SHA-256 hex of each password.
    pub passwords: Vec<String>,
    pub allkeys: bool,
    /// Key patterns as written (`~k*`, `%R~k*`); pubsubd has no keys, they are kept for display.
    pub keys: Vec<String>,
    pub allchannels: bool,
    pub channels: Vec<Bytes>,
    commands: [u64; WORDS],
    /// Every command allowed (fast path); cleared by any rule that denies one.
    allcommands: bool,
    /// Set by `+@all`/`allcommands`, cleared only by `-@all`/`nocommands`/`reset`: the rules
    /// started from everything (Redis's reserved "future commands" bit), so ACL LIST starts
    /// with `+@all`.
    future: bool,
    /// Allowed first arguments of otherwise denied commands (`+select|0`), by command id.
    firstargs: HashMap<usize, Vec<String>>,
    /// The command and category rules since the last `+@all`/`-@all`, lowercased, in the order
    /// given, as Redis 7.2 keeps them (`ACLUpdateCommandRules`): a rule replaces earlier rules
    /// for the same command or category and for the subcommands of a command it names. ACL
    /// LIST/GETUSER print them after `+@all` or `-@all`. Rules about Redis commands pubsubd
    /// does not have are kept here too, and grant nothing.
    command_rules: Vec<String>,
    /// Channel rules without glob characters: a set lookup instead of a match.
    literal_channels: HashSet<Bytes>,
    glob_channels: Vec<Bytes>,
}

/// What the command a client runs needs from its user, for one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    Command,
    /// The argument at this index is a channel the user may not use.
    Channel(usize),
}

fn has_glob(p: &[u8]) -> bool {
    p.iter().any(|c| matches!(c, b'*' | b'?' | b'[' | b'\\'))
}

/// Redis's `ACLStringHasSpaces`: whitespace or NUL.
pub fn has_spaces(s: &[u8]) -> bool {
    s.iter()
        .any(|c| c.is_ascii_whitespace() || *c == 0 || *c == 0x0b)
}

impl User {
    /// A user as `ACL SETUSER name` creates it: off, no passwords, no commands; channels per
    /// `acl-pubsub-default`.
    pub fn new(catalogue: &'static Catalogue, name: &str, pubsub_default_all: bool) -> Self {
        User {
            catalogue,
            name: name.to_string(),
            enabled: false,
            nopass: false,
            // Redis 7.2 creates every user with `sanitize-payload`.
            sanitize_skip: Some(false),
            passwords: Vec::new(),
            allkeys: false,
            keys: Vec::new(),
            allchannels: pubsub_default_all,
            channels: Vec::new(),
            commands: [0; WORDS],
            allcommands: false,
            future: false,
            firstargs: HashMap::new(),
            command_rules: Vec::new(),
            literal_channels: HashSet::new(),
            glob_channels: Vec::new(),
        }
    }

    /// Redis's default user: `on nopass ~* &* +@all`.
    pub fn default_user(catalogue: &'static Catalogue, pubsub_default_all: bool) -> Self {
        let mut u = User::new(catalogue, "default", pubsub_default_all);
        for r in ["+@all", "~*", "&*", "on", "nopass"] {
            let _ = u.apply(r.as_bytes(), pubsub_default_all);
        }
        u
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        let (w, b) = (id / 64, 1u64 << (id % 64));
        if on {
            self.commands[w] |= b;
        } else {
            self.commands[w] &= !b;
            self.allcommands = false;
        }
    }

    fn bit(&self, id: usize) -> bool {
        self.commands[id / 64] & (1 << (id % 64)) != 0
    }

    /// Allows or denies a command and, for a container, all its subcommands.
    fn change_perm(&mut self, id: usize, on: bool) {
        self.set_bit(id, on);
        self.firstargs.remove(&id);
        for &sub in self.catalogue.children(id) {
            self.set_bit(sub, on);
        }
    }

    fn set_category(&mut self, cat: usize, on: bool) {
        for id in 0..self.catalogue.len() {
            if self.catalogue.categories(id) & (1 << cat) != 0 {
                self.change_perm(id, on);
            }
        }
    }

    fn rebuild_channels(&mut self) {
        self.literal_channels.clear();
        self.glob_channels.clear();
        for c in &self.channels {
            if has_glob(c) {
                self.glob_channels.push(c.clone());
            } else {
                self.literal_channels.insert(c.clone());
            }
        }
    }

    /// Applies one rule, as Redis's `ACLSetUser`. On error the user may be partly changed:
    /// callers apply rules to a copy.
    pub fn apply(&mut self, op: &[u8], pubsub_default_all: bool) -> Result<(), RuleError> {
        let r = self.apply_inner(op, pubsub_default_all);
        self.rebuild_channels();
        r
    }

    fn apply_inner(&mut self, op: &[u8], pubsub_default_all: bool) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let lower = String::from_utf8_lossy(op).to_ascii_lowercase();
        match lower.as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "skip-sanitize-payload" => self.sanitize_skip = Some(true),
            "sanitize-payload" => self.sanitize_skip = Some(false),
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "allkeys" | "~*" => {
                self.allkeys = true;
                self.keys.clear();
            }
            "resetkeys" => {
                self.allkeys = false;
                self.keys.clear();
            }
            "allchannels" | "&*" => {
                self.allchannels = true;
                self.channels.clear();
            }
            "resetchannels" => {
                self.allchannels = false;
                self.channels.clear();
            }
            "allcommands" | "+@all" => {
                self.commands = [!0; WORDS];
                self.allcommands = true;
                self.future = true;
                self.firstargs.clear();
                self.command_rules.clear();
            }
            "nocommands" | "-@all" => {
                self.commands = [0; WORDS];
                self.allcommands = false;
                self.future = false;
                self.firstargs.clear();
                self.command_rules.clear();
            }
            "clearselectors" => {}
            "reset" => {
                self.nopass = false;
                self.passwords.clear();
                self.allkeys = false;
                self.keys.clear();
                self.allchannels = pubsub_default_all;
                self.channels.clear();
                self.enabled = false;
                self.sanitize_skip = Some(false);
                self.commands = [0; WORDS];
                self.allcommands = false;
                self.future = false;
                self.firstargs.clear();
                self.command_rules.clear();
            }
            _ => return self.apply_prefixed(op),
        }
        Ok(())
    }

    fn apply_prefixed(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let rest = &op[1..];
        match op[0] {
            b'>' | b'#' => {
                let h = if op[0] == b'>' {
                    password::hash(rest)
                } else if password::is_valid_hash(rest) {
                    String::from_utf8_lossy(rest).into_owned()
                } else {
                    return Err(RuleError::BadHash);
                };
                if !self.passwords.contains(&h) {
                    self.passwords.push(h);
                }
                self.nopass = false;
            }
            b'<' | b'!' => {
                let h = if op[0] == b'<' {
                    password::hash(rest)
                } else if password::is_valid_hash(rest) {
                    String::from_utf8_lossy(rest).into_owned()
                } else {
                    return Err(RuleError::BadHash);
                };
                let at = self.passwords.iter().position(|p| *p == h);
                self.passwords.remove(at.ok_or(RuleError::NoSuchPassword)?);
            }
            b'~' | b'%' => {
                if self.allkeys {
                    return Err(RuleError::KeyAfterAll);
                }
                let text = String::from_utf8_lossy(op).into_owned();
                let pat_at = if op[0] == b'%' {
                    let tilde = memchr::memchr(b'~', op).ok_or(RuleError::Syntax)?;
                    let perms = op[1..tilde].to_ascii_uppercase();
                    let ok = matches!(&perms[..], b"R" | b"W" | b"RW" | b"WR");
                    if !ok {
                        return Err(RuleError::Syntax);
                    }
                    tilde + 1
                } else {
                    1
                };
                if has_spaces(&op[pat_at..]) {
                    return Err(RuleError::Syntax);
                }
                if !self.keys.contains(&text) {
                    self.keys.push(text);
                }
            }
            b'&' => {
                if self.allchannels {
                    return Err(RuleError::ChannelAfterAll);
                }
                if has_spaces(rest) {
                    return Err(RuleError::Syntax);
                }
                if !self.channels.iter().any(|c| c[..] == *rest) {
                    self.channels.push(Bytes::copy_from_slice(rest));
                }
            }
            b'+' | b'-' if rest.first() == Some(&b'@') => {
                let name = String::from_utf8_lossy(&rest[1..]).to_ascii_lowercase();
                let cat = CATEGORIES
                    .iter()
                    .position(|c| *c == name)
                    .ok_or(RuleError::UnknownCommand)?;
                self.set_category(cat, op[0] == b'+');
                self.update_rules(&format!("@{name}"), op[0] == b'+');
            }
            b'+' | b'-' => self.apply_command(op[0] == b'+', rest)?,
            _ => return Err(RuleError::Syntax),
        }
        Ok(())
    }

    /// Redis's `ACLUpdateCommandRules`: drops earlier rules for `rule` (and, for a command,
    /// for its subcommands), then appends this one.
    fn update_rules(&mut self, rule: &str, allow: bool) {
        self.command_rules.retain(|r| {
            let name = &r[1..];
            !(name == rule
                || (name.len() > rule.len()
                    && name.starts_with(rule)
                    && name.as_bytes()[rule.len()] == b'|'))
        });
        self.command_rules
            .push(format!("{}{rule}", if allow { '+' } else { '-' }));
    }

    fn apply_command(&mut self, allow: bool, name: &[u8]) -> Result<(), RuleError> {
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        self.apply_command_bits(allow, &name)?;
        self.update_rules(&name, allow);
        Ok(())
    }

    fn apply_command_bits(&mut self, allow: bool, name: &str) -> Result<(), RuleError> {
        if let Some(id) = self.catalogue.find(name) {
            self.change_perm(id, allow);
            return Ok(());
        }
        let known = |n: &str| {
            if is_redis_command(n) {
                Ok(())
            } else {
                Err(RuleError::UnknownCommand)
            }
        };
        let Some((cmd, sub)) = name.rsplit_once('|') else {
            return known(name);
        };
        if !allow {
            // `-cmd|sub` names a subcommand that must exist.
            return if is_redis_command(cmd) && self.catalogue.find(cmd).is_none() {
                Ok(())
            } else {
                Err(RuleError::UnknownCommand)
            };
        }
        let Some(id) = self.catalogue.find(cmd) else {
            return known(cmd);
        };
        if self.catalogue.get(id).parent.is_some() {
            return Err(RuleError::FirstArgOfSubcommand);
        }
        if sub.is_empty() {
            return Err(RuleError::Syntax);
        }
        if !self.catalogue.children(id).is_empty() {
            return Err(RuleError::UnknownCommand);
        }
        let args = self.firstargs.entry(id).or_default();
        if !args.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
            args.push(sub.to_string());
        }
        Ok(())
    }

    /// Whether a password is right for this user (nopass users take any). Constant time.
    pub fn password_ok(&self, pass: &[u8]) -> bool {
        self.nopass || password::matches_any(pass, &self.passwords)
    }

    /// Whether the user may subscribe to or publish on `channel`.
    pub fn channel_allowed(&self, channel: &[u8]) -> bool {
        self.allchannels
            || self.literal_channels.contains(channel)
            || self
                .glob_channels
                .iter()
                .any(|p| stringmatch(p, channel, false))
    }

    /// Whether the user may PSUBSCRIBE `pattern`: only a literal match of a rule counts.
    pub fn pattern_allowed(&self, pattern: &[u8]) -> bool {
        self.allchannels || self.channels.iter().any(|c| c[..] == *pattern)
    }

    /// Redis's `ACLSelectorCheckCmd` for our commands: the command bit (or an allowed first
    /// argument), then the channels it names. `id` is the command's catalogue id.
    pub fn check(&self, id: usize, args: &[Bytes]) -> Result<(), Denied> {
        let command = self.catalogue.get(id);
        if !self.allcommands && !command.no_auth && !self.bit(id) {
            let idx = if command.parent.is_some() { 2 } else { 1 };
            let allowed = args.get(idx).is_some_and(|a| {
                self.firstargs
                    .get(&id)
                    .is_some_and(|l| l.iter().any(|f| f.as_bytes().eq_ignore_ascii_case(a)))
            });
            if !allowed {
                return Err(Denied::Command);
            }
        }
        if self.allchannels {
            return Ok(());
        }
        let (from, literal) = match command.channels {
            ChannelArgs::First => (1..2.min(args.len()), false),
            ChannelArgs::All => (1..args.len(), false),
            ChannelArgs::AllPatterns => (1..args.len(), true),
            ChannelArgs::None => return Ok(()),
        };
        for i in from {
            let ok = if literal {
                self.pattern_allowed(&args[i])
            } else {
                self.channel_allowed(&args[i])
            };
            if !ok {
                return Err(Denied::Channel(i));
            }
        }
        Ok(())
    }

    /// Whether every channel rule of `old` is still among this user's (Redis's shortcut in
    /// `ACLKillPubsubClientsIfNeeded`: then no subscriber can have lost a permission).
    pub fn keeps_channels_of(&self, old: &User) -> bool {
        self.allchannels
            || (!old.allchannels && old.channels.iter().all(|c| self.channels.contains(c)))
    }

    /// The user's flags, in Redis's order (ACL GETUSER `flags`).
    pub fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.sanitize_skip {
            Some(true) => f.push("skip-sanitize-payload"),
            Some(false) => f.push("sanitize-payload"),
            None => {}
        }
        f
    }

    /// Key patterns as ACL GETUSER shows them.
    pub fn keys_text(&self) -> String {
        if self.allkeys {
            "~*".into()
        } else {
            self.keys.join(" ")
        }
    }

    /// Channel patterns as ACL GETUSER shows them.
    pub fn channels_text(&self) -> Vec<u8> {
        if self.allchannels {
            return b"&*".to_vec();
        }
        let mut out = Vec::new();
        for (i, c) in self.channels.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.push(b'&');
            out.extend_from_slice(c);
        }
        out
    }

    /// The command rules: `+@all` or `-@all` (whether the rules started from every command,
    /// Redis's reserved "future commands" bit), then the rules given since, as Redis 7.2's
    /// `ACLDescribeSelectorCommandRules` prints them.
    pub fn commands_text(&self) -> String {
        let mut rules = String::from(if self.future { "+@all" } else { "-@all" });
        for r in &self.command_rules {
            rules.push(' ');
            rules.push_str(r);
        }
        rules
    }

    /// The whole user in rule form, as ACL LIST and ACL SAVE write it (after `user <name> `).
    pub fn describe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for f in self.flags() {
            out.extend_from_slice(f.as_bytes());
            out.push(b' ');
        }
        for p in &self.passwords {
            out.push(b'#');
            out.extend_from_slice(p.as_bytes());
            out.push(b' ');
        }
        if self.allkeys {
            out.extend_from_slice(b"~* ");
        } else {
            for k in &self.keys {
                out.extend_from_slice(k.as_bytes());
                out.push(b' ');
            }
        }
        if self.allchannels {
            out.extend_from_slice(b"&* ");
        } else {
            out.extend_from_slice(b"resetchannels ");
            for c in &self.channels {
                out.push(b'&');
                out.extend_from_slice(c);
                out.push(b' ');
            }
        }
        out.extend_from_slice(self.commands_text().as_bytes());
        out
    }
}

/// Whether `name` is a command (or container) of Redis 7.2, so that rules about it are accepted.
pub fn is_redis_command(name: &str) -> bool {
    super::redis_commands::REDIS_COMMANDS
        .binary_search(&name)
        .is_ok()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::auth::catalogue::Command;
    use std::sync::LazyLock;

    /// A few commands shaped like the real table's rows: enough for every kind of rule.
    pub(crate) static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| {
        let c = |name, acl, channels, parent| Command {
            name,
            acl,
            no_auth: false,
            channels,
            parent,
        };
        Catalogue::new(vec![
            c("publish", &["@pubsub", "@fast"], ChannelArgs::First, None),
            c("subscribe", &["@pubsub", "@slow"], ChannelArgs::All, None),
            c(
                "psubscribe",
                &["@pubsub", "@slow"],
                ChannelArgs::AllPatterns,
                None,
            ),
            c("ping", &["@fast", "@connection"], ChannelArgs::None, None),
            c("select", &["@fast", "@connection"], ChannelArgs::None, None),
            c("client", &["@slow"], ChannelArgs::None, None),
            c(
                "client|id",
                &["@slow", "@connection"],
                ChannelArgs::None,
                Some(5),
            ),
            c(
                "client|kill",
                &["@admin", "@slow", "@dangerous", "@connection"],
                ChannelArgs::None,
                Some(5),
            ),
        ])
    });

    fn new(name: &str) -> User {
        User::new(&CATALOGUE, name, false)
    }

    fn user(rules: &[&str]) -> User {
        let mut u = new("u");
        for r in rules {
            u.apply(r.as_bytes(), false).unwrap();
        }
        u
    }

    #[test]
    fn redis_command_list_is_sorted() {
        assert!(crate::auth::redis_commands::REDIS_COMMANDS
            .windows(2)
            .all(|w| w[0] < w[1]));
    }

    #[test]
    fn new_user_is_off_with_nothing() {
        let u = new("bob");
        // Redis 7.2 shows `sanitize-payload` on every user that did not skip it.
        assert_eq!(u.describe(), b"off sanitize-payload resetchannels -@all");
    }

    #[test]
    fn default_user_describes_like_redis() {
        let u = User::default_user(&CATALOGUE, false);
        assert_eq!(u.describe(), b"on nopass sanitize-payload ~* &* +@all");
    }

    /// Redis 7.2 keeps command and category rules in the order given; a rule about a command
    /// drops earlier rules about it and its subcommands; `+@all`/`-@all` start over.
    #[test]
    fn command_rules_keep_their_order_and_compact_like_redis() {
        for (rules, text) in [
            (
                &["-@all", "+@pubsub", "+@connection", "-publish"][..],
                "-@all +@pubsub +@connection -publish",
            ),
            (
                &["+@all", "-@slow", "-@hash", "+hget"],
                "+@all -@slow -@hash +hget",
            ),
            (
                &["+ping", "+@pubsub", "-subscribe", "+@all", "-@dangerous"],
                "+@all -@dangerous",
            ),
            (
                &["+client|id", "+client", "-client|kill"],
                "-@all +client -client|kill",
            ),
            (
                &["+acl|whoami", "-@all", "+select", "+acl"],
                "-@all +select +acl",
            ),
            (&["+memory|doctor", "+memory"], "-@all +memory"),
            (&["+config|get", "-config"], "-@all -config"),
            (&["+@pubsub", "-@pubsub", "+@PubSub"], "-@all +@pubsub"),
        ] {
            assert_eq!(user(rules).commands_text(), text, "{rules:?}");
        }
    }

    #[test]
    fn channel_rules_glob_and_literal() {
        let u = user(&["&news.*", "&exact", "+@all"]);
        assert!(u.channel_allowed(b"news.sport"));
        assert!(u.channel_allowed(b"exact"));
        assert!(!u.channel_allowed(b"other"));
        assert!(u.pattern_allowed(b"news.*"));
        assert!(!u.pattern_allowed(b"news.s*"));
    }

    #[test]
    fn channel_after_allchannels_is_an_error() {
        let mut u = user(&["allchannels"]);
        assert_eq!(u.apply(b"&x", false), Err(RuleError::ChannelAfterAll));
    }

    #[test]
    fn foreign_commands_are_kept_and_unknown_ones_refused() {
        let u = user(&["-@all", "+get", "+@read", "-flushall"]);
        assert_eq!(u.commands_text(), "-@all +get +@read -flushall");
        let mut u = new("u");
        assert_eq!(u.apply(b"+nosuch", false), Err(RuleError::UnknownCommand));
        assert_eq!(u.apply(b"+@nosuch", false), Err(RuleError::UnknownCommand));
    }

    #[test]
    fn subcommand_rules() {
        let u = user(&["-@all", "+client|id"]);
        assert_eq!(u.commands_text(), "-@all +client|id");
        let mut u = new("u");
        assert_eq!(
            u.apply(b"+client|id|x", false),
            Err(RuleError::FirstArgOfSubcommand)
        );
        assert_eq!(
            u.apply(b"+client|nosuch", false),
            Err(RuleError::UnknownCommand)
        );
    }

    #[test]
    fn describe_round_trips() {
        for rules in [
            &[
                "on",
                ">pw",
                "&a*",
                "-@all",
                "+@pubsub",
                "-psubscribe",
                "+ping",
            ][..],
            &[
                "on",
                "nopass",
                "allchannels",
                "+@all",
                "-@admin",
                "-publish",
            ][..],
            &["off", "~k*", "%R~r*", "resetchannels", "-@all", "+select|0"][..],
        ] {
            let u = user(rules);
            let text = String::from_utf8(u.describe()).unwrap();
            let mut again = new("u");
            for r in text.split(' ') {
                again.apply(r.as_bytes(), false).unwrap();
            }
            assert_eq!(again.describe(), u.describe(), "{text}");
            let n = CATALOGUE.len();
            for id in 0..n {
                assert_eq!(again.bit(id), u.bit(id), "{text}: {}", CATALOGUE.name(id));
            }
        }
    }

    #[test]
    fn passwords_are_hashed_and_removable() {
        let mut u = user(&[">secret", "on"]);
        assert!(u.password_ok(b"secret"));
        assert!(!u.password_ok(b"wrong"));
        assert_eq!(u.apply(b"<other", false), Err(RuleError::NoSuchPassword));
        u.apply(b"<secret", false).unwrap();
        assert!(!u.password_ok(b"secret"));
        assert_eq!(u.apply(b"#abc", false), Err(RuleError::BadHash));
    }
}
