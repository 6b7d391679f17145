//! What the differential fuzzer sends: random sessions of three clients (`c1`, `c2`, `c3`),
//! each step one client's pipelined batch of pub/sub, PUBSUB, connection, CLIENT and ACL
//! commands, RESP2 and RESP3 (HELLO switches), transactions, CLIENT REPLY OFF/SKIP, wrong
//! arities, bad arguments and unknown commands, inline commands and requests that break the
//! protocol. Names come from small alphabets so that clients collide on channels, patterns and
//! users.
//!
//! A case prints as a differential script (`c1: SUBSCRIBE a | PUBLISH a x`, `c2: raw "…"`),
//! which is also the format of the regressions kept in `tests/fuzz_regressions/differential/`.
//!
//! The runner knows a batch is answered when the PING it appends answers, so the generator
//! keeps every client able to answer it between batches: a transaction ends in the batch
//! that opened it, CLIENT REPLY OFF/SKIP is turned back ON in its batch (with no command in
//! between that could change the protocol, the subscriptions or the user), the default user
//! is never changed (no client ever loses its authentication), and every rule list given to
//! ACL SETUSER ends with `+ping +exec +discard`. Commands whose replies are in hash-table
//! order (UNSUBSCRIBE without arguments, PUBSUB CHANNELS, ACL CAT category) appear only
//! outside transactions and reply segments, where the runner brackets them with PINGs. Data
//! commands Redis has and pubsubd lacks (GET …) are never sent: that difference is on purpose.

use std::fmt;

use proptest::prelude::*;
use proptest::sample::select;

/// The clients of a case; the runner connects them in this order.
pub const CLIENTS: [&str; 3] = ["c1", "c2", "c3"];

/// An argument: literal bytes, or a substitution the runner makes per server.
#[derive(Clone, Debug)]
pub enum Word {
    Lit(Vec<u8>),
    /// `{addr:c2}`, `{id:c2}`, `{laddr}`: see `fuzz_run`.
    Var(String),
}

/// One command.
#[derive(Clone, Debug)]
pub struct Cmd(pub Vec<Word>);

/// One step: a client's pipelined commands, or bytes sent as they are.
#[derive(Clone, Debug)]
pub enum Batch {
    Commands(usize, Vec<Cmd>),
    Raw(usize, Vec<u8>),
}

/// A session: the steps in order.
#[derive(Clone)]
pub struct Case(pub Vec<Batch>);

/// What the generator leaves out for the reference it runs against.
#[derive(Clone, Copy)]
pub struct Options {
    /// The reference is Redis 7.0: CLIENT SETINFO and CLIENT NO-TOUCH (new in 7.2) are not
    /// sent, nor SUBSCRIBE, PSUBSCRIBE or HELLO inside a transaction (the `not-sent-to-7.0`
    /// entry of the mask list says why).
    pub reference_70: bool,
}

fn quote(bytes: &[u8]) -> String {
    let plain = !bytes.is_empty()
        && !matches!(bytes[0], b'~' | b'#')
        && bytes != b"|"
        && bytes
            .iter()
            .all(|&b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b'{' | b'}'));
    if plain {
        String::from_utf8_lossy(bytes).into_owned()
    } else {
        crate::resp::escape(bytes)
    }
}

impl fmt::Display for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Word::Lit(b) => f.write_str(&quote(b)),
            Word::Var(v) => write!(f, "{{{v}}}"),
        }
    }
}

impl fmt::Display for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Batch::Raw(c, bytes) => {
                write!(f, "{}: raw {}", CLIENTS[*c], crate::resp::escape(bytes))
            }
            Batch::Commands(c, cmds) => {
                write!(f, "{}:", CLIENTS[*c])?;
                for (i, Cmd(words)) in cmds.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" |")?;
                    }
                    for (j, w) in words.iter().enumerate() {
                        // A first word the script language reads as a keyword is quoted.
                        match (j, w) {
                            (0, Word::Lit(b))
                                if matches!(&b[..], b"raw" | b"repeat" | b"connect" | b"close") =>
                            {
                                write!(f, " {}", crate::resp::escape(b))?
                            }
                            _ => write!(f, " {w}")?,
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| writeln!(f, "{b}"))
    }
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\n{self}")
    }
}

