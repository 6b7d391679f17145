//! The command table: one row per command (and per subcommand of a container command), carrying
//! what Redis 7.2's COMMAND INFO/DOCS report for it, how dispatch treats it, and which of its
//! arguments are channels (for ACL checks). Looking rows up, their numbering and renames are in
//! `lookup`.

use bytes::Bytes;

pub use crate::auth::catalogue::ChannelArgs;

use super::{
    acl, admin, client_cmd, cluster, command_docs, config_cmd, info, multi, pubsub, session,
    tracking, CommandError, Handler,
};

/// Key positions, for the few commands whose channel is a key for cluster routing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keys {
    None,
    /// Shard channels at 1..=last (last -1 = to the end), as SSUBSCRIBE/SUNSUBSCRIBE/SPUBLISH.
    ShardChannels {
        last: i64,
    },
}

/// One documented argument (COMMAND DOCS). `oneof` and `block` arguments list their parts in
/// `arguments`, as Redis does (redis-cli's hints read them without checking).
#[derive(Debug)]
pub struct Arg {
    pub name: &'static str,
    pub kind: &'static str,
    pub token: Option<&'static str>,
    pub optional: bool,
    pub multiple: bool,
    /// Each repetition repeats the token (`PREFIX a PREFIX b`).
    pub multiple_token: bool,
    pub arguments: &'static [Arg],
    /// COMMAND DOCS `display_text` when it is not the name (Redis shows the name otherwise).
    pub display: Option<&'static str>,
    /// The version that added this argument.
    pub since: Option<&'static str>,
    pub deprecated_since: Option<&'static str>,
}

const fn arg(name: &'static str, kind: &'static str) -> Arg {
    Arg {
        name,
        kind,
        token: None,
        optional: false,
        multiple: false,
        multiple_token: false,
        arguments: &[],
        display: None,
        since: None,
        deprecated_since: None,
    }
}

/// `a` with the version that added it.
const fn since(v: &'static str, a: Arg) -> Arg {
    Arg {
        since: Some(v),
        ..a
    }
}

const fn opt(name: &'static str, kind: &'static str) -> Arg {
    Arg {
        optional: true,
        ..arg(name, kind)
    }
}

const fn many(name: &'static str, kind: &'static str, optional: bool) -> Arg {
    Arg {
        optional,
        multiple: true,
        ..arg(name, kind)
    }
}

/// An argument introduced by a token (`SETNAME name`).
const fn tok(name: &'static str, kind: &'static str, token: &'static str, optional: bool) -> Arg {
    Arg {
        token: Some(token),
        optional,
        ..arg(name, kind)
    }
}

/// A bare keyword (`ON`).
const fn pure(name: &'static str, token: &'static str) -> Arg {
    tok(name, "pure-token", token, false)
}

/// A `oneof` or `block` group.
const fn group(
    name: &'static str,
    kind: &'static str,
    token: Option<&'static str>,
    optional: bool,
    arguments: &'static [Arg],
) -> Arg {
    Arg {
        token,
        optional,
        arguments,
        ..arg(name, kind)
    }
}

const ON_OFF: &[Arg] = &[pure("on", "ON"), pure("off", "OFF")];
const CLIENT_TYPES: &[Arg] = &[
    pure("normal", "NORMAL"),
    pure("master", "MASTER"),
    pure("replica", "REPLICA"),
    pure("pubsub", "PUBSUB"),
];
/// CLIENT KILL TYPE also takes the old `SLAVE` (Redis 7.2 lists it; 7.4 dropped it).
const KILL_CLIENT_TYPES: &[Arg] = &[
    pure("normal", "NORMAL"),
    since("3.2.0", pure("master", "MASTER")),
    pure("slave", "SLAVE"),
    since("5.0.0", pure("replica", "REPLICA")),
    pure("pubsub", "PUBSUB"),
];
const IP_PORT: Option<&str> = Some("ip:port");
/// CLIENT KILL's filters as Redis 7.2.4 documents them (MAXAGE came with 7.4).
const KILL_FILTERS: &[Arg] = &[
    since("2.8.12", tok("client-id", "integer", "ID", true)),
    since(
        "2.8.12",
        group(
            "client-type",
            "oneof",
            Some("TYPE"),
            true,
            KILL_CLIENT_TYPES,
        ),
    ),
    tok("username", "string", "USER", true),
    Arg {
        display: IP_PORT,
        ..tok("addr", "string", "ADDR", true)
    },
    Arg {
        display: IP_PORT,
        since: Some("6.2.0"),
        ..tok("laddr", "string", "LADDR", true)
    },
    group(
        "skipme",
        "oneof",
        Some("SKIPME"),
        true,
        &[pure("yes", "YES"), pure("no", "NO")],
    ),
];
const HELLO_ARGS: &[Arg] = &[
    arg("protover", "integer"),
    group(
        "auth",
        "block",
        Some("AUTH"),
        true,
        &[arg("username", "string"), arg("password", "string")],
    ),
    tok("clientname", "string", "SETNAME", true),
];

#[derive(Debug)]
pub struct CommandSpec {
    /// Full lowercase name: `publish`, `client|id`.
    pub name: &'static str,
    /// Redis arity: N exactly, or -N for at least N (the name counts).
    pub arity: i64,
    pub flags: &'static [&'static str],
    pub acl: &'static [&'static str],
    pub tips: &'static [&'static str],
    pub keys: Keys,
    /// Which arguments are channels, for the ACL channel check.
    pub channels: ChannelArgs,
    /// Allowed to a RESP2 client with subscriptions.
    pub subscribe_context: bool,
    /// Runs immediately inside MULTI instead of being queued (MULTI, EXEC, DISCARD, QUIT, RESET).
    pub runs_in_multi: bool,
    pub summary: &'static str,
    pub since: &'static str,
    pub group: &'static str,
    pub complexity: &'static str,
    pub args: &'static [Arg],
    pub subcommands: &'static [CommandSpec],
    /// COMMAND DOCS `history`: (version, what changed).
    pub history: &'static [(&'static str, &'static str)],
    /// Deprecated: (since, replaced by), shown with `doc_flags` `deprecated`.
    pub deprecated: Option<(&'static str, &'static str)>,
    pub handler: Handler,
}

