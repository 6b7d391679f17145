//! Finding a request's command in the table: by name, through `rename-command`, with Redis's
//! errors for unknown commands and subcommands. Also the one numbering of commands (`ALL`,
//! `CommandSpec::index`) and the catalogue handed to `auth`, built from the same rows.

use std::collections::HashMap;
use std::sync::LazyLock;

use bytes::Bytes;

use super::table::{CommandSpec, TABLE};
use super::CommandError;
use crate::auth::catalogue::{self, Catalogue};
use crate::state::Renames;

/// Result of looking up a request's command.
pub enum Lookup {
    Found(&'static CommandSpec),
    Unknown(CommandError),
}

static BY_NAME: LazyLock<HashMap<&'static str, &'static CommandSpec>> =
    LazyLock::new(|| TABLE.iter().map(|c| (c.name, c)).collect());

/// Every command and subcommand, in table order: `CommandSpec::index` is a position here.
pub static ALL: LazyLock<Vec<&'static CommandSpec>> = LazyLock::new(|| {
    let mut out = Vec::new();
    for c in TABLE {
        out.push(c);
        out.extend(c.subcommands.iter());
    }
    out
});

static INDEX: LazyLock<HashMap<usize, usize>> = LazyLock::new(|| {
    ALL.iter()
        .enumerate()
        .map(|(i, c)| (*c as *const CommandSpec as usize, i))
        .collect()
});

impl CommandSpec {
    /// Position in `ALL`: the command's one number, for per-command counters, ACL bitmaps
    /// (`catalogue`) and lookup.
    pub fn index(&'static self) -> usize {
        INDEX
            .get(&(self as *const CommandSpec as usize))
            .copied()
            .unwrap_or(0)
    }
}

/// Finds a top-level command by (lowercase) name.
pub fn find(name: &str) -> Option<&'static CommandSpec> {
    BY_NAME.get(name).copied()
}

/// Finds the command a request names, with Redis's errors for unknown commands and subcommands.
pub fn lookup(req: &[Bytes]) -> Lookup {
    lookup_with(req, None)
}

/// `lookup` through the server's `rename-command` table.
pub fn lookup_renamed(req: &[Bytes], renames: &Renames) -> Lookup {
    if renames.is_empty() {
        lookup(req)
    } else {
        lookup_with(req, Some(renames))
    }
}

fn lookup_with(req: &[Bytes], renames: Option<&Renames>) -> Lookup {
    let mut lower = [0u8; 32];
    let name = &req[0];
    let spec = if name.len() <= lower.len() {
        let l = &mut lower[..name.len()];
        l.copy_from_slice(name);
        l.make_ascii_lowercase();
        std::str::from_utf8(l).ok().and_then(|n| match renames {
            None => find(n),
            Some(r) => {
                r.to.get(n)
                    .and_then(|own| find(own))
                    .or_else(|| find(n).filter(|s| !r.hidden.contains(s.name)))
            }
        })
    } else {
        None
    };
    let Some(spec) = spec else {
        return Lookup::Unknown(unknown_command(req));
    };
    if spec.subcommands.is_empty() || req.len() == 1 {
        return Lookup::Found(spec);
    }
    let sub = &req[1];
    match spec
        .subcommands
        .iter()
        .find(|s| s.short_name().as_bytes().eq_ignore_ascii_case(sub))
    {
        Some(s) => Lookup::Found(s),
        None => {
            let mut e = b"ERR unknown subcommand '".to_vec();
            e.extend_from_slice(super::arg_bytes(sub, 128));
            e.extend_from_slice(b"'. Try ");
            e.extend(super::arg_bytes(name, usize::MAX).to_ascii_uppercase());
            e.extend_from_slice(b" HELP.");
            Lookup::Unknown(CommandError::Echo(e.into()))
        }
    }
}

/// Redis's text, with the arguments' bytes as sent (`%.128s`, up to 128 bytes of arguments).
fn unknown_command(req: &[Bytes]) -> CommandError {
    let mut args = Vec::new();
    for a in &req[1..] {
        if args.len() >= 128 {
            break;
        }
        let room = 128 - args.len();
        args.push(b'\'');
        args.extend_from_slice(super::arg_bytes(a, room));
        args.extend_from_slice(b"' ");
    }
    let mut e = b"ERR unknown command '".to_vec();
    e.extend_from_slice(super::arg_bytes(&req[0], 128));
    e.extend_from_slice(b"', with args beginning with: ");
    e.extend_from_slice(&args);
    CommandError::Echo(e.into())
}

/// The command catalogue `auth` decides on: every row of `ALL`, numbered as `ALL` is.
pub fn catalogue() -> &'static Catalogue {
    static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| {
        let parent = |c: &CommandSpec| {
            let (name, _) = c.name.split_once('|')?;
            ALL.iter().position(|p| p.name == name)
        };
        Catalogue::new(
            ALL.iter()
                .map(|c| catalogue::Command {
                    name: c.name,
                    acl: c.acl,
                    no_auth: c.no_auth(),
                    channels: c.channels,
                    parent: parent(c),
                })
                .collect(),
        )
    });
    &CATALOGUE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(args: &[&str]) -> Vec<Bytes> {
        args.iter().map(|a| Bytes::from(a.to_string())).collect()
    }

    #[test]
    fn unknown_command_text() {
        let Lookup::Unknown(e) = lookup(&req(&["FOO", "a", "b"])) else {
            panic!()
        };
        assert_eq!(
            e.to_string(),
            "ERR unknown command 'FOO', with args beginning with: 'a' 'b' "
        );
    }

    // was: names and arguments that are not UTF-8 came back as U+FFFD replacement characters
    #[test]
    fn unknown_command_echoes_raw_bytes() {
        let req = vec![Bytes::from_static(b"\xff\xfe"), Bytes::from_static(b"a\0b")];
        let Lookup::Unknown(CommandError::Echo(e)) = lookup(&req) else {
            panic!()
        };
        assert_eq!(
            &e[..],
            b"ERR unknown command '\xff\xfe', with args beginning with: 'a' "
        );
    }

    #[test]
    fn unknown_subcommand_text() {
        let Lookup::Unknown(e) = lookup(&req(&["client", "foo"])) else {
            panic!()
        };
        assert_eq!(
            e.to_string(),
            "ERR unknown subcommand 'foo'. Try CLIENT HELP."
        );
    }

    #[test]
    fn subcommands_are_case_insensitive() {
        let Lookup::Found(s) = lookup(&req(&["Client", "ID"])) else {
            panic!()
        };
        assert_eq!(s.name, "client|id");
    }
}