const CHANNELS: &[&[u8]] = &[
    b"a",
    b"b",
    b"ab",
    b"news.1",
    b"news.2",
    b"two words",
    b"caf\xc3\xa9",
];
const PATTERNS: &[&[u8]] = &[
    b"a*",
    b"*",
    b"?b",
    b"news.*",
    b"[ab]",
    b"a",
    b"news.[^2]",
    b"\\*",
    b"[",
];
const PAYLOADS: &[&[u8]] = &[b"x", b"", b"hello world", b"\x00\r\n\xff", b"12"];
const USERS: &[&str] = &["alice", "bob", "default", "nobody"];
const PASSWORDS: &[&str] = &["pw1", "pw2", "wrong"];
const NAMES: &[&[u8]] = &[
    b"alice",
    b"n1",
    b"with space",
    b"new\nline",
    b"",
    b"caf\xc3\xa9",
];
const RULES: &[&str] = &[
    "on",
    "off",
    ">pw1",
    ">pw2",
    "<pw1",
    "nopass",
    "resetpass",
    "allchannels",
    "resetchannels",
    "&a*",
    "&news.*",
    "&b",
    "+@all",
    "-@all",
    "+@pubsub",
    "-@pubsub",
    "+@connection",
    "+publish",
    "-publish",
    "+subscribe",
    "-ssubscribe",
    "+client|id",
    "-client",
    "+client",
    "+acl",
    "reset",
    "bogus",
    "+nosuch",
    "allcommands",
    "nocommands",
    "allkeys",
    "~k*",
    "resetkeys",
    "+get",
    "+@read",
    "-@dangerous",
    "+pubsub|numsub",
];
/// Appended to every ACL SETUSER so that a client of the user still answers the runner's PING
/// and can close its transaction (see the module doc).
const RULE_SUFFIX: &[&str] = &["+ping", "+exec", "+discard"];

fn lit(s: &str) -> Word {
    Word::Lit(s.as_bytes().to_vec())
}

fn cmd(words: &[&str]) -> Cmd {
    Cmd(words.iter().map(|w| lit(w)).collect())
}

fn bytes(list: &'static [&'static [u8]]) -> impl Strategy<Value = Word> + Clone {
    select(list).prop_map(|b| Word::Lit(b.to_vec()))
}

fn words(list: &'static [&'static str]) -> impl Strategy<Value = Word> + Clone {
    select(list).prop_map(lit)
}

/// A command picked from a list.
fn pick(list: &'static [&'static [&'static str]]) -> BoxedStrategy<Cmd> {
    select(list).prop_map(cmd).boxed()
}

/// `head…` followed by `tail`.
fn with(head: &'static [&'static str], tail: Vec<Word>) -> Cmd {
    Cmd(head.iter().map(|w| lit(w)).chain(tail).collect())
}

fn client_var(kind: &'static str) -> impl Strategy<Value = Word> + Clone {
    select(&CLIENTS[..]).prop_map(move |c| Word::Var(format!("{kind}:{c}")))
}

