//! The command catalogue ACL rules are decided on: every command and subcommand with its id,
//! ACL categories, parent container and which of its arguments are channels.
//!
//! `auth` does not know the dispatch table. The layer that owns the commands builds a
//! `Catalogue` from its table and hands it to `Acl`; a command's id here is the same number that
//! dispatch and the per-command counters use, so there is one numbering of commands.

use std::collections::HashMap;

/// Redis's ACL categories, in Redis's order (ACL CAT lists them so).
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// Room in a user's command bitmap (commands plus subcommands).
pub const MAX_COMMANDS: usize = 256;

/// Which arguments of a command are channels, for the channel permission check (Redis's
/// `ACLCheckAllPerm` over the command's channel key specs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ChannelArgs {
    /// No channel arguments.
    #[default]
    None,
    /// The first argument is a channel (PUBLISH, SPUBLISH).
    First,
    /// Every argument is a channel (SUBSCRIBE, SSUBSCRIBE).
    All,
    /// Every argument is a pattern, allowed only by a literal channel rule (PSUBSCRIBE).
    AllPatterns,
}

/// One command or subcommand as the catalogue's maker describes it.
#[derive(Clone, Copy, Debug)]
pub struct Command {
    /// Full lowercase name: `publish`, `client|kill`.
    pub name: &'static str,
    /// ACL categories as written in the table (`@pubsub`).
    pub acl: &'static [&'static str],
    /// Runs without authentication (AUTH, HELLO, QUIT, RESET): never denied by a user's rules.
    pub no_auth: bool,
    pub channels: ChannelArgs,
    /// Id of the container command, for a subcommand.
    pub parent: Option<usize>,
}

/// Every command and subcommand, numbered in the order given.
pub struct Catalogue {
    commands: Vec<Command>,
    /// Category bits (index into `CATEGORIES`) per command.
    categories: Vec<u32>,
    children: Vec<Vec<usize>>,
    by_name: HashMap<&'static str, usize>,
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Catalogue({} commands)", self.commands.len())
    }
}

fn category_bits(acl: &[&str]) -> u32 {
    acl.iter()
        .filter_map(|c| {
            CATEGORIES
                .iter()
                .position(|n| c.strip_prefix('@') == Some(n))
        })
        .fold(0, |acc, i| acc | (1 << i))
}

impl Catalogue {
    /// Numbers `commands` in order: the id of each is its position. A subcommand's `parent`
    /// is the id of an earlier entry.
    pub fn new(commands: Vec<Command>) -> Self {
        assert!(commands.len() < MAX_COMMANDS, "raise MAX_COMMANDS");
        let mut children = vec![Vec::new(); commands.len()];
        for (id, c) in commands.iter().enumerate() {
            if let Some(p) = c.parent {
                children[p].push(id);
            }
        }
        Catalogue {
            categories: commands.iter().map(|c| category_bits(c.acl)).collect(),
            by_name: commands
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name, i))
                .collect(),
            commands,
            children,
        }
    }

    pub fn len(&self) -> usize {
        self.commands.len()
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    pub fn get(&self, id: usize) -> &Command {
        &self.commands[id]
    }

    pub fn name(&self, id: usize) -> &'static str {
        self.commands[id].name
    }

    /// Category bits (index into `CATEGORIES`) of a command.
    pub fn categories(&self, id: usize) -> u32 {
        self.categories[id]
    }

    /// Subcommand ids of a container command.
    pub fn children(&self, id: usize) -> &[usize] {
        &self.children[id]
    }

    /// Finds a command (`publish`) or subcommand (`client|kill`) by name, case-insensitively.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.by_name
            .get(name.to_ascii_lowercase().as_str())
            .copied()
    }

    /// Names of the commands in category `cat` (index into `CATEGORIES`), in id order.
    pub fn in_category(&self, cat: usize) -> impl Iterator<Item = &'static str> + '_ {
        (0..self.len())
            .filter(move |&id| self.categories[id] & (1 << cat) != 0)
            .map(|id| self.commands[id].name)
    }
}

/// Two users compare equal only over the same catalogue: catalogues are compared by identity.
impl PartialEq for Catalogue {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for Catalogue {}