impl CommandSpec {
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    /// Allowed before authentication (the `no_auth` flag: AUTH, HELLO, QUIT, RESET).
    pub fn no_auth(&self) -> bool {
        self.flags.contains(&"no_auth")
    }

    /// The part after `|` for a subcommand, else the name.
    pub fn short_name(&self) -> &'static str {
        self.name.rsplit('|').next().unwrap_or(self.name)
    }
}

/// Shorthand for a row; the fields that vary least get defaults.
macro_rules! cmd {
    ($name:expr, $arity:expr, $handler:expr, flags: [$($f:expr),*], acl: [$($a:expr),*],
     $summary:expr, $since:expr, $group:expr, $complexity:expr
     $(, args: $args:expr)? $(, tips: $tips:expr)? $(, keys: $keys:expr)?
     $(, subs: $subs:expr)? $(, ctx: $ctx:expr)? $(, multi: $multi:expr)?
     $(, channels: $channels:expr)? $(, history: $history:expr)?
     $(, deprecated: $deprecated:expr)?) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            flags: &[$($f),*],
            acl: &[$($a),*],
            tips: { let _t: &'static [&'static str] = &[]; $(let _t = $tips;)? _t },
            keys: { let _k = Keys::None; $(let _k = $keys;)? _k },
            channels: { let _c = ChannelArgs::None; $(let _c = $channels;)? _c },
            subscribe_context: { let _c = false; $(let _c = $ctx;)? _c },
            runs_in_multi: { let _m = false; $(let _m = $multi;)? _m },
            summary: $summary,
            since: $since,
            group: $group,
            complexity: $complexity,
            args: { let _a: &'static [Arg] = &[]; $(let _a = $args;)? _a },
            subcommands: { let _s: &'static [CommandSpec] = &[]; $(let _s = $subs;)? _s },
            history: { let _h: &'static [(&'static str, &'static str)] = &[]; $(let _h = $history;)? _h },
            deprecated: { let _d: Option<(&'static str, &'static str)> = None; $(let _d = Some($deprecated);)? _d },
            handler: $handler,
        }
    };
}

fn container(_: &mut super::Ctx, _: &[Bytes]) -> super::CmdResult {
    Err(CommandError::other("ERR unknown subcommand"))
}

pub static PUBSUB_SUBCOMMANDS: &[CommandSpec] = &[
    cmd!("pubsub|channels", -2, pubsub::pubsub_channels, flags: ["pubsub", "loading", "stale"], acl: ["@pubsub", "@slow"],
        "Returns the active channels.", "2.8.0", "pubsub",
        "O(N) where N is the number of active channels, and assuming constant time pattern matching (relatively short channels and patterns)",
        args: &[opt("pattern", "pattern")]),
    cmd!("pubsub|numsub", -2, pubsub::pubsub_numsub, flags: ["pubsub", "loading", "stale"], acl: ["@pubsub", "@slow"],
        "Returns a count of subscribers to channels.", "2.8.0", "pubsub",
        "O(N) for the NUMSUB subcommand, where N is the number of requested channels",
        args: &[many("channel", "string", true)]),
    cmd!("pubsub|numpat", 2, pubsub::pubsub_numpat, flags: ["pubsub", "loading", "stale"], acl: ["@pubsub", "@slow"],
        "Returns a count of unique pattern subscriptions.", "2.8.0", "pubsub", "O(1)"),
    cmd!("pubsub|shardchannels", -2, pubsub::pubsub_shardchannels, flags: ["pubsub", "loading", "stale"], acl: ["@pubsub", "@slow"],
        "Returns the active shard channels.", "7.0.0", "pubsub",
        "O(N) where N is the number of active shard channels, and assuming constant time pattern matching (relatively short shard channels).",
        args: &[opt("pattern", "pattern")]),
    cmd!("pubsub|shardnumsub", -2, pubsub::pubsub_shardnumsub, flags: ["pubsub", "loading", "stale"], acl: ["@pubsub", "@slow"],
        "Returns the count of subscribers of shard channels.", "7.0.0", "pubsub",
        "O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels",
        args: &[many("shardchannel", "string", true)]),
    cmd!("pubsub|help", 2, pubsub::pubsub_help, flags: ["loading", "stale"], acl: ["@slow"],
        "Returns helpful text about the different subcommands.", "6.2.0", "pubsub", "O(1)"),
];