fn pubsub() -> BoxedStrategy<Cmd> {
    let ch = || bytes(CHANNELS);
    let pat = || bytes(PATTERNS);
    prop_oneof![
        4 => prop::collection::vec(ch(), 1..=3).prop_map(|v| with(&["SUBSCRIBE"], v)),
        2 => prop::collection::vec(ch(), 1..=3).prop_map(|v| with(&["UNSUBSCRIBE"], v)),
        3 => prop::collection::vec(pat(), 1..=3).prop_map(|v| with(&["PSUBSCRIBE"], v)),
        2 => prop::collection::vec(pat(), 1..=3).prop_map(|v| with(&["PUNSUBSCRIBE"], v)),
        2 => prop::collection::vec(ch(), 1..=3).prop_map(|v| with(&["SSUBSCRIBE"], v)),
        1 => prop::collection::vec(ch(), 1..=3).prop_map(|v| with(&["SUNSUBSCRIBE"], v)),
        6 => (ch(), bytes(PAYLOADS)).prop_map(|(c, p)| with(&["PUBLISH"], vec![c, p])),
        2 => (ch(), bytes(PAYLOADS)).prop_map(|(c, p)| with(&["SPUBLISH"], vec![c, p])),
        1 => pick(&[
            &["SUBSCRIBE"], &["PSUBSCRIBE"], &["SSUBSCRIBE"], &["PUBLISH", "a"],
            &["PUBLISH", "a", "b", "c"], &["SPUBLISH"], &["spublish", "a", "b", "c"],
        ]),
    ]
    .boxed()
}

/// Commands whose reply lists names in hash-table order; only sent where the runner can
/// bracket them.
fn hash_ordered() -> BoxedStrategy<Cmd> {
    prop_oneof![
        select(&["UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"][..]).prop_map(|c| cmd(&[c])),
        (
            select(&["CHANNELS", "SHARDCHANNELS"][..]),
            prop::option::of(bytes(PATTERNS))
        )
            .prop_map(|(s, p)| Cmd([lit("PUBSUB"), lit(s)].into_iter().chain(p).collect())),
        Just(cmd(&["ACL", "CAT", "pubsub"])),
    ]
    .boxed()
}

fn introspection() -> BoxedStrategy<Cmd> {
    prop_oneof![
        prop::collection::vec(bytes(CHANNELS), 0..=3).prop_map(|v| with(&["PUBSUB", "NUMSUB"], v)),
        prop::collection::vec(bytes(CHANNELS), 0..=3)
            .prop_map(|v| with(&["PUBSUB", "SHARDNUMSUB"], v)),
        pick(&[
            &["PUBSUB", "NUMPAT"],
            &["PUBSUB", "NUMPAT", "x"],
            &["PUBSUB", "HELP"],
            &["PUBSUB", "bogus"],
            &["PUBSUB"],
            &["PUBSUB", "CHANNELS", "a", "b"],
        ]),
    ]
    .boxed()
}

fn connection() -> BoxedStrategy<Cmd> {
    prop_oneof![
        3 => prop::option::of(bytes(PAYLOADS)).prop_map(|p| with(&["PING"], p.into_iter().collect())),
        2 => bytes(PAYLOADS).prop_map(|p| with(&["ECHO"], vec![p])),
        3 => (select(&["2", "3"][..]), prop::option::of(bytes(NAMES))).prop_map(|(v, n)| {
            let mut c = cmd(&["HELLO", v]);
            if let Some(n) = n {
                c.0.extend([lit("SETNAME"), n]);
            }
            c
        }),
        1 => (select(&["2", "3"][..]), words(USERS), words(PASSWORDS))
            .prop_map(|(v, u, p)| Cmd(vec![lit("HELLO"), lit(v), lit("AUTH"), u, p])),
        2 => (words(USERS), words(PASSWORDS)).prop_map(|(u, p)| Cmd(vec![lit("AUTH"), u, p])),
        2 => pick(&[
            &["PING", "a", "b"], &["ECHO"], &["HELLO"], &["HELLO", "4"], &["HELLO", "x"],
            &["HELLO", "3", "AUTH", "alice"], &["HELLO", "2", "SETNAME"], &["SELECT", "0"],
            &["SELECT", "16"], &["SELECT", "x"], &["AUTH", "pw1"], &["AUTH", "a", "b", "c"],
            &["RESET"], &["RESET", "x"], &["QUIT", "x"], &["QUIT"],
        ]),
        1 => Just(cmd(&["RESET"])),
    ]
    .boxed()
}

fn tracking() -> BoxedStrategy<Cmd> {
    let opts = prop::collection::vec(
        prop_oneof![
            client_var("id").prop_map(|id| vec![lit("REDIRECT"), id]),
            Just(vec![lit("REDIRECT"), lit("99999")]),
            Just(vec![lit("BCAST")]),
            bytes(CHANNELS).prop_map(|p| vec![lit("PREFIX"), p]),
            select(&["OPTIN", "OPTOUT", "NOLOOP", "bogus"][..]).prop_map(|o| vec![lit(o)]),
        ],
        0..=3,
    );
    (select(&["ON", "OFF", "x"][..]), opts)
        .prop_map(|(on, o)| {
            with(
                &["CLIENT", "TRACKING"],
                [lit(on)]
                    .into_iter()
                    .chain(o.into_iter().flatten())
                    .collect(),
            )
        })
        .boxed()
}

fn client(o: Options) -> BoxedStrategy<Cmd> {
    let fixed: &'static [&'static [&'static str]] = &[
        &["CLIENT", "ID"],
        &["CLIENT", "ID", "x"],
        &["CLIENT", "GETNAME"],
        &["CLIENT", "INFO"],
        &["CLIENT", "LIST"],
        &["CLIENT", "LIST", "TYPE", "pubsub"],
        &["CLIENT", "LIST", "TYPE", "normal"],
        &["CLIENT", "LIST", "TYPE", "master"],
        &["CLIENT", "LIST", "TYPE", "bogus"],
        &["CLIENT", "LIST", "ID", "99999", "x"],
        &["CLIENT", "NO-EVICT", "on"],
        &["CLIENT", "NO-EVICT", "off"],
        &["CLIENT", "NO-EVICT", "maybe"],
        &["CLIENT", "SETNAME"],
        &["CLIENT", "GETREDIR"],
        &["CLIENT", "TRACKINGINFO"],
        &["CLIENT", "CACHING", "yes"],
        &["CLIENT", "CACHING", "no"],
        &["CLIENT", "UNPAUSE"],
        &["CLIENT", "HELP"],
        &["CLIENT", "bogus"],
        &["CLIENT"],
        &["CLIENT", "KILL", "TYPE", "pubsub"],
        &["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"],
        &["CLIENT", "KILL", "USER", "alice"],
        &["CLIENT", "KILL", "USER", "nobody"],
        &["CLIENT", "KILL", "ID", "x"],
        &["CLIENT", "KILL", "bogus", "x"],
        &["CLIENT", "KILL", "127.0.0.1:1"],
        &["CLIENT", "REPLY"],
        &["CLIENT", "REPLY", "bogus"],
        &["CLIENT", "REPLY", "ON"],
    ];
    let v72: &'static [&'static [&'static str]] = &[
        &["CLIENT", "NO-TOUCH", "on"],
        &["CLIENT", "NO-TOUCH", "off"],
        &["CLIENT", "SETINFO", "LIB-NAME", "lib"],
        &["CLIENT", "SETINFO", "lib-ver", "1.0"],
        &["CLIENT", "SETINFO", "LIB-NAME", "bad name"],
        &["CLIENT", "SETINFO", "bogus", "x"],
    ];
    let by_client = prop_oneof![
        client_var("id").prop_map(|id| with(&["CLIENT", "KILL", "ID"], vec![id])),
        (client_var("id"), select(&["yes", "no"][..]))
            .prop_map(|(id, s)| with(&["CLIENT", "KILL", "ID"], vec![id, lit("SKIPME"), lit(s)])),
        client_var("addr").prop_map(|a| with(&["CLIENT", "KILL", "ADDR"], vec![a])),
        client_var("addr").prop_map(|a| with(&["CLIENT", "KILL"], vec![a])),
        Just(with(
            &["CLIENT", "KILL", "LADDR"],
            vec![Word::Var("laddr".into())]
        )),
        client_var("id").prop_map(|id| with(&["CLIENT", "LIST", "ID"], vec![id])),
        (client_var("id"), select(&["TIMEOUT", "ERROR", "x"][..]))
            .prop_map(|(id, m)| with(&["CLIENT", "UNBLOCK"], vec![id, lit(m)])),
    ];
    let mut options = vec![
        (6, select(fixed).prop_map(cmd).boxed()),
        (
            3,
            bytes(NAMES)
                .prop_map(|n| with(&["CLIENT", "SETNAME"], vec![n]))
                .boxed(),
        ),
        (2, by_client.boxed()),
        (2, tracking()),
    ];
    if !o.reference_70 {
        options.push((2, select(v72).prop_map(cmd).boxed()));
    }
    proptest::strategy::Union::new_weighted(options).boxed()
}