pub static CLIENT_SUBCOMMANDS: &[CommandSpec] = &[
    cmd!("client|id", 2, client_cmd::id, flags: ["noscript", "loading", "stale"], acl: ["@slow", "@connection"],
        "Returns the unique client ID of the connection.", "5.0.0", "connection", "O(1)"),
    cmd!("client|setname", 3, client_cmd::setname, flags: ["noscript", "loading", "stale"], acl: ["@slow", "@connection"],
        "Sets the connection name.", "2.6.9", "connection", "O(1)",
        args: &[arg("connection-name", "string")],
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"]),
    cmd!("client|getname", 2, client_cmd::getname, flags: ["noscript", "loading", "stale"], acl: ["@slow", "@connection"],
        "Returns the name of the connection.", "2.6.9", "connection", "O(1)"),
    cmd!("client|setinfo", 4, client_cmd::setinfo, flags: ["noscript", "loading", "stale"], acl: ["@slow", "@connection"],
        "Sets information specific to the client or connection.", "7.2.0", "connection", "O(1)",
        args: &[group("attr", "oneof", None, false, &[tok("libname", "string", "LIB-NAME", false), tok("libver", "string", "LIB-VER", false)])],
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"]),
    cmd!("client|info", 2, client_cmd::info, flags: ["noscript", "loading", "stale"], acl: ["@slow", "@connection"],
        "Returns information about the connection.", "6.2.0", "connection", "O(1)",
        tips: &["nondeterministic_output"]),
    cmd!("client|list", -2, client_cmd::list, flags: ["admin", "noscript", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous", "@connection"],
        "Lists open connections.", "2.4.0", "connection", "O(N) where N is the number of client connections",
        args: &[since("5.0.0", group("client-type", "oneof", Some("TYPE"), true, CLIENT_TYPES)), Arg { token: Some("ID"), since: Some("6.2.0"), ..many("client-id", "integer", true) }],
        tips: &["nondeterministic_output"],
        history: &[("2.8.12", "Added unique client `id` field."), ("5.0.0", "Added optional `TYPE` filter."), ("6.0.0", "Added `user` field."), ("6.2.0", "Added `argv-mem`, `tot-mem`, `laddr` and `redir` fields and the optional `ID` filter."), ("7.0.0", "Added `resp`, `multi-mem`, `rbs` and `rbp` fields."), ("7.0.3", "Added `ssub` field.")]),
    cmd!("client|kill", -3, client_cmd::kill, flags: ["admin", "noscript", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous", "@connection"],
        "Terminates open connections.", "2.4.0", "connection", "O(N) where N is the number of client connections",
        args: &[group("filter", "oneof", None, false, &[Arg { display: IP_PORT, deprecated_since: Some("2.8.12"), ..arg("old-format", "string") }, Arg { multiple: true, ..group("new-format", "oneof", None, false, KILL_FILTERS) }])],
        history: &[("2.8.12", "Added new filter format."), ("2.8.12", "`ID` option."), ("3.2.0", "Added `master` type in for `TYPE` option."), ("5.0.0", "Replaced `slave` `TYPE` with `replica`. `slave` still supported for backward compatibility."), ("6.2.0", "`LADDR` option.")]),
    cmd!("client|reply", 3, client_cmd::reply, flags: ["noscript", "loading", "stale"], acl: ["@slow", "@connection"],
        "Instructs the server whether to reply to commands.", "3.2.0", "connection", "O(1)",
        args: &[group("action", "oneof", None, false, &[pure("on", "ON"), pure("off", "OFF"), pure("skip", "SKIP")])]),
    cmd!("client|no-evict", 3, client_cmd::no_evict, flags: ["admin", "noscript", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous", "@connection"],
        "Sets the client eviction mode of the connection.", "7.0.0", "connection", "O(1)",
        args: &[group("enabled", "oneof", None, false, ON_OFF)]),
    cmd!("client|no-touch", 3, client_cmd::no_touch, flags: ["noscript", "loading", "stale"], acl: ["@slow", "@connection"],
        "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.", "7.2.0", "connection", "O(1)",
        args: &[group("enabled", "oneof", None, false, ON_OFF)]),
    cmd!("client|tracking", -3, tracking::tracking, flags: ["noscript", "loading", "stale"], acl: ["@slow", "@connection"],
        "Controls server-assisted client-side caching for the connection.", "6.0.0", "connection", "O(1). Some options may introduce additional complexity.",
        args: &[group("status", "oneof", None, false, ON_OFF), tok("client-id", "integer", "REDIRECT", true), Arg { token: Some("PREFIX"), multiple_token: true, ..many("prefix", "string", true) },
            tok("bcast", "pure-token", "BCAST", true), tok("optin", "pure-token", "OPTIN", true), tok("optout", "pure-token", "OPTOUT", true), tok("noloop", "pure-token", "NOLOOP", true)]),
    cmd!("client|caching", 3, tracking::caching, flags: ["noscript", "loading", "stale"], acl: ["@slow", "@connection"],
        "Instructs the server whether to track the keys in the next request.", "6.0.0", "connection", "O(1)",
        args: &[group("mode", "oneof", None, false, &[pure("yes", "YES"), pure("no", "NO")])]),
    cmd!("client|trackinginfo", 2, tracking::trackinginfo, flags: ["noscript", "loading", "stale"], acl: ["@slow", "@connection"],
        "Returns information about server-assisted client-side caching for the connection.", "6.2.0", "connection", "O(1)"),
    cmd!("client|unblock", -3, tracking::unblock, flags: ["admin", "noscript", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous", "@connection"],
        "Unblocks a client blocked by a blocking command from a different connection.", "5.0.0", "connection", "O(log N) where N is the number of client connections",
        args: &[arg("client-id", "integer"), group("unblock-type", "oneof", None, true, &[pure("timeout", "TIMEOUT"), pure("error", "ERROR")])]),
    cmd!("client|getredir", 2, tracking::getredir, flags: ["noscript", "loading", "stale"], acl: ["@slow", "@connection"],
        "Returns the client ID to which the connection's tracking notifications are redirected.", "6.0.0", "connection", "O(1)"),
    cmd!("client|pause", -3, client_cmd::pause, flags: ["admin", "noscript", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous", "@connection"],
        "Suspends commands processing.", "3.0.0", "connection", "O(1)",
        args: &[arg("timeout", "integer"), since("6.2.0", group("mode", "oneof", None, true, &[pure("write", "WRITE"), pure("all", "ALL")]))],
        history: &[("6.2.0", "`CLIENT PAUSE WRITE` mode added along with the `mode` option.")]),
    cmd!("client|unpause", 2, client_cmd::unpause, flags: ["admin", "noscript", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous", "@connection"],
        "Resumes processing commands from paused clients.", "6.2.0", "connection", "O(N) Where N is the number of paused clients"),
    cmd!("client|help", 2, client_cmd::help, flags: ["loading", "stale"], acl: ["@slow", "@connection"],
        "Returns helpful text about the different subcommands.", "5.0.0", "connection", "O(1)"),
];

pub static CONFIG_SUBCOMMANDS: &[CommandSpec] = &[
    cmd!("config|get", -3, config_cmd::get, flags: ["admin", "noscript", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous"],
        "Returns the effective values of configuration parameters.", "2.0.0", "server",
        "O(N) when N is the number of configuration parameters provided",
        args: &[many("parameter", "string", false)],
        history: &[("7.0.0", "Added the ability to pass multiple pattern parameters in one call")]),
    cmd!("config|set", -4, config_cmd::set, flags: ["admin", "noscript", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous"],
        "Sets configuration parameters in-flight.", "2.0.0", "server",
        "O(N) when N is the number of configuration parameters provided",
        args: &[Arg { multiple: true, ..group("data", "block", None, false, &[arg("parameter", "string"), arg("value", "string")]) }],
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        history: &[("7.0.0", "Added the ability to set multiple parameters in one call.")]),
    cmd!("config|resetstat", 2, config_cmd::resetstat, flags: ["admin", "noscript", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous"],
        "Resets the server's statistics.", "2.0.0", "server", "O(1)",
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"]),
    cmd!("config|rewrite", 2, config_cmd::rewrite, flags: ["admin", "noscript", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous"],
        "Persists the effective configuration to file.", "2.8.0", "server", "O(1)",
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"]),
    cmd!("config|help", 2, config_cmd::help, flags: ["loading", "stale"], acl: ["@slow"],
        "Returns helpful text about the different subcommands.", "5.0.0", "server", "O(1)"),
];

pub static SLOWLOG_SUBCOMMANDS: &[CommandSpec] = &[
    cmd!("slowlog|get", -2, admin::slowlog_get, flags: ["admin", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous"],
        "Returns the slow log's entries.", "2.2.12", "server", "O(N) where N is the number of entries returned",
        args: &[opt("count", "integer")],
        tips: &["request_policy:all_nodes", "nondeterministic_output"],
        history: &[("4.0.0", "Added client IP address, port and name to the reply.")]),
    cmd!("slowlog|len", 2, admin::slowlog_len, flags: ["admin", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous"],
        "Returns the number of entries in the slow log.", "2.2.12", "server", "O(1)",
        tips: &["request_policy:all_nodes", "response_policy:agg_sum", "nondeterministic_output"]),
    cmd!("slowlog|reset", 2, admin::slowlog_reset, flags: ["admin", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous"],
        "Clears all entries from the slow log.", "2.2.12", "server", "O(N) where N is the number of entries in the slowlog",
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"]),
    cmd!("slowlog|help", 2, admin::slowlog_help, flags: ["loading", "stale"], acl: ["@slow"],
        "Show helpful text about the different subcommands", "6.2.0", "server", "O(1)"),
];

pub static COMMAND_SUBCOMMANDS: &[CommandSpec] = &[
    cmd!("command|count", 2, command_docs::command_count, flags: ["loading", "stale"], acl: ["@slow", "@connection"],
        "Returns a count of commands.", "2.8.13", "server", "O(1)"),
    cmd!("command|docs", -2, command_docs::command_docs, flags: ["loading", "stale"], acl: ["@slow", "@connection"],
        "Returns documentary information about one, multiple or all commands.", "7.0.0", "server",
        "O(N) where N is the number of commands to look up",
        args: &[many("command-name", "string", true)],
        tips: &["nondeterministic_output_order"]),
    cmd!("command|info", -2, command_docs::command_info, flags: ["loading", "stale"], acl: ["@slow", "@connection"],
        "Returns information about one, multiple or all commands.", "2.8.13", "server",
        "O(N) where N is the number of commands to look up",
        args: &[many("command-name", "string", true)],
        tips: &["nondeterministic_output_order"],
        history: &[("7.0.0", "Allowed to be called with no argument to get info on all commands.")]),
    cmd!("command|list", -2, command_docs::command_list, flags: ["loading", "stale"], acl: ["@slow", "@connection"],
        "Returns a list of command names.", "7.0.0", "server", "O(N) where N is the total number of Redis commands",
        args: &[group("filterby", "oneof", Some("FILTERBY"), true, &[tok("module-name", "string", "MODULE", false), tok("category", "string", "ACLCAT", false), tok("pattern", "pattern", "PATTERN", false)])],
        tips: &["nondeterministic_output_order"]),
    cmd!("command|getkeys", -3, command_docs::command_getkeys, flags: ["loading", "stale"], acl: ["@slow", "@connection"],
        "Extracts the key names from an arbitrary command.", "2.8.13", "server", "O(N) where N is the number of arguments to the command",
        args: &[arg("command", "string"), many("arg", "string", true)]),
    cmd!("command|getkeysandflags", -3, command_docs::command_getkeysandflags, flags: ["loading", "stale"], acl: ["@slow", "@connection"],
        "Extracts the key names and access flags for an arbitrary command.", "7.0.0", "server", "O(N) where N is the number of arguments to the command",
        args: &[arg("command", "string"), many("arg", "string", true)]),
    cmd!("command|help", 2, command_docs::command_help, flags: ["loading", "stale"], acl: ["@slow", "@connection"],
        "Returns helpful text about the different subcommands.", "5.0.0", "server", "O(1)"),
];

pub static ACL_SUBCOMMANDS: &[CommandSpec] = &[
    cmd!("acl|cat", -2, acl::cat, flags: ["noscript", "loading", "stale"], acl: ["@slow"],
        "Lists the ACL categories, or the commands inside a category.", "6.0.0", "server",
        "O(1) since the categories and commands are a fixed set.",
        args: &[opt("category", "string")]),
    cmd!("acl|deluser", -3, acl::deluser, flags: ["admin", "noscript", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous"],
        "Deletes ACL users, and terminates their connections.", "6.0.0", "server",
        "O(1) amortized time considering the typical user.",
        args: &[many("username", "string", false)],
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"]),
    cmd!("acl|dryrun", -4, acl::dryrun, flags: ["admin", "noscript", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous"],
        "Simulates the execution of a command by a user, without executing the command.", "7.0.0", "server", "O(1).",
        args: &[arg("username", "string"), arg("command", "string"), many("arg", "string", true)]),
    cmd!("acl|genpass", -2, acl::genpass, flags: ["noscript", "loading", "stale"], acl: ["@slow"],
        "Generates a pseudorandom, secure password that can be used to identify ACL users.", "6.0.0", "server", "O(1)",
        args: &[opt("bits", "integer")]),
    cmd!("acl|getuser", 3, acl::getuser, flags: ["admin", "noscript", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous"],
        "Lists the ACL rules of a user.", "6.0.0", "server",
        "O(N). Where N is the number of password, command and pattern rules that the user has.",
        args: &[arg("username", "string")],
        history: &[("6.2.0", "Added Pub/Sub channel patterns."), ("7.0.0", "Added selectors and changed the format of key and channel patterns from a list to their rule representation.")]),
    cmd!("acl|list", 2, acl::list, flags: ["admin", "noscript", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous"],
        "Dumps the effective rules in ACL file format.", "6.0.0", "server",
        "O(N). Where N is the number of configured users."),
    cmd!("acl|load", 2, acl::load, flags: ["admin", "noscript", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous"],
        "Reloads the rules from the configured ACL file.", "6.0.0", "server",
        "O(N). Where N is the number of configured users."),
    cmd!("acl|log", -2, acl::log, flags: ["admin", "noscript", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous"],
        "Lists recent security events generated due to ACL rules.", "6.0.0", "server",
        "O(N) with N being the number of entries shown.",
        args: &[group("operation", "oneof", None, true, &[arg("count", "integer"), pure("reset", "RESET")])],
        history: &[("7.2.0", "Added entry ID, timestamp created, and timestamp last updated.")]),
    cmd!("acl|save", 2, acl::save, flags: ["admin", "noscript", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous"],
        "Saves the effective ACL rules in the configured ACL file.", "6.0.0", "server",
        "O(N). Where N is the number of configured users.",
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"]),
    cmd!("acl|setuser", -3, acl::setuser, flags: ["admin", "noscript", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous"],
        "Creates and modifies an ACL user and its rules.", "6.0.0", "server",
        "O(N). Where N is the number of rules provided.",
        args: &[arg("username", "string"), many("rule", "string", true)],
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        history: &[("6.2.0", "Added Pub/Sub channel patterns."), ("7.0.0", "Added selectors and key based permissions.")]),
    cmd!("acl|users", 2, acl::users, flags: ["admin", "noscript", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous"],
        "Lists all ACL users.", "6.0.0", "server", "O(N). Where N is the number of configured users."),
    cmd!("acl|whoami", 2, acl::whoami, flags: ["noscript", "loading", "stale"], acl: ["@slow"],
        "Returns the authenticated username of the current connection.", "6.0.0", "server", "O(1)"),
    cmd!("acl|help", 2, acl::help, flags: ["loading", "stale"], acl: ["@slow"],
        "Returns helpful text about the different subcommands.", "6.0.0", "server", "O(1)"),
];

const SLOT_RANGE: &[Arg] = &[Arg {
    multiple: true,
    ..group(
        "range",
        "block",
        None,
        false,
        &[arg("start-slot", "integer"), arg("end-slot", "integer")],
    )
}];

pub static CLUSTER_SUBCOMMANDS: &[CommandSpec] = &[
    cmd!("cluster|addslots", -3, cluster::topology, flags: ["admin", "stale", "no_async_loading"], acl: ["@admin", "@slow", "@dangerous"],
        "Assigns new hash slots to a node.", "3.0.0", "cluster", "O(N) where N is the total number of hash slot arguments",
        args: &[many("slot", "integer", false)]),
    cmd!("cluster|addslotsrange", -4, cluster::topology, flags: ["admin", "stale", "no_async_loading"], acl: ["@admin", "@slow", "@dangerous"],
        "Assigns new hash slot ranges to a node.", "7.0.0", "cluster", "O(N) where N is the total number of the slots between the start slot and end slot arguments.",
        args: SLOT_RANGE),
    cmd!("cluster|bumpepoch", 2, cluster::topology, flags: ["admin", "stale", "no_async_loading"], acl: ["@admin", "@slow", "@dangerous"],
        "Advances the cluster config epoch.", "3.0.0", "cluster", "O(1)",
        tips: &["nondeterministic_output"]),
    cmd!("cluster|count-failure-reports", 3, cluster::count_failure_reports, flags: ["admin", "stale"], acl: ["@admin", "@slow", "@dangerous"],
        "Returns the number of active failure reports active for a node.", "3.0.0", "cluster", "O(N) where N is the number of failure reports",
        args: &[arg("node-id", "string")], tips: &["nondeterministic_output"]),
    cmd!("cluster|countkeysinslot", 3, cluster::countkeysinslot, flags: ["stale"], acl: ["@slow"],
        "Returns the number of keys in a hash slot.", "3.0.0", "cluster", "O(1)",
        args: &[arg("slot", "integer")]),
    cmd!("cluster|delslots", -3, cluster::topology, flags: ["admin", "stale", "no_async_loading"], acl: ["@admin", "@slow", "@dangerous"],
        "Sets hash slots as unbound for a node.", "3.0.0", "cluster", "O(N) where N is the total number of hash slot arguments",
        args: &[many("slot", "integer", false)]),
    cmd!("cluster|delslotsrange", -4, cluster::topology, flags: ["admin", "stale", "no_async_loading"], acl: ["@admin", "@slow", "@dangerous"],
        "Sets hash slot ranges as unbound for a node.", "7.0.0", "cluster", "O(N) where N is the total number of the slots between the start slot and end slot arguments.",
        args: SLOT_RANGE),
    cmd!("cluster|failover", -2, cluster::topology, flags: ["admin", "stale", "no_async_loading"], acl: ["@admin", "@slow", "@dangerous"],
        "Forces a replica to perform a manual failover of its master.", "3.0.0", "cluster", "O(1)",
        args: &[group("options", "oneof", None, true, &[pure("force", "FORCE"), pure("takeover", "TAKEOVER")])]),
    cmd!("cluster|flushslots", 2, cluster::topology, flags: ["admin", "stale", "no_async_loading"], acl: ["@admin", "@slow", "@dangerous"],
        "Deletes all slots information from a node.", "3.0.0", "cluster", "O(1)"),
    cmd!("cluster|forget", 3, cluster::topology, flags: ["admin", "stale", "no_async_loading"], acl: ["@admin", "@slow", "@dangerous"],
        "Removes a node from the nodes table.", "3.0.0", "cluster", "O(1)",
        args: &[arg("node-id", "string")]),
    cmd!("cluster|getkeysinslot", 4, cluster::getkeysinslot, flags: ["stale"], acl: ["@slow"],
        "Returns the key names in a hash slot.", "3.0.0", "cluster", "O(N) where N is the number of requested keys",
        args: &[arg("slot", "integer"), arg("count", "integer")], tips: &["nondeterministic_output"]),
    cmd!("cluster|help", 2, cluster::help, flags: ["loading", "stale"], acl: ["@slow"],
        "Returns helpful text about the different subcommands.", "5.0.0", "cluster", "O(1)"),
    cmd!("cluster|info", 2, cluster::info, flags: ["stale"], acl: ["@slow"],
        "Returns information about the state of a node.", "3.0.0", "cluster", "O(1)",
        tips: &["nondeterministic_output"]),
    cmd!("cluster|keyslot", 3, cluster::keyslot, flags: ["stale"], acl: ["@slow"],
        "Returns the hash slot for a key.", "3.0.0", "cluster", "O(N) where N is the number of bytes in the key",
        args: &[arg("key", "string")]),
    cmd!("cluster|links", 2, cluster::links, flags: ["stale"], acl: ["@slow"],
        "Returns a list of all TCP links to and from peer nodes.", "7.0.0", "cluster", "O(N) where N is the total number of Cluster nodes",
        tips: &["nondeterministic_output"]),
    cmd!("cluster|meet", -4, cluster::topology, flags: ["admin", "stale", "no_async_loading"], acl: ["@admin", "@slow", "@dangerous"],
        "Forces a node to handshake with another node.", "3.0.0", "cluster", "O(1)",
        args: &[arg("ip", "string"), arg("port", "integer"), opt("cluster-bus-port", "integer")]),
    cmd!("cluster|myid", 2, cluster::myid, flags: ["stale"], acl: ["@slow"],
        "Returns the ID of a node.", "3.0.0", "cluster", "O(1)"),
    cmd!("cluster|myshardid", 2, cluster::myshardid, flags: ["stale"], acl: ["@slow"],
        "Returns the shard ID of a node.", "7.2.0", "cluster", "O(1)",
        tips: &["nondeterministic_output"]),
    cmd!("cluster|nodes", 2, cluster::nodes, flags: ["stale"], acl: ["@slow"],
        "Returns the cluster configuration for a node.", "3.0.0", "cluster", "O(N) where N is the total number of Cluster nodes",
        tips: &["nondeterministic_output"]),
    cmd!("cluster|replicas", 3, cluster::replicas, flags: ["admin", "stale"], acl: ["@admin", "@slow", "@dangerous"],
        "Lists the replica nodes of a master node.", "5.0.0", "cluster", "O(N) where N is the number of replicas.",
        args: &[arg("node-id", "string")], tips: &["nondeterministic_output"]),
    cmd!("cluster|replicate", 3, cluster::topology, flags: ["admin", "stale", "no_async_loading"], acl: ["@admin", "@slow", "@dangerous"],
        "Configure a node as replica of a master node.", "3.0.0", "cluster", "O(1)",
        args: &[arg("node-id", "string")]),
    cmd!("cluster|reset", -2, cluster::topology, flags: ["admin", "noscript", "stale"], acl: ["@admin", "@slow", "@dangerous"],
        "Resets a node.", "3.0.0", "cluster", "O(N) where N is the number of known nodes. The command may execute a FLUSHALL as a side effect.",
        args: &[group("reset-type", "oneof", None, true, &[pure("hard", "HARD"), pure("soft", "SOFT")])]),
    cmd!("cluster|saveconfig", 2, cluster::saveconfig, flags: ["admin", "stale", "no_async_loading"], acl: ["@admin", "@slow", "@dangerous"],
        "Forces a node to save the cluster configuration to disk.", "3.0.0", "cluster", "O(1)"),
    cmd!("cluster|set-config-epoch", 3, cluster::topology, flags: ["admin", "stale", "no_async_loading"], acl: ["@admin", "@slow", "@dangerous"],
        "Sets the configuration epoch for a new node.", "3.0.0", "cluster", "O(1)",
        args: &[arg("config-epoch", "integer")]),
    cmd!("cluster|setslot", -4, cluster::topology, flags: ["admin", "stale", "no_async_loading"], acl: ["@admin", "@slow", "@dangerous"],
        "Binds a hash slot to a node.", "3.0.0", "cluster", "O(1)",
        args: &[arg("slot", "integer"), group("subcommand", "oneof", None, false, &[tok("importing", "string", "IMPORTING", false), tok("migrating", "string", "MIGRATING", false), tok("node", "string", "NODE", false), pure("stable", "STABLE")])]),
    cmd!("cluster|shards", 2, cluster::shards, flags: ["loading", "stale"], acl: ["@slow"],
        "Returns the mapping of cluster slots to shards.", "7.0.0", "cluster", "O(N) where N is the total number of cluster nodes",
        tips: &["nondeterministic_output"]),
    cmd!("cluster|slaves", 3, cluster::replicas, flags: ["admin", "stale"], acl: ["@admin", "@slow", "@dangerous"],
        "Lists the replica nodes of a master node.", "3.0.0", "cluster", "O(N) where N is the number of replicas.",
        args: &[arg("node-id", "string")], tips: &["nondeterministic_output"]),
    cmd!("cluster|slots", 2, cluster::slots, flags: ["loading", "stale"], acl: ["@slow"],
        "Returns the mapping of cluster slots to nodes.", "3.0.0", "cluster", "O(N) where N is the total number of Cluster nodes",
        tips: &["nondeterministic_output"]),
];

pub static TABLE: &[CommandSpec] = &[
    cmd!("subscribe", -2, pubsub::subscribe, flags: ["pubsub", "noscript", "loading", "stale"], acl: ["@pubsub", "@slow"],
        "Listens for messages published to channels.", "2.0.0", "pubsub",
        "O(N) where N is the number of channels to subscribe to.",
        args: &[many("channel", "string", false)], ctx: true, channels: ChannelArgs::All),
    cmd!("unsubscribe", -1, pubsub::unsubscribe, flags: ["pubsub", "noscript", "loading", "stale"], acl: ["@pubsub", "@slow"],
        "Stops listening to messages posted to channels.", "2.0.0", "pubsub",
        "O(N) where N is the number of channels to unsubscribe.",
        args: &[many("channel", "string", true)], ctx: true),
    cmd!("psubscribe", -2, pubsub::psubscribe, flags: ["pubsub", "noscript", "loading", "stale"], acl: ["@pubsub", "@slow"],
        "Listens for messages published to channels that match one or more patterns.", "2.0.0", "pubsub",
        "O(N) where N is the number of patterns to subscribe to.",
        args: &[many("pattern", "pattern", false)], ctx: true,
        channels: ChannelArgs::AllPatterns),
    cmd!("punsubscribe", -1, pubsub::punsubscribe, flags: ["pubsub", "noscript", "loading", "stale"], acl: ["@pubsub", "@slow"],
        "Stops listening to messages published to channels that match one or more patterns.", "2.0.0", "pubsub",
        "O(N) where N is the number of patterns to unsubscribe.",
        args: &[many("pattern", "pattern", true)], ctx: true),
    cmd!("publish", 3, pubsub::publish, flags: ["pubsub", "loading", "stale", "fast"], acl: ["@pubsub", "@fast"],
        "Posts a message to a channel.", "2.0.0", "pubsub",
        "O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client).",
        args: &[arg("channel", "string"), arg("message", "string")], channels: ChannelArgs::First),
    cmd!("ssubscribe", -2, pubsub::ssubscribe, flags: ["pubsub", "noscript", "loading", "stale"], acl: ["@pubsub", "@slow"],
        "Listens for messages published to shard channels.", "7.0.0", "pubsub",
        "O(N) where N is the number of shard channels to subscribe to.",
        args: &[many("shardchannel", "string", false)], keys: Keys::ShardChannels { last: -1 }, ctx: true,
        channels: ChannelArgs::All),
    cmd!("sunsubscribe", -1, pubsub::sunsubscribe, flags: ["pubsub", "noscript", "loading", "stale"], acl: ["@pubsub", "@slow"],
        "Stops listening to messages posted to shard channels.", "7.0.0", "pubsub",
        "O(N) where N is the number of shard channels to unsubscribe.",
        args: &[many("shardchannel", "string", true)], keys: Keys::ShardChannels { last: -1 }, ctx: true),
    cmd!("spublish", 3, pubsub::spublish, flags: ["pubsub", "loading", "stale", "fast"], acl: ["@pubsub", "@fast"],
        "Post a message to a shard channel", "7.0.0", "pubsub",
        "O(N) where N is the number of clients subscribed to the receiving shard channel.",
        args: &[arg("shardchannel", "string"), arg("message", "string")], keys: Keys::ShardChannels { last: 0 },
        channels: ChannelArgs::First),
    cmd!("pubsub", -2, container, flags: [], acl: ["@slow"],
        "A container for Pub/Sub commands.", "2.8.0", "pubsub", "Depends on subcommand.",
        subs: PUBSUB_SUBCOMMANDS),
    cmd!("ping", -1, session::ping, flags: ["fast"], acl: ["@fast", "@connection"],
        "Returns the server's liveliness response.", "1.0.0", "connection", "O(1)",
        args: &[opt("message", "string")],
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"], ctx: true),
    cmd!("echo", 2, session::echo, flags: ["loading", "stale", "fast"], acl: ["@fast", "@connection"],
        "Returns the given string.", "1.0.0", "connection", "O(1)",
        args: &[arg("message", "string")]),
    cmd!("quit", -1, session::quit, flags: ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], acl: ["@fast", "@connection"],
        "Closes the connection.", "1.0.0", "connection", "O(1)", ctx: true, multi: true,
        deprecated: ("7.2.0", "just closing the connection")),
    cmd!("reset", 1, session::reset, flags: ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], acl: ["@fast", "@connection"],
        "Resets the connection.", "6.2.0", "connection", "O(1)", ctx: true, multi: true),
    cmd!("hello", -1, session::hello, flags: ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], acl: ["@fast", "@connection"],
        "Handshakes with the Redis server.", "6.0.0", "connection", "O(1)",
        args: &[group("arguments", "block", None, true, HELLO_ARGS)],
        history: &[("6.2.0", "`protover` made optional; when called without arguments the command reports the current connection's context.")]),
    cmd!("auth", -2, session::auth, flags: ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], acl: ["@fast", "@connection"],
        "Authenticates the connection.", "1.0.0", "connection",
        "O(N) where N is the number of passwords defined for the user",
        args: &[since("6.0.0", opt("username", "string")), arg("password", "string")],
        history: &[("6.0.0", "Added ACL style (username and password).")]),
    cmd!("select", 2, session::select, flags: ["loading", "stale", "fast"], acl: ["@fast", "@connection"],
        "Changes the selected database.", "1.0.0", "connection", "O(1)",
        args: &[arg("index", "integer")]),
    cmd!("client", -2, container, flags: [], acl: ["@slow"],
        "A container for client connection commands.", "2.4.0", "connection", "Depends on subcommand.",
        subs: CLIENT_SUBCOMMANDS),
    cmd!("info", -1, info::info, flags: ["loading", "stale"], acl: ["@slow", "@dangerous"],
        "Returns information and statistics about the server.", "1.0.0", "server", "O(1)",
        args: &[many("section", "string", true)],
        tips: &["nondeterministic_output", "request_policy:all_shards", "response_policy:special"],
        history: &[("7.0.0", "Added support for taking multiple section arguments.")]),
    cmd!("command", -1, command_docs::command, flags: ["loading", "stale"], acl: ["@slow", "@connection"],
        "Returns detailed information about all commands.", "2.8.13", "server",
        "O(N) where N is the total number of Redis commands",
        tips: &["nondeterministic_output_order"], subs: COMMAND_SUBCOMMANDS),
    cmd!("multi", 1, multi::multi, flags: ["noscript", "loading", "stale", "fast", "allow_busy"], acl: ["@fast", "@transaction"],
        "Starts a transaction.", "1.2.0", "transactions", "O(1)", multi: true),
    cmd!("exec", 1, multi::exec, flags: ["noscript", "loading", "stale", "skip_slowlog"], acl: ["@slow", "@transaction"],
        "Executes all commands in a transaction.", "1.2.0", "transactions", "Depends on commands in the transaction",
        multi: true),
    cmd!("acl", -2, container, flags: [], acl: ["@slow"],
        "A container for Access List Control commands.", "6.0.0", "server", "Depends on subcommand.",
        subs: ACL_SUBCOMMANDS),
    cmd!("discard", 1, multi::discard, flags: ["noscript", "loading", "stale", "fast", "allow_busy"], acl: ["@fast", "@transaction"],
        "Discards a transaction.", "2.0.0", "transactions", "O(N), when N is the number of queued commands",
        multi: true),
    cmd!("config", -2, container, flags: [], acl: ["@slow"],
        "A container for server configuration commands.", "2.0.0", "server", "Depends on subcommand.",
        subs: CONFIG_SUBCOMMANDS),
    cmd!("monitor", 1, admin::monitor, flags: ["admin", "noscript", "loading", "stale"], acl: ["@admin", "@slow", "@dangerous"],
        "Listens for all requests received by the server in real-time.", "1.0.0", "server", ""),
    cmd!("shutdown", -1, admin::shutdown, flags: ["admin", "noscript", "loading", "stale", "no_multi", "allow_busy"], acl: ["@admin", "@slow", "@dangerous"],
        "Synchronously saves the database(s) to disk and shuts down the Redis server.", "1.0.0", "server",
        "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)",
        args: &[group("save-selector", "oneof", None, true, &[pure("nosave", "NOSAVE"), pure("save", "SAVE")]), since("7.0.0", tok("now", "pure-token", "NOW", true)), since("7.0.0", tok("force", "pure-token", "FORCE", true)), since("7.0.0", tok("abort", "pure-token", "ABORT", true))],
        history: &[("7.0.0", "Added the `NOW`, `FORCE` and `ABORT` modifiers.")]),
    cmd!("slowlog", -2, container, flags: [], acl: ["@slow"],
        "A container for slow log commands.", "2.2.12", "server", "Depends on subcommand.",
        subs: SLOWLOG_SUBCOMMANDS),
    cmd!("cluster", -2, container, flags: [], acl: ["@slow"],
        "A container for Redis Cluster commands.", "3.0.0", "cluster", "Depends on subcommand.",
        subs: CLUSTER_SUBCOMMANDS),
    cmd!("asking", 1, cluster::asking, flags: ["fast"], acl: ["@fast", "@connection"],
        "Signals that a cluster client is following an -ASK redirect.", "3.0.0", "cluster", "O(1)"),
    cmd!("readonly", 1, cluster::readonly, flags: ["loading", "stale", "fast"], acl: ["@fast", "@connection"],
        "Enables read-only queries for a connection to a Redis Cluster replica node.", "3.0.0", "cluster", "O(1)"),
    cmd!("readwrite", 1, cluster::readwrite, flags: ["loading", "stale", "fast"], acl: ["@fast", "@connection"],
        "Enables read-write queries for a connection to a Reids Cluster replica node.", "3.0.0", "cluster", "O(1)"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::lookup::ALL;

    fn check_args(cmd: &str, args: &[Arg]) {
        for a in args {
            if a.kind == "oneof" || a.kind == "block" {
                assert!(!a.arguments.is_empty(), "{cmd}: {} lists no parts", a.name);
            }
            check_args(cmd, a.arguments);
        }
    }

    #[test]
    fn oneof_and_block_arguments_list_their_parts() {
        // was: redis-cli crashed on COMMAND DOCS entries without nested arguments.
        for c in ALL.iter() {
            check_args(c.name, c.args);
        }
    }

    #[test]
    fn every_subscribe_context_command_is_pubsub_ping_quit_or_reset() {
        let allowed: Vec<_> = TABLE
            .iter()
            .filter(|c| c.subscribe_context)
            .map(|c| c.name)
            .collect();
        assert_eq!(
            allowed,
            [
                "subscribe",
                "unsubscribe",
                "psubscribe",
                "punsubscribe",
                "ssubscribe",
                "sunsubscribe",
                "ping",
                "quit",
                "reset"
            ]
        );
    }
}