fn acl() -> BoxedStrategy<Cmd> {
    let user = || words(USERS);
    let named = || select(&["alice", "bob"][..]).prop_map(lit);
    prop_oneof![
        // Half of them enable the user with a password AUTH can use.
        4 => (named(), any::<bool>(), prop::collection::vec(words(RULES), 0..=4)).prop_map(
            |(u, usable, r)| {
                let usable = usable.then(|| [lit("on"), lit(">pw1")]).into_iter().flatten();
                let suffix = RULE_SUFFIX.iter().map(|w| lit(w));
                let head = [lit("ACL"), lit("SETUSER"), u];
                Cmd(head.into_iter().chain(usable).chain(r).chain(suffix).collect())
            }
        ),
        2 => user().prop_map(|u| with(&["ACL", "GETUSER"], vec![u])),
        1 => prop::collection::vec(select(&["alice", "bob", "nobody"][..]).prop_map(lit), 1..=2)
            .prop_map(|u| with(&["ACL", "DELUSER"], u)),
        1 => (user(), pick(&[
            &["publish", "a", "x"], &["subscribe", "news.1"], &["psubscribe", "a*"],
            &["ping"], &["client", "id"], &["nosuch"], &["publish", "a"],
        ])).prop_map(|(u, c)| Cmd([lit("ACL"), lit("DRYRUN"), u].into_iter().chain(c.0).collect())),
        3 => pick(&[
            &["ACL", "WHOAMI"], &["ACL", "LIST"], &["ACL", "USERS"], &["ACL", "CAT"],
            &["ACL", "CAT", "bogus"], &["ACL", "LOG"], &["ACL", "LOG", "1"], &["ACL", "LOG", "RESET"],
            &["ACL", "LOG", "x"], &["ACL", "bogus"], &["ACL"], &["ACL", "SETUSER"],
            &["ACL", "DELUSER", "default"], &["ACL", "GENPASS", "0"], &["ACL", "WHOAMI", "x"],
        ]),
    ]
    .boxed()
}

fn errors() -> BoxedStrategy<Cmd> {
    pick(&[
        &["NOSUCH"],
        &["nosuch", "a", "b"],
        &[""],
        &["EXEC"],
        &["DISCARD"],
        &["SUBSCRIBE"],
        &["MULTI", "x"],
    ])
}

/// Commands allowed inside a transaction or a CLIENT REPLY OFF/SKIP segment: none changes the
/// protocol, the user or (outside transactions) the subscriptions.
fn simple() -> BoxedStrategy<Cmd> {
    prop_oneof![
        3 => (bytes(CHANNELS), bytes(PAYLOADS)).prop_map(|(c, p)| with(&["PUBLISH"], vec![c, p])),
        1 => (bytes(CHANNELS), bytes(PAYLOADS)).prop_map(|(c, p)| with(&["SPUBLISH"], vec![c, p])),
        1 => bytes(PAYLOADS).prop_map(|p| with(&["ECHO"], vec![p])),
        1 => bytes(NAMES).prop_map(|n| with(&["CLIENT", "SETNAME"], vec![n])),
        2 => pick(&[
            &["PING"], &["CLIENT", "ID"], &["CLIENT", "GETNAME"], &["CLIENT", "INFO"],
            &["PUBSUB", "NUMSUB", "a", "b"], &["PUBSUB", "NUMPAT"], &["ACL", "WHOAMI"],
            &["NOSUCH", "x"], &["PUBLISH", "a"], &["ECHO"],
        ]),
    ]
    .boxed()
}

/// Commands that may sit in a transaction: the simple ones, unsubscribing, and (not against
/// 7.0, see `Options`) subscribing and HELLO, which Redis runs at EXEC.
fn in_multi(o: Options) -> BoxedStrategy<Cmd> {
    let mut options = vec![
        (4, simple()),
        (
            1,
            prop::collection::vec(bytes(CHANNELS), 1..=2)
                .prop_map(|v| with(&["UNSUBSCRIBE"], v))
                .boxed(),
        ),
        (
            1,
            pick(&[
                &["MULTI"],
                &["CLIENT", "ID", "x"],
                &["EXEC", "x"],
                &["CLIENT", "LIST", "ID", "20", "21", "22"],
            ]),
        ),
    ];
    if !o.reference_70 {
        options.extend([
            (
                1,
                prop::collection::vec(bytes(CHANNELS), 1..=2)
                    .prop_map(|v| with(&["SUBSCRIBE"], v))
                    .boxed(),
            ),
            (
                1,
                prop::collection::vec(bytes(PATTERNS), 1..=2)
                    .prop_map(|v| with(&["PSUBSCRIBE"], v))
                    .boxed(),
            ),
            (1, pick(&[&["HELLO", "3"], &["HELLO", "2"]])),
        ]);
    }
    proptest::strategy::Union::new_weighted(options).boxed()
}

/// One item of a batch: a command, or a transaction or reply segment (several commands).
fn item(o: Options) -> BoxedStrategy<Vec<Cmd>> {
    let multi = (
        prop::collection::vec(in_multi(o), 0..=4),
        select(&["EXEC", "DISCARD"][..]),
    )
        .prop_map(|(inner, end)| {
            std::iter::once(cmd(&["MULTI"]))
                .chain(inner)
                .chain(std::iter::once(cmd(&[end])))
                .collect()
        });
    let reply = (
        select(&["OFF", "SKIP"][..]),
        prop::collection::vec(simple(), 0..=3),
    )
        .prop_map(|(mode, inner)| {
            std::iter::once(cmd(&["CLIENT", "REPLY", mode]))
                .chain(inner)
                .chain(std::iter::once(cmd(&["CLIENT", "REPLY", "ON"])))
                .collect()
        });
    let one = |s: BoxedStrategy<Cmd>| s.prop_map(|c| vec![c]);
    prop_oneof![
        12 => one(pubsub()),
        3 => one(hash_ordered()),
        2 => one(introspection()),
        4 => one(connection()),
        5 => one(client(o)),
        4 => one(acl()),
        1 => one(errors()),
        2 => multi,
        1 => reply,
    ]
    .boxed()
}

/// Inline commands and requests that break the protocol (the server replies and closes).
/// Each is complete, so it never swallows the runner's PING.
const RAW: &[&[u8]] = &[
    b"PING\r\n",
    b"ECHO \"a b\"\r\n",
    b"SUBSCRIBE a 'two words'\r\n",
    b"PUBLISH a \"x\\x00y\"\r\n",
    b"\r\n",
    b"PING 'unbalanced\r\n",
    b"*1\r\n$x\r\n",
    b"*x\r\n",
    b"*1\r\nfoo\r\n",
    b"*1\r\n$4\r\nPING\r\n",
];

fn batch(o: Options) -> impl Strategy<Value = Batch> {
    prop_oneof![
        20 => (0..CLIENTS.len(), prop::collection::vec(item(o), 1..=5))
            .prop_map(|(c, items)| Batch::Commands(c, items.into_iter().flatten().collect())),
        1 => (0..CLIENTS.len(), select(RAW)).prop_map(|(c, r)| Batch::Raw(c, r.to_vec())),
    ]
}

/// A session of up to `max_batches` steps.
pub fn case(o: Options, max_batches: usize) -> impl Strategy<Value = Case> {
    prop::collection::vec(batch(o), 1..=max_batches).prop_map(Case)
}
